"""
The Twitter API app: one Klein route that dispatches on the endpoint path.

The same :class:`TwitterAPI` resource is mounted at ``/1.1/``, ``/api/``
and at the root for the unversioned 2008 paths, so every endpoint exists
under all three.  Each endpoint is declared once, with
:func:`~distwit.api.endpoints.endpoint` on the method that answers it, in
the file of its area (``statuses.py``, ``users.py``, ...); this file
finds who is calling, counts the call against the rate limits, and
renders the answer as JSON, XML or a feed.
"""

from __future__ import annotations

import binascii
import re
from typing import Any

from klein import Klein
from twisted.internet.defer import CancelledError, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET

from distwit.api import errors
from distwit.api.account import AccountEndpoints
from distwit.api.area import StatusList, Timeline
from distwit.api.blocks import BlockEndpoints
from distwit.api.endpoints import OPTIONAL, REQUIRED, Endpoint, endpoint, endpoints_of
from distwit.api.errors import TwitterError
from distwit.api.conversations import ConversationEndpoints, ConversationSource
from distwit.api.devices import DeviceEndpoints
from distwit.api.direct import DirectMessageEndpoints
from distwit.api.favorites import FavoriteEndpoints
from distwit.api.feeds import conditional, newest, render_timeline_feed, timeline_title
from distwit.api.friendships import FriendshipEndpoints
from distwit.api.help import HelpEndpoints
from distwit.api.images import ImageEndpoints
from distwit.api.oauth1 import OAuthProvider
from distwit.api.params import Params
from distwit.api.render import mark_notifications, relationship_source, user_objects
from distwit.api.retweets import RetweetEndpoints
from distwit.api.search import SearchEndpoints
from distwit.api.statuses import StatusEndpoints
from distwit.api.timelines import TimelineEndpoints
from distwit.api.users import UserEndpoints
from distwit.api.xml import error_xml, to_xml
from distwit.core.cache import RenderCache
from distwit.core.devices import Devices
from distwit.core.direct_messages import DirectMessages
from distwit.core.limits import AddressLimits, Allowance, RateLimiter, tighter
from distwit.core.microblog import Microblog, RuleError
from distwit.http import client_address, json_body
from distwit.model import WEB_SOURCE, Account

#: Splits ``statuses/show/20.json`` into path and format.
_FORMAT = re.compile(r"\A(?P<path>.*?)(?:\.(?P<format>[A-Za-z0-9]+))?\Z")

#: The first path segments of the unversioned 2008 API, served at the root.
API_SECTIONS = frozenset(
    {"account", "favorites", "followers", "friends", "friendships", "help", "search",
     "statuses", "users", "blocks", "mutes", "lists", "direct_messages"}
)

#: The 2008 ``notifications/follow`` and ``notifications/leave``, served at
#: the root (``/notifications`` alone is the notifications page).
API_NOTIFICATIONS = frozenset({"follow", "leave"})

#: The formats of answers: JSON everywhere, the 2008 XML everywhere, feeds
#: of timelines.
FORMATS = frozenset({"json", "xml", "rss", "atom"})

#: Every HTTP method, so that a wrong one gets Twitter's answer, not Klein's.
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]
_METHODS = frozenset(method.encode("ascii") for method in _ALL_METHODS)


def basic_credentials(request: IRequest) -> tuple[str, str] | None:
    """
    The handle and password of an HTTP Basic ``Authorization`` header, or
    ``None`` when there is no such header.

    :raises TwitterError: 32 for another scheme or a malformed header.
    """
    header = request.getHeader(b"authorization")
    if header is None:
        return None
    scheme, _, encoded = header.partition(b" ")
    if scheme.lower() != b"basic":
        raise TwitterError(
            32, "Could not authenticate you: use HTTP Basic or OAuth 1.0a.", 401
        )
    try:
        decoded = binascii.a2b_base64(encoded.strip()).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise errors.bad_credentials() from None
    handle, sep, password = decoded.partition(":")
    if not sep:
        raise errors.bad_credentials()
    return handle, password


