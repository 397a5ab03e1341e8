"""
``/settings/devices``: a member's phone number, Jabber ID and e-mail
address (each used only once its code is confirmed), where friends' posts
go, what else each channel sends, and quiet hours (docs/design/devices.md).
The page offers only the kinds this server sends to.

``/account/unsubscribe/<token>``: the link at the foot of every e-mail
(and its ``List-Unsubscribe``): one button, or a mail program's one-click
POST (RFC 8058), stops everything to that address at once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from twisted.web.iweb import IRequest

from distwit.core.accts import HomeUnreachable
from distwit.core.devices import (
    UNSUBSCRIBE_PATH, AddressTaken, BadAddress, BadSetting, CodeExpired, Devices, NoSuchAddress,
    NoSuchChannel, NotFollowing, WrongCode,
)
from distwit.core.microblog import RuleError
from distwit.model import Account
from distwit.web.site import PageError, Site, Visitor, page

#: The kinds of address, in the order the page shows them, with what the
#: page calls them.
KINDS = {
    "sms": {"title": "Phone (SMS)", "address": "Phone number", "input": "tel",
            "hint": "With your country code, e.g. +1 555 123 4567.", "your": "phone",
            "name": "SMS"},
    "im": {"title": "Instant messages (Jabber / XMPP)", "address": "Jabber ID",
           "input": "text", "hint": "As you sign in to your messenger, e.g. dave@jabber.example.",
           "your": "Jabber ID", "name": "instant messages"},
    "email": {"title": "E-mail", "address": "E-mail address", "input": "email",
              "hint": "We send a code there first.", "your": "e-mail address",
              "name": "e-mail"},
}

#: What each channel may send besides friends' posts.
CHOICES = {
    "mentions": "Mentions and replies",
    "direct_messages": "Direct messages",
    "followers": "New followers",
}

#: The refusals of the rules whose sentence the page shows as it is.
REFUSALS = (AddressTaken, BadAddress, BadSetting, CodeExpired, NoSuchAddress, NoSuchChannel,
            WrongCode)

#: The notices after a change, by ``?done=``.
DONE = {
    "added": "We sent a code to your {your}: enter it below to start using it.",
    "verified": "Your {your} is verified.",
    "removed": "Your {your} is removed: nothing more is sent to it.",
    "choices": "Saved: what is sent, and where.",
    "on": "Their posts are sent to you now.",
    "off": "Their posts are no longer sent to you.",
    "quiet": "Quiet hours saved.",
}

#: The most friends the page looks through for those whose posts are sent.
MAX_FRIENDS = 5000

#: Offsets from UTC for the quiet hours' clock, in minutes (-12:00 to +14:00).
OFFSETS = [m * 30 for m in range(-24, 29)]


def offset_label(minutes: int) -> str:
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC {sign}{hours}:{rest:02d}"


class DevicesPages:
    """
    :param site: the plumbing the pages are mounted on.
    :param devices: the rules of addresses and choices.
    """

    def __init__(self, site: Site, devices: Devices) -> None:
        self.site = site
        self.devices = devices

    def _offered(self) -> list[str]:
        return [kind for kind in KINDS if kind in self.devices.kinds]

    @page("GET", "/settings/devices")
    async def devices_page(self, request: IRequest, visitor: Visitor, status: int = 200,
                           errors: dict[str, str] | None = None,
                           typed: dict[str, Any] | None = None) -> bytes:
        """
        ``GET /settings/devices``: one section per kind this server sends
        to (the address and its verification), then what is sent where,
        then quiet hours.
        """
        user = self.site.member(visitor, "/settings/devices")
        offered = self._offered()
        addresses = {a.kind: a for a in await self.devices.addresses(user)}
        settings = await self.devices.settings(user)
        done_key, _, done_kind = (self.site.field(request, "done") or "").partition("-")
        done = None
        if done_key in DONE and (done_kind in KINDS or not done_kind):
            done = DONE[done_key].format(your=KINDS.get(done_kind, KINDS["sms"])["your"])
        on = settings.quiet_start is not None and settings.quiet_end is not None
        # The quiet hours' form as kept, or as just sent when it was refused.
        quiet = (typed or {}).get("quiet") or {
            "on": on,
            "start": settings.quiet_start if on else 22,
            "end": settings.quiet_end if on else 7,
            "offset": settings.utc_offset // 60,
        }
        return self.site.render(
            request, "devices.html", visitor, status,
            friends_on=await self._friends_on(user) if offered else [],
            kinds=KINDS, offered=offered, addresses=addresses, settings=settings,
            choices=CHOICES, errors=errors or {}, typed=typed or {}, done=done,
            quiet=quiet, hours=range(24), offsets=[(m, offset_label(m)) for m in OFFSETS],
            delivery_kinds=[kind for kind in offered if kind in ("sms", "im")],
        )

    async def _friends_on(self, user: Account) -> list[Account]:
        """
        The friends whose posts go to the user's delivery device.
        """
        friends = await self.site.microblog.timelines.following_page(
            user.id, False, None, MAX_FRIENDS
        )
        on = await self.devices.notifications_on(user, [f.id for f in friends])
        return sorted((f for f in friends if f.id in on), key=lambda f: f.screen_name.lower())

    def _kind(self, request: IRequest) -> str:
        kind = self.site.field(request, "kind") or ""
        if kind not in KINDS:
            raise PageError(400, "Bad request", "The form named no kind of address.")
        if kind not in self.devices.kinds:
            raise PageError(
                400, "Not offered here",
                f"This server does not send to any {KINDS[kind]['address'].lower()}.",
            )
        return kind

    async def _refused(self, request: IRequest, visitor: Visitor, where: str, error: Exception,
                       typed: dict[str, Any] | None = None) -> bytes:
        return await self.devices_page(request, visitor, 400, {where: str(error)}, typed)

    @page("POST", "/settings/devices/add")
    async def add(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /settings/devices/add``: ``kind`` and ``address``; a code is
        sent there.
        """
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/settings/devices")
        kind = self._kind(request)
        address = (self.site.field(request, "address") or "").strip()
        if not address:
            return await self.devices_page(
                request, visitor, 400,
                {kind: f"Type your {KINDS[kind]['your']} first."},
            )
        try:
            await self.devices.add_address(user, kind, address)
        except REFUSALS as e:
            return await self._refused(request, visitor, kind, e, {kind: address})
        return self.site.redirect(request, f"/settings/devices?done=added-{kind}#{kind}")

    @page("POST", "/settings/devices/verify")
    async def verify(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /settings/devices/verify``: ``kind`` and the ``code`` sent.
        """
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/settings/devices")
        kind = self._kind(request)
        code = (self.site.field(request, "code") or "").strip()
        if not code:
            return await self.devices_page(
                request, visitor, 400, {kind: "Type the code we sent you first."}
            )
        try:
            await self.devices.verify(user, kind, code)
        except REFUSALS as e:
            return await self._refused(request, visitor, kind, e)
        return self.site.redirect(request, f"/settings/devices?done=verified-{kind}#{kind}")

    @page("POST", "/settings/devices/remove")
    async def remove(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /settings/devices/remove``: forget the address of ``kind``.
        """
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/settings/devices")
        kind = self.site.field(request, "kind") or ""
        if kind not in KINDS:
            raise PageError(400, "Bad request", "The form named no kind of address.")
        try:
            await self.devices.remove_address(user, kind)
        except REFUSALS as e:
            return await self._refused(request, visitor, kind, e)
        return self.site.redirect(request, f"/settings/devices?done=removed-{kind}")

    @page("POST", "/settings/devices/choices")
    async def choices(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /settings/devices/choices``: the delivery device, and per
        channel what it sends (an unticked box is not sent at all).
        """
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/settings/devices")
        device = self.site.field(request, "delivery_device") or "none"
        if device not in ("sms", "im", "none"):
            return await self.devices_page(
                request, visitor, 400, {"choices": "Choose a phone, a Jabber ID or nowhere."}
            )
        changes: dict[str, Any] = {"delivery_device": device}
        for kind in self._offered():
            for choice in CHOICES:
                key = f"{kind}_{choice}"
                changes[key] = self.site.field(request, key) == "1"
        try:
            await self.devices.update_settings(user, **changes)
        except REFUSALS as e:
            return await self._refused(request, visitor, "choices", e)
        return self.site.redirect(request, "/settings/devices?done=choices#choices")

    @page("POST", "/settings/devices/friend")
    async def friend(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /settings/devices/friend``: ``friend`` (``handle`` or
        ``handle@server``) and ``on`` (1 or 0): that friend's posts to the
        delivery device, or no more.
        """
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/settings/devices")
        name = (self.site.field(request, "friend") or "").strip().removeprefix("@")
        on = self.site.field(request, "on") == "1"
        typed = {"friend": name}
        if not name:
            return await self.devices_page(
                request, visitor, 400, {"friends": "Type the name of someone you follow."},
                typed,
            )
        try:
            friend = await self.site.microblog.resolve(name)
            await self.devices.set_notifications(user, friend, on)
        except NotFollowing as e:
            return await self._refused(request, visitor, "friends", e, typed)
        except HomeUnreachable as e:
            return await self._refused(request, visitor, "friends", e, typed)
        except RuleError:
            return await self.devices_page(
                request, visitor, 400, {"friends": f"There is nobody called {name} here."},
                typed,
            )
        done = "on" if on else "off"
        return self.site.redirect(request, f"/settings/devices?done={done}#friends")

    @page("POST", "/settings/devices/quiet")
    async def quiet(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /settings/devices/quiet``: quiet hours on or off, from and
        to which hour, on which clock (the offset from UTC).
        """
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/settings/devices")
        on = self.site.field(request, "quiet") == "1"
        start = _number(self.site.field(request, "quiet_start"), 0, 23)
        end = _number(self.site.field(request, "quiet_end"), 0, 23)
        offset = _number(self.site.field(request, "utc_offset"), OFFSETS[0], OFFSETS[-1])
        typed = {"quiet": {"on": on, "start": start, "end": end, "offset": offset}}
        if offset is None or (on and (start is None or end is None)):
            return await self.devices_page(
                request, visitor, 400, {"quiet": "Choose the hour quiet hours start and end."},
                typed,
            )
        if on and start == end:
            return await self.devices_page(
                request, visitor, 400,
                {"quiet": "Quiet hours must end at another hour than they start."}, typed,
            )
        try:
            await self.devices.update_settings(
                user, utc_offset=offset * 60,
                quiet_start=start if on else None, quiet_end=end if on else None,
            )
        except REFUSALS as e:
            return await self._refused(request, visitor, "quiet", e, typed)
        return self.site.redirect(request, "/settings/devices?done=quiet#quiet")


    # The unsubscribe link of e-mails

    @page("GET", UNSUBSCRIBE_PATH + "<token>")
    async def unsubscribe_page(self, request: IRequest, visitor: Visitor, token: str) -> bytes:
        """
        ``GET``: a button (a link opened by a mail scanner stops nothing).
        """
        return self.site.render(request, "unsubscribe.html", visitor, done=False,
                                action=UNSUBSCRIBE_PATH + quote(token, safe=""))

    @page("POST", UNSUBSCRIBE_PATH + "<token>")
    async def unsubscribe(self, request: IRequest, visitor: Visitor, token: str) -> bytes:
        """
        ``POST``: stop every e-mail to the address the token names.  The
        token is the credential (no form token: a mail program's one-click
        POST has none, and a page elsewhere cannot know the token).
        """
        try:
            await self.devices.unsubscribe(token)
        except NoSuchAddress as e:
            raise PageError(404, "Unknown link", str(e)) from None
        return self.site.render(request, "unsubscribe.html", visitor, done=True)


def _number(value: str | None, lowest: int, highest: int) -> int | None:
    """
    ``value`` as a whole number from ``lowest`` to ``highest``, else None.
    """
    text = (value or "").strip()
    digits = text[1:] if text.startswith("-") else text
    if not digits.isdigit() or len(digits) > 6:
        return None
    number = int(text)
    return number if lowest <= number <= highest else None


__all__ = ["DevicesPages"]
