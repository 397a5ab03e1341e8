"""
Conversations across servers (docs/design/threads.md).

Each server knows the replies to its own users' messages that it holds,
and serves them as a *replies index* (``GET /s2s/replies/HANDLE/SEQ.json``,
signed).  A conversation is assembled on demand, from any of its posts:
up the ``in_reply_to`` chain to its first post (each parent not held is
fetched from its author's server, by number), then breadth first down:
the replies held here to each post, and those its author's server knows,
each reply not held fetched from its own author's server.  Every message
comes from its author's server; an index only says where to look, and a
reply is kept in the conversation only if its author's server says it
replies to that post.

Bounded: :data:`MAX_POSTS` posts, :data:`MAX_DEPTH` levels, and a
:data:`DEADLINE` after which it answers with what it has; a server that
did not answer is left alone for :data:`FAILURE_PAUSE` seconds.  The
answer is kept :data:`CACHE_SECONDS` per first post.
"""

from __future__ import annotations

from typing import Any, TypeVar

from twisted.internet.defer import (
    Deferred,
    DeferredSemaphore,
    TimeoutError,
    ensureDeferred,
    gatherResults,
)
from twisted.logger import Logger
from twisted.python.failure import Failure

from distwit.core.accts import BadAcct, split_acct
from distwit.federation.lookup import fetch_one, home_url_of
from distwit.model import POST, Post
from distwit.s2s import paths
from distwit.s2s.interfaces import IS2SClient
from distwit.store.interfaces import IStore

T = TypeVar("T")

#: The most posts of one conversation.
MAX_POSTS = 200
#: The most levels up (ancestors) and down (replies of replies).
MAX_DEPTH = 50
#: Seconds an assembly may take; then it answers with what it has.
DEADLINE = 10.0
#: Seconds an assembled conversation is kept.
CACHE_SECONDS = 30.0
#: The most conversations kept.
CACHE_ENTRIES = 1000
#: Seconds ``statuses/show`` waits for a reply's parent.
PARENT_WAIT = 3.0
#: Seconds a server that did not answer is not asked again.
FAILURE_PAUSE = 60.0
#: The most replies a replies index lists.
MAX_REPLIES = 200
#: Requests to other servers at once, for one assembly.
CONCURRENCY = 8

#: A message by its author and number: ``(handle, authority, seq)``, the
#: handle lower-cased, the authority ``""`` for this server's users.
Ref = tuple[str, str, int]


