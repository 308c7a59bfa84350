"""Replays stored real bars through the fake exchange as Bybit would publish them, paced by the
session under test, so a day of live trading runs in seconds.

History closed before the session starts is loaded for REST (warmup); then each minute of the
day is played: (demo) the minute's trades move the market through its open, its extremes and its
close, so resting orders, stops and targets fill on the exchange; then the clock steps to the
minute's close and every kline closing there is pushed with `confirm: true`; the driver waits
until the runner has handled that close before it plays the next minute. The fake's clock is
frozen between steps: nothing in the session may wait on real time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import numpy as np

from fakes.bybit import FakeBybit
from trade.data import MarketStore
from trade.data.bars import Bars
from trade.exchange.bybit import interval_of
from trade.live.runner import LiveRunner
from trade.timeframes import MINUTE_MS, tf_ms

HOUR_MS = 3_600_000


@dataclass
class MarketDay:
    """Bars of `symbol` for `tfs` (1m included) from `store`, played from `start` to `end`."""

    fake: FakeBybit
    store: MarketStore
    symbol: str
    tfs: Iterable[str]
    start: int  # the session's window start (an exec-bar boundary)
    end: int  # the last minute played closes here

    def __post_init__(self) -> None:
        self.tfs = sorted({*self.tfs, "1m"}, key=tf_ms)
        self.bars: dict[str, Bars] = {
            tf: self.store.load_bars(self.symbol, tf, None, self.end) for tf in self.tfs
        }
        self.by_open = {tf: {int(t): i for i, t in enumerate(b.ts)} for tf, b in self.bars.items()}

    def load_history(self) -> None:
        """What REST can serve when the session starts: bars closed by then, marks, funding."""
        for tf, b in self.bars.items():
            closed = b.ts + tf_ms(tf) < self.start
            self.fake.load_klines(self.symbol, interval_of(tf), _rows(b, closed))
        mark = self.store.load_mark(self.symbol, self.start - 8 * HOUR_MS, self.end + HOUR_MS)
        if mark is not None:
            rows = np.column_stack([mark.ts, mark.open, mark.high, mark.low, mark.close])
            self.fake.load_mark_klines(
                self.symbol, interval_of(mark.timeframe),
                [[int(r[0]), *map(float, r[1:])] for r in rows],
            )  # fmt: skip
        f_ts, f_rate = self.store.load_funding(self.symbol, self.start, self.end + 1)
        self.funding = {int(t): float(r) for t, r in zip(f_ts, f_rate, strict=True)}
        self.fake.load_funding(
            self.symbol, [[int(t), float(r)] for t, r in zip(f_ts, f_rate, strict=True)]
        )
        self.fake.set_time(self.start - 500)

    def minutes(self) -> range:
        """Open times of the minutes played: from the one closing at the start to the end."""
        return range(self.start - MINUTE_MS, self.end, MINUTE_MS)

    async def play(
        self,
        runner: LiveRunner | None = None,
        *,
        trades: bool = False,
        wait: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        """Play every minute; after each, wait until the session handled its close
        (`runner.wait_handled`, or `wait(close)` for a session in another process)."""
        waiter = wait or (runner.wait_handled if runner is not None else None)
        assert waiter is not None, "give the runner or a wait function"
        for m in self.minutes():
            await self.play_minute(m, waiter, trades=trades)

    async def play_minute(
        self, m: int, wait: Callable[[int], Awaitable[None]], *, trades: bool = False
    ) -> None:
        close = m + MINUTE_MS
        if trades and m >= self.start:
            if m in self.funding:
                self.fake.set_time(m)
                self.fake.funding(self.symbol, self.funding[m])
            self.trade_through(m)
        self.fake.set_time(close)
        self.push_closed(close)
        await wait(close)

    def trade_through(self, m: int, after: Callable[[int], None] | None = None) -> None:
        """The minute's trades: open, then the extreme nearer the open first, then the close
        (`after(n)` runs once the n-th of them is printed)."""
        b, i = self.bars["1m"], self.by_open["1m"][m]
        o, h, lo, c = (float(x[i]) for x in (b.open, b.high, b.low, b.close))
        self.fake.set_time(m + 1)
        path = (lo, h) if (o - lo) <= (h - o) else (h, lo)
        for n, price in enumerate((o, *path, c), 1):
            self.fake.trade(self.symbol, price)
            if after is not None:
                after(n)

    def push_closed(self, close: int) -> None:
        """Every bar closing at `close`, lower timeframe first."""
        for tf in self.tfs:
            opened = close - tf_ms(tf)
            i = self.by_open[tf].get(opened)
            if i is None:
                continue
            b = self.bars[tf]
            self.fake.kline(
                self.symbol, interval_of(tf), opened, float(b.open[i]), float(b.high[i]),
                float(b.low[i]), float(b.close[i]), float(b.volume[i]), confirm=True,
            )  # fmt: skip


def _rows(b: Bars, keep: np.ndarray) -> list[list[float]]:
    return [
        [int(b.ts[i]), float(b.open[i]), float(b.high[i]), float(b.low[i]), float(b.close[i]),
         float(b.volume[i])]
        for i in np.flatnonzero(keep)
    ]  # fmt: skip
