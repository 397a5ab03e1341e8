"""
Password reset by e-mail: the pages (``/account/forgot``,
``/account/reset/<token>``) in memory over a real SQLite store, and the
whole way through a real SMTP server (aiosmtpd, :mod:`tests.smtp_capture`).

The verified e-mail addresses come from a fake here (the devices area
holds the real ones; tests/test_email_end_to_end.py runs the real
server).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from email.headerregistry import Address
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from distwit.channels.email import SMTPChannel, SMTPServer
from distwit.core.microblog import Microblog
from distwit.core.password_reset import (
    MAILS_PER_ADDRESS,
    ExpiredResetLink,
    PasswordReset,
    UnknownResetLink,
    UsedResetLink,
    normalize_address,
)
from distwit.model import Account
from distwit.web.pages import Pages
from distwit.web.password_reset import NO_EMAIL
from tests.smtp_capture import SMTPCapture
from tests.support import cheap_hasher, synchronous_sqlite_store
from tests.test_pages import Browser

TTL = 3600.0
LINK = re.compile(r"http://localhost:8080/account/reset/([A-Za-z0-9_-]{43})")
SENT_SENTENCE = "If that is the handle or the confirmed e-mail address of an account here"


@dataclass
class Queued:
    account_id: int
    kind: str
    address: str
    text: str
    subject: str
    dedupe_key: str


class Mailboxes:
    """
    The verified e-mail addresses (a fake of the devices area's), and
    ``Devices.queue`` keeping what it is given.
    """

    def __init__(self, microblog: Microblog) -> None:
        self.microblog = microblog
        self.by_account: dict[int, str] = {}
        self.queued: list[Queued] = []

    async def find(self, who: str) -> tuple[Account, str] | None:
        if "@" in who:
            for account_id, address in self.by_account.items():
                # As the devices keep them: the domain lower-cased.
                if normalize_address(address) == who:
                    return await self.microblog.user_by_id(account_id), address
            return None
        account = await self.microblog.local_user(who)
        if account is None or account.id not in self.by_account:
            return None
        return account, self.by_account[account.id]

    async def queue(self, account_id: int, kind: str, address: str, text: str, subject: str,
                    dedupe_key: str, not_before_ms: int = 0) -> bool:
        self.queued.append(Queued(account_id, kind, address, text, subject, dedupe_key))
        return True


class Server:
    """
    A store, the rules and the pages, on a clock the test moves.
    """

    def __init__(self, case: SynchronousTestCase, enabled: bool = True) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.store = synchronous_sqlite_store(case.mktemp())
        case.addCleanup(self.store.close)
        self.microblog = Microblog(self.store, cheap_hasher(), self.clock)
        self.mailboxes = Mailboxes(self.microblog)
        self.reset = PasswordReset(
            self.microblog, self.store,
            self.mailboxes.find if enabled else None,
            self.mailboxes.queue if enabled else None,
            "http://localhost:8080", TTL,
        )
        self.pages = Pages(
            self.microblog, b"s" * 32, self.clock, open_registration=True,
            secure_cookies=False, password_reset=self.reset,
        )
        self.resource = self.pages.resource()

    def run(self, case: SynchronousTestCase, coroutine: Any) -> Any:
        from twisted.internet.defer import ensureDeferred

        return case.successResultOf(ensureDeferred(coroutine))

    def user(self, case: SynchronousTestCase, handle: str, address: str | None) -> Account:
        account: Account = self.run(
            case, self.microblog.create_user(handle, handle + "-password")
        )
        if address is not None:
            self.mailboxes.by_account[account.id] = address
        return account

    def signs_in(self, case: SynchronousTestCase, handle: str, password: str) -> bool:
        found = self.run(case, self.microblog.authenticate(handle, password, "127.0.0.9"))
        return found is not None


def ask(browser: Browser, who: str) -> Any:
    return browser.submit("/account/forgot", {"who": who})


class PasswordResetPagesTests(SynchronousTestCase):
    """
    The pages and the rules, in memory.
    """

    def setUp(self) -> None:
        self.server = Server(self)
        self.alice = self.server.user(self, "alice", "alice@Example.org")
        self.browser = Browser(self.server.resource)

    def link_for(self, index: int = -1) -> str:
        found = LINK.search(self.server.mailboxes.queued[index].text)
        assert found is not None
        return "/account/reset/" + found.group(1)

    def test_sign_in_page_links_here(self) -> None:
        """
        The sign-in page has "Forgot your password?", which leads to the
        form.
        """
        page = self.browser.get("/login")
        self.assertIn('<a href="/account/forgot">Forgot your password?</a>', page.text)
        form = self.browser.get("/account/forgot")
        self.assertEqual(form.code, 200)
        self.assertIn('name="who"', form.text)

    def test_request_by_address_sends_one_mail(self) -> None:
        """
        The verified address (in any case of its domain) gets one mail
        through the outbox, with a link to this server and its lifetime.
        """
        page = ask(self.browser, "alice@EXAMPLE.ORG")
        self.assertEqual(page.code, 200)
        self.assertIn(SENT_SENTENCE, page.text)
        [mail] = self.server.mailboxes.queued
        self.assertEqual(
            (mail.account_id, mail.kind, mail.address),
            (self.alice.id, "email", "alice@Example.org"),
        )
        self.assertEqual(mail.subject, "Reset your password on localhost:8080")
        self.assertIn("within 1 hour (it works once)", mail.text)
        self.assertIn("@alice", mail.text)
        self.assertTrue(mail.dedupe_key.startswith("reset:"))
        self.assertIsNotNone(LINK.search(mail.text))

    def test_request_by_handle(self) -> None:
        """
        A handle (with or without ``@``) works too.
        """
        ask(self.browser, "@Alice")
        ask(self.browser, "alice")
        self.assertEqual(len(self.server.mailboxes.queued), 2)

    def test_unknown_answers_the_same(self) -> None:
        """
        An unknown address, a user without a verified address and a
        nonsense handle get the same page as a known address, and nothing
        is sent.
        """
        self.server.user(self, "bob", None)
        known = ask(Browser(self.server.resource), "alice@example.org")
        self.server.mailboxes.queued.clear()
        for who in ("nobody@example.org", "bob", "no such handle!"):
            page = ask(Browser(self.server.resource), who)
            self.assertEqual(page.code, known.code)
            self.assertEqual(page.text, known.text)
        self.assertEqual(self.server.mailboxes.queued, [])

    def test_link_works_once(self) -> None:
        """
        The link shows a form; the new password works, the old one does
        not; the link used again says it was used; every browser signed in
        to the account is signed out.
        """
        signed_in = Browser(self.server.resource)
        signed_in.submit("/login", {"handle": "alice", "password": "alice-password"})
        self.assertEqual(signed_in.get("/settings").code, 200)
        ask(self.browser, "alice@example.org")
        link = self.link_for()
        form = self.browser.get(link)
        self.assertEqual(form.code, 200)
        self.assertIn('name="password_again"', form.text)
        done = self.browser.post(
            link, {"csrf": form.csrf(), "password": "new-password-1",
                   "password_again": "new-password-1"},
        )
        self.assertEqual(done.code, 200)
        self.assertIn("Your password is changed", done.text)
        self.assertTrue(self.server.signs_in(self, "alice", "new-password-1"))
        self.assertFalse(self.server.signs_in(self, "alice", "alice-password"))
        self.assertEqual(signed_in.get("/settings").code, 303)
        again = self.browser.get(link)
        self.assertEqual(again.code, 410)
        self.assertIn("This password reset link was already used", again.text)
        self.assertNotIn('name="password"', again.text)
        posted = self.browser.post(
            link, {"csrf": form.csrf(), "password": "new-password-2",
                   "password_again": "new-password-2"},
        )
        self.assertEqual(posted.code, 410)
        self.assertIn("already used", posted.text)
        self.assertTrue(self.server.signs_in(self, "alice", "new-password-1"))

    def test_using_one_link_voids_the_others(self) -> None:
        """
        Two links were sent; once one is used, the other is used too.
        """
        ask(self.browser, "alice@example.org")
        ask(self.browser, "alice@example.org")
        first, second = self.link_for(0), self.link_for(1)
        self.assertNotEqual(first, second)
        form = self.browser.get(second)
        self.browser.post(second, {"csrf": form.csrf(), "password": "new-password-1",
                                   "password_again": "new-password-1"})
        self.assertIn("already used", self.browser.get(first).text)

    def test_expired_link(self) -> None:
        """
        After the link's lifetime it says it has expired, and changes
        nothing.
        """
        ask(self.browser, "alice@example.org")
        link = self.link_for()
        form = self.browser.get(link)
        self.server.clock.advance(TTL)
        page = self.browser.get(link)
        self.assertEqual(page.code, 410)
        self.assertIn("This password reset link has expired. Ask for a new one.", page.text)
        posted = self.browser.post(link, {"csrf": form.csrf(), "password": "new-password-1",
                                          "password_again": "new-password-1"})
        self.assertIn("has expired", posted.text)
        self.assertTrue(self.server.signs_in(self, "alice", "alice-password"))

    def test_unknown_link(self) -> None:
        """
        A link with a token nobody sent, or cut short, says it is not valid.
        """
        for token in ("A" * 43, "short", "%3Cscript%3E"):
            page = self.browser.get("/account/reset/" + token)
            self.assertEqual(page.code, 410)
            self.assertIn("This password reset link is not valid", page.text)

    def test_weak_or_different_password_keeps_the_link(self) -> None:
        """
        A password too short, or typed differently twice, is refused with
        a sentence, and the link still works.
        """
        ask(self.browser, "alice@example.org")
        link = self.link_for()
        form = self.browser.get(link)
        short = self.browser.post(link, {"csrf": form.csrf(), "password": "short",
                                         "password_again": "short"})
        self.assertEqual(short.code, 400)
        self.assertIn("A password needs at least 8 characters.", short.text)
        differ = self.browser.post(link, {"csrf": form.csrf(), "password": "new-password-1",
                                          "password_again": "new-password-2"})
        self.assertEqual(differ.code, 400)
        self.assertIn("The two passwords differ.", differ.text)
        self.assertEqual(self.browser.get(link).code, 200)

    def test_forms_need_their_token(self) -> None:
        """
        Both forms refuse a post without this site's form token.
        """
        ask(self.browser, "alice@example.org")
        self.server.mailboxes.queued.clear()
        self.assertEqual(
            self.browser.post("/account/forgot", {"who": "alice@example.org"}).code, 403
        )
        self.assertEqual(self.server.mailboxes.queued, [])
        page = self.browser.post("/account/reset/" + "A" * 43,
                                 {"password": "x" * 10, "password_again": "x" * 10})
        self.assertEqual(page.code, 403)

    def test_mails_per_address_limited(self) -> None:
        """
        At most a few links an hour go to one address, however it is
        asked for; the page says the same.
        """
        for _ in range(MAILS_PER_ADDRESS + 2):
            self.assertIn(SENT_SENTENCE, ask(self.browser, "alice").text)
        self.assertEqual(len(self.server.mailboxes.queued), MAILS_PER_ADDRESS)
        self.server.clock.advance(3601)
        ask(self.browser, "alice@example.org")
        self.assertEqual(len(self.server.mailboxes.queued), MAILS_PER_ADDRESS + 1)

    def test_requests_per_client_limited(self) -> None:
        """
        One network address may not ask endlessly: 429 with a sentence.
        """
        pages = [ask(self.browser, f"n{n}@example.org") for n in range(11)]
        self.assertEqual([p.code for p in pages[:10]], [200] * 10)
        self.assertEqual(pages[10].code, 429)
        self.assertIn("Too many requests from your address", pages[10].text)

    def test_empty_request(self) -> None:
        """
        Nothing typed: the form again, with what to do.
        """
        page = ask(self.browser, "  ")
        self.assertEqual(page.code, 400)
        self.assertIn("Type your e-mail address or your handle.", page.text)

    def test_rules_without_pages(self) -> None:
        """
        :meth:`PasswordReset.check` and :meth:`~PasswordReset.reset` raise
        the error of each broken link.
        """
        reset = self.server.reset
        run = self.server.run
        self.failureResultOf(_deferred(reset.check("x" * 43)), UnknownResetLink)
        run(self, reset.request("alice@example.org"))
        token = LINK.search(self.server.mailboxes.queued[-1].text).group(1)  # type: ignore
        account = run(self, reset.reset(token, "new-password-1"))
        self.assertEqual(account.id, self.alice.id)
        self.failureResultOf(_deferred(reset.reset(token, "new-password-2")), UsedResetLink)
        run(self, reset.request("alice@example.org"))
        token = LINK.search(self.server.mailboxes.queued[-1].text).group(1)  # type: ignore
        self.server.clock.advance(TTL + 1)
        self.failureResultOf(_deferred(reset.check(token)), ExpiredResetLink)


def _deferred(coroutine: Any) -> Any:
    from twisted.internet.defer import ensureDeferred

    return ensureDeferred(coroutine)


class WithoutEmailTests(SynchronousTestCase):
    """
    A server without e-mail.
    """

    def test_cannot_reset(self) -> None:
        """
        The form says this server cannot reset passwords, and nothing is
        sent.
        """
        server = Server(self, enabled=False)
        server.user(self, "alice", "alice@example.org")
        browser = Browser(server.resource)
        self.assertIn(NO_EMAIL, browser.get("/account/forgot").text)
        token = browser.get("/login").csrf()
        page = browser.post("/account/forgot", {"csrf": token, "who": "alice@example.org"})
        self.assertEqual(page.code, 404)
        self.assertIn(NO_EMAIL, page.text)
        self.assertEqual(server.mailboxes.queued, [])
        self.assertIn(NO_EMAIL, browser.get("/account/reset/" + "A" * 43).text)


class ThroughSMTPTests(TestCase):
    """
    The reset mail through a real SMTP server, its link used on the pages.
    """

    timeout = 120

    def setUp(self) -> None:
        self.smtp = SMTPCapture(self.mktemp())
        self.addCleanup(self.smtp.stop)
        self.server = Server(self)
        channel = SMTPChannel(
            reactor, SMTPServer("127.0.0.1", self.smtp.port, starttls="off"),
            Address("distwit", "noreply", "localhost"),
        )

        async def queue(account_id: int, kind: str, address: str, text: str, subject: str,
                        dedupe_key: str, not_before_ms: int = 0) -> bool:
            await channel.send(address, text, subject)
            return True

        self.server.reset._queue = queue
        self.server.user(self, "alice", "alice@example.org")
        self.browser = Browser(self.server.resource)

    async def test_reset_mail_arrives_and_works_once(self) -> None:
        """
        The mail arrives at the address; its link sets the password once;
        an unknown address gets the same page and no mail; a link past its
        lifetime is refused.
        """
        page = ask(self.browser, "alice@example.org")
        self.assertIn(SENT_SENTENCE, page.text)
        await self.server.reset.idle()
        [mail] = self.smtp.messages()
        self.assertEqual(mail.rcpt_tos, ["alice@example.org"])
        self.assertEqual(mail.message["Subject"], "Reset your password on localhost:8080")
        found = LINK.search(mail.body)
        assert found is not None
        link = "/account/reset/" + found.group(1)
        form = self.browser.get(link)
        done = self.browser.post(link, {"csrf": form.csrf(), "password": "new-password-1",
                                        "password_again": "new-password-1"})
        self.assertIn("Your password is changed", done.text)
        self.assertTrue(self.server.signs_in(self, "alice", "new-password-1"))
        self.assertIn("already used", self.browser.get(link).text)

        unknown = ask(Browser(self.server.resource), "nobody@example.org")
        self.assertEqual(unknown.text, page.text)
        await self.server.reset.idle()
        self.assertEqual(len(self.smtp.messages()), 1)

        ask(self.browser, "alice")
        await self.server.reset.idle()
        second = LINK.search(self.smtp.messages()[1].body)
        assert second is not None
        self.server.clock.advance(TTL)
        expired = self.browser.get("/account/reset/" + second.group(1))
        self.assertIn("has expired", expired.text)


class VerifiedMailboxesTests(SynchronousTestCase):
    """
    Who a reset request names, on a real store with the devices' rules:
    the verified e-mail addresses.
    """

    def test_who_is_found(self) -> None:
        """
        A verified address (its domain in any case) or the handle of its
        owner finds the account and that address; an address not yet
        verified, a user without one, an unknown address and a suspended
        user are found by nothing; and a reset's mail goes through the
        devices' outbox to the e-mail channel.
        """
        from distwit.core.password_reset import VerifiedMailboxes
        from tests.test_devices import World, sqlite_store

        world = World(self, sqlite_store(self))
        alice, bob = world.user("alice"), world.user("bob")
        world.user("carol")
        world.verified(alice, "email", "Alice@example.org")
        world.run(world.devices.add_address(bob, "email", "bob@example.org"))
        world.settle()
        find = VerifiedMailboxes(world.microblog, world.devices, world.store)
        for who in ("Alice@EXAMPLE.org", "alice"):
            account, address = world.run(find(who))
            self.assertEqual((account.id, address), (alice.id, "Alice@example.org"))
        for who in ("bob@example.org", "bob", "carol", "nobody", "nobody@example.org",
                    "not an address@", "dave@elsewhere.example"):
            self.assertIsNone(world.run(find(who)), who)
        world.microblog.moderation = replace(
            world.microblog.moderation, suspended=frozenset({alice.id})
        )
        self.assertIsNone(world.run(find("alice")))
        world.microblog.moderation = replace(world.microblog.moderation, suspended=frozenset())

        reset = PasswordReset(
            world.microblog, world.store, find, world.devices.queue, "https://s1.example"
        )
        world.channels["email"].sent.clear()
        world.run(reset.request("alice"))
        world.settle()
        [text] = world.channels["email"].to("Alice@example.org")
        self.assertIn("https://s1.example/account/reset/", text)
