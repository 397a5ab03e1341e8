"""
The ID-token keys in the data folder, and ``distwit rotate-oidc-key``.
"""

from __future__ import annotations

import json
import os
import stat

from joserfc import jwt
from joserfc.jwk import KeySet
from twisted.trial.unittest import SynchronousTestCase

from distwit.config import DataFolder
from distwit.oidc.keys import SigningKeys

from tests.processes import run_cli


class SigningKeysTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.data = self.mktemp()
        os.makedirs(self.data)

    def test_made_once_and_kept_private(self) -> None:
        """
        The first start makes one key, readable by its owner only; the next
        start reads the same key.
        """
        keys = SigningKeys(DataFolder(self.data).oidc_keys)
        path = DataFolder(self.data).oidc_keys
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(SigningKeys(DataFolder(self.data).oidc_keys).kid, keys.kid)

    def test_jwks_is_public(self) -> None:
        published = SigningKeys(DataFolder(self.data).oidc_keys).public_jwks()["keys"]
        self.assertEqual(len(published), 1)
        self.assertEqual(published[0]["kty"], "RSA")
        self.assertEqual((published[0]["alg"], published[0]["use"]), ("RS256", "sig"))
        for private in ("d", "p", "q", "dp", "dq", "qi"):
            self.assertNotIn(private, published[0])

    def test_rotation(self) -> None:
        """
        A rotation signs with a new key and still publishes the previous
        one, so a token signed just before checks; the one before that goes.
        """
        keys = SigningKeys(DataFolder(self.data).oidc_keys)
        first = keys.kid
        token = jwt.encode({"alg": "RS256", "kid": first}, {"sub": "alice"}, keys.signing_key)
        second = keys.rotate()
        self.assertNotEqual(second, first)
        reread = SigningKeys(DataFolder(self.data).oidc_keys)
        self.assertEqual(reread.kid, second)
        published = KeySet.import_key_set(reread.public_jwks())
        self.assertEqual(jwt.decode(token, published).claims["sub"], "alice")
        keys.rotate()
        reread = SigningKeys(DataFolder(self.data).oidc_keys)
        kids = [k["kid"] for k in reread.public_jwks()["keys"]]
        self.assertEqual(len(kids), 2)
        self.assertNotIn(first, kids)
        self.assertIn(second, kids)

    def test_damaged_file(self) -> None:
        path = DataFolder(self.data).oidc_keys
        for content in ("not json", "[]", json.dumps([{"jwk": {"kty": "RSA"}}])):
            with open(path, "w") as f:
                f.write(content)
            with self.assertRaises(ValueError) as caught:
                SigningKeys(path)
            self.assertIn(path, str(caught.exception))

    def test_command(self) -> None:
        """
        ``distwit rotate-oidc-key --data DIR`` rotates the folder's keys and
        says what to do next.
        """
        before = SigningKeys(DataFolder(self.data).oidc_keys).kid
        done = run_cli("rotate-oidc-key", "--data", self.data)
        self.assertEqual(done.returncode, 0, done.stderr)
        after = SigningKeys(DataFolder(self.data).oidc_keys).kid
        self.assertNotEqual(after, before)
        self.assertEqual(
            done.stdout, f"new ID-token key {after}; restart the server to sign with it\n"
        )
        with open(DataFolder(self.data).oidc_keys, "w") as f:
            f.write("garbage")
        broken = run_cli("rotate-oidc-key", "--data", self.data)
        self.assertEqual(broken.returncode, 1)
        self.assertIn("not a distwit ID-token key file", broken.stderr)
