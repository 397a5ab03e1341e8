"""
The OAuth 1.0a quirks of the clients of 2008-2013 (issue 15): token
endpoints taken by GET as well as POST, also under ``/1.1/oauth/``;
errors in Twitter's JSON, never an HTML page; OAuth and xAuth parameters
sent in more than one place; seven-digit PINs.

Requests are signed by oauthlib's own client, or, where a client of the
time signed in a way oauthlib's client does not, by oauthlib's signature
functions on parameters put together here.
"""

from __future__ import annotations

import configparser
import json
import os
import re
from importlib import metadata
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from oauthlib.oauth1 import SIGNATURE_TYPE_QUERY
from packaging.requirements import Requirement
from packaging.version import Version
from twisted.trial.unittest import SynchronousTestCase
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from tests.test_api import BASE, PASSWORDS
from tests.test_oauth1 import FORM, OAuthTestCase


def _answer(content: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(content.decode()).items()}


class QuirkTestCase(OAuthTestCase):
    def request_token(self, method: str = "GET", prefix: str = "",
                      callback: str = "oob") -> dict[str, str]:
        client = self.client(resource_owner_key=None, resource_owner_secret=None,
                             callback_uri=callback)
        uri, headers, _ = client.sign(BASE + prefix + "/oauth/request_token", method)
        code, content, _ = self.send(method, uri, headers)
        self.assertEqual(code, 200, content)
        answer = _answer(content)
        self.assertEqual(answer["oauth_callback_confirmed"], "true")
        return answer

    def pin(self, token: str, prefix: str = "") -> str:
        code, page, _ = self.send("GET", f"{BASE}{prefix}/oauth/authorize?oauth_token={token}")
        self.assertEqual(code, 200, page)
        csrf = re.search(rb"name='csrf' value='([0-9a-f]+)'", page).group(1).decode()
        form = {"oauth_token": token, "csrf": csrf, "session[username_or_email]": "alice",
                "session[password]": PASSWORDS["alice"], "allow": "1"}
        code, page, _ = self.send("POST", f"{BASE}{prefix}/oauth/authorize", FORM,
                                  urlencode(form))
        self.assertEqual(code, 200, page)
        return re.search(rb"<code>([^<]*)</code>", page).group(1).decode()

    def access_token(self, token: dict[str, str], verifier: str, method: str = "GET",
                     prefix: str = "", **options: Any) -> tuple[int, bytes]:
        client = self.client(resource_owner_key=token["oauth_token"],
                             resource_owner_secret=token["oauth_token_secret"],
                             verifier=verifier, **options)
        uri, headers, _ = client.sign(BASE + prefix + "/oauth/access_token", method)
        code, content, _ = self.send(method, uri, headers)
        return code, content

    def works(self, answer: dict[str, str]) -> None:
        code, body = self.signed("GET", "/1.1/account/verify_credentials.json",
                                 resource_owner_key=answer["oauth_token"],
                                 resource_owner_secret=answer["oauth_token_secret"])
        self.assertEqual((code, body["screen_name"]), (200, "alice"))

    def hand_signed(self, method: str, path: str, header: dict[str, str],
                    body: dict[str, str] | None = None, query: dict[str, str] | None = None,
                    twice: bool = False) -> tuple[int, Any]:
        """
        A request signed here: the ``oauth_*`` protocol parameters (added)
        and ``header`` in the Authorization header, ``body`` as a form,
        ``query`` in the URL.  The signature base string counts a parameter
        sent in two places once, or with ``twice`` as often as it is sent.
        """
        self.nonce += 1
        protocol = {
            "oauth_consumer_key": self.key,
            "oauth_nonce": f"hand{self.nonce}",
            "oauth_timestamp": str(int(self.clock.seconds())),
            "oauth_signature_method": "HMAC-SHA1",
            "oauth_version": "1.0",
            **header,
        }
        sent = [*protocol.items(), *(body or {}).items(), *(query or {}).items()]
        counted = sent if twice else list(dict.fromkeys(sent))
        url = BASE + path
        base = oauth_signature.signature_base_string(
            method, oauth_signature.base_string_uri(url),
            oauth_signature.normalize_parameters(counted),
        )
        token_secret = self.token_secret if "oauth_token" in protocol else ""
        protocol["oauth_signature"] = oauth_signature.sign_hmac_sha1(
            base, self.secret, token_secret
        )
        authorization = "OAuth " + ", ".join(
            f'{oauth_utils.escape(k)}="{oauth_utils.escape(v)}"' for k, v in protocol.items()
        )
        if query:
            url += "?" + urlencode(query, quote_via=quote)
        headers = {"Authorization": authorization}
        if body is not None:
            headers.update(FORM)
        code, content, _ = self.send(method, url, headers,
                                     urlencode(body, quote_via=quote) if body else None)
        try:
            return code, json.loads(content)
        except ValueError:
            return code, _answer(content)


