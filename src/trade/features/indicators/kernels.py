"""Jitted building blocks that indicator steps compose: smoothing, windows and lags.

Every block keeps its state in a slice of one float64 array (`st[b:b+size]`) so an indicator's whole
state is a single array that serialises exactly. NaN inputs are skipped (not counted), which is how
chained smoothers (DEMA, TRIX, MACD signal) start only once their input exists — TA-Lib's convention.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NAN = np.nan

EMA = 3  # state size of an ema block: count, running sum (seed), value


def win_size(n: int) -> int:
    return 2 + n  # count, write position, buffer


@njit(cache=True, inline="always")
def ema(st: np.ndarray, b: int, x: float, n: float, alpha: float) -> float:
    """EMA seeded with the SMA of its first n inputs (TA-Lib); alpha = 2/(n+1) or 1/n (Wilder)."""
    if x != x:
        return st[b + 2] if st[b] >= n else NAN
    if st[b] < n:
        st[b] += 1.0
        st[b + 1] += x
        if st[b] >= n:
            st[b + 2] = st[b + 1] / n
            return st[b + 2]
        return NAN
    v = st[b + 2] + (x - st[b + 2]) * alpha
    st[b + 2] = v
    return v


@njit(cache=True, inline="always")
def push(st: np.ndarray, b: int, x: float, n: int) -> None:
    """Append x to a window of n values (ring buffer at st[b+2:b+2+n])."""
    pos = int(st[b + 1])
    st[b + 2 + pos] = x
    st[b + 1] = pos + 1 if pos + 1 < n else 0  # not `% n`: an integer division per bar
    if st[b] < n:
        st[b] += 1.0


@njit(cache=True, inline="always")
def full(st: np.ndarray, b: int, n: int) -> bool:
    return st[b] >= n


@njit(cache=True, inline="always")
def ago(st: np.ndarray, b: int, k: int, n: int) -> float:
    """The value pushed k pushes ago (0 = newest) in a window of n."""
    j = int(st[b + 1]) - 1 - k
    return st[b + 2 + (j + n if j < 0 else j)]


@njit(cache=True, inline="always")
def wmax(st: np.ndarray, b: int, n: int) -> float:
    m = st[b + 2]
    for j in range(1, n):
        if st[b + 2 + j] > m:
            m = st[b + 2 + j]
    return m


@njit(cache=True, inline="always")
def wmin(st: np.ndarray, b: int, n: int) -> float:
    m = st[b + 2]
    for j in range(1, n):
        if st[b + 2 + j] < m:
            m = st[b + 2 + j]
    return m


@njit(cache=True, inline="always")
def wsum(st: np.ndarray, b: int, n: int) -> float:
    s = 0.0
    for j in range(n):
        s += st[b + 2 + j]
    return s


@njit(cache=True, inline="always")
def sma(st: np.ndarray, b: int, x: float, n: int) -> float:
    """Simple moving average over a window (NaN until n inputs; NaN inputs skipped)."""
    if x != x:
        return wsum(st, b, n) / n if full(st, b, n) else NAN
    push(st, b, x, n)
    if not full(st, b, n):
        return NAN
    return wsum(st, b, n) / n


@njit(cache=True, inline="always")
def stdev(st: np.ndarray, b: int, n: int, mean: float) -> float:
    """Population standard deviation of the window around `mean` (TA-Lib BBANDS/STDDEV)."""
    s = 0.0
    for j in range(n):
        d = st[b + 2 + j] - mean
        s += d * d
    return np.sqrt(s / n)


@njit(cache=True, inline="always")
def moving_std(st: np.ndarray, b: int, x: float, n: int) -> tuple[float, float]:
    """Mean and population std of the last n values in O(1) per bar (NaN, NaN until n values).

    State: a window (win_size(n) slots at b) then reference, Σ(x − ref), Σ(x − ref)², pushes since
    the sums were last rebuilt. Sums are kept around a recent value (no cancellation at high prices)
    and rebuilt exactly from the window every n pushes, so rounding cannot accumulate; a flat window
    gives exactly 0.
    """
    r = b + 2 + n
    ref = st[r]
    if full(st, b, n):
        old = st[b + 2 + int(st[b + 1])]  # the oldest value, overwritten by this push
        st[r + 1] += (x - ref) - (old - ref)
        st[r + 2] += (x - ref) * (x - ref) - (old - ref) * (old - ref)
    else:
        st[r + 1] += x - ref
        st[r + 2] += (x - ref) * (x - ref)
    push(st, b, x, n)
    if not full(st, b, n):
        return NAN, NAN
    since = st[r + 3]
    st[r + 3] = since + 1.0
    if since == 0.0 or since >= n:  # first full window, then every n pushes
        st[r], st[r + 1], st[r + 2], st[r + 3] = x, 0.0, 0.0, 1.0
        for j in range(n):
            d = st[b + 2 + j] - x
            st[r + 1] += d
            st[r + 2] += d * d
    m1 = st[r + 1] / n
    var = st[r + 2] / n - m1 * m1
    return st[r] + m1, np.sqrt(var) if var > 0.0 else 0.0


@njit(cache=True, inline="always")
def argmax_age(st: np.ndarray, b: int, n: int) -> int:
    """Pushes since the window's maximum (latest one on ties)."""
    best, age = -np.inf, 0
    for k in range(n):
        v = ago(st, b, k, n)
        if v > best:
            best, age = v, k
    return age


@njit(cache=True, inline="always")
def argmin_age(st: np.ndarray, b: int, n: int) -> int:
    best, age = np.inf, 0
    for k in range(n):
        v = ago(st, b, k, n)
        if v < best:
            best, age = v, k
    return age


@njit(cache=True, inline="always")
def source_value(src: int, o: float, h: float, lo: float, c: float, v: float) -> float:
    """0 close, 1 open, 2 high, 3 low, 4 volume, 5 hl2, 6 hlc3, 7 ohlc4."""
    if src == 0:
        return c
    if src == 1:
        return o
    if src == 2:
        return h
    if src == 3:
        return lo
    if src == 4:
        return v
    if src == 5:
        return (h + lo) / 2.0
    if src == 6:
        return (h + lo + c) / 3.0
    return (o + h + lo + c) / 4.0
