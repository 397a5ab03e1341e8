"""
The operator page (issue 17): the federation's health as this server sees
it, for users with the admin flag (``distwit admin grant HANDLE``); others
are refused (403).  The same report as ``distwit status``
(:mod:`distwit.federation.health`).
"""

from __future__ import annotations

from twisted.web.iweb import IRequest

from distwit.federation.health import (
    FederationHealth,
    ago,
    device_line,
    completeness,
    is_down,
    peer_state,
)
from distwit.web.site import PageError, Site, Visitor, page


class AdminPages:
    """
    :param site: the plumbing the pages are mounted on.
    :param health: the federation health view (``None``: a server on its
        own, which has no federation to show).
    """

    def __init__(self, site: Site, health: FederationHealth | None) -> None:
        self.site = site
        self.health = health

    @page("GET", "/admin/status")
    async def status(self, request: IRequest, visitor: Visitor) -> bytes:
        user = self.site.member(visitor, "/admin/status")
        if self.health is None:
            raise PageError(404, "Not found", "This server is not part of a federation.")
        if not await self.health.is_operator(user.id):
            raise PageError(
                403, "Operators only",
                "This page is for the operators of this server. An operator can give you"
                " access with: distwit admin grant " + user.handle,
            )
        report = await self.health.report()
        now = report.now
        peers = [
            {
                "record": p,
                "state": peer_state(p),
                "down": is_down(p),
                "last_success": ago(now, p.last_success),
                "last_failure": ago(now, p.last_failure),
            }
            for p in report.peers
        ]
        authors = [
            {"author": a, "complete": a.held >= a.known, "percent": f"{completeness(a):.1%}"}
            for a in report.authors
        ]
        outbox = [{"target": t, "oldest": ago(now, t.oldest)} for t in report.outbox]
        depth = sum(t.depth for t in report.outbox)
        oldest = ago(now, min((t.oldest for t in report.outbox), default=0))
        pings = report.ping_servers or [p.url for p in report.peers if p.kind == "ping"]
        return self.site.render(
            request, "admin_status.html", visitor,
            peers=peers, down=len(report.down), authors=authors, behind=len(report.behind),
            outbox=outbox, depth=depth, oldest=oldest, pings=pings,
            devices=device_line(report.devices, now) if report.devices is not None else "",
        )
