"""
The one authority of a public URL: what ``handle@authority`` says of a
server, the same wherever it is computed.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from distwit.urls import authority_of, authority_of_http_url

URLS = [
    "https://example.org",
    "https://Example.ORG/",
    "https://example.org:443",
    "http://example.org:80/x",
    "https://example.org:8443",
    "http://localhost:8080",
    "https://user:pw@example.org",
    "https://[::1]:8443",
    "https://[::1]",
]


class AuthorityTests(SynchronousTestCase):
    def test_one_authority(self) -> None:
        """
        A twitter server names its users with the authority the ping
        servers compute from the URL it signs with: lower case, no user
        information, the default port left out, an IPv6 host in brackets.
        """
        for url in URLS:
            self.assertEqual(authority_of(url), authority_of_http_url(url), url)
        self.assertEqual(
            [authority_of(url) for url in URLS],
            ["example.org", "example.org", "example.org", "example.org", "example.org:8443",
             "localhost:8080", "example.org", "[::1]:8443", "[::1]"],
        )

    def test_not_a_server_url(self) -> None:
        """
        What the ping servers read from the wire must be an http(s) URL
        with a host and a port in range; anything else is refused, never
        given an authority.
        """
        for url in ["ftp://s1.example", "s1.example", "http://", "http://s1:99999", ""]:
            with self.assertRaises(ValueError, msg=url):
                authority_of_http_url(url)
