"""Structured logs: one JSON object per line in `~/.trade/logs/trade.jsonl` (`$TRADE_LOGS` moves the
directory), rotated at 10 MB with five old files kept, secrets redacted before anything is written.

Live sessions log every journal line (`session`, `kind`, `message` and the line's data) so one file
follows every session and every command; `jq` reads it. Redaction: the API keys and secrets of the
environment (`BYBIT_*_API_KEY` / `_SECRET`) and of any credentials loaded (`register_secret`) are
replaced by `<redacted>` wherever they appear, and so are the values of fields named like secrets
(`api_key`, `secret`, `sign`, `signature`, `token`, `password`) and `X-BAPI-SIGN`/`-API-KEY` headers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import os
import re
from pathlib import Path
from typing import Any

LOGGER = "trade"
MAX_BYTES = 10_000_000
BACKUPS = 5
SECRET_ENV = ("BYBIT_DEMO_API_KEY", "BYBIT_DEMO_API_SECRET", "BYBIT_LIVE_API_KEY",
              "BYBIT_LIVE_API_SECRET")  # fmt: skip
SECRET_FIELD = re.compile(
    r"(?i)^(x-bapi-sign|x-bapi-api-key|api[_-]?key|api[_-]?secret|secret|sign|signature|token|"
    r"password)$"
)
SECRET_TEXT = re.compile(
    r"(?i)\b((?:x-bapi-(?:sign|api-key)|api[_-]?key|api[_-]?secret|secret|sign|signature|token|"
    r"password)[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;}]+)"
)
REDACTED = "<redacted>"
_secrets: set[str] = set()


def logs_dir() -> Path:
    env = os.environ.get("TRADE_LOGS")
    return Path(env) if env else Path.home() / ".trade" / "logs"


def register_secret(*values: str) -> None:
    """Values never to be written, whatever field or message they turn up in."""
    _secrets.update(v for v in values if v and len(v) >= 4)


def redact(text: str) -> str:
    for s in sorted(_secrets | {os.environ.get(k, "") for k in SECRET_ENV} - {""}, key=len,
                    reverse=True):  # fmt: skip
        if len(s) >= 4:
            text = text.replace(s, REDACTED)
    return SECRET_TEXT.sub(lambda m: m.group(1) + REDACTED, text)


def _clean(value: Any, key: str = "") -> Any:
    if key and SECRET_FIELD.match(key):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value if isinstance(value, int | float | bool | type(None)) else redact(str(value))


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        out.update(_clean(getattr(record, "fields", {})))
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str, sort_keys=False)


def setup(max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> logging.Logger:
    """The `trade` logger writing JSON lines to the rotating file (once per process)."""
    logger = logging.getLogger(LOGGER)
    path = logs_dir() / "trade.jsonl"
    for h in logger.handlers:
        if isinstance(h, logging.handlers.RotatingFileHandler) and Path(h.baseFilename) == path:
            return logger
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.setFormatter(JsonLines())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def log(level: int, message: str, /, **fields: Any) -> None:
    logging.getLogger(LOGGER).log(level, message, extra={"fields": fields})


def journal_listener(session: str) -> Any:
    """A session record listener that logs every journal line (errors at error level)."""
    errors = {"error", "failed", "rejected", "unknown", "stop_failed", "stream_error", "halt"}

    def listen(ts: int | None, kind: str, message: str, data: dict[str, Any]) -> None:
        level = logging.WARNING if kind in errors else logging.INFO
        log(level, message, session=session, kind=kind, ts=ts, data=data)

    return listen
