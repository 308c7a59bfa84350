"""Synthetic markets: coherent 1m bars for named patterns, deterministic per seed.

Every higher timeframe is aggregated from these 1m bars (never generated separately), so a Play on
synthetic data sees the same consistency as on real data. Prices follow a log random walk whose drift
and volatility change by pattern phase; each bar's open is the previous close except where a pattern
deliberately gaps.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import InputError
from .bars import Bars

PATTERNS = (
    "trend_up",
    "trend_down",
    "range",
    "volatile",
    "breakout",
    "crash",
    "pump",
    "chop",
    "v_reversal",
    "gap_down",
)
DEFAULT_START_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC
BASE_VOL = 0.0008  # per-minute log volatility


def _drift_vol(pattern: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar drift and volatility of the log price; moves are totals over the whole series, so a
    pattern looks the same at any length."""
    x = np.linspace(0.0, 1.0, n, endpoint=False)
    drift = np.zeros(n)
    base = min(BASE_VOL, 0.12 / np.sqrt(n))  # the walk's noise never swamps the pattern
    vol = np.full(n, base)

    def move(mask: np.ndarray, total: float) -> None:
        k = int(mask.sum())
        if k:
            drift[mask] = np.log(total) / k

    if pattern == "trend_up":
        move(x >= 0, 1.4)
    elif pattern == "trend_down":
        move(x >= 0, 0.65)
    elif pattern == "range":
        vol[:] = base * 0.8
    elif pattern == "volatile":
        vol[:] = base * 3
    elif pattern == "breakout":
        vol[x < 0.6] = base * 0.5
        move(x >= 0.6, 1.3)
        vol[x >= 0.6] = base * 1.5
    elif pattern == "crash":
        move((x >= 0.5) & (x < 0.55), 0.65)
        vol[(x >= 0.5) & (x < 0.6)] = base * 4
    elif pattern == "pump":
        move((x >= 0.5) & (x < 0.55), 1.5)
        vol[(x >= 0.5) & (x < 0.6)] = base * 4
    elif pattern == "chop":
        vol[:] = base * 1.5
    elif pattern == "v_reversal":
        move(x < 0.5, 0.7)
        move(x >= 0.5, 1 / 0.7)
    return drift, vol


@njit(cache=True)
def _ar1(steps: np.ndarray, keep: float) -> np.ndarray:
    out = np.zeros(len(steps))
    for i in range(1, len(steps)):
        out[i] = out[i - 1] * keep + steps[i]
    return out


def synthetic_market(
    pattern: str, bars: int, seed: int, symbol: str = "SYNTH", start_ms: int = DEFAULT_START_MS
) -> Bars:
    """`bars` 1m bars of `pattern` (see PATTERNS), identical for the same seed."""
    if pattern not in PATTERNS:
        raise InputError(f"--pattern {pattern!r}: expected one of {', '.join(PATTERNS)}")
    if bars < 1:
        raise InputError(f"--bars {bars}: expected a positive number of bars")
    rng = np.random.default_rng(seed)
    drift, vol = _drift_vol(pattern, bars)
    steps = drift + vol * rng.standard_normal(bars)
    if pattern in ("range", "chop"):
        # mean reversion keeps the price inside a band
        log_close = _ar1(steps, 0.995 if pattern == "range" else 0.98)
    else:
        log_close = np.cumsum(steps)
    close = 100.0 * np.exp(log_close)
    gaps = [bars * k // 4 for k in range(1, 4)] if pattern == "gap_down" and bars >= 4 else []
    for i in gaps:  # three 5% gaps down: everything from bar i on trades 5% lower
        close[i:] *= 0.95
    open_ = np.concatenate([[100.0], close[:-1]])
    for i in gaps:
        open_[i] = close[i - 1] * 0.95
    wick = np.abs(rng.standard_normal((2, bars))) * vol * 0.6
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = np.round(rng.gamma(2.0, 50.0, bars) * (1 + np.abs(steps) / vol), 3)
    ts = start_ms + np.arange(bars, dtype=np.int64) * 60_000
    r = lambda a: np.round(a, 2)  # noqa: E731  (two decimals, like a 0.01 tick)
    o, h, lo, c = r(open_), r(high), r(low), r(close)
    h = np.maximum(h, np.maximum(o, c))
    lo = np.minimum(lo, np.minimum(o, c))
    return Bars.from_arrays(symbol, "1m", ts, o, h, lo, c, volume)
