"""
The twitter role: its service (the store, the rules, the federation
loops) and, built on it, its HTTP resources (the API, the pages, OAuth,
OpenID Connect, the person feeds, the server-to-server routes).

:func:`make_twitter_service` first, then :func:`make_twitter_web` on the
service (the mailbox server's ``make_server`` / ``make_web_server``): the
service never builds a resource.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from zope.interface import implementer

from distwit.api.app import API_NOTIFICATIONS, API_SECTIONS, TwitterAPI
from distwit.api.images import ProfileImageResource
from distwit.api.oauth1 import OAuthProvider
from distwit.api.person_feeds import PersonFeeds
from distwit import __version__
from distwit.channels.configured import build_channels
from distwit.channels.delivery import Delivery
from distwit.channels.interfaces import ChannelParts, IInboundChannel
from distwit.config import Settings
from distwit.core.devices import Devices
from distwit.core.direct_messages import DirectMessages
from distwit.core.limits import AddressLimits, RateLimiter, SharedRateLimiter
from distwit.core.microblog import Microblog
from distwit.core.password_reset import PasswordReset, VerifiedMailboxes
from distwit.core.usage import ServerUsage
from distwit.core.passwords import PasswordHasher
from distwit.federation.copier import Fetcher
from distwit.federation.direct import ConditionalGetter, DirectPoller
from distwit.federation.direct_messages import DirectMessageNotices
from distwit.federation.health import FederationHealth, MeasuredClient, PeerHealth
from distwit.federation.history import History
from distwit.federation.follows import Federation
from distwit.federation.lookup import Lookup
from distwit.federation.nodeinfo import NodeInfoDiscovery, NodeInfoDocument
from distwit.federation.notices import NoticeReceiver, PostNotices, targets_of
from distwit.federation.outbox import Outbox
from distwit.federation.resource import FederationAPI, WebFinger
from distwit.federation.threads import Threads
from distwit.federation.interfaces import IPingList
from distwit.federation.sync import RegistryPingList, StaticPingList, SyncService
from distwit.oidc.keys import SigningKeys
from distwit.oidc.provider import OIDCProvider
from distwit.oidc.registrations import StoreRegistrations
from distwit.oidc.rp import RelyingParty
from distwit.oidc.safe_fetch import SafeFetcher
from distwit.roles.local_https import trust_line
from distwit.roles.leader import (
    Bus,
    LeaderElection,
    SharedOutbox,
    SharedSyncService,
)
from distwit.roles.process import ProcessParts, open_or_exit, thread_runner
from distwit.s2s import paths
from distwit.s2s.interfaces import IRequestVerifier, IS2SClient
from distwit.s2s.outbound import OutboundPolicy
from distwit.model import Post
from distwit.store.interfaces import IStore
from distwit.store.shared import ISharedState
from distwit.web.pages import Pages
from distwit.web.secrets import load_or_create_secret
from distwit.web.templating import PageRenderer


def open_twitter_store(settings: Settings, reactor: Any) -> Any:
    """
    Open (and migrate) the twitter role's database, or exit with a message
    that says what is wrong.
    """
    from distwit.store.schema import engine_for
    from distwit.store.sql import open_store

    folder = settings.data_folder
    database = settings.database or "sqlite:" + folder.twitter_database
    return open_or_exit(
        lambda: engine_for(database, folder.path), lambda engine: open_store(engine, reactor)
    )


#: Seconds between reads of the operator's decisions (docs/operating.md).
MODERATION_INTERVAL = 1.0


#: The pages under ``/account/``, at the root where the rest of
#: ``/account/...`` is the 2008 API: the e-mails' unsubscribe links, and
#: the password reset's.
ACCOUNT_PAGES = frozenset({b"unsubscribe", b"forgot", b"reset"})


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
        images: IResource | None = None,
        nodeinfo: IResource | None = None,
    ) -> None:
        super().__init__()
        self._oidc = oidc
        self._nodeinfo = nodeinfo
        if images is not None:
            self.putChild(b"profile_images", images)
        self._api = api
        self._pages = pages
        self._person_feeds = person_feeds
        self._oauth = oauth
        # /1.1/oauth/... too: a client or two of 2013 asked there.
        self.putChild(b"1.1", _WithOAuth(api, oauth) if oauth is not None else api)
        self.putChild(b"api", _WithOAuth(api, oauth) if oauth is not None else api)
        if s2s is not None:
            self.putChild(paths.child_name(paths.S2S), s2s)

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        request.postpath.insert(0, request.prepath.pop())
        if self._oauth is not None and path in (b"oauth", b"oauth2"):
            return self._oauth
        if self._oidc is not None and path == b"oidc" and request.postpath[1:2] != [b"authorize"]:
            # /oidc/authorize is a page (sign-in and consent); the rest is JSON.
            request.prepath.append(request.postpath.pop(0))
            return self._oidc
        if self._nodeinfo is not None and path == b"nodeinfo" and request.postpath[1:] == [
            b"2.1"
        ]:
            # /nodeinfo/2.1 only: /nodeinfo is the page of a user so named.
            request.prepath.extend(request.postpath[:2])
            del request.postpath[:2]
            return self._nodeinfo
        if path == b"account" and request.postpath[1:2] and request.postpath[1] in ACCOUNT_PAGES:
            # Pages under /account/ (links in e-mails); the rest is the API.
            return self._pages
        if path.decode("utf-8", "replace") in API_SECTIONS:
            return self._api
        if path.partition(b".")[0] == b"direct_messages":
            # /direct_messages.json: an endpoint that is a whole section.
            return self._api
        if path == b"notifications" and len(request.postpath) > 1:
            # /notifications/follow.json (2008); /notifications is a page.
            action = request.postpath[1].partition(b".")[0].decode("utf-8", "replace")
            if action in API_NOTIFICATIONS:
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
    ``/api/`` and ``/1.1/``: the OAuth routes under ``oauth/``, the API
    elsewhere.
    """

    def __init__(self, api: IResource, oauth: IResource) -> None:
        super().__init__()
        self._api = api
        self._oauth = oauth

    def getChild(self, path: bytes, request: IRequest) -> IResource:
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

    def render_GET(self, request: IRequest) -> bytes:
        return self._provider.discovery(request)


