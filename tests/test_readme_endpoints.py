"""
README.rst lists every endpoint of the Twitter API the server answers.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re

from twisted.trial.unittest import SynchronousTestCase

import distwit.api
from distwit.api.endpoints import Declaration

from tests.processes import ROOT


def declared_endpoints() -> set[str]:
    """
    The name (the path without its arguments) of every pattern declared
    with ``@endpoint`` anywhere in ``distwit.api``.
    """
    names = set()
    for module_info in pkgutil.iter_modules(distwit.api.__path__):
        module = importlib.import_module(f"distwit.api.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            for attribute in vars(cls).values():
                declaration = getattr(attribute, "api_endpoint", None)
                if isinstance(declaration, Declaration):
                    names.update(pattern.split("/(?P")[0] for pattern in declaration.patterns)
    return names


def readme_section(title: str) -> str:
    with open(os.path.join(ROOT, "README.rst"), encoding="utf-8") as f:
        text = f.read()
    found = re.search(re.escape(title) + r"\n-+\n(.*?)\n[^\n]+\n-+\n", text, re.S)
    assert found is not None, f"no section {title!r} in README.rst"
    return found.group(1)


class ReadmeEndpointTests(SynchronousTestCase):
    def test_every_endpoint_is_listed(self) -> None:
        """
        Every endpoint declared in distwit/api is named, as ````path````, in
        README's "The API, endpoint by endpoint" (which may name more:
        endpoints being built elsewhere).
        """
        names = declared_endpoints()
        self.assertIn("statuses/update", names)
        section = readme_section("The API, endpoint by endpoint")
        missing = sorted(name for name in names if f"``{name}``" not in section)
        self.assertEqual(missing, [], "endpoints missing from README.rst")

    def test_issue_15_endpoints_are_listed(self) -> None:
        """
        The README names the direct message, block, mute and list
        endpoints of the classic API.
        """
        section = readme_section("The API, endpoint by endpoint")
        for name in ("direct_messages", "direct_messages/sent", "direct_messages/show",
                     "direct_messages/new", "direct_messages/destroy", "blocks/create",
                     "blocks/destroy", "blocks/list", "blocks/ids", "blocks/exists",
                     "mutes/users/create", "mutes/users/destroy", "mutes/users/list",
                     "mutes/users/ids", "friendships/no_retweets/ids", "friendships/update",
                     "lists/list", "oauth/request_token", "oauth/access_token"):
            self.assertIn(f"``{name}``", section)
