"""
Every page at a phone's width (375 px) and a desktop's (1280 px), in a real
browser (Playwright driving Debian's Chromium) against real servers: none
may scroll sideways (``document.scrollingElement.scrollWidth >
innerWidth`` fails the test, naming the elements that stick out).

The pages are listed in :data:`PAGES` (add a line for a new page); long
names, bios, words and addresses are put where they show, since they are
what widens a page.  A screenshot of each page at each width is written to
``test-artifacts/pages/`` as ``NAME-375.png`` and ``NAME-1280.png``.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any, Callable
from urllib.parse import urlencode

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ROOT, ServerProcess, run_cli
from tests.test_browser import LOOPBACK_SIGNIN, chromium_path, playwright
from tests.test_browser_people import sign_in
from tests.test_federation import Federation, acct, call, post, wait_for

#: Where the screenshots go.
ARTIFACTS = os.path.join(ROOT, "test-artifacts", "pages")

#: The widths every page is seen at.
WIDTHS = (375, 1280)

#: Long text without a break, as people do paste.
LONG_WORD = "Supercalifragilistic" * 6
LONG_URL = "https://example.org/" + "a-very-long-path-segment/" * 4 + "?q=" + "x" * 20


class Servers:
    """
    What the pages are read from: s2 (bob's and alice's server) and s3
    (carol's), and the values :data:`PAGES` may name in its paths.
    """

    def __init__(self, s2: ServerProcess, s3: ServerProcess, values: dict[str, Any]) -> None:
        self.s2 = s2
        self.s3 = s3
        self.values = values


#: A page: its name, who is signed in on s2 (``None``: nobody), and either
#: a path on s2 (``{name}`` filled from :attr:`Servers.values`) or what
#: the browser does to get there.
Step = tuple[str, "str | None", "str | Callable[[Any, Servers], None]"]


def home_server_sign_in(page: Any, servers: Servers) -> None:
    """
    On s3, sign in with one's home server s2: s2's sign-in page, naming
    s3 (signed out on s2) or its consent page (signed in).
    """
    page.goto(servers.s3.url + "/login")
    page.fill("#identifier", acct("bob", servers.s2))
    page.click("section.signin-remote button[type=submit]")
    page.wait_for_url(servers.s2.url + "/**")
    page.wait_for_selector(".asking-host, .consent-host")
    shown = page.text_content(".asking-host, .consent-host")
    assert shown == servers.s3.url.split("//", 1)[1], shown


def home_server_sign_in_failed(page: Any, servers: Servers) -> None:
    """
    On s3, a sign-in with a home server that has no such user: a short
    sentence, the detail folded away.
    """
    page.goto(servers.s3.url + "/login")
    page.fill("#identifier", "nobody-" + LONG_WORD[:20] + "@" + servers.s2.url.split("//")[1])
    page.click("section.signin-remote button[type=submit]")
    page.wait_for_selector("section.signin-remote details.detail")
    page.click("details.detail summary")


def follow_box_error(page: Any, servers: Servers) -> None:
    page.goto(servers.s2.url + "/home")
    page.fill("#follow-acct", LONG_WORD + "@" + LONG_WORD + ".example")
    page.click("form.follow-box button")
    page.wait_for_selector("form.follow-box .error")


def remote_page_error(page: Any, servers: Servers) -> None:
    page.goto(servers.s2.url + "/@nobody@" + servers.s3.url.split("//", 1)[1])
    page.wait_for_selector("details.detail")
    page.click("details.detail summary")


def settings_image_refused(page: Any, servers: Servers) -> None:
    page.goto(servers.s2.url + "/settings")
    page.set_input_files(
        "#image", files=[{"name": "x.png", "mimeType": "image/png", "buffer": b"not an image"}]
    )
    page.click("form[action='/settings/image'] button")
    page.wait_for_selector("p.error")


def apps_with_an_app(page: Any, servers: Servers) -> None:
    page.goto(servers.s2.url + "/settings/apps")
    if page.query_selector("table.apps") is None:
        page.fill("#name", "An app with a long name " + LONG_WORD[:30])
        page.click("form.account button")
        page.wait_for_selector("table.apps")


PAGES: list[Step] = [
    # Signed out
    ("public", None, "/"),
    ("public-older", None, "/?max_id={oldest}"),
    ("sign-in", None, "/login"),
    ("sign-up", None, "/signup"),
    ("clients", None, "/docs/clients"),
    ("profile", None, "/bob"),
    ("followers", None, "/bob/followers"),
    ("following", None, "/bob/following"),
    ("remote-user", None, "/@{carol}"),
    ("remote-user-unknown", None, remote_page_error),
    ("not-found", None, "/nobody"),
    ("bad-request", None, "/bob?max_id=x"),
    ("sign-in-asked", None, "/login?{asked}"),
    ("home-server-sign-in", None, home_server_sign_in),
    ("home-server-sign-in-failed", None, home_server_sign_in_failed),
    ("app-authorize-error", None, "/oauth/authorize?oauth_token=nope"),
    ("status", None, "{reply_page}"),
    ("remote-status", None, "{carol_page}"),
    ("hashtag", None, "/hashtag/{tag}"),
    ("unsubscribe", None, "/account/unsubscribe/" + "t" * 32),
    ("forgot-password", None, "/account/forgot"),
    ("reset-link-broken", None, "/account/reset/" + "r" * 43),
    # Signed in as bob
    ("home", "bob", "/home"),
    ("follow-box-error", "bob", follow_box_error),
    ("notifications", "bob", "/notifications"),
    ("settings", "bob", "/settings"),
    ("settings-image-refused", "bob", settings_image_refused),
    ("apps", "bob", apps_with_an_app),
    ("connected-servers", "bob", "/settings/servers"),
    ("devices", "bob", "/settings/devices"),
    ("own-profile", "bob", "/bob"),
    ("other-profile", "bob", "/alice"),
    ("remote-user-signed-in", "bob", "/@{carol}"),
    ("confirm-follow", "bob", "/follow?acct={carol}"),
    ("consent", "bob", home_server_sign_in),
    ("status-signed-in", "bob", "{reply_page}"),
    ("reply-form", "bob", "/status/{reply}/reply"),
    ("confirm-delete", "bob", "/status/{oldest}/delete"),
    ("operator-status", "bob", "/admin/status"),
]


#: The pages of :data:`PAGES` that are error pages on purpose.
ERROR_PAGES = {"not-found", "bad-request", "app-authorize-error", "reset-link-broken"}


def newest_status_path(server: ServerProcess, handle: str) -> str:
    """
    The path of the status page of ``handle``'s newest post, as their RSS
    feed links it.
    """
    code, feed = server.request("GET", f"/{handle}.rss")
    assert code == 200, (code, feed)
    text = feed if isinstance(feed, str) else feed.decode()
    found = re.search(r"<item>.*?<link>https?://[^/<]+(/[^<]+/status/\d+)</link>", text, re.S)
    assert found is not None, text
    return found.group(1)


def overflow(page: Any) -> list[str]:
    """
    What sticks out of the page sideways (empty: nothing does).
    """
    found: list[str] = page.evaluate(
        """() => {
          const width = window.innerWidth;
          if (document.scrollingElement.scrollWidth <= width) return [];
          const out = [];
          for (const e of document.querySelectorAll('body *')) {
            const r = e.getBoundingClientRect();
            if (r.right > width + 0.5 && out.length < 8)
              out.push(e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
                       + ' right=' + Math.round(r.right));
          }
          return out.length ? out : ['scrollWidth ' + document.scrollingElement.scrollWidth];
        }"""
    )
    return found


def low_contrast(page: Any) -> list[str]:
    """
    Text whose contrast with what is behind it is below WCAG AA (4.5:1;
    3:1 for large text): each such element, with its ratio.
    """
    found: list[str] = page.evaluate(
        """() => {
          const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
          const lum = ([r, g, b]) => {
            const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92
                                              : Math.pow((c + 0.055) / 1.055, 2.4); };
            return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
          };
          const behind = e => {
            for (; e; e = e.parentElement) {
              const c = rgb(getComputedStyle(e).backgroundColor);
              if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
            }
            return [255, 255, 255];
          };
          const out = [];
          for (const e of document.querySelectorAll('body *')) {
            const text = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
            const style = getComputedStyle(e);
            if (!text || style.visibility === 'hidden' || e.getClientRects().length === 0)
              continue;
            const r = e.getBoundingClientRect();
            if (r.right < 0 || r.bottom < 0) continue;  // the skip link, off screen
            const a = lum(rgb(style.color).slice(0, 3)), b = lum(behind(e));
            const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
            const large = size >= 24 || (bold && size >= 18.66);
            if (ratio < (large ? 3 : 4.5) && out.length < 8)
              out.push(e.tagName.toLowerCase() + '.' + e.className + ' ' + ratio.toFixed(2));
          }
          return out;
        }"""
    )
    return found


class PageWidthTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.executable = chromium_path()
        self.sync_playwright = playwright()
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        os.makedirs(ARTIFACTS)

    def servers(self) -> Servers:
        """
        s2 with bob and alice, s3 with carol, and long text everywhere it
        shows: names, bios, web sites, posts, notifications.
        """
        federation = Federation(self, pings=1)
        s2 = federation.twitter("s2", ["bob", "alice"], host="127.0.0.2", options=LOOPBACK_SIGNIN)
        s3 = federation.twitter("s3", ["carol"], host="127.0.0.3", options=LOOPBACK_SIGNIN)
        for server, user in [(s2, "bob"), (s2, "alice"), (s3, "carol")]:
            call(server, "POST", "/1.1/account/update_profile.json", user,
                 name=LONG_WORD[:50], description=LONG_WORD + " " + LONG_URL[:35],
                 location=LONG_WORD[:30], url=LONG_URL[:100])
        carol = acct("carol", s3)
        granted = run_cli("admin", "grant", "bob", "--data", s2.data)  # the operator page
        self.assertEqual(granted.returncode, 0, granted.stderr)
        call(s2, "POST", "/1.1/friendships/create.json", "bob", screen_name=carol)
        call(s2, "POST", "/1.1/friendships/create.json", "alice", screen_name="bob")
        call(s2, "POST", "/1.1/friendships/create.json", "bob", screen_name="alice")
        first = post(s2, "bob", LONG_WORD[:120])
        for i in range(21):
            post(s2, "bob", f"Post {i} of bob's {LONG_URL[:90]}")
        reply = call(s2, "POST", "/1.1/statuses/update.json", "alice",
                     status=f"@bob {LONG_WORD[:90]} #{LONG_WORD[:40]}",
                     in_reply_to_status_id=first["id"])
        post(s3, "carol", LONG_WORD[:130])
        wait_for(
            lambda: call(s2, "GET", f"/1.1/statuses/user_timeline.json?screen_name={carol}",
                         "bob"),
            30, "carol's post on s2",
        )
        asked = urlencode({"next": "/oidc/authorize?" + urlencode({
            "client_id": "x", "redirect_uri": f"https://{LONG_WORD}.example/login/callback",
        })})
        return Servers(s2, s3, {
            "carol": carol, "oldest": first["id"], "asked": asked,
            "reply": reply["id"], "tag": LONG_WORD[:40],
            # The status pages, as the feeds link them: alice's reply (its
            # thread holds bob's post), and carol's post as s2 holds it.
            "reply_page": newest_status_path(s2, "alice"),
            "carol_page": newest_status_path(s3, "carol").replace("/carol/", f"/@{carol}/", 1),
        })

    def test_no_page_scrolls_sideways(self) -> None:
        """
        Every page of :data:`PAGES`, signed out and signed in, at 375 and
        1280 px: no horizontal overflow; no text under WCAG AA contrast; the
        keyboard's focus shows.
        """
        servers = self.servers()
        failures = []
        with self.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=self.executable, headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": WIDTHS[0], "height": 800})
            page.set_default_timeout(20000)
            signed_in = None
            for name, who, how in PAGES:
                if who != signed_in:
                    assert who is not None, "list signed-out pages first"
                    sign_in(page, servers.s2, who)
                    signed_in = who
                for width in WIDTHS:
                    page.set_viewport_size({"width": width, "height": 800})
                    if callable(how):
                        how(page, servers)
                    else:
                        response = page.goto(servers.s2.url + how.format(**servers.values))
                        # A page listed for itself must not be an error page
                        # (which would pass the width checks for the wrong page).
                        if name not in ERROR_PAGES and response is not None:
                            self.assertLess(response.status, 400, name)
                    page.wait_for_load_state("load")
                    self.assertIn(
                        "lang", page.evaluate("document.documentElement.outerHTML.slice(0, 40)")
                    )
                    page.screenshot(
                        path=os.path.join(ARTIFACTS, f"{name}-{width}.png"), full_page=True
                    )
                    found = overflow(page)
                    if found:
                        failures.append(f"{name} at {width}px ({page.url}): {found}")
                    if width == WIDTHS[-1]:
                        dim = low_contrast(page)
                        if dim:
                            failures.append(f"{name}: low contrast {dim}")
            # The keyboard's focus is visible.
            page.goto(servers.s2.url + "/")
            page.keyboard.press("Tab")
            page.keyboard.press("Tab")
            outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            self.assertNotEqual(outline, "none")
        self.assertEqual(failures, [])
        self.assertEqual(len(os.listdir(ARTIFACTS)), len(PAGES) * len(WIDTHS))
