"""
Chaos: a federation of real processes (three twitter servers, two ping
servers, a registry) under a steady stream of posts, deletes, follows and
unfollows, while one role after another is killed with SIGKILL at a random
moment and restarted on the same port and data after a short random pause.

Every action the server acknowledged (HTTP 200) is recorded.  At the end
the chaos stops, everything is up, and once the federation has settled
every server is read through its API: each acknowledged post is on its
author's server and in the home timeline of each follower exactly once,
each acknowledged delete is gone everywhere, each acknowledged follow (and
unfollow) is what ``friends/list`` shows on the follower's server and
``followers/list`` on the followee's (follow notices go through the
durable outbox), and each acknowledged mention is in the mentioned user's
``mentions_timeline`` exactly once.  An action that got no answer,
or an error, may or may not have happened; it is left out of the checks
until a later acknowledged action settles the same thing.

One user on each server (the "reader") follows every other user from the
start and never unfollows, so every server copies every author's posts
and a follow made during the chaos finds the author's whole history there.
A fourth user on each server, whom nobody follows, mentions users of the
other servers (about one post a second): those posts reach them only as
mention notices.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import shutil
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from benchmarks.harness import Result, Workspace, basic, wait_until
from tests.processes import ServerProcess

SERVERS = ("s1", "s2", "s3")
#: Users on each server: the first is the reader, the others churn follows.
HANDLES = {"s1": ["ann", "amy", "ava"], "s2": ["bob", "ben", "bea"],
           "s3": ["cal", "cat", "cy"]}
#: A user on each server whom nobody follows, who mentions users of the
#: other servers: each mention reaches them only as a notice.
MENTIONERS = {"s1": "moe", "s2": "max", "s3": "mia"}
PAGE = 200


@dataclass
class User:
    handle: str
    server: str

    @property
    def reader(self) -> bool:
        return HANDLES[self.server][0] == self.handle


@dataclass
class Ledger:
    """
    What the servers acknowledged, and what is uncertain.  Guarded by
    ``lock``; each user is driven by one client thread.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: token -> (author handle, id on the author's server)
    posts: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: tokens whose post or delete got no acknowledgement: left out of checks
    uncertain: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    #: (follower, followee) -> following?, as last acknowledged
    follows: dict[tuple[str, str], bool] = field(default_factory=dict)
    #: pairs whose last follow or unfollow got no acknowledgement
    unsure_follows: set[tuple[str, str]] = field(default_factory=set)
    #: token -> the handle its post mentions (a user of another server)
    mentions: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {
        "posts": 0, "deletes": 0, "follows": 0, "unfollows": 0, "mentions": 0,
        "unacknowledged": 0})


