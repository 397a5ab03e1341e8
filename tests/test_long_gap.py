"""
A long gap ends exact (issue 13), with real processes on 127.0.0.1
(tests.test_federation's ``Federation``), through the JSON API only.

s1 has the authors (alice, bob); carol on s2 and dave on s3 follow them
the same way.  s3 is stopped; meanwhile on s1 there are posts, deletes,
replies, retweets (of s1 posts and of a post of sam on s2), an unretweet
and profile changes (name, bio, location, URL, image).  s3 comes back;
once it has caught up, s3 shows every followed author exactly as s2 (which
never went down) does: users/show, user_timeline, and the home timelines.

Status ids differ per server, and a screen name is ``handle`` on its own
server and ``handle@authority`` elsewhere, so statuses are compared by
content and order (a home timeline: each author's statuses in order, and
the same statuses; see :meth:`View.snapshot`): author (as an acct), text, time, the original of a
retweet and the post replied to (each by its author, text and time).
"""

from __future__ import annotations

import base64
import io
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.test_federation import Federation, acct, call, follow, post, wait_for

#: The ping interval of these tests' twitter servers (seconds).
INTERVAL = 1.0
#: Generous: catching up is a few range feeds.
DEADLINE = 30
#: The users/show fields compared.
USER_FIELDS = ("name", "description", "location", "url", "profile_image_url",
               "statuses_count")

#: The image of users without one, at whichever server shows them.
DEFAULT_IMAGE = "/profile_images/default_normal.png"


def authority(server: Any) -> str:
    return str(server.url.split("//", 1)[1])


def as_acct(server: Any, screen_name: str | None) -> str | None:
    """
    A screen name as shown by ``server``, as an acct.
    """
    if screen_name is None:
        return None
    return screen_name if "@" in screen_name else f"{screen_name.lower()}@{authority(server)}"


class View:
    """
    What one server shows through its JSON API, as one reader.
    """

    def __init__(self, server: Any, reader: str) -> None:
        self.server = server
        self.reader = reader
        self._shown: dict[int, Any] = {}

    def get(self, path: str) -> Any:
        return call(self.server, "GET", path, self.reader)

    def original_key(self, status: dict[str, Any]) -> Any:
        return (as_acct(self.server, status["user"]["screen_name"]), status["text"],
                status["created_at"])

    def replied_key(self, status_id: int | None) -> Any:
        if status_id is None:
            return None
        if status_id not in self._shown:
            code, body = self.server.request(
                "GET", f"/1.1/statuses/show/{status_id}.json",
                auth=(self.reader, "correct horse battery"),
            )
            self._shown[status_id] = self.original_key(body) if code == 200 else ("gone", code)
        return self._shown[status_id]

    def status_key(self, status: dict[str, Any]) -> Any:
        original = status.get("retweeted_status")
        return (
            as_acct(self.server, status["user"]["screen_name"]),
            # A retweet's text names the original's author as this server
            # does: it is compared by its original instead.
            None if original is not None else status["text"],
            status["created_at"],
            None if original is None else self.original_key(original),
            as_acct(self.server, status["in_reply_to_screen_name"]),
            self.replied_key(status["in_reply_to_status_id"]),
        )

    def user(self, who: str) -> dict[str, Any]:
        shown = self.get(f"/1.1/users/show.json?screen_name={who}")
        found = {field: shown[field] for field in USER_FIELDS}
        if found["profile_image_url"].endswith(DEFAULT_IMAGE):
            # No image of their own: each server serves its default one.
            found["profile_image_url"] = DEFAULT_IMAGE
        return found

    def timeline(self, path: str) -> list[Any]:
        return [self.status_key(status) for status in self.get(path)]

    def snapshot(self, authors: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for who in authors:
            found[f"user {who}"] = self.user(who)
            found[f"timeline {who}"] = self.timeline(
                f"/1.1/statuses/user_timeline.json?screen_name={who}&count=200"
            )
        home = self.timeline("/1.1/statuses/home_timeline.json?count=200")
        # Status ids are taken when a status arrives (so that a client
        # polling with since_id sees what arrives), and a home timeline is
        # in id order: how two authors' statuses interleave there is the
        # order they arrived in, which a server that copied a gap at once
        # does not share with one that took them live.  Each author's
        # statuses are compared in order, and the whole as a set.
        found["home"] = sorted(home, key=repr)
        for who in authors:
            found[f"home of {who}"] = [key for key in home if key[0] == who]
        return found


def png() -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), "purple").save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


