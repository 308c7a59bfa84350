"""One jitted run per structure detector: `X_run` consumes bars, updates its state array, writes outputs.

Signature of every run: (st, p, o, h, lo, c, v, d, out). It loops over `len(c)` bars, reading and
updating the flat float64 state `st` and writing column i of `out` (one row per output, in declared
order). `p` holds the encoded params (`X_params`), `d` the dependency fields the detector reads, one
row per (slot, field) of `X_deps` (a swing's levels, an ATR value), so a detector sees only the bar
it is given and its dependencies' values at that bar, never the future.

The batch driver calls a run once over whole arrays; the incremental driver calls the same run on
one-bar views of a packed work array through `X_inc`, so batch and incremental cannot drift and the
whole state serialises to JSON and restores exactly. The Python helpers next to each run (`X_params`,
`X_deps`, `X_init`) define its layout: what `p` and `d` hold, the initial state and the outputs a
fresh detector reports before its first bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numba import njit

NAN = math.nan
PIVOTS = ("none", "high", "low")
DIRS = ("none", "bullish", "bearish")
WAVES = ("none", "HH", "HL", "LH", "LL")
ZONE_STATES = ("none", "active", "broken")

Init = tuple[list[float], list[float]]  # initial state, outputs before the first bar
Deps = tuple[tuple[str, str], ...]  # (slot, field) rows of `d`, in the order the run reads them


@njit(cache=True, inline="always")
def _max3(a, b, c):  # type: ignore[no-untyped-def]
    """Python's max(a, b, c): keep the first unless a later one is greater (so NaN-first sticks)."""
    m = a
    if b > m:
        m = b
    if c > m:
        m = c
    return m


# ------------------------------------------------------------------ swing
# state: 0 i (last bar index), 1 high_level, 2 high_idx, 3 low_level, 4 low_idx, 5 last pivot type,
# 6 pivot this bar, 7 pair direction, 8 version (1..8 are the outputs, in order), 9 previous close,
# 10 atr, 11 atr count, 12 atr sum, 13 zigzag direction, 14 zigzag extreme, 15 its bar index;
# fractal only: 16 window count, 17 write position, then the highs and the lows rings (w each).
# params: mode (0 fractal, 1 atr_zigzag), left, right, atr_length, atr_multiplier, min_pct_move,
# strict_alternation.

_SWING_BASE = 16


def swing_params(q: Mapping[str, Any]) -> list[float]:
    return [
        0.0 if q["mode"] == "fractal" else 1.0,
        q["left"],
        q["right"],
        q["atr_length"],
        q["atr_multiplier"],
        q["min_pct_move"],
        1.0 if q["strict_alternation"] else 0.0,
    ]


def swing_deps(q: Mapping[str, Any]) -> Deps:
    return ()


def swing_init(q: Mapping[str, Any]) -> Init:
    ring = 2 + 2 * (q["left"] + q["right"] + 1) if q["mode"] == "fractal" else 0
    st = [-1.0, NAN, NAN, NAN, NAN, 0.0, 0.0, 0.0, 0.0, NAN, NAN, 0.0, 0.0, 0.0, NAN, -1.0]
    return st + [0.0] * ring, st[1:9]


@njit(cache=True, inline="always")
def _pivot(st, p, kind, level, idx):  # type: ignore[no-untyped-def]
    """Record a pivot (kind 1 high, 2 low) unless min_pct_move or strict alternation rejects it."""
    other = st[3] if kind == 1.0 else st[1]
    if p[5] > 0 and other == other and abs(level - other) / other * 100 < p[5]:
        return
    strict = p[6] != 0.0
    same = st[5] == kind
    if same and strict:
        better = level > st[1] if kind == 1.0 else level < st[3]
        if not better:
            return
    if kind == 1.0:
        st[1], st[2] = level, idx
    else:
        st[3], st[4] = level, idx
    if not same or not strict:
        if st[5] == 2.0 and kind == 1.0:
            st[7] = 1.0
        elif st[5] == 1.0 and kind == 2.0:
            st[7] = 2.0
    st[5] = kind
    st[6] = 1.0
    st[8] += 1.0


