"""
The database engines: what differs between SQLite and PostgreSQL.
"""
