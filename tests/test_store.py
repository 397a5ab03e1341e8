"""
The storage suite, run on SQLite always and on PostgreSQL when
``DISTWIT_TEST_POSTGRES`` names a database.
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
from dataclasses import dataclass
from typing import Any

from twisted.internet import reactor
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface import Interface
from zope.interface.verify import verifyClass, verifyObject

from distwit.store.interfaces import (
    NOTHING_HIDDEN,
    DeviceAddress,
    DeviceAddressTaken,
    DeviceSettings,
    IDeviceStore,
    AccessTokenSummary,
    AppRecord,
    DuplicatePost,
    FollowBlocked,
    HandleTaken,
    IAccountStore,
    IAppStore,
    IBlockStore,
    IDirectMessageStore,
    IFavoriteStore,
    IFollowStore,
    IHealthStore,
    IHistoryStore,
    INotificationStore,
    IAdminStore,
    Moderation,
    IOIDCStore,
    IOutboxStore,
    IPasswordResetStore,
    IPostStore,
    IRemoteStore,
    ISessionStore,
    IStore,
    ITimelineStore,
    IUsageStore,
    UsageCounts,
    OIDCClientRecord,
    OIDCGrantRecord,
    PasswordResetRecord,
    SessionRecord,
    TokenRecord,
)
from distwit.store.schema import SchemaTooNew, migrations, prepare_database, schema_version
from distwit.store.sql import SQLStore, status_id_floor
from distwit.store.sql.accounts import AccountsStore
from distwit.store.sql.admin import AdminStore
from distwit.store.sql.apps import AppsStore
from distwit.store.sql.blocks import BlocksStore
from distwit.store.sql.devices import DevicesStore
from distwit.store.sql.direct import DirectMessagesStore
from distwit.store.sql.favorites import FavoritesStore
from distwit.store.sql.follows import FollowsStore
from distwit.store.sql.health import HealthStore
from distwit.store.sql.history import HistoryStore
from distwit.store.sql.notifications import NotificationsStore
from distwit.store.sql.usage import UsageStore
from distwit.store.sql.oidc import OIDCStore
from distwit.store.sql.outbox import OutboxStore
from distwit.store.sql.password_resets import KEEP_EXPIRED_MS, PasswordResetsStore
from distwit.store.sql.posts import PostsStore
from distwit.store.sql.remote import RemoteStore
from distwit.store.sql.sessions import SessionsStore
from distwit.store.sql.timelines import TimelinesStore

from tests.support import (
    POSTGRES_SKIP,
    PostgresEngine,
    SQLiteEngine,
    postgres_url,
    wipe_postgres,
)

T0 = 1_700_000_000_000  # a time in milliseconds


class StoreTestsMixin:
    """
    Behaviour every engine must show.  Subclasses provide ``make_engine``.
    """

    store: SQLStore

    def make_engine(self) -> Any:
        raise NotImplementedError()

    def setUp(self) -> None:
        self.engine = self.make_engine()
        prepare_database(self.engine)
        self.store = SQLStore(self.engine.make_pool(reactor), self.engine)
        self.addCleanup(self.store.close)

    def test_interface(self) -> None:
        """
        The SQL store provides every method of IStore.
        """
        self.assertTrue(verifyObject(IStore, self.store))

    def test_migrations_idempotent(self) -> None:
        """
        Opening an up-to-date database applies nothing, and the recorded
        version is the newest change shipped.
        """
        self.assertEqual(prepare_database(self.engine), [])
        self.assertEqual(schema_version(self.engine), migrations()[-1][0])

    def record_version(self, version: int) -> None:
        """
        Record ``version`` as applied, as a newer distwit would have.
        """
        connection = self.engine.connect()
        try:
            cursor = connection.cursor()
            cursor.execute(
                self.engine.convert("INSERT INTO schema_version (version, name) VALUES (?, ?)"),
                (version, f"{version:03}_from_the_future.sql"),
            )
            connection.commit()
        finally:
            connection.close()

    def test_newer_database_refused(self) -> None:
        """
        A database a newer distwit has migrated is refused with a message
        naming its version, the newest this code knows, and what to do;
        nothing is changed.
        """
        newest = migrations()[-1][0]
        self.record_version(newest + 2)
        error = self.assertRaises(SchemaTooNew, prepare_database, self.engine)
        message = str(error)
        self.assertIn(f"version {newest + 2} of the twitter role's schema", message)
        self.assertIn(f"newer than this distwit knows (version {newest})", message)
        self.assertIn("Run that newer distwit, or restore a backup", message)
        self.assertEqual(schema_version(self.engine), newest + 2)

    def test_unknown_change_refused(self) -> None:
        """
        A database recording a change number this code never had (004, the
        gap in the numbers) is refused too.
        """
        self.record_version(4)
        error = self.assertRaises(SchemaTooNew, prepare_database, self.engine)
        self.assertEqual(error.unknown, [4])
        self.assertIn("does not have (4;", str(error))

    @inlineCallbacks
    def test_create_user_case_insensitive(self):
        """
        Handles are unique whatever their case; lookups ignore case.
        """
        alice = yield self.store.create_user("Alice", "Alice A.", "hash", T0)
        self.assertEqual((alice.handle, alice.name, alice.authority), ("Alice", "Alice A.", ""))
        yield self.assertFailure(self.store.create_user("ALICE", "", "hash", T0), HandleTaken)
        found = yield self.store.get_local_user("aLiCe")
        self.assertEqual(found.id, alice.id)
        self.assertIsNone((yield self.store.get_local_user("bob")))
        self.assertEqual((yield self.store.get_login("ALICE")), (alice, "hash"))
        yield self.store.set_password_hash(alice.id, "new")
        self.assertEqual((yield self.store.get_login("alice")), (alice, "new"))
        self.assertIsNone((yield self.store.get_login("bob")))
        yield self.store.ensure_account("carol", "s3.example", T0)
        self.assertIsNone((yield self.store.get_login("carol")))

    @inlineCallbacks
    def test_sequence_and_ids(self):
        """
        An author's posts are numbered 1, 2, 3 and their status ids grow
        strictly, even if the clock steps back.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        first = yield self.store.create_post(alice.id, "one", "web", None, T0)
        second = yield self.store.create_post(alice.id, "two", "web", None, T0 - 60_000)
        third = yield self.store.create_post(alice.id, "three", "api", None, T0)
        self.assertEqual([p.seq for p in (first, second, third)], [1, 2, 3])
        self.assertLess(first.id, second.id)
        self.assertLess(second.id, third.id)
        self.assertGreaterEqual(first.id, status_id_floor(T0))
        self.assertEqual(third.source, "api")
        self.assertEqual((yield self.store.get_account(alice.id)).last_seq, 3)

    @inlineCallbacks
    def test_duplicate_post_keeps_sequence(self):
        """
        Repeating the latest text is refused and uses up no number.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        yield self.store.create_post(alice.id, "same", "web", None, T0)
        yield self.assertFailure(
            self.store.create_post(alice.id, "same", "web", None, T0), DuplicatePost
        )
        after = yield self.store.create_post(alice.id, "different", "web", None, T0)
        self.assertEqual(after.seq, 2)
        account = yield self.store.get_account(alice.id)
        self.assertEqual((account.last_seq, account.statuses_count), (2, 2))

    @inlineCallbacks
    def test_concurrent_posts(self):
        """
        Many posts at once by one author get the dense numbers 1..n, and
        status ids in the same order; another author's posts interleave
        with unique ids.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        posts = yield gatherResults(
            [
                self.store.create_post(author.id, f"post {i}", "web", None, T0)
                for i in range(40)
                for author in (alice, bob)
            ]
        )
        for author in (alice, bob):
            mine = sorted((p for p in posts if p.author.id == author.id), key=lambda p: p.seq)
            self.assertEqual([p.seq for p in mine], list(range(1, 41)))
            ids = [p.id for p in mine]
            self.assertEqual(ids, sorted(ids))
        self.assertEqual(len({p.id for p in posts}), 80)

    @inlineCallbacks
    def test_delete_leaves_tombstone(self):
        """
        A deleted post keeps its number and loses its text; it leaves the
        timelines; the delete itself takes the next number (a deletion
        record, so it travels like a post) and the next post the one after.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        post = yield self.store.create_post(alice.id, "oops", "web", None, T0)
        before = yield self.store.delete_post(post.id, T0 + 1)
        self.assertEqual(before.text, "oops")
        tombstone = yield self.store.get_post(post.id)
        self.assertTrue(tombstone.deleted)
        self.assertEqual((tombstone.seq, tombstone.text), (1, ""))
        self.assertIsNone((yield self.store.delete_post(post.id, T0 + 2)))
        self.assertEqual((yield self.store.user_timeline(alice.id, 20, None, None)), [])
        record = (yield self.store.range_posts(alice.id, 2, 2))[0]
        self.assertEqual((record.deleted, record.deletes_seq), (True, 1))
        again = yield self.store.create_post(alice.id, "oops", "web", None, T0)
        self.assertEqual(again.seq, 3)
        self.assertGreater(again.id, record.id)
        account = yield self.store.get_account(alice.id)
        self.assertEqual((account.last_seq, account.statuses_count), (3, 1))

    @inlineCallbacks
    def test_follows_and_counts(self):
        """
        Following is idempotent and keeps both counts right; so is
        unfollowing.  A local user may follow a remote acct.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        carol = yield self.store.ensure_account("carol", "s3.example", T0)
        self.assertEqual(carol.screen_name, "carol@s3.example")
        self.assertEqual((yield self.store.ensure_account("Carol", "s3.example", T0)).id, carol.id)
        self.assertTrue((yield self.store.follow(alice.id, bob.id, T0)))
        self.assertFalse((yield self.store.follow(alice.id, bob.id, T0)))
        self.assertTrue((yield self.store.follow(alice.id, carol.id, T0)))
        self.assertTrue((yield self.store.is_following(alice.id, bob.id)))
        self.assertFalse((yield self.store.is_following(bob.id, alice.id)))
        alice = yield self.store.get_account(alice.id)
        bob = yield self.store.get_account(bob.id)
        self.assertEqual((alice.friends_count, alice.followers_count), (2, 0))
        self.assertEqual((bob.friends_count, bob.followers_count), (0, 1))
        self.assertTrue((yield self.store.unfollow(alice.id, bob.id)))
        self.assertFalse((yield self.store.unfollow(alice.id, bob.id)))
        bob = yield self.store.get_account(bob.id)
        self.assertEqual(bob.followers_count, 0)

    @inlineCallbacks
    def test_timelines(self):
        """
        Home holds one's own posts and those of followed accounts, newest
        first; user holds one author's; public holds local users' posts.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        carol = yield self.store.create_user("carol", "", "h", T0)
        yield self.store.follow(alice.id, bob.id, T0)
        a1 = yield self.store.create_post(alice.id, "a1", "web", None, T0)
        b1 = yield self.store.create_post(bob.id, "b1", "web", None, T0)
        c1 = yield self.store.create_post(carol.id, "c1", "web", None, T0)
        a2 = yield self.store.create_post(alice.id, "a2", "web", b1.id, T0)
        home = yield self.store.home_timeline(alice.id, 20, None, None)
        self.assertEqual([p.text for p in home], ["a2", "b1", "a1"])
        self.assertEqual(home[0].in_reply_to_status_id, b1.id)
        self.assertEqual(home[0].in_reply_to_account_id, bob.id)
        self.assertEqual(home[0].in_reply_to_screen_name, "bob")
        self.assertIsNone(home[1].in_reply_to_screen_name)
        user = yield self.store.user_timeline(bob.id, 20, None, None)
        self.assertEqual([p.id for p in user], [b1.id])
        public = yield self.store.public_timeline(20, None, None)
        self.assertEqual([p.id for p in public], [a2.id, c1.id, b1.id, a1.id])

    @inlineCallbacks
    def test_since_and_max(self):
        """
        ``since_id`` is strictly greater, ``max_id`` inclusive, ``count``
        caps the page.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        posts = []
        for i in range(5):
            posts.append((yield self.store.create_post(alice.id, f"p{i}", "web", None, T0)))
        ids = [p.id for p in posts]

        def page(count, since_id, max_id):
            d = self.store.user_timeline(alice.id, count, since_id, max_id)
            return d.addCallback(lambda found: [p.id for p in found])

        self.assertEqual((yield page(20, ids[1], None)), ids[:1:-1])
        self.assertEqual((yield page(20, None, ids[2])), ids[2::-1])
        self.assertEqual((yield page(20, ids[1], ids[3])), [ids[3], ids[2]])
        self.assertEqual((yield page(2, None, None)), [ids[4], ids[3]])
        self.assertEqual((yield page(20, ids[4], None)), [])
        self.assertEqual((yield page(20, ids[2], ids[2])), [])
        self.assertEqual((yield page(20, None, ids[0] - 1)), [])

    @inlineCallbacks
    def test_sessions(self):
        """
        A session is found until it expires or is deleted; a password
        change deletes every session of the account but one.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        yield self.store.create_session("s1", alice.id, "csrf", T0, T0 + 1000)
        self.assertEqual(
            (yield self.store.get_session("s1", T0 + 1)), SessionRecord(alice.id, "csrf", T0)
        )
        self.assertIsNone((yield self.store.get_session("s1", T0 + 1000)))
        self.assertIsNone((yield self.store.get_session("other", T0)))
        yield self.store.delete_session("s1")
        self.assertIsNone((yield self.store.get_session("s1", T0 + 1)))
        bob = yield self.store.create_user("bob", "", "h", T0)
        for name, account in [("a1", alice), ("a2", alice), ("b1", bob)]:
            yield self.store.create_session(name, account.id, "csrf", T0, T0 + 1000)
        yield self.store.delete_sessions_of(alice.id, "a2")
        found = []
        for name in ["a1", "a2", "b1"]:
            if (yield self.store.get_session(name, T0 + 1)) is not None:
                found.append(name)
        self.assertEqual(found, ["a2", "b1"])
        yield self.store.delete_sessions_of(alice.id, None)
        self.assertIsNone((yield self.store.get_session("a2", T0 + 1)))


@dataclass(frozen=True)
class Item:
    """
    A remote message as a range feed gives it.
    """

    seq: int
    text: str = ""
    created_at: int = T0
    deleted: bool = False
    in_reply_to: tuple[str, int] | None = None
    source: str = "web"
    deletes: int | None = None


class APIStoreTestsMixin:
    """
    What the classic API asks of the store, on every engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_mentions(self):
        """
        Mentions of known accounts are recorded with their place, local
        ones by ``@handle`` or ``@handle@own_authority``, remote ones by
        ``@handle@authority``; in remote messages a plain ``@handle`` is on
        the author's server.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        dave = yield self.store.ensure_account("dave", "s3:80", T0)
        post = yield self.store.create_post(
            alice.id, "@bob @bob@s1:80 @carol@s3:80 @nobody", "web", None, T0,
            own_authority="s1:80",
        )
        self.assertEqual(
            [(account.id, start, end) for account, start, end in post.mentions],
            [(bob.id, 0, 4), (bob.id, 5, 15), (carol.id, 16, 28)],
        )
        yield self.store.note_remote_last("carol", "s3:80", 1, "http://s3:80")
        yield self.store.store_remote_items(
            carol.id, 1, 1, [Item(1, "@dave and @alice@s1:80")], "s1:80", T0 + 1
        )
        mentioned = yield self.store.mentions_timeline(alice.id, 10, None, None)
        self.assertEqual([p.author.id for p in mentioned], [carol.id])
        self.assertEqual(
            [account.id for account, _, _ in mentioned[0].mentions], [dave.id, alice.id]
        )
        self.assertEqual(len((yield self.store.mentions_timeline(bob.id, 10, None, None))), 1)

    @inlineCallbacks
    def test_home_timeline_following_many(self):
        """
        Following many accounts (where SQLite walks the posts newest first)
        the home timeline holds the same posts as the plain plan would:
        one's own and the followees', newest first, paged by max_id and
        since_id; not others'.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        stranger = yield self.store.create_user("stranger", "", "h", T0)
        expected = []
        for i in range(25):
            author = yield self.store.create_user(f"f{i}", "", "h", T0)
            yield self.store.follow(alice.id, author.id, T0)
            post = yield self.store.create_post(author.id, f"from f{i}", "web", None, T0 + i)
            expected.append(post.id)
            yield self.store.create_post(stranger.id, f"noise {i}", "web", None, T0 + i)
        mine = yield self.store.create_post(alice.id, "mine", "web", None, T0 + 99)
        expected.append(mine.id)
        expected.sort(reverse=True)
        page = yield self.store.home_timeline(alice.id, 10, None, None)
        self.assertEqual([p.id for p in page], expected[:10])
        page = yield self.store.home_timeline(alice.id, 10, None, expected[10])
        self.assertEqual([p.id for p in page], expected[10:20])
        page = yield self.store.home_timeline(alice.id, 100, expected[5], None)
        self.assertEqual([p.id for p in page], expected[:5])

    @inlineCallbacks
    def test_pages_search_profile(self):
        """
        Follow lists page by account id downwards; search finds text and
        accounts in any case with LIKE wildcards taken literally; the
        profile is replaced.
        """
        alice = yield self.store.create_user("alice", "Alice", "h", T0)
        fans = []
        for i in range(5):
            fan = yield self.store.create_user(f"fan{i}", "", "h", T0)
            yield self.store.follow(fan.id, alice.id, T0)
            fans.append(fan.id)
        page = yield self.store.following_page(alice.id, True, None, 3)
        self.assertEqual([a.id for a in page], sorted(fans, reverse=True)[:3])
        rest = yield self.store.following_page(alice.id, True, page[-1].id, 3)
        self.assertEqual([a.id for a in rest], sorted(fans, reverse=True)[3:])
        self.assertEqual((yield self.store.following_page(fans[0], False, None, 3))[0].id,
                         alice.id)
        yield self.store.create_post(alice.id, "100% Twisted", "web", None, T0)
        yield self.store.create_post(alice.id, "1000 twisted_things", "web", None, T0 + 1)
        found = yield self.store.search_posts("TWISTED", 10, None, None)
        self.assertEqual(len(found), 2)
        found = yield self.store.search_posts("0%", 10, None, None)
        self.assertEqual([p.text for p in found], ["100% Twisted"])
        found = yield self.store.search_posts("d_t", 10, None, None)
        self.assertEqual([p.text for p in found], ["1000 twisted_things"])
        accounts = yield self.store.search_accounts("ALI", 10, 0)
        self.assertEqual([a.handle for a in accounts], ["alice"])
        updated = yield self.store.update_profile(alice.id, "A", "d", "l", "http://u")
        self.assertEqual(
            (updated.name, updated.description, updated.location, updated.url),
            ("A", "d", "l", "http://u"),
        )


