"""
Fuzz tests: whatever a stranger sends (API parameters, page forms, range
feeds, ping exchange bodies), the answer is a refusal or a valid answer,
never a 500, a traceback in the log, malformed XML or JSON, or a long stall.

Each finding of the fuzzers has its own test method below its fuzzer, the
minimal example that reproduces it.
"""

from __future__ import annotations

import codecs
import json
import re
import time
import xml.etree.ElementTree as ElementTree
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from distwit.federation.range_feed import FeedError, RangePage, parse_range_feed, render_range_feed
from distwit.ping.directory import MemoryDirectory
from distwit.ping.service import PingService
from distwit.roles.ping import make_ping_resource
from tests.fakes import SIGNER_HEADER, FakeVerifier
from tests.test_api import BASE, PASSWORDS, APITestCase
from tests.test_feeds import ACCT, ALICE, AUTHORITY, PUBLIC_URL, item
from tests.test_pages import keep_cookies

#: Hypothesis settings for a fuzzer over a fixture built once per test.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much,
    ],
)

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


class Answer:
    """
    One HTTP answer: status, headers and body bytes.
    """

    def __init__(self, code: int, headers: Any, body: bytes) -> None:
        self.code = code
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str:
        values = self.headers.getRawHeaders(name) or [""]
        return str(values[0])


class FuzzCase(SynchronousTestCase):
    """
    What every fuzzer checks after each request.
    """

    stub: Any

    def fetch(self, method: str, url: str, **kwargs: Any) -> Answer:
        d = self.stub.request(method, url, **kwargs)
        self.stub.flush()
        response = self.successResultOf(d)
        body_d = response.content()
        self.stub.flush()
        return Answer(response.code, response.headers, self.successResultOf(body_d))

    def assertNoServerError(self, answer: Answer, what: str) -> None:
        """
        Not a 500, and nothing logged as a failure while answering.
        """
        errors = self.flushLoggedErrors()
        self.assertLess(answer.code, 500, f"{what}: {answer.body[:500]!r}")
        self.assertEqual(errors, [], f"{what}: tracebacks logged: {errors[:1]}")

    def assertWellFormed(self, answer: Answer, fmt: str | None, what: str) -> None:
        """
        A .xml, .rss or .atom answer is well-formed XML; a JSON one is JSON
        (and an error in JSON is Twitter's error body).
        """
        if fmt in ("xml", "rss", "atom") and "xml" in answer.header("content-type"):
            try:
                ElementTree.fromstring(answer.body)
            except ElementTree.ParseError as e:
                self.fail(f"{what}: not well-formed XML ({e}): {answer.body[:300]!r}")
        if "json" in answer.header("content-type"):
            try:
                decoded = json.loads(answer.body)
            except ValueError as e:
                self.fail(f"{what}: not JSON ({e}): {answer.body[:300]!r}")
            if answer.code >= 400 and isinstance(decoded, dict) and "errors" in decoded:
                self.assertIsInstance(decoded["errors"][0]["code"], int)
                self.assertTrue(decoded["errors"][0]["message"])


# --- 1. the API ----------------------------------------------------------

#: Every endpoint path of the table, with the path arguments filled in.
PATHS = [
    "account/verify_credentials", "account/update_profile", "account/rate_limit_status",
    "application/rate_limit_status",
    "help/configuration", "help/test", "statuses/update", "statuses/home_timeline",
    "statuses/friends_timeline", "statuses/mentions_timeline", "statuses/mentions",
    "statuses/replies", "statuses/user_timeline", "statuses/user_timeline/bob",
    "statuses/public_timeline", "statuses/show", "statuses/show/1", "statuses/lookup",
    "statuses/destroy", "statuses/destroy/1", "search/tweets", "users/show",
    "users/show/bob", "users/lookup", "users/search", "friendships/create",
    "friendships/create/bob", "friendships/destroy", "friendships/destroy/bob",
    "friendships/show", "friendships/exists", "friendships/lookup",
    "friends/ids", "followers/ids", "friends/list", "followers/list", "nothing/here",
    "favorites/create", "favorites/create/1", "favorites/destroy", "favorites/destroy/1",
    "favorites/list", "favorites", "favorites/bob",
]

