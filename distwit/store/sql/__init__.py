"""
:class:`SQLStore`, the one implementation of
:class:`~distwit.store.interfaces.IStore`, over either engine, and
:func:`open_store`.

The store is split by area, as Synapse splits its ``DataStore``: each
module of this package holds one area's SQL in a class of its own
(:mod:`~distwit.store.sql.accounts`, :mod:`~distwit.store.sql.posts`,
:mod:`~distwit.store.sql.timelines`, :mod:`~distwit.store.sql.follows`,
:mod:`~distwit.store.sql.favorites`, :mod:`~distwit.store.sql.apps`,
:mod:`~distwit.store.sql.oidc`, :mod:`~distwit.store.sql.remote`,
:mod:`~distwit.store.sql.sessions`, :mod:`~distwit.store.sql.outbox`,
:mod:`~distwit.store.sql.blocks`, :mod:`~distwit.store.sql.direct`,
:mod:`~distwit.store.sql.notifications`, :mod:`~distwit.store.sql.usage`,
:mod:`~distwit.store.sql.health`, :mod:`~distwit.store.sql.admin`,
:mod:`~distwit.store.sql.devices`, :mod:`~distwit.store.sql.password_resets`), all on
:class:`~distwit.store.sql.base.SQLBase` (the pool, the engine, reading
rows), and provides that area's interface (``IAccountStore``,
``IPostStore``, ...); :class:`SQLStore` is their composition, and
``IStore`` the sum of those interfaces.
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from distwit.store.interfaces import IStore
from distwit.store.schema import Engine, prepare_database
from distwit.store.sql.accounts import AccountsStore
from distwit.store.sql.admin import AdminStore
from distwit.store.sql.apps import AppsStore
from distwit.store.sql.blocks import BlocksStore
from distwit.store.sql.devices import DevicesStore
from distwit.store.sql.direct import DirectMessagesStore
from distwit.store.sql.favorites import FavoritesStore
from distwit.store.sql.follows import FollowsStore
from distwit.store.sql.health import HealthStore
from distwit.store.sql.history import HistoryStore
from distwit.store.sql.notifications import NotificationsStore
from distwit.store.sql.oidc import OIDCStore
from distwit.store.sql.outbox import OutboxStore
from distwit.store.sql.password_resets import PasswordResetsStore
from distwit.store.sql.posts import ID_EPOCH_MS, ID_SEQUENCE_BITS, status_id_floor
from distwit.store.sql.remote import RemoteStore
from distwit.store.sql.sessions import SessionsStore
from distwit.store.sql.timelines import TimelinesStore
from distwit.store.sql.usage import UsageStore


@implementer(IStore)
class SQLStore(
    AccountsStore,
    HistoryStore,
    RemoteStore,
    TimelinesStore,
    FollowsStore,
    FavoritesStore,
    AppsStore,
    OIDCStore,
    SessionsStore,
    OutboxStore,
    BlocksStore,
    DirectMessagesStore,
    NotificationsStore,
    UsageStore,
    HealthStore,
    AdminStore,
    DevicesStore,
    PasswordResetsStore,
):
    """
    The twitter role's data in SQLite or PostgreSQL: every area in one
    object (posts come in through :class:`RemoteStore`, which builds on
    them).

    :param pool: an ``adbapi.ConnectionPool`` (or anything with the same
        ``runInteraction`` and ``close``).
    :param engine: the engine object for that database.
    """


def open_store(engine: Engine, reactor: Any) -> SQLStore:
    """
    Bring the schema up to date (synchronously: call this before the reactor
    runs or from a thread) and return a store on a new connection pool.
    """
    prepare_database(engine)
    return SQLStore(engine.make_pool(reactor), engine)


__all__ = [
    "ID_EPOCH_MS",
    "ID_SEQUENCE_BITS",
    "SQLStore",
    "open_store",
    "status_id_floor",
]
