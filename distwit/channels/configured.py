"""
Which channels this server has: each adapter module's ``from_settings``
looks at the settings and answers with its :class:`ChannelParts`, or
``None`` when it is not configured.  At most one channel per kind (the
first configured one wins, in the order of :data:`ADAPTERS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distwit.channels import email as email_channel
from distwit.channels import http_sms, kannel, sns, xmpp
from distwit.channels.interfaces import ChannelParts
from distwit.config import Settings

#: Every adapter's ``from_settings(settings, reactor) -> ChannelParts | None``.
ADAPTERS: list[Callable[[Settings, Any], ChannelParts | None]] = [
    kannel.from_settings,
    sns.from_settings,
    http_sms.from_settings,
    xmpp.from_settings,
    email_channel.from_settings,
]


def build_channels(settings: Settings, reactor: Any) -> dict[str, ChannelParts]:
    """
    The configured channels, by kind (``sms``, ``im``, ``email``).
    """
    found: dict[str, ChannelParts] = {}
    for adapter in ADAPTERS:
        parts = adapter(settings, reactor)
        if parts is not None and parts.channel.kind not in found:
            found[parts.channel.kind] = parts
    return found


__all__ = ["ADAPTERS", "build_channels"]
