"""
Our OpenID Connect provider against relying parties we did not write, and
against the ways a relying party or a browser may misuse it.

Everything runs against a real ``twistd -n distwit`` process on 127.0.0.1
with one user, ``Alice``.  The browser is played with ``requests``: a cookie
jar, no JavaScript, redirects read rather than followed, so that every 303
the provider sends is looked at.  The relying parties' redirect URI is on a
host nobody listens on (``rp.example``): the code is read from the
``Location`` header the provider sends, as a browser would be about to
follow it.

The relying parties: Python ``oic`` (in this process, blocking, hence a
:class:`SynchronousTestCase`) and Node ``openid-client``
(``tests/clients/openid-client/rp.mjs``, which the test talks to over its
standard input and output).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.processes import ROOT, ServerProcess, run_cli

HANDLE = "Alice"
NAME = "Alice Liddell"
PASSWORD = "correct horse battery"

#: Where the relying parties say they live: never contacted.
REDIRECT_URI = "https://rp.example/login/callback"
REDIRECT_HOST = "rp.example"

OPENID_CLIENT = os.path.join(ROOT, "tests", "clients", "openid-client")

#: Seconds for any one HTTP request or client run.
TIMEOUT = 60


def _requests() -> Any:
    import requests

    return requests


# What a browser does


class Form:
    """
    One ``<form>`` of a page: where it goes and the fields it would send.

    :ivar action: the ``action`` attribute, as written.
    :ivar method: ``get`` or ``post``.
    :ivar fields: every named ``<input>`` with its value (hidden ones too).
    :ivar buttons: ``(name, value)`` of every named submit button.
    """

    def __init__(self, action: str, method: str) -> None:
        self.action = action
        self.method = method
        self.fields: dict[str, str] = {}
        self.buttons: list[tuple[str, str]] = []


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = Form(a.get("action", ""), a.get("method", "get").lower())
            self.forms.append(self._current)
        elif self._current is None or "name" not in a:
            return
        elif tag == "button" or (tag == "input" and a.get("type", "").lower() == "submit"):
            if a.get("type", "submit").lower() == "submit":
                self._current.buttons.append((a["name"], a.get("value", "")))
        elif tag == "input":
            self._current.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def form_to(html: str, action: str) -> Form:
    """
    The page's POST form whose action is ``action``.
    """
    found = [f for f in forms(html) if f.method == "post" and f.action == action]
    if len(found) != 1:
        raise AssertionError(f"expected one POST form to {action}, found {len(found)}:\n{html}")
    return found[0]


def set_cookies(response: Any) -> dict[str, str]:
    """
    The ``Set-Cookie`` headers of a response, by cookie name, as sent.
    """
    return {
        header.split("=", 1)[0].strip(): header
        for header in response.raw.headers.getlist("Set-Cookie")
    }


def cookie_attributes(header: str) -> set[str]:
    """
    The attributes of one ``Set-Cookie`` header, lowercased
    (``{"path=/", "httponly", "samesite=lax", ...}``).
    """
    return {part.strip().lower() for part in header.split(";")[1:]}


class Browser:
    """
    A person's browser on the provider: a cookie jar, forms filled in by
    hand, redirects looked at one by one.
    """

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.session = _requests().Session()

    def get(self, url: str) -> Any:
        return self.session.get(
            urljoin(self.server.url, url), allow_redirects=False, timeout=TIMEOUT
        )

    def post(self, url: str, data: dict[str, str]) -> Any:
        return self.session.post(
            urljoin(self.server.url, url), data=data, allow_redirects=False, timeout=TIMEOUT
        )

    def sign_in(self, login_url: str = "/login", handle: str = HANDLE,
                password: str = PASSWORD) -> Any:
        """
        Open ``login_url``, fill in the sign-in form and send it; the answer
        to the POST (a 303 when it worked).
        """
        page = self.get(login_url)
        if page.status_code != 200:
            raise AssertionError(f"GET {login_url}: {page.status_code}\n{page.text}")
        form = form_to(page.text, "/login")
        fields = dict(form.fields, handle=handle, password=password)
        return self.post("/login", fields)

    def consent(self, authorization_url: str) -> Any:
        """
        Open ``authorization_url`` signed out, sign in where it sends us,
        and follow the sign-in's redirect back: the consent page.
        """
        first = self.get(authorization_url)
        if first.status_code != 303:
            raise AssertionError(
                f"authorize while signed out: {first.status_code}, not 303 to /login\n{first.text}"
            )
        login = urljoin(self.server.url, first.headers["Location"])
        signed_in = self.sign_in(login)
        if signed_in.status_code != 303:
            raise AssertionError(f"POST /login: {signed_in.status_code}\n{signed_in.text}")
        page = self.get(signed_in.headers["Location"])
        if page.status_code != 200:
            raise AssertionError(f"consent page: {page.status_code}\n{page.text}")
        return page

    def decide(self, consent_page: Any, decision: str) -> Any:
        """
        Press the consent page's ``decision`` button (``approve`` or
        ``deny``).
        """
        form = form_to(consent_page.text, "/oidc/authorize")
        if ("decision", decision) not in form.buttons:
            raise AssertionError(f"no {decision} button: {form.buttons}\n{consent_page.text}")
        return self.post("/oidc/authorize", dict(form.fields, decision=decision))

    def approve(self, authorization_url: str) -> str:
        """
        Everything a person does between a relying party's redirect and
        its callback: sign in, approve.  The callback URL with its query.
        """
        answer = self.decide(self.consent(authorization_url), "approve")
        if answer.status_code != 303:
            raise AssertionError(f"approve: {answer.status_code}\n{answer.text}")
        return str(answer.headers["Location"])


# A relying party written out by hand, for the requests the libraries
# would never send


def pkce_pair() -> tuple[str, str]:
    """
    A PKCE ``(code_verifier, code_challenge)`` pair, S256.
    """
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class HandMadeClient:
    """
    A relying party made of plain HTTP requests, registered with
    ``redirect_uris``; each authorization request it makes is remembered by
    its state.
    """

    def __init__(self, server: ServerProcess, redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
                 auth_method: str = "client_secret_basic") -> None:
        self.server = server
        self.issuer = server.url
        response = _requests().post(
            server.url + "/oidc/register",
            json={
                "client_name": "Hand-made test client",
                "redirect_uris": list(redirect_uris),
                "token_endpoint_auth_method": auth_method,
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
            },
            timeout=TIMEOUT,
        )
        if response.status_code != 201:
            raise AssertionError(f"registration: {response.status_code} {response.text}")
        self.registration = response.json()
        self.client_id: str = self.registration["client_id"]
        self.client_secret: str | None = self.registration.get("client_secret")
        #: state -> (nonce, code_verifier)
        self.requests: dict[str, tuple[str, str]] = {}

    def authorization_url(self, drop: tuple[str, ...] = (), **overrides: str) -> str:
        """
        A valid authorization request (S256, nonce, state), less the
        parameters named in ``drop``, with ``overrides`` replacing others.
        """
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.requests[state] = (nonce, verifier)
        parameters = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        parameters.update(overrides)
        for name in drop:
            del parameters[name]
        return self.server.url + "/oidc/authorize?" + urlencode(parameters)

    def token(self, code: str, verifier: str | None,
              redirect_uri: str = REDIRECT_URI) -> Any:
        """
        The token endpoint's answer to exchanging ``code`` (with
        ``verifier``, unless ``None``).
        """
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if verifier is not None:
            data["code_verifier"] = verifier
        auth = None
        if self.client_secret:
            auth = (self.client_id, self.client_secret)
        else:
            data["client_id"] = self.client_id
        return _requests().post(
            self.server.url + "/oidc/token", data=data, auth=auth, timeout=TIMEOUT
        )


def callback_parameters(location: str) -> dict[str, str]:
    """
    The query of a redirect to :data:`REDIRECT_URI`, one value per name.

    :raise AssertionError: it goes anywhere else.
    """
    parts = urlsplit(location)
    if f"{parts.scheme}://{parts.netloc}{parts.path}" != REDIRECT_URI:
        raise AssertionError(f"redirected to {location!r}, not to {REDIRECT_URI}")
    query = parse_qs(parts.query, keep_blank_values=True)
    for name, values in query.items():
        if len(values) != 1:
            raise AssertionError(f"{name} given {len(values)} times in {location!r}")
    return {name: values[0] for name, values in query.items()}


def start_provider(case: SynchronousTestCase) -> ServerProcess:
    """
    A distwit server (every role) with the user ``Alice``, stopped at the
    end of the test.
    """
    data = os.path.join(os.path.abspath(case.mktemp()), "provider")
    done = run_cli(
        "adduser", "--create", HANDLE, "--name", NAME, "--data", data, stdin=PASSWORD + "\n"
    )
    case.assertEqual(done.returncode, 0, done.stderr)
    server = ServerProcess(data)
    case.addCleanup(server.stop)
    return server


def jwt_header(token: str) -> dict[str, Any]:
    first = token.split(".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))  # type: ignore[no-any-return]


class ProviderTestCase(SynchronousTestCase):
    """
    One provider process per test, a browser and a hand-made client.
    """

    def setUp(self) -> None:
        self.server = start_provider(self)
        self.issuer = self.server.url
        self.browser = Browser(self.server)

    def assertNoTraceback(self) -> None:
        self.assertNotIn("Traceback", self.server.log_text())

    def assertRefusedRequest(self, response: Any, state: str,
                             errors: tuple[str, ...] = ("invalid_request",),
                             page: bool = True) -> None:
        """
        ``response`` refuses an authorization request without handing out a
        code: an error page (400) that sends the browser nowhere (if
        ``page``), or (RFC 6749 4.1.2.1, RFC 7636 4.4.1) a redirect to the
        client with one of ``errors``, its state and our ``iss``.
        """
        if page and response.status_code == 400:
            self.assertNotIn("Location", response.headers)
            self.assertNotIn('value="approve"', response.text)
            return
        self.assertEqual(response.status_code, 303, response.text)
        query = callback_parameters(response.headers["Location"])
        self.assertNotIn("code", query)
        self.assertIn(query.get("error"), errors, query)
        self.assertEqual(query.get("state"), state)
        self.assertEqual(query.get("iss"), self.issuer)

    def assertErrorPage(self, response: Any, what: str = "") -> None:
        """
        A 400 HTML page, and no redirect of any kind.
        """
        self.assertEqual(
            response.status_code, 400,
            f"{what}: {response.status_code} {response.headers.get('Location')}",
        )
        self.assertNotIn("Location", response.headers)
        self.assertTrue(
            response.headers.get("Content-Type", "").startswith("text/html"),
            response.headers,
        )
        self.assertNotIn(REDIRECT_HOST, response.headers.get("Refresh", ""))

    def approved_code(self, client: HandMadeClient, **overrides: str) -> tuple[str, str]:
        """
        A fresh code from the whole browser flow: ``(code, code_verifier)``.
        """
        url = client.authorization_url(**overrides)
        state = parse_qs(urlsplit(url).query)["state"][0]
        query = callback_parameters(self.browser.approve(url))
        self.assertEqual(query["state"], state)
        return query["code"], client.requests[state][1]


# The relying parties we did not write


class OicTests(ProviderTestCase):
    """
    Python ``oic`` (the OpenID Foundation's pyoidc) as a relying party.
    """

    def setUp(self) -> None:
        try:
            import oic  # noqa: F401
        except ImportError:
            raise SkipTest("oic is not installed (pip install oic; the test extra)") from None
        super().setUp()

    def signed_in_client(self) -> tuple[Any, str]:
        """
        ``oic`` discovers the provider, registers itself, sends an
        authorization request with PKCE S256, a nonce and a state, and
        (after sign-in and consent) exchanges the code: the client and the
        state its grant is kept under.  ``oic`` verifies the ID token on the
        way: its signature against the JWKS, issuer, audience, nonce.
        """
        from oic import rndstr
        from oic.oic import Client
        from oic.oic.message import AuthorizationResponse
        from oic.utils.authn.client import CLIENT_AUTHN_METHOD

        client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
        provider = client.provider_config(self.issuer)
        self.assertEqual(provider["issuer"], self.issuer)
        client.register(
            provider["registration_endpoint"],
            redirect_uris=[REDIRECT_URI],
            client_name="oic interop test",
            response_types=["code"],
            grant_types=["authorization_code"],
            token_endpoint_auth_method="client_secret_basic",
        )
        self.assertTrue(client.client_id)
        self.assertTrue(client.client_secret)
        client.redirect_uris = [REDIRECT_URI]

        pkce, verifier = client.add_code_challenge()
        self.assertEqual(pkce["code_challenge_method"], "S256")
        state, nonce = rndstr(24), rndstr(24)
        request = client.construct_AuthorizationRequest(
            request_args={
                "client_id": client.client_id,
                "response_type": "code",
                "scope": ["openid", "profile"],
                "redirect_uri": REDIRECT_URI,
                "state": state,
                "nonce": nonce,
                **pkce,
            }
        )
        authorization_url = request.request(client.authorization_endpoint)

        callback = self.browser.approve(authorization_url)
        query = callback_parameters(callback)
        self.assertEqual(query.get("iss"), self.issuer, "RFC 9207 iss parameter")
        answer = client.parse_response(
            AuthorizationResponse, info=urlsplit(callback).query, sformat="urlencoded"
        )
        self.assertEqual(answer["state"], state)

        tokens = client.do_access_token_request(
            state=state,
            request_args={"code": answer["code"], "code_verifier": verifier},
            authn_method="client_secret_basic",
        )
        self.assertEqual(tokens["token_type"].lower(), "bearer")
        id_token = tokens["id_token"]  # verified by oic against the JWKS
        self.assertEqual(id_token["iss"], self.issuer)
        self.assertEqual(id_token["sub"], "alice")
        self.assertEqual(id_token["nonce"], nonce)
        self.assertIn(client.client_id, id_token["aud"])
        self.assertGreater(id_token["exp"], id_token["iat"])
        return client, state

    def assertAlice(self, userinfo: Any) -> None:
        from oic.oic.message import OpenIDSchema

        self.assertIsInstance(userinfo, OpenIDSchema, str(getattr(userinfo, "to_dict", dict)()))
        self.assertEqual(userinfo["sub"], "alice")
        self.assertEqual(userinfo["preferred_username"], HANDLE)
        self.assertEqual(userinfo["name"], NAME)
        self.assertEqual(userinfo["profile"].lower(), f"{self.issuer}/{HANDLE}".lower())

    def test_code_flow(self) -> None:
        """
        The whole flow with ``oic``, userinfo read the recommended way (GET,
        the token in the ``Authorization`` header): Alice, as ``alice`` for
        ``sub``, as written for ``preferred_username``.
        """
        client, state = self.signed_in_client()
        self.assertAlice(client.do_user_info_request(state=state, method="GET"))
        self.assertNoTraceback()

    def test_userinfo_as_oic_asks_by_default(self) -> None:
        """
        ``oic`` asks for userinfo with POST and the access token in the
        form body (RFC 6750 2.2), which OpenID Connect Core 5.3.1 allows:
        Alice.
        """
        client, state = self.signed_in_client()
        self.assertAlice(client.do_user_info_request(state=state))
        self.assertNoTraceback()



def openid_client_skip() -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed (.ci/run installs them)"
    return None


class OpenIDClientTests(ProviderTestCase):
    """
    Node ``openid-client`` 6 as a relying party
    (``tests/clients/openid-client/rp.mjs``).
    """

    skip = openid_client_skip()

    def setUp(self) -> None:
        if not os.path.isdir(os.path.join(OPENID_CLIENT, "node_modules", "openid-client")):
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
                cwd=OPENID_CLIENT, check=True, timeout=600,
            )
        super().setUp()

    def test_code_flow(self) -> None:
        """
        ``openid-client`` discovers the provider, registers itself, builds
        an authorization URL with PKCE S256, a nonce and a state; after
        sign-in and consent it checks the callback (state, and the ``iss``
        the provider says it sends), exchanges the code, validates the ID
        token and reads userinfo: Alice.
        """
        process = subprocess.Popen(
            ["node", os.path.join(OPENID_CLIENT, "rp.mjs"), self.issuer, REDIRECT_URI],
            cwd=OPENID_CLIENT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        watchdog = threading.Timer(TIMEOUT * 2, process.kill)
        watchdog.start()
        self.addCleanup(watchdog.cancel)
        self.addCleanup(process.wait)
        self.addCleanup(process.kill)
        assert process.stdout is not None and process.stdin is not None

        def failed(step: str) -> AssertionError:
            out, err = process.communicate()
            return AssertionError(f"rp.mjs {step}: exit {process.returncode}\n{out}{err}")

        line = process.stdout.readline()
        if not line:
            raise failed("did not print an authorization URL")
        start = json.loads(line)
        url = urlsplit(start["authorization_url"])
        self.assertEqual(f"{url.scheme}://{url.netloc}{url.path}", self.issuer + "/oidc/authorize")
        sent = parse_qs(url.query)
        self.assertEqual(sent["code_challenge_method"], ["S256"])
        self.assertIn("nonce", sent)

        callback = self.browser.approve(start["authorization_url"])
        self.assertEqual(callback_parameters(callback).get("iss"), self.issuer)
        process.stdin.write(callback + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            raise failed("refused the callback or the tokens")
        result = json.loads(line)
        self.assertEqual(process.wait(timeout=TIMEOUT), 0)

        claims = result["id_token_claims"]
        self.assertEqual(claims["iss"], self.issuer)
        self.assertEqual(claims["sub"], "alice")
        self.assertIn(start["client_id"], [claims["aud"]] if isinstance(claims["aud"], str)
                      else claims["aud"])
        userinfo = result["userinfo"]
        self.assertEqual(userinfo["sub"], "alice")
        self.assertEqual(userinfo["preferred_username"], HANDLE)
        self.assertEqual(userinfo["name"], NAME)
        self.assertNoTraceback()


# What the provider publishes


class DiscoveryTests(ProviderTestCase):
    """
    What the provider publishes and signs: the discovery document, the
    JWKS and the ID tokens it checks, WebFinger.
    """

    def test_discovery_document(self) -> None:
        """
        ``/.well-known/openid-configuration`` names this server as issuer,
        its endpoints under ``/oidc/``, and only what it supports: the
        code flow, S256, RS256, the ``iss`` response parameter.
        """
        response = _requests().get(
            self.issuer + "/.well-known/openid-configuration", timeout=TIMEOUT
        )
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.headers["Content-Type"].startswith("application/json"))
        document = response.json()
        self.assertEqual(document["issuer"], self.issuer)
        for name, path in [
            ("authorization_endpoint", "/oidc/authorize"),
            ("token_endpoint", "/oidc/token"),
            ("userinfo_endpoint", "/oidc/userinfo"),
            ("jwks_uri", "/oidc/jwks"),
            ("registration_endpoint", "/oidc/register"),
        ]:
            self.assertEqual(document.get(name), self.issuer + path, name)
        for name, values in [
            ("response_types_supported", ["code"]),
            ("grant_types_supported", ["authorization_code"]),
            ("code_challenge_methods_supported", ["S256"]),
            ("id_token_signing_alg_values_supported", ["RS256"]),
            ("subject_types_supported", ["public"]),
        ]:
            self.assertEqual(document.get(name), values, name)
        self.assertEqual(set(document["scopes_supported"]), {"openid", "profile"})
        self.assertEqual(
            set(document["token_endpoint_auth_methods_supported"]),
            {"client_secret_basic", "client_secret_post", "none"},
        )
        self.assertIs(document.get("authorization_response_iss_parameter_supported"), True)
        self.assertTrue(
            {"sub", "iss", "aud", "exp", "iat", "nonce", "auth_time",
             "preferred_username", "name", "profile"} <= set(document["claims_supported"]),
            document["claims_supported"],
        )

    def test_jwks_holds_the_signing_key(self) -> None:
        """
        The JWKS is public RSA keys only, and the ``kid`` in the header of
        an ID token names one of them, whose signature checks out.
        """
        from joserfc import jwt
        from joserfc.jwk import KeySet

        jwks = _requests().get(self.issuer + "/oidc/jwks", timeout=TIMEOUT).json()
        self.assertTrue(jwks["keys"])
        for key in jwks["keys"]:
            self.assertEqual(key["kty"], "RSA")
            self.assertTrue(key.get("kid"))
            for private in ("d", "p", "q", "dp", "dq", "qi"):
                self.assertNotIn(private, key)

        client = HandMadeClient(self.server)
        code, verifier = self.approved_code(client)
        response = client.token(code, verifier)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.headers.get("Cache-Control"), "no-store")
        id_token = response.json()["id_token"]
        header = jwt_header(id_token)
        self.assertEqual(header["alg"], "RS256")
        self.assertIn(header["kid"], [key["kid"] for key in jwks["keys"]])
        token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256"])
        self.assertEqual(token.claims["iss"], self.issuer)
        self.assertEqual(token.claims["sub"], "alice")

    def test_auth_time_is_the_sign_in(self) -> None:
        """
        The ID token's ``auth_time`` is when Alice typed her password, not
        when the code was made (OpenID Connect Core 2).
        """
        from joserfc import jwt
        from joserfc.jwk import KeySet

        client = HandMadeClient(self.server)
        self.assertEqual(self.browser.sign_in().status_code, 303)
        signed_in = int(time.time())
        time.sleep(2.1)
        url = client.authorization_url()
        state = parse_qs(urlsplit(url).query)["state"][0]
        answer = self.browser.decide(self.browser.get(url), "approve")
        code = callback_parameters(answer.headers["Location"])["code"]
        response = client.token(code, client.requests[state][1])
        self.assertEqual(response.status_code, 200, response.text)
        jwks = _requests().get(self.issuer + "/oidc/jwks", timeout=TIMEOUT).json()
        claims = jwt.decode(
            response.json()["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"]
        ).claims
        self.assertLessEqual(claims["auth_time"], signed_in)


    def test_webfinger_names_the_issuer(self) -> None:
        """
        WebFinger for ``acct:alice@HOST:PORT`` links to this server as the
        OpenID Connect issuer.
        """
        authority = urlsplit(self.issuer).netloc
        response = _requests().get(
            self.issuer + "/.well-known/webfinger",
            params={"resource": f"acct:alice@{authority}"},
            timeout=TIMEOUT,
        )
        self.assertEqual(response.status_code, 200, response.text)
        links = response.json()["links"]
        self.assertIn(
            {"rel": "http://openid.net/specs/connect/1.0/issuer", "href": self.issuer},
            [{"rel": link.get("rel"), "href": link.get("href")} for link in links],
        )

    def test_webfinger_rel(self) -> None:
        """
        ``rel`` (repeatable) keeps only the links of those relations (RFC
        7033 section 4.3); a relation the user has none of leaves an empty
        list; without ``rel``, every link.
        """
        authority = urlsplit(self.issuer).netloc
        resource = ("resource", f"acct:alice@{authority}")
        issuer_rel = "http://openid.net/specs/connect/1.0/issuer"

        def rels(*asked: str) -> list[str]:
            response = _requests().get(
                self.issuer + "/.well-known/webfinger",
                params=[resource, *(("rel", rel) for rel in asked)], timeout=TIMEOUT,
            )
            self.assertEqual(response.status_code, 200, response.text)
            self.assertEqual(response.json()["subject"], f"acct:alice@{authority}")
            return [link["rel"] for link in response.json()["links"]]

        everything = rels()
        self.assertIn(issuer_rel, everything)
        self.assertIn("alternate", everything)
        self.assertEqual(rels(issuer_rel), [issuer_rel])
        self.assertEqual(sorted(rels(issuer_rel, "alternate")), sorted([issuer_rel, "alternate"]))
        self.assertEqual(rels("http://example.com/no-such-rel"), [])


# Misuse


class AuthorizationRequestTests(ProviderTestCase):
    """
    Authorization requests the provider must refuse, from a signed-in
    browser (where a good request would show the consent page).
    """

    def setUp(self) -> None:
        super().setUp()
        self.client = HandMadeClient(self.server)
        self.assertEqual(self.browser.sign_in().status_code, 303)

    def refused(self, drop: tuple[str, ...] = (), **overrides: str) -> None:
        url = self.client.authorization_url(drop, **overrides)
        state = parse_qs(urlsplit(url).query)["state"][0]
        self.assertRefusedRequest(self.browser.get(url), state)
        self.assertNoTraceback()

    def test_good_request_shows_consent(self) -> None:
        """
        The control: the same browser and client with a good request get
        the consent page, which names the asking server by its redirect
        host and cannot be framed.
        """
        page = self.browser.get(self.client.authorization_url())
        self.assertEqual(page.status_code, 200, page.text)
        self.assertEqual(page.headers.get("X-Frame-Options"), "DENY")
        self.assertIn(REDIRECT_HOST, page.text)
        form = form_to(page.text, "/oidc/authorize")
        self.assertTrue(form.fields.get("csrf"))
        self.assertTrue(form.fields.get("request"))
        self.assertIn(("decision", "approve"), form.buttons)
        self.assertIn(("decision", "deny"), form.buttons)

    def test_without_code_challenge(self) -> None:
        """
        No PKCE: refused.
        """
        self.refused(drop=("code_challenge", "code_challenge_method"))

    def test_without_code_challenge_method(self) -> None:
        """
        A challenge without a method means ``plain`` (RFC 7636 4.3):
        refused.
        """
        self.refused(drop=("code_challenge_method",))

    def test_plain_code_challenge(self) -> None:
        """
        ``code_challenge_method=plain``: refused.
        """
        verifier, _ = pkce_pair()
        self.refused(code_challenge=verifier, code_challenge_method="plain")

    def test_without_nonce(self) -> None:
        """
        No nonce: refused.
        """
        self.refused(drop=("nonce",))

    def test_without_redirect_uri(self) -> None:
        """
        No redirect URI: refused, as OpenID Connect Core 3.1.2.1 requires
        one (even of a client that registered only one).
        """
        self.refused(drop=("redirect_uri",))


    def test_prompt_none_without_consent(self) -> None:
        """
        ``prompt=none`` from a client Alice has not approved yet: an error
        page here, never a redirect to it (anyone may register a client, so
        ``consent_required`` sent back would make this an open redirector).
        Once she approved it, ``prompt=none`` goes straight back with a code
        (OpenID Connect Core 3.1.2.1).
        """
        self.assertErrorPage(
            self.browser.get(self.client.authorization_url(prompt="none")), "unapproved"
        )
        approved = self.browser.decide(
            self.browser.get(self.client.authorization_url()), "approve"
        )
        self.assertEqual(approved.status_code, 303, approved.text)
        url = self.client.authorization_url(prompt="none")
        answer = self.browser.get(url)
        self.assertEqual(answer.status_code, 303, answer.text)
        query = callback_parameters(answer.headers["Location"])
        self.assertTrue(query.get("code"), query)
        self.assertEqual(query.get("state"), parse_qs(urlsplit(url).query)["state"][0])


    def test_prompt_login(self) -> None:
        """
        ``prompt=login``: Alice is asked for her password again before the
        consent page (OpenID Connect Core 3.1.2.1).
        """
        answer = self.browser.get(self.client.authorization_url(prompt="login"))
        if answer.status_code == 303:
            self.assertEqual(urlsplit(answer.headers["Location"]).path, "/login")
        else:
            self.assertEqual(answer.status_code, 200, answer.text)
            self.assertNotIn('value="approve"', answer.text)
            form_to(answer.text, "/login")


    def test_unknown_client(self) -> None:
        """
        A client_id nobody registered, or none, gets an error page, never a
        redirect.
        """
        url = self.client.authorization_url(client_id="no-such-client")
        self.assertErrorPage(self.browser.get(url), "unknown client_id")
        url = self.client.authorization_url(drop=("client_id",))
        self.assertErrorPage(self.browser.get(url), "no client_id")
        self.assertNoTraceback()

    def test_unknown_client_signed_out(self) -> None:
        """
        Signed out, the same: an error page at once, not a detour through
        ``/login`` to an error page.
        """
        url = self.client.authorization_url(client_id="no-such-client")
        self.assertErrorPage(Browser(self.server).get(url), "unknown client_id, signed out")


    #: Near misses of REDIRECT_URI: another host, a prefix, a longer path,
    #: a query added, a trailing slash, another scheme, another port, a
    #: look-alike host.
    NEAR_MISSES = [
        "https://evil.example/login/callback",
        "https://rp.example/login/call",
        "https://rp.example/login",
        "https://rp.example/login/callback/extra",
        "https://rp.example/login/callback?next=https://evil.example/",
        "https://rp.example/login/callback/",
        "http://rp.example/login/callback",
        "https://rp.example:8443/login/callback",
        "https://rp.example.evil.example/login/callback",
        "https://RP.example/login/callback",
    ]

    def test_redirect_uri_not_registered(self) -> None:
        """
        A redirect URI that is not exactly a registered one gets an error
        page, never a redirect.
        """
        for redirect_uri in self.NEAR_MISSES:
            url = self.client.authorization_url(redirect_uri=redirect_uri)
            self.assertErrorPage(self.browser.get(url), redirect_uri)
        self.assertNoTraceback()

    def test_redirect_uri_not_registered_signed_out(self) -> None:
        """
        Signed out, the same: an error page at once.
        """
        for redirect_uri in self.NEAR_MISSES:
            url = self.client.authorization_url(redirect_uri=redirect_uri)
            self.assertErrorPage(Browser(self.server).get(url), redirect_uri + ", signed out")


    def test_deny(self) -> None:
        """
        Pressing deny sends the browser back with ``access_denied``, the
        state and ``iss``, and no code.
        """
        url = self.client.authorization_url()
        state = parse_qs(urlsplit(url).query)["state"][0]
        page = self.browser.get(url)
        answer = self.browser.decide(page, "deny")
        self.assertEqual(answer.status_code, 303, answer.text)
        query = callback_parameters(answer.headers["Location"])
        self.assertEqual(query.get("error"), "access_denied")
        self.assertEqual(query.get("state"), state)
        self.assertEqual(query.get("iss"), self.issuer)
        self.assertNotIn("code", query)

    def test_consent_without_csrf(self) -> None:
        """
        A consent POST without the form token (or with another one) is
        refused with 403 and sends the browser nowhere; the request can
        still be approved from the real form afterwards, once.
        """
        page = self.browser.get(self.client.authorization_url())
        form = form_to(page.text, "/oidc/authorize")
        without = {k: v for k, v in form.fields.items() if k != "csrf"}
        for fields in (without, dict(without, csrf="0" * 64)):
            answer = self.browser.post("/oidc/authorize", dict(fields, decision="approve"))
            self.assertEqual(answer.status_code, 403, answer.text)
            self.assertNotIn("Location", answer.headers)
        answer = self.browser.decide(page, "approve")
        self.assertEqual(answer.status_code, 303, answer.text)
        self.assertIn("code", callback_parameters(answer.headers["Location"]))
        self.assertNoTraceback()


class TokenRequestTests(ProviderTestCase):
    """
    Token requests the provider must refuse.
    """

    def setUp(self) -> None:
        super().setUp()
        self.client = HandMadeClient(self.server)

    def assertInvalidGrant(self, response: Any) -> None:
        self.assertEqual(response.status_code, 400, response.text)
        body = response.json()
        self.assertEqual(body.get("error"), "invalid_grant", body)
        self.assertNotIn("access_token", body)
        self.assertNotIn("id_token", body)

    def userinfo(self, access_token: str) -> Any:
        return _requests().get(
            self.issuer + "/oidc/userinfo",
            headers={"Authorization": "Bearer " + access_token},
            timeout=TIMEOUT,
        )

    def test_wrong_code_verifier(self) -> None:
        """
        The right code with a verifier that does not match the challenge,
        or none at all: ``invalid_grant``, no token.
        """
        code, verifier = self.approved_code(self.client)
        other, _ = pkce_pair()
        self.assertInvalidGrant(self.client.token(code, other))
        response = self.client.token(code, None)
        self.assertEqual(response.status_code, 400, response.text)
        self.assertIn(response.json().get("error"), ("invalid_grant", "invalid_request"))
        self.assertNotIn("access_token", response.json())
        self.assertNoTraceback()

    def test_code_used_twice(self) -> None:
        """
        A code is good once: the second exchange, even with the right
        verifier, gets ``invalid_grant``.
        """
        code, verifier = self.approved_code(self.client)
        first = self.client.token(code, verifier)
        self.assertEqual(first.status_code, 200, first.text)
        self.assertEqual(self.userinfo(first.json()["access_token"]).status_code, 200)
        self.assertInvalidGrant(self.client.token(code, verifier))
        self.assertNoTraceback()

    def test_code_used_twice_revokes_the_token(self) -> None:
        """
        A code seen a second time may have been stolen: the access token
        its first use bought stops working (RFC 6749 4.1.2, RFC 9700
        4.5.1).
        """
        code, verifier = self.approved_code(self.client)
        first = self.client.token(code, verifier)
        self.assertEqual(first.status_code, 200, first.text)
        self.assertInvalidGrant(self.client.token(code, verifier))
        self.assertEqual(self.userinfo(first.json()["access_token"]).status_code, 401)

    def test_other_redirect_uri(self) -> None:
        """
        The token request must name the redirect URI of the authorization
        request (RFC 6749 4.1.3).
        """
        other = "https://rp.example/other"
        client = HandMadeClient(self.server, redirect_uris=(REDIRECT_URI, other))
        code, verifier = self.approved_code(client)
        self.assertInvalidGrant(client.token(code, verifier, redirect_uri=other))
        self.assertNoTraceback()

    def test_code_of_another_client(self) -> None:
        """
        A code issued to one client is worth nothing to another.
        """
        code, verifier = self.approved_code(self.client)
        thief = HandMadeClient(self.server)
        self.assertInvalidGrant(thief.token(code, verifier))
        self.assertNoTraceback()

    def test_wrong_client_secret(self) -> None:
        """
        A wrong client secret: 401 ``invalid_client``, no token.
        """
        code, verifier = self.approved_code(self.client)
        self.client.client_secret = "wrong"
        response = self.client.token(code, verifier)
        self.assertEqual(response.status_code, 401, response.text)
        self.assertEqual(response.json().get("error"), "invalid_client")
        self.assertNotIn("access_token", response.json())
        # RFC 6749 5.2: the client tried HTTP Basic, so the 401 says how.
        self.assertTrue(
            response.headers.get("WWW-Authenticate", "").startswith("Basic"), response.headers
        )

    def test_public_client(self) -> None:
        """
        A client registered with ``token_endpoint_auth_method=none`` gets
        no secret and exchanges its code with its client_id and the PKCE
        verifier alone; without the verifier it gets nothing.
        """
        client = HandMadeClient(self.server, auth_method="none")
        self.assertFalse(client.client_secret)
        code, verifier = self.approved_code(client)
        self.assertEqual(client.token(code, None).status_code, 400)
        response = client.token(code, verifier)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(self.userinfo(response.json()["access_token"]).json()["sub"], "alice")

    def test_userinfo_needs_a_token(self) -> None:
        """
        userinfo without a token, or with a made-up one: 401 with a
        ``WWW-Authenticate: Bearer`` challenge.
        """
        for headers in ({}, {"Authorization": "Bearer made-up"}):
            response = _requests().get(
                self.issuer + "/oidc/userinfo", headers=headers, timeout=TIMEOUT
            )
            self.assertEqual(response.status_code, 401, response.text)
            self.assertTrue(
                response.headers.get("WWW-Authenticate", "").startswith("Bearer"),
                response.headers,
            )


class RegistrationTests(ProviderTestCase):
    """
    Dynamic registration (RFC 7591) refuses what cannot be a client.
    """

    def test_redirect_uris_required(self) -> None:
        """
        No redirect URIs, or one that is not an absolute URL (or has a
        fragment): 400 with an RFC 7591 error.
        """
        for redirect_uris in ([], ["/relative"], ["https://rp.example/cb#fragment"]):
            response = _requests().post(
                self.issuer + "/oidc/register",
                json={"client_name": "bad", "redirect_uris": redirect_uris},
                timeout=TIMEOUT,
            )
            with self.subTest(redirect_uris=redirect_uris):
                self.assertEqual(response.status_code, 400, response.text)
                self.assertIn(
                    response.json().get("error"),
                    ("invalid_redirect_uri", "invalid_client_metadata"),
                )
        self.assertNoTraceback()

    def test_supported_subset_registered(self) -> None:
        """
        A relying party asking for the implicit and refresh grants (and
        the token response types) besides the code flow is registered
        with what this provider supports (RFC 7591 section 3.2.1), and
        the answer says so.
        """
        response = _requests().post(
            self.issuer + "/oidc/register",
            json={
                "client_name": "Greedy",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "implicit", "refresh_token"],
                "response_types": ["code", "id_token", "token id_token"],
            },
            timeout=TIMEOUT,
        )
        self.assertEqual(response.status_code, 201, response.text)
        registration = response.json()
        self.assertEqual(registration["grant_types"], ["authorization_code"])
        self.assertEqual(registration["response_types"], ["code"])

    def test_nothing_supported_refused(self) -> None:
        """
        A registration none of whose grant types (or response types) is
        supported here is refused, naming the field.
        """
        for field, value in (("grant_types", ["implicit"]), ("response_types", ["token"]),
                             ("grant_types", "authorization_code")):
            response = _requests().post(
                self.issuer + "/oidc/register",
                json={"client_name": "Implicit", "redirect_uris": [REDIRECT_URI],
                      field: value},
                timeout=TIMEOUT,
            )
            with self.subTest(field=field, value=value):
                self.assertEqual(response.status_code, 400, response.text)
                self.assertEqual(response.json()["error"], "invalid_client_metadata")
                self.assertIn(field, response.json()["error_description"])
        self.assertNoTraceback()


class SignInPageTests(ProviderTestCase):
    """
    The sign-in page the provider sends browsers to.
    """

    def test_sign_in_headers_and_cookie(self) -> None:
        """
        ``/login`` cannot be framed; signing in sets a session cookie that
        is HttpOnly and SameSite=Lax (not Secure: this is plain http).
        """
        page = self.browser.get("/login")
        self.assertEqual(page.status_code, 200)
        self.assertEqual(page.headers.get("X-Frame-Options"), "DENY")
        answer = self.browser.sign_in()
        self.assertEqual(answer.status_code, 303, answer.text)
        cookies = set_cookies(answer)
        self.assertIn("dw_session", cookies)
        attributes = cookie_attributes(cookies["dw_session"])
        self.assertIn("httponly", attributes)
        self.assertIn("samesite=lax", attributes)

    def test_next_stays_on_the_site(self) -> None:
        """
        ``next`` naming another site, as the sign-in page's query or as a
        posted field, never takes the browser off the site: after sign-in
        the redirect is a local path.
        """
        for evil in ["//evil.example/", "https://evil.example/", "/\\evil.example/",
                     "http:evil.example", " //evil.example/"]:
            with self.subTest(next=evil):
                browser = Browser(self.server)
                answer = browser.sign_in("/login?" + urlencode({"next": evil}))
                self.assertLocalRedirect(answer)
                browser = Browser(self.server)
                form = form_to(browser.get("/login").text, "/login")
                answer = browser.post("/login", dict(
                    form.fields, handle=HANDLE, password=PASSWORD, next=evil))
                self.assertLocalRedirect(answer)

    def assertLocalRedirect(self, answer: Any) -> None:
        self.assertEqual(answer.status_code, 303, answer.text)
        location = answer.headers["Location"]
        parts = urlsplit(location)
        self.assertEqual((parts.scheme, parts.netloc), ("", ""), location)
        self.assertTrue(location.startswith("/") and not location.startswith("//"), location)
        self.assertNotIn("\\", location)
        self.assertNotIn("evil", location)

    def test_prompt_none_signed_out(self) -> None:
        """
        ``prompt=none`` from a signed-out browser: an error page, neither
        the sign-in page nor a redirect to a client nobody here is known to
        have approved.
        """
        client = HandMadeClient(self.server)
        self.assertErrorPage(self.browser.get(client.authorization_url(prompt="none")))


    def test_authorize_sends_to_login_with_next(self) -> None:
        """
        A signed-out authorization request goes to ``/login`` with the
        request as ``next``, and signing in comes back to it.
        """
        client = HandMadeClient(self.server)
        url = client.authorization_url()
        first = self.browser.get(url)
        self.assertEqual(first.status_code, 303, first.text)
        login = urlsplit(urljoin(self.issuer, first.headers["Location"]))
        self.assertEqual(login.path, "/login")
        next_path = parse_qs(login.query)["next"][0]
        self.assertTrue(next_path.startswith("/oidc/authorize?"), next_path)
        # The request comes back whole, with when it was made (so that the
        # sign-in about to happen counts as fresh for prompt=login).
        back = parse_qs(urlsplit(next_path).query)
        [made] = back.pop("login_after")
        self.assertTrue(made.isdigit(), made)
        self.assertEqual(back, parse_qs(urlsplit(url).query))
        answer = self.browser.sign_in(first.headers["Location"])
        self.assertEqual(answer.status_code, 303)
        self.assertEqual(answer.headers["Location"], next_path)
