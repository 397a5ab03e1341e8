"""
What an operator does to the accounts of this server and to other
servers (``distwit user ...``, ``distwit server ...``; docs/operating.md).

Each decision is written to the store; a running twitter role reads them
every second (:meth:`~distwit.core.microblog.Microblog.refresh_moderation`),
so the command takes effect there without a restart.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Callable

from distwit.core.devices import Devices
from distwit.core.microblog import Microblog, RuleError
from distwit.store.interfaces import Standing
from distwit.urls import authority_of_http_url

#: host[:port] as :func:`~distwit.urls.authority_of` gives it.
_AUTHORITY = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:[0-9]{1,5})?")

#: An operator's lock lasts until it is lifted: this far in the future (ms).
FOREVER_MS = 2**62


class AdminError(RuleError):
    """
    The command cannot do that; the message says why.
    """


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def state_of(standing: Standing, now_ms: int) -> str:
    """
    One word: active, locked, suspended or deleted.
    """
    if standing.deleted_at is not None:
        return "deleted"
    if standing.suspended:
        return "suspended"
    if standing.locked_until > now_ms:
        return "locked"
    return "active"


def server_authority(text: str) -> str:
    """
    ``host[:port]``, lower case, of an authority or a URL an operator typed.

    :raise AdminError: it is neither.
    """
    value = text.strip()
    if "://" not in value:
        value = "https://" + value
    try:
        authority = authority_of_http_url(value)
    except ValueError:
        authority = ""
    if not _AUTHORITY.fullmatch(authority):
        raise AdminError(f"{text!r} is not a server's host[:port] or URL")
    return authority


class Admin:
    """
    The operator's commands on a store, through the rules of
    :class:`Microblog` where posts change (deletions leave tombstones).

    :param now: milliseconds since the epoch.
    """

    def __init__(
        self, microblog: Microblog, now: Callable[[], int] | None = None,
        devices: Devices | None = None,
    ) -> None:
        self.microblog = microblog
        self.store = microblog.store
        self._now = now or (lambda: int(time.time() * 1000))
        #: The rules of phones, IM and e-mail (``distwit user ...-device``).
        self.devices = devices

    async def _standing(self, handle: str) -> Standing:
        standing: Standing | None = await self.store.standing(handle)
        if standing is None:
            raise AdminError(f"there is no local user {handle!r} here")
        return standing

    async def list_users(self) -> list[str]:
        now = self._now()
        lines = []
        for standing in await self.store.standings():
            account = standing.account
            lines.append(
                f"{account.id}\t{account.handle}\t{state_of(standing, now)}"
                f"\t{account.statuses_count} posts\t{account.followers_count} followers"
            )
        return lines

    async def show_user(self, handle: str) -> list[str]:
        standing = await self._standing(handle)
        account, now = standing.account, self._now()
        lines = [
            f"handle: {account.handle}",
            f"id: {account.id}",
            f"name: {account.name}",
            f"state: {state_of(standing, now)}",
            f"created: {_when(account.created_at)}",
            f"posts: {account.statuses_count} (last number {account.last_seq})",
            f"followers: {account.followers_count}",
            f"following: {account.friends_count}",
        ]
        if standing.locked_until > now:
            lines.append("locked: until unlocked (distwit user unlock)")
        if standing.unlocked_at:
            lines.append(f"last unlocked: {_when(standing.unlocked_at)}")
        if standing.deleted_at is not None:
            lines.append(f"deleted: {_when(standing.deleted_at)}")
        tokens = await self.microblog.apps.tokens_of(account.id)
        lines.append(f"access tokens: {len(tokens)}")
        return lines

    async def lock(self, handle: str) -> str:
        standing = await self._standing(handle)
        await self.store.set_lock(standing.account.id, FOREVER_MS)
        return f"locked {standing.account.handle}: no sign-in until `distwit user unlock`"

    async def unlock(self, handle: str) -> str:
        """
        Lift the operator's lock and the wrong-password lock (the running
        server forgets its counts of the user within a second).
        """
        standing = await self._standing(handle)
        await self.store.set_lock(standing.account.id, 0, self._now())
        return f"unlocked {standing.account.handle}"

    async def suspend(self, handle: str, on: bool = True) -> str:
        standing = await self._standing(handle)
        if standing.deleted_at is not None:
            raise AdminError(f"{standing.account.handle} is deleted")
        changed = await self.store.set_suspended(standing.account.id, on)
        verb = "suspended" if on else "unsuspended"
        if not changed:
            return f"{standing.account.handle} was {verb} already"
        return f"{verb} {standing.account.handle}"

    async def delete(self, handle: str) -> str:
        """
        Delete a local user: each post and retweet becomes a tombstone of
        its log (so its followers' servers delete their copies), then its
        follows, tokens, sessions and password go; the handle stays taken.
        """
        standing = await self._standing(handle)
        account = standing.account
        if standing.deleted_at is not None:
            raise AdminError(f"{account.handle} is deleted already")
        deleted = 0
        for post_id in await self.store.live_post_ids(account.id):
            try:
                await self.microblog.delete(account, post_id)
            except RuleError:
                continue  # deleted meanwhile
            deleted += 1
        await self.store.remove_user(account.id, self._now())
        return f"deleted {account.handle} (id {account.id}): {deleted} posts"

    async def set_password(self, handle: str, password: str) -> str:
        standing = await self._standing(handle)
        if standing.deleted_at is not None:
            raise AdminError(f"{standing.account.handle} is deleted")
        await self.microblog.set_password(standing.account, password, end_tokens=False)
        return f"new password for {standing.account.handle}; their web sessions ended"

    async def block_server(self, text: str, reason: str = "") -> str:
        authority = server_authority(text)
        if authority == self.microblog_authority():
            raise AdminError("this is this server's own authority")
        if await self.store.block_server(authority, self._now(), reason):
            return f"blocked {authority}"
        return f"{authority} was blocked already"

    def microblog_authority(self) -> str:
        url = self.microblog.public_url
        return authority_of_http_url(url) if url else ""

    async def unblock_server(self, text: str) -> str:
        authority = server_authority(text)
        if await self.store.unblock_server(authority):
            return f"unblocked {authority}"
        raise AdminError(f"{authority} is not blocked")

    async def list_servers(self) -> list[str]:
        return [
            f"{authority}\tblocked {_when(at)}" + (f"\t{reason}" if reason else "")
            for authority, at, reason in await self.store.blocked_servers()
        ]

    # Phones, IM and e-mail (docs/design/devices.md)

    def _devices(self) -> Devices:
        if self.devices is None:
            raise AdminError("devices are not available here")
        return self.devices

    async def list_devices(self, handle: str) -> list[str]:
        """
        The user's addresses and what is sent to them.
        """
        account = (await self._standing(handle)).account
        devices = self._devices()
        lines = [
            f"{a.kind}\t{a.address}\t{'verified' if a.verified else 'waiting for its code'}"
            for a in await devices.addresses(account)
        ]
        settings = await devices.settings(account)
        lines.append(f"delivery device: {settings.delivery_device}")
        if settings.quiet_start is not None and settings.quiet_end is not None:
            lines.append(
                f"quiet hours: {settings.quiet_start}:00 to {settings.quiet_end}:00"
                f" (UTC{settings.utc_offset / 3600:+g})"
            )
        chosen = sorted(key for key, on in settings.choices.items() if on)
        lines.append("sent: " + (", ".join(chosen) or "nothing else"))
        return lines

    async def add_device(self, handle: str, kind: str, address: str) -> str:
        """
        Give the user an address; its code is queued (the running server
        sends it).
        """
        account = (await self._standing(handle)).account
        added = await self._devices().add_address(account, kind, address)
        return (
            f"{kind} address {added.address} added for {account.handle}: a code is on its way"
            f" (distwit user verify-device {account.handle} {kind} CODE)"
        )

    async def verify_device(self, handle: str, kind: str, code: str) -> str:
        account = (await self._standing(handle)).account
        verified = await self._devices().verify(account, kind, code)
        return f"{kind} address {verified.address} of {account.handle} verified"

    async def remove_device(self, handle: str, kind: str) -> str:
        account = (await self._standing(handle)).account
        await self._devices().remove_address(account, kind)
        return f"{kind} address of {account.handle} removed"
