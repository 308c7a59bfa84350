"""History sync from Bybit into the store: 1000-bar windows, one transaction per window, so a sync
killed midway leaves every window it finished and a rerun fetches only what is missing.

The still-open bar is never stored (only bars whose close is at or before now). Partial pages are
completed by asking again for the part of the window still missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from ..errors import DataError
from ..exchange.bybit import BybitRest
from ..instruments import InstrumentSpec
from ..timeframes import canonical, tf_ms
from .bars import Bars
from .store import MarketStore

Progress = Callable[[int, int], None]
WINDOW = 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


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
    """Fetch and store every closed bar with open time in [start, end). Returns bars written."""
    tf = canonical(tf)
    step = tf_ms(tf)
    now = _now_ms() if now_ms is None else now_ms
    start = -(-start_ms // step) * step
    end = min(end_ms, (now // step) * step)  # bars opening at `end` or later have not closed
    if end <= start:
        return 0
    have = set(store.load_bars(symbol, tf, start, end).ts.tolist()) if not mark else set()
    total, written, t = (end - start) // step, 0, start
    while t < end:
        w_end = min(t + WINDOW * step, end)
        expected = [x for x in range(t, w_end, step) if x not in have]
        if expected:
            rows = await _fetch_window(client, symbol, tf, t, w_end, step, mark)
            if rows:
                written += _write(store, symbol, tf, rows, mark)
        t = w_end
        if progress is not None:
            progress((t - start) // step, total)
    return written


async def _fetch_window(
    client: BybitRest, symbol: str, tf: str, lo: int, hi: int, step: int, mark: bool
) -> list[list[str]]:
    """All bars in [lo, hi): asks again below the oldest bar received while pages come back short."""
    got: dict[int, list[str]] = {}
    upper = hi - step
    while upper >= lo:
        rows = await client.klines(symbol, tf, lo, upper, mark=mark)
        rows = [r for r in rows if lo <= int(r[0]) <= upper]
        if not rows:
            break
        for r in rows:
            got[int(r[0])] = r
        oldest = min(int(r[0]) for r in rows)
        if oldest <= lo:
            break
        upper = oldest - step
    return [got[k] for k in sorted(got)]


def _write(store: MarketStore, symbol: str, tf: str, rows: list[list[str]], mark: bool) -> int:
    a = np.array(
        [[float(x) for x in r[:6]] if not mark else [float(x) for x in r[:5]] + [0.0] for r in rows]
    )
    bars = Bars.from_arrays(
        symbol, tf, a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5]
    )
    if np.any(bars.high < np.maximum(bars.open, bars.close)) or np.any(
        bars.low > np.minimum(bars.open, bars.close)
    ):
        raise DataError(f"Bybit returned inconsistent {symbol} {tf} bars near {int(bars.ts[0])}")
    if mark:
        return store.write_mark(bars, source="bybit")
    turnover = np.array([float(r[6]) if len(r) > 6 else np.nan for r in rows])
    return store.write_ohlcv(bars, turnover, source="bybit")


async def sync_funding(
    store: MarketStore, client: BybitRest, symbol: str, start_ms: int, end_ms: int
) -> int:
    written, t = 0, end_ms
    while t > start_ms:
        rows = [
            r
            for r in await client.funding(symbol, start_ms, t)
            if start_ms <= int(r["fundingRateTimestamp"]) <= t
        ]
        if not rows:
            break
        ts = np.array([int(r["fundingRateTimestamp"]) for r in rows], dtype=np.int64)
        written += store.write_funding(
            symbol, ts, np.array([float(r["fundingRate"]) for r in rows]), source="bybit"
        )
        t = int(ts.min()) - 1
    return written


async def sync_instrument(store: MarketStore, client: BybitRest, symbol: str) -> InstrumentSpec:
    """Store the instrument's filters from `/v5/market/instruments-info` (the maintenance margin
    rate is not published there: the stored or default lowest-tier rate is kept)."""
    info = await client.instrument(symbol)
    old = store.instrument(symbol)
    lot, price, lev = info["lotSizeFilter"], info["priceFilter"], info.get("leverageFilter", {})
    spec = InstrumentSpec(
        symbol=symbol,
        tick_size=float(price["tickSize"]),
        qty_step=float(lot["qtyStep"]),
        min_qty=float(lot["minOrderQty"]),
        min_notional=float(lot.get("minNotionalValue", 0) or 0),
        max_leverage=float(lev.get("maxLeverage", 100) or 100),
        maintenance_margin_rate=old.maintenance_margin_rate if old else 0.005,
        funding_interval_hours=float(info.get("fundingInterval", 480)) / 60.0,
    )
    store.write_instrument(spec)
    return spec


def find_gaps(ts: np.ndarray, tf: str) -> list[tuple[int, int]]:
    """Missing (first, last) open times between consecutive stored bars."""
    step = tf_ms(tf)
    idx = np.flatnonzero(np.diff(ts) != step)
    return [(int(ts[i]) + step, int(ts[i + 1]) - step) for i in idx]


async def heal(
    store: MarketStore,
    client: BybitRest,
    symbol: str,
    tf: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> int:
    """Fetch exactly the bars missing inside the stored span (or the given window)."""
    ts = store.load_bars(symbol, tf, start_ms, end_ms).ts
    written = 0
    for first, last in find_gaps(ts, tf):
        written += await sync_ohlcv(store, client, symbol, tf, first, last + tf_ms(tf))
    return written


def heal_for_window(
    store: MarketStore, symbol: str, tfs: list[str], start_ms: int | None, end_ms: int | None
) -> int:
    """`--fix-gaps`: heal each timeframe's stored series from Bybit before a run."""

    async def go() -> int:
        async with BybitRest() as client:
            return sum([await heal(store, client, symbol, tf, start_ms, end_ms) for tf in tfs])

    return asyncio.run(go())
