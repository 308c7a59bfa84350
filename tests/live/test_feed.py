"""The live market feed against the fake exchange: only closed bars, each exactly once and in
order, gaps and outages filled by REST before anything later, and the evaluation clock's rule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from fakes.bybit import FakeBybit
from trade.exchange.bybit import BybitRest, Kline
from trade.live.feed import ClosedBar, EvaluationClock, MarketFeed

T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC, a multiple of 5 minutes
MIN = 60_000


def bar(i: int, step: int = MIN) -> list[float]:
    p = 100.0 + i
    return [T0 + i * step, p, p + 2, p - 1, p + 1, 10.0 + i]


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as server:
        server.set_time(T0 + 30_000)
        yield server


def push(fake: FakeBybit, i: int, interval: str = "1", confirm: bool = True) -> None:
    step = MIN if interval == "1" else 5 * MIN
    fake.set_time(T0 + (i + 1) * step + 1_000 if confirm else T0 + i * step + 1_000)
    row = bar(i, step)
    if not confirm:
        row[4] = row[1]  # a forming bar: close = open so far
    fake.kline("BTCUSDT", interval, row[0], *row[1:6], confirm=confirm)


async def take(feed: MarketFeed, count: int, timeout: float = 60.0) -> list[ClosedBar]:
    out: list[ClosedBar] = []

    async def go() -> None:
        async for b in feed.bars():
            out.append(b)
            if len(out) >= count:
                return

    await asyncio.wait_for(go(), timeout)
    return out


async def ready(feed: MarketFeed, fake: FakeBybit) -> None:
    while (await feed.stream.next(60.0)).kind != "connected":
        pass
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        if any(set(feed.topic_tf) <= set(c["topics"]) for c in fake.connections):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never subscribed")


def test_closed_bars_once_in_order_with_gaps_and_an_outage_filled_by_rest(
    fake: FakeBybit,
) -> None:
    fake.load_klines("BTCUSDT", "1", [bar(i) for i in range(12)])  # what REST can serve

    async def go() -> tuple[list[ClosedBar], MarketFeed]:
        async with BybitRest(fake.rest_url, backoff=0.01) as rest:
            await rest.sync_time()
            feed = MarketFeed(rest, fake.ws_public_url, "BTCUSDT", ["1m", "5m"],
                              {"1m": T0 - MIN, "5m": T0 - 5 * MIN}, backoff=0.01)  # fmt: skip
            async with feed:
                await ready(feed, fake)
                push(fake, 0, confirm=False)  # forming: not a bar yet
                push(fake, 0)
                push(fake, 0)  # pushed twice: handed out once
                push(fake, 1)
                push(fake, 3)  # 2 never came by stream: fetched by REST first
                push(fake, 4)
                push(fake, 0, "5")  # the 5m bar 00:00–00:05 closes with the 1m bar at 00:04
                got = await take(feed, 6)
                fake.drop_all_ws(1006)  # the stream is down while 5, 6 and 7 close
                fake.set_time(T0 + 8 * MIN + 5_000)
                await rest.sync_time()
                got += await take(feed, 3)  # caught up by REST after the reconnect
                push(fake, 8)
                got += await take(feed, 1)
            return got, feed

    got, feed = asyncio.run(go())
    assert [(b.tf, (b.bar.start - T0) // MIN, b.source) for b in got] == [
        ("1m", 0, "stream"),
        ("1m", 1, "stream"),
        ("1m", 2, "rest"),
        ("1m", 3, "stream"),
        ("1m", 4, "stream"),
        ("5m", 0, "stream"),
        ("1m", 5, "rest"),
        ("1m", 6, "rest"),
        ("1m", 7, "rest"),
        ("1m", 8, "stream"),
    ]
    assert got[2].bar.close == bar(2)[4] and got[0].bar.volume == bar(0)[5]
    assert feed.duplicates == 1 and feed.backfilled == 4


def test_the_evaluation_clock_waits_for_every_timeframe() -> None:
    clock = EvaluationClock(["5m", "15m", "1h"], "5m")
    five, fifteen = 5 * MIN, 15 * MIN

    def fed(tf: str, close: int) -> None:
        step = {"5m": five, "15m": fifteen, "1h": 60 * MIN}[tf]
        clock.fed(ClosedBar(tf, Kline(close - step, 1, 1, 1, 1, 0, 0, True), "stream"))

    fed("1h", T0)
    fed("15m", T0)
    fed("5m", T0 + five)
    assert clock.due(T0) == [T0 + five]
    fed("5m", T0 + 2 * five)
    fed("5m", T0 + 3 * five)  # the 15m bar closing at T0+15m is not in yet
    assert clock.due(T0 + five) == [T0 + 2 * five]
    assert not clock.ready(T0 + 3 * five)
    fed("15m", T0 + fifteen)
    assert clock.due(T0 + 2 * five) == [T0 + 3 * five]
