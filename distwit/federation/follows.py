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
from dataclasses import replace
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger

from distwit.model import Account, Post
from distwit.s2s import paths
from distwit.s2s.interfaces import ForbiddenAuthority, IS2SClient, S2SResponseError
from distwit.core.accts import BadAcct, authority_of, make_acct, split_acct
from distwit.core.microblog import NoSuchUser, RuleError
from distwit.federation.outbox import NoticeRefused, Outbox
from distwit.federation.sync import SyncService, is_number
from distwit.store.interfaces import IStore, OutboxItem

#: How many earlier messages of a newly followed remote author to copy.
HISTORY = 20

#: How long a remote post's counts from its author's server are believed
#: (seconds) before they are asked for again.
COUNTS_TTL = 30.0
#: Remote posts whose counts are remembered at most.
MAX_COUNTS = 10_000


class BadNotice(RuleError):
    """
    A follow notice that makes no sense here.
    """


class UnknownRemoteUser(NoSuchUser):
    """
    The server of an acct answers, and has no such user (or is not that
    authority's server): asking again will not help.
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
        outbox: Outbox | None = None,
    ) -> None:
        self._store = store
        self._outbox = outbox
        #: Remote posts' favorite counts by status id: (count, when asked).
        self._counts: dict[int, tuple[int, float]] = {}
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
        The account for a remote ``acct``, created here if new, with its home
        server checked.

        :raise NoSuchUser: the acct is malformed or nobody answers for it.
        """
        try:
            handle, authority = split_acct(acct)
        except BadAcct:
            raise NoSuchUser(f"{acct!r} is not a user here nor handle@server.") from None
        if self.is_local(authority):
            account = await self._store.get_local_user(handle)
            if account is None:
                raise NoSuchUser(f"There is no user {handle!r} here.")
            return account
        known = await self._store.get_remote_account(handle, authority)
        if known is not None and known.home_url:
            return known
        home, last = await self._locate(make_acct(handle, authority), authority)
        account = await self._store.ensure_account(handle, authority, self.now_ms())
        updated = await self._store.note_remote_last(handle, authority, last, home)
        return updated or account

    async def _locate(self, acct: str, authority: str) -> tuple[str, int]:
        """
        The home server and last number of a remote acct: from a ping server
        that knows it, else from the authority's own metadata.
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
                return home, last
        home = f"{self._scheme}://{authority}"
        try:
            metadata = await self._client.get_json(paths.metadata_url(home))
        except S2SResponseError as e:
            # What the other side answered stays in the log: the caller
            # learns nothing of a host it could not otherwise reach.
            self.log.info("no distwit server for {acct}: {error}", acct=acct, error=str(e))
            raise NoSuchUser(f"No distwit server answers for {acct}.") from None
        if str(metadata.get("public_url", "")).rstrip("/") != home:
            raise UnknownRemoteUser(f"{home} does not say it is {authority}.")
        handle = acct.split("@", 1)[0]
        try:
            await self._client.get_json(paths.webfinger_url(home, acct))
        except S2SResponseError as e:
            if e.status is not None and 400 <= e.status < 500:
                raise UnknownRemoteUser(f"{home} has no user {handle!r}.") from None
            raise NoSuchUser(f"{home} has no user {handle!r}.") from None
        return home, 0

    async def followed(self, user: Account, target: Account, new: bool) -> None:
        """
        ``user`` (local) now follows remote ``target``: copy its messages
        from now on, subscribe, and tell its server.
        """
        acct = make_acct(target.handle, target.authority)
        if new and target.synced_seq == 0:
            await self._store.start_sync_at(target.id, max(0, target.last_seq - HISTORY))
        self._sync.subscribe(acct)
        if new:
            await self._send_notice(target, user, "follow")

    async def unfollowed(self, user: Account, target: Account, removed: bool) -> None:
        acct = make_acct(target.handle, target.authority)
        remaining = await self._store.subscriptions()
        if (target.handle.lower(), target.authority) not in remaining:
            self._sync.unsubscribe(acct)
        if removed:
            await self._send_notice(target, user, "unfollow")

    async def _send_notice(self, target: Account, user: Account, action: str) -> None:
        """
        Queue a follow or unfollow notice for ``target``'s server in the
        outbox, which sends it until that server takes it.
        """
        if self._outbox is None:
            self.log.warn("no outbox: the {action} notice is not sent", action=action)
            return
        body = {
            "action": action,
            "follower": make_acct(user.handle, self.authority),
            "followee": make_acct(target.handle, target.authority),
        }
        await self._outbox.queue(target.home_url, action, body)

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
            home, _ = await self._locate(make_acct(handle, authority), authority)
        except UnknownRemoteUser as e:
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

    def with_remote_counts(self, post: Post) -> Post:
        """
        The remote ``post`` with the favorite count its author's server
        gave (asked again, in the background, when older than
        :data:`COUNTS_TTL`; until then the count held here).
        """
        known = self._counts.get(post.id)
        now = self._clock.seconds()
        if (known is None or now - known[1] >= COUNTS_TTL) and post.author.home_url:
            if post.id not in self._counting:
                d = ensureDeferred(self._refresh_counts(post))
                self._counting[post.id] = d
                d.addBoth(lambda _: self._counting.pop(post.id, None))
        if known is None:
            return post
        return replace(post, favorite_count=known[0])

    async def _refresh_counts(self, post: Post) -> None:
        url = paths.status_counts_url(post.author.home_url, post.author.handle, post.seq)
        try:
            answer = await self._client.get_json(url)
        except S2SResponseError as e:
            self.log.info("no counts for {url}: {error}", url=url, error=str(e))
            return
        count: Any = answer.get("favorite_count") if isinstance(answer, dict) else None
        if not is_number(count):
            self.log.info("no counts for {url}: not a count", url=url)
            return
        if len(self._counts) >= MAX_COUNTS:
            self._counts.clear()
        self._counts[post.id] = (count, self._clock.seconds())

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
