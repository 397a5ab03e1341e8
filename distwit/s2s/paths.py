"""
The wire paths of the server-to-server protocol, defined once.

The resources that serve these paths (:mod:`distwit.federation.resource`,
:mod:`distwit.ping.resource`, :mod:`distwit.registry.resource`, the
composition in :mod:`distwit.tap`) and the clients that call them (the
sync service, the copier, follows, the registry heartbeat) all read them
from here.  This module lives in ``s2s`` because the ping and registry
roles, which must not import the twitter role's packages, need it too.

Every role answers at the same paths whether it runs alone or with the
others (``--role=all``): each role's resource is mounted under its
*mount point* below a server's public URL, and serves its *routes*
(Klein route strings, relative to the mount point).

Public URLs given to the functions here carry no trailing slash
(:mod:`distwit.config` normalises this server's; the others come from
metadata and ping answers that are normalised where they are read).
"""

from __future__ import annotations

from urllib.parse import quote

# Mount points, under a server's public URL.

#: The twitter role's server-to-server resource.
S2S = "/s2s"
#: The ping role's resource.
PING = "/ping"
#: The registry role's resource.
REGISTRY = "/registry"
#: What every server answers under ``/.well-known/``.
WELL_KNOWN = "/.well-known"

# Routes of the twitter role's S2S resource, under S2S.

#: ``GET /s2s/feed/HANDLE.rss?from=N&to=M``: a range feed.
RANGE_FEED = "/feed/"
#: ``POST /s2s/follow``: a signed follow or unfollow notice.
FOLLOW = "/follow"
#: ``GET /s2s/last/HANDLE.json``: a local user's last number, with an ETag
#: (public): how servers of other federations learn of new messages.
LAST = "/last/"
#: ``POST /s2s/notice``: a signed mention, reply, favorite or unfavorite notice.
NOTICE = "/notice"
#: ``GET /s2s/status/HANDLE/SEQ.json``: a post's counts, as its author's server has them.
STATUS_COUNTS = "/status/"
#: ``GET /s2s/replies/HANDLE/SEQ.json``: the replies held to a local
#: user's message (signed; docs/design/threads.md).
REPLIES = "/replies/"

# Routes of the ping role, under PING.

#: ``GET /ping/lookup?acct=handle@authority``.
PING_LOOKUP = "/lookup"
#: ``POST /ping/exchange?wait=N``: reports, subscriptions and changes.
PING_EXCHANGE = "/exchange"

# Routes of the registry role, under REGISTRY.

#: ``POST /registry/register``: a ping server's registration and heartbeat.
REGISTRY_REGISTER = "/register"
#: ``GET /registry/pings``: the live ping servers.
REGISTRY_PINGS = "/pings"

# Names under WELL_KNOWN.

#: ``/.well-known/distwit``: the server's metadata document (key, endpoints).
METADATA = "distwit"
#: ``/.well-known/webfinger?resource=acct:...``.
WEBFINGER = "webfinger"


def child_name(mount: str) -> bytes:
    """
    The name a mount point is put under its parent resource with
    (``"/ping"`` gives ``b"ping"``).
    """
    return mount.lstrip("/").encode("ascii")


def _acct_query(acct: str) -> str:
    return quote(acct, safe="@:")


def range_feed_url(public_url: str, handle: str, first: int, last: int) -> str:
    """
    The range feed of messages ``first..last`` of ``handle`` on the server
    at ``public_url``.
    """
    return (
        f"{public_url}{S2S}{RANGE_FEED}{quote(handle.lower())}.rss"
        f"?from={first}&to={last}"
    )


def last_url(public_url: str, handle: str) -> str:
    """
    The last-number document of ``handle`` on the server at ``public_url``.
    """
    return f"{public_url}{S2S}{LAST}{quote(handle.lower())}.json"


def replies_url(public_url: str, handle: str, seq: int) -> str:
    """
    The replies index of message ``seq`` of ``handle`` on the server at
    ``public_url``.
    """
    return f"{public_url}{S2S}{REPLIES}{quote(handle.lower())}/{seq}.json"


def follow_url(public_url: str) -> str:
    """
    Where the server at ``public_url`` takes follow notices.
    """
    return f"{public_url}{S2S}{FOLLOW}"


def notice_url(public_url: str) -> str:
    """
    Where the server at ``public_url`` takes mention, reply and favorite
    notices.
    """
    return f"{public_url}{S2S}{NOTICE}"


def status_counts_url(public_url: str, handle: str, seq: int) -> str:
    """
    The counts (favorites) of message ``seq`` of ``handle`` on the server
    at ``public_url``.
    """
    return f"{public_url}{S2S}{STATUS_COUNTS}{quote(handle.lower())}/{seq}.json"


def ping_lookup_url(ping_url: str, acct: str) -> str:
    """
    The ping server at ``ping_url``'s answer for one acct.
    """
    return f"{ping_url}{PING}{PING_LOOKUP}?acct={_acct_query(acct)}"


def ping_exchange_url(ping_url: str, wait: float = 0) -> str:
    """
    The exchange with the ping server at ``ping_url``, held open up to
    ``wait`` seconds (0: answered at once).
    """
    url = f"{ping_url}{PING}{PING_EXCHANGE}"
    return f"{url}?wait={wait:g}" if wait else url


def registry_base(registry_url: str) -> str:
    """
    The base URL of the registry role's routes on the server at
    ``registry_url``.
    """
    return f"{registry_url}{REGISTRY}"


def registry_pings_url(registry_url: str) -> str:
    """
    The live list of ping servers of the registry at ``registry_url``.
    """
    return f"{registry_base(registry_url)}{REGISTRY_PINGS}"


def metadata_url(public_url: str) -> str:
    """
    The metadata document of the server at ``public_url``.
    """
    return f"{public_url}{WELL_KNOWN}/{METADATA}"


def webfinger_url(public_url: str, acct: str) -> str:
    """
    WebFinger's answer for ``acct`` at the server at ``public_url``.
    """
    return f"{public_url}{WELL_KNOWN}/{WEBFINGER}?resource=acct:{_acct_query(acct)}"


def endpoints(public_url: str, roles: list[str]) -> dict[str, str]:
    """
    The ``endpoints`` of the metadata document of a server running
    ``roles``: what a peer may call, by name.
    """
    found: dict[str, str] = {}
    if "twitter" in roles:
        found.update(
            api=f"{public_url}/1.1/",
            feeds=f"{public_url}{S2S}{RANGE_FEED}",
            follow=follow_url(public_url),
            last=f"{public_url}{S2S}{LAST}",
            notice=notice_url(public_url),
            replies=f"{public_url}{S2S}{REPLIES}",
            webfinger=f"{public_url}{WELL_KNOWN}/{WEBFINGER}",
        )
    if "ping" in roles:
        found.update(
            lookup=f"{public_url}{PING}{PING_LOOKUP}",
            exchange=f"{public_url}{PING}{PING_EXCHANGE}",
        )
    if "registry" in roles:
        found.update(
            register=f"{registry_base(public_url)}{REGISTRY_REGISTER}",
            pings=registry_pings_url(public_url),
        )
    return found
