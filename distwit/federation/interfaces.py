"""
What the twitter role's federation side needs from elsewhere: where the
live ping servers are (:class:`IPingList`), and what copies the missing
messages of remote authors (:class:`IFetcher`).
"""

from __future__ import annotations

from zope.interface import Interface


class IPingList(Interface):
    """
    Where the live ping servers are.
    """

    def live_pings():
        """
        Deferred firing with the base URLs of the live ping servers.
        """


class IFetcher(Interface):
    """
    Copies what is missing of remote authors' messages
    (:class:`~distwit.federation.copier.Fetcher`); the sync service tells
    it whom to fetch.
    """

    def want(account):
        """
        Fetch what is missing of ``account`` (an
        :class:`~distwit.model.Account`) soon.
        """

    def sweep(limit=1000):
        """
        Want every remote author with a gap (at most ``limit`` of them):
        how failed ranges are retried.  A coroutine.
        """
