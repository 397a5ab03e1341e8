"""
What every channel is to the rest of the server: something that hands one
message to a gateway (:class:`IChannel`), and, for the channels people
answer through, something that brings each message it receives to the
server's rules (:class:`IInboundChannel`).

Addresses are written one way per kind, and the store keeps them so:

- ``sms``: E.164, a ``+`` and digits (``+15551234567``);
- ``im``: a bare Jabber ID, lower-cased (``dave@example.org``);
- ``email``: an address with its domain lower-cased (``Dave@example.org``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from zope.interface import Attribute, Interface

#: The kinds of address a channel sends to.
KINDS = ("sms", "im", "email")

#: What an inbound channel calls with each message it receives:
#: ``(kind, address, text)``; the returned awaitable finishes when the
#: message is safely taken (its answer, if any, is queued in the durable
#: outbox: the channel does not answer by itself).
Inbound = Callable[[str, str, str], Awaitable[None]]


class ChannelError(Exception):
    """
    The gateway did not take the message this time (it is down, busy, or
    answered with an error that may pass): try again later.
    """


class AddressRefused(ChannelError):
    """
    The gateway will never take a message to this address (malformed,
    unknown, opted out at the carrier): give this message up, and say so.
    """


class IChannel(Interface):
    """
    Hands messages to one gateway: an SMTP server, an XMPP server, an SMS
    gateway.
    """

    kind = Attribute("'sms', 'im' or 'email': the kind of address it sends to.")
    name = Attribute(
        "Its name in logs, health reports and metrics: 'smtp', 'xmpp', "
        "'kannel', 'sns', 'http-sms'."
    )

    def send(address, text, subject, unsubscribe=""):
        """
        Hand one message to the gateway.

        :param address: the recipient, written as the module says.
        :param text: the message (SMS: at most 160 characters is the
            caller's business; the channel sends what it is given).
        :param subject: a subject line (e-mail only; others ignore it).
        :param unsubscribe: the URL that stops messages to this address
            (e-mail's ``List-Unsubscribe``; others ignore it: ``STOP``
            does it there), or ``""``.
        :return: a Deferred that fires (with ``None``) once the gateway
            has accepted the message, or fails with :class:`ChannelError`
            (try again) or :class:`AddressRefused` (give up).
        """


class IInboundChannel(IChannel):
    """
    A channel people also write to (SMS, IM): what arrives is a command
    or a post.
    """

    def listen(inbound):
        """
        From now on, call ``inbound`` (an :data:`Inbound`) with each
        message received.  Messages received before this call are held
        by the gateway (or refused so that it tries again), never dropped.
        """


@dataclass
class ChannelParts:
    """
    What one configured channel brings to the twitter role: the channel,
    the web resources its gateway calls back (mounted at
    ``/channels/<key>``, e.g. Kannel's get-url), and the services it runs
    (e.g. an XMPP client connection), started and stopped with the role.
    """

    channel: Any  # an IChannel (or IInboundChannel)
    resources: dict[str, Any] = field(default_factory=dict)  # key -> IResource
    services: list[Any] = field(default_factory=list)  # IService


__all__ = [
    "ChannelParts",
    "KINDS", "AddressRefused", "ChannelError", "IChannel", "IInboundChannel", "Inbound",
]
