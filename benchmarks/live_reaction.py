"""Reaction time of a demo session: from the confirmed kline message arriving to the order request
leaving, over replayed days of real bars against the fake Bybit exchange on loopback (target: p99
under 20 ms on a 2-core machine; the decision itself costs microseconds, the rest is our I/O path:
the feed, the session record's fsynced order intent, the request built and signed).

    python benchmarks/live_reaction.py [--days 3]

The days are the bundled sample's (BTCUSDT, from 2025-06-10), played minute by minute through
`tests/fakes/market_day.py` with a Play that flips often (`benchmarks/plays/reaction_ema.yml`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fakes.bybit import FakeBybit  # noqa: E402
from fakes.market_day import MarketDay  # noqa: E402
from trade.data import MarketStore  # noqa: E402
from trade.engine.backtest import parse_time  # noqa: E402
from trade.engine.play_engine import PlayEngine  # noqa: E402
from trade.exchange.bybit import BybitRest  # noqa: E402
from trade.live.launch import make_runner, open_record, plan_session  # noqa: E402

PLAY = ROOT / "benchmarks" / "plays" / "reaction_ema.yml"
ORDER_PATHS = ("/v5/order/create", "/v5/order/cancel", "/v5/position/trading-stop")


def run(days: int) -> tuple[list[float], dict[str, int]]:
    home = Path(tempfile.mkdtemp(prefix="trade-reaction-"))
    os.environ["HOME"] = str(home)
    os.environ["TRADE_DB"] = str(home / "market.duckdb")
    with MarketStore(home / "market.duckdb") as store:
        store.ensure_sample()
    start = parse_time("2025-06-10", "start")
    end = start + days * 86_400_000
    reactions: list[float] = []
    counts: dict[str, int] = {}
    with FakeBybit() as fake:
        os.environ.update(fake.env())
        os.environ["BYBIT_DEMO_API_KEY"], os.environ["BYBIT_DEMO_API_SECRET"] = (
            fake.api_key, fake.api_secret,
        )  # fmt: skip
        fake.demo = True
        plan = plan_session(str(PLAY), "demo", session="reaction")
        with MarketStore(home / "market.duckdb", read_only=True) as store:
            day = MarketDay(
                fake, store, plan.symbol, PlayEngine(plan.compiled).timeframes(), start, end
            )
            day.load_history()
        record = open_record(plan)

        async def go() -> None:
            async with BybitRest(environment="demo", credentials=plan.credentials) as rest:
                runner = make_runner(plan, record, rest, store_path=None)

                async def on_request(request) -> None:  # type: ignore[no-untyped-def]
                    path = request.url.path
                    if path in ORDER_PATHS:
                        counts[path] = counts.get(path, 0) + 1
                        if path == "/v5/order/create":
                            reactions.append((time.monotonic() - runner.event_at) * 1000)

                rest.client.event_hooks["request"].append(on_request)
                task = asyncio.create_task(runner.run())
                while runner.broker is None or not any(c["topics"] for c in fake.connections):
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.01)
                await day.play(runner, trades=True)
                runner.request_stop()
                await task

        asyncio.run(go())
        record.close()
    return reactions, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    reactions, counts = run(args.days)
    wall = time.perf_counter() - t0
    if not reactions:
        raise SystemExit("no order was sent: nothing to measure")
    r = np.array(reactions)
    p50, p99 = np.percentile(r, [50, 99])
    print(f"replayed {args.days} day(s) of 1m bars in demo mode against the fake in {wall:.1f} s")
    print(f"order requests: {counts}")
    print(
        f"kline arrival -> order request leaving, {len(r)} orders: p50 {p50:.2f} ms, "
        f"p99 {p99:.2f} ms, max {r.max():.2f} ms (target p99 < 20 ms: "
        f"{'met' if p99 < 20 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
