"""
What every feed distwit writes shares: text XML can carry, dates, and the
address of a post.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from distwit.model import Account

_XML_UNSAFE_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """
    ``text`` with every character XML 1.0 cannot carry replaced by U+FFFD
    (the same length, so a post's length does not change).
    """
    return _XML_UNSAFE_RE.sub("\ufffd", text)


def datetime_of(ms: int) -> datetime:
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(
        microsecond=millis * 1000
    )


def status_url(public_url: str, author: Account, seq: int) -> str:
    return f"{public_url}/{author.handle}/status/{seq}"