class FavoritesStoreTestsMixin:
    """
    Favorites, on every engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_favorites(self):
        """
        Favoriting is idempotent and counts on the post and the account;
        the favorites timeline and ``marked_among`` show what an account
        favorited; unfavoriting undoes it once.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        first = yield self.store.create_post(bob.id, "one", "web", None, T0)
        second = yield self.store.create_post(bob.id, "two", "web", None, T0)
        self.assertTrue((yield self.store.favorite(alice.id, first.id, T0)))
        self.assertFalse((yield self.store.favorite(alice.id, first.id, T0)))
        self.assertTrue((yield self.store.favorite(alice.id, second.id, T0)))
        self.assertEqual((yield self.store.get_post(first.id)).favorite_count, 1)
        self.assertEqual((yield self.store.get_account(alice.id)).favourites_count, 2)
        self.assertEqual(
            (yield self.store.marked_among(alice.id, [first.id, second.id, 12345]))[0],
            {first.id, second.id},
        )
        self.assertEqual((yield self.store.marked_among(bob.id, [first.id]))[0], set())
        self.assertEqual((yield self.store.marked_among(alice.id, []))[0], set())
        page = yield self.store.favorites_timeline(alice.id, 20, None, None)
        self.assertEqual([p.id for p in page], [second.id, first.id])
        page = yield self.store.favorites_timeline(alice.id, 20, None, first.id)
        self.assertEqual([p.id for p in page], [first.id])
        self.assertTrue((yield self.store.unfavorite(alice.id, first.id)))
        self.assertFalse((yield self.store.unfavorite(alice.id, first.id)))
        self.assertEqual((yield self.store.get_post(first.id)).favorite_count, 0)
        self.assertEqual((yield self.store.get_account(alice.id)).favourites_count, 1)
        page = yield self.store.favorites_timeline(alice.id, 20, None, None)
        self.assertEqual([p.id for p in page], [second.id])

    @inlineCallbacks
    def test_latest_post(self):
        """
        An author's latest post is the newest not deleted; ``None`` for an
        author with none.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        self.assertIsNone((yield self.store.latest_post(alice.id)))
        first = yield self.store.create_post(alice.id, "@alice one", "web", None, T0)
        second = yield self.store.create_post(alice.id, "two", "web", None, T0)
        self.assertEqual((yield self.store.latest_post(alice.id)).id, second.id)
        yield self.store.delete_post(second.id, T0 + 1)
        latest = yield self.store.latest_post(alice.id)
        self.assertEqual((latest.id, latest.text), (first.id, "@alice one"))
        self.assertEqual([m[0].id for m in latest.mentions], [alice.id])


class OIDCStoreTestsMixin:
    """
    What the OpenID Connect provider and relying party keep, on every
    engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_clients_and_grants(self):
        """
        A registered client is found by its id; a user's grants list the
        clients signed in to, most recent first, with first and last times;
        a grant is recorded again without a second row, and forgotten once.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        yield self.store.create_oidc_client("c1", "s1", '{"client_name": "One"}', T0)
        yield self.store.create_oidc_client("c2", "s2", '{"client_name": "Two"}', T0 + 1)
        self.assertEqual(
            (yield self.store.get_oidc_client("c1")),
            OIDCClientRecord("c1", "s1", '{"client_name": "One"}', T0),
        )
        self.assertIsNone((yield self.store.get_oidc_client("nobody")))
        self.assertEqual((yield self.store.oidc_grants_of(alice.id)), [])
        yield self.store.record_oidc_grant(alice.id, "c1", T0 + 10)
        yield self.store.record_oidc_grant(alice.id, "c2", T0 + 20)
        yield self.store.record_oidc_grant(alice.id, "c1", T0 + 30)
        self.assertEqual(
            (yield self.store.oidc_grants_of(alice.id)),
            [OIDCGrantRecord("c1", '{"client_name": "One"}', T0 + 10, T0 + 30),
             OIDCGrantRecord("c2", '{"client_name": "Two"}', T0 + 20, T0 + 20)],
        )
        self.assertTrue((yield self.store.delete_oidc_grant(alice.id, "c1")))
        self.assertFalse((yield self.store.delete_oidc_grant(alice.id, "c1")))
        grants = yield self.store.oidc_grants_of(alice.id)
        self.assertEqual([g.client_id for g in grants], ["c2"])

    @inlineCallbacks
    def test_our_registrations(self):
        """
        Our registration at an issuer is kept, replaced, and kept apart
        from other issuers'.
        """
        self.assertIsNone((yield self.store.get_oidc_registration("https://a.example")))
        yield self.store.put_oidc_registration("https://a.example", '{"v": 1}', T0)
        yield self.store.put_oidc_registration("https://b.example", '{"v": "b"}', T0)
        yield self.store.put_oidc_registration("https://a.example", '{"v": 2}', T0 + 1)
        self.assertEqual(
            (yield self.store.get_oidc_registration("https://a.example")), '{"v": 2}'
        )
        self.assertEqual(
            (yield self.store.get_oidc_registration("https://b.example")), '{"v": "b"}'
        )


class OAuthStoreTestsMixin:
    """
    Apps, tokens and nonces, on every engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_apps_tokens_nonces(self):
        """
        An app and its tokens are kept and found; a request token is
        approved once; tokens are revoked; a nonce is taken once, and
        forgotten when old.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        app_id = yield self.store.create_app("key", "secret", "App", alice.id, "", T0)
        app = AppRecord(app_id, "key", "secret", "App", alice.id, "")
        self.assertEqual((yield self.store.get_app("key")), app)
        self.assertIsNone((yield self.store.get_app("other")))
        self.assertEqual((yield self.store.apps_of(alice.id)), [app])
        yield self.store.create_token("rt", "rs", "request", app_id, None, "oob", T0, T0 + 1)
        self.assertTrue((yield self.store.approve_token("rt", alice.id, "pin")))
        self.assertFalse((yield self.store.approve_token("rt", alice.id, "pin")))
        self.assertEqual(
            (yield self.store.get_token("rt")),
            TokenRecord("rt", "rs", "request", app_id, alice.id, "oob", "pin", T0, T0 + 1,
                        "App", "key"),
        )
        yield self.store.create_token("at", "as", "access", app_id, alice.id, "", T0, None)
        self.assertEqual(
            (yield self.store.tokens_of(alice.id)), [AccessTokenSummary("at", T0, "App")]
        )
        self.assertTrue((yield self.store.delete_token("at")))
        self.assertFalse((yield self.store.delete_token("at")))
        self.assertTrue((yield self.store.use_nonce("key", "", "n1", 100, 0)))
        self.assertFalse((yield self.store.use_nonce("key", "", "n1", 100, 0)))
        self.assertTrue((yield self.store.use_nonce("key", "", "n1", 100, 101)))

    @inlineCallbacks
    def test_nonces_in_batches(self) -> Any:
        """
        Nonces kept many at once (those kept already left as they are) are
        read back from their timestamp on; the old ones are forgotten.
        """
        yield self.store.record_nonces([("key", "", "n1", 100), ("key", "t", "n2", 200)], 0)
        yield self.store.record_nonces([("key", "t", "n2", 200), ("key", "", "n3", 300)], 150)
        self.assertEqual(sorted((yield self.store.recent_nonces(0))),
                         [("key", "", "n3", 300), ("key", "t", "n2", 200)])
        self.assertEqual((yield self.store.recent_nonces(250)), [("key", "", "n3", 300)])
        self.assertFalse((yield self.store.use_nonce("key", "", "n3", 300, 0)))

    @inlineCallbacks
    def test_concurrent_replays_of_one_nonce(self) -> Any:
        """
        Replays of one request sent at once (the same nonce in concurrent
        transactions) are refused, and exactly one of them is taken: the
        engine's unique violation on the nonce counts as "seen", not as an
        error (on PostgreSQL it answered 500).
        """
        for round_ in range(10):
            results = yield gatherResults([
                self.store.use_nonce("key", "token", f"n{round_}", 100, 0)
                for _ in range(20)
            ])
            self.assertEqual(sorted(results), [False] * 19 + [True], round_)


class FederationStoreTestsMixin:
    """
    What the store keeps of remote authors, on every engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_reports_and_subscriptions(self):
        """
        A full report lists local users who posted; subscriptions are the
        remote accounts some local user follows.
        """
        alice = yield self.store.create_user("Alice", "", "h", T0)
        yield self.store.create_user("bob", "", "h", T0)
        yield self.store.create_post(alice.id, "hi", "web", None, T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        yield self.store.ensure_account("dave", "s3:80", T0)
        yield self.store.follow(alice.id, carol.id, T0)
        self.assertEqual((yield self.store.local_last_numbers()), [("alice", 1)])
        self.assertEqual((yield self.store.subscriptions()), [("carol", "s3:80")])

    @inlineCallbacks
    def test_remote_items_take_ids_in_order(self):
        """
        A page's new messages take status ids in a row, in message order,
        above every id before them (a local post's too); messages already
        held keep theirs.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        yield self.store.follow(alice.id, carol.id, T0)
        yield self.store.note_remote_last("carol", "s3:80", 8, "http://s3:80")
        yield self.store.store_remote_items(
            carol.id, 1, 5, [Item(n, f"m{n}") for n in range(1, 6)], "s1:80", T0 + 1
        )
        before = yield self.store.home_timeline(alice.id, 20, None, None)
        mine = yield self.store.create_post(alice.id, "between", "web", None, T0 + 2)
        stored = yield self.store.store_remote_items(
            carol.id, 3, 8, [Item(n, f"m{n}") for n in range(3, 9)], "s1:80", T0 + 3
        )
        self.assertEqual(stored, 3)
        home = yield self.store.home_timeline(alice.id, 20, None, None)
        by_text = {p.text: p.id for p in home}
        self.assertEqual({p.text: p.id for p in before},
                         {t: i for t, i in by_text.items() if t in ("m1", "m2", "m3", "m4", "m5")})
        new = [by_text["m6"], by_text["m7"], by_text["m8"]]
        self.assertEqual(new, sorted(new))
        self.assertEqual(len(set(by_text.values())), 9)
        self.assertGreater(new[0], mine.id)

    @inlineCallbacks
    def test_replies_to(self):
        """
        The live replies held to a message, held or not, newest first (the
        replies index of docs/design/threads.md).
        """
        alice = yield self.store.create_user("Alice", "", "h", T0)
        first = yield self.store.create_post(alice.id, "question", "web", None, T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        yield self.store.create_post(bob.id, "local answer", "web", first.id, T0 + 1)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        page = [
            Item(1, "remote answer", in_reply_to=("alice@s1:80", 1)),
            Item(2, "withdrawn", in_reply_to=("alice@s1:80", 1)),
            Item(3, "not an answer"),
        ]
        yield self.store.store_remote_items(carol.id, 1, 3, page, "s1:80", T0 + 2)
        yield self.store.store_remote_items(
            carol.id, 2, 2, [Item(2, deleted=True)], "s1:80", T0 + 3
        )
        dave = yield self.store.ensure_account("dave", "s2:80", T0)
        yield self.store.store_remote_items(
            dave.id, 1, 1, [Item(1, "to a post not held", in_reply_to=("carol@s3:80", 9))],
            "s1:80", T0 + 4,
        )
        self.assertEqual(
            (yield self.store.replies_to(alice.id, 1, 10)),
            [("carol", "s3:80", 1), ("bob", "", 1)],
        )
        self.assertEqual((yield self.store.replies_to(alice.id, 1, 1)), [("carol", "s3:80", 1)])
        self.assertEqual((yield self.store.replies_to(carol.id, 9, 10)), [("dave", "s2:80", 1)])
        self.assertEqual((yield self.store.replies_to(carol.id, 3, 10)), [])

    @inlineCallbacks
    def test_remote_items(self):
        """
        A page of remote messages is stored once however often it comes;
        a later tombstone replaces a post; a deletion record deletes its
        target; synced_seq stops at the first gap; replies map to the local
        status id of their target.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        mine = yield self.store.create_post(alice.id, "question", "web", None, T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        yield self.store.follow(alice.id, carol.id, T0)
        updated = yield self.store.note_remote_last("Carol", "s3:80", 5, "http://s3:80")
        self.assertEqual((updated.last_seq, updated.home_url), (5, "http://s3:80"))
        self.assertEqual([a.id for a in (yield self.store.wanted(10))], [carol.id])
        page = [
            Item(1, "one"),
            Item(2, "answer", in_reply_to=("alice@s1:80", 1)),
            Item(4, "four"),
        ]
        stored = yield self.store.store_remote_items(carol.id, 1, 5, page, "s1:80", T0 + 5)
        self.assertEqual(stored, 3)
        again = yield self.store.store_remote_items(carol.id, 1, 5, page, "s1:80", T0 + 6)
        self.assertEqual(again, 0)
        carol = yield self.store.get_account(carol.id)
        self.assertEqual((carol.synced_seq, carol.last_seq, carol.statuses_count), (2, 5, 3))
        home = yield self.store.home_timeline(alice.id, 20, None, None)
        self.assertEqual([p.text for p in home], ["four", "answer", "one", "question"])
        self.assertEqual(home[1].in_reply_to_status_id, mine.id)
        self.assertGreater(home[0].id, mine.id)
        yield self.store.store_remote_items(
            carol.id, 3, 5, [Item(3, deleted=True), Item(5, deleted=True, deletes=1)],
            "s1:80", T0 + 7,
        )
        carol = yield self.store.get_account(carol.id)
        self.assertEqual((carol.synced_seq, carol.statuses_count), (5, 2))
        home = yield self.store.home_timeline(alice.id, 20, None, None)
        self.assertEqual([p.text for p in home], ["four", "answer", "question"])
        self.assertEqual((yield self.store.wanted(10)), [])
        yield self.store.store_remote_items(carol.id, 4, 4, [Item(4, deleted=True)], "", T0)
        home = yield self.store.home_timeline(alice.id, 20, None, None)
        self.assertEqual([p.text for p in home], ["answer", "question"])

    @inlineCallbacks
    def test_remote_last_never_lowered(self):
        """
        A lower number from a ping server leaves the known last alone; an
        unknown account is not created by it.
        """
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        self.assertEqual((yield self.store.get_remote_account("CAROL", "s3:80")), carol)
        self.assertIsNone((yield self.store.get_remote_account("carol", "s4:80")))
        self.assertIsNone((yield self.store.get_remote_account("carol", "")))
        yield self.store.note_remote_last("carol", "s3:80", 9, "http://s3:80")
        yield self.store.note_remote_last("carol", "s3:80", 4, "http://s3:80")
        self.assertEqual((yield self.store.get_account(carol.id)).last_seq, 9)
        self.assertIsNone((yield self.store.note_remote_last("zed", "s3:80", 1, "x")))
        yield self.store.start_sync_at(carol.id, 7)
        carol = yield self.store.get_account(carol.id)
        self.assertEqual((carol.synced_seq, carol.last_seq), (7, 9))

    @inlineCallbacks
    def test_forget_remote_claim(self):
        """
        A claim the author's server denies goes back to what it confirms,
        and a copy started past that starts there; a claim raised since is
        kept.
        """
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        yield self.store.note_remote_last("carol", "s3:80", 2**63 - 1, "http://s3:80")
        yield self.store.start_sync_at(carol.id, 3)
        yield self.store.forget_remote_claim(carol.id, 2**63 - 1, 5)
        carol = yield self.store.get_account(carol.id)
        self.assertEqual((carol.synced_seq, carol.last_seq), (3, 5))
        yield self.store.forget_remote_claim(carol.id, 5, 1)
        carol = yield self.store.get_account(carol.id)
        self.assertEqual((carol.synced_seq, carol.last_seq), (1, 1))
        yield self.store.note_remote_last("carol", "s3:80", 12, "http://s3:80")
        yield self.store.forget_remote_claim(carol.id, 11, 4)
        self.assertEqual((yield self.store.get_account(carol.id)).last_seq, 12)

    @inlineCallbacks
    def test_range_posts(self):
        """
        A local author's range includes tombstones and deletion records,
        by number, with reply targets named by author and number.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        first = yield self.store.create_post(alice.id, "a", "web", None, T0)
        yield self.store.create_post(alice.id, "b", "web", first.id, T0)
        yield self.store.delete_post(first.id, T0 + 1)
        posts = yield self.store.range_posts(alice.id, 1, 10)
        self.assertEqual([(p.seq, p.deleted, p.deletes_seq) for p in posts],
                         [(1, True, None), (2, False, None), (3, True, 1)])
        self.assertEqual((posts[1].in_reply_to_screen_name, posts[1].in_reply_to_seq),
                         ("alice", 1))
        followers = yield self.store.followers(alice.id)
        self.assertEqual(followers, [])


class HistoryStoreTestsMixin:
    """
    Older messages of remote authors, and direct authors (issue 13,
    docs/design/reach.md), on every engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_history_below_what_is_held(self):
        """
        carol (30 messages) is copied from 21 on; history stores 11..20
        and then 1..10 below it, with status ids that go down with the
        numbers (below every id held of her), never touching synced_seq or
        last_seq; a page that does not reach down to what is held (a gap)
        stores nothing, and a page stored twice stores nothing again.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        yield self.store.follow(alice.id, carol.id, T0)
        self.assertEqual((yield self.store.held_from(carol.id)), 1)
        yield self.store.note_remote_last("carol", "s3:80", 30, "http://s3:80")
        yield self.store.start_sync_at(carol.id, 20)
        self.assertEqual((yield self.store.held_from(carol.id)), 21)
        yield self.store.store_remote_items(
            carol.id, 21, 30, [Item(n, f"m{n}", T0 + n) for n in range(21, 31)], "s1:80",
            T0 + 100,
        )
        self.assertEqual((yield self.store.held_from(carol.id)), 21)
        gap = yield self.store.store_history_items(
            carol.id, [Item(n, f"m{n}", T0 + n) for n in range(1, 11)], "s1:80", T0 + 200
        )
        self.assertEqual(gap, 0)
        for first in (11, 1):
            page = [Item(n, f"m{n}", T0 + n) for n in range(first, first + 10)]
            self.assertEqual(
                (yield self.store.store_history_items(carol.id, page, "s1:80", T0 + 200)), 10
            )
            self.assertEqual(
                (yield self.store.store_history_items(carol.id, page, "s1:80", T0 + 300)), 0
            )
            self.assertEqual((yield self.store.held_from(carol.id)), first)
        timeline = yield self.store.user_timeline(carol.id, 200, None, None)
        self.assertEqual([p.text for p in timeline], [f"m{n}" for n in range(30, 0, -1)])
        page = yield self.store.user_timeline(carol.id, 5, None, timeline[19].id)
        self.assertEqual([p.seq for p in page], [11, 10, 9, 8, 7])
        after = yield self.store.get_account(carol.id)
        self.assertEqual(
            (after.synced_seq, after.last_seq, after.statuses_count), (30, 30, 30)
        )

    @inlineCallbacks
    def test_history_ids_are_free_and_in_order(self):
        """
        History messages written in the same millisecond as each other, and
        as a post stored then, still take distinct ids, in number order;
        ids never go above what the id clock hands out next.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        early = yield self.store.create_post(alice.id, "then", "web", None, T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        yield self.store.note_remote_last("carol", "s3:80", 5, "http://s3:80")
        yield self.store.start_sync_at(carol.id, 3)
        yield self.store.store_remote_items(
            carol.id, 4, 5, [Item(4, "m4", T0), Item(5, "m5", T0)], "s1:80", T0 + 10
        )
        stored = yield self.store.store_history_items(
            carol.id, [Item(n, f"m{n}", T0) for n in (1, 2, 3)], "s1:80", T0 + 20
        )
        self.assertEqual(stored, 3)
        posts = yield self.store.range_posts(carol.id, 1, 5)
        ids = [p.id for p in posts]
        self.assertEqual(ids, sorted(ids))
        self.assertNotIn(early.id, ids)
        later = yield self.store.create_post(alice.id, "now", "web", None, T0 + 30)
        self.assertGreater(later.id, max(ids))

    @inlineCallbacks
    def test_direct_authors(self):
        """
        Whether a remote account is direct is unknown until set; the direct
        accounts some local user follows are the ones polled.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        dave = yield self.store.ensure_account("dave", "s4:80", T0)
        for account in (carol, dave):
            yield self.store.note_remote_last(
                account.handle, account.authority, 0, f"http://{account.authority}"
            )
        self.assertIsNone((yield self.store.is_direct(carol.id)))
        yield self.store.set_direct(carol.id, True)
        yield self.store.set_direct(dave.id, True)
        yield self.store.follow(alice.id, carol.id, T0)
        self.assertEqual((yield self.store.is_direct(carol.id)), True)
        direct = yield self.store.direct_subscriptions()
        self.assertEqual([a.handle for a in direct], ["carol"])
        yield self.store.set_direct(carol.id, False)
        self.assertEqual((yield self.store.is_direct(carol.id)), False)
        self.assertEqual((yield self.store.direct_subscriptions()), [])


class LogItemsStoreTestsMixin:
    """
    Retweets, profile items and profile images in the store, on every
    engine (docs/design/log-items.md).
    """

    store: SQLStore

    @inlineCallbacks
    def test_retweets_counted_once(self):
        """
        A retweet takes the retweeter's next number and refers to the
        original (acct and number); a second live retweet of the same post
        is refused; the original's count takes local retweets and other
        servers' notices, each retweeter once, and drops an undone one;
        retweets_of, retweets_of_me and marked_among see them.
        """
        from distwit.store.interfaces import DuplicatePost, NoSuchPost

        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        original = yield self.store.create_post(alice.id, "hello", "web", None, T0)
        retweet = yield self.store.create_retweet(bob.id, original.id, T0 + 1)
        self.assertEqual((retweet.kind, retweet.seq), ("retweet", 1))
        self.assertEqual((retweet.retweet_acct, retweet.retweet_seq), ("alice", 1))
        self.assertEqual(retweet.retweeted_status.id, original.id)
        self.assertEqual(retweet.retweeted_status.retweet_count, 1)
        with self.assertRaises(DuplicatePost):
            yield self.store.create_retweet(bob.id, original.id, T0 + 2)
        with self.assertRaises(NoSuchPost):
            yield self.store.create_retweet(alice.id, retweet.id, T0 + 2)
        yield self.store.record_remote_retweet(original.id, "Carol@s3:80", 4)
        again = yield self.store.record_remote_retweet(original.id, "carol@s3:80", 4)
        self.assertEqual(again.retweet_count, 2)
        self.assertEqual(
            (yield self.store.marked_among(bob.id, [original.id, retweet.id]))[1],
            {original.id},
        )
        self.assertEqual(
            [p.id for p in (yield self.store.retweets_of(original.id, 10))], [retweet.id]
        )
        mine = yield self.store.retweets_of_me(alice.id, 10, None, None)
        self.assertEqual([p.id for p in mine], [original.id])
        live = yield self.store.live_retweet(bob.id, original.id)
        self.assertEqual(live.id, retweet.id)
        yield self.store.delete_post(retweet.id, T0 + 3)
        self.assertIsNone((yield self.store.live_retweet(bob.id, original.id)))
        after = yield self.store.record_remote_retweet(original.id, "carol@s3:80", 4, True)
        self.assertEqual(after.retweet_count, 0)
        self.assertEqual((yield self.store.retweets_of_me(alice.id, 10, None, None)), [])
        # Out of order: carol retweets (6), undoes it, retweets again (8);
        # the second retweet's notice comes before the undo of the first:
        # the undo removes only the retweet it names.
        yield self.store.record_remote_retweet(original.id, "carol@s3:80", 6)
        yield self.store.record_remote_retweet(original.id, "carol@s3:80", 8)
        late = yield self.store.record_remote_retweet(original.id, "carol@s3:80", 6, True)
        self.assertEqual(late.retweet_count, 1)
        gone = yield self.store.record_remote_retweet(original.id, "carol@s3:80", 8, True)
        self.assertEqual(gone.retweet_count, 0)

    @inlineCallbacks
    def test_original_kept_aside(self):
        """
        A copied retweet whose original is not held names it among the
        unheld originals; the original kept aside (the author's numbers do
        not move) is linked to it and counts it; kept twice, once.
        """
        from distwit.federation.range_feed import FeedItem

        alice = yield self.store.ensure_account("alice", "s1:80", T0)
        dave = yield self.store.ensure_account("dave", "s3:80", T0)
        yield self.store.note_remote_last("alice", "s1:80", 1, "http://s1:80")
        retweet = FeedItem(seq=1, text="", created_at=T0, deleted=False, kind="retweet",
                           retweet_of=("dave@s3:80", 7))
        yield self.store.store_remote_items(alice.id, 1, 1, [retweet], "s2:80", T0)
        self.assertEqual((yield self.store.unheld_originals(alice.id, 1, 1)),
                         [("dave@s3:80", 7)])
        original = FeedItem(seq=7, text="seven", created_at=T0, deleted=False)
        self.assertTrue((yield self.store.store_remote_original(dave.id, original, "s2:80", T0)))
        self.assertFalse((yield self.store.store_remote_original(dave.id, original, "s2:80", T0)))
        self.assertEqual((yield self.store.unheld_originals(alice.id, 1, 1)), [])
        (copied,) = yield self.store.range_posts(alice.id, 1, 1)
        self.assertEqual(copied.retweeted_status.text, "seven")
        self.assertEqual(copied.retweeted_status.retweet_count, 1)
        dave = yield self.store.get_account(dave.id)
        self.assertEqual((dave.synced_seq, dave.last_seq), (0, 0))

    @inlineCallbacks
    def test_profile_item_and_images(self):
        """
        A profile change with a time takes the user's next number as a
        profile item (not in timelines nor in the count); an image is kept
        by hash and size, once.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        yield self.store.create_post(alice.id, "one", "web", None, T0)
        account = yield self.store.update_profile(
            alice.id, "Alice", "bio", "here", "", image="ab" * 16, changed_at=T0 + 1
        )
        self.assertEqual((account.last_seq, account.profile_seq), (2, 2))
        self.assertEqual((account.statuses_count, account.profile_image), (1, "ab" * 16))
        (item,) = yield self.store.range_posts(alice.id, 2, 2)
        self.assertEqual(item.kind, "profile")
        timeline = yield self.store.user_timeline(alice.id, 10, None, None)
        self.assertEqual([p.text for p in timeline], ["one"])
        yield self.store.store_profile_image("ab" * 16, {"normal": b"png"}, T0)
        yield self.store.store_profile_image("ab" * 16, {"normal": b"other"}, T0)
        self.assertEqual((yield self.store.profile_image("ab" * 16, "normal")), b"png")
        self.assertIsNone((yield self.store.profile_image("ab" * 16, "bigger")))


class OutboxStoreTestsMixin:
    """
    The outbox of notices and the cursor of the post sweep, on every engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_follow_keeps_its_notice(self):
        """
        A follow and the notice to the followee's server are kept in one
        transaction: a new follow queues its notice, a follow already there
        queues nothing, an unfollow queues its own; a failing follow (no
        such account) queues nothing either.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        notice = ("http://s3:80", "follow", '{"action":"follow"}', T0)
        self.assertTrue((yield self.store.follow(alice.id, carol.id, T0, notice)))
        self.assertFalse((yield self.store.follow(alice.id, carol.id, T0, notice)))
        pending = yield self.store.pending_notices(10)
        self.assertEqual([(i.target, i.kind, i.body) for i in pending], [notice[:3]])
        undo = ("http://s3:80", "unfollow", '{"action":"unfollow"}', T0 + 1)
        self.assertTrue((yield self.store.unfollow(alice.id, carol.id, undo)))
        self.assertFalse((yield self.store.unfollow(alice.id, carol.id, undo)))
        pending = yield self.store.pending_notices(10)
        self.assertEqual([i.kind for i in pending], ["follow", "unfollow"])
        try:
            yield self.store.follow(alice.id, 10_000, T0, notice)
        except Exception:
            pass
        self.assertEqual(len((yield self.store.pending_notices(10))), 2)

    @inlineCallbacks
    def test_state_notices_in_order(self):
        """
        Notices that change a state the receiver keeps (follow, unfollow,
        favorite...) go to one server in the order they were queued: the
        younger is not claimed while an older one is there (even one
        backing off, due later); mentions are not held up; another server's
        are not either.
        """
        follow = yield self.store.queue_notice("http://s2:80", "follow", '{"a":1}', T0)
        mention = yield self.store.queue_notice("http://s2:80", "mention", '{"m":1}', T0)
        unfollow = yield self.store.queue_notice("http://s2:80", "unfollow", '{"a":2}', T0)
        other = yield self.store.queue_notice("http://s3:80", "follow", '{"b":1}', T0)
        claimed = yield self.store.claim_notices(T0 + 1, T0 + 100, 10)
        self.assertEqual(sorted(i.id for i in claimed), sorted([follow, mention, other]))
        yield self.store.notice_done(mention)
        yield self.store.notice_done(other)
        yield self.store.notice_failed(follow, T0 + 5000, "HTTP 503")
        self.assertEqual((yield self.store.claim_notices(T0 + 200, T0 + 300, 10)), [])
        yield self.store.notice_done(follow)
        claimed = yield self.store.claim_notices(T0 + 400, T0 + 500, 10)
        self.assertEqual([i.id for i in claimed], [unfollow])

    @inlineCallbacks
    def test_notice_lifecycle(self):
        """
        A queued notice is due at once and claimed once (a second claim in
        its lease takes nothing); a failed try counts and makes it due
        later; after the retry it is claimed again; done forgets it.  A
        restart makes every pending notice due at once.
        """
        first = yield self.store.queue_notice("http://s2:80", "follow", '{"a":1}', T0)
        second = yield self.store.queue_notice("", "mention", '{"b":2}', T0 + 1)
        claimed = yield self.store.claim_notices(T0 + 5, T0 + 1000, 10)
        self.assertEqual([item.id for item in claimed], [first, second])
        self.assertEqual(
            (claimed[0].target, claimed[0].kind, claimed[0].body, claimed[0].attempts),
            ("http://s2:80", "follow", '{"a":1}', 0),
        )
        self.assertEqual((yield self.store.claim_notices(T0 + 10, T0 + 2000, 10)), [])
        yield self.store.notice_failed(first, T0 + 3000, "HTTP 503")
        yield self.store.notice_done(second)
        self.assertEqual((yield self.store.claim_notices(T0 + 2999, T0 + 9000, 10)), [])
        again = yield self.store.claim_notices(T0 + 3000, T0 + 9000, 10)
        self.assertEqual([(i.id, i.attempts, i.last_error) for i in again],
                         [(first, 1, "HTTP 503")])
        self.assertEqual((yield self.store.hurry_notices("http://s3:80", T0 + 3001)), 0)
        yield self.store.notice_failed(first, T0 + 5000, "HTTP 503")
        self.assertEqual((yield self.store.hurry_notices("http://s2:80", T0 + 3001)), 1)
        self.assertEqual((yield self.store.notices_due_now(T0 + 3001)), 1)
        self.assertEqual(
            [i.id for i in (yield self.store.claim_notices(T0 + 3001, T0 + 9000, 10))], [first]
        )
        pending = yield self.store.pending_notices(10)
        self.assertEqual([i.id for i in pending], [first])
        yield self.store.notice_done(first)
        self.assertEqual((yield self.store.pending_notices(10)), [])

    @inlineCallbacks
    def test_post_sweep_cursor(self):
        """
        The sweep reads the live local posts after its cursor that have an
        @ or reply (not remote ones, not plain ones); queueing its notices
        moves the cursor in the same transaction, only from where it was
        read, so a second sweeper from the same cursor queues nothing.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        one = yield self.store.create_post(alice.id, "hi @carol@s3:80", "web", None, T0)
        yield self.store.store_remote_items(carol.id, 1, 1, [Item(1, "mine")], "s1:80", T0 + 1)
        two = yield self.store.create_post(alice.id, "again @bob", "web", None, T0 + 2)
        # Neither an @ nor a reply: it cannot call for a notice, and is not
        # read, but the cursor moves past it.
        three = yield self.store.create_post(alice.id, "plain words", "web", None, T0 + 3)
        cursor, upto, posts = yield self.store.posts_to_notice(1)
        self.assertEqual([p.id for p in posts], [one.id])
        self.assertEqual(upto, one.id)
        moved = yield self.store.queue_post_notices(
            cursor, upto, [("", "mention", '{"seq":1}')], T0 + 3
        )
        self.assertTrue(moved)
        self.assertFalse((yield self.store.queue_post_notices(cursor, upto, [("", "x", "")], T0)))
        self.assertEqual([i.body for i in (yield self.store.pending_notices(10))], ['{"seq":1}'])
        cursor, upto, posts = yield self.store.posts_to_notice(10)
        self.assertEqual((cursor, upto, [p.id for p in posts]), (one.id, three.id, [two.id]))
        self.assertTrue((yield self.store.queue_post_notices(cursor, upto, [], T0 + 4)))
        cursor, upto, posts = yield self.store.posts_to_notice(10)
        self.assertEqual((cursor, upto, posts), (three.id, three.id, []))

    @inlineCallbacks
    def test_remote_item_aside(self):
        """
        A remote post stored aside is kept (and shows in the mentions of
        the local user it mentions) without moving the author's last or
        synced number: the copier does not come to want the author.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        dave = yield self.store.ensure_account("dave", "s3:80", T0)
        yield self.store.note_remote_last("dave", "s3:80", 0, "http://s3:80")
        stored = yield self.store.store_remote_items(
            dave.id, 7, 7, [Item(7, "hello @alice@s1:80")], "s1:80", T0 + 1, aside=True
        )
        self.assertEqual(stored, 1)
        again = yield self.store.store_remote_items(
            dave.id, 7, 7, [Item(7, "hello @alice@s1:80")], "s1:80", T0 + 2, aside=True
        )
        self.assertEqual(again, 0)
        after = yield self.store.get_account(dave.id)
        self.assertEqual((after.last_seq, after.synced_seq), (0, 0))
        self.assertEqual((yield self.store.wanted(10)), [])
        mentions = yield self.store.mentions_timeline(alice.id, 20, None, None)
        self.assertEqual([(p.seq, p.text) for p in mentions], [(7, "hello @alice@s1:80")])


class BlocksStoreTestsMixin:
    """
    Blocks, mutes and "no retweets" (docs/design/blocks.md), on every
    engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_block_removes_follows_and_refuses_them(self):
        """
        A block removes the follow both ways with the counts, queues the
        unfollow notice given, and refuses a follow either way with
        ``FollowBlocked`` saying who blocks; unblocking restores no follow
        and lets the follow be made again.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.ensure_account("bob", "s2:80", T0)
        self.assertEqual((yield self.store.hidden_accounts(alice.id)), NOTHING_HIDDEN)
        self.assertFalse((yield self.store.hidden_accounts(alice.id)))
        yield self.store.follow(alice.id, bob.id, T0)
        yield self.store.follow(bob.id, alice.id, T0)
        notice = ("http://s2:80", "unfollow", '{"action": "unfollow"}', T0)
        self.assertEqual((yield self.store.block(alice.id, bob.id, T0, notice)),
                         (True, True, True))
        self.assertFalse((yield self.store.is_following(alice.id, bob.id)))
        self.assertFalse((yield self.store.is_following(bob.id, alice.id)))
        after = yield self.store.get_account(alice.id)
        self.assertEqual((after.friends_count, after.followers_count), (0, 0))
        pending = yield self.store.pending_notices(10)
        self.assertEqual([(item.target, item.kind) for item in pending],
                         [("http://s2:80", "unfollow")])
        self.assertEqual((yield self.store.block(alice.id, bob.id, T0, notice)),
                         (False, False, False))
        self.assertEqual(len((yield self.store.pending_notices(10))), 1)
        failure = yield self.assertFailure(self.store.follow(bob.id, alice.id, T0),
                                           FollowBlocked)
        self.assertTrue(failure.by_followee)
        failure = yield self.assertFailure(self.store.follow(alice.id, bob.id, T0),
                                           FollowBlocked)
        self.assertFalse(failure.by_followee)
        self.assertFalse((yield self.store.is_following(bob.id, alice.id)))
        hidden = yield self.store.hidden_accounts(alice.id)
        self.assertEqual((hidden.blocked, hidden.muted, hidden.silenced),
                         (frozenset({bob.id}), frozenset(), frozenset({bob.id})))
        self.assertEqual((yield self.store.hiding_between(alice.id, bob.id)), {"blocking"})
        self.assertEqual((yield self.store.hiding_between(bob.id, alice.id)), set())
        self.assertTrue((yield self.store.set_hiding(alice.id, bob.id, "blocking", False, T0)))
        self.assertFalse((yield self.store.set_hiding(alice.id, bob.id, "blocking", False, T0)))
        self.assertEqual((yield self.store.hidden_accounts(alice.id)), NOTHING_HIDDEN)
        self.assertFalse((yield self.store.is_following(alice.id, bob.id)))
        self.assertTrue((yield self.store.follow(bob.id, alice.id, T0)))

    @inlineCallbacks
    def test_hiding_pages_and_kinds(self):
        """
        Blocks, mutes and "no retweets" are kept apart, each paged by
        account id, highest first; an unknown kind is refused.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        others = []
        for name in ("bob", "carol", "dave"):
            others.append((yield self.store.create_user(name, "", "h", T0)))
        bob, carol, dave = others
        yield self.store.set_hiding(alice.id, bob.id, "blocking", True, T0)
        yield self.store.set_hiding(alice.id, carol.id, "blocking", True, T0)
        self.assertTrue((yield self.store.set_hiding(alice.id, carol.id, "muting", True, T0)))
        self.assertFalse((yield self.store.set_hiding(alice.id, carol.id, "muting", True, T0)))
        yield self.store.set_hiding(alice.id, dave.id, "no_retweets", True, T0)
        page = yield self.store.hiding_page(alice.id, "blocking", None, 1)
        self.assertEqual([a.id for a in page], [carol.id])
        page = yield self.store.hiding_page(alice.id, "blocking", carol.id, 5)
        self.assertEqual([a.id for a in page], [bob.id])
        page = yield self.store.hiding_page(alice.id, "muting", None, 5)
        self.assertEqual([a.handle for a in page], ["carol"])
        page = yield self.store.hiding_page(alice.id, "no_retweets", None, 5)
        self.assertEqual([a.handle for a in page], ["dave"])
        hidden = yield self.store.hidden_accounts(alice.id)
        self.assertEqual(hidden.blocked, {bob.id, carol.id})
        self.assertEqual(hidden.muted, {carol.id})
        self.assertEqual(hidden.no_retweets, {dave.id})
        yield self.store.set_hiding(alice.id, carol.id, "blocking", False, T0)
        self.assertEqual((yield self.store.hiding_between(alice.id, carol.id)), {"muting"})
        self.assertRaises(ValueError, self.store.set_hiding, alice.id, bob.id, "x", True, T0)

    @inlineCallbacks
    def test_timelines_leave_out_what_is_hidden(self):
        """
        The home timeline leaves out blocked and muted authors, retweets of
        their posts, and the retweets of an account taken without retweets;
        mentions leave out blocked and muted authors; the other timelines,
        given the viewer, leave out blocked authors and retweets of them;
        without a viewer, nothing is left out.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        carol = yield self.store.create_user("carol", "", "h", T0)
        mallory = yield self.store.create_user("mallory", "", "h", T0)
        for followee in (bob, carol, mallory):
            yield self.store.follow(alice.id, followee.id, T0)
        nasty = yield self.store.create_post(mallory.id, "word @alice nasty", "web", None, T0)
        boring = yield self.store.create_post(carol.id, "word @alice boring", "web", None, T0)
        fine = yield self.store.create_post(bob.id, "word fine", "web", None, T0)
        rt_nasty = yield self.store.create_retweet(bob.id, nasty.id, T0)
        rt_fine = yield self.store.create_retweet(carol.id, fine.id, T0)
        yield self.store.favorite(bob.id, nasty.id, T0)
        yield self.store.favorite(bob.id, fine.id, T0)

        def ids(posts):
            return [p.id for p in posts]

        home = yield self.store.home_timeline(alice.id, 20, None, None)
        self.assertEqual(ids(home), [rt_fine.id, rt_nasty.id, fine.id, boring.id, nasty.id])
        yield self.store.block(alice.id, mallory.id, T0)
        yield self.store.set_hiding(alice.id, carol.id, "muting", True, T0)
        home = yield self.store.home_timeline(alice.id, 20, None, None)
        self.assertEqual(ids(home), [fine.id])
        mentions = yield self.store.mentions_timeline(alice.id, 20, None, None)
        self.assertEqual(ids(mentions), [])
        yield self.store.set_hiding(alice.id, carol.id, "muting", False, T0)
        yield self.store.set_hiding(alice.id, carol.id, "no_retweets", True, T0)
        home = yield self.store.home_timeline(alice.id, 20, None, None)
        self.assertEqual(ids(home), [fine.id, boring.id])
        home = yield self.store.home_timeline(alice.id, 20, None, None, False)
        self.assertEqual(ids(home), [fine.id, boring.id])
        mentions = yield self.store.mentions_timeline(alice.id, 20, None, None)
        self.assertEqual(ids(mentions), [boring.id])
        timeline = yield self.store.user_timeline(bob.id, 20, None, None, True, alice.id)
        self.assertEqual(ids(timeline), [fine.id])
        timeline = yield self.store.user_timeline(bob.id, 20, None, None)
        self.assertEqual(ids(timeline), [rt_nasty.id, fine.id])
        found = yield self.store.search_posts("word", 20, None, None, alice.id)
        self.assertEqual(ids(found), [fine.id, boring.id])
        found = yield self.store.search_posts("word", 20, None, None)
        self.assertEqual(ids(found), [fine.id, boring.id, nasty.id])
        favorites = yield self.store.favorites_timeline(bob.id, 20, None, None, alice.id)
        self.assertEqual(ids(favorites), [fine.id])
        retweets = yield self.store.retweets_of(nasty.id, 20, alice.id)
        self.assertEqual(ids(retweets), [])
        retweets = yield self.store.retweets_of(nasty.id, 20)
        self.assertEqual(ids(retweets), [rt_nasty.id])
        public = yield self.store.public_timeline(20, None, None, alice.id)
        self.assertNotIn(nasty.id, ids(public))
        self.assertNotIn(rt_nasty.id, ids(public))
        self.assertIn(nasty.id, ids((yield self.store.public_timeline(20, None, None))))


#: The whole storage suite, area by area; each engine runs all of it.
class DirectMessagesStoreTestsMixin:
    """
    Direct messages, on every engine: kept apart from posts, once per
    (sender, key), with their notice in the same transaction, listed and
    hidden per side.
    """

    store: SQLStore

    @inlineCallbacks
    def test_direct_messages(self):
        """
        A message is kept with both accounts; the same (sender, key) keeps
        one message and queues no second notice; lists are newest first
        within (since_id, max_id], skipping an offset; hiding is per side
        and once; no timeline, search or count sees a message.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        notice = ("http://s3:80", "direct_message", '{"kind":"direct_message"}', T0)
        first, new = yield self.store.create_direct_message(
            alice.id, carol.id, "to carol", T0, "key-one-1", notice
        )
        self.assertTrue(new)
        self.assertEqual((first.sender.handle, first.recipient.screen_name, first.text),
                         ("alice", "carol@s3:80", "to carol"))
        again, new = yield self.store.create_direct_message(
            alice.id, carol.id, "to carol", T0, "key-one-1", notice
        )
        self.assertEqual((again.id, new), (first.id, False))
        self.assertEqual([i.kind for i in (yield self.store.pending_notices(10))],
                         ["direct_message"])
        ids = []
        for i in range(4):
            message, _ = yield self.store.create_direct_message(
                carol.id, alice.id, f"from carol {i}", T0 + i, f"key-carol-{i}"
            )
            ids.append(message.id)
        local, _ = yield self.store.create_direct_message(
            bob.id, alice.id, "from bob", T0 + 9, "key-bob-1"
        )
        received = yield self.store.direct_messages(alice.id, False, 10, None, None)
        self.assertEqual([m.id for m in received], [local.id, *ids[::-1]])
        sent = yield self.store.direct_messages(alice.id, True, 10, None, None)
        self.assertEqual([m.id for m in sent], [first.id])
        page = yield self.store.direct_messages(alice.id, False, 2, ids[0], ids[3], 1)
        self.assertEqual([m.id for m in page], [ids[2], ids[1]])
        self.assertTrue((yield self.store.hide_direct_message(local.id, alice.id)))
        self.assertFalse((yield self.store.hide_direct_message(local.id, alice.id)))
        self.assertFalse((yield self.store.hide_direct_message(local.id, carol.id)))
        shown = yield self.store.get_direct_message(local.id)
        self.assertEqual((shown.recipient_hidden, shown.sender_hidden), (True, False))
        self.assertEqual([m.id for m in (yield self.store.direct_messages(
            bob.id, True, 10, None, None))], [local.id])
        self.assertNotIn(local.id, [m.id for m in (yield self.store.direct_messages(
            alice.id, False, 10, None, None))])
        self.assertIsNone((yield self.store.get_direct_message(10_000)))
        self.assertEqual((yield self.store.search_posts("carol", 10, None, None)), [])
        self.assertEqual((yield self.store.home_timeline(alice.id, 10, None, None)), [])
        after = yield self.store.get_account(alice.id)
        self.assertEqual((after.statuses_count, after.last_seq), (0, 0))


class NotificationsStoreTestsMixin:
    """
    Notifications (issue 14), on every engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_notifications(self):
        """
        A mention, a reply (not also a mention), a follow, a retweet and a
        favorite of alice's post are her notifications, newest first, paged
        by time; nobody is notified of their own acts; hidden actors are
        left out; the unread count falls to what came after her mark.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        carol = yield self.store.create_user("carol", "", "h", T0)
        own = yield self.store.create_post(alice.id, "mine", "web", None, T0 + 1)
        yield self.store.create_post(alice.id, "me, @alice", "web", None, T0 + 2)
        mention = yield self.store.create_post(bob.id, "hi @alice", "web", None, T0 + 3)
        reply = yield self.store.create_post(carol.id, "@alice yes", "web", own.id, T0 + 4)
        yield self.store.follow(bob.id, alice.id, T0 + 5)
        yield self.store.create_retweet(carol.id, own.id, T0 + 6)
        yield self.store.favorite(bob.id, own.id, T0 + 7)
        yield self.store.favorite(alice.id, own.id, T0 + 8)
        found = yield self.store.notifications(alice.id, None, 20, [])
        self.assertEqual(
            [(n.kind, n.at, n.actor.handle, n.post.id if n.post else None) for n in found],
            [
                ("favorite", T0 + 7, "bob", own.id),
                ("retweet", T0 + 6, "carol", own.id),
                ("follow", T0 + 5, "bob", None),
                ("reply", T0 + 4, "carol", reply.id),
                ("mention", T0 + 3, "bob", mention.id),
            ],
        )
        older = yield self.store.notifications(alice.id, T0 + 5, 2, [])
        self.assertEqual([n.kind for n in older], ["reply", "mention"])
        without_bob = yield self.store.notifications(alice.id, None, 20, [bob.id])
        self.assertEqual([n.kind for n in without_bob], ["retweet", "reply"])
        self.assertEqual((yield self.store.unread_notifications(alice.id, 99, [])), 5)
        self.assertEqual((yield self.store.unread_notifications(alice.id, 3, [])), 3)
        self.assertEqual((yield self.store.unread_notifications(alice.id, 99, [carol.id])), 3)
        yield self.store.see_notifications(alice.id, T0 + 5)
        self.assertEqual((yield self.store.unread_notifications(alice.id, 99, [])), 2)
        yield self.store.see_notifications(alice.id, T0 + 4)  # never back
        self.assertEqual((yield self.store.unread_notifications(alice.id, 99, [])), 2)
        yield self.store.see_notifications(alice.id, T0 + 7)
        self.assertEqual((yield self.store.unread_notifications(alice.id, 99, [])), 0)
        self.assertEqual((yield self.store.notifications(bob.id, None, 20, [])), [])


class UsageStoreTestsMixin:
    """
    The counts of NodeInfo (issue 17), on every engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_usage_counts(self):
        """
        Local users; those with a message (post or retweet) since each
        start; their posts, not retweets nor deleted ones; remote authors
        and their posts count for nothing.
        """
        day = 24 * 3600 * 1000
        old = yield self.store.create_user("old", "", "h", T0)
        spring = yield self.store.create_user("spring", "", "h", T0)
        lately = yield self.store.create_user("lately", "", "h", T0)
        yield self.store.create_user("quiet", "", "h", T0)
        remote = yield self.store.ensure_account("carol", "s3:80", T0)
        yield self.store.create_post(old.id, "a year ago", "web", None, T0)
        first = yield self.store.create_post(spring.id, "spring", "web", None, T0 + 200 * day)
        yield self.store.create_retweet(lately.id, first.id, T0 + 360 * day)
        gone = yield self.store.create_post(lately.id, "gone", "web", None, T0 + 361 * day)
        yield self.store.delete_post(gone.id, T0 + 362 * day)
        yield self.store.note_remote_last("carol", "s3:80", 1, "http://s3:80")
        yield self.store.store_remote_items(
            remote.id, 1, 1, [Item(1, "elsewhere")], "s1:80", T0 + 362 * day
        )
        now = T0 + 365 * day
        found = yield self.store.usage_counts(now - 30 * day, now - 180 * day)
        self.assertEqual(found, UsageCounts(4, 1, 2, 2))


class HealthStoreTestsMixin:
    """
    Operations: the admin flag, and what the federation health view reads,
    on every engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_admin_flag(self):
        """
        The admin flag is given and taken by handle (any case), to local
        users only; nobody has it at first.
        """
        alice = yield self.store.create_user("Alice", "", "h", T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        self.assertFalse((yield self.store.is_admin(alice.id)))
        self.assertEqual((yield self.store.admins()), [])
        self.assertTrue((yield self.store.set_admin("ALICE", True)))
        self.assertTrue((yield self.store.is_admin(alice.id)))
        self.assertFalse((yield self.store.set_admin("carol", True)))
        self.assertFalse((yield self.store.set_admin("zed", True)))
        self.assertFalse((yield self.store.is_admin(carol.id)))
        self.assertEqual((yield self.store.admins()), ["Alice"])
        self.assertTrue((yield self.store.set_admin("alice", False)))
        self.assertFalse((yield self.store.is_admin(alice.id)))

    @inlineCallbacks
    def test_peers_kept(self):
        """
        A peer's record replaces the one of its authority and kind; one
        server of two roles is two peers.
        """
        from distwit.store.interfaces import PeerRecord

        first = PeerRecord("s2:80", "twitter", "http://s2:80", T0, 0, 0, 12, "", "", T0)
        ping = PeerRecord("p:80", "ping", "http://p:80", T0, 0, 0, 3, "", "", T0)
        yield self.store.save_peers([first, ping])
        down = PeerRecord("s2:80", "twitter", "http://s2:80", T0, T0 + 9, 4, 12,
                          "no answer", "certificate verify failed", T0 + 9)
        both = PeerRecord("s2:80", "registry", "http://s2:80", T0, 0, 0, 5, "", "", T0)
        yield self.store.save_peers([down, both])
        self.assertEqual((yield self.store.peers()), [ping, both, down])

    @inlineCallbacks
    def test_completeness_and_outbox(self):
        """
        Followed remote authors with what is held and known (the furthest
        behind first; an author nobody here follows is left out), the
        outbox by receiver, and the totals.
        """
        from distwit.store.interfaces import AuthorCopy, OutboxTarget

        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        dave = yield self.store.ensure_account("dave", "s2:80", T0)
        yield self.store.ensure_account("erin", "s2:80", T0)
        for follower in (alice, bob):
            yield self.store.follow(follower.id, carol.id, T0)
        yield self.store.follow(alice.id, dave.id, T0)
        yield self.store.note_remote_last("carol", "s3:80", 2, "http://s3:80")
        yield self.store.store_remote_items(
            carol.id, 1, 2, [Item(1, "a"), Item(2, "b")], "s1:80", T0
        )
        yield self.store.note_remote_last("dave", "s2:80", 5, "http://s2:80")
        yield self.store.note_remote_last("erin", "s2:80", 7, "http://s2:80")
        self.assertEqual((yield self.store.followed_authors()), [
            AuthorCopy("dave", "s2:80", 0, 5, 1), AuthorCopy("carol", "s3:80", 2, 2, 2),
        ])
        self.assertEqual((yield self.store.outbox_targets()), [])
        self.assertEqual((yield self.store.federation_totals()), (2, 12, 0, 0))
        first = yield self.store.queue_notice("http://s2:80", "follow", "{}", T0 + 1)
        yield self.store.queue_notice("http://s2:80", "mention", "{}", T0 + 2)
        yield self.store.queue_notice("http://s3:80", "mention", "{}", T0 + 3)
        yield self.store.notice_failed(first, T0 + 5000, "HTTP 503")
        self.assertEqual((yield self.store.outbox_targets()), [
            OutboxTarget("http://s2:80", 2, T0 + 1, 1, "HTTP 503"),
            OutboxTarget("http://s3:80", 1, T0 + 3, 0, ""),
        ])
        self.assertEqual((yield self.store.federation_totals()), (2, 12, 3, T0 + 1))


class AdminStoreTestsMixin:
    """
    The operator's decisions (``distwit user``, ``distwit server``), on
    every engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_suspend_lock_and_moderation(self):
        """
        Suspending, locking and unlocking show in the standings and in the
        moderation a running server reads; a suspended author's posts and
        a blocked server's leave the timelines.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        eve = yield self.store.ensure_account("eve", "evil.test", T0)
        yield self.store.create_post(alice.id, "alice speaks", "web", None, T0)
        yield self.store.create_post(bob.id, "bob speaks", "web", None, T0)
        yield self.store.follow(bob.id, eve.id, T0)
        moderation = yield self.store.moderation()
        self.assertEqual(moderation, Moderation())
        self.assertTrue((yield self.store.set_suspended(alice.id, True)))
        self.assertFalse((yield self.store.set_suspended(alice.id, True)))
        yield self.store.set_lock(bob.id, 2**62)
        yield self.store.set_lock(bob.id, 0, T0 + 5)
        yield self.store.set_lock(bob.id, 7)
        self.assertTrue((yield self.store.block_server("Evil.test", T0, "spam")))
        self.assertFalse((yield self.store.block_server("evil.test", T0, "")))
        moderation = yield self.store.moderation()
        self.assertEqual(moderation.suspended, {alice.id})
        self.assertEqual(moderation.locks, {"bob": (7, T0 + 5)})
        self.assertEqual(moderation.blocked, {"evil.test"})
        self.assertEqual(moderation.deleted, frozenset())
        self.assertEqual((yield self.store.blocked_servers()), [("evil.test", T0, "spam")])
        standings = yield self.store.standings()
        self.assertEqual([(s.account.handle, s.suspended, s.locked_until, s.unlocked_at)
                          for s in standings],
                         [("alice", True, 0, 0), ("bob", False, 7, T0 + 5)])
        self.assertIsNone((yield self.store.standing("nobody")))
        public = yield self.store.public_timeline(20, None, None)
        self.assertEqual([p.text for p in public], ["bob speaks"])
        self.assertEqual((yield self.store.user_timeline(alice.id, 20, None, None)), [])
        self.assertTrue((yield self.store.unblock_server("evil.test")))
        self.assertFalse((yield self.store.unblock_server("evil.test")))
        yield self.store.set_suspended(alice.id, False)
        public = yield self.store.public_timeline(20, None, None)
        self.assertEqual(sorted(p.text for p in public), ["alice speaks", "bob speaks"])

    @inlineCallbacks
    def test_remove_user(self):
        """
        Removing a user takes its followers and its follows of local users
        (with the counts), its sessions and its login; it is deleted and
        suspended, its handle taken.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        post = yield self.store.create_post(alice.id, "gone soon", "web", None, T0)
        carol = yield self.store.ensure_account("carol", "s3.test", T0)
        yield self.store.follow(alice.id, bob.id, T0)
        yield self.store.follow(bob.id, alice.id, T0)
        yield self.store.follow(alice.id, carol.id, T0)
        self.assertEqual((yield self.store.live_post_ids(alice.id)), [post.id])
        yield self.store.delete_post(post.id, T0 + 1)
        self.assertEqual((yield self.store.live_post_ids(alice.id)), [])
        yield self.store.remove_user(alice.id, T0 + 2)
        bob_now = yield self.store.get_account(bob.id)
        self.assertEqual((bob_now.friends_count, bob_now.followers_count), (0, 0))
        # The follow of a remote account stays, for the running server to
        # end with its notice.
        alice_now = yield self.store.get_account(alice.id)
        self.assertEqual((alice_now.friends_count, alice_now.followers_count), (1, 0))
        self.assertTrue((yield self.store.is_following(alice.id, carol.id)))
        self.assertIsNone((yield self.store.get_login("alice")))
        standing = yield self.store.standing("alice")
        self.assertEqual((standing.suspended, standing.deleted_at), (True, T0 + 2))
        moderation = yield self.store.moderation()
        self.assertEqual((moderation.suspended, moderation.deleted), ({alice.id}, {alice.id}))
        with self.assertRaises(HandleTaken):
            yield self.store.create_user("Alice", "", "h", T0)


class DevicesStoreTestsMixin:
    """
    Phones, IM and e-mail (issue 18), on every engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_addresses_and_codes(self):
        """
        An address is added unverified with its code's hash; wrong tries
        count; once verified it is the account's alone (another account
        cannot add it, and other claims on it go); removing it cancels what
        waits for it and turns its delivery device off.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        added = yield self.store.add_device_address(
            alice.id, "sms", "+15550001", "hash-a", T0 + 900, "tok-a", T0
        )
        self.assertEqual(added, DeviceAddress("sms", "+15550001", False, T0))
        yield self.store.add_device_address(bob.id, "sms", "+15550001", "hash-b", T0 + 900,
                                            "tok-b", T0)
        code = yield self.store.device_code(alice.id, "sms")
        self.assertEqual((code.code_hash, code.expires_at, code.tries), ("hash-a", T0 + 900, 0))
        self.assertEqual((yield self.store.count_code_try(alice.id, "sms")), 1)
        self.assertEqual((yield self.store.count_code_try(alice.id, "sms")), 2)
        self.assertIsNone((yield self.store.device_owner("sms", "+15550001")))
        verified = yield self.store.verify_device_address(alice.id, "sms")
        self.assertTrue(verified.verified)
        self.assertEqual((yield self.store.device_owner("sms", "+15550001")), alice.id)
        self.assertIsNone((yield self.store.device_code(bob.id, "sms")))
        with self.assertRaises(DeviceAddressTaken):
            yield self.store.add_device_address(bob.id, "sms", "+15550001", "h", T0, "t", T0)
        self.assertEqual(
            (yield self.store.device_by_token("tok-a")), (alice.id, "sms", "+15550001")
        )
        self.assertIsNone((yield self.store.device_by_token("tok-b")))
        self.assertEqual(
            [a.kind for a in (yield self.store.device_addresses(alice.id))], ["sms"]
        )
        yield self.store.save_device_settings(
            alice.id, DeviceSettings("sms", 22, 7, 3600, {"sms_mentions": True})
        )
        self.assertEqual(
            (yield self.store.device_settings(alice.id)),
            DeviceSettings("sms", 22, 7, 3600, {"sms_mentions": True}),
        )
        self.assertTrue((yield self.store.queue_device_message(
            alice.id, "sms", "+15550001", "answer", "hello", "", "", "k1", T0, T0
        )))
        self.assertFalse((yield self.store.queue_device_message(
            alice.id, "sms", "+15550001", "answer", "hello", "", "", "k1", T0, T0
        )))
        yield self.store.remove_device_address(alice.id, "sms")
        self.assertEqual((yield self.store.device_addresses(alice.id)), [])
        self.assertEqual((yield self.store.device_settings(alice.id)).delivery_device, "none")
        self.assertEqual((yield self.store.claim_device_messages(T0, T0 + 1, 10)), [])
        self.assertEqual((yield self.store.device_settings(bob.id)), DeviceSettings())

    @inlineCallbacks
    def test_stop_and_notifications(self):
        """
        STOP turns the owner's delivery device and choices of that kind off
        and cancels what waits; notifications of a friend are per follow.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        yield self.store.add_device_address(alice.id, "im", "a@x.test", "h", T0, "t1", T0)
        yield self.store.verify_device_address(alice.id, "im")
        yield self.store.save_device_settings(
            alice.id, DeviceSettings("im", None, None, 0, {"im_mentions": True})
        )
        yield self.store.queue_device_message(
            alice.id, "im", "a@x.test", "post", "hi", "", "", "k", T0, T0
        )
        self.assertIsNone((yield self.store.stop_device("im", "b@x.test")))
        self.assertEqual((yield self.store.stop_device("im", "a@x.test")), alice.id)
        settings = yield self.store.device_settings(alice.id)
        self.assertEqual(settings.delivery_device, "none")
        self.assertFalse(settings.choices["im_mentions"])
        self.assertEqual((yield self.store.claim_device_messages(T0, T0 + 1, 10)), [])
        self.assertFalse((yield self.store.set_device_notifications(alice.id, bob.id, True)))
        yield self.store.follow(alice.id, bob.id, T0)
        self.assertTrue((yield self.store.set_device_notifications(alice.id, bob.id, True)))
        self.assertEqual(
            (yield self.store.device_notifications_on(alice.id, [bob.id, alice.id])), {bob.id}
        )
        yield self.store.set_device_notifications(alice.id, bob.id, False)
        self.assertEqual((yield self.store.device_notifications_on(alice.id, [bob.id])), set())

    @inlineCallbacks
    def test_outbox(self):
        """
        A claimed message is leased (not claimed again until the lease
        ends); failed, it waits its backoff; a restart makes it due now;
        sent or given up it leaves the queue and counts in the health, and
        is pruned later.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        for key in ("a", "b", "c"):
            yield self.store.queue_device_message(
                alice.id, "email", "a@x.test", "reset", key, "subj", "", key, T0, T0
            )
        yield self.store.queue_device_message(
            alice.id, "email", "a@x.test", "dm", "later", "", "", "d", T0 + 5000, T0
        )
        claimed = yield self.store.claim_device_messages(T0, T0 + 100, 2)
        self.assertEqual([m.text for m in claimed], ["a", "b"])
        self.assertEqual([m.subject for m in claimed], ["subj", "subj"])
        again = yield self.store.claim_device_messages(T0, T0 + 100, 10)
        self.assertEqual([m.text for m in again], ["c"])
        yield self.store.device_message_sent(claimed[0].id, T0 + 1)
        yield self.store.device_message_failed(claimed[1].id, T0 + 1000, "down")
        yield self.store.device_message_given_up(again[0].id, T0 + 1, "refused")
        health = yield self.store.device_queue_health(T0 + 10)
        self.assertEqual(
            (health.pending, health.failing, health.sent, health.given_up, health.oldest_due),
            (2, 1, 1, 1, T0),
        )
        self.assertEqual((yield self.store.claim_device_messages(T0 + 10, T0 + 20, 10)), [])
        self.assertEqual((yield self.store.device_messages_due_now(T0 + 10)), 2)
        retried = yield self.store.claim_device_messages(T0 + 10, T0 + 9000, 10)
        self.assertEqual([(m.text, m.tries) for m in retried], [("b", 1)])
        self.assertEqual(
            [m.text for m in (yield self.store.claim_device_messages(T0 + 5000, T0 + 6000, 9))],
            ["later"],
        )
        self.assertEqual((yield self.store.prune_device_outbox(T0 + 2)), 2)
        self.assertEqual((yield self.store.device_queue_health(T0 + 10)).sent, 0)

    @inlineCallbacks
    def test_sweep(self):
        """
        The sweep finds new posts (local and copied) for followers with
        notifications on, mentions and replies of users with a verified
        address, direct messages to local users and new follows, once: after
        its queueing moves the cursors, nothing is found again; a second
        queueing of the same sweep (another process) does nothing.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        carol = yield self.store.ensure_account("carol", "s3:80", T0)
        yield self.store.add_device_address(alice.id, "sms", "+15550001", "h", T0, "t", T0)
        yield self.store.verify_device_address(alice.id, "sms")
        start = yield self.store.device_sweep(100, T0)
        yield self.store.queue_device_sweep(start, [], T0)
        yield self.store.follow(alice.id, bob.id, T0)
        yield self.store.follow(alice.id, carol.id, T0)
        yield self.store.follow(bob.id, alice.id, T0 + 1)
        yield self.store.set_device_notifications(alice.id, bob.id, True)
        yield self.store.set_device_notifications(alice.id, carol.id, True)
        friend = yield self.store.create_post(bob.id, "plain", "web", None, T0 + 2)
        own = yield self.store.create_post(alice.id, "mine", "web", None, T0 + 3)
        reply = yield self.store.create_post(bob.id, "@alice yes", "web", own.id, T0 + 4)
        yield self.store.note_remote_last("carol", "s3:80", 1, "http://s3:80")
        yield self.store.store_remote_items(
            carol.id, 1, 1, [Item(1, "from afar")], "s1:80", T0 + 5
        )
        message, _ = yield self.store.create_direct_message(bob.id, alice.id, "psst", T0 + 6, "o")
        found = yield self.store.device_sweep(100, T0 + 10)
        self.assertEqual(
            [(e.post.text, sorted(e.recipients)) for e in found.posts],
            [
                ("plain", [(alice.id, "friend")]),
                ("@alice yes", [(alice.id, "friend"), (alice.id, "mention"),
                                (alice.id, "reply")]),
                ("from afar", [(alice.id, "friend")]),
            ],
        )
        self.assertEqual([m.id for m in found.messages], [message.id])
        self.assertEqual(
            [(f.follower.handle, f.followee_id) for f in found.follows],
            [("alice", bob.id), ("alice", carol.id), ("bob", alice.id)],
        )
        self.assertEqual(found.recipients[alice.id].addresses, {"sms": "+15550001"})
        self.assertEqual(found.recipients[bob.id].addresses, {})
        self.assertFalse(found.empty)
        queued = [(alice.id, "sms", "+15550001", "post", "bob: plain", "", "",
                   f"post:{friend.id}", T0 + 10)]
        self.assertTrue((yield self.store.queue_device_sweep(found, queued, T0 + 10)))
        self.assertFalse((yield self.store.queue_device_sweep(found, queued, T0 + 10)))
        self.assertTrue((yield self.store.device_sweep(100, T0 + 11)).empty)
        recipient = yield self.store.device_recipient(alice.id, T0 + 11)
        self.assertEqual((recipient.sms_week, recipient.cap_told), (1, False))
        self.assertEqual(reply.in_reply_to_status_id, own.id)


class PasswordResetsStoreTestsMixin:
    """
    Password-reset links (issue 18), on every engine.
    """

    store: SQLStore

    @inlineCallbacks
    def test_password_reset_link_works_once(self):
        """
        A link kept is found by its hash; using it marks it, and every
        other unused link of the account, used; a second use, a use after
        it expires and an unknown hash change nothing.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        bob = yield self.store.create_user("bob", "", "h", T0)
        for token, account in (("a1", alice), ("a2", alice), ("b1", bob), ("old", alice)):
            kept = yield self.store.create_password_reset(
                token, account.id, account.handle + "@example.org", T0, T0 + 3600_000,
                T0 - 3600_000, 10,
            )
            self.assertTrue(kept)
        self.assertEqual(
            (yield self.store.password_reset("a1")),
            PasswordResetRecord(alice.id, "alice@example.org", T0, T0 + 3600_000, None),
        )
        self.assertIsNone((yield self.store.password_reset("nope")))
        self.assertIsNone((yield self.store.use_password_reset("a1", T0 + 3600_000)))
        used = yield self.store.use_password_reset("a1", T0 + 10)
        self.assertEqual(
            used, PasswordResetRecord(alice.id, "alice@example.org", T0, T0 + 3600_000, None)
        )
        self.assertIsNone((yield self.store.use_password_reset("a1", T0 + 11)))
        self.assertIsNone((yield self.store.use_password_reset("a2", T0 + 11)))
        self.assertIsNone((yield self.store.use_password_reset("nope", T0 + 11)))
        self.assertEqual((yield self.store.password_reset("a1")).used_at, T0 + 10)
        self.assertEqual((yield self.store.password_reset("a2")).used_at, T0 + 10)
        # Bob's link is his own.
        self.assertIsNotNone((yield self.store.use_password_reset("b1", T0 + 12)))

    @inlineCallbacks
    def test_password_reset_rate_limit(self):
        """
        No more than ``at_most`` links for one address since
        ``recent_since``; older ones do not count; links expired more than
        a day ago are forgotten when a new one is made.
        """
        alice = yield self.store.create_user("alice", "", "h", T0)
        made = []
        for n in range(4):
            made.append((yield self.store.create_password_reset(
                f"t{n}", alice.id, "alice@example.org", T0 + n, T0 + 1000, T0 - 1000, 3,
            )))
        self.assertEqual(made, [True, True, True, False])
        self.assertIsNone((yield self.store.password_reset("t3")))
        # Since T0 + 2, only t2 counts.
        self.assertTrue((yield self.store.create_password_reset(
            "t5", alice.id, "alice@example.org", T0 + 5, T0 + 1000, T0 + 2, 3,
        )))
        self.assertTrue((yield self.store.create_password_reset(
            "other", alice.id, "a2@example.org", T0, T0 + 1000, T0 - 1000, 3,
        )))
        later = T0 + 1000 + KEEP_EXPIRED_MS + 1
        self.assertTrue((yield self.store.create_password_reset(
            "t4", alice.id, "alice@example.org", later, later + 1000, T0 + 1, 3,
        )))
        self.assertIsNone((yield self.store.password_reset("t0")))
        self.assertIsNotNone((yield self.store.password_reset("t4")))


STORE_SUITE = (
    StoreTestsMixin,
    FederationStoreTestsMixin,
    APIStoreTestsMixin,
    FavoritesStoreTestsMixin,
    OAuthStoreTestsMixin,
    OIDCStoreTestsMixin,
    HistoryStoreTestsMixin,
    LogItemsStoreTestsMixin,
    OutboxStoreTestsMixin,
    BlocksStoreTestsMixin,
    DirectMessagesStoreTestsMixin,
    NotificationsStoreTestsMixin,
    UsageStoreTestsMixin,
    HealthStoreTestsMixin,
    AdminStoreTestsMixin,
    DevicesStoreTestsMixin,
    PasswordResetsStoreTestsMixin,
)


class SQLiteStoreTests(*STORE_SUITE, TestCase):  # type: ignore[misc]
    """
    The storage suite on SQLite, in a fresh file per test.
    """

    def make_engine(self) -> SQLiteEngine:
        return SQLiteEngine(self.mktemp() + ".sqlite3")


class PostgresStoreTests(*STORE_SUITE, TestCase):  # type: ignore[misc]
    """
    The storage suite on PostgreSQL, in a wiped database per test.
    """

    if postgres_url() is None:
        skip = POSTGRES_SKIP

    def make_engine(self) -> PostgresEngine:
        url = postgres_url()
        assert url is not None
        wipe_postgres(url)
        return PostgresEngine(url)


def store_calls(classes: list[type]) -> set[str]:
    """
    The names ``NAME`` of ``self.store.NAME(...)`` calls in the source of
    ``classes``, and of ``self.store.NAME`` handed to a call to be called
    (``addCleanup(self.store.close)``).
    """

    def store_method(node: ast.AST) -> str | None:
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "store"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"
        ):
            return node.attr
        return None

    names = set()
    for case in classes:
        tree = ast.parse(textwrap.dedent(inspect.getsource(case)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for candidate in [node.func, *node.args]:
                    name = store_method(candidate)
                    if name is not None:
                        names.add(name)
    return names


def untested(interface: Any, *engine_cases: type) -> list[str]:
    """
    The methods of ``interface`` that some engine's test case (with the
    mixins of this module it is made of) never calls.
    """
    missing: set[str] = set()
    for case in engine_cases:
        mine = [c for c in case.__mro__ if c.__module__ == __name__]
        missing |= set(interface.names(all=True)) - store_calls(mine)
    return sorted(missing)


class EveryMethodTestedTests(SynchronousTestCase):
    """
    Every method of IStore is called by the storage suite on both engines,
    so all the SQL runs on SQLite and on PostgreSQL.
    """

    def test_every_method_called_on_every_engine(self) -> None:
        """
        No IStore method goes uncalled by the SQLite or the PostgreSQL
        suite.
        """
        self.assertEqual(untested(IStore, SQLiteStoreTests, PostgresStoreTests), [])

    def test_a_missing_method_is_found(self) -> None:
        """
        The check can fail: a suite that calls one method leaves every
        other one reported, and a method only mentioned (not called) still
        counts as untested.
        """

        class OneCall:
            store: Any

            def test_one(self) -> None:
                self.store.get_post(1)
                self.store.get_account

        self.assertEqual(
            untested(IStore, OneCall), sorted(set(IStore.names(all=True)) - {"get_post"})
        )


class StoreAreasTests(SynchronousTestCase):
    """
    IStore is the sum of one interface per area, each provided by the SQL
    store's class of that area.
    """

    def test_each_area_class_provides_its_interface(self) -> None:
        """
        Every area class of the SQL store declares and has the methods of
        its area's interface.
        """
        for area, interface in [
            (AccountsStore, IAccountStore), (PostsStore, IPostStore),
            (TimelinesStore, ITimelineStore), (FollowsStore, IFollowStore),
            (FavoritesStore, IFavoriteStore), (AppsStore, IAppStore),
            (OIDCStore, IOIDCStore), (RemoteStore, IRemoteStore),
            (SessionsStore, ISessionStore), (HistoryStore, IHistoryStore),
            (OutboxStore, IOutboxStore), (BlocksStore, IBlockStore),
            (DirectMessagesStore, IDirectMessageStore),
            (NotificationsStore, INotificationStore),
            (UsageStore, IUsageStore),
            (HealthStore, IHealthStore),
            (AdminStore, IAdminStore),
            (DevicesStore, IDeviceStore),
            (PasswordResetsStore, IPasswordResetStore),
        ]:
            self.assertTrue(interface.implementedBy(area), area)
            self.assertTrue(verifyClass(interface, area))

    def test_areas_stay_small(self) -> None:
        """
        IStore has every method of the store, none of its area interfaces
        more than 30.
        """
        areas = [base for base in IStore.__bases__ if base is not Interface]
        self.assertEqual(len(areas), 19)
        self.assertEqual(
            set(IStore.names(all=True)),
            set(IStore.names()).union(*(area.names(all=True) for area in areas)),
        )
        for area in areas:
            self.assertLessEqual(len(area.names(all=True)), 30, area)


class NewerDatabaseStartTests(SynchronousTestCase):
    """
    A server started on a database from a newer distwit exits with the
    refusal as its message, not a traceback.
    """

    def start_on(self, engine: Any, database: str) -> str:
        from distwit.tap import Options, makeService

        prepare_database(engine)
        connection = engine.connect()
        try:
            connection.cursor().execute(
                "INSERT INTO schema_version (version, name) VALUES (99, '099_future.sql')"
            )
            connection.commit()
        finally:
            connection.close()
        options = Options()
        arguments = ["--data", self.data, "--role", "twitter", "--listen", "tcp:0"]
        options.parseOptions(arguments + (["--database", database] if database else []))
        error = self.assertRaises(SystemExit, makeService, options, MemoryReactorClock())
        return str(error)

    def setUp(self) -> None:
        self.data = self.mktemp()
        os.makedirs(self.data)

    def check(self, message: str) -> None:
        newest = migrations()[-1][0]
        self.assertTrue(message.startswith("distwit: cannot open "), message)
        self.assertIn("is at version 99 of the twitter role's schema", message)
        self.assertIn(f"newer than this distwit knows (version {newest})", message)
        self.assertIn("Run that newer distwit, or restore a backup", message)
        self.assertNotIn("Traceback", message)

    def test_sqlite(self) -> None:
        """
        On SQLite (the default database in the data folder).
        """
        engine = SQLiteEngine(os.path.join(self.data, "distwit.sqlite3"))
        self.check(self.start_on(engine, ""))

    def test_postgres(self) -> None:
        """
        On PostgreSQL (``--database postgresql://...``).
        """
        url = postgres_url()
        if url is None:
            raise SkipTest(POSTGRES_SKIP)
        wipe_postgres(url)
        self.check(self.start_on(PostgresEngine(url), url))
