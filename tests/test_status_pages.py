"""
Status pages, the buttons on posts, rendered text and hashtag pages
(issue 14, part A), driven in memory as tests/test_pages.py drives the
pages: StubTreq over the real resource, a real (synchronous) SQLite store.
The same across real servers in a real browser: tests/test_browser_status.py.
"""

from __future__ import annotations

import html
import re
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from distwit.federation.threads import Threads
from distwit.model import Account, Post
from distwit.web.site import EXPIRED_FORM
from distwit.web.text import relative_time, render_text

from tests.test_pages import BASE, Browser, Page, PagesTestCase

HOSTILE = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>']


def _account(handle: str, authority: str = "", account_id: int = 1) -> Account:
    return Account(account_id, handle, authority, "", 0, 0, 0, 0, 0)


def _post(text: str, author: Account, mentions: tuple[Any, ...] = ()) -> Post:
    return Post(
        id=1, author=author, seq=1, text=text, created_at=0, source="web",
        in_reply_to_status_id=None, deleted=False, mentions=mentions,
    )


class RenderTextTests(SynchronousTestCase):
    """
    A post's text as HTML: escaped, with links, mentions and hashtags
    found by the entity parser the API uses.
    """

    own = "here.example"

    def render(self, text: str, author: Account | None = None, **kwargs: Any) -> str:
        return str(render_text(_post(text, author or _account("alice"), **kwargs), self.own))

    def test_plain_text_is_escaped(self) -> None:
        for text in HOSTILE + ["a & b < c > d ' \""]:
            rendered = self.render(text)
            self.assertNotIn("<script", rendered)
            self.assertNotIn("<img", rendered)
            self.assertEqual(html.unescape(rendered), text)

    def test_links(self) -> None:
        rendered = self.render("see https://example.org/a?b=1&c=2. ok")
        self.assertEqual(
            rendered,
            'see <a class="url" href="https://example.org/a?b=1&amp;c=2" '
            'rel="nofollow noopener">https://example.org/a?b=1&amp;c=2</a>. ok',
        )

    def test_hostile_link(self) -> None:
        """
        Quotes cannot end a link's href: the parser stops at them, and what
        is left is escaped.
        """
        rendered = self.render('https://x.example/"><img src=x onerror=alert(1)>')
        self.assertNotIn("<img", rendered)
        self.assertIn('href="https://x.example/"', rendered)

    def test_mentions(self) -> None:
        """
        ``@bob`` in a local post is ``/bob``; ``@carol@example.org`` is the
        page of someone elsewhere; our own authority is a local user.
        """
        rendered = self.render("hi @bob and @Carol@Example.org and @dave@here.example!")
        self.assertIn('<a class="mention" href="/bob">@bob</a>', rendered)
        self.assertIn(
            '<a class="mention" href="/@Carol@example.org">@Carol@Example.org</a>', rendered
        )
        self.assertIn('<a class="mention" href="/dave">@dave@here.example</a>', rendered)

    def test_mention_in_a_remote_post(self) -> None:
        """
        A plain ``@bob`` written on another server is someone there; a
        mention the post resolved (an account known here) links to that.
        """
        carol = _account("carol", "there.example:8443", 2)
        rendered = self.render("@bob hi", author=carol)
        self.assertIn('href="/@bob@there.example:8443"', rendered)
        alice = _account("alice", "", 3)
        rendered = self.render("@alice hi", author=carol, mentions=((alice, 0, 6),))
        self.assertIn('<a class="mention" href="/alice">@alice</a>', rendered)

    def test_hashtags(self) -> None:
        rendered = self.render("#Twisted is fun, ＃日本 too, not a#b nor #123 nor &#39;")
        self.assertIn('<a class="hashtag" href="/hashtag/Twisted">#Twisted</a>', rendered)
        self.assertIn(
            '<a class="hashtag" href="/hashtag/%E6%97%A5%E6%9C%AC">＃日本</a>', rendered
        )
        self.assertEqual(rendered.count("<a "), 2)

    def test_hash_inside_a_link(self) -> None:
        rendered = self.render("https://example.org/#top @x")
        self.assertEqual(rendered.count("<a "), 2)
        self.assertIn('href="https://example.org/#top"', rendered)


