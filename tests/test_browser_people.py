"""
People across real servers in a real browser (Playwright driving Debian's
Chromium, as tests/test_browser.py does), issue 14: bob, on s2, follows
``carol@s3`` from the box on his home page, pages back through her older
posts on her page on s2 (fetched from s3 on demand) and her next post then
shows on his home; carol (through the API of her own server) follows, mentions,
replies to, retweets and favorites bob, and each shows on bob's
notifications page, the unread count in his header counting them until he
opens it.  carol's hostile name and bio are escaped on every page of s2
where they show.

Screenshots of each step are kept in ``test-artifacts/people/``.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ROOT, ServerProcess
from tests.test_browser import chromium_path, playwright
from tests.test_federation import PASSWORD, Federation, acct, arrived, call, post, wait_for

#: Where the screenshots go.
ARTIFACTS = os.path.join(ROOT, "test-artifacts", "people")

#: carol's name and bio.
HOSTILE_NAME = '"><img src=x onerror=alert(1)>'
HOSTILE_BIO = "<script>alert(1)</script> and \"><img src=x onerror=alert(2)>"


def sign_in(page: Any, server: ServerProcess, handle: str) -> None:
    page.goto(server.url + "/login")
    page.fill("#handle", handle)
    page.fill("#password", PASSWORD)
    page.click("section.signin-local button[type=submit]")
    page.wait_for_url(server.url + "/home")


def assert_escaped(case: SynchronousTestCase, page: Any, where: str) -> None:
    """
    The hostile text is on the page as text: no element came of it.
    """
    case.assertEqual(page.evaluate("document.querySelectorAll('img[src=x]').length"), 0, where)
    case.assertFalse(page.evaluate("!!window.__hostile"), where)
    html = page.content()
    case.assertNotIn("<img src=x", html, where)
    case.assertNotIn("<script>alert", html, where)


class PeopleAcrossServersTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.executable = chromium_path()
        self.sync_playwright = playwright()
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        os.makedirs(ARTIFACTS)
        self.step = 0

    def shot(self, page: Any, name: str) -> None:
        self.step += 1
        page.screenshot(path=os.path.join(ARTIFACTS, f"{self.step:02d}-{name}.png"), full_page=True)

    def test_follow_box_and_notifications(self) -> None:
        federation = Federation(self, pings=1)
        s2 = federation.twitter("s2", ["bob"], host="127.0.0.2")
        s3 = federation.twitter("s3", ["carol"], host="127.0.0.3")
        call(s3, "POST", "/1.1/account/update_profile.json", "carol",
             name=HOSTILE_NAME, description=HOSTILE_BIO, url="javascript:alert(3)")
        with self.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=self.executable, headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 375, "height": 812})
            page.set_default_timeout(20000)
            try:
                self.walk(page, s2, s3)
            except BaseException:
                self.shot(page, "failed-here")
                raise

    def walk(self, page: Any, s2: ServerProcess, s3: ServerProcess) -> None:
        carol = acct("carol", s3)
        bob = acct("bob", s2)
        for i in range(25):
            post(s3, "carol", f"Old post {i}")
        sign_in(page, s2, "bob")

        # A wrong address first: a short sentence, what was typed kept.
        page.fill("#follow-acct", "nobody@" + s3.url.split("//", 1)[1])
        page.click("form.follow-box button")
        self.assertIn("has nobody called nobody", page.text_content("form.follow-box .error") or "")
        self.shot(page, "follow-box-error")

        # bob follows carol@s3 from the box on his home page.
        page.fill("#follow-acct", "@" + carol)
        self.shot(page, "follow-box")
        page.click("form.follow-box button")
        page.wait_for_url(s2.url + "/@" + carol)
        self.assertEqual(page.text_content("section.profile button"), "Unfollow")
        assert_escaped(self, page, "carol's page on s2")
        self.assertIn("<script>alert(1)</script>", page.text_content(".bio") or "")
        # The API made "javascript:alert(3)" an http address: a harmless link.
        for href in page.eval_on_selector_all("main a", "links => links.map(a => a.href)"):
            self.assertTrue(href.startswith(("http://", "https://")), href)
        self.shot(page, "remote-page")

        # Her older posts come from s3 as bob pages back on her page.
        def oldest_reached() -> bool:
            page.goto(s2.url + "/@" + carol)
            while "Old post 0\n" not in (page.text_content("ol.posts") or "") + "\n":
                older = page.query_selector("a[rel=next]")
                if older is None:
                    return False
                older.click()
                page.wait_for_load_state("load")
            return True

        wait_for(oldest_reached, 30, "carol's oldest post on her page on s2", step=0.5)
        texts = page.eval_on_selector_all("ol.posts .text", "ps => ps.map(p => p.textContent)")
        self.assertEqual(texts[-1], "Old post 0")
        self.shot(page, "remote-page-oldest")

        # Her next post shows on his home page.
        post(s3, "carol", "Hello bob, from s3")
        wait_for(arrived(s2, "bob", "Hello bob, from s3"), 30, "carol's post on s2")
        page.goto(s2.url + "/home")
        self.assertIn("Hello bob, from s3", page.text_content("ol.posts") or "")
        assert_escaped(self, page, "bob's home")
        self.shot(page, "home-with-carols-post")
        self.assertIsNone(page.query_selector("nav .unread"))

        # carol follows bob, mentions him, replies to, retweets and
        # favorites his post, all on s3.
        mine = post(s2, "bob", "A post of bob's")
        call(s3, "POST", "/1.1/friendships/create.json", "carol", screen_name=bob)

        def held() -> Any:
            found = call(s3, "GET", f"/1.1/statuses/user_timeline.json?screen_name={bob}",
                         "carol")
            return next((s["id"] for s in found if s["text"] == mine["text"]), None)

        copy, _ = wait_for(held, 30, "bob's post on s3")
        post(s3, "carol", f"Hi @{bob}")
        call(s3, "POST", "/1.1/statuses/update.json", "carol",
             status=f"@{bob} a reply", in_reply_to_status_id=str(copy))
        call(s3, "POST", f"/1.1/statuses/retweet/{copy}.json", "carol")
        call(s3, "POST", "/1.1/favorites/create.json", "carol", id=str(copy))

        # The header counts the five until bob opens the page.
        def counted() -> str | None:
            page.goto(s2.url + "/home")
            found = page.query_selector("nav .unread")
            text = found.text_content() if found is not None else None
            return text if text == "5" else None

        wait_for(counted, 60, "five unread notifications on s2", step=0.5)
        self.shot(page, "unread-count")
        page.click("a.notifications-link")
        page.wait_for_url(s2.url + "/notifications")
        kinds = page.eval_on_selector_all(
            "li.notification", "items => items.map(i => i.classList[1])"
        )
        self.assertEqual(sorted(kinds), ["favorite", "follow", "mention", "reply", "retweet"])
        self.assertIn("Hi @" + bob, page.text_content("li.mention") or "")
        self.assertIn("a reply", page.text_content("li.reply") or "")
        self.assertIn("A post of bob's", page.text_content("li.favorite") or "")
        assert_escaped(self, page, "bob's notifications")
        self.assertIsNone(page.query_selector("nav .unread"))
        self.shot(page, "notifications")
        page.goto(s2.url + "/home")
        self.assertIsNone(page.query_selector("nav .unread"))

        # carol is among bob's followers, escaped there too.
        page.goto(s2.url + "/bob/followers")
        self.assertIn(HOSTILE_NAME, page.text_content("ul.people") or "")
        assert_escaped(self, page, "bob's followers")
        self.shot(page, "followers")

        # Unfollow from her page.
        page.goto(s2.url + "/@" + carol)
        page.click("section.profile button")
        page.wait_for_url(s2.url + "/@" + carol)
        self.assertEqual(page.text_content("section.profile button"), "Follow")
        self.shot(page, "unfollowed")
