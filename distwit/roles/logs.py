"""
Where and how a server logs (docs/operating.md, "Logs").

``twistd`` asks the application for an ``ILogObserver`` before it makes
its own (as a ``.tac`` file may give one): the service tree of
``twistd distwit`` hands it :func:`make_observer`'s, which writes where
twistd would have (standard output with ``-n``, else ``--logfile`` or
``twistd.log``), as text or JSON lines, and keeps only the events of
``log_level`` and above (info by default: the routine exchanges between
servers, at debug level, are left out).  ``twistd --logger`` and
``--syslog`` still win.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from twisted.application.service import MultiService
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    jsonFileLogObserver,
    textFileLogObserver,
)
from twisted.python.components import Componentized
from twisted.python.logfile import LogFile

from distwit.config import Settings


def log_file(twistd_options: Any) -> IO[Any]:
    """
    The file twistd would log to with these options (``-n``, ``--logfile``).
    """
    if twistd_options is None:
        return sys.stdout
    name = twistd_options.get("logfile")
    nodaemon = twistd_options.get("nodaemon")
    if name == "-" or (not name and nodaemon):
        return sys.stdout
    return LogFile.fromFullPath(name or "twistd.log")  # type: ignore[return-value]


def make_observer(settings: Settings, output: IO[Any]) -> ILogObserver:
    """
    An observer writing to ``output`` in ``settings.log_format``, keeping
    the events of ``settings.log_level`` and above.
    """
    if settings.log_format == "json":
        # One JSON object a line, no RFC 7464 separator: what log shippers read.
        observer = jsonFileLogObserver(output, recordSeparator="")
    else:
        observer = textFileLogObserver(output)
    level = LogLevel.levelWithName(settings.log_level)
    return FilteringLogObserver(observer, [LogLevelFilterPredicate(defaultLogLevel=level)])


class LoggingService(MultiService):
    """
    The top of a server's service tree: when twistd makes it a child of
    its application, it gives the application the log observer (unless
    twistd was told its own: ``--logger``, ``--syslog``).
    """

    def __init__(self, settings: Settings, twistd_options: Any = None) -> None:
        super().__init__()
        self.settings = settings
        self.twistd_options = twistd_options

    def _twistd_decides(self) -> bool:
        options = self.twistd_options
        return options is not None and bool(options.get("logger") or options.get("syslog"))

    def setServiceParent(self, parent: Any) -> None:
        if isinstance(parent, Componentized) and not self._twistd_decides():
            observer = make_observer(self.settings, log_file(self.twistd_options))
            parent.setComponent(ILogObserver, observer)
        super().setServiceParent(parent)
