"""Log lines for people (text, the default) or for a log shipper (``LOG_FORMAT=json``).

JSON logs carry one object per line: time, level, logger, event (the message), and the
structured fields a line passes in ``extra`` (``channel``, ``agency``, ``outbox_id``,
``case_id``, ``update_id`` ...). Prima never logs what a resident wrote or who they are, so
neither format carries message text or personal data; only whitelisted fields are copied.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Structured fields a log call may pass with ``extra={...}``; anything else stays out.
FIELDS = ("channel", "agency", "outbox_id", "case_id", "update_id", "job", "count", "seconds", "status")


class _Json(JsonFormatter):
    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        log_record["time"] = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        log_record["level"] = record.levelname
        log_record["logger"] = record.name
        log_record["event"] = record.getMessage()
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                log_record[name] = value
        if record.exc_info:
            log_record["exc_info"] = self.formatException(record.exc_info)


def formatter(kind: str) -> logging.Formatter:
    """The formatter for ``LOG_FORMAT`` (``text`` or ``json``)."""
    if kind == "json":
        fmt = _Json(json_ensure_ascii=False)
        fmt.converter = time.gmtime  # UTC, as the trailing Z says
        return fmt
    return logging.Formatter(TEXT_FORMAT)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Prima's own handler, so a second :func:`configure` replaces it and nothing else
    (handlers an embedding program or a test runner added stay)."""


def configure(level: int, kind: str = "text", stream: TextIO | None = None) -> None:
    """Prima's handler on the root logger, replacing an earlier one (a second call reconfigures)."""
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(formatter(kind))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