@njit(cache=True, inline="always")
def _fractal(st, p, hx, lx, left, right):  # type: ignore[no-untyped-def]
    """A pivot `right` bars back strictly beyond every other bar of the left+right+1 window."""
    w = left + right + 1
    hb = _SWING_BASE + 2
    lb = hb + w
    pos = int(st[_SWING_BASE + 1])
    st[hb + pos] = hx
    st[lb + pos] = lx
    pos = pos + 1 if pos + 1 < w else 0
    st[_SWING_BASE + 1] = pos
    if st[_SWING_BASE] < w:
        st[_SWING_BASE] += 1.0
        if st[_SWING_BASE] < w:
            return
    ctr = pos - 1 - right  # the bar `right` bars before the newest
    if ctr < 0:
        ctr += w
    idx = st[0] - right
    ch = st[hb + ctr]
    ok = True
    for j in range(w):
        if j != ctr and not ch > st[hb + j]:
            ok = False
            break
    if ok:
        _pivot(st, p, 1.0, ch, idx)
    cl = st[lb + ctr]
    ok = True
    for j in range(w):
        if j != ctr and not cl < st[lb + j]:
            ok = False
            break
    if ok:
        _pivot(st, p, 2.0, cl, idx)


@njit(cache=True, inline="always")
def _zigzag(st, p, hx, lx, cx):  # type: ignore[no-untyped-def]
    """Wilder ATR (SMA seed), then reverse when price moves atr_multiplier × ATR off the extreme."""
    n = p[3]
    pc = st[9]
    tr = hx - lx if pc != pc else _max3(hx - lx, abs(hx - pc), abs(lx - pc))
    st[9] = cx
    if st[10] != st[10]:
        st[12] += tr
        st[11] += 1.0
        if st[11] == n:
            st[10] = st[12] / n
    else:
        st[10] = (st[10] * (n - 1) + tr) / n
    i = st[0]
    if st[13] == 0.0:
        st[13], st[14], st[15] = 1.0, hx, i
        return
    atr = st[10]
    if st[13] == 1.0:
        if hx > st[14]:
            st[14], st[15] = hx, i
        elif atr == atr and st[14] - lx >= p[4] * atr:
            _pivot(st, p, 1.0, st[14], st[15])
            st[13], st[14], st[15] = -1.0, lx, i
    else:
        if lx < st[14]:
            st[14], st[15] = lx, i
        elif atr == atr and hx - st[14] >= p[4] * atr:
            _pivot(st, p, 2.0, st[14], st[15])
            st[13], st[14], st[15] = 1.0, hx, i


@njit(cache=True)
def swing_run(st, p, o, h, lo, c, v, d, out):  # type: ignore[no-untyped-def]
    zigzag = p[0] != 0.0
    left, right = int(p[1]), int(p[2])
    for i in range(len(c)):
        st[0] += 1.0
        st[6] = 0.0
        if zigzag:
            _zigzag(st, p, h[i], lo[i], c[i])
        else:
            _fractal(st, p, h[i], lo[i], left, right)
        for k in range(8):
            out[k, i] = st[1 + k]


# ------------------------------------------------------------------ trend
# state: 0 previous pivot high, 1 previous pivot low, 2 high wave, 3 low wave, 4 direction,
# 5 strength, 6 bars in trend, 7 last wave, 8 swing version seen.
# deps: version, pivot_this_bar, last_pivot_type, high_level, low_level.


def trend_params(q: Mapping[str, Any]) -> list[float]:
    return []


def trend_deps(q: Mapping[str, Any]) -> Deps:
    return tuple(
        ("swing", f)
        for f in ("version", "pivot_this_bar", "last_pivot_type", "high_level", "low_level")
    )


def trend_init(q: Mapping[str, Any]) -> Init:
    return [NAN, NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]


