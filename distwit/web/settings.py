"""
A member's settings: their profile and password, the apps they registered
or let use their account (OAuth 1.0a), and the servers they signed in to
with their account here (OpenID Connect).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from twisted.web.iweb import IRequest

from distwit.core.microblog import RuleError
from distwit.http import client_address
from distwit.web.site import PageError, Site, Visitor, page

if TYPE_CHECKING:
    from distwit.api.oauth1 import OAuthProvider


class SettingsPages:
    """
    :param site: the plumbing the pages are mounted on.
    :param oauth: the :class:`~distwit.api.oauth1.OAuthProvider` that
        registers apps, or ``None`` (no apps page).
    :param devices: whether to link the phone, IM and e-mail page (the
        server sends to at least one of them).
    """

    def __init__(self, site: Site, oauth: OAuthProvider | None = None,
                 devices: bool = False) -> None:
        self.site = site
        self.microblog = site.microblog
        self._oauth = oauth
        self._devices = devices

    @page("GET", "/settings")
    async def settings(self, request: IRequest, visitor: Visitor, status: int = 200,
                       profile_error: str | None = None, password_error: str | None = None,
                       image_error: str | None = None) -> bytes:
        """
        ``GET /settings``: one's profile and password, and links to the apps
        and the connected servers.
        """
        user = self.site.member(visitor, "/settings")
        current = await self.microblog.user_by_id(user.id)
        return self.site.render(
            request, "settings.html", visitor, status, account=current,
            profile_error=profile_error, password_error=password_error,
            image_error=image_error, devices_offered=self._devices,
            done={"profile": "Profile saved.", "password": "Password changed.",
                  "image": "Profile image changed."}.get(
                self.site.field(request, "saved") or ""),
        )

    @page("POST", "/settings/profile")
    async def update_profile(self, request: IRequest, visitor: Visitor) -> bytes:
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/settings")
        field = self.site.field
        try:
            await self.microblog.update_profile(
                user,
                name=field(request, "name") or "",
                description=field(request, "description") or "",
                location=field(request, "location") or "",
                url=field(request, "url") or "",
            )
        except RuleError as e:
            return await self.settings(request, visitor, 400, profile_error=str(e))
        return self.site.redirect(request, "/settings?saved=profile")

    @page("POST", "/settings/image")
    async def update_image(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /settings/image``: a new profile image (a multipart form's
        ``image`` file), checked as the API's ``update_profile_image``.
        """
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/settings")
        values = (request.args or {}).get(b"image")
        if not values or not values[0]:
            return await self.settings(
                request, visitor, 400, image_error="Choose an image file to upload."
            )
        try:
            await self.microblog.update_profile_image(user, values[0])
        except RuleError as e:
            return await self.settings(request, visitor, 400, image_error=str(e))
        return self.site.redirect(request, "/settings?saved=image")

    @page("POST", "/settings/password")
    async def change_password(self, request: IRequest, visitor: Visitor) -> bytes:
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/settings")
        current = self.site.field(request, "current") or ""
        new = self.site.field(request, "password") or ""
        if new != (self.site.field(request, "password_again") or ""):
            return await self.settings(
                request, visitor, 400, password_error="The two new passwords differ."
            )
        try:
            checked = await self.microblog.authenticate(
                user.handle, current, client_address(request)
            )
        except RuleError as e:
            return await self.settings(request, visitor, 429, password_error=str(e))
        if checked is None:
            return await self.settings(
                request, visitor, 400, password_error="The current password is wrong."
            )
        try:
            await self.microblog.set_password(
                user, new, keep_session=visitor.session_hash,
                end_tokens=self.site.field(request, "end_tokens") == "1",
            )
        except RuleError as e:
            return await self.settings(request, visitor, 400, password_error=str(e))
        return self.site.redirect(request, "/settings?saved=password")

    @page("GET", "/settings/apps")
    async def apps(self, request: IRequest, visitor: Visitor, status: int = 200,
                   name: str = "", callback: str = "", error: str | None = None) -> bytes:
        """
        ``GET /settings/apps``: the apps one registered, and those that may
        use one's account (with a revoke button each).
        """
        user = self.site.member(visitor, "/settings/apps")
        self._require_oauth()
        return self.site.render(
            request, "apps.html", visitor, status,
            apps=await self.microblog.apps.apps_of(user.id),
            tokens=await self.microblog.apps.tokens_of(user.id),
            name=name, callback=callback, error=error,
        )

    @page("POST", "/settings/apps")
    async def create_app(self, request: IRequest, visitor: Visitor) -> bytes:
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/settings/apps")
        oauth = self._require_oauth()
        name = (self.site.field(request, "name") or "").strip()
        callback = (self.site.field(request, "callback") or "").strip()
        if callback and not callback.startswith(("http://", "https://")):
            return await self.apps(request, visitor, 400, name, callback,
                                   "The callback must be an http:// or https:// URL.")
        try:
            await oauth.create_app(user, name, callback)
        except ValueError as e:
            return await self.apps(request, visitor, 400, name, callback, str(e).capitalize() + ".")
        return self.site.redirect(request, "/settings/apps")

    @page("POST", "/settings/apps/revoke")
    async def revoke_token(self, request: IRequest, visitor: Visitor) -> bytes:
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/settings/apps")
        token = self.site.field(request, "token") or ""
        mine = {t.token for t in await self.microblog.apps.tokens_of(user.id)}
        if token in mine:
            await self.microblog.apps.delete_token(token)
        return self.site.redirect(request, "/settings/apps")

    @page("GET", "/settings/servers")
    async def servers(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``GET /settings/servers``: the servers one signed in to with one's
        account here, with a button to forget each.
        """
        user = self.site.member(visitor, "/settings/servers")
        grants = []
        for grant in await self.microblog.oidc.oidc_grants_of(user.id):
            metadata = json.loads(grant.metadata)
            uris = metadata.get("redirect_uris") or [""]
            grants.append({
                "client_id": grant.client_id,
                "name": metadata.get("client_name") or "",
                "host": urlsplit(uris[0]).netloc,
                "first_at": grant.first_at,
                "last_at": grant.last_at,
            })
        return self.site.render(request, "servers.html", visitor, grants=grants)

    @page("POST", "/settings/servers/forget")
    async def forget_server(self, request: IRequest, visitor: Visitor) -> bytes:
        self.site.check_csrf(request, visitor)
        user = self.site.member(visitor, "/settings/servers")
        await self.microblog.oidc.delete_oidc_grant(
            user.id, self.site.field(request, "client") or ""
        )
        return self.site.redirect(request, "/settings/servers")

    def _require_oauth(self) -> OAuthProvider:
        if self._oauth is None:
            raise PageError(404, "No apps here", "This server has no OAuth.")
        return self._oauth
