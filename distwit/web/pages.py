"""
Placeholder replaced by the pages implementation.
"""

from __future__ import annotations

from typing import Any

from klein import Klein


class Pages:
    app = Klein()

    def __init__(self, microblog: Any, secret: bytes, clock: Any,
                 open_registration: bool, secure_cookies: bool) -> None:
        self.microblog = microblog

    def resource(self) -> Any:
        return self.app.resource()

    @app.route("/", branch=True)
    def index(self, request: Any) -> str:
        return "distwit"
