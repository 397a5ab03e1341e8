"""
The smoke sequence with Python Twitter Tools (the ``twitter`` package),
run in its own virtualenv (it shares its module name with python-twitter)
against a live distwit server, on the unversioned 2008 paths.

Usage: python ptt_smoke.py HOST:PORT FORMAT REMOTE_ACCT

The remote user has the profile and the post of tests.test_clients
(``REMOTE_PROFILE``, ``REMOTE_TEXT``) on their server.

Exits 0 after printing one line per step; an AssertionError or a client
exception otherwise.
"""

import sys
import time
import xml.etree.ElementTree as ElementTree

from twitter import Twitter, TwitterHTTPError, UserPassAuth

domain, fmt, remote = sys.argv[1], sys.argv[2], sys.argv[3]
PASSWORD = "correct horse battery"
REMOTE_NAME, REMOTE_DESCRIPTION = "Dave Remote", "far away"
REMOTE_TEXT = "dave's post, from the other server"


def client(user, password=PASSWORD):
    return Twitter(
        auth=UserPassAuth(user, password), domain=domain, secure=False,
        api_version=None, format=fmt,
    )


def parse(answer):
    """
    The answer as Python values: JSON is decoded by the client; XML comes
    as text, read here the way a 2008 client would.
    """
    if fmt == "json":
        return answer
    root = ElementTree.fromstring(str(answer))

    def value(element):
        if element.get("type") == "array":
            return [value(child) for child in element]
        if len(element):
            return {child.tag: value(child) for child in element}
        return element.text

    return value(root)


def ids_of(statuses):
    return [int(status["id"]) for status in statuses]


def step(name):
    print("ok", name, flush=True)


def eventually(find, what, timeout=30.0):
    """
    What ``find()`` gives once it gives something, within ``timeout``
    seconds (what comes from another server takes a moment).
    """
    deadline = time.monotonic() + timeout
    while True:
        found = find()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.25)


alice, bob = client("alice"), client("bob")
me = parse(alice.account.verify_credentials())
assert me["screen_name"] == "alice", me
step("verify_credentials")

first = parse(alice.statuses.update(status="hello from the twitter package"))
assert first["text"] == "hello from the twitter package", first
question = parse(bob.statuses.update(status="@alice are you there?"))
reply = parse(alice.statuses.update(status="@bob yes", in_reply_to_status_id=question["id"]))
assert int(reply["in_reply_to_status_id"]) == int(question["id"]), reply
step("update and reply")

alice.friendships.create(screen_name="bob")
posted = [int(parse(bob.statuses.update(status=f"bob's post {i}"))["id"]) for i in range(5)]
home = parse(alice.statuses.home_timeline(count=3))
assert ids_of(home) == posted[:1:-1], (ids_of(home), posted)
older = parse(alice.statuses.home_timeline(count=3, max_id=ids_of(home)[-1] - 1))
assert ids_of(older) == [posted[1], posted[0], int(reply["id"])], ids_of(older)
newer = parse(alice.statuses.home_timeline(since_id=posted[3]))
assert ids_of(newer) == [posted[4]], ids_of(newer)
user = parse(alice.statuses.user_timeline(screen_name="bob", count=2))
assert ids_of(user) == posted[:2:-1][:2], ids_of(user)
mentions = parse(alice.statuses.mentions_timeline())
assert ids_of(mentions) == [int(question["id"])], ids_of(mentions)
step("home, user and mentions timelines with since_id and max_id")

shown = parse(alice.statuses.show(_id=first["id"]))
assert shown["text"] == first["text"], shown
step("show")

users = parse(alice.users.lookup(screen_name="alice,bob"))
assert sorted(u["screen_name"] for u in users) == ["alice", "bob"], users
shown_user = parse(alice.users.show(screen_name="bob"))
assert shown_user["screen_name"] == "bob"
step("users lookup and show")

alice.friendships.create(screen_name="carol")
alice.friendships.create(screen_name=remote)
friends = parse(alice.friends.ids(cursor=-1, count=2))
seen = list(friends["ids"])
while int(friends["next_cursor"]) != 0:
    friends = parse(alice.friends.ids(cursor=friends["next_cursor"], count=2))
    seen += friends["ids"]
assert len(seen) == 3, seen
remote_user = parse(alice.users.show(screen_name=remote))
assert remote_user["screen_name"] == remote, remote_user
followers = parse(bob.followers.ids())
assert [int(i) for i in followers["ids"]] == [int(me["id"])], followers
alice.friendships.destroy(screen_name="carol")
alice.friendships.destroy(screen_name=remote)
friends = parse(alice.friends.ids())
assert len(friends["ids"]) == 1, friends
step("follow and unfollow local and remote, ids through cursors")

rt = parse(alice.statuses.retweet(_id=posted[0]))
assert int(rt["retweeted_status"]["id"]) == posted[0], rt
assert rt["retweeted_status"]["user"]["screen_name"] == "bob", rt
assert rt["text"] == "RT @bob: bob's post 0", rt
shown = parse(alice.statuses.show(_id=rt["id"]))
assert int(shown["retweeted_status"]["id"]) == posted[0], shown
assert int(shown["retweet_count"]) == 1, shown
mine = parse(bob.statuses.retweets_of_me())
assert [(int(s["id"]), int(s["retweet_count"])) for s in mine] == [(posted[0], 1)], mine
alice.friendships.create(screen_name=remote)
remote_user = eventually(
    lambda: (lambda u: u if u["name"] == REMOTE_NAME else None)(
        parse(alice.users.show(screen_name=remote))),
    "the remote profile",
)
assert (remote_user["screen_name"], remote_user["description"]) == (
    remote, REMOTE_DESCRIPTION), remote_user
theirs = eventually(
    lambda: next((s for s in parse(alice.statuses.home_timeline())
                  if s["text"] == REMOTE_TEXT), None),
    "the remote post",
)
remote_rt = parse(alice.statuses.retweet(_id=theirs["id"]))
assert remote_rt["retweeted_status"]["user"]["screen_name"] == remote, remote_rt
assert remote_rt["retweeted_status"]["text"] == REMOTE_TEXT, remote_rt
alice.friendships.destroy(screen_name=remote)
step("retweets, retweets_of_me, a remote user's profile and post")

alice.statuses.destroy(_id=first["id"])
try:
    alice.statuses.show(_id=first["id"])
except TwitterHTTPError as e:
    assert e.e.code == 404, e.e.code
else:
    raise AssertionError("a deleted status is still shown")
step("destroy")

try:
    alice.statuses.update(status="x" * 141)
except TwitterHTTPError as e:
    assert e.e.code == 403 and "186" in str(e.response_data), (e.e.code, e.response_data)
else:
    raise AssertionError("a 141-character post was taken")
try:
    client("alice", "wrong password").account.verify_credentials()
except TwitterHTTPError as e:
    assert e.e.code == 401 and "32" in str(e.response_data), (e.e.code, e.response_data)
else:
    raise AssertionError("bad credentials were taken")
step("errors for 141 characters and bad credentials")
