"""
``/settings/devices`` in a real browser (Playwright driving Debian's
Chromium, as tests/test_browser.py does) on a real server process whose
SMS and IM channels record what they send (tests/device_channels.py):
bob adds his phone, types in the code it got, chooses his phone for
friends' posts and what else it sends, has alice's posts sent there (and
gets her next one), sets quiet hours, and removes it again; every
mistake on the way is a sentence on the page, and what the page saved is
what the API reads.

Screenshots of each step, at 375 and 1280 px, are kept in
``test-artifacts/devices/``; no step's page scrolls sideways.
"""

from __future__ import annotations

import html
import os
import shutil
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from distwit.core.devices import Devices

from tests.device_channels import code_in, recording_server, sent
from tests.processes import ROOT, ServerProcess
from tests.test_browser import chromium_path, playwright
from tests.test_browser_people import sign_in
from tests.test_federation import PASSWORD, call, wait_for
from tests.test_page_widths import WIDTHS, overflow
from tests.test_pages import PagesTestCase

#: Where the screenshots go.
ARTIFACTS = os.path.join(ROOT, "test-artifacts", "devices")

PHONE = "+15555550199"


class DevicesPageTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.executable = chromium_path()
        self.sync_playwright = playwright()
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        os.makedirs(ARTIFACTS)
        self.step = 0
        self.failures: list[str] = []

    def shot(self, page: Any, name: str) -> None:
        """
        A screenshot at each width (the page reloaded only if it was got
        with GET), checking that nothing sticks out sideways.
        """
        self.step += 1
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            page.screenshot(
                path=os.path.join(ARTIFACTS, f"{self.step:02d}-{name}-{width}.png"),
                full_page=True,
            )
            found = overflow(page)
            if found:
                self.failures.append(f"{name} at {width}px: {found}")
        page.set_viewport_size({"width": WIDTHS[0], "height": 800})

    def test_phone_from_adding_to_removing(self) -> None:
        """
        bob adds, verifies, uses and removes his phone on the page; the
        page offers SMS and IM (the channels configured) and says e-mail
        is not offered.
        """
        data = os.path.join(os.path.abspath(self.mktemp()), "s1")
        server, log = recording_server(data, ["bob", "alice"], ["sms", "im"], PASSWORD,
                                       host="127.0.0.2")
        self.addCleanup(server.stop)
        with self.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=self.executable, headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": WIDTHS[0], "height": 800})
            page.set_default_timeout(20000)
            try:
                self.walk(page, server, log)
            except BaseException:
                page.screenshot(path=os.path.join(ARTIFACTS, "failed-here.png"), full_page=True)
                raise
        self.assertEqual(self.failures, [])
        self.assertNotIn("Traceback", server.log_text())

    def walk(self, page: Any, server: ServerProcess, log: str) -> None:
        sign_in(page, server, "bob")
        page.goto(server.url + "/settings")
        page.click("text=Phone, IM and e-mail")
        page.wait_for_url(server.url + "/settings/devices")
        offered = page.text_content("p.offered") or ""
        self.assertIn("Phone (SMS)", offered)
        self.assertIn("Jabber", offered)
        self.assertIn("does not offer e-mail", offered)
        self.assertIsNone(page.query_selector("section#email"))
        self.shot(page, "offered")

        # A number that is no number: a sentence, what was typed kept.
        page.fill("#address-sms", "call me maybe")
        page.click("section#sms button[type=submit]")
        self.assertTrue(page.text_content("section#sms p.error"))
        self.assertEqual(page.input_value("#address-sms"), "call me maybe")
        self.shot(page, "bad-number")

        # Friends' posts cannot go to a phone not yet verified.
        page.select_option("#delivery_device", "sms")
        page.click("section#choices button[type=submit]")
        self.assertIn("phone", (page.text_content("section#choices p.error") or "").lower())

        # The phone: a code is sent to it.
        page.fill("#address-sms", "+1 555 555 0199")
        page.click("section#sms button[type=submit]")
        self.assertIn("We sent a code", page.text_content("p.notice") or "")
        self.assertEqual(page.text_content("section#sms .address"), PHONE)
        code, _ = wait_for(
            lambda: next((code_in(m) for m in sent(log)
                          if m["address"] == PHONE and code_in(m)), None),
            30, "the code by SMS", step=0.1,
        )
        self.shot(page, "code-sent")

        # A wrong code first, then the right one.
        page.fill("#code-sms", "000000" if code != "000000" else "111111")
        page.click("form.verify button[type=submit]")
        self.assertTrue(page.text_content("section#sms p.error"))
        self.shot(page, "wrong-code")
        page.fill("#code-sms", code)
        page.click("form.verify button[type=submit]")
        self.assertIn("verified", page.text_content("p.notice") or "")
        self.assertIn("(verified)", page.text_content("section#sms") or "")
        self.shot(page, "verified")

        # Friends' posts to the phone, and mentions too, not direct messages.
        page.select_option("#delivery_device", "sms")
        page.check("input[name=sms_mentions]")
        page.uncheck("input[name=sms_direct_messages]")
        page.click("section#choices button[type=submit]")
        self.assertIn("Saved", page.text_content("p.notice") or "")
        settings = call(server, "GET", "/1.1/account/settings.json", "bob")
        self.assertEqual(
            (settings["delivery_device"], settings["sms_mentions"],
             settings["sms_direct_messages"]),
            ("sms", True, False),
        )

        # alice's posts to bob's phone, chosen on the page.
        call(server, "POST", "/1.1/friendships/create.json", "bob", screen_name="alice")
        page.fill("#friend", "alice")
        page.click("form.friend-on button[type=submit]")
        self.assertIn("Their posts are sent to you now", page.text_content("p.notice") or "")
        self.assertEqual(page.text_content("ul.friends-on .friend"), "alice")
        call(server, "POST", "/1.1/statuses/update.json", "alice", status="alice to bob's phone")
        wait_for(
            lambda: any(m["address"] == PHONE and m["text"] == "alice: alice to bob's phone"
                        for m in sent(log)),
            30, "alice's post by SMS", step=0.1,
        )
        self.shot(page, "friend-on")

        # Quiet hours that end when they start: a sentence; then good ones.
        page.check("input[name=quiet]")
        page.select_option("#quiet_start", "6")
        page.select_option("#quiet_end", "6")
        page.click("section#quiet button[type=submit]")
        self.assertIn("another hour", page.text_content("section#quiet p.error") or "")
        # What was chosen is kept, to mend.
        self.assertTrue(page.is_checked("input[name=quiet]"))
        self.assertEqual(page.input_value("#quiet_start"), "6")
        self.shot(page, "quiet-hours-refused")
        page.select_option("#quiet_start", "22")
        page.select_option("#quiet_end", "7")
        page.select_option("#utc_offset", "120")
        page.click("section#quiet button[type=submit]")
        self.assertIn("Quiet hours saved", page.text_content("p.notice") or "")
        settings = call(server, "GET", "/1.1/account/settings.json", "bob")
        self.assertEqual(settings["sleep_time"],
                         {"enabled": True, "start_time": 22, "end_time": 7})
        self.assertEqual(settings["time_zone"]["utc_offset"], 7200)
        self.assertEqual(page.input_value("#utc_offset"), "120")
        self.shot(page, "choices-saved")

        # A form from elsewhere (no token) changes nothing.
        code_, body = server.request("POST", "/settings/devices/remove", data={"kind": "sms"})
        self.assertEqual(code_, 403)

        # Removed: the form to add one is back, and the API has none.
        page.click("section#sms button:has-text('Remove')")
        self.assertIn("removed", page.text_content("p.notice") or "")
        self.assertIsNotNone(page.query_selector("#address-sms"))
        self.assertEqual(call(server, "GET", "/1.1/account/devices.json", "bob")["devices"], [])
        self.shot(page, "removed")


