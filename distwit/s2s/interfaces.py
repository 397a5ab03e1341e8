"""
What the roles need from the server-to-server layer.

Every request one distwit server makes of another is signed by the
sender's key and checked on arrival.  The signer is identified by its
public URL (the ``keyid``); its key comes from its metadata document at
``<public URL>/.well-known/distwit``.  The *authority* a signer speaks for
is the host[:port] of that URL.
"""

from __future__ import annotations

from zope.interface import Interface


class SignatureError(Exception):
    """
    A request is unsigned, badly signed, stale or replayed (HTTP 401).
    ``str()`` says which, for the log and the error body.
    """


class ForbiddenAuthority(Exception):
    """
    A correctly signed request speaks for users of another authority
    (HTTP 403).
    """


class S2SResponseError(Exception):
    """
    A peer's answer was refused: wrong status, too big, too slow, not the
    expected shape.  ``str()`` says which.

    :ivar status: the peer's HTTP status when it answered with one (not
        2xx), else ``None``: a 4xx says the peer refused the request itself.
    :ivar detail: why there was no answer (connection refused, a TLS
        error...), for this server's log only, never for a stranger (it
        tells whether a port is open).
    """

    def __init__(self, message: str = "", status: int | None = None,
                 detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class IRequestVerifier(Interface):
    """
    Checks the signature of an incoming server-to-server request.
    """

    def verify(request, body):
        """
        :param request: the ``twisted.web`` request (method, URI, headers).
        :param body: the request body, already read (bytes).
        :return: Deferred firing with the signer's public URL (no trailing
            slash), or failing with :class:`SignatureError`.
        """


class IS2SClient(Interface):
    """
    Signed HTTP requests to other servers, with time and size caps.
    """

    def get_json(url):
        """
        Signed GET; Deferred firing with the decoded JSON body, or failing
        with :class:`S2SResponseError`.
        """

    def post_json(url, value, timeout=None):
        """
        Signed POST of ``value`` as JSON; Deferred firing with the decoded
        JSON answer, or failing with :class:`S2SResponseError`.
        ``timeout`` (seconds) overrides the default, for long-polls.
        """

    def get_bytes(url, max_size=None):
        """
        Signed GET; Deferred firing with the raw body (bytes), at most
        ``max_size`` bytes, or failing with :class:`S2SResponseError`.
        """
