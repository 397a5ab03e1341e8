"""
What the SMS channels share (Kannel, Amazon SNS, a provider's HTTP API):
phone numbers written one way (E.164), whether a text fits the GSM 7-bit
alphabet, the words of a gateway's answer, and the service that closes a
channel's HTTP connections when the server stops.
"""

from __future__ import annotations

import re
from typing import Any, cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IResponse

#: Characters of a phone number people write between its digits.
_SEPARATORS = re.compile(r"[\s\-().\u00a0]")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")

#: The GSM 03.38 default alphabet, and its extension table (characters
#: sent as an escape and one more septet).  A text of these goes as 7-bit
#: SMS (160 characters); any other character needs UCS-2 (70).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

#: The most of a gateway's answer quoted in an error.
MAX_QUOTED = 200


class BadNumber(ValueError):
    """
    Not a phone number this server can write in E.164.
    """


def e164(number: str) -> str:
    """
    A phone number in E.164 (``+`` and up to 15 digits), from the ways
    people and gateways write one: with spaces, dashes, dots or brackets
    between the digits, ``00`` for ``+`` (the international prefix of most
    countries), or its digits alone (as many SMS centres give a sender).

    A national number (``020 7946 0000``) cannot be told from an
    international one without its country; it is taken as international.

    :raise BadNumber: it is no phone number.
    """
    cleaned = _SEPARATORS.sub("", number)
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    elif not cleaned.startswith("+"):
        cleaned = "+" + cleaned
    if not _E164.fullmatch(cleaned):
        raise BadNumber(
            f"{number!r} is not a phone number: write it in international form,"
            " a + and the country code, then the number (+15551234567)"
        )
    return cleaned


def fits_gsm7(text: str) -> bool:
    """
    Whether every character of ``text`` is in the GSM 7-bit alphabet (or
    its extension), so that it can go as plain SMS; else it must go as
    UCS-2.
    """
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def quoted(body: bytes) -> str:
    """
    A gateway's answer, as words on one line for an error or the log.
    """
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"


class AnswerTooBig(Exception):
    """
    A gateway's answer went past the bytes we read of one.
    """


class _Capped(Protocol):
    """
    Collects a response body up to a limit (an ``IPushProducer``
    transport, which it stops past the limit).
    """

    def __init__(self, limit: int, done: Deferred[bytes]) -> None:
        self._limit = limit
        self._done = done
        self._parts: list[bytes] = []
        self._size = 0
        self._failed = False

    def dataReceived(self, data: bytes) -> None:
        if self._failed:
            return
        self._size += len(data)
        if self._size > self._limit:
            self._failed = True
            self.stop()
            self._done.errback(AnswerTooBig(f"the answer is over {self._limit} bytes"))
            return
        self._parts.append(data)

    def stop(self) -> None:
        producer = cast(IPushProducer, self.transport)
        if producer is not None:
            producer.stopProducing()

    def connectionLost(self, reason: Failure = ResponseDone()) -> None:  # type: ignore[assignment]
        if self._failed:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self._done.callback(b"".join(self._parts))
        else:
            self._done.errback(reason)


def read_answer(
    reactor: IReactorTime, response: IResponse, limit: int = 64 * 1024, timeout: float = 10.0
) -> Deferred[bytes]:
    """
    The body of a gateway's answer: at most ``limit`` bytes, within
    ``timeout`` seconds (then the connection is dropped and the Deferred
    fails).
    """
    done: Deferred[bytes] = Deferred()
    protocol = _Capped(limit, done)
    response.deliverBody(protocol)
    timer = reactor.callLater(timeout, protocol.stop)

    def stop_timer(result: object) -> object:
        if timer.active():
            timer.cancel()
        return result

    done.addBoth(stop_timer)
    return done


class ClosingService(Service):
    """
    Closes a channel's HTTP connection pool when the server stops, so that
    none is left open (and a test's reactor is clean).

    :param http: anything with ``close() -> Deferred`` (a
        :class:`~distwit.s2s.client.PooledHTTPClient`).
    """

    def __init__(self, name: str, http: Any) -> None:
        self.setName(name)
        self._http = http

    def stopService(self) -> Deferred[None]:
        super().stopService()
        closed: Deferred[None] = self._http.close()
        return closed


__all__ = [
    "AnswerTooBig", "BadNumber", "ClosingService", "e164", "fits_gsm7", "quoted",
    "read_answer",
]
