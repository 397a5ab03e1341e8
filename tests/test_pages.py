"""
The HTML pages, driven in memory with StubTreq over the real resource and a
real (synchronous) SQLite store, with a small cookie-keeping browser.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from typing import Any, Coroutine, TypeVar
from urllib.parse import urlencode

from treq.testing import StubTreq
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from distwit.model import Account
from distwit.core.microblog import Microblog
from distwit.roles.twitter import TwitterRoot
from distwit.web.pages import Pages
from distwit.web.site import EXPIRED_FORM, SESSION_LIFETIME

from tests.support import cheap_hasher, synchronous_sqlite_store

BASE = "http://localhost:8080"
PASSWORDS = {"alice": "alice-password", "bob": "bob-password"}
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')

T = TypeVar("T")


def keep_cookies(cookies: dict[str, str], set_cookie_lines: list[str]) -> None:
    """
    What a browser does with an answer's ``Set-Cookie`` lines: keep each
    cookie, and forget one set empty or with ``Max-Age=0``.
    """
    for line in set_cookie_lines:
        pair, _, attributes = line.partition(";")
        name, _, value = pair.partition("=")
        if not value or "max-age=0" in attributes.lower().replace(" ", ""):
            cookies.pop(name, None)
        else:
            cookies[name] = value


@dataclass
class Page:
    """
    What a browser got back for one request.
    """

    code: int
    headers: Any
    text: str

    @property
    def location(self) -> str | None:
        values = self.headers.getRawHeaders("location")
        return values[0] if values else None

    @property
    def set_cookies(self) -> list[str]:
        return list(self.headers.getRawHeaders("set-cookie") or [])

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    def csrf(self) -> str:
        tokens = set(_CSRF.findall(self.text))
        assert len(tokens) == 1, tokens
        return tokens.pop()

    def cookie(self, name: str) -> str | None:
        """
        The Set-Cookie line for ``name``, if this response sent one.
        """
        for line in self.set_cookies:
            if line.split("=", 1)[0] == name:
                return line
        return None


@dataclass
class Browser:
    """
    One browser: its own StubTreq and the cookies it keeps, sent by hand
    (an explicit Cookie header, even an empty one, keeps treq's own cookie
    jar out of it), never following redirects so tests see them.
    """

    resource: Any
    cookies: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stub: Any = StubTreq(self.resource)

    def request(self, method: str, path: str, data: Any = None,
                headers: dict[str, str] | None = None) -> Page:
        headers = dict(headers or {})
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
        if data is not None:
            kwargs["data"] = data
        d = self.stub.request(method, BASE + path, **kwargs)
        self.stub.flush()
        response = _result(d)
        body = response.content()
        self.stub.flush()
        page = Page(response.code, response.headers, _result(body).decode("utf-8"))
        keep_cookies(self.cookies, page.set_cookies)
        return page

    def get(self, path: str) -> Page:
        return self.request("GET", path)

    def post(self, path: str, fields: dict[str, str]) -> Page:
        return self.request("POST", path, data=fields)

    def submit(self, form_path: str, fields: dict[str, str], action: str | None = None) -> Page:
        """
        Open the page with the form and send it, as a person would.
        """
        token = self.get(form_path).csrf()
        return self.post(action or form_path.partition("?")[0], {**fields, "csrf": token})


def _result(d: Any) -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


class PagesTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.store = synchronous_sqlite_store(self.mktemp())
        self.clock = Clock()
        self.clock.advance(1_700_000_000)  # 2023-11-14 22:13:20 UTC
        self.microblog = Microblog(self.store, cheap_hasher(), self.clock)
        self.alice = self.run_(self.microblog.create_user("alice", PASSWORDS["alice"], "Alice A."))
        self.bob = self.run_(self.microblog.create_user("bob", PASSWORDS["bob"]))
        self.make_pages()

    def make_pages(self, open_registration: bool = True, secure_cookies: bool = False,
                   **options: Any) -> None:
        """
        The pages under test; ``options`` go to :class:`Pages` as they are.
        """
        self.pages = Pages(
            self.microblog,
            secret=b"s" * 32,
            clock=self.clock,
            open_registration=open_registration,
            secure_cookies=secure_cookies,
            **options,
        )
        self.resource = self.pages.resource()

    def run_(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.successResultOf(ensureDeferred(coroutine))  # type: ignore[no-any-return]

    def browser(self) -> Browser:
        return Browser(self.resource)

    def signed_in(self, handle: str) -> Browser:
        browser = self.browser()
        page = browser.submit("/login", {"handle": handle, "password": PASSWORDS[handle]})
        self.assertEqual((page.code, page.location), (303, "/home"), page.text)
        return browser

    def posts_of(self, account: Account) -> list[str]:
        posts = self.successResultOf(self.store.user_timeline(account.id, 200, None, None))
        return [p.text for p in posts]

    def account(self, handle: str) -> Account | None:
        return self.successResultOf(self.store.get_local_user(handle))

    def assertHTML(self, page: Page) -> None:
        self.assertEqual(page.header("content-type"), "text/html; charset=utf-8")
        self.assertIn("<title>", page.text)
        self.assertNotIn("Traceback", page.text)


class PublicTimelineTests(PagesTestCase):
    def test_lists_posts_newest_first(self) -> None:
        """
        The front page shows local posts, newest first, each with its
        author linked to their profile and its time in UTC.
        """
        self.run_(self.microblog.post(self.alice, "first from alice"))
        self.clock.advance(60)
        self.run_(self.microblog.post(self.bob, "then bob"))
        page = self.browser().get("/")
        self.assertEqual(page.code, 200)
        self.assertHTML(page)
        self.assertLess(page.text.index("then bob"), page.text.index("first from alice"))
        self.assertIn('<a href="/alice">', page.text)
        self.assertIn("Alice A.", page.text)
        self.assertIn("2023-11-14 22:13 UTC", page.text)
        self.assertIn("2023-11-14 22:14 UTC", page.text)

    def test_escapes_html(self) -> None:
        """
        A post's text is shown as text: markup in it is not markup on the page.
        """
        self.run_(self.microblog.post(self.alice, '<script>alert("x")</script> & <b>bold</b>'))
        page = self.browser().get("/")
        self.assertNotIn("<script>", page.text)
        self.assertNotIn("<b>bold", page.text)
        self.assertIn("&lt;script&gt;", page.text)
        self.assertIn('<script>alert("x")</script> & <b>bold</b>', html.unescape(page.text))

    def test_unicode(self) -> None:
        """
        Pages are UTF-8 and show any text as it was posted.
        """
        self.run_(self.microblog.post(self.alice, "héllo ☃ 你好 🎉"))
        page = self.browser().get("/")
        self.assertIn("héllo ☃ 你好 🎉", page.text)

    def test_paging_with_max_id(self) -> None:
        """
        Twenty posts a page; an "older" link (max_id) leads to the rest,
        and the last page has no such link.
        """
        for n in range(25):
            self.run_(self.microblog.post(self.alice, f"post number {n}."))
        browser = self.browser()
        first = browser.get("/")
        self.assertEqual(first.text.count('class="post"'), 20)
        self.assertIn("post number 24.", first.text)
        self.assertNotIn("post number 4.", first.text)
        older = re.search(r'href="(/\?max_id=\d+)"', first.text)
        assert older is not None
        second = browser.get(html.unescape(older.group(1)))
        self.assertEqual(second.code, 200)
        self.assertEqual(second.text.count('class="post"'), 5)
        self.assertIn("post number 4.", second.text)
        self.assertIn("post number 0.", second.text)
        self.assertNotIn("post number 5.", second.text)
        self.assertNotIn("max_id=", second.text)

    def test_bad_max_id(self) -> None:
        """
        A max_id that is not a post number gets a 400 page, on every
        timeline, not a crash.
        """
        browser = self.signed_in("alice")
        for path in ["/", "/home", "/alice"]:
            for value in ["x", "-1", "1.5", "0", " 7", "٣", "9" * 30]:
                page = browser.get(path + "?" + urlencode({"max_id": value}))
                self.assertEqual(page.code, 400, (path, value))
                self.assertHTML(page)
                self.assertIn("max_id must be a post number.", page.text)

    def test_header_links(self) -> None:
        """
        Visitors get sign-in and sign-up links; a signed-in user gets home,
        their profile and a sign-out button (a POST form).
        """
        page = self.browser().get("/")
        self.assertIn('href="/login"', page.text)
        self.assertIn('href="/signup"', page.text)
        self.assertNotIn('action="/logout"', page.text)
        page = self.signed_in("alice").get("/")
        self.assertIn('href="/home"', page.text)
        self.assertIn('href="/alice">Your profile', page.text)
        self.assertIn('<form class="inline" method="post" action="/logout">', page.text)
        self.assertNotIn('href="/login"', page.text)

    def test_no_signup_link_when_closed(self) -> None:
        """
        A server closed to sign-up does not offer it.
        """
        self.make_pages(open_registration=False)
        page = self.browser().get("/")
        self.assertIn('href="/login"', page.text)
        self.assertNotIn('href="/signup"', page.text)


class SignUpTests(PagesTestCase):
    def test_signup_signs_in(self) -> None:
        """
        Signing up creates the user, signs them in with a safe session
        cookie (HttpOnly, SameSite=Lax, Path=/, 30 days) and goes home.
        """
        browser = self.browser()
        page = browser.submit("/signup", {
            "handle": "carol", "password": "carol-password",
            "password_again": "carol-password", "name": "Carol C.",
        })
        self.assertEqual((page.code, page.location), (303, "/home"))
        cookie = page.cookie("dw_session")
        assert cookie is not None
        attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
        self.assertIn("httponly", attributes)
        self.assertIn("samesite=lax", attributes)
        self.assertIn("path=/", attributes)
        self.assertIn(f"max-age={SESSION_LIFETIME}", attributes)
        self.assertNotIn("secure", attributes)
        carol = self.account("carol")
        assert carol is not None
        self.assertEqual(carol.name, "Carol C.")
        home = browser.get("/home")
        self.assertEqual(home.code, 200)
        self.assertIn('href="/carol">Your profile', home.text)
        self.assertIsNotNone(
            self.run_(self.microblog.authenticate("carol", "carol-password", "127.0.0.1"))
        )

    def test_secure_cookies(self) -> None:
        """
        On an HTTPS site, the session and form cookies are marked Secure.
        """
        self.make_pages(secure_cookies=True)
        browser = self.browser()
        form = browser.get("/login")
        anon = form.cookie("dw_anon")
        assert anon is not None
        self.assertIn("; Secure", anon)
        page = browser.post("/login", {
            "handle": "alice", "password": PASSWORDS["alice"], "csrf": form.csrf()
        })
        session = page.cookie("dw_session")
        assert session is not None
        self.assertIn("; Secure", session)

    def test_rule_errors(self) -> None:
        """
        A refused handle or password shows the form again (400) with the
        reason and the typed handle, and creates nobody.
        """
        cases = [
            ("bad handle!", "password-1", "password-1", "1 to 15 letters, digits or underscores"),
            ("a" * 16, "password-1", "password-1", "1 to 15 letters, digits or underscores"),
            ("ALICE", "password-1", "password-1", "is taken"),
            ("login", "password-1", "password-1", "is reserved"),
            ("dave", "short", "short", "at least 8 characters"),
            ("dave", "password-1", "password-2", "The two passwords differ."),
        ]
        for handle, password, again, message in cases:
            browser = self.browser()
            page = browser.submit("/signup", {
                "handle": handle, "password": password, "password_again": again,
            })
            self.assertEqual(page.code, 400, handle)
            self.assertHTML(page)
            self.assertIn(message, html.unescape(page.text))
            self.assertIn(f'value="{html.escape(handle)}"', page.text)
            self.assertNotIn(password, page.text)
            self.assertIsNone(page.cookie("dw_session"))
        self.assertIsNone(self.account("dave"))
        self.assertIsNone(self.account("login"))
        self.assertEqual(self.account("alice"), self.alice)

    def test_signup_closed(self) -> None:
        """
        With registration closed, the sign-up page and form answer 403
        "sign-up is closed on this server" and create nobody.
        """
        self.make_pages(open_registration=False)
        browser = self.browser()
        token = browser.get("/login").csrf()
        page = browser.get("/signup")
        self.assertEqual(page.code, 403)
        self.assertIn("Sign-up is closed on this server.", page.text)
        page = browser.post("/signup", {
            "handle": "carol", "password": "carol-password",
            "password_again": "carol-password", "csrf": token,
        })
        self.assertEqual(page.code, 403)
        self.assertIn("Sign-up is closed on this server.", page.text)
        self.assertIsNone(self.account("carol"))

    def test_frame_and_content_headers(self) -> None:
        """
        The sign-in and sign-up pages may not be framed, and say they are
        UTF-8 HTML under a same-origin content policy.
        """
        for path in ["/login", "/signup"]:
            page = self.browser().get(path)
            self.assertEqual(page.header("x-frame-options"), "DENY")
            self.assertHTML(page)
            self.assertIn("default-src 'self'", page.header("content-security-policy") or "")


class SignInTests(PagesTestCase):
    def test_wrong_password(self) -> None:
        """
        A wrong password or unknown handle shows the form again (400)
        with "Wrong handle or password." and signs nobody in.
        """
        for handle, password in [("alice", "bob-password"), ("nobody", "whatever-1"),
                                 ("", ""), ("bad handle", "x")]:
            browser = self.browser()
            page = browser.submit("/login", {"handle": handle, "password": password})
            self.assertEqual(page.code, 400)
            self.assertHTML(page)
            self.assertIn("Wrong handle or password.", page.text)
            self.assertIn(f'value="{html.escape(handle)}"', page.text)
            self.assertIsNone(page.cookie("dw_session"))
            self.assertEqual(browser.get("/home").code, 303)

    def test_next_is_honoured_for_local_paths(self) -> None:
        """
        After signing in, a ``next`` path on this site is where one goes.
        """
        browser = self.browser()
        form = browser.get("/login?next=%2Falice")
        self.assertIn('name="next" value="/alice"', form.text)
        page = browser.post("/login", {
            "handle": "bob", "password": PASSWORDS["bob"], "next": "/alice", "csrf": form.csrf(),
        })
        self.assertEqual((page.code, page.location), (303, "/alice"))

    def test_next_is_refused_for_other_sites(self) -> None:
        """
        A ``next`` that would leave the site (//host, /\\host, a full URL,
        whitespace tricks) is ignored: one goes home.
        """
        for next_ in ["//evil.example", "https://evil.example", "/\\evil.example",
                      "/\t/evil.example", "evil.example", "/home\r\nSet-Cookie: x=y"]:
            browser = self.browser()
            form = browser.get("/login?" + urlencode({"next": next_}))
            self.assertNotIn('name="next"', form.text)
            page = browser.post("/login", {
                "handle": "bob", "password": PASSWORDS["bob"], "next": next_,
                "csrf": form.csrf(),
            })
            self.assertEqual((page.code, page.location), (303, "/home"), next_)

    def test_session_rotates(self) -> None:
        """
        Each sign-in gives a new session id, and the browser's old one
        stops working.
        """
        browser = self.signed_in("alice")
        first = browser.cookies["dw_session"]
        page = browser.submit("/login", {"handle": "alice", "password": PASSWORDS["alice"]})
        self.assertEqual(page.code, 303)
        second = browser.cookies["dw_session"]
        self.assertNotEqual(first, second)
        self.assertEqual(browser.get("/home").code, 200)
        old = Browser(self.resource, {"dw_session": first})
        self.assertEqual(old.get("/home").code, 303)

    def test_only_a_hash_is_stored(self) -> None:
        """
        The database keeps the SHA-256 of the session cookie, not the
        cookie itself.
        """
        token = self.signed_in("alice").cookies["dw_session"]
        now = int(self.clock.seconds() * 1000)
        hashed = hashlib.sha256(token.encode("ascii")).hexdigest()
        found = self.successResultOf(self.store.get_session(hashed, now))
        assert found is not None
        self.assertEqual(found.account_id, self.alice.id)
        self.assertIsNone(self.successResultOf(self.store.get_session(token, now)))

    def test_logout(self) -> None:
        """
        Signing out ends the session: the cookie is cleared and the old
        cookie no longer signs anyone in.
        """
        browser = self.signed_in("alice")
        token = browser.cookies["dw_session"]
        page = browser.post("/logout", {"csrf": browser.get("/home").csrf()})
        self.assertEqual((page.code, page.location), (303, "/"))
        cleared = page.cookie("dw_session")
        assert cleared is not None
        self.assertIn("Max-Age=0", cleared)
        self.assertNotIn("dw_session", browser.cookies)
        replay = Browser(self.resource, {"dw_session": token})
        self.assertEqual(replay.get("/home").code, 303)
        self.assertIn('href="/login"', replay.get("/").text)

    def test_session_expires(self) -> None:
        """
        A session lasts 30 days.
        """
        browser = self.signed_in("alice")
        self.clock.advance(SESSION_LIFETIME - 60)
        self.assertEqual(browser.get("/home").code, 200)
        self.clock.advance(120)
        self.assertEqual(browser.get("/home").code, 303)

    def test_forged_cookie(self) -> None:
        """
        A made-up session cookie signs nobody in and is cleared.
        """
        browser = Browser(self.resource, {"dw_session": "A" * 43})
        page = browser.get("/home")
        self.assertEqual(page.code, 303)
        self.assertNotIn("dw_session", browser.cookies)


class FormTokenTests(PagesTestCase):
    def test_post_without_or_with_wrong_csrf(self) -> None:
        """
        Every form POST without this visitor's token is refused with 403
        and changes nothing: no user, no post, no follow, no sign-in or out.
        """
        alice = self.signed_in("alice")
        alice_token = alice.get("/home").csrf()
        visitor = self.browser()
        visitor.get("/login")
        signup = {"handle": "carol", "password": "carol-password",
                  "password_again": "carol-password"}
        attempts = [
            (visitor, "/signup", signup),
            (visitor, "/login", {"handle": "alice", "password": PASSWORDS["alice"]}),
            (alice, "/home", {"status": "forged post"}),
            (alice, "/bob/follow", {}),
            (alice, "/logout", {}),
        ]
        for browser, path, fields in attempts:
            for token in [None, "", "wrong", "0" * 64]:
                sent = dict(fields) if token is None else {**fields, "csrf": token}
                page = browser.post(path, sent)
                self.assertEqual(page.code, 403, (path, token))
                self.assertHTML(page)
                self.assertIn(EXPIRED_FORM, page.text)
                self.assertIsNone(page.cookie("dw_session"))
        # Another visitor's token is no good either.
        page = visitor.post("/login", {
            "handle": "alice", "password": PASSWORDS["alice"], "csrf": alice_token,
        })
        self.assertEqual(page.code, 403)
        self.assertIsNone(self.account("carol"))
        self.assertEqual(self.posts_of(self.alice), [])
        self.assertFalse(self.run_(self.microblog.is_following(self.alice, self.bob)))
        self.assertEqual(alice.get("/home").code, 200)

    def test_form_from_a_visitor_without_cookie(self) -> None:
        """
        A sign-in posted by a browser that never loaded the form (no
        ``dw_anon`` cookie) is refused.
        """
        token = self.browser().get("/login").csrf()
        page = self.browser().post("/login", {
            "handle": "alice", "password": PASSWORDS["alice"], "csrf": token,
        })
        self.assertEqual(page.code, 403)
        self.assertIsNone(page.cookie("dw_session"))

    def test_invalid_utf8(self) -> None:
        """
        A form that is not UTF-8 gets a 400 page and is not stored.
        """
        browser = self.signed_in("alice")
        token = browser.get("/home").csrf()
        page = browser.request(
            "POST", "/home",
            data=b"csrf=" + token.encode() + b"&status=caf%E9",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        self.assertEqual(page.code, 400)
        self.assertHTML(page)
        self.assertIn("not sent as UTF-8", page.text)
        self.assertEqual(self.posts_of(self.alice), [])


class HomeTests(PagesTestCase):
    def test_requires_sign_in(self) -> None:
        """
        /home sends a visitor to the sign-in page, to come back after.
        """
        page = self.browser().get("/home")
        self.assertEqual((page.code, page.location), (303, "/login?next=%2Fhome"))

    def test_post_box(self) -> None:
        """
        Home has a post box (a plain form, no script needed) saying
        posts are 140 characters.  A script from this site only counts
        down as one types (tests/test_browser.py sees it); no script is
        written into the page.
        """
        page = self.signed_in("alice").get("/home")
        self.assertIn('<form class="compose" method="post" action="/home">', page.text)
        self.assertIn('<textarea id="status" name="status"', page.text)
        self.assertIn('<span id="status-left">140</span> characters left', page.text)
        self.assertEqual(re.findall(r"<script[^>]*>", page.text),
                         ['<script src="/static/compose.js" defer>'])
        self.assertTrue(page.header("content-security-policy").startswith("default-src 'self';"))
        script = self.browser().get("/static/compose.js")
        self.assertEqual(script.header("content-type"), "text/javascript; charset=utf-8")
        self.assertIn('getElementById("status-left")', script.text)

    def test_posting(self) -> None:
        """
        Posting from home stores the post (source "web") and shows it.
        """
        browser = self.signed_in("alice")
        page = browser.submit("/home", {"status": "  hello from the web ☃ "})
        self.assertEqual((page.code, page.location), (303, "/home"))
        posts = self.successResultOf(self.store.user_timeline(self.alice.id, 20, None, None))
        self.assertEqual([(p.text, p.source) for p in posts], [("hello from the web ☃", "web")])
        self.assertIn("hello from the web ☃", browser.get("/home").text)

    def test_refused_posts(self) -> None:
        """
        A post over 140 characters, an empty one or a repeat is refused
        (400) with the reason shown and the text kept; nothing is stored.
        """
        browser = self.signed_in("alice")
        self.assertEqual(browser.submit("/home", {"status": "once"}).code, 303)
        cases = [
            ("x" * 141, "Status is over 140 characters (141)."),
            ("   ", "A post needs some text."),
            ("once", "Status is a duplicate."),
        ]
        for text, message in cases:
            page = browser.submit("/home", {"status": text})
            self.assertEqual(page.code, 400, text)
            self.assertHTML(page)
            self.assertIn(message, page.text)
            self.assertIn(f"{text}</textarea>", page.text)
        self.assertEqual(self.posts_of(self.alice), ["once"])

    def test_140_characters_is_fine(self) -> None:
        """
        Exactly 140 characters (code points, not bytes) may be posted.
        """
        browser = self.signed_in("alice")
        text = "é" * 139 + "🎉"
        self.assertEqual(browser.submit("/home", {"status": text}).code, 303)
        self.assertEqual(self.posts_of(self.alice), [text])

    def test_home_timeline(self) -> None:
        """
        Home shows one's own posts and those of people one follows, not others'.
        """
        carol = self.run_(self.microblog.create_user("carol", "carol-password"))
        self.run_(self.microblog.follow(self.alice, self.bob))
        self.run_(self.microblog.post(self.alice, "alice's own"))
        self.run_(self.microblog.post(self.bob, "bob's post"))
        self.run_(self.microblog.post(carol, "carol's post"))
        page = self.signed_in("alice").get("/home")
        self.assertIn("alice&#39;s own", page.text)
        self.assertIn("bob&#39;s post", page.text)
        self.assertNotIn("carol", page.text)

    def test_posting_needs_sign_in(self) -> None:
        """
        A visitor's post (even with a valid form token) is not stored.
        """
        browser = self.browser()
        token = browser.get("/login").csrf()
        page = browser.post("/home", {"status": "anonymous", "csrf": token})
        self.assertEqual(page.code, 303)
        self.assertEqual(page.location, "/login?next=%2Fhome")
        self.assertEqual(self.posts_of(self.alice), [])


class ProfileTests(PagesTestCase):
    def counts(self, page: Page) -> tuple[int, int, int]:
        found = [
            int(re.search(rf'class="{name}-count">(\d+)<', page.text).group(1))  # type: ignore[union-attr]
            for name in ("posts", "following", "followers")
        ]
        return found[0], found[1], found[2]

    def test_profile(self) -> None:
        """
        A profile shows the name, @handle, counts and the user's posts only.
        """
        self.run_(self.microblog.post(self.alice, "by alice"))
        self.run_(self.microblog.post(self.bob, "by bob"))
        self.run_(self.microblog.follow(self.alice, self.bob))
        page = self.browser().get("/alice")
        self.assertEqual(page.code, 200)
        self.assertHTML(page)
        self.assertIn("<title>Alice A. (@alice) · distwit</title>", page.text)
        self.assertIn("@alice", page.text)
        self.assertEqual(self.counts(page), (1, 1, 0))
        self.assertIn("by alice", page.text)
        self.assertNotIn("by bob", page.text)
        self.assertIn('href="/login?next=%2Falice"', page.text)

    def test_handles_are_case_insensitive(self) -> None:
        """
        /ALICE is alice's page.
        """
        page = self.browser().get("/ALICE")
        self.assertEqual(page.code, 200)
        self.assertIn("@alice", page.text)

    def test_follow_and_unfollow(self) -> None:
        """
        Someone signed in sees Follow on another's page; it follows, the
        follower count goes up and the button becomes Unfollow, which
        undoes it.
        """
        browser = self.signed_in("bob")
        page = browser.get("/alice")
        self.assertIn('action="/alice/follow"', page.text)
        self.assertIn(">Follow</button>", page.text)
        self.assertEqual(self.counts(page), (0, 0, 0))

        page = browser.post("/alice/follow", {"csrf": page.csrf()})
        self.assertEqual((page.code, page.location), (303, "/alice"))
        page = browser.get("/alice")
        self.assertEqual(self.counts(page), (0, 0, 1))
        self.assertIn('action="/alice/unfollow"', page.text)
        self.assertIn(">Unfollow</button>", page.text)
        self.assertTrue(self.run_(self.microblog.is_following(self.bob, self.alice)))
        self.assertEqual(self.counts(browser.get("/bob")), (0, 1, 0))

        page = browser.post("/alice/unfollow", {"csrf": page.csrf()})
        self.assertEqual((page.code, page.location), (303, "/alice"))
        page = browser.get("/alice")
        self.assertEqual(self.counts(page), (0, 0, 0))
        self.assertIn(">Follow</button>", page.text)
        self.assertFalse(self.run_(self.microblog.is_following(self.bob, self.alice)))

    def test_no_button_on_own_profile(self) -> None:
        """
        One's own page has no follow button, and following oneself by
        hand is refused with the reason.
        """
        browser = self.signed_in("alice")
        page = browser.get("/alice")
        self.assertNotIn("follow</button>", page.text.lower())
        page = browser.post("/alice/follow", {"csrf": page.csrf()})
        self.assertEqual(page.code, 400)
        self.assertIn("You can&#39;t follow yourself.", page.text)

    def test_follow_needs_sign_in(self) -> None:
        """
        A visitor's follow is sent to sign in and records nothing.
        """
        browser = self.browser()
        token = browser.get("/login").csrf()
        page = browser.post("/alice/follow", {"csrf": token})
        self.assertEqual((page.code, page.location), (303, "/login?next=%2Falice"))
        self.assertEqual(self.account("alice"), self.alice)

    def test_unknown_handle(self) -> None:
        """
        An unknown user, a segment that is not a handle, or any unknown
        path gets a 404 HTML page.
        """
        browser = self.signed_in("alice")
        token = browser.get("/home").csrf()
        for path in ["/nobody", "/" + "a" * 16, "/bad-handle", "/alice.json",
                     "/%C3%A9", "/alice/photos", "/a/b/c", "/home/", "/static/other.css"]:
            page = browser.get(path)
            self.assertEqual(page.code, 404, path)
            self.assertHTML(page)
            self.assertIn("<title>", page.text)
        page = browser.post("/nobody/follow", {"csrf": token})
        self.assertEqual(page.code, 404)


class ResourceTests(PagesTestCase):
    def test_wrong_method(self) -> None:
        """
        A method a page does not take (PUT /home) gets a 405 HTML page.
        """
        page = self.browser().request("PUT", "/home")
        self.assertEqual(page.code, 405)
        self.assertHTML(page)
        self.assertEqual(sorted(page.header("allow").split(", ")), ["GET", "HEAD", "POST"])

    def test_unexpected_error(self) -> None:
        """
        An unexpected failure is logged and gives a plain 500 page without
        a traceback.
        """

        def broken(*args: Any) -> Any:
            raise ZeroDivisionError("the database is on fire")

        self.patch(self.store, "public_timeline", broken)
        page = self.browser().get("/")
        self.assertEqual(page.code, 500)
        self.assertHTML(page)
        self.assertNotIn("fire", page.text)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_stylesheet(self) -> None:
        """
        The stylesheet is served from this site, as CSS.
        """
        page = self.browser().get("/static/site.css")
        self.assertEqual(page.code, 200)
        self.assertEqual(page.header("content-type"), "text/css; charset=utf-8")
        self.assertIn("max-width", page.text)
        missing = self.browser().get("/static/other.css")
        self.assertEqual(missing.code, 404)
        self.assertHTML(missing)

    def test_no_apps_without_oauth(self) -> None:
        """
        On a server without OAuth, the apps page and its form are a 404
        page for a member.
        """
        browser = self.signed_in("alice")
        self.assertEqual(browser.get("/settings/apps").code, 404)
        page = browser.submit("/settings", {"name": "App", "callback": ""}, "/settings/apps")
        self.assertEqual(page.code, 404)
        self.assertIn("This server has no OAuth.", page.text)

    def test_mounted_at_the_root(self) -> None:
        """
        Behind the twitter role's root, pages get every path but the API's.
        """
        api = Resource()
        root = TwitterRoot(api, self.pages.resource())
        browser = Browser(root)
        self.run_(self.microblog.post(self.alice, "through the root"))
        self.assertIn("through the root", browser.get("/").text)
        self.assertIn("through the root", browser.get("/alice").text)
        self.assertEqual(browser.get("/nobody").code, 404)
        page = browser.submit("/login", {"handle": "alice", "password": PASSWORDS["alice"]})
        self.assertEqual((page.code, page.location), (303, "/home"))
        self.assertEqual(browser.get("/home").code, 200)


class AppsPageTests(PagesTestCase):
    def make_pages(self, open_registration: bool = True, secure_cookies: bool = False) -> None:
        from distwit.api.oauth1 import OAuthProvider

        self.oauth = OAuthProvider(self.microblog, self.clock, BASE, b"s" * 32)
        self.pages = Pages(
            self.microblog, secret=b"s" * 32, clock=self.clock,
            open_registration=open_registration, secure_cookies=secure_cookies,
            oauth=self.oauth,
        )
        self.resource = self.pages.resource()

    def test_register_and_revoke(self) -> None:
        """
        A signed-in user registers an app and sees its key and secret;
        sees the apps that may use the account and revokes one; a bad
        callback is refused with the form kept; strangers are sent to sign
        in.
        """
        self.assertEqual(self.browser().get("/settings/apps").location,
                         "/login?next=%2Fsettings%2Fapps")
        browser = self.signed_in("alice")
        page = browser.submit("/settings/apps", {"name": "My <App>", "callback": ""})
        self.assertEqual((page.code, page.location), (303, "/settings/apps"))
        page = browser.get("/settings/apps")
        self.assertHTML(page)
        self.assertIn("My &lt;App&gt;", page.text)
        (app,) = self.successResultOf(self.store.apps_of(self.alice.id))
        self.assertIn(app.consumer_secret, page.text)
        page = browser.submit("/settings/apps", {"name": "X", "callback": "ftp://x"})
        self.assertEqual(page.code, 400)
        self.assertIn("ftp://x", page.text)
        token, _ = self.successResultOf(
            ensureDeferred(self.oauth.create_access_token(app.consumer_key, self.alice))
        )
        page = browser.get("/settings/apps")
        self.assertIn(token, page.text)
        page = browser.submit("/settings/apps", {"token": token}, "/settings/apps/revoke")
        self.assertEqual(page.code, 303)
        self.assertIsNone(self.successResultOf(self.store.get_token(token)))
        # Another user cannot revoke alice's tokens.
        token, _ = self.successResultOf(
            ensureDeferred(self.oauth.create_access_token(app.consumer_key, self.alice))
        )
        bob = self.signed_in("bob")
        bob.submit("/settings/apps", {"token": token}, "/settings/apps/revoke")
        self.assertIsNotNone(self.successResultOf(self.store.get_token(token)))

    def change_password(self, browser: Browser, **extra: str) -> Page:
        return browser.submit("/settings", {
            "current": PASSWORDS["alice"], "password": "a-new-password",
            "password_again": "a-new-password", **extra,
        }, "/settings/password")

    def test_password_change_ends_other_sessions_and_tokens(self) -> None:
        """
        Changing one's password signs out every other browser (the one
        that changed it stays signed in) and, with the box left ticked,
        revokes every app's access token; bob's session is untouched.
        """
        thief = self.signed_in("alice")
        bob = self.signed_in("bob")
        owner = self.signed_in("alice")
        app_key, _ = self.successResultOf(
            ensureDeferred(self.oauth.create_app(self.alice, "App"))
        )
        token, _ = self.successResultOf(
            ensureDeferred(self.oauth.create_access_token(app_key, self.alice))
        )
        page = self.change_password(owner, end_tokens="1")
        self.assertEqual((page.code, page.location), (303, "/settings?saved=password"), page.text)
        self.assertEqual(owner.get("/settings").code, 200)
        self.assertEqual(thief.get("/settings").code, 303)
        self.assertEqual(bob.get("/settings").code, 200)
        self.assertIsNone(self.successResultOf(self.store.get_token(token)))

    def test_password_change_may_keep_tokens(self) -> None:
        """
        With the box unticked, the apps keep their tokens; other browsers
        are signed out all the same.
        """
        thief = self.signed_in("alice")
        owner = self.signed_in("alice")
        app_key, _ = self.successResultOf(
            ensureDeferred(self.oauth.create_app(self.alice, "App"))
        )
        token, _ = self.successResultOf(
            ensureDeferred(self.oauth.create_access_token(app_key, self.alice))
        )
        page = self.change_password(owner)
        self.assertEqual(page.code, 303, page.text)
        self.assertEqual(thief.get("/settings").code, 303)
        self.assertIsNotNone(self.successResultOf(self.store.get_token(token)))
