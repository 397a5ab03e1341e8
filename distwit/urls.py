"""
URLs as the federation reads them: one way to get the authority
(``host[:port]``) of a server's URL, for every layer (settings, the core
rules, the server-to-server metadata).
"""

from __future__ import annotations

from urllib.parse import urlsplit


#: The ports an authority leaves out.
_DEFAULT_PORTS = {"http": 80, "https": 443}


def authority_of(url: str) -> str:
    """
    ``host[:port]`` of a URL, lower case, the port only when it is not the
    scheme's default (no user information; an IPv6 host in brackets): the
    authority in ``handle@authority`` of a server with that public URL,
    as the ping servers compute it from the URL a request is signed by.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme.lower()):
        return host
    return f"{host}:{port}"


def authority_of_http_url(url: str) -> str:
    """
    :func:`authority_of` a URL that must be an absolute http(s) URL with a
    host, as a server's public URL is: for URLs read from the wire (the
    ``home`` of a ping exchange, a signer's key id).

    :raises ValueError: if ``url`` is anything else (another scheme, no
        host, a port out of range).
    """
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a port out of range
    except ValueError:
        raise ValueError(f"{url!r} is not an http(s) URL") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return authority_of(url)