NAMES = [
    "status", "count", "since_id", "max_id", "id", "user_id", "screen_name", "cursor",
    "stringify_ids", "trim_user", "tweet_mode", "include_entities", "q", "page", "map",
    "in_reply_to_status_id", "source", "name", "description", "location", "url",
    "source_screen_name", "target_screen_name", "source_id", "target_id", "user_a",
    "user_b", "resources", "skip_status", "include_rts", "exclude_replies", "lang",
]

#: Values a stranger might send; no address of another host (the API may
#: resolve ``x@HOST`` accts over the network, which a fuzzer must not do).
API_VALUES = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=5),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from([
        "", "true", "false", "True", "t", "0", "-1", "1e5", "bob", "alice,bob", "%00",
        "\x00", "\x01bob", "a" * 300, str(2**63 - 1), str(2**63), str(2**64),
        str(-(2**63) - 1), "18446744073709551616", "extended", "1,2,3", "NaN", "inf",
        "\ud7ff\ue000", "\ufffe", "\U0001f600", "bob\x0b", "\x1b[31m",
    ]),
)
API_PARAMS = st.dictionaries(st.sampled_from(NAMES), API_VALUES, max_size=5)


def _utf8(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


class APIFuzzTests(FuzzCase, APITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.post("alice", "hello @bob #tag http://example.com/")

    def api(
        self, method: str, path: str, fmt: str | None, credentials: str,
        query: dict[str, str], form: dict[str, str],
    ) -> tuple[str, Answer]:
        url = f"{BASE}/1.1/{path}" + (f".{fmt}" if fmt else "")
        if query:
            url += "?" + "&".join(
                f"{quote(k)}={quote(_utf8(v), safe='')}" for k, v in query.items()
            )
        kwargs: dict[str, Any] = {"headers": {}}
        if credentials in PASSWORDS:
            kwargs["auth"] = (credentials, PASSWORDS[credentials])
        elif credentials == "wrong":
            kwargs["auth"] = ("alice", "wrong")
        elif credentials != "none":
            kwargs["headers"] = {"Authorization": credentials}
        if method == "POST" and form:
            kwargs["data"] = {k: _utf8(v) for k, v in form.items()}
        what = f"{method} {url} {credentials!r} form={form!r}"
        return what, self.fetch(method, url, **kwargs)

    @FUZZ
    @given(
        path=st.sampled_from(PATHS),
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]),
        fmt=st.sampled_from(["json", "xml", "rss", "atom", None]),
        credentials=st.sampled_from([
            "none", "alice", "bob", "wrong", "Basic !!!", "Basic " + "YWxpY2U=",
            "Basic YWxpY2U6\x00", "Bearer x", "OAuth oauth_consumer_key=\"x\"", "Basic",
        ]),
        query=API_PARAMS,
        form=API_PARAMS,
    )
    def test_any_parameters(
        self, path: str, method: str, fmt: str | None, credentials: str,
        query: dict[str, str], form: dict[str, str],
    ) -> None:
        """
        No combination of endpoint, method, format, credentials and
        parameters answers 500 or logs a traceback; every .xml, .rss and
        .atom answer is well-formed XML and every JSON answer is JSON.
        """
        what, answer = self.api(method, path, fmt, credentials, query, form)
        self.assertNoServerError(answer, what)
        if method != "HEAD":
            self.assertWellFormed(answer, fmt, what)

    def _xml_of(self, path: str, query: dict[str, str] | None = None) -> None:
        what, answer = self.api("GET", path, "xml", "alice", query or {}, {})
        self.assertEqual(answer.code, 200, answer.body[:300])
        self.assertNoServerError(answer, what)
        self.assertWellFormed(answer, "xml", what)

    def test_lookup_map_xml(self) -> None:
        """
        statuses/lookup.xml?map=true is well-formed XML.
        """
        self._xml_of("statuses/lookup", {"id": "1,2", "map": "true"})


    def test_rate_limit_status_xml(self) -> None:
        """
        account/rate_limit_status.xml is well-formed XML.
        """
        self._xml_of("account/rate_limit_status")



# --- 2. the page forms ---------------------------------------------------

