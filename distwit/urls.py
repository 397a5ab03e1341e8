"""
URLs as the federation reads them: one way to get the authority
(``host[:port]``) of a server's URL, for every layer (settings, the core
rules, the server-to-server metadata).
"""

from __future__ import annotations

from urllib.parse import urlsplit


def authority_of(url: str) -> str:
    """
    ``host[:port]`` of a URL, lower case, the port only when given (no
    user information; an IPv6 host in brackets).
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port is None else f"{host}:{parts.port}"
