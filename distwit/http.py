"""
Shared HTTP pieces: JSON answers and request bodies, the ``/health``
resource, the root that puts the roles of one process behind one port, and
the site that keeps strangers within limits (:class:`LimitedSite`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import time
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, _escape, _GenericHTTPChannelProtocol
from twisted.web.http import _XForwardedForAddress
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from distwit import __version__
from distwit.s2s.interfaces import ForbiddenAuthority, IRequestVerifier, SignatureError

_log = Logger()
#: The addresses whose host an access line shows (as Twisted's).
_LOGGED_ADDRESSES = (IPv4Address, IPv6Address, _XForwardedForAddress)
#: The access log: one event per HTTP request (:meth:`LimitedSite.log`).
_ACCESS_NAMESPACE = "distwit.access"
_access = Logger(namespace=_ACCESS_NAMESPACE)


class HTTPError(Exception):
    """
    A request refused with ``code`` and a JSON ``{"error": message}``.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def client_address(request: IRequest) -> str:
    """
    The address a request came from (its host), or ``""`` if unknown.
    """
    return str(getattr(request.getClientAddress(), "host", "") or "")


def read_body(request: IRequest, limit: int) -> bytes:
    """
    The request body, at most ``limit`` bytes.

    :raises HTTPError: 413 when it is bigger.
    """
    length = request.getHeader(b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPError(413, f"the body is over {limit} bytes")
    request.content.seek(0)
    body: bytes = request.content.read(limit + 1)
    if len(body) > limit:
        raise HTTPError(413, f"the body is over {limit} bytes")
    return body


async def verified_signer(
    request: IRequest, body: bytes, verifier: IRequestVerifier, log: Logger, what: str
) -> str:
    """
    The public URL (no trailing slash) of the server that signed
    ``request`` and ``body``.

    :param what: what the request is (``"an exchange"``), for the log.
    :raises HTTPError: 401 when the signature is missing or bad (logged
        on ``log``); 403 when the signer may not speak for its authority.
    """
    try:
        signer: str = await verifier.verify(request, body)
    except SignatureError as e:
        log.warn(
            "refused {what} from {client}: {reason}",
            what=what,
            client=str(request.getClientAddress()),
            reason=str(e),
        )
        raise HTTPError(401, str(e)) from None
    except ForbiddenAuthority as e:
        raise HTTPError(403, str(e)) from None
    return signer.rstrip("/")


#: A \\u escape of a UTF-16 surrogate, in a JSON body.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def json_object(body: bytes, shape: str = "") -> dict[str, Any]:
    """
    Decode a request body that must be a JSON object, strictly: UTF-8, no
    ``NaN`` or ``Infinity`` (Python's extensions to JSON), and no lone
    surrogate escapes (``"\\ud800"`` is JSON but no text: it could be
    neither logged nor answered).

    :param shape: how the object looks (``{"public_url", "public_key"}``),
        for the error message.
    :raises HTTPError: 400, with a message that says what is wrong.
    """

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(body.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise HTTPError(400, f"the body is not UTF-8 JSON: {e}") from None
    if _SURROGATE_ESCAPE.search(body) is not None:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise HTTPError(400, "the body is not UTF-8 JSON: a lone surrogate") from None
    if not isinstance(value, dict):
        raise HTTPError(400, f"the body must be a JSON object {shape}".rstrip())
    return value


def json_body(request: IRequest, value: Any, code: int = 200) -> bytes:
    """
    Encode ``value`` as the UTF-8 JSON response to ``request``.
    """
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (valid in JSON text, not in UTF-8), say echoed
        # from a request: as \u escapes, which JSON allows.
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def conditional(request: IRequest, document: bytes, modified_ms: int,
                cache_control: bytes | None = None) -> bytes:
    """
    Answer ``document`` with its ``ETag`` and ``Last-Modified`` (and
    ``cache_control`` as ``Cache-Control``, for the caches between: see
    docs/design/fan-out.md); or 304 and no body to a reader whose
    ``If-None-Match`` names the ETag, or, sending no ``If-None-Match``,
    whose ``If-Modified-Since`` is not before ``modified_ms`` (RFC 9110
    section 13.2.2: the ETag decides when both are sent).

    The ETag is a digest of the document, so it changes with anything in
    it (a deletion, a new name), which the newest post's time does not.
    """
    etag = '"' + hashlib.sha256(document).hexdigest()[:32] + '"'
    modified = datetime.fromtimestamp(modified_ms // 1000, tz=timezone.utc)
    request.setHeader(b"etag", etag.encode("ascii"))
    request.setHeader(b"last-modified", format_datetime(modified, usegmt=True).encode("ascii"))
    if cache_control is not None:
        request.setHeader(b"cache-control", cache_control)
    fresh = False
    match = request.getHeader(b"if-none-match")
    if match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in match.decode("latin-1").split(",")}
        fresh = etag in tags or "*" in tags
    else:
        since = request.getHeader(b"if-modified-since")
        if since is not None:
            try:
                fresh = modified <= parsedate_to_datetime(since.decode("latin-1"))
            except (TypeError, ValueError, IndexError):
                fresh = False  # not a date: as if not sent
    if fresh:
        request.setResponseCode(304)
        return b""
    return document


class Health(Resource):
    """
    ``GET /health``: 200 with the role(s) and version, for monitors and
    load balancers.
    """

    isLeaf = True

    def __init__(self, role: str, roles: list[str]) -> None:
        super().__init__()
        self._body = {"status": "ok", "role": role, "roles": roles, "version": __version__}

    def render_GET(self, request: IRequest) -> bytes:
        return json_body(request, self._body)

    render_HEAD = render_GET


class Root(Resource):
    """
    Named children first (``health``, and in ``--role=all`` the ``ping`` and
    ``registry`` roles), everything else to ``fallback`` with the path
    untouched.
    """

    def __init__(self, fallback: IResource | None) -> None:
        super().__init__()
        self._fallback = fallback

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        if self._fallback is None:
            return super().getChild(path, request)  # a 404 page
        # Give the whole path back to the fallback, as if it were the root.
        request.postpath.insert(0, request.prepath.pop())
        return self._fallback


# -- The limits of the site: how long a request may take to arrive, how big
# its body may be, how many connections may be open.

#: Seconds a refused body is still read (and thrown away) after the 413, so
#: that a client still sending it gets to read the answer rather than a
#: connection reset.
LINGER = 5.0


class LimitedChannel(HTTPChannel):
    """
    An HTTP/1.1 connection of a :class:`LimitedSite`: its requests must
    arrive, head and body, within the site's idle timeout of the connection
    opening or of the previous response; a body announced or found over the
    site's ``max_body_bytes`` is answered 413 and never buffered.
    """

    site: LimitedSite
    _arrival: IDelayedCall | None = None
    _linger: IDelayedCall | None = None
    _refused_body = False

    def connectionMade(self) -> None:
        super().connectionMade()
        self._expect_request()

    def _expect_request(self) -> None:
        self._stop_arrival()
        if self.site.timeOut:
            self._arrival = self.callLater(self.site.timeOut, self._too_slow)

    def _stop_arrival(self) -> None:
        if self._arrival is not None and self._arrival.active():
            self._arrival.cancel()
        self._arrival = None

    def _too_slow(self) -> None:
        self._arrival = None
        assert self.transport is not None
        _log.debug(
            "closing {peer}: its request took over {seconds}s to arrive",
            peer=str(self.transport.getPeer()),
            seconds=self.site.timeOut,
        )
        self.setTimeout(None)  # the idle timeout, which may be due now too
        self._close_quietly()

    def timeoutConnection(self) -> None:
        # Idle: the request is not arriving at all.
        self._stop_arrival()
        assert self.transport is not None
        _log.debug("closing idle {peer}", peer=str(self.transport.getPeer()))
        self._close_quietly()

    def _close_quietly(self) -> None:
        """
        What HTTPChannel.timeoutConnection does, without its info line for
        every connection closed (thousands in a flood of idle connections;
        the connection cap's own line says what is going on).
        """
        if self.abortTimeout is not None:
            self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        self.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._refused_body:
            return  # the rest of a refused body: thrown away
        super().dataReceived(data)

    def rawDataReceived(self, data: bytes) -> None:
        if self._refused_body:
            return
        super().rawDataReceived(data)

    def allHeadersReceived(self) -> None:
        # Before the request is given its length (and a file to put the
        # body in) and before an "Expect: 100-continue" is answered.
        if self.length is not None and self.length > self.site.max_body_bytes:
            self.refuse_body()
            return
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        if self._refused_body:
            return
        self._stop_arrival()
        super().allContentReceived()

    def requestDone(self, request: Request) -> None:
        if self.persistent:
            # Before the base class plays back any pipelined request.
            self._expect_request()
        super().requestDone(request)

    def refuse_body(self) -> None:
        """
        Answer 413 to the request whose body is arriving, read and throw
        away what the client still sends for :data:`LINGER` seconds, then
        close.
        """
        if self._refused_body:
            return
        self._refused_body = True
        self._stop_arrival()
        limit = self.site.max_body_bytes
        body = json.dumps({"error": f"the body is over {limit} bytes"}).encode("utf-8")
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\n"
            b"Content-Type: application/json; charset=utf-8\r\n"
            b"Content-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (len(body), body)
        )
        self._linger = self.callLater(LINGER, self.loseConnection)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self._stop_arrival()
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)
        self.site.connection_closed()


