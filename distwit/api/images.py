"""
Profile images: ``account/update_profile_image`` (Twitter 1.1: the image
as a multipart ``image`` part, or base64 in an ``image`` form field), and
the resource that serves them at ``/profile_images/HASH_SIZE.png``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from distwit.api import errors
from distwit.api.area import Area
from distwit.api.endpoints import POST, REQUIRED, endpoint
from distwit.api.params import Params
from distwit.core.images import ProfileImages
from distwit.model import Account

#: An image's URL names its content (its hash): it never changes.
CACHE_FOREVER = b"public, max-age=31536000, immutable"


class ImageEndpoints(Area):
    @endpoint("account/update_profile_image", methods=POST, auth=REQUIRED)
    async def update_profile_image(self, request: IRequest, user: Account, params: Params
                                   ) -> Any:
        values = (request.args or {}).get(b"image")
        if not values or not values[0]:
            raise errors.missing_parameter("image")
        data = values[0]
        kind = (request.getHeader(b"content-type") or b"").lower()
        if not kind.startswith(b"multipart/"):
            # A form field carries the image in base64, as Twitter took it.
            try:
                data = base64.b64decode(b"".join(data.split()), validate=True)
            except (binascii.Error, ValueError):
                raise errors.invalid_parameter("image", "it is not base64") from None
        account = await self.microblog.update_profile_image(user, data)
        return await self.user_with_status(account, params)


class ProfileImageResource(Resource):
    """
    ``/profile_images/NAME``: the PNGs of profile images, cached for good
    by clients (the name is the content's hash), with an ETag.
    """

    isLeaf = True
    log = Logger()

    def __init__(self, images: ProfileImages) -> None:
        super().__init__()
        self._images = images

    def render_GET(self, request: IRequest) -> Any:
        name = b"/".join(request.postpath).decode("ascii", "replace")
        d = ensureDeferred(self._images.read(name))

        def answer(png: bytes | None) -> None:
            if png is None:
                request.setResponseCode(404)
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                request.write(b"no such image\n")
                request.finish()
                return
            etag = b'"' + name.encode("ascii") + b'"'
            request.setHeader(b"etag", etag)
            request.setHeader(b"cache-control", CACHE_FOREVER)
            if request.getHeader(b"if-none-match") == etag:
                request.setResponseCode(304)
                request.finish()
                return
            request.setHeader(b"content-type", b"image/png")
            request.setHeader(b"content-length", str(len(png)).encode("ascii"))
            if request.method != b"HEAD":
                request.write(png)
            request.finish()

        def failed(failure: Any) -> None:
            self.log.failure("serving a profile image failed", failure)
            request.setResponseCode(500)
            request.finish()

        d.addCallback(answer).addErrback(failed)
        return NOT_DONE_YET

    render_HEAD = render_GET
