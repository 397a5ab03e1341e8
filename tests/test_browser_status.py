"""
Status pages and the buttons on posts in a real browser (Playwright driving
Debian's Chromium, as tests/test_browser.py) across real server processes
on loopback (issue 14, part A):

- alice on s1 replies to carol's post (carol on s2) from its status page,
  retweets and favorites it (carol's server hears of both), and deletes her
  own reply after the confirmation page;
- the status page shows all five posts of a conversation spanning three
  servers;
- every item of alice's RSS and Atom feeds links to a page that answers 200
  with that very post.

Screenshots of each step are kept in ``test-artifacts/status-pages/``.
"""

from __future__ import annotations

import html
import os
import re
import time
from typing import Any
from xml.etree import ElementTree

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ROOT
from tests.test_browser import chromium_path, playwright
from tests.test_federation import PASSWORD, Federation, acct, arrived, call, follow, home, wait_for
from tests.test_threads import FIVE

#: Where the screenshots go.
ARTIFACTS = os.path.join(ROOT, "test-artifacts", "status-pages")


def page_id(page: Any) -> str:
    """
    The status id of the first post with a reply link on the page.
    """
    href = page.get_attribute("li.post a.reply", "href") or ""
    return href.split("/")[2]


class StatusPagesInABrowserTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.executable = chromium_path()
        self.sync_playwright = playwright()
        os.makedirs(ARTIFACTS, exist_ok=True)
        for name in os.listdir(ARTIFACTS):
            if name.startswith(self._testMethodName + "-"):
                os.remove(os.path.join(ARTIFACTS, name))
        self.step = 0

    def shot(self, page: Any, name: str) -> None:
        self.step += 1
        page.screenshot(
            path=os.path.join(ARTIFACTS, f"{self._testMethodName}-{self.step:02d}-{name}.png"),
            full_page=True,
        )

    def browse(self, steps: Any) -> None:
        with self.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=self.executable, headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30000)
            try:
                steps(page)
            except BaseException:
                self.shot(page, "failed-here")
                raise
            finally:
                browser.close()

    def sign_in(self, page: Any, server: Any, handle: str) -> None:
        page.goto(server.url + "/login")
        page.fill("#handle", handle)
        page.fill("#password", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url(server.url + "/home")

    def test_reply_retweet_favorite_delete(self) -> None:
        federation = Federation(self, pings=1)
        s1 = federation.twitter("s1", ["alice"])
        s2 = federation.twitter("s2", ["carol"])
        carol = acct("carol", s2)
        follow(s1, "alice", carol)
        original = call(s2, "POST", "/1.1/statuses/update.json", "carol",
                        status="What do you think of #distwit? https://example.org/x")
        wait_for(arrived(s1, "alice", original["text"]), 30, "carol's post on s1")

        def steps(page: Any) -> None:
            self.sign_in(page, s1, "alice")
            self.shot(page, "home")
            # From home to the post's page, by its time.
            page.click("li.post:has-text('#distwit') a.permalink")
            page.wait_for_url(f"{s1.url}/@{carol}/status/1")
            self.assertIn("What do you think of", page.text_content("li.post.focus") or "")
            self.assertEqual(
                page.get_attribute("li.post.focus a.hashtag", "href"), "/hashtag/distwit"
            )
            self.shot(page, "carols-post-on-s1")

            # Reply from the status page: the box starts with @carol@s2.
            self.assertEqual(page.input_value("form.reply textarea"), f"@{carol} ")
            page.fill("form.reply textarea", f"@{carol} I like it")
            page.click("form.reply button[type=submit]")
            page.wait_for_url(f"{s1.url}/@{carol}/status/1")
            page.wait_for_selector("ol.replies li.post:has-text('I like it')")
            self.shot(page, "replied")

            # Retweet and favorite it: the buttons turn into their undoing.
            page.click("li.post.focus button.retweet")
            page.wait_for_selector("li.post.focus button.unretweet")
            page.click("li.post.focus button.favorite")
            page.wait_for_selector("li.post.focus button.unfavorite")
            self.assertEqual(page.url, f"{s1.url}/@{carol}/status/1")
            self.shot(page, "retweeted-and-favorited")

            # carol's server hears of all three.
            def counted() -> Any:
                shown = call(s2, "GET", f"/1.1/statuses/show/{original['id']}.json", "carol")
                return (shown["retweet_count"], shown["favorite_count"]) == (1, 1)

            wait_for(counted, 30, "s2 counts alice's retweet and favorite", step=0.2)

            def carol_heard_the_reply() -> bool:
                statuses = call(s2, "GET", "/1.1/statuses/mentions_timeline.json", "carol")
                return any(s["text"] == f"@{carol} I like it" for s in statuses)

            wait_for(carol_heard_the_reply, 30, "alice's reply reaches s2", step=0.2)

            # Delete her reply: a confirmation page first.
            page.click("ol.replies li.post:has-text('I like it') a.delete")
            page.wait_for_selector("h1:has-text('Delete this post?')")
            self.shot(page, "confirm-delete")
            page.click("form.confirm-delete button[type=submit]")
            page.wait_for_url(f"{s1.url}/@{carol}/status/1")
            self.assertIsNone(page.query_selector("li.post:has-text('I like it')"))
            self.shot(page, "reply-deleted")
            texts = [s["text"] for s in home(s1, "alice")]
            self.assertNotIn(f"@{carol} I like it", texts)

            # Her retweet is on her home page, with its buttons.
            page.goto(s1.url + "/home")
            self.assertIn("retweeted", page.text_content("li.post") or "")
            self.shot(page, "home-with-retweet")

            # On a phone, nothing scrolls sideways.
            page.set_viewport_size({"width": 375, "height": 812})
            for name, path in [("status", f"/@{carol}/status/1"), ("home", "/home"),
                               ("hashtag", "/hashtag/distwit"),
                               ("reply", f"/status/{page_id(page)}/reply")]:
                page.goto(s1.url + path)
                self.assertTrue(page.evaluate(
                    "document.documentElement.scrollWidth <= window.innerWidth"
                ), path)
                self.shot(page, "phone-" + name)

        self.browse(steps)

    def test_feed_links(self) -> None:
        """
        Every item of a user's RSS and Atom feed links to its status page,
        which answers 200 with that post.
        """
        federation = Federation(self, pings=1)
        s1 = federation.twitter("s1", ["alice", "bob"])
        texts = ["first <b>post</b>", "second with #tag", "third & last",
                 "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']
        first = call(s1, "POST", "/1.1/statuses/update.json", "alice", status=texts[0])
        call(s1, "POST", "/1.1/statuses/update.json", "alice", status=texts[1])
        call(s1, "POST", "/1.1/statuses/update.json", "bob", status="@alice hi",
             in_reply_to_status_id=first["id"])
        for text in texts[2:]:
            call(s1, "POST", "/1.1/statuses/update.json", "alice", status=text)
        links: dict[str, str] = {}
        code, rss = s1.request("GET", "/alice.rss")
        self.assertEqual(code, 200)
        for item in ElementTree.fromstring(rss).iter("item"):
            links[item.findtext("link") or ""] = item.findtext("description") or ""
        code, atom = s1.request("GET", "/alice.atom")
        self.assertEqual(code, 200)
        ns = {"a": "http://www.w3.org/2005/Atom"}
        atom_links = [
            link.get("href") or ""
            for entry in ElementTree.fromstring(atom).iterfind("a:entry", ns)
            for link in entry.iterfind("a:link", ns)
        ]
        self.assertEqual(len(links), len(texts), links)
        self.assertEqual(set(atom_links), set(links))

        def steps(page: Any) -> None:
            # Hostile text stays text: no dialog opens, no image is made.
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            for n, (url, description) in enumerate(sorted(links.items())):
                response = page.goto(url)
                self.assertEqual(response.status, 200, url)
                shown = page.text_content("li.post.focus p.text") or ""
                self.assertIn(shown, texts)
                self.assertIn(shown, html.unescape(description))
                self.shot(page, f"feed-item-{n + 1}")
                self.assertIsNone(page.query_selector("main img[src=x]"))
            for path in ["/", "/alice", "/hashtag/tag"]:
                page.goto(s1.url + path)
                self.assertIsNone(page.query_selector("main img[src=x]"), path)
                self.assertIsNone(page.query_selector("main script"), path)
            self.assertEqual(dialogs, [])
            # The first has bob's reply below it.
            page.goto(sorted(links)[0])
            self.assertIn("@alice hi", page.text_content("ol.replies") or "")

        self.browse(steps)

    def test_conversation_on_three_servers(self) -> None:
        """
        The five posts of a conversation on three servers (the scenario of
        tests/test_threads.py) on one status page, in order, on each.
        """
        federation = Federation(self)
        s1 = federation.twitter("s1", ["alice"])
        s2 = federation.twitter("s2", ["bob", "dave"])
        s3 = federation.twitter("s3", ["carol"])
        follow(s1, "alice", acct("bob", s2))
        follow(s1, "alice", acct("dave", s2))
        follow(s2, "bob", acct("carol", s3))
        follow(s2, "dave", acct("alice", s1))
        follow(s3, "carol", acct("alice", s1))
        follow(s3, "carol", acct("bob", s2))

        def seen(server: Any, user: str, text: str) -> Any:
            def find() -> Any:
                return next((s for s in home(server, user) if s["text"] == text), None)
            return wait_for(find, 30, f"{text!r} on {server.url}")[0]

        def next_second() -> None:
            time.sleep(1.05 - time.time() % 1)

        a1 = call(s1, "POST", "/1.1/statuses/update.json", "alice", status=FIVE[0])
        a1_on_s2 = seen(s2, "dave", FIVE[0])
        call(s2, "POST", "/1.1/friendships/destroy.json", "dave", screen_name=acct("alice", s1))
        next_second()
        call(s2, "POST", "/1.1/statuses/update.json", "bob", status=FIVE[1],
             in_reply_to_status_id=a1_on_s2["id"])
        b1_on_s3 = seen(s3, "carol", FIVE[1])
        next_second()
        call(s3, "POST", "/1.1/statuses/update.json", "carol", status=FIVE[2],
             in_reply_to_status_id=b1_on_s3["id"])
        seen(s2, "bob", FIVE[2])
        seen(s1, "alice", FIVE[1])

        def carol_found() -> Any:
            statuses = call(s1, "GET", f"/1.1/statuses/conversation/{a1['id']}.json", "alice")
            return next((s for s in statuses if s["text"] == FIVE[2]), None)

        c1_on_s1 = wait_for(carol_found, 60, "carol's reply in the conversation on s1")[0]
        next_second()
        call(s1, "POST", "/1.1/statuses/update.json", "alice", status=FIVE[3],
             in_reply_to_status_id=c1_on_s1["id"])
        next_second()
        call(s2, "POST", "/1.1/statuses/update.json", "dave", status=FIVE[4],
             in_reply_to_status_id=a1_on_s2["id"])
        seen(s3, "carol", FIVE[3])
        seen(s1, "alice", FIVE[4])

        # The posts a post replies to above it, then the rest of the
        # conversation, oldest first.
        pages = [
            (s1, "/alice/status/1", FIVE[0], FIVE),
            (s1, f"/@{acct('bob', s2)}/status/1", FIVE[1], FIVE),
            (s3, "/carol/status/1", FIVE[2], FIVE),
            (s2, "/dave/status/1", FIVE[4], [FIVE[0], FIVE[4], *FIVE[1:4]]),
        ]

        def steps(page: Any) -> None:
            for server, path, focus, expected in pages:
                last: list[list[str]] = []

                def whole(server: Any = server, path: str = path,
                          expected: list[str] = expected) -> bool:
                    page.goto(server.url + path)
                    last[:] = [[
                        re.sub(r"\s+", " ", text).strip()
                        for text in page.locator("ol.posts li.post p.text").all_text_contents()
                    ]]
                    return last[0] == expected

                try:
                    wait_for(whole, 60, f"the five posts on {server.url}{path}", step=1.0)
                except AssertionError:
                    self.fail(f"{server.url}{path}: {last}")
                self.assertEqual(page.text_content("li.post.focus p.text"), focus)
                self.shot(page, "thread-" + focus.replace(" ", "-"))

        self.browse(steps)
