"""
Items of the numbered log other than posts, copied between two servers
in memory: the home server's store serves its range feed (as
``GET /s2s/feed/…`` does: ``author_range_feed``), the
follower's fetcher copies it.  (docs/design/log-items.md)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from distwit.api.render import status_json
from distwit.core.microblog import Microblog
from distwit.federation.copier import Fetcher
from distwit.federation.range_feed import FeedItem, Profile, parse_range_feed, render_range_feed
from distwit.federation.resource import author_range_feed, feed_item
from distwit.model import Account

from tests.fakes import ScriptedClient
from tests.support import cheap_hasher, synchronous_sqlite_store

T0 = 1_700_000_000_000
HOME = "s1.test"
HOME_URL = "http://s1.test"
FOLLOWER = "s2.test"


class HomeServer:
    """
    The range feed of one of this store's local users, as the home server
    renders it.
    """

    def __init__(self, microblog: Microblog, handle: str) -> None:
        self.microblog = microblog
        self.handle = handle

    def __call__(self, url: str, body: Any) -> bytes:
        query = parse_qs(urlsplit(url).query)
        first, last = int(query["from"][0]), int(query["to"][0])
        author = _result(self.microblog.store.get_local_user(self.handle))
        last = max(min(last, author.last_seq), first - 1)
        posts = _result(self.microblog.store.range_posts(author.id, first, last))
        return author_range_feed(author, posts, first, last, False, HOME, HOME_URL)


def _result(d: Any) -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    (result,) = results
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result


class LogItemTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0 / 1000)
        self.home = Microblog(synchronous_sqlite_store(self.mktemp()), cheap_hasher(), self.clock)
        self.home.public_url = HOME_URL
        self.alice = self.successResultOf(self.home.store.create_user("alice", "", "h", T0))
        self.store = synchronous_sqlite_store(self.mktemp())
        self.client = ScriptedClient()
        self.client.routes[f"{HOME_URL}/s2s/feed/alice.rss"] = HomeServer(self.home, "alice")
        self.fetcher = Fetcher(self.store, self.client, self.clock, FOLLOWER)
        self.bob = self.successResultOf(self.store.create_user("bob", "", "h", T0))
        self.copy = self.successResultOf(self.store.ensure_account("alice", HOME, T0))
        self.successResultOf(self.store.follow(self.bob.id, self.copy.id, T0))

    def sync(self) -> Account:
        """
        Tell the follower's server alice's last number and let it copy.
        """
        alice = self.successResultOf(self.home.store.get_local_user("alice"))
        account = self.successResultOf(
            self.store.note_remote_last("alice", HOME, alice.last_seq, HOME_URL)
        )
        self.successResultOf(self.fetcher.fetch(account.id))
        copied: Account = self.successResultOf(self.store.get_account(account.id))
        self.assertEqual(copied.synced_seq, alice.last_seq)
        return copied

    def test_profile_change_travels(self) -> None:
        """
        A profile change is an item of alice's log (it raises her last
        number, not her count); the follower's server applies the latest
        (name, bio, location, URL, the image's absolute URL at her server)
        and takes her server's counts; profile items never show in a
        timeline; a superseded profile item travels as its number alone.
        """
        self.successResultOf(self.home.post(self.alice, "first"))
        self.successResultOf(self.home.update_profile(self.alice, name="Old"))
        self.successResultOf(self.home.update_profile(self.alice, name="Alice L.",
                                                      description="Down the hole",
                                                      location="Oxford", url="a.example",
                                                      image="ab" * 16))
        # The same profile again changes nothing: no item.
        self.successResultOf(self.home.update_profile(self.alice, name="Alice L."))
        alice = self.successResultOf(self.home.store.get_local_user("alice"))
        self.assertEqual((alice.last_seq, alice.statuses_count, alice.profile_seq), (3, 1, 3))
        page = parse_range_feed(
            HomeServer(self.home, "alice")(f"{HOME_URL}/s2s/feed/alice.rss?from=1&to=3", None),
            f"alice@{HOME}", 1, 3,
        )
        self.assertEqual([i.kind for i in page.items], ["post", "profile", "profile"])
        self.assertIsNone(page.items[1].profile)
        copied = self.sync()
        self.assertEqual(
            (copied.name, copied.description, copied.location, copied.url),
            ("Alice L.", "Down the hole", "Oxford", "http://a.example"),
        )
        image = f"{HOME_URL}/profile_images/{'ab' * 16}_normal.png"
        self.assertEqual(copied.profile_image, image)
        self.assertEqual((copied.statuses_count, copied.profile_seq), (1, 3))
        home = self.successResultOf(self.store.home_timeline(self.bob.id, 20, None, None))
        self.assertEqual([p.text for p in home], ["first"])
        rendered = status_json(home[0])
        self.assertEqual(rendered["user"]["name"], "Alice L.")
        self.assertEqual(rendered["user"]["profile_image_url"], image)

    def test_profile_of_a_late_follower(self) -> None:
        """
        A server that begins copying alice after her last profile change
        (copied from 2 numbers before her last, the profile item far below)
        still learns her profile, from the channel's dw:latestProfile; an
        older latest profile never replaces a newer one held.
        """
        self.successResultOf(self.home.update_profile(self.alice, name="Alice L.",
                                                      description="Down the hole"))
        for i in range(5):
            self.successResultOf(self.home.post(self.alice, f"post {i}"))
        self.successResultOf(self.store.start_sync_at(self.copy.id, 4))
        copied = self.sync()
        self.assertEqual((copied.name, copied.description, copied.profile_seq),
                         ("Alice L.", "Down the hole", 1))
        held = self.successResultOf(self.store.user_timeline(self.copy.id, 200, None, None))
        self.assertEqual([p.text for p in held], ["post 4", "post 3"])
        older = self.successResultOf(self.store.store_remote_items(
            self.copy.id, 7, 6, [], HOME, T0, latest_profile=(0, Profile(name="Older")),
        ))
        self.assertEqual(older, 0)
        self.assertEqual(
            self.successResultOf(self.store.get_account(self.copy.id)).name, "Alice L."
        )

    def test_counts_are_the_home_servers(self) -> None:
        """
        A remote author's statuses count is her server's, not what this
        server happens to hold: copied from 3 numbers before her last, 26
        posts still count 26.
        """
        for i in range(26):
            self.successResultOf(self.home.post(self.alice, f"post {i}"))
        self.successResultOf(self.store.start_sync_at(self.copy.id, 23))
        copied = self.sync()
        held = self.successResultOf(self.store.user_timeline(self.copy.id, 200, None, None))
        self.assertEqual((len(held), copied.statuses_count), (3, 26))

    def test_retweet_copied_and_linked(self) -> None:
        """
        Alice's retweet of dave's post (on her server) reaches bob's server
        as its reference: shown "RT @dave@s1.test" while the original is not
        held there, and with the original (text, user, count) once it is.
        """
        dave = self.successResultOf(self.home.store.create_user("dave", "", "h", T0))
        original = self.successResultOf(self.home.post(dave, "dave's words"))
        retweet = self.successResultOf(self.home.retweet(self.alice, original.id))
        self.assertEqual(retweet.retweeted_status.retweet_count, 1)  # type: ignore[union-attr]
        self.sync()
        (copied,) = self.successResultOf(self.store.home_timeline(self.bob.id, 20, None, None))
        self.assertEqual((copied.retweet_acct, copied.retweet_seq), (f"dave@{HOME}", 1))
        self.assertEqual(status_json(copied)["text"], f"RT @dave@{HOME}")
        self.assertNotIn("retweeted_status", status_json(copied))
        # Dave's post arrives later (someone here follows him).
        self.client.routes[f"{HOME_URL}/s2s/feed/dave.rss"] = HomeServer(self.home, "dave")
        dave_copy = self.successResultOf(self.store.ensure_account("dave", HOME, T0))
        dave_copy = self.successResultOf(self.store.note_remote_last("dave", HOME, 1, HOME_URL))
        self.successResultOf(self.fetcher.fetch(dave_copy.id))
        (copied,) = self.successResultOf(self.store.home_timeline(self.bob.id, 20, None, None))
        shown = status_json(copied)
        self.assertEqual(shown["text"], f"RT @dave@{HOME}: dave's words")
        self.assertEqual(shown["retweeted_status"]["text"], "dave's words")
        self.assertEqual(shown["retweeted_status"]["user"]["screen_name"], f"dave@{HOME}")
        self.assertEqual(shown["retweet_count"], 1)

    def test_original_fetched_from_its_server(self) -> None:
        """
        When the original of a copied retweet is not held, it is fetched
        from its author's server alone (one number) and kept aside: the
        retweet shows it, and the author's copy does not start (nothing is
        wanted of them).  A server answering for another author is
        refused: nothing is kept.
        """
        dave = self.successResultOf(self.home.store.create_user("dave", "", "h", T0))
        self.successResultOf(self.home.post(dave, "zero"))
        original = self.successResultOf(self.home.post(dave, "dave's words"))
        self.successResultOf(self.home.retweet(self.alice, original.id))
        self.client.routes[f"{HOME_URL}/s2s/feed/dave.rss"] = HomeServer(self.home, "alice")
        self.sync()
        (copied,) = self.successResultOf(self.store.home_timeline(self.bob.id, 20, None, None))
        self.assertIsNone(copied.retweeted_status)
        self.assertEqual(len(self.flushLoggedErrors()), 0)
        self.client.routes[f"{HOME_URL}/s2s/feed/dave.rss"] = HomeServer(self.home, "dave")
        self.fetcher.want_original(copied.author, f"dave@{HOME}", 2)
        (copied,) = self.successResultOf(self.store.home_timeline(self.bob.id, 20, None, None))
        assert copied.retweeted_status is not None
        self.assertEqual(copied.retweeted_status.text, "dave's words")
        self.assertEqual(copied.retweeted_status.retweet_count, 1)
        self.assertIn(f"{HOME_URL}/s2s/feed/dave.rss?from=2&to=2",
                      [url for _, url, _ in self.client.requests])
        dave_copy = self.successResultOf(self.store.get_remote_account("dave", HOME))
        self.assertEqual((dave_copy.synced_seq, dave_copy.last_seq), (0, 0))
        self.assertEqual(self.successResultOf(self.store.wanted(10)), [])

    def test_reply_reference_kept(self) -> None:
        """
        A reply to a post not held here keeps its reference: the status says
        whom and which number it answers (in_reply_to_screen_name and the
        number), without a status id until that post is held.
        """
        item = FeedItem(seq=1, text="@carol yes", created_at=T0, deleted=False,
                        in_reply_to=("carol@s3.test", 5))
        self.client.routes[f"{HOME_URL}/s2s/feed/alice.rss"] = lambda url, body: (
            render_range_feed(self.alice, HOME, HOME_URL, [item], 1, 1, False)
        )
        account = self.successResultOf(self.store.note_remote_last("alice", HOME, 1, HOME_URL))
        self.successResultOf(self.fetcher.fetch(account.id))
        (reply,) = self.successResultOf(self.store.range_posts(account.id, 1, 1))
        self.assertEqual((reply.in_reply_to_screen_name, reply.in_reply_to_seq),
                         ("carol@s3.test", 5))
        self.assertIsNone(reply.in_reply_to_status_id)
        shown = status_json(reply)
        self.assertEqual(shown["in_reply_to_screen_name"], "carol@s3.test")
        # What a thread needs to fetch it later, and what the author's own
        # server serves on: the same reference.
        self.assertEqual(feed_item(reply, FOLLOWER).in_reply_to, ("carol@s3.test", 5))


class ProfileTravelsTests(SynchronousTestCase):
    """
    Real processes: a registry, ping servers and two twitter servers.
    """

    INTERVAL = 2.0

    def test_profile_change_reaches_follower_server(self) -> None:
        """
        Carol (server 1) changes her display name, bio and image; bob on
        server 2 follows her: within two ping intervals users/show there,
        and the user of her statuses in bob's home timeline, give the new
        profile, her image's URL at her server, and her server's counts.
        """
        import base64
        import io

        from PIL import Image

        from tests.test_federation import Federation, acct, call, follow, home, post, wait_for

        federation = Federation(self)
        s1 = federation.twitter("s1", ["carol"], interval=self.INTERVAL)
        s2 = federation.twitter("s2", ["bob"], interval=self.INTERVAL)
        carol = acct("carol", s1)
        post(s1, "carol", "before the change")
        follow(s2, "bob", carol)
        wait_for(lambda: home(s2, "bob"), 15, "carol's post on s2")
        call(s1, "POST", "/1.1/account/update_profile.json", "carol",
             name="Carol C.", description="Now with a bio")
        out = io.BytesIO()
        Image.new("RGB", (120, 90), "green").save(out, "PNG")
        mine = call(s1, "POST", "/1.1/account/update_profile_image.json", "carol",
                    image=base64.b64encode(out.getvalue()).decode("ascii"))
        image = mine["profile_image_url"]
        self.assertTrue(image.startswith(s1.url + "/profile_images/"), image)

        def shown() -> Any:
            user = call(s2, "GET", f"/1.1/users/show.json?screen_name={carol}", "bob")
            return user if user["profile_image_url"] == image else None

        user, _ = wait_for(shown, 2 * self.INTERVAL + 1, "carol's new profile on s2")
        self.assertEqual((user["name"], user["description"]), ("Carol C.", "Now with a bio"))
        self.assertEqual(user["statuses_count"], 1)
        (status,) = home(s2, "bob")
        self.assertEqual((status["user"]["name"], status["user"]["profile_image_url"]),
                         ("Carol C.", image))
        # The image is served by her server.
        code, _ = s1.request("GET", image[len(s1.url):])
        self.assertEqual(code, 200)

    def test_profile_of_someone_not_followed(self) -> None:
        """
        Nobody on server 2 follows carol (server 1), who changed her
        profile and posted three times: users/show of her there gives her
        profile and her server's counts, asked of her server when read,
        and her latest post as its status.
        """
        from tests.test_federation import Federation, acct, call, post

        federation = Federation(self)
        s1 = federation.twitter("s1", ["carol"], interval=self.INTERVAL)
        s2 = federation.twitter("s2", ["bob"], interval=self.INTERVAL)
        carol = acct("carol", s1)
        call(s1, "POST", "/1.1/account/update_profile.json", "carol",
             name="Carol C.", description="Not followed")
        for n in range(3):
            post(s1, "carol", f"carol {n}")
        user = call(s2, "GET", f"/1.1/users/show.json?screen_name={carol}", "bob")
        self.assertEqual(
            (user["name"], user["description"], user["statuses_count"]),
            ("Carol C.", "Not followed", 3),
        )
        self.assertEqual(user["status"]["text"], "carol 2")
