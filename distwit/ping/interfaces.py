"""
What the ping role's parts need of each other: the directory the
exchange is answered from (:class:`~distwit.ping.directory.MemoryDirectory`
provides it).
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IDirectory(Interface):
    """
    What a ping server knows: the last message number and home server of
    each acct reported to it, and which accts each twitter server follows.

    Accts are ``handle@authority`` strings; methods accept any case and
    raise :class:`ValueError` for anything else.  Servers are named by
    their public URL.
    """

    epoch = Attribute(
        "A random string chosen when the directory was created.  A twitter "
        "server holding a cursor of another epoch must start over."
    )

    cursor = Attribute("The current value of the change counter.")

    def report(server, entries):
        """
        ``server`` reports the last message numbers of its users.

        :param entries: ``{acct: (last, home URL)}``.  A number not above
            the one held is ignored: numbers never go backwards.
        """

    def subscribe(server, accts):
        """
        ``server`` follows ``accts`` from now on.  Those already known are
        changes for ``server``, so it learns their current last number.
        """

    def unsubscribe(server, accts):
        """
        ``server`` no longer follows ``accts``.
        """

    def reset_subscriptions(server, accts):
        """
        ``server`` follows exactly ``accts``: the others are dropped.
        """

    def changes_since(server, cursor):
        """
        What changed among ``server``'s subscriptions after ``cursor``.

        Giving ``cursor`` acknowledges what was answered up to it.  With
        ``cursor`` ``None`` (or one this directory never gave): every known
        acct ``server`` follows.

        :return: ``(new cursor, {acct: (last, home URL)})``.
        """

    def lookup(acct):
        """
        :return: ``(last, home URL, updated)`` for ``acct``, ``updated``
            being the clock's time when the number last rose; or
            ``None`` if nobody reported ``acct``.  ``updated`` is in whole
            seconds.
        """

    def wait_for_change(server, timeout):
        """
        :return: a Deferred firing with ``None`` as soon as an acct
            ``server`` follows changes, or after ``timeout`` seconds.  It
            can be cancelled.
        """

    def release_waiters():
        """
        Fire every pending :meth:`wait_for_change` now (at shutdown, so
        long-polls get their answer before the port closes).
        """

    def __len__():
        """
        The number of accts known.
        """

    def server_count():
        """
        The number of twitter servers that reported or subscribed.
        """
