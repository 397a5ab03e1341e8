"""
Profile images: what ``account/update_profile_image`` takes (checked and
resized with Pillow), kept in the database by hash, and served at stable
URLs (``/profile_images/HASH_normal.png``; docs/design/log-items.md).

An upload is refused unless it is an image Pillow reads, at most
:data:`MAX_IMAGE_BYTES` (Twitter's 700 kB) and at most
:data:`MAX_IMAGE_PIXELS` pixels (a decompression bomb, a small file that
decodes into gigabytes, is refused before it is decoded).  What is kept is
not the upload but PNGs made from it, one per size of :data:`SIZES`, so no
bytes of the upload are ever served.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from importlib import resources
from typing import Any, Callable

from twisted.internet.defer import Deferred, maybeDeferred

from distwit.model import Account
from distwit.store.interfaces import IStore

#: Where profile images are served (the path, under the public URL).
PROFILE_IMAGES = "/profile_images/"
#: The name of the image of users without one of their own.
DEFAULT_IMAGE = "default"
#: The sizes made of each image, by Twitter's names, as square sides.
SIZES = {"normal": 48, "bigger": 73, "400x400": 400}
#: Twitter's limit on an uploaded profile image.
MAX_IMAGE_BYTES = 700 * 1024
#: The most pixels an upload may decode to (a 4096x4096 photo).
MAX_IMAGE_PIXELS = 4096 * 4096

_NAME_RE = re.compile(r"\A(?P<hash>[0-9a-f]{32}|default)_(?P<size>normal|bigger|400x400)\.png\Z")


class ImageRefused(ValueError):
    """
    An upload that is not an image distwit takes; ``str()`` says why.
    """


def resize_all(data: bytes) -> tuple[str, dict[str, bytes]]:
    """
    Check an uploaded image and make the PNG of every size (square, the
    middle of the image cropped to fit).  CPU-heavy: run off the reactor.

    :return: the image's hash and the PNGs by size.
    :raise ImageRefused: too large, too many pixels, or not an image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRefused(f"The image is over {MAX_IMAGE_BYTES // 1024} kB.")
    try:
        with warnings.catch_warnings():
            # Pillow warns, then refuses, past its own limit; both refuse here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Any = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS or width < 1 or height < 1:
                raise ImageRefused(
                    f"The image is {width}x{height} pixels; at most {MAX_IMAGE_PIXELS} are taken."
                )
            image.load()
            image = ImageOps.exif_transpose(image).convert("RGBA")
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("The image has too many pixels.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageRefused("The file is not an image (GIF, JPEG or PNG).") from None
    sizes = {}
    for name, side in SIZES.items():
        fitted = ImageOps.fit(image, (side, side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        fitted.save(out, "PNG", optimize=True)
        sizes[name] = out.getvalue()
    image_hash = hashlib.sha256(sizes["400x400"]).hexdigest()[:32]
    return image_hash, sizes


def default_image(size: str) -> bytes:
    """
    The default image (shipped with distwit) at one of :data:`SIZES`.
    """
    from PIL import Image

    data = resources.files("distwit.core").joinpath("profile_images/default.png").read_bytes()
    side = SIZES[size]
    image = Image.open(io.BytesIO(data)).convert("RGB").resize((side, side))
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


class ProfileImages:
    """
    Uploads and reads of profile images.

    :param in_thread: runs a function off the reactor thread, returning a
        Deferred (``deferToThreadPool``); by default it runs in place.
    """

    def __init__(
        self, store: IStore,
        in_thread: Callable[..., "Deferred[Any]"] | None = None,
    ) -> None:
        self._store = store
        self.in_thread = in_thread or maybeDeferred
        self._defaults: dict[str, bytes] = {}

    async def upload(self, data: bytes, now_ms: int) -> str:
        """
        Check, resize and keep an uploaded image.

        :return: its hash, for the profile.
        :raise ImageRefused: not an image distwit takes.
        """
        image_hash, sizes = await self.in_thread(resize_all, data)
        await self._store.store_profile_image(image_hash, sizes, now_ms)
        return str(image_hash)

    async def read(self, name: str) -> bytes | None:
        """
        The PNG served at ``/profile_images/NAME`` (``HASH_SIZE.png``), or
        ``None``.
        """
        match = _NAME_RE.match(name)
        if match is None:
            return None
        size = match.group("size")
        if match.group("hash") == DEFAULT_IMAGE:
            if size not in self._defaults:
                self._defaults[size] = await self.in_thread(default_image, size)
            return self._defaults[size]
        found: bytes | None = await self._store.profile_image(match.group("hash"), size)
        return found


def image_url(account: Account, public_url: str, size: str = "normal") -> str:
    """
    The URL of an account's profile image: for a local user, where this
    server serves it; for a remote one, the URL their server gave; else
    this server's default image.
    """
    if account.profile_image:
        if not account.is_local:
            return account.profile_image
        return f"{public_url}{PROFILE_IMAGES}{account.profile_image}_{size}.png"
    return f"{public_url}{PROFILE_IMAGES}{DEFAULT_IMAGE}_{size}.png"


__all__ = [
    "DEFAULT_IMAGE", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "PROFILE_IMAGES", "SIZES",
    "ImageRefused", "ProfileImages", "image_url", "resize_all",
]
