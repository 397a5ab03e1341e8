"""
Every door where a password is given (HTTP Basic, the OAuth authorize
form, xAuth, the sign-in page, and the sign-in page as the OpenID Connect
authorization leads to it) keeps the same rules: after too many wrong
passwords from one address, and after too many for one account, it
refuses even the right password, each face in its own words.  HTTP Basic
counts a call against its address's rate limit before it checks the
password, and against the user's only after.

All in memory, through the whole resource tree of one twitter service.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from twisted.internet.defer import Deferred

from distwit.core.limits import AddressLimits, RateLimiter
from distwit.core.microblog import (
    ACCOUNT_FAILURES,
    ADDRESS_FAILURES,
    AccountLocked,
    ADDRESS_WINDOW,
    LOCK_WINDOW,
    MAX_FAILED_SIGN_INS,
)
from distwit.core.passwords import PasswordHasher
from distwit.oidc.rp import s256

from tests.support import sync_run_in_thread
from tests.test_api import BASE, PASSWORDS, _basic
from tests.test_oauth1 import FORM, OAuthTestCase
from tests.test_pages import Browser, Page

WRONG = "wrong-password"


class CountingHasher(PasswordHasher):
    """
    A cheap real hasher that counts the passwords it verifies.
    """

    def __init__(self) -> None:
        super().__init__(sync_run_in_thread, cheap=True)
        self.verified = 0

    def verify(self, password_hash: str, password: str) -> "Deferred[bool]":
        self.verified += 1
        return super().verify(password_hash, password)


class DoorTestCase(OAuthTestCase):
    """
    One twitter service with all its faces; each door's test case says
    how to give a password there and what each answer looks like.
    """

    def make_hasher(self) -> PasswordHasher:
        self.hasher = CountingHasher()
        return self.hasher

    # What each door implements.

    def sign_in(self, handle: str, password: str) -> Any:
        raise NotImplementedError

    def assertSignedIn(self, answer: Any) -> None:
        raise NotImplementedError

    def assertWrongPassword(self, answer: Any) -> None:
        raise NotImplementedError

    def assertAddressRefused(self, answer: Any) -> None:
        raise NotImplementedError

    def assertAccountLocked(self, answer: Any) -> None:
        raise NotImplementedError

    # The rules, the same at every door.

    def check_address_limit(self) -> None:
        for i in range(ADDRESS_FAILURES):
            handle = "alice" if i == 0 else f"nobody{i}"
            self.assertWrongPassword(self.sign_in(handle, WRONG))
        verified = self.hasher.verified
        self.assertAddressRefused(self.sign_in("bob", PASSWORDS["bob"]))
        self.assertEqual(self.hasher.verified, verified, "checked a password past the limit")
        self.clock.advance(ADDRESS_WINDOW)
        self.assertSignedIn(self.sign_in("bob", PASSWORDS["bob"]))

    def check_account_lock(self) -> None:
        for _ in range(MAX_FAILED_SIGN_INS):
            self.assertWrongPassword(self.sign_in("alice", WRONG))
        self.assertAccountLocked(self.sign_in("alice", PASSWORDS["alice"]))
        self.assertSignedIn(self.sign_in("bob", PASSWORDS["bob"]))
        self.clock.advance(LOCK_WINDOW)
        self.assertSignedIn(self.sign_in("alice", PASSWORDS["alice"]))

    def assertTwitterError(self, answer: tuple[int, Any], status: int, code: int) -> None:
        self.assertEqual((answer[0], answer[1]["errors"][0]["code"]), (status, code), answer)


class APIDoorMixin:
    """
    The API's answers: Twitter error bodies.
    """

    def assertWrongPassword(self: Any, answer: tuple[int, Any]) -> None:
        self.assertTwitterError(answer, 401, 32)

    def assertAddressRefused(self: Any, answer: tuple[int, Any]) -> None:
        self.assertTwitterError(answer, 429, 88)
        self.assertIn("Too many wrong passwords", answer[1]["errors"][0]["message"])

    def assertAccountLocked(self: Any, answer: tuple[int, Any]) -> None:
        self.assertTwitterError(answer, 403, 326)


class BasicTests(APIDoorMixin, DoorTestCase):
    def sign_in(self, handle: str, password: str) -> tuple[int, Any]:
        code, body, _ = self.call(
            "GET", "/1.1/account/verify_credentials.json",
            headers={"Authorization": "Basic " + _basic(handle, password)},
        )
        return code, body

    def assertSignedIn(self, answer: tuple[int, Any]) -> None:
        self.assertEqual(answer[0], 200, answer)

    def test_address_limit(self) -> None:
        """
        After too many wrong passwords from one address, HTTP Basic answers
        429 code 88 even to the right password, without checking it, until
        the window ends.
        """
        self.check_address_limit()

    def test_account_lock(self) -> None:
        """
        After too many wrong passwords for one account, HTTP Basic answers
        403 code 326 for it; other accounts go on; it opens again later.
        """
        self.check_account_lock()

    def test_rate_limited_before_the_password(self) -> None:
        """
        An HTTP Basic call counts against its address's allowance before
        its password is checked: past it a wrong password is 429 (not
        401), no password is verified, and the x-rate-limit headers say
        so; the right password from that address waits too.  The wrong
        passwords never count against the user they name: once the
        address may call again, alice's own allowance is whole.
        """
        self.web.api.address_limits = AddressLimits(
            self.clock, window=60, limits={"read": 3, "write": 3}
        )
        self.web.api.limiter = RateLimiter(self.clock, window=60, limits={"read": 5})
        path = "/1.1/account/verify_credentials.json"
        remaining = []
        for _ in range(3):
            code, body, response = self.call(
                "GET", path, headers={"Authorization": "Basic " + _basic("alice", WRONG)}
            )
            self.assertTwitterError((code, body), 401, 32)
            remaining.append(response.headers.getRawHeaders("x-rate-limit-remaining")[0])
        self.assertEqual(remaining, ["2", "1", "0"])
        self.assertEqual(self.hasher.verified, 3)
        code, body, response = self.call(
            "GET", path, headers={"Authorization": "Basic " + _basic("ALICE", WRONG)}
        )
        self.assertTwitterError((code, body), 429, 88)
        self.assertEqual(body["errors"][0]["message"], "Rate limit exceeded.")
        self.assertEqual(response.headers.getRawHeaders("x-rate-limit-remaining"), ["0"])
        self.assertEqual(response.headers.getRawHeaders("x-rate-limit-reset"),
                         [str(int(self.clock.seconds()) + 60)])
        self.assertEqual(self.hasher.verified, 3)
        code, body, _ = self.call("GET", path, "alice")
        self.assertTwitterError((code, body), 429, 88)
        self.assertEqual(self.hasher.verified, 3)
        self.clock.advance(60)
        own = self.web.api.limiter.peek("user:alice", "account/verify_credentials", "read")
        self.assertEqual(own.remaining, 5)
        self.assertEqual(self.call("GET", path, "alice")[0], 200)


class XAuthTests(APIDoorMixin, DoorTestCase):
    def sign_in(self, handle: str, password: str) -> tuple[int, Any]:
        client = self.client(resource_owner_key=None, resource_owner_secret=None,
                             timestamp=str(int(self.clock.seconds())))
        body = urlencode({"x_auth_mode": "client_auth", "x_auth_username": handle,
                          "x_auth_password": password})
        uri, headers, signed = client.sign(BASE + "/oauth/access_token", "POST", body,
                                           dict(FORM))
        code, content, _ = self.send("POST", uri, headers, signed)
        if code == 200:
            return code, parse_qs(content.decode())
        return code, json.loads(content)

    def assertSignedIn(self, answer: tuple[int, Any]) -> None:
        self.assertEqual(answer[0], 200, answer)
        self.assertIn("oauth_token", answer[1])

    def test_address_limit(self) -> None:
        """
        After too many wrong passwords from one address, xAuth answers 429
        code 88 even to the right password, until the window ends.
        """
        self.check_address_limit()

    def test_account_lock(self) -> None:
        """
        After too many wrong passwords for one account, xAuth answers 403
        code 326 for it; other accounts go on; it opens again later.
        """
        self.check_account_lock()


class AuthorizeFormTests(DoorTestCase):
    """
    The OAuth authorize page, where a user signs in to let an app in.
    """

    def sign_in(self, handle: str, password: str) -> tuple[int, str]:
        app = self.successResultOf(self.service.microblog.apps.get_app(self.key))
        token = f"request{self.nonce}"
        self.nonce += 1
        now = int(self.clock.seconds() * 1000)
        self.successResultOf(self.service.microblog.apps.create_token(
            token, "secret", "request", app.id, None, "oob", now, now + 60_000,
        ))
        code, page, _ = self.send("GET", f"{BASE}/oauth/authorize?oauth_token={token}")
        self.assertEqual(code, 200)
        match = re.search(rb"name='csrf' value='([0-9a-f]+)'", page)
        assert match is not None
        form = {"oauth_token": token, "csrf": match.group(1).decode(),
                "session[username_or_email]": handle, "session[password]": password,
                "allow": "1"}
        code, page, _ = self.send("POST", f"{BASE}/oauth/authorize", FORM, urlencode(form))
        return code, page.decode("utf-8")

    def assertSignedIn(self, answer: tuple[int, str]) -> None:
        self.assertEqual(answer[0], 200)
        self.assertIn("Enter this PIN", answer[1])

    def assertWrongPassword(self, answer: tuple[int, str]) -> None:
        self.assertEqual(answer[0], 200)
        self.assertIn("do not match", answer[1])

    def assertAddressRefused(self, answer: tuple[int, str]) -> None:
        self.assertEqual(answer[0], 429)
        self.assertIn("Too many wrong passwords from your address", answer[1])
        self.assertNotIn("Enter this PIN", answer[1])

    def assertAccountLocked(self, answer: tuple[int, str]) -> None:
        self.assertEqual(answer[0], 429)
        self.assertIn("it is locked for", answer[1])
        self.assertNotIn("Enter this PIN", answer[1])

    def test_address_limit(self) -> None:
        """
        After too many wrong passwords from one address, the authorize form
        is a 429 page even with the right password, until the window ends.
        """
        self.check_address_limit()

    def test_account_lock(self) -> None:
        """
        After too many wrong passwords for one account, the authorize form
        is a 429 page for it; other accounts go on; it opens again later.
        """
        self.check_account_lock()


class LoginTests(DoorTestCase):
    """
    The sign-in page of the site.
    """

    #: Where the sign-in form is opened (``next`` and all).
    form_path = "/login"

    def browser(self) -> Browser:
        return Browser(self.web.root)

    def sign_in(self, handle: str, password: str) -> Page:
        return self.browser().submit(self.form_path, {
            "handle": handle, "password": password,
            "next": parse_qs(urlsplit(self.form_path).query).get("next", [""])[0],
        })

    def assertSignedIn(self, answer: Page) -> None:
        self.assertEqual((answer.code, answer.location), (303, "/home"), answer.text)
        self.assertIsNotNone(answer.cookie("dw_session"))

    def assertWrongPassword(self, answer: Page) -> None:
        self.assertEqual(answer.code, 400, answer.text)
        self.assertIsNone(answer.cookie("dw_session"))

    def assertRefused(self, answer: Page, message: str) -> None:
        self.assertEqual(answer.code, 429, answer.text)
        self.assertIn(message, answer.text)
        self.assertIsNone(answer.cookie("dw_session"))
        self.assertIsNone(answer.location)

    def assertAddressRefused(self, answer: Page) -> None:
        self.assertRefused(answer, "Too many wrong passwords from your address")

    def assertAccountLocked(self, answer: Page) -> None:
        self.assertRefused(answer, "it is locked for")

    def test_address_limit(self) -> None:
        """
        After too many wrong passwords from one address, /login is a 429
        page even with the right password, until the window ends.
        """
        self.check_address_limit()

    def test_account_lock(self) -> None:
        """
        After too many wrong passwords for one account, /login is a 429
        page for it; other accounts go on; it opens again later.
        """
        self.check_account_lock()


class OpenIDConnectSignInTests(LoginTests):
    """
    Another server asks who the visitor is (``/oidc/authorize``); signed
    out, the visitor signs in on the sign-in page, which then leads back.
    """

    def setUp(self) -> None:
        super().setUp()
        metadata = {"redirect_uris": ["https://rp.example/callback"], "client_name": "RP",
                    "token_endpoint_auth_method": "client_secret_basic"}
        self.successResultOf(self.service.microblog.oidc.create_oidc_client(
            "client-1", "secret-1", json.dumps(metadata), 0
        ))
        self.authorize_path = "/oidc/authorize?" + urlencode({
            "response_type": "code", "client_id": "client-1",
            "redirect_uri": "https://rp.example/callback", "scope": "openid",
            "state": "s", "nonce": "n", "code_challenge": s256("v" * 50),
            "code_challenge_method": "S256",
        })
        page = self.browser().get(self.authorize_path)
        self.assertEqual(page.code, 303, page.text)
        self.form_path = page.location or ""
        self.assertTrue(self.form_path.startswith("/login?next="), self.form_path)

    def assertSignedIn(self, answer: Page) -> None:
        back = parse_qs(urlsplit(self.form_path).query)["next"][0]
        self.assertTrue(back.startswith(self.authorize_path), back)
        self.assertEqual((answer.code, answer.location), (303, back), answer.text)
        self.assertIsNotNone(answer.cookie("dw_session"))

    def test_address_limit(self) -> None:
        """
        After too many wrong passwords from one address, the sign-in an
        OpenID Connect authorization leads to is a 429 page even with the
        right password, until the window ends; then it leads back to the
        authorization.
        """
        self.check_address_limit()

    def test_account_lock(self) -> None:
        """
        After too many wrong passwords for one account, the sign-in an
        OpenID Connect authorization leads to is a 429 page for it.
        """
        self.check_account_lock()


class StrangerTests(DoorTestCase):
    """
    The rules behind every door, as the one ``authenticate`` keeps them,
    against a stranger who knows a handle.
    """

    def authenticate(self, handle: str, password: str, address: str) -> Any:
        return self.successResultOf(
            self.service.microblog.authenticate(handle, password, address)
        )

    def test_stranger_cannot_lock_the_owner_out(self) -> None:
        """
        Ten wrong passwords for alice from one address lock her account
        for that address only: alice signs in from her own address with
        her password, and the stranger is refused even the right one.
        """
        for _ in range(MAX_FAILED_SIGN_INS):
            self.assertIsNone(self.authenticate("alice", WRONG, "203.0.113.9"))
        self.failureResultOf(
            self.service.microblog.authenticate("alice", PASSWORDS["alice"], "203.0.113.9"),
            AccountLocked,
        )
        owner = self.authenticate("alice", PASSWORDS["alice"], "198.51.100.1")
        self.assertEqual(owner.handle, "alice")

    def test_many_addresses_lock_the_account(self) -> None:
        """
        Wrong passwords for one account from many addresses together lock
        it for everyone once they reach the much higher global count.
        """
        for i in range(ACCOUNT_FAILURES):
            address = f"10.0.{i // 200}.{i % 200}"
            self.assertIsNone(self.authenticate("alice", WRONG, address))
        self.failureResultOf(
            self.service.microblog.authenticate("alice", PASSWORDS["alice"], "198.51.100.1"),
            AccountLocked,
        )
        self.clock.advance(LOCK_WINDOW)
        self.assertEqual(
            self.authenticate("alice", PASSWORDS["alice"], "198.51.100.1").handle, "alice"
        )

    def test_unknown_user_costs_one_verification(self) -> None:
        """
        A wrong password for a handle that does not exist costs one argon2
        verification, like one for a handle that does (no answer by timing);
        and its failures are counted the same, so the lock tells nothing.
        """
        verified = self.hasher.verified
        self.assertIsNone(self.authenticate("nobody", WRONG, "203.0.113.9"))
        self.assertEqual(self.hasher.verified, verified + 1)
        self.assertIsNone(self.authenticate("alice", WRONG, "203.0.113.9"))
        self.assertEqual(self.hasher.verified, verified + 2)
        for _ in range(MAX_FAILED_SIGN_INS - 1):
            self.authenticate("nobody", WRONG, "203.0.113.9")
        self.failureResultOf(
            self.service.microblog.authenticate("nobody", WRONG, "203.0.113.9"), AccountLocked
        )


class HeldHasher(CountingHasher):
    """
    A counting hasher whose verifications wait until :meth:`release`, as
    they wait for a worker thread in a server.
    """

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[Deferred[bool], bool]] = []

    def verify(self, password_hash: str, password: str) -> "Deferred[bool]":
        results: list[bool] = []
        super().verify(password_hash, password).addCallback(results.append)
        held: Deferred[bool] = Deferred()
        self.held.append((held, results[0]))
        return held

    def release(self) -> None:
        held, self.held = self.held, []
        for d, result in held:
            d.callback(result)


class RestartTests(DoorTestCase):
    def make_hasher(self) -> PasswordHasher:
        self.hasher = HeldHasher()
        return self.hasher

    def test_same_credentials_verified_once(self) -> None:
        """
        Right after a start, ten HTTP Basic requests with the same
        credentials arriving together cost one argon2 verification, and
        all ten are answered; another user's costs one more; wrong
        credentials are verified on their own and refused.
        """
        self.hasher.release()
        verified = self.hasher.verified
        path = BASE + "/1.1/account/verify_credentials.json"
        requests = [
            self.stub.request("GET", path, auth=("alice", PASSWORDS["alice"]))
            for _ in range(10)
        ] + [
            self.stub.request("GET", path, auth=("bob", PASSWORDS["bob"])),
            self.stub.request("GET", path, auth=("alice", WRONG)),
        ]
        self.stub.flush()
        self.assertEqual(self.hasher.verified, verified + 3)
        self.hasher.release()
        self.stub.flush()
        codes = [self.successResultOf(d).code for d in requests]
        self.assertEqual(codes, [200] * 11 + [401])
        self.assertEqual(self.hasher.verified, verified + 3)
