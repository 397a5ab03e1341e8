"""
Profile images through the Twitter API, in memory:
``account/update_profile_image`` (multipart or base64), what is refused,
the sizes served at ``/profile_images/…`` with their cache headers, and
the URLs in user objects.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

from PIL import Image

from distwit.core.images import MAX_IMAGE_BYTES, resize_all

from tests.test_api import BASE, PASSWORDS, APITestCase


def png(width: int, height: int, mode: str = "RGB", color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), color if mode == "RGB" else 0).save(out, "PNG")
    return out.getvalue()


class ProfileImageTests(APITestCase):
    def upload(self, user: str, data: bytes, multipart: bool = True) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"auth": (user, PASSWORDS[user])}
        if multipart:
            boundary = "distwit-test-boundary"
            kwargs["data"] = (
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\";"
                f" filename=\"me.png\"\r\nContent-Type: image/png\r\n\r\n"
            ).encode("ascii") + data + f"\r\n--{boundary}--\r\n".encode("ascii")
            kwargs["headers"] = {
                "Content-Type": f"multipart/form-data; boundary={boundary}"
            }
        else:
            kwargs["data"] = {"image": base64.b64encode(data).decode("ascii")}
        d = self.stub.request("POST", BASE + "/1.1/account/update_profile_image.json", **kwargs)
        self.stub.flush()
        response = self.successResultOf(d)
        body = self.successResultOf(response.content())
        return response.code, json.loads(body)

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
        d = self.stub.get(url, headers=headers or {})
        self.stub.flush()
        response = self.successResultOf(d)
        body = self.successResultOf(response.content())
        return response.code, body, response

    def test_upload_and_serve(self) -> None:
        """
        An uploaded PNG becomes the user's image: user objects name it
        (``_normal``, 48x48), and the three sizes are served as PNGs,
        cached for good with an ETag that answers 304.  A base64 form field
        works too.
        """
        self.settings  # the public URL the API was built with
        code, user = self.upload("alice", png(600, 300))
        self.assertEqual(code, 200, user)
        url = user["profile_image_url"]
        self.assertRegex(url, r"/profile_images/[0-9a-f]{32}_normal\.png\Z")
        self.assertEqual(user["profile_image_url_https"], url)
        self.assertFalse(user["default_profile_image"])
        for size, side in (("normal", 48), ("bigger", 73), ("400x400", 400)):
            code, body, response = self.fetch(BASE + url[url.index("/profile_images/"):]
                                              .replace("_normal", "_" + size))
            self.assertEqual(code, 200)
            self.assertEqual(Image.open(io.BytesIO(body)).size, (side, side))
            self.assertEqual(response.headers.getRawHeaders("content-type"), ["image/png"])
            self.assertIn("max-age=31536000", response.headers.getRawHeaders("cache-control")[0])
        etag = response.headers.getRawHeaders("etag")[0]
        code, _, _ = self.fetch(BASE + url[url.index("/profile_images/"):],
                                {"If-None-Match": etag.replace("400x400", "normal")})
        self.assertEqual(code, 304)
        code, shown, _ = self.call("GET", "/1.1/users/show.json", params={"screen_name": "alice"})
        self.assertEqual(shown["profile_image_url"], url)
        code, user = self.upload("bob", png(100, 100, color="blue"), multipart=False)
        self.assertEqual(code, 200, user)
        self.assertNotEqual(user["profile_image_url"], url)

    def test_default_image(self) -> None:
        """
        A user without an image has the default one, served here in every
        size; an unknown image name is 404.
        """
        code, shown, _ = self.call("GET", "/1.1/users/show.json", params={"screen_name": "carol"})
        url = shown["profile_image_url"]
        self.assertTrue(shown["default_profile_image"])
        self.assertTrue(url.endswith("/profile_images/default_normal.png"), url)
        code, body, _ = self.fetch(BASE + "/profile_images/default_bigger.png")
        self.assertEqual((code, Image.open(io.BytesIO(body)).size), (200, (73, 73)))
        code, _, _ = self.fetch(BASE + "/profile_images/" + "0" * 32 + "_normal.png")
        self.assertEqual(code, 404)
        code, _, _ = self.fetch(BASE + "/profile_images/../../etc/passwd")
        self.assertEqual(code, 404)

    def test_refused(self) -> None:
        """
        Not an image, over 700 kB, or too many pixels (a decompression bomb
        of a small file) are refused in Twitter's error format; nothing
        changes; a missing image is 170.
        """
        bomb = png(20000, 20000, mode="1")
        self.assertLess(len(bomb), MAX_IMAGE_BYTES)
        for data, why in (
            (b"GIF89a not really", "not an image"),
            (b"\x89PNG" + b"\0" * (MAX_IMAGE_BYTES + 1), "700 kB"),
            (bomb, "pixels"),
            (png(5000, 4000, mode="1"), "pixels"),
        ):
            code, body = self.upload("alice", data)
            self.assertEqual((code, body["errors"][0]["code"]), (400, 324), body)
            self.assertIn(why, body["errors"][0]["message"])
        code, shown, _ = self.call("GET", "/1.1/users/show.json", params={"screen_name": "alice"})
        self.assertTrue(shown["default_profile_image"])
        self.assertError(self.call("POST", "/1.1/account/update_profile_image.json", "alice",
                                   data={"x": "1"}), 400, 170)
        self.assertError(self.call("POST", "/1.1/account/update_profile_image.json", "alice",
                                   data={"image": "!!!"}), 400, 44)

    def test_pages_show_local_avatars(self) -> None:
        """
        The pages show a local author's image beside their posts (served
        here); after an upload, the new one.
        """
        self.post("alice", "with a face")
        code, page, _ = self.fetch(BASE + "/alice")
        self.assertEqual(code, 200)
        self.assertIn(b'<img class="avatar" src="/profile_images/default_normal.png"', page)
        _, user = self.upload("alice", png(50, 50, color="green"))
        path = user["profile_image_url"][len(BASE):]
        _, page, _ = self.fetch(BASE + "/alice")
        self.assertIn(f'<img class="avatar" src="{path}"'.encode(), page)

    def test_same_image_same_hash(self) -> None:
        """
        The same picture gives the same name (its PNGs' hash): URLs are
        stable.
        """
        self.assertEqual(resize_all(png(64, 64))[0], resize_all(png(64, 64))[0])
