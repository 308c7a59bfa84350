"""The simulator's fast path: find the first intrabar bar where something can happen.

Jitted scans over the bar arrays replace a Python walk; the bar they return is then processed by
the same per-bar code as every other bar, so skipping changes nothing but speed. A scan must never
report a bar later than the first one where the per-bar code would act (it may report earlier).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def first_trigger(
    high: np.ndarray,
    low: np.ndarray,
    dd_price: np.ndarray,
    liq_low: np.ndarray,
    liq_high: np.ndarray,
    start: int,
    stop: int,
    is_long: bool,
    sl: float,
    tp: float,
    liq: float,
    qty: float,
    entry: float,
    cash: float,
    peak: float,
    dd_frac: float,
) -> tuple[int, float]:
    """First index in [start, stop) where SL, TP, liquidation or the drawdown limit triggers.

    NaN levels are absent; dd_frac <= 0 disables the drawdown check. Equity at a bar's close is
    cash + qty × (dd_price − entry) signed. Returns (index or stop, the running equity peak over the
    bars fully passed).
    """
    for k in range(start, stop):
        if is_long:
            if (sl == sl and low[k] <= sl) or (tp == tp and high[k] >= tp) or liq_low[k] <= liq:
                return k, peak
            eq = cash + qty * (dd_price[k] - entry)
        else:
            if (sl == sl and high[k] >= sl) or (tp == tp and low[k] <= tp) or liq_high[k] >= liq:
                return k, peak
            eq = cash + qty * (entry - dd_price[k])
        if dd_frac > 0.0:
            if eq <= peak * (1.0 - dd_frac):
                return k, peak
            if eq > peak:
                peak = eq
    return stop, peak


@njit(cache=True)
def first_touch(
    high: np.ndarray,
    low: np.ndarray,
    start: int,
    stop: int,
    from_above: bool,
    price: float,
    through: bool,
) -> int:
    """First index in [start, stop) whose range reaches `price`: from above (low <= price: buy
    limits, sell stops) or from below (high >= price: sell limits, buy stops). `through`: the
    range must pass the price, not just touch it (limit orders)."""
    for k in range(start, stop):
        if from_above:
            if low[k] < price or (low[k] == price and not through):
                return k
        elif high[k] > price or (high[k] == price and not through):
            return k
    return stop


@njit(cache=True)
def first_true(flags: np.ndarray, start: int, stop: int) -> int:
    """First index in [start, stop) where `flags` is set (e.g. the next exec close), else stop."""
    for k in range(start, stop):
        if flags[k]:
            return k
    return stop


@njit(cache=True)
def bisect(a: np.ndarray, x: float, right: bool) -> int:
    """`np.searchsorted(a, x, side)` over a sorted array, in a few lines: numba's own version
    compiles for seconds (a comparison for every dtype, complex ones included) on a first run."""
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < x or (right and a[mid] == x):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def extremes(high: np.ndarray, low: np.ndarray, start: int, stop: int) -> tuple[float, float]:
    """Highest high and lowest low over [start, stop) (a non-empty span) in one pass."""
    hi, lo = high[start], low[start]
    for k in range(start + 1, stop):
        if high[k] > hi:
            hi = high[k]
        if low[k] < lo:
            lo = low[k]
    return hi, lo
