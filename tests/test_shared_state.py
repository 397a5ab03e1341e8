"""
The state the processes of one server share (distwit/store/shared.py):
the in-memory provider, the Redis provider on a real Redis, and the rules
that use it (rate limits, wrong-password locks, remembered passwords).
"""

from __future__ import annotations

import secrets

from twisted.internet import reactor, task
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from distwit.core.limits import AddressLimits, SharedRateLimiter
from distwit.core.microblog import (
    MAX_FAILED_SIGN_INS,
    AccountLocked,
    Microblog,
    OverDailyLimit,
)
from distwit.federation.notices import NoticeReceiver
from distwit.store.shared import ISharedState, MemorySharedState
from tests.support import cheap_hasher, synchronous_sqlite_store
from tests.test_multi_process import redis_answers, redis_forget, redis_url

PASSWORD = "correct horse battery"


class MemorySharedStateTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.state = MemorySharedState(self.clock)

    def test_interface(self) -> None:
        """
        The in-memory provider is an ISharedState.
        """
        verifyObject(ISharedState, self.state)

    def test_count_in_windows(self) -> None:
        """
        A counter counts within its window, says the time left, and starts
        again after it.
        """
        self.assertEqual(self.successResultOf(self.state.count("k", 10)), (1, 10))
        self.clock.advance(4)
        self.assertEqual(self.successResultOf(self.state.count("k", 10)), (2, 6))
        self.assertEqual(self.successResultOf(self.state.counted("k")), (2, 6))
        self.clock.advance(6)
        self.assertIsNone(self.successResultOf(self.state.counted("k")))
        self.assertEqual(self.successResultOf(self.state.count("k", 10)), (1, 10))

    def test_values_expire_and_are_taken_once(self) -> None:
        """
        ``add`` refuses a key that is there (a nonce seen); ``take`` gives
        a value once; values go when their time is up.
        """
        self.assertTrue(self.successResultOf(self.state.add("n", "1", 5)))
        self.assertFalse(self.successResultOf(self.state.add("n", "1", 5)))
        self.clock.advance(5)
        self.assertTrue(self.successResultOf(self.state.add("n", "1", 5)))
        self.successResultOf(self.state.put("code", "v", 5))
        self.assertEqual(self.successResultOf(self.state.take("code")), "v")
        self.assertIsNone(self.successResultOf(self.state.take("code")))

    def test_reconnected_never_called(self) -> None:
        """
        One process's memory has no connection to lose: ``reconnected``
        takes a callback and never calls it.
        """
        called: list[int] = []
        self.state.reconnected(lambda: called.append(1))
        self.state.publish("wake", "up")
        self.assertEqual(called, [])

    def test_versions_and_messages(self) -> None:
        """
        Versions count up from 0; a published message reaches listeners.
        """
        self.assertEqual(self.successResultOf(self.state.version("v")), 0)
        self.assertEqual(self.successResultOf(self.state.bump("v")), 1)
        heard: list[str] = []
        self.state.listen("c", heard.append)
        self.successResultOf(self.state.publish("c", "hello"))
        self.assertEqual(heard, ["hello"])


