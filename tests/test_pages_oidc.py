"""
The pages of signing in across servers, in memory: the consent page of the
provider, sign-in with a home server and what a visitor signed in that way
may do, the settings pages, and sign-in limits per address.

The provider here is the real one (:class:`OIDCProvider`); the relying
party is a stand-in, since these tests are about the pages (the real one
is driven in tests/test_oidc_rp.py and, end to end, tests/test_browser.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from treq.testing import StubTreq
from twisted.internet.defer import ensureDeferred
from zope.interface.verify import verifyObject

from distwit.model import Account
from distwit.oidc.keys import SigningKeys
from distwit.oidc.provider import OIDCProvider
from distwit.store.shared import MemorySharedState
from distwit.oidc.registrations import StoreRegistrations
from distwit.oidc.rp import IRegistrations, SignInError, s256
from distwit.core.microblog import ADDRESS_FAILURES
from distwit.web.signin import ADDRESS_REMOTE_SIGNINS

from tests.test_pages import BASE, PASSWORDS, PagesTestCase

REDIRECT = "https://rp.example/login/callback"
VERIFIER = "v" * 50


@dataclass
class Identity:
    issuer: str
    subject: str
    handle: str
    authority: str


class StandInRelyingParty:
    """
    Begins every sign-in at ``https://home.example/authorize`` and finishes
    it as ``carol@home.example`` when the state matches.
    """

    def __init__(self) -> None:
        self.begun: list[str] = []

    async def begin(self, identifier: str) -> tuple[str, dict[str, str]]:
        if "@" not in identifier:
            raise SignInError(f"{identifier!r} is not an address like alice@example.org.")
        self.begun.append(identifier)
        return "https://home.example/authorize?state=s1", {"state": "s1"}

    async def finish(self, pending: dict[str, str], params: dict[str, str]) -> Identity:
        if params.get("state") != pending["state"]:
            raise SignInError("The sign-in answer does not belong to this sign-in (state).")
        return Identity("https://home.example", "carol", "carol", "home.example")


class FollowRecorder:
    """
    The federation, as far as following a remote account goes: ``remote``
    is who every acct resolves to; follows of it are recorded.
    """

    def __init__(self, remote: Account) -> None:
        self.remote = remote
        self.notices: list[tuple[str, str, str]] = []

    async def resolve(self, acct: str) -> Account:
        return self.remote

    def follow_notice(self, user: Account, target: Account, action: str) -> None:
        # No outbox here: the notice is what followed() records.
        return None

    async def followed(self, user: Account, target: Account, new: bool) -> None:
        self.notices.append((user.handle, target.acct(""), "follow"))

    async def unfollowed(self, user: Account, target: Account, removed: bool) -> None:
        self.notices.append((user.handle, target.acct(""), "unfollow"))


class OIDCPagesTestCase(PagesTestCase):
    #: The provider's issuer (its server's public URL).
    issuer = BASE

    def make_pages(self, open_registration: bool = True, secure_cookies: bool = False,
                   **options: Any) -> None:
        self.provider = OIDCProvider(
            self.microblog, SigningKeys(self.mktemp()), self.issuer, self.clock
        )
        self.rp = StandInRelyingParty()
        super().make_pages(
            open_registration, secure_cookies,
            **{"public_url": BASE, "oidc": self.provider, "rp": self.rp, **options},
        )

    def register_json(self, body: Any) -> tuple[int, Any]:
        """
        POST ``body`` to ``/oidc/register``: the status and the JSON answer.
        """
        stub = StubTreq(self.provider.resource())
        d = stub.post(BASE + "/register", data=json.dumps(body).encode(),
                      headers={"Content-Type": "application/json"})
        stub.flush()
        response = self.successResultOf(d)
        content = self.successResultOf(response.content())
        return response.code, json.loads(content)

    def register(self, redirect_uris: list[str] | None = None) -> str:
        metadata = {
            "redirect_uris": redirect_uris or [REDIRECT],
            "client_name": "Example RP",
            "token_endpoint_auth_method": "client_secret_basic",
        }
        self.successResultOf(
            self.store.create_oidc_client("client-1", "secret-1", json.dumps(metadata), 0)
        )
        return "client-1"

    def approved_before(self, user: Account, client_id: str = "client-1") -> None:
        """
        Record that ``user`` approved ``client_id`` on the consent page.
        """
        self.successResultOf(self.store.record_oidc_grant(user.id, client_id, 0))

    def authorize_path(self, **overrides: str | None) -> str:
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": "client-1",
            "redirect_uri": REDIRECT,
            "scope": "openid profile",
            "state": "the-state",
            "nonce": "the-nonce",
            "code_challenge": s256(VERIFIER),
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return "/oidc/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


class ConsentTests(OIDCPagesTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.register()

    def test_sign_in_first(self) -> None:
        """
        Signed out, the authorization request leads to the sign-in page and
        back to itself.
        """
        page = self.browser().get(self.authorize_path())
        self.assertEqual(page.code, 303)
        location = page.location or ""
        self.assertTrue(location.startswith("/login?next="), location)
        back = parse_qs(urlsplit(location).query)["next"][0]
        self.assertEqual(parse_qs(urlsplit(back).query)["client_id"], ["client-1"])

    def test_consent_page_names_the_server(self) -> None:
        """
        The consent page names the asking server by its redirect host, may
        not be framed, and lets its form lead only here or to that server.
        """
        page = self.signed_in("alice").get(self.authorize_path())
        self.assertEqual(page.code, 200, page.text)
        self.assertIn('<strong class="consent-host">rp.example</strong>', page.text)
        self.assertIn("Example RP", page.text)
        self.assertEqual(page.header("x-frame-options"), "DENY")
        self.assertIn(
            "form-action 'self' https://rp.example;", page.header("content-security-policy")
        )

    def test_approve(self) -> None:
        """
        Approving sends the browser back with a code, the state and the
        issuer, and the server is listed on the settings page.
        """
        browser = self.signed_in("alice")
        consent = browser.get(self.authorize_path())
        request = parse_qs(consent.text.split('name="request" value="', 1)[1].split('"', 1)[0]
                           .replace("&amp;", "&"))
        self.assertEqual(request["state"], ["the-state"])
        page = browser.post("/oidc/authorize", {
            "csrf": consent.csrf(), "decision": "approve",
            "request": urlencode({k: v[0] for k, v in request.items()}),
        })
        self.assertEqual(page.code, 303, page.text)
        location = urlsplit(page.location or "")
        self.assertEqual(f"{location.scheme}://{location.netloc}{location.path}", REDIRECT)
        query = parse_qs(location.query)
        self.assertEqual(query["state"], ["the-state"])
        self.assertEqual(query["iss"], [BASE])
        self.assertEqual(len(query["code"][0]), 48)
        servers = browser.get("/settings/servers")
        self.assertIn("rp.example", servers.text)
        forgotten = browser.post("/settings/servers/forget", {
            "csrf": servers.csrf(), "client": "client-1",
        })
        self.assertEqual(forgotten.location, "/settings/servers")
        self.assertNotIn("rp.example", browser.get("/settings/servers").text)

    def test_deny(self) -> None:
        browser = self.signed_in("alice")
        consent = browser.get(self.authorize_path())
        page = browser.post("/oidc/authorize", {
            "csrf": consent.csrf(), "decision": "deny",
            "request": self.authorize_path().split("?", 1)[1],
        })
        query = parse_qs(urlsplit(page.location or "").query)
        self.assertEqual(query["error"], ["access_denied"])
        self.assertNotIn("code", query)
        self.assertEqual(self.successResultOf(self.store.oidc_grants_of(self.alice.id)), [])

    def test_approval_needs_the_form_token(self) -> None:
        """
        An approval posted without this visitor's form token (from another
        site) is refused, and no code is made.
        """
        browser = self.signed_in("alice")
        for token in ("", "forged"):
            page = browser.post("/oidc/authorize", {
                "csrf": token, "decision": "approve",
                "request": self.authorize_path().split("?", 1)[1],
            })
            self.assertEqual(page.code, 403)
            self.assertIsNone(page.location)
            self.assertIn("This form has expired", page.text)
        self.assertEqual(self.provider._codes, {})

    def test_unknown_client_or_redirect_is_an_error_page(self) -> None:
        """
        An unknown client, or a redirect URI not registered exactly, gets
        an error page: never a redirect anywhere, signed in or not.
        """
        for browser in (self.signed_in("alice"), self.browser()):
            self.assert_refused(browser)

    def assert_refused(self, browser: Any) -> None:
        for path in [
            self.authorize_path(client_id="nobody"),
            self.authorize_path(client_id=None),
            self.authorize_path(redirect_uri="https://evil.example/login/callback"),
            self.authorize_path(redirect_uri=REDIRECT + "/more"),
            self.authorize_path(redirect_uri=REDIRECT + "?x=1"),
            self.authorize_path(redirect_uri="https://rp.example/login/"),
        ]:
            page = browser.get(path)
            self.assertEqual(page.code, 400, path)
            self.assertIsNone(page.location, path)
            self.assertIn("Sign-in request refused", page.text)

    def test_pkce_and_nonce_required(self) -> None:
        """
        Without PKCE, with PKCE ``plain`` or without a nonce, a server
        Alice never approved gets an error page here (no redirect to it);
        one she approved before gets an ``invalid_request`` error (with its
        state and our issuer). No code either way.
        """
        browser = self.signed_in("alice")
        cases = [
            ({"code_challenge": None, "code_challenge_method": None}, "PKCE is required"),
            ({"code_challenge_method": "plain", "code_challenge": VERIFIER}, "plain is refused"),
            ({"code_challenge_method": None}, "S256"),
            ({"nonce": None}, "nonce"),
        ]
        for overrides, words in cases:
            page = browser.get(self.authorize_path(**overrides))
            self.assertEqual(page.code, 400, (overrides, page.text))
            self.assertIsNone(page.location, overrides)
            self.assertIn(words, page.text)
        self.approved_before(self.alice)
        for overrides, words in cases:
            page = browser.get(self.authorize_path(**overrides))
            self.assertEqual(page.code, 303, (overrides, page.text))
            query = parse_qs(urlsplit(page.location or "").query)
            self.assertEqual(query["error"], ["invalid_request"], overrides)
            self.assertIn(words, query["error_description"][0])
            self.assertEqual(query["state"], ["the-state"])
            self.assertEqual(query["iss"], [BASE])
            self.assertNotIn("code", query)
        self.assertEqual(self.provider._codes, {})

    def test_no_redirect_to_a_fresh_client(self) -> None:
        """
        A client anyone registered, with an attacker's redirect URI, gets
        no ``Location`` to it from ``/oidc/authorize``: not for a good
        request, ``prompt=none``, an error or an unsupported parameter,
        signed in or out (signed out, only to our own sign-in page).
        """
        code, registered = self.register_json({
            "redirect_uris": ["https://evil.example/cb"], "client_name": "Evil",
        })
        self.assertEqual(code, 201, registered)
        client_id = registered["client_id"]
        paths = [self.authorize_path(client_id=client_id, redirect_uri="https://evil.example/cb",
                                     **overrides) for overrides in [
            {},
            {"prompt": "none"},
            {"prompt": "none", "max_age": "0"},
            {"prompt": "login"},
            {"code_challenge": None, "code_challenge_method": None},
            {"nonce": None},
            {"response_type": "token"},
            {"scope": "profile"},
            {"request": "x"},
            {"request_uri": "https://evil.example/r"},
        ]]
        for browser, signed_in in [(self.signed_in("alice"), True), (self.browser(), False)]:
            for path in paths:
                page = browser.get(path)
                if page.location is None:
                    self.assertIn(page.code, (200, 400), path)
                    self.assertNotIn("evil.example/cb?", page.text)
                    continue
                self.assertTrue(page.location.startswith("/login?next="), (path, page.location))
                self.assertFalse(signed_in and "prompt=login" not in path, path)
        self.assertEqual(self.provider._codes, {})


class PromptTests(OIDCPagesTestCase):
    """
    OpenID Connect's ``prompt`` and ``max_age``, and ``auth_time``.
    """

    def setUp(self) -> None:
        super().setUp()
        self.register()

    def error_of(self, page: Any) -> tuple[str, str]:
        self.assertEqual(page.code, 303, page.text)
        query = parse_qs(urlsplit(page.location or "").query)
        self.assertEqual((query["state"], query["iss"]), (["the-state"], [BASE]))
        return query["error"][0], query.get("error_description", [""])[0]

    def approve(self, browser: Any, path: str) -> dict[str, list[str]]:
        consent = browser.get(path)
        self.assertEqual(consent.code, 200, consent.text)
        page = browser.post("/oidc/authorize", {
            "csrf": consent.csrf(), "decision": "approve", "request": path.split("?", 1)[1],
        })
        return parse_qs(urlsplit(page.location or "").query)

    def assert_refused_here(self, page: Any, words: str) -> None:
        self.assertEqual(page.code, 400, page.text)
        self.assertIsNone(page.location)
        self.assertIn(words, page.text)

    def test_prompt_none(self) -> None:
        """
        ``prompt=none`` shows no consent page. Signed out, or signed in but
        never approved: an error page here, never a redirect to the asking
        server. Approved before: a code, and ``login_required`` when the
        sign-in is older than ``max_age``.
        """
        path = self.authorize_path(prompt="none")
        self.assert_refused_here(self.browser().get(path), "You are not signed in here")
        browser = self.signed_in("alice")
        self.assert_refused_here(browser.get(path), "You have not approved this server")
        self.assertIn("code", self.approve(browser, self.authorize_path(nonce="first")))
        silent = browser.get(self.authorize_path(prompt="none", nonce="second"))
        self.assertEqual(silent.code, 303)
        self.assertIn("code", parse_qs(urlsplit(silent.location or "").query))
        self.clock.advance(61)
        stale = browser.get(self.authorize_path(prompt="none", max_age="60"))
        self.assertEqual(self.error_of(stale)[0], "login_required")

    def test_prompt_login_asks_again_once(self) -> None:
        """
        ``prompt=login`` sends a signed-in visitor to sign in again, then
        to the consent page (not round and round).
        """
        browser = self.signed_in("alice")
        page = browser.get(self.authorize_path(prompt="login"))
        self.assertTrue((page.location or "").startswith("/login?next="), page.location)
        back = parse_qs(urlsplit(page.location or "").query)["next"][0]
        self.clock.advance(1)
        form = browser.get("/login?" + urlencode({"next": back}))
        signed = browser.post("/login", {
            "handle": "alice", "password": PASSWORDS["alice"], "next": back,
            "csrf": form.csrf(),
        })
        self.assertEqual(signed.location, back)
        self.assertEqual(browser.get(back).code, 200)

    def test_max_age(self) -> None:
        """
        A sign-in older than ``max_age`` seconds must be made again; a code
        carries the time of the sign-in, not of the code, as ``auth_time``.
        """
        browser = self.signed_in("alice")
        signed_in = int(self.clock.seconds())
        self.assertEqual(browser.get(self.authorize_path(max_age="60")).code, 200)
        self.clock.advance(61)
        self.assertTrue((browser.get(self.authorize_path(max_age="60")).location or "")
                        .startswith("/login?next="))
        query = self.approve(browser, self.authorize_path(max_age="3600"))
        [code] = self.provider._codes.values()
        self.assertEqual(code.auth_time, signed_in)
        self.assertEqual(query["code"], [code.code])

    def test_request_objects_and_missing_redirect_uri(self) -> None:
        """
        ``request`` and ``request_uri`` are refused: on an error page for a
        server Alice never approved, sent back to one she approved before.
        No ``redirect_uri``: an error page either way.
        """
        browser = self.signed_in("alice")
        for name in ("request", "request_uri"):
            self.assert_refused_here(
                browser.get(self.authorize_path(**{name: "x"})), f"does not take {name}"
            )
        self.approved_before(self.alice)
        for name in ("request", "request_uri"):
            error, words = self.error_of(browser.get(self.authorize_path(**{name: "x"})))
            self.assertEqual(error, f"{name}_not_supported")
            self.assertIn(f"does not take {name}", words)
        page = browser.get(self.authorize_path(redirect_uri=None))
        self.assertEqual(page.code, 400)
        self.assertIsNone(page.location)
        self.assertIn("names no redirect_uri", page.text)


class RemoteSignInTests(OIDCPagesTestCase):
    def test_sign_in_with_home_server(self) -> None:
        """
        A visitor types their address, is sent to their home server, comes
        back and is signed in here as ``handle@server``: on profiles, not
        at home or in settings.
        """
        browser = self.browser()
        page = browser.submit("/login?next=%2Falice", {
            "identifier": "carol@home.example", "next": "/alice",
        }, action="/login/remote")
        self.assertEqual(page.code, 303, page.text)
        self.assertEqual(page.location, "https://home.example/authorize?state=s1")
        self.assertIn("HttpOnly", page.cookie("dw_signin") or "")
        self.assertIn("SameSite=lax", page.cookie("dw_signin") or "")
        back = browser.get("/login/callback?state=s1&code=c")
        self.assertEqual((back.code, back.location), (303, "/alice"), back.text)
        profile = browser.get("/alice")
        self.assertIn("Visiting as carol@home.example", profile.text)
        self.assertIn('action="/alice/follow"', profile.text)
        self.assertTrue(browser.get("/home").location.startswith("/login"))  # type: ignore[union-attr]
        self.assertTrue(browser.get("/settings").location.startswith("/login"))  # type: ignore[union-attr]

    def test_visitor_follows_from_home(self) -> None:
        """
        A signed-in visitor's follow is sent to their home server to be
        confirmed there (it takes no other server's word for whom its users
        follow); nothing is recorded here.
        """
        self.successResultOf(self.store.ensure_account("carol", "home.example", 0))
        carol = self.successResultOf(self.store.note_remote_last("carol", "home.example", 0,
                                                                 "https://home.example"))
        self.microblog.federation = FollowRecorder(carol)
        browser = self.browser()
        browser.submit("/login", {"identifier": "carol@home.example"}, action="/login/remote")
        browser.get("/login/callback?state=s1&code=c")
        for action in ("follow", "unfollow"):
            profile = browser.get("/alice")
            page = browser.post(f"/alice/{action}", {"csrf": profile.csrf()})
            self.assertEqual(page.code, 303)
            self.assertEqual(page.location, "https://home.example/follow?" + urlencode(
                {"acct": "alice@localhost:8080", "action": action}
            ))
            self.assertFalse(
                self.successResultOf(self.store.is_following(carol.id, self.alice.id))
            )

    def test_follow_confirmed_at_home(self) -> None:
        """
        On the home server, ``/follow?acct=`` asks a signed-in user to
        confirm, and the confirmed follow is theirs (told to the followed
        account's server as any follow is); signed out, it goes to sign-in
        first; an acct that is not one is refused.
        """
        self.successResultOf(self.store.ensure_account("carol", "other.example", 0))
        carol = self.successResultOf(self.store.note_remote_last("carol", "other.example", 0,
                                                                 "https://other.example"))
        federation = FollowRecorder(carol)
        self.microblog.federation = federation
        query = "/follow?" + urlencode({"acct": "carol@other.example", "action": "follow"})
        signed_out = self.browser().get(query)
        self.assertTrue(signed_out.location.startswith("/login"))  # type: ignore[union-attr]
        browser = self.signed_in("alice")
        confirm = browser.get(query)
        self.assertEqual(confirm.code, 200)
        self.assertIn("carol@other.example", confirm.text)
        page = browser.post("/follow", {
            "csrf": confirm.csrf(), "acct": "carol@other.example", "action": "follow",
        })
        self.assertEqual((page.code, page.location), (303, "https://other.example/carol"))
        self.assertTrue(self.successResultOf(self.store.is_following(self.alice.id, carol.id)))
        self.assertEqual(federation.notices, [("alice", "carol@other.example", "follow")])
        self.assertEqual(browser.post("/follow", {"acct": "carol@other.example"}).code, 403)
        bad = browser.get("/follow?acct=not-an-acct")
        self.assertEqual(bad.code, 400)

    def test_visitor_without_a_distwit_home(self) -> None:
        """
        A visitor whose home server is not a distwit server (no home known
        here) cannot follow from here: nothing is recorded, and the page
        says why.
        """
        browser = self.browser()
        browser.submit("/login", {"identifier": "carol@home.example"}, action="/login/remote")
        browser.get("/login/callback?state=s1&code=c")
        profile = browser.get("/alice")
        page = browser.post("/alice/follow", {"csrf": profile.csrf()})
        self.assertEqual(page.code, 400)
        self.assertIn("is not a distwit server this server can reach", page.text)
        carol = self.successResultOf(self.store.get_remote_account("carol", "home.example"))
        self.assertFalse(self.successResultOf(self.store.is_following(carol.id, self.alice.id)))

    def test_callback_needs_the_browser_that_began(self) -> None:
        """
        A callback in a browser that did not start the sign-in (no cookie,
        or an old one) signs nobody in; a state that does not match is
        refused with the relying party's message.
        """
        page = self.browser().get("/login/callback?state=s1&code=c")
        self.assertEqual(page.code, 400)
        self.assertIn("not started in this browser", page.text)
        self.assertIsNone(page.cookie("dw_session"))

        browser = self.browser()
        browser.submit("/login", {"identifier": "carol@home.example"}, action="/login/remote")
        bad = browser.get("/login/callback?state=other&code=c")
        self.assertEqual(bad.code, 400)
        self.assertIn("does not belong to this sign-in", bad.text)
        self.assertIsNone(bad.cookie("dw_session"))
        # The pending sign-in is used up either way.
        self.assertEqual(browser.get("/login/callback?state=s1&code=c").code, 400)

        late = self.browser()
        late.submit("/login", {"identifier": "carol@home.example"}, action="/login/remote")
        self.clock.advance(601)
        self.assertIn("took too long", late.get("/login/callback?state=s1&code=c").text)

    def test_bad_address(self) -> None:
        browser = self.browser()
        page = browser.submit("/login", {"identifier": "nobody"}, action="/login/remote")
        self.assertEqual(page.code, 400)
        self.assertIn("is not an address like alice@example.org", page.text)
        empty = browser.submit("/login", {"identifier": " "}, action="/login/remote")
        self.assertIn("Type your address", empty.text)
        self.assertEqual(self.rp.begun, [])

    def test_own_accounts_sign_in_with_a_password(self) -> None:
        self.rp.finish = lambda pending, params: _succeed(  # type: ignore[method-assign]
            Identity(BASE, "alice", "alice", "localhost:8080")
        )
        browser = self.browser()
        browser.submit("/login", {"identifier": "alice@localhost:8080"}, action="/login/remote")
        page = browser.get("/login/callback?state=s1&code=c")
        self.assertEqual(page.code, 400)
        self.assertIn("sign in with its password", page.text)

    def test_login_page_may_lead_to_home_servers(self) -> None:
        page = self.browser().get("/login")
        self.assertIn("form-action 'self' https: http:", page.header("content-security-policy"))
        self.assertIn('action="/login/remote"', page.text)


class AddressLimitTests(OIDCPagesTestCase):
    def test_wrong_passwords_from_one_address(self) -> None:
        """
        After many wrong passwords from one address (across handles), it
        must wait, even with a right one; 15 minutes later it may go on.
        """
        browser = self.browser()
        for i in range(ADDRESS_FAILURES):
            handle = ("alice", "bob", f"nobody{i}")[i % 3]
            page = browser.submit("/login", {"handle": handle, "password": "wrong-password"})
            self.assertEqual(page.code, 400, i)
        page = browser.submit("/login", {"handle": "bob", "password": PASSWORDS["bob"]})
        self.assertEqual(page.code, 429)
        self.assertIn("Too many wrong passwords from your address", page.text)
        self.assertIsNone(page.cookie("dw_session"))
        self.clock.advance(15 * 60)
        page = browser.submit("/login", {"handle": "bob", "password": PASSWORDS["bob"]})
        self.assertEqual((page.code, page.location), (303, "/home"))


    def test_remote_sign_ins_from_one_address(self) -> None:
        """
        Each sign-in with a home server makes this server fetch from
        another: one address may begin only so many in a window.
        """
        browser = self.browser()
        for i in range(ADDRESS_REMOTE_SIGNINS):
            page = browser.submit("/login", {"identifier": "carol@home.example"},
                                  action="/login/remote")
            self.assertEqual(page.code, 303, i)
        page = browser.submit("/login", {"identifier": "carol@home.example"},
                              action="/login/remote")
        self.assertEqual(page.code, 429)
        self.assertIn("Too many sign-ins from your address", page.text)
        self.assertEqual(len(self.rp.begun), ADDRESS_REMOTE_SIGNINS)
        self.clock.advance(15 * 60)
        again = browser.submit("/login", {"identifier": "carol@home.example"},
                               action="/login/remote")
        self.assertEqual(again.code, 303)

    def test_remote_sign_ins_counted_by_every_process(self) -> None:
        """
        With several processes (a shared state), the count of sign-ins
        with a home server from one address is theirs together: the pages
        of another process, with nothing in their own memory, refuse too.
        """
        self.microblog.share(MemorySharedState(self.clock))
        self.make_pages()
        browser = self.browser()
        for i in range(ADDRESS_REMOTE_SIGNINS):
            page = browser.submit("/login", {"identifier": "carol@home.example"},
                                  action="/login/remote")
            self.assertEqual(page.code, 303, i)
        self.make_pages()  # another process's pages over the same shared state
        page = self.browser().submit("/login", {"identifier": "carol@home.example"},
                                     action="/login/remote")
        self.assertEqual(page.code, 429)
        self.assertIn("Too many sign-ins from your address", page.text)


class SettingsTests(OIDCPagesTestCase):
    def test_profile(self) -> None:
        browser = self.signed_in("alice")
        page = browser.submit("/settings", {
            "name": "Alice B.", "description": "<b>hi</b>", "location": "Here", "url": "",
        }, action="/settings/profile")
        self.assertEqual(page.location, "/settings?saved=profile")
        saved = browser.get("/settings?saved=profile")
        self.assertIn("Profile saved.", saved.text)
        self.assertIn("&lt;b&gt;hi&lt;/b&gt;", saved.text)
        self.assertEqual(self.account("alice").name, "Alice B.")  # type: ignore[union-attr]
        too_long = browser.submit("/settings", {"name": "x" * 51}, action="/settings/profile")
        self.assertEqual(too_long.code, 400)
        self.assertEqual(self.account("alice").name, "Alice B.")  # type: ignore[union-attr]

    def test_password(self) -> None:
        browser = self.signed_in("alice")
        for fields, words in [
            ({"current": "wrong-password", "password": "new-password-1",
              "password_again": "new-password-1"}, "The current password is wrong."),
            ({"current": PASSWORDS["alice"], "password": "new-password-1",
              "password_again": "other-password"}, "The two new passwords differ."),
            ({"current": PASSWORDS["alice"], "password": "short",
              "password_again": "short"}, "at least"),
        ]:
            page = browser.submit("/settings", fields, action="/settings/password")
            self.assertEqual(page.code, 400, fields)
            self.assertIn(words, page.text)
        page = browser.submit("/settings", {
            "current": PASSWORDS["alice"], "password": "new-password-1",
            "password_again": "new-password-1",
        }, action="/settings/password")
        self.assertEqual(page.location, "/settings?saved=password")
        fresh = self.browser().submit(
            "/login", {"handle": "alice", "password": "new-password-1"}
        )
        self.assertEqual(fresh.location, "/home")
        old = self.browser().submit("/login", {"handle": "alice", "password": PASSWORDS["alice"]})
        self.assertEqual(old.code, 400)

    def test_needs_sign_in_and_form_token(self) -> None:
        self.assertTrue(self.browser().get("/settings").location.startswith("/login"))  # type: ignore[union-attr]
        browser = self.signed_in("alice")
        page = browser.post("/settings/password", {
            "current": PASSWORDS["alice"], "password": "new-password-1",
            "password_again": "new-password-1",
        })
        self.assertEqual(page.code, 403)


def _succeed(value: Any) -> Any:
    async def result() -> Any:
        return value

    return result()


class RegistrationTests(OIDCPagesTestCase):
    """
    ``/oidc/register`` in memory: what it refuses, and how often one
    address may register.
    """

    def test_registers(self) -> None:
        code, body = self.register_json({"redirect_uris": [REDIRECT], "client_name": "RP"})
        self.assertEqual(code, 201, body)
        stored = self.successResultOf(self.store.get_oidc_client(body["client_id"]))
        self.assertEqual(json.loads(stored.metadata)["redirect_uris"], [REDIRECT])
        self.assertEqual(stored.client_secret, body["client_secret"])

    def test_refused_metadata(self) -> None:
        for metadata, words in [
            ({"redirect_uris": [REDIRECT], "id_token_signed_response_alg": "none"},
             "signed with RS256 only"),
            ({"redirect_uris": [REDIRECT], "id_token_signed_response_alg": "HS256"},
             "signed with RS256 only"),
            ({"redirect_uris": [REDIRECT], "userinfo_signed_response_alg": "RS256"},
             "never signed"),
            ({"redirect_uris": ["/relative"]}, "http(s) URLs"),
            ({"redirect_uris": [REDIRECT + "#x"]}, "without fragments"),
            ({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"},
             "token_endpoint_auth_method"),
            ([REDIRECT], "JSON object"),
        ]:
            code, body = self.register_json(metadata)
            self.assertEqual(code, 400, metadata)
            self.assertIn(words, body["error_description"])
        self.assertEqual(self.provider._clients, {})

    def test_registrations_per_address(self) -> None:
        from distwit.oidc.provider import REGISTRATION_WINDOW, REGISTRATIONS_PER_ADDRESS

        for i in range(REGISTRATIONS_PER_ADDRESS):
            self.assertEqual(self.register_json({"redirect_uris": [REDIRECT]})[0], 201, i)
        code, body = self.register_json({"redirect_uris": [REDIRECT]})
        self.assertEqual(code, 429)
        self.assertIn("Too many registrations from your address", body["error_description"])
        self.clock.advance(REGISTRATION_WINDOW)
        self.assertEqual(self.register_json({"redirect_uris": [REDIRECT]})[0], 201)


class PlainHTTPTests(OIDCPagesTestCase):
    """
    A server whose public URL is plain http on a public address signs
    nobody in elsewhere: every step says so, and nothing is kept.
    """

    issuer = "http://example.org"

    def test_refused_everywhere(self) -> None:
        from distwit.oidc.provider import INSECURE

        self.assertTrue(self.provider.insecure)
        code, body = self.register_json({"redirect_uris": [REDIRECT]})
        self.assertEqual((code, body["error_description"]), (400, INSECURE))
        self.register()
        page = self.signed_in("alice").get(self.authorize_path())
        self.assertEqual(page.code, 400)
        self.assertIsNone(page.location)
        self.assertIn("OpenID Connect needs https", page.text)
        self.assertEqual(self.provider._codes, {})


class StoreRegistrationsTests(PagesTestCase):
    """
    This server's registrations at other providers, kept in its database.
    """

    def test_kept_per_issuer(self) -> None:
        """
        A registration is found again (also by another object on the same
        records: none is held in memory), replaced by a later one, and kept
        apart from other issuers'; an issuer never registered with has none.
        """
        kept = StoreRegistrations(self.microblog.oidc, self.clock)
        self.assertTrue(verifyObject(IRegistrations, kept))

        def get(registrations: StoreRegistrations, issuer: str) -> Any:
            return self.successResultOf(ensureDeferred(registrations.get(issuer)))

        self.assertIsNone(get(kept, "https://a.example"))
        self.successResultOf(ensureDeferred(kept.put("https://a.example", {"client_id": "1"})))
        self.successResultOf(ensureDeferred(kept.put("https://b.example", {"client_id": "b"})))
        self.successResultOf(ensureDeferred(kept.put("https://a.example", {"client_id": "2"})))
        again = StoreRegistrations(self.microblog.oidc, self.clock)
        self.assertEqual(get(again, "https://a.example"), {"client_id": "2"})
        self.assertEqual(get(again, "https://b.example"), {"client_id": "b"})
