"""Durable paper sessions: `trade play run` in a subprocess is killed with SIGKILL at random moments
of a replayed day and restarted with the same `--session` each time; at the end the session holds
exactly the backtest's orders, fills and trades on the same bars. Instants that closed while it
was down are decided but journaled as missed, never traded late. Bad resumes are refused."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.bybit import FakeBybit
from fakes.market_day import MarketDay
from trade.data import MarketStore
from trade.engine.backtest import parse_time, run_backtest
from trade.live.session import SessionRecord

EXEC_MS = 15 * 60_000
PLAY_ARGS = ["--play", "ema_cross", "--mode", "paper"]


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, fake: FakeBybit) -> dict[str, str]:
    db = tmp_path / "market.duckdb"
    with MarketStore(db) as store:
        store.ensure_sample()
    out = dict(os.environ, HOME=str(tmp_path), TRADE_DB=str(db), **fake.env())
    for var in ("BYBIT_DEMO_API_KEY", "BYBIT_DEMO_API_SECRET", "BYBIT_LIVE_API_KEY",
                "BYBIT_LIVE_API_SECRET"):  # fmt: skip
        out.pop(var, None)
    return out


def trade(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trade.cli.main", *args], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


class Session:
    """`trade play run --session NAME` in a subprocess, restarted after each kill."""

    def __init__(self, fake: FakeBybit, env: dict[str, str], tmp_path: Path, name: str) -> None:
        self.fake, self.env, self.name = fake, env, name
        self.path = tmp_path / ".trade" / "sessions" / f"{name}.sqlite"
        self.log = tmp_path / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *args: str) -> None:
        seen = {c["id"] for c in self.fake.connections}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trade.cli.main", "play", "run", "--session", self.name,
                 "--quiet", *args],
                env=self.env, stdout=log, stderr=log,
            )  # fmt: skip
        self.starts += 1
        deadline = time.monotonic() + 60
        while not any(c["id"] not in seen and c["topics"] for c in self.fake.connections):
            self.alive()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.02)

    def alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL

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
        if last_1m is None or last_1m + 60_000 < close:
            return False
        if close % EXEC_MS:
            return True  # no instant to evaluate at `close`
        return int(meta.get("last_instant", 0)) >= close

    async def wait(self, close: int) -> None:
        deadline = time.monotonic() + 60
        while not self.handled(close):
            self.alive()
            assert time.monotonic() < deadline, f"{close} never handled\n{self.log.read_text()}"
            await asyncio.sleep(0.005)


def market_day(fake: FakeBybit, env: dict[str, str], start: int, end: int) -> MarketDay:
    with MarketStore(Path(env["TRADE_DB"]), read_only=True) as store:
        day = MarketDay(fake, store, "BTCUSDT", ["15m", "1h", "4h"], start, end)
        day.load_history()
    return day


def test_a_paper_session_killed_at_random_moments_ends_as_the_backtest(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    start, end = parse_time("2025-06-11", "s"), parse_time("2025-06-12", "e")
    day = market_day(fake, env, start, end)
    minutes = list(day.minutes())
    rng = random.Random(20251201)
    entry = parse_time("2025-06-11T08:00", "s")  # the day's first entry decision (short)
    closes = [m + 60_000 for m in minutes[5:]]
    kill_at = {entry, *rng.sample([c for c in closes if c % EXEC_MS == 0], 3),
               *rng.sample([c for c in closes if c % EXEC_MS], 3)}  # fmt: skip
    session = Session(fake, env, tmp_path, "k9")
    session.start(*PLAY_ARGS)

    async def play() -> None:
        for m in minutes:
            close = m + 60_000
            if close not in kill_at:
                await day.play_minute(m, session.wait)
                continue
            day.fake.set_time(close)
            day.push_closed(close)
            await asyncio.sleep(rng.uniform(0.0, 0.03))  # mid-handling or just after
            session.kill()
            session.start()  # mode, symbol and Play come from the session itself
            day.push_closed(close)  # a push the new stream did not get (a duplicate is dropped)
            await session.wait(close)

    asyncio.run(play())
    session.stop()
    assert session.starts == len(kill_at) + 1 == 8

    with SessionRecord(session.path, readonly=True) as rec:
        journal = rec.journal_rows()
        orders, fills, trades = rec.order_rows(), rec.fill_rows(), rec.trade_rows()
        decisions = rec.decision_rows()
    assert sum(j["kind"] == "resume" for j in journal) == len(kill_at)
    assert [j for j in journal if j["kind"] == "missed"] == []
    bt = run_backtest("ema_cross", symbol="BTCUSDT", start="2025-06-11", end="2025-06-12",
                      mode="replay")  # fmt: skip
    events = [e for e in bt.output.events if e["ts"] <= end]
    # no order lost or doubled: the backtest's orders, once each, at the same times
    assert [(o["ts"], o["body"]["side"], o["body"]["kind"]) for o in orders] == [
        (e["ts"], e["side"], e["kind"]) for e in events if e["type"] == "order"
    ]
    # every execution booked once, at the backtest's price and size
    assert [(f["ts"], f["side"], f["qty"], f["price"]) for f in fills] == [
        (e["ts"], e["side"], e["qty"], e["price"])
        for e in events
        if e["type"] == "fill" and e.get("reason") != "end_of_data"
    ]
    closed = [t for t in bt.output.trades if t["exit_reason"] != "end_of_data"]
    for got, want in zip(trades, closed, strict=True):  # (paper names the entry's block too)
        assert {k: v for k, v in got.items() if k != "metadata" and v != want[k]} == {}
    assert len(fills) >= 2 and any(d["ts"] == entry for d in decisions)
    done = trade("play", "diff", "k9", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["reproduced"] is True
    assert report["decisions_live"] == report["decisions_replayed"] == len(decisions)
