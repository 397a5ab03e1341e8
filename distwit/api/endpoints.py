"""
How an endpoint of the Twitter API is declared: once, by the
:func:`endpoint` decorator on the method that answers it, with its paths,
HTTP methods and whether it needs a signed-in user.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

#: The HTTP methods of reads, of writes, and of reads a client may POST.
GET = frozenset({"GET", "HEAD"})
POST = frozenset({"POST"})
GET_OR_POST = frozenset({"GET", "HEAD", "POST"})

#: Whether an endpoint needs a signed-in user.
REQUIRED, OPTIONAL = "required", "optional"

#: What answers an endpoint: ``(request, user, params)`` to a JSON-able
#: value.  ``user`` is an ``Account`` when the endpoint is
#: :data:`REQUIRED`, else ``Account | None``.
Handler = Callable[..., Awaitable[Any]]
H = TypeVar("H", bound=Handler)

#: Declaration order, so that a literal path (``favorites/create``) is
#: tried before a pattern that would take it too (``favorites/NAME``).
_order = itertools.count()


@dataclass(frozen=True)
class Declaration:
    patterns: tuple[str, ...]
    methods: frozenset[str]
    auth: str
    order: int


@dataclass(frozen=True)
class Endpoint:
    """
    One path pattern of an endpoint, as the dispatch tries it.

    :ivar name: the path without its arguments (``statuses/show``): what
        the rate limits count.
    """

    name: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    auth: str
    handler: Handler

    @property
    def kind(self) -> str:
        return "write" if self.methods == POST else "read"

    @property
    def is_literal(self) -> bool:
        """
        The pattern is plain text (no arguments): it matches its name only.
        """
        return re.escape(self.name) == self.pattern.pattern


def endpoint(*patterns: str, methods: frozenset[str] = GET, auth: str = OPTIONAL
             ) -> Callable[[H], H]:
    """
    Declare the decorated method the answer of ``patterns`` (regular
    expressions of paths, without the format: ``statuses/show/(?P<id>[^/]+)``).
    """

    def declare(handler: H) -> H:
        handler.__dict__["api_endpoint"] = Declaration(patterns, methods, auth, next(_order))
        return handler

    return declare


def endpoints_of(*areas: object) -> list[Endpoint]:
    """
    The endpoints declared on the methods of ``areas``, in the order they
    were declared.
    """
    found: list[tuple[int, Endpoint]] = []
    for area in areas:
        for name in dir(type(area)):
            declaration = getattr(getattr(type(area), name), "api_endpoint", None)
            if not isinstance(declaration, Declaration):
                continue
            handler = getattr(area, name)
            for pattern in declaration.patterns:
                found.append((declaration.order, Endpoint(
                    pattern.split("/(?P")[0], re.compile(pattern),
                    declaration.methods, declaration.auth, handler,
                )))
    found.sort(key=lambda pair: pair[0])
    return [endpoint_ for _, endpoint_ in found]
