"""
A server's long-lived signing key: Ed25519, kept in the data folder
(:attr:`distwit.config.DataFolder.server_key`).

The key is the server's identity towards other servers: every
server-to-server request is signed with it, and the metadata document
publishes its public half.  Losing the file means a new identity (peers
refetch the metadata and carry on), so it is created once, written
atomically, and readable by its owner only.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import tempfile

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from twisted.logger import Logger

log = Logger()

_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64url_encode(data: bytes) -> str:
    """
    Unpadded base64url (RFC 4648 section 5), as JOSE and our metadata use.
    """
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """
    The bytes of unpadded (or padded) base64url text.

    :raise ValueError: ``text`` is not base64url.
    """
    if not isinstance(text, str):
        raise ValueError("expected base64url text")
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("base64url text must be ASCII") from None
    raw = raw.rstrip(b"=")
    # Refuse the characters of the other alphabet and anything else the
    # lenient decoder would silently skip.
    if raw.translate(None, delete=_B64URL_ALPHABET):
        raise ValueError("not base64url: unexpected characters")
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url: bad length") from None


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    """
    An Ed25519 public key from its raw 32 bytes in unpadded base64url, as
    the metadata document gives it.

    :raise ValueError: ``text`` is not base64url of exactly 32 bytes.
    """
    raw = b64url_decode(text)
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


class ServerKey:
    """
    An Ed25519 private key and what a server does with it.
    """

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key

    @classmethod
    def generate(cls) -> ServerKey:
        """
        A new random key (not saved anywhere).
        """
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes) -> ServerKey:
        """
        A key from unencrypted PKCS#8 PEM.

        :raise ValueError: not PEM, encrypted, or not an Ed25519 key.
        """
        try:
            private_key = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise ValueError("the key is encrypted; distwit needs it unencrypted") from None
        except UnsupportedAlgorithm as e:
            raise ValueError(f"unsupported key: {e}") from None
        if not isinstance(private_key, Ed25519PrivateKey):
            raise ValueError(
                f"expected an Ed25519 key, found {type(private_key).__name__}"
            )
        return cls(private_key)

    @classmethod
    def load_or_create(cls, path: str) -> ServerKey:
        """
        The key in the file ``path``, created (mode 0600, written
        atomically, its folder made if missing) when there is none yet.

        :raise ValueError: the file exists but holds no usable key.
        :raise OSError: the folder or file cannot be read or written.
        """
        try:
            with open(path, "rb") as f:
                data = f.read()
                mode = os.fstat(f.fileno()).st_mode
        except FileNotFoundError:
            pass
        else:
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                log.warn(
                    "{path} can be read by others (mode {mode:o}); chmod 600 it",
                    path=path,
                    mode=stat.S_IMODE(mode),
                )
            try:
                return cls.from_pem(data)
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from None
        key = cls.generate()
        key._write(path)
        log.info("created a new server key in {path}", path=path)
        return key

    def _write(self, path: str) -> None:
        folder = os.path.dirname(path) or "."
        os.makedirs(folder, mode=0o700, exist_ok=True)
        # mkstemp creates the file with mode 0600; os.replace makes it appear
        # whole or not at all, even if we die half way.
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".server-key.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.private_pem())
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise

    def private_pem(self) -> bytes:
        """
        The private key as unencrypted PKCS#8 PEM.
        """
        return self._private_key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._private_key.public_key()

    def public_key_bytes(self) -> bytes:
        """
        The raw 32-byte public key.
        """
        return self.public_key.public_bytes(
            encoding=serialization.Encoding.Raw,
            format=serialization.PublicFormat.Raw,
        )

    def public_key_b64(self) -> str:
        """
        The raw public key in unpadded base64url, as published in the
        metadata document.
        """
        return b64url_encode(self.public_key_bytes())

    def sign(self, data: bytes) -> bytes:
        """
        The 64-byte Ed25519 signature of ``data``.
        """
        return self._private_key.sign(data)

    def __repr__(self) -> str:
        # Never the private half, not even in a traceback.
        return f"<ServerKey public={self.public_key_b64()}>"
