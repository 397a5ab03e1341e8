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

    def admissions():
        """
        :return: Deferred firing with every :class:`Admission` (approved
            and pending), sorted by authority.
        """

    def set_admission(admission):
        """
        Write ``admission`` whole (a new row, or the one of its authority
        replaced): the operator's approval, or an approved server's key
        change sending it back to pending.

        :return: Deferred firing with None once it is written.
        """

    def heard_pending(admission):
        """
        A ping server that is not approved asked: add it as pending, or,
        if its authority has a row already, only update that row's last
        heard time (so a heartbeat never undoes an approval written
        meanwhile by ``distwit registry approve``).

        :return: Deferred firing with None once it is written.
        """

    def remove_admission(authority):
        """
        Forget the admission of an authority (``distwit registry revoke``).

        :return: Deferred firing with None once it is written.
        """

    def forget_pending(cutoff):
        """
        Drop the pending rows last heard at or before ``cutoff``.

        :return: Deferred firing with None once it is written.
        """

    def close():
        """
        Release the file; no call may follow.

        :return: Deferred firing with None.
        """
