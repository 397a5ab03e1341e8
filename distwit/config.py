"""
Settings: built-in defaults, overridden by an INI file (``--config``),
overridden by the command line.

The INI file has the sections and keys of :data:`SETTINGS`; anything else
in it is an error that names the stray section or key, so a typo never
passes silently.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import urlsplit

from distwit.urls import authority_of

ROLES = ("all", "ping", "registry", "twitter")

# The defaults that code outside the settings table needs too (a service
# built without settings, the help of an option); each is written once,
# here, and the table below reads it.

#: Seconds between exchanges with the ping servers.
PING_INTERVAL = 5.0
#: Seconds a ping server may hold an exchange open (0: no long-poll).
LONG_POLL = 0.0
#: Seconds a remote post's counts (favorites, retweets) from its author's
#: server are believed before they are asked for again.
COUNTS_TTL = 30.0
#: Posts a user may make in any 24 hours (Twitter's 2,400).
DAILY_POST_LIMIT = 2400
#: SMS a user may be sent in any seven days before friends' posts stop
#: (Twitter's 250; docs/design/devices.md).
SMS_WEEKLY_CAP = 250
#: Seconds of one API rate-limit window, and the calls per window and
#: endpoint that read and that write.
RATE_LIMIT_WINDOW = 900.0
RATE_LIMIT_READS = 900
RATE_LIMIT_WRITES = 300
#: API calls per window from one client address, all endpoints and every
#: door (HTTP Basic, OAuth, bearer, none) together, that read and that
#: write: Twitter's app limit, so one address cannot use up anyone's
#: allowance nor flood the server.
RATE_LIMIT_ADDRESS_READS = 900
RATE_LIMIT_ADDRESS_WRITES = 300
#: Where a server listens and keeps its data when not told.
LISTEN = "tcp:8080"
DATA = "distwit-data"
#: What the HTTP site allows a client: seconds a connection may stay idle
#: (and a request may take to arrive), bytes of a request body, open
#: connections.
IDLE_TIMEOUT = 60.0
MAX_BODY_BYTES = 1024 * 1024
MAX_CONNECTIONS = 10000
#: Seconds the SMTP server may take to answer (to connect, and between
#: two of its answers) before a message is given up for this try.
SMTP_TIMEOUT = 30.0
#: Seconds a password-reset link works.
PASSWORD_RESET_TTL = 3600.0
#: How the e-mail channel secures its SMTP connection (``smtp://``):
#: STARTTLS required, used when offered, or never.
STARTTLS_MODES = ("required", "optional", "off")

#: The loopback port of ``--local-https`` (https for clients on this
#: machine that speak nothing else, with a CA made in the data folder).
LOCAL_HTTPS_PORT = 8443
#: The XMPP client port a Jabber ID's server answers on when not told
#: (RFC 6120's c2s port).
XMPP_PORT = 5222


class ConfigError(ValueError):
    """
    A setting is wrong; the message says which and why.
    """


def _role(value: str) -> str:
    if value not in ROLES:
        raise ConfigError(
            f"role must be one of {', '.join(ROLES)} (got {value!r})"
        )
    return value


#: How the registry admits ping servers.
ADMISSIONS = ("approval", "open")


def _admission(value: str) -> str:
    if value not in ADMISSIONS:
        raise ConfigError(f"must be one of {', '.join(ADMISSIONS)}, not {value!r}")
    return value


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"expected true or false, got {value!r}")


def _public_url(value: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"public_url must be an http:// or https:// URL, got {value!r}"
        )
    return value.rstrip("/")


def _text(value: str) -> str:
    return value


def _redis_url(value: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme != "redis" or not parts.hostname:
        raise ConfigError(
            f"expected redis://host[:port][/db][?prefix=...], got {value!r}"
        )
    try:
        parts.port
        int(parts.path.strip("/") or 0)
    except ValueError:
        raise ConfigError(f"bad port or database number in {value!r}") from None
    return value


#: How the server writes its log: lines of text, or one JSON object a line
#: (Twisted's ``jsonFileLogObserver``, for log shippers).
LOG_FORMATS = ("text", "json")
#: The least level of event the log keeps.
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")


def _log_format(value: str) -> str:
    if value not in LOG_FORMATS:
        raise ConfigError(f"must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return value


def _log_level(value: str) -> str:
    if value not in LOG_LEVELS:
        raise ConfigError(f"must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
    return value


def _positive_integer(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise ConfigError(f"expected at least 1, got {value!r}")
    return number


def _window(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"expected a number of seconds, got {value!r}") from None
    if not 1 <= seconds <= 86400:
        raise ConfigError(f"expected 1 to 86400 seconds, got {value!r}")
    return seconds


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"expected a number of seconds, got {value!r}") from None
    if not 0 <= seconds <= 3600:
        raise ConfigError(f"expected 0 to 3600 seconds, got {value!r}")
    return seconds


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"expected a port number, got {value!r}") from None
    if not 1 <= number <= 65535:
        raise ConfigError(f"expected a port from 1 to 65535, got {value!r}")
    return number


def _positive_seconds(value: str) -> float:
    seconds = _seconds(value)
    if seconds < 0.05:
        raise ConfigError(f"expected at least 0.05 seconds, got {value!r}")
    return seconds


def _bare_jid(value: str) -> str:
    """
    A bare Jabber ID (``updates@example.org``), as XMPP writes it (the
    local part lower-cased), or ``""``.
    """
    if not value:
        return value
    from twisted.words.protocols.jabber.jid import JID, InvalidFormat

    try:
        parsed = JID(value.strip())
    except InvalidFormat:
        parsed = None
    if parsed is None or not parsed.user or parsed.resource:
        raise ConfigError(
            f"expected a bare Jabber ID like updates@example.org, got {value!r}"
        )
    return str(parsed.userhost())


def _host_name(value: str) -> str:
    value = value.strip()
    if value and (any(c.isspace() or c in "/@:" for c in value) and not _is_ipv6(value)):
        raise ConfigError(f"expected a host name or address, got {value!r}")
    return value


def _is_ipv6(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).version == 6
    except ValueError:
        return False


#: Addresses or networks, as ``trusted_proxies`` holds them.
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def _networks(value: str) -> Networks:
    found = []
    for part in value.replace(",", " ").split():
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(
                f"expected addresses or networks (127.0.0.1, 10.0.0.0/8), got {part!r}"
            ) from None
    return tuple(found)


#: The SMS gateways: none, Kannel (``kannel``), Amazon SNS (``sns``), or a
#: provider's HTTP API (``http``); docs/design/sms.md.
SMS_GATEWAYS = ("none", "kannel", "sns", "http")
#: How :data:`SMS_HTTP_BODY`'s fields are written into the body: a form
#: (``key=value&...``, values form-encoded) or JSON (values JSON-escaped).
SMS_HTTP_FORMATS = ("form", "json")
#: The body an HTTP SMS provider is sent by default: Twilio's form.
SMS_HTTP_BODY = "To={to}&From={from}&Body={text}"


def _sms_gateway(value: str) -> str:
    if value not in SMS_GATEWAYS:
        raise ConfigError(f"must be one of {', '.join(SMS_GATEWAYS)}, not {value!r}")
    return value


def _sms_http_format(value: str) -> str:
    if value not in SMS_HTTP_FORMATS:
        raise ConfigError(f"must be one of {', '.join(SMS_HTTP_FORMATS)}, not {value!r}")
    return value


def _http_method(value: str) -> str:
    method = value.strip().upper()
    if method not in ("GET", "POST", "PUT"):
        raise ConfigError(f"must be GET, POST or PUT, not {value!r}")
    return method


def _http_url(value: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"expected an http:// or https:// URL, got {value!r}")
    return value


def _header_lines(value: str) -> tuple[tuple[str, str], ...]:
    found = []
    for line in value.splitlines():
        if not line.strip():
            continue
        name, colon, field = line.partition(":")
        if not colon or not name.strip() or " " in name.strip():
            raise ConfigError(f"expected lines of 'Name: value', got {line.strip()!r}")
        found.append((name.strip(), field.strip()))
    return tuple(found)
def _smtp_url(value: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(
            f"expected smtp://[user:password@]host[:port] or smtps://..., got {value!r}"
        )
    try:
        parts.port
    except ValueError:
        raise ConfigError(f"bad port in {value!r}") from None
    return value


def _starttls(value: str) -> str:
    if value not in STARTTLS_MODES:
        raise ConfigError(f"must be one of {', '.join(STARTTLS_MODES)}, not {value!r}")
    return value


def _mailbox(value: str) -> str:
    if not value:
        return value
    from email.utils import parseaddr

    name, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or " " in address:
        raise ConfigError(
            f"expected an address, with a name if you like (distwit <noreply@example.org>),"
            f" got {value!r}"
        )
    return value


def _ttl(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"expected a number of seconds, got {value!r}") from None
    if not 60 <= seconds <= 7 * 86400:
        raise ConfigError(f"expected 60 to 604800 seconds, got {value!r}")
    return seconds


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    default: str
    parse: Callable[[str], object]
    help: str
    #: The name of its field in :class:`Settings` when the key cannot be
    #: one (``from``); empty: the key.
    field: str = ""

    @property
    def attribute(self) -> str:
        return self.field or self.key


SETTINGS = (
    Setting("server", "role", "all", _role, "which role to run: " + "|".join(ROLES)),
    Setting("server", "listen", LISTEN, _text, "Twisted endpoint to listen on"),
    Setting(
        "server",
        "public_url",
        "",
        _public_url,
        "how others reach this server (default: from the listen port)",
    ),
    Setting("server", "data", DATA, _text, "folder for the database, keys, state"),
    Setting(
        "server",
        "database",
        "",
        _text,
        "sqlite:PATH or postgresql://... (default: SQLite in the data folder)",
    ),
    Setting(
        "server",
        "idle_timeout",
        f"{IDLE_TIMEOUT:g}",
        _positive_seconds,
        "seconds a connection may stay idle, and the most a request (head and"
        " body) may take to arrive",
    ),
    Setting(
        "server",
        "max_body_bytes",
        str(MAX_BODY_BYTES),
        _positive_integer,
        "bytes a request body may have (413 past them)",
    ),
    Setting(
        "server",
        "max_connections",
        str(MAX_CONNECTIONS),
        _positive_integer,
        "connections open at once; more are refused",
    ),
    Setting(
        "server",
        "trusted_proxies",
        "",
        _networks,
        "addresses or networks of the fronts (nginx, HAProxy) before this server:"
        " a request from one of them is from the last address its X-Forwarded-For"
        " names that is not itself a front (per-address limits, sign-in counts)",
    ),
    Setting(
        "server",
        "local_https",
        "false",
        _boolean,
        "also serve https on 127.0.0.1 for clients on this machine that speak"
        " nothing else (tweepy, twitter-api-v2), with a certificate from a CA"
        " made once in the data folder (docs/local-https.md)",
    ),
    Setting(
        "server",
        "local_https_port",
        str(LOCAL_HTTPS_PORT),
        _port,
        "the port of local_https (on 127.0.0.1)",
    ),
    Setting(
        "server",
        "log_format",
        "text",
        _log_format,
        "how the log is written: text, or json (one JSON object a line, for log shippers)",
    ),
    Setting(
        "server",
        "log_level",
        "info",
        _log_level,
        "the least level the log keeps: " + "|".join(LOG_LEVELS)
        + " (debug shows the routine exchanges between servers)",
    ),
    Setting(
        "server",
        "access_log",
        "on",
        _text,
        "one line per HTTP request (combined log format): on (in the server's log;"
        " the routine exchanges between servers at debug level), off, or a file"
        " (every request, appended)",
    ),
    Setting(
        "twitter",
        "open_registration",
        "true",
        _boolean,
        "whether anyone may sign up at /signup",
    ),
    Setting(
        "twitter",
        "daily_post_limit",
        str(DAILY_POST_LIMIT),
        _positive_integer,
        "posts a user may make in any 24 hours (Twitter's 2,400)",
    ),
    Setting(
        "twitter",
        "sms_weekly_cap",
        str(SMS_WEEKLY_CAP),
        _positive_integer,
        "SMS a user may be sent in any seven days; beyond it friends' posts are not"
        " sent by SMS (Twitter's 250)",
    ),
    Setting(
        "twitter",
        "rate_limit_window",
        f"{RATE_LIMIT_WINDOW:g}",
        _window,
        "seconds of one API rate-limit window",
    ),
    Setting(
        "twitter",
        "rate_limit_reads",
        str(RATE_LIMIT_READS),
        _positive_integer,
        "API calls per window and endpoint that read",
    ),
    Setting(
        "twitter",
        "rate_limit_writes",
        str(RATE_LIMIT_WRITES),
        _positive_integer,
        "API calls per window and endpoint that write",
    ),
    Setting(
        "twitter",
        "rate_limit_address_reads",
        str(RATE_LIMIT_ADDRESS_READS),
        _positive_integer,
        "API calls per window from one client address, all endpoints together,"
        " that read",
    ),
    Setting(
        "twitter",
        "rate_limit_address_writes",
        str(RATE_LIMIT_ADDRESS_WRITES),
        _positive_integer,
        "API calls per window from one client address, all endpoints together,"
        " that write",
    ),
    Setting(
        "federation",
        "registry",
        "",
        _public_url,
        "URL of the ping server registry (default in --role=all: this server)",
    ),
    Setting(
        "federation",
        "ping_interval",
        f"{PING_INTERVAL:g}",
        _positive_seconds,
        "seconds between exchanges with the ping servers",
    ),
    Setting(
        "federation",
        "long_poll",
        f"{LONG_POLL:g}",
        _seconds,
        "seconds a ping server may hold an exchange open (0: off)",
    ),
    Setting(
        "federation",
        "counts_ttl",
        f"{COUNTS_TTL:g}",
        _positive_seconds,
        "seconds a remote post's favorite and retweet counts, as its author's"
        " server gave them, are shown before they are asked for again",
    ),
    Setting(
        "federation",
        "ca_file",
        "",
        _text,
        "PEM file of the certificate authorities to trust for https peers"
        " (default: the system's)",
    ),
    Setting(
        "federation",
        "peers_allow_private",
        "false",
        _boolean,
        "let this server connect, on behalf of others (peers found through the"
        " ping servers, accts, signatures' key ids), to private, loopback or"
        " link-local addresses (a federation on one machine or a LAN)",
    ),
    Setting(
        "registry",
        "admission",
        "approval",
        _admission,
        "which ping servers the registry lists: approval (those the operator"
        " approved with `distwit registry approve`) or open (any that signs; labs)",
    ),
    Setting(
        "twitter",
        "redis",
        "",
        _redis_url,
        "redis://host[:port][/db][?prefix=...]: several twitter processes on one"
        " PostgreSQL database share rate limits, locks and wake-ups there, and"
        " one of them at a time reports to the ping servers (default: none,"
        " one process keeps them in memory)",
    ),
    Setting(
        "signin",
        "allow_http",
        "false",
        _boolean,
        "let visitors sign in with home servers on plain http (tests, a LAN)",
    ),
    Setting(
        "signin",
        "allow_private",
        "false",
        _boolean,
        "let visitors sign in with home servers at private or loopback addresses",
    ),
    Setting(
        "server",
        "metrics_listen",
        "",
        _text,
        "Twisted endpoint for Prometheus metrics at /metrics, e.g."
        " tcp:9100:interface=127.0.0.1 (default: none, no metrics listener)",
    ),
    Setting(
        "im",
        "xmpp_jid",
        "",
        _bare_jid,
        "the server's own Jabber ID (updates@example.org), through which users"
        " get updates and send posts and commands by instant message"
        " (default: none, no instant messages)",
    ),
    Setting(
        "im",
        "xmpp_password",
        "",
        _text,
        "the password of xmpp_jid on its XMPP server",
    ),
    Setting(
        "im",
        "xmpp_host",
        "",
        _host_name,
        "the XMPP server to connect to (default: the domain of xmpp_jid)",
    ),
    Setting(
        "im",
        "xmpp_port",
        str(XMPP_PORT),
        _port,
        "its client port (STARTTLS is required on it)",
    ),
    Setting(
        "im",
        "xmpp_tls_verify",
        "true",
        _boolean,
        "check the XMPP server's certificate against the system's authorities"
        " for the domain of xmpp_jid (false: any certificate, for a test server)",
    ),
    Setting(
        "sms",
        "sms_gateway",
        "none",
        _sms_gateway,
        "how SMS are sent and received: " + "|".join(SMS_GATEWAYS)
        + " (Kannel, Amazon SNS, a provider's HTTP API)",
    ),
    Setting(
        "sms",
        "sms_from",
        "",
        _text,
        "the number or short code SMS are sent from (SNS: an origination number"
        " if it starts with +, else a sender ID)",
    ),
    Setting(
        "sms",
        "sms_inbound_secret",
        "",
        _text,
        "the password the gateway gives (HTTP Basic) when it brings a text from"
        " a phone to /channels/kannel; empty: texts from phones are not taken",
    ),
    Setting(
        "sms",
        "kannel_sendsms_url",
        "",
        _http_url,
        "Kannel smsbox's sendsms URL, e.g. http://127.0.0.1:13013/cgi-bin/sendsms",
    ),
    Setting("sms", "kannel_username", "", _text, "the sendsms-user's username"),
    Setting("sms", "kannel_password", "", _text, "the sendsms-user's password"),
    Setting(
        "sms",
        "sns_region",
        "",
        _text,
        "the AWS region SMS are published in (default: AWS_REGION or ~/.aws/config)",
    ),
    Setting(
        "sms",
        "sns_endpoint",
        "",
        _http_url,
        "the SNS endpoint URL (default: the region's; another for tests or proxies)",
    ),
    Setting(
        "sms",
        "sns_access_key_id",
        "",
        _text,
        "AWS credentials for SNS (default: the usual AWS environment, files, roles)",
    ),
    Setting("sms", "sns_secret_access_key", "", _text, "the secret of sns_access_key_id"),
    Setting("sms", "sms_http_url", "", _http_url, "the HTTP SMS provider's send URL"),
    Setting(
        "sms", "sms_http_method", "POST", _http_method, "GET, POST or PUT (GET: the body"
        " is the query string)",
    ),
    Setting(
        "sms",
        "sms_http_format",
        "form",
        _sms_http_format,
        "how the body is written: form (values form-encoded) or json (values"
        " JSON-escaped, inside the template's quotes)",
    ),
    Setting(
        "sms",
        "sms_http_body",
        SMS_HTTP_BODY,
        _text,
        "the body, with {to}, {from} and {text} replaced (default: Twilio's form)",
    ),
    Setting(
        "sms", "sms_http_username", "", _text, "HTTP Basic user name (Twilio: the account SID)"
    ),
    Setting(
        "sms", "sms_http_password", "", _text, "HTTP Basic password (Twilio: the auth token)"
    ),
    Setting(
        "sms",
        "sms_http_headers",
        "",
        _header_lines,
        "more request headers, one 'Name: value' a line (e.g. Authorization: Bearer ...)",
    ),
    Setting(
        "email",
        "smtp_url",
        "",
        _smtp_url,
        "the SMTP server that sends this server's mail: smtp://[user:password@]host[:port]"
        " (port 587 by default) or smtps://... (TLS from the start, port 465); empty:"
        " no e-mail (no e-mail addresses, no password reset)",
    ),
    Setting(
        "email",
        "starttls",
        "required",
        _starttls,
        "for smtp://: required (refuse to send unless the server offers STARTTLS and"
        " its certificate checks), optional (use it when offered) or off",
    ),
    Setting(
        "email",
        "from",
        "",
        _mailbox,
        "who the mail is from, with a name if you like: distwit <noreply@example.org>"
        " (default: noreply@ the public URL's host)",
        field="email_from",
    ),
    Setting(
        "email",
        "smtp_ca_file",
        "",
        _text,
        "PEM file of the certificate authorities to trust for the SMTP server's"
        " certificate (default: the system's)",
    ),
    Setting(
        "email",
        "smtp_timeout",
        f"{SMTP_TIMEOUT:g}",
        _positive_seconds,
        "seconds the SMTP server may take to answer before a message waits for its"
        " next try",
    ),
    Setting(
        "email",
        "password_reset_ttl",
        f"{PASSWORD_RESET_TTL:g}",
        _ttl,
        "seconds a password-reset link sent by e-mail works (once)",
    ),
)

_BY_KEY = {setting.key: setting for setting in SETTINGS}


def default(key: str) -> str:
    """
    The default of a setting, as it would be written (for help texts).
    """
    return _BY_KEY[key].default


@dataclass(frozen=True)
class Settings:
    """
    Everything a server needs to know about how to run; built by
    :func:`resolve` (the defaults are in :data:`SETTINGS`).
    """

    role: str
    listen: str
    public_url: str
    data: str
    database: str
    idle_timeout: float
    max_body_bytes: int
    max_connections: int
    open_registration: bool
    registry: str
    ping_interval: float
    long_poll: float
    daily_post_limit: int
    rate_limit_window: float
    rate_limit_reads: int
    rate_limit_writes: int
    rate_limit_address_reads: int
    rate_limit_address_writes: int
    ca_file: str
    allow_http: bool
    allow_private: bool
    peers_allow_private: bool
    admission: str
    counts_ttl: float = COUNTS_TTL
    sms_weekly_cap: int = SMS_WEEKLY_CAP
    trusted_proxies: Networks = ()
    local_https: bool = False
    local_https_port: int = LOCAL_HTTPS_PORT
    metrics_listen: str = ""
    redis: str = ""
    log_format: str = "text"
    log_level: str = "info"
    access_log: str = "on"
    xmpp_jid: str = ""
    xmpp_password: str = ""
    xmpp_host: str = ""
    xmpp_port: int = XMPP_PORT
    xmpp_tls_verify: bool = True
    sms_gateway: str = "none"
    sms_from: str = ""
    sms_inbound_secret: str = ""
    kannel_sendsms_url: str = ""
    kannel_username: str = ""
    kannel_password: str = ""
    sns_region: str = ""
    sns_endpoint: str = ""
    sns_access_key_id: str = ""
    sns_secret_access_key: str = ""
    sms_http_url: str = ""
    sms_http_method: str = "POST"
    sms_http_format: str = "form"
    sms_http_body: str = SMS_HTTP_BODY
    sms_http_username: str = ""
    sms_http_password: str = ""
    sms_http_headers: tuple[tuple[str, str], ...] = ()
    smtp_url: str = ""
    starttls: str = "required"
    email_from: str = ""
    smtp_ca_file: str = ""
    smtp_timeout: float = SMTP_TIMEOUT
    password_reset_ttl: float = PASSWORD_RESET_TTL

    @property
    def data_folder(self) -> DataFolder:
        """
        The data folder and the files in it.
        """
        return DataFolder(self.data)

    @property
    def authority(self) -> str:
        """
        host[:port] of the public URL: the ``authority`` in
        ``handle@authority`` (:func:`distwit.urls.authority_of`).
        """
        return authority_of(self.public_url)

    @property
    def local_https_url(self) -> str:
        """
        Where ``local_https`` serves (``https://localhost:8443``), or ``""``
        when it is off.
        """
        if not self.local_https:
            return ""
        return f"https://localhost:{self.local_https_port}"


@dataclass(frozen=True)
class DataFolder:
    """
    The data folder (``--data``) and the files a server keeps in it, named
    here once by what they are.

    :param path: the folder, absolute.
    """

    path: str

    def file(self, name: str) -> str:
        """
        A file of the folder (a relative ``sqlite:`` database, say).
        """
        return os.path.join(self.path, name)

    @property
    def server_key(self) -> str:
        """
        The server's Ed25519 signing key (PKCS#8 PEM, mode 0600).
        """
        return self.file("server-key.pem")

    @property
    def web_secret(self) -> str:
        """
        The web pages' secret for CSRF tokens of visitors not signed in.
        """
        return self.file("web-secret")

    @property
    def oidc_keys(self) -> str:
        """
        The OpenID Connect provider's ID-token keys (JSON).
        """
        return self.file("oidc-keys.json")

    @property
    def local_ca(self) -> str:
        """
        The certificate of the CA that ``local_https`` made (PEM): what a
        client on this machine trusts.
        """
        return self.file("local-ca.pem")

    @property
    def local_ca_key(self) -> str:
        """
        That CA's private key (PEM, mode 0600).
        """
        return self.file("local-ca-key.pem")

    @property
    def local_https_certificate(self) -> str:
        """
        ``local_https``'s server certificate for localhost, 127.0.0.1 and
        ::1, issued by :attr:`local_ca` (PEM).
        """
        return self.file("local-https-cert.pem")

    @property
    def local_https_key(self) -> str:
        """
        The server certificate's private key (PEM, mode 0600).
        """
        return self.file("local-https-key.pem")

    @property
    def twitter_database(self) -> str:
        """
        The twitter role's SQLite database, when ``--database`` is not given.
        """
        return self.file("distwit.sqlite3")

    @property
    def registry_database(self) -> str:
        """
        The registry role's SQLite database.
        """
        return self.file("registry.sqlite3")

    def prepare(self) -> None:
        """
        Create the folder (readable by its owner only) if it is missing.

        :raise OSError: it cannot be created.
        """
        os.makedirs(self.path, mode=0o700, exist_ok=True)


def read_config_file(path: str) -> dict[str, str]:
    """
    The settings an INI file gives, by key.

    :raise ConfigError: the file is unreadable, malformed, or has a section
        or key distwit does not know.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except configparser.Error as e:
        raise ConfigError(f"config file {path} is not valid INI: {e}") from None
    sections = {setting.section for setting in SETTINGS}
    found: dict[str, str] = {}
    for section in parser.sections():
        if section not in sections:
            raise ConfigError(
                f"config file {path}: unknown section [{section}]"
                f" (known: {', '.join(sorted('[' + s + ']' for s in sections))})"
            )
        for key, value in parser.items(section):
            setting = _BY_KEY.get(key)
            if setting is None or setting.section != section:
                known = sorted(s.key for s in SETTINGS if s.section == section)
                raise ConfigError(
                    f"config file {path}: unknown key {key!r} in [{section}]"
                    f" (known: {', '.join(known)})"
                )
            found[key] = value
    return found


def default_public_url(listen: str) -> str:
    """
    A public URL guessed from the listen endpoint: ``tcp:8080`` gives
    ``http://localhost:8080``, ``ssl:8443`` gives ``https://localhost:8443``.
    """
    parts = listen.split(":")
    kind = parts[0]
    scheme = "https" if kind in ("ssl", "tls") else "http"
    port = None
    host = "localhost"
    for index, part in enumerate(parts[1:]):
        if "=" in part:
            name, _, value = part.partition("=")
            if name == "port":
                port = value
            elif name == "interface" and value not in ("", "0.0.0.0", "::"):
                host = f"[{value}]" if ":" in value else value
        elif index == 0:
            port = part
    if port is None or not port.isdigit():
        return f"{scheme}://{host}"
    if (scheme, port) in (("http", "80"), ("https", "443")):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


#: The settings that are paths: relative in a config file, they are
#: relative to the file's folder (on the command line, to the current one).
FILE_PATHS = ("data", "ca_file", "access_log", "smtp_ca_file")


def _check_sms(parsed: Mapping[str, object]) -> None:
    """
    The settings the chosen SMS gateway cannot do without.
    """
    needed = {
        "kannel": ("kannel_sendsms_url",),
        "http": ("sms_http_url",),
    }.get(str(parsed["sms_gateway"]), ())
    for key in needed:
        if not parsed[key]:
            raise ConfigError(f"{key}: sms_gateway = {parsed['sms_gateway']} needs it")
    if bool(parsed["sns_access_key_id"]) != bool(parsed["sns_secret_access_key"]):
        raise ConfigError("sns_access_key_id and sns_secret_access_key go together")


def resolve(command_line: Mapping[str, str | None], config_path: str | None) -> Settings:
    """
    Combine defaults, the config file and the command line.

    :param command_line: values given on the command line by key
        (``None`` for those not given).
    """
    values = {setting.key: setting.default for setting in SETTINGS}
    if config_path:
        from_file = read_config_file(config_path)
        # A relative path in the file is relative to the file's folder, so
        # that the command finds the server's data from any folder.
        folder = os.path.dirname(os.path.abspath(config_path))
        for key in FILE_PATHS:
            if from_file.get(key) and from_file[key] not in ("on", "off"):
                from_file[key] = os.path.join(folder, os.path.expanduser(from_file[key]))
        values.update(from_file)
    for key, value in command_line.items():
        if value is not None:
            values[key] = value
    parsed: dict[str, object] = {}
    for key, value in values.items():
        try:
            parsed[_BY_KEY[key].attribute] = _BY_KEY[key].parse(value)
        except ConfigError as e:
            raise ConfigError(f"{key}: {e}") from None
    if not parsed["public_url"]:
        parsed["public_url"] = default_public_url(str(parsed["listen"]))
    if not parsed["registry"] and parsed["role"] == "all":
        parsed["registry"] = parsed["public_url"]
    parsed["data"] = os.path.abspath(str(parsed["data"]))
    if parsed["ca_file"]:
        parsed["ca_file"] = os.path.abspath(str(parsed["ca_file"]))
    if parsed["xmpp_jid"] and not parsed["xmpp_password"]:
        raise ConfigError("xmpp_password: xmpp_jid is set, so its password is needed too")
    if parsed["smtp_ca_file"]:
        parsed["smtp_ca_file"] = os.path.abspath(str(parsed["smtp_ca_file"]))
    if parsed["access_log"] not in ("on", "off"):
        parsed["access_log"] = os.path.abspath(str(parsed["access_log"]))
    _check_sms(parsed)
    return Settings(**parsed)  # type: ignore[arg-type]
