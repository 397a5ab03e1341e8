"""
The package type-checks: mypy (with the zope plugin) over ``distwit`` and
the twistd plugin, with the settings in pyproject.toml.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ROOT

MYPY_SKIP = (
    None
    if importlib.util.find_spec("mypy") and importlib.util.find_spec("mypy_zope")
    else "mypy and mypy-zope are not installed (pip install '.[test]')"
)


class TypeTests(SynchronousTestCase):
    skip = MYPY_SKIP

    def test_mypy(self) -> None:
        """
        mypy finds no error.
        """
        done = subprocess.run(
            [sys.executable, "-m", "mypy", "--no-incremental", "distwit",
             "twisted/plugins/distwit_plugin.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
