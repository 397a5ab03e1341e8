"""
Phones, instant messages and e-mail: the rules (docs/design/devices.md).

:class:`Devices` is what the faces call: the API and the pages (addresses,
their verification, what a user chooses), the channels (what arrives from
a phone or a Jabber client, ``STOP``, an e-mail's unsubscribe link), and the
devices' sender (:meth:`Devices.sweep`, which turns new posts, direct
messages and follows into messages in the durable outbox, each as its
recipient chose).  Every message to a device goes through the outbox
(``device_outbox``); ``distwit.channels.delivery`` sends it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import replace
from typing import Any

from twisted.logger import Logger

from distwit.config import SMS_WEEKLY_CAP
from distwit.core.commands import STOP_WORDS, Commands
from distwit.core.device_texts import SMS_LENGTH, device_text, fit
from distwit.core.direct_messages import DirectMessages
from distwit.core.microblog import Microblog, RuleError
from distwit.model import Account, Post
from distwit.store.interfaces import (
    DeviceAddress,
    DeviceAddressTaken,
    DeviceRecipient,
    DeviceSettings,
    DeviceSweep,
    IStore,
)
from distwit.urls import authority_of

#: The kinds of address (as ``channels/interfaces.py`` has them).
DEVICE_KINDS = ("sms", "im", "email")
#: What friends' posts may be delivered to (``account/update_delivery_device``).
DELIVERY_DEVICES = ("sms", "im", "none")
#: What each kind may be sent besides friends' posts, as the user chooses.
CHOICES = ("mentions", "direct_messages", "followers")
#: The choices of a user who chose nothing: e-mail tells of everything,
#: phones and IM of direct messages only.
DEFAULT_CHOICES = {
    **{f"{kind}_{choice}": choice == "direct_messages" for kind in ("sms", "im")
       for choice in CHOICES},
    **{f"email_{choice}": True for choice in CHOICES},
}

#: A verification code: six digits, valid 15 minutes, void after five
#: wrong tries.
CODE_DIGITS = 6
CODE_TTL_MS = 15 * 60 * 1000
CODE_TRIES = 5

#: Posts, messages and follows older than this when the sweep finds them
#: are not sent (a server that comes back after a long stop, a copy of an
#: old post): a phone is for what is new.
FRESH_MS = 24 * 3600 * 1000
#: Where an e-mail's unsubscribe link points, on the server's public URL
#: (the page is ``distwit.web``'s); the token follows.
UNSUBSCRIBE_PATH = "/account/unsubscribe/"
#: Most posts, messages and follows read by one pass of the sweep.
SWEEP_BATCH = 200
#: Passes of the sweep in one call at most (then the next round goes on).
SWEEP_PASSES = 5
#: A week (ms): the SMS cap's span.
WEEK_MS = 7 * 24 * 3600 * 1000
#: Seconds a UTC offset may be, either way.
MAX_UTC_OFFSET = 14 * 3600


class DeviceError(RuleError):
    """
    A request about devices the rules refuse; ``str()`` says why.
    """


class BadAddress(DeviceError):
    """
    Not an address of that kind.
    """


class AddressTaken(DeviceError):
    """
    Another account verified that address.
    """


class NoSuchChannel(DeviceError):
    """
    This server sends nothing to that kind of address.
    """


class NoSuchAddress(DeviceError):
    """
    The user has no address of that kind (or the link names none).
    """


class WrongCode(DeviceError):
    """
    Not the code sent.

    :ivar tries_left: wrong tries left before the code is void.
    """

    def __init__(self, message: str, tries_left: int) -> None:
        super().__init__(message)
        self.tries_left = tries_left


class CodeExpired(DeviceError):
    """
    The code is too old, or void after too many wrong tries.
    """


class BadSetting(DeviceError):
    """
    A choice that cannot be made (an unknown one, a delivery device with no
    verified address, an hour out of range).
    """


class NotFollowing(DeviceError):
    """
    Notifications of an account the user does not follow.
    """


_KIND_NAMES = {"sms": "phone number", "im": "Jabber ID", "email": "e-mail address"}


def normalize_address(kind: str, address: str) -> str:
    """
    ``address`` written as ``channels/interfaces.py`` says for ``kind``.

    :raise BadAddress: it is not one.
    :raise NoSuchChannel: no such kind.
    """
    if kind not in DEVICE_KINDS:
        raise NoSuchChannel(f"There is no kind of device {kind!r} (sms, im or email).")
    text = address.strip()
    if kind == "sms":
        digits = "".join(c for c in text if c not in " -().\u00a0")
        if digits.startswith("00"):
            digits = "+" + digits[2:]
        if not digits.startswith("+") or not digits[1:].isdigit() or not (
            8 <= len(digits) - 1 <= 15
        ) or not digits[1:].isascii():
            raise BadAddress(
                "A phone number is written with its country code: +15551234567."
            )
        return digits
    local, at, domain = text.partition("@")
    if kind == "im":
        domain = domain.split("/", 1)[0]
    if (
        not at or not local or not domain or "@" in domain
        or any(c.isspace() or ord(c) < 32 for c in text) or len(text) > 254
        or domain.startswith(".") or domain.endswith(".") or ".." in domain
    ):
        example = "dave@example.org"
        raise BadAddress(f"That is not a {_KIND_NAMES[kind]} (like {example}).")
    if kind == "im":
        return f"{local}@{domain}".lower()
    return f"{local}@{domain.lower()}"


def code_hash(kind: str, address: str, code: str) -> str:
    """
    How a code is kept: hashed with the address it was sent to.
    """
    return hashlib.sha256(f"{kind}\n{address}\n{code}".encode()).hexdigest()


def quiet_now(settings: DeviceSettings, now_ms: int) -> bool:
    """
    Whether ``now_ms`` falls in the user's quiet hours.
    """
    start, end = settings.quiet_start, settings.quiet_end
    if start is None or end is None or start == end:
        return False
    hour = ((now_ms // 1000 + settings.utc_offset) // 3600) % 24
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def quiet_ends(settings: DeviceSettings, now_ms: int) -> int:
    """
    When the quiet hours ``now_ms`` falls in end (ms); ``now_ms`` if it
    falls in none.
    """
    if not quiet_now(settings, now_ms) or settings.quiet_end is None:
        return now_ms
    local = now_ms // 1000 + settings.utc_offset
    end = local - local % 86400 + settings.quiet_end * 3600
    if end <= local:
        end += 86400
    return (end - settings.utc_offset) * 1000


def status_link(public_url: str, post: Post) -> str:
    """
    The post's page on this server.
    """
    author = post.author
    if author.is_local:
        return f"{public_url}/{author.handle}/status/{post.seq}"
    return f"{public_url}/@{author.handle}@{author.authority}/status/{post.seq}"


class Devices:
    """
    The rules of phones, IM and e-mail on one server.

    :param store: the :class:`IStore`.
    :param microblog: the rules of posts and follows (the commands use it).
    :param clock: an ``IReactorTime``.
    :param kinds: the kinds this server can send to (its configured
        channels).
    :param sms_weekly_cap: SMS a user may be sent in seven days before
        friends' posts stop.
    :param public_url: this server's public URL (links in e-mails).
    :param direct_messages: the rules of direct messages (``D name text``);
        by default one on ``store`` that reaches local users only.
    """

    log = Logger()

    def __init__(
        self,
        store: IStore,
        microblog: Microblog,
        clock: Any,
        *,
        kinds: frozenset[str],
        sms_weekly_cap: int = SMS_WEEKLY_CAP,
        public_url: str = "",
        direct_messages: DirectMessages | None = None,
    ) -> None:
        self._store = store
        self.microblog = microblog
        self._clock = clock
        self.kinds = frozenset(kinds)
        self.sms_weekly_cap = sms_weekly_cap
        self.public_url = public_url.rstrip("/")
        self.authority = authority_of(self.public_url) if self.public_url else ""
        self.direct_messages = direct_messages or DirectMessages(store, clock)
        self.commands = Commands(self, microblog, self.direct_messages)
        #: Called when a message was queued (the sender wakes).
        self.queued: Any = None

    def now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    def _wake(self) -> None:
        if self.queued is not None:
            self.queued()

    # Addresses

    async def add_address(self, user: Account, kind: str, address: str) -> DeviceAddress:
        """
        Add (or replace) the user's address of ``kind`` and send it a code.

        :raise NoSuchChannel: this server sends nothing to that kind.
        :raise BadAddress: not an address of that kind.
        :raise AddressTaken: another account verified it.
        """
        normalized = normalize_address(kind, address)
        if kind not in self.kinds:
            raise NoSuchChannel(f"This server sends nothing to a {_KIND_NAMES[kind]}.")
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        now = self.now_ms()
        try:
            added: DeviceAddress = await self._store.add_device_address(
                user.id, kind, normalized, code_hash(kind, normalized, code),
                now + CODE_TTL_MS, secrets.token_urlsafe(24), now,
            )
        except DeviceAddressTaken:
            raise AddressTaken(
                f"That {_KIND_NAMES[kind]} is already in use on this server."
            ) from None
        server = self.authority or "distwit"
        await self._queue(
            user.id, kind, normalized, "code",
            fit(kind, f"Your {server} code is {code}. It is valid for 15 minutes."),
            f"Your {server} code" if kind == "email" else "",
            f"code:{user.id}:{kind}:{now}:{secrets.token_hex(4)}",
        )
        self.log.info("{kind} address added for {handle}", kind=kind, handle=user.handle)
        return added

    async def verify(self, user: Account, kind: str, code: str) -> DeviceAddress:
        """
        Confirm the code sent to the user's address of ``kind``.

        :raise NoSuchAddress: no address of that kind.
        :raise CodeExpired: the code is older than 15 minutes, or void
            after five wrong tries.
        :raise WrongCode: not that code (with the tries left).
        :raise AddressTaken: another account verified it meanwhile.
        """
        pending = await self._store.device_code(user.id, kind)
        if pending is None:
            raise NoSuchAddress(f"You have no {_KIND_NAMES.get(kind, 'address')} to verify.")
        if pending.address.verified:
            return pending.address  # type: ignore[no-any-return]
        if pending.tries >= CODE_TRIES:
            raise CodeExpired("Too many wrong codes: add the address again for a new code.")
        if self.now_ms() > pending.expires_at:
            raise CodeExpired("That code has expired: add the address again for a new code.")
        given = "".join(code.split())
        if not hmac.compare_digest(
            code_hash(kind, pending.address.address, given), pending.code_hash
        ):
            tries = await self._store.count_code_try(user.id, kind)
            left = max(CODE_TRIES - tries, 0)
            if left == 0:
                raise CodeExpired(
                    "Too many wrong codes: add the address again for a new code."
                )
            raise WrongCode(
                f"That is not the code sent ({left} {'try' if left == 1 else 'tries'} left).",
                left,
            )
        try:
            verified: DeviceAddress = await self._store.verify_device_address(user.id, kind)
        except DeviceAddressTaken:
            raise AddressTaken(
                f"That {_KIND_NAMES[kind]} is already in use on this server."
            ) from None
        self.log.info("{kind} address verified for {handle}", kind=kind, handle=user.handle)
        return verified

    async def remove_address(self, user: Account, kind: str) -> None:
        """
        Forget the user's address of ``kind``; nothing more is sent there.
        """
        await self._store.remove_device_address(user.id, kind)

    async def addresses(self, user: Account) -> list[DeviceAddress]:
        """
        The user's addresses, by kind.
        """
        found: list[DeviceAddress] = await self._store.device_addresses(user.id)
        return found

    # Choices

    async def settings(self, user: Account) -> DeviceSettings:
        """
        What the user chose (every choice present, defaults filled in).
        """
        settings: DeviceSettings = await self._store.device_settings(user.id)
        return replace(settings, choices={**DEFAULT_CHOICES, **settings.choices})

    async def update_settings(self, user: Account, **changes: Any) -> DeviceSettings:
        """
        Change some of the user's choices: ``delivery_device`` (``sms``,
        ``im``, ``none``), ``quiet_start`` and ``quiet_end`` (hours, 0-23,
        or ``None`` for none), ``utc_offset`` (seconds), and per kind
        ``{kind}_mentions``, ``{kind}_direct_messages``,
        ``{kind}_followers`` (booleans).

        :raise BadSetting: an unknown choice, a value out of range, or a
            delivery device without a verified address.
        """
        current = await self.settings(user)
        delivery = current.delivery_device
        quiet = {"quiet_start": current.quiet_start, "quiet_end": current.quiet_end}
        offset = current.utc_offset
        choices = dict(current.choices)
        for key, value in changes.items():
            if key == "delivery_device":
                value = str(value).lower()
                if value not in DELIVERY_DEVICES:
                    raise BadSetting("The delivery device is sms, im or none.")
                if value != "none":
                    if value not in self.kinds:
                        raise BadSetting(f"This server sends nothing to a {_KIND_NAMES[value]}.")
                    verified = {a.kind for a in await self.addresses(user) if a.verified}
                    if value not in verified:
                        raise BadSetting(
                            f"Add and verify a {_KIND_NAMES[value]} first."
                        )
                delivery = value
            elif key in quiet:
                if value is None or value == "":
                    quiet[key] = None
                else:
                    hour = _integer(value, f"{key} is an hour from 0 to 23.")
                    if not 0 <= hour <= 23:
                        raise BadSetting(f"{key} is an hour from 0 to 23.")
                    quiet[key] = hour
            elif key == "utc_offset":
                offset = _integer(value, "utc_offset is a number of seconds.")
                if abs(offset) > MAX_UTC_OFFSET:
                    raise BadSetting("utc_offset is at most 14 hours (50400 seconds) either way.")
            elif key in DEFAULT_CHOICES:
                choices[key] = _boolean(value, f"{key} is true or false.")
            else:
                raise BadSetting(f"There is no device setting {key!r}.")
        settings = DeviceSettings(
            delivery, quiet["quiet_start"], quiet["quiet_end"], offset, choices
        )
        await self._store.save_device_settings(user.id, settings)
        return settings

    async def set_notifications(self, user: Account, friend: Account, on: bool) -> None:
        """
        Send ``friend``'s posts to the user's delivery device, or stop.

        :raise NotFollowing: the user does not follow ``friend``.
        """
        if not await self._store.set_device_notifications(user.id, friend.id, on):
            raise NotFollowing(f"You are not following {friend.screen_name}.")

    async def notifications_on(self, user: Account, friend_ids: list[int]) -> set[int]:
        """
        Which of ``friend_ids`` the user has the posts of sent to their
        device.
        """
        if not friend_ids:
            return set()
        found: set[int] = await self._store.device_notifications_on(user.id, friend_ids)
        return found

    # From the channels

    async def inbound(self, kind: str, address: str, text: str) -> None:
        """
        A message from a phone or a Jabber client: a command, or a post
        (:mod:`distwit.core.commands`).  Its answer is queued to the
        address it came from.  From an address nobody here verified, one
        answer (ever) saying how to add it, and nothing else.
        """
        try:
            address = normalize_address(kind, address)
        except DeviceError:
            self.log.info("a {kind} message from a malformed address, dropped", kind=kind)
            return
        owner = await self._store.device_owner(kind, address)
        if owner is None and text.strip().upper() in STOP_WORDS:
            # Someone's code to a number that is not theirs: honoured, and
            # nothing answers.
            await self._stop(kind, address)
            return
        if owner is None:
            where = f" ({self.public_url}/settings/devices)" if self.public_url else ""
            await self._queue(
                0, kind, address, "answer",
                fit(kind, f"This {_KIND_NAMES[kind]} is on no account at "
                    f"{self.authority or 'this server'}. Add it on your settings page"
                    f"{where} first."),
                "", f"stranger:{kind}:{address}",
            )
            return
        user = await self._store.get_account(owner)
        answer = await self.commands.run(user, kind, address, text)
        if answer:
            await self.answer(user.id, kind, address, answer)

    async def answer(self, account_id: int, kind: str, address: str, text: str) -> None:
        """
        Queue the answer to a command (answers always go, quiet or not).
        """
        await self._queue(
            account_id, kind, address, "answer", fit(kind, text),
            "distwit" if kind == "email" else "",
            f"answer:{kind}:{address}:{self.now_ms()}:{secrets.token_hex(6)}",
        )

    async def stop(self, kind: str, address: str) -> None:
        """
        ``STOP``: nothing more to that address (delivery device ``none`` if
        it was that kind, every choice of that kind off, what waits to be
        sent cancelled); one answer says so.  The address stays verified:
        ``ON`` starts it again.
        """
        owner = await self._stop(kind, address)
        if owner is not None and kind != "email":
            await self.answer(
                owner, kind, address,
                f"You will get nothing more from {self.authority or 'distwit'} here."
                " Send ON to start again.",
            )

    async def _stop(self, kind: str, address: str) -> int | None:
        try:
            address = normalize_address(kind, address)
        except DeviceError:
            return None
        owner: int | None = await self._store.stop_device(kind, address)
        if owner is not None:
            self.log.info("{kind} address stopped", kind=kind)
        return owner

    async def unsubscribe(self, token: str) -> None:
        """
        An e-mail's unsubscribe link: stop that address at once (no mail
        says so).

        :raise NoSuchAddress: the link names no address (any more).
        """
        found = await self._store.device_by_token(token)
        if found is None:
            raise NoSuchAddress("This unsubscribe link is not valid any more.")
        _, kind, address = found
        await self._stop(kind, address)

    # Queueing

    async def queue(
        self, account_id: int, kind: str, address: str, text: str, subject: str,
        dedupe_key: str, not_before_ms: int = 0,
    ) -> bool:
        """
        Queue one message to ``address`` (used by the rules, and by
        password reset), unless one of the same ``dedupe_key`` ever was;
        due at ``not_before_ms`` (or now).  Its category is the key's
        first part (``reset:...``).

        :return: whether it was queued now.
        """
        return await self._queue(
            account_id, kind, address, dedupe_key.split(":", 1)[0], fit(kind, text), subject,
            dedupe_key, not_before_ms,
        )

    async def _queue(
        self, account_id: int, kind: str, address: str, category: str, text: str,
        subject: str, dedupe_key: str, not_before_ms: int = 0, unsubscribe: str = "",
    ) -> bool:
        now = self.now_ms()
        queued: bool = await self._store.queue_device_message(
            account_id, kind, address, category, text, subject, unsubscribe, dedupe_key,
            max(now, not_before_ms), now,
        )
        if queued:
            self._wake()
        return queued

    # What new posts, messages and follows call for

    async def sweep(self) -> int:
        """
        Queue what the posts, direct messages and follows that arrived
        since the last sweep call for, as each recipient chose; the
        cursors move in the same transaction (a crash queues nothing
        twice, and loses nothing).

        :return: the messages queued.
        """
        queued = 0
        for _ in range(SWEEP_PASSES):
            now = self.now_ms()
            found: DeviceSweep = await self._store.device_sweep(SWEEP_BATCH, now)
            if found.empty:
                break
            messages = await self._decide(found, now)
            if not await self._store.queue_device_sweep(found, messages, now):
                break  # another process took this window
            queued += len(messages)
        if queued:
            self._wake()
        return queued

    async def _decide(self, found: DeviceSweep, now: int) -> list[tuple[Any, ...]]:
        """
        The messages ``found`` calls for (each a tuple of
        ``queue_device_message``'s arguments to ``due_at``).
        """
        decided = _Batch(self, found, now)
        silenced: dict[int, frozenset[int]] = {}
        # Suspended and deleted accounts (the operator's) neither get nor
        # give anything.
        gone = self.microblog.moderation.suspended | self.microblog.moderation.deleted

        async def hides(account_id: int, other_id: int) -> bool:
            if account_id in gone or other_id in gone:
                return True
            if account_id not in silenced:
                silenced[account_id] = (await self._store.hidden_accounts(account_id)).silenced
            return other_id in silenced[account_id]

        for event in found.posts:
            post = event.post
            if post.created_at < now - FRESH_MS:
                continue
            # A mention or reply before the friend's-post rule: one
            # message for one post to one device.
            for account_id, why in sorted(event.recipients, key=_first_reason):
                if await hides(account_id, post.author.id):
                    continue
                decided.post(account_id, why, post)
        for message in found.messages:
            if message.created_at < now - FRESH_MS:
                continue
            if await hides(message.recipient.id, message.sender.id):
                continue
            decided.personal(
                message.recipient.id, "direct_messages", "dm", f"dm:{message.id}",
                lambda kind, m=message: device_text(kind, m.sender, m.text, "DM from "),
                f"{message.sender.screen_name} sent you a direct message", "",
            )
        for follow in found.follows:
            if follow.created_at < now - FRESH_MS:
                continue
            if await hides(follow.followee_id, follow.follower.id):
                continue
            name = follow.follower.screen_name
            decided.personal(
                follow.followee_id, "followers", "follower",
                f"follower:{follow.follower.id}:{follow.followee_id}:{follow.created_at}",
                lambda kind, name=name: fit(kind, f"{name} is now following you."),
                f"{name} is now following you", "",
            )
        return decided.messages


class _Batch:
    """
    The messages of one pass of the sweep, as they are decided (so that one
    post goes once to one device, and the SMS cap counts what this pass
    adds).
    """

    def __init__(self, devices: Devices, found: DeviceSweep, now: int) -> None:
        self._devices = devices
        self._found = found
        self._now = now
        self.messages: list[tuple[Any, ...]] = []
        self._keys: set[str] = set()
        self._sms: dict[int, int] = {}
        self._capped: set[int] = set()

    def _recipient(self, account_id: int) -> DeviceRecipient | None:
        return self._found.recipients.get(account_id)

    def _add(
        self, recipient: DeviceRecipient, kind: str, category: str, text: str, subject: str,
        key: str, due_at: int, unsubscribe: str = "",
    ) -> None:
        if key in self._keys:
            return
        self._keys.add(key)
        if kind == "sms":
            self._sms[recipient.account_id] = self._sms.get(recipient.account_id, 0) + 1
        self.messages.append((
            recipient.account_id, kind, recipient.addresses[kind], category, text, subject,
            unsubscribe, key, due_at,
        ))

    def _unsubscribe(self, recipient: DeviceRecipient, kind: str) -> str:
        token = recipient.tokens.get(kind, "")
        if kind != "email" or not token:
            return ""
        return f"{self._devices.public_url}{UNSUBSCRIBE_PATH}{token}"

    def _mail(self, body: str, link: str, unsubscribe: str) -> str:
        parts = [body]
        if link:
            parts.append(link)
        if unsubscribe:
            parts.append(f"--\nTo get no more of these e-mails: {unsubscribe}")
        return "\n\n".join(parts) + "\n"

    def post(self, account_id: int, why: str, post: Post) -> None:
        recipient = self._recipient(account_id)
        if recipient is None:
            return
        settings = _with_defaults(recipient.settings)
        devices = self._devices
        if why == "friend":
            kind = settings.delivery_device
            if kind not in devices.kinds or kind not in recipient.addresses:
                return
            if quiet_now(settings, self._now):
                return  # asleep: friends' posts are not sent
            if kind == "sms" and self._over_cap(recipient):
                return
            self._add(
                recipient, kind, "post", device_text(kind, post.author, post.text), "",
                f"post:{post.id}:{account_id}:{kind}", self._now,
            )
            return
        due = quiet_ends(settings, self._now)
        verb = "replied to you" if why == "reply" else "mentioned you"
        for kind in DEVICE_KINDS:
            if (
                kind not in devices.kinds or kind not in recipient.addresses
                or not settings.choices.get(f"{kind}_mentions")
            ):
                continue
            text = device_text(kind, post.author, post.text)
            unsubscribe = self._unsubscribe(recipient, kind)
            if kind == "email":
                text = self._mail(text, status_link(devices.public_url, post), unsubscribe)
            self._add(
                recipient, kind, why, text,
                f"{post.author.screen_name} {verb}" if kind == "email" else "",
                f"post:{post.id}:{account_id}:{kind}", due, unsubscribe,
            )

    def personal(
        self, account_id: int, choice: str, category: str, key: str, text: Any,
        subject: str, link: str,
    ) -> None:
        """
        A direct message or a new follower: to each kind the user chose,
        after their quiet hours.
        """
        recipient = self._recipient(account_id)
        if recipient is None:
            return
        settings = _with_defaults(recipient.settings)
        devices = self._devices
        due = quiet_ends(settings, self._now)
        for kind in DEVICE_KINDS:
            if (
                kind not in devices.kinds or kind not in recipient.addresses
                or not settings.choices.get(f"{kind}_{choice}")
            ):
                continue
            body = text(kind)
            unsubscribe = self._unsubscribe(recipient, kind)
            if kind == "email":
                body = self._mail(body, link, unsubscribe)
            self._add(
                recipient, kind, category, body, subject if kind == "email" else "",
                f"{key}:{kind}", due, unsubscribe,
            )

    def _over_cap(self, recipient: DeviceRecipient) -> bool:
        """
        Whether the recipient had their SMS of the week; the first time, one
        SMS says so.
        """
        devices = self._devices
        sent = recipient.sms_week + self._sms.get(recipient.account_id, 0)
        if sent < devices.sms_weekly_cap:
            return False
        if not recipient.cap_told and recipient.account_id not in self._capped:
            self._capped.add(recipient.account_id)
            week = self._now // WEEK_MS
            self._add(
                recipient, "sms", "cap",
                fit("sms", f"You had your {devices.sms_weekly_cap} updates of the week:"
                    " your friends' posts stop here for a few days. Direct messages and"
                    " answers still come."),
                "", f"cap:{recipient.account_id}:{week}", self._now,
            )
            # (The cap's own SMS is not counted.)
            self._sms[recipient.account_id] -= 1
        return True


#: Which reason a post goes to a user for, when there are several.
_REASONS = {"reply": 0, "mention": 1, "friend": 2}


def _first_reason(recipient: tuple[int, str]) -> int:
    return _REASONS.get(recipient[1], 3)


def _with_defaults(settings: DeviceSettings) -> DeviceSettings:
    return replace(settings, choices={**DEFAULT_CHOICES, **settings.choices})


def _boolean(value: Any, message: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "t", "yes", "on"):
        return True
    if text in ("false", "0", "f", "no", "off"):
        return False
    raise BadSetting(message)


def _integer(value: Any, message: str) -> int:
    if isinstance(value, bool):
        raise BadSetting(message)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadSetting(message) from None


__all__ = [
    "CODE_TRIES",
    "CODE_TTL_MS",
    "DEFAULT_CHOICES",
    "DELIVERY_DEVICES",
    "DEVICE_KINDS",
    "SMS_LENGTH",
    "UNSUBSCRIBE_PATH",
    "AddressTaken",
    "BadAddress",
    "BadSetting",
    "CodeExpired",
    "DeviceError",
    "Devices",
    "NoSuchAddress",
    "NoSuchChannel",
    "NotFollowing",
    "WrongCode",
    "device_text",
    "fit",
    "normalize_address",
    "quiet_ends",
    "quiet_now",
]
