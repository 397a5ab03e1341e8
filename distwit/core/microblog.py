"""
The twitter role's rules, independent of HTTP: who may post what, how
long a message may be, who follows whom.

:class:`Microblog` is what the API and the pages call.  It raises the
exceptions below for requests the rules refuse; the API turns them into
Twitter's error bodies, the pages into messages.
"""

from __future__ import annotations

from collections import deque

from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from distwit.model import PROFILE_LIMITS as MODEL_PROFILE_LIMITS
from distwit.model import (
    MAX_POST_LENGTH,
    PROFILE,
    RESERVED_HANDLES,
    Account,
    Post,
    is_valid_handle,
    limit_source,
    single_line,
    normalize_text,
    post_length,
)
from distwit.config import DAILY_POST_LIMIT
from distwit.core.apps import Apps
from distwit.core.images import ImageRefused, ProfileImages
from distwit.core.limits import RateLimiter, SharedRateLimiter
from distwit.core.oidc import OIDCRecords
from distwit.core.cache import ReadCache
from distwit.core.passwords import CredentialCache, PasswordHasher
from distwit.core.sessions import Sessions
from distwit.core.timelines import Timelines
from distwit.store.shared import ISharedState
from distwit.store.interfaces import Moderation
from distwit.store.interfaces import (
    DuplicatePost,
    FollowBlocked,
    HandleTaken,
    IStore,
    NoSuchPost,
)

#: The shortest password a new user may choose.
MIN_PASSWORD_LENGTH = 8


class RuleError(Exception):
    """
    A request the rules refuse; ``str()`` is a message for a person.
    """


class InvalidHandle(RuleError):
    pass


class HandleUnavailable(RuleError):
    pass


class WeakPassword(RuleError):
    pass


