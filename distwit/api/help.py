"""
``help/…``: what a client may ask about the server.  (The rate limits'
``rate_limit_status`` is answered by the app, which knows every endpoint.)
"""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest

from distwit.api.area import Area
from distwit.api.endpoints import endpoint
from distwit.api.params import Params
from distwit.model import RESERVED_HANDLES, Account


class HelpEndpoints(Area):
    @endpoint("help/configuration")
    async def configuration(self, request: IRequest, user: Account | None, params: Params
                            ) -> Any:
        return {
            "characters_reserved_per_media": 0,
            "dm_text_character_limit": 0,
            "max_media_per_upload": 0,
            "photo_size_limit": 0,
            "photo_sizes": {},
            "short_url_length": 0,
            "short_url_length_https": 0,
            "non_username_paths": sorted(RESERVED_HANDLES),
        }

    @endpoint("help/test")
    async def help_test(self, request: IRequest, user: Account | None, params: Params) -> Any:
        return "ok"
