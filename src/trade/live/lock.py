"""One process per session, and per (environment, account, symbol) for demo and live.

Two processes trading the same symbol on the same account would each take the other's orders
and position for foreign ones, and two writers of one session file would interleave their
records. Each holds an exclusive `flock` on a file under `~/.trade/locks/` for the session's
life; the kernel releases it when the process ends, however it ends (`kill -9` included), so a
stale lock can never block a restart. The file names the holder (pid and session) for the
refusal message.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError


def locks_dir() -> Path:
    return Path.home() / ".trade" / "locks"


def lock_keys(
    session: str, mode: str, environment: str, symbol: str, api_key: str | None
) -> list[tuple[str, str]]:
    """(file stem, what it guards) for a session: its name, and for demo and live the account
    (named by a digest of its API key, never the key) and symbol it trades."""
    keys = [(f"session-{session}", f"session {session!r}")]
    if mode != "paper" and api_key:
        account = hashlib.sha256(api_key.encode()).hexdigest()[:12]
        keys.append(
            (f"{environment}-{account}-{symbol}",
             f"{symbol} on {environment} account {account}")
        )  # fmt: skip
    return keys


@contextlib.contextmanager
def hold(keys: list[tuple[str, str]], session: str) -> Iterator[None]:
    """Hold every lock of `keys` until the block ends; refused (exit 2) when one is held."""
    with contextlib.ExitStack() as stack:
        for stem, what in keys:
            stack.enter_context(_hold_one(locks_dir() / f"{stem}.lock", what, session))
        yield


@contextlib.contextmanager
def _hold_one(path: Path, what: str, session: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            raise InputError(
                f"{what} is held by pid {holder.get('pid', '?')} (session "
                f"{holder.get('session', '?')!r}): one process per session and per environment, "
                "account and symbol"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "session": session}).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _read(fd: int) -> dict[str, object]:
    raw = os.pread(fd, 4096, 0)
    try:
        data = json.loads(raw.decode())
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