@njit(cache=True)
def trend_run(st, p, o, h, lo, c, v, d, out):  # type: ignore[no-untyped-def]
    for i in range(len(c)):
        st[6] += 1.0
        ver = d[0, i]
        if ver != st[8] and d[1, i] == 1.0:
            st[8] = ver
            if d[2, i] == 1.0:  # high
                lvl = d[3, i]
                if st[0] == st[0]:
                    st[2] = 1.0 if lvl > st[0] else 3.0
                    st[7] = st[2]
                st[0] = lvl
            else:
                lvl = d[4, i]
                if st[1] == st[1]:
                    st[3] = 2.0 if lvl > st[1] else 4.0
                    st[7] = st[3]
                st[1] = lvl
            new = 0.0
            if st[2] == 1.0 and st[3] == 2.0:
                new = 1.0
            elif st[2] == 3.0 and st[3] == 4.0:
                new = -1.0
            if new != st[4]:
                st[4], st[5], st[6] = new, (1.0 if new != 0.0 else 0.0), 0.0
            elif new != 0.0:
                st[5] += 1.0
        out[0, i] = st[4]
        out[1, i] = st[5]
        out[2, i] = st[6]
        out[3, i] = st[7]


# ------------------------------------------------------------------ market structure
# state: 0 swing high, 1 swing low, 2 high broken, 3 low broken, 4 bias, 5 bos this bar,
# 6 choch this bar, 7 bos direction, 8 choch direction, 9 last bos level, 10 last choch level
# (4..10 are the outputs, in order). params: confirmation (0 close, 1 wick).


def market_structure_params(q: Mapping[str, Any]) -> list[float]:
    return [0.0 if q["confirmation"] == "close" else 1.0]


def market_structure_deps(q: Mapping[str, Any]) -> Deps:
    return (("swing", "high_level"), ("swing", "low_level"))


def market_structure_init(q: Mapping[str, Any]) -> Init:
    st = [NAN, NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, NAN, NAN]
    return st, st[4:]


@njit(cache=True, inline="always")
def _break(st, direction, level):  # type: ignore[no-untyped-def]
    """Against the current bias a CHoCH (which clears the broken levels), else a BOS."""
    if st[4] != 0.0 and st[4] != direction:
        st[6], st[8], st[10] = 1.0, direction, level
        st[2] = st[3] = 1.0
    else:
        st[5], st[7], st[9] = 1.0, direction, level
    st[4] = direction


@njit(cache=True)
def market_structure_run(st, p, o, h, lo, c, v, d, out):  # type: ignore[no-untyped-def]
    wick = p[0] != 0.0
    for i in range(len(c)):
        sh, sl = d[0, i], d[1, i]
        if sh != st[0] and sh == sh:
            st[0], st[2] = sh, 0.0
        if sl != st[1] and sl == sl:
            st[1], st[3] = sl, 0.0
        st[5] = st[6] = 0.0
        up, dn = (h[i], lo[i]) if wick else (c[i], c[i])
        if st[2] == 0.0 and st[0] == st[0] and up > st[0]:
            _break(st, 1.0, st[0])
            st[2] = 1.0
        elif st[3] == 0.0 and st[1] == st[1] and dn < st[1]:
            _break(st, 2.0, st[1])
            st[3] = 1.0
        for k in range(7):
            out[k, i] = st[4 + k]


# ------------------------------------------------------------------ fibonacci
# No state: every bar's levels follow from the swing's current pair. params: mode (0 retracement,
# 1 extension), then the levels in declared order.


def fibonacci_params(q: Mapping[str, Any]) -> list[float]:
    return [0.0 if q["mode"] == "retracement" else 1.0, *q["levels"]]


def fibonacci_deps(q: Mapping[str, Any]) -> Deps:
    return (("swing", "high_level"), ("swing", "low_level"), ("swing", "pair_direction"))


def fibonacci_init(q: Mapping[str, Any]) -> Init:
    return [], [NAN] * len(q["levels"]) + [NAN, NAN, NAN, 0.0]


@njit(cache=True)
def fibonacci_run(st, p, o, h, lo, c, v, d, out):  # type: ignore[no-untyped-def]
    ext = p[0] != 0.0
    n = len(p) - 1
    for i in range(len(c)):
        hi, low = d[0, i], d[1, i]
        dirn = np.trunc(d[2, i]) + 0.0  # the direction as an integer (+0.0: never −0)
        rng = hi - low
        for k in range(n):
            r = p[1 + k]
            if dirn == 0.0:
                x = NAN
            elif not ext:
                x = hi - r * rng if dirn == 1.0 else low + r * rng
            else:
                x = hi + r * rng if dirn == 1.0 else low - r * rng
            out[k, i] = x
        out[n, i] = hi
        out[n + 1, i] = low
        out[n + 2, i] = rng
        out[n + 3, i] = dirn


