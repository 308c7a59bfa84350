"""`trade play status` and `trade play stop`: a running session seen and stopped from another
terminal, through its record only.

The runner writes its state (`status_of`) into the record's meta after every step and its process
id at start; a reader opens the file read-only (WAL: the session never waits for it). Stopping is
a signal to that process: SIGTERM (resting entries cancelled, the position keeps its stop) or
SIGUSR1 (`--flatten`: the position is closed first, then the same).
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from ..errors import InputError
from .session import SessionRecord, list_sessions, session_path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def session_status(name: str) -> dict[str, Any]:
    """One session's state as its runner last wrote it, with whether it still runs."""
    path = session_path(name)
    if not path.exists():
        raise InputError(f"no session {name!r} ({path}); `trade play sessions` lists them")
    with SessionRecord(path, readonly=True) as rec:
        meta = rec.meta()
    return _status(name, meta)


def _status(name: str, meta: dict[str, str]) -> dict[str, Any]:
    pid = int(meta["pid"]) if meta.get("pid") else None
    state = meta.get("state", "starting" if pid else "ended")
    if state in ("starting", "running") and (pid is None or not _alive(pid)):
        state = "dead"  # the process ended without stopping the session (a crash, kill -9)
    status = json.loads(meta["status"]) if meta.get("status") else {}
    return {
        "name": name,
        "state": state,
        "pid": pid,
        "mode": meta.get("mode"),
        "play": meta.get("play"),
        "symbol": meta.get("symbol"),
        **{k: v for k, v in status.items() if k not in ("mode", "play", "symbol")},
    }


def all_statuses() -> list[dict[str, Any]]:
    return [_status(s.name, s.meta) for s in list_sessions()]


def stop_session(name: str, *, flatten: bool = False, wait_s: float = 60.0) -> dict[str, Any]:
    """Signal the session's process and wait until its record says it stopped."""
    st = session_status(name)
    if st["state"] not in ("starting", "running"):
        raise InputError(f"session {name!r} is not running (state {st['state']})")
    assert st["pid"] is not None
    os.kill(st["pid"], signal.SIGUSR1 if flatten else signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        st = session_status(name)
        if st["state"] not in ("starting", "running"):
            return st
        time.sleep(0.1)
    raise InputError(f"session {name!r} (pid {st['pid']}) did not stop within {wait_s:g} s")