class RelativeTimeTests(SynchronousTestCase):
    def test_relative(self) -> None:
        now = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
        cases = [
            (now, "now"), (now - 59_000, "now"), (now - 60_000, "1 min"),
            (now - 3 * 60_000, "3 min"), (now - 2 * 3_600_000 - 5, "2 h"),
            (now - 30 * 86_400_000, "15 Oct"), (now - 400 * 86_400_000, "10 Oct 2022"),
            (now + 10_000, "now"),
        ]
        for ms, expected in cases:
            self.assertEqual(relative_time(ms, now), expected, ms)


class StatusPagesTestCase(PagesTestCase):
    def make_pages(self, open_registration: bool = True, secure_cookies: bool = False,
                   **options: Any) -> None:
        threads = Threads(self.store, None, self.clock, "localhost:8080", BASE)
        super().make_pages(open_registration, secure_cookies, threads=threads, **options)

    def post(self, account: Account, text: str, reply_to: Post | None = None) -> Post:
        self.clock.advance(1)
        return self.run_(self.microblog.post(
            account, text, in_reply_to_status_id=None if reply_to is None else reply_to.id
        ))

    def texts(self, page: Page) -> list[str]:
        """
        The posts' texts on a page, in order.
        """
        return [
            html.unescape(re.sub(r"<[^>]+>", "", text))
            for text in re.findall(r'<p class="text">(.*?)</p>', page.text, re.S)
        ]

    def button(self, browser: Browser, page: str, action: str, next_path: str | None = None
               ) -> Page:
        """
        Press a post's button on ``page`` as a person would: the form's
        action and fields as the page has them.
        """
        shown = browser.get(page)
        match = re.search(
            rf'<form class="action" method="post" action="([^"]*/{action})">\s*'
            r'<input type="hidden" name="csrf" value="([^"]*)">\s*'
            r'<input type="hidden" name="next" value="([^"]*)">',
            shown.text,
        )
        assert match is not None, (action, shown.text)
        return browser.post(html.unescape(match.group(1)), {
            "csrf": match.group(2), "next": next_path or html.unescape(match.group(3)),
        })