class SharedLimitsTests(SynchronousTestCase):
    def test_two_limiters_one_allowance(self) -> None:
        """
        Two processes' limiters on one shared state give a caller one
        allowance: the third call of a limit of 2 is refused by either.
        """
        clock = Clock()
        state = MemorySharedState(clock)
        first = SharedRateLimiter(state, clock, "api", window=60, limits={"read": 2})
        second = SharedRateLimiter(state, clock, "api", window=60, limits={"read": 2})

        def take(limiter: SharedRateLimiter) -> bool:
            allowance = self.successResultOf(
                ensureDeferred(limiter.take("user:alice", "x", "read"))
            )
            return allowance.allowed

        self.assertEqual([take(first), take(second), take(first), take(second)],
                         [True, True, False, False])
        clock.advance(60)
        self.assertTrue(take(second))

    def test_forgotten_by_every_process(self) -> None:
        """
        An operator's unlock (``forget`` at the unlock's generation, read by
        every process from the database) lifts a shared lock in every
        process: both count afresh, in the same keys.
        """
        clock = Clock()
        state = MemorySharedState(clock)
        first = SharedRateLimiter(state, clock, "pw", window=600, limits={"all": 2})
        second = SharedRateLimiter(state, clock, "pw", window=600, limits={"all": 2})

        def take(limiter: SharedRateLimiter) -> bool:
            allowance = self.successResultOf(
                ensureDeferred(limiter.take("*", "alice", "all"))
            )
            return allowance.allowed

        self.assertEqual([take(first), take(second), take(first)], [True, True, False])
        first.forget("alice", 1234)
        second.forget("alice", 1234)
        self.assertEqual([take(second), take(first), take(second)], [True, True, False])

    def test_notices_per_server_shared(self) -> None:
        """
        Two processes' notice receivers on one shared state give a signing
        server one allowance of notices a minute, whichever takes them.
        """
        clock = Clock()
        state = MemorySharedState(clock)
        store = synchronous_sqlite_store(self.mktemp())
        self.addCleanup(store.close)
        receivers = [
            NoticeReceiver(store, None, clock, "s1.test", per_minute=2, shared=state)  # type: ignore[arg-type]
            for _ in range(2)
        ]

        def allow(receiver: NoticeReceiver, signer: str) -> bool:
            return self.successResultOf(ensureDeferred(receiver.allow(signer)))

        first, second = receivers
        self.assertEqual(
            [allow(first, "https://s2.test"), allow(second, "https://s2.test"),
             allow(first, "https://s2.test"), allow(second, "https://s3.test")],
            [True, True, False, True],
        )
        clock.advance(60)
        self.assertTrue(allow(second, "https://s2.test"))

    def test_address_limits_shared(self) -> None:
        """
        Per-address limits built on a shared state count there.
        """
        clock = Clock()
        state = MemorySharedState(clock)
        one = AddressLimits(clock, 60, {"read": 1, "write": 1}, state=state)
        two = AddressLimits(clock, 60, {"read": 1, "write": 1}, state=state)
        self.assertTrue(self.successResultOf(ensureDeferred(one.take("10.0.0.1", "read"))).allowed)
        self.assertFalse(
            self.successResultOf(ensureDeferred(two.take("10.0.0.1", "read"))).allowed
        )


