"""
Every recipe on ``/docs/clients``, run word for word.

A real server (``twistd distwit --local-https``) serves the page; each test
fetches it, takes one code block out of it, fills in only what the page
tells the reader to fill (the keys and tokens, made with the commands the
page gives), runs it with the real library in a process of its own (Python
with this virtualenv's python, or Python Twitter Tools in its own; Node
with ``node`` and the packages of ``tests/clients/*``) in the environment
the page says to set, and checks that the post arrived.  A recipe that
cannot run as written fails here: fix the page.
"""

from __future__ import annotations

import html
import os
import re
import shlex
import shutil
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ServerProcess, free_port, run_cli
from tests.test_clients import CLIENTS, approve, client_venv
from tests.test_federation import PASSWORD, call

#: The recipes on the page, by name, and what each posts.
POSTS = {
    "tweepy": "Hello from tweepy",
    "python-twitter": "Hello from python-twitter",
    "ptt": "Hello from Python Twitter Tools",
    "twython": "Hello from twython",
    "twitter-api-v2": "Hello from twitter-api-v2",
    "twitter-lite": "Hello from twitter-lite",
    "twit": "Hello from twit",
}
#: The recipe that makes tokens rather than posting.
PIN_RECIPE = "tweepy-pin"
#: Where each Node library is installed (tests/clients/FOLDER/node_modules).
NODE_FOLDERS = {"twitter-api-v2": "node", "twitter-lite": "twitter-lite", "twit": "twit"}

_RECIPE = re.compile(
    r'<pre class="recipe" data-language="(\w+)" data-name="([\w-]+)"><code>(.*?)</code></pre>',
    re.S,
)
_SHELL = re.compile(r'<pre class="shell"><code>(.*?)</code></pre>', re.S)
_PRE = re.compile(r"<pre\b")


def recipes(page: str) -> dict[str, tuple[str, str]]:
    """
    The recipes of the page: ``name -> (language, code)``, the code as a
    reader copies it.
    """
    return {name: (language, html.unescape(code))
            for language, name, code in _RECIPE.findall(page)}


def shell_lines(page: str) -> list[str]:
    """
    The lines of the page's shell blocks, as a reader copies them.
    """
    return [line for block in _SHELL.findall(page)
            for line in html.unescape(block).splitlines()]


def node_skip() -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed (.ci/run installs them)"
    return None


class RecipeServer:
    """
    One server with ``--local-https``, a user alice, and what the page
    tells the reader to make: an app and alice's token.
    """

    def __init__(self, case: SynchronousTestCase) -> None:
        self.case = case
        base = os.path.abspath(case.mktemp())
        os.makedirs(base)
        self.data = os.path.join(base, "data")
        done = run_cli("adduser", "--create", "alice", "--data", self.data, stdin=PASSWORD + "\n")
        case.assertEqual(done.returncode, 0, done.stderr)
        self.https_port = free_port()
        self.server = ServerProcess(
            self.data, "--local-https", "--local-https-port", str(self.https_port)
        )
        case.addCleanup(self.server.stop)
        code, self.page = self.server.request("GET", "/docs/clients")
        case.assertEqual(code, 200, self.page)
        self.recipes = recipes(self.page)
        self.values = self._keys_and_tokens()
        self.environment = self._trusting_environment()

    def _keys_and_tokens(self) -> dict[str, str]:
        """
        Run the page's ``distwit app create`` and ``distwit token create``
        lines for alice, with the server's data folder, and read what they
        print.
        """
        values: dict[str, str] = {}
        commands = [line for line in shell_lines(self.page) if line.startswith("distwit ")]
        self.case.assertEqual([shlex.split(c)[1:3] for c in commands],
                              [["app", "create"], ["token", "create"]], commands)
        for command in commands:
            words = [values.get(word.lower(), word) for word in shlex.split(command)[1:]]
            words = ["alice" if word == "HANDLE" else word for word in words]
            done = run_cli(*words, "--data", self.data)
            self.case.assertEqual(done.returncode, 0, done.stderr)
            values.update(line.split("=", 1) for line in done.stdout.splitlines())
        return {name.upper(): value for name, value in values.items()}

    def _trusting_environment(self) -> dict[str, str]:
        """
        This environment with the page's ``export`` line applied, as a
        reader runs it in their shell.
        """
        exports = [line for line in shell_lines(self.page) if line.startswith("export ")]
        self.case.assertEqual(len(exports), 1, self.page)
        environment = dict(os.environ)
        for assignment in shlex.split(exports[0])[1:]:
            name, _, value = assignment.partition("=")
            environment[name] = value
        self.case.assertEqual(
            environment["REQUESTS_CA_BUNDLE"], os.path.join(self.data, "local-ca.pem")
        )
        return environment

    def code(self, name: str) -> str:
        """
        The recipe ``name`` with the keys and tokens filled in.
        """
        self.case.assertIn(name, self.recipes, sorted(self.recipes))
        code = self.recipes[name][1]
        for placeholder in ("CONSUMER_KEY", "CONSUMER_SECRET", "ACCESS_TOKEN_SECRET",
                            "ACCESS_TOKEN"):
            if placeholder in self.values:
                code = code.replace(placeholder, self.values[placeholder])
        return code

    def write(self, name: str, suffix: str) -> str:
        # Not the library's own name: "import tweepy" would import the recipe.
        path = os.path.join(os.path.dirname(self.data), "recipe_" + name.replace("-", "_") + suffix)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.code(name))
        return path

    def posted(self, text: str) -> bool:
        timeline = call(self.server, "GET", "/1.1/statuses/user_timeline.json?screen_name=alice",
                        "alice")
        return any(status["text"] == text for status in timeline)


