"""History sync from Bybit into the store.

Klines are fetched in windows of 1000 bars, each asked for with both `start` and `end`; each window
is written in its own transaction, so a sync killed midway keeps every finished window and a rerun
fetches only what is still missing. The still-open bar is never stored (only bars whose close is at
or before now). Bybit answers newest first; a short page is completed by asking again below the
oldest bar received. Nothing here sleeps or retries on its own: the client does that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from ..exchange.bybit import BybitRest, Kline, instrument_spec
from ..instruments import InstrumentSpec
from ..timeframes import canonical, tf_ms
from .bars import Bars
from .gaps import count_missing, missing_ranges
from .store import MarketStore

Progress = Callable[[int, int], None]  # (bars done, bars total)
WINDOW = 1000
DEFAULT_MMR = 0.005  # lowest Bybit risk tier for the linear perpetuals we know


async def sync_ohlcv(
    store: MarketStore,
    client: BybitRest,
    symbol: str,
    tf: str,
    start_ms: int,
    end_ms: int,
    progress: Progress | None = None,
    now_ms: int | None = None,
    mark: bool = False,
) -> int:
    """Fetch and store every closed bar (mark klines with `mark`) opening in [start, end).

    Windows whose bars are all stored already are skipped. Returns the number of bars written."""
    tf = canonical(tf)
    step = tf_ms(tf)
    now = client.now_ms() if now_ms is None else now_ms
    start = -(-start_ms // step) * step
    end = min(-(-end_ms // step) * step, (now // step) * step)  # bars opening at `end`+ are open
    if end <= start:
        return 0
    have = store.user_times("mark" if mark else "ohlcv", symbol, tf, start, end)
    total, written, t = (end - start) // step, 0, start
    while t < end:
        w_end = min(t + WINDOW * step, end)
        stored = np.count_nonzero((have >= t) & (have < w_end))
        if stored < (w_end - t) // step:
            rows = await _fetch_window(client, symbol, tf, t, w_end, step, mark, now)
            if rows:
                written += _write(store, symbol, tf, rows, mark)
        t = w_end
        if progress is not None:
            progress((t - start) // step, total)
    return written


async def _fetch_window(
    client: BybitRest, symbol: str, tf: str, lo: int, hi: int, step: int, mark: bool, now: int
) -> list[Kline]:
    """All closed bars opening in [lo, hi): asks again below the oldest bar while pages come
    back short. A bar still open by `now` (or by the exchange's clock) is never kept."""
    got: dict[int, Kline] = {}
    upper = hi - step
    while upper >= lo:
        rows = [
            k
            for k in await client.klines(symbol, tf, lo, upper, mark=mark)
            if lo <= k.start <= upper and k.start % step == 0
        ]
        if not rows:
            break
        for k in rows:
            if k.confirm and k.start + step <= now:
                got[k.start] = k
        oldest = min(k.start for k in rows)
        if oldest <= lo:
            break
        upper = oldest - step
    return [got[k] for k in sorted(got)]


def _write(store: MarketStore, symbol: str, tf: str, rows: list[Kline], mark: bool) -> int:
    """One window in one transaction (the client has checked every bar is well formed)."""
    col = lambda name: np.array([getattr(k, name) for k in rows], dtype=np.float64)  # noqa: E731
    bars = Bars.from_arrays(
        symbol,
        tf,
        np.array([k.start for k in rows], dtype=np.int64),
        col("open"),
        col("high"),
        col("low"),
        col("close"),
        np.zeros(len(rows)) if mark else col("volume"),
    )
    if mark:
        return store.write_mark(bars, source="bybit")
    return store.write_ohlcv(bars, col("turnover"), source="bybit")


async def sync_funding(
    store: MarketStore, client: BybitRest, symbol: str, start_ms: int, end_ms: int
) -> int:
    """Fetch and store funding settlements in [start, end), newest page first, one transaction
    per page. Returns rows written."""
    written, upper = 0, end_ms - 1
    while upper >= start_ms:
        rows = [
            r for r in await client.funding(symbol, start_ms, upper) if start_ms <= r[0] <= upper
        ]
        if not rows:
            break
        ts = np.array([r[0] for r in rows], dtype=np.int64)
        rate = np.array([r[1] for r in rows])
        written += store.write_funding(symbol, ts, rate, source="bybit")
        upper = int(ts.min()) - 1
    return written


async def sync_instrument(store: MarketStore, client: BybitRest, symbol: str) -> InstrumentSpec:
    """Fetch and store a symbol's filters (keeping a stored maintenance margin rate)."""
    known = store.instrument(symbol)
    spec = instrument_spec(
        await client.instrument(symbol),
        known.maintenance_margin_rate if known is not None else DEFAULT_MMR,
    )
    store.write_instrument(spec)
    return spec


async def heal(
    store: MarketStore,
    client: BybitRest,
    symbol: str,
    tf: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Fetch exactly the missing bars: inside the stored span, or (with bounds) inside the window
    including a missing head or tail. A series of the bundled sample with nothing missing is left
    alone; with bars missing, the whole range is fetched, since the user's bars replace the
    sample's series rather than fill it. Returns bars written."""
    step = tf_ms(tf)
    ranges = missing_ranges(
        store.stored_times("ohlcv", symbol, tf, start_ms, end_ms), tf, start_ms, end_ms
    )
    if ranges and store.is_sample_series("ohlcv", symbol, tf):
        # the first bar written replaces the sample's series whole: fetch all of the range
        ranges = missing_ranges(np.empty(0, dtype=np.int64), tf, start_ms, end_ms)
    total, done, written = count_missing(ranges, tf), 0, 0
    for first, last in ranges:
        written += await sync_ohlcv(store, client, symbol, tf, first, last + step)
        done += (last - first) // step + 1
        if progress is not None:
            progress(done, total)
    return written


def heal_for_window(
    store: MarketStore, symbol: str, tfs: list[str], start_ms: int | None, end_ms: int | None
) -> int:
    """`--fix-gaps`: heal each timeframe's stored series from Bybit before a run."""

    async def go() -> int:
        async with BybitRest() as client:
            return sum([await heal(store, client, symbol, tf, start_ms, end_ms) for tf in tfs])

    return asyncio.run(go())