class Federation:
    """
    The six processes, each restartable on its port and data folder.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.roles: dict[str, ServerProcess] = {}
        self.names: dict[str, str] = {}
        self.lock = threading.Lock()
        self.failed_starts: list[str] = []
        registry = self._start("registry", "--role", "registry")
        for i in range(2):
            self._start(f"ping{i}", "--role", "ping", "--registry", registry.url)
        wait_until(lambda: len(registry.request("GET", "/registry/pings")[1]["pings"]) == 2,
                   30, step=0.1)
        for name in SERVERS:
            self._start(name, "--role", "twitter", "--registry", registry.url,
                        "--ping-interval", "1", users=[*HANDLES[name], MENTIONERS[name]])

    def _start(self, role: str, *options: str, users: list[str] | None = None
               ) -> ServerProcess:
        server = self.workspace.server(f"chaos-{role}", *options, users=users or [])
        self.roles[role] = server
        return server

    def url(self, role: str) -> str:
        return self.roles[role].url

    def authority(self, server: str) -> str:
        return self.url(server).split("//", 1)[1]

    def kill(self, role: str) -> None:
        with self.lock:
            self.roles[role].kill()

    def restart(self, role: str) -> None:
        with self.lock:
            old = self.roles[role]
            if old.process.poll() is None:
                return
            # The new process writes the same log file: keep the old one.
            for n in itertools.count(1):
                kept = f"{old.log_path}.{n}"
                if not os.path.exists(kept):
                    os.rename(old.log_path, kept)
                    break
            # A failed start is retried (the shared virtualenv may be being
            # reinstalled under us) and counted; the third failure is final.
            for attempt in range(3):
                try:
                    new = ServerProcess(old.data, *old.options, port=old.port)
                    break
                except AssertionError as e:
                    self.failed_starts.append(f"{role}: {str(e)[-300:]}")
                    if attempt == 2:
                        raise
                    time.sleep(5)
            self.workspace.processes.append(new)
            self.roles[role] = new

    def down(self) -> list[str]:
        return [role for role, p in self.roles.items() if p.process.poll() is not None]


class Client:
    """
    One keep-alive connection per server; a failed request drops it.
    """

    def __init__(self, federation: Federation, timeout: float = 30) -> None:
        self.federation = federation
        self.timeout = timeout
        self.connections: dict[str, http.client.HTTPConnection] = {}

    def request(self, server: str, method: str, path: str, user: str,
                data: dict[str, Any] | None = None) -> tuple[int, Any]:
        """
        ``(status, decoded body)``; status 0 when no answer came.
        """
        headers = {"Authorization": basic(user)}
        body = None
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection = self.connections.get(server)
            if connection is None:
                host, _, port = self.federation.authority(server).partition(":")
                connection = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
                self.connections[server] = connection
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.connections.pop(server, None)
            return 0, None
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


def screen_name(federation: Federation, viewer: User, target: User) -> str:
    if viewer.server == target.server:
        return target.handle
    return f"{target.handle}@{federation.authority(target.server)}"


def _drive(federation: Federation, ledger: Ledger, user: User, everyone: list[User],
           stop: threading.Event, seed: int) -> None:
    """
    One user's actions until ``stop``: mostly posts, some deletes, and (for
    churners) follows and unfollows of anyone.
    """
    rng = random.Random(seed)
    client = Client(federation)
    own: list[str] = []
    others = [u for u in everyone if u.handle != user.handle]
    n = 0
    while not stop.is_set():
        time.sleep(rng.uniform(0.05, 0.25))
        roll = rng.random()
        if roll < 0.15 and own:
            token = own.pop(rng.randrange(len(own)))
            with ledger.lock:
                post_id = ledger.posts[token][1]
            code, _ = client.request(user.server, "POST",
                                     f"/1.1/statuses/destroy/{post_id}.json", user.handle)
            with ledger.lock:
                if code == 200:
                    ledger.deleted.add(token)
                    ledger.counts["deletes"] += 1
                else:
                    ledger.uncertain.add(token)
                    ledger.counts["unacknowledged"] += 1
        elif roll < 0.30 and not user.reader:
            target = rng.choice(others)
            pair = (user.handle, target.handle)
            with ledger.lock:
                following = ledger.follows.get(pair, False)
            action = "destroy" if following else "create"
            code, _ = client.request(
                user.server, "POST", f"/1.1/friendships/{action}.json", user.handle,
                {"screen_name": screen_name(federation, user, target)})
            with ledger.lock:
                if code == 200:
                    ledger.follows[pair] = not following
                    ledger.unsure_follows.discard(pair)
                    ledger.counts["unfollows" if following else "follows"] += 1
                else:
                    ledger.unsure_follows.add(pair)
                    ledger.counts["unacknowledged"] += 1
        else:
            n += 1
            token = f"chaos-{user.handle}-{seed}-{n}"
            code, body = client.request(user.server, "POST", "/1.1/statuses/update.json",
                                        user.handle, {"status": f"{token} says hello"})
            with ledger.lock:
                if code == 200 and isinstance(body, dict):
                    ledger.posts[token] = (user.handle, int(body["id"]))
                    ledger.counts["posts"] += 1
                    own.append(token)
                else:
                    ledger.uncertain.add(token)
                    ledger.counts["unacknowledged"] += 1
    client.close()


def _mention(federation: Federation, ledger: Ledger, server: str, everyone: list[User],
             stop: threading.Event, seed: int) -> None:
    """
    The mentioner of ``server`` until ``stop``: posts that mention one user
    of another server each, about one a second (a server takes 300 notices
    a minute from another).
    """
    rng = random.Random(seed)
    client = Client(federation)
    handle = MENTIONERS[server]
    others = [u for u in everyone if u.server != server]
    n = 0
    while not stop.is_set():
        time.sleep(rng.uniform(0.5, 1.5))
        n += 1
        target = rng.choice(others)
        token = f"chaos-{handle}-{seed}-{n}"
        code, body = client.request(
            server, "POST", "/1.1/statuses/update.json", handle,
            {"status": f"{token} hello @{target.handle}@{federation.authority(target.server)}"})
        with ledger.lock:
            if code == 200 and isinstance(body, dict):
                ledger.mentions[token] = target.handle
                ledger.counts["mentions"] += 1
            else:
                ledger.uncertain.add(token)
                ledger.counts["unacknowledged"] += 1
    client.close()


def _chaos(federation: Federation, stop: threading.Event, kills: dict[str, int],
           rng: random.Random) -> None:
    """
    Kill one role at a random moment, restart it after a random pause;
    roles in shuffled rounds, so each is killed about as often.
    """
    while not stop.is_set():
        roles = list(kills)
        rng.shuffle(roles)
        for role in roles:
            if stop.wait(rng.uniform(1.0, 4.0)):
                return
            federation.kill(role)
            kills[role] += 1
            time.sleep(rng.uniform(0.2, 3.0))
            federation.restart(role)


@dataclass
class Check:
    found: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    undeleted: list[str] = field(default_factory=list)
    follows_wrong: list[str] = field(default_factory=list)
    #: on the followee's server (followers/list)
    followers_wrong: list[str] = field(default_factory=list)
    mentions_found: int = 0
    mentions_lost: list[str] = field(default_factory=list)
    mentions_duplicated: list[str] = field(default_factory=list)

    def wrong(self) -> list[str]:
        return (self.lost + self.duplicated + self.undeleted + self.follows_wrong
                + self.followers_wrong + self.mentions_lost + self.mentions_duplicated)

    @property
    def bad(self) -> int:
        return len(self.wrong())

    def signature(self) -> tuple[int, ...]:
        return (self.found, self.mentions_found, len(self.lost), len(self.duplicated),
                len(self.undeleted), len(self.follows_wrong), len(self.followers_wrong),
                len(self.mentions_lost), len(self.mentions_duplicated))


def _pages(client: Client, server: str, path: str, user: str) -> list[dict[str, Any]]:
    posts: list[dict[str, Any]] = []
    max_id = ""
    while True:
        code, page = client.request(server, "GET", f"{path}?count={PAGE}{max_id}", user)
        if code != 200:
            raise RuntimeError(f"GET {path} on {server}: {code} {page!r}")
        posts.extend(page)
        if len(page) < PAGE:
            return posts
        max_id = f"&max_id={min(p['id'] for p in page) - 1}"


def _listed(client: Client, user: User, which: str) -> set[str]:
    """
    The handles (without servers) ``user`` sees in ``friends/list`` or
    ``followers/list`` on their own server.
    """
    code, body = client.request(
        user.server, "GET", f"/1.1/{which}.json?count=200&skip_status=true", user.handle)
    if code != 200:
        raise RuntimeError(f"{which} of {user.handle}: {code} {body!r}")
    return {u["screen_name"].split("@", 1)[0].lower() for u in body["users"]}


def _tokens(posts: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for post in posts:
        token = post["text"].split(" ", 1)[0]
        counts[token] = counts.get(token, 0) + 1
    return counts


def check(federation: Federation, ledger: Ledger, users: list[User]) -> Check:
    """
    Read every user's home timeline, own timeline and friends on their
    server and compare with the ledger.
    """
    client = Client(federation, timeout=60)
    result = Check()
    by_handle = {u.handle: u for u in users}
    with ledger.lock:
        posts = dict(ledger.posts)
        uncertain = set(ledger.uncertain)
        deleted = set(ledger.deleted)
        follows = dict(ledger.follows)
        unsure = set(ledger.unsure_follows)
        mentions = dict(ledger.mentions)
    live: dict[str, set[str]] = {u.handle: set() for u in users}
    for token, (author, _) in posts.items():
        if token not in uncertain and token not in deleted:
            live[author].add(token)
    gone = deleted - uncertain
    try:
        for user in users:
            shown = _listed(client, user, "friends/list")
            for other in users:
                pair = (user.handle, other.handle)
                if other is user or pair in unsure or pair not in follows:
                    continue
                if follows[pair] != (other.handle in shown):
                    result.follows_wrong.append(
                        f"{user.handle} {'follows' if follows[pair] else 'unfollowed'}"
                        f" {other.handle}, friends/list: {sorted(shown)}")
            followers = _listed(client, user, "followers/list")
            for other in users:
                pair = (other.handle, user.handle)
                if other is user or pair in unsure or pair not in follows:
                    continue
                if follows[pair] != (other.handle in followers):
                    result.followers_wrong.append(
                        f"{other.handle} {'follows' if follows[pair] else 'unfollowed'}"
                        f" {user.handle}, followers/list on {user.server}: {sorted(followers)}")
            authors = {user.handle} | {h for h in shown if h in by_handle}
            home = _tokens(_pages(client, user.server, "/1.1/statuses/home_timeline.json",
                                  user.handle))
            own = _tokens(_pages(client, user.server,
                                 "/1.1/statuses/user_timeline.json", user.handle))
            mentioned = _tokens(_pages(client, user.server,
                                       "/1.1/statuses/mentions_timeline.json", user.handle))
            for token, target in mentions.items():
                if target != user.handle or token in uncertain:
                    continue
                found = mentioned.get(token, 0)
                if found == 0:
                    result.mentions_lost.append(f"{token} in mentions of {user.handle}")
                else:
                    result.mentions_found += 1
            for token, count in mentioned.items():
                if count > 1:
                    result.mentions_duplicated.append(
                        f"{token} x{count} in mentions of {user.handle}")
            for place, counts, expected in (
                (f"home of {user.handle}", home, set().union(*(live[a] for a in authors))),
                (f"timeline of {user.handle}", own, live[user.handle]),
            ):
                for token in expected:
                    if counts.get(token, 0) == 0:
                        result.lost.append(f"{token} in {place}")
                    else:
                        result.found += 1
                for token, count in counts.items():
                    if count > 1:
                        result.duplicated.append(f"{token} x{count} in {place}")
                    if token in gone:
                        result.undeleted.append(f"{token} in {place}")
    finally:
        client.close()
    return result


def _settle(federation: Federation, ledger: Ledger, users: list[User], quiet: float,
            deadline: float) -> tuple[Check, float]:
    """
    Check until all is well (and still is a little later), or nothing has
    changed for ``quiet`` seconds, or ``deadline`` seconds have passed.
    """
    start = time.monotonic()
    last: tuple[int, ...] = ()
    changed = start
    while True:
        result = check(federation, ledger, users)
        now = time.monotonic()
        if result.bad == 0:
            time.sleep(3)
            again = check(federation, ledger, users)
            if again.bad == 0:
                return again, time.monotonic() - start
            result = again
        if result.signature() != last:
            last, changed = result.signature(), now
        if now - changed > quiet or now - start > deadline:
            return result, now - start
        time.sleep(1)


def chaos(workspace: Workspace, quick: bool, minutes: float | None = None) -> list[Result]:
    """
    Acknowledged actions under kill -9 of every role: lost + duplicated +
    undeleted + wrong follows (either side) + lost or duplicated mentions,
    which must be 0.
    """
    seconds = 60 * minutes if minutes else (40.0 if quick else 20 * 60.0)
    least_kills = 1 if quick else 5
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    federation = Federation(workspace)
    users = [User(h, s) for s in SERVERS for h in HANDLES[s]]
    ledger = Ledger()
    setup = Client(federation)
    # Readers follow everyone, for good: every server copies every author.
    for user in users:
        if not user.reader:
            continue
        for other in users:
            if other is user:
                continue
            code, body = setup.request(user.server, "POST", "/1.1/friendships/create.json",
                                       user.handle,
                                       {"screen_name": screen_name(federation, user, other)})
            if code != 200:
                raise RuntimeError(f"{user.handle} follows {other.handle}: {code} {body!r}")
            ledger.follows[(user.handle, other.handle)] = True
    setup.close()

    stop_clients = threading.Event()
    stop_chaos = threading.Event()
    kills = {role: 0 for role in federation.roles}
    threads = [threading.Thread(target=_drive, args=(federation, ledger, user, users,
                                                     stop_clients, seed + i), daemon=True)
               for i, user in enumerate(users)]
    threads += [threading.Thread(target=_mention, args=(federation, ledger, server, users,
                                                        stop_clients, seed + 100 + i),
                                 daemon=True)
                for i, server in enumerate(SERVERS)]
    chaos_thread = threading.Thread(target=_chaos, args=(federation, stop_chaos, kills,
                                                         random.Random(seed)), daemon=True)
    started = time.monotonic()
    for thread in threads:
        thread.start()
    chaos_thread.start()
    while (time.monotonic() - started < seconds
           or min(kills.values()) < least_kills) and chaos_thread.is_alive():
        time.sleep(0.5)
    stop_chaos.set()
    chaos_thread.join()
    stop_clients.set()
    for thread in threads:
        thread.join()
    ran = time.monotonic() - started
    for role in federation.down():
        federation.restart(role)

    result, settled = _settle(federation, ledger, users, quiet=20.0,
                              deadline=180.0 if quick else 600.0)
    for role in federation.down():
        raise RuntimeError(f"{role} died after the chaos")
    bad = result.bad
    if bad:
        kept = tempfile.mkdtemp(prefix="distwit-chaos-kept-")
        shutil.copytree(workspace.folder, kept, dirs_exist_ok=True)
        for line in result.wrong()[:40]:
            print("chaos:", line, flush=True)
        print(f"chaos: the servers' data and logs are kept in {kept}", flush=True)
    counts = ledger.counts
    return [Result(
        "Chaos: acknowledged actions lost or duplicated under kill -9", float(bad),
        "wrong", 0.0, "nothing lost or duplicated", "0 lost, 0 duplicated", bad == 0,
        extra={
            "seed": seed,
            "chaos_s": round(ran),
            "settle_s": round(settled),
            "posts_acked": counts["posts"],
            "deletes_acked": counts["deletes"],
            "follows_acked": counts["follows"],
            "unfollows_acked": counts["unfollows"],
            "mentions_acked": counts["mentions"],
            "unacknowledged": counts["unacknowledged"],
            "found": result.found,
            "lost": len(result.lost),
            "duplicated": len(result.duplicated),
            "undeleted": len(result.undeleted),
            "follows_wrong": len(result.follows_wrong),
            "followers_wrong": len(result.followers_wrong),
            "mentions_found": result.mentions_found,
            "mentions_lost": len(result.mentions_lost),
            "mentions_duplicated": len(result.mentions_duplicated),
            "failed_restarts": len(federation.failed_starts),
            "kills": ", ".join(f"{role} {n}" for role, n in kills.items()),
        },
    )]

