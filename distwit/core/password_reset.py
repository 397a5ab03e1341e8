"""
Password reset by e-mail (issue 18): a forgotten password is replaced
through a link sent to the account's verified e-mail address.

- :meth:`PasswordReset.request` takes an address or a handle and answers
  the same whether or not it names anybody (the page says "if ..., we sent
  a link"); the pages run it in the background
  (:meth:`PasswordReset.request_soon`), so that not even the time taken
  tells.  A known account with a verified address gets one mail with a
  link that works once, for ``password_reset_ttl`` seconds (an hour); at
  most :data:`MAILS_PER_ADDRESS` links go to one address in
  :data:`MAIL_WINDOW`.
- The link carries a random token; the store keeps only its SHA-256, so a
  copy of the database resets nobody's password.
- :meth:`PasswordReset.reset` checks the new password as every other door
  does (:func:`~distwit.core.microblog.check_password`), uses the link
  (and voids the account's other links), sets the password, and so ends
  the user's web sessions and every remembered copy of the old password
  (:meth:`~distwit.core.microblog.Microblog.set_password`).

The verified addresses are the devices' (:class:`VerifiedMailboxes`), and
the mail goes through their durable outbox (``Devices.queue``,
docs/design/devices.md): a restart or an SMTP outage loses no link.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any, Awaitable, Protocol

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.logger import Logger

from distwit.config import PASSWORD_RESET_TTL
from distwit.core.devices import DeviceError, Devices
from distwit.core.devices import normalize_address as normalize_device_address
from distwit.core.microblog import Microblog, RuleError, check_password
from distwit.model import Account, is_valid_handle
from distwit.store.interfaces import IDeviceStore, IPasswordResetStore, PasswordResetRecord
from distwit.urls import authority_of

#: Links sent to one address at most in :data:`MAIL_WINDOW` seconds: a
#: stranger cannot flood a mailbox through the form.
MAILS_PER_ADDRESS = 3
MAIL_WINDOW = 3600.0

#: A token as :func:`secrets.token_urlsafe` makes it (32 bytes): anything
#: else in a link is not looked up.
_TOKEN = re.compile(r"\A[A-Za-z0-9_-]{43}\Z")


class FindMailbox(Protocol):
    """
    The local account an e-mail address (verified) or a handle names, with
    its verified e-mail address; ``None`` when there is none.
    """

    def __call__(self, address_or_handle: str) -> Awaitable[tuple[Account, str] | None]: ...


class VerifiedMailboxes:
    """
    The :class:`FindMailbox` of a server: the devices' verified e-mail
    addresses.  Only a local account that is neither suspended nor deleted
    is found, and only by an address it verified (or its handle, when it
    has one).

    :param microblog: finds handles, knows suspensions.
    :param devices: the users' addresses.
    :param store: who verified an address.
    """

    def __init__(self, microblog: Microblog, devices: Devices, store: IDeviceStore) -> None:
        self._microblog = microblog
        self._devices = devices
        self._store = store

    async def __call__(self, address_or_handle: str) -> tuple[Account, str] | None:
        account: Account | None
        if "@" in address_or_handle:
            try:
                address = normalize_device_address("email", address_or_handle)
            except DeviceError:
                return None
            owner: int | None = await self._store.device_owner("email", address)
            if owner is None:
                return None
            account = await self._microblog.store.get_account(owner)
        else:
            account = await self._microblog.local_user(address_or_handle)
        if account is None or not account.is_local or self._microblog.is_suspended(account):
            return None
        for found in await self._devices.addresses(account):
            if found.kind == "email" and found.verified:
                return account, found.address
        return None


class QueueMail(Protocol):
    """
    ``Devices.queue``: keep a message in the durable outbox.
    """

    def __call__(self, account_id: int, kind: str, address: str, text: str, subject: str,
                 dedupe_key: str, not_before_ms: int = 0) -> Awaitable[bool]: ...


class ResetLinkError(RuleError):
    """
    A reset link that does not work; ``str()`` says why, for a person.
    """


class UnknownResetLink(ResetLinkError):
    def __init__(self) -> None:
        super().__init__(
            "This password reset link is not valid. Check that you copied all of it,"
            " or ask for a new one."
        )


class UsedResetLink(ResetLinkError):
    def __init__(self) -> None:
        super().__init__(
            "This password reset link was already used: each link works once."
            " Ask for a new one if you need to."
        )


class ExpiredResetLink(ResetLinkError):
    def __init__(self) -> None:
        super().__init__("This password reset link has expired. Ask for a new one.")


def token_hash(token: str) -> str:
    """
    What the store keeps of a link's token.
    """
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def normalize_address(address: str) -> str:
    """
    An e-mail address as the store keeps it: the domain lower-cased
    (``channels/interfaces.py``).
    """
    local, _, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}"


def how_long(seconds: float) -> str:
    """
    ``1 hour``, ``90 minutes``, ``2 hours``: a link's lifetime in words.
    """
    minutes = int(seconds // 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return "1 hour" if hours == 1 else f"{hours} hours"
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


class PasswordReset:
    """
    Password reset by e-mail.

    :param microblog: sets the new password (and its consequences).
    :param store: where the links are kept.
    :param find: the account and verified address a request names; ``None``
        (with ``queue``): this server cannot reset passwords (no e-mail).
    :param queue: keeps the mail in the durable outbox.
    :param public_url: this server's URL, for the link.
    :param ttl: seconds a link works.
    """

    log = Logger()

    def __init__(
        self,
        microblog: Microblog,
        store: IPasswordResetStore,
        find: FindMailbox | None,
        queue: QueueMail | None,
        public_url: str,
        ttl: float = PASSWORD_RESET_TTL,
    ) -> None:
        self._microblog = microblog
        self._store = store
        self._find = find
        self._queue = queue
        self._public_url = public_url.rstrip("/")
        self._authority = authority_of(public_url)
        self.ttl = ttl
        #: Requests running in the background (:meth:`request_soon`).
        self._running: set[Deferred[None]] = set()

    @property
    def enabled(self) -> bool:
        """
        Whether this server can send reset links (it has e-mail).
        """
        return self._find is not None and self._queue is not None

    def _now_ms(self) -> int:
        return self._microblog.now_ms()

    def link(self, token: str) -> str:
        return f"{self._public_url}/account/reset/{token}"

    async def request(self, address_or_handle: str) -> None:
        """
        Send a reset link to the verified e-mail address of the account
        that ``address_or_handle`` names, if any, and if that address has
        not had :data:`MAILS_PER_ADDRESS` links lately.  Nothing tells the
        caller which happened.
        """
        if self._find is None or self._queue is None:
            return
        wanted = address_or_handle.strip()
        if wanted.startswith("@") and is_valid_handle(wanted[1:]):
            wanted = wanted[1:]
        if "@" in wanted:
            wanted = normalize_address(wanted)
        elif not is_valid_handle(wanted):
            return
        found = await self._find(wanted)
        if found is None:
            return
        account, address = found
        token = secrets.token_urlsafe(32)
        hashed = token_hash(token)
        now = self._now_ms()
        kept = await self._store.create_password_reset(
            hashed, account.id, address.lower(), now, now + int(self.ttl * 1000),
            now - int(MAIL_WINDOW * 1000), MAILS_PER_ADDRESS,
        )
        if not kept:
            self.log.info(
                "password reset for {handle}: not sent, {count} links lately",
                handle=account.handle, count=MAILS_PER_ADDRESS,
            )
            return
        await self._queue(
            account.id, "email", address, self._text(account, token),
            f"Reset your password on {self._authority}", f"reset:{hashed}",
        )
        self.log.info("password reset for {handle}: link sent", handle=account.handle)

    def request_soon(self, address_or_handle: str) -> None:
        """
        :meth:`request` in the background: the caller answers at once, the
        same whatever happens (a failure is logged).
        """
        running = ensureDeferred(self.request(address_or_handle))
        self._running.add(running)

        def done(result: Any) -> None:
            self._running.discard(running)

        running.addErrback(lambda failure: self.log.failure(
            "password reset request failed", failure))
        running.addBoth(done)

    def idle(self) -> Deferred[Any]:
        """
        Fires when the requests running in the background have finished.
        """
        return DeferredList(list(self._running))

    def _text(self, account: Account, token: str) -> str:
        return (
            f"Hello @{account.handle},\n"
            "\n"
            f"someone asked to reset the password of your account @{account.handle}"
            f" on {self._authority}. To choose a new password, open this link"
            f" within {how_long(self.ttl)} (it works once):\n"
            "\n"
            f"{self.link(token)}\n"
            "\n"
            "If it was not you, ignore this mail: your password stays as it is.\n"
        )

    async def check(self, token: str) -> PasswordResetRecord:
        """
        The link of ``token``, if it works now.

        :raise ResetLinkError: unknown, used or expired (the error says which).
        """
        if not _TOKEN.match(token):
            raise UnknownResetLink()
        record: PasswordResetRecord | None = await self._store.password_reset(
            token_hash(token)
        )
        if record is None:
            raise UnknownResetLink()
        if record.used_at is not None:
            raise UsedResetLink()
        if record.expires_at <= self._now_ms():
            raise ExpiredResetLink()
        return record

    async def reset(self, token: str, password: str) -> Account:
        """
        Set the password of the link's account: the link is used (and the
        account's other links voided), every web session of the account
        ends, and the old password stops working everywhere.

        :raise ResetLinkError: the link does not work (nothing changed).
        :raise WeakPassword: the password breaks the rules (the link still
            works).
        """
        await self.check(token)
        check_password(password)
        used: PasswordResetRecord | None = await self._store.use_password_reset(
            token_hash(token), self._now_ms()
        )
        if used is None:
            # Used or expired since the check, by another request.
            await self.check(token)
            raise UsedResetLink()
        account = await self._microblog.user_by_id(used.account_id)
        await self._microblog.set_password(account, password)
        self.log.info("password of {handle} reset by e-mail", handle=account.handle)
        return account


__all__ = [
    "MAILS_PER_ADDRESS",
    "ExpiredResetLink",
    "FindMailbox",
    "PasswordReset",
    "QueueMail",
    "ResetLinkError",
    "UnknownResetLink",
    "UsedResetLink",
    "VerifiedMailboxes",
    "normalize_address",
    "token_hash",
]
