"""
What a message's text mentions, tags and links, found as Twitter finds
them: ``@handle`` (and across servers ``@handle@authority``), ``#tag``
and ``http(s)://`` links, with their indices in code points.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: ``@handle`` or ``@handle@host[:port]``, not inside a word or an e-mail
#: address; a trailing dot ends the sentence, not the host.
_MENTION = re.compile(
    r"(?<![A-Za-z0-9_@.])@(?P<handle>[A-Za-z0-9_]{1,15})(?![A-Za-z0-9_])"
    r"(?:@(?P<authority>[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*(?::[0-9]{1,5})?))?"
)
#: ``#tag``: letters, digits, marks and underscores, not only digits.
_HASHTAG = re.compile(r"(?<![\w&#])[#＃](?P<tag>\w*[^\W\d]\w*)")
#: Links: up to a space; trailing punctuation is left to the sentence.
_URL = re.compile(r"(?<![\w/])https?://[^\s<>\"]+")
_URL_TRAILING = ".,:;!?'\")]}"


@dataclass(frozen=True)
class Mention:
    handle: str
    #: The authority written after the handle, or None for a plain ``@handle``.
    authority: str | None
    start: int
    end: int


@dataclass(frozen=True)
class Hashtag:
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Link:
    url: str
    start: int
    end: int


def mentions(text: str) -> list[Mention]:
    return [
        Mention(m.group("handle"), m.group("authority"), m.start(), m.end())
        for m in _MENTION.finditer(text)
    ]


def hashtags(text: str) -> list[Hashtag]:
    return [Hashtag(m.group("tag"), m.start(), m.end()) for m in _HASHTAG.finditer(text)]


def links(text: str) -> list[Link]:
    found = []
    for m in _URL.finditer(text):
        url = m.group(0).rstrip(_URL_TRAILING)
        # Keep a closing parenthesis that closes one in the URL.
        while m.group(0)[len(url):].startswith(")") and url.count("(") > url.count(")"):
            url += ")"
        found.append(Link(url, m.start(), m.start() + len(url)))
    return found