# ------------------------------------------------------------------ zone
# state: 0 state, 1 upper, 2 lower, 3 age (0..3 are the outputs, in order), 4 swing version seen.
# params: width_atr, zone_type (1 demand, 0 supply). deps: pivot_this_bar, last_pivot_type, version,
# the pivot level the zone is built on (low for demand, high for supply), the ATR value.


def zone_params(q: Mapping[str, Any]) -> list[float]:
    return [q["width_atr"], 1.0 if q["zone_type"] == "demand" else 0.0]


def zone_deps(q: Mapping[str, Any]) -> Deps:
    level = "low_level" if q["zone_type"] == "demand" else "high_level"
    return (
        ("swing", "pivot_this_bar"),
        ("swing", "last_pivot_type"),
        ("swing", "version"),
        ("swing", level),
        ("atr", "value"),
    )


def zone_init(q: Mapping[str, Any]) -> Init:
    st = [0.0, NAN, NAN, NAN, 0.0]
    return st, st[:4]


@njit(cache=True)
def zone_run(st, p, o, h, lo, c, v, d, out):  # type: ignore[no-untyped-def]
    demand = p[1] != 0.0
    want = 2.0 if demand else 1.0
    for i in range(len(c)):
        atr = d[4, i]
        if d[0, i] == 1.0 and d[1, i] == want and d[2, i] != st[4] and atr == atr:
            st[4] = d[2, i]
            w = p[0] * atr
            level = d[3, i]
            if demand:
                st[2], st[1] = level, level + w
            else:
                st[2], st[1] = level - w, level
            st[0], st[3] = 1.0, 0.0
        elif st[0] != 0.0:
            st[3] += 1.0
            if st[0] == 1.0 and ((demand and c[i] < st[2]) or (not demand and c[i] > st[1])):
                st[0] = 2.0
        for k in range(4):
            out[k, i] = st[k]


# ------------------------------------------------------------------ derived zone
# state: 0 swing version seen, 1 zones held, then max_active slots, newest first, of
# (upper, lower, state, support 1 / resistance 0). params: max_active, width_pct, the number of
# levels L, the levels ascending, then descending (both by Python's sorted, the insertion orders).
# deps: pivot_this_bar, version, pair_direction, high_level, low_level.

_DZ_SLOT = 4


def derived_zone_params(q: Mapping[str, Any]) -> list[float]:
    lv = q["levels"]
    return [q["max_active"], q["width_pct"], len(lv), *sorted(lv), *sorted(lv, reverse=True)]


def derived_zone_deps(q: Mapping[str, Any]) -> Deps:
    return tuple(
        ("swing", f)
        for f in ("pivot_this_bar", "version", "pair_direction", "high_level", "low_level")
    )


def derived_zone_init(q: Mapping[str, Any]) -> Init:
    m = q["max_active"]
    slots = [NAN, NAN, 0.0, 0.0, 0.0] * m
    return [0.0] * (2 + _DZ_SLOT * m), [*slots, 0.0, 0.0, 0.0, NAN, NAN, 0.0]