class DevicesPageInMemoryTests(PagesTestCase):
    """
    The page in memory (StubTreq over the real pages, a real SQLite
    store): what it offers, and each mistake as a sentence.
    """

    def make_devices(self, *kinds: str) -> Devices:
        devices = Devices(self.store, self.microblog, self.clock, kinds=frozenset(kinds))
        self.make_pages(devices=devices)
        return devices

    def test_no_channel_configured(self) -> None:
        """
        With no channel, the page says plainly that the server sends
        nothing, and has no forms but the sign-out; the settings page does
        not link it.
        """
        self.make_devices()
        browser = self.signed_in("bob")
        page = browser.get("/settings/devices")
        self.assertHTML(page)
        self.assertEqual(page.code, 200)
        self.assertIn("sends nothing to phones", page.text)
        self.assertNotIn("/settings/devices/add", page.text)
        self.assertNotIn('href="/settings/devices"', browser.get("/settings").text)

    def test_without_devices_no_link(self) -> None:
        """
        A server built without the devices' rules has no such page and
        no link to it.
        """
        browser = self.signed_in("bob")
        self.assertNotIn("/settings/devices", browser.get("/settings").text)
        self.assertEqual(browser.get("/settings/devices").code, 404)

    def test_mistakes_are_sentences(self) -> None:
        """
        A bad number, an empty code, a wrong code, a delivery device
        without a verified address and quiet hours ending when they start
        are each a sentence on the page (400), nothing changed; a form
        without its token is refused; signed out, the page asks to sign in.
        """
        devices = self.make_devices("sms", "email")
        self.assertEqual(self.browser().get("/settings/devices").location,
                         "/login?next=%2Fsettings%2Fdevices")
        browser = self.signed_in("bob")
        self.assertIn('href="/settings/devices"', browser.get("/settings").text)
        page = browser.get("/settings/devices")
        self.assertIn("Phone (SMS)", page.text)
        self.assertIn("It does not offer instant messages.", page.text)
        page = browser.submit("/settings/devices", {"kind": "sms", "address": "call me"},
                              "/settings/devices/add")
        self.assertEqual(page.code, 400)
        self.assertIn("written with its country code", html.unescape(page.text))
        self.assertIn('value="call me"', page.text)
        page = browser.submit("/settings/devices", {"delivery_device": "sms"},
                              "/settings/devices/choices")
        self.assertEqual(page.code, 400)
        self.assertIn("Add and verify a phone number first", page.text)
        page = browser.submit("/settings/devices", {"kind": "sms", "address": "+15555550100"},
                              "/settings/devices/add")
        self.assertEqual((page.code, page.location),
                         (303, "/settings/devices?done=added-sms#sms"))
        page = browser.get("/settings/devices?done=added-sms")
        self.assertIn("We sent a code to your phone", page.text)
        self.assertIn("+15555550100", page.text)
        page = browser.submit("/settings/devices", {"kind": "sms", "code": ""},
                              "/settings/devices/verify")
        self.assertIn("Type the code we sent you first.", page.text)
        page = browser.submit("/settings/devices", {"kind": "sms", "code": "12345x"},
                              "/settings/devices/verify")
        self.assertEqual(page.code, 400)
        self.assertIn("tries left", page.text)
        page = browser.submit("/settings/devices",
                              {"quiet": "1", "quiet_start": "6", "quiet_end": "6",
                               "utc_offset": "0"}, "/settings/devices/quiet")
        self.assertIn("Quiet hours must end at another hour than they start.", page.text)
        page = browser.submit("/settings/devices",
                              {"quiet": "1", "quiet_start": "23", "quiet_end": "6",
                               "utc_offset": "-330"}, "/settings/devices/quiet")
        self.assertEqual(page.code, 303)
        settings = self.run_(devices.settings(self.bob))
        self.assertEqual((settings.quiet_start, settings.quiet_end, settings.utc_offset),
                         (23, 6, -330 * 60))
        page = browser.post("/settings/devices/remove", {"kind": "sms"})
        self.assertEqual(page.code, 403)
        self.assertEqual(len(self.run_(devices.addresses(self.bob))), 1)
        page = browser.submit("/settings/devices", {"kind": "sms"}, "/settings/devices/remove")
        self.assertEqual(page.code, 303)
        self.assertEqual(self.run_(devices.addresses(self.bob)), [])

    def test_choices_saved(self) -> None:
        """
        The boxes ticked are the choices kept (an unticked box is off).
        """
        devices = self.make_devices("sms", "email")
        browser = self.signed_in("bob")
        page = browser.submit("/settings/devices",
                              {"delivery_device": "none", "email_mentions": "1",
                               "sms_followers": "1"}, "/settings/devices/choices")
        self.assertEqual(page.code, 303)
        choices = self.run_(devices.settings(self.bob)).choices
        self.assertEqual(
            {k: v for k, v in choices.items() if k.startswith(("sms_", "email_"))},
            {"sms_mentions": False, "sms_direct_messages": False, "sms_followers": True,
             "email_mentions": True, "email_direct_messages": False, "email_followers": False},
        )
        page = browser.get("/settings/devices?done=choices")
        self.assertIn("Saved: what is sent, and where.", page.text)
        self.assertIn('name="email_mentions" value="1" checked', page.text)

    def test_friends_whose_posts_are_sent(self) -> None:
        """
        A friend's posts turned on from the page are listed, with a button
        to stop them; someone not followed, or nobody, is a sentence.
        """
        devices = self.make_devices("sms")
        self.run_(self.microblog.follow(self.bob, self.alice))
        browser = self.signed_in("bob")
        self.assertIn("Nobody's yet.", browser.get("/settings/devices").text)
        page = browser.submit("/settings/devices", {"friend": "@alice", "on": "1"},
                              "/settings/devices/friend")
        self.assertEqual((page.code, page.location),
                         (303, "/settings/devices?done=on#friends"))
        self.assertEqual(self.run_(devices.notifications_on(self.bob, [self.alice.id])),
                         {self.alice.id})
        page = browser.get("/settings/devices?done=on")
        self.assertIn('<span class="friend">alice</span>', page.text)
        self.assertIn("Their posts are sent to you now.", page.text)
        carol = self.run_(self.microblog.create_user("carol", "carol-password"))
        page = browser.submit("/settings/devices", {"friend": carol.handle, "on": "1"},
                              "/settings/devices/friend")
        self.assertEqual(page.code, 400)
        self.assertIn("You are not following carol.", page.text)
        self.assertIn('value="carol"', page.text)
        page = browser.submit("/settings/devices", {"friend": "nobody", "on": "1"},
                              "/settings/devices/friend")
        self.assertIn("There is nobody called nobody here.", page.text)
        page = browser.submit("/settings/devices", {"friend": "alice", "on": "0"},
                              "/settings/devices/friend")
        self.assertEqual(page.code, 303)
        self.assertEqual(self.run_(devices.notifications_on(self.bob, [self.alice.id])), set())
