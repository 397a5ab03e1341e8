"""
The twistd plugin: options, the config file, the service tree, and that an
installed distwit is found by twistd.
"""

from __future__ import annotations

import ipaddress
import json
import os
from importlib import metadata
from urllib.parse import urlsplit

from treq.testing import StubTreq
from twisted.application.service import IServiceCollection, IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from distwit.config import DataFolder, default_public_url
from distwit.tap import Options, makeService


class OptionsTests(SynchronousTestCase):
    def parse(self, *args: str) -> Options:
        options = Options()
        options.parseOptions(list(args))
        return options

    def write_config(self, text: str) -> str:
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_defaults(self) -> None:
        """
        With no options: every role, port 8080, SQLite in ./distwit-data.
        """
        settings = self.parse().settings
        self.assertEqual(settings.role, "all")
        self.assertEqual(settings.listen, "tcp:8080")
        self.assertEqual(settings.public_url, "http://localhost:8080")
        self.assertEqual(settings.authority, "localhost:8080")
        self.assertEqual(settings.data, os.path.abspath("distwit-data"))
        self.assertEqual(settings.database, "")
        self.assertTrue(settings.open_registration)

    def test_bad_role(self) -> None:
        """
        An unknown role is a usage error naming the allowed roles.
        """
        error = self.assertRaises(usage.UsageError, self.parse, "--role=pong")
        for role in ("all", "ping", "registry", "twitter"):
            self.assertIn(role, str(error))
        self.assertIn("pong", str(error))

    def test_roles(self) -> None:
        """
        Each allowed role parses.
        """
        for role in ("all", "ping", "registry", "twitter"):
            self.assertEqual(self.parse("--role", role).settings.role, role)

    def test_config_file(self) -> None:
        """
        The INI file sets what the command line leaves alone; the command
        line wins where both speak.
        """
        path = self.write_config(
            "[server]\nrole = twitter\nlisten = tcp:9000\ndata = /tmp/x\n"
            "[twitter]\nopen_registration = false\n"
        )
        settings = self.parse("--config", path, "--listen", "tcp:9001").settings
        self.assertEqual(settings.role, "twitter")
        self.assertEqual(settings.listen, "tcp:9001")
        self.assertEqual(settings.public_url, "http://localhost:9001")
        self.assertEqual(settings.data, "/tmp/x")
        self.assertFalse(settings.open_registration)

    def test_unknown_key(self) -> None:
        """
        An unknown key is an error that names it and its section.
        """
        path = self.write_config("[server]\nrole = all\nlistne = tcp:1\n")
        error = self.assertRaises(usage.UsageError, self.parse, "--config", path)
        self.assertIn("'listne'", str(error))
        self.assertIn("[server]", str(error))

    def test_unknown_section(self) -> None:
        """
        An unknown section is an error that names it.
        """
        path = self.write_config("[sever]\nrole = all\n")
        error = self.assertRaises(usage.UsageError, self.parse, "--config", path)
        self.assertIn("[sever]", str(error))

    def test_bad_values(self) -> None:
        """
        A bad boolean, a bad public URL, a missing or malformed file: errors
        that say what is wrong.
        """
        path = self.write_config("[twitter]\nopen_registration = maybe\n")
        error = self.assertRaises(usage.UsageError, self.parse, "--config", path)
        self.assertIn("open_registration", str(error))
        error = self.assertRaises(usage.UsageError, self.parse, "--public-url", "ftp://x")
        self.assertIn("public_url", str(error))
        error = self.assertRaises(usage.UsageError, self.parse, "--config", "/nonexistent.ini")
        self.assertIn("/nonexistent.ini", str(error))
        path = self.write_config("role = all\n")
        error = self.assertRaises(usage.UsageError, self.parse, "--config", path)
        self.assertIn("not valid INI", str(error))

    def test_example_config(self) -> None:
        """
        conf/distwit.ini, which documents every setting, parses to the
        defaults.
        """
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        path = os.path.join(root, "conf", "distwit.ini")
        from dataclasses import replace

        settings = self.parse("--config", path).settings
        defaults = self.parse().settings
        # A relative path in a config file is relative to the file's folder.
        self.assertEqual(settings.data, os.path.join(root, "conf", "distwit-data"))
        self.assertEqual(replace(settings, data=defaults.data), defaults)
        from distwit.config import SETTINGS, read_config_file

        self.assertEqual(set(read_config_file(path)), {setting.key for setting in SETTINGS})

    def test_example_federation(self) -> None:
        """
        conf/federation/ holds a registry, two ping servers and three
        twitter servers on distinct loopback ports, all pointing at that
        registry, each with its own data folder.
        """
        from distwit.config import resolve

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        folder = os.path.join(root, "conf", "federation")
        names = sorted(name for name in os.listdir(folder) if name.endswith(".ini"))
        self.assertEqual(
            names,
            ["ping1.ini", "ping2.ini", "registry.ini",
             "twitter1.ini", "twitter2.ini", "twitter3.ini"],
        )
        settings = {name: resolve({}, os.path.join(folder, name)) for name in names}
        registry = settings["registry.ini"].public_url
        self.assertEqual(
            sorted(s.role for s in settings.values()),
            ["ping", "ping", "registry", "twitter", "twitter", "twitter"],
        )
        for name, setting in settings.items():
            host = urlsplit(setting.public_url).hostname or ""
            self.assertTrue(ipaddress.ip_address(host).is_loopback, name)
            self.assertTrue(setting.listen.endswith(f"interface={host}"), name)
            self.assertTrue(setting.public_url.startswith(f"http://{host}:"), name)
            if setting.role != "registry":
                self.assertEqual(setting.registry, registry, name)
        # Each twitter server has its own address (a browser keeps cookies
        # per host, not per port), and takes sign-ins from the others.
        twitters = [s for s in settings.values() if s.role == "twitter"]
        self.assertEqual(len({urlsplit(s.public_url).hostname for s in twitters}), 3)
        for setting in twitters:
            self.assertTrue(setting.allow_http and setting.allow_private)
        self.assertEqual(len({s.public_url for s in settings.values()}), 6)
        self.assertEqual(len({s.data for s in settings.values()}), 6)
        self.assertTrue(os.access(os.path.join(folder, "run"), os.X_OK))

    def test_default_public_url(self) -> None:
        """
        The public URL is guessed from the listen endpoint.
        """
        self.assertEqual(default_public_url("tcp:8080"), "http://localhost:8080")
        self.assertEqual(default_public_url("tcp:80"), "http://localhost")
        self.assertEqual(
            default_public_url("tcp:port=9000:interface=127.0.0.1"), "http://127.0.0.1:9000"
        )
        self.assertEqual(
            default_public_url("ssl:8443:privateKey=k.pem"), "https://localhost:8443"
        )
        self.assertEqual(default_public_url("unix:/tmp/sock"), "http://localhost")


