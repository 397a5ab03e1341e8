"""
The house keeps its shape: the import-linter contract (``.importlinter``, the
map of the layers described in docs/architecture.md) holds, and ruff's small
rule set (pyflakes and pycodestyle errors, configured in pyproject.toml)
finds nothing in ``distwit`` and ``tests``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ROOT

IMPORT_LINTER_SKIP = (
    None
    if importlib.util.find_spec("importlinter")
    else "import-linter is not installed (pip install '.[test]')"
)

RUFF_SKIP = (
    None
    if importlib.util.find_spec("ruff")
    else "ruff is not installed (pip install '.[test]')"
)

# lint-imports' console script, run with this interpreter so that the
# checkout's distwit (not another installed copy) is the one analysed.
_LINT_IMPORTS = (
    "import sys; from importlinter.cli import lint_imports_command;"
    " sys.exit(lint_imports_command())"
)


def _run(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


class ImportContractTests(SynchronousTestCase):
    skip = IMPORT_LINTER_SKIP

    def test_import_contract(self) -> None:
        """
        lint-imports finds every contract of ``.importlinter`` kept: the
        layers, s2s/ping/registry apart, the store behind its interfaces, no
        import cycles.
        """
        done = _run(["-c", _LINT_IMPORTS, "--no-cache", ".importlinter"])
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)


class RuffTests(SynchronousTestCase):
    skip = RUFF_SKIP

    def test_ruff(self) -> None:
        """
        ruff check finds no error in ``distwit`` and ``tests``.
        """
        done = _run(["-m", "ruff", "check", "--no-cache", "distwit", "tests"])
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
