"""
The baseline server: a bare twisted.web resource that answers every GET
and POST with the same bytes, in the same kind of process as distwit.

Usage: python -m benchmarks.bare_server PORT BODY_FILE
"""

import sys

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site


class Bare(Resource):
    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def render_GET(self, request):  # type: ignore[no-untyped-def]
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        return self.body

    render_POST = render_GET


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "rb") as f:
        body = f.read()
    site = Site(Bare(body))
    site.noisy = False
    reactor.listenTCP(port, site, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
