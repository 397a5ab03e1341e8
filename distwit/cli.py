"""
The ``distwit`` command: administration beside the server.

``distwit adduser HANDLE`` creates a local user; ``distwit app create``
registers an OAuth app and ``distwit token create`` gives a user's access
token for one; ``distwit rotate-oidc-key`` makes a new key for the ID
tokens of OpenID Connect; ``distwit registry approve URL``, ``revoke URL``
and ``list`` decide which ping servers the registry lists; ``distwit
backup DEST`` copies a running server's database and keys, ``distwit
restore SRC`` puts them back (:mod:`distwit.backup`); ``distwit status``
shows the federation's health as the server last saw it, and ``distwit
admin grant HANDLE`` / ``revoke HANDLE`` / ``list`` its operators.  Each takes the
same ``--data``, ``--database`` and ``--config`` as ``twistd distwit``, so it
finds the same database.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, NoReturn, Sequence, TextIO

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from distwit import __version__
from distwit.config import ConfigError, Settings, default, resolve


class CommandError(Exception):
    """
    The command cannot go on; the message says why.
    """


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", help="INI file with the server's settings")
    common.add_argument("-d", "--data", help=f"data folder [default: ./{default('data')}]")
    common.add_argument("--database", help="sqlite:PATH or postgresql://...")

    parser = argparse.ArgumentParser(
        prog="distwit", description="Administer a distwit server."
    )
    parser.add_argument("--version", action="version", version=f"distwit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    adduser = commands.add_parser(
        "adduser",
        parents=[common],
        help="create a local user",
        description=(
            "Create a local user. The password comes from --password-file, "
            "else from standard input when it is not a terminal, else from a prompt."
        ),
    )
    adduser.add_argument("handle", help="1-15 letters, digits or underscores")
    adduser.add_argument("--name", default="", help="display name")
    adduser.add_argument(
        "--password-file", help="file whose first line is the password"
    )
    adduser.add_argument(
        "--create", action="store_true",
        help="make a new database if there is none (else that is an error)",
    )

    app = commands.add_parser("app", help="OAuth apps").add_subparsers(
        dest="app_command", metavar="ACTION", required=True
    )
    app_create = app.add_parser(
        "create",
        parents=[common],
        help="register an OAuth app",
        description="Register an OAuth app; prints consumer_key=... and consumer_secret=...",
    )
    app_create.add_argument("name", help="the app's name, shown to users")
    app_create.add_argument("--owner", required=True, help="handle of the app's owner")
    app_create.add_argument("--callback", default="", help="the app's callback URL")

    token = commands.add_parser("token", help="OAuth access tokens").add_subparsers(
        dest="token_command", metavar="ACTION", required=True
    )
    token_create = token.add_parser(
        "create",
        parents=[common],
        help="make an access token of a user for an app",
        description="Prints access_token=... and access_token_secret=...",
    )
    token_create.add_argument("--consumer-key", required=True, help="the app's key")
    token_create.add_argument("--user", required=True, help="handle of the user")

    registry = commands.add_parser(
        "registry", help="which ping servers the registry lists"
    ).add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    approve = registry.add_parser(
        "approve",
        parents=[common],
        help="list a ping server",
        description=(
            "Approve the ping server at URL: the registry lists it from its next "
            "heartbeat. Without --key it must be pending, and its key is the one it "
            "asked with."
        ),
    )
    approve.add_argument("url", help="the ping server's public URL")
    approve.add_argument("--key", help="its Ed25519 public key (base64url)")
    revoke = registry.add_parser(
        "revoke",
        parents=[common],
        help="stop listing a ping server",
        description="Withdraw the approval of the ping server at URL's host and port.",
    )
    revoke.add_argument("url", help="the ping server's public URL")
    registry.add_parser(
        "list",
        parents=[common],
        help="the approved and the pending ping servers",
        description="One line each: approved or pending, URL, key.",
    )

    commands.add_parser(
        "rotate-oidc-key",
        parents=[common],
        help="make a new key for signing ID tokens",
        description=(
            "Make a new key for signing the ID tokens this server gives when its users "
            "sign in elsewhere (OpenID Connect). The previous key stays published, so "
            "tokens signed just before still check; older ones are dropped. Restart the "
            "server to sign with the new key."
        ),
    )
    _add_backup_commands(commands, common)
    commands.add_parser(
        "status",
        parents=[common],
        help="the federation's health as this server sees it",
        description=(
            "Every peer server (last successful exchange, latency, failures, certificate "
            "problems), every followed remote author (held vs known: the completeness of "
            "this server's copy), the outbox and the ping servers, read from the database "
            "(the running server writes there what it sees: a change within seconds, "
            "the rest every 30 s)."
        ),
    )
    admin = commands.add_parser(
        "admin", help="operators: users with the admin flag"
    ).add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    for action, text in (
        ("grant", "give a local user the admin flag (the operator page)"),
        ("revoke", "take the admin flag from a local user"),
    ):
        admin_action = admin.add_parser(action, parents=[common], help=text, description=text)
        admin_action.add_argument("handle", help="the local user's handle")
    admin.add_parser(
        "list", parents=[common], help="the users with the admin flag",
        description="The handles of the users with the admin flag, one a line.",
    )
    from distwit.roles.admin import add_commands as add_admin_commands

    add_admin_commands(commands, common)
    return parser


def _add_backup_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    backup = commands.add_parser(
        "backup",
        parents=[common],
        help="copy a running server's database and keys",
        description=(
            "Back up the server's database (SQLite through its online backup API, "
            "safe while the server writes; PostgreSQL with pg_dump) and the keys and "
            "secrets of its data folder, with a manifest, into DEST: a new folder, or "
            "a file ending in .tar.gz."
        ),
    )
    backup.add_argument("destination", metavar="DEST", help="new folder, or FILE.tar.gz")
    restore = commands.add_parser(
        "restore",
        parents=[common],
        help="put a backup back into a data folder",
        description=(
            "Restore a backup made by `distwit backup` into the data folder (and the "
            "database) given by --data, --database or --config. Stop the server first. "
            "A data folder or PostgreSQL database that is not empty is refused unless "
            "--force is given; a backup of a newer schema is refused."
        ),
    )
    restore.add_argument("source", metavar="SRC", help="a backup folder or .tar.gz")
    restore.add_argument(
        "--force", action="store_true", help="replace what the data folder holds"
    )


def backup_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    from distwit.backup import BackupError, Progress, backup, describe, restore

    settings = settings_for(args)
    progress = Progress(err)
    try:
        if args.command == "backup":
            manifest = backup(settings, args.destination, err, progress)
            out.write(f"backed up to {args.destination}: {describe(manifest)}\n")
        else:
            manifest = restore(settings, args.source, err, args.force, progress)
            out.write(
                f"restored into {settings.data_folder.path} the backup {describe(manifest)}\n"
            )
    except BackupError as e:
        raise CommandError(str(e)) from None


def read_password(path: str | None, stdin: TextIO) -> str:
    """
    The new user's password, from a file, piped standard input, or a prompt
    (asked twice).
    """
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                return f.readline().rstrip("\r\n")
        except OSError as e:
            raise CommandError(f"cannot read password file {path}: {e.strerror}") from None
    if not stdin.isatty():
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        raise CommandError("the passwords differ")
    return first


def settings_for(args: argparse.Namespace) -> Settings:
    try:
        return resolve({"data": args.data, "database": args.database}, args.config)
    except ConfigError as e:
        raise CommandError(str(e)) from None


async def adduser(reactor: Any, args: argparse.Namespace, password: str, out: TextIO) -> None:
    from distwit.core.passwords import PasswordHasher
    from distwit.core.microblog import Microblog, RuleError
    from distwit.roles.process import thread_runner

    settings = settings_for(args)
    store, engine = _open_database(settings, reactor, create=args.create)
    try:
        microblog = Microblog(store, PasswordHasher(thread_runner(reactor)), reactor)
        try:
            account = await microblog.create_user(args.handle, password, args.name)
        except RuleError as e:
            raise CommandError(str(e)) from None
        out.write(f"created user {account.handle} (id {account.id}) in {where(engine)}\n")
    finally:
        await store.close()


def _open_database(settings: Settings, reactor: Any, create: bool = False) -> Any:
    """
    The twitter role's database and its engine; a new one only with
    ``create`` (``adduser --create``).
    """
    from distwit.roles.admin import NoDatabase, open_twitter_database

    try:
        return open_twitter_database(settings, reactor, create)
    except NoDatabase as e:
        raise CommandError(str(e)) from None


def where(engine: Any) -> str:
    from distwit.roles.admin import where as where_

    return where_(engine)


async def admin_command(
    reactor: Any, args: argparse.Namespace, out: TextIO, password: Any = None
) -> None:
    from distwit.core.microblog import RuleError
    from distwit.roles.admin import NoDatabase, run

    try:
        await run(reactor, args, settings_for(args), out, password)
    except (NoDatabase, RuleError) as e:
        raise CommandError(str(e)) from None


def confirm_delete(args: argparse.Namespace, stdin: TextIO) -> None:
    """
    Ask before ``distwit user delete`` (unless ``--yes``).
    """
    if args.yes:
        return
    if not stdin.isatty():
        raise CommandError(f"deleting {args.handle} cannot be undone: give --yes to do it")
    sys.stderr.write(
        f"Delete {args.handle}, every post of theirs, their follows, tokens and sessions?"
        " This cannot be undone. Type the handle to confirm: "
    )
    sys.stderr.flush()
    if stdin.readline().strip().lower() != args.handle.lower():
        raise CommandError("not confirmed; nothing deleted")


async def oauth_command(reactor: Any, args: argparse.Namespace, out: TextIO) -> None:
    from distwit.api.oauth1 import OAuthProvider
    from distwit.core.passwords import PasswordHasher
    from distwit.core.microblog import Microblog
    from distwit.roles.process import thread_runner
    from distwit.web.secrets import load_or_create_secret

    settings = settings_for(args)
    store, _ = _open_database(settings, reactor)
    try:
        microblog = Microblog(store, PasswordHasher(thread_runner(reactor)), reactor)
        provider = OAuthProvider(
            microblog, reactor, settings.public_url,
            load_or_create_secret(settings.data_folder.web_secret),
        )
        handle = args.owner if args.command == "app" else args.user
        user = await store.get_local_user(handle)
        if user is None:
            raise CommandError(f"there is no user {handle!r} here")
        try:
            if args.command == "app":
                key, secret = await provider.create_app(user, args.name, args.callback)
                out.write(f"consumer_key={key}\nconsumer_secret={secret}\n")
            else:
                token, secret = await provider.create_access_token(args.consumer_key, user)
                out.write(f"access_token={token}\naccess_token_secret={secret}\n")
        except ValueError as e:
            raise CommandError(str(e)) from None
    finally:
        await store.close()


async def registry_command(reactor: Any, args: argparse.Namespace, out: TextIO) -> None:
    from distwit.registry.admission import AdmissionError, approve, describe, revoke
    from distwit.roles.process import prepare_data_folder
    from distwit.roles.registry import open_registry_store

    settings = settings_for(args)
    prepare_data_folder(settings.data_folder)
    store = open_registry_store(settings, reactor)
    try:
        if args.registry_command == "approve":
            done = await approve(store, args.url, args.key, reactor.seconds())
            out.write(f"approved {done.public_url} with key {done.public_key}\n")
        elif args.registry_command == "revoke":
            done = await revoke(store, args.url)
            out.write(f"revoked {done.public_url} ({done.status} before)\n")
        else:
            for line in await describe(store):
                out.write(line + "\n")
        if args.registry_command != "list" and settings.admission == "open":
            out.write("note: admission is open here: the registry lists every ping server\n")
    except AdmissionError as e:
        raise CommandError(str(e)) from None
    finally:
        await store.close()


def _existing_store(reactor: Any, args: argparse.Namespace) -> Any:
    """
    The twitter role's database named by ``args``; never a new one.
    """
    import os

    from distwit.roles.twitter import open_twitter_store

    settings = settings_for(args)
    if not settings.database and not os.path.exists(settings.data_folder.twitter_database):
        raise CommandError(
            f"no database at {settings.data_folder.twitter_database}"
            " (give the server's --data, --database or --config)"
        )
    return open_twitter_store(settings, reactor)


async def status_command(reactor: Any, args: argparse.Namespace, out: TextIO) -> None:
    from distwit.federation.health import FederationHealth, status_text

    store = _existing_store(reactor, args)
    try:
        out.write(status_text(await FederationHealth(store, reactor).report()))
    finally:
        await store.close()


async def operators_command(reactor: Any, args: argparse.Namespace, out: TextIO) -> None:
    store = _existing_store(reactor, args)
    try:
        if args.admin_command == "list":
            for handle in await store.admins():
                out.write(handle + "\n")
            return
        grant = args.admin_command == "grant"
        if not await store.set_admin(args.handle, grant):
            raise CommandError(f"there is no user {args.handle!r} here")
        out.write(
            f"{args.handle} is {'now' if grant else 'no longer'} an operator (admin flag)\n"
        )
    finally:
        await store.close()


def rotate_oidc_key(args: argparse.Namespace, out: TextIO) -> None:
    from distwit.oidc.keys import SigningKeys
    from distwit.roles.process import prepare_data_folder

    settings = settings_for(args)
    prepare_data_folder(settings.data_folder)
    try:
        keys = SigningKeys(settings.data_folder.oidc_keys)
        kid = keys.rotate()
    except (OSError, ValueError) as e:
        raise CommandError(str(e)) from None
    out.write(f"new ID-token key {kid}; restart the server to sign with it\n")


def _fail(error: CommandError) -> NoReturn:
    sys.stderr.write(f"distwit: {error}\n")
    raise SystemExit(1) from None


def _react(work: Any) -> None:
    """
    Run ``work(reactor)`` to its end; a :class:`CommandError` is printed
    and the exit status is 1.
    """

    async def guarded(reactor: Any) -> None:
        try:
            await work(reactor)
        except CommandError as e:
            _fail(e)

    react(lambda reactor: ensureDeferred(guarded(reactor)))


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "adduser":
        # Asked before the reactor runs: the prompt may wait on a person.
        try:
            password = read_password(args.password_file, sys.stdin)
        except CommandError as e:
            _fail(e)
        _react(lambda reactor: adduser(reactor, args, password, sys.stdout))
    elif args.command == "rotate-oidc-key":
        try:
            rotate_oidc_key(args, sys.stdout)
        except CommandError as e:
            _fail(e)
    elif args.command in ("backup", "restore"):
        try:
            backup_command(args, sys.stdout, sys.stderr)
        except CommandError as e:
            _fail(e)
    elif args.command == "status":
        _react(lambda reactor: status_command(reactor, args, sys.stdout))
    elif args.command == "admin":
        _react(lambda reactor: operators_command(reactor, args, sys.stdout))
    elif args.command == "registry":
        _react(lambda reactor: registry_command(reactor, args, sys.stdout))
    elif args.command in ("user", "server"):
        new_password = None
        try:
            if args.command == "user" and args.user_command == "delete":
                confirm_delete(args, sys.stdin)
            if args.command == "user" and args.user_command == "set-password":
                given = read_password(args.password_file, sys.stdin)
                new_password = lambda: given  # noqa: E731
        except CommandError as e:
            _fail(e)
        _react(lambda reactor: admin_command(reactor, args, sys.stdout, new_password))
    else:
        _react(lambda reactor: oauth_command(reactor, args, sys.stdout))


if __name__ == "__main__":
    main()