#: Each form: where it is sent, the page that carries it, its fields.
FORMS = {
    "/signup": ("/signup", ["handle", "password", "name", "password2"]),
    "/login": ("/login", ["handle", "password", "next"]),
    "/home": ("/home", ["status", "text", "in_reply_to"]),
    "/bob/follow": ("/bob", []),
    "/bob/unfollow": ("/bob", []),
    "/nobody/follow": ("/home", []),
    "/settings/profile": ("/settings", ["name", "description", "location", "url"]),
    "/settings/password": ("/settings", ["current", "password", "new", "new2", "confirm"]),
    "/settings/apps": ("/settings/apps", ["name", "description", "url", "callback"]),
    "/settings/apps/revoke": ("/settings/apps", ["app", "id", "token"]),
    "/settings/servers/forget": ("/settings/servers", ["server", "authority"]),
    "/logout": ("/home", []),
    "/people/follow": ("/home", ["acct", "action", "from"]),
    "/settings/image": ("/settings", ["image"]),
}

FORM_VALUES = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x1F), min_size=1, max_size=4),
    st.sampled_from(["", "alice", "bob", "alice-password", "x" * 500, "\x00", "\x0c",
                     str(2**64), "-1", "javascript:alert(1)", "<b>", "\ud800"]),
)


class PageFuzzTests(FuzzCase, APITestCase):
    """
    The pages of the twitter role, through its whole resource tree.
    """

    def setUp(self) -> None:
        super().setUp()
        self.cookies: dict[str, str] = {}
        self.post("alice", "a post, so that her name is in every feed")

    def page(self, method: str, path: str, data: dict[str, bytes] | None = None) -> Answer:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
        if data is not None:
            kwargs["data"] = data
        answer = self.fetch(method, BASE + path, **kwargs)
        keep_cookies(self.cookies, answer.headers.getRawHeaders("set-cookie") or [])
        return answer

    def token_of(self, form_page: str) -> str:
        answer = self.page("GET", form_page)
        self.assertNoServerError(answer, f"GET {form_page}")
        tokens = _CSRF.findall(answer.body.decode("utf-8"))
        return tokens[0] if tokens else ""

    def sign_in(self) -> None:
        token = self.token_of("/login")
        answer = self.page("POST", "/login", {
            "handle": b"alice", "password": PASSWORDS["alice"].encode(), "csrf": token.encode(),
        })
        self.assertEqual(answer.code, 303, answer.body[:300])

    @FUZZ
    @given(
        action=st.sampled_from(sorted(FORMS)),
        signed_in=st.booleans(),
        csrf=st.sampled_from(["right", "right", "missing", "wrong", "empty"]),
        fields=st.data(),
    )
    def test_any_form(self, action: str, signed_in: bool, csrf: str, fields: Any) -> None:
        """
        No form, signed in or not, with any fields and a right, wrong or
        missing CSRF token, answers 500 or logs a traceback; the page
        that carries the form answers too afterwards.
        """
        self.cookies = {}
        if signed_in:
            self.sign_in()
        form_page, names = FORMS[action]
        values = fields.draw(st.dictionaries(
            st.sampled_from(names + ["csrf", "extra"]) if names else st.just("extra"),
            FORM_VALUES, max_size=5,
        ))
        data = {k: _utf8(v) for k, v in values.items()}
        token = self.token_of(form_page)
        if csrf == "right":
            data["csrf"] = token.encode()
        elif csrf == "wrong":
            data["csrf"] = b"0" * max(len(token), 1)
        elif csrf == "empty":
            data["csrf"] = b""
        else:
            data.pop("csrf", None)
        what = f"POST {action} signed_in={signed_in} csrf={csrf} {values!r}"
        self.assertNoServerError(self.page("POST", action, data), what)
        for after in [form_page, "/", "/alice"]:
            self.assertNoServerError(self.page("GET", after), f"GET {after} after {what}")

    @FUZZ
    @given(name=st.text(max_size=20), through_api=st.booleans())
    def test_any_display_name_in_feeds(self, name: str, through_api: bool) -> None:
        """
        Whatever display name a user sets, on the settings page or through
        the API, her feeds and the public timeline's feeds answer, as
        well-formed XML.
        """
        self.cookies = {}
        if through_api:
            self.fetch("POST", BASE + "/1.1/account/update_profile.json",
                       auth=("alice", PASSWORDS["alice"]), data={"name": _utf8(name)})
        else:
            self.sign_in()
            token = self.token_of("/settings")
            self.page("POST", "/settings/profile", {"name": _utf8(name), "csrf": token.encode()})
        self.flushLoggedErrors()
        self.assertFeedsAnswer(repr(name))


    def assertFeedsAnswer(self, what: str) -> None:
        for path, fmt in [("/alice.rss", "rss"), ("/alice.atom", "atom"),
                          ("/1.1/statuses/public_timeline.atom", "atom"),
                          ("/1.1/statuses/public_timeline.rss", "rss")]:
            answer = self.page("GET", path)
            self.assertNoServerError(answer, f"GET {path} with name {what}")
            self.assertWellFormed(answer, fmt, f"GET {path} with name {what}")

    def test_control_character_display_name_feeds(self) -> None:
        """
        A display name with a control character (set through the API)
        still lets her feeds and the public Atom timeline answer.
        """
        code, body, _ = self.call(
            "POST", "/1.1/account/update_profile.json", "alice", data={"name": "A\x01ice"}
        )
        self.assertEqual(code, 200, body)
        self.assertFeedsAnswer("'A\\x01ice'")