def check_password(password: str) -> None:
    """
    The rules a new password must meet (sign-up, a change, a reset).

    :raise WeakPassword: shorter than :data:`MIN_PASSWORD_LENGTH`.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")


class EmptyPost(RuleError):
    pass


class PostTooLong(RuleError):
    pass


class DuplicateStatus(RuleError):
    pass


#: Accounts one may follow, as Twitter allowed.  (The posts a user may
#: make in a day are a setting: :data:`distwit.config.DAILY_POST_LIMIT`.)
MAX_FOLLOWING = 5000
DAY_MS = 24 * 3600 * 1000


class OverDailyLimit(RuleError):
    """
    Too many posts in the last 24 hours.
    """


#: Wrong passwords for one account from one network address within
#: LOCK_WINDOW seconds before the account is locked for that address until
#: the window ends (against guessing).  Counted per (account, address) so a
#: stranger cannot lock the owner out: the owner's own address is not
#: locked by a stranger's failures.
MAX_FAILED_SIGN_INS = 10
LOCK_WINDOW = 15 * 60

#: Wrong passwords for one account from all addresses together within
#: LOCK_WINDOW seconds before it is locked for every address (against
#: guessing from many addresses).  High, because reaching it locks the
#: owner out too: with the per-address limit below, it takes at least
#: ACCOUNT_FAILURES / ADDRESS_FAILURES addresses, and it caps guessing at
#: about 30,000 passwords a day per account.
ACCOUNT_FAILURES = 300


class AccountLocked(RuleError):
    """
    Too many wrong passwords for this account lately.
    """


#: Wrong passwords from one network address, whatever the accounts, within
#: ADDRESS_WINDOW seconds; then that address may try no more until the
#: window ends (against guessing many accounts' passwords from one place).
ADDRESS_FAILURES = 30
ADDRESS_WINDOW = 15 * 60


class AccountSuspended(RuleError):
    """
    The signed-in user is suspended by the operator (Twitter's 64).
    """


class UserSuspended(RuleError):
    """
    The user asked for is suspended by the operator (Twitter's 63).
    """


class TooManyWrongPasswords(RuleError):
    """
    Too many wrong passwords from this network address lately.
    """


class AlreadyFavorited(RuleError):
    """
    Favoriting a status twice.
    """


class FollowLimit(RuleError):
    """
    Following as many as one may.
    """


#: Twitter's lengths for profile fields (``distwit.model.PROFILE_LIMITS``).
PROFILE_LIMITS = MODEL_PROFILE_LIMITS


class ProfileTooLong(RuleError):
    """
    A profile field over its length.
    """


class NoSuchUser(RuleError):
    pass


class BadImage(RuleError):
    """
    An uploaded profile image refused.
    """


class AlreadyRetweeted(RuleError):
    """
    Retweeting one's own post, or a post twice (Twitter's 327).
    """


class NoSuchStatus(RuleError):
    pass


class NotYourStatus(RuleError):
    pass


class CannotFollowSelf(RuleError):
    pass


class BlockedFromFollowing(RuleError):
    """
    A follow refused because of a block, either way (Twitter's 162).
    """


class CannotBlockSelf(RuleError):
    pass


class Microblog:
    """
    Users, posts and follows of one twitter server.

    :param store: the :class:`IStore`.
    :param hasher: the password hasher.
    :param clock: an ``IReactorTime``; its ``seconds()`` timestamps posts.
    """

    log = Logger()

    def __init__(self, store: IStore, hasher: PasswordHasher, clock: Any) -> None:
        self.store = store
        #: What the faces read and keep, through the rules of each area.
        self.timelines = Timelines(store)
        self.apps = Apps(store, clock)
        self.sessions = Sessions(store)
        self.oidc = OIDCRecords(store)
        #: Profile images (the composition root may give it a thread pool).
        self.images = ProfileImages(store)
        self._hasher = hasher
        self._clock = clock
        self._credentials = CredentialCache(clock)
        #: Verifications under way, by handle and the credentials' keyed
        #: hash: the Deferreds of the requests waiting for the same answer.
        self._verifying: dict[tuple[str, bytes], list[Deferred[Account | None]]] = {}
        #: Called with (handle, last number) when a local user's last number
        #: changes, so the sync service can tell the ping servers at once.
        self.local_changed: Callable[[str, int], None] | None = None
        self.daily_posts = DAILY_POST_LIMIT
        self.max_following = MAX_FOLLOWING
        #: Wrong passwords per (account, address) and per account (the locks).
        self._wrong_for = RateLimiter(
            clock, window=LOCK_WINDOW,
            limits={"from-address": MAX_FAILED_SIGN_INS, "all": ACCOUNT_FAILURES},
        )
        #: Wrong passwords per network address, whatever the account.
        self._wrong_from = RateLimiter(
            clock, window=ADDRESS_WINDOW, limits={"wrong-password": ADDRESS_FAILURES}
        )
        #: The state several processes share (``--redis``), set by
        #: :meth:`share`; ``None``: this process alone keeps it.
        self._shared: ISharedState | None = None
        #: What the operator decided (suspended accounts, locks, blocked
        #: servers), as last read from the store (:meth:`refresh_moderation`).
        self.moderation = Moderation()
        #: The newest operator unlock applied, by lower-case handle.
        self._unlocks_applied: dict[str, int] = {}
        #: When each author posted in the last day (for the daily limit).
        self._recent_posts: dict[int, deque[int]] = {}
        #: Follows across servers (:class:`distwit.federation.follows.Federation`);
        #: without it, only local users can be followed.
        self.federation: Any = None
        #: Called with ``(retweet, original, undo)`` when a local user
        #: retweets a post or undoes it: the hook that tells the original's
        #: server (its notice) so that it counts the retweet.
        self.on_retweet: list[Callable[[Post, Post, bool], None]] = []
        #: Called with each new local post once it is committed: the hook
        #: that wakes the outbox when the post mentions or replies to
        #: someone elsewhere (most posts do not, and need no round).
        self.on_post: list[Callable[[Post], None]] = []
        #: This server's public URL (no trailing slash), for the URLs of
        #: profile images; set by the composition root.
        self.public_url = ""

    @property
    def clock(self) -> Any:
        return self._clock

    @property
    def shared(self) -> ISharedState | None:
        """
        The state this server's processes share (:meth:`share`), or
        ``None`` for a process on its own.
        """
        return self._shared

    def share(self, state: ISharedState) -> None:
        """
        Keep the wrong-password counts and locks in ``state``, shared by
        the processes of this server, and check a remembered password
        against its version there, so that a password changed through one
        process stops working through every other at once
        (docs/design/several-processes.md).
        """
        self._shared = state
        self._wrong_for = SharedRateLimiter(
            state, self._clock, "wrong-for", window=LOCK_WINDOW,
            limits={"from-address": MAX_FAILED_SIGN_INS, "all": ACCOUNT_FAILURES},
        )
        self._wrong_from = SharedRateLimiter(
            state, self._clock, "wrong-from", window=ADDRESS_WINDOW,
            limits={"wrong-password": ADDRESS_FAILURES},
        )
        # The caches of reads (timelines, apps and tokens) see only this
        # process's writes: with other processes writing the same database,
        # every read goes to it (docs/design/read-caches.md).
        self.timelines.reads = ReadCache(lambda: None)
        self.apps.reads = ReadCache(lambda: None)
        if self.apps.nonces is not None:
            self.apps.nonces.share(state)

    async def _password_version(self, handle: str) -> int:
        if self._shared is None:
            return 0
        return int(await self._shared.version("password-version:" + handle.lower()))

    def now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    async def update_profile(
        self,
        user: Account,
        name: str | None = None,
        description: str | None = None,
        location: str | None = None,
        url: str | None = None,
        image: str | None = None,
    ) -> Account:
        """
        Change the given profile fields of a local user; ``None`` keeps one.
        The change is an item of the user's numbered log (taken in the same
        transaction), so it reaches their followers' servers.

        :param image: the hash of a profile image stored here.
        :raise ProfileTooLong: a field is over Twitter's length for it.
        """
        # The signed-in account may come from the credential cache: keep
        # the fields as they are now, not as they were when it was cached.
        user = await self.store.get_account(user.id) or user
        current = {
            "name": user.name, "description": user.description,
            "location": user.location, "url": user.url,
        }
        given = {"name": name, "description": description, "location": location, "url": url}
        for field, value in given.items():
            if value is None:
                continue
            # One line, without what XML cannot carry: a name reaches every
            # feed and XML answer, and a control character there broke them.
            value = single_line(value)
            limit = PROFILE_LIMITS[field]
            if post_length(value) > limit:
                raise ProfileTooLong(f"Account update failed: {field} is over {limit} characters.")
            if field == "url" and value and not value.startswith(("http://", "https://")):
                value = "http://" + value
            current[field] = value
        unchanged = current == {
            "name": user.name, "description": user.description,
            "location": user.location, "url": user.url,
        }
        if unchanged and image in (None, user.profile_image):
            # Nothing to tell the followers' servers: no item.
            return user
        account: Account = await self.store.update_profile(
            user.id, **current, image=image, changed_at=self.now_ms()
        )
        self._changed(account, account.last_seq)
        return account

    async def update_profile_image(self, user: Account, data: bytes) -> Account:
        """
        Check, resize and keep an uploaded image and make it the user's
        profile image (a profile change: it travels).

        :raise BadImage: not an image distwit takes (too large, too many
            pixels, not an image).
        """
        try:
            image_hash = await self.images.upload(data, self.now_ms())
        except ImageRefused as e:
            raise BadImage(str(e)) from None
        return await self.update_profile(user, image=image_hash)

    # Users

    async def create_user(self, handle: str, password: str, name: str = "") -> Account:
        """
        Add a local user.

        :raise InvalidHandle: the handle breaks Twitter's rule.
        :raise HandleUnavailable: taken (any case) or reserved.
        :raise WeakPassword: shorter than :data:`MIN_PASSWORD_LENGTH`.
        """
        if not is_valid_handle(handle):
            raise InvalidHandle(
                "A handle is 1 to 15 letters, digits or underscores (A-Z, a-z, 0-9, _)."
            )
        if handle.lower() in RESERVED_HANDLES:
            raise HandleUnavailable(f"The handle {handle!r} is reserved.")
        check_password(password)
        name = single_line(name)[: PROFILE_LIMITS["name"]]
        password_hash = await self._hasher.hash(password)
        try:
            account = await self.store.create_user(
                handle, name, password_hash, self.now_ms()
            )
        except HandleTaken:
            raise HandleUnavailable(f"The handle {handle!r} is taken.") from None
        self.log.info("new user {handle}", handle=handle)
        return account

    # The operator's decisions (docs/operating.md)

    async def refresh_moderation(self) -> None:
        """
        Read what the operator decided (``distwit user``, ``distwit
        server``) from the store; an unlock newer than the last applied
        forgets the wrong-password counts of that user.
        """
        moderation: Moderation = await self.store.moderation()
        for handle, (_, unlocked_at) in moderation.locks.items():
            if unlocked_at > self._unlocks_applied.get(handle, 0):
                self._unlocks_applied[handle] = unlocked_at
                self._wrong_for.forget(handle, unlocked_at)
        newly_deleted = moderation.deleted - self.moderation.deleted
        self.moderation = moderation
        for account_id in sorted(newly_deleted):
            # Deleted by `distwit user delete` (another process): its
            # tombstones are told to the ping servers, so that the
            # followers' servers fetch them and delete their copies.
            account = await self.store.get_account(account_id)
            if account is not None:
                self._credentials.forget(account.handle)
                self._changed(account, account.last_seq)
                await self._end_remote_follows(account)

    async def _end_remote_follows(self, account: Account) -> None:
        """
        A deleted user's follows of remote accounts end, each with its
        unfollow notice (the command that deleted it has no federation).
        """
        if self.federation is None:
            return
        while page := await self.store.following_page(account.id, False, None, 200):
            remote = [target for target in page if not target.is_local]
            if not remote:
                return
            for target in remote:
                await self.unfollow(account, target)

    def is_suspended(self, account: Account) -> bool:
        return account.id in self.moderation.suspended

    def is_blocked_server(self, authority: str) -> bool:
        """
        Whether the operator blocked the server at ``authority`` (as last
        read: at most a second old).
        """
        return authority.lower() in self.moderation.blocked

    async def is_blocked_server_now(self, authority: str) -> bool:
        """
        :meth:`is_blocked_server`, read from the store: for what a server
        asks to change here (its notices), a block takes effect at once,
        not at the next second's reading (one read of the blocked servers
        alone; the rest of the operator's decisions wait for their round).
        """
        blocked = await self.store.blocked_servers()
        return any(found == authority.lower() for found, _, _ in blocked)

    def check_not_suspended(self, account: Account) -> Account:
        """
        ``account``, unless the operator suspended it (or blocked its server).

        :raise UserSuspended: it is.
        """
        if self.is_suspended(account) or (
            account.authority and self.is_blocked_server(account.authority)
        ):
            raise UserSuspended("User has been suspended.")
        return account

    async def authenticate(self, handle: str, password: str, address: str) -> Account | None:
        """
        The local user if ``password`` is theirs, else ``None``: the one
        password check of every door (HTTP Basic, OAuth's authorize form and
        xAuth, the sign-in page, which OpenID Connect sign-ins use too).

        :param address: the network address the password came from.
        :raise TooManyWrongPasswords: that address gave too many wrong
            passwords lately (checked before the password).
        :raise AccountLocked: the account had too many wrong passwords
            lately from this address (or from everywhere, a much higher
            count), and this one is not known to be right.
        """
        if not (await self._wrong_from.look(address, "sign-in", "wrong-password")).remaining:
            raise TooManyWrongPasswords(
                "Too many wrong passwords from your address; try again in"
                f" {ADDRESS_WINDOW // 60} minutes."
            )
        account = await self._check_password(handle, password, address)
        if account is None:
            await self._wrong_from.take(address, "sign-in", "wrong-password")
        elif self.is_suspended(account):
            raise AccountSuspended(
                "Your account is suspended and is not permitted to access this feature."
            )
        return account

    async def _locked(self, handle: str, address: str) -> bool:
        return not (
            (await self._wrong_for.look(address, handle, "from-address")).remaining
            and (await self._wrong_for.look("*", handle, "all")).remaining
        )

    async def _check_password(
        self, handle: str, password: str, address: str
    ) -> Account | None:
        if not is_valid_handle(handle):
            return None
        handle = handle.lower()
        lock = self.moderation.locks.get(handle)
        if lock is not None and lock[0] > self.now_ms():
            raise AccountLocked("This account is locked by the server's operator.")
        known = self._credentials.lookup(handle, password)
        if known is not None:
            # Verified a moment ago: no database read.  The account's
            # counts may be a little old; what shows them reads them anew.
            cached, version = known
            if self._shared is None or version == await self._password_version(handle):
                return cached  # type: ignore[no-any-return]
        if await self._locked(handle, address):
            raise AccountLocked(
                "To protect this account from password guessing, it is locked for"
                f" {LOCK_WINDOW // 60} minutes after {MAX_FAILED_SIGN_INS} wrong passwords."
            )
        account = await self._verify_once(handle, password)
        if account is not None:
            return account
        # Counted for unknown handles too: a lock that only known
        # accounts reach would tell which exist.
        await self._wrong_for.take(address, handle, "from-address")
        await self._wrong_for.take("*", handle, "all")
        return None

    async def _verify_once(self, handle: str, password: str) -> Account | None:
        """
        Verify a password, once for all the requests that bring the same
        credentials while it is being verified: after a restart every
        client's first requests arrive together, and each argon2
        verification costs a third of a second and 64 MiB.
        """
        key = (handle, self._credentials.fingerprint(handle, password))
        waiting = self._verifying.get(key)
        if waiting is not None:
            answer: Deferred[Account | None] = Deferred()
            waiting.append(answer)
            return await answer
        waiting = self._verifying[key] = []
        try:
            account = await self._verify(handle, password)
        except BaseException:
            del self._verifying[key]
            failure = Failure()
            for answer in waiting:
                answer.errback(failure)
            raise
        del self._verifying[key]
        for answer in waiting:
            answer.callback(account)
        return account

    async def _verify(self, handle: str, password: str) -> Account | None:
        # The version before the hash is read: a change in between makes
        # the remembered entry stale, never a stale entry look fresh.
        version = await self._password_version(handle)
        login = await self.store.get_login(handle)
        if login is None:
            # The same work as for a known user, so that the time of the
            # answer does not tell whether the handle exists.
            await self._hasher.verify(await self._hasher.dummy_hash(), password)
            return None
        account, password_hash = login
        if await self._hasher.verify(password_hash, password):
            self._credentials.remember(handle, password, (account, version))
            return account
        return None

    async def remote_account(self, handle: str, authority: str) -> Account:
        """
        The account of ``handle@authority`` (another server's user), created
        here if this server never heard of it.
        """
        account: Account = await self.store.ensure_account(handle, authority, self.now_ms())
        return account

    async def set_password(
        self, account: Account, password: str, keep_session: str | None = None,
        end_tokens: bool = False,
    ) -> None:
        """
        Change a local user's password.  Every web session of theirs ends
        but ``keep_session`` (the hash of the one that asked, if any): a
        stolen session does not outlive the password it was taken with.

        :param end_tokens: revoke every OAuth access token too (the apps
            must be let in again).
        :raise WeakPassword: shorter than :data:`MIN_PASSWORD_LENGTH`.
        """
        check_password(password)
        password_hash = await self._hasher.hash(password)
        await self.store.set_password_hash(account.id, password_hash)
        self._credentials.forget(account.handle)
        if self._shared is not None:
            # Every other process's remembered password for them is stale.
            await self._shared.bump("password-version:" + account.handle.lower())
        await self.sessions.end_other_sessions(account.id, keep_session)
        if end_tokens:
            await self.apps.revoke_all(account.id)

    async def local_user(self, handle: str) -> Account | None:
        """
        This server's user with that handle (any case), or ``None``.
        """
        account: Account | None = await self.store.get_local_user(handle)
        return account

    async def messages(self, author: Account, first: int, last: int) -> list[Post]:
        """
        A local author's numbered messages ``first`` to ``last`` in order:
        posts, tombstones and deletion records, as followers' servers copy
        them (docs/design/range-fetch.md).
        """
        posts: list[Post] = await self.store.range_posts(author.id, first, last)
        return posts

    async def user(self, screen_name: str) -> Account:
        """
        A local user by handle (any case), or a remote account already
        known here by ``handle@authority``.

        :raise NoSuchUser: nobody here has that name.
        """
        account = None
        if is_valid_handle(screen_name):
            account = await self.store.get_local_user(screen_name)
        elif "@" in screen_name:
            handle, _, authority = screen_name.partition("@")
            if is_valid_handle(handle):
                if self.federation is not None and self.federation.is_local(authority.lower()):
                    account = await self.store.get_local_user(handle)
                else:
                    account = await self.store.get_remote_account(handle, authority.lower())
        if account is None:
            raise NoSuchUser(f"There is no user {screen_name!r} here.")
        return account

    async def fresh_profile(self, account: Account) -> Account:
        """
        ``account``; a remote one not copied here with its profile and
        counts as its home server has them now (asked at most every few
        seconds, waiting briefly): see ``Federation.refreshed``.
        """
        if self.federation is None or account.is_local:
            return account
        refreshed: Account = await self.federation.refreshed(account)
        return refreshed

    async def resolve(self, screen_name: str) -> Account:
        """
        Like :meth:`user`, but a ``handle@authority`` not yet known here is
        looked up on its server (when federation is on).
        """
        if "@" in screen_name and self.federation is not None:
            return await self.federation.resolve(screen_name)  # type: ignore[no-any-return]
        return await self.user(screen_name)

    def _changed(self, author: Account, last: int) -> None:
        if self.local_changed is not None and author.is_local:
            self.local_changed(author.handle, last)

    async def user_by_id(self, account_id: int) -> Account:
        account = await self.store.get_account(account_id)
        if account is None:
            raise NoSuchUser(f"There is no user with id {account_id}.")
        return account

    # Posts

    async def post(
        self,
        author: Account,
        text: str,
        source: str = "web",
        in_reply_to_status_id: int | None = None,
    ) -> Post:
        """
        Store a new message by ``author``.

        :raise EmptyPost: nothing but whitespace.
        :raise PostTooLong: over 140 code points after NFC.
        :raise DuplicateStatus: the same text as the author's latest post.

        ``source`` is the app that posted, set by the server (the OAuth
        app's name, else "web"), cut to :data:`MAX_SOURCE_LENGTH`.
        """
        text = normalize_text(text)
        source = limit_source(source)
        if not text:
            raise EmptyPost("A post needs some text.")
        length = post_length(text)
        if length > MAX_POST_LENGTH:
            raise PostTooLong(
                f"Status is over {MAX_POST_LENGTH} characters ({length})."
            )
        recent = self._recent_posts.setdefault(author.id, deque())
        now = self.now_ms()
        while recent and recent[0] <= now - DAY_MS:
            recent.popleft()
        over = len(recent) >= self.daily_posts
        if self._shared is not None and not over:
            # Several processes: their posts together, in windows of a day
            # from the first (each process keeps its own sliding day too).
            counted = await self._shared.counted(f"daily-posts:{author.id}")
            over = counted is not None and counted[0] >= self.daily_posts
        if over:
            raise OverDailyLimit(
                f"User is over daily status update limit ({self.daily_posts} in 24 hours)."
            )
        if in_reply_to_status_id is not None:
            # Like Twitter, a reply to a status that is not there is a post.
            target = await self.store.get_post(in_reply_to_status_id)
            if target is None or target.deleted:
                in_reply_to_status_id = None
        try:
            post = await self.store.create_post(
                author.id,
                text,
                source,
                in_reply_to_status_id,
                self.now_ms(),
                own_authority=self.federation.authority if self.federation is not None else "",
            )
        except DuplicatePost:
            raise DuplicateStatus("Status is a duplicate.") from None
        recent.append(now)
        if self._shared is not None:
            await self._shared.count(f"daily-posts:{author.id}", DAY_MS / 1000)
        self._changed(author, post.seq)
        for callback in self.on_post:
            try:
                callback(post)
            except Exception:
                self.log.failure("an on_post callback failed")
        return post

    async def status(self, post_id: int) -> Post:
        """
        :raise NoSuchStatus: no such post, or it was deleted (or it is a
            profile item, which is no status).
        """
        post = await self._status_here(post_id)
        if self.federation is not None and not post.author.is_local:
            # A remote post counts the favorites its author's server knows.
            return self.federation.with_remote_counts(post)  # type: ignore[no-any-return]
        return post

    async def _status_here(self, post_id: int) -> Post:
        """
        A live post as held here (a remote post's counts not asked for).
        """
        post = await self.store.get_post(post_id)
        if post is None or post.deleted or post.kind == PROFILE:
            raise NoSuchStatus("No status found with that ID.")
        return post

    # Retweets

    async def retweet(self, user: Account, post_id: int) -> Post:
        """
        Retweet a post: an item of ``user``'s numbered log referring to the
        original, which travels to their followers' servers.  Retweeting a
        retweet retweets its original.  The :attr:`on_retweet` callbacks are
        told (to notify the original's server).

        :raise NoSuchStatus: no such live status.
        :raise AlreadyRetweeted: the user's own post, or retweeted already.
        """
        post = await self.status(post_id)
        if post.is_retweet:
            if post.retweeted_status is None:
                raise NoSuchStatus("The original of that retweet is not held here.")
            post = post.retweeted_status
        if post.author.id == user.id:
            raise AlreadyRetweeted("You have already retweeted this Tweet.")
        try:
            retweet = await self.store.create_retweet(user.id, post.id, self.now_ms())
        except DuplicatePost:
            raise AlreadyRetweeted("You have already retweeted this Tweet.") from None
        except NoSuchPost:
            raise NoSuchStatus("No status found with that ID.") from None
        self._changed(user, retweet.seq)
        self._tell_retweet(retweet, post, undo=False)
        return retweet  # type: ignore[no-any-return]

    async def unretweet(self, user: Account, post_id: int) -> Post:
        """
        Undo ``user``'s retweet of a post (``post_id`` the original or the
        retweet itself): the retweet is deleted, which travels as a
        deletion record.

        :return: the original, as it is now.
        :raise NoSuchStatus: no such status, or not retweeted by ``user``.
        """
        post = await self.status(post_id)
        if post.is_retweet and post.author.id == user.id:
            retweet: Post | None = post
            original = post.retweeted_status
        else:
            original = post
            retweet = await self.store.live_retweet(user.id, post.id)
        if retweet is None:
            raise NoSuchStatus("You have not retweeted this Tweet.")
        await self.delete(user, retweet.id)
        if original is None:
            return retweet
        return await self.store.get_post(original.id) or original  # type: ignore[no-any-return]

    async def record_remote_retweet(
        self, original_post_id: int, retweeter_acct: str, seq: int, undo: bool = False
    ) -> Post | None:
        """
        Count another server's user's retweet of a post here (its notice,
        checked by the caller to come from ``retweeter_acct``'s server), or
        with ``undo`` no longer count it.  Idempotent: a notice received
        twice counts once.

        :return: the post as it is now, or ``None`` when it is not held.
        """
        post: Post | None = await self.store.record_remote_retweet(
            original_post_id, retweeter_acct, seq, undo
        )
        return post

    def _tell_retweet(self, retweet: Post, original: Post, undo: bool) -> None:
        for callback in self.on_retweet:
            try:
                callback(retweet, original, undo)
            except Exception:
                self.log.failure("an on_retweet callback failed")

    async def delete(self, user: Account, post_id: int) -> Post:
        """
        Delete one of ``user``'s posts, leaving a tombstone.

        :return: the post as it was.
        """
        post = await self.status(post_id)
        if post.author.id != user.id:
            raise NotYourStatus("You may not delete another user's status.")
        deleted = await self.store.delete_post(post_id, self.now_ms())
        if deleted is None:
            raise NoSuchStatus("No status found with that ID.")
        if deleted.is_retweet and deleted.retweeted_status is not None:
            self._tell_retweet(deleted, deleted.retweeted_status, undo=True)
        author = await self.store.get_account(user.id)
        if author is not None:
            self._changed(author, author.last_seq)
        return deleted

    # Favorites

    async def favorite(self, user: Account, post_id: int) -> Post:
        """
        :raise NoSuchStatus: no such live status.
        :raise AlreadyFavorited: it is a favorite already.
        """
        # The post as held here: its author's server is told of the
        # favorite (not asked for a count that cannot hold it yet).
        post = await self._status_here(post_id)
        if not await self.store.favorite(user.id, post_id, self.now_ms()):
            raise AlreadyFavorited("You have already favorited this status.")
        if self.federation is not None and not post.author.is_local:
            await self.federation.favorited(user, post, True)
        return await self._status_here(post_id)

    async def unfavorite(self, user: Account, post_id: int) -> Post:
        """
        :raise NoSuchStatus: no such status, or not a favorite of ``user``.
        """
        post = await self._status_here(post_id)
        if not await self.store.unfavorite(user.id, post_id):
            raise NoSuchStatus("No status found with that ID among your favorites.")
        if self.federation is not None and not post.author.is_local:
            await self.federation.favorited(user, post, False)
        return await self._status_here(post.id)

    # Follows

    async def follow(self, user: Account, target: Account) -> Account:
        """
        Make ``user`` follow ``target``.

        :return: ``target`` as it is now (with its new follower count).
        """
        if target.id == user.id:
            raise CannotFollowSelf("You can't follow yourself.")
        current = await self.store.get_account(user.id)
        if (
            current is not None
            and current.friends_count >= self.max_following
            and not await self.store.is_following(user.id, target.id)
        ):
            raise FollowLimit(
                f"You are unable to follow more people at this time"
                f" (at most {self.max_following})."
            )
        remote = self.federation is not None and not target.is_local
        notice = (
            self.federation.follow_notice(user, target, "follow")
            if self.federation is not None and remote else None
        )
        try:
            new = await self.store.follow(user.id, target.id, self.now_ms(), notice)
        except FollowBlocked as e:
            if e.by_followee:
                raise BlockedFromFollowing(
                    "You have been blocked from following this account at the request of"
                    " the user."
                ) from None
            raise BlockedFromFollowing(
                "You are blocking this account: unblock it to follow it."
            ) from None
        if self.federation is not None and remote:
            await self.federation.followed(user, target, new)
        return await self.user_by_id(target.id)

    async def unfollow(self, user: Account, target: Account) -> Account:
        remote = self.federation is not None and not target.is_local
        notice = (
            self.federation.follow_notice(user, target, "unfollow")
            if self.federation is not None and remote else None
        )
        removed = await self.store.unfollow(user.id, target.id, notice)
        if self.federation is not None and remote:
            await self.federation.unfollowed(user, target, removed)
        return await self.user_by_id(target.id)

    async def is_following(self, user: Account, target: Account) -> bool:
        return await self.store.is_following(user.id, target.id)

    # Blocks, mutes, retweets (docs/design/blocks.md)

    async def block(self, user: Account, target: Account) -> Account:
        """
        ``user`` blocks ``target`` (local or remote): the follow both ways
        goes, in the same transaction: ``user``'s as an unfollow (with its
        notice to a remote target's server), ``target``'s removed here
        (its server is not told: as on Twitter, the blocked is not told).
        Everything of ``target`` is hidden from ``user`` from now on, and
        it can no longer follow ``user`` here.  Idempotent.

        :return: ``target`` as it is now.
        """
        if target.id == user.id:
            raise CannotBlockSelf("You can't block yourself.")
        remote = self.federation is not None and not target.is_local
        notice = self.federation.follow_notice(user, target, "unfollow") if remote else None
        _, unfollowed, _ = await self.store.block(user.id, target.id, self.now_ms(), notice)
        if remote and unfollowed:
            await self.federation.unfollowed(user, target, True)
        return await self.user_by_id(target.id)

    async def unblock(self, user: Account, target: Account) -> Account:
        """
        ``user`` no longer blocks ``target``; no follow comes back.
        """
        await self.store.set_hiding(user.id, target.id, "blocking", False, self.now_ms())
        return await self.user_by_id(target.id)

    async def mute(self, user: Account, target: Account, on: bool = True) -> Account:
        """
        ``user`` mutes ``target`` (``on``) or no longer does: a muted
        account's posts and retweets leave the home timeline and mentions;
        the follow stays.
        """
        if on and target.id == user.id:
            raise CannotBlockSelf("You can't mute yourself.")
        await self.store.set_hiding(user.id, target.id, "muting", on, self.now_ms())
        return await self.user_by_id(target.id)

    async def want_retweets(self, user: Account, target: Account, wanted: bool) -> None:
        """
        Whether ``user``'s home timeline shows ``target``'s retweets.
        """
        await self.store.set_hiding(user.id, target.id, "no_retweets", not wanted,
                                    self.now_ms())
