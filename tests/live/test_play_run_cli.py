"""`trade play run` as a user runs it: a paper session in a pseudo-terminal against the fake
exchange shows its live panel, stops cleanly on SIGTERM, is listed by `trade play sessions` and
reproduced by `trade play diff`; bad starts are refused before any connection is opened."""

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

from .cli_run import drawn, process_env, trade

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, fake: FakeBybit) -> dict[str, str]:
    return process_env(tmp_path, fake, COLUMNS="120")


def last_instant(path: Path) -> int:
    if not path.exists():
        return 0
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'last_instant'").fetchone()
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()
    return int(row[0]) if row else 0


def test_paper_session_in_a_terminal_shows_the_panel_and_replays_to_the_same_decisions(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    start, end = parse_time("2025-06-11T06:00", "s"), parse_time("2025-06-11T10:00", "e")
    with MarketStore(Path(env["TRADE_DB"]), read_only=True) as store:
        day = MarketDay(fake, store, "BTCUSDT", ["15m", "1h", "4h"], start, end)
        day.load_history()
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trade.cli.main", "play", "run", "--play", "ema_cross",
         "--mode", "paper", "--session", "day1"],
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
    session = tmp_path / ".trade" / "sessions" / "day1.sqlite"

    async def wait(close: int) -> None:
        if close % (15 * 60_000):
            return
        deadline = time.monotonic() + 60
        while last_instant(session) < close and close > start:
            assert proc.poll() is None, b"".join(chunks).decode(errors="replace")
            assert time.monotonic() < deadline, f"no evaluation of {close}"
            await asyncio.sleep(0.02)

    async def subscribed() -> None:
        deadline = time.monotonic() + 60
        while not any(c["topics"] for c in fake.connections):
            assert proc.poll() is None, b"".join(chunks).decode(errors="replace")
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)

    asyncio.run(subscribed())
    asyncio.run(day.play(wait=wait))
    position = r"position\s+short 0\.091 @ 109,359\.62"
    drawn(lambda: ANSI.sub("", b"".join(chunks).decode(errors="replace")), position, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    reader.join(60)  # drains what the process wrote before it ended
    os.close(master)
    screen = ANSI.sub("", b"".join(chunks).decode(errors="replace"))
    # 08:00 the Play went short (the backtest's first trade of the day); it is open at 10:00
    assert re.search(position, screen), screen[-3000:]
    assert re.search(r"stop\s+112,640\.4", screen)
    assert re.search(r"equity\s+[\d,]+\.\d\d USDT", screen)
    assert "next evaluation" in screen
    assert "session day1 stopped" in screen

    listed = json.loads(trade("play", "sessions", "--json", env=env).stdout)
    assert [(s["name"], s["mode"], s["play"], s["symbol"]) for s in listed] == [
        ("day1", "paper", "ema_cross", "BTCUSDT")
    ]
    assert listed[0]["last_instant"] == str(end)
    done = trade("play", "diff", "day1", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["reproduced"] is True
    assert report["decisions_live"] == report["decisions_replayed"] == 1


@pytest.mark.parametrize(
    ("args", "keys", "message"),
    [
        (["--mode", "live"], {}, "--mode live trades real money: add --confirm"),
        (["--mode", "live", "--confirm"], {"BYBIT_DEMO_API_KEY": "k", "BYBIT_DEMO_API_SECRET": "s"},
         "only demo keys are set; a live session never uses them"),
        (["--mode", "demo"], {}, "no demo API keys"),
        (["--mode", "moon"], {}, "--mode 'moon': expected one of paper, demo, live"),
    ],
)  # fmt: skip
def test_refused_starts_open_no_connection(
    fake: FakeBybit, env: dict[str, str], args: list[str], keys: dict[str, str], message: str
) -> None:
    done = trade("play", "run", "--play", "ema_cross", *args, env=env | keys)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert fake.requests == [] and sum(fake.connects.values()) == 0


def test_an_invalid_play_is_refused_before_connecting(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("name: bad\nsymbol: BTCUSDT\n")
    done = trade("play", "run", "--play", str(bad), "--mode", "live", "--confirm", env=env)
    assert done.returncode == 2
    assert str(bad) in done.stderr and "Traceback" not in done.stderr
    assert fake.requests == [] and sum(fake.connects.values()) == 0
