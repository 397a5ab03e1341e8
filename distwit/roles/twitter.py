"""
The twitter role's service: owns the store and serves the API and pages.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.web.resource import IResource, Resource

from distwit.api.app import API_SECTIONS, TwitterAPI
from distwit.core.limits import RateLimiter
from distwit.api.oauth1 import OAuthProvider
from distwit.config import Settings
from distwit.oidc.safe_fetch import SafeFetcher
from distwit.oidc.keys import SigningKeys
from distwit.oidc.provider import OIDCProvider
from distwit.oidc.registrations import StoreRegistrations
from distwit.oidc.rp import RelyingParty
from distwit.core.passwords import PasswordHasher
from distwit.s2s.interfaces import IRequestVerifier, IS2SClient
from distwit.store.interfaces import IStore
from distwit.core.microblog import Microblog
from distwit.web.pages import Pages
from distwit.web.secrets import load_or_create_secret
from distwit.web.templating import content_security_policy, templates


def thread_runner(reactor: Any) -> Any:
    """
    ``f(*args)`` in the reactor's thread pool, as a Deferred.
    """

    def run(f: Any, *args: Any, **kwargs: Any) -> "Deferred[Any]":
        return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args, **kwargs)

    return run


class TwitterRoot(Resource):
    """
    ``/1.1/...``, ``/api/...`` and the 2008 sections (``/statuses/...``)
    go to the API; ``/s2s/...`` to other servers; ``/HANDLE.rss`` and
    ``/HANDLE.atom`` to the person feeds; everything else to the pages.
    """

    def __init__(
        self,
        api: IResource,
        pages: IResource,
        s2s: IResource | None = None,
        person_feeds: IResource | None = None,
        oauth: IResource | None = None,
        oidc: IResource | None = None,
    ) -> None:
        super().__init__()
        self._oidc = oidc
        self._api = api
        self._pages = pages
        self._person_feeds = person_feeds
        self._oauth = oauth
        self.putChild(b"1.1", api)
        self.putChild(b"api", _WithOAuth(api, oauth) if oauth is not None else api)
        if s2s is not None:
            self.putChild(b"s2s", s2s)

    def getChild(self, path: bytes, request: Any) -> IResource:
        request.postpath.insert(0, request.prepath.pop())
        if self._oauth is not None and path in (b"oauth", b"oauth2"):
            return self._oauth
        if self._oidc is not None and path == b"oidc" and request.postpath[1:2] != [b"authorize"]:
            # /oidc/authorize is a page (sign-in and consent); the rest is JSON.
            request.prepath.append(request.postpath.pop(0))
            return self._oidc
        if path.decode("utf-8", "replace") in API_SECTIONS:
            return self._api
        if (
            self._person_feeds is not None
            and len(request.postpath) == 1
            and path.endswith((b".rss", b".atom"))
        ):
            return self._person_feeds
        return self._pages


class _WithOAuth(Resource):
    """
    ``/api/``: the OAuth routes under ``/api/oauth/``, the API elsewhere.
    """

    def __init__(self, api: IResource, oauth: IResource) -> None:
        super().__init__()
        self._api = api
        self._oauth = oauth

    def getChild(self, path: bytes, request: Any) -> IResource:
        request.postpath.insert(0, request.prepath.pop())
        return self._oauth if path in (b"oauth", b"oauth2") else self._api


class _Discovery(Resource):
    """
    ``/.well-known/openid-configuration``.
    """

    isLeaf = True

    def __init__(self, provider: OIDCProvider) -> None:
        super().__init__()
        self._provider = provider

    def render_GET(self, request: Any) -> bytes:
        return self._provider.discovery(request)


class TwitterService(MultiService):
    """
    Users, posts and follows of this server, on the web; with ``client``
    and ``verifier`` also its part in the federation: the sync service
    (exchanges with the ping servers), the fetcher (range copies from
    other twitter servers) and follows across servers.

    :param store: an opened :class:`IStore`; closed when the service stops.
    :param client: signed requests to other servers; ``None`` for a
        server on its own (tests of the API and pages).
    :param verifier: checks requests from other servers.
    """

    name = "twitter"
    log = Logger()

    def __init__(
        self,
        settings: Settings,
        store: IStore,
        reactor: Any,
        hasher: PasswordHasher | None = None,
        *,
        client: IS2SClient | None = None,
        verifier: IRequestVerifier | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.hasher = hasher or PasswordHasher(thread_runner(reactor))
        self.microblog = Microblog(store, self.hasher, reactor)
        self.microblog.daily_posts = settings.daily_post_limit
        limiter = RateLimiter(
            reactor,
            window=settings.rate_limit_window,
            limits={"read": settings.rate_limit_reads, "write": settings.rate_limit_writes},
        )
        secret = load_or_create_secret(settings.data)
        self.oidc = OIDCProvider(
            self.microblog, SigningKeys.in_folder(settings.data), settings.public_url, reactor
        )
        site_templates = templates()

        def render_page(
            template: str, form_targets: Sequence[str], context: Mapping[str, Any]
        ) -> tuple[str, bytes]:
            html_text = site_templates.get_template(template).render(**context)
            return html_text, content_security_policy(*form_targets)

        self.oauth = OAuthProvider(
            self.microblog, reactor, settings.public_url, secret, render_page=render_page
        )
        self.api = TwitterAPI(
            self.microblog, limiter, public_url=settings.public_url, oauth=self.oauth
        )
        self.fetcher_for_signin = SafeFetcher(
            reactor,
            allow_http=settings.allow_http,
            allow_private=settings.allow_private,
            ca_file=settings.ca_file or None,
        )
        self.rp = RelyingParty(
            self.fetcher_for_signin,
            StoreRegistrations(store, reactor),
            settings.public_url,
            reactor,
            client_name=f"distwit at {settings.authority}",
        )
        self.pages = Pages(
            self.microblog,
            secret=secret,
            clock=reactor,
            open_registration=settings.open_registration,
            secure_cookies=settings.public_url.startswith("https:"),
            public_url=settings.public_url,
            oauth=self.oauth,
            oidc=self.oidc,
            rp=self.rp,
        )
        self.sync: Any = None
        self.fetcher: Any = None
        self.federation: Any = None
        self.verifier = verifier
        if client is not None and verifier is not None:
            self._federate(reactor, client)

    def _federate(self, reactor: Any, client: IS2SClient) -> None:
        from distwit.core.accts import authority_of
        from distwit.federation.follows import Federation
        from distwit.federation.copier import Fetcher
        from distwit.federation.sync import IPingList, RegistryPingList, StaticPingList, SyncService

        settings = self.settings
        pings: IPingList
        if settings.registry:
            pings = RegistryPingList(client, settings.registry)
        else:
            self.log.warn(
                "no registry configured (--registry): this server reports to no ping "
                "server, and copies posts of remote users only when they are followed"
            )
            pings = StaticPingList([])
        self.fetcher = Fetcher(self.store, client, reactor, authority_of(settings.public_url))
        self.sync = SyncService(
            self.store,
            client,
            pings,
            self.fetcher,
            reactor,
            settings.public_url,
            interval=settings.ping_interval,
            long_poll=settings.long_poll,
        )
        self.sync.setServiceParent(self)
        self.federation = Federation(self.store, client, self.sync, reactor, settings.public_url)
        self.microblog.local_changed = self.sync.local_changed
        self.microblog.federation = self.federation

    def resource(self) -> IResource:
        oauth = self.oauth.resource()
        if self.federation is None or self.verifier is None:
            return TwitterRoot(
                self.api.resource(), self.pages.resource(), oauth=oauth, oidc=self.oidc.resource()
            )
        from distwit.federation.resource import FederationAPI, PersonFeeds

        s2s = FederationAPI(self.microblog, self.federation, self.verifier, self.settings.public_url)
        feeds = PersonFeeds(self.microblog, self.settings.public_url)
        return TwitterRoot(
            self.api.resource(), self.pages.resource(), s2s.resource(), feeds.resource(), oauth,
            self.oidc.resource(),
        )

    def well_known(self) -> dict[bytes, IResource]:
        """
        What the twitter role serves under ``/.well-known/``.
        """
        from distwit.core.accts import authority_of
        from distwit.federation.resource import WebFinger

        webfinger = WebFinger(self.microblog, self.settings.public_url,
                              authority_of(self.settings.public_url))
        return {
            b"webfinger": webfinger.resource(),
            b"openid-configuration": _Discovery(self.oidc),
        }

    def startService(self) -> None:
        super().startService()
        self.log.info("twitter role serving {url}", url=self.settings.public_url)

    def stopService(self) -> "Deferred[None]":
        stopping = [super().stopService()]
        for part in (self.fetcher, self.federation):
            if part is not None:
                stopping.append(part.stop())
        stopping.append(self.fetcher_for_signin.close())
        d = DeferredList(stopping, consumeErrors=True)
        return d.addCallback(lambda _: self.store.close())
