"""Opening the market store so that readers share it and a writer waits its turn.

DuckDB lets any number of processes open a database file read-only, or exactly one open it
read-write. Backtests, audits and status reports only read, so they open read-only and run side by
side; only the first run on a fresh store writes (the bundled sample, once). A process that finds
the file locked by another waits, says so once on stderr, and after `$TRADE_DB_WAIT` seconds
(default 60) fails with one line instead of DuckDB's lock error.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from .. import config
from ..errors import DataError

if TYPE_CHECKING:
    from .store import MarketStore

POLL_S = 0.1


def connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to `path`, waiting while another process holds a conflicting lock."""
    if not read_only and not path.exists():
        _create(path)
    deadline: float | None = None
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise DataError(f"cannot open market store {path}: {exc}") from None
            holder = _holder(str(exc))
        except duckdb.Error as exc:
            raise DataError(f"cannot open market store {path}: {exc}") from None
        wait = config.db_wait_seconds()
        if deadline is None:
            deadline = time.monotonic() + wait
            if wait > 0:
                print(
                    f"market store {path} is in use by {holder}; waiting up to {wait:g} s",
                    file=sys.stderr,
                    flush=True,
                )
        if time.monotonic() >= deadline:
            raise DataError(
                f"market store {path} is still in use by {holder} after {wait:g} s; "
                "try again when it has finished (or raise TRADE_DB_WAIT)"
            )
        time.sleep(POLL_S)


def open_reader(path: Path | None = None, sample: bool = True) -> MarketStore:
    """The store (`path`, else the configured one) opened read-only; created first if missing, and
    with `sample` the bundled sample written first if it never was."""
    from .store import MarketStore

    path = Path(path) if path is not None else config.db_path()
    if path.exists():
        store = MarketStore(path, read_only=True)
        if not sample or store.has_sample():
            return store
        store.close()
    with MarketStore(path) as writer:
        if sample:
            writer.ensure_sample()
    return MarketStore(path, read_only=True)


def _create(path: Path) -> None:
    """Create an empty store at `path` atomically. DuckDB writes a new file's header after the
    file appears, so a second process opening it in between reads a file that is 'not a valid
    DuckDB database'. The store is made under a private name and linked into place, which never
    replaces a file another process made first."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    tmp.unlink(missing_ok=True)
    try:
        duckdb.connect(str(tmp)).close()
    except duckdb.Error as exc:
        raise DataError(f"cannot create market store {path}: {exc}") from None
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created it first; theirs is as good as ours
    except OSError:  # a file system without hard links: a rename, still atomic
        if not path.exists():
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _holder(message: str) -> str:
    pid = re.search(r"\(PID (\d+)\)", message)
    return f"another process (PID {pid.group(1)})" if pid else "another process"
