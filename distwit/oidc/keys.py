"""
The keys that sign this server's ID tokens.

They live in ``oidc-keys.json`` in the data folder, newest last: the newest
signs, the others are still published in the JWKS so that tokens signed
just before a rotation can be checked.  ``distwit rotate-oidc-key`` adds a
new key and keeps the previous one; older keys are dropped.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

#: The file in the data folder.

#: The algorithm ID tokens are signed with: RS256, which every OpenID
#: Connect relying party must understand.
ALGORITHM = "RS256"

#: Keys kept after a rotation (the signing one and its predecessor).
KEEP = 2


def _new_key() -> RSAKey:
    key = RSAKey.generate_key(2048, {"use": "sig", "alg": ALGORITHM}, private=True, auto_kid=True)
    return key


class SigningKeys:
    """
    The ID-token keys of one server, loaded from (or first made in) its data
    folder.

    :param path: the keys file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        if not os.path.exists(path):
            self._write([self._entry(_new_key())])
        self._keys = self._read()

    @staticmethod
    def _entry(key: RSAKey) -> dict[str, Any]:
        return {"created": int(time.time()), "jwk": key.as_dict(private=True)}

    def _read(self) -> list[RSAKey]:
        try:
            with open(self.path, encoding="utf-8") as f:
                entries = json.load(f)
            keys = [RSAKey.import_key(entry["jwk"]) for entry in entries]
        except (OSError, ValueError, KeyError, TypeError, JoseError) as e:
            raise ValueError(f"{self.path}: not a distwit ID-token key file ({e})") from None
        if not keys or not all(key.is_private for key in keys):
            raise ValueError(f"{self.path}: no private key")
        return keys

    def _write(self, entries: list[dict[str, Any]]) -> None:
        temporary = self.path + ".new"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as f:
            json.dump(entries, f, indent=1)
        os.replace(temporary, self.path)

    def rotate(self) -> str:
        """
        Make a new signing key, keep the previous one for checking, drop the
        rest.  A running server picks the new key up when restarted.

        :return: the new key's ``kid``.
        """
        with open(self.path, encoding="utf-8") as f:
            entries = json.load(f)
        key = _new_key()
        entries = [*entries, self._entry(key)][-KEEP:]
        self._write(entries)
        self._keys = self._read()
        return str(key.kid)

    @property
    def signing_key(self) -> RSAKey:
        return self._keys[-1]

    @property
    def kid(self) -> str:
        return str(self.signing_key.kid)

    def public_jwks(self) -> dict[str, Any]:
        """
        The JWKS document: every kept key, public parts only.
        """
        keys = []
        for key in self._keys:
            public = key.as_dict(private=False)
            public.setdefault("use", "sig")
            public.setdefault("alg", ALGORITHM)
            keys.append(public)
        return {"keys": keys}
