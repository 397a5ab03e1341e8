"""
The systemd units of conf/systemd: one per role, each checked by systemd
itself (``systemd-analyze verify``, and ``security`` for its exposure)
where systemd-analyze is installed and by reading its keys always, and
each one's ``ExecStart`` command run for real (with a data folder and
settings of the test's) until its server answers ``/health``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ROOT, START_TIMEOUT, child_environment, free_port

UNITS = os.path.join(ROOT, "conf", "systemd")
ROLES = ("twitter", "ping", "registry")
#: Where the units expect distwit installed (a virtualenv).
INSTALLED = "/opt/distwit/bin/"


def read_unit(path: str) -> dict[str, dict[str, list[str]]]:
    """
    The sections of a unit file, each key with every value it is given
    (systemd lets keys repeat), comments and blank lines left out.
    """
    sections: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] | None = None
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = sections.setdefault(line[1:-1], {})
                continue
            key, equals, value = line.partition("=")
            assert equals and section is not None, f"{path}:{number}: not a key=value: {line}"
            section.setdefault(key.strip(), []).append(value.strip())
    return sections


def unit_path(role: str) -> str:
    return os.path.join(UNITS, f"distwit-{role}.service")


def exec_start(role: str) -> list[str]:
    return shlex.split(read_unit(unit_path(role))["Service"]["ExecStart"][0])


class UnitFileTests(SynchronousTestCase):
    def test_one_unit_per_role(self) -> None:
        """
        conf/systemd has a unit for each role, and the sysusers file that
        makes their user.
        """
        expected = {f"distwit-{role}.service" for role in ROLES} | {"distwit.sysusers.conf"}
        self.assertEqual(expected - set(os.listdir(UNITS)), set())
        with open(os.path.join(UNITS, "distwit.sysusers.conf")) as f:
            self.assertIn('u distwit - "distwit server" /var/lib/distwit', f.read())

    def test_hardened(self) -> None:
        """
        Each unit runs ``twistd -n`` without a pid file as the dedicated
        user, for its role, writing its data folder and nothing else, with
        no privilege to gain, no home, a private /tmp, no capability.
        """
        for role in ROLES:
            unit = read_unit(unit_path(role))
            service = {key: values[-1] for key, values in unit["Service"].items()}
            data = f"/var/lib/distwit/{role}"
            argv = exec_start(role)
            self.assertEqual(argv[:4], [INSTALLED + "twistd", "-n", "--pidfile=", "distwit"])
            self.assertIn(f"--role={role}", argv)
            self.assertIn(f"--data={data}", argv)
            self.assertIn(f"--config=/etc/distwit/{role}.ini", argv)
            expected = {
                "Type": "simple",
                "User": "distwit",
                "Group": "distwit",
                "StateDirectory": f"distwit/{role}",
                "WorkingDirectory": data,
                "ReadWritePaths": data,
                "NoNewPrivileges": "yes",
                "ProtectSystem": "strict",
                "ProtectHome": "yes",
                "PrivateTmp": "yes",
                "PrivateDevices": "yes",
                "CapabilityBoundingSet": "",
                "AmbientCapabilities": "",
                "RestrictSUIDSGID": "yes",
                "UMask": "0077",
                "Restart": "on-failure",
            }
            self.assertEqual(
                {key: service.get(key) for key in expected}, expected, f"distwit-{role}"
            )
            self.assertIn("network-online.target", unit["Unit"]["After"][0])

    def installable_copy(self, role: str) -> str:
        """
        The unit with its twistd at this Python's (systemd checks that the
        program is there).
        """
        folder = self.mktemp()
        os.makedirs(folder)
        path = os.path.join(folder, f"distwit-{role}.service")
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        self.assertTrue(os.access(twistd, os.X_OK), f"no twistd beside {sys.executable}")
        with open(unit_path(role)) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace(INSTALLED + "twistd", twistd))
        return path

    def test_systemd_verify(self) -> None:
        """
        ``systemd-analyze verify`` finds nothing to say of any unit (an
        unknown key or a bad value is only a warning to it: any output
        fails), and ``systemd-analyze security`` rates each one's exposure
        below 2 of 10.  Without systemd-analyze, the keys are checked
        against those these units may use.
        """
        analyze = shutil.which("systemd-analyze")
        for role in ROLES:
            path = self.installable_copy(role)
            if analyze is None:
                self.check_known_keys(path)
                continue
            done = subprocess.run([analyze, "verify", path], capture_output=True, text=True,
                                  timeout=120)
            self.assertEqual((done.returncode, done.stdout + done.stderr), (0, ""), role)
            done = subprocess.run([analyze, "security", "--offline=yes", path],
                                  capture_output=True, text=True, timeout=120)
            found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)",
                              done.stdout + done.stderr)
            self.assertIsNotNone(found, done.stdout + done.stderr)
            assert found is not None
            self.assertLess(float(found.group(1)), 2.0, done.stdout)

    def check_known_keys(self, path: str) -> None:
        known = {
            "Unit": {"Description", "Documentation", "Wants", "After"},
            "Service": set(read_unit(unit_path("twitter"))["Service"]),
        }
        for section, keys in read_unit(path).items():
            self.assertIn(section, known)
            self.assertEqual(set(keys) - known[section], set(), path)


class ExecStartTests(SynchronousTestCase):
    def test_exec_start_serves(self) -> None:
        """
        Each unit's command line, with this checkout's distwit, a data
        folder and a settings file of the test's in place of
        /var/lib/distwit and /etc/distwit, starts a server of its role that
        answers ``/health``, and stops gracefully on SIGTERM (as systemd
        stops it).
        """
        for role in ROLES:
            base = os.path.abspath(self.mktemp())
            os.makedirs(base)
            port = free_port()
            config = os.path.join(base, f"{role}.ini")
            with open(config, "w") as f:
                f.write(f"[server]\nlisten = tcp:{port}:interface=127.0.0.1\n"
                        f"public_url = http://127.0.0.1:{port}\n")
            data = os.path.join(base, "data")
            argv = [
                argument.replace(f"/etc/distwit/{role}.ini", config).replace(
                    f"/var/lib/distwit/{role}", data)
                for argument in exec_start(role)[1:]
            ]
            log = open(os.path.join(base, "log"), "wb")
            self.addCleanup(log.close)
            process = subprocess.Popen(
                [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", *argv],
                stdout=log, stderr=subprocess.STDOUT, env=child_environment(), cwd=base,
            )
            self.addCleanup(self.stop, process)
            health = self.wait_for_health(process, port, base)
            self.assertEqual(health["role"], role)
            self.assertTrue(os.path.exists(os.path.join(data, "server-key.pem")))
            process.terminate()
            # twistd stops the reactor, then ends by the signal it got, which
            # systemd counts as a clean stop (SuccessExitStatus has SIGTERM).
            self.assertIn(process.wait(30), (0, -signal.SIGTERM))
            with open(os.path.join(base, "log")) as f:
                self.assertIn("Server Shut Down.", f.read())

    def wait_for_health(self, process: Any, port: int, base: str) -> Any:
        import json

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                with open(os.path.join(base, "log")) as f:
                    self.fail(f"exited with {process.returncode}:\n{f.read()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    return json.loads(r.read())
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.fail(f"no /health within {START_TIMEOUT}s")
            time.sleep(0.1)

    @staticmethod
    def stop(process: Any) -> None:
        if process.poll() is None:
            process.kill()
            process.wait()
