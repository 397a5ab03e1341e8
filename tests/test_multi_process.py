"""
Several twitter processes, one server (docs/design/several-processes.md):
two real ``twistd distwit --role=twitter`` processes on one PostgreSQL
database and one Redis, behind a real nginx started from
``conf/multi/nginx.conf``, in a federation of real processes (a registry, a
ping server, another twitter server).

Needs ``DISTWIT_TEST_POSTGRES`` (a database these tests may wipe), a Redis
at ``DISTWIT_TEST_REDIS`` (default ``redis://127.0.0.1:6379/0``; each test
uses keys of its own prefix and removes them) and nginx; .ci/run provides
all three.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlsplit

from oauthlib.oauth1 import Client
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.device_channels import code_in
from tests.device_channels import sent as device_sent
from tests.processes import ROOT, ServerProcess, _decode, free_port, run_cli
from tests.support import POSTGRES_SKIP, postgres_url, wipe_postgres
from tests.test_federation import PASSWORD, Federation, acct, call, home, wait_for

REDIS_VARIABLE = "DISTWIT_TEST_REDIS"

#: The wrong passwords that lock an account for an address.
from distwit.core.microblog import MAX_FAILED_SIGN_INS  # noqa: E402


def redis_url() -> str:
    return os.environ.get(REDIS_VARIABLE) or "redis://127.0.0.1:6379/0"


def redis_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 6379), timeout=3) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_forget(url: str, prefix: str) -> None:
    """
    Remove every key of ``prefix`` (a test's), by a Lua script over RESP.
    """
    parts = urlsplit(url)
    script = (
        "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 1"
    )
    db = parts.path.strip("/") or "0"
    words = [b"EVAL", script.encode(), b"0", (prefix + "*").encode()]
    command = b"*%d\r\n" % len(words) + b"".join(
        b"$%d\r\n%s\r\n" % (len(w), w) for w in words
    )
    select = b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%s\r\n" % (len(db), db.encode())
    with socket.create_connection((parts.hostname or "", parts.port or 6379), timeout=5) as s:
        s.sendall(select + command)
        s.recv(64)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None
    )


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: Any) -> None:
        self.status, self.headers, self.body = status, headers, body

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body!r})"


def ask(base: str, method: str, path: str, *, auth: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None, data: dict[str, Any] | None = None,
        timeout: float = 30) -> Answer:
    body = None if data is None else urllib.parse.urlencode(data).encode()
    request = urllib.request.Request(base + path, data=body, method=method)
    if auth is not None:
        import base64

        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", "Basic " + token)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()},
                          _decode(response.read()))
    except urllib.error.HTTPError as e:
        return Answer(e.code, {k.lower(): v for k, v in e.headers.items()}, _decode(e.read()))


class Front:
    """
    nginx from ``conf/multi/nginx.conf``, its ports replaced by the test's.
    """

    def __init__(self, folder: str, port: int, workers: list[int]) -> None:
        binary = nginx_binary()
        assert binary is not None
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(ROOT, "conf", "multi", "nginx.conf")) as f:
            text = f.read()
        upstreams = "".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n" for p in workers
        )
        text = re.sub(r"(        server 127\.0\.0\.1:820[1-9][^\n]*\n)+", upstreams, text)
        text = text.replace("listen 127.0.0.1:8200;", f"listen 127.0.0.1:{port};")
        config = os.path.join(folder, "nginx.conf")
        with open(config, "w") as f:
            f.write(text)
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = os.path.join(folder, "nginx.log")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [binary, "-e", "stderr", "-p", folder, "-c", config],
            stdout=self._log, stderr=subprocess.STDOUT,
        )

        def up() -> bool:
            if self.process.poll() is not None:
                with open(self.log_path) as f:
                    raise AssertionError("nginx exited: " + f.read())
            try:
                return ask(self.url, "GET", "/health", timeout=5).status == 200
            except OSError:
                return False

        wait_for(up, 30, "nginx answers /health")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self._log.close()


class BigServer:
    """
    A federation (registry, one ping server) and in it one server made of
    two twitter processes on PostgreSQL and Redis behind nginx; users alice
    and bob.
    """

    def __init__(self, case: SynchronousTestCase, *, interval: float = 1.0,
                 long_poll: float = 0.0, settings: str = "",
                 users: tuple[str, ...] = ("alice", "bob"), preamble: str = "") -> None:
        database = postgres_url()
        if database is None:
            raise SkipTest(POSTGRES_SKIP)
        redis = redis_url()
        if not redis_answers(redis):
            raise SkipTest(f"no Redis answers at {redis} (set {REDIS_VARIABLE}; .ci/run does)")
        if nginx_binary() is None:
            raise SkipTest("nginx is not installed (.ci/run installs it from Debian)")
        wipe_postgres(database)
        self.case = case
        self.federation = Federation(case, pings=1)
        base = self.federation.base
        prefix = f"distwit-test-{secrets.token_hex(6)}:"
        case.addCleanup(redis_forget, redis, prefix)
        self.data = os.path.join(base, "big")
        os.makedirs(self.data)
        config = os.path.join(base, "big.ini")
        with open(config, "w") as f:
            f.write(
                "[twitter]\n"
                # Behind the front every client has its address.
                "rate_limit_address_reads = 1000000\n"
                "rate_limit_address_writes = 1000000\n" + settings
            )
        for handle in users:
            done = run_cli("adduser", "--create", handle, "--data", self.data,
                           "--database", database, stdin=PASSWORD + "\n")
            case.assertEqual(done.returncode, 0, done.stderr)
        self.front_port = free_port()
        self.front_url = f"http://127.0.0.1:{self.front_port}"
        self.options = (
            "--config", config,
            "--role", "twitter",
            "--database", database,
            "--redis", redis + ("&" if "?" in redis else "?") + "prefix=" + prefix,
            "--registry", self.federation.registry.url,
            "--ping-interval", str(interval),
            "--long-poll", str(long_poll),
            "--public-url", self.front_url,
        )
        self.database = database
        self.preamble = preamble
        # One after the other: the first makes the keys of the data folder.
        self.workers = [self.worker(), self.worker()]
        self.front = Front(os.path.join(base, "front"), self.front_port,
                           [w.port for w in self.workers])
        case.addCleanup(self.front.stop)

    def worker(self) -> ServerProcess:
        server = ServerProcess(self.data, *self.options, preamble=self.preamble)
        self.case.addCleanup(server.stop)
        return server

    def leader(self, timeout: float = 30) -> ServerProcess:
        """
        The worker that says it is the leader (in its log).
        """
        def found() -> ServerProcess | None:
            leading = [w for w in self.workers
                       if w.process.poll() is None and "is now the leader" in w.log_text()]
            return leading[0] if len(leading) == 1 else None

        leader, _ = wait_for(found, timeout, "one leader", step=0.05)
        return leader  # type: ignore[no-any-return]

    def other(self, worker: ServerProcess) -> ServerProcess:
        return next(w for w in self.workers if w is not worker)


def post(server: ServerProcess, user: str, text: str) -> dict[str, Any]:
    return call(server, "POST", "/1.1/statuses/update.json", user, status=text)  # type: ignore[no-any-return]


class SeveralProcessesTests(SynchronousTestCase):
    def test_post_seen_through_the_other_at_once(self) -> None:
        """
        A post made through one process is in the home timeline read
        through the other, and through the front, with no wait.
        """
        big = BigServer(self)
        a, b = big.workers
        call(b, "POST", "/1.1/friendships/create.json", "bob", screen_name="alice")
        posted = post(a, "alice", "through the first process")
        self.assertIn(posted["id"], [s["id"] for s in home(b, "bob")])
        through_front = ask(big.front_url, "GET", "/1.1/statuses/home_timeline.json",
                            auth=("bob", PASSWORD))
        self.assertEqual(through_front.status, 200, through_front)
        self.assertEqual(through_front.body[0]["id"], posted["id"])

    def test_ids_unique_and_ordered(self) -> None:
        """
        Status ids given by both processes at once never collide, and one
        after the other they grow.
        """
        big = BigServer(self)
        a, b = big.workers
        ids: list[int] = []
        errors: list[BaseException] = []

        def poster(server: ServerProcess, user: str) -> None:
            try:
                for i in range(15):
                    ids.append(post(server, user, f"{user} at once {i} ({server.port})")["id"])
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=poster, args=(server, user))
                   for server, user in ((a, "alice"), (b, "bob"), (a, "bob"), (b, "alice"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(len(ids), 60)
        self.assertEqual(len(set(ids)), 60)
        in_turn = [post(server, "alice", f"in turn {i}")["id"]
                   for i, server in enumerate([a, b] * 5)]
        self.assertEqual(in_turn, sorted(in_turn))
        self.assertEqual(len(set(in_turn)), 10)
        self.assertGreater(in_turn[0], max(ids))

    def test_rate_limit_across_processes(self) -> None:
        """
        A user's allowance for an endpoint is one, whichever process
        answers: past it, 429 from both.
        """
        big = BigServer(self, settings="rate_limit_reads = 6\n")
        a, b = big.workers
        path = "/1.1/account/verify_credentials.json"
        remaining = []
        for i in range(6):
            answer = ask((a, b)[i % 2].url, "GET", path, auth=("alice", PASSWORD))
            self.assertEqual(answer.status, 200, answer)
            remaining.append(int(answer.headers["x-rate-limit-remaining"]))
        self.assertEqual(remaining, [5, 4, 3, 2, 1, 0])
        for server in (a, b):
            answer = ask(server.url, "GET", path, auth=("alice", PASSWORD))
            self.assertEqual(answer.status, 429, answer)
            self.assertEqual(answer.body["errors"][0]["code"], 88)
        # Another user's allowance is untouched.
        self.assertEqual(ask(b.url, "GET", path, auth=("bob", PASSWORD)).status, 200)

    def test_wrong_password_lock_across_processes(self) -> None:
        """
        Wrong passwords counted by both processes lock the account (for
        that address) on both; another account is not locked.
        """
        big = BigServer(self)
        a, b = big.workers
        path = "/1.1/account/verify_credentials.json"
        for i in range(MAX_FAILED_SIGN_INS):
            answer = ask((a, b)[i % 2].url, "GET", path, auth=("alice", f"wrong {i}"))
            self.assertEqual(answer.status, 401, answer)
        for server in (a, b):
            answer = ask(server.url, "GET", path, auth=("alice", PASSWORD))
            self.assertEqual(answer.status, 403, answer)
            self.assertEqual(answer.body["errors"][0]["code"], 326, answer)
        self.assertEqual(ask(a.url, "GET", path, auth=("bob", PASSWORD)).status, 200)

    def test_oauth_nonce_replay_across_processes(self) -> None:
        """
        An OAuth request accepted by one process is refused when replayed,
        word for word, to the other.
        """
        big = BigServer(self)
        a, b = big.workers
        app = run_cli("app", "create", "Replayed", "--owner", "alice", "--data", big.data,
                      "--database", big.database)
        self.assertEqual(app.returncode, 0, app.stderr)
        consumer = dict(line.split("=", 1) for line in app.stdout.split())
        token = run_cli("token", "create", "--consumer-key", consumer["consumer_key"],
                        "--user", "alice", "--data", big.data, "--database", big.database)
        self.assertEqual(token.returncode, 0, token.stderr)
        access = dict(line.split("=", 1) for line in token.stdout.split())
        client = Client(consumer["consumer_key"], consumer["consumer_secret"],
                        access["access_token"], access["access_token_secret"])
        path = "/1.1/account/verify_credentials.json"
        # Signed for the public URL (the front's), which both processes use.
        _, headers, _ = client.sign(big.front_url + path, "GET")
        first = ask(a.url, "GET", path, headers={"Authorization": headers["Authorization"]})
        self.assertEqual(first.status, 200, first)
        self.assertEqual(first.body["screen_name"], "alice")
        again = ask(b.url, "GET", path, headers={"Authorization": headers["Authorization"]})
        self.assertEqual(again.status, 401, again)
        self.assertIn("nonce", again.body["errors"][0]["message"])

    def test_long_poll_woken_through_the_other(self) -> None:
        """
        A post through the process that is not the leader wakes the
        leader's report at once: a follower's server waiting in a long-poll
        at the ping server has it long before the next round (every 10 s).
        """
        big = BigServer(self, interval=10.0, long_poll=20.0)
        leader = big.leader()
        follower = big.federation.twitter("s2", ["carol"], interval=10.0, long_poll=20.0)
        alice = "alice@" + big.front_url.split("//", 1)[1]
        call(follower, "POST", "/1.1/friendships/create.json", "carol", screen_name=alice)
        # The subscription reaches the ping server (the leader's next round
        # or report); then the follower's long-poll waits there.
        first = post(big.other(leader), "alice", "the first, to see the way is open")
        wait_for(lambda: first["text"] in [s["text"] for s in home(follower, "carol")], 60,
                 "the first post at the follower")
        time.sleep(0.5)
        start = time.monotonic()
        post(big.other(leader), "alice", "woken through the other process")
        _, took = wait_for(
            lambda: "woken through the other process"
            in [s["text"] for s in home(follower, "carol")],
            9, "the post at the follower before the next round",
        )
        self.assertLess(time.monotonic() - start, 9)

    def test_leader_killed_taken_over(self) -> None:
        """
        kill -9 of the process that reports and copies: the other takes
        over within one ping interval; a remote author's posts keep
        arriving, each once; local posts keep being reported.
        """
        interval = 2.0
        big = BigServer(self, interval=interval)
        s2 = big.federation.twitter("s2", ["dave", "carol"], interval=1.0)
        leader = big.leader()
        survivor = big.other(leader)
        call(survivor, "POST", "/1.1/friendships/create.json", "alice",
             screen_name=acct("dave", s2))
        alice = "alice@" + big.front_url.split("//", 1)[1]
        call(s2, "POST", "/1.1/friendships/create.json", "carol", screen_name=alice)
        before = [post(s2, "dave", f"before {i}")["text"] for i in range(3)]

        def alice_has(texts: list[str]) -> bool:
            seen = [s["text"] for s in home(survivor, "alice")]
            return all(t in seen for t in texts)

        wait_for(lambda: alice_has(before), 30, "dave's first posts at alice")
        leader.kill()
        killed = time.monotonic()
        during = [post(s2, "dave", f"during {i}")["text"] for i in range(3)]
        wait_for(lambda: "is now the leader" in survivor.log_text(), 3 * interval,
                 "the survivor takes over")
        took_over = time.monotonic() - killed
        # Within one interval of its tries (and the time of a try).
        self.assertLess(took_over, interval + 1.5)
        after = [post(s2, "dave", f"after {i}")["text"] for i in range(3)]
        wait_for(lambda: alice_has(before + during + after), 30,
                 "dave's posts at alice after the takeover")
        texts = [s["text"] for s in home(survivor, "alice") if s["user"]["screen_name"]
                 .startswith("dave")]
        self.assertEqual(sorted(texts), sorted(before + during + after))
        # Reports go on: alice's post through the survivor reaches carol.
        mine = post(survivor, "alice", "after the takeover")["text"]
        wait_for(lambda: mine in [s["text"] for s in home(s2, "carol")], 30,
                 "alice's post at carol")
        # And through the front, which leaves the dead worker out.
        through_front = ask(big.front_url, "GET", "/1.1/statuses/home_timeline.json",
                            auth=("alice", PASSWORD))
        self.assertEqual(through_front.status, 200, through_front)

    def test_devices_sent_once_by_the_leader(self) -> None:
        """
        Phones with several processes: whichever process the requests go
        through, the leader alone sends to the devices, each message once
        (the code, then alice's post to bob's phone); a text from the
        phone taken by the process that is not the leader is a post.
        """
        sent_log = os.path.abspath(self.mktemp() + "-sent.jsonl")
        open(sent_log, "w").close()
        big = BigServer(self, preamble=(
            f"import tests.device_channels as c; c.install(['sms'], {sent_log!r})"
        ))
        leader = big.leader()
        other = big.other(leader)
        call(other, "POST", "/1.1/account/devices/add.json", "bob",
             kind="sms", address="+15555550123")

        def messages() -> list[dict[str, Any]]:
            return device_sent(sent_log)

        codes = wait_for(lambda: [code_in(m) for m in messages() if code_in(m)], 30,
                         "the verification code")[0]
        call(other, "POST", "/1.1/account/devices/verify.json", "bob", kind="sms", code=codes[0])
        call(other, "POST", "/1.1/account/update_delivery_device.json", "bob", device="sms")
        call(other, "POST", "/1.1/friendships/create.json", "bob", screen_name="alice")
        call(other, "POST", "/1.1/notifications/follow.json", "bob", screen_name="alice")
        post(other, "alice", "to every phone once")
        wait_for(lambda: any("to every phone once" in m["text"] for m in messages()), 30,
                 "alice's post on bob's phone")
        # Rounds of the senders later (the next post has arrived): nothing
        # was sent again.
        post(other, "alice", "and the next one")
        wait_for(lambda: any("and the next one" in m["text"] for m in messages()), 30,
                 "alice's next post on bob's phone")
        texts = [m["text"] for m in messages()]
        self.assertEqual(len([t for t in texts if "to every phone once" in t]), 1, texts)
        self.assertEqual(len([t for t in texts if code_in({"text": t})]), 1, texts)
        self.assertEqual({m["pid"] for m in messages()}, {leader.process.pid})
        # The phone writes back through the process that is not the leader.
        answer = urllib.request.urlopen(urllib.request.Request(
            other.url + "/channels/test-sms",
            data=urllib.parse.urlencode(
                {"address": "+15555550123", "text": "texted from my phone"}
            ).encode(),
        ), timeout=30)
        self.assertEqual(answer.status, 200)
        timeline = call(leader, "GET", "/1.1/statuses/user_timeline.json", "bob")
        self.assertEqual(timeline[0]["text"], "texted from my phone")

    def test_openid_connect_across_processes(self) -> None:
        """
        A code made by one process is exchanged at the other; the token it
        bought answers at both; the code used again revokes it at both.
        """
        from tests.test_oidc_provider import Browser, HandMadeClient, callback_parameters

        big = BigServer(self)
        a, b = big.workers
        client = HandMadeClient(a)
        url = client.authorization_url()
        state = parse_qs(urlsplit(url).query)["state"][0]
        browser = Browser(a)
        consent = browser.consent(url)
        answer = browser.decide(consent, "approve")
        self.assertEqual(answer.status_code, 303, answer.text)
        code = callback_parameters(answer.headers["Location"])["code"]
        client.server = b
        tokens = client.token(code, client.requests[state][1])
        self.assertEqual(tokens.status_code, 200, tokens.text)
        access = tokens.json()["access_token"]
        for server in (a, b):
            info = ask(server.url, "GET", "/oidc/userinfo",
                       headers={"Authorization": "Bearer " + access})
            self.assertEqual(info.status, 200, info)
        client.server = a
        again = client.token(code, client.requests[state][1])
        self.assertEqual(again.status_code, 400, again.text)
        for server in (a, b):
            info = ask(server.url, "GET", "/oidc/userinfo",
                       headers={"Authorization": "Bearer " + access})
            self.assertEqual(info.status, 401, info)

    def test_password_change_reaches_the_other_process(self) -> None:
        """
        A password changed on the settings page through one process stops
        working through the other at once, though the other had just
        accepted it (and remembered it); the new one works there.
        """
        from tests.test_oidc_provider import Browser, form_to

        big = BigServer(self)
        a, b = big.workers
        path = "/1.1/account/verify_credentials.json"
        self.assertEqual(ask(b.url, "GET", path, auth=("alice", PASSWORD)).status, 200)
        browser = Browser(a)
        signed_in = browser.sign_in(handle="alice", password=PASSWORD)
        self.assertEqual(signed_in.status_code, 303, signed_in.text)
        settings = browser.get("/settings")
        self.assertEqual(settings.status_code, 200, settings.text)
        form = form_to(settings.text, "/settings/password")
        new = "an entirely new password"
        changed = browser.post("/settings/password", dict(
            form.fields, current=PASSWORD, password=new, password_again=new,
        ))
        self.assertEqual(changed.status_code, 303, changed.text)
        self.assertEqual(ask(b.url, "GET", path, auth=("alice", PASSWORD)).status, 401)
        self.assertEqual(ask(b.url, "GET", path, auth=("alice", new)).status, 200)
