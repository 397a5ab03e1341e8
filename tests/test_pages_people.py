"""
The people pages of issue 14, in memory (StubTreq over the real resource
and a real SQLite store, as tests/test_pages.py drives them): profiles
with their lists, the follow-by-address box, notifications and the unread
count, the profile image upload, folded sign-in errors; every new form
refuses a missing or wrong form token, and hostile names and bios are
escaped wherever they show.
"""

from __future__ import annotations

import io
import re
import secrets
from urllib.parse import urlencode

from PIL import Image

from distwit.web.site import EXPIRED_FORM

from tests.test_pages import Page, PagesTestCase

#: What a hostile profile holds.
HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def png(side: int = 60) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]
              ) -> tuple[bytes, str]:
    """
    A multipart/form-data body, as a browser sends a form with a file.
    """
    boundary = "----distwit" + secrets.token_hex(8)
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for name, (filename, data) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}";'
            f' filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + data + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class PeopleTestCase(PagesTestCase):
    def assertEscaped(self, page: Page) -> None:
        """
        No hostile text reached ``page`` as markup; it is there, escaped.
        """
        self.assertNotIn("<script>alert", page.text)
        self.assertNotIn("<img src=x", page.text)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page.text)
        self.assertIn("&#34;&gt;&lt;img src=x onerror=alert(1)&gt;", page.text)

    def make_hostile(self, handle: str) -> None:
        account = self.account(handle)
        assert account is not None
        self.run_(self.microblog.update_profile(
            account, name=HOSTILE[1][:50], description=" ".join(HOSTILE),
            location="Paris", url="javascript:alert(1)",
        ))


class ProfilePageTests(PeopleTestCase):
    def test_profile_fields(self) -> None:
        """
        A profile shows the avatar, name, bio, location and web site (a
        link marked nofollow ugc), and links its counts to the lists.
        """
        self.run_(self.microblog.update_profile(
            self.alice, description="Writes things", location="Lyon",
            url="https://alice.example/about",
        ))
        page = self.browser().get("/alice")
        self.assertEqual(page.code, 200)
        self.assertIn('src="/profile_images/default_bigger.png"', page.text)
        self.assertIn('<p class="bio">Writes things</p>', page.text)
        self.assertIn("Lyon", page.text)
        self.assertIn(
            '<a href="https://alice.example/about" rel="nofollow ugc noopener" class="url">',
            page.text,
        )
        self.assertIn('href="/alice/followers"', page.text)
        self.assertIn('href="/alice/following"', page.text)

    def test_only_web_addresses_are_links(self) -> None:
        """
        A web site that is not http(s) is never a link.
        """
        self.make_hostile("alice")
        page = self.browser().get("/alice")
        self.assertNotIn('href="javascript', page.text)
        self.assertEscaped(page)

    def test_lists_paged(self) -> None:
        """
        The followers and following lists show people with their pages
        linked, in pages of 20, and 404 for nobody.
        """
        for i in range(23):
            fan = self.run_(self.microblog.create_user(f"fan{i}", "fan-password-1", f"Fan {i}"))
            self.run_(self.microblog.follow(fan, self.alice))
        self.run_(self.microblog.follow(self.alice, self.bob))
        browser = self.browser()
        page = browser.get("/alice/followers")
        self.assertEqual(page.code, 200)
        self.assertEqual(page.text.count('<li class="person">'), 20)
        more = re.search(r'href="(/alice/followers\?before=\d+)"', page.text)
        assert more is not None
        rest = browser.get(more.group(1))
        self.assertEqual(rest.text.count('<li class="person">'), 3)
        self.assertNotIn("before=", rest.text)
        names = set(re.findall(r'href="/(fan\d+)"', page.text + rest.text))
        self.assertEqual(len(names), 23)
        page = browser.get("/alice/following")
        self.assertIn('href="/bob"', page.text)
        self.assertEqual(page.text.count('<li class="person">'), 1)
        self.assertEqual(browser.get("/nobody/followers").code, 404)
        self.assertEqual(browser.get("/alice/followers?before=x").code, 400)

    def test_older_posts(self) -> None:
        """
        A profile pages back through older posts with max_id.
        """
        for i in range(25):
            self.run_(self.microblog.post(self.alice, f"post {i}"))
            self.clock.advance(1)
        page = self.browser().get("/alice")
        self.assertIn("post 24", page.text)
        self.assertNotIn("post 4<", page.text)
        older = re.search(r'href="(/alice\?max_id=\d+)"', page.text)
        assert older is not None
        page = self.browser().get(older.group(1))
        self.assertIn("post 4<", page.text)
        self.assertNotIn("post 5<", page.text)

    def test_unknown_remote_user_without_federation(self) -> None:
        """
        A remote page of an account this server cannot look up is a short
        404; a malformed one too; this server's own authority leads to the
        local profile.
        """
        browser = self.browser()
        page = browser.get("/@carol@example.org")
        self.assertEqual(page.code, 404)
        self.assertIn("example.org has nobody called carol.", page.text)
        self.assertIn("<details", page.text)
        self.assertEqual(browser.get("/@carol@").code, 404)
        page = browser.get("/@alice@localhost:8080")
        self.assertEqual((page.code, page.location), (303, "/alice"))


