"""The simulator's fast path: find the first 1m bar where an open position's exits can trigger.

A jitted scan over the bar arrays replaces a Python walk; the bar it returns is then processed by
the same per-bar code as every other bar, so skipping changes nothing but speed.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def first_trigger(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
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

    NaN levels are absent; dd_frac <= 0 disables the drawdown check. Returns (index or stop, the
    running equity peak over the bars fully passed).
    """
    for k in range(start, stop):
        if is_long:
            if (sl == sl and low[k] <= sl) or (tp == tp and high[k] >= tp) or liq_low[k] <= liq:
                return k, peak
            eq = cash + qty * (close[k] - entry)
        else:
            if (sl == sl and high[k] >= sl) or (tp == tp and low[k] <= tp) or liq_high[k] >= liq:
                return k, peak
            eq = cash + qty * (entry - close[k])
        if dd_frac > 0.0:
            if eq <= peak * (1.0 - dd_frac):
                return k, peak
            if eq > peak:
                peak = eq
    return stop, peak


@njit(cache=True)
def first_limit_fill(
    high: np.ndarray, low: np.ndarray, start: int, stop: int, is_buy: bool, price: float
) -> int:
    """First index in [start, stop) whose range trades through a resting limit price."""
    for k in range(start, stop):
        if is_buy:
            if low[k] <= price:
                return k
        elif high[k] >= price:
            return k
    return stop