class PageTests(SynchronousTestCase):
    def test_every_code_block_is_a_recipe_run_here(self) -> None:
        """
        The page's code blocks are the recipes this module runs, and the
        shell lines it runs: none is left unrun.  With ``--local-https``
        the https recipes name its address, the others the public URL.
        """
        server = RecipeServer(self)
        self.assertEqual(sorted(server.recipes), sorted([*POSTS, PIN_RECIPE]))
        blocks = len(_PRE.findall(server.page))
        self.assertEqual(blocks, len(server.recipes) + len(_SHELL.findall(server.page)))
        https = f"https://localhost:{server.https_port}"
        self.assertIn(f'host="localhost:{server.https_port}"', server.code("tweepy"))
        self.assertIn(https + "/oauth/", server.code("tweepy-pin"))
        self.assertIn(https + "/1.1/", server.code("twitter-api-v2"))
        self.assertIn(server.server.url + "/1.1", server.code("python-twitter"))


    def test_without_local_https(self) -> None:
        """
        On a server started as the README has it (plain http), the page
        tells how to start it with ``--local-https`` for the https
        recipes, and shows no trust line yet.
        """
        data = os.path.abspath(self.mktemp())
        server = ServerProcess(data)
        self.addCleanup(server.stop)
        code, page = server.request("GET", "/docs/clients")
        self.assertEqual(code, 200)
        self.assertIn(".venv/bin/twistd -n distwit --local-https", shell_lines(page))
        self.assertFalse([line for line in shell_lines(page) if line.startswith("export ")])
        self.assertIn('host="localhost:8443"', recipes(page)["tweepy"][1])
        self.assertIn(server.url + "/1.1", recipes(page)["python-twitter"][1])


