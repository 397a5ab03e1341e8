"""
The ping role's directory: the in-memory hashtable
``acct -> (last message number, home server URL, when)`` of
docs/design/ping-servers.md and what each
twitter server subscribes to.

The directory answers the question a twitter server asks at every
exchange, "what changed among the accts I follow since I last asked?",
at a cost proportional to the answer, not to the number of accts it
follows nor to the size of the table.  For that it keeps, per subscriber
server, a *pending* map ``acct -> change number``, filled when a
subscribed acct changes (or is newly subscribed to).  Change numbers come
from one counter for the whole directory; the *cursor* handed to a server
is that counter's value when it was answered.  When the server comes back
with cursor ``c`` the entries it was given up to ``c`` are acknowledged
and dropped; the others are sent again.

Everything is soft state: a restart starts empty with a new ``epoch``,
and the twitter servers, seeing a new epoch, report and subscribe again.
"""

from __future__ import annotations

import re
import secrets
from typing import Iterable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

from distwit.ping.interfaces import IDirectory
# The old name, for tests/test_accts.py until it imports distwit.urls.

#: ``handle@authority``: Twitter's handle rule, then a host name, an IPv4
#: address or a bracketed IPv6 address, and an optional port.
ACCT_RE = re.compile(
    r"\A(?P<handle>[A-Za-z0-9_]{1,15})@(?P<authority>"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::[0-9]{1,5})?)\Z"
)

#: The longest authority accepted (a DNS name is at most 253 characters).
MAX_AUTHORITY_LENGTH = 260


def normalize_acct(acct: str) -> str:
    """
    The form in which an acct is held: handle and host in lower case.

    :raises ValueError: if ``acct`` is not ``handle@authority``.
    """
    if not isinstance(acct, str) or len(acct) > 16 + MAX_AUTHORITY_LENGTH:
        raise ValueError(f"{acct!r} is not handle@authority")
    match = ACCT_RE.match(acct)
    if match is None:
        raise ValueError(
            f"{acct!r} is not handle@authority (handle: 1 to 15 of A-Z a-z 0-9 _)"
        )
    # The port is digits, so lower-casing the whole authority lower-cases
    # the host and leaves the port as given.
    return acct.lower()


def authority_of_acct(acct: str) -> str:
    """
    The authority part of a normalised acct.
    """
    return acct.rpartition("@")[2]


class _Entry:
    """
    One acct's row.  Slots, and ``home``/``updated`` objects shared
    between the rows of one report, keep a row to a few dozen bytes.
    """

    __slots__ = ("last", "home", "updated")

    def __init__(self, last: int, home: str, updated: float) -> None:
        self.last = last
        self.home = home
        self.updated = updated


class _Waiter:
    """
    One :meth:`MemoryDirectory.wait_for_change` in progress.
    """

    __slots__ = ("deferred", "timer")

    def __init__(self, deferred: Deferred[None], timer: IDelayedCall | None) -> None:
        self.deferred = deferred
        self.timer = timer


class _Subscriber:
    """
    One twitter server's state: what it follows, what it has not yet
    acknowledged, and its long-polls in progress.
    """

    __slots__ = ("name", "accts", "pending", "waiters")

    def __init__(self, name: str) -> None:
        #: The server's URL, one string object shared by the follower index.
        self.name = name
        self.accts: set[str] = set()
        #: acct -> change number, for changes not yet acknowledged.
        self.pending: dict[str, int] = {}
        self.waiters: list[_Waiter] = []


