"""
Server-to-server: each server's identity (an Ed25519 key and a metadata
document), signed requests (RFC 9421 HTTP Message Signatures) and the
HTTP client that sends them.
"""