# --- 3. range feeds -------------------------------------------------------

#: How long parsing one feed may take (a feed is at most 2 MB).
PARSE_SECONDS = 2.0

DOCTYPE = (
    '<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
)


def valid_feed() -> bytes:
    items = [item(61), item(62, "deleted", deleted=True, deletes=None), item(63)]
    return render_range_feed(ALICE, AUTHORITY, PUBLIC_URL, items, 61, 63, False)


def _with_doctype(feed: str, entity: bool, doctype: str = DOCTYPE) -> str:
    """
    ``feed`` with ``doctype`` (declaring entities) after its XML
    declaration, the text of message 61 using them if ``entity``.
    """
    declaration, _, rest = feed.partition("?>")
    if entity:
        rest = rest.replace("message 61", "&c;")
    return declaration + "?>" + doctype + rest


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
             "utf-32-le", "utf-32-be", "latin-1", "cp037", "cp500", "ascii", "utf-7"]


@st.composite
def mutated_feeds(draw: Any) -> bytes:
    data = bytearray(valid_feed())
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "splice"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.one_of(
                st.binary(max_size=8),
                st.sampled_from([b"<!DOCTYPE x>", b"<!ENTITY e 'x'>", b"&e;", b"&#0;",
                                 b"&#x1;", b"\x00", b"<item>", b"</channel>", b"]]>",
                                 b"<![CDATA[", b"<dw:seq>99999999999999999999999</dw:seq>",
                                 b"<dw:seq>-1</dw:seq>", b"\xef\xbb\xbf", b"\xff\xfe"]),
            ))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 20))]
        else:
            start = draw(st.integers(0, len(data)))
            data[at:at] = data[start:start + draw(st.integers(1, 60))]
    return bytes(data)


@st.composite
def encoded_feeds(draw: Any) -> bytes:
    encoding = draw(st.sampled_from(ENCODINGS))
    declared = draw(st.sampled_from(["UTF-8", None, "UTF-16", "UTF-32", "Shift_JIS", "TF-8"]))
    text = valid_feed().decode("utf-8")
    if draw(st.booleans()):
        text = _with_doctype(text, draw(st.booleans()))
    text = text.replace("encoding='UTF-8'", f"encoding='{declared}'" if declared else "")
    return text.encode(encoding, "replace")


