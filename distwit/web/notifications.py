"""
The notifications page: mentions, replies, new followers, retweets and
favorites of the signed-in member's posts, newest first, paged; seeing its
first page clears the unread count in the header.
"""

from __future__ import annotations

from dataclasses import replace

from twisted.web.iweb import IRequest

from distwit.web.site import PAGE_SIZE, PageError, Site, Visitor, page


class NotificationPages:
    """
    :param site: the plumbing the pages are mounted on.
    """

    def __init__(self, site: Site) -> None:
        self.site = site

    @page("GET", "/notifications")
    async def notifications(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``GET /notifications``, older pages by ``before`` (ms).
        """
        user = self.site.member(visitor, "/notifications")
        value = self.site.field(request, "before")
        before = None
        if value:
            if not value.isascii() or not value.isdigit() or len(value) > 18:
                raise PageError(400, "Bad request", "before must be a time in milliseconds.")
            before = int(value)
        found = await self.site.notifications.page(user, before, PAGE_SIZE + 1)
        shown = found[:PAGE_SIZE]
        if before is None:
            await self.site.notifications.seen(user, shown)
            visitor = replace(visitor, unread=await self.site.notifications.unread(user))
        older_url = None
        if len(found) > PAGE_SIZE:
            older_url = f"/notifications?before={shown[-1].at}"
        return self.site.render(
            request, "notifications.html", visitor,
            notifications=shown, older_url=older_url,
        )
