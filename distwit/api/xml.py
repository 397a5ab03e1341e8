"""
The API's answers in the 2008 XML shape: ``<statuses type="array">`` of
``<status>`` with a ``<user>`` inside, ``<user>``, ``<users
type="array">``, ``<id_list>``, errors as ``<errors><error code="34">``.

The JSON answer is turned into XML: objects become elements named by
their keys, lists become ``type="array"`` elements of singular children,
``null`` an empty element, booleans ``true``/``false``.
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from distwit.core.rss import xml_safe

#: The child element of a list, by the list's name.
_SINGULAR = {
    "statuses": "status",
    "users": "user",
    "ids": "id",
    "hashtags": "hashtag",
    "user_mentions": "user_mention",
    "urls": "url",
    "symbols": "symbol",
    "indices": "index",
    "connections": "connection",
    "errors": "error",
    "photo_sizes": "photo_size",
    "non_username_paths": "path",
    "display_text_range": "index",
    "direct-messages": "direct_message",
    "devices": "device",
    "channels": "channel",
}


def _is_status(value: Any) -> bool:
    return isinstance(value, dict) and "id" in value and ("text" in value or "full_text" in value)


def _is_user(value: Any) -> bool:
    return isinstance(value, dict) and "screen_name" in value and "followers_count" in value


def _is_direct_message(value: Any) -> bool:
    return isinstance(value, dict) and "sender_id" in value and "recipient_id" in value


def root_name(value: Any) -> str:
    """
    The root element for an answer, as the 2008 API named it (a list that
    names its own, ``xml_root``, is named so even when empty).
    """
    named = getattr(value, "xml_root", None)
    if isinstance(named, str):
        return named
    if _is_direct_message(value):
        return "direct_message"
    if isinstance(value, list):
        if value and _is_user(value[0]):
            return "users"
        if value and isinstance(value[0], (int, str)) and not isinstance(value[0], bool):
            # A plain list of ids (blocks/blocking/ids, no_retweets/ids).
            return "ids"
        return "statuses"
    if _is_status(value):
        return "status"
    if _is_user(value):
        return "user"
    if isinstance(value, bool):
        return "friends"
    if isinstance(value, str):
        return "ok"
    if isinstance(value, dict):
        if "ids" in value:
            return "id_list"
        if "users" in value:
            return "users_list"
        if "relationship" in value:
            return "relationship"
        if "statuses" in value and "search_metadata" in value:
            return "search"
    return "hash"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return xml_safe(str(value))


#: What the 2008 API's element names are: letters, digits and "_", not
#: starting with a digit (a key that is not, such as a status id in
#: ``statuses/lookup?map=true`` or an endpoint path in
#: ``rate_limit_status``, becomes an ``item`` with a ``key`` attribute).
_ELEMENT_NAME_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")


def _child(element: Element, key: str) -> Element:
    if _ELEMENT_NAME_RE.match(key) and not key.lower().startswith("xml"):
        return SubElement(element, key)
    return SubElement(element, "item", key=xml_safe(key))


def _fill(element: Element, value: Any, name: str) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(_child(element, str(key)), child, str(key))
    elif isinstance(value, list):
        element.set("type", "array")
        singular = _SINGULAR.get(name, "item")
        for child in value:
            _fill(SubElement(element, singular), child, singular)
    else:
        element.text = _text(value)


def to_xml(value: Any) -> bytes:
    """
    The XML document of an API answer.
    """
    name = root_name(value)
    if name == "relationship" and isinstance(value, dict):
        value = value["relationship"]
    root = Element(name)
    _fill(root, value, name)
    body: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def error_xml(code: int, message: str) -> bytes:
    """
    Twitter's XML error document: ``<errors><error code=…>message</error></errors>``.
    """
    root = Element("errors")
    error = SubElement(root, "error", code=str(code))
    error.text = xml_safe(message)
    body: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return body