class FollowBoxTests(PeopleTestCase):
    def test_follow_local_by_handle(self) -> None:
        """
        The box on the home page follows a handle of this server, with or
        without an @, then shows their profile.
        """
        browser = self.signed_in("bob")
        page = browser.get("/home")
        self.assertIn('action="/people/follow"', page.text)
        self.assertIn('<label for="follow-acct">', page.text)
        page = browser.post("/people/follow", {"csrf": page.csrf(), "acct": "@Alice",
                                               "from": "home"})
        self.assertEqual((page.code, page.location), (303, "/alice"))
        self.assertTrue(self.run_(self.microblog.is_following(self.bob, self.alice)))
        page = browser.post("/people/follow", {
            "csrf": browser.get("/home").csrf(),
            "acct": "alice@localhost:8080", "action": "unfollow",
        })
        self.assertEqual((page.code, page.location), (303, "/alice"))
        self.assertFalse(self.run_(self.microblog.is_following(self.bob, self.alice)))

    def test_errors_are_short(self) -> None:
        """
        A wrong address shows the home page again with a short sentence
        and what was typed; following oneself says why.
        """
        browser = self.signed_in("bob")
        token = browser.get("/home").csrf()
        for typed, status, said in [
            ("", 400, "Type an address like someone@example.org"),
            ("not an address!", 400, "Type an address like someone@example.org"),
            ("a@b@c", 400, "Type an address like someone@example.org"),
            ("nobody", 404, "Nobody here has that handle."),
            ("bob", 400, "You can&#39;t follow yourself."),
            ("carol@example.org", 404, "example.org has nobody called carol."),
        ]:
            page = browser.post(
                "/people/follow", {"csrf": token, "acct": typed, "from": "home"}
            )
            self.assertEqual(page.code, status, typed)
            self.assertIn("<h1>Home</h1>", page.text)
            self.assertIn(said, page.text)
            self.assertIn(f'name="acct" value="{typed}"', page.text.replace("&#34;", '"'))
        page = browser.post("/people/follow", {"csrf": token, "acct": "nobody"})
        self.assertEqual(page.code, 404)
        self.assertIn("Nobody here has that handle.", page.text)
        page = browser.post("/people/follow", {"csrf": token, "acct": "alice", "action": "x"})
        self.assertEqual(page.code, 400)

    def test_needs_sign_in(self) -> None:
        browser = self.browser()
        token = browser.get("/login").csrf()
        page = browser.post("/people/follow", {"csrf": token, "acct": "alice"})
        self.assertEqual((page.code, page.location), (303, "/login?next=%2Fhome"))


