"""`trade play status` and `trade play stop` from a second terminal: a paper session runs in its
own process against the fake exchange; another process reads its state (without disturbing it)
and stops it, keeping the position and its stop, or closing it with `--flatten`."""

from __future__ import annotations

import asyncio
import json
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
from trade.engine.backtest import parse_time

from .cli_run import process_env, trade


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, fake: FakeBybit) -> dict[str, str]:
    return process_env(tmp_path, fake)


def meta(path: Path, key: str) -> str | None:
    if not path.exists():
        return None
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        con.close()
    return row[0] if row else None


def running_session(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path, name: str, until: str
) -> tuple[subprocess.Popen[str], Path]:
    """A paper session of ema_cross in its own process, played from 06:00 to `until`."""
    start, end = parse_time("2025-06-11T06:00", "s"), parse_time(until, "e")
    with MarketStore(Path(env["TRADE_DB"]), read_only=True) as store:
        day = MarketDay(fake, store, "BTCUSDT", ["15m", "1h", "4h"], start, end)
        day.load_history()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trade.cli.main", "play", "run", "--play", "ema_cross",
         "--mode", "paper", "--session", name, "--quiet"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    session = tmp_path / ".trade" / "sessions" / f"{name}.sqlite"

    async def wait(close: int) -> None:
        if close % (15 * 60_000) or close <= start:
            return
        deadline = time.monotonic() + 60
        while int(meta(session, "last_instant") or 0) < close:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, f"no evaluation of {close}"
            await asyncio.sleep(0.02)

    async def go() -> None:
        deadline = time.monotonic() + 60
        while not any(c["topics"] for c in fake.connections):
            assert proc.poll() is None and time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await day.play(wait=wait)

    asyncio.run(go())
    return proc, session


def test_status_and_stop_from_a_second_process_keep_the_position_and_its_stop(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    proc, _ = running_session(fake, env, tmp_path, "ctl", "2025-06-11T08:30")
    try:
        done = trade("play", "status", "ctl", "--json", env=env)
        assert done.returncode == 0, done.stderr
        st = json.loads(done.stdout)
        # 08:00 the Play went short (the backtest's first trade of the day)
        assert (st["name"], st["state"], st["pid"], st["mode"]) == ("ctl", "running", proc.pid,
                                                                    "paper")  # fmt: skip
        assert (st["side"], st["qty"], st["entry_price"], st["stop"]) == (
            "short",
            0.091,
            109359.6237,
            112640.4,
        )
        assert st["last_instant"] == parse_time("2025-06-11T08:30", "e")
        assert st["last_bar"]["tf"] in ("1m", "15m") and st["streams"]["public"] == "connected"
        assert st["equity"] > 0 and st["decisions"] == 1 and st["halted"] is None
        listed = json.loads(trade("play", "status", "--json", env=env).stdout)
        assert [s["name"] for s in listed] == ["ctl"]
        text = trade("play", "status", env=env).stdout
        assert "ctl [running] paper ema_cross BTCUSDT" in text
        assert "position short 0.091 @ 109,359.62  stop 112,640.40" in text

        done = trade("play", "stop", "ctl", env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "session ctl stopped: position short 0.091, stop 112,640.40"
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    st = json.loads(trade("play", "status", "ctl", "--json", env=env).stdout)
    assert (st["state"], st["side"], st["stop"]) == ("stopped", "short", 112640.4)
    again = trade("play", "stop", "ctl", env=env)
    assert again.returncode == 2
    assert again.stderr.strip() == "error: session 'ctl' is not running (state stopped)"


def test_stop_flatten_closes_the_position(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    proc, session = running_session(fake, env, tmp_path, "flat", "2025-06-11T08:30")
    try:
        done = trade("play", "stop", "flat", "--flatten", env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().startswith("session flat stopped: position flat 0")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    con = sqlite3.connect(f"file:{session}?mode=ro", uri=True)
    trades = [json.loads(r[0]) for r in con.execute("SELECT data FROM trades")]
    con.close()
    assert [(t["side"], t["exit_reason"], t["qty"]) for t in trades] == [
        ("short", "flatten", 0.091)
    ]


def test_status_of_an_unknown_session_is_one_line(env: dict[str, str]) -> None:
    done = trade("play", "status", "nope", env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "no session 'nope'" in done.stderr and "Traceback" not in done.stderr


def test_a_session_whose_process_is_gone_is_dead_and_cannot_be_stopped(
    env: dict[str, str], tmp_path: Path
) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    sessions = tmp_path / ".trade" / "sessions"
    sessions.mkdir(parents=True)
    con = sqlite3.connect(sessions / "crashed.sqlite")
    con.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE bars (tf TEXT, ts INTEGER);"
        "CREATE TABLE decisions (kind TEXT); CREATE TABLE trades (trade_id INTEGER);"
    )
    con.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("schema_version", "1"), ("name", "crashed"), ("mode", "paper"), ("state", "running"),
        ("pid", gone.stdout.strip()), ("status", json.dumps({"side": "long", "qty": 0.5})),
    ])  # fmt: skip
    con.commit()
    con.close()
    st = json.loads(trade("play", "status", "crashed", "--json", env=env).stdout)
    assert (st["state"], st["side"], st["qty"]) == ("dead", "long", 0.5)
    done = trade("play", "stop", "crashed", env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: session 'crashed' is not running (state dead)"
