"""Demo trading through the fake exchange decides as the backtest does: a day of real 1m bars
played as trades and closed klines gives, through `trade play run`'s own set-up in demo mode, the
backtest's entries and exits (sides, minutes and reasons), and the exchange holds a stop on every
open position at every bar."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fakes.bybit import FakeBybit
from fakes.market_day import MarketDay
from trade.data import MarketStore
from trade.engine.backtest import parse_time, run_backtest
from trade.engine.play_engine import PlayEngine
from trade.errors import InputError
from trade.exchange.bybit import BybitRest
from trade.live.bybit_broker import BybitBroker
from trade.live.diff import diff_session
from trade.live.launch import make_runner, open_record, plan_session
from trade.live.runner import LiveRunner
from trade.live.session import SessionRecord
from trade.report.positions import positions

from .inproc import subscribed

MINUTE = 60_000
FLIPPER = Path(__file__).resolve().parents[2] / "benchmarks" / "plays" / "reaction_ema.yml"


def demo_day(
    fake: FakeBybit,
    home: Path,
    play: str,
    symbol: str,
    day: str,
    end: str,
    after: Callable[[int, LiveRunner], None] | None = None,
) -> tuple[LiveRunner, SessionRecord, list[tuple[int, str, str]]]:
    """A demo session fed `day` → `end`; also the fake's position after every bar: (bar close,
    size, stop). `after(close, runner)` runs once each minute is handled."""
    plan = plan_session(play, "demo", symbol=symbol, session=f"demo-{Path(play).stem}")
    start, stop = parse_time(day, "start"), parse_time(end, "end")
    with MarketStore(home / "market.duckdb", read_only=True) as store:
        driver = MarketDay(fake, store, symbol, PlayEngine(plan.compiled).timeframes(), start, stop)
        driver.load_history()
    record = open_record(plan)
    seen: list[tuple[int, str, str]] = []

    async def go() -> LiveRunner:
        async with BybitRest(
            environment=plan.environment, credentials=plan.credentials, backoff=0.01
        ) as rest:
            runner = make_runner(plan, record, rest, store_path=None, backoff=0.01)
            task = asyncio.create_task(runner.run())
            while runner.broker is None or runner.stream_state == "connecting":
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
            await subscribed(fake, 2, task)  # public and private

            async def wait(close: int) -> None:
                await runner.wait_handled(close)
                pos = fake.positions.get(symbol, {})
                seen.append((close, pos.get("size", "0"), pos.get("stopLoss", "0")))
                if after is not None:
                    after(close, runner)

            await driver.play(trades=True, wait=wait)
            runner.request_stop()
            await task
            return runner

    return asyncio.run(go()), record, seen


def _minute(ms: Any) -> int:
    return int(ms) // MINUTE * MINUTE


def _shape(trades: list[dict[str, Any]]) -> list[tuple[str, int, int, str, int]]:
    """What demo and backtest must share: side, entry and exit minute, reason, exits."""
    return [
        (t["side"], _minute(t["entry_time"]), _minute(t["exit_time"]), t["exit_reason"],
         t["exits"])
        for t in positions(trades)
    ]  # fmt: skip


CASES = [
    # market entries with a percent stop; funding settled on an open position. The fake fills a
    # market order at the next trade (the 1m open) with no slippage: 2 bps better than the backtest
    ("ema_cross", "BTCUSDT", "2025-06-11", "2025-06-12", -2.0),
    # trailing stop and break-even moved at exec closes, partial exits
    ("macd_blocks", "BTCUSDT", "2025-06-12", "2025-06-13", -2.0),
    # resting limit entries with expiry, stops and a take-profit: filled at the limit in both
    ("bb_mean_reversion", "ETHUSDT", "2025-06-23", "2025-06-24", 0.0),
    # a Play that models no slippage, flipping fourteen times in the day: live and simulated entry
    # fills are the same price, a gap of exactly 0 bps
    (str(FLIPPER), "BTCUSDT", "2025-06-11", "2025-06-12", 0.0),
]


@pytest.mark.parametrize(("play", "symbol", "day", "end", "entry_gap_bps"), CASES)
def test_demo_session_makes_the_backtests_entries_and_exits_with_a_stop_always_on_the_exchange(
    fake: FakeBybit, home: Path, play: str, symbol: str, day: str, end: str, entry_gap_bps: float
) -> None:
    runner, record, seen = demo_day(fake, home, play, symbol, day, end)
    broker = runner.broker
    assert isinstance(broker, BybitBroker) and not broker.halted
    bt = run_backtest(play, symbol=symbol, start=day, end=end, mode="replay")
    closed = [t for t in bt.trades if t["exit_reason"] != "end_of_data"]
    demo = broker.trades()
    assert len(closed) >= 1
    assert _shape(demo) == _shape(closed)
    with SessionRecord(record.path, readonly=True) as rec:
        assert rec.trade_rows() == demo
        report = diff_session(rec)
    assert report.reproduced and report.decisions_live == report.decisions_replayed
    gaps = [g["entry_gap_bps"] for g in report.trades]
    assert len(gaps) == len(positions(demo))
    assert gaps == pytest.approx([entry_gap_bps] * len(gaps), abs=0.001)
    open_bars = [(close, size, sl) for close, size, sl in seen if size != "0"]
    assert open_bars and all(sl != "0" for _, _, sl in open_bars), open_bars[:3]
    still_open = [t for t in bt.trades if t["exit_reason"] == "end_of_data"]
    if still_open:  # the backtest closes it at the end of its data; demo keeps it, protected
        assert broker.side() == still_open[0]["side"]
        assert fake.positions[symbol]["stopLoss"] != "0"
    else:
        assert broker.side() == "flat"


def test_demo_refuses_a_play_without_a_stop_before_connecting(fake: FakeBybit, home: Path) -> None:
    with pytest.raises(InputError) as err:
        plan_session("adx_flip", "demo")
    assert str(err.value) == (
        "play 'adx_flip': --mode demo needs risk.stop_loss (every open position keeps a stop on "
        "the exchange); try --mode paper"
    )
    assert fake.requests == [] and sum(fake.connects.values()) == 0


def test_a_halted_session_sends_no_entry_but_the_plays_exits_still_close(
    fake: FakeBybit, home: Path
) -> None:
    """Halted right after the 08:00 short filled: the 14:00 flip still closes the short with a
    reduce-only order (an exit is never held back) but opens nothing, for the rest of the day."""
    halt_at = parse_time("2025-06-11T08:15", "t")

    def after(close: int, runner: LiveRunner) -> None:
        if close == halt_at:
            broker = runner.broker
            assert isinstance(broker, BybitBroker) and broker.side() == "short"
            broker._halt(close, "halted by the test")

    runner, record, _ = demo_day(
        fake, home, "ema_cross", "BTCUSDT", "2025-06-11", "2025-06-12", after
    )
    broker = runner.broker
    assert isinstance(broker, BybitBroker) and broker.halted
    assert fake.positions["BTCUSDT"]["size"] == "0"
    assert [(t["side"], t["exit_reason"], _minute(t["exit_time"])) for t in broker.trades()] == [
        ("short", "signal", parse_time("2025-06-11T14:00", "t"))
    ]
    with SessionRecord(record.path, readonly=True) as rec:
        kinds = [(d["kind"], d["side"]) for d in rec.decision_rows()]
    assert kinds == [("entry", "short"), ("exit", "short")]
    sent = [o for o in fake.orders.values() if o.get("orderLinkId")]
    assert len(sent) == 2 and sent[1]["reduceOnly"] in (True, "true")
