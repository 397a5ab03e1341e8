"""
Phones, instant messages and e-mail through the API (docs/design/devices.md):
Twitter's 2008 ``account/update_delivery_device`` and
``notifications/follow`` / ``notifications/leave``, the 1.1
``account/settings`` (its ``sleep_time`` and ``time_zone``, with distwit's
choices per channel beside them), and distwit's own
``account/devices/...`` to add, verify and remove an address.

The ``notifications`` field of user objects is filled in by the app (one
query for a whole answer): :func:`~distwit.api.render.user_objects`.
"""

from __future__ import annotations

import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twisted.web.iweb import IRequest

from distwit.api import errors
from distwit.api.area import Area
from distwit.api.endpoints import GET_OR_POST, POST, REQUIRED, endpoint
from distwit.api.errors import TwitterError
from distwit.api.params import Params
from distwit.api.render import twitter_time, user_json
from distwit.core.devices import (
    AddressTaken, BadAddress, BadSetting, CodeExpired, Devices, NoSuchAddress, NoSuchChannel,
    NotFollowing, WrongCode,
)
from distwit.core.microblog import Microblog
from distwit.model import Account
from distwit.store.interfaces import DeviceAddress, DeviceSettings

#: What ``account/update_delivery_device`` takes: the kinds a friend's
#: posts may go to, and ``none``.
DELIVERY_DEVICES = ("sms", "im", "none")

#: The choices each channel has, as ``account/settings`` names them
#: (``sms_mentions``, ``im_direct_messages``, ...).
CHOICES = ("mentions", "direct_messages", "followers")

#: How each kind is called in sentences.
KIND_NAMES = {"sms": "phone number", "im": "Jabber ID", "email": "e-mail address"}

#: Offsets from UTC people live at, in seconds (-12:00 to +14:00).
MIN_UTC_OFFSET, MAX_UTC_OFFSET = -12 * 3600, 14 * 3600

#: The refusals of the devices' rules, as a Twitter client sees them:
#: (code, HTTP status); the message is the rule's own sentence.
DEVICE_ERRORS: dict[type[Exception], tuple[int, int]] = {
    BadAddress: (44, 400),
    NoSuchChannel: (44, 400),
    BadSetting: (44, 403),
    AddressTaken: (44, 403),
    WrongCode: (44, 403),
    CodeExpired: (44, 403),
    NoSuchAddress: (34, 404),
    NotFollowing: (44, 403),
}

#: Every refusal of the devices' rules (caught to become a Twitter error).
REFUSALS = tuple(DEVICE_ERRORS)


def device_error(error: Exception) -> TwitterError:
    """
    The Twitter error for a refusal of the devices' rules.
    """
    code, status = DEVICE_ERRORS.get(type(error), (44, 400))
    return TwitterError(code, str(error), status)


def address_json(address: DeviceAddress) -> dict[str, Any]:
    return {
        "kind": address.kind,
        "address": address.address,
        "verified": address.verified,
        "created_at": twitter_time(address.created_at),
    }


