"""The crash matrix: sessions on a replayed day, killed with SIGKILL again and again and restarted
each time with `trade play run --session NAME`; after every restart and at the end the session
must hold exactly what an uninterrupted one would.

Paper: killed at seeded random instants (a bar just pushed, mid-handling or just after); the
record holds the backtest's orders and fills up to the last instant after every restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.bybit import FakeBybit
from trade.data import MarketStore
from trade.engine.backtest import parse_time, run_backtest
from trade.live.session import SessionRecord

from .cli_run import trade
from .session_proc import EXEC_MS, Session, market_day

pytestmark = pytest.mark.slow
SEED = int(os.environ.get("TRADE_CRASH_SEED", "20251201"))
RANDOM_KILLS = 30


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
    for var in ("BYBIT_LIVE_API_KEY", "BYBIT_LIVE_API_SECRET"):
        out.pop(var, None)
    return out | {"BYBIT_DEMO_API_KEY": fake.api_key, "BYBIT_DEMO_API_SECRET": fake.api_secret}


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
