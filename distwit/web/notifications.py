"""
The notifications page: mentions, replies, new followers, retweets and
favorites of the signed-in member's posts, newest first, paged; seeing its
first page clears the unread count in the header.
"""

from __future__ import annotations

from dataclasses import replace

from twisted.web.iweb import IRequest

from distwit.web.site import PAGE_SIZE, PageError, Site, Visitor, page

#: The most notifications of one millisecond a page skips.
MAX_SKIP = 10_000


class NotificationPages:
    """
    :param site: the plumbing the pages are mounted on.
    """

    def __init__(self, site: Site) -> None:
        self.site = site

    @page("GET", "/notifications")
    async def notifications(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``GET /notifications``, older pages by ``before`` (see
        :meth:`_cursor`).
        """
        user = self.site.member(visitor, "/notifications")
        before, skip = self._cursor(request)
        # Those at the cursor's very millisecond that the page before
        # showed come first (the order is total): skipped.
        found = (await self.site.notifications.page(
            user, None if before is None else before + 1, skip + PAGE_SIZE + 1
        ))[skip:]
        shown = found[:PAGE_SIZE]
        if before is None:
            await self.site.notifications.seen(user, shown)
            visitor = replace(visitor, unread=await self.site.notifications.unread(user))
        older_url = None
        if len(found) > PAGE_SIZE:
            last = shown[-1].at
            same = sum(1 for n in shown if n.at == last)
            if last == before:
                same += skip
            older_url = f"/notifications?before={last}.{same}"
        return self.site.render(
            request, "notifications.html", visitor,
            notifications=shown, older_url=older_url,
        )

    def _cursor(self, request: IRequest) -> tuple[int | None, int]:
        """
        ``before=MS.N``: older than the ``N`` notifications at ``MS``
        already shown (``None, 0``: the newest).
        """
        value = self.site.field(request, "before")
        if not value:
            return None, 0
        at, _, skip = value.partition(".")
        if (
            not all(p.isascii() and p.isdigit() and len(p) <= 15 for p in (at, skip or "0"))
            or int(skip or "0") > MAX_SKIP
        ):
            raise PageError(400, "Bad request", "That page of notifications does not exist.")
        return int(at), int(skip or "0")
