"""
Accounts and posts as Twitter's JSON objects.

Field names and types are Twitter's: ids as integers plus ``*_str``,
``created_at`` like ``Wed Oct 10 20:19:24 +0000 2018``.  Optional nested
objects are left out, never sent as null.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any

from dataclasses import dataclass, replace

from distwit import entities
from distwit.core.images import image_url
from distwit.model import POST, WEB_SOURCE, Account, Post

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


def twitter_time(ms: int) -> str:
    """
    Twitter's ``created_at`` format, in UTC, whatever the locale.
    """
    t = time.gmtime(ms // 1000)
    return (
        f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000 {t.tm_year}"
    )


@dataclass(frozen=True)
class Shape:
    """
    How a client asked for statuses: ``trim_user`` (the user as its ids
    only) and ``tweet_mode=extended`` (``full_text`` for ``text``).
    """

    trim_user: bool = False
    extended: bool = False
    #: The ids among the statuses shown that the reader favorited.
    favorited: frozenset[int] = frozenset()
    #: The ids among the statuses shown that the reader retweeted.
    retweeted: frozenset[int] = frozenset()
    #: This server's public URL, for the URLs of profile images.
    public_url: str = ""


DEFAULT_SHAPE = Shape()


def user_json(account: Account, public_url: str = "") -> dict[str, Any]:
    """
    Twitter's user object; ``public_url`` is this server's, for the URLs of
    profile images served here.
    """
    image = image_url(account, public_url)
    return {
        "id": account.id,
        "id_str": str(account.id),
        "name": account.name or account.handle,
        "screen_name": account.screen_name,
        "location": account.location,
        "description": account.description,
        "url": account.url or None,
        "entities": {"description": {"urls": []}},
        "protected": False,
        "verified": False,
        "followers_count": account.followers_count,
        "friends_count": account.friends_count,
        "listed_count": 0,
        "favourites_count": account.favourites_count,
        "statuses_count": account.statuses_count,
        "created_at": twitter_time(account.created_at),
        "default_profile": True,
        "default_profile_image": not account.profile_image,
        "profile_image_url": image,
        "profile_image_url_https": image,
    }


def user_objects(answer: Any) -> list[dict[str, Any]]:
    """
    The user objects an answer is made of, whose ``notifications`` field
    depends on who asks: the answer itself (``users/show``), its items
    (``users/lookup``), or its ``users`` (``friends/list``).  Users inside
    statuses are left alone: a status is rendered once for every reader,
    and 2008's statuses carried no such field either.
    """
    if isinstance(answer, dict):
        if _is_user_object(answer):
            return [answer]
        answer = answer.get("users")
    if isinstance(answer, list):
        return [item for item in answer if _is_user_object(item)]
    return []


def _is_user_object(value: Any) -> bool:
    return isinstance(value, dict) and "screen_name" in value and "followers_count" in value


def relationship_source(answer: Any, reader: Account | None) -> dict[str, Any] | None:
    """
    In a relationship (``friendships/show``, ``friendships/update``) whose
    source is the reader: ``{"side": the source's side, "target_id": ...}``,
    the side whose ``notifications_enabled`` is the reader's to know.
    """
    if reader is None or not isinstance(answer, dict):
        return None
    found = answer.get("relationship")
    if not isinstance(found, dict):
        return None
    source, target = found.get("source"), found.get("target")
    if not isinstance(source, dict) or not isinstance(target, dict):
        return None
    if source.get("id") != reader.id or "notifications_enabled" not in source:
        return None
    return {"side": source, "target_id": target["id"]}


def mark_notifications(users: list[dict[str, Any]], on: set[int]) -> None:
    """
    Set each user object's ``notifications``: true when the reader has
    that friend's posts sent to their phone or IM (``on``, their ids).
    """
    for user in users:
        user["notifications"] = user["id"] in on


def status_entities(post: Post) -> dict[str, Any]:
    """
    Twitter's ``entities``: hashtags, mentions of known accounts (local
    ones as ``handle``, remote ones as ``handle@authority``) and links,
    with indices in code points.  Always all three lists.
    """
    return {
        "hashtags": [
            {"text": tag.text, "indices": [tag.start, tag.end]}
            for tag in entities.hashtags(post.text)
        ],
        "symbols": [],
        "user_mentions": [
            {
                "screen_name": account.screen_name,
                "name": account.name or account.handle,
                "id": account.id,
                "id_str": str(account.id),
                "indices": [start, end],
            }
            for account, start, end in post.mentions
        ],
        "urls": [
            {
                "url": link.url,
                "expanded_url": link.url,
                "display_url": link.url.split("://", 1)[1],
                "indices": [link.start, link.end],
            }
            for link in entities.links(post.text)
        ],
    }


def retweet_text(post: Post) -> str:
    """
    A retweet's text as Twitter wrote it, ``RT @screen_name: original``; a
    retweet whose original is not held here names it alone
    (``RT @handle@authority``).
    """
    return post.display_text


def status_json(
    post: Post, include_user: bool = True, shape: Shape = DEFAULT_SHAPE
) -> dict[str, Any]:
    if post.is_retweet:
        return _retweet_json(post, include_user, shape)
    reply_id = post.in_reply_to_status_id
    reply_user = post.in_reply_to_account_id
    body: dict[str, Any] = {
        "created_at": twitter_time(post.created_at),
        "id": post.id,
        "id_str": str(post.id),
    }
    if shape.extended:
        body["full_text"] = post.text
        body["display_text_range"] = [0, len(post.text)]
    else:
        body["text"] = post.text
    body.update({
        # Twitter's source is HTML (clients show it as markup): the app's
        # name, escaped, so a name never becomes markup in a client.
        "source": html.escape(post.source or WEB_SOURCE, quote=True),
        "truncated": False,
        "in_reply_to_status_id": reply_id,
        "in_reply_to_status_id_str": None if reply_id is None else str(reply_id),
        "in_reply_to_user_id": reply_user,
        "in_reply_to_user_id_str": None if reply_user is None else str(reply_user),
        "in_reply_to_screen_name": post.in_reply_to_screen_name,
        "retweet_count": post.retweet_count,
        "favorite_count": post.favorite_count,
        "favorited": post.id in shape.favorited,
        "retweeted": post.id in shape.retweeted,
        "lang": "und",
        "entities": status_entities(post),
    })
    if include_user:
        if shape.trim_user:
            body["user"] = {"id": post.author.id, "id_str": str(post.author.id)}
        else:
            body["user"] = user_json(post.author, shape.public_url)
    return body


def _retweet_json(post: Post, include_user: bool, shape: Shape) -> dict[str, Any]:
    """
    A retweet as Twitter showed one: its own id, user and time, the text
    ``RT @screen_name: original``, the original in ``retweeted_status``
    (when held here), and the original's counts.
    """
    original = post.retweeted_status
    text = retweet_text(post)
    body = status_json(replace(post, kind=POST, text=text), include_user, shape)
    # A retweet has no entities of its own to speak of; the original's are
    # in retweeted_status.
    body["entities"] = {"hashtags": [], "symbols": [], "user_mentions": [], "urls": []}
    if original is not None:
        body["retweeted_status"] = status_json(original, True, shape)
        body["retweet_count"] = original.retweet_count
        body["favorite_count"] = original.favorite_count
        body["retweeted"] = original.id in shape.retweeted
        body["favorited"] = original.id in shape.favorited
    return body


# Statuses encoded once (issue 16): the JSON of a status is the same for
# every reader but for ``favorited`` and ``retweeted``, so it is kept as the
# bytes around those two, and each reader's values are put in between.

#: The reader's two fields as every status's JSON holds them when rendered
#: for nobody.  A string in JSON has its quotes escaped, so these bytes
#: are only ever the fields themselves.
_NOBODYS_MARKS = b'"favorited":false,"retweeted":false'
_MARKS = {
    (False, False): _NOBODYS_MARKS,
    (True, False): b'"favorited":true,"retweeted":false',
    (False, True): b'"favorited":false,"retweeted":true',
    (True, True): b'"favorited":true,"retweeted":true',
}


def encode_json(value: Any) -> bytes:
    """
    ``value`` as the API's JSON: UTF-8, no spaces; a lone surrogate (valid
    in JSON text, not in UTF-8) as a ``\\u`` escape.
    """
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def _marked_ids(post: Post) -> tuple[int, ...]:
    """
    Whose favorited and retweeted each status object in ``post``'s JSON
    shows, in order: a retweet shows its original's, twice (its own fields
    and ``retweeted_status``'s) when the original is held.
    """
    original = post.retweeted_status
    if post.is_retweet and original is not None:
        return (original.id, original.id)
    return (post.id,)


def status_parts(post: Post, shape: Shape) -> tuple[bytes, ...] | None:
    """
    ``post``'s JSON for any reader, cut where the reader's fields go (one
    cut a status object); ``None`` when it cannot be cut so (it then goes
    through :func:`status_json` each time).
    """
    nobody = replace(shape, favorited=frozenset(), retweeted=frozenset())
    encoded = encode_json(status_json(post, shape=nobody))
    parts = tuple(encoded.split(_NOBODYS_MARKS))
    if len(parts) != len(_marked_ids(post)) + 1:
        return None
    return parts


def join_status(post: Post, parts: tuple[bytes, ...], shape: Shape) -> bytes:
    """
    The JSON of ``post`` for the reader of ``shape``, from its
    :func:`status_parts`: the same bytes as encoding
    ``status_json(post, shape=shape)``.
    """
    if not shape.favorited and not shape.retweeted:
        return _NOBODYS_MARKS.join(parts)
    marks = [
        _MARKS[(post_id in shape.favorited, post_id in shape.retweeted)]
        for post_id in _marked_ids(post)
    ]
    joined = [parts[0]]
    for mark, part in zip(marks, parts[1:]):
        joined.append(mark)
        joined.append(part)
    return b"".join(joined)