def offset_name(utc_offset: int) -> str:
    """
    ``UTC``, ``UTC+01:00``, ``UTC-05:30``: a time zone by its offset.
    """
    if utc_offset == 0:
        return "UTC"
    sign = "+" if utc_offset > 0 else "-"
    hours, minutes = divmod(abs(utc_offset) // 60, 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def time_zone_json(utc_offset: int) -> dict[str, Any]:
    """
    Twitter's ``time_zone``: ``name``, ``utc_offset`` (seconds) and
    ``tzinfo_name`` (the tz database's ``Etc/GMT-1`` for UTC+1, whose
    sign is the other way round, for whole hours).
    """
    tzinfo = offset_name(utc_offset)
    if utc_offset % 3600 == 0 and utc_offset != 0:
        hours = -utc_offset // 3600
        tzinfo = f"Etc/GMT{'+' if hours > 0 else '-'}{abs(hours)}"
    elif utc_offset == 0:
        tzinfo = "Etc/UTC"
    return {"name": offset_name(utc_offset), "utc_offset": utc_offset, "tzinfo_name": tzinfo}


def settings_json(user: Account, settings: DeviceSettings, kinds: frozenset[str],
                  addresses: list[DeviceAddress]) -> dict[str, Any]:
    """
    ``account/settings`` as Twitter 1.1 answered it (the fields that mean
    something here), and distwit's: ``delivery_device``, ``channels``
    (the kinds this server sends to), ``devices`` (the user's addresses)
    and, per channel, what is sent (``sms_mentions``: true, ...).
    """
    quiet = settings.quiet_start is not None and settings.quiet_end is not None
    body: dict[str, Any] = {
        "screen_name": user.screen_name,
        "protected": False,
        "geo_enabled": False,
        "language": "en",
        "always_use_https": False,
        "discoverable_by_email": False,
        "sleep_time": {
            "enabled": quiet,
            "start_time": settings.quiet_start if quiet else None,
            "end_time": settings.quiet_end if quiet else None,
        },
        "time_zone": time_zone_json(settings.utc_offset),
        "delivery_device": settings.delivery_device,
        "channels": sorted(kinds),
        "devices": [address_json(address) for address in addresses],
    }
    for kind in sorted(kinds):
        for choice in CHOICES:
            key = f"{kind}_{choice}"
            body[key] = bool(settings.choices.get(key, False))
    return body


def utc_offset_of(name: str, now: float) -> int:
    """
    The offset from UTC, in seconds, of the time zone ``name``: a tz
    database name (``Europe/Paris``; its offset now, summer time and all)
    or ``UTC``, ``UTC+2``, ``UTC-05:30``.

    :raise TwitterError: 44, naming what is accepted.
    """
    text = name.strip()
    upper = text.upper()
    if upper in ("UTC", "GMT", "Z"):
        return 0
    for prefix in ("UTC", "GMT"):
        if upper.startswith(prefix) and upper[3:4] in ("+", "-"):
            sign = 1 if upper[3] == "+" else -1
            hours, _, minutes = upper[4:].partition(":")
            if hours.isdigit() and (not minutes or minutes.isdigit()):
                offset = sign * (int(hours) * 3600 + int(minutes or 0) * 60)
                if MIN_UTC_OFFSET <= offset <= MAX_UTC_OFFSET:
                    return offset
    try:
        zone = ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.invalid_parameter(
            "time_zone",
            f"{name!r} is not a time zone: use a tz database name such as "
            "Europe/Paris, or UTC+2",
        ) from None
    delta = datetime.datetime.fromtimestamp(now, tz=zone).utcoffset()
    return 0 if delta is None else int(delta.total_seconds())


def hour(params: Params, name: str) -> int | None:
    """
    An hour of the day, 0 to 23 (``start_sleep_time=23``; ``23:00`` too).
    """
    value = params.text(name)
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if text.endswith(":00"):
        text = text[:-3]
    if not text.isdigit() or not 0 <= int(text) <= 23:
        raise errors.invalid_parameter(name, f"{value!r} is not an hour from 0 to 23")
    return int(text)


class DeviceEndpoints(Area):
    """
    :param devices: the rules of addresses, choices and what is sent.
    """

    def __init__(self, microblog: Microblog, devices: Devices) -> None:
        super().__init__(microblog)
        self.devices = devices

    # Twitter's 2008 API

    @endpoint("account/update_delivery_device", methods=POST, auth=REQUIRED)
    async def update_delivery_device(self, request: IRequest, user: Account, params: Params
                                     ) -> Any:
        """
        ``device=sms|im|none``: where friends' posts go (those whose
        notifications are on).  The answer is the user, as in 2008.
        """
        device = (params.text("device") or "").strip().lower()
        if not device:
            raise errors.missing_parameter("device")
        if device not in DELIVERY_DEVICES:
            raise errors.invalid_parameter("device", f"{device!r}: use sms, im or none")
        try:
            await self.devices.update_settings(user, delivery_device=device)
        except REFUSALS as e:
            raise device_error(e) from None
        return await self.user_with_status(await self.microblog.user_by_id(user.id), params)

    async def _notifications(self, user: Account, params: Params, on: bool) -> Any:
        friend = await self.acted_on(params)
        try:
            await self.devices.set_notifications(user, friend, on)
        except REFUSALS as e:
            raise device_error(e) from None
        return user_json(friend, self.microblog.public_url)

    @endpoint("notifications/follow", r"notifications/follow/(?P<id>[^/]+)", methods=POST,
              auth=REQUIRED)
    async def notifications_follow(self, request: IRequest, user: Account, params: Params
                                   ) -> Any:
        """
        A friend's posts to the user's delivery device from now on; the
        answer is the friend (``notifications`` true).
        """
        return await self._notifications(user, params, True)

    @endpoint("notifications/leave", r"notifications/leave/(?P<id>[^/]+)", methods=POST,
              auth=REQUIRED)
    async def notifications_leave(self, request: IRequest, user: Account, params: Params
                                  ) -> Any:
        """
        No more of a friend's posts to the device (still following).
        """
        return await self._notifications(user, params, False)

    # Twitter 1.1's account/settings, with distwit's choices

    async def _settings(self, user: Account) -> dict[str, Any]:
        return settings_json(
            user, await self.devices.settings(user), self.devices.kinds,
            await self.devices.addresses(user),
        )

    @endpoint("account/settings", methods=GET_OR_POST, auth=REQUIRED)
    async def account_settings(self, request: IRequest, user: Account, params: Params) -> Any:
        """
        GET: the settings.  POST: change those given (``sleep_time_enabled``,
        ``start_sleep_time``, ``end_sleep_time``, ``time_zone``, and
        distwit's ``utc_offset``, ``delivery_device``, ``sms_mentions``...),
        then the settings.
        """
        if request.method == b"POST":
            changes = self._changes(params)
            if changes:
                try:
                    await self.devices.update_settings(user, **changes)
                except REFUSALS as e:
                    raise device_error(e) from None
        return await self._settings(user)

    def _changes(self, params: Params) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        zone = params.text("time_zone")
        if zone is not None and zone.strip():
            changes["utc_offset"] = utc_offset_of(zone, self.microblog.clock.seconds())
        offset = params.integer("utc_offset", minimum=MIN_UTC_OFFSET, maximum=MAX_UTC_OFFSET)
        if offset is not None:
            changes["utc_offset"] = offset
        start, end = hour(params, "start_sleep_time"), hour(params, "end_sleep_time")
        if params.text("sleep_time_enabled") is not None:
            if params.boolean("sleep_time_enabled"):
                if start is None or end is None:
                    raise errors.missing_parameter("start_sleep_time and end_sleep_time")
                if start == end:
                    raise errors.invalid_parameter(
                        "end_sleep_time", "quiet hours must end at another hour than they start"
                    )
                changes["quiet_start"], changes["quiet_end"] = start, end
            else:
                changes["quiet_start"] = changes["quiet_end"] = None
        elif start is not None or end is not None:
            raise errors.missing_parameter("sleep_time_enabled")
        device = params.text("delivery_device")
        if device is not None:
            device = device.strip().lower()
            if device not in DELIVERY_DEVICES:
                raise errors.invalid_parameter(
                    "delivery_device", f"{device!r}: use sms, im or none"
                )
            changes["delivery_device"] = device
        for kind in sorted(self.devices.kinds):
            for choice in CHOICES:
                key = f"{kind}_{choice}"
                if params.text(key) is not None:
                    changes[key] = params.boolean(key)
        return changes

    # distwit: adding, verifying and removing an address

    def _kind(self, params: Params) -> str:
        kind = (params.text("kind") or "").strip().lower()
        if not kind:
            raise errors.missing_parameter("kind")
        if kind not in KIND_NAMES:
            raise errors.invalid_parameter("kind", f"{kind!r}: use sms, im or email")
        if kind not in self.devices.kinds:
            offered = ", ".join(sorted(self.devices.kinds)) or "none"
            raise TwitterError(
                44, f"This server does not send to any {KIND_NAMES[kind]} "
                f"(it offers: {offered}).", 400,
            )
        return kind

    async def _devices(self, user: Account) -> dict[str, Any]:
        return {
            "channels": sorted(self.devices.kinds),
            "devices": [address_json(a) for a in await self.devices.addresses(user)],
        }

    @endpoint("account/devices", auth=REQUIRED)
    async def devices_list(self, request: IRequest, user: Account, params: Params) -> Any:
        """
        The user's addresses (verified or awaiting their code), and the
        kinds this server sends to.
        """
        return await self._devices(user)

    @endpoint("account/devices/add", methods=POST, auth=REQUIRED)
    async def devices_add(self, request: IRequest, user: Account, params: Params) -> Any:
        """
        ``kind`` (sms, im, email) and ``address``: a code goes to the
        address; the answer is the address, not yet verified.  A new
        address of a kind replaces the old one.
        """
        kind = self._kind(params)
        address = (params.text("address") or "").strip()
        if not address:
            raise errors.missing_parameter("address")
        try:
            added = await self.devices.add_address(user, kind, address)
        except REFUSALS as e:
            raise device_error(e) from None
        return address_json(added)

    @endpoint("account/devices/verify", methods=POST, auth=REQUIRED)
    async def devices_verify(self, request: IRequest, user: Account, params: Params) -> Any:
        """
        ``kind`` and the ``code`` that was sent: the address, verified.
        """
        kind = self._kind(params)
        code = (params.text("code") or "").strip()
        if not code:
            raise errors.missing_parameter("code")
        try:
            verified = await self.devices.verify(user, kind, code)
        except REFUSALS as e:
            raise device_error(e) from None
        return address_json(verified)

    @endpoint("account/devices/remove", methods=POST, auth=REQUIRED)
    async def devices_remove(self, request: IRequest, user: Account, params: Params) -> Any:
        """
        ``kind``: forget that address (nothing more is sent to it); the
        answer is what is left.
        """
        kind = (params.text("kind") or "").strip().lower()
        if kind not in KIND_NAMES:
            raise errors.invalid_parameter("kind", f"{kind!r}: use sms, im or email")
        try:
            await self.devices.remove_address(user, kind)
        except REFUSALS as e:
            raise device_error(e) from None
        return await self._devices(user)


__all__ = ["DELIVERY_DEVICES", "DeviceEndpoints", "settings_json", "utc_offset_of"]
