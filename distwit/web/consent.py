"""
The consent page of this server as an OpenID Connect provider: another
server asks who a visitor is, and they approve or deny.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from twisted.web.iweb import IRequest

from distwit.oidc.provider import SIGNED_OUT_PROMPT_NONE, ConsentError
from distwit.web.site import PageError, Site, Visitor, login_url, page
from distwit.web.templating import content_security_policy

if TYPE_CHECKING:
    from distwit.oidc.provider import OIDCProvider

#: What a refused sign-in request says (the reason folded away under it).
REFUSED = (
    "The server that sent you here asked in a way this server cannot answer. "
    "Go back to it and try again."
)


class ConsentPages:
    """
    :param site: the plumbing the pages are mounted on.
    :param oidc: the :class:`~distwit.oidc.provider.OIDCProvider` (our
        users signing in elsewhere), or ``None`` for none.
    """

    def __init__(self, site: Site, oidc: OIDCProvider | None = None) -> None:
        self.site = site
        self._oidc = oidc

    @page("GET", "/oidc/authorize")
    async def consent(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``GET /oidc/authorize``: another server asks who this visitor is.
        After sign-in, a page naming that server, to approve or deny.
        Unknown servers and redirect addresses get an error page, never a
        redirect.
        """
        oidc = self._require_oidc()
        params = self.site.lists(request)
        signed_in = visitor.user is not None and visitor.user.is_local
        try:
            # Checked before sign-in too: a forged request gets its error
            # page at once, not after the visitor typed their password.
            grant, found = await oidc.consent_request(
                params, visitor.user if signed_in else None
            )
        except ConsentError as e:
            raise PageError(400, "Sign-in request refused", REFUSED, str(e)) from None
        if grant is None:
            return self.site.redirect(request, found)
        prompts = (params.get("prompt") or [""])[0].split()
        if visitor.user is None or not visitor.user.is_local or self._stale(params, visitor):
            if "none" in prompts:
                # login_required goes back only to a client this user
                # approved before; signed out, nobody is known to have:
                # an error page, never a redirect nobody asked for.
                user = visitor.user if signed_in else None
                client_id = grant.request.payload.client_id
                if user is not None and await oidc.approved(user, client_id):
                    return self.site.redirect(request, oidc.login_required(grant))
                raise PageError(
                    400, "Sign-in request refused", REFUSED, SIGNED_OUT_PROMPT_NONE
                )
            # After this sign-in, login_after shows that it was fresh.
            fresh = {k: v for k, v in params.items() if k != "login_after"}
            fresh["login_after"] = [str(self.site.now_ms())]
            return self.site.redirect(
                request, login_url("/oidc/authorize?" + urlencode(fresh, doseq=True))
            )
        if "none" in prompts:
            try:
                location = await oidc.silently(
                    grant, params, visitor.user, _seconds(visitor.signed_in_at)
                )
            except ConsentError as e:
                raise PageError(400, "Sign-in request refused", REFUSED, str(e)) from None
            return self.site.redirect(request, location)
        redirect_uri = grant.request.payload.redirect_uri or found.get_default_redirect_uri()
        target = urlsplit(redirect_uri)
        request.setHeader(b"content-security-policy", content_security_policy(redirect_uri))
        return self.site.render(
            request, "consent.html", visitor,
            client_name=found.name, host=target.netloc,
            request_query=urlencode(params, doseq=True),
        )

    @page("POST", "/oidc/authorize")
    async def authorize(self, request: IRequest, visitor: Visitor) -> bytes:
        """
        ``POST /oidc/authorize``: the visitor's answer on the consent page;
        back to the asking server with a code, or with ``access_denied``.
        """
        self.site.check_csrf(request, visitor)
        oidc = self._require_oidc()
        query = self.site.field(request, "request") or ""
        params: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(key, []).append(value)
        if visitor.user is None or not visitor.user.is_local:
            return self.site.redirect(
                request, login_url("/oidc/authorize?" + urlencode(params, doseq=True))
            )
        decision = self.site.field(request, "decision")
        if decision not in ("approve", "deny"):
            raise PageError(400, "Bad request", "Choose to approve or deny.")
        try:
            location = await oidc.authorize(
                params, visitor.user, decision == "approve", _seconds(visitor.signed_in_at)
            )
        except ConsentError as e:
            raise PageError(400, "Sign-in request refused", REFUSED, str(e)) from None
        return self.site.redirect(request, location)

    def _stale(self, params: dict[str, list[str]], visitor: Visitor) -> bool:
        """
        Whether the asking server wants a fresher sign-in than the
        visitor's: ``prompt=login``, or ``max_age`` seconds passed since it.
        A sign-in made after the request (``login_after``) always does.
        """
        signed_in_at = visitor.signed_in_at or 0
        after = (params.get("login_after") or [""])[0]
        if after.isdigit() and signed_in_at >= int(after):
            return False
        if "login" in (params.get("prompt") or [""])[0].split():
            return True
        max_age = (params.get("max_age") or [""])[0]
        return max_age.isdigit() and self.site.now_ms() - signed_in_at > int(max_age) * 1000

    def _require_oidc(self) -> OIDCProvider:
        if self._oidc is None:
            raise PageError(404, "Page not found", "This server signs nobody in elsewhere.")
        return self._oidc


def _seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000
