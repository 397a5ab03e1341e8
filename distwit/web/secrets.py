"""
The server's web secret: a random key in the data folder, made on first
start, used to derive CSRF tokens for visitors who are not signed in.
"""

from __future__ import annotations

import os


def load_or_create_secret(path: str) -> bytes:
    """
    The 32-byte secret kept in the file ``path``
    (:attr:`distwit.config.DataFolder.web_secret`), created (mode 0600) if
    missing.
    """
    try:
        with open(path, "rb") as f:
            secret = f.read()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    secret = os.urandom(32)
    fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".new", path)
    return secret
