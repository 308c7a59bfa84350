"""Durable paper sessions: `trade play run` in a subprocess is killed with SIGKILL at random moments
of a replayed day and restarted with the same `--session` each time; at the end the session holds
exactly the backtest's orders, fills and trades on the same bars. Instants that closed while it
was down are decided but journaled as missed, never traded late. Bad resumes are refused."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
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

from .cli_run import trade

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


def test_an_instant_that_closed_while_the_session_was_down_is_missed_not_traded(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    start, end = parse_time("2025-06-11T06:00", "s"), parse_time("2025-06-11T09:00", "e")
    entry = parse_time("2025-06-11T08:00", "s")  # the backtest goes short here
    day = market_day(fake, env, start, end)
    session = Session(fake, env, tmp_path, "down")
    session.start(*PLAY_ARGS)

    async def nobody(close: int) -> None:
        pass

    async def play() -> None:
        for m in day.minutes():
            close = m + 60_000
            if close == entry - 5 * 60_000:
                session.kill()  # down from 07:55 to 08:02: 08:00 closes while it is away
            if entry - 5 * 60_000 <= close <= entry + 2 * 60_000:
                await day.play_minute(m, nobody)
                if close == entry + 2 * 60_000:
                    session.start()
                    day.push_closed(close)
                    await session.wait(close)
                continue
            await day.play_minute(m, session.wait)

    asyncio.run(play())
    session.stop()
    with SessionRecord(session.path, readonly=True) as rec:
        missed = [j for j in rec.journal_rows() if j["kind"] == "missed"]
        decisions = [(d["ts"], d["kind"], d["side"]) for d in rec.decision_rows()]
        orders, fills = rec.order_rows(), rec.fill_rows()
    assert [(j["ts"], j["data"]["decisions"]) for j in missed] == [
        (entry, ["entry short 100% (entry_short)"])
    ]
    # 120 s by the fake's frozen clock, plus the real seconds the client's clock ran since it synced
    assert re.search(r"evaluated 1[2-9]\d s late$", missed[0]["message"]), missed[0]["message"]
    assert decisions == [(entry, "entry", "short")]  # decided, recorded, never traded
    assert orders == [] and fills == []


def make_record(path: Path, play: Path, **meta: str) -> None:
    from trade.engine.provenance import sha256_text

    text = play.read_text()
    with SessionRecord(path) as rec:
        values = {"mode": "paper", "symbol": "BTCUSDT", "environment": "live",
                  "play_text": text, "play_path": str(play), "play_sha256": sha256_text(text)}  # fmt: skip
        rec.set_meta(**(values | meta))


@pytest.fixture
def play_copy(tmp_path: Path) -> Path:
    from trade.play import find_play

    copy = tmp_path / "mine.yml"
    copy.write_text(Path(find_play("ema_cross")).read_text())
    return copy


@pytest.mark.parametrize(
    ("meta", "args", "edit", "message"),
    [
        ({}, ["--mode", "demo"], False,
         "session 's1' is paper (--mode); it resumes as it began: drop --mode"),
        ({}, ["--symbol", "ethusdt"], False,
         "session 's1' is BTCUSDT (--symbol); it resumes as it began: drop --symbol"),
        ({}, [], True, "the Play changed since session 's1' began; add --accept-play-change"),
        ({"mode": "demo", "environment": "demo"}, [], False,
         "session 's1': resuming a demo session is not supported yet"),
        ({"schema_version": "2"}, [], False,
         "session schema version 2 is newer than this trade's (1); upgrade trade to open it"),
    ],
)  # fmt: skip
def test_a_resume_that_does_not_fit_the_session_is_refused_and_the_file_kept(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path, play_copy: Path,
    meta: dict[str, str], args: list[str], edit: bool, message: str,
) -> None:  # fmt: skip
    path = tmp_path / ".trade" / "sessions" / "s1.sqlite"
    make_record(path, play_copy, **meta)
    if edit:
        play_copy.write_text(play_copy.read_text() + "\n# tuned\n")
    before = path.read_bytes()
    done = trade("play", "run", "--session", "s1", *args, env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert path.read_bytes() == before
    assert fake.requests == [] and sum(fake.connects.values()) == 0


def test_a_corrupt_session_file_is_refused_never_replaced(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / ".trade" / "sessions" / "s1.sqlite"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database, it was torn by a bad disk" * 100)
    done = trade("play", "run", "--session", "s1", env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"{path}: not a session file" in done.stderr
    assert path.read_bytes() == b"this is not a database, it was torn by a bad disk" * 100
    assert fake.requests == []


def test_a_changed_play_is_accepted_with_the_flag_and_journaled(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path, play_copy: Path
) -> None:
    start, end = parse_time("2025-06-11T06:00", "s"), parse_time("2025-06-11T08:30", "e")
    day = market_day(fake, env, start, end)
    session = Session(fake, env, tmp_path, "tuned")
    session.start("--play", str(play_copy))
    half = list(day.minutes())[: len(day.minutes()) // 2]
    rest = list(day.minutes())[len(half) :]

    async def play(minutes: list[int]) -> None:
        for m in minutes:
            await day.play_minute(m, session.wait)

    asyncio.run(play(half))
    session.stop()
    play_copy.write_text(play_copy.read_text() + "\n# same rules, a comment added\n")
    refused = trade("play", "run", "--session", "tuned", env=env)
    assert refused.returncode == 2 and "--accept-play-change" in refused.stderr
    session.start("--accept-play-change")
    asyncio.run(play(rest))
    session.stop()
    with SessionRecord(session.path, readonly=True) as rec:
        journal = rec.journal_rows()
        meta = rec.meta()
        decisions = [(d["ts"], d["kind"], d["side"]) for d in rec.decision_rows()]
    assert [j["message"][:60] for j in journal if j["kind"] == "play"] == [
        "the Play changed since the session began; accepted (--accept"
    ]
    assert meta["play_text"] == play_copy.read_text()
    assert [j for j in journal if j["kind"] == "rebuild"] == []  # a comment changes nothing
    assert decisions == [(parse_time("2025-06-11T08:00", "s"), "entry", "short")]


def test_a_second_process_on_the_same_session_is_refused_with_the_holder(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    day = market_day(
        fake, env, parse_time("2025-06-11T06:00", "s"), parse_time("2025-06-11T07:00", "e")
    )
    session = Session(fake, env, tmp_path, "one")
    session.start(*PLAY_ARGS)
    assert session.proc is not None
    second = trade("play", "run", "--session", "one", env=env)
    assert second.returncode == 2
    assert second.stderr == (
        f"error: session 'one' is held by pid {session.proc.pid} (session 'one'): one process "
        "per session and per environment, account and symbol\n"
    )
    session.alive()
    session.kill()  # the kernel drops a dead holder's lock: the restart is not blocked
    session.start()
    session.stop()
    del day


def test_a_second_demo_session_on_the_same_account_and_symbol_is_refused(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    import hashlib

    env = env | {"BYBIT_DEMO_API_KEY": fake.api_key, "BYBIT_DEMO_API_SECRET": fake.api_secret}
    start, end = parse_time("2025-06-11T06:00", "s"), parse_time("2025-06-11T07:00", "e")
    market_day(fake, env, start, end)
    first = Session(fake, env, tmp_path, "d1")
    first.start("--play", "ema_cross", "--mode", "demo")
    assert first.proc is not None
    second = trade("play", "run", "--play", "ema_cross", "--mode", "demo", "--session", "d2",
                   env=env)  # fmt: skip
    account = hashlib.sha256(fake.api_key.encode()).hexdigest()[:12]
    assert second.returncode == 2
    assert second.stderr == (
        f"error: BTCUSDT on demo account {account} is held by pid {first.proc.pid} (session "
        "'d1'): one process per session and per environment, account and symbol\n"
    )
    assert fake.api_key not in second.stderr
    # another symbol on the same account is another key
    other = Session(fake, env, tmp_path, "d3")
    other.start("--play", "ema_cross", "--mode", "demo", "--symbol", "ETHUSDT")
    other.stop()
    first.alive()
    first.stop()