class StatusPageTests(StatusPagesTestCase):
    def test_status_page(self) -> None:
        """
        /HANDLE/status/N shows the post, with meta tags and a link to its
        JSON; the handle in any case.
        """
        post = self.post(self.alice, "hello #world from https://example.org")
        for path in ["/alice/status/1", "/ALICE/status/1"]:
            page = self.browser().get(path)
            self.assertEqual(page.code, 200, path)
            self.assertHTML(page)
            self.assertEqual(self.texts(page), ["hello #world from https://example.org"])
            self.assertIn('<meta property="og:title" content="Alice A. (@alice)">', page.text)
            self.assertIn(
                '<meta property="og:description" content="hello #world from '
                'https://example.org">', page.text,
            )
            self.assertIn(
                '<meta property="og:url" content="http://localhost:8080/alice/status/1">',
                page.text,
            )
            self.assertIn('<meta name="twitter:card" content="summary">', page.text)
            self.assertIn(
                f'<link rel="alternate" type="application/json" '
                f'href="/1.1/statuses/show/{post.id}.json">', page.text,
            )
            self.assertIn('<a class="hashtag" href="/hashtag/world">#world</a>', page.text)
            self.assertIn('title="2023-11-14 22:13 UTC"', page.text)
            self.assertIn("Sign in</a> to reply", page.text)

    def test_unknown_and_deleted(self) -> None:
        """
        Unknown users and numbers are a 404 page; a deleted post says so
        (410); a profile item is no post.
        """
        post = self.post(self.alice, "soon gone")
        self.run_(self.microblog.delete(self.alice, post.id))
        browser = self.browser()
        for path in ["/alice/status/9", "/nobody/status/1", "/alice/status/0",
                     "/alice/status/x", "/alice/status/" + "9" * 30, "/@x/status/1",
                     "/@bob@nowhere.example/status/1", "/alice/status/2"]:
            page = browser.get(path)
            self.assertEqual(page.code, 404, path)
            self.assertHTML(page)
        page = browser.get("/alice/status/1")
        self.assertEqual(page.code, 410)
        self.assertHTML(page)
        self.assertIn("This post was deleted by its author.", page.text)
        self.run_(self.microblog.update_profile(self.alice, name="Alice B."))
        self.assertEqual(browser.get(f"/alice/status/{self.alice_last()}").code, 404)

    def alice_last(self) -> int:
        account = self.account("alice")
        assert account is not None
        return account.last_seq

    def test_thread(self) -> None:
        """
        The conversation around a post: what it replies to above, in
        order, then the other replies; the post itself marked.
        """
        a1 = self.post(self.alice, "first")
        b1 = self.post(self.bob, "@alice second", a1)
        a2 = self.post(self.alice, "@bob third", b1)
        self.post(self.bob, "@alice fourth", a2)
        self.post(self.bob, "@alice beside", a1)
        self.post(self.bob, "not in it")
        page = self.browser().get("/alice/status/2")
        self.assertEqual(page.code, 200)
        self.assertEqual(
            self.texts(page),
            ["first", "@alice second", "@bob third", "@alice fourth", "@alice beside"],
        )
        focus = re.search(r'<li class="post focus"[^>]*>.*?</li>', page.text, re.S)
        assert focus is not None
        self.assertIn('<a class="mention" href="/bob">@bob</a> third', focus.group(0))
        self.assertIn('Replying to <a href="/bob/status/1">@bob</a>', page.text)
        self.assertLess(page.text.index(">first</p>"), page.text.index("</a> third</p>"))
        self.assertLess(page.text.index("</a> third</p>"), page.text.index("<h2>Replies</h2>"))

    def test_retweet_item(self) -> None:
        """
        A retweet's number shows the original, said to be retweeted.
        """
        self.post(self.alice, "worth it")
        self.clock.advance(1)
        self.run_(self.microblog.retweet(self.bob, self.run_(self.latest(self.alice)).id))
        page = self.browser().get("/bob/status/1")
        self.assertEqual(page.code, 200)
        self.assertEqual(self.texts(page), ["worth it"])
        self.assertIn("Retweeted by", page.text)

    async def latest(self, account: Account) -> Post:
        post = await self.microblog.timelines.latest_post(account.id)
        assert post is not None
        return post

    def test_timelines_link_to_status_pages(self) -> None:
        """
        Every post on the timelines links to its status page, with its
        time relative and exact.
        """
        self.post(self.alice, "linked")
        self.clock.advance(180)
        for path in ["/", "/alice"]:
            page = self.browser().get(path)
            self.assertIn(
                '<a class="permalink" href="/alice/status/1"><time datetime="2023-11-14T22:13:21Z"'
                ' title="2023-11-14 22:13 UTC">3 min</time></a>', page.text, path,
            )