@njit(cache=True)
def derived_zone_run(st, p, o, h, lo, c, v, d, out):  # type: ignore[no-untyped-def]
    m = int(p[0])
    wpct = p[1]
    nl = int(p[2])
    agg = 5 * m
    for i in range(len(c)):
        cx = c[i]
        n = int(st[1])
        for k in range(n):  # break the existing zones first (never one created this bar)
            z = 2 + _DZ_SLOT * k
            if st[z + 2] == 1.0 and (
                (st[z + 3] == 1.0 and cx < st[z + 1]) or (st[z + 3] == 0.0 and cx > st[z])
            ):
                st[z + 2] = 2.0
        pair = d[2, i]
        if d[0, i] == 1.0 and d[1, i] != st[0] and pair != 0.0:
            st[0] = d[1, i]
            hi, low = d[3, i], d[4, i]
            rng = hi - low
            bullish = pair == 1.0
            for j in range(nl):
                r = p[3 + j] if bullish else p[3 + nl + j]
                lvl = hi - r * rng if bullish else low + r * rng
                w = lvl * wpct / 100.0
                last = n if n < m else m - 1  # insert at the front; the oldest falls off
                for k in range(last, 0, -1):
                    dst, src = 2 + _DZ_SLOT * k, 2 + _DZ_SLOT * (k - 1)
                    for f in range(_DZ_SLOT):
                        st[dst + f] = st[src + f]
                st[2], st[3], st[4], st[5] = lvl + w, lvl - w, 1.0, (1.0 if bullish else 0.0)
                if n < m:
                    n += 1
            st[1] = n
        any_touched = any_inside = 0.0
        active = 0
        below = above = NAN
        for k in range(m):
            o5 = 5 * k
            if k >= n:
                out[o5, i], out[o5 + 1, i] = NAN, NAN
                out[o5 + 2, i] = out[o5 + 3, i] = out[o5 + 4, i] = 0.0
                continue
            z = 2 + _DZ_SLOT * k
            up, dn, s = st[z], st[z + 1], st[z + 2]
            on = s == 1.0
            touched = 1.0 if on and lo[i] <= up and h[i] >= dn else 0.0
            inside = 1.0 if on and dn <= cx <= up else 0.0
            out[o5, i], out[o5 + 1, i], out[o5 + 2, i] = up, dn, s
            out[o5 + 3, i], out[o5 + 4, i] = touched, inside
            if touched != 0.0:
                any_touched = 1.0
            if inside != 0.0:
                any_inside = 1.0
            if on:  # Python max/min over the active zones, newest first: first wins ties
                active += 1
                if up <= cx and (below != below or up > below):
                    below = up
                if dn >= cx and (above != above or dn < above):
                    above = dn
        out[agg, i] = 1.0 if active else 0.0
        out[agg + 1, i] = any_touched
        out[agg + 2, i] = any_inside
        out[agg + 3, i] = below
        out[agg + 4, i] = above
        out[agg + 5, i] = active


# ------------------------------------------------------------------ rolling window
# state: 0 values held, 1 ring write position, 2 deque head, 3 deque length, then the ring of the
# last `size` values, then the monotonic deque (ring positions of candidates, best first).
# params: size, field (open, high, low, close, volume), mode (0 max, 1 min), include_current.
# The result equals Python's max/min over the window: NaN when the oldest value is NaN (it sticks
# as the running pick), else the best non-NaN value, the oldest of equal ones.

_RW = 4
RW_FIELDS = ("open", "high", "low", "close", "volume")


def rolling_window_params(q: Mapping[str, Any]) -> list[float]:
    return [
        q["size"],
        RW_FIELDS.index(q["field"]),
        0.0 if q["mode"] == "max" else 1.0,
        1.0 if q["include_current"] else 0.0,
    ]


def rolling_window_deps(q: Mapping[str, Any]) -> Deps:
    return ()


def rolling_window_init(q: Mapping[str, Any]) -> Init:
    return [0.0] * (_RW + 2 * q["size"]), [NAN]


@njit(cache=True, inline="always")
def _rw_push(st, n, x, is_max):  # type: ignore[no-untyped-def]
    """Append x (dropping the oldest once full) in O(1) amortised: a candidate deque of positions."""
    pos = int(st[1])
    head, size = int(st[2]), int(st[3])
    q = _RW + n
    if st[0] >= n and size > 0 and st[q + head] == pos:  # the oldest value leaves the window
        head = head + 1 if head + 1 < n else 0
        size -= 1
    st[_RW + pos] = x
    if x == x:
        while size > 0:
            back = head + size - 1
            if back >= n:
                back -= n
            y = st[_RW + int(st[q + back])]
            if (y < x) if is_max else (y > x):
                size -= 1
            else:
                break
        back = head + size
        if back >= n:
            back -= n
        st[q + back] = pos
        size += 1
    st[1] = pos + 1 if pos + 1 < n else 0
    st[2], st[3] = head, size
    if st[0] < n:
        st[0] += 1.0