class NotificationsPageTests(PeopleTestCase):
    def unread(self, page: Page) -> str | None:
        found = re.search(r'<span class="unread"[^>]*>([^<]*)</span>', page.text)
        return found.group(1) if found else None

    def test_each_kind_and_the_unread_count(self) -> None:
        """
        A mention, a reply, a follow, a retweet and a favorite each show on
        the notifications page, newest first; the header counts them
        until the page is seen.
        """
        own = self.run_(self.microblog.post(self.alice, "alice's post"))
        browser = self.signed_in("alice")
        self.assertIsNone(self.unread(browser.get("/home")))
        self.clock.advance(1)
        self.run_(self.microblog.post(self.bob, "hello @alice"))
        self.clock.advance(1)
        self.run_(self.microblog.post(self.bob, "@alice a reply", in_reply_to_status_id=own.id))
        self.clock.advance(1)
        self.run_(self.microblog.follow(self.bob, self.alice))
        self.clock.advance(1)
        self.run_(self.microblog.retweet(self.bob, own.id))
        self.clock.advance(1)
        self.run_(self.microblog.favorite(self.bob, own.id))
        page = browser.get("/home")
        self.assertEqual(self.unread(page), "5")
        self.assertIn('aria-label="5 unread"', page.text)
        page = browser.get("/notifications")
        self.assertEqual(page.code, 200)
        self.assertIsNone(self.unread(page))
        kinds = re.findall(r'<li class="notification (\w+)">', page.text)
        self.assertEqual(kinds, ["favorite", "retweet", "follow", "reply", "mention"])
        for said in ["favorited your post", "retweeted your post", "followed you",
                     "replied to you", "mentioned you", "hello @alice", "@alice a reply"]:
            self.assertIn(said, page.text)
        self.assertIsNone(self.unread(browser.get("/home")))
        self.clock.advance(1)
        self.run_(self.microblog.post(self.bob, "again @alice"))
        self.assertEqual(self.unread(browser.get("/home")), "1")

    def test_blocked_and_muted_are_not_heard(self) -> None:
        """
        Nothing of an account alice blocks or mutes is in her
        notifications or in the unread count (docs/design/blocks.md).
        """
        carol = self.run_(self.microblog.create_user("carol", "carol-password"))
        self.run_(self.microblog.post(self.bob, "bob says hi @alice"))
        self.clock.advance(1)
        self.run_(self.microblog.post(carol, "carol says hi @alice"))
        browser = self.signed_in("alice")
        self.assertEqual(self.unread(browser.get("/home")), "2")
        self.run_(self.microblog.block(self.alice, self.bob))
        self.run_(self.microblog.mute(self.alice, carol))
        self.assertIsNone(self.unread(browser.get("/home")))
        page = browser.get("/notifications")
        self.assertNotIn("bob says hi", page.text)
        self.assertNotIn("carol says hi", page.text)

    def test_paged(self) -> None:
        """
        Older notifications are on the next pages; opening an older page
        does not clear the count.
        """
        for i in range(23):
            self.clock.advance(1)
            self.run_(self.microblog.post(self.bob, f"number {i} @alice"))
        browser = self.signed_in("alice")
        page = browser.get("/notifications?before=99999999999999")
        self.assertEqual(self.unread(page), "23")
        page = browser.get("/notifications")
        self.assertEqual(page.text.count('<li class="notification'), 20)
        self.assertIn("number 22", page.text)
        older = re.search(r'href="(/notifications\?before=[\d.]+)"', page.text)
        assert older is not None
        page = browser.get(older.group(1))
        self.assertEqual(page.text.count('<li class="notification'), 3)
        self.assertIn("number 0 ", page.text)
        self.assertEqual(browser.get("/notifications?before=abc").code, 400)

    def test_paged_within_one_millisecond(self) -> None:
        """
        Notifications of the same millisecond are each shown once across
        the pages.
        """
        for i in range(45):
            self.run_(self.microblog.post(self.bob, f"same time {i} @alice"))
        browser = self.signed_in("alice")
        path: str | None = "/notifications"
        seen: list[str] = []
        while path is not None:
            page = browser.get(path)
            self.assertEqual(page.code, 200, path)
            seen += re.findall(r"same time (\d+) @alice", page.text)
            older = re.search(r'href="(/notifications\?before=[\d.]+)"', page.text)
            path = older.group(1) if older else None
        self.assertEqual(sorted(seen, key=int), [str(i) for i in range(45)])
        for bad in ["1.x", "x", "1." + "9" * 16, "1.10001"]:
            self.assertEqual(browser.get("/notifications?before=" + bad).code, 400, bad)

    def test_needs_sign_in(self) -> None:
        page = self.browser().get("/notifications")
        self.assertEqual((page.code, page.location), (303, "/login?next=%2Fnotifications"))

    def test_hostile_names_escaped(self) -> None:
        """
        A hostile name and bio are escaped on the profile, the lists, the
        notifications page and in the header.
        """
        self.make_hostile("bob")
        bob = self.account("bob")
        assert bob is not None
        self.run_(self.microblog.follow(bob, self.alice))
        self.run_(self.microblog.post(bob, HOSTILE[0] + " @alice"))
        browser = self.signed_in("alice")
        for path in ["/bob", "/alice/followers", "/notifications"]:
            page = browser.get(path)
            self.assertEqual(page.code, 200, path)
            self.assertNotIn("<script>alert", page.text, path)
            self.assertNotIn("<img src=x", page.text, path)
            self.assertIn("&lt;img src=x onerror=alert(1)&gt;", page.text, path)
        self.assertEscaped(browser.get("/bob"))
        bobs = self.signed_in("bob")
        for path in ["/settings", "/home"]:
            page = bobs.get(path)
            self.assertNotIn("<img src=x", page.text, path)