class SharedPasswordsTests(SynchronousTestCase):
    """
    Two processes' rules (two Microblogs) on one database and one shared
    state.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        store = synchronous_sqlite_store(self.mktemp())
        state = MemorySharedState(self.clock)
        self.one = Microblog(store, cheap_hasher(), self.clock)
        self.two = Microblog(store, cheap_hasher(), self.clock)
        for microblog in (self.one, self.two):
            microblog.share(state)
        self.alice = self.successResultOf(
            ensureDeferred(self.one.create_user("alice", PASSWORD))
        )

    def authenticate(self, microblog: Microblog, password: str) -> object:
        return self.successResultOf(
            ensureDeferred(microblog.authenticate("alice", password, "192.0.2.1"))
        )

    def test_password_change_ends_remembered_password_elsewhere(self) -> None:
        """
        A password changed through one process is refused at once by the
        other, which had remembered it as right.
        """
        self.assertIsNotNone(self.authenticate(self.two, PASSWORD))
        self.successResultOf(
            ensureDeferred(self.one.set_password(self.alice, "a new long password"))
        )
        self.assertIsNone(self.authenticate(self.two, PASSWORD))
        self.assertIsNotNone(self.authenticate(self.two, "a new long password"))

    def test_lock_counted_by_both(self) -> None:
        """
        Wrong passwords given to either process add up to one lock.
        """
        for i in range(MAX_FAILED_SIGN_INS):
            self.assertIsNone(self.authenticate((self.one, self.two)[i % 2], f"wrong {i}"))
        failure = self.failureResultOf(
            ensureDeferred(self.one.authenticate("alice", PASSWORD, "192.0.2.1"))
        )
        failure.trap(AccountLocked)
        failure = self.failureResultOf(
            ensureDeferred(self.two.authenticate("alice", PASSWORD, "192.0.2.1"))
        )
        failure.trap(AccountLocked)


class RedisSharedStateTests(TestCase):
    """
    The Redis provider on a real Redis (``DISTWIT_TEST_REDIS``, default
    the machine's), under a prefix of this test's, removed afterwards.
    """

    def setUp(self) -> None:
        url = redis_url()
        if not redis_answers(url):
            raise SkipTest(f"no Redis answers at {url} (set DISTWIT_TEST_REDIS; .ci/run does)")
        from distwit.store.redis import RedisSharedState

        prefix = f"distwit-test-{secrets.token_hex(6)}:"
        self.addCleanup(redis_forget, url, prefix)
        joined = url + ("&" if "?" in url else "?") + "prefix=" + prefix
        self.state = RedisSharedState(joined, reactor)
        self.other = RedisSharedState(joined, reactor)
        self.addCleanup(self.state.close)
        self.addCleanup(self.other.close)

    def test_interface(self) -> None:
        """
        The Redis provider is an ISharedState.
        """
        verifyObject(ISharedState, self.state)

    async def test_shared_between_connections(self) -> None:
        """
        Two providers on one Redis (two processes) share counters, values,
        versions and messages; counters end with their window.
        """
        heard: list[str] = []
        self.other.listen("wake", heard.append)
        await self.other.subscribed()
        self.assertEqual((await self.state.count("c", 0.5))[0], 1)
        used, left = await self.other.count("c", 0.5)
        self.assertEqual(used, 2)
        self.assertTrue(0 < left <= 0.5, left)
        self.assertTrue(await self.state.add("nonce", "1", 10))
        self.assertFalse(await self.other.add("nonce", "1", 10))
        await self.state.put("code", "value", 10)
        self.assertEqual(await self.other.take("code"), "value")
        self.assertIsNone(await self.state.take("code"))
        self.assertEqual(await self.other.bump("v"), 1)
        self.assertEqual(await self.state.version("v"), 1)
        await self.state.publish("wake", "up")
        for _ in range(250):
            if heard:
                break
            await task.deferLater(reactor, 0.02)
        self.assertEqual(heard, ["up"])
        await task.deferLater(reactor, 0.6)
        self.assertIsNone(await self.state.counted("c"))

    async def test_reconnected_after_loss(self) -> None:
        """
        When the connection that brings the messages is lost, the provider
        connects again, subscribes again, and calls its ``reconnected``
        callbacks once (what was published meanwhile never arrives); the
        first connection calls none.
        """
        heard: list[str] = []
        back: list[int] = []
        self.other.listen("wake", heard.append)
        self.other.reconnected(lambda: back.append(1))
        await self.other.subscribed()
        self.assertEqual(back, [])
        lost = self.other._subscriber
        lost.transport.abortConnection()
        for _ in range(500):
            if back and self.other._subscriber not in (None, lost):
                break
            await task.deferLater(reactor, 0.02)
        self.assertEqual(back, [1])
        await self.other.subscribed()
        await self.state.publish("wake", "again")
        for _ in range(250):
            if heard:
                break
            await task.deferLater(reactor, 0.02)
        self.assertEqual(heard, ["again"])


class SharedSignInsTests(SynchronousTestCase):
    def test_pending_sign_in_claimed_by_another_process(self) -> None:
        """
        A sign-in begun by one process (its relying party) is finished by
        another, once; without a shared state none is kept there.
        """
        from distwit.oidc.rp import PendingSignIn, RelyingParty

        clock = Clock()
        state = MemorySharedState(clock)
        one, two = (RelyingParty(None, None, "https://here.example", clock, "x")  # type: ignore[arg-type]
                    for _ in range(2))
        alone = RelyingParty(None, None, "https://here.example", clock, "x")  # type: ignore[arg-type]
        one.shared = two.shared = state
        pending = PendingSignIn(
            identifier="alice@there.example", issuer="https://there.example",
            client_id="c", state="s", nonce="n", code_verifier="v",
            token_endpoint="https://there.example/oidc/token",
            jwks_uri="https://there.example/oidc/jwks", iss_parameter_required=True,
            created=0.0,
        )
        self.assertTrue(self.successResultOf(
            ensureDeferred(one.keep_pending("cookie", pending, "/home", 600))
        ))
        claimed = self.successResultOf(ensureDeferred(two.claim_pending("cookie")))
        self.assertEqual(claimed, (pending, "/home"))
        self.assertIsNone(self.successResultOf(ensureDeferred(one.claim_pending("cookie"))))
        self.assertFalse(self.successResultOf(
            ensureDeferred(alone.keep_pending("cookie", pending, "/home", 600))
        ))


class LeaderElectionTests(TestCase):
    """
    The advisory-lock leader on a real PostgreSQL (``DISTWIT_TEST_POSTGRES``).
    """

    def setUp(self) -> None:
        from tests.support import POSTGRES_SKIP, postgres_url

        url = postgres_url()
        if url is None:
            raise SkipTest(POSTGRES_SKIP)
        self.url = url

    async def test_one_leader_then_another(self) -> None:
        """
        Of two processes' elections one leads and runs its duties; when it
        stops (its connection closes), the other takes over at its next try.
        """
        from twisted.application.service import MultiService, Service

        from distwit.roles.leader import LeaderElection

        class Duty(Service):
            pass

        duties = [MultiService(), MultiService()]
        for parent in duties:
            Duty().setServiceParent(parent)
        elections = [LeaderElection(self.url, reactor, d, interval=0.2, key=0x6477_7e57)
                     for d in duties]
        def stop(election: LeaderElection) -> object:
            return election.stopService() if election.running else None

        for election in elections:
            election.startService()
            self.addCleanup(stop, election)

        async def settle(condition: object) -> None:
            for _ in range(250):
                if condition():  # type: ignore[operator]
                    return
                await task.deferLater(reactor, 0.02)
            self.fail("not within 5 s")

        await settle(lambda: any(e.leading for e in elections))
        await task.deferLater(reactor, 0.5)
        leading = [e for e in elections if e.leading]
        self.assertEqual(len(leading), 1)
        first = leading[0]
        second = elections[1 - elections.index(first)]
        self.assertTrue(first.duties.running)
        self.assertFalse(second.duties.running)
        await first.stopService()
        self.assertFalse(first.duties.running)
        await settle(lambda: second.leading)
        self.assertTrue(second.duties.running)


class SharedDailyLimitTests(SynchronousTestCase):
    def test_daily_limit_counts_every_process(self) -> None:
        """
        The daily post limit counts a user's posts through every process.
        """
        clock = Clock()
        clock.advance(1_700_000_000)
        store = synchronous_sqlite_store(self.mktemp())
        state = MemorySharedState(clock)
        one = Microblog(store, cheap_hasher(), clock)
        two = Microblog(store, cheap_hasher(), clock)
        for microblog in (one, two):
            microblog.daily_posts = 2
            microblog.share(state)
        alice = self.successResultOf(ensureDeferred(one.create_user("alice", PASSWORD)))
        self.successResultOf(ensureDeferred(one.post(alice, "first", "web")))
        self.successResultOf(ensureDeferred(two.post(alice, "second", "web")))
        failure = self.failureResultOf(ensureDeferred(one.post(alice, "third", "web")))
        failure.trap(OverDailyLimit)
        failure = self.failureResultOf(ensureDeferred(two.post(alice, "third", "web")))
        failure.trap(OverDailyLimit)
        clock.advance(86400)
        self.successResultOf(ensureDeferred(two.post(alice, "a day later", "web")))


class RedisDownTests(TestCase):
    async def test_redis_down_fails_quickly(self) -> None:
        """
        With nothing listening at the Redis URL a command fails with
        RedisUnavailable after the command timeout: a request that needs
        Redis gets an error, never waits for ever.
        """
        from distwit.store.redis import COMMAND_TIMEOUT, RedisSharedState, RedisUnavailable
        from tests.processes import free_port

        state = RedisSharedState(f"redis://127.0.0.1:{free_port()}/0", reactor)
        self.addCleanup(state.close)
        started = reactor.seconds()
        with self.assertRaises(RedisUnavailable):
            await state.count("c", 10)
        self.assertLess(reactor.seconds() - started, COMMAND_TIMEOUT + 2)
