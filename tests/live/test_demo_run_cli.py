"""`trade play run --mode demo` as a user runs it, against the fake exchange with demo keys: the
session trades through the order manager, its panel shows the position with the stop resting on
the exchange, SIGTERM stops it with the position still protected, and the diff reproduces it."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.bybit import FakeBybit
from fakes.market_day import MarketDay
from trade.data import MarketStore
from trade.engine.backtest import parse_time

from .cli_run import drawn, process_env

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
M15 = 15 * 60_000


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, fake: FakeBybit) -> dict[str, str]:
    return process_env(tmp_path, fake, demo_keys=True, COLUMNS="120")


ACTED = ("order", "rejected", "failed", "unknown", "refused", "skip")


def settled(path: Path, close: int) -> bool:
    """The session evaluated `close` and acted on each of its decisions there (an order sent
    and answered, or why not)."""
    if not path.exists():
        return False
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'last_instant'").fetchone()
        decided = con.execute("SELECT count(*) FROM decisions WHERE ts = ?", (close,)).fetchone()
        acted = con.execute(
            f"SELECT count(*) FROM journal WHERE ts = ? AND kind IN {ACTED}", (close,)
        ).fetchone()
    except sqlite3.OperationalError:
        return False
    finally:
        con.close()
    return bool(row) and int(row[0]) >= close and acted[0] >= decided[0]


def journal(path: Path) -> list[tuple[int, str, str]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT ts, kind, message FROM journal ORDER BY seq").fetchall()
    finally:
        con.close()


def test_demo_session_in_a_terminal_trades_on_the_exchange_and_stops_protected(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    start, end = parse_time("2025-06-11T06:00", "s"), parse_time("2025-06-11T10:00", "e")
    with MarketStore(Path(env["TRADE_DB"]), read_only=True) as store:
        day = MarketDay(fake, store, "BTCUSDT", ["15m", "1h", "4h"], start, end)
        day.load_history()
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trade.cli.main", "play", "run", "--play", "ema_cross",
         "--mode", "demo", "--session", "demo1"],
        env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []

    def pump() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    session = tmp_path / ".trade" / "sessions" / "demo1.sqlite"

    def screen() -> str:
        return ANSI.sub("", b"".join(chunks).decode(errors="replace"))

    async def wait(close: int) -> None:
        if close % M15 or close <= start:
            return
        deadline = time.monotonic() + 60
        while not settled(session, close):
            assert proc.poll() is None, screen()[-3000:]
            assert time.monotonic() < deadline, f"no evaluation of {close}"
            await asyncio.sleep(0.02)

    async def subscribed() -> None:
        deadline = time.monotonic() + 60
        while sum(1 for c in fake.connections if c["topics"]) < 2:  # public and private
            assert proc.poll() is None, screen()[-3000:]
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)

    asyncio.run(subscribed())
    asyncio.run(day.play(trades=True, wait=wait))
    drawn(screen, rf"position\s+short {fake.positions['BTCUSDT']['size']} @ 109,381\.5", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, screen()[-3000:]
    reader.join(60)  # drains what the process wrote before it ended
    os.close(master)
    shown = screen()
    # 08:00 the Play went short (as the backtest); filled at the next 1m open, 109,381.5, on the
    # exchange, with the Play's 3% stop from that fill (× 1.03 on the 0.1 tick) resting there
    pos = fake.positions["BTCUSDT"]
    assert (pos["side"], pos["avgPrice"], pos["stopLoss"]) == (
        "Sell", "109381.5", "112662.9",
    ), journal(session)  # fmt: skip
    assert re.search(rf"position\s+short {pos['size']} @ 109,381\.5", shown), shown[-3000:]
    assert re.search(r"stop\s+112,662\.9", shown)
    assert re.search(r"equity\s+[\d,]+\.\d\d USDT", shown)
    assert "session demo1 stopped" in shown
    done = subprocess.run(
        [sys.executable, "-m", "trade.cli.main", "play", "diff", "demo1", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["reproduced"] is True and report["decisions_live"] == 1
