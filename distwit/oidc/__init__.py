"""
OpenID Connect: the provider for this server's users and the relying party for
visitors from other servers.
"""