class LimitedRequest(Request):
    """
    A request whose body stops at its site's ``max_body_bytes``: a body
    without a length (chunked) is cut off with 413 once it passes it.

    Its client address is the one a trusted front names: see
    :meth:`getClientAddress`.
    """

    _body_bytes = 0
    #: The client address once worked out (asked for by the rate limits
    #: and by the access log).
    _client_address: IAddress | None = None

    def getClientAddress(self) -> IAddress:
        """
        The peer, unless it is one of the site's ``trusted_proxies``: then
        the last address of ``X-Forwarded-For`` that is not a trusted front
        (the one the nearest front saw; those before it could be forged by
        the client).
        """
        if self._client_address is None:
            self._client_address = self._find_client_address()
        return self._client_address

    def _find_client_address(self) -> IAddress:
        address: IAddress = super().getClientAddress()
        site = getattr(self.channel, "site", None)
        trusted = getattr(site, "trusted_proxies", ())
        host = getattr(address, "host", None)
        if not trusted or host is None or not _within(host, trusted):
            return address
        header = self.requestHeaders.getRawHeaders(b"x-forwarded-for") or []
        hops = [h.strip() for line in header for h in line.decode("latin-1").split(",")]
        for hop in reversed(hops):
            try:
                ip = ipaddress.ip_address(hop)
            except ValueError:
                break  # not an address: what came before it is not to be trusted
            if not _within(hop, trusted):
                if ip.version == 6:
                    return IPv6Address("TCP", hop, 0)
                return IPv4Address("TCP", hop, 0)
        return address

    def handleContentChunk(self, data: bytes) -> None:
        channel = self.channel
        if isinstance(channel, LimitedChannel):
            self._body_bytes += len(data)
            if self._body_bytes > channel.site.max_body_bytes:
                channel.refuse_body()
            if channel._refused_body:
                return
        super().handleContentChunk(data)