class RangeFeedFuzzTests(SynchronousTestCase):
    def assertRefusedOrRead(self, data: bytes) -> RangePage | None:
        """
        Parsing ``data`` raises FeedError or gives a page, quickly.
        """
        started = time.monotonic()
        try:
            page: RangePage | None = parse_range_feed(data, ACCT, 61, 63)
        except FeedError:
            page = None
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, PARSE_SECONDS, f"{elapsed:.1f} s for {data[:200]!r}")
        if page is not None:
            self.assertIsInstance(page, RangePage)
        return page

    @FUZZ
    @given(data=st.binary(max_size=400))
    def test_random_bytes(self, data: bytes) -> None:
        """
        Random bytes are refused with FeedError.
        """
        self.assertIsNone(self.assertRefusedOrRead(data))

    @settings(FUZZ, max_examples=500)
    @given(data=mutated_feeds())
    def test_mutated_feed(self, data: bytes) -> None:
        """
        A valid feed with random changes is refused with FeedError or read
        as a page, never anything else.
        """
        page = self.assertRefusedOrRead(data)
        if page is not None:
            self.assertLessEqual(len(page.items), 3 + data.count(b"<item>"))

    @settings(FUZZ, max_examples=300)
    @given(data=encoded_feeds())
    def test_any_encoding(self, data: bytes) -> None:
        """
        A feed in any encoding, with or without a DOCTYPE, is refused or
        read; one with a DOCTYPE is always refused, whatever the encoding.
        """
        page = self.assertRefusedOrRead(data)
        if b"ENTITY" in _all_decodings(data):
            self.assertIsNone(page, f"a DOCTYPE feed was read: {data[:120]!r}")

    def test_utf16_doctype_feed(self) -> None:
        """
        A feed in UTF-16 without a byte-order mark (which is also valid
        UTF-8, so the UTF-8 check passes it) with a DOCTYPE and entities is
        refused.  (Its entity expands to a short text, so that no other
        limit refuses the feed.)
        """
        doctype = '<!DOCTYPE rss [<!ENTITY c "expanded">]>'
        text = _with_doctype(valid_feed().decode("utf-8"), True, doctype)
        for encoding in ["utf-16-le", "utf-16-be"]:
            data = text.replace("'UTF-8'", "'UTF-16'").encode(encoding)
            with self.subTest(encoding=encoding):
                self.assertIsNone(self.assertRefusedOrRead(data))


    def test_declared_multibyte_encoding(self) -> None:
        """
        A UTF-8 feed whose XML declaration names a multi-byte encoding
        (UTF-32, UTF-7, Shift JIS, Big5) is refused with FeedError.
        (Found by test_any_encoding: today expat raises ValueError,
        "multi-byte encodings are not supported".)
        """
        for declared in [b"'UTF-32'", b"'UTF-7'", b"'Shift_JIS'", b"'Big5'"]:
            with self.subTest(declared=declared):
                self.assertRefusedOrRead(valid_feed().replace(b"'UTF-8'", declared))

    def test_declared_unknown_encoding(self) -> None:
        """
        A feed whose XML declaration names an encoding Python does not
        know is refused with FeedError.  (Found by test_mutated_feed:
        today LookupError, "unknown encoding: TF-8".)
        """
        data = valid_feed().replace(b"'UTF-8'", b"'TF-8'")
        self.assertRefusedOrRead(data)


def _all_decodings(data: bytes) -> bytes:
    """
    ``data`` decoded in each encoding a parser might guess, as ASCII.
    """
    found = []
    for encoding in ENCODINGS:
        try:
            found.append(codecs.decode(data, encoding).encode("ascii", "ignore"))
        except (UnicodeError, ValueError):
            pass
    return b"\n".join(found)


# --- 4. the ping role -----------------------------------------------------

S1 = "https://s1.example"
PING = "http://ping.example"

JSON_NUMBERS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63) - 1, -1, 0, 10**400]),
    st.floats(allow_nan=False, allow_infinity=False),
)
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), JSON_NUMBERS, st.text(max_size=30),
    st.sampled_from(["alice@s1.example", "ALICE@S1.EXAMPLE", "bob@s2.example:8080", S1]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=20), inner, max_size=4)
    ),
    max_leaves=12,
)
ACCTS = st.one_of(
    st.text(max_size=30), st.sampled_from(["alice@s1.example", "bob@s1.example", "x@y"])
)
EXCHANGE_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "server": st.one_of(st.just(S1), JSON_VALUES),
        "reports": st.one_of(
            st.dictionaries(ACCTS, st.one_of(JSON_NUMBERS, JSON_VALUES), max_size=4),
            JSON_VALUES,
        ),
        "subscribe": st.one_of(st.lists(ACCTS, max_size=4), JSON_VALUES),
        "unsubscribe": st.one_of(st.lists(ACCTS, max_size=4), JSON_VALUES),
        "epoch": JSON_VALUES,
        "cursor": st.one_of(JSON_NUMBERS, JSON_VALUES),
    },
)



