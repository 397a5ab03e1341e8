"""
What the registry role needs of its storage: the list of ping servers on
disk (:class:`~distwit.registry.store.SQLRegistryStore` and, for tests,
:class:`~distwit.registry.store.MemoryRegistryStore` provide it).
"""

from __future__ import annotations

from zope.interface import Interface


class IRegistryStore(Interface):
    """
    The registry's list of ping servers on disk.
    """

    def upsert(public_url, public_key, now):
        """
        Record a registration or heartbeat: a new row (first seen and last
        heard ``now``), or the key and last heard time of an existing one
        (its first seen time kept).

        :return: Deferred firing with None once it is written.
        """

    def remove(public_url):
        """
        Forget a ping server (nothing happens if it is not there).

        :return: Deferred firing with None once it is written.
        """

    def all():
        """
        :return: Deferred firing with every :class:`RegistryEntry`, sorted
            by URL.
        """

    def close():
        """
        Release the file; no call may follow.

        :return: Deferred firing with None.
        """