class ButtonTests(StatusPagesTestCase):
    def test_no_buttons_for_visitors(self) -> None:
        self.post(self.alice, "look")
        page = self.browser().get("/")
        self.assertNotIn('class="action', page.text)

    def test_retweet_and_favorite(self) -> None:
        """
        Retweet, favorite and their undoing, from the profile page, each
        then back to it; twice is no error.
        """
        post = self.post(self.alice, "good one")
        bob = self.signed_in("bob")
        page = self.button(bob, "/alice", "retweet")
        self.assertEqual((page.code, page.location), (303, "/alice"))
        self.assertEqual(self.run_(self.microblog.status(post.id)).retweet_count, 1)
        page = bob.get("/alice")
        self.assertIn("Undo retweet", page.text)
        self.assertIn('<span class="retweet-count">1</span> retweet', page.text)
        page = self.button(bob, "/alice/status/1", "favorite")
        self.assertEqual((page.code, page.location), (303, "/alice/status/1"))
        self.assertEqual(self.run_(self.microblog.status(post.id)).favorite_count, 1)
        self.assertIn("Unfavorite", bob.get("/home").text)
        # bob's home shows his retweet: the buttons act on the original.
        self.assertEqual(self.button(bob, "/home", "unfavorite").location, "/home")
        self.assertEqual(self.button(bob, "/home", "unretweet").location, "/home")
        again = self.run_(self.microblog.status(post.id))
        self.assertEqual((again.retweet_count, again.favorite_count), (0, 0))
        # A stale page: undoing again, doing twice.
        token = bob.get("/home").csrf()
        for action in ["unretweet", "unfavorite", "favorite", "favorite"]:
            page = bob.post(f"/status/{post.id}/{action}", {"csrf": token, "next": "/alice"})
            self.assertEqual((page.code, page.location), (303, "/alice"), action)

    def test_next_must_be_local(self) -> None:
        post = self.post(self.alice, "x")
        bob = self.signed_in("bob")
        token = bob.get("/home").csrf()
        for bad in ["//evil.example/", "https://evil.example/", "/\\evil", "", "home"]:
            page = bob.post(f"/status/{post.id}/favorite", {"csrf": token, "next": bad})
            self.assertEqual((page.code, page.location), (303, "/home"), bad)
            bob.post(f"/status/{post.id}/unfavorite", {"csrf": token})

    def test_own_posts(self) -> None:
        """
        One's own post has reply, favorite and delete, not retweet.
        """
        self.post(self.alice, "mine")
        page = self.signed_in("alice").get("/alice")
        self.assertIn("/favorite", page.text)
        self.assertIn("/delete?next=/alice", page.text)
        self.assertNotIn("/retweet", page.text)
        self.assertEqual(self.signed_in("bob").get("/alice").text.count("/delete"), 0)

    def test_unknown_posts(self) -> None:
        bob = self.signed_in("bob")
        token = bob.get("/home").csrf()
        for path in ["/status/99/retweet", "/status/x/favorite", "/status/99/reply",
                     "/status/99/delete"]:
            page = bob.post(path, {"csrf": token, "status": "x"})
            self.assertEqual(page.code, 404, path)
            self.assertHTML(page)

    def test_sign_in_first(self) -> None:
        post = self.post(self.alice, "x")
        visitor = self.browser()
        token = visitor.get("/login").csrf()
        page = visitor.post(f"/status/{post.id}/favorite", {"csrf": token, "next": "/alice"})
        self.assertEqual((page.code, page.location), (303, "/login?next=%2Falice"))
        page = visitor.get(f"/status/{post.id}/reply")
        self.assertEqual(page.code, 303)
        self.assertEqual(self.run_(self.microblog.status(post.id)).favorite_count, 0)

    def test_forms_refuse_bad_tokens(self) -> None:
        """
        Every new form refuses a missing or wrong token (403, a page for
        people) and changes nothing.
        """
        post = self.post(self.alice, "target")
        own = self.post(self.bob, "bob's own")
        bob = self.signed_in("bob")
        paths = [f"/status/{post.id}/{action}"
                 for action in ["retweet", "unretweet", "favorite", "unfavorite", "reply"]]
        paths.append(f"/status/{own.id}/delete")
        for path in paths:
            for token in [None, "", "wrong", "0" * 64]:
                fields = {"status": "forged", "next": "/home"}
                if token is not None:
                    fields["csrf"] = token
                page = bob.post(path, fields)
                self.assertEqual(page.code, 403, (path, token))
                self.assertHTML(page)
                self.assertIn(EXPIRED_FORM, html.unescape(page.text))
        status = self.run_(self.microblog.status(post.id))
        self.assertEqual((status.retweet_count, status.favorite_count), (0, 0))
        self.assertEqual(self.posts_of(self.bob), ["bob's own"])


