"""Paper trading equals the backtest: a day of real 1m bars played through the fake exchange's
public stream (its clock stepped minute by minute) gives the trades `trade backtest run` gives on
the same bars, byte for byte, and the session records everything it fed and did."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from fakes.bybit import FakeBybit
from fakes.market_day import MarketDay
from trade.data import MarketStore
from trade.engine.backtest import parse_time, run_backtest
from trade.engine.play_engine import PlayEngine
from trade.exchange.bybit import BybitRest
from trade.live.diff import diff_session
from trade.live.launch import make_runner, open_record, plan_session
from trade.live.paper import PaperBroker
from trade.live.runner import LiveRunner
from trade.live.session import SessionRecord
from trade.report.artifacts import trades_csv
from trade.report.positions import position_trades

from .inproc import subscribed


def paper_day(
    fake: FakeBybit,
    home: Path,
    play: str,
    symbol: str,
    day: str,
    end: str,
    *,
    use_store: bool,
    playing: Callable[[MarketDay, LiveRunner], Awaitable[None]] | None = None,
) -> tuple[LiveRunner, SessionRecord]:
    """A paper session through `trade play run`'s own set-up, fed `day` → `end` by the fake."""
    plan = plan_session(play, "paper", symbol=symbol, session=f"paper-{play}")
    db = home / "market.duckdb"
    start, stop = parse_time(day, "start"), parse_time(end, "end")
    with MarketStore(db, read_only=True) as store:
        driver = MarketDay(fake, store, symbol, PlayEngine(plan.compiled).timeframes(), start, stop)
        driver.load_history()
    record = open_record(plan)

    async def go() -> LiveRunner:
        async with BybitRest(environment=plan.environment, backoff=0.01) as rest:
            runner = make_runner(
                plan, record, rest, store_path=db if use_store else None, backoff=0.01
            )
            task = asyncio.create_task(runner.run())
            while runner.broker is None or runner.stream_state == "connecting":
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
            await subscribed(fake, 1, task)
            await (playing(driver, runner) if playing else driver.play(runner))
            runner.request_stop()
            await task
            return runner

    return asyncio.run(go()), record


CASES = [
    # partial exits (five exits of one position) and trailing-stop moves
    ("macd_blocks", "BTCUSDT", "2025-06-09T12:00", "2025-06-10T12:00", True),
    # a trailing stop (with break-even armed) that closes the position
    ("macd_blocks", "BTCUSDT", "2025-06-12", "2025-06-13", False),
    # resting limit entries with expiry, stops and a take-profit
    ("bb_mean_reversion", "ETHUSDT", "2025-06-23", "2025-06-24", False),
    # funding paid and received on positions held across settlements
    ("ema_cross", "BTCUSDT", "2025-06-11", "2025-06-12", True),
]


@pytest.mark.parametrize(("play", "symbol", "day", "end", "use_store"), CASES)
def test_paper_session_trades_equal_the_backtest_on_the_same_bars(
    fake: FakeBybit, home: Path, play: str, symbol: str, day: str, end: str, use_store: bool
) -> None:
    runner, record = paper_day(fake, home, play, symbol, day, end, use_store=use_store)
    assert runner.start_ms == parse_time(day, "start")
    assert runner.last_instant == parse_time(end, "end")
    broker = runner.broker
    assert isinstance(broker, PaperBroker)
    sim = broker.sim
    paper, _ = position_trades(broker.trades(), sim.events)
    if sim.position is not None:  # still open: the backtest closes it at the end of its data
        paper = [t for t in paper if t["entry_time"] != sim.position.entry_ts]
    bt = run_backtest(play, symbol=symbol, start=day, end=end, mode="replay")
    closed = [t for t in bt.trades if t["exit_reason"] != "end_of_data"]
    assert trades_csv(paper) == trades_csv(closed)
    assert len(paper) >= 1
    with SessionRecord(record.path, readonly=True) as rec:
        assert rec.trade_rows() == broker.trades()
        assert len(rec.bar_rows("1m")) == 1440
        orders, fills = rec.order_rows(), rec.fill_rows()
    sim_orders = [e for e in sim.events if e["type"] == "order"]
    assert sorted(o["link_id"] for o in orders) == sorted(f"paper-{e['id']}" for e in sim_orders)
    finals = {"filled", "cancelled", "expired", "rejected", "accepted"}
    assert {o["status"] for o in orders} <= finals
    assert len(fills) == sum(1 for e in sim.events if e["type"] == "fill")
    still_open = [t for t in bt.trades if t["exit_reason"] == "end_of_data"]
    view = runner.broker.view()  # type: ignore[union-attr]
    if still_open:
        assert view.side == still_open[0]["side"]
        assert view.entry_price == still_open[0]["entry_price"]
        assert view.stop is not None
    else:
        assert view.side == "flat"
    with SessionRecord(record.path, readonly=True) as rec:
        report = diff_session(rec)
    assert report.reproduced
    assert report.decisions_live == report.decisions_replayed == len(rec_decisions(record))
    assert [g["pnl_gap"] for g in report.trades] == [0.0] * len(paper)
    assert [g["entry_gap_bps"] for g in report.trades] == [0.0] * len(paper)


def rec_decisions(record: SessionRecord) -> list[dict]:
    with SessionRecord(record.path, readonly=True) as rec:
        return rec.decision_rows()


def test_public_stream_lost_across_an_exec_close_is_backfilled_and_fed_once(
    fake: FakeBybit, home: Path
) -> None:
    """The socket drops, the exchange refuses reconnects for a while, and the 1m and 15m bars
    closing at 10:00 are published meanwhile: after the reconnect they come by REST, once each,
    and the day's trades still equal the backtest's (a bar fed twice or never would move the
    EMAs)."""
    lost_close = parse_time("2025-06-11T10:00", "t")

    async def playing(day: MarketDay, runner: LiveRunner) -> None:
        for m in day.minutes():
            close = m + 60_000
            if close == lost_close:
                fake.maintenance(90)  # reconnects refused for 90 s of exchange time
                fake.drop_all_ws()
                fake.set_time(close)
                day.push_closed(close)  # published to nobody
                fake.set_time(close + 31_000)  # maintenance over: the client gets back in
            else:
                fake.set_time(close)
                day.push_closed(close)
            await runner.wait_handled(close)

    runner, record = paper_day(
        fake, home, "ema_cross", "BTCUSDT", "2025-06-11", "2025-06-12", use_store=False,
        playing=playing,
    )  # fmt: skip
    with SessionRecord(record.path, readonly=True) as rec:
        rows = rec.bar_rows()
        journal = rec.journal_rows()
    by_close = {(r[0], r[1]): r[7] for r in rows}
    assert by_close[("1m", lost_close - 60_000)] == "rest"
    assert by_close[("15m", lost_close - 15 * 60_000)] == "rest"
    assert sum(1 for r in rows if r[0] == "1m" and r[7] == "rest") == 1
    assert len([r for r in rows if r[0] == "1m"]) == 1440
    assert any(j["kind"] == "stream" and "reconnected" in j["message"] for j in journal)
    broker = runner.broker
    assert isinstance(broker, PaperBroker)
    assert broker.sim.tape.n == 1440  # every minute simulated once
    paper, _ = position_trades(broker.trades(), broker.sim.events)
    if broker.sim.position is not None:
        paper = [t for t in paper if t["entry_time"] != broker.sim.position.entry_ts]
    bt = run_backtest("ema_cross", start="2025-06-11", end="2025-06-12", mode="replay")
    assert trades_csv(paper) == trades_csv(
        [t for t in bt.trades if t["exit_reason"] != "end_of_data"]
    )
