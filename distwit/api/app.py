"""
The Twitter API app: one Klein route that dispatches on the endpoint path.

The same :class:`TwitterAPI` resource is mounted at ``/1.1/``, ``/api/``
and at the root for the unversioned 2008 paths, so every endpoint exists
under all three.  Endpoints are listed once, in :meth:`TwitterAPI._table`.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable
from urllib.parse import quote_plus

from klein import Klein
from twisted.logger import Logger

from distwit.api import errors
from distwit.api.errors import TwitterError
from distwit.core.limits import RateLimiter
from distwit.api.render import Shape, status_json, user_json
from distwit.api.xml import error_xml, to_xml
from distwit.api.feeds import render_timeline_feed
from distwit.http import client_address, json_body
from distwit.model import MAX_STATUS_ID, RESERVED_HANDLES, Account, is_valid_handle
from distwit.core.microblog import Microblog, RuleError

#: Splits ``statuses/show/20.json`` into path and format.
_FORMAT = re.compile(r"\A(?P<path>.*?)(?:\.(?P<format>[A-Za-z0-9]+))?\Z")

#: The first path segments of the unversioned 2008 API, served at the root.
API_SECTIONS = frozenset(
    {"account", "favorites", "followers", "friends", "friendships", "help", "search",
     "statuses", "users"}
)

#: Twitter's booleans, and Python's as some clients send them.
_TRUE = frozenset({"true", "1", "t", "yes", "on"})
_FALSE = frozenset({"false", "0", "f", "no", "off", ""})

#: Most users in one users/lookup or friendships/lookup, as Twitter.
MAX_LOOKUP = 100

Handler = Callable[[Any, "Account | None", "Params"], Awaitable[Any]]

#: Whether an endpoint needs a signed-in user.
REQUIRED, OPTIONAL = "required", "optional"


@dataclass(frozen=True)
class Endpoint:
    name: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    auth: str
    handler: Handler

    @property
    def kind(self) -> str:
        return "write" if self.methods == frozenset({"POST"}) else "read"


#: The formats of answers: JSON everywhere, the 2008 XML everywhere, feeds
#: of timelines.
FORMATS = frozenset({"json", "xml", "rss", "atom"})


class StatusList(list[Any]):
    """
    A timeline's statuses as JSON objects, with the posts they came from
    (for the feeds).
    """

    def __init__(self, posts: list[Any], statuses: list[dict[str, Any]]) -> None:
        super().__init__(statuses)
        self.posts = posts


class Params:
    """
    An API request's parameters: path arguments, then the query string and
    a form body (urlencoded or multipart) alike.
    """

    def __init__(self, request: Any, path_args: dict[str, str]) -> None:
        self._args: dict[bytes, list[bytes]] = request.args or {}
        self._path = path_args

    def text(self, name: str) -> str | None:
        if name in self._path:
            return self._path[name]
        values = self._args.get(name.encode("ascii"))
        if not values:
            return None
        try:
            return values[0].decode("utf-8")
        except UnicodeDecodeError:
            raise errors.invalid_parameter(name, "it is not valid UTF-8") from None

    def integer(self, name: str, minimum: int = 0, maximum: int = MAX_STATUS_ID) -> int | None:
        value = self.text(name)
        if value is None or value == "":
            return None
        try:
            number = int(value.strip())
        except ValueError:
            raise errors.invalid_parameter(name, f"{value!r} is not a number") from None
        if not minimum <= number <= maximum:
            raise errors.invalid_parameter(
                name, f"it must be between {minimum} and {maximum}"
            )
        return number

    def status_id(self, name: str) -> int | None:
        return self.integer(name, minimum=1)

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise errors.invalid_parameter(name, f"{value!r} is not true or false")

    def text_list(self, name: str) -> list[str]:
        """
        A comma-separated list (``screen_name=a,b``), empty items dropped.
        """
        value = self.text(name)
        if value is None:
            return []
        items = [item.strip() for item in value.split(",") if item.strip()]
        if len(items) > MAX_LOOKUP:
            raise errors.invalid_parameter(name, f"at most {MAX_LOOKUP} at once")
        return items

    def integer_list(self, name: str) -> list[int]:
        numbers = []
        for item in self.text_list(name):
            try:
                number = int(item)
            except ValueError:
                raise errors.invalid_parameter(name, f"{item!r} is not a number") from None
            if not 1 <= number <= MAX_STATUS_ID:
                raise errors.invalid_parameter(name, f"{item!r} is out of range")
            numbers.append(number)
        return numbers

    def cursor(self) -> int | None:
        """
        A ``cursor``: None (or -1) for the first page, else where to go on.
        """
        value = self.integer("cursor", minimum=-1, maximum=2**63 - 1)
        return None if value in (None, -1) else value

    def shape(self) -> Shape:
        return Shape(
            trim_user=self.boolean("trim_user"),
            extended=(self.text("tweet_mode") or "").lower() == "extended",
        )

    def count(self, default: int = 20, maximum: int = 200) -> int:
        """
        ``count``, clamped to 1..maximum as Twitter does.
        """
        value = self.integer("count", minimum=-(2**63), maximum=2**63)
        if value is None:
            return default
        return max(1, min(value, maximum))


def basic_credentials(request: Any) -> tuple[str, str] | None:
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


class TwitterAPI:
    """
    The Twitter REST API over a :class:`Microblog`.

    :param limiter: the rate limits (generous defaults if not given).
    """

    app = Klein()
    log = Logger()

    def __init__(
        self,
        microblog: Microblog,
        limiter: RateLimiter | None = None,
        public_url: str = "",
        oauth: Any = None,
    ) -> None:
        self.microblog = microblog
        #: The :class:`~distwit.api.oauth1.OAuthProvider`, if OAuth is on.
        self.oauth = oauth
        self.public_url = public_url.rstrip("/")
        self.limiter = limiter or RateLimiter(microblog.clock)
        self._endpoints = self._table()

    def resource(self) -> Any:
        return self.app.resource()

    def _table(self) -> list[Endpoint]:
        get, post = frozenset({"GET", "HEAD"}), frozenset({"POST"})
        both = frozenset({"GET", "HEAD", "POST"})
        rows: list[tuple[str, frozenset[str], str, Handler]] = [
            ("account/verify_credentials", get, REQUIRED, self.verify_credentials),
            ("account/update_profile", post, REQUIRED, self.update_profile),
            ("account/rate_limit_status", get, OPTIONAL, self.rate_limit_status),
            ("application/rate_limit_status", get, OPTIONAL, self.rate_limit_status),
            ("help/configuration", get, OPTIONAL, self.configuration),
            ("help/test", get, OPTIONAL, self.help_test),
            ("statuses/update", post, REQUIRED, self.update),
            ("statuses/home_timeline", get, REQUIRED, self.home_timeline),
            ("statuses/friends_timeline", get, REQUIRED, self.home_timeline),
            ("statuses/mentions_timeline", get, REQUIRED, self.mentions_timeline),
            ("statuses/mentions", get, REQUIRED, self.mentions_timeline),
            ("statuses/replies", get, REQUIRED, self.mentions_timeline),
            ("statuses/user_timeline", get, OPTIONAL, self.user_timeline),
            (r"statuses/user_timeline/(?P<id>[^/]+)", get, OPTIONAL, self.user_timeline),
            ("statuses/public_timeline", get, OPTIONAL, self.public_timeline),
            (r"statuses/show/(?P<id>[^/]+)", get, OPTIONAL, self.show),
            ("statuses/show", get, OPTIONAL, self.show),
            ("statuses/lookup", both, OPTIONAL, self.lookup_statuses),
            (r"statuses/destroy/(?P<id>[^/]+)", post, REQUIRED, self.destroy),
            ("statuses/destroy", post, REQUIRED, self.destroy),
            ("search/tweets", get, OPTIONAL, self.search_tweets),
            ("favorites/create", post, REQUIRED, self.favorite_create),
            (r"favorites/create/(?P<id>[^/]+)", post, REQUIRED, self.favorite_create),
            ("favorites/destroy", post, REQUIRED, self.favorite_destroy),
            (r"favorites/destroy/(?P<id>[^/]+)", post, REQUIRED, self.favorite_destroy),
            ("favorites/list", get, OPTIONAL, self.favorites_list),
            ("favorites", get, OPTIONAL, self.favorites_list),
            (r"favorites/(?P<screen_name>[^/]+)", get, OPTIONAL, self.favorites_list),
            ("users/show", get, OPTIONAL, self.users_show),
            (r"users/show/(?P<id>[^/]+)", get, OPTIONAL, self.users_show),
            ("users/lookup", both, OPTIONAL, self.users_lookup),
            ("users/search", get, OPTIONAL, self.users_search),
            ("friendships/create", post, REQUIRED, self.friendship_create),
            (r"friendships/create/(?P<id>[^/]+)", post, REQUIRED, self.friendship_create),
            ("friendships/destroy", post, REQUIRED, self.friendship_destroy),
            (r"friendships/destroy/(?P<id>[^/]+)", post, REQUIRED, self.friendship_destroy),
            ("friendships/show", get, OPTIONAL, self.friendship_show),
            ("friendships/exists", get, OPTIONAL, self.friendship_exists),
            ("friendships/lookup", both, REQUIRED, self.friendship_lookup),
            ("friends/ids", get, OPTIONAL, self.friend_ids),
            ("followers/ids", get, OPTIONAL, self.follower_ids),
            ("friends/list", get, OPTIONAL, self.friends_list),
            ("followers/list", get, OPTIONAL, self.followers_list),
        ]
        return [
            Endpoint(pattern.split("/(?P")[0], re.compile(pattern), methods, auth, handler)
            for pattern, methods, auth, handler in rows
        ]

    # Routing

    @app.route("/", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
    def root(self, request: Any) -> Any:
        return self.dispatch(request, "")

    @app.route("/<path:api_path>", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
    def dispatch(self, request: Any, api_path: str) -> Any:
        from twisted.internet.defer import ensureDeferred

        return ensureDeferred(self._dispatch(request, api_path))

    async def _dispatch(self, request: Any, api_path: str) -> bytes:
        try:
            match = _FORMAT.match(api_path)
            assert match is not None
            path, format = match.group("path"), (match.group("format") or "json").lower()
            request.distwit_format = format
            if format not in FORMATS:
                raise errors.page_not_found(f"there is no .{format}; use .json or .xml")
            method = request.method.decode("ascii", "replace")
            for endpoint_ in self._endpoints:
                found = endpoint_.pattern.fullmatch(path)
                if found is None:
                    continue
                if method not in endpoint_.methods:
                    needed = " or ".join(sorted(endpoint_.methods - {"HEAD"}))
                    raise errors.page_not_found(f"{path} needs {needed}")
                user = await self._signed_in(request, endpoint_)
                params = Params(request, found.groupdict())
                result = await endpoint_.handler(request, user, params)
                return self._render(request, endpoint_, format, result)
            raise errors.page_not_found()
        except TwitterError as e:
            return self._error(request, e)
        except RuleError as e:
            return self._error(request, errors.from_rule(e))
        except Exception:
            self.log.failure("API request {method} {path} failed",
                             method=request.method, path=request.path)
            return self._error(request, errors.internal_error())

    def _render(self, request: Any, endpoint: Endpoint, format: str, result: Any) -> bytes:
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
            b"application/atom+xml; charset=utf-8" if atom else b"application/rss+xml; charset=utf-8",
        )
        public_url = self.public_url or "http://localhost"
        title = f"{endpoint.name.replace('_', ' ')} on {public_url.split('//', 1)[-1]}"
        self_url = public_url + request.uri.decode("utf-8", "replace")
        return render_timeline_feed(title, self_url, public_url, result.posts, atom)

    def _error(self, request: Any, error: TwitterError) -> bytes:
        if error.status == 401:
            request.setHeader(b"www-authenticate", b'Basic realm="distwit"')
        if getattr(request, "distwit_format", "json") == "xml":
            request.setResponseCode(error.status)
            request.setHeader(b"content-type", b"application/xml; charset=utf-8")
            return error_xml(error.code, error.message, request.path.decode("latin-1"))
        return json_body(request, error.body(), error.status)

    @staticmethod
    def _caller(request: Any, user: Account | None) -> str:
        """
        Whose count a call is: the user's (by screen name, so that a call
        is counted the same before and after its password is checked), the
        app's (app-only bearer tokens), else the address's.
        """
        if user is not None:
            return f"user:{user.screen_name.lower()}"
        credentials = getattr(request, "distwit_credentials", None)
        if credentials is not None:
            return f"app:{credentials.app_id}"
        return f"address:{client_address(request)}"

    def _limit(self, request: Any, caller: str, endpoint: Endpoint) -> None:
        allowance = self.limiter.hit(caller, endpoint.name, endpoint.kind)
        for name, value in allowance.headers():
            request.setHeader(name, value)
        if not allowance.allowed:
            raise TwitterError(88, "Rate limit exceeded.", 429)

    async def _signed_in(self, request: Any, endpoint: Endpoint) -> Account | None:
        """
        The signed-in user (or ``None``), with the call counted against
        the caller's rate limit.

        An HTTP Basic call is counted against the handle it claims before
        its password is checked: past the limit, a guesser gets 429 and
        costs no password hashing.
        """
        if self.oauth is not None and self.oauth.carries_oauth(request):
            user = await self._oauth_user(request, endpoint.auth)
            self._limit(request, self._caller(request, user), endpoint)
            return user
        basic = basic_credentials(request)
        if basic is None:
            if endpoint.auth == REQUIRED:
                raise errors.missing_credentials()
            self._limit(request, self._caller(request, None), endpoint)
            return None
        handle, password = basic
        claimed = (
            f"user:{handle.lower()}" if is_valid_handle(handle)
            else f"address:{client_address(request)}"
        )
        self._limit(request, claimed, endpoint)
        user = await self.microblog.authenticate(handle, password, client_address(request))
        if user is None:
            raise errors.bad_credentials()
        return user

    async def _oauth_user(self, request: Any, need: str) -> Account | None:
        assert self.oauth is not None
        credentials = await self.oauth.authenticate(request)
        request.distwit_credentials = credentials
        if credentials.user is None and need == REQUIRED:
            raise TwitterError(
                220, "Your credentials do not allow access to this resource.", 403
            )
        return credentials.user  # type: ignore[no-any-return]

    # Help and account

    async def verify_credentials(self, request: Any, user: Any, params: Params) -> Any:
        # The signed-in account may come from the credential cache: show
        # its counts as they are now.
        return await self._user_with_status(await self.microblog.user_by_id(user.id), params)

    async def _user_with_status(self, account: Account, params: Params) -> dict[str, Any]:
        body = user_json(account)
        latest = await self.microblog.timelines.latest_post(account.id)
        if latest is not None:
            body["status"] = status_json(latest, include_user=False, shape=params.shape())
        return body

    async def update_profile(self, request: Any, user: Any, params: Params) -> Any:
        account = await self.microblog.update_profile(
            user,
            name=params.text("name"),
            description=params.text("description"),
            location=params.text("location"),
            url=params.text("url"),
        )
        return await self._user_with_status(account, params)

    async def rate_limit_status(self, request: Any, user: Any, params: Params) -> Any:
        caller = self._caller(request, user)
        resources: dict[str, dict[str, Any]] = {}
        wanted = set(params.text_list("resources"))
        for endpoint_ in self._endpoints:
            section = endpoint_.name.split("/", 1)[0]
            if wanted and section not in wanted:
                continue
            allowance = self.limiter.peek(caller, endpoint_.name, endpoint_.kind)
            resources.setdefault(section, {})["/" + endpoint_.name] = {
                "limit": allowance.limit,
                "remaining": allowance.remaining,
                "reset": allowance.reset,
            }
        return {"rate_limit_context": {"access_token": caller}, "resources": resources}

    async def configuration(self, request: Any, user: Any, params: Params) -> Any:
        return {
            "characters_reserved_per_media": 0,
            "dm_text_character_limit": 0,
            "max_media_per_upload": 0,
            "photo_size_limit": 0,
            "photo_sizes": {},
            "short_url_length": 0,
            "short_url_length_https": 0,
            "non_username_paths": sorted(RESERVED_HANDLES),
        }

    async def help_test(self, request: Any, user: Any, params: Params) -> Any:
        return "ok"

    # Statuses

    async def update(self, request: Any, user: Any, params: Params) -> Any:
        text = params.text("status")
        if text is None:
            raise errors.missing_parameter("status")
        post = await self.microblog.post(
            user,
            text,
            source=params.text("source") or "web",
            in_reply_to_status_id=params.status_id("in_reply_to_status_id"),
        )
        return status_json(post, shape=params.shape())

    async def _shape(self, user: Account | None, params: Params, posts: list[Any]) -> Shape:
        """
        How to show ``posts`` to ``user``: the client's choices, and which
        of them the reader favorited.
        """
        shape = params.shape()
        if user is None or not posts:
            return shape
        favorited = await self.microblog.timelines.favorited_among(user.id, [p.id for p in posts])
        return replace(shape, favorited=frozenset(favorited))

    async def _status(self, user: Account | None, params: Params, post: Any) -> dict[str, Any]:
        return status_json(post, shape=await self._shape(user, params, [post]))

    async def _statuses(
        self, user: Account | None, posts: list[Any], params: Params
    ) -> "StatusList":
        shape = await self._shape(user, params, posts)
        return StatusList(posts, [status_json(post, shape=shape) for post in posts])

    async def _timeline_args(self, params: Params) -> tuple[int, int | None, int | None]:
        return params.count(), params.status_id("since_id"), params.status_id("max_id")

    async def home_timeline(self, request: Any, user: Any, params: Params) -> Any:
        count, since_id, max_id = await self._timeline_args(params)
        posts = await self.microblog.timelines.home_timeline(user.id, count, since_id, max_id)
        return await self._statuses(user, posts, params)

    async def mentions_timeline(self, request: Any, user: Any, params: Params) -> Any:
        count, since_id, max_id = await self._timeline_args(params)
        posts = await self.microblog.timelines.mentions_timeline(user.id, count, since_id, max_id)
        return await self._statuses(user, posts, params)

    async def _named_user(self, params: Params, resolve: bool = False) -> Account | None:
        user_id = params.integer("user_id", minimum=1)
        if user_id is not None:
            return await self.microblog.user_by_id(user_id)
        screen_name = params.text("screen_name") or params.text("id")
        if screen_name:
            if resolve:
                return await self.microblog.resolve(screen_name)
            return await self.microblog.user(screen_name)
        return None

    async def _named_or_self(
        self, params: Params, user: Account | None, unknown: TwitterError
    ) -> Account:
        """
        The user named by ``user_id`` or ``screen_name`` (or ``id``), else
        the signed-in ``user``.

        :param unknown: the error to answer when the name matches nobody.
        :raises TwitterError: ``unknown``; or 170 when there is neither a
            name nor a signed-in user.
        """
        try:
            account = await self._named_user(params)
        except RuleError:
            raise unknown from None
        if account is not None:
            return account
        if user is None:
            raise errors.missing_parameter("screen_name or user_id")
        return user

    async def user_timeline(self, request: Any, user: Any, params: Params) -> Any:
        author = await self._named_or_self(params, user, errors.page_not_found("no such user"))
        count, since_id, max_id = await self._timeline_args(params)
        posts = await self.microblog.timelines.user_timeline(author.id, count, since_id, max_id)
        return await self._statuses(user, posts, params)

    async def public_timeline(self, request: Any, user: Any, params: Params) -> Any:
        count, since_id, max_id = await self._timeline_args(params)
        posts = await self.microblog.timelines.public_timeline(count, since_id, max_id)
        return await self._statuses(user, posts, params)

    def _required_id(self, params: Params) -> int:
        post_id = params.status_id("id")
        if post_id is None:
            raise errors.missing_parameter("id")
        return post_id

    async def show(self, request: Any, user: Any, params: Params) -> Any:
        post = await self.microblog.status(self._required_id(params))
        return await self._status(user, params, post)

    async def lookup_statuses(self, request: Any, user: Any, params: Params) -> Any:
        ids = params.integer_list("id")
        if not ids:
            raise errors.missing_parameter("id")
        posts = {}
        for post_id in ids:
            post = await self.microblog.timelines.post(post_id)
            if post is not None and not post.deleted:
                posts[post_id] = post
        shape = await self._shape(user, params, list(posts.values()))
        found = {post_id: status_json(post, shape=shape) for post_id, post in posts.items()}
        if params.boolean("map"):
            return {"id": {str(post_id): found.get(post_id) for post_id in ids}}
        return [found[post_id] for post_id in ids if post_id in found]

    async def destroy(self, request: Any, user: Any, params: Params) -> Any:
        post = await self.microblog.delete(user, self._required_id(params))
        return status_json(post, shape=params.shape())

    async def search_tweets(self, request: Any, user: Any, params: Params) -> Any:
        query = (params.text("q") or "").strip()
        if not query:
            raise errors.missing_parameter("q")
        if len(query) > 500:
            raise errors.invalid_parameter("q", "at most 500 characters")
        count = params.count(default=15, maximum=100)
        since_id, max_id = params.status_id("since_id"), params.status_id("max_id")
        posts = await self.microblog.timelines.search_posts(query, count, since_id, max_id)
        statuses = await self._statuses(user, posts, params)
        metadata: dict[str, Any] = {
            "completed_in": 0.0,
            "max_id": posts[0].id if posts else (max_id or 0),
            "max_id_str": str(posts[0].id if posts else (max_id or 0)),
            "query": quote_plus(query),
            "count": count,
            "since_id": since_id or 0,
            "since_id_str": str(since_id or 0),
            "refresh_url": f"?since_id={posts[0].id if posts else since_id or 0}"
            f"&q={quote_plus(query)}",
        }
        if len(posts) == count:
            metadata["next_results"] = (
                f"?max_id={posts[-1].id - 1}&q={quote_plus(query)}&count={count}"
            )
        return {"statuses": statuses, "search_metadata": metadata}

    # Favorites

    async def favorite_create(self, request: Any, user: Any, params: Params) -> Any:
        post = await self.microblog.favorite(user, self._required_id(params))
        return await self._status(user, params, post)

    async def favorite_destroy(self, request: Any, user: Any, params: Params) -> Any:
        post = await self.microblog.unfavorite(user, self._required_id(params))
        return await self._status(user, params, post)

    async def favorites_list(self, request: Any, user: Any, params: Params) -> Any:
        account = await self._named_or_self(params, user, errors.user_not_found())
        count, since_id, max_id = await self._timeline_args(params)
        posts = await self.microblog.timelines.favorites_timeline(account.id, count, since_id, max_id)
        return await self._statuses(user, posts, params)

    # Users

    async def users_show(self, request: Any, user: Any, params: Params) -> Any:
        try:
            account = await self._named_user(params, resolve=True)
        except RuleError:
            raise errors.user_not_found() from None
        if account is None:
            raise errors.missing_parameter("screen_name or user_id")
        return await self._user_with_status(account, params)

    async def _looked_up(self, params: Params) -> list[Account]:
        names, ids = params.text_list("screen_name"), params.integer_list("user_id")
        if not names and not ids:
            raise errors.missing_parameter("screen_name or user_id")
        if len(names) + len(ids) > MAX_LOOKUP:
            raise errors.invalid_parameter("screen_name", f"at most {MAX_LOOKUP} users at once")
        found: dict[int, Account] = {}
        for account_id in ids:
            account = await self.microblog.timelines.account(account_id)
            if account is not None:
                found.setdefault(account.id, account)
        for name in names:
            try:
                account = await self.microblog.user(name)
            except RuleError:
                continue
            found.setdefault(account.id, account)
        return list(found.values())

    async def users_lookup(self, request: Any, user: Any, params: Params) -> Any:
        accounts = await self._looked_up(params)
        if not accounts:
            raise TwitterError(17, "No user matches for specified terms.", 404)
        return [await self._user_with_status(account, params) for account in accounts]

    async def users_search(self, request: Any, user: Any, params: Params) -> Any:
        query = (params.text("q") or "").strip()
        if not query:
            raise errors.missing_parameter("q")
        count = params.count(default=20, maximum=20)
        page = params.integer("page", minimum=1, maximum=1000) or 1
        accounts = await self.microblog.timelines.search_accounts(query, count, (page - 1) * count)
        return [await self._user_with_status(account, params) for account in accounts]

    # Friendships

    async def _friendship_target(self, params: Params) -> Account:
        target = await self._named_user(params, resolve=True)
        if target is None:
            raise errors.missing_parameter("screen_name or user_id")
        return target

    async def friendship_create(self, request: Any, user: Any, params: Params) -> Any:
        target = await self._friendship_target(params)
        return user_json(await self.microblog.follow(user, target))

    async def friendship_destroy(self, request: Any, user: Any, params: Params) -> Any:
        target = await self._friendship_target(params)
        return user_json(await self.microblog.unfollow(user, target))

    async def _one_user(
        self, params: Params, id_name: str, name_name: str, default: Account | None = None
    ) -> Account:
        user_id = params.integer(id_name, minimum=1)
        name = params.text(name_name)
        try:
            if user_id is not None:
                return await self.microblog.user_by_id(user_id)
            if name:
                return await self.microblog.user(name)
        except RuleError:
            raise errors.user_not_found() from None
        if default is not None:
            return default
        raise errors.missing_parameter(f"{id_name} or {name_name}")

    async def friendship_show(self, request: Any, user: Any, params: Params) -> Any:
        source = await self._one_user(params, "source_id", "source_screen_name", user)
        target = await self._one_user(params, "target_id", "target_screen_name")
        timelines = self.microblog.timelines
        following = await timelines.is_following(source.id, target.id)
        followed_by = await timelines.is_following(target.id, source.id)

        def side(me: Account, other_follows: bool, follows: bool) -> dict[str, Any]:
            return {
                "id": me.id,
                "id_str": str(me.id),
                "screen_name": me.screen_name,
                "following": follows,
                "followed_by": other_follows,
            }

        source_side = side(source, followed_by, following)
        source_side.update(
            can_dm=False, blocking=False, muting=False, marked_spam=False,
            notifications_enabled=False, want_retweets=False, all_replies=False,
            following_received=False, following_requested=False,
        )
        target_side = side(target, following, followed_by)
        target_side.update(following_received=False, following_requested=False)
        return {"relationship": {"source": source_side, "target": target_side}}

    async def friendship_exists(self, request: Any, user: Any, params: Params) -> Any:
        a = await self._one_user(params, "user_id_a", "user_a")
        b = await self._one_user(params, "user_id_b", "user_b")
        return await self.microblog.timelines.is_following(a.id, b.id)

    async def friendship_lookup(self, request: Any, user: Any, params: Params) -> Any:
        answer = []
        for account in await self._looked_up(params):
            connections = []
            if await self.microblog.timelines.is_following(user.id, account.id):
                connections.append("following")
            if await self.microblog.timelines.is_following(account.id, user.id):
                connections.append("followed_by")
            answer.append({
                "name": account.name or account.handle,
                "screen_name": account.screen_name,
                "id": account.id,
                "id_str": str(account.id),
                "connections": connections or ["none"],
            })
        return answer

    async def _page(
        self, user: Any, params: Params, followers: bool, default: int, maximum: int
    ) -> tuple[list[Account], dict[str, Any]]:
        account = await self._named_or_self(params, user, errors.user_not_found())
        count = params.count(default=default, maximum=maximum)
        before = params.cursor()
        if before == 0:
            accounts: list[Account] = []
        else:
            accounts = await self.microblog.timelines.following_page(
                account.id, followers, before, count + 1
            )
        more = len(accounts) > count
        accounts = accounts[:count]
        next_cursor = accounts[-1].id if more else 0
        cursors = {
            "next_cursor": next_cursor,
            "next_cursor_str": str(next_cursor),
            "previous_cursor": 0,
            "previous_cursor_str": "0",
        }
        return accounts, cursors

    async def _ids(self, user: Any, params: Params, followers: bool) -> Any:
        accounts, cursors = await self._page(user, params, followers, 5000, 5000)
        ids: list[Any] = [account.id for account in accounts]
        if params.boolean("stringify_ids"):
            ids = [str(account_id) for account_id in ids]
        return {"ids": ids, **cursors}

    async def friend_ids(self, request: Any, user: Any, params: Params) -> Any:
        return await self._ids(user, params, followers=False)

    async def follower_ids(self, request: Any, user: Any, params: Params) -> Any:
        return await self._ids(user, params, followers=True)

    async def _list(self, user: Any, params: Params, followers: bool) -> Any:
        accounts, cursors = await self._page(user, params, followers, 20, 200)
        users = []
        for account in accounts:
            if params.boolean("skip_status"):
                users.append(user_json(account))
            else:
                users.append(await self._user_with_status(account, params))
        return {"users": users, **cursors}

    async def friends_list(self, request: Any, user: Any, params: Params) -> Any:
        return await self._list(user, params, followers=False)

    async def followers_list(self, request: Any, user: Any, params: Params) -> Any:
        return await self._list(user, params, followers=True)
