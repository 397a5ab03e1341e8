"""
The twitter role's service: owns the store and serves the API and pages.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.web.resource import IResource, Resource

from distwit.api.app import API_SECTIONS, TwitterAPI
from distwit.config import Settings
from distwit.passwords import PasswordHasher
from distwit.store.interfaces import IStore
from distwit.twitter.core import Microblog
from distwit.web.pages import Pages
from distwit.web.secrets import load_or_create_secret


def thread_runner(reactor: Any) -> Any:
    """
    ``f(*args)`` in the reactor's thread pool, as a Deferred.
    """

    def run(f: Any, *args: Any, **kwargs: Any) -> "Deferred[Any]":
        return deferToThreadPool(reactor, reactor.getThreadPool(), f, *args, **kwargs)

    return run


class TwitterRoot(Resource):
    """
    ``/1.1/...``, ``/api/...`` and the 2008 sections (``/statuses/...``)
    go to the API; everything else to the pages.
    """

    def __init__(self, api: IResource, pages: IResource) -> None:
        super().__init__()
        self._api = api
        self._pages = pages
        self.putChild(b"1.1", api)
        self.putChild(b"api", api)

    def getChild(self, path: bytes, request: Any) -> IResource:
        request.postpath.insert(0, request.prepath.pop())
        if path.decode("utf-8", "replace") in API_SECTIONS:
            return self._api
        return self._pages


class TwitterService(Service):
    """
    Users, posts and follows of this server, on the web.

    :param store: an opened :class:`IStore`; closed when the service stops.
    """

    name = "twitter"
    log = Logger()

    def __init__(self, settings: Settings, store: IStore, reactor: Any,
                 hasher: PasswordHasher | None = None) -> None:
        self.settings = settings
        self.store = store
        self.hasher = hasher or PasswordHasher(thread_runner(reactor))
        self.microblog = Microblog(store, self.hasher, reactor)
        self.api = TwitterAPI(self.microblog)
        self.pages = Pages(
            self.microblog,
            secret=load_or_create_secret(settings.data),
            clock=reactor,
            open_registration=settings.open_registration,
            secure_cookies=settings.public_url.startswith("https:"),
        )

    def resource(self) -> IResource:
        return TwitterRoot(self.api.resource(), self.pages.resource())

    def startService(self) -> None:
        super().startService()
        self.log.info("twitter role serving {url}", url=self.settings.public_url)

    def stopService(self) -> "Deferred[None]":
        super().stopService()
        return self.store.close()
