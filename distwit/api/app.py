"""
The Twitter API app: one Klein route that dispatches on the endpoint path.

The same :class:`TwitterAPI` resource is mounted at ``/1.1/``, ``/api/``
and at the root for the unversioned 2008 paths, so every endpoint exists
under all three.  Endpoints are listed once, in :meth:`TwitterAPI._table`.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from klein import Klein
from twisted.logger import Logger

from distwit.api import errors
from distwit.api.errors import TwitterError
from distwit.api.render import status_json, user_json
from distwit.http import json_body
from distwit.model import Account
from distwit.store.sql import MAX_STATUS_ID
from distwit.twitter.core import Microblog, RuleError

#: Splits ``statuses/show/20.json`` into path and format.
_FORMAT = re.compile(r"\A(?P<path>.*?)(?:\.(?P<format>[A-Za-z0-9]+))?\Z")

#: The first path segments of the unversioned 2008 API, served at the root.
API_SECTIONS = frozenset({"account", "friendships", "statuses"})

Handler = Callable[[Any, "Account | None", "Params"], Awaitable[Any]]

#: Whether an endpoint needs a signed-in user.
REQUIRED, OPTIONAL = "required", "optional"


@dataclass(frozen=True)
class Endpoint:
    pattern: re.Pattern[str]
    methods: frozenset[str]
    auth: str
    handler: Handler


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

    def count(self, default: int = 20, maximum: int = 200) -> int:
        """
        ``count``, clamped to 1..maximum as Twitter does.
        """
        value = self.integer("count", minimum=-(2**63), maximum=2**63)
        if value is None:
            return default
        return max(1, min(value, maximum))


class TwitterAPI:
    """
    The Twitter REST API over a :class:`Microblog`.
    """

    app = Klein()
    log = Logger()

    def __init__(self, microblog: Microblog) -> None:
        self.microblog = microblog
        self._endpoints = self._table()

    def resource(self) -> Any:
        return self.app.resource()

    def _table(self) -> list[Endpoint]:
        get, post = frozenset({"GET", "HEAD"}), frozenset({"POST"})
        rows: list[tuple[str, frozenset[str], str, Handler]] = [
            ("account/verify_credentials", get, REQUIRED, self.verify_credentials),
            ("statuses/update", post, REQUIRED, self.update),
            ("statuses/home_timeline", get, REQUIRED, self.home_timeline),
            ("statuses/friends_timeline", get, REQUIRED, self.home_timeline),
            ("statuses/user_timeline", get, OPTIONAL, self.user_timeline),
            (r"statuses/user_timeline/(?P<id>[^/]+)", get, OPTIONAL, self.user_timeline),
            ("statuses/public_timeline", get, OPTIONAL, self.public_timeline),
            (r"statuses/show/(?P<id>[^/]+)", get, OPTIONAL, self.show),
            ("statuses/show", get, OPTIONAL, self.show),
            (r"statuses/destroy/(?P<id>[^/]+)", post, REQUIRED, self.destroy),
            ("statuses/destroy", post, REQUIRED, self.destroy),
            ("friendships/create", post, REQUIRED, self.friendship_create),
            ("friendships/destroy", post, REQUIRED, self.friendship_destroy),
        ]
        return [
            Endpoint(re.compile(pattern), methods, auth, handler)
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
            path, format = match.group("path"), match.group("format")
            if format not in (None, "json"):
                raise errors.page_not_found(f"{path} is served as .json only for now")
            method = request.method.decode("ascii", "replace")
            for endpoint_ in self._endpoints:
                found = endpoint_.pattern.fullmatch(path)
                if found is None:
                    continue
                if method not in endpoint_.methods:
                    needed = " or ".join(sorted(endpoint_.methods - {"HEAD"}))
                    raise errors.page_not_found(f"{path} needs {needed}")
                user = await self._authenticate(request, endpoint_.auth)
                params = Params(request, found.groupdict())
                result = await endpoint_.handler(request, user, params)
                return json_body(request, result)
            raise errors.page_not_found()
        except TwitterError as e:
            return self._error(request, e)
        except RuleError as e:
            return self._error(request, errors.from_rule(e))
        except Exception:
            self.log.failure("API request {method} {path} failed",
                             method=request.method, path=request.path)
            return self._error(request, errors.internal_error())

    def _error(self, request: Any, error: TwitterError) -> bytes:
        if error.status == 401:
            request.setHeader(b"www-authenticate", b'Basic realm="distwit"')
        return json_body(request, error.body(), error.status)

    async def _authenticate(self, request: Any, need: str) -> Account | None:
        header = request.getHeader(b"authorization")
        if header is None:
            if need == REQUIRED:
                raise errors.missing_credentials()
            return None
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            raise TwitterError(
                32, "Could not authenticate you: use HTTP Basic authentication.", 401
            )
        try:
            decoded = binascii.a2b_base64(encoded.strip()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise errors.bad_credentials() from None
        handle, sep, password = decoded.partition(":")
        if not sep:
            raise errors.bad_credentials()
        user = await self.microblog.authenticate(handle, password)
        if user is None:
            raise errors.bad_credentials()
        return user

    # Endpoints

    async def verify_credentials(self, request: Any, user: Any, params: Params) -> Any:
        body = user_json(user)
        latest = await self.microblog.store.latest_post(user.id)
        if latest is not None:
            body["status"] = status_json(latest, include_user=False)
        return body

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
        return status_json(post)

    async def _timeline_args(self, params: Params) -> tuple[int, int | None, int | None]:
        return params.count(), params.status_id("since_id"), params.status_id("max_id")

    async def home_timeline(self, request: Any, user: Any, params: Params) -> Any:
        count, since_id, max_id = await self._timeline_args(params)
        posts = await self.microblog.store.home_timeline(user.id, count, since_id, max_id)
        return [status_json(p) for p in posts]

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

    async def user_timeline(self, request: Any, user: Any, params: Params) -> Any:
        try:
            author = await self._named_user(params)
        except RuleError:
            raise errors.page_not_found("no such user") from None
        if author is None:
            if user is None:
                raise errors.missing_parameter("screen_name or user_id")
            author = user
        count, since_id, max_id = await self._timeline_args(params)
        posts = await self.microblog.store.user_timeline(author.id, count, since_id, max_id)
        return [status_json(p) for p in posts]

    async def public_timeline(self, request: Any, user: Any, params: Params) -> Any:
        count, since_id, max_id = await self._timeline_args(params)
        posts = await self.microblog.store.public_timeline(count, since_id, max_id)
        return [status_json(p) for p in posts]

    def _required_id(self, params: Params) -> int:
        post_id = params.status_id("id")
        if post_id is None:
            raise errors.missing_parameter("id")
        return post_id

    async def show(self, request: Any, user: Any, params: Params) -> Any:
        post = await self.microblog.status(self._required_id(params))
        return status_json(post)

    async def destroy(self, request: Any, user: Any, params: Params) -> Any:
        post = await self.microblog.delete(user, self._required_id(params))
        return status_json(post)

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