class ReplyAndDeleteTests(StatusPagesTestCase):
    def test_reply(self) -> None:
        """
        Reply leads to a form prefilled with ``@handle``; sent, the reply
        keeps in_reply_to and the visitor goes back where they were.
        """
        post = self.post(self.alice, "question?")
        bob = self.signed_in("bob")
        page = bob.get("/home")
        self.assertEqual(page.text.count("Reply</a>"), 0)  # bob follows nobody
        page = bob.get("/alice")
        link = re.search(r'href="(/status/\d+/reply\?next=[^"]*)"', page.text)
        assert link is not None
        form = bob.get(html.unescape(link.group(1)))
        self.assertEqual(form.code, 200)
        self.assertIn(">@alice </textarea>", form.text)
        self.assertIn('name="next" value="/alice"', form.text)
        sent = bob.post(f"/status/{post.id}/reply", {
            "csrf": form.csrf(), "next": "/alice", "status": "@alice answer",
        })
        self.assertEqual((sent.code, sent.location), (303, "/alice"))
        reply = self.run_(self.latest(self.bob))
        self.assertEqual((reply.text, reply.in_reply_to_status_id), ("@alice answer", post.id))
        thread = bob.get("/alice/status/1")
        self.assertEqual(self.texts(thread), ["question?", "@alice answer"])

    async def latest(self, account: Account) -> Post:
        post = await self.microblog.timelines.latest_post(account.id)
        assert post is not None
        return post

    def test_reply_from_the_status_page(self) -> None:
        post = self.post(self.alice, "question?")
        bob = self.signed_in("bob")
        page = bob.get("/alice/status/1")
        self.assertIn(f'action="/status/{post.id}/reply"', page.text)
        self.assertIn(">@alice </textarea>", page.text)
        sent = bob.post(f"/status/{post.id}/reply", {
            "csrf": page.csrf(), "next": "/alice/status/1", "status": "@alice yes",
        })
        self.assertEqual(sent.location, "/alice/status/1")

    def test_refused_reply(self) -> None:
        post = self.post(self.alice, "question?")
        bob = self.signed_in("bob")
        token = bob.get("/home").csrf()
        page = bob.post(f"/status/{post.id}/reply", {"csrf": token, "status": "x" * 141})
        self.assertEqual(page.code, 400)
        self.assertIn("Status is over 140 characters (141).", page.text)
        self.assertIn("x" * 141 + "</textarea>", page.text)
        self.assertEqual(self.posts_of(self.bob), [])

    def test_delete_with_confirmation(self) -> None:
        """
        Delete asks first; confirmed, the post is gone and its page says
        so; nobody else may delete it.
        """
        post = self.post(self.alice, "oops")
        bob = self.signed_in("bob")
        self.assertEqual(bob.get(f"/status/{post.id}/delete").code, 404)
        token = bob.get("/home").csrf()
        self.assertEqual(bob.post(f"/status/{post.id}/delete", {"csrf": token}).code, 404)
        alice = self.signed_in("alice")
        confirm = alice.get(f"/status/{post.id}/delete?next=%2Falice%2Fstatus%2F1")
        self.assertEqual(confirm.code, 200)
        self.assertIn("Delete this post?", confirm.text)
        self.assertEqual(self.posts_of(self.alice), ["oops"])
        done = alice.post(f"/status/{post.id}/delete", {
            "csrf": confirm.csrf(), "next": "/alice/status/1",
        })
        self.assertEqual((done.code, done.location), (303, "/alice"))
        self.assertEqual(self.posts_of(self.alice), [])
        self.assertEqual(alice.get("/alice/status/1").code, 410)
        self.assertEqual(alice.get(f"/status/{post.id}/delete").code, 410)


class HashtagTests(StatusPagesTestCase):
    def test_hashtag_page(self) -> None:
        """
        /hashtag/TAG lists the posts with that very tag (any case), newest
        first, twenty a page with "load older".
        """
        for n in range(23):
            self.post(self.alice if n % 2 else self.bob, f"number {n} #Twisted")
        self.post(self.alice, "not #Twistedness")
        self.post(self.alice, "nor Twisted")
        browser = self.browser()
        page = browser.get("/hashtag/twisted")
        self.assertEqual(page.code, 200)
        self.assertHTML(page)
        texts = self.texts(page)
        self.assertEqual(texts, [f"number {n} #Twisted" for n in range(22, 2, -1)])
        older = re.search(r'href="(/hashtag/twisted\?max_id=\d+)"', page.text)
        assert older is not None
        page = browser.get(html.unescape(older.group(1)))
        self.assertEqual(self.texts(page), [f"number {n} #Twisted" for n in range(2, -1, -1)])
        self.assertNotIn("max_id=", page.text)
        self.assertEqual(browser.get("/hashtag/123").code, 404)
        self.assertEqual(browser.get("/hashtag/a-b").code, 404)
        self.assertEqual(browser.get("/hashtag/twisted?max_id=x").code, 400)
        self.assertIn("No post here has this tag yet.", browser.get("/hashtag/nothing").text)