class PingFuzzTests(FuzzCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.directory = MemoryDirectory(self.clock)
        self.service = PingService(self.directory, clock=self.clock, verifier=FakeVerifier())
        self.stub = StubTreq(make_ping_resource(self.service))

    def exchange(self, body: bytes, wait: str | None = None) -> Answer:
        url = PING + "/exchange" + ("" if wait is None else "?wait=" + quote(wait))
        headers = {b"content-type": [b"application/json"], SIGNER_HEADER: [S1.encode()]}
        d = self.stub.request("POST", url, data=body, headers=headers)
        self.stub.flush()
        answered: list[object] = []
        d.addBoth(lambda result: answered.append(result) or result)
        if not answered:
            # A long poll: let it time out.  (Not ``d.called``: a Deferred
            # waiting on another one is "called" but has no result yet.)
            self.clock.advance(3600)
            self.stub.flush()
        response = self.successResultOf(d)
        body_d = response.content()
        self.stub.flush()
        return Answer(response.code, response.headers, self.successResultOf(body_d))

    def assertAnswered(self, answer: Answer, what: str) -> None:
        self.assertNoServerError(answer, what)
        self.assertIn(answer.code // 100, (2, 4), what)
        self.assertWellFormed(answer, None, what)

    @FUZZ
    @given(body=st.one_of(EXCHANGE_BODIES, JSON_VALUES), wait=st.one_of(
        st.none(), st.sampled_from(["", "0", "-1", "1e400", "nan", "inf", str(2**64), "x"])))
    def test_any_exchange(self, body: Any, wait: str | None) -> None:
        """
        Any JSON exchange body, of any shape, types and numbers, and any
        ``wait``, is answered 2xx or 4xx, never 500, and logs no traceback;
        a lookup afterwards answers too.
        """
        data = json.dumps(body).encode("utf-8")
        what = f"exchange {data[:300]!r} wait={wait!r}"
        self.assertAnswered(self.exchange(data, wait), what)
        for acct in ["alice@s1.example", "ALICE@S1.EXAMPLE", "bob@s2.example:8080"]:
            answer = self.fetch("GET", PING + "/lookup?acct=" + quote(acct))
            self.assertAnswered(answer, f"lookup {acct} after {what}")

    @FUZZ
    @given(data=st.one_of(st.binary(max_size=100), st.sampled_from([
        b"[" * 100_000, b"{\"a\":" * 100_000, b"1" * 5000, b"1e99999", b"NaN", b"-Infinity",
        b"\xff\xfe{}", b"",
    ])))
    def test_any_exchange_bytes(self, data: bytes) -> None:
        """
        Bytes that are not a JSON object (deep nesting, huge numbers,
        invalid UTF-8) get a 4xx.
        """
        answer = self.exchange(data)
        self.assertAnswered(answer, f"exchange {data[:100]!r}")
        self.assertEqual(answer.code // 100, 4)

    @FUZZ
    @given(acct=st.text(max_size=60))
    def test_any_lookup(self, acct: str) -> None:
        """
        Any acct to look up gets 200, 400 or 404, never 500.
        """
        answer = self.fetch("GET", PING + "/lookup?acct=" + quote(_utf8(acct), safe=""))
        self.assertAnswered(answer, f"lookup {acct!r}")

    def _report(self, number: Any) -> Answer:
        body = {"server": S1, "reports": {"alice@s1.example": number}}
        return self.exchange(json.dumps(body).encode("utf-8"))

    def test_report_beyond_64_bits(self) -> None:
        """
        A report of a number outside 64 bits is refused with a 4xx, and
        the exchanges after it still work.
        """
        for number in [2**64, 2**70, -(2**63) - 1]:
            answer = self._report(number)
            self.assertNoServerError(answer, f"report {number}")
            self.assertEqual(answer.code // 100, 4, answer.body)
        answer = self._report(5)
        self.assertNoServerError(answer, "report 5")
        self.assertEqual(answer.code, 200, answer.body)

    def test_server_lone_surrogate(self) -> None:
        """
        An exchange naming a ``server`` with a lone surrogate (``"\\ud800"``,
        valid JSON) is refused with a 4xx and logs no traceback.  (Found by
        test_any_exchange_bytes: today the refusal, which echoes the value,
        cannot be encoded: 500, and the log line fails too.)
        """
        answer = self.exchange(b'{"server": "\\ud800"}')
        self.assertAnswered(answer, "server \\ud800")

