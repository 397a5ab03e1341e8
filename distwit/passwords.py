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
from twisted.internet.defer import Deferred

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

    def hash(self, password: str) -> "Deferred[str]":
        return self._run(self._argon.hash, password)

    def verify(self, password_hash: str, password: str) -> "Deferred[bool]":
        return self._run(self._verify, password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._argon.verify(password_hash, password))
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


class CredentialCache:
    """
    Remembers recently verified credentials as keyed hashes.

    :param clock: an ``IReactorTime`` (for ``seconds()``).
    :param ttl: how long a verified password is remembered, in seconds.
    :param size: the most entries kept; the oldest go first.
    """

    def __init__(self, clock: Any, ttl: float = 300.0, size: int = 10000) -> None:
        self._clock = clock
        self._ttl = ttl
        self._size = size
        self._key = os.urandom(32)
        self._entries: OrderedDict[int, tuple[bytes, float]] = OrderedDict()

    def _mac(self, password_hash: str, password: str) -> bytes:
        message = password_hash.encode("utf-8") + b"\0" + password.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def known(self, account_id: int, password_hash: str, password: str) -> bool:
        """
        Was this password verified against this hash a short while ago?
        """
        entry = self._entries.get(account_id)
        if entry is None:
            return False
        mac, expires = entry
        if expires < self._clock.seconds():
            del self._entries[account_id]
            return False
        return hmac.compare_digest(mac, self._mac(password_hash, password))

    def remember(self, account_id: int, password_hash: str, password: str) -> None:
        self._entries.pop(account_id, None)
        self._entries[account_id] = (
            self._mac(password_hash, password),
            self._clock.seconds() + self._ttl,
        )
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self, account_id: int) -> None:
        self._entries.pop(account_id, None)
