"""
Password hashing with argon2id, off the reactor thread, and a short-lived
in-memory memory of credentials already checked.

HTTP Basic sends the password with every request; hashing it each time
would cap a core at a few dozen requests per second.  After a password has
been verified once, :class:`CredentialCache` recognises the same
(handle, password) pair by a keyed hash for a few minutes.  The key lives
only in memory, and the stored argon2 hash is part of what is hashed, so a
changed password never matches an old entry.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import OrderedDict
from typing import Any, Callable

import argon2
from twisted.internet.defer import Deferred, succeed

RunInThread = Callable[..., "Deferred[Any]"]


class PasswordHasher:
    """
    Hashes and verifies passwords with argon2id in a worker thread.

    :param run_in_thread: runs ``f(*args)`` off the reactor thread and
        returns a Deferred (``deferToThreadPool`` in a server).
    :param cheap: use small argon2 parameters (tests only).
    """

    def __init__(self, run_in_thread: RunInThread, cheap: bool = False) -> None:
        self._run = run_in_thread
        if cheap:
            self._argon = argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
        else:
            self._argon = argon2.PasswordHasher()
        self._dummy: str | None = None

    def hash(self, password: str) -> "Deferred[str]":
        return self._run(self._argon.hash, password)

    def verify(self, password_hash: str, password: str) -> "Deferred[bool]":
        return self._run(self._verify, password_hash, password)

    def dummy_hash(self) -> "Deferred[str]":
        """
        A hash of a random password, made once with the same parameters as
        every other: verifying a password against it costs what verifying
        a real one does (for handles that do not exist).
        """
        if self._dummy is not None:
            return succeed(self._dummy)

        def keep(password_hash: str) -> str:
            self._dummy = password_hash
            return password_hash

        return self.hash(os.urandom(16).hex()).addCallback(keep)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._argon.verify(password_hash, password))
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


class CredentialCache:
    """
    Remembers recently verified credentials as keyed hashes, so that HTTP
    Basic (which sends the password with every request) costs one argon2
    verification per user and ``ttl``, not one per request.

    An entry is found by handle, and holds the account as it was when the
    password was verified: a request it admits needs no database read at
    all.  Changing a password forgets the entry.

    :param clock: an ``IReactorTime`` (for ``seconds()``).
    :param ttl: how long a verified password is remembered, in seconds.
    :param size: the most entries kept; the oldest go first.
    """

    def __init__(self, clock: Any, ttl: float = 300.0, size: int = 10000) -> None:
        self._clock = clock
        self._ttl = ttl
        self._size = size
        self._key = os.urandom(32)
        #: handle (lower case) -> (keyed hash of the password, expiry, account)
        self._entries: OrderedDict[str, tuple[bytes, float, Any]] = OrderedDict()

    def _mac(self, handle: str, password: str) -> bytes:
        message = handle.encode("utf-8") + b"\0" + password.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def fingerprint(self, handle: str, password: str) -> bytes:
        """
        What this cache would keep of ``(handle, password)``: a keyed hash,
        never the password.
        """
        return self._mac(handle.lower(), password)

    def lookup(self, handle: str, password: str) -> Any:
        """
        The account whose password this was, verified a short while ago,
        or ``None``.
        """
        key = handle.lower()
        entry = self._entries.get(key)
        if entry is None:
            return None
        mac, expires, account = entry
        if expires < self._clock.seconds():
            del self._entries[key]
            return None
        if not hmac.compare_digest(mac, self._mac(key, password)):
            return None
        return account

    def remember(self, handle: str, password: str, account: Any) -> None:
        key = handle.lower()
        self._entries.pop(key, None)
        self._entries[key] = (
            self._mac(key, password),
            self._clock.seconds() + self._ttl,
            account,
        )
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self, handle: str) -> None:
        self._entries.pop(handle.lower(), None)
