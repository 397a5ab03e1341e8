"""
The Jinja2 templates of the pages (``templates/``), for every part of the
server that writes a page.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined

from distwit.core.images import image_url
from distwit.model import Account


def content_security_policy(*form_targets: str) -> bytes:
    """
    The pages' Content-Security-Policy: everything from this site only, no
    framing, and forms that lead here or (after a redirect) to one of
    ``form_targets`` (URLs, of which the origin counts, or bare schemes
    such as ``"https:"``).
    """
    targets = ["'self'"]
    for target in form_targets:
        parts = urlsplit(target)
        if parts.netloc and parts.scheme in ("http", "https"):
            targets.append(f"{parts.scheme}://{parts.netloc}")
        elif target in ("http:", "https:"):
            targets.append(target)
    return (
        f"default-src 'self'; frame-ancestors 'none'; form-action {' '.join(targets)};"
        " base-uri 'none'"
    ).encode("ascii", "replace")


def templates() -> Environment:
    """
    The templates, autoescaped, and strict about names they are not given.
    """
    environment = Environment(
        loader=PackageLoader("distwit.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        utc_time=utc_time, iso_time=iso_time, profile_url=profile_url, avatar_url=avatar_url
    )
    environment.filters.update(person_url=person_url, safe_url=safe_url, face_url=face_url)
    return environment


def utc_time(ms: int) -> str:
    """
    A post's time as the pages show it: ``2026-11-24 08:32 UTC``.
    """
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms // 1000))


def iso_time(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def profile_url(account: Account) -> str | None:
    """
    Where an author's name links to: their page here, or on their home
    server for a remote author (when its address is a web address).
    """
    if account.is_local:
        return "/" + account.handle
    if account.home_url.startswith(("https://", "http://")):
        return account.home_url.rstrip("/") + "/" + account.handle
    return None


def avatar_url(account: Account) -> str | None:
    """
    The profile image a page shows beside a local author's name (served
    here).  Remote authors' images are at their servers, which the pages'
    Content-Security-Policy (and the visitor's privacy) keeps out.
    """
    if not account.is_local:
        return None
    return image_url(account, "", "normal")


def person_url(account: Account) -> str:
    """
    An account's page on this server: ``/handle`` for a local user,
    ``/@handle@authority`` for a remote one (what this server holds).
    """
    if account.is_local:
        return "/" + account.handle
    return f"/@{account.handle}@{account.authority}"


def safe_url(url: str | None) -> str | None:
    """
    ``url`` if a page may link to it (an http or https address with a
    host), else ``None``: a profile's web site is someone else's text.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts.geturl()


def face_url(account: Account, size: str = "normal") -> str:
    """
    The image beside an account's name: theirs for a local user (served
    here), this server's default for a remote one (the pages'
    Content-Security-Policy, and the visitor's privacy, keep other
    servers' images out).
    """
    if not account.is_local:
        return image_url(replace(account, profile_image=""), "", size)
    return image_url(account, "", size)


class PageRenderer:
    """
    Renders one of the site's templates in the site's look, with the
    Content-Security-Policy for it: what the OAuth provider (another face)
    is given to show its authorize page (a
    :class:`distwit.api.interfaces.RenderPage`).
    """

    def __init__(self) -> None:
        self._templates = templates()

    def __call__(
        self, template: str, form_targets: Sequence[str], context: Mapping[str, Any]
    ) -> tuple[str, bytes]:
        html_text = self._templates.get_template(template).render(**context)
        return html_text, content_security_policy(*form_targets)
