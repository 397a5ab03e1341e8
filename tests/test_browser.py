"""
The subscription process (docs/design/subscription.md) in a real browser (Playwright driving
Debian's Chromium) across real server processes on loopback:

sign up on s1, open a profile on s3, sign in there with ``alice@s1`` (s3 is
the OpenID Connect relying party, s1 the provider), approve on s1's consent
page, land back on s3, click follow; then a post by the profile's owner
reaches alice's home timeline on s1, in the page and in the API.

Each server has its own loopback address (127.0.0.2, 127.0.0.3): browsers
share cookies between the ports of one host, and these are different sites.

Screenshots of each step are kept in ``test-artifacts/subscription/``.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.processes import ROOT
from tests.test_federation import PASSWORD, Federation, arrived, home, post, wait_for

#: Where the screenshots go.
ARTIFACTS = os.path.join(ROOT, "test-artifacts", "subscription")

#: Options of servers whose visitors sign in with home servers on loopback.
LOOPBACK_SIGNIN = ("--signin-allow-http", "--signin-allow-private")


def chromium_path() -> str:
    """
    Debian's Chromium (``DISTWIT_CHROMIUM`` overrides); the test never
    downloads a browser.
    """
    path = os.environ.get("DISTWIT_CHROMIUM") or shutil.which("chromium") or ""
    if not path or not os.path.exists(path):
        raise SkipTest(
            "browser tests need Chromium: apt-get install chromium "
            "(or set DISTWIT_CHROMIUM to a Chromium binary)"
        )
    return path


def playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SkipTest("browser tests need Playwright: pip install '.[test]'") from None
    return sync_playwright


class SubscriptionProcessTests(SynchronousTestCase):
    """
    The whole subscription process, as a person would do it.
    """

    def setUp(self) -> None:
        self.executable = chromium_path()
        self.sync_playwright = playwright()
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        os.makedirs(ARTIFACTS)
        self.step = 0

    def shot(self, page: Any, name: str) -> None:
        self.step += 1
        page.screenshot(path=os.path.join(ARTIFACTS, f"{self.step:02d}-{name}.png"), full_page=True)

    def test_follow_from_another_server(self) -> None:
        """
        alice signs up on s1, signs in on s3 with her s1 account, follows
        carol there; carol's next post reaches alice's home timeline on s1.
        """
        federation = Federation(self, pings=1)
        s1 = federation.twitter("s1", [], host="127.0.0.2", options=LOOPBACK_SIGNIN)
        s3 = federation.twitter("s3", ["carol"], host="127.0.0.3", options=LOOPBACK_SIGNIN)

        with self.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=self.executable, headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.set_default_timeout(20000)
            try:
                self.subscribe(page, s1, s3)
            except BaseException:
                self.shot(page, "failed-here")
                raise
        self.assertEqual(
            [status["user"]["screen_name"] for status in home(s1, "alice")],
            [f"carol@{s3.url.split('//', 1)[1]}"],
        )

    def subscribe(self, page: Any, s1: Any, s3: Any) -> None:
        s1_authority = s1.url.split("//", 1)[1]
        s3_authority = s3.url.split("//", 1)[1]

        # Sign up on s1.
        page.goto(s1.url + "/signup")
        page.fill("#handle", "alice")
        page.fill("#name", "Alice")
        page.fill("#password", PASSWORD)
        page.fill("#password_again", PASSWORD)
        self.shot(page, "s1-signup")
        page.click("button[type=submit]")
        page.wait_for_url(s1.url + "/home")
        page.fill("#status", "Hé, world")
        self.assertEqual(page.text_content("#status-left"), "131")
        page.fill("#status", "")
        self.shot(page, "s1-home")

        # Open carol's profile on s3; sign in there with the s1 account.
        page.goto(s3.url + "/carol")
        self.shot(page, "s3-profile-signed-out")
        page.click("section.profile a:has-text('Sign in')")
        page.fill("#identifier", f"alice@{s1_authority}")
        self.shot(page, "s3-sign-in-with-home-server")
        page.click("text=Continue with your home server")

        # s1's consent page names s3.
        page.wait_for_url(s1.url + "/oidc/authorize?**")
        self.assertEqual(page.text_content(".consent-host"), s3_authority)
        self.shot(page, "s1-consent")
        page.click("button[value=approve]")

        # Back on s3, signed in as alice@s1: follow carol.
        page.wait_for_url(s3.url + "/carol")
        self.assertIn(f"alice@{s1_authority}", page.text_content("nav") or "")
        self.shot(page, "s3-profile-signed-in")
        page.click("button:has-text('Follow')")

        # Her home server, s1, asks her to confirm: it takes no other
        # server's word for whom its users follow.
        page.wait_for_url(s1.url + "/follow?**")
        self.assertEqual(page.text_content(".follow-acct"), f"carol@{s3_authority}")
        self.shot(page, "s1-confirm-follow")
        page.click("form.follow button")
        wait_for(
            lambda: _friends(s1, "alice") == [f"carol@{s3_authority}"],
            15, "alice follows carol on s1",
        )

        # Back on carol's profile on s3, which s1's signed notice told.
        page.wait_for_url(s3.url + "/carol")

        def following() -> bool:
            page.reload()
            return page.query_selector("button:has-text('Unfollow')") is not None

        wait_for(following, 15, "s3 shows alice following carol")
        self.assertEqual(page.text_content(".followers-count"), "1")
        self.shot(page, "s3-following")

        # carol posts on s3; it reaches alice's home on s1.
        post(s3, "carol", "Hello from s3")
        wait_for(arrived(s1, "alice", "Hello from s3"), 30, "carol's post on s1")
        page.goto(s1.url + "/home")
        self.assertIn("Hello from s3", page.text_content("ol.posts") or "")
        self.shot(page, "s1-home-with-carols-post")


def _friends(server: Any, user: str) -> list[str]:
    code, body = server.request(
        "GET", f"/1.1/friends/list.json?screen_name={user}", auth=(user, PASSWORD)
    )
    if code != 200:
        return []
    return [u["screen_name"] for u in body["users"]]
