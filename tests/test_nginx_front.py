"""
conf/nginx/distwit-tls.conf with a real nginx: a certificate made for the
test, the example's ports and paths replaced by the test's, in front of a
real distwit server.  A client posts and reads over https through it;
plain http is sent to https; a body over the server's limit is refused by
nginx before distwit reads it.  nginx is installed by .ci/run; without it
the tests say how to install it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import trustme
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from distwit.config import MAX_BODY_BYTES

from tests.processes import ROOT, ServerProcess, free_port, run_cli

EXAMPLE = os.path.join(ROOT, "conf", "nginx", "distwit-tls.conf")
PASSWORD = "through the front"
NGINX_SKIP = "nginx is not installed: apt-get install nginx (.ci/run does)"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def front_config(case: SynchronousTestCase, folder: str, upstream: int, https: int,
                 http: int) -> str:
    """
    The example with the test's ports, certificate and paths, inside the
    main nginx.conf a distribution has around its sites; the path of
    that file.
    """
    with open(EXAMPLE, encoding="utf-8") as f:
        site = f.read()
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(os.path.join(folder, "server.pem"))
    ca.cert_pem.write_to_path(os.path.join(folder, "ca.pem"))
    replacements = [
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;"),
        ("listen [::]:443 ssl http2;\n", ""),
        ("listen 80;", f"listen 127.0.0.1:{http};"),
        ("listen [::]:80;\n", ""),
        ("/etc/letsencrypt/live/twitter.example.org/fullchain.pem",
         os.path.join(folder, "server.pem")),
        ("/etc/letsencrypt/live/twitter.example.org/privkey.pem",
         os.path.join(folder, "server.pem")),
        ("/var/www/letsencrypt", os.path.join(folder, "acme")),
        ("twitter.example.org", "localhost"),
    ]
    for old, new in replacements:
        case.assertIn(old, site, f"the example no longer has {old!r}")
        site = site.replace(old, new)
    with open(os.path.join(folder, "distwit-tls.conf"), "w") as f:
        f.write(site)
    main = os.path.join(folder, "nginx.conf")
    # As root, nginx's workers would be "nobody", locked out of the test's
    # folders: they stay the test's user.
    user = "user root;" if os.geteuid() == 0 else ""
    with open(main, "w") as f:
        f.write(f"""
{user}
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/distwit-tls.conf;
}}
""")
    return main


class NginxFrontTests(SynchronousTestCase):
    def setUp(self) -> None:
        nginx = shutil.which("nginx") or (
            "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
        )
        if nginx is None:
            raise SkipTest(NGINX_SKIP)
        base = os.path.abspath(self.mktemp())
        front = os.path.join(base, "front")
        os.makedirs(front)
        self.https_port, self.http_port = free_port(), free_port()
        self.url = f"https://localhost:{self.https_port}"
        self.server = ServerProcess(os.path.join(base, "data"), "--public-url", self.url)
        self.addCleanup(self.server.stop)
        done = run_cli("adduser", "--create", "alice", "--data", os.path.join(base, "data"),
                       stdin=PASSWORD + "\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        config = front_config(self, front, self.server.port, self.https_port, self.http_port)
        test = subprocess.run([nginx, "-t", "-c", config, "-p", front], capture_output=True,
                              text=True, timeout=60)
        self.assertEqual(test.returncode, 0, test.stderr)
        self.nginx = subprocess.Popen(
            [nginx, "-c", config, "-p", front, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(front, "stderr"), "wb"),
        )
        self.addCleanup(self.stop_nginx)
        self.context = ssl.create_default_context(cafile=os.path.join(front, "ca.pem"))
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if self.nginx.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(front, "error.log")) as f:
                    self.fail(f"nginx does not answer:\n{f.read()}")
            time.sleep(0.1)

    def stop_nginx(self) -> None:
        if self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.nginx.wait(30)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()

    def request(self, method: str, path: str, data: bytes | None = None,
                auth: bool = False, url: str | None = None) -> tuple[int, dict[str, str], Any]:
        request = urllib.request.Request((url or self.url) + path, data=data, method=method)
        if auth:
            token = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
            request.add_header("Authorization", "Basic " + token)
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self.context), NoRedirect()
        )
        try:
            with opener.open(request, timeout=30) as response:
                body, code, headers = response.read(), response.status, response.headers
        except urllib.error.HTTPError as e:
            body, code, headers = e.read(), e.code, e.headers
        text = body.decode("utf-8", "replace")
        try:
            return code, dict(headers), json.loads(text)
        except ValueError:
            return code, dict(headers), text

    def test_post_and_read_over_tls(self) -> None:
        """
        Over https through nginx, alice posts with HTTP Basic and reads her
        post back, from the API and from her page, whose links are on the
        public https URL; HSTS is set.
        """
        form = urllib.parse.urlencode({"status": "hello through nginx"}).encode()
        code, headers, posted = self.request("POST", "/1.1/statuses/update.json", form,
                                             auth=True)
        self.assertEqual(code, 200, posted)
        self.assertEqual(headers["Strict-Transport-Security"], "max-age=63072000")
        code, _, shown = self.request("GET", f"/1.1/statuses/show/{posted['id']}.json")
        self.assertEqual((code, shown["text"]), (200, "hello through nginx"))
        code, _, timeline = self.request(
            "GET", "/1.1/statuses/user_timeline.json?screen_name=alice", auth=True
        )
        self.assertEqual([status["id"] for status in timeline], [posted["id"]])
        code, _, page = self.request("GET", "/alice")
        self.assertEqual(code, 200)
        self.assertIn("hello through nginx", page)
        code, _, feed = self.request("GET", "/alice.rss")
        self.assertEqual(code, 200)
        self.assertIn(f"<link>{self.url}/alice</link>", feed)

    def test_http_sent_to_https(self) -> None:
        """
        Plain http on the front's port 80 is sent to the same path on
        https.
        """
        code, headers, _ = self.request(
            "GET", "/alice?x=1", url=f"http://localhost:{self.http_port}"
        )
        self.assertEqual(code, 301)
        self.assertEqual(headers["Location"], "https://localhost/alice?x=1")

    def test_body_limit(self) -> None:
        """
        The front's body limit is the server's (1 MiB by default): a body
        over it gets 413 from nginx, one just under it reaches distwit
        (which answers as the API does).
        """
        self.assertEqual(MAX_BODY_BYTES, 1024 * 1024)
        with open(EXAMPLE) as f:
            self.assertRegex(f.read(), re.compile(r"^\s*client_max_body_size 1m;", re.M))
        big = b"status=" + b"x" * MAX_BODY_BYTES
        code, _, body = self.request("POST", "/1.1/statuses/update.json", big, auth=True)
        self.assertEqual(code, 413, body)
        self.assertIn("nginx", body)
        under = b"status=" + b"x" * (MAX_BODY_BYTES - 100)
        code, _, body = self.request("POST", "/1.1/statuses/update.json", under, auth=True)
        self.assertEqual(code, 403, body)
        self.assertIn("errors", body)
