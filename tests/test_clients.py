"""
Real Twitter client libraries against real distwit servers on loopback.

Each library runs the same smoke sequence (tests/clients/): verify
credentials, post, reply, timelines with since_id and max_id, show, user
lookups, follow and unfollow of a local and a remote user, id lists
through cursors, a retweet (its ``retweeted_status``) and
``statuses/retweets_of_me``, a remote user's profile (users/show of
``handle@authority``, changed on their server) and a retweet of their post
(which their server then counts), delete, and the errors for a
141-character post and for bad credentials.  A library that shares its module name with another runs
in a virtualenv of its own, made (once) under ``.cache/client-venvs``.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import venv
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ROOT, run_cli
from tests.test_federation import PASSWORD, Federation, acct, call, post, wait_for

CLIENTS = os.path.join(ROOT, "tests", "clients")
#: The remote user's profile and post, made on their server before a
#: client runs; the clients read them through the server they talk to.
REMOTE_PROFILE = {"name": "Dave Remote", "description": "far away", "location": "Elsewhere"}
REMOTE_TEXT = "dave's post, from the other server"
VENVS = os.path.join(ROOT, ".cache", "client-venvs")


def prepare_remote(server: Any, handle: str = "dave") -> dict[str, Any]:
    """
    Give the remote user a profile and a post (on their own server).

    :return: the post, as their server shows it.
    """
    call(server, "POST", "/1.1/account/update_profile.json", handle, **REMOTE_PROFILE)
    return post(server, handle, REMOTE_TEXT)


def counted_on_author_server(case: SynchronousTestCase, server: Any, original: dict[str, Any],
                             handle: str = "dave") -> None:
    """
    Wait until the remote author's server counts the client's retweet of
    their post (the retweet notice): the retweet reached them.
    """
    def counted() -> bool:
        shown = call(server, "GET", f"/1.1/statuses/show/{original['id']}.json", handle)
        return bool(shown["retweet_count"] == 1)

    wait_for(counted, 30, "the retweet counted on the author's server", step=0.25)


def client_venv(name: str, *requirements: str) -> str:
    """
    The python of a virtualenv holding ``requirements``, made if missing.
    """
    folder = os.path.join(VENVS, name)
    python = os.path.join(folder, "bin", "python")
    marker = os.path.join(folder, "requirements.txt")
    wanted = "\n".join(requirements)
    os.makedirs(VENVS, exist_ok=True)
    # One maker at a time (trial -j runs test modules that share a client
    # in parallel processes: one cleared the other's half-made venv).
    with open(os.path.join(VENVS, f"{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(marker) and open(marker).read() == wanted:
            return python
        venv.EnvBuilder(clear=True, with_pip=True).create(folder)
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *requirements],
            check=True,
            timeout=600,
        )
        with open(marker, "w") as f:
            f.write(wanted)
    return python


class PythonTwitterToolsTests(SynchronousTestCase):
    """
    The ``twitter`` package (Python Twitter Tools 1.19) with HTTP Basic on
    the unversioned paths, as JSON and as 2008 XML.
    """

    def setUp(self) -> None:
        self.python = client_venv("ptt", "twitter==1.19.6")
        federation = Federation(self, pings=1)
        self.remote_server = federation.twitter("s2", ["dave"])
        self.remote_post = prepare_remote(self.remote_server)
        self.federation = federation

    def run_smoke(self, fmt: str) -> None:
        server = self.federation.twitter(f"s1{fmt}", ["alice", "bob", "carol"])
        done = subprocess.run(
            [self.python,
             os.path.join(CLIENTS, "ptt_smoke.py"),
             server.url.split("//", 1)[1], fmt, acct("dave", self.remote_server)],
            capture_output=True,
            text=True,
            timeout=120,
            # Its own virtualenv's packages only: trial -j gives its
            # workers a PYTHONPATH holding this one's (python-twitter).
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout.count("ok "), 9, done.stdout)
        counted_on_author_server(self, self.remote_server, self.remote_post)
        self.assertNotIn("Traceback", server.log_text())

    def test_json(self) -> None:
        self.run_smoke("json")

    def test_xml(self) -> None:
        self.run_smoke("xml")


def approve(authorize_url: str, handle: str, password: str, verify: str | bool = True) -> str:
    """
    What a person does in the browser, done with requests: open the
    authorize page, sign in and approve.  Returns the PIN (oob) or the
    verifier from the redirect.
    """
    import re
    from urllib.parse import parse_qs, urlsplit

    import requests

    page = requests.get(authorize_url, verify=verify, timeout=30)
    page.raise_for_status()
    csrf = re.search(r"name='csrf' value='([0-9a-f]+)'", page.text)
    token = re.search(r"name='oauth_token' value='([^']+)'", page.text)
    assert csrf and token, page.text
    answer = requests.post(
        authorize_url.split("?")[0],
        data={"oauth_token": token.group(1), "csrf": csrf.group(1),
              "session[username_or_email]": handle, "session[password]": password,
              "allow": "1"},
        verify=verify, allow_redirects=False, timeout=30,
    )
    if answer.status_code == 302:
        return parse_qs(urlsplit(answer.headers["location"]).query)["oauth_verifier"][0]
    pin = re.search(r"<code>([0-9a-f]+)</code>", answer.text)
    assert pin, answer.text
    return pin.group(1)


def create_app(server: Any, owner: str) -> tuple[str, str]:
    done = run_cli("app", "create", "Smoke test", "--owner", owner, "--data", server.data)
    assert done.returncode == 0, done.stderr
    app = dict(line.split("=", 1) for line in done.stdout.splitlines())
    return app["consumer_key"], app["consumer_secret"]


class TweepyTests(SynchronousTestCase):
    """
    tweepy 4 (API v1.1), which always talks https: OAuth 1.0a through the
    real request-token / authorize / access-token flow, then the smoke
    sequence, all over TLS with a throwaway CA.
    """

    def setUp(self) -> None:
        from tests.test_tls import TLSFederation

        helper = self.tls = TLSFederation(self)
        os.environ["REQUESTS_CA_BUNDLE"] = helper.ca_file
        self.addCleanup(os.environ.pop, "REQUESTS_CA_BUNDLE", None)
        self.s1, self.s2 = helper.two_twitter_servers(("alice", "bob", "carol"), ("dave",))
        self.remote_post = prepare_remote(self.s2)

    def test_tweepy(self) -> None:
        import tweepy

        host = self.s1.url.split("//", 1)[1]
        key, secret = create_app(self.s1, "carol")

        class DistwitAuth(tweepy.OAuth1UserHandler):
            def _get_oauth_url(self, endpoint: str) -> str:
                return f"https://{host}/oauth/{endpoint}"

        def sign_in(handle: str) -> tweepy.API:
            auth = DistwitAuth(key, secret, callback="oob")
            url = auth.get_authorization_url()
            auth.get_access_token(approve(url, handle, PASSWORD, self.tls.ca_file))
            return tweepy.API(auth, host=host)

        alice, bob = sign_in("alice"), sign_in("bob")
        me = alice.verify_credentials()
        self.assertEqual(me.screen_name, "alice")

        first = alice.update_status("hello from tweepy")
        question = bob.update_status("@alice are you there?")
        reply = alice.update_status("@bob yes", in_reply_to_status_id=question.id)
        self.assertEqual(reply.in_reply_to_status_id, question.id)
        thread = alice.request("GET", f"statuses/conversation/{reply.id}",
                               payload_list=True, payload_type="status")
        self.assertEqual([(s.id, s.in_reply_to_status_id) for s in thread],
                         [(question.id, None), (reply.id, question.id)])

        alice.create_friendship(screen_name="bob")
        posted = [bob.update_status(f"bob's post {i}").id for i in range(5)]
        home = alice.home_timeline(count=3)
        self.assertEqual([s.id for s in home], posted[:1:-1])
        older = alice.home_timeline(count=3, max_id=home[-1].id - 1)
        self.assertEqual([s.id for s in older], [posted[1], posted[0], reply.id])
        self.assertEqual([s.id for s in alice.home_timeline(since_id=posted[3])], [posted[4]])
        self.assertEqual([s.id for s in alice.user_timeline(screen_name="bob", count=2)],
                         [posted[4], posted[3]])
        self.assertEqual([s.id for s in alice.mentions_timeline()], [question.id])
        self.assertEqual(alice.get_status(first.id).text, "hello from tweepy")
        self.assertEqual(sorted(u.screen_name for u in alice.lookup_users(
            screen_name=["alice", "bob"])), ["alice", "bob"])
        self.assertEqual(alice.get_user(screen_name="bob").screen_name, "bob")

        dave = acct("dave", self.s2)
        alice.create_friendship(screen_name="carol")
        alice.create_friendship(screen_name=dave)
        self.assertEqual(alice.get_user(screen_name=dave).screen_name, dave)
        ids = list(tweepy.Cursor(alice.get_friend_ids, count=2).items())
        self.assertEqual(len(ids), 3)
        self.assertEqual(bob.get_follower_ids(), [me.id])
        alice.destroy_friendship(screen_name="carol")
        alice.destroy_friendship(screen_name=dave)
        self.assertEqual(len(alice.get_friend_ids()), 1)

        # Retweets, retweets_of_me, a remote user's profile and post.
        rt = alice.retweet(posted[0])
        self.assertEqual((rt.retweeted_status.id, rt.retweeted_status.user.screen_name),
                         (posted[0], "bob"))
        self.assertEqual(rt.text, "RT @bob: bob's post 0")
        shown = alice.get_status(rt.id)
        self.assertEqual((shown.retweeted_status.id, shown.retweeted_status.retweet_count),
                         (posted[0], 1))
        mine = bob.get_retweets_of_me()
        self.assertEqual([(s.id, s.retweet_count) for s in mine], [(posted[0], 1)])
        alice.create_friendship(screen_name=dave)

        def profile() -> Any:
            user = alice.get_user(screen_name=dave)
            return user if user.name == REMOTE_PROFILE["name"] else None

        user, _ = wait_for(profile, 30, "dave's profile on s1", step=0.25)
        self.assertEqual((user.screen_name, user.description, user.location),
                         (dave, REMOTE_PROFILE["description"], REMOTE_PROFILE["location"]))
        self.assertTrue(user.profile_image_url_https.endswith(".png"), user.profile_image_url)

        def remote_post() -> Any:
            return next((s for s in alice.home_timeline() if s.text == REMOTE_TEXT), None)

        theirs, _ = wait_for(remote_post, 30, "dave's post on s1", step=0.25)
        self.assertEqual(theirs.user.screen_name, dave)
        remote_rt = alice.retweet(theirs.id)
        self.assertEqual((remote_rt.retweeted_status.user.screen_name,
                          remote_rt.retweeted_status.text), (dave, REMOTE_TEXT))
        counted_on_author_server(self, self.s2, self.remote_post)
        alice.destroy_friendship(screen_name=dave)

        alice.destroy_status(first.id)
        with self.assertRaises(tweepy.errors.NotFound):
            alice.get_status(first.id)
        with self.assertRaises(tweepy.errors.Forbidden) as raised:
            alice.update_status("x" * 141)
        self.assertEqual(raised.exception.api_codes, [186])
        wrong = tweepy.API(DistwitAuth(key, "wrong secret", alice.auth.access_token,
                                       alice.auth.access_token_secret), host=host)
        with self.assertRaises(tweepy.errors.Unauthorized) as raised:
            wrong.verify_credentials()
        self.assertEqual(raised.exception.api_codes, [32])
        unknown = tweepy.API(DistwitAuth(key, secret, "no-such-token", "x"), host=host)
        with self.assertRaises(tweepy.errors.Unauthorized) as raised:
            unknown.verify_credentials()
        self.assertEqual(raised.exception.api_codes, [89])


class PythonTwitterTests(SynchronousTestCase):
    """
    python-twitter 3.5 (``base_url=``) with OAuth 1.0a tokens from
    ``distwit token create``.  (It has no HTTP Basic on Python 3.)
    """

    def test_python_twitter(self) -> None:
        import twitter

        federation = Federation(self, pings=1)
        s2 = federation.twitter("s2", ["dave"])
        s1 = federation.twitter("s1", ["alice", "bob", "carol"])
        remote_post = prepare_remote(s2)
        key, secret = create_app(s1, "carol")

        tokens = {}

        def api(handle: str, consumer_secret: str = secret) -> twitter.Api:
            if handle not in tokens:
                done = run_cli("token", "create", "--consumer-key", key, "--user", handle,
                               "--data", s1.data)
                self.assertEqual(done.returncode, 0, done.stderr)
                tokens[handle] = dict(line.split("=", 1) for line in done.stdout.splitlines())
            token = tokens[handle]
            return twitter.Api(key, consumer_secret, token["access_token"],
                               token["access_token_secret"], base_url=s1.url + "/1.1")

        alice, bob = api("alice"), api("bob")
        me = alice.VerifyCredentials()
        self.assertEqual(me.screen_name, "alice")
        first = alice.PostUpdate("hello from python-twitter")
        question = bob.PostUpdate("@alice are you there?")
        reply = alice.PostUpdate("@bob yes", in_reply_to_status_id=question.id)
        self.assertEqual(reply.in_reply_to_status_id, question.id)
        alice.CreateFriendship(screen_name="bob")
        posted = [bob.PostUpdate(f"bob's post {i}").id for i in range(5)]
        home = alice.GetHomeTimeline(count=3)
        self.assertEqual([s.id for s in home], posted[:1:-1])
        older = alice.GetHomeTimeline(count=3, max_id=home[-1].id - 1)
        self.assertEqual([s.id for s in older], [posted[1], posted[0], reply.id])
        self.assertEqual([s.id for s in alice.GetHomeTimeline(since_id=posted[3])],
                         [posted[4]])
        self.assertEqual([s.id for s in alice.GetUserTimeline(screen_name="bob", count=2)],
                         [posted[4], posted[3]])
        self.assertEqual([s.id for s in alice.GetMentions()], [question.id])
        self.assertEqual(alice.GetStatus(first.id).text, "hello from python-twitter")
        self.assertEqual(sorted(u.screen_name for u in alice.UsersLookup(
            screen_name=["alice", "bob"])), ["alice", "bob"])
        self.assertEqual(alice.GetUser(screen_name="bob").screen_name, "bob")
        dave = acct("dave", s2)
        alice.CreateFriendship(screen_name="carol")
        alice.CreateFriendship(screen_name=dave)
        self.assertEqual(len(alice.GetFriendIDs(count=2)), 3)  # follows the cursors
        self.assertEqual(bob.GetFollowerIDs(), [me.id])
        alice.DestroyFriendship(screen_name="carol")
        alice.DestroyFriendship(screen_name=dave)
        self.assertEqual(len(alice.GetFriendIDs()), 1)

        # Retweets, retweets_of_me, a remote user's profile and post.
        rt = alice.PostRetweet(posted[0])
        self.assertEqual((rt.retweeted_status.id, rt.retweeted_status.user.screen_name),
                         (posted[0], "bob"))
        shown = alice.GetStatus(rt.id)
        self.assertEqual((shown.retweeted_status.id, shown.retweeted_status.retweet_count),
                         (posted[0], 1))
        mine = bob.GetRetweetsOfMe()
        self.assertEqual([(s.id, s.retweet_count) for s in mine], [(posted[0], 1)])
        alice.CreateFriendship(screen_name=dave)

        def profile() -> Any:
            user = alice.GetUser(screen_name=dave)
            return user if user.name == REMOTE_PROFILE["name"] else None

        user, _ = wait_for(profile, 30, "dave's profile on s1", step=0.25)
        self.assertEqual((user.screen_name, user.description, user.location),
                         (dave, REMOTE_PROFILE["description"], REMOTE_PROFILE["location"]))

        def arrived() -> Any:
            return next((s for s in alice.GetHomeTimeline() if s.text == REMOTE_TEXT), None)

        theirs, _ = wait_for(arrived, 30, "dave's post on s1", step=0.25)
        remote_rt = alice.PostRetweet(theirs.id)
        self.assertEqual((remote_rt.retweeted_status.user.screen_name,
                          remote_rt.retweeted_status.text), (dave, REMOTE_TEXT))
        counted_on_author_server(self, s2, remote_post)
        alice.DestroyFriendship(screen_name=dave)

        alice.DestroyStatus(first.id)
        with self.assertRaises(twitter.TwitterError):
            alice.GetStatus(first.id)
        with self.assertRaises(twitter.TwitterError) as raised:
            alice.PostUpdate("x" * 141)
        self.assertIn("186", str(raised.exception))
        with self.assertRaises(twitter.TwitterError) as raised:
            api("alice", consumer_secret="wrong").VerifyCredentials()
        self.assertIn("'code': 32", str(raised.exception))


NODE_CLIENT = os.path.join(CLIENTS, "node")


def node_client_skip() -> str | None:
    import shutil

    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed (.ci/run installs them)"
    return None


class NodeClientTests(SynchronousTestCase):
    """
    twitter-api-v2 (Node) with OAuth 1.0a tokens, its v1.1 prefix pointed
    at the server.
    """

    skip = node_client_skip()

    def test_twitter_api_v2(self) -> None:
        import json

        if not os.path.isdir(os.path.join(NODE_CLIENT, "node_modules", "twitter-api-v2")):
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--silent"],
                cwd=NODE_CLIENT, check=True, timeout=600,
            )
        from tests.test_tls import TLSFederation

        # twitter-api-v2 talks https only: servers on TLS, Node trusting
        # their throwaway CA.
        tls = TLSFederation(self)
        s1, s2 = tls.two_twitter_servers(("alice", "bob", "carol"), ("dave",))
        remote_post = prepare_remote(s2)
        key, secret = create_app(s1, "carol")
        credentials: dict[str, Any] = {"key": key, "secret": secret}
        for handle in ("alice", "bob"):
            done = run_cli("token", "create", "--consumer-key", key, "--user", handle,
                           "--data", s1.data)
            self.assertEqual(done.returncode, 0, done.stderr)
            token = dict(line.split("=", 1) for line in done.stdout.splitlines())
            credentials[handle] = [token["access_token"], token["access_token_secret"]]
        done = subprocess.run(
            ["node", os.path.join(NODE_CLIENT, "smoke.js"), s1.url, acct("dave", s2),
             json.dumps(credentials)],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "NODE_EXTRA_CA_CERTS": tls.ca_file},
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertEqual(done.stdout.count("ok "), 9, done.stdout)
        counted_on_author_server(self, s2, remote_post)


class TwythonTests(SynchronousTestCase):
    """
    twython with OAuth 1.0a tokens and ``api_url`` pointed at the server,
    as the documentation page says.
    """

    def test_twython(self) -> None:
        from twython import Twython, TwythonAuthError, TwythonError

        federation = Federation(self, pings=1)
        s2 = federation.twitter("s2", ["dave"])
        s1 = federation.twitter("s1", ["alice", "bob"])
        key, secret = create_app(s1, "bob")

        def api(handle: str) -> Twython:
            done = run_cli("token", "create", "--consumer-key", key, "--user", handle,
                           "--data", s1.data)
            self.assertEqual(done.returncode, 0, done.stderr)
            token = dict(line.split("=", 1) for line in done.stdout.splitlines())
            client = Twython(key, secret, token["access_token"], token["access_token_secret"])
            client.api_url = s1.url + "/%s"
            return client

        alice, bob = api("alice"), api("bob")
        self.assertEqual(alice.verify_credentials()["screen_name"], "alice")
        question = bob.update_status(status="@alice hello?")
        reply = alice.update_status(status="@bob hi", in_reply_to_status_id=question["id_str"])
        self.assertEqual(reply["in_reply_to_status_id"], question["id"])
        alice.create_friendship(screen_name="bob")
        alice.create_friendship(screen_name=acct("dave", s2))
        later = bob.update_status(status="later")
        home = alice.get_home_timeline(since_id=reply["id_str"])
        self.assertEqual([s["id"] for s in home], [later["id"]])
        self.assertEqual([s["id"] for s in alice.get_mentions_timeline()], [question["id"]])
        self.assertEqual(len(alice.get_friends_ids(count=1)["ids"]), 1)
        self.assertEqual(len(alice.get_friends_ids()["ids"]), 2)
        alice.destroy_status(id=reply["id_str"])
        with self.assertRaises(TwythonError) as raised:
            alice.update_status(status="x" * 141)
        self.assertEqual(raised.exception.error_code, 403)
        wrong = Twython(key, "wrong", "x", "y")
        wrong.api_url = s1.url + "/%s"
        with self.assertRaises(TwythonAuthError):
            wrong.verify_credentials()


class GetTokenClientTests(SynchronousTestCase):
    """
    Client libraries of the time that take tokens by GET (issue 15):
    rauth 0.7 (requests; GET is its default on the token endpoints, the
    OAuth parameters in the query) and python-oauth2 1.9 (httplib2, as in
    the xAuth examples of 2010), each through PIN sign-in and xAuth on a
    real server.
    """

    def setUp(self) -> None:
        federation = Federation(self, pings=1)
        self.server = federation.twitter("s1", ["alice", "bob"])
        self.key, self.secret = create_app(self.server, "bob")

    def test_rauth(self) -> None:
        from rauth import OAuth1Service

        url = self.server.url
        for prefix, header_auth in (("/oauth", False), ("/1.1/oauth", True)):
            service = OAuth1Service(
                name="distwit", consumer_key=self.key, consumer_secret=self.secret,
                request_token_url=f"{url}{prefix}/request_token",
                access_token_url=f"{url}{prefix}/access_token",
                authorize_url=f"{url}{prefix}/authorize", base_url=url + "/1.1/",
            )
            token, token_secret = service.get_request_token(
                params={"oauth_callback": "oob"}, header_auth=header_auth)
            pin = approve(service.get_authorize_url(token), "alice", PASSWORD)
            self.assertRegex(pin, r"\A[0-9]{7}\Z")
            session = service.get_auth_session(
                token, token_secret, params={"oauth_verifier": pin}, header_auth=header_auth)
            me = session.get("account/verify_credentials.json", params={},
                             header_auth=header_auth)
            self.assertEqual((prefix, me.status_code, me.json()["screen_name"]),
                             (prefix, 200, "alice"))

        answer = service.get_raw_access_token("", "", params={
            "x_auth_mode": "client_auth", "x_auth_username": "bob",
            "x_auth_password": PASSWORD,
        })
        self.assertEqual(answer.status_code, 200, answer.text)
        xauth = _form_answer(answer.text)
        session = service.get_session((xauth["oauth_token"], xauth["oauth_token_secret"]))
        posted = session.post("statuses/update.json", data={"status": "by rauth"})
        self.assertEqual(posted.status_code, 200, posted.text)
        self.assertEqual(posted.json()["user"]["screen_name"], "bob")
        wrong = service.get_raw_access_token("", "", params={
            "x_auth_mode": "client_auth", "x_auth_username": "bob",
            "x_auth_password": "wrong",
        })
        self.assertEqual(wrong.status_code, 401)
        self.assertEqual(wrong.json()["errors"][0]["code"], 32)
        self.assertNotIn("Traceback", self.server.log_text())

    def test_python_oauth2(self) -> None:
        import json
        from urllib.parse import urlencode

        import oauth2

        url = self.server.url
        consumer = oauth2.Consumer(self.key, self.secret)
        response, content = oauth2.Client(consumer).request(url + "/oauth/request_token?"
                                                            + urlencode({"oauth_callback": "oob"}),
                                                            "GET")
        self.assertEqual(response.status, 200, content)
        request_token = _form_answer(content.decode())
        pin = approve(f"{url}/oauth/authorize?oauth_token={request_token['oauth_token']}",
                      "alice", PASSWORD)
        token = oauth2.Token(request_token["oauth_token"], request_token["oauth_token_secret"])
        token.set_verifier(pin)
        response, content = oauth2.Client(consumer, token).request(
            url + "/oauth/access_token", "GET")
        self.assertEqual(response.status, 200, content)
        access = _form_answer(content.decode())
        self.assertEqual(access["screen_name"], "alice")

        response, content = oauth2.Client(consumer).request(
            url + "/oauth/access_token", "POST", body=urlencode({
                "x_auth_mode": "client_auth", "x_auth_username": "bob",
                "x_auth_password": PASSWORD,
            }))
        self.assertEqual(response.status, 200, content)
        xauth = _form_answer(content.decode())
        self.assertEqual(xauth["screen_name"], "bob")

        for answer in (access, xauth):
            client = oauth2.Client(consumer, oauth2.Token(answer["oauth_token"],
                                                          answer["oauth_token_secret"]))
            response, content = client.request(url + "/1.1/account/verify_credentials.json",
                                               "GET")
            self.assertEqual(response.status, 200, content)
            self.assertEqual(json.loads(content)["screen_name"], answer["screen_name"])
        self.assertNotIn("Traceback", self.server.log_text())


def _form_answer(text: str) -> dict[str, str]:
    from urllib.parse import parse_qs

    return {k: v[0] for k, v in parse_qs(text).items()}
