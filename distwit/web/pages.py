"""
The HTML pages of a twitter server, as one resource: the public pages
(:mod:`distwit.web.public`), signing in (:mod:`distwit.web.signin`), the
OpenID Connect consent page (:mod:`distwit.web.consent`) and the settings
(:mod:`distwit.web.settings`), each area mounted on the plumbing they share
(:mod:`distwit.web.site`).

Pages are rendered on the server from the Jinja2 templates in
``templates/`` (autoescaped) and work without JavaScript.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource

from distwit.core.microblog import Microblog
from distwit.web.admin import AdminPages
from distwit.web.consent import ConsentPages
from distwit.web.devices import DevicesPages
from distwit.web.follow import RemoteFollowPages
from distwit.web.notifications import NotificationPages
from distwit.web.password_reset import PasswordResetPages
from distwit.web.people import PeoplePages
from distwit.web.public import PublicPages
from distwit.web.settings import SettingsPages
from distwit.web.signin import SignInPages
from distwit.web.site import Site
from distwit.web.status import StatusPages

if TYPE_CHECKING:
    from distwit.api.conversations import ConversationSource
    from distwit.api.oauth1 import OAuthProvider
    from distwit.core.devices import Devices
    from distwit.core.password_reset import PasswordReset
    from distwit.federation.health import FederationHealth
    from distwit.oidc.provider import OIDCProvider
    from distwit.oidc.rp import RelyingParty


class Pages:
    """
    Every page of the site, mounted at its root.

    :param microblog: the :class:`Microblog` whose users and posts are shown.
    :param secret: the server's web secret (for visitors' form tokens).
    :param clock: sessions are timed by it.
    :param open_registration: whether anyone may sign up here.
    :param secure_cookies: mark cookies ``Secure`` (the site is on HTTPS).
    :param public_url: where this site is.
    :param oauth: the OAuth 1.0a provider (the apps page), if any.
    :param oidc: the OpenID Connect provider (our users signing in
        elsewhere: the consent page), if any.
    :param rp: the relying party (visitors signing in here with their home
        server), if any.
    :param threads: assembles the conversations of status pages, if any.
    :param local_https: ``(URL, the shell line that trusts its CA)`` of
        ``--local-https``, if it is on (the page for client authors shows
        them).
    :param health: the federation health view (the operator page), if any.
    :param devices: phones, IM and e-mail (``/settings/devices``), if any.
    :param password_reset: password reset by e-mail, if any (without it,
        "Forgot your password?" says this server cannot).
    """

    def __init__(self, microblog: Microblog, secret: bytes, clock: IReactorTime,
                 open_registration: bool, secure_cookies: bool,
                 public_url: str = "http://localhost:8080",
                 oauth: OAuthProvider | None = None,
                 oidc: OIDCProvider | None = None,
                 rp: RelyingParty | None = None,
                 threads: ConversationSource | None = None,
                 local_https: tuple[str, str] | None = None,
                 health: FederationHealth | None = None,
                 devices: Devices | None = None,
                 password_reset: PasswordReset | None = None) -> None:
        self.site = Site(microblog, secret, clock, open_registration, secure_cookies)
        public = PublicPages(self.site, public_url, local_https)
        self.site.mount(public)
        self.site.mount(SignInPages(self.site, public_url, rp))
        self.site.mount(ConsentPages(self.site, oidc))
        # Settings link the devices' page when the server sends somewhere.
        self.site.mount(SettingsPages(self.site, oauth, bool(devices and devices.kinds)))
        if devices is not None:
            self.site.mount(DevicesPages(self.site, devices))
        self.site.mount(RemoteFollowPages(self.site))
        self.site.mount(StatusPages(self.site, public_url, threads))
        self.site.mount(PeoplePages(self.site, public, public_url, health))
        self.site.mount(NotificationPages(self.site))
        self.site.mount(AdminPages(self.site, health))
        self.site.mount(PasswordResetPages(self.site, password_reset))

    def resource(self) -> IResource:
        return self.site.resource()