@implementer(IDirectory)
class MemoryDirectory:
    """
    The directory in a Python dict: the in-memory hashtable of
    docs/design/ping-servers.md.

    :param clock: gives ``updated`` times and the long-poll timeouts.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self.epoch = secrets.token_urlsafe(16)
        self.cursor = 0
        self._entries: dict[str, _Entry] = {}
        self._servers: dict[str, _Subscriber] = {}
        #: acct -> the server that follows it, or a set when several do
        #: (accts not yet known too).  Most accts have one follower server,
        #: and a set costs over 200 bytes.
        self._followers: dict[str, str | set[str]] = {}
        #: One string object per home URL, shared by all its rows.
        self._homes: dict[str, str] = {}
        self._now = -1.0

    def __len__(self) -> int:
        return len(self._entries)

    def server_count(self) -> int:
        return len(self._servers)

    def _server(self, server: str) -> _Subscriber:
        state = self._servers.get(server)
        if state is None:
            state = self._servers[server] = _Subscriber(server)
        return state

    # Reports

    def report(self, server: str, entries: dict[str, tuple[int, str]]) -> None:
        self._server(server)
        now = self._second()
        woken: set[str] = set()
        for acct, (last, home) in entries.items():
            acct = normalize_acct(acct)
            entry = self._entries.get(acct)
            if entry is not None and last <= entry.last:
                continue
            home = self._homes.setdefault(home, home)
            if entry is None:
                self._entries[acct] = _Entry(last, home, now)
            else:
                entry.last, entry.home, entry.updated = last, home, now
            self.cursor += 1
            for follower in self._followers_of(acct):
                self._servers[follower].pending[acct] = self.cursor
                woken.add(follower)
        # Wake long-polls once the whole report is in, so that one answer
        # carries all of it.
        for follower in woken:
            self._wake(self._servers[follower])

    def _second(self) -> float:
        """
        The clock's time in whole seconds, as one float object per second:
        the rows updated within a second share it (a float is 24 bytes, a
        quarter of a row).
        """
        now = float(int(self._clock.seconds()))
        if now != self._now:
            self._now = now
        return self._now

    # Subscriptions

    def subscribe(self, server: str, accts: Iterable[str]) -> None:
        self._add(self._server(server), [normalize_acct(a) for a in accts])

    def _add(self, state: _Subscriber, accts: list[str]) -> None:
        change: int | None = None
        for acct in accts:
            if acct in state.accts:
                continue
            state.accts.add(acct)
            self._follow(acct, state.name)
            if acct in self._entries:
                # A new subscription is a change for this server only, but
                # it still takes a new number: the server may already hold
                # a cursor equal to the current one.
                if change is None:
                    self.cursor += 1
                    change = self.cursor
                state.pending[acct] = change
        if change is not None:
            self._wake(state)

    def unsubscribe(self, server: str, accts: Iterable[str]) -> None:
        state = self._servers.get(server)
        normalized = [normalize_acct(a) for a in accts]
        if state is None:
            return
        self._remove(state, normalized)

    def _remove(self, state: _Subscriber, accts: Iterable[str]) -> None:
        for acct in accts:
            if acct not in state.accts:
                continue
            state.accts.discard(acct)
            state.pending.pop(acct, None)
            self._unfollow(acct, state.name)

    def _followers_of(self, acct: str) -> Iterable[str]:
        followers = self._followers.get(acct)
        if followers is None:
            return ()
        if isinstance(followers, str):
            return (followers,)
        return followers

    def _follow(self, acct: str, server: str) -> None:
        followers = self._followers.get(acct)
        if followers is None:
            self._followers[acct] = server
        elif isinstance(followers, str):
            if followers != server:
                self._followers[acct] = {followers, server}
        else:
            followers.add(server)

    def _unfollow(self, acct: str, server: str) -> None:
        followers = self._followers.get(acct)
        if followers is None:
            return
        if isinstance(followers, str):
            if followers == server:
                del self._followers[acct]
            return
        followers.discard(server)
        if len(followers) == 1:
            self._followers[acct] = followers.pop()
        elif not followers:
            del self._followers[acct]

    def reset_subscriptions(self, server: str, accts: Iterable[str]) -> None:
        wanted = {normalize_acct(a) for a in accts}
        state = self._server(server)
        self._remove(state, state.accts - wanted)
        self._add(state, [a for a in wanted if a not in state.accts])

    # Answers

    def changes_since(
        self, server: str, cursor: int | None
    ) -> tuple[int, dict[str, tuple[int, str]]]:
        state = self._servers.get(server)
        if state is None:
            return self.cursor, {}
        if cursor is None or cursor > self.cursor or cursor < 0:
            accts: Iterable[str] = state.accts
        else:
            # Acknowledge what was answered up to ``cursor``.
            state.pending = {a: n for a, n in state.pending.items() if n > cursor}
            accts = state.pending
        changes = {}
        for acct in accts:
            entry = self._entries.get(acct)
            if entry is not None:
                changes[acct] = (entry.last, entry.home)
        return self.cursor, changes

    def lookup(self, acct: str) -> tuple[int, str, float] | None:
        entry = self._entries.get(normalize_acct(acct))
        if entry is None:
            return None
        return entry.last, entry.home, entry.updated

    # Long-polls

    def wait_for_change(self, server: str, timeout: float) -> Deferred[None]:
        state = self._server(server)

        def cancel(deferred: Deferred[None]) -> None:
            if waiter in state.waiters:
                state.waiters.remove(waiter)
            if waiter.timer is not None and waiter.timer.active():
                waiter.timer.cancel()

        deferred: Deferred[None] = Deferred(cancel)
        waiter = _Waiter(deferred, None)
        state.waiters.append(waiter)
        waiter.timer = self._clock.callLater(max(0.0, timeout), self._expire, state, waiter)
        return deferred

    def _expire(self, state: _Subscriber, waiter: _Waiter) -> None:
        if waiter in state.waiters:
            state.waiters.remove(waiter)
        waiter.deferred.callback(None)

    def _wake(self, state: _Subscriber) -> None:
        waiters, state.waiters = state.waiters, []
        for waiter in waiters:
            if waiter.timer is not None and waiter.timer.active():
                waiter.timer.cancel()
            waiter.deferred.callback(None)

    def release_waiters(self) -> None:
        for state in list(self._servers.values()):
            self._wake(state)