@implementer(IPingList)
class TrustedPingList:
    """
    The registry's list of ping servers, each of which ``policy`` trusts
    while it is listed: the operator chose the registry, so the ping
    servers it lists are not strangers' choices, and are reached even on a
    private network when peers are not.
    """

    def __init__(self, pings: IPingList, policy: OutboundPolicy) -> None:
        self._pings = pings
        self._policy = policy

    def live_pings(self) -> "Deferred[list[str]]":
        def trust(urls: list[str]) -> list[str]:
            self._policy.trust_listed(urls)
            return urls

        d: Deferred[list[str]] = self._pings.live_pings()
        return d.addCallback(trust)


class TwitterService(MultiService):
    """
    Users, posts and follows of this server; with ``client`` and
    ``verifier`` also its part in the federation: the sync service
    (exchanges with the ping servers), the fetcher (range copies from
    other twitter servers) and follows across servers.

    Its HTTP resources are built on it by :class:`TwitterWeb`.

    :param store: an opened :class:`IStore`; closed when the service stops.
    :param client: signed requests to other servers; ``None`` for a
        server on its own (tests of the API and pages).
    :param verifier: checks requests from other servers.
    :param policy: where ``client`` may connect; the ping servers the
        registry lists are trusted in it as they are listed.
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
        policy: OutboundPolicy | None = None,
        http_client: Any = None,
        shared: ISharedState | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        #: The state the processes of this server share (``--redis``);
        #: ``None``: a process on its own keeps it in memory.
        self.shared = shared
        #: With ``shared`` and PostgreSQL: who reports and copies
        #: (docs/design/several-processes.md).
        self.leader: LeaderElection | None = None
        self.store = store
        self.reactor = reactor
        self.authority = settings.authority
        self.hasher = hasher or PasswordHasher(thread_runner(reactor))
        self.microblog = Microblog(store, self.hasher, reactor)
        self.microblog.public_url = settings.public_url
        if hasattr(reactor, "getThreadPool"):
            # Resizing images is CPU work: off the reactor thread.
            self.microblog.images.in_thread = thread_runner(reactor)
        self.microblog.daily_posts = settings.daily_post_limit
        if shared is not None:
            self.microblog.share(shared)
        #: Direct messages (docs/design/direct-messages.md).
        self.direct_messages = DirectMessages(store, reactor)
        #: Outgoing requests made for visitors signing in with their home
        #: server (OpenID Connect discovery, registration, tokens).
        self.fetcher_for_signin = SafeFetcher(
            reactor,
            allow_http=settings.allow_http,
            allow_private=settings.allow_private,
            ca_file=settings.ca_file or None,
        )
        self.sync: SyncService | None = None
        self.fetcher: Fetcher | None = None
        self.federation: Federation | None = None
        self.outbox: Outbox | None = None
        self.notices: NoticeReceiver | None = None
        self.verifier = verifier
        self.policy = policy
        #: The process's outgoing pool (with ``policy``): conditional polls
        #: of authors of other federations.
        self.http_client = http_client
        self.direct: DirectPoller | None = None
        #: How every server this one talks to answers (issue 17): every
        #: signed request goes through a client that tells it.
        self.peer_health: PeerHealth | None = None
        if client is not None and verifier is not None:
            self.peer_health = PeerHealth(store, reactor)
            self.peer_health.setServiceParent(self)
            client = MeasuredClient(client, self.peer_health, reactor)
        #: The federation health view (the operator page).
        self.health = FederationHealth(
            store, reactor, self.peer_health,
            ping_servers=lambda: self.sync.ping_servers if self.sync is not None else [],
        )
        #: Conversations across servers (docs/design/threads.md); of what
        #: is held alone on a server on its own.
        self.threads = Threads(
            store, client if verifier is not None else None, reactor, self.authority,
            settings.public_url,
        )
        #: What only one process at a time may do: this service, or the
        #: leader's duties when several processes share the database.
        self.duties: MultiService = self
        if client is not None and verifier is not None:
            self._federate(reactor, client)
        self._devices(reactor)

    def _devices(self, reactor: Any) -> None:
        """
        Phones, IM and e-mail (docs/design/devices.md): the configured
        channels, the rules, and the sender of the devices' outbox (none
        when no channel is configured: then nothing is sent or swept).
        """
        settings = self.settings
        #: The configured channels, by kind.
        self.channels: dict[str, ChannelParts] = build_channels(settings, reactor)
        self.devices = Devices(
            self.store, self.microblog, reactor, kinds=frozenset(self.channels),
            sms_weekly_cap=settings.sms_weekly_cap, public_url=settings.public_url,
            direct_messages=self.direct_messages,
        )
        #: Password reset by e-mail: the verified addresses and the outbox
        #: of devices; none without an e-mail channel.
        email = "email" in self.channels
        self.password_reset = PasswordReset(
            self.microblog, self.store,
            VerifiedMailboxes(self.microblog, self.devices, self.store) if email else None,
            self.devices.queue if email else None,
            settings.public_url, settings.password_reset_ttl,
        )
        self.delivery: Delivery | None = None
        if not self.channels:
            return
        self.delivery = Delivery(
            self.store, {kind: parts.channel for kind, parts in self.channels.items()},
            reactor, sweep=self.devices.sweep,
        )
        self.devices.queued = self.delivery.wake
        # With several processes, one sends and keeps the gateways'
        # connections (one XMPP session, not one per process, so that a
        # message is taken once): the leader.  The others queue; the
        # leader's sender finds it within a round.
        self.delivery.setServiceParent(self.duties)
        for parts in self.channels.values():
            for service in parts.services:
                service.setServiceParent(self.duties)
            if IInboundChannel.providedBy(parts.channel):
                parts.channel.listen(self.devices.inbound)
        self.log.info(
            "devices: {kinds}", kinds=", ".join(
                f"{kind} ({getattr(parts.channel, 'name', kind)})"
                for kind, parts in sorted(self.channels.items())
            ),
        )

    def _federate(self, reactor: Any, client: IS2SClient) -> None:
        settings = self.settings
        pings: IPingList
        if settings.registry:
            pings = RegistryPingList(client, settings.registry)
            if self.policy is not None:
                pings = TrustedPingList(pings, self.policy)
        else:
            self.log.warn(
                "no registry configured (--registry): this server reports to no ping "
                "server, and copies posts of remote users only when they are followed"
            )
            pings = StaticPingList([])
        self.fetcher = Fetcher(self.store, client, reactor, self.authority)
        self.fetcher.blocked = self.microblog.is_blocked_server
        # What only one process at a time may do: its parent, the leader's
        # duties when several processes share the database, else this.
        duties: MultiService = self
        bus = Bus(self.shared) if self.shared is not None else None
        if bus is not None and settings.database.startswith(("postgresql:", "postgres:")):
            duties = self.duties = MultiService()
            self.leader = LeaderElection(
                settings.database, reactor, duties, interval=settings.ping_interval
            )
        self.sync = (SharedSyncService if bus is not None else SyncService)(
            self.store,
            client,
            pings,
            self.fetcher,
            reactor,
            settings.public_url,
            interval=settings.ping_interval,
            long_poll=settings.long_poll,
        )
        self.sync.setServiceParent(duties)
        self.outbox = (SharedOutbox if bus is not None else Outbox)(self.store, client, reactor)
        self.outbox.setServiceParent(duties)
        if bus is not None:
            assert isinstance(self.sync, SharedSyncService)
            assert isinstance(self.outbox, SharedOutbox)
            self.sync.share(bus)
            self.outbox.share(bus)
        self.federation = Federation(
            self.store, client, self.sync, reactor, settings.public_url,
            registry=settings.registry, outbox=self.outbox,
            counts_ttl=settings.counts_ttl,
        )
        self.outbox.locate = self.federation.notice_home
        self.outbox.sweep = PostNotices(self.store, self.outbox, self.authority).sweep
        self.notices = NoticeReceiver(
            self.store, Lookup(self.store, client, reactor, self.authority), reactor,
            self.authority, shared=self.shared,
        )
        # Direct messages to and from other servers' users: notices.
        direct_notices = DirectMessageNotices(
            self.store, self.direct_messages, self.outbox, reactor, self.authority
        )
        self.direct_messages.federation = direct_notices
        self.notices.direct_messages = direct_notices
        # Older messages of remote authors, when read (docs/design/reach.md).
        self.microblog.timelines.history = History(self.store, client, reactor, self.authority)
        if self.http_client is not None:
            # Authors of other federations: polled on their own servers.
            self.direct = DirectPoller(
                self.store,
                ConditionalGetter(self.http_client, reactor, settings.public_url).get,
                self.fetcher,
                reactor,
                registry=settings.registry,
                interval=settings.ping_interval,
            )
            self.direct.setServiceParent(duties)
        if self.leader is not None:
            self.leader.setServiceParent(self)
        sync, outbox = self.sync, self.outbox

        authority = self.authority

        def posted(post: Post) -> None:
            # A post that names someone elsewhere: its notices go now.  The
            # others wait for the outbox's next round, which moves the sweep's
            # cursor past them (a round per post cost a fifth of the writes).
            if targets_of(post, authority):
                outbox.wake()

        self.microblog.local_changed = sync.local_changed
        self.microblog.on_post.append(posted)
        self.microblog.federation = self.federation
        # Retweets of remote posts: a notice to the original's server.
        self.microblog.on_retweet.append(self.federation.retweeted)

    def startService(self) -> None:
        super().startService()
        self.log.info("twitter role serving {url}", url=self.settings.public_url)
        # The operator's decisions (`distwit user`, `distwit server`) reach
        # this running server through the database: read every second.
        self._moderation = LoopingCall(lambda: ensureDeferred(self._refresh_moderation()))
        self._moderation.clock = self.reactor
        self._moderation.start(MODERATION_INTERVAL, now=True)

    async def _refresh_moderation(self) -> None:
        try:
            await self.microblog.refresh_moderation()
        except Exception as e:
            self.log.debug("reading the operator's decisions failed: {error}", error=str(e))

    def stopService(self) -> "Deferred[None]":
        moderation = getattr(self, "_moderation", None)
        if moderation is not None and moderation.running:
            moderation.stop()
        stopping = [super().stopService()]
        for part in (self.fetcher, self.federation):
            if part is not None:
                stopping.append(part.stop())
        stopping.append(self.fetcher_for_signin.close())
        nonces = self.microblog.apps.nonces
        if nonces is not None:
            stopping.append(ensureDeferred(nonces.flush()))
        # Reset requests answered already, still at work: done before the
        # store closes.
        stopping.append(self.password_reset.idle())
        d = DeferredList(stopping, consumeErrors=True)
        shared = self.shared
        if shared is not None:
            d.addCallback(lambda _: shared.close())
        return d.addCallback(lambda _: self.store.close())


class TwitterWeb:
    """
    The twitter role's HTTP faces, built on its service.

    :ivar root: the resource at ``/`` (see :class:`TwitterRoot`).
    :ivar well_known: what the role serves under ``/.well-known/``, by name.
    :ivar api: the Twitter REST API; :ivar oauth: OAuth 1.0a;
        :ivar oidc: the OpenID Connect provider; :ivar rp: the relying
        party that signs visitors in with their home server;
        :ivar pages: the HTML pages.
    """

    def __init__(self, service: TwitterService) -> None:
        settings = service.settings
        reactor = service.reactor
        self.microblog = service.microblog
        limits = {"read": settings.rate_limit_reads, "write": settings.rate_limit_writes}
        limiter = (
            RateLimiter(reactor, window=settings.rate_limit_window, limits=limits)
            if service.shared is None
            else SharedRateLimiter(
                service.shared, reactor, "api", window=settings.rate_limit_window,
                limits=limits,
            )
        )
        secret = load_or_create_secret(settings.data_folder.web_secret)
        self.oidc = OIDCProvider(
            self.microblog, SigningKeys(settings.data_folder.oidc_keys), settings.public_url,
            reactor,
        )
        if service.shared is not None:
            self.oidc.share(service.shared)
        self.oauth = OAuthProvider(
            self.microblog, reactor, settings.public_url, secret, render_page=PageRenderer(),
            local_https_url=settings.local_https_url,
        )
        address_limits = AddressLimits(
            reactor,
            window=settings.rate_limit_window,
            limits={
                "read": settings.rate_limit_address_reads,
                "write": settings.rate_limit_address_writes,
            },
            state=service.shared,
        )
        self.api = TwitterAPI(
            self.microblog, limiter, public_url=settings.public_url, oauth=self.oauth,
            address_limits=address_limits, threads=service.threads,
            direct_messages=service.direct_messages, devices=service.devices,
        )
        self.rp = RelyingParty(
            service.fetcher_for_signin,
            StoreRegistrations(self.microblog.oidc, reactor),
            settings.public_url,
            reactor,
            client_name=f"distwit at {service.authority}",
        )
        self.rp.shared = service.shared
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
            threads=service.threads,
            local_https=(settings.local_https_url, trust_line(settings.data_folder))
            if settings.local_https else None,
            health=service.health if service.peer_health is not None else None,
            devices=service.devices,
            password_reset=service.password_reset,
        )
        #: NodeInfo 2.1 (federation crawlers count servers with it).
        self.nodeinfo = NodeInfoDocument(
            ServerUsage(service.store, reactor), __version__, settings.open_registration,
            service.authority,
        )
        self.root = self._root(service)
        channels = _channel_resources(service.channels)
        if channels is not None:
            assert isinstance(self.root, Resource)
            self.root.putChild(b"channels", channels)
        webfinger = WebFinger(self.microblog, settings.public_url, service.authority)
        self.well_known: dict[bytes, IResource] = {
            paths.WEBFINGER.encode(): webfinger.resource(),
            b"openid-configuration": _Discovery(self.oidc),
            b"nodeinfo": NodeInfoDiscovery(settings.public_url),
        }

    def _root(self, service: TwitterService) -> IResource:
        oauth = self.oauth.resource()
        images = ProfileImageResource(self.microblog.images)
        if service.federation is None or service.verifier is None:
            return TwitterRoot(
                self.api.resource(), self.pages.resource(), oauth=oauth, oidc=self.oidc.resource(),
                images=images, nodeinfo=self.nodeinfo,
            )
        public_url = service.settings.public_url
        s2s = FederationAPI(
            self.microblog, service.federation, service.verifier, public_url,
            notices=service.notices, threads=service.threads,
        )
        feeds = PersonFeeds(self.microblog, public_url)
        return TwitterRoot(
            self.api.resource(), self.pages.resource(), s2s.resource(), feeds.resource(), oauth,
            self.oidc.resource(), images=images, nodeinfo=self.nodeinfo,
        )


def _channel_resources(channels: dict[str, ChannelParts]) -> IResource | None:
    """
    ``/channels/<key>``: what the gateways call back (Kannel's get-url, ...),
    or ``None`` when no channel has any.
    """
    found = {key: resource for parts in channels.values()
             for key, resource in parts.resources.items()}
    if not found:
        return None
    folder = Resource()
    for key, resource in found.items():
        folder.putChild(key.encode("utf-8"), resource)
    return folder


def make_twitter_service(settings: Settings, reactor: Any, parts: ProcessParts) -> TwitterService:
    """
    The twitter role's service on its database, federated through the
    process's client and verifier.
    """
    shared: ISharedState | None = None
    if settings.redis:
        # Imported only when asked for: a server without --redis needs no
        # Redis, and connects to none.
        from distwit.store.redis import RedisSharedState

        shared = RedisSharedState(settings.redis, reactor)
    return TwitterService(
        settings,
        open_twitter_store(settings, reactor),
        reactor,
        client=parts.client,
        verifier=parts.verifier,
        policy=parts.policy,
        http_client=parts.http_client,
        shared=shared,
    )


def make_twitter_web(service: TwitterService) -> TwitterWeb:
    """
    The twitter role's HTTP resources, built on ``service``.
    """
    return TwitterWeb(service)


def make_twitter_resource(service: TwitterService) -> IResource:
    """
    The twitter role's root resource alone (tests of the API and pages).
    """
    return make_twitter_web(service).root
