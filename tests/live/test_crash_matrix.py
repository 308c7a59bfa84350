"""The crash matrix: sessions on a replayed day, killed with SIGKILL again and again and restarted
each time with `trade play run --session NAME`; after every restart and at the end the session
must hold exactly what an uninterrupted one would.

Paper: killed at seeded random instants (a bar just pushed, mid-handling or just after); the
record holds the backtest's orders and fills up to the last instant after every restart.

Demo: killed by the fake exchange's crash hooks at every step of the order path (see ORDER_PATH)
and by the test at seeded random instants; after every restart the record's fills are the
exchange's executions, once each, the position and wallet they make are the exchange's, and the
orders on the exchange are the session's decisions, once each; at the end they are the
backtest's orders and the session's decisions replay exactly.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fakes.bybit import FakeBybit
from trade.engine.backtest import parse_time, run_backtest
from trade.live.diff import diff_session
from trade.live.orders import link_id, role_of, session_prefix
from trade.live.session import SessionRecord
from trade.play import find_play

from .cli_run import process_env, trade
from .session_proc import EXEC_MS, Killed, Session, market_day

pytestmark = pytest.mark.slow
SEED = int(os.environ.get("TRADE_CRASH_SEED", "20251201"))
RANDOM_KILLS = 30


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, fake: FakeBybit) -> dict[str, str]:
    return process_env(tmp_path, fake, demo_keys=True)


def _orders(rows: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    return [(o["ts"], o["body"]["side"], o["body"]["kind"]) for o in rows]


def _fills(rows: list[dict[str, Any]]) -> list[tuple[int, str, float, float]]:
    return [(f["ts"], f["side"], f["qty"], f["price"]) for f in rows]


def test_a_paper_session_killed_at_random_instants_holds_the_backtests_orders_after_each_restart(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    print(f"crash matrix seed {SEED} (TRADE_CRASH_SEED)")
    start, end = parse_time("2025-06-11", "s"), parse_time("2025-06-12", "e")
    day = market_day(fake, env, start, end)
    minutes = list(day.minutes())
    rng = random.Random(SEED)
    entry = parse_time("2025-06-11T08:00", "s")  # the day's first entry decision (short)
    closes = [m + 60_000 for m in minutes[5:]]
    at_exec = rng.sample([c for c in closes if c % EXEC_MS == 0 and c != entry], RANDOM_KILLS // 2)
    between = rng.sample([c for c in closes if c % EXEC_MS], RANDOM_KILLS // 2)
    kill_at = {entry, *at_exec, *between}
    bt = run_backtest("ema_cross", symbol="BTCUSDT", start="2025-06-11", end="2025-06-12",
                      mode="replay")  # fmt: skip
    events = [e for e in bt.output.events if e["ts"] <= end]
    bt_orders = [(e["ts"], e["side"], e["kind"]) for e in events if e["type"] == "order"]
    bt_fills = [
        (e["ts"], e["side"], e["qty"], e["price"])
        for e in events
        if e["type"] == "fill" and e.get("reason") != "end_of_data"
    ]
    session = Session(fake, env, tmp_path, "k9")
    session.start("--play", "ema_cross", "--mode", "paper")
    checked: list[int] = []

    def check(close: int) -> None:
        """What the record holds once `close` is handled after a restart: the backtest's orders
        and fills so far, once each, nothing missed."""
        with SessionRecord(session.path, readonly=True) as rec:
            orders, fills, journal = rec.order_rows(), rec.fill_rows(), rec.journal_rows()
        assert _orders(orders) == [o for o in bt_orders if o[0] <= close], (SEED, close)
        assert _fills(fills) == [f for f in bt_fills if f[0] < close], (SEED, close)
        assert [j for j in journal if j["kind"] == "missed"] == [], (SEED, close)
        checked.append(close)

    async def play() -> None:
        for m in minutes:
            close = m + 60_000
            if close not in kill_at:
                await day.play_minute(m, session.wait)
                continue
            day.fake.set_time(close)
            day.push_closed(close)
            await asyncio.sleep(rng.uniform(0.0, 0.04))  # mid-handling or just after
            session.kill()
            session.start()  # mode, symbol and Play come from the session itself
            day.push_closed(close)  # a push the new stream did not get (a duplicate is dropped)
            await session.wait(close)
            check(close)

    asyncio.run(play())
    session.stop()
    assert session.starts == len(kill_at) + 1 == RANDOM_KILLS + 2
    assert len(checked) == len(kill_at)

    with SessionRecord(session.path, readonly=True) as rec:
        journal = rec.journal_rows()
        orders, fills, trades = rec.order_rows(), rec.fill_rows(), rec.trade_rows()
        decisions = rec.decision_rows()
    assert sum(j["kind"] == "resume" for j in journal) == len(kill_at)
    assert [j for j in journal if j["kind"] == "missed"] == []
    assert _orders(orders) == bt_orders  # no order lost or doubled
    assert _fills(fills) == bt_fills  # every execution booked once
    closed = [t for t in bt.output.trades if t["exit_reason"] != "end_of_data"]
    for got, want in zip(trades, closed, strict=True):  # (paper names the entry's block too)
        assert {k: v for k, v in got.items() if k != "metadata" and v != want[k]} == {}
    assert len(fills) >= 2 and any(d["ts"] == entry for d in decisions)
    done = trade("play", "diff", "k9", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["reproduced"] is True
    assert report["decisions_live"] == report["decisions_replayed"] == len(decisions)


# ------------------------------------------------------------------------------------------ demo

CREATE, TRADING_STOP = "/v5/order/create", "/v5/position/trading-stop"
DEMO_START, DEMO_END = "2025-06-11T16:00", "2025-06-13"


def _reduce(body: dict[str, Any]) -> bool:
    return body.get("reduceOnly") in (True, "true")


def _at(when: str) -> int:
    return parse_time(when, "s")


@dataclass(frozen=True)
class Crash:
    """One point of the order path: armed on the fake as the minute closing at `arm` is played."""

    what: str
    arm: int
    step: str
    where: str | None = None
    match: Callable[[dict[str, Any]], bool] | None = None


# The day's orders (the backtest's, asserted below): 21:00 buy, 21:15 sell (exit), 22:00 sell,
# 12th 13:00 sell; the 22:00 short's stop trails from 04:30 and its target fills at 12:12.
ORDER_PATH = [
    Crash("entry applied, killed before the ack", _at("2025-06-11T20:59"), "applied", CREATE,
          lambda b: not _reduce(b)),
    Crash("exit answered, killed after the ack", _at("2025-06-11T21:14"), "answered", CREATE,
          _reduce),
    Crash("entry intent committed and request sent, killed before it is applied",
          _at("2025-06-11T21:59"), "received", CREATE, lambda b: not _reduce(b)),
    Crash("killed once the entry's execution is pushed", _at("2025-06-11T22:01"), "execution",
          None, lambda e: e.get("execType") == "Trade"),
    Crash("killed during a trailing amend", _at("2025-06-12T04:29"), "received", TRADING_STOP,
          lambda b: "takeProfit" not in b),
    Crash("killed while reconnecting its private stream", _at("2025-06-12T06:07"), "connect",
          "private"),
    Crash("killed while reconnecting its public stream", _at("2025-06-12T09:03"), "connect",
          "public"),
    Crash("killed between the fill and the stop re-base", _at("2025-06-12T12:59"), "received",
          TRADING_STOP, lambda b: "takeProfit" in b),
]  # fmt: skip


def booked(start: float, fills: list[dict[str, Any]]) -> tuple[float, float, float]:
    """(wallet balance, signed position, its average price) from the record's fills alone:
    one-way, realised PnL and fees (funding booked as a fee), as the exchange's account keeps
    them."""
    cash, pos, avg = start, 0.0, 0.0
    for f in fills:
        cash -= f["fee"]
        if f["kind"] == "Funding":
            continue
        signed = f["qty"] if f["side"] == "Buy" else -f["qty"]
        if pos and (pos > 0) != (signed > 0):
            closed = min(abs(signed), abs(pos))
            cash += closed * (f["price"] - avg) * (1 if pos > 0 else -1)
            pos += closed if pos < 0 else -closed
            signed += -closed if signed > 0 else closed
        if abs(signed) > 1e-12:
            avg = (avg * abs(pos) + f["price"] * abs(signed)) / (abs(pos) + abs(signed))
            pos += signed
        pos = round(pos, 9)
    return cash, pos, avg


def test_a_demo_session_killed_at_every_step_of_the_order_path_and_at_random_instants(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    print(f"crash matrix seed {SEED} (TRADE_CRASH_SEED)")
    # macd_blocks (trailing stop, break-even, partial exits) with a target, modelling no slippage:
    # the fake fills a market order at the next 1m open as the backtest does, so the levels and
    # every later decision are the backtest's
    text = Path(find_play("macd_blocks")).read_text()
    play = tmp_path / "macd_tp.yml"
    play.write_text(
        text.replace("leverage: 2}", "leverage: 2, slippage_bps: 0}").replace(
            "  stop_loss: {type: percent, value: 2}\n",
            "  stop_loss: {type: percent, value: 2}\n  take_profit: {type: percent, value: 1.5}\n",
        )
    )
    start, end = parse_time(DEMO_START, "s"), parse_time(DEMO_END, "e")
    bt = run_backtest(str(play), symbol="BTCUSDT", start=DEMO_START, end=DEMO_END, mode="replay")
    bt_orders = [(e["ts"], e["side"]) for e in bt.output.events if e["type"] == "order"]
    assert [t for t, _ in bt_orders] == [
        _at(x) for x in ("2025-06-11T21:00", "2025-06-11T21:15", "2025-06-11T22:00",
                           "2025-06-12T13:00")
    ]  # fmt: skip
    assert [t["exit_reason"] for t in bt.trades] == ["signal", "take_profit", "end_of_data"]
    day = market_day(fake, env, start, end)
    minutes = list(day.minutes())
    rng = random.Random(SEED)
    near = {c.arm + k * 60_000 for c in ORDER_PATH for k in range(-1, 4)}
    closes = [m + 60_000 for m in minutes[5:] if m + 60_000 not in near]
    # a few spare: a random instant may find the process killed by a crash hook already
    random_kills = set(rng.sample(closes, RANDOM_KILLS + 3))
    killed_at_random: list[int] = []
    arm_at = {c.arm: c for c in ORDER_PATH}
    name = "crash"
    session = Session(fake, env, tmp_path, name, streams=2)
    session.start("--play", str(play), "--mode", "demo")
    prefix = session_prefix(name)
    pending: list[Crash] = []  # the crash armed and not fired yet (re-armed for a new process)
    checked: list[int] = []
    balance0 = float(fake.wallet["totalWalletBalance"])

    def unprotected_for_two_bars() -> list[int]:
        """Closes of 1m bars at which a position had been without a stop since the bar before."""
        bare = {b["close"] for b in fake.bar_positions if b["size"] != "0" and b["stopLoss"] == "0"}
        return sorted(t for t in bare if t - 60_000 in bare)

    def ours() -> list[dict[str, Any]]:
        return [o for o in fake.orders.values() if role_of(o["orderLinkId"], prefix)]

    def check(close: int) -> None:
        """After a restart: executions booked once each, the position and the wallet as the
        exchange's, an order for each of the session's decisions and only one."""
        deadline = time.monotonic() + 60  # booked at the restart: milliseconds, or seconds loaded
        while True:
            with SessionRecord(session.path, readonly=True) as rec:
                fills, decisions = rec.fill_rows(), rec.decision_rows()
                missed = {j["ts"] for j in rec.journal_rows() if j["kind"] == "missed"}
            execs = [e for e in fake.executions if e["symbol"] == "BTCUSDT"]
            if sorted(f["exec_id"] for f in fills) == sorted(e["execId"] for e in execs):
                break
            assert time.monotonic() < deadline, (SEED, close, len(fills), len(execs))
            time.sleep(0.05)
        cash, pos, avg = booked(balance0, fills)
        p, w = fake.positions["BTCUSDT"], fake.wallet
        signed = float(p["size"]) * (1 if p["side"] == "Buy" else -1)
        assert pos == pytest.approx(signed, abs=1e-9), (SEED, close)
        assert cash == pytest.approx(float(w["totalWalletBalance"]), abs=1e-6), (SEED, close)
        equity = cash + (pos * (float(p["markPrice"]) - avg) if pos else 0.0)
        assert equity == pytest.approx(float(w["totalEquity"]), abs=1e-6), (SEED, close)
        assert unprotected_for_two_bars() == [], (SEED, close)
        want = sorted(
            link_id(name, t, i, d["kind"])
            for t, group in _by_instant(decisions)
            if t not in missed
            for i, d in enumerate(group)
            if d["kind"] in ("entry", "exit")
        )
        assert sorted(o["orderLinkId"] for o in ours()) == want, (SEED, close)
        checked.append(close)

    async def recover(close: int) -> None:
        """Restart until a process handles `close` (a crash may be armed for the restart)."""
        while True:
            try:
                session.start()
                if fake.kills_armed:  # armed for the dead process: for the new one
                    fake.disarm_kills()
                    c = pending[-1]
                    fake.kill_on(session.pid, c.step, c.where, match=c.match)
                day.push_closed(close)
                await session.wait(close)
                break
            except Killed:
                continue
        check(close)

    async def kill_within(m: int) -> None:
        """A random instant of minute `m`: just after one of its trades (a fill, its booking,
        the stop re-based) or once its bars closed (an evaluation, its orders)."""
        close, nth, delay = m + 60_000, rng.randint(1, 5), rng.uniform(0.0, 0.04)

        def kill() -> None:
            if not session.dead():
                session.kill()
                killed_at_random.append(close)

        def after(n: int) -> None:
            if n == nth:
                time.sleep(delay)
                kill()

        day.trade_through(m, after)
        fake.set_time(close)
        day.push_closed(close)
        if nth == 5:
            await asyncio.sleep(delay)
            kill()

    async def play_day() -> None:
        for m in minutes:
            close = m + 60_000
            crash = arm_at.get(close)
            if crash is not None:
                assert fake.kills_armed == 0, f"{pending[-1].what}: never fired"
                pending.append(crash)
                fake.kill_on(session.pid, crash.step, crash.where, match=crash.match)
                if crash.step == "connect":
                    fake.drop_all_ws()
            try:
                if close in random_kills:
                    await kill_within(m)
                    raise Killed(name)
                await day.play_minute(m, session.wait, trades=True)
            except Killed:
                await recover(close)

    asyncio.run(play_day())
    session.stop()
    assert fake.kills_armed == 0
    assert [(k["step"], k["where"]) for k in fake.kills] == [
        (c.step, c.where if c.step != "execution" else "execution") for c in ORDER_PATH
    ]
    print(f"{len(fake.kills)} kills on the order path, {len(killed_at_random)} at random")
    assert len(killed_at_random) >= RANDOM_KILLS
    assert session.starts == len(ORDER_PATH) + len(killed_at_random) + 1
    assert len(checked) == session.starts - 1
    check(end)
    assert {b["close"] for b in fake.bar_positions} == {m + 60_000 for m in minutes}
    with SessionRecord(session.path, readonly=True) as rec:
        report = diff_session(rec)
        missed = [j for j in rec.journal_rows() if j["kind"] == "missed"]
    assert report.reproduced, (report.missing, report.extra)
    assert missed == []
    got = sorted((int(o["createdTime"]) // EXEC_MS * EXEC_MS, o["side"].lower()) for o in ours())
    assert got == sorted(bt_orders)


def _by_instant(decisions: list[dict[str, Any]]) -> list[tuple[int, list[dict[str, Any]]]]:
    """Each instant's decisions in order (refused ones too: they count in the link id's index)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for d in decisions:
        out.setdefault(d["ts"], []).append(d)
    return list(out.items())