class LongGapTests(SynchronousTestCase):
    def test_restarted_server_matches_one_that_stayed(self) -> None:
        federation = Federation(self, pings=1)
        s1 = federation.twitter("s1", ["alice", "bob"], interval=INTERVAL)
        s2 = federation.twitter("s2", ["carol", "sam"], interval=INTERVAL)
        s3 = federation.twitter("s3", ["dave"], interval=INTERVAL)
        alice, bob, sam = acct("alice", s1), acct("bob", s1), acct("sam", s2)
        authors = [alice, bob]
        for server, reader in ((s2, "carol"), (s3, "dave")):
            for author in authors:
                follow(server, reader, author)
        early = post(s1, "alice", "alice before the gap")
        post(s1, "bob", "bob before the gap")
        sams = post(s2, "sam", "sam's post, retweeted from s1")
        follow(s1, "alice", sam)

        def texts(server: Any, reader: str) -> set[str]:
            return {s.get("text", "") for s in call(
                server, "GET", "/1.1/statuses/home_timeline.json?count=200", reader)}

        for server, reader in ((s2, "carol"), (s3, "dave")):
            wait_for(lambda: {"alice before the gap", "bob before the gap"}
                     <= texts(server, reader), DEADLINE, f"first posts for {reader}")
        wait_for(lambda: sams["text"] in texts(s1, "alice"), DEADLINE, "sam's post on s1")
        sams_on_s1 = next(s for s in call(s1, "GET", "/1.1/statuses/home_timeline.json",
                                          "alice") if s["text"] == sams["text"])

        s3.stop()
        gap = [post(s1, "alice", f"alice in the gap {i}") for i in range(10)]
        for i in (3, 7):
            call(s1, "POST", f"/1.1/statuses/destroy/{gap[i]['id']}.json", "alice")
        bobs = post(s1, "bob", "bob in the gap")
        call(s1, "POST", "/1.1/statuses/update.json", "alice",
             status=f"@{bob} agreed", in_reply_to_status_id=bobs["id"])
        call(s1, "POST", "/1.1/statuses/update.json", "bob",
             status=f"@{alice} number five", in_reply_to_status_id=gap[5]["id"])
        call(s1, "POST", f"/1.1/statuses/retweet/{bobs['id']}.json", "alice")
        call(s1, "POST", f"/1.1/statuses/retweet/{sams_on_s1['id']}.json", "alice")
        call(s1, "POST", f"/1.1/statuses/retweet/{early['id']}.json", "bob")
        call(s1, "POST", f"/1.1/statuses/unretweet/{early['id']}.json", "bob")
        call(s1, "POST", "/1.1/account/update_profile.json", "alice",
             name="Alice After", description="a bio from the gap", location="Gapville",
             url="https://example.org/alice")
        image = call(s1, "POST", "/1.1/account/update_profile_image.json", "alice",
                     image=png())["profile_image_url"]
        call(s1, "POST", "/1.1/account/update_profile.json", "bob", name="Bob After")
        last = post(s1, "bob", "bob's last word")

        s2_view = View(s2, "carol")

        def s2_current() -> bool:
            shown = s2_view.user(alice)
            return (
                shown["profile_image_url"] == image
                and shown["name"] == "Alice After"
                and s2_view.user(bob)["name"] == "Bob After"
                and last["text"] in texts(s2, "carol")
            )

        wait_for(s2_current, DEADLINE, "the gap's changes on s2", step=0.25)

        s3 = federation.restart("s3", s3)
        s3_view = View(s3, "dave")

        def same() -> Any:
            mine, theirs = s3_view.snapshot(authors), s2_view.snapshot(authors)
            return theirs if mine == theirs else False

        try:
            reference, _ = wait_for(same, DEADLINE, "s3 shows what s2 shows", step=0.5)
        finally:
            # On a timeout too: the difference, field by field.
            self.maxDiff = None
            mine, theirs = s3_view.snapshot(authors), s2_view.snapshot(authors)
            for part in theirs:
                self.assertEqual(mine[part], theirs[part], part)

        # What was compared is the gap's: not two empty views.
        self.assertEqual(reference[f"user {alice}"], {
            "name": "Alice After", "description": "a bio from the gap",
            "location": "Gapville", "url": "https://example.org/alice",
            "profile_image_url": image,
            # 1 before + 8 live of 10 + a reply + 2 retweets
            "statuses_count": 12,
        })
        alice_texts = [key[1] for key in reference[f"timeline {alice}"]]
        self.assertNotIn("alice in the gap 3", alice_texts)
        self.assertNotIn("alice in the gap 7", alice_texts)
        self.assertIn("alice in the gap 9", alice_texts)
        originals = {key[3] for key in reference[f"timeline {alice}"] if key[3] is not None}
        self.assertEqual({(a, text) for a, text, _ in originals},
                         {(bob, "bob in the gap"), (sam, sams["text"])})
        replies = [key for key in reference[f"timeline {bob}"] if key[4] is not None]
        self.assertEqual([(key[1], key[4], key[5][1]) for key in replies],
                         [(f"@{alice} number five", alice, "alice in the gap 5")])
        # bob's retweet was undone: not in his timeline.
        self.assertFalse([key for key in reference[f"timeline {bob}"] if key[3] is not None])
        self.assertEqual(reference[f"user {bob}"]["name"], "Bob After")
        self.assertGreater(len(reference["home"]), 12)
        for server in (s1, s2, s3):
            self.assertNotIn("Traceback", server.log_text())