class _APIResource(Resource):
    """
    The API's resource: an ordinary request (a method of the API, a path
    of non-empty UTF-8 segments) goes straight to
    :meth:`TwitterAPI.dispatch`, as Klein's catch-all route would send it,
    without the routing of one route (issue 16: Klein's routing and
    Deferred wrapping were about a twentieth of a timeline read); anything
    else (another method, an empty segment, a path that is not UTF-8 or
    holds a line feed, the root) through Klein, as before.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, api: "TwitterAPI", klein: IResource) -> None:
        super().__init__()
        self._api = api
        self._klein = klein

    def render(self, request: IRequest) -> Any:
        segments = request.postpath
        if request.method not in _METHODS or not segments or not all(segments):
            return self._klein.render(request)
        joined = b"/".join(segments)
        if b"\n" in joined:  # which Klein's route does not match
            return self._klein.render(request)
        try:
            path = joined.decode("utf-8")
        except UnicodeDecodeError:
            return self._klein.render(request)
        # As Klein's route does: its one segment moves to prepath.
        request.prepath.append(segments[0])
        request.postpath = segments[1:]
        finished = [False]

        def done(result: object) -> None:
            finished[0] = True

        request.notifyFinish().addBoth(done)  # type: ignore[attr-defined]
        answer = ensureDeferred(self._api.dispatch(request, path))
        request.notifyFinish().addErrback(  # type: ignore[attr-defined]
            lambda _: answer.cancel()
        )

        def write(body: bytes) -> None:
            if not finished[0]:
                request.write(body)
                request.finish()

        def failed(failure: Failure) -> None:
            if finished[0]:
                if not failure.check(CancelledError):
                    self.log.failure("API request {path} failed after its client left",
                                     failure, path=path)
                return
            request.processingFailed(failure)  # type: ignore[attr-defined]

        answer.addCallbacks(write, failed)
        return NOT_DONE_YET


class TwitterAPI:
    """
    The Twitter REST API over a :class:`Microblog`.

    :param limiter: the rate limits per caller and endpoint (generous
        defaults if not given).
    :param address_limits: the rate limits per client address, every
        endpoint and door together (the defaults if not given).
    :param public_url: this server's public URL as the settings hold it
        (no trailing slash).
    :param oauth: the OAuth provider, if OAuth is on.
    :param direct_messages: the rules of direct messages (the composition
        root's, which tell other servers; else local ones only).
    :param devices: phones, IM and e-mail (``account/update_delivery_device``,
        ``notifications/...``, ``account/settings``, ``account/devices``),
        if the server has them.
    """

    app = Klein()
    log = Logger()

    def __init__(
        self,
        microblog: Microblog,
        limiter: RateLimiter | None = None,
        public_url: str = "",
        oauth: OAuthProvider | None = None,
        address_limits: AddressLimits | None = None,
        threads: ConversationSource | None = None,
        direct_messages: DirectMessages | None = None,
        status_cache: "RenderCache[tuple[int, bool, bool, str]] | None" = None,
        devices: Devices | None = None,
    ) -> None:
        self.microblog = microblog
        self.devices = devices
        self.oauth = oauth
        self.public_url = public_url
        self.limiter = limiter or RateLimiter(microblog.clock)
        self.address_limits = address_limits or AddressLimits(microblog.clock)
        #: Statuses rendered for any reader, kept for the timelines.
        self.status_cache: RenderCache[tuple[int, bool, bool, str]] = (
            status_cache if status_cache is not None else RenderCache()
        )
        statuses = StatusEndpoints(microblog)
        statuses.threads = threads
        blocks = BlockEndpoints(microblog)
        blocks.devices = devices
        self._endpoints = endpoints_of(
            self,
            AccountEndpoints(microblog),
            HelpEndpoints(microblog),
            statuses,
            ConversationEndpoints(microblog, threads),
            RetweetEndpoints(microblog),
            ImageEndpoints(microblog),
            TimelineEndpoints(microblog, self.status_cache),
            SearchEndpoints(microblog),
            FavoriteEndpoints(microblog),
            UserEndpoints(microblog),
            FriendshipEndpoints(microblog),
            blocks,
            DirectMessageEndpoints(
                microblog,
                direct_messages or DirectMessages(microblog.store, microblog.clock),
            ),
            *((DeviceEndpoints(microblog, devices),) if devices is not None else ()),
        )
        #: The endpoints whose path is plain text, by path: most requests
        #: are answered without trying ~60 patterns in turn.
        self._by_path: dict[str, Endpoint] = {}
        for endpoint_ in self._endpoints:
            if endpoint_.is_literal:
                self._by_path.setdefault(endpoint_.name, endpoint_)

    def resource(self) -> IResource:
        return _APIResource(self, self.app.resource())

    # Routing

    @app.route("/", methods=_ALL_METHODS)
    async def root(self, request: IRequest) -> bytes:
        return await self.dispatch(request, "")

    @app.route("/<path:api_path>", methods=_ALL_METHODS)
    async def dispatch(self, request: IRequest, api_path: str) -> bytes:
        match = _FORMAT.match(api_path)
        assert match is not None
        path, format = match.group("path"), (match.group("format") or "json").lower()
        try:
            if format not in FORMATS:
                raise errors.page_not_found(f"there is no .{format}; use .json or .xml")
            method = request.method.decode("ascii", "replace")
            literal = self._by_path.get(path)
            for endpoint_ in (literal,) if literal is not None else self._endpoints:
                found = endpoint_.pattern.fullmatch(path)
                if found is None:
                    continue
                if method not in endpoint_.methods:
                    needed = " or ".join(sorted(endpoint_.methods - {"HEAD"}))
                    raise errors.page_not_found(f"{path} needs {needed}")
                user, caller, source = await self._signed_in(request, endpoint_)
                params = Params(request, found.groupdict(), caller, source)
                result = await endpoint_.handler(request, user, params)
                await self._mark_notifications(user, result)
                return self._render(request, endpoint_, format, result, user)
            raise errors.page_not_found()
        except TwitterError as e:
            return self._error(request, e, format)
        except RuleError as e:
            return self._error(request, errors.from_rule(e), format)
        except Exception:
            self.log.failure("API request {method} {path} failed",
                             method=request.method, path=request.path)
            return self._error(request, errors.internal_error(), format)

    async def _mark_notifications(self, user: Account | None, result: Any) -> None:
        """
        The ``notifications`` of the user objects of an answer, as the
        signed-in reader has them (one query for a whole list).
        """
        users = user_objects(result)
        source = relationship_source(result, user)
        if not users and source is None:
            return
        on: set[int] = set()
        if user is not None and user.is_local and self.devices is not None:
            ids = [u["id"] for u in users] + ([source["target_id"]] if source else [])
            on = await self.devices.notifications_on(user, ids)
        mark_notifications(users, on)
        if source is not None:
            source["side"]["notifications_enabled"] = source["target_id"] in on

    def _render(self, request: IRequest, endpoint: Endpoint, format: str, result: Any,
                user: Account | None = None) -> bytes:
        if isinstance(result, Timeline):
            if format == "json":
                request.setResponseCode(200)
                request.setHeader(b"content-type", b"application/json; charset=utf-8")
                return result.as_json()
            result = result.as_status_list()
        if format == "json":
            return json_body(request, result)
        if format == "xml":
            request.setHeader(b"content-type", b"application/xml; charset=utf-8")
            return to_xml(result)
        if not isinstance(result, StatusList):
            raise errors.page_not_found(f"{endpoint.name} is not a timeline: use .json or .xml")
        atom = format == "atom"
        request.setHeader(
            b"content-type",
            b"application/atom+xml; charset=utf-8" if atom
            else b"application/rss+xml; charset=utf-8",
        )
        public_url = self.public_url or "http://localhost"
        title = timeline_title(endpoint.name, public_url.split("//", 1)[-1], user,
                               result.subject)
        self_url = public_url + request.uri.decode("utf-8", "replace")
        document = render_timeline_feed(title, self_url, public_url, result.posts, atom)
        return conditional(request, document, newest(result.posts))

    def _error(self, request: IRequest, error: TwitterError, format: str) -> bytes:
        if error.status == 401:
            request.setHeader(b"www-authenticate", b'Basic realm="distwit"')
        if format == "xml":
            request.setResponseCode(error.status)
            request.setHeader(b"content-type", b"application/xml; charset=utf-8")
            return error_xml(error.code, error.message)
        return json_body(request, error.body(), error.status)

    # Who is calling, and the rate limits

    def _show(self, request: IRequest, allowance: Allowance) -> None:
        for name, value in allowance.headers():
            request.setHeader(name, value)
        if not allowance.allowed:
            raise TwitterError(88, "Rate limit exceeded.", 429)

    async def _limit(self, request: IRequest, caller: str, endpoint: Endpoint,
                     by_address: Allowance) -> None:
        """
        Count the call against ``caller``'s allowance for ``endpoint``; the
        headers show the tighter of it and the address's.
        """
        allowance = await self.limiter.take(caller, endpoint.name, endpoint.kind)
        self._show(request, tighter(allowance, by_address))

    def _not_suspended(self, user: Account) -> None:
        if self.microblog.is_suspended(user):
            raise TwitterError(
                64, "Your account is suspended and is not permitted to access this feature.",
                403,
            )

    async def _signed_in(self, request: IRequest, endpoint: Endpoint
                         ) -> tuple[Account | None, str, str]:
        """
        The signed-in user (or ``None``), whose count the call is in the
        rate limits: the user's (by screen name), an app's (app-only
        bearer tokens), else the address's; and the ``source`` of what the
        call posts (the OAuth app's name, else "web").  The call is
        counted.

        Every call counts first against its address's allowance
        (:class:`~distwit.core.limits.AddressLimits`), whatever door it
        comes by: past it, 429 before any credentials are checked.  A
        user's own count is taken only once the credentials are checked,
        so a stranger claiming a user's name (HTTP Basic with wrong
        passwords) uses up their own address's allowance, never the
        user's.
        """
        address = client_address(request)
        by_address = await self.address_limits.take(address, endpoint.kind)
        self._show(request, by_address)
        if self.oauth is not None and self.oauth.carries_oauth(request):
            credentials = await self.oauth.authenticate(request)
            assert credentials is not None
            user = credentials.user
            if user is not None:
                self._not_suspended(user)
            if user is None and endpoint.auth == REQUIRED:
                raise TwitterError(
                    220, "Your credentials do not allow access to this resource.", 403
                )
            caller = (
                f"user:{user.screen_name.lower()}" if user is not None
                else f"app:{credentials.app_id}"
            )
            await self._limit(request, caller, endpoint, by_address)
            # The signature checked, so the name is the app's own.
            return user, caller, credentials.app_name or WEB_SOURCE
        basic = basic_credentials(request)
        if basic is None:
            if endpoint.auth == REQUIRED:
                raise errors.missing_credentials()
            await self._limit(request, f"address:{address}", endpoint, by_address)
            return None, f"address:{address}", WEB_SOURCE
        handle, password = basic
        user = await self.microblog.authenticate(handle, password, address)
        if user is None:
            raise errors.bad_credentials()
        self._not_suspended(user)
        caller = f"user:{user.screen_name.lower()}"
        await self._limit(request, caller, endpoint, by_address)
        return user, caller, WEB_SOURCE

    @endpoint("account/rate_limit_status", "application/rate_limit_status")
    async def rate_limit_status(self, request: IRequest, user: Account | None, params: Params
                                ) -> Any:
        resources: dict[str, dict[str, Any]] = {}
        wanted = set(params.text_list("resources"))
        for endpoint_ in self._endpoints:
            section = endpoint_.name.split("/", 1)[0]
            if wanted and section not in wanted:
                continue
            allowance = await self.limiter.look(params.caller, endpoint_.name, endpoint_.kind)
            resources.setdefault(section, {})["/" + endpoint_.name] = {
                "limit": allowance.limit,
                "remaining": allowance.remaining,
                "reset": allowance.reset,
            }
        return {"rate_limit_context": {"access_token": params.caller}, "resources": resources}


__all__ = [
    "API_NOTIFICATIONS", "API_SECTIONS", "OPTIONAL", "REQUIRED", "TwitterAPI",
    "basic_credentials",
]