class TokenEndpointTests(QuirkTestCase):
    def test_pin_by_get(self) -> None:
        """
        PIN sign-in with GET on request_token and access_token, as most
        clients of the time did; the PIN is seven digits.
        """
        token = self.request_token("GET")
        pin = self.pin(token["oauth_token"])
        self.assertRegex(pin, r"\A[0-9]{7}\Z")
        code, content = self.access_token(token, pin, "GET")
        self.assertEqual(code, 200, content)
        answer = _answer(content)
        self.assertEqual(answer["screen_name"], "alice")
        self.works(answer)

    def test_signed_in_the_query(self) -> None:
        """
        GET with the OAuth parameters in the query string (no header).
        """
        client = self.client(resource_owner_key=None, resource_owner_secret=None,
                             callback_uri="oob", signature_type=SIGNATURE_TYPE_QUERY)
        uri, headers, _ = client.sign(BASE + "/oauth/request_token", "GET")
        code, content, _ = self.send("GET", uri, headers)
        self.assertEqual(code, 200, content)
        token = _answer(content)
        pin = self.pin(token["oauth_token"])
        code, content = self.access_token(token, pin, "GET",
                                          signature_type=SIGNATURE_TYPE_QUERY)
        self.assertEqual(code, 200, content)

    def test_under_1_1(self) -> None:
        """
        ``/1.1/oauth/request_token``, ``authorize``, ``authenticate`` and
        ``access_token``, signed for those URLs.
        """
        token = self.request_token("POST", prefix="/1.1")
        code, page, _ = self.send(
            "GET", f"{BASE}/1.1/oauth/authenticate?oauth_token={token['oauth_token']}"
        )
        self.assertEqual(code, 200, page)
        self.assertIn(b"Test App", page)
        pin = self.pin(token["oauth_token"], prefix="/1.1")
        code, content = self.access_token(token, pin, "POST", prefix="/1.1")
        self.assertEqual(code, 200, content)
        self.works(_answer(content))

    def test_other_methods_and_paths(self) -> None:
        """
        A method the token endpoints do not take, or a path under /oauth/
        that is none of them: Twitter's JSON errors, never an HTML page.
        """
        for method, path, status in (("PUT", "/oauth/request_token", 405),
                                     ("DELETE", "/1.1/oauth/access_token", 405),
                                     ("GET", "/oauth/nothing_here", 404),
                                     ("GET", "/1.1/oauth/nothing_here", 404)):
            code, content, response = self.send(method, BASE + path)
            with self.subTest(method=method, path=path):
                self.assertEqual(code, status, content)
                self.assertEqual(response.headers.getRawHeaders("content-type")[0].split(";")[0],
                                 "application/json")
                self.assertEqual(json.loads(content)["errors"][0]["code"], 34)
        _, _, response = self.send("PUT", BASE + "/oauth/request_token")
        self.assertEqual(response.headers.getRawHeaders("allow"), ["GET, HEAD, POST"])

    def test_errors_are_json(self) -> None:
        """
        A bad signature on a token endpoint, by GET: 401 with code 32.
        """
        client = self.client(resource_owner_key=None, resource_owner_secret=None,
                             callback_uri="oob", client_secret="not the secret")
        uri, headers, _ = client.sign(BASE + "/oauth/request_token", "GET")
        code, content, _ = self.send("GET", uri, headers)
        self.assertEqual(code, 401, content)
        self.assertEqual(json.loads(content)["errors"][0]["code"], 32)

    def test_xauth_by_get(self) -> None:
        """
        xAuth with its parameters in the query of a GET.
        """
        query = {"x_auth_mode": "client_auth", "x_auth_username": "alice",
                 "x_auth_password": PASSWORDS["alice"]}
        client = self.client(resource_owner_key=None, resource_owner_secret=None)
        uri, headers, _ = client.sign(BASE + "/oauth/access_token?" + urlencode(query), "GET")
        code, content, _ = self.send("GET", uri, headers)
        self.assertEqual(code, 200, content)
        self.works(_answer(content))

    def test_xauth_in_the_header(self) -> None:
        """
        xAuth with the ``x_auth_*`` parameters in the Authorization header
        only.
        """
        code, answer = self.hand_signed("POST", "/oauth/access_token", {
            "x_auth_mode": "client_auth", "x_auth_username": "alice",
            "x_auth_password": PASSWORDS["alice"],
        })
        self.assertEqual(code, 200, answer)
        self.works(answer)