class ServiceTreeTests(SynchronousTestCase):
    def make(self, *args: str) -> IServiceCollection:
        options = Options()
        options.parseOptions(["--data", self.mktemp(), "--listen", "tcp:0", *args])
        self.reactor = MemoryReactorClock()
        return makeService(options, self.reactor)

    def health(self, service: IServiceCollection, path: str = "/health") -> dict[str, object]:
        stub = StubTreq(service.getServiceNamed("web").factory.resource)
        response = self.successResultOf(stub.get("http://localhost" + path))
        self.assertEqual(response.code, 200)
        return json.loads(self.successResultOf(response.content()))

    def test_all(self) -> None:
        """
        --role=all gives one child per role plus the web listener; /health
        names them all.
        """
        service = self.make()
        self.assertEqual(
            sorted(child.name for child in service),
            ["http-client", "ping", "registry", "twitter", "web"],
        )
        body = self.health(service)
        self.assertEqual(body["role"], "all")
        self.assertEqual(body["roles"], ["twitter", "ping", "registry"])

    def test_single_roles(self) -> None:
        """
        A single role gives that role's service and the listener; its
        /health names it.
        """
        for role in ("ping", "registry", "twitter"):
            service = self.make("--role", role)
            self.assertEqual(
                sorted(child.name for child in service), sorted(["http-client", role, "web"])
            )
            self.assertEqual(self.health(service)["role"], role)

    def get(self, service: IServiceCollection, path: str) -> tuple[int, bytes]:
        stub = StubTreq(service.getServiceNamed("web").factory.resource)
        response = self.successResultOf(stub.get("http://localhost" + path))
        return response.code, self.successResultOf(response.content())

    def test_metadata_every_role(self) -> None:
        """
        Every role publishes /.well-known/distwit with its public URL, its
        role and the public key kept in its data folder, and the paths of
        its endpoints are the same alone as in --role=all.
        """
        from distwit.s2s.keys import ServerKey
        from distwit.s2s.metadata import parse_metadata

        for role, paths in [
            ("all", ["/ping/lookup", "/registry/pings", "/1.1/"]),
            ("ping", ["/ping/lookup"]),
            ("registry", ["/registry/pings"]),
            ("twitter", ["/1.1/", "/s2s/follow"]),
        ]:
            data = self.mktemp()
            options = Options()
            options.parseOptions(
                ["--data", data, "--listen", "tcp:0", "--role", role,
                 "--public-url", "http://127.0.0.1:9"]
            )
            service = makeService(options, MemoryReactorClock())
            code, body = self.get(service, "/.well-known/distwit")
            self.assertEqual(code, 200)
            metadata = parse_metadata(json.loads(body), "http://127.0.0.1:9")
            self.assertEqual(metadata.role, role)
            key = ServerKey.load_or_create(DataFolder(data).server_key)
            self.assertEqual(metadata.public_key_b64, key.public_key_b64())
            endpoints = " ".join(metadata.endpoints.values())
            for path in paths:
                self.assertIn("http://127.0.0.1:9" + path, endpoints)

    def test_key_kept(self) -> None:
        """
        The signing key is made on the first start and the same after.
        """
        data = self.mktemp()
        keys = []
        for attempt in range(2):
            options = Options()
            options.parseOptions(["--data", data, "--listen", "tcp:0", "--role", "ping"])
            service = makeService(options, MemoryReactorClock())
            keys.append(json.loads(self.get(service, "/.well-known/distwit")[1])["public_key"])
        self.assertEqual(keys[0], keys[1])

    def test_twitter_federation_wired(self) -> None:
        """
        The twitter role runs the sync service and answers WebFinger for
        its users, 404 for other authorities (without asking the store).
        """
        service = self.make(
            "--role", "twitter", "--registry", "http://127.0.0.1:9",
            "--public-url", "http://127.0.0.1:8",
        )
        twitter = service.getServiceNamed("twitter")
        self.assertIsNotNone(twitter.getServiceNamed("sync"))
        self.assertIs(twitter.microblog.federation, twitter.federation)
        code, body = self.get(
            service, "/.well-known/webfinger?resource=acct:nobody@elsewhere.example"
        )
        self.assertEqual((code, b"elsewhere.example" in body), (404, True), body)

    def test_data_folder_created(self) -> None:
        """
        The data folder is created, readable by its owner only, with the
        SQLite database inside.
        """
        data = self.mktemp()
        options = Options()
        options.parseOptions(["--data", data, "--listen", "tcp:0"])
        makeService(options, MemoryReactorClock())
        self.assertEqual(os.stat(data).st_mode & 0o777, 0o700)
        self.assertTrue(os.path.exists(os.path.join(data, "distwit.sqlite3")))

    def test_bad_database(self) -> None:
        """
        A database URL of no known kind stops the start with a message.
        """
        options = Options()
        options.parseOptions(
            ["--data", self.mktemp(), "--database", "mysql://x", "--listen", "tcp:0"]
        )
        error = self.assertRaises(SystemExit, makeService, options, MemoryReactorClock())
        self.assertIn("mysql://x", str(error))


