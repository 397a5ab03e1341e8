"""
Durable storage for the twitter role.

:class:`~distwit.store.interfaces.IStore` is what the rest of distwit
uses; :func:`~distwit.store.sql.open_store` gives the SQL implementation
on SQLite or PostgreSQL, chosen by the database URL.
"""
