"""
Accts (``handle@authority``) as the federation names people, and which
ping servers answer for which acct.
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

from distwit.core.microblog import NoSuchUser

# Re-exported: the one authority function lives low, in distwit.urls.
from distwit.urls import authority_of as authority_of

_ACCT = re.compile(r"\A(?P<handle>[A-Za-z0-9_]{1,15})@(?P<authority>[A-Za-z0-9.\-\[\]:]{1,262})\Z")


class BadAcct(ValueError):
    """
    Not ``handle@authority``.
    """


class HomeUnreachable(NoSuchUser):
    """
    An account named ``handle@authority`` could not be looked up because
    nothing at ``authority`` answers as a distwit server: no answer at all,
    an error, or something that is not distwit's.  Which of these it was
    stays in the log: the message is the same for a closed port, a private
    address the outbound policy refused and a web server that is not
    distwit, so that resolving an acct tells a stranger nothing about
    hosts they could not reach themselves.
    """


def split_acct(acct: str) -> tuple[str, str]:
    """
    ``("handle", "authority")`` of an acct, the handle lower-cased and the
    authority's host lower-cased.

    :raise BadAcct: it is not ``handle@authority``.
    """
    match = _ACCT.match(acct)
    if match is None:
        raise BadAcct(f"{acct!r} is not handle@authority")
    return match.group("handle").lower(), match.group("authority").lower()


def make_acct(handle: str, authority: str) -> str:
    return f"{handle.lower()}@{authority.lower()}"


def as_typed(screen_name: str) -> str:
    """
    A screen name as people type it, in the form the rules read:
    ``@handle@authority`` (as Mastodon shows an account, and as people
    paste it) becomes ``handle@authority``.  Anything else is left as it
    is (a plain ``@handle`` is not a Twitter screen name).

    Only for what people type (the API's ``screen_name``, the follow
    form): what servers send each other must be exactly
    ``handle@authority`` (:func:`split_acct`).
    """
    if screen_name.startswith("@") and "@" in screen_name[1:]:
        return screen_name[1:]
    return screen_name




def rendezvous(acct: str, servers: Sequence[str], replicas: int = 2) -> list[str]:
    """
    The ping servers responsible for ``acct``: the ``replicas`` servers with
    the highest hash of (server, acct).  Every twitter server computes the
    same answer from the same list, and a server joining or leaving moves
    only the accts it wins or held.
    """

    def weight(server: str) -> bytes:
        return hashlib.sha256(f"{server}\0{acct}".encode("utf-8")).digest()

    return sorted(servers, key=weight, reverse=True)[:replicas]
