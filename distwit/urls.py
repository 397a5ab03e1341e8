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
