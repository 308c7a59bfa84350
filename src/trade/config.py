"""Process-wide settings resolved once at the edge (CLI flags, then environment, then defaults)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from .errors import InputError

_db_override: Path | None = None
_command: list[str] | None = None


def set_db_path(path: Path | None) -> None:
    """Set by the CLI's global `--db` option; wins over `TRADE_DB`."""
    global _db_override
    _db_override = path


def set_command_line(argv: list[str] | None) -> None:
    """Set by the CLI: the command as typed, recorded in each run's result.json."""
    global _command
    _command = argv


def command_line() -> list[str] | None:
    return _command


def db_path() -> Path:
    """Market store location: `--db`, else `$TRADE_DB`, else `~/.trade/market.duckdb`."""
    if _db_override is not None:
        return _db_override
    env = os.environ.get("TRADE_DB")
    if env:
        return Path(env)
    return Path.home() / ".trade" / "market.duckdb"


def db_wait_seconds() -> float:
    """How long to wait for a market store another process holds: `$TRADE_DB_WAIT`, else 60 s."""
    raw = os.environ.get("TRADE_DB_WAIT", "60")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:
        raise InputError(f"TRADE_DB_WAIT={raw!r}: expected seconds between 0 and 86400")
    return value


def user_config_path() -> Path:
    """The account-wide settings: `$TRADE_CONFIG`, else `~/.trade/config.toml`."""
    env = os.environ.get("TRADE_CONFIG")
    return Path(env) if env else Path.home() / ".trade" / "config.toml"


def user_config() -> dict[str, Any]:
    """The parsed config file ({} when there is none); a bad file is one clear line."""
    path = user_config_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
