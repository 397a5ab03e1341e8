"""
Published test vectors, copied from the RFCs (line wrapping of RFC 8792
undone).

- RFC 9421 (HTTP Message Signatures), Appendix B.1.4: the Ed25519 test key
  ``test-key-ed25519``; Appendix B.2: the test request; Appendix B.2.6:
  signing it with Ed25519.
- RFC 9530 (Digest Fields), Appendix B.1: Content-Digest of
  ``{"hello": "world"}`` followed by a line feed.
"""

from __future__ import annotations

#: RFC 9421 B.1.4: test-key-ed25519, private key (PKCS#8 PEM).
ED25519_PRIVATE_PEM = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
"""

#: RFC 9421 B.1.4: the same key as a JWK: ``x`` is the public key.
ED25519_JWK_X = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"

ED25519_KEY_ID = "test-key-ed25519"

#: RFC 9421 B.2: the test request (``POST /foo?param=Value&Pet=dog``).
TEST_REQUEST_METHOD = "POST"
TEST_REQUEST_URL = "https://example.com/foo?param=Value&Pet=dog"
TEST_REQUEST_HEADERS = {
    "Host": "example.com",
    "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
    "Content-Type": "application/json",
    "Content-Digest": (
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BN"
        "NyealdVLvRwEmTHWXvJwew==:"
    ),
    "Content-Length": "18",
}
TEST_REQUEST_BODY = b'{"hello": "world"}'

#: RFC 9421 B.2.6: what the signature covers, and its parameters.
B26_LABEL = "sig-b26"
B26_COVERED = ("date", "@method", "@path", "@authority", "content-type", "content-length")
B26_CREATED = 1618884473

#: RFC 9421 B.2.6: the signature base.
B26_SIGNATURE_BASE = (
    '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    '"@method": POST\n'
    '"@path": /foo\n'
    '"@authority": example.com\n'
    '"content-type": application/json\n'
    '"content-length": 18\n'
    '"@signature-params": ("date" "@method" "@path" "@authority"'
    ' "content-type" "content-length");created=1618884473'
    ';keyid="test-key-ed25519"'
).encode("ascii")

#: RFC 9421 B.2.6: the header fields added.
B26_SIGNATURE_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type"'
    ' "content-length");created=1618884473;keyid="test-key-ed25519"'
)
B26_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1"
    "u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
)

#: RFC 9530 B.1: ``{"hello": "world"}`` and a line feed, and its digest.
DIGEST_B1_BODY = b'{"hello": "world"}\n'
DIGEST_B1_SHA256 = "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