def _within(host: str, networks: Any) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _limited_channel_protocol(site: LimitedSite) -> Protocol:
    # As twisted.web.http._genericHTTPChannelProtocolFactory, with our channel.
    return _GenericHTTPChannelProtocol(LimitedChannel())  # type: ignore[no-any-return]


class _Escapes:
    """
    Twisted's combined log format (``twisted.web.http.combinedLogFormatter``,
    the same line), with each piece escaped once and kept: a client's
    address, agent and the paths it asks for repeat from request to request.
    At most :attr:`SIZE` pieces are kept (then they start again).
    """

    SIZE = 4096

    def __init__(self) -> None:
        self._escaped: dict[Any, str] = {}

    def escape(self, value: Any) -> str:
        escaped = self._escaped.get(value)
        if escaped is None:
            if len(self._escaped) >= self.SIZE:
                self._escaped.clear()
            escaped = self._escaped[value] = _escape(value)
        return escaped

    def combined(self, timestamp: str, request: Any) -> str:
        address = request.getClientAddress()
        host = getattr(address, "host", None)
        ip = host if host is not None and isinstance(address, _LOGGED_ADDRESSES) else b"-"
        escape = self.escape
        referrer = request.getHeader(b"referer")
        agent = request.getHeader(b"user-agent")
        return '"%s" - - %s "%s %s %s" %d %s "%s" "%s"' % (
            escape(ip), timestamp, escape(request.method), escape(request.uri),
            escape(request.clientproto), request.code, request.sentLength or "-",
            escape(referrer or b"-"), escape(agent or b"-"),
        )