class PluginTests(SynchronousTestCase):
    def test_plugin_found(self) -> None:
        """
        twistd finds a service maker named distwit that builds distwit.tap.
        """
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("distwit", makers)
        self.assertEqual(makers["distwit"].module, "distwit.tap")

    def test_plugin_installed(self) -> None:
        """
        The installed distribution ships twisted/plugins/distwit_plugin.py
        (plugin wheels have shipped empty before), and no __init__.py that
        would hide Twisted's own plugins.
        """
        try:
            files = metadata.files("distwit") or []
        except metadata.PackageNotFoundError:
            self.fail("distwit is not installed: run pip install . first")
        names = {str(f) for f in files}
        self.assertIn("twisted/plugins/distwit_plugin.py", names)
        self.assertNotIn("twisted/plugins/__init__.py", names)
        self.assertNotIn("twisted/__init__.py", names)
        self.assertIn("distwit/store/migrations/001_initial.sql", names)

    def test_every_file_installed(self) -> None:
        """
        Every module, template, stylesheet, script and migration of this
        checkout is in the installed distribution: a subpackage missing
        from setup.cfg would pass every test run from the checkout and
        break ``twistd distwit`` after ``pip install .``.  (Install this
        checkout first: ``pip install .``.)
        """
        try:
            files = metadata.files("distwit") or []
        except metadata.PackageNotFoundError:
            self.fail("distwit is not installed: run pip install . first")
        installed = {str(f) for f in files}
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        shipped = set()
        for folder, dirs, names in os.walk(os.path.join(root, "distwit")):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in names:
                if name.endswith((".py", ".html", ".css", ".js", ".sql")):
                    path = os.path.relpath(os.path.join(folder, name), root)
                    shipped.add(path.replace(os.sep, "/"))
        self.assertIn("distwit/oidc/provider.py", shipped)
        self.assertEqual(sorted(shipped - installed), [])
