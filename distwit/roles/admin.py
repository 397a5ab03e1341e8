"""
The operator's commands, wired for ``distwit`` (:mod:`distwit.cli`):
``distwit user list|show|lock|unlock|suspend|unsuspend|delete|set-password``,
``distwit user devices|add-device|verify-device|remove-device``
and ``distwit server block|unblock|list`` (docs/operating.md); and the
opening of an existing database that every command of the twitter role
needs (a new one only with ``adduser --create``).

The decisions go to the database; a running server reads them within a
second, so none needs a restart.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable, TextIO

from distwit.config import Settings
from distwit.core.admin import Admin
from distwit.core.devices import DEVICE_KINDS, Devices
from distwit.core.microblog import Microblog, RuleError
from distwit.core.passwords import PasswordHasher
from distwit.roles.process import open_or_exit, prepare_data_folder, thread_runner
from distwit.store.schema import DatabaseURLError, Engine, engine_for, schema_version


class NoDatabase(Exception):
    """
    The settings name no existing database; the message says which.
    """


def twitter_engine(settings: Settings) -> Engine:
    """
    The engine of the twitter role's database of these settings.

    :raise NoDatabase: the database setting is one no engine reads.
    """
    folder = settings.data_folder
    database = settings.database or "sqlite:" + folder.twitter_database
    try:
        return engine_for(database, folder.path)
    except DatabaseURLError as e:
        raise NoDatabase(str(e)) from None


def where(engine: Engine) -> str:
    """
    The database, as a person names it: a SQLite file's path, else what
    the engine says of itself.
    """
    path = getattr(engine, "path", None)
    return str(path) if path else engine.describe()


def has_schema(engine: Engine) -> bool:
    """
    Whether the database exists and holds a twitter role's tables (nothing
    is created to find out).
    """
    path = getattr(engine, "path", None)
    if path is not None and not os.path.exists(path):
        return False
    try:
        return schema_version(engine) > 0
    except Exception:
        return False


def open_twitter_database(settings: Settings, reactor: Any, create: bool = False) -> Any:
    """
    Open (and migrate) the twitter role's database of ``settings`` for a
    command, with its engine.

    :param create: make a new database (and data folder) if there is none;
        without it, a missing database is an error and nothing is created.
    :raise NoDatabase: there is no database there and ``create`` is false.
    """
    from distwit.store.sql import open_store

    engine = twitter_engine(settings)
    if not create and not has_schema(engine):
        raise NoDatabase(
            f"there is no distwit database at {where(engine)} (check --data, --database or"
            " --config; `distwit adduser --create` makes a new one)"
        )
    prepare_data_folder(settings.data_folder)
    store = open_or_exit(lambda: engine, lambda engine: open_store(engine, reactor))
    return store, engine


USER_ACTIONS = {
    "list": "one line per local user: id, handle, state, posts, followers",
    "show": "everything about one user",
    "lock": "refuse the user's sign-ins until unlocked",
    "unlock": "lift a lock: the operator's, and the wrong-password lock on the running server",
    "suspend": "the user may not use the API (64), others see 63, pages and timelines hide it",
    "unsuspend": "lift a suspension",
    "delete": "delete the user's posts (tombstones reach the followers' servers), follows,"
              " tokens, sessions and password; asks for confirmation (--yes)",
    "set-password": "give the user a new password (from --password-file, standard input or"
                    " a prompt); their web sessions end",
    "devices": "the user's phone, Jabber ID and e-mail addresses, and what is sent to them",
    "add-device": "give the user an address (KIND ADDRESS: sms +15551234567, im"
                  " dave@example.org, email dave@example.org); the running server sends it a"
                  " code",
    "verify-device": "confirm the code sent to the user's address (KIND CODE)",
    "remove-device": "forget the user's address of KIND; nothing more is sent to it",
}

SERVER_ACTIONS = {
    "block": "refuse the server's requests and notices (403), fetch nothing from it, hide"
             " what it sent",
    "unblock": "take the server's requests again",
    "list": "the blocked servers",
}


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """
    Add ``user`` and ``server`` to the ``distwit`` command's subparsers.
    """
    user = commands.add_parser("user", help="local users: list, show, lock, suspend, delete")
    actions = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    for action, help in USER_ACTIONS.items():
        parser = actions.add_parser(action, parents=[common], help=help, description=help)
        if action != "list":
            parser.add_argument("handle", help="the local user's handle")
        if action == "delete":
            parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        if action == "set-password":
            parser.add_argument("--password-file", help="file whose first line is the password")
        if action.endswith("-device"):
            parser.add_argument("kind", choices=DEVICE_KINDS, help="the kind of address")
        if action == "add-device":
            parser.add_argument("address", help="the address")
        if action == "verify-device":
            parser.add_argument("code", help="the six digits sent")
    server = commands.add_parser("server", help="other servers: block, unblock, list")
    actions = server.add_subparsers(dest="server_command", metavar="ACTION", required=True)
    for action, help in SERVER_ACTIONS.items():
        parser = actions.add_parser(action, parents=[common], help=help, description=help)
        if action != "list":
            parser.add_argument("authority", help="the server's host[:port], or its URL")
        if action == "block":
            parser.add_argument("--reason", default="", help="a note kept with the block")


async def run(
    reactor: Any, args: argparse.Namespace, settings: Settings, out: TextIO,
    password: Callable[[], str] | None = None,
) -> None:
    """
    Run ``distwit user ...`` or ``distwit server ...``.

    :param password: asks for the new password (``set-password``).
    :raise NoDatabase: there is no database to act on.
    :raise RuleError: the action is refused; the message says why.
    """
    store, engine = open_twitter_database(settings, reactor)
    try:
        microblog = Microblog(store, PasswordHasher(thread_runner(reactor)), reactor)
        microblog.public_url = settings.public_url
        devices = Devices(
            store, microblog, reactor, kinds=frozenset(DEVICE_KINDS),
            sms_weekly_cap=settings.sms_weekly_cap, public_url=settings.public_url,
        )
        admin = Admin(microblog, lambda: int(reactor.seconds() * 1000), devices)
        lines: list[str]
        if args.command == "server":
            action = args.server_command
            if action == "list":
                lines = await admin.list_servers()
            elif action == "block":
                lines = [await admin.block_server(args.authority, args.reason)]
            else:
                lines = [await admin.unblock_server(args.authority)]
        else:
            action = args.user_command
            if action == "list":
                lines = await admin.list_users()
            elif action == "show":
                lines = await admin.show_user(args.handle)
            elif action == "lock":
                lines = [await admin.lock(args.handle)]
            elif action == "unlock":
                lines = [await admin.unlock(args.handle)]
            elif action in ("suspend", "unsuspend"):
                lines = [await admin.suspend(args.handle, action == "suspend")]
            elif action == "delete":
                lines = [await admin.delete(args.handle)]
            elif action == "devices":
                lines = await admin.list_devices(args.handle)
            elif action == "add-device":
                lines = [await admin.add_device(args.handle, args.kind, args.address)]
            elif action == "verify-device":
                lines = [await admin.verify_device(args.handle, args.kind, args.code)]
            elif action == "remove-device":
                lines = [await admin.remove_device(args.handle, args.kind)]
            else:
                assert password is not None
                lines = [await admin.set_password(args.handle, password())]
        for line in lines:
            out.write(line + "\n")
    finally:
        await store.close()


__all__ = ["NoDatabase", "RuleError", "add_commands", "open_twitter_database", "run", "where"]