@njit(cache=True, inline="always")
def _rw_value(st, n):  # type: ignore[no-untyped-def]
    if st[0] < n:
        return NAN
    oldest = st[_RW + int(st[1])]
    if oldest != oldest:
        return NAN
    return st[_RW + int(st[_RW + n + int(st[2])])]


@njit(cache=True)
def rolling_window_run(st, p, o, h, lo, c, v, d, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    f = int(p[1])
    is_max = p[2] == 0.0
    current = p[3] != 0.0
    src = o if f == 0 else h if f == 1 else lo if f == 2 else c if f == 3 else v
    for i in range(len(c)):
        if current:
            _rw_push(st, n, src[i], is_max)
            out[0, i] = _rw_value(st, n)
        else:
            out[0, i] = _rw_value(st, n)
            _rw_push(st, n, src[i], is_max)


# ------------------------------------------------------------------ incremental entry points
# One bar through the same run. The work array packs everything the incremental driver owns, so a
# Python call passes one array plus scalars (numba's per-array dispatch cost dominates a bar):
# work = [open, high, low, close, volume, n_deps, n_out, n_params, deps…, outputs…, params…, state…];
# the dependency fields arrive as scalars and are stored in their slots before the run.

HEAD = 8


@njit(cache=True, inline="always")
def _views(w, o, h, lo, c, v):  # type: ignore[no-untyped-def]
    w[0], w[1], w[2], w[3], w[4] = o, h, lo, c, v
    nd, k, m = int(w[5]), int(w[6]), int(w[7])
    a = HEAD + nd
    d = w[HEAD:a].reshape((nd, 1))
    out = w[a : a + k].reshape((k, 1))
    p = w[a + k : a + k + m]
    st = w[a + k + m :]
    return st, p, w[0:1], w[1:2], w[2:3], w[3:4], w[4:5], d, out


@njit(cache=True)
def swing_inc(w, o, h, lo, c, v):  # type: ignore[no-untyped-def]
    swing_run(*_views(w, o, h, lo, c, v))


@njit(cache=True)
def trend_inc(w, o, h, lo, c, v, d0, d1, d2, d3, d4):  # type: ignore[no-untyped-def]
    w[HEAD], w[HEAD + 1], w[HEAD + 2], w[HEAD + 3], w[HEAD + 4] = d0, d1, d2, d3, d4
    trend_run(*_views(w, o, h, lo, c, v))


@njit(cache=True)
def market_structure_inc(w, o, h, lo, c, v, d0, d1):  # type: ignore[no-untyped-def]
    w[HEAD], w[HEAD + 1] = d0, d1
    market_structure_run(*_views(w, o, h, lo, c, v))


@njit(cache=True)
def fibonacci_inc(w, o, h, lo, c, v, d0, d1, d2):  # type: ignore[no-untyped-def]
    w[HEAD], w[HEAD + 1], w[HEAD + 2] = d0, d1, d2
    fibonacci_run(*_views(w, o, h, lo, c, v))


@njit(cache=True)
def zone_inc(w, o, h, lo, c, v, d0, d1, d2, d3, d4):  # type: ignore[no-untyped-def]
    w[HEAD], w[HEAD + 1], w[HEAD + 2], w[HEAD + 3], w[HEAD + 4] = d0, d1, d2, d3, d4
    zone_run(*_views(w, o, h, lo, c, v))


@njit(cache=True)
def derived_zone_inc(w, o, h, lo, c, v, d0, d1, d2, d3, d4):  # type: ignore[no-untyped-def]
    w[HEAD], w[HEAD + 1], w[HEAD + 2], w[HEAD + 3], w[HEAD + 4] = d0, d1, d2, d3, d4
    derived_zone_run(*_views(w, o, h, lo, c, v))


@njit(cache=True)
def rolling_window_inc(w, o, h, lo, c, v):  # type: ignore[no-untyped-def]
    rolling_window_run(*_views(w, o, h, lo, c, v))
