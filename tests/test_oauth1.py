"""
OAuth for the API: OAuth 1.0a signatures (header, query, body), the
three-legged flow with its authorize page, PIN, xAuth, bearer tokens and
the command line, signed by oauthlib's own client.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from oauthlib.oauth1 import (
    SIGNATURE_TYPE_AUTH_HEADER,
    SIGNATURE_TYPE_BODY,
    SIGNATURE_TYPE_QUERY,
    Client,
)

from treq.testing import StubTreq
from twisted.internet.defer import ensureDeferred
from twisted.trial.unittest import SynchronousTestCase

from distwit.roles.twitter import TwitterService, make_twitter_web
from tests.processes import run_cli
from tests.support import cheap_hasher
from tests.test_api import BASE, PASSWORDS, APITestCase, _basic

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class OAuthTestCase(APITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.provider = self.web.oauth
        self.alice = self.successResultOf(self.service.microblog.user("alice"))
        self.key, self.secret = self.successResultOf(
            self.provider.create_app(self.alice, "Test App")
        )
        self.token, self.token_secret = self.successResultOf(
            self.provider.create_access_token(self.key, self.alice)
        )
        self.nonce = 0

    def client(self, **options: Any) -> Client:
        self.nonce += 1
        settings: dict[str, Any] = {
            "client_secret": self.secret,
            "resource_owner_key": self.token,
            "resource_owner_secret": self.token_secret,
            "timestamp": str(int(self.clock.seconds())),
            "nonce": f"nonce{self.nonce}",
        }
        settings.update(options)
        return Client(settings.pop("client_key", self.key), **settings)

    def send(self, method: str, url: str, headers: dict[str, str] | None = None,
             body: str | None = None, follow: bool = False) -> tuple[int, bytes, Any]:
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if body is not None:
            kwargs["data"] = body.encode("utf-8")
        d = self.stub.request(method, url, allow_redirects=follow, **kwargs)
        self.stub.flush()
        response = self.successResultOf(d)
        content = self.successResultOf(response.content())
        return response.code, content, response

    def signed(self, method: str, path: str, params: dict[str, str] | None = None,
               send_to: str = BASE, sign_for: str = BASE, **options: Any) -> tuple[int, Any]:
        client = self.client(**options)
        body = urlencode(params) if params and method == "POST" else None
        url = sign_for + path
        if params and method == "GET":
            url += "?" + urlencode(params)
        uri, headers, signed_body = client.sign(
            url, method, body, dict(FORM) if body is not None else {}
        )
        uri = send_to + uri[len(sign_for):]
        code, content, _ = self.send(method, uri, headers, signed_body)
        return code, json.loads(content)

    def assertCode(self, result: tuple[int, Any], status: int, code: int) -> None:
        self.assertEqual((result[0], result[1]["errors"][0]["code"]), (status, code), result)


class SignatureTests(OAuthTestCase):
    def test_header_query_and_body(self) -> None:
        """
        A request signed by oauthlib authenticates with the oauth
        parameters in the header, the query or a form body.
        """
        code, body = self.signed("GET", "/1.1/account/verify_credentials.json")
        self.assertEqual((code, body["screen_name"]), (200, "alice"))
        code, body = self.signed(
            "GET", "/1.1/statuses/home_timeline.json", {"count": "5"},
            signature_type=SIGNATURE_TYPE_QUERY,
        )
        self.assertEqual((code, body), (200, []))
        code, body = self.signed(
            "POST", "/1.1/statuses/update.json", {"status": "signed & sealed"},
            signature_type=SIGNATURE_TYPE_BODY,
        )
        self.assertEqual((code, body["text"], body["user"]["screen_name"]),
                         (200, "signed & sealed", "alice"))
        code, body = self.signed(
            "POST", "/statuses/update.json", {"status": "in the header"},
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        )
        self.assertEqual(code, 200, body)

    def test_bad_signatures(self) -> None:
        """
        A wrong consumer secret, a wrong token secret or a parameter changed
        after signing: 32.
        """
        path = "/1.1/account/verify_credentials.json"
        self.assertCode(self.signed("GET", path, client_secret="nope"), 401, 32)
        self.assertCode(self.signed("GET", path, resource_owner_secret="nope"), 401, 32)
        client = self.client()
        uri, headers, _ = client.sign(BASE + "/1.1/statuses/home_timeline.json?count=1")
        code, content, _ = self.send("GET", uri.replace("count=1", "count=2"), headers)
        self.assertCode((code, json.loads(content)), 401, 32)

    def test_tokens(self) -> None:
        """
        An unknown or revoked token is 89; a request token is no access
        token.
        """
        path = "/1.1/account/verify_credentials.json"
        self.assertCode(self.signed("GET", path, resource_owner_key="unknown"), 401, 89)
        self.successResultOf(self.service.store.delete_token(self.token))
        self.assertCode(self.signed("GET", path), 401, 89)

    def test_timestamp_and_replay(self) -> None:
        """
        A timestamp more than five minutes off is 135; the same signed
        request twice is refused the second time.
        """
        path = "/1.1/account/verify_credentials.json"
        old = str(int(self.clock.seconds()) - 301)
        self.assertCode(self.signed("GET", path, timestamp=old), 401, 135)
        client = self.client()
        uri, headers, _ = client.sign(BASE + path)
        self.assertEqual(self.send("GET", uri, headers)[0], 200)
        code, content, _ = self.send("GET", uri, headers)
        self.assertCode((code, json.loads(content)), 401, 32)
        self.assertIn("nonce", json.loads(content)["errors"][0]["message"])

    def test_replay_after_restart(self) -> None:
        """
        Nonces are checked in memory and kept in the store behind the
        answers: a request replayed to the server started again (a new
        service on the same database) is refused too; a timestamp five
        minutes old is forgotten from memory (it is refused anyway).
        """
        path = "/1.1/account/verify_credentials.json"
        uri, headers, _ = self.client().sign(BASE + path)
        self.assertEqual(self.send("GET", uri, headers)[0], 200)
        nonces = self.service.microblog.apps.nonces
        assert nonces is not None
        self.successResultOf(ensureDeferred(nonces.flush()))
        self.assertEqual(len(nonces), 1)

        restarted = TwitterService(self.settings, self.store, self.clock, cheap_hasher())
        self.stub = StubTreq(make_twitter_web(restarted).root)
        code, content, _ = self.send("GET", uri, headers)
        self.assertCode((code, json.loads(content)), 401, 32)
        self.assertIn("nonce", json.loads(content)["errors"][0]["message"])
        # Another nonce passes, once.
        uri, headers, _ = self.client().sign(BASE + path)
        self.assertEqual(self.send("GET", uri, headers)[0], 200)
        self.assertEqual(self.send("GET", uri, headers)[0], 401)

        restarted_nonces = restarted.microblog.apps.nonces
        assert restarted_nonces is not None
        self.assertEqual(len(restarted_nonces), 2)
        self.clock.advance(301)
        uri, headers, _ = self.client().sign(BASE + path)
        self.assertEqual(self.send("GET", uri, headers)[0], 200)
        self.assertEqual(len(restarted_nonces), 1)

    def test_source_is_the_app(self) -> None:
        """
        A post made through an app has the app's name as its ``source``
        (HTML-escaped, as the API returns sources); over Basic, "web".
        """
        key, secret = self.successResultOf(
            self.provider.create_app(self.alice, 'Tweet & <b>"Share"</b>')
        )
        token, token_secret = self.successResultOf(
            self.provider.create_access_token(key, self.alice)
        )
        code, status = self.signed(
            "POST", "/1.1/statuses/update.json", {"status": "through the app"},
            client_key=key, client_secret=secret,
            resource_owner_key=token, resource_owner_secret=token_secret,
        )
        self.assertEqual(code, 200, status)
        self.assertEqual(
            status["source"], "Tweet &amp; &lt;b&gt;&quot;Share&quot;&lt;/b&gt;"
        )
        code, shown = self.signed("GET", f"/1.1/statuses/show/{status['id_str']}.json")
        self.assertEqual((code, shown["source"]), (200, status["source"]))
        self.assertEqual(self.post("alice", "over Basic")["source"], "web")

    def test_public_url_not_host(self) -> None:
        """
        Signatures are checked against the configured public URL: a request
        that arrives under another host name but was signed for the public
        URL passes; one signed for the other name does not.
        """
        path = "/1.1/account/verify_credentials.json"
        code, body = self.signed("GET", path, send_to="http://10.0.0.1:9")
        self.assertEqual(code, 200, body)
        self.assertCode(
            self.signed("GET", path, send_to="http://10.0.0.1:9", sign_for="http://10.0.0.1:9"),
            401, 32,
        )


class FlowTests(OAuthTestCase):
    def request_token(self, callback: str, prefix: str = "") -> dict[str, str]:
        client = self.client(resource_owner_key=None, resource_owner_secret=None,
                             callback_uri=callback)
        uri, headers, _ = client.sign(BASE + prefix + "/oauth/request_token", "POST")
        code, content, _ = self.send("POST", uri, headers)
        self.assertEqual(code, 200, content)
        answer = {k: v[0] for k, v in parse_qs(content.decode()).items()}
        self.assertEqual(answer["oauth_callback_confirmed"], "true")
        return answer

    def authorize(self, token: str, action: str = "allow",
                  password: str = PASSWORDS["alice"]) -> tuple[int, bytes, Any]:
        code, page, response = self.send("GET", f"{BASE}/oauth/authorize?oauth_token={token}")
        self.assertEqual(code, 200)
        self.assertIn(b"Test App", page)
        self.assertEqual(response.headers.getRawHeaders("x-frame-options"), ["DENY"])
        csrf = re.search(rb"name='csrf' value='([0-9a-f]+)'", page).group(1).decode()
        form = {"oauth_token": token, "csrf": csrf, "session[username_or_email]": "alice",
                "session[password]": password, action: "1"}
        return self.send("POST", f"{BASE}/oauth/authorize", FORM, urlencode(form))

    def access_token(self, token: dict[str, str], verifier: str) -> tuple[int, bytes]:
        client = self.client(resource_owner_key=token["oauth_token"],
                             resource_owner_secret=token["oauth_token_secret"],
                             verifier=verifier)
        uri, headers, _ = client.sign(BASE + "/oauth/access_token", "POST")
        code, content, _ = self.send("POST", uri, headers)
        return code, content

    def test_three_legged(self) -> None:
        """
        request_token, the authorize page (sign in, approve), the redirect
        with the verifier, access_token: the new token works.  The request
        token is used up.
        """
        token = self.request_token("https://app.example/done?x=1")
        code, _, response = self.authorize(token["oauth_token"])
        self.assertEqual(code, 302)
        location = response.headers.getRawHeaders("location")[0]
        self.assertTrue(location.startswith("https://app.example/done?x=1&"), location)
        query = parse_qs(urlsplit(location).query)
        self.assertEqual(query["oauth_token"], [token["oauth_token"]])
        code, content = self.access_token(token, query["oauth_verifier"][0])
        self.assertEqual(code, 200, content)
        answer = {k: v[0] for k, v in parse_qs(content.decode()).items()}
        self.assertEqual(answer["screen_name"], "alice")
        code, body = self.signed("GET", "/1.1/account/verify_credentials.json",
                                 resource_owner_key=answer["oauth_token"],
                                 resource_owner_secret=answer["oauth_token_secret"])
        self.assertEqual((code, body["screen_name"]), (200, "alice"))
        self.assertEqual(self.access_token(token, query["oauth_verifier"][0])[0], 401)

    def test_page_in_the_site_look(self) -> None:
        """
        The authorize page is one of the site's pages (its template and
        stylesheet); its form may lead only here and on to the app's own
        callback, and it may not be framed.
        """
        token = self.request_token("https://app.example/done")
        code, page, response = self.send(
            "GET", f"{BASE}/oauth/authorize?oauth_token={token['oauth_token']}"
        )
        self.assertEqual(code, 200)
        self.assertIn(b'<link rel="stylesheet" href="/static/site.css">', page)
        self.assertIn(b"<h1>Authorize Test App</h1>", page)
        csp = response.headers.getRawHeaders("content-security-policy")[0]
        self.assertIn("form-action 'self' https://app.example;", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        pin = self.request_token("oob")
        _, _, response = self.send(
            "GET", f"{BASE}/oauth/authorize?oauth_token={pin['oauth_token']}"
        )
        csp = response.headers.getRawHeaders("content-security-policy")[0]
        self.assertIn("form-action 'self';", csp)

    def test_wrong_password_and_deny(self) -> None:
        """
        A wrong password shows the page again; cancel redirects with
        ``denied`` and the token is gone.
        """
        token = self.request_token("https://app.example/done")
        code, page, _ = self.authorize(token["oauth_token"], password="wrong password")
        self.assertEqual(code, 200)
        self.assertIn(b"do not match", page)
        code, _, response = self.authorize(token["oauth_token"], action="deny")
        self.assertEqual(code, 302)
        self.assertIn("denied=", response.headers.getRawHeaders("location")[0])
        code, page, _ = self.send("GET", f"{BASE}/oauth/authorize?oauth_token="
                                  + token["oauth_token"])
        self.assertEqual(code, 400)

    def test_pin(self) -> None:
        """
        With oob the page shows a PIN, which is the verifier; also under
        /api/oauth/.
        """
        token = self.request_token("oob", prefix="/api")
        code, page, _ = self.authorize(token["oauth_token"])
        pin = re.search(rb"<code>([0-9a-f]+)</code>", page).group(1).decode()
        self.assertEqual(self.access_token(token, pin)[0], 200)

    def test_stale_csrf(self) -> None:
        """
        The authorize form without its CSRF token is refused.
        """
        token = self.request_token("oob")
        form = {"oauth_token": token["oauth_token"], "csrf": "0" * 64,
                "session[username_or_email]": "alice",
                "session[password]": PASSWORDS["alice"], "allow": "1"}
        code, _, _ = self.send("POST", f"{BASE}/oauth/authorize", FORM, urlencode(form))
        self.assertEqual(code, 403)

    def test_xauth(self) -> None:
        """
        xAuth: the app sends the user's handle and password, signed, and
        gets an access token; a wrong password is 32.
        """
        for password, expected in ((PASSWORDS["alice"], 200), ("wrong", 401)):
            client = self.client(resource_owner_key=None, resource_owner_secret=None)
            body = urlencode({"x_auth_mode": "client_auth", "x_auth_username": "alice",
                              "x_auth_password": password})
            uri, headers, body = client.sign(BASE + "/oauth/access_token", "POST", body,
                                             dict(FORM))
            code, content, _ = self.send("POST", uri, headers, body)
            self.assertEqual(code, expected, content)
            if expected == 200:
                self.assertIn(b"screen_name=alice", content)

    def test_bearer(self) -> None:
        """
        App-only bearer tokens read public data, not a user's; invalidated
        they stop working; bad app credentials are refused.
        """
        basic = {"Authorization": "Basic " + _basic(self.key, self.secret), **FORM}
        code, content, _ = self.send("POST", f"{BASE}/oauth2/token", basic,
                                     "grant_type=client_credentials")
        self.assertEqual(code, 200, content)
        bearer = json.loads(content)["access_token"]
        auth = {"Authorization": f"Bearer {bearer}"}
        self.assertEqual(self.send(
            "GET", f"{BASE}/1.1/statuses/user_timeline.json?screen_name=alice", auth)[0], 200)
        code, content, _ = self.send("GET", f"{BASE}/1.1/statuses/home_timeline.json", auth)
        self.assertCode((code, json.loads(content)), 403, 220)
        code, content, _ = self.send("POST", f"{BASE}/oauth2/invalidate_token", basic,
                                     urlencode({"access_token": bearer}))
        self.assertEqual(code, 200, content)
        code, content, _ = self.send(
            "GET", f"{BASE}/1.1/statuses/user_timeline.json?screen_name=alice", auth)
        self.assertCode((code, json.loads(content)), 401, 89)
        wrong = {"Authorization": "Basic " + _basic(self.key, "nope"), **FORM}
        code, content, _ = self.send("POST", f"{BASE}/oauth2/token", wrong,
                                     "grant_type=client_credentials")
        self.assertCode((code, json.loads(content)), 403, 99)


class KeyTests(OAuthTestCase):
    def test_keys_are_letters_and_digits(self) -> None:
        """
        Keys and secrets are letters and digits only: pasted on a command
        line (``distwit token create --consumer-key KEY``) one never starts
        with "-", which argparse would take for an option (1 in 64 of them
        did); long enough all the same.
        """
        from distwit.api.oauth1 import new_key, new_secret

        keys = [new_key() for _ in range(2000)]
        secrets_ = [new_secret() for _ in range(200)]
        for value in keys + secrets_:
            self.assertTrue(value.isascii() and value.isalnum(), value)
        self.assertEqual({len(k) for k in keys}, {24})
        self.assertEqual({len(s) for s in secrets_}, {40})
        self.assertEqual(len(set(keys)), len(keys))


class CommandLineTests(OAuthTestCase):
    def test_app_and_token_commands(self) -> None:
        """
        distwit app create and distwit token create print credentials one
        per line that sign requests the server takes; unknown owners, users
        and keys are errors with exit status 1.
        """
        data = self.settings.data
        database = "sqlite:" + os.path.join(data, "db.sqlite3")
        done = run_cli("app", "create", "Scripted", "--owner", "bob",
                       "--data", data, "--database", database)
        self.assertEqual(done.returncode, 0, done.stderr)
        app = dict(line.split("=", 1) for line in done.stdout.splitlines())
        self.assertEqual(set(app), {"consumer_key", "consumer_secret"})
        done = run_cli("token", "create", "--consumer-key", app["consumer_key"],
                       "--user", "bob", "--data", data, "--database", database)
        self.assertEqual(done.returncode, 0, done.stderr)
        token = dict(line.split("=", 1) for line in done.stdout.splitlines())
        self.assertEqual(set(token), {"access_token", "access_token_secret"})
        self.key, self.secret = app["consumer_key"], app["consumer_secret"]
        code, body = self.signed(
            "GET", "/1.1/account/verify_credentials.json",
            resource_owner_key=token["access_token"],
            resource_owner_secret=token["access_token_secret"],
        )
        self.assertEqual((code, body["screen_name"]), (200, "bob"))
        for args, message in [
            (["app", "create", "X", "--owner", "nobody"], "nobody"),
            (["token", "create", "--consumer-key", "nope", "--user", "bob"], "nope"),
        ]:
            done = run_cli(*args, "--data", data, "--database", database)
            self.assertEqual(done.returncode, 1)
            self.assertIn(message, done.stderr)


class VerifierTests(SynchronousTestCase):
    def test_same_as_oauthlib(self) -> None:
        """
        The HMAC verifiers (oauthlib's steps, escapes kept) agree with
        oauthlib's own on good and bad signatures, with parameters that
        need escaping, repeat, or are empty, for both hashes; twice over
        (the second time from the kept escapes).
        """
        from oauthlib.oauth1.rfc5849 import signature as oauth_signature

        from distwit.api.oauth1 import _VERIFY, _Signed

        oauthlib_verify = {"HMAC-SHA1": oauth_signature.verify_hmac_sha1,
                           "HMAC-SHA256": oauth_signature.verify_hmac_sha256}
        cases = [
            ("GET", "http://h.example/1.1/statuses/home_timeline.json?count=20",
             [("count", "20"), ("oauth_nonce", "n 1"), ("oauth_token", "t")]),
            ("POST", "https://h.example:8443/1.1/statuses/update.json",
             [("status", "héllo & ~ wörld+/?="), ("a", ""), ("a", "x"), ("oauth_nonce", "2")]),
            ("GET", "http://H.Example:80/path%20with%20space?x=%E2%82%AC", [("x", "€")]),
        ]
        for round_ in range(2):
            for method in ("HMAC-SHA1", "HMAC-SHA256"):
                for http_method, uri, params in cases:
                    client = Client("key", client_secret="cs", resource_owner_key="t",
                                    resource_owner_secret="ts",
                                    signature_method=method)
                    base = oauth_signature.signature_base_string(
                        http_method, oauth_signature.base_string_uri(uri),
                        oauth_signature.normalize_parameters(params))
                    good = (
                        oauth_signature.sign_hmac_sha1_with_client(base, client)
                        if method == "HMAC-SHA1"
                        else oauth_signature.sign_hmac_sha256_with_client(base, client))
                    for signature in (good, good[:-2] + "AA", ""):
                        for secret in ("cs", "other"):
                            signed = _Signed(uri, http_method, params, signature)
                            self.assertEqual(
                                _VERIFY[method](signed, secret, "ts"),
                                oauthlib_verify[method](signed, secret, "ts"),
                                (round_, method, uri, signature, secret),
                            )
                            self.assertEqual(_VERIFY[method](signed, secret, "ts"),
                                             signature == good and secret == "cs")
