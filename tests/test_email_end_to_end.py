"""
E-mail end to end (issue 18): a real twitter server process (``twistd
distwit``) sending through a real SMTP server (aiosmtpd,
:mod:`tests.smtp_capture`) with STARTTLS required and a certificate from a
CA made by the test, driven over real HTTP as a browser and a client would:
an address verified with the code it was sent, a mention mailed to the
user who chose so, and a password reset that works once.
"""

from __future__ import annotations

import os
import re
import time
import requests
from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ServerProcess, run_cli
from tests.smtp_capture import Captured, SMTPCapture
from tests.test_email_channel import Certificates

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a new password, typed twice"

#: Seconds a mail may take to go through the outbox and the SMTP server.
MAIL_DEADLINE = 30.0

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')
_CODE = re.compile(r"\b(\d{6})\b")


class Browser:
    """
    A person's browser over real HTTP: cookies kept, redirects not
    followed (the test sees them), forms sent with the token of the page
    they are on.
    """

    def __init__(self, server: ServerProcess) -> None:
        self.base = server.url
        self.session = requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.base + path, allow_redirects=False, timeout=30)

    def submit(self, page: str, action: str, **fields: str) -> requests.Response:
        """
        Open ``page`` and post its form (the one whose token it carries)
        to ``action``.
        """
        found = _CSRF.search(self.get(page).text)
        assert found is not None, f"no form on {page}: {self.get(page).text}"
        return self.session.post(
            self.base + action, data={"csrf": found.group(1), **fields},
            allow_redirects=False, timeout=30,
        )

    def sign_in(self, handle: str, password: str) -> requests.Response:
        return self.submit("/login", "/login", handle=handle, password=password)


def mail_to(smtp: SMTPCapture, address: str, count: int = 1) -> list[Captured]:
    """
    Wait (a generous deadline) until ``count`` messages to ``address``
    have arrived; all of them.
    """
    deadline = time.monotonic() + MAIL_DEADLINE
    while True:
        found = [m for m in smtp.messages() if address in m.rcpt_tos]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


class EmailEndToEndTests(SynchronousTestCase):
    """
    One server, its SMTP server, two users.
    """

    def setUp(self) -> None:
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        certificates = Certificates(folder)
        self.smtp = SMTPCapture(
            os.path.join(folder, "mail"),
            certificate=(certificates.certificate, certificates.key),
            require_starttls=True,
            credentials=("mailer", "mail password"),
        )
        self.addCleanup(self.smtp.stop)
        config = os.path.join(folder, "distwit.ini")
        with open(config, "w", encoding="utf-8") as f:
            f.write(
                "[email]\n"
                f"smtp_url = smtp://mailer:mail%20password@127.0.0.1:{self.smtp.port}\n"
                "starttls = required\n"
                f"smtp_ca_file = {certificates.ca_file}\n"
                "from = distwit test <noreply@s1.test>\n"
            )
        self.data = data = os.path.join(folder, "data")
        for handle in ("alice", "bob"):
            done = run_cli("adduser", "--create", handle, "--data", data, stdin=PASSWORD + "\n")
            self.assertEqual(done.returncode, 0, done.stderr)
        self.server = ServerProcess(data, "--config", config)
        self.addCleanup(self.server.stop)

    def verified_address(self, handle: str, address: str) -> None:
        """
        Give ``handle`` the e-mail ``address`` (``distwit user add-device``,
        the operator's door; the pages and the API call the same rule),
        then confirm the code the running server mailed to it.
        """
        self.cli("user", "add-device", handle, "email", address)
        [mail] = mail_to(self.smtp, address)
        self.assertTrue(mail.tls)
        self.assertEqual(mail.authenticated_as, "mailer")
        self.assertEqual(mail.message["From"].addresses[0].addr_spec, "noreply@s1.test")
        self.assertIn("code", mail.message["Subject"])
        code = _CODE.search(mail.body)
        assert code is not None, mail.body
        self.cli("user", "verify-device", handle, "email", code.group(1))
        self.assertIn(address, self.cli("user", "devices", handle))

    def cli(self, *args: str) -> str:
        done = run_cli(*args, "--data", self.data)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertNotIn("Traceback", done.stderr)
        return done.stdout

    def test_verify_then_mention_by_email(self) -> None:
        """
        Adding an e-mail address sends it a code; the code verifies it;
        with mentions chosen for e-mail (the default), another user's
        mention arrives as a mail with a link to the post and an
        unsubscribe link.
        """
        self.verified_address("alice", "alice@example.org")
        code, body = self.server.request(
            "POST", "/1.1/statuses/update.json", auth=("bob", PASSWORD),
            data={"status": "@alice the mail works ✉"},
        )
        self.assertEqual(code, 200, body)
        mails = mail_to(self.smtp, "alice@example.org", 2)
        self.assertEqual(len(mails), 2, [m.message["Subject"] for m in mails])
        mention = mails[1]
        self.assertIn("bob", mention.message["Subject"])
        self.assertIn("@alice the mail works ✉", mention.body)
        self.assertIn(f"{self.server.url}/bob/status/", mention.body)
        unsubscribe = mention.message["List-Unsubscribe"]
        self.assertIsNotNone(unsubscribe)
        self.assertIn(unsubscribe.strip().strip("<>"), mention.body)

    def test_password_reset_through_the_pages(self) -> None:
        """
        "Forgot your password?" on the sign-in page leads to the form; the
        mail arrives at the verified address; its link sets a new password
        once (the old one stops working, the link then says it was used);
        an unknown address gets the same page and no mail.
        """
        alice = Browser(self.server)
        self.assertEqual(alice.sign_in("alice", PASSWORD).status_code, 303)
        self.verified_address("alice", "alice@example.org")

        visitor = Browser(self.server)
        self.assertIn('href="/account/forgot"', visitor.get("/login").text)
        unknown = visitor.submit("/account/forgot", "/account/forgot", who="nobody@example.org")
        known = visitor.submit("/account/forgot", "/account/forgot", who="alice@example.org")
        self.assertEqual(unknown.status_code, 200)
        self.assertEqual(unknown.text, known.text)
        mails = mail_to(self.smtp, "alice@example.org", 2)
        self.assertEqual(len(mails), 2)
        reset = mails[1]
        self.assertIn("Reset your password", reset.message["Subject"])
        link = re.search(re.escape(self.server.url) + r"(/account/reset/[A-Za-z0-9_-]{43})",
                         reset.body)
        assert link is not None, reset.body
        done = visitor.submit(link.group(1), link.group(1), password=NEW_PASSWORD,
                              password_again=NEW_PASSWORD)
        self.assertEqual(done.status_code, 200)
        self.assertIn("Your password is changed", done.text)
        # Every browser signed in to alice is signed out.
        self.assertEqual(alice.get("/settings").status_code, 303)
        self.assertEqual(Browser(self.server).sign_in("alice", NEW_PASSWORD).status_code, 303)
        self.assertEqual(Browser(self.server).sign_in("alice", PASSWORD).status_code, 400)
        again = visitor.get(link.group(1))
        self.assertEqual(again.status_code, 410)
        self.assertIn("already used", again.text)
        self.assertEqual(
            [m for m in self.smtp.messages() if "nobody@example.org" in m.rcpt_tos], []
        )
