"""History sync from Bybit into the store.

Klines are fetched in windows of 1000 bars, each asked for with both `start` and `end`; each window
is written in its own transaction, so a sync killed midway keeps every finished window and a rerun
fetches only what is still missing. The still-open bar is never stored (only bars whose close is at
or before now). Bybit answers newest first; a short page is completed by asking again below the
oldest bar received. Nothing here sleeps or retries on its own: the client does that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from ..errors import ExchangeError
from ..exchange.bybit import BybitRest, instrument_spec
from ..instruments import InstrumentSpec
from ..timeframes import canonical, tf_ms
from .bars import Bars
from .files import MAX_FUNDING_RATE, MAX_PRICE, MAX_VOLUME
from .gaps import count_missing, missing_ranges
from .store import MarketStore

Progress = Callable[[int, int], None]  # (bars done, bars total)
WINDOW = 1000
DEFAULT_MMR = 0.005  # lowest Bybit risk tier for the linear perpetuals we know


def _clock_ms() -> int:
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
    """Fetch and store every closed bar (mark klines with `mark`) opening in [start, end).

    Windows whose bars are all stored already are skipped. Returns the number of bars written."""
    tf = canonical(tf)
    step = tf_ms(tf)
    now = _clock_ms() if now_ms is None else now_ms
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
    """All bars opening in [lo, hi): asks again below the oldest bar while pages come back short."""
    got: dict[int, list[str]] = {}
    upper = hi - step
    while upper >= lo:
        rows = await client.klines(symbol, tf, lo, upper, mark=mark)
        rows = [r for r in rows if lo <= int(r[0]) <= upper and int(r[0]) % step == 0]
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
    """One window in one transaction, after checking Bybit's bars are well formed."""
    width = 5 if mark else 6
    try:
        a = np.array([[float(x) for x in r[:width]] for r in rows], dtype=np.float64)
    except (ValueError, IndexError) as exc:
        raise ExchangeError(f"Bybit returned a malformed {symbol} {tf} kline ({exc})") from None
    if a.shape[1] != width:
        raise ExchangeError(f"Bybit returned {symbol} {tf} klines with {a.shape[1]} fields")
    volume = np.zeros(len(a)) if mark else a[:, 5]
    bars = Bars.from_arrays(
        symbol, tf, a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], volume
    )
    bad = (
        (bars.high < np.maximum(bars.open, bars.close))
        | (bars.low > np.minimum(bars.open, bars.close))
        | ~((a[:, 1:5] > 0) & (a[:, 1:5] <= MAX_PRICE)).all(axis=1)  # NaN and inf fail too
        | ~((volume >= 0) & (volume <= MAX_VOLUME))
    )
    if bad.any():
        at = int(bars.ts[np.flatnonzero(bad)[0]])
        raise ExchangeError(f"Bybit returned an inconsistent {symbol} {tf} bar at ts {at}")
    if mark:
        return store.write_mark(bars, source="bybit")
    turnover = np.array([float(r[6]) if len(r) > 6 else np.nan for r in rows])
    return store.write_ohlcv(bars, turnover, source="bybit")


async def sync_funding(
    store: MarketStore, client: BybitRest, symbol: str, start_ms: int, end_ms: int
) -> int:
    """Fetch and store funding settlements in [start, end), newest page first, one transaction
    per page. Returns rows written."""
    written, upper = 0, end_ms - 1
    while upper >= start_ms:
        rows = [
            r
            for r in await client.funding(symbol, start_ms, upper)
            if start_ms <= int(r["fundingRateTimestamp"]) <= upper
        ]
        if not rows:
            break
        ts = np.array([int(r["fundingRateTimestamp"]) for r in rows], dtype=np.int64)
        try:
            rate = np.array([float(r["fundingRate"]) for r in rows])
        except (KeyError, TypeError, ValueError) as exc:
            raise ExchangeError(
                f"Bybit returned a malformed {symbol} funding row ({exc})"
            ) from None
        if not (np.abs(rate) <= MAX_FUNDING_RATE).all():  # NaN fails too
            at = int(ts[np.flatnonzero(~(np.abs(rate) <= MAX_FUNDING_RATE))[0]])
            raise ExchangeError(f"Bybit returned an impossible {symbol} funding rate at ts {at}")
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
    including a missing head or tail. Returns bars written."""
    step = tf_ms(tf)
    have = store.user_times("ohlcv", symbol, tf, start_ms, end_ms)
    ranges = missing_ranges(have, tf, start_ms, end_ms)
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