class LimitedSite(Site):
    """
    A site that closes idle connections, closes connections whose request
    (head and body) takes longer than the idle timeout to arrive (a client
    trickling one header line a minute), answers 413 to a body over
    ``max_body_bytes`` before buffering it, and refuses connections past
    ``max_connections``.

    :ivar open_connections: the connections open now.
    """

    protocol = _limited_channel_protocol  # type: ignore[assignment]
    requestFactory = LimitedRequest  # type: ignore[assignment]

    def __init__(
        self,
        resource: IResource,
        idle_timeout: float,
        max_body_bytes: int,
        max_connections: int,
        reactor: IReactorTime | None = None,
        trusted_proxies: Any = (),
    ) -> None:
        super().__init__(resource, timeout=idle_timeout, reactor=reactor)
        #: The fronts whose X-Forwarded-For is believed (networks).
        self.trusted_proxies = tuple(trusted_proxies)
        self.max_body_bytes = max_body_bytes
        self.max_connections = max_connections
        self.open_connections = 0
        self._refused = 0
        #: Whether each request is a line of the server's log (namespace
        #: ``distwit.access``, combined log format).
        self.access_log = True
        #: A file that takes every request's line too (opened when the
        #: site starts, appended to), and the file once open.
        self.access_path: str | None = None
        self.access_file: Any = None
        #: The pieces of access lines escaped (the same agents, methods,
        #: addresses come again and again).
        self._escapes = _Escapes()
        #: Paths of the routine exchanges between servers (ping exchanges,
        #: range copies, ...): their lines are at debug level when they
        #: succeed, so an idle server's log stays quiet.
        self.routine_paths: tuple[bytes, ...] = ()

    def log(self, request: Any) -> None:
        """
        One line per request in the combined log format: in the server's
        log (``distwit.access``, info; debug for a routine exchange that
        succeeded) and in :attr:`access_file` if any.
        """
        if not self.access_log and self.access_file is None:
            return
        if self._logDateTime is None:
            self._updateLogDateTime()
        line = self._escapes.combined(self._logDateTime or "-", request)
        if self.access_file is not None:
            self.access_file.write(line + "\n")
        if not self.access_log:
            return
        code = request.code or 0
        path = request.path or b""
        routine = code < 400 and path.startswith(self.routine_paths)
        # The event Logger.emit would make (without its check of the
        # level, one of two known here, and its copy of the fields).
        _access.observer({
            "access_line": line,
            "method": request.method.decode("latin-1"),
            "path": request.uri.decode("latin-1"),
            "status": code,
            "log_logger": _access,
            "log_level": LogLevel.debug if routine else LogLevel.info,
            "log_namespace": _ACCESS_NAMESPACE,
            "log_source": None,
            "log_format": "{access_line}",
            "log_time": time.time(),
        })

    def startFactory(self) -> None:
        super().startFactory()
        if self.access_path and self.access_file is None:
            try:
                self.access_file = open(self.access_path, "a", 1, encoding="utf-8",
                                        newline="\n")
            except OSError as e:
                _log.error("cannot open the access log {path}: {error}",
                           path=self.access_path, error=e.strerror)

    def stopFactory(self) -> None:
        super().stopFactory()
        if self.access_file is not None:
            self.access_file.close()
            self.access_file = None

    def buildProtocol(self, addr: IAddress) -> Protocol | None:  # type: ignore[override]
        if self.open_connections >= self.max_connections:
            if not self._refused:
                _log.warn(
                    "refusing new connections: {count} are open, the most"
                    " max_connections allows",
                    count=self.open_connections,
                )
            self._refused += 1
            return None
        protocol: Protocol | None = super().buildProtocol(addr)
        if protocol is not None:
            self.open_connections += 1
        return protocol

    def connection_closed(self) -> None:
        """
        One of the connections built here is closed.
        """
        self.open_connections -= 1
        # Back under once well under, so a site at its cap logs twice, not
        # twice per connection.
        if self._refused and self.open_connections < self.max_connections * 0.9:
            _log.info(
                "accepting connections again ({count} open); {refused} were refused",
                count=self.open_connections,
                refused=self._refused,
            )
            self._refused = 0


