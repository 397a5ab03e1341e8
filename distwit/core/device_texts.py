"""
How posts and messages read on a phone or in an IM client
(docs/design/devices.md, "Texts"): ``alice: text``, an SMS cut to 160
characters with ``…``.
"""

from __future__ import annotations

from distwit.model import Account

#: The longest SMS.
SMS_LENGTH = 160


def fit(kind: str, text: str) -> str:
    """
    ``text`` cut to one SMS when ``kind`` is ``sms``.
    """
    if kind == "sms" and len(text) > SMS_LENGTH:
        return text[: SMS_LENGTH - 1] + "…"
    return text


def device_text(kind: str, author: Account, text: str, prefix: str = "") -> str:
    """
    A post or message as a phone or an IM client shows it: ``alice: text``
    (``carol@s2.example: text`` for another server's user); an SMS cut to
    :data:`SMS_LENGTH` characters with ``…``.
    """
    return fit(kind, f"{prefix}{author.screen_name}: {text}")


__all__ = ["SMS_LENGTH", "device_text", "fit"]
