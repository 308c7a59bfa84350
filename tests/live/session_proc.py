"""A session as a user runs it: `trade play run --session NAME` in a subprocess against the fake
exchange, paced through a replayed day by its own record, killed with SIGKILL (by the test or by
the fake's crash hooks) and restarted with the same name."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from fakes.bybit import FakeBybit
from fakes.market_day import MarketDay
from trade.data import MarketStore
from trade.timeframes import MINUTE_MS

EXEC_MS = 15 * 60_000


#: sessions whose process was started and may still run (the live conftest reaps them after
#: each test, so a failed test leaves no `trade play run` behind)
STARTED: list[Session] = []


class Killed(Exception):
    """The session's process died of SIGKILL while the test waited on it."""


class Session:
    """`trade play run --session NAME` in a subprocess, restarted after each kill."""

    def __init__(
        self,
        fake: FakeBybit,
        env: dict[str, str],
        tmp_path: Path,
        name: str,
        *,
        streams: int = 1,
        exec_ms: int = EXEC_MS,
        launcher: Sequence[str] = ("-m", "trade.cli.main"),
    ) -> None:
        self.fake, self.env, self.name, self.exec_ms = fake, env, name, exec_ms
        self.launcher = list(launcher)  # what runs the `trade` command line after the python
        self.streams = streams  # sockets it subscribes once set up: 1 (paper), 2 (demo, live)
        self.path = tmp_path / ".trade" / "sessions" / f"{name}.sqlite"
        self.log = tmp_path / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, *args: str) -> None:
        """Start it and wait until it subscribed its sockets (warmup and set-up are done)."""
        seen = {c["id"] for c in self.fake.connections}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *self.launcher, "play", "run", "--session", self.name,
                 "--quiet", *args],
                env=self.env, stdout=log, stderr=log,
            )  # fmt: skip
        self.starts += 1
        STARTED.append(self)
        deadline = time.monotonic() + 60
        while sum(c["id"] not in seen and bool(c["topics"]) for c in self.fake.connections) < (
            self.streams
        ):
            self.alive()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.02)

    def alive(self) -> None:
        """Raise `Killed` if it died of SIGKILL; fail with its log if it ended any other way."""
        assert self.proc is not None
        code = self.proc.poll()
        if code == -signal.SIGKILL:
            raise Killed(self.name)
        assert code is None, f"exit {code}\n{self.log.read_text()}"

    def dead(self) -> bool:
        assert self.proc is not None
        return self.proc.poll() == -signal.SIGKILL

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL

    def reap(self) -> None:
        """SIGKILL the process if it still runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(30) == 0, self.log.read_text()

    def handled(self, close: int) -> bool:
        """The 1m bar closing at `close` is recorded (and, at an exec close, evaluated)."""
        if not self.path.exists():
            return False
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            last_1m = con.execute("SELECT max(ts) FROM bars WHERE tf = '1m'").fetchone()[0]
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError:
            return False
        finally:
            con.close()
        if "start_ms" not in meta:
            return False
        if close <= int(meta["start_ms"]):
            return True  # warmup covered it
        if last_1m is None or last_1m + MINUTE_MS < close:
            return False
        if close % self.exec_ms:
            return True  # no instant to evaluate at `close`
        return int(meta.get("last_instant", 0)) >= close

    async def wait(self, close: int) -> None:
        """Until `close` is handled; `Killed` if the process was killed meanwhile."""
        deadline = time.monotonic() + 60
        while not self.handled(close):
            self.alive()
            assert time.monotonic() < deadline, f"{close} never handled\n{self.log.read_text()}"
            await asyncio.sleep(0.005)


def market_day(
    fake: FakeBybit, env: dict[str, str], start: int, end: int, symbol: str = "BTCUSDT",
    tfs: tuple[str, ...] = ("15m", "1h", "4h"),
) -> MarketDay:  # fmt: skip
    with MarketStore(Path(env["TRADE_DB"]), read_only=True) as store:
        day = MarketDay(fake, store, symbol, tfs, start, end)
        day.load_history()
    return day
