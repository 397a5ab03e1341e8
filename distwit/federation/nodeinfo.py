"""
NodeInfo 2.1 (https://nodeinfo.diaspora.software/protocol.html), so that
federation crawlers can find and count distwit servers:

- ``GET /.well-known/nodeinfo``: the discovery document, a link to
- ``GET /nodeinfo/2.1``: the software, its protocols and services, whether
  anyone may sign up, and the usage (users, active users, local posts).

``protocols`` is ``["distwit"]``.  The 2.1 schema closes that list
(activitypub, buddycloud, dfrn, diaspora, libertree, ostatus, pumpio,
tent, xmpp, zot) and distwit speaks none of them: naming one would send
crawlers and servers to talk a protocol this server does not answer.  So
the document follows the schema in everything but that value, as
servers of protocols the list does not know do (docs/operating.md).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from distwit.core.usage import ServerUsage
from distwit.http import json_body

#: The schema's URI: the discovery document's ``rel``, the profile of the
#: document's content type.
SCHEMA_21 = "http://nodeinfo.diaspora.software/ns/schema/2.1"
#: Where the document is, below the public URL.
PATH_21 = "/nodeinfo/2.1"
#: NodeInfo's ``software.name`` (``^[a-z0-9-]+$``).
SOFTWARE = "distwit"
PROTOCOLS = ["distwit"]
#: What distwit reads from other sites (nothing: its peers are distwit
#: servers) and publishes for them: every user's RSS 2.0 and Atom feeds.
SERVICES = {"inbound": [], "outbound": ["atom1.0", "rss2.0"]}


def _write(request: IRequest, body: bytes) -> None:
    # Anyone's page may read it (crawlers run in browsers too).
    request.setHeader(b"access-control-allow-origin", b"*")
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


class NodeInfoDiscovery(Resource):
    """
    ``/.well-known/nodeinfo``: where this server's NodeInfo is.
    """

    isLeaf = True

    def __init__(self, public_url: str) -> None:
        super().__init__()
        self._document = {"links": [{"rel": SCHEMA_21, "href": public_url + PATH_21}]}

    def render_GET(self, request: IRequest) -> int:
        _write(request, json_body(request, self._document))
        return NOT_DONE_YET

    render_HEAD = render_GET


class NodeInfoDocument(Resource):
    """
    ``/nodeinfo/2.1``.

    :param usage: the counts of local users and posts.
    :param version: distwit's version.
    :param open_registrations: whether anyone may sign up (the twitter
        role's ``open_registration``).
    :param authority: this server's host[:port], as ``metadata.nodeName``.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, usage: ServerUsage, version: str, open_registrations: bool,
                 authority: str) -> None:
        super().__init__()
        self._usage = usage
        self._version = version
        self._open = open_registrations
        self._authority = authority

    async def document(self) -> dict[str, Any]:
        """
        The NodeInfo 2.1 document, as of now.
        """
        counts = await self._usage.counts()
        return {
            "version": "2.1",
            "software": {
                "name": SOFTWARE,
                "version": self._version,
            },
            "protocols": PROTOCOLS,
            "services": SERVICES,
            "openRegistrations": self._open,
            "usage": {
                "users": {
                    "total": counts.users,
                    "activeHalfyear": counts.active_halfyear,
                    "activeMonth": counts.active_month,
                },
                "localPosts": counts.local_posts,
            },
            "metadata": {"nodeName": self._authority},
        }

    def render_GET(self, request: IRequest) -> int:
        def encode(document: dict[str, Any]) -> bytes:
            body = json_body(request, document)
            request.setHeader(
                b"content-type",
                f'application/json; profile="{SCHEMA_21}#"'.encode(),
            )
            return body

        def failed(failure: Any) -> bytes:
            self.log.failure("nodeinfo failed", failure)
            return json_body(request, {"error": "internal error"}, 500)

        d = ensureDeferred(self.document())
        d.addCallback(encode).addErrback(failed).addCallback(lambda body: _write(request, body))
        return NOT_DONE_YET

    render_HEAD = render_GET
