"""
Where the ping exchange is answered: the ping role's HTTP routes.

``GET /lookup?acct=handle@authority``
    Public.  ``{"acct", "last", "home", "updated"}`` or 404.

``POST /exchange?wait=N``
    Signed by a twitter server.  The body::

        {"server": "<caller public URL>",     # must be the signer
         "cursor": 12 | null,                 # from the previous answer
         "epoch": "..." | null,               # from the previous answer
         "reports": {"alice@s1.example": 201},# own users only
         "home": "<caller public URL>",       # where those users live
         "subscribe": ["carol@s3.example"],
         "unsubscribe": [],
         "reset": false}                      # true: subscribe is the whole list

    Every field but ``server`` may be left out; ``home`` defaults to the
    signer's URL.  Reports go in first, then ``unsubscribe``, then
    ``subscribe`` (or, with ``reset``, the replacement of the whole list).
    Nothing is applied unless the whole request is acceptable.  The answer::

        {"epoch": "...", "cursor": 13,
         "changes": {"carol@s3.example": {"last": 76, "home": "https://s3.example"}}}

    ``changes`` holds what changed among the caller's subscriptions since
    ``cursor``; sending the returned cursor next time acknowledges them,
    sending the old one again gets them again.  A cursor of another epoch
    counts as none: the answer holds every known acct the caller follows.
    With ``wait=N`` and nothing to say, the answer waits up to N seconds
    (at most ``max_wait``) for a change.

Errors are JSON ``{"error": "..."}``: 400 malformed, 401 unsigned or
badly signed, 403 signed but speaking for another server or authority,
413 too big.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn, cast

from klein import Klein
from twisted.internet.defer import CancelledError
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web import http
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource

from distwit.http import HTTPError, json_body, json_object, read_body, verified_signer
from distwit.ping.directory import authority_of_acct, normalize_acct
from distwit.ping.interfaces import IDirectory
from distwit.s2s import paths
from distwit.s2s.interfaces import IRequestVerifier
from distwit.urls import authority_of_http_url

#: The largest exchange body accepted, in bytes.
MAX_BODY = 1024 * 1024

#: The most accts in one list (reports, subscribe or unsubscribe).
MAX_ITEMS = 100_000

#: Message numbers and cursors fit in a signed 64-bit integer.
MAX_NUMBER = 2**63 - 1


def bad_request(message: str) -> HTTPError:
    return HTTPError(400, message)


@dataclass
class Exchange:
    """
    A checked exchange request, accts normalised.
    """

    server: str
    cursor: int | None = None
    epoch: str | None = None
    reports: dict[str, int] = field(default_factory=dict)
    home: str | None = None
    subscribe: list[str] = field(default_factory=list)
    unsubscribe: list[str] = field(default_factory=list)
    reset: bool = False


def _number(name: str, value: Any) -> int:
    # bool is an int to Python, not to JSON.
    if type(value) is not int:
        raise bad_request(f"{name} must be an integer")
    if not 0 <= value <= MAX_NUMBER:
        raise bad_request(f"{name} must be between 0 and {MAX_NUMBER}")
    return value


def _acct(name: str, value: Any) -> str:
    try:
        return normalize_acct(value)
    except ValueError as e:
        raise bad_request(f"{name}: {e}") from None


def _acct_list(name: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"{name} must be a list of accts")
    if len(value) > MAX_ITEMS:
        raise bad_request(f"{name} has {len(value)} accts; at most {MAX_ITEMS} per exchange")
    return [_acct(name, item) for item in value]


def parse_exchange(body: bytes) -> Exchange:
    """
    Check and decode an exchange body.

    :raises HTTPError: 400, with a message that says what is wrong.
    """
    value = json_object(body)
    server = value.get("server")
    if not isinstance(server, str) or not server:
        raise bad_request("server must be the caller's public URL")
    exchange = Exchange(server=server.rstrip("/"))

    if value.get("cursor") is not None:
        exchange.cursor = _number("cursor", value["cursor"])
    epoch = value.get("epoch")
    if epoch is not None and not isinstance(epoch, str):
        raise bad_request("epoch must be a string or null")
    exchange.epoch = epoch

    reports = value.get("reports")
    if reports is not None:
        if not isinstance(reports, dict):
            raise bad_request("reports must be an object of acct: last number")
        if len(reports) > MAX_ITEMS:
            raise bad_request(
                f"reports has {len(reports)} accts; at most {MAX_ITEMS} per exchange"
            )
        for acct, last in reports.items():
            exchange.reports[_acct("reports", acct)] = _number(f"reports[{acct!r}]", last)

    home = value.get("home")
    if home is not None:
        if not isinstance(home, str):
            raise bad_request("home must be the public URL of the reported users' server")
        try:
            authority_of_http_url(home)
        except ValueError as e:
            raise bad_request(f"home: {e}") from None
        exchange.home = home.rstrip("/")

    exchange.subscribe = _acct_list("subscribe", value.get("subscribe"))
    exchange.unsubscribe = _acct_list("unsubscribe", value.get("unsubscribe"))
    reset = value.get("reset", False)
    if not isinstance(reset, bool):
        raise bad_request("reset must be true or false")
    exchange.reset = reset
    return exchange


class PingResource:
    """
    The ping role's routes over an :class:`IDirectory`.

    :param verifier: checks the signature of every exchange.
    :param clock: the injected clock (the directory times the long-polls
        with its own; this one is for limits of the routes themselves).
    :param max_wait: the longest long-poll, in seconds.
    """

    app = Klein()
    log = Logger()

    def __init__(
        self,
        directory: IDirectory,
        verifier: IRequestVerifier,
        clock: IReactorTime,
        max_wait: float = 60,
    ) -> None:
        self.directory = directory
        self.verifier = verifier
        self.clock = clock
        self.max_wait = max_wait

    def resource(self) -> IResource:
        return self.app.resource()  # type: ignore[no-any-return]

    def _error(self, request: IRequest, error: HTTPError) -> bytes:
        return json_body(request, {"error": error.message}, error.code)

    # Lookup

    @app.route(paths.PING_LOOKUP, methods=["GET", "HEAD"])
    def lookup(self, request: IRequest) -> bytes:
        try:
            values = request.args.get(b"acct")
            if not values:
                raise bad_request("acct is missing: /lookup?acct=handle@authority")
            try:
                text = values[0].decode("utf-8")
            except UnicodeDecodeError:
                raise bad_request("acct is not UTF-8") from None
            acct = _acct("acct", text)
            found = self.directory.lookup(acct)
            if found is None:
                raise HTTPError(404, f"no server reported {acct}")
        except HTTPError as e:
            return self._error(request, e)
        last, home, updated = found
        return json_body(request, {"acct": acct, "last": last, "home": home, "updated": updated})

    # Exchange

    @app.route(paths.PING_EXCHANGE, methods=["POST"])
    async def exchange(self, request: IRequest) -> bytes | None:
        try:
            return await self._answer(request)
        except HTTPError as e:
            return self._error(request, e)
        except CancelledError:
            # The caller went away during a long-poll; nobody to answer.
            return None
        except Exception:
            self.log.failure("ping exchange failed")
            return self._error(request, HTTPError(500, "internal error"))

    def _wait(self, request: IRequest) -> float:
        values = request.args.get(b"wait")
        if not values:
            return 0.0
        try:
            wait = float(values[0].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise bad_request("wait must be a number of seconds") from None
        if not 0 <= wait < float("inf"):
            raise bad_request("wait must be a number of seconds, 0 or more")
        return min(wait, self.max_wait)

    async def _answer(self, request: IRequest) -> bytes:
        body = read_body(request, MAX_BODY)
        signer = await verified_signer(request, body, self.verifier, self.log, "an exchange")
        wait = self._wait(request)
        exchange = parse_exchange(body)
        self._check_authority(signer, exchange)

        # Everything is checked: apply.
        directory = self.directory
        server = exchange.server
        if exchange.reports:
            home = exchange.home or signer
            directory.report(
                server, {acct: (last, home) for acct, last in exchange.reports.items()}
            )
        if exchange.unsubscribe:
            directory.unsubscribe(server, exchange.unsubscribe)
        if exchange.reset:
            directory.reset_subscriptions(server, exchange.subscribe)
        elif exchange.subscribe:
            directory.subscribe(server, exchange.subscribe)

        cursor = exchange.cursor if exchange.epoch == directory.epoch else None
        new_cursor, changes = directory.changes_since(server, cursor)
        if not changes and wait > 0:
            waiting = directory.wait_for_change(server, wait)
            # IRequest leaves out notifyFinish; the twisted.web Request
            # that Klein hands us has it.
            finished = cast(http.Request, request).notifyFinish()
            finished.addErrback(lambda _: waiting.cancel())
            await waiting
            new_cursor, changes = directory.changes_since(server, cursor)
        return json_body(
            request,
            {
                "epoch": directory.epoch,
                "cursor": new_cursor,
                "changes": {
                    acct: {"last": last, "home": home}
                    for acct, (last, home) in changes.items()
                },
            },
        )

    def _check_authority(self, signer: str, exchange: Exchange) -> None:
        """
        A server speaks only for itself and its own users.

        :raises HTTPError: 403, before anything of the request is applied.
        """
        if exchange.server != signer:
            self._forbidden(
                signer, f"server is {exchange.server} but the request is signed by {signer}"
            )
        try:
            authority = authority_of_http_url(signer)
        except ValueError:
            self._forbidden(signer, f"the signer {signer} has no http(s) authority")
        if exchange.home is not None and authority_of_http_url(exchange.home) != authority:
            self._forbidden(
                signer,
                f"home {exchange.home} is not at {authority}: it speaks for another authority",
            )
        for acct in exchange.reports:
            if authority_of_acct(acct) != authority:
                self._forbidden(
                    signer,
                    f"{signer} may report accts @{authority} only: "
                    f"{acct} speaks for another authority",
                )

    def _forbidden(self, signer: str, message: str) -> NoReturn:
        self.log.warn(
            "refused an exchange signed by {signer}: {reason}", signer=signer, reason=message
        )
        raise HTTPError(403, message)