class HostileTextTests(StatusPagesTestCase):
    def test_hostile_text_is_escaped_everywhere(self) -> None:
        """
        Markup in a post is text on every page it appears: the status page
        (its meta tags too), home, the profile, the public timeline, the
        hashtag page, the reply and delete pages.
        """
        self.run_(self.microblog.follow(self.bob, self.alice))
        posts = [self.post(self.alice, text + " #hostile") for text in HOSTILE]
        bob = self.signed_in("bob")
        alice = self.signed_in("alice")
        pages = [
            (bob, "/"), (bob, "/home"), (bob, "/alice"), (bob, "/hashtag/hostile"),
            (self.browser(), "/alice/status/1"), (bob, "/alice/status/2"),
            (bob, f"/status/{posts[0].id}/reply"), (alice, f"/status/{posts[1].id}/delete"),
        ]
        for browser, path in pages:
            page = browser.get(path)
            self.assertEqual(page.code, 200, path)
            self.assertNotIn("<script>", page.text, path)
            self.assertNotIn("<img src=x", page.text, path)
            self.assertNotIn('"><img', page.text, path)
            for text in HOSTILE:
                if html.escape(text) in page.text:
                    self.assertIn(text + " #hostile", self.texts(page), path)
            self.assertTrue(
                set(self.texts(page)) & {text + " #hostile" for text in HOSTILE}, path
            )
        status = self.browser().get("/alice/status/2").text
        self.assertIn(
            '<meta property="og:description" content="&#34;&gt;&lt;img src=x '
            'onerror=alert(1)&gt; #hostile">', status,
        )


class OddInputTests(StatusPagesTestCase):
    def test_odd_values_get_pages_not_errors(self) -> None:
        """
        Any id, next, text or path on the new pages and forms gets a page
        (or a redirect), never a server error.
        """
        post = self.post(self.alice, "target #tag")
        own = self.post(self.bob, "own")
        bob = self.signed_in("bob")
        token = bob.get("/home").csrf()
        odd = ["", "0", "-1", "1.5", "9" * 30, "\x00", "\x0c", "<b>", "x" * 500,
               "javascript:alert(1)", "//evil.example", "/ok?max_id=3", "é", "🎉"]
        ids = [str(post.id), str(own.id), *odd[:5]]
        for action in ["retweet", "unretweet", "favorite", "unfavorite", "reply", "delete"]:
            for post_id in ids:
                for value in odd:
                    fields = {"csrf": token, "next": value, "status": value}
                    page = bob.post(f"/status/{post_id}/{action}", fields)
                    self.assertIn(page.code, (303, 400, 404, 410), (action, post_id, value))
                    self.assertNotIn("Traceback", page.text)
                    if page.code == 303:
                        self.assertTrue(page.location.startswith("/"), page.location)
                        self.assertFalse(page.location.startswith("//"), page.location)
        for path in ["/hashtag/%00", "/hashtag/%C3%A9t%C3%A9", "/hashtag/" + "a" * 300,
                     "/alice/status/%00", "/@/status/1", "/@alice@/status/1",
                     "/@alice@localhost:8080/status/1", "/status/1/reply?next=%00",
                     f"/status/{post.id}/reply?next=//evil.example"]:
            page = bob.get(path)
            self.assertIn(page.code, (200, 303, 404), path)
            self.assertNotIn("Traceback", page.text)
            if path.endswith("evil.example"):
                self.assertIn('name="next" value="/alice/status/1"', page.text)