class Threads:
    """
    Replies indexes served, conversations assembled, parents fetched.

    :param client: signed requests to other servers; ``None`` for a server
        on its own (conversations of what is held).
    :param public_url: this server's (its scheme is the federation's).
    """

    log = Logger()

    def __init__(
        self,
        store: IStore,
        client: IS2SClient | None,
        clock: Any,
        own_authority: str,
        public_url: str,
    ) -> None:
        self._store = store
        self._client = client
        self._clock = clock
        self._own_authority = own_authority
        self._scheme = public_url.split("://", 1)[0] if "://" in public_url else "https"
        #: Post id (asked for, or first of its conversation) -> (expiry,
        #: the ids of its conversation with their depths).
        self._cache: dict[int, tuple[float, dict[int, int]]] = {}
        #: Authority -> when it may be asked again after a failure.
        self._paused: dict[str, float] = {}
        #: Messages their author's server did not give (deleted, or never
        #: there) -> when they may be asked for again.
        self._missing: dict[Ref, float] = {}
        #: Parents being fetched for ``statuses/show``.
        self._parents: dict[Ref, Deferred[None]] = {}
        #: Assemblies under way, by first post: a second reader of the
        #: same conversation waits for the first's answer.
        self._assembling: dict[int, Deferred[dict[int, int]]] = {}

    # The replies index this server serves

    async def served_replies(self, handle: str, seq: int) -> dict[str, Any] | None:
        """
        The replies index of a local user's message ``seq``: at most
        :data:`MAX_REPLIES` live replies held here, newest first; ``None``
        when there is no such message.
        """
        account = await self._store.get_local_user(handle)
        if account is None or not 1 <= seq <= account.last_seq:
            return None
        if not await self._store.range_posts(account.id, seq, seq):
            return None
        replies = await self._store.replies_to(account.id, seq, MAX_REPLIES)
        return {
            "acct": f"{account.handle.lower()}@{self._own_authority}",
            "seq": seq,
            "replies": [
                [f"{h.lower()}@{a or self._own_authority}", n] for h, a, n in replies
            ],
        }

    # Conversations

    async def conversation(self, post: Post) -> list[Post]:
        """
        The conversation ``post`` is part of, oldest first: its ancestors
        and every reply found, down from the first post.
        """
        now = self._clock.seconds()
        cached = self._cache.get(post.id)
        if cached is not None and cached[0] > now:
            return await self._read(cached[1])
        deadline = now + DEADLINE
        chain = await self._ancestors(post, deadline)
        first = chain[-1]
        cached = self._cache.get(first.id)
        if cached is not None and cached[0] > now and post.id in cached[1]:
            ids = cached[1]
        else:
            ids = await self._shared_descendants(first, deadline)
            # The ancestors and the post asked for, even when the way down
            # did not find them (an index cut short, a server down).
            for depth, ancestor in enumerate(reversed(chain)):
                ids.setdefault(ancestor.id, depth)
        self._remember(ids, post.id, first.id)
        return await self._read(ids)

    def _remember(self, ids: dict[int, int], *keys: int) -> None:
        now = self._clock.seconds()
        if len(self._cache) >= CACHE_ENTRIES:
            for key, (expiry, _) in list(self._cache.items()):
                if expiry <= now:
                    del self._cache[key]
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
        for key in keys:
            self._cache[key] = (now + CACHE_SECONDS, ids)

    async def _read(self, ids: dict[int, int]) -> list[Post]:
        """
        The live posts of ``ids`` (id -> depth in the conversation), oldest
        first.  Times travel to the second: within one, a post goes before
        the replies to it, then by the order they were stored here.
        """
        posts = []
        for post_id in ids:
            post = await self._store.get_post(post_id)
            if post is not None and not post.deleted and post.kind == POST:
                posts.append(post)
        posts.sort(key=lambda p: (p.created_at // 1000, ids[p.id], p.id))
        return posts

    async def _ancestors(self, post: Post, deadline: float) -> list[Post]:
        """
        ``post`` and the posts up its ``in_reply_to`` chain, nearest first.
        """
        chain = [post]
        seen = {post.id}
        while len(chain) <= MAX_DEPTH:
            parent = await self._parent_of(chain[-1], deadline)
            if parent is None or parent.id in seen:
                break
            seen.add(parent.id)
            chain.append(parent)
        return chain

    async def _parent_of(self, post: Post, deadline: float) -> Post | None:
        if post.in_reply_to_status_id is not None:
            parent = await self._store.get_post(post.in_reply_to_status_id)
            return parent if _live(parent) else None
        ref = self._reply_ref(post)
        if ref is None:
            return None
        return await self._held_or_fetched(ref, deadline)

    async def _shared_descendants(self, first: Post, deadline: float) -> dict[int, int]:
        """
        :meth:`_descendants`, once for all the readers of one conversation
        at a time.
        """
        running = self._assembling.get(first.id)
        if running is None:
            running = ensureDeferred(self._descendants(first, deadline))
            self._assembling[first.id] = running

            def done(result: Any) -> Any:
                self._assembling.pop(first.id, None)
                return result

            def failed(failure: Failure) -> dict[int, int]:
                self.log.failure("conversation of {id} not assembled", failure, id=first.id)
                return {first.id: 0}

            running.addBoth(done).addErrback(failed)
        mine: Deferred[dict[int, int]] = Deferred()

        def relay(ids: dict[int, int]) -> dict[int, int]:
            mine.callback(dict(ids))
            return ids

        running.addCallback(relay)
        return await mine

    async def _descendants(self, first: Post, deadline: float) -> dict[int, int]:
        """
        The ids of ``first`` and of the replies found down from it,
        breadth first, with their depths.
        """
        ids = {first.id: 0}
        seen = {_ref(first)}
        level = [first]
        depth = 0
        semaphore = DeferredSemaphore(CONCURRENCY)

        while level and depth < MAX_DEPTH and len(ids) < MAX_POSTS:
            if self._clock.seconds() >= deadline:
                break
            depth += 1
            found: list[list[Ref]] = await gatherResults(
                [semaphore.run(self._replies_of, p, deadline) for p in level],
                consumeErrors=True,
            )
            wanted: list[tuple[Post, Ref]] = []
            for parent, refs in zip(level, found):
                for ref in refs:
                    if ref not in seen:
                        seen.add(ref)
                        wanted.append((parent, ref))
            wanted = wanted[: MAX_POSTS - len(ids)]
            replies: list[Post | None] = await gatherResults(
                [semaphore.run(self._held_or_fetched, ref, deadline) for _, ref in wanted],
                consumeErrors=True,
            )
            level = []
            for (parent, _), reply in zip(wanted, replies):
                if reply is None or not self._replies_to(reply, parent):
                    continue
                ids.setdefault(reply.id, depth)
                level.append(reply)
        return ids

    async def _replies_of(self, post: Post, deadline: float) -> list[Ref]:
        """
        The replies to ``post`` held here, and those its author's server
        lists (when the author is remote and the server answers in time).
        """
        refs: list[Ref] = [
            (handle.lower(), authority, seq)
            for handle, authority, seq in await self._store.replies_to(
                post.author.id, post.seq, MAX_REPLIES
            )
        ]
        author = post.author
        if author.is_local or self._client is None or not self._may_ask(author.authority):
            return refs
        url = paths.replies_url(home_url_of(author, self._scheme), author.handle, post.seq)
        try:
            answer = await self._in_time(self._client.get_json(url), deadline)
            listed = self._parse_index(answer)
        except Exception as e:
            self._failed(author.authority, url, e)
            return refs
        return refs + [ref for ref in listed if ref not in refs]

    def _parse_index(self, answer: Any) -> list[Ref]:
        if not isinstance(answer, dict) or not isinstance(answer.get("replies"), list):
            raise ValueError("a replies index is {\"replies\": [[acct, seq], ...]}")
        refs: list[Ref] = []
        for entry in answer["replies"][:MAX_REPLIES]:
            if (
                not isinstance(entry, list)
                or len(entry) != 2
                or not isinstance(entry[0], str)
                or not isinstance(entry[1], int)
                or isinstance(entry[1], bool)
                or entry[1] < 1
            ):
                continue
            try:
                handle, authority = split_acct(entry[0])
            except BadAcct:
                continue
            if authority == self._own_authority:
                authority = ""
            refs.append((handle, authority, entry[1]))
        return refs

    def _replies_to(self, reply: Post, parent: Post) -> bool:
        """
        Whether ``reply`` (as its author's server gave it) replies to
        ``parent``: an index only says where to look.
        """
        if reply.in_reply_to_status_id is not None:
            return reply.in_reply_to_status_id == parent.id
        ref = self._reply_ref(reply)
        return ref is not None and ref == _ref(parent)

    def _reply_ref(self, post: Post) -> Ref | None:
        """
        The message ``post`` replies to, by its reference.
        """
        name, seq = post.in_reply_to_screen_name, post.in_reply_to_seq
        if name is None or seq is None:
            return None
        handle, _, authority = name.rpartition("@") if "@" in name else (name, "", "")
        if authority.lower() == self._own_authority:
            authority = ""
        return handle.lower(), authority.lower(), seq

    # Messages held or fetched

    async def _held(self, ref: Ref) -> Post | None:
        handle, authority, seq = ref
        if authority:
            account = await self._store.get_remote_account(handle, authority)
        else:
            account = await self._store.get_local_user(handle)
        if account is None:
            return None
        posts = await self._store.range_posts(account.id, seq, seq)
        return posts[0] if posts else None

    async def _held_or_fetched(self, ref: Ref, deadline: float) -> Post | None:
        """
        The live post ``ref`` names: held, or fetched from its author's
        server in time; else ``None``.
        """
        post = await self._held(ref)
        if post is not None:
            return post if _live(post) else None
        handle, authority, seq = ref
        if not self._may_fetch(ref):
            return None
        try:
            await self._in_time(ensureDeferred(self._fetch(ref)), deadline)
        except Exception as e:
            self._failed(authority, f"{handle}@{authority} #{seq}", e)
            return None
        post = await self._held(ref)
        return post if _live(post) else None

    def _may_fetch(self, ref: Ref) -> bool:
        """
        Whether to ask for ``ref``: a remote message, its server not
        paused, not found there lately.
        """
        authority = ref[1]
        if not authority or self._client is None or not self._may_ask(authority):
            return False
        return self._missing.get(ref, 0.0) <= self._clock.seconds()

    async def _fetch(self, ref: Ref) -> None:
        assert self._client is not None
        handle, authority, seq = ref
        now = self._clock.seconds()
        await fetch_one(
            self._store, self._client, self._own_authority, handle, authority, seq,
            self._scheme, int(now * 1000),
        )
        if await self._held(ref) is None:
            if len(self._missing) >= CACHE_ENTRIES:
                self._missing = {r: t for r, t in self._missing.items() if t > now}
                if len(self._missing) >= CACHE_ENTRIES:
                    self._missing.clear()
            self._missing[ref] = now + FAILURE_PAUSE

    async def _in_time(self, d: "Deferred[T]", deadline: float) -> T:
        remaining = deadline - self._clock.seconds()
        if remaining <= 0:
            d.cancel()
            raise TimeoutError("the conversation's deadline passed")
        d.addTimeout(remaining, self._clock)
        return await d

    def _may_ask(self, authority: str) -> bool:
        return self._paused.get(authority, 0.0) <= self._clock.seconds()

    def _failed(self, authority: str, what: str, error: BaseException) -> None:
        self._paused[authority] = self._clock.seconds() + FAILURE_PAUSE
        self.log.warn(
            "conversation: {what} not fetched from {authority}: {error}",
            what=what, authority=authority, error=str(error) or type(error).__name__,
        )

    # The parent of one reply

    async def with_parent(self, post: Post, wait: float = PARENT_WAIT) -> Post:
        """
        ``post``, with the post it replies to fetched if it is not held
        (waiting at most ``wait`` seconds: the fetch goes on after that,
        and the post is answered without its parent).
        """
        ref = self._reply_ref(post)
        if post.in_reply_to_status_id is not None or ref is None or not self._may_fetch(ref):
            return post
        running = self._parents.get(ref)
        if running is None:
            running = ensureDeferred(self._fetch_parent(ref))
            self._parents[ref] = running

            def forget(_: Any) -> None:
                self._parents.pop(ref, None)

            running.addBoth(forget)
        waiter: Deferred[None] = Deferred()

        def done(result: Any) -> Any:
            if not waiter.called:
                waiter.callback(None)
            return result

        running.addBoth(done)
        timer = self._clock.callLater(wait, done, None)
        await waiter
        if timer.active():
            timer.cancel()
        again = await self._store.get_post(post.id)
        return again if again is not None else post

    async def _fetch_parent(self, ref: Ref) -> None:
        try:
            await self._fetch(ref)
        except Exception as e:
            self._failed(ref[1], f"{ref[0]}@{ref[1]} #{ref[2]}", e)


def _ref(post: Post) -> Ref:
    return post.author.handle.lower(), post.author.authority, post.seq


def _live(post: Post | None) -> bool:
    return post is not None and not post.deleted and post.kind == POST
