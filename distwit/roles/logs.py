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

import re
import sys
from typing import IO, Any

from twisted.application.service import MultiService
from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    ILogObserver,
    LogEvent,
    LogLevel,
    LogLevelFilterPredicate,
    formatEventAsClassicLogText,
    formatTime,
    jsonFileLogObserver,
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


#: A format that is one field of the event (``"{access_line}"``).
_ONE_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ClassicText:
    """
    Twisted's text log lines (``textFileLogObserver``: the same text), made
    cheaper for the events of every request (the access log): the time is
    formatted once a second, and an event whose format is one field of it
    (``"{access_line}"``) is that field, without a format string parsed.
    Any other event is formatted by Twisted.
    """

    def __init__(self) -> None:
        self._second: int | None = None
        self._time = ""

    def _format_time(self, when: float) -> str:
        # Twisted's format shows whole seconds (and the zone's offset,
        # which changes on whole seconds).
        second = int(when)
        if second != self._second:
            self._time = formatTime(second)
            self._second = second
        return self._time

    def __call__(self, event: LogEvent) -> str | None:
        log_format = event.get("log_format")
        field = _ONE_FIELD.fullmatch(log_format) if isinstance(log_format, str) else None
        if (field is None or "log_failure" in event or "log_flattened" in event
                or "log_system" in event):
            return formatEventAsClassicLogText(event, formatTime=formatTime)
        try:
            text = format(event[field.group(1)], "")
        except Exception:
            return formatEventAsClassicLogText(event, formatTime=formatTime)
        if not text:
            return None
        when = event.get("log_time")
        stamp = "-" if when is None else self._format_time(when)
        level = event.get("log_level")
        system = f"{event.get('log_namespace', '-')}#{'-' if level is None else level.name}"
        return f"{stamp} [{system}] {text}".replace("\n", "\n\t") + "\n"


def make_observer(settings: Settings, output: IO[Any]) -> ILogObserver:
    """
    An observer writing to ``output`` in ``settings.log_format``, keeping
    the events of ``settings.log_level`` and above.
    """
    if settings.log_format == "json":
        # One JSON object a line, no RFC 7464 separator: what log shippers read.
        observer = jsonFileLogObserver(output, recordSeparator="")
    else:
        observer = FileLogObserver(output, ClassicText())
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
