"""
The commands people text or message to the server, as Twitter had them
(docs/design/devices.md): ``FOLLOW name``, ``LEAVE name``, ``ON`` / ``OFF``,
``ON name`` / ``OFF name``, ``D name text``, ``GET name``, ``WHOIS name``,
``STOP`` (and its synonyms), ``HELP``; any other text is a post.

Commands are matched without regard to case; ``name`` is ``handle`` or
``handle@authority`` (an ``@`` before it is fine).  Each answer is a
sentence for a person, queued to the address the command came from by
:meth:`distwit.core.devices.Devices.inbound`; the rules are those of the
API (:class:`~distwit.core.microblog.Microblog`,
:class:`~distwit.core.direct_messages.DirectMessages`), and so are their
error sentences.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol

from twisted.logger import Logger

from distwit.core.device_texts import device_text
from distwit.core.direct_messages import DirectMessages
from distwit.core.microblog import Microblog, NoSuchUser, RuleError
from distwit.model import Account
from distwit.store.interfaces import DeviceSettings


class DeviceControls(Protocol):
    """
    What the commands change of a user's devices
    (:class:`distwit.core.devices.Devices`).
    """

    async def stop(self, kind: str, address: str) -> None: ...

    async def set_notifications(self, user: Account, friend: Account, on: bool) -> None: ...

    async def settings(self, user: Account) -> DeviceSettings: ...

    async def update_settings(self, user: Account, **changes: Any) -> DeviceSettings: ...

#: ``STOP`` and the words carriers treat as it.
STOP_WORDS = frozenset({"STOP", "QUIT", "END", "CANCEL", "UNSUBSCRIBE", "STOPALL"})

#: The answer to ``HELP``.
HELP = (
    "Commands: FOLLOW name, LEAVE name, ON, OFF, ON name, OFF name, D name text,"
    " GET name, WHOIS name, STOP, HELP. Anything else is posted."
)

#: The ``source`` of a post made from each kind of device.
SOURCES = {"sms": "txt", "im": "im", "email": "email"}


class Commands:
    """
    What a text from a phone or a Jabber client does.

    :param devices: the devices' rules (notifications, STOP, delivery).
    :param microblog: the rules of posts and follows.
    :param direct_messages: the rules of direct messages.
    """

    log = Logger()

    def __init__(
        self, devices: DeviceControls, microblog: Microblog, direct_messages: DirectMessages
    ) -> None:
        self._devices = devices
        self._microblog = microblog
        self._direct_messages = direct_messages
        self._table: dict[str, Callable[[Account, str, str, str], Awaitable[str | None]]] = {
            "FOLLOW": self._follow,
            "LEAVE": self._leave,
            "ON": self._on,
            "OFF": self._off,
            "D": self._direct,
            "DM": self._direct,
            "GET": self._get,
            "WHOIS": self._whois,
            "HELP": self._help,
        }

    async def run(self, user: Account, kind: str, address: str, text: str) -> str | None:
        """
        Do what ``text`` from ``user``'s ``kind`` address says.

        :return: the answer, or ``None`` when there is none to send (a post
            made; ``STOP``, which answers by itself).
        """
        text = text.strip()
        word, _, rest = text.partition(" ")
        command = word.upper()
        rest = rest.strip()
        if command in STOP_WORDS and not rest:
            await self._devices.stop(kind, address)
            return None
        handler = self._table.get(command)
        try:
            self._microblog.check_not_suspended(user)
            if handler is not None and (rest or command in ("ON", "OFF", "HELP")):
                return await handler(user, kind, address, rest)
            return await self._post(user, kind, text)
        except RuleError as e:
            return str(e)

    async def _named(self, name: str) -> Account:
        """
        The account ``name`` names (a remote one looked up at its server).

        :raise RuleError: nobody (``NoSuchUser``), or its server does not
            answer (``HomeUnreachable``).
        """
        name = name.split()[0] if name.split() else name
        if name.startswith("@"):
            name = name[1:]
        account = await self._microblog.resolve(name)
        if account.id in self._microblog.moderation.deleted:
            raise NoSuchUser(f"There is no user {name!r} here.")
        return account

    async def _post(self, user: Account, kind: str, text: str) -> str | None:
        await self._microblog.post(user, text, source=SOURCES.get(kind, kind))
        return None

    async def _follow(self, user: Account, kind: str, address: str, name: str) -> str:
        target = await self._named(name)
        self._microblog.check_not_suspended(target)
        await self._microblog.follow(user, target)
        await self._devices.set_notifications(user, target, True)
        return (
            f"You are now following {target.screen_name}; their posts come to your"
            f" device. OFF {target.screen_name} stops them."
        )

    async def _leave(self, user: Account, kind: str, address: str, name: str) -> str:
        target = await self._named(name)
        await self._devices.set_notifications(user, target, False)
        return (
            f"You will no longer get {target.screen_name}'s posts here (you still follow"
            f" them). ON {target.screen_name} brings them back."
        )

    async def _on(self, user: Account, kind: str, address: str, name: str) -> str:
        if name:
            target = await self._named(name)
            await self._devices.set_notifications(user, target, True)
            return f"{target.screen_name}'s posts will come to your device."
        await self._devices.update_settings(user, delivery_device=kind)
        return "Your friends' posts will come here. OFF stops them."

    async def _off(self, user: Account, kind: str, address: str, name: str) -> str:
        if name:
            target = await self._named(name)
            await self._devices.set_notifications(user, target, False)
            return f"{target.screen_name}'s posts will no longer come to your device."
        settings = await self._devices.settings(user)
        if settings.delivery_device == kind:
            await self._devices.update_settings(user, delivery_device="none")
        return "Your friends' posts will no longer come here. ON starts them again."

    async def _direct(self, user: Account, kind: str, address: str, rest: str) -> str:
        name, _, text = rest.partition(" ")
        target = await self._named(name)
        await self._direct_messages.send(user, target, text)
        return f"Direct message sent to {target.screen_name}."

    async def _get(self, user: Account, kind: str, address: str, name: str) -> str:
        target = await self._named(name)
        self._microblog.check_not_suspended(target)
        latest = await self._microblog.store.latest_post(target.id)
        if latest is None:
            return f"{target.screen_name} has posted nothing yet."
        return device_text(kind, target, latest.text)

    async def _whois(self, user: Account, kind: str, address: str, name: str) -> str:
        target = await self._named(name)
        self._microblog.check_not_suspended(target)
        target = await self._microblog.fresh_profile(target)
        named = target.name and target.name != target.handle
        parts = [target.screen_name + (f" ({target.name})" if named else "")]
        if target.description:
            parts.append(target.description)
        if target.location:
            parts.append(f"Location: {target.location}")
        if target.url:
            parts.append(f"Web: {target.url}")
        return ". ".join(part.rstrip(".") for part in parts) + "."

    async def _help(self, user: Account, kind: str, address: str, rest: str) -> str:
        return HELP


__all__ = ["HELP", "STOP_WORDS", "Commands"]