class PythonRecipeTests(SynchronousTestCase):
    """
    The Python recipes, each in a python of its own.
    """

    def setUp(self) -> None:
        self.server = RecipeServer(self)

    def run_recipe(self, name: str, python: str = sys.executable,
                   environment: dict[str, str] | None = None) -> None:
        path = self.server.write(name, ".py")
        done = subprocess.run(
            [python, path], capture_output=True, text=True, timeout=120,
            env=environment or self.server.environment, cwd=os.path.dirname(path),
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertTrue(self.server.posted(POSTS[name]), f"{name}: the post is not there")
        self.assertNotIn("Traceback", self.server.server.log_text())

    def test_tweepy(self) -> None:
        """
        tweepy 4, which speaks only https, posts through ``--local-https``
        trusting the CA as the page says.
        """
        self.run_recipe("tweepy")

    def test_tweepy_without_trust(self) -> None:
        """
        Without the page's ``export`` line the same recipe fails on the
        certificate (and posts nothing): the line is what makes it work.
        """
        path = self.server.write("tweepy", ".py")
        environment = {k: v for k, v in self.server.environment.items()
                       if k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE",
                                    "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE")}
        done = subprocess.run([sys.executable, path], capture_output=True, text=True,
                              timeout=120, env=environment)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("CERTIFICATE_VERIFY_FAILED", done.stderr)
        self.assertFalse(self.server.posted(POSTS["tweepy"]))

    def test_tweepy_pin(self) -> None:
        """
        The PIN recipe prints the address to approve, takes the PIN typed
        back, and prints tokens that work.
        """
        path = self.server.write(PIN_RECIPE, ".py")
        process = subprocess.Popen(
            [sys.executable, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            # Line by line, as in the terminal a reader runs it in (a
            # pipe would hold the address back until the program ends).
            env={**self.server.environment, "PYTHONUNBUFFERED": "1"},
        )
        self.addCleanup(process.kill)
        assert process.stdout is not None and process.stdin is not None
        line = process.stdout.readline()
        found = re.match(r"Open (\S+) and approve the app\.", line)
        if found is None:
            process.kill()
            out, err = process.communicate(timeout=60)
            self.fail(line + out + err)
        ca = os.path.join(self.server.data, "local-ca.pem")
        pin = approve(found.group(1), "alice", PASSWORD, verify=ca)
        self.assertRegex(pin, r"\A[0-9]{7}\Z")
        out, err = process.communicate(pin + "\n", timeout=60)
        self.assertEqual(process.returncode, 0, out + err)
        # (The first follows the prompt, "PIN: ", on its line.)
        printed = dict(re.findall(r"(access_token(?:_secret)?)=(\S+)", out))
        import requests
        from requests_oauthlib import OAuth1

        auth = OAuth1(self.server.values["CONSUMER_KEY"], self.server.values["CONSUMER_SECRET"],
                      printed["access_token"], printed["access_token_secret"])
        me = requests.get(f"https://localhost:{self.server.https_port}"
                          "/1.1/account/verify_credentials.json",
                          auth=auth, verify=ca, timeout=30)
        self.assertEqual((me.status_code, me.json().get("screen_name")), (200, "alice"),
                         me.text)

    def test_python_twitter(self) -> None:
        """
        python-twitter on the public (plain http) URL.
        """
        self.run_recipe("python-twitter")

    def test_python_twitter_tools(self) -> None:
        """
        Python Twitter Tools (the ``twitter`` package, in a virtualenv of
        its own: it shares its module name with python-twitter).
        """
        python = client_venv("ptt", "twitter==1.19.6")
        environment = {k: v for k, v in self.server.environment.items() if k != "PYTHONPATH"}
        self.run_recipe("ptt", python, environment)

    def test_twython(self) -> None:
        """
        twython with ``api_url`` pointed here.
        """
        self.run_recipe("twython")


class NodeRecipeTests(SynchronousTestCase):
    """
    The Node recipes, each run by ``node`` with its library from
    ``tests/clients/*`` (installed with npm when missing).
    """

    skip = node_skip()

    def setUp(self) -> None:
        self.server = RecipeServer(self)

    def run_recipe(self, name: str) -> None:
        folder = os.path.join(CLIENTS, NODE_FOLDERS[name])
        modules = os.path.join(folder, "node_modules")
        if not os.path.isdir(modules):
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"],
                           cwd=folder, check=True, timeout=600)
        path = self.server.write(name, ".js")
        done = subprocess.run(
            ["node", path], capture_output=True, text=True, timeout=120,
            env={**self.server.environment, "NODE_PATH": modules}, cwd=os.path.dirname(path),
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertRegex(done.stdout.strip(), r"\A[0-9]+\Z")
        self.assertTrue(self.server.posted(POSTS[name]), f"{name}: the post is not there")
        self.assertNotIn("Traceback", self.server.server.log_text())

    def test_twitter_api_v2(self) -> None:
        """
        twitter-api-v2, which speaks only https, through ``--local-https``.
        """
        self.run_recipe("twitter-api-v2")

    def test_twitter_lite(self) -> None:
        """
        twitter-lite with its ``url`` pointed here.
        """
        self.run_recipe("twitter-lite")

    def test_twit(self) -> None:
        """
        twit, its requests' address rewritten as the page shows.
        """
        self.run_recipe("twit")