def one_line(failure: Any) -> str:
    """
    What went wrong with a request to another server, in one line and
    without a traceback: the causes inside Twisted's wrappers
    (``ResponseNeverReceived``, ``ResponseFailed``), a TLS error by its
    reason ("certificate verify failed"), a refused connection as such.
    """
    value = getattr(failure, "value", failure)
    detail = getattr(value, "detail", "")
    if detail:
        # The signed client's "no answer", with its cause (for our log only).
        return one_line(f"{value}: {_tls_reason(detail)}")
    reasons = getattr(value, "reasons", None)
    if reasons:
        return "; ".join(dict.fromkeys(one_line(reason) for reason in reasons))
    args = getattr(value, "args", ())
    if type(value).__name__ == "Error" and type(value).__module__.startswith("OpenSSL"):
        found = re.findall(r"'([^']*)'\)", str(args))
        return "TLS error: " + (", ".join(found) if found else str(value))
    text = str(value) if not hasattr(failure, "getErrorMessage") else failure.getErrorMessage()
    text = " ".join(_tls_reason(text).split()) or type(value).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _tls_reason(text: str) -> str:
    """
    pyOpenSSL's error list (``[('SSL routines', '', 'certificate verify
    failed')]``) as its reasons, in words.
    """
    if "SSL routines" not in text and "OpenSSL" not in text:
        return text
    found = re.findall(r"'([a-z][^']*)'\)", text)
    return "TLS error: " + ", ".join(dict.fromkeys(found)) if found else text


class PeerLog:
    """
    The log of what happens with other servers, quiet when nothing
    changes: a peer that fails is logged once, at warn level, with its
    cause in one line; again (info) when it answers; again when it fails
    after that.  A repeated failure, or one with another cause, is at
    debug level only.

    :param what: what the peers are, for the messages ("ping server",
        "registry", "server").
    """

    def __init__(self, log: Logger, what: str) -> None:
        self._log = log
        self._what = what
        self._failing: dict[str, str] = {}

    def failed(self, peer: str, failure: Any, doing: str = "") -> None:
        """
        ``peer`` failed (``failure``: a Failure, an exception or a message).
        """
        error = failure if isinstance(failure, str) else one_line(failure)
        level = LogLevel.debug if peer in self._failing else LogLevel.warn
        self._failing[peer] = error
        self._log.emit(
            level, "{what} {peer} fails{doing}: {error}",
            what=self._what, peer=peer, error=error, doing=f" ({doing})" if doing else "",
            peer_state="failing",
        )

    def answered(self, peer: str) -> None:
        """
        ``peer`` answered: logged if it was failing.
        """
        if self._failing.pop(peer, None) is not None:
            self._log.info("{what} {peer} answers again", what=self._what, peer=peer,
                           peer_state="answering")

    def is_failing(self, peer: str) -> bool:
        return peer in self._failing
