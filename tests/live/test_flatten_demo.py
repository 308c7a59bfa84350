"""`trade play stop --flatten` in demo mode (SIGUSR1 in the session's process asks the runner for
exactly this): the open position is closed on the exchange with one reduce-only market order, the
resting orders are gone, and the session stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fakes.bybit import FakeBybit
from fakes.market_day import MarketDay
from trade.data import MarketStore
from trade.engine.backtest import parse_time
from trade.engine.play_engine import PlayEngine
from trade.exchange.bybit import BybitRest
from trade.live.launch import make_runner, open_record, plan_session
from trade.live.session import SessionRecord

from .inproc import subscribed


def test_flatten_closes_the_demo_position_with_one_reduce_only_order(
    fake: FakeBybit, home: Path
) -> None:
    plan = plan_session("ema_cross", "demo", session="flat-demo")
    start, stop = parse_time("2025-06-11T07:30", "s"), parse_time("2025-06-11T08:30", "e")
    with MarketStore(home / "market.duckdb", read_only=True) as store:
        day = MarketDay(fake, store, "BTCUSDT", PlayEngine(plan.compiled).timeframes(), start, stop)
        day.load_history()
    record = open_record(plan)

    async def go() -> None:
        async with BybitRest(
            environment=plan.environment, credentials=plan.credentials, backoff=0.01
        ) as rest:
            runner = make_runner(plan, record, rest, store_path=None, backoff=0.01)
            task = asyncio.create_task(runner.run())
            await subscribed(fake, 2, task)
            await day.play(runner, trades=True)
            assert fake.positions["BTCUSDT"]["size"] == "0.091"
            fake.fill_mode = "immediate"  # the close fills at the last trade as it arrives
            runner.request_stop(flatten=True)
            await task

    asyncio.run(go())
    assert fake.positions["BTCUSDT"]["size"] == "0"
    closes = [o for o in fake.orders.values() if o["orderLinkId"].endswith("-cl")]
    assert [(o["side"], o["qty"], o["reduceOnly"], o["orderStatus"]) for o in closes] == [
        ("Buy", "0.091", True, "Filled")
    ]
    assert [o for o in fake.orders.values() if o["orderStatus"] in ("New", "Untriggered")] == []
    with SessionRecord(record.path, readonly=True) as rec:
        journal = rec.journal_rows()
        assert rec.meta()["state"] == "stopped"
    assert any(j["kind"] == "order" and j["message"].startswith("flatten ") for j in journal)
