"""
Mention and reply notices (issue 13, "Conversations cross servers").

Sender: :class:`PostNotices` reads the local posts written since its last
sweep and queues, in the same transaction that moves its cursor, one
notice per other server that a post mentions users of
(``@handle@authority``) or replies to a post of::

    {"kind": "mention", "author": "dave@s3", "seq": 7, "targets": ["alice@s1"]}

(``"reply"`` when the post replies to a post of that server's user).
A crash between a post and its notices loses nothing: the cursor has not
moved, and the next sweep queues them.

Receiver: :class:`NoticeReceiver` takes a signed notice only about the
signer's own users, for at least one local user; it believes nothing else
in it: it fetches the post from the author's server as a range feed of
that one number, checks that the post mentions a user here or replies to
a post here, and keeps it aside (:mod:`distwit.federation.lookup`), where
the mentions timeline shows it.  Notices are counted per signing server.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.logger import Logger

from distwit import entities
from distwit.core.accts import BadAcct, authority_of, make_acct, split_acct
from distwit.core.limits import RateLimiter, SharedRateLimiter
from distwit.core.microblog import RuleError
from distwit.federation.direct_messages import KIND as DIRECT_MESSAGE
from distwit.federation.direct_messages import DirectMessageNotices
from distwit.federation.lookup import Lookup
from distwit.federation.outbox import Outbox
from distwit.federation.range_feed import FeedError, FeedItem
from distwit.federation.sync import is_number
from distwit.model import POST, RETWEET, Account, Post
from distwit.s2s.interfaces import ForbiddenAuthority, S2SResponseError
from distwit.store.interfaces import IStore
from distwit.store.shared import ISharedState

#: Local posts read in one sweep's batch.
SWEEP_BATCH = 200
#: Notices taken per signing server per minute.
NOTICES_PER_MINUTE = 300
#: Accounts one notice may name.
MAX_TARGETS = 50
#: The kinds of notice a post makes.
KINDS = ("mention", "reply")
#: The kinds of notice a favorite makes.
FAVORITE_KINDS = ("favorite", "unfavorite")
#: The kinds of notice a retweet makes.
RETWEET_KINDS = ("retweet", "unretweet")


class BadPostNotice(RuleError):
    """
    A notice that is malformed, or names nobody here (HTTP 400).
    """


class NoSuchNoticedPost(RuleError):
    """
    The post a notice names is not on its author's server (HTTP 404).
    """


class NotAboutUs(RuleError):
    """
    The post a notice names neither mentions a user here nor replies to a
    post here (HTTP 422).
    """


class NotThatRetweet(NotAboutUs):
    """
    The retweeter's server does not hold what a retweet notice says: the
    message is no retweet of that post, or (unretweet) it is still a live
    retweet (HTTP 422).
    """


class TooManyNotices(RuleError):
    """
    The signing server sent too many notices this minute (HTTP 429).
    """


class AuthorUnreachable(RuleError):
    """
    The author's server did not give the post; the sender may try again
    (HTTP 502).
    """


def targets_of(post: Post, own_authority: str) -> dict[str, tuple[str, set[str]]]:
    """
    The other servers ``post`` (a local one) concerns, by authority: the
    kind of notice each gets, and the accounts there it names.
    """
    found: dict[str, tuple[str, set[str]]] = {}
    for mention in entities.mentions(post.text):
        if mention.authority is None:
            continue
        authority = mention.authority.lower()
        if authority == own_authority:
            continue
        kind, accts = found.setdefault(authority, ("mention", set()))
        accts.add(make_acct(mention.handle, authority))
    replied = post.in_reply_to_screen_name
    if replied is not None and "@" in replied:
        handle, _, authority = replied.rpartition("@")
        authority = authority.lower()
        if authority != own_authority:
            _, accts = found.get(authority, ("reply", set()))
            accts.add(make_acct(handle, authority))
            found[authority] = ("reply", accts)
    return found


class PostNotices:
    """
    The sender's side: queues the notices new local posts call for.
    """

    log = Logger()

    def __init__(self, store: IStore, outbox: Outbox, own_authority: str) -> None:
        self._store = store
        self._outbox = outbox
        self._own_authority = own_authority

    async def sweep(self) -> int:
        """
        Queue the notices of every local post written since the last sweep.

        :return: how many notices were queued.
        """
        queued = 0
        while True:
            cursor, upto, posts = await self._store.posts_to_notice(SWEEP_BATCH)
            if upto <= cursor:
                return queued
            notices = []
            for post in posts:
                notices.extend(await self._notices_of(post))
            if not await self._store.queue_post_notices(
                cursor, upto, notices, self._outbox.now_ms()
            ):
                return queued  # another process swept these
            queued += len(notices)
            if len(posts) < SWEEP_BATCH:
                return queued

    async def _notices_of(self, post: Post) -> list[tuple[str, str, str]]:
        author = make_acct(post.author.handle, self._own_authority)
        notices = []
        for authority, (kind, accts) in sorted(targets_of(post, self._own_authority).items()):
            targets = sorted(accts)[:MAX_TARGETS]
            target = ""
            for acct in targets:
                handle = acct.rpartition("@")[0]
                known = await self._store.get_remote_account(handle, authority)
                if known is not None and known.home_url:
                    target = known.home_url
                    break
            body = {"kind": kind, "author": author, "seq": post.seq, "targets": targets}
            notices.append(
                (target, kind, json.dumps(body, separators=(",", ":"), sort_keys=True))
            )
        return notices


class NoticeReceiver:
    """
    The receiver's side: takes the mention and reply notices of other
    servers, and keeps the posts they name.
    """

    log = Logger()

    def __init__(
        self,
        store: IStore,
        lookup: Lookup,
        clock: Any,
        own_authority: str,
        per_minute: int = NOTICES_PER_MINUTE,
        shared: ISharedState | None = None,
    ) -> None:
        self._store = store
        self._lookup = lookup
        self._clock = clock
        self.authority = own_authority
        limits = {"notice": per_minute}
        #: Notices per signing server and minute: with several processes
        #: (``shared``), counted in their shared state, so that a server
        #: gets one allowance however the front spreads its notices.
        self._limiter = (
            RateLimiter(clock, window=60.0, limits=limits)
            if shared is None
            else SharedRateLimiter(shared, clock, "notices", window=60.0, limits=limits)
        )
        #: Takes direct message notices (set by the composition root).
        self.direct_messages: DirectMessageNotices | None = None

    def now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    async def allow(self, signer_url: str) -> bool:
        """
        Count one notice from the server at ``signer_url``: whether it is
        within its allowance.
        """
        allowance = await self._limiter.take(authority_of(signer_url), "notice", "notice")
        return allowance.allowed

    async def receive(self, signer_url: str, body: Any) -> dict[str, Any]:
        """
        Take a signed notice: fetch the post it names from its author's
        server and keep it, if it concerns a user here.

        :raise ForbiddenAuthority: the signer speaks for another server's
            user.
        :raise BadPostNotice: malformed, or names no user here.
        :raise NoSuchNoticedPost: the author's server has no such post.
        :raise NotAboutUs: the post concerns nobody here.
        :raise AuthorUnreachable: the author's server did not answer well.
        """
        kinds = KINDS + FAVORITE_KINDS + RETWEET_KINDS
        if (
            isinstance(body, dict)
            and body.get("kind") == DIRECT_MESSAGE
            and self.direct_messages is not None
        ):
            return await self.direct_messages.receive(signer_url, body)
        if not isinstance(body, dict) or body.get("kind") not in kinds:
            raise BadPostNotice(f"a notice has a kind, one of {', '.join(kinds)}")
        seq: Any = body.get("seq")
        if not is_number(seq) or seq < 1:
            raise BadPostNotice("a notice names a message number (seq)")
        if body["kind"] in FAVORITE_KINDS:
            return await self._favorite(signer_url, body, seq)
        if body["kind"] in RETWEET_KINDS:
            return await self._retweet(signer_url, body, seq)
        targets = body.get("targets")
        if not isinstance(targets, list) or not 0 < len(targets) <= MAX_TARGETS:
            raise BadPostNotice(f"a notice names 1 to {MAX_TARGETS} targets")
        try:
            handle, authority = split_acct(str(body.get("author")))
        except BadAcct as e:
            raise BadPostNotice(str(e)) from None
        signer = authority_of(signer_url)
        if signer != authority:
            raise ForbiddenAuthority(f"{signer} may not speak for {handle}@{authority}")
        if authority == self.authority:
            raise BadPostNotice("a notice is about a post of the sender's user")
        if not await self._names_local_user(targets):
            raise BadPostNotice("the notice names no user of this server")
        await self._store.ensure_account(handle, authority, self.now_ms())
        account = await self._store.note_remote_last(handle, authority, 0, signer_url.rstrip("/"))
        if account is None:
            raise BadPostNotice(f"no account {handle}@{authority}")
        try:
            page = await self._lookup.fetch_range(account, seq, seq)
        except S2SResponseError as e:
            if e.status is not None and 400 <= e.status < 500:
                raise NoSuchNoticedPost(f"{handle}@{authority} has no message {seq}") from None
            self.log.info("fetching a noticed post failed: {error}", error=str(e))
            raise AuthorUnreachable(f"{authority} did not give message {seq}") from None
        except FeedError as e:
            raise AuthorUnreachable(f"{authority} gave no range feed ({e})") from None
        item = next((item for item in page.items if item.seq == seq), None)
        if item is None or item.deleted:
            raise NoSuchNoticedPost(f"{handle}@{authority} has no message {seq}")
        if not await self._concerns_us(item):
            raise NotAboutUs(f"message {seq} of {handle}@{authority} concerns nobody here")
        posts = await self._lookup.store_aside(account, page)
        self.log.info(
            "{kind} notice: kept message {seq} of {acct}",
            kind=body["kind"], seq=seq, acct=f"{handle}@{authority}",
        )
        return {"ok": True, "id": posts[0].id if posts else None}

    async def _favorite(self, signer_url: str, body: dict[str, Any], seq: int) -> dict[str, Any]:
        """
        A user of the signer favorites (or no longer) a post of a user
        here: count it, once per (favoriter, post).
        """
        favoriter, post = await self._remote_act(signer_url, body, "favoriter", seq, "favorite")
        if body["kind"] == "favorite":
            await self._store.favorite(favoriter.id, post.id, self.now_ms())
        else:
            await self._store.unfavorite(favoriter.id, post.id)
        [post] = await self._store.range_posts(post.author.id, post.seq, post.seq)
        return {"ok": True, "favorite_count": post.favorite_count}

    async def _remote_act(
        self, signer_url: str, body: dict[str, Any], actor: str, seq: int, kind: str
    ) -> tuple[Account, Post]:
        """
        The remote user who acts (``body[actor]``: a favoriter, a
        retweeter), whom the signer must speak for, and the live post
        ``seq`` of the local author (``body["author"]``) they act on.

        :raise ForbiddenAuthority: the signer is not the actor's server.
        :raise BadPostNotice: the notice names nobody it could be about.
        :raise NoSuchNoticedPost: the author has no such live post.
        """
        try:
            handle, authority = split_acct(str(body.get(actor)))
            author_handle, author_authority = split_acct(str(body.get("author")))
        except BadAcct as e:
            raise BadPostNotice(str(e)) from None
        signer = authority_of(signer_url)
        if signer != authority:
            raise ForbiddenAuthority(f"{signer} may not speak for {handle}@{authority}")
        if authority == self.authority:
            raise BadPostNotice(f"a {kind} notice is about a user of the sender")
        if author_authority != self.authority:
            raise BadPostNotice(f"a {kind} notice goes to the author's server")
        author = await self._store.get_local_user(author_handle)
        if author is None:
            raise BadPostNotice(f"no user {author_handle} here")
        posts = await self._store.range_posts(author.id, seq, seq)
        if (
            not posts
            or posts[0].kind != POST
            or posts[0].deleted
            or posts[0].deletes_seq is not None
        ):
            raise NoSuchNoticedPost(f"{author_handle} has no message {seq}")
        await self._store.ensure_account(handle, authority, self.now_ms())
        acting = await self._store.note_remote_last(handle, authority, 0, signer_url.rstrip("/"))
        if acting is None:
            raise BadPostNotice(f"no account {handle}@{authority}")
        return acting, posts[0]

    async def _retweet(self, signer_url: str, body: dict[str, Any], seq: int) -> dict[str, Any]:
        """
        A user of the signer retweeted (or no longer retweets) a post of a
        user here.  Nothing of the notice is believed but who it is about:
        the retweet (``seq``, the retweeter's number) is fetched from the
        retweeter's server, and must be a live retweet of the post
        (``retweet``) or a tombstone or gone (``unretweet``).
        """
        original_seq: Any = body.get("original_seq")
        if not is_number(original_seq) or original_seq < 1:
            raise BadPostNotice("a retweet notice names the original's number (original_seq)")
        retweeter, original = await self._remote_act(
            signer_url, body, "retweeter", original_seq, "retweet"
        )
        handle, authority = retweeter.handle, retweeter.authority
        author_handle = original.author.handle
        undo = body["kind"] == "unretweet"
        item: FeedItem | None = None
        try:
            page = await self._lookup.fetch_range(retweeter, seq, seq)
            item = next((item for item in page.items if item.seq == seq), None)
        except S2SResponseError as e:
            if e.status is None or not 400 <= e.status < 500:
                self.log.info("fetching a noticed retweet failed: {error}", error=str(e))
                raise AuthorUnreachable(f"{authority} did not give message {seq}") from None
            # The retweeter's server has no such message.
        except FeedError as e:
            raise AuthorUnreachable(f"{authority} gave no range feed ({e})") from None
        acct = make_acct(handle, authority)
        live = item is not None and not item.deleted
        if not undo:
            if not live or item is None:
                raise NoSuchNoticedPost(f"{acct} has no message {seq}")
            if item.kind != RETWEET or not self._is_retweet_of(item, author_handle, original_seq):
                raise NotThatRetweet(
                    f"message {seq} of {acct} is no retweet of"
                    f" {author_handle}'s message {original_seq}"
                )
        elif live:
            raise NotThatRetweet(f"message {seq} of {acct} is not deleted")
        counted = await self._store.record_remote_retweet(original.id, acct, seq, undo)
        self.log.info(
            "{kind} notice: {acct} message {seq} of {author}'s {original}",
            kind=body["kind"], acct=acct, seq=seq, author=author_handle, original=original_seq,
        )
        count = counted.retweet_count if counted is not None else original.retweet_count
        return {"ok": True, "retweet_count": count}

    def _is_retweet_of(self, item: FeedItem, handle: str, seq: int) -> bool:
        if item.retweet_of is None:
            return False
        acct, original_seq = item.retweet_of
        try:
            item_handle, item_authority = split_acct(acct)
        except BadAcct:
            return False
        return (
            item_handle.lower() == handle.lower()
            and item_authority == self.authority
            and original_seq == seq
        )

    async def counts(self, handle: str, seq: int) -> dict[str, Any] | None:
        """
        The counts of a local user's message, as served to other servers;
        ``None`` when there is no such live message.
        """
        author = await self._store.get_local_user(handle)
        if author is None:
            return None
        posts = await self._store.range_posts(author.id, seq, seq)
        if not posts or posts[0].deleted or posts[0].deletes_seq is not None:
            return None
        return {
            "favorite_count": posts[0].favorite_count,
            "retweet_count": posts[0].retweet_count,
        }

    async def _names_local_user(self, targets: list[Any]) -> bool:
        for target in targets:
            try:
                handle, authority = split_acct(str(target))
            except BadAcct:
                continue
            if authority == self.authority and await self._store.get_local_user(handle):
                return True
        return False

    async def _concerns_us(self, item: FeedItem) -> bool:
        """
        Whether the post mentions a user here or replies to a post here.
        """
        if item.in_reply_to is not None:
            _, _, authority = item.in_reply_to[0].rpartition("@")
            if authority.lower() == self.authority:
                return True
        mentioned = [
            make_acct(m.handle, m.authority.lower())
            for m in entities.mentions(item.text)
            if m.authority is not None
        ]
        return await self._names_local_user(mentioned)
