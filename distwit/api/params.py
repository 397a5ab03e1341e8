"""
An API request's parameters, read and checked as Twitter did: booleans in
Twitter's and Python's spellings, ids in range, comma-separated lists,
cursors and counts.
"""

from __future__ import annotations

from twisted.web.iweb import IRequest

from distwit.api import errors
from distwit.api.render import Shape
from distwit.model import MAX_STATUS_ID, WEB_SOURCE

#: Twitter's booleans, and Python's as some clients send them.
_TRUE = frozenset({"true", "1", "t", "yes", "on"})
_FALSE = frozenset({"false", "0", "f", "no", "off", ""})

#: Most users in one users/lookup or friendships/lookup, as Twitter.
MAX_LOOKUP = 100


class Params:
    """
    An API request's parameters: path arguments, then the query string and
    a form body (urlencoded or multipart) alike.

    :ivar caller: whose count the call is in the rate limits.
    :ivar source: the app the call came through, as a post's ``source``:
        set by the server (the OAuth app's name, else "web"), never by a
        parameter.
    """

    def __init__(self, request: IRequest, path_args: dict[str, str], caller: str = "",
                 source: str = WEB_SOURCE) -> None:
        self._args: dict[bytes, list[bytes]] = request.args or {}
        self._path = path_args
        self.caller = caller
        self.source = source

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

    def user_id_or_name(self, name: str) -> tuple[str | None, int | None]:
        """
        A parameter that names a user by screen name or by id, as
        Twitter's ``id`` did (``users/show/12.json``,
        ``statuses/user_timeline.rss?id=alice``): the text, and the user
        id it also may be when it is all digits (and in range).

        Handles may be all digits, so the rule (docs/design/clients.md):
        a screen name first, and only when no one has that name, the user
        of that id.  ``user_id`` and ``screen_name`` are never ambiguous.
        """
        value = self.text(name)
        if not value:
            return None, None
        value = value.strip()
        number = None
        if value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_STATUS_ID:
            number = int(value)
        return value, number

    def status_id(self, name: str) -> int | None:
        return self.integer(name, minimum=1)

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise errors.invalid_parameter(name, f"{value!r} is not true or false")

    def text_list(self, name: str) -> list[str]:
        """
        A comma-separated list (``screen_name=a,b``), empty items dropped.
        """
        value = self.text(name)
        if value is None:
            return []
        items = [item.strip() for item in value.split(",") if item.strip()]
        if len(items) > MAX_LOOKUP:
            raise errors.invalid_parameter(name, f"at most {MAX_LOOKUP} at once")
        return items

    def integer_list(self, name: str) -> list[int]:
        numbers = []
        for item in self.text_list(name):
            try:
                number = int(item)
            except ValueError:
                raise errors.invalid_parameter(name, f"{item!r} is not a number") from None
            if not 1 <= number <= MAX_STATUS_ID:
                raise errors.invalid_parameter(name, f"{item!r} is out of range")
            numbers.append(number)
        return numbers

    def cursor(self) -> int | None:
        """
        A ``cursor``: None (or -1) for the first page, else where to go on.
        """
        value = self.integer("cursor", minimum=-1, maximum=2**63 - 1)
        return None if value in (None, -1) else value

    def shape(self) -> Shape:
        return Shape(
            trim_user=self.boolean("trim_user"),
            extended=(self.text("tweet_mode") or "").lower() == "extended",
        )

    def count(self, default: int = 20, maximum: int = 200) -> int:
        """
        ``count``, clamped to 1..maximum as Twitter does.
        """
        value = self.integer("count", minimum=-(2**63), maximum=2**63)
        if value is None:
            return default
        return max(1, min(value, maximum))