class DuplicateParameterTests(QuirkTestCase):
    XAUTH = {"x_auth_mode": "client_auth", "x_auth_username": "alice",
             "x_auth_password": PASSWORDS["alice"]}

    def test_same_in_header_and_body(self) -> None:
        """
        The ``x_auth_*`` parameters both in the header and in the body,
        alike: counted once in the signature base string (as Twitter
        did), or as often as sent (as RFC 5849 has it); both sign in.
        """
        for twice in (False, True):
            code, answer = self.hand_signed("POST", "/oauth/access_token", dict(self.XAUTH),
                                            body=dict(self.XAUTH), twice=twice)
            with self.subTest(twice=twice):
                self.assertEqual(code, 200, answer)
                self.assertEqual(answer["screen_name"], "alice")

    def test_same_oauth_parameters_in_header_and_query(self) -> None:
        """
        An API call with ``oauth_token`` and ``oauth_consumer_key`` in the
        header and the query alike.
        """
        code, body = self.hand_signed(
            "GET", "/1.1/account/verify_credentials.json", {"oauth_token": self.token},
            query={"oauth_token": self.token, "oauth_consumer_key": self.key},
        )
        self.assertEqual((code, body.get("screen_name")), (200, "alice"), body)

    def test_conflicting_values_refused(self) -> None:
        """
        One parameter with different values in two places: 401, code 32,
        and the message names it.
        """
        for name, other in (("x_auth_username", "bob"), ("x_auth_password", "guess"),
                            ("oauth_token", "someone-elses-token")):
            header = dict(self.XAUTH)
            body = dict(self.XAUTH)
            if name == "oauth_token":
                header["oauth_token"] = self.token
            body[name] = other
            code, answer = self.hand_signed("POST", "/oauth/access_token", header, body=body)
            with self.subTest(name=name):
                self.assertEqual(code, 401, answer)
                error = answer["errors"][0]
                self.assertEqual(error["code"], 32)
                self.assertIn(name, error["message"])

    def test_changed_body_still_refused(self) -> None:
        """
        Counting duplicates once lets nothing unsigned through: with the
        ``x_auth_*`` parameters in the header, a body changed after
        signing is refused.
        """
        code, answer = self._tampered(dict(self.XAUTH), {"status": "signed"},
                                      {"status": "changed"})
        self.assertEqual(code, 401, answer)
        self.assertEqual(answer["errors"][0]["code"], 32)

    def _tampered(self, header: dict[str, str], signed_body: dict[str, str],
                  sent_body: dict[str, str]) -> tuple[int, Any]:
        original = self.send

        def swap(method: str, url: str, headers: dict[str, str] | None = None,
                 body: str | None = None, follow: bool = False) -> tuple[int, bytes, Any]:
            return original(method, url, headers, urlencode(sent_body), follow)

        self.send = swap  # type: ignore[method-assign]
        try:
            return self.hand_signed("POST", "/oauth/access_token", header, body=signed_body)
        finally:
            self.send = original  # type: ignore[method-assign]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class DependencyTests(SynchronousTestCase):
    def test_test_extra_changes_no_runtime_version(self) -> None:
        """
        ``pip install '.[test]'`` installs the versions ``pip install .``
        does: no package the test extra brings (or they bring) caps a
        runtime dependency below what install_requires allows (tweepy
        caps oauthlib below 4, so install_requires does too).
        """
        config = configparser.ConfigParser()
        config.read(os.path.join(os.path.dirname(os.path.dirname(__file__)), "setup.cfg"))
        runtime: dict[str, Requirement] = {}
        for line in config["options"]["install_requires"].strip().splitlines():
            requirement = Requirement(line.strip())
            runtime[_canonical(requirement.name)] = requirement
        queue = [Requirement(line.strip()).name
                 for line in config["options.extras_require"]["test"].strip().splitlines()]
        seen: set[str] = set()
        caps: list[tuple[str, Requirement]] = []
        while queue:
            name = _canonical(queue.pop())
            if name in seen or name in runtime or name == "distwit":
                continue
            seen.add(name)
            try:
                requires = metadata.requires(name) or []
            except metadata.PackageNotFoundError:
                continue
            for line in requires:
                requirement = Requirement(line)
                if requirement.marker is not None and not requirement.marker.evaluate(
                    {"extra": ""}
                ):
                    continue
                if _canonical(requirement.name) in runtime:
                    caps.append((name, requirement))
                else:
                    queue.append(requirement.name)
        self.assertTrue(caps, "no test dependency requires a runtime one: nothing checked")
        for by, requirement in caps:
            ours = runtime[_canonical(requirement.name)]
            for spec in requirement.specifier:
                if spec.operator not in ("<", "<=", "=="):
                    continue
                bounds = [Version(s.version) for s in ours.specifier
                          if s.operator in ("<", "<=", "==")]
                with self.subTest(by=by, requirement=str(requirement)):
                    self.assertTrue(
                        bounds and min(bounds) <= Version(spec.version.rstrip(".*")),
                        f"{by} requires {requirement}; install_requires says {ours}",
                    )