class SettingsImageTests(PeopleTestCase):
    def upload(self, browser: object, token: str, data: bytes) -> Page:
        body, kind = multipart({"csrf": token}, {"image": ("me.png", data)})
        return browser.request(  # type: ignore[attr-defined,no-any-return]
            "POST", "/settings/image", data=body, headers={"Content-Type": kind}
        )

    def test_upload(self) -> None:
        """
        A PNG becomes the profile image, shown on the profile and in
        settings.
        """
        browser = self.signed_in("alice")
        page = browser.get("/settings")
        self.assertIn('enctype="multipart/form-data"', page.text)
        self.assertIn('<label for="image">', page.text)
        page = self.upload(browser, page.csrf(), png())
        self.assertEqual((page.code, page.location), (303, "/settings?saved=image"), page.text)
        alice = self.account("alice")
        assert alice is not None
        self.assertTrue(alice.profile_image)
        self.assertIn("Profile image changed.", browser.get("/settings?saved=image").text)
        self.assertIn(f"/profile_images/{alice.profile_image}_bigger.png",
                      browser.get("/alice").text)

    def test_refused(self) -> None:
        """
        What the API refuses is refused here, with its reason; nothing is
        changed.
        """
        browser = self.signed_in("alice")
        token = browser.get("/settings").csrf()
        page = self.upload(browser, token, b"GIF89a not really")
        self.assertEqual(page.code, 400)
        self.assertIn("The file is not an image (GIF, JPEG or PNG).", page.text)
        page = self.upload(browser, token, b"")
        self.assertEqual(page.code, 400)
        self.assertIn("Choose an image file to upload.", page.text)
        page = self.upload(browser, token, b"\x89PNG" + b"0" * (701 * 1024))
        self.assertEqual(page.code, 400)
        self.assertIn("The image is over 700 kB.", page.text)
        self.assertEqual(self.account("alice"), self.alice)


class FormTokenTests(PeopleTestCase):
    def test_new_forms_refuse_missing_or_wrong_tokens(self) -> None:
        """
        The follow box, the remote follow buttons, the image upload and the
        profile form refuse a form without this visitor's token.
        """
        browser = self.signed_in("bob")
        for token in [None, "", "wrong", self.signed_in("alice").get("/home").csrf()]:
            fields = {} if token is None else {"csrf": token}
            for path, more in [
                ("/people/follow", {"acct": "alice", "from": "home"}),
                ("/people/follow", {"acct": "alice@example.org", "action": "unfollow"}),
                ("/settings/profile", {"name": "x"}),
            ]:
                page = browser.post(path, {**fields, **more})
                self.assertEqual(page.code, 403, (path, token))
                self.assertIn(EXPIRED_FORM.replace("'", "&#39;"), page.text)
            body, kind = multipart(fields, {"image": ("me.png", png())})
            page = browser.request(
                "POST", "/settings/image", data=body, headers={"Content-Type": kind}
            )
            self.assertEqual(page.code, 403, token)
        self.assertFalse(self.run_(self.microblog.is_following(self.bob, self.alice)))
        self.assertEqual(self.account("bob"), self.bob)


class SignInPageTests(PeopleTestCase):
    def test_names_the_asking_server(self) -> None:
        """
        Sent to sign in on the way to the consent page, a visitor reads
        which server sent them.
        """
        query = urlencode({
            "client_id": "c", "redirect_uri": "https://asking.example/login/callback",
        })
        page = self.browser().get("/login?" + urlencode({"next": "/oidc/authorize?" + query}))
        self.assertIn('<strong class="asking-host">asking.example</strong>', page.text)
        page = self.browser().get("/login?next=%2Fhome")
        self.assertNotIn("asking-host", page.text)

    def test_pages_have_lang_and_labels(self) -> None:
        """
        Every page says its language; every field of the new forms has a
        label.
        """
        browser = self.signed_in("alice")
        for path in ["/home", "/settings", "/notifications", "/alice", "/alice/followers",
                     "/login"]:
            page = browser.get(path)
            self.assertIn('<html lang="en">', page.text, path)
            for field_id in re.findall(r'<(?:input|textarea)[^>]*\bid="([^"]+)"', page.text):
                self.assertIn(f'for="{field_id}"', page.text, (path, field_id))
