"""
Following across servers: the subscription process of
docs/design/subscription.md.

:class:`Federation` resolves ``handle@authority`` to a remote account
(asking the ping servers, then the authority itself), tells the other
server of follows and unfollows with signed notices, and applies the
notices other servers send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger

from distwit.config import COUNTS_TTL as CONFIG_COUNTS_TTL
from distwit.model import Account, Post
from distwit.s2s import paths
from distwit.s2s.interfaces import ForbiddenAuthority, IS2SClient, S2SResponseError
from distwit.s2s.metadata import parse_metadata
from distwit.core.accts import (
    BadAcct,
    HomeUnreachable,
    as_typed,
    authority_of,
    make_acct,
    split_acct,
)
from distwit.core.microblog import NoSuchUser, RuleError
from distwit.federation.lookup import Lookup
from distwit.federation.outbox import NoticeRefused, Outbox, notice_text
from distwit.federation.sync import SyncService, is_number
from distwit.store.interfaces import IStore, OutboxItem, QueuedNotice

#: How many earlier messages of a newly followed remote author to copy.
HISTORY = 20

#: How long a remote post's counts from its author's server are believed
#: (seconds) before they are asked for again (the ``counts_ttl`` setting).
COUNTS_TTL = CONFIG_COUNTS_TTL
#: Remote posts whose counts are remembered at most.
MAX_COUNTS = 10_000
#: The longest a read of a remote user waits for their server's profile
#: and counts (seconds) before it answers with what is held.
PROFILE_WAIT = 3.0


@dataclass(frozen=True)
class Located:
    """
    Where a remote acct lives, as :meth:`Federation._locate` found it.

    :ivar direct: its server reports to ping servers this server does not
        use (another federation): its numbers are polled from it.
    """

    home: str
    last: int
    direct: bool


class BadNotice(RuleError):
    """
    A follow notice that makes no sense here.
    """


class Federation:
    """
    This server's side of follows between servers.

    :param outbox: where follow and unfollow notices are queued.
    """

    log = Logger()

    def __init__(
        self,
        store: IStore,
        client: IS2SClient,
        sync: SyncService,
        clock: Any,
        public_url: str,
        *,
        registry: str = "",
        outbox: Outbox | None = None,
        counts_ttl: float = COUNTS_TTL,
    ) -> None:
        self._store = store
        #: The registry of the ping servers this server uses: a remote
        #: server that names another is of another federation.
        self.registry = registry
        self._outbox = outbox
        #: Remote posts' counts by status id, as their authors' servers
        #: gave them: (favorites, retweets or ``None`` when the server does
        #: not say, when asked).
        self._counts: dict[int, tuple[int, int | None, float]] = {}
        self.counts_ttl = counts_ttl
        #: Remote accounts not copied here whose profile and counts were
        #: asked of their server: when.
        self._profiles_asked: dict[int, float] = {}
        self._counting: dict[int, Deferred[None]] = {}
        self._client = client
        self._sync = sync
        self._clock = clock
        self.public_url = public_url
        self.authority = authority_of(public_url)
        self._scheme = "http" if public_url.startswith("http:") else "https"

    def now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    def is_local(self, authority: str) -> bool:
        return authority == self.authority

    async def resolve(self, acct: str) -> Account:
        """
        The account for a remote ``acct`` (``handle@authority``, or
        ``@handle@authority`` as people paste it), created here only once
        its home server says it exists.  A known account whose home server
        was checked before is not checked again (unless whether it reports
        to our ping servers is not known yet: then it is checked once more,
        and a failure keeps it as it is).

        :raise NoSuchUser: the acct is malformed, or its server has no such
            user.
        :raise HomeUnreachable: nothing at the authority answers as a
            distwit server.  Nothing is recorded either way.
        """
        try:
            handle, authority = split_acct(as_typed(acct.strip()))
        except BadAcct:
            raise NoSuchUser(f"{acct!r} is not a user here nor handle@server.") from None
        if self.is_local(authority):
            account = await self._store.get_local_user(handle)
            if account is None:
                raise NoSuchUser(f"There is no user {handle!r} here.")
            return account
        known = await self._store.get_remote_account(handle, authority)
        if known is not None and known.home_url:
            if await self._store.is_direct(known.id) is not None:
                return known
            try:
                located = await self._locate(make_acct(handle, authority), authority)
            except NoSuchUser:
                return known
        else:
            located = await self._locate(make_acct(handle, authority), authority)
        account = await self._store.ensure_account(handle, authority, self.now_ms())
        updated = await self._store.note_remote_last(handle, authority, located.last, located.home)
        await self._store.set_direct(account.id, located.direct)
        if located.direct:
            self.log.info(
                "{acct} reports to other ping servers: its numbers come from {home}",
                acct=make_acct(handle, authority), home=located.home,
            )
        return updated or account

    async def _locate(self, acct: str, authority: str) -> "Located":
        """
        The home server and last number of a remote acct, and whether it is
        direct: from a ping server that knows it (then it is ours), else
        from the authority itself (its metadata, WebFinger, and its
        last-number document, which names the registry it reports to).

        :raise NoSuchUser: the server answers, and has no such user.
        :raise HomeUnreachable: nothing at the authority answers as a
            distwit server (the details go to the log only).
        """
        for ping in self._sync.responsible(acct):
            try:
                found = await self._client.get_json(paths.ping_lookup_url(ping, acct))
            except S2SResponseError:
                continue
            if not isinstance(found, dict):
                continue
            home = str(found.get("home", "")).rstrip("/")
            last: Any = found.get("last")
            # The number is a claim: the copier checks it against the
            # author's server, and forgets it if denied.
            if authority_of(home) == authority and is_number(last):
                return Located(home, last, direct=False)
        home = f"{self._scheme}://{authority}"
        unreachable = HomeUnreachable(f"No distwit server answers for {acct}.")
        try:
            parse_metadata(await self._client.get_json(paths.metadata_url(home)), home)
        except S2SResponseError as e:
            # What the other side answered stays in the log: the caller
            # learns nothing of a host it could not otherwise reach.
            self.log.info("no distwit server for {acct}: {error}", acct=acct, error=str(e))
            raise unreachable from None
        try:
            found = await self._client.get_json(paths.webfinger_url(home, acct))
        except S2SResponseError as e:
            if e.status == 404:
                raise NoSuchUser(f"{authority} has no user {acct.split('@', 1)[0]!r}.") from None
            self.log.info("WebFinger for {acct} failed: {error}", acct=acct, error=str(e))
            raise unreachable from None
        if not isinstance(found, dict):
            self.log.info("WebFinger for {acct}: not a JSON object", acct=acct)
            raise unreachable
        return await self._direct_check(acct, home)

    async def _direct_check(self, acct: str, home: str) -> "Located":
        """
        The author's last number from its server, and whether the server
        reports to the ping servers of our registry.  A server that does
        not say (an older or a foreign one) is polled directly: polling
        costs a request per interval, missing every post costs more.
        """
        handle = acct.split("@", 1)[0]
        try:
            document = await self._client.get_json(paths.last_url(home, handle))
        except S2SResponseError as e:
            self.log.info("no last number for {acct}: {error}", acct=acct, error=str(e))
            return Located(home, 0, direct=True)
        last: Any = document.get("last") if isinstance(document, dict) else None
        registry = document.get("registry") if isinstance(document, dict) else None
        same = (
            bool(self.registry)
            and isinstance(registry, str)
            and registry.rstrip("/") == self.registry.rstrip("/")
        )
        return Located(home, last if is_number(last) else 0, direct=not same)

    def follow_notice(self, user: Account, target: Account, action: str) -> "QueuedNotice | None":
        """
        The notice telling ``target``'s server that local ``user`` follows
        (``action`` "follow") or no longer follows ("unfollow") it, for the
        store to queue in the same transaction as the change; ``None``
        without an outbox.
        """
        if self._outbox is None:
            self.log.warn("no outbox: the {action} notice is not sent", action=action)
            return None
        body = {
            "action": action,
            "follower": make_acct(user.handle, self.authority),
            "followee": make_acct(target.handle, target.authority),
        }
        return (target.home_url, action, notice_text(body), self.now_ms())

    async def followed(self, user: Account, target: Account, new: bool) -> None:
        """
        ``user`` (local) now follows remote ``target``: copy its messages
        from now on, subscribe, and send the notice the store queued.
        """
        acct = make_acct(target.handle, target.authority)
        if new and target.synced_seq == 0:
            await self._store.start_sync_at(target.id, max(0, target.last_seq - HISTORY))
        self._sync.subscribe(acct)
        if new and self._outbox is not None:
            self._outbox.wake()

    async def unfollowed(self, user: Account, target: Account, removed: bool) -> None:
        acct = make_acct(target.handle, target.authority)
        remaining = await self._store.subscriptions()
        if (target.handle.lower(), target.authority) not in remaining:
            self._sync.unsubscribe(acct)
        if removed and self._outbox is not None:
            self._outbox.wake()

    async def notice_home(self, item: OutboxItem) -> str:
        """
        The public URL of the server a notice queued without one goes to:
        the home server of the first account it names (its ``targets``),
        found as :meth:`resolve` finds it, without making the account one
        whose messages this server copies.

        :raise NoticeRefused: the notice names nobody, or a server that
            answers and has no such user.
        """
        try:
            targets = json.loads(item.body).get("targets") or []
            handle, authority = split_acct(str(targets[0]))
        except (ValueError, AttributeError, IndexError, BadAcct):
            raise NoticeRefused("the notice names no account") from None
        if self.is_local(authority):
            raise NoticeRefused(f"{handle}@{authority} is a user of this server")
        known = await self._store.get_remote_account(handle, authority)
        if known is not None and known.home_url:
            return known.home_url
        try:
            home = (await self._locate(make_acct(handle, authority), authority)).home
        except HomeUnreachable:
            raise  # perhaps for now: the notice is tried again later
        except NoSuchUser as e:
            # The server answers, and has no such user: asking again will
            # not help.
            raise NoticeRefused(str(e)) from None
        await self._store.ensure_account(handle, authority, self.now_ms())
        # The claimed last number is not kept: the copier copies only the
        # authors this server follows.
        await self._store.note_remote_last(handle, authority, 0, home)
        return home

    async def favorited(self, user: Account, post: Post, on: bool) -> None:
        """
        ``user`` (local) now favorites (``on``) or no longer favorites the
        remote ``post``: tell its author's server, which counts them.
        """
        self._counts.pop(post.id, None)
        if self._outbox is None:
            return
        kind = "favorite" if on else "unfavorite"
        author = make_acct(post.author.handle, post.author.authority)
        body = {
            "kind": kind,
            "favoriter": make_acct(user.handle, self.authority),
            "author": author,
            "seq": post.seq,
            "targets": [author],
        }
        await self._outbox.queue(post.author.home_url, kind, body)

    def retweeted(self, retweet: Post, original: Post, undo: bool) -> None:
        """
        A local user retweeted (or, with ``undo``, no longer retweets)
        ``original``: when it is a remote post, queue a ``retweet`` /
        ``unretweet`` notice for its author's server, which counts it (a
        :attr:`distwit.core.microblog.Microblog.on_retweet` callback).
        """
        if original.author.is_local or not retweet.author.is_local:
            return
        self._counts.pop(original.id, None)
        if self._outbox is None:
            return
        kind = "unretweet" if undo else "retweet"
        author = make_acct(original.author.handle, original.author.authority)
        body = {
            "kind": kind,
            "retweeter": make_acct(retweet.author.handle, self.authority),
            "seq": retweet.seq,
            "author": author,
            "original_seq": original.seq,
            "targets": [author],
        }
        d = ensureDeferred(self._outbox.queue(original.author.home_url, kind, body))
        d.addErrback(lambda f: self.log.failure("queueing a {kind} notice", f, kind=kind))

    async def refreshed(self, account: Account) -> Account:
        """
        A remote account whose messages this server does not copy (nobody
        here follows it, so no range of it brings its profile and counts),
        as its home server has it now: its latest message is asked for,
        whose range feed carries its profile and counts.  At most once per
        :attr:`counts_ttl` per account, waiting at most
        :data:`PROFILE_WAIT`; otherwise, or when its server does not
        answer, the account as held.
        """
        if account.is_local or not account.home_url or account.synced_seq > 0:
            return account
        now = self._clock.seconds()
        if now - self._profiles_asked.get(account.id, float("-inf")) < self.counts_ttl:
            return account
        if len(self._profiles_asked) >= MAX_COUNTS:
            self._profiles_asked.clear()
        self._profiles_asked[account.id] = now
        seq = max(account.last_seq, 1)
        lookup = Lookup(self._store, self._client, self._clock, self.authority)
        asked = ensureDeferred(lookup.fetch_aside(account, seq, seq))
        asked.addTimeout(PROFILE_WAIT, self._clock)
        try:
            await asked
        except Exception as e:
            self.log.info(
                "the profile of {acct} was not had from its server: {error}",
                acct=account.screen_name, error=str(e) or type(e).__name__,
            )
            return account
        return await self._store.get_account(account.id) or account

    def with_remote_counts(self, post: Post) -> Post:
        """
        The remote ``post`` with the favorite and retweet counts its
        author's server gave (asked again, in the background, when older
        than :attr:`counts_ttl`; until then the counts held here).
        """
        known = self._counts.get(post.id)
        now = self._clock.seconds()
        if (known is None or now - known[2] >= self.counts_ttl) and post.author.home_url:
            if post.id not in self._counting:
                d = ensureDeferred(self._refresh_counts(post))
                self._counting[post.id] = d
                d.addBoth(lambda _: self._counting.pop(post.id, None))
        if known is None:
            return post
        favorites, retweets, _ = known
        if retweets is None:
            return replace(post, favorite_count=favorites)
        return replace(post, favorite_count=favorites, retweet_count=retweets)

    async def _refresh_counts(self, post: Post) -> None:
        url = paths.status_counts_url(post.author.home_url, post.author.handle, post.seq)
        try:
            answer = await self._client.get_json(url)
        except S2SResponseError as e:
            self.log.info("no counts for {url}: {error}", url=url, error=str(e))
            return
        if not isinstance(answer, dict):
            answer = {}
        count: Any = answer.get("favorite_count")
        if not is_number(count):
            self.log.info("no counts for {url}: not a count", url=url)
            return
        retweets: Any = answer.get("retweet_count")
        if not is_number(retweets):
            retweets = None  # an older server: the retweets held here
        if len(self._counts) >= MAX_COUNTS:
            self._counts.clear()
        self._counts[post.id] = (count, retweets, self._clock.seconds())

    async def receive_notice(self, signer_url: str, body: Any) -> dict[str, Any]:
        """
        Apply a signed follow or unfollow notice from another server.

        The notice says that a user of the signer follows (or no longer
        follows) one of ours: a remote server can add its own users as
        followers of ours, never make ours follow anyone.

        :raise ForbiddenAuthority: the signer speaks for someone else.
        :raise BadNotice: the notice is malformed or names nobody here.
        """
        if not isinstance(body, dict) or body.get("action") not in ("follow", "unfollow"):
            raise BadNotice("a notice needs action follow or unfollow")
        try:
            follower_handle, follower_authority = split_acct(str(body.get("follower")))
            followee_handle, followee_authority = split_acct(str(body.get("followee")))
        except BadAcct as e:
            raise BadNotice(str(e)) from None
        signer = authority_of(signer_url)
        if self.is_local(followee_authority) and not self.is_local(follower_authority):
            if signer != follower_authority:
                raise ForbiddenAuthority(
                    f"{signer} may not speak for {follower_handle}@{follower_authority}"
                )
            local = await self._store.get_local_user(followee_handle)
            if local is None:
                raise BadNotice(f"no user {followee_handle} here")
            remote = await self._store.ensure_account(
                follower_handle, follower_authority, self.now_ms()
            )
            await self._store.note_remote_last(
                follower_handle, follower_authority, 0, signer_url.rstrip("/")
            )
            follower, followee = remote, local
        elif self.is_local(follower_authority):
            raise ForbiddenAuthority(
                f"{signer} may not say whom {follower_handle}@{follower_authority} follows"
            )
        else:
            raise BadNotice("a notice names one account here and one on the sender")
        if body["action"] == "follow":
            await self._store.follow(follower.id, followee.id, self.now_ms())
        else:
            await self._store.unfollow(follower.id, followee.id)
        self.log.info(
            "{follower} {action}s {followee}",
            follower=body["follower"], action=body["action"], followee=body["followee"],
        )
        return {"ok": True}

    def stop(self) -> "Deferred[Any]":
        """
        Cancel the counts being asked for.
        """
        from twisted.internet.defer import DeferredList

        pending = list(self._counting.values())
        for d in pending:
            d.cancel()
        return DeferredList(pending, consumeErrors=True)
