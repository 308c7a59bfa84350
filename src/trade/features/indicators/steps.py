"""One jitted definition per indicator: `X_run` consumes bars, updates its state array, writes outputs.

Signature of every run: (st, p, o, h, lo, c, v, ts, out). It loops over `len(c)` bars, reading the
state `st` and writing column i of `out` (one row per output). `p` holds the params in declared
order (for single-series indicators the last element is the source code, see
kernels.source_value). The batch driver calls a run once over whole arrays; the incremental driver
calls the same run on one-bar arrays through `X_inc` (below), so one definition serves both and
they cannot drift. Keeping the loop inside the run (not a per-bar call) lets numba keep the state
logic in one compiled loop: a per-bar call costs array reference counting on every bar.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .kernels import (
    NAN,
    ago,
    argmax_age,
    argmin_age,
    ema,
    full,
    moving_std,
    push,
    sma,
    source_value,
    stdev,
    wmax,
    wmin,
    wsum,
)

DAY_MS = 86_400_000
WEEK_OFFSET_MS = 4 * DAY_MS
TIE_EPS = 1e-14  # TA-Lib's relative dead-zone (TA_EPSILON), about 90 ulp of the operands


@njit(cache=True, inline="always")
def tie(d, scale):  # type: ignore[no-untyped-def]
    """True when a difference `d` of two computed prices is zero up to float rounding.

    Two typical prices (or window extremes) equal in exact arithmetic can differ in their last
    bits once summed and divided; TA-Lib treats |d| <= 1e-14 × (|a| + |b|) as zero, and so do we,
    so a tie never counts as a move in either direction."""
    return abs(d) <= TIE_EPS * scale


@njit(cache=True, inline="always")
def _x(src, o, h, lo, c, v, i):  # type: ignore[no-untyped-def]
    return source_value(src, o[i], h[i], lo[i], c[i], v[i])


@njit(cache=True, inline="always")
def _tr(st, k, h, lo, c):  # type: ignore[no-untyped-def]
    """True range with the previous close kept at st[k] (first bar: high − low)."""
    pc = st[k]
    st[k] = c
    if pc != pc:
        return h - lo
    return max(h - lo, abs(h - pc), abs(lo - pc))


# ------------------------------------------------------------------ moving averages


@njit(cache=True)
def ema_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n = p[0]
    a = 2.0 / (n + 1.0)
    i, bars = 0, len(c)
    while i < bars and st[0] < n:  # seeding: the shared kernel
        out[0, i] = ema(st, 0, _x(src, o, h, lo, c, v, i), n, a)
        i += 1
    val = st[2]  # seeded: the kernel's recursion with the value in a register
    for j in range(i, bars):
        x = _x(src, o, h, lo, c, v, j)
        if x == x:
            val = val + (x - val) * a
        out[0, j] = val
    st[2] = val


@njit(cache=True)
def sma_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    for i in range(len(c)):
        out[0, i] = sma(st, 0, _x(src, o, h, lo, c, v, i), int(p[0]))


@njit(cache=True)
def wma_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n = int(p[0])
    for i in range(len(c)):
        push(st, 0, _x(src, o, h, lo, c, v, i), n)
        if not full(st, 0, n):
            out[0, i] = NAN
            continue
        s = 0.0
        for k in range(n):
            s += (n - k) * ago(st, 0, k, n)
        out[0, i] = s / (n * (n + 1) / 2.0)


@njit(cache=True)
def dema_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n = p[0]
    a = 2.0 / (n + 1.0)
    for i in range(len(c)):
        e1 = ema(st, 0, _x(src, o, h, lo, c, v, i), n, a)
        e2 = ema(st, 3, e1, n, a)
        out[0, i] = 2.0 * e1 - e2


@njit(cache=True)
def tema_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n = p[0]
    a = 2.0 / (n + 1.0)
    for i in range(len(c)):
        e1 = ema(st, 0, _x(src, o, h, lo, c, v, i), n, a)
        e2 = ema(st, 3, e1, n, a)
        e3 = ema(st, 6, e2, n, a)
        out[0, i] = 3.0 * e1 - 3.0 * e2 + e3


@njit(cache=True)
def trima_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n = int(p[0])
    for i in range(len(c)):
        n1 = (n + 1) // 2 if n % 2 else n // 2
        n2 = n1 if n % 2 else n // 2 + 1
        s1 = sma(st, 0, _x(src, o, h, lo, c, v, i), n1)
        out[0, i] = sma(st, 2 + n1, s1, n2)


@njit(cache=True)
def zlma_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n = int(p[0])
    lag = (n - 1) // 2
    for i in range(len(c)):
        x = _x(src, o, h, lo, c, v, i)
        push(st, 3, x, lag + 1)
        if not full(st, 3, lag + 1):
            out[0, i] = NAN
            continue
        out[0, i] = ema(st, 0, 2.0 * x - ago(st, 3, lag, lag + 1), p[0], 2.0 / (p[0] + 1.0))


@njit(cache=True)
def kama_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    # TA-Lib KAMA: fast 2, slow 30; first value at index n from the previous input
    src = int(p[len(p) - 1])
    n = int(p[0])
    for i in range(len(c)):
        x = _x(src, o, h, lo, c, v, i)
        push(st, 1, x, n + 1)
        if not full(st, 1, n + 1):
            out[0, i] = NAN
            continue
        change = abs(x - ago(st, 1, n, n + 1))
        vol = 0.0
        for k in range(n):
            vol += abs(ago(st, 1, k, n + 1) - ago(st, 1, k + 1, n + 1))
        er = change / vol if vol != 0.0 else 1.0  # a flat window: TA-Lib's ratio of 0/0
        fast, slow = 2.0 / 3.0, 2.0 / 31.0
        sc = (er * (fast - slow) + slow) ** 2
        prev = st[0] if st[0] == st[0] else ago(st, 1, 1, n + 1)
        k_ = prev + sc * (x - prev)
        st[0] = k_
        out[0, i] = k_


@njit(cache=True)
def alma_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n = int(p[0])
    sigma, offset = p[1], p[2]
    for i in range(len(c)):
        push(st, 0, _x(src, o, h, lo, c, v, i), n)
        if not full(st, 0, n):
            out[0, i] = NAN
            continue
        m = offset * (n - 1)
        s = n / sigma
        num = den = 0.0
        for j in range(n):  # j = 0 oldest … n−1 newest
            w = np.exp(-((j - m) ** 2) / (2.0 * s * s))
            num += w * ago(st, 0, n - 1 - j, n)
            den += w
        out[0, i] = num / den


@njit(cache=True)
def linreg_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n = int(p[0])
    for i in range(len(c)):
        push(st, 0, _x(src, o, h, lo, c, v, i), n)
        if not full(st, 0, n):
            out[0, i] = NAN
            continue
        out[0, i] = _linreg_last(st, 0, n)


@njit(cache=True, inline="always")
def _linreg_last(st, b, n):  # type: ignore[no-untyped-def]
    sx = sy = sxy = sxx = 0.0
    for j in range(n):  # x = 0 oldest … n−1 newest
        y = ago(st, b, n - 1 - j, n)
        sx += j
        sy += y
        sxy += j * y
        sxx += j * j
    d = n * sxx - sx * sx
    slope = (n * sxy - sx * sy) / d
    icpt = (sy - slope * sx) / n
    return icpt + slope * (n - 1)


@njit(cache=True)
def vwap_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    # p[0]: 0 = daily anchor, 1 = weekly (Monday 00:00 UTC)
    for i in range(len(c)):
        t = ts[i]
        if p[0] == 0:
            bucket = (t // DAY_MS) * DAY_MS
        else:
            bucket = ((t - WEEK_OFFSET_MS) // (7 * DAY_MS)) * (7 * DAY_MS) + WEEK_OFFSET_MS
        if st[0] != bucket:
            st[0] = bucket
            st[1] = 0.0
            st[2] = 0.0
        tp = (h[i] + lo[i] + c[i]) / 3.0
        st[1] += tp * v[i]
        st[2] += v[i]
        out[0, i] = st[1] / st[2] if st[2] > 0 else tp


# ------------------------------------------------------------------ oscillators


@njit(cache=True, inline="always")
def _wilder_gain_loss(st, b, x, n):  # type: ignore[no-untyped-def]
    """Wilder-smoothed gains and losses (TA-Lib RSI/CMO). State: prev, then two ema blocks."""
    prev = st[b]
    st[b] = x
    if prev != prev:
        return NAN, NAN
    d = x - prev
    g = ema(st, b + 1, d if d > 0 else 0.0, n, 1.0 / n)
    lo_ = ema(st, b + 4, -d if d < 0 else 0.0, n, 1.0 / n)
    return g, lo_


@njit(cache=True, inline="always")
def _oscillate(g, l_, cmo):  # type: ignore[no-untyped-def]
    """RSI = 100·g/(g+l), CMO = 100·(g−l)/(g+l); 0 when nothing moved."""
    if g != g:
        return NAN
    if g + l_ == 0:
        return 0.0
    return 100.0 * (g - l_) / (g + l_) if cmo else 100.0 * g / (g + l_)


@njit(cache=True, inline="always")
def _gain_loss_run(st, p, o, h, lo, c, v, out, cmo):  # type: ignore[no-untyped-def]
    """RSI/CMO over bars: the shared kernel until seeded, then the same Wilder recursion with both
    averages in registers (v·(1−a) + x·a, so only a multiply and an add wait on the last value)."""
    src = int(p[len(p) - 1])
    n = p[0]
    a = 1.0 / n
    keep = 1.0 - a
    i, bars = 0, len(c)
    while i < bars and st[1] < n:
        g, l_ = _wilder_gain_loss(st, 0, _x(src, o, h, lo, c, v, i), n)
        out[0, i] = _oscillate(g, l_, cmo)
        i += 1
    prev, ag, al = st[0], st[3], st[6]
    for j in range(i, bars):
        x = _x(src, o, h, lo, c, v, j)
        if prev != prev:
            prev = x
            out[0, j] = NAN
            continue
        d = x - prev
        prev = x
        ag = ag * keep + (d if d > 0 else 0.0) * a
        al = al * keep + (-d if d < 0 else 0.0) * a
        out[0, j] = _oscillate(ag, al, cmo)
    st[0], st[3], st[6] = prev, ag, al


@njit(cache=True)
def rsi_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    _gain_loss_run(st, p, o, h, lo, c, v, out, False)


@njit(cache=True)
def cmo_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    _gain_loss_run(st, p, o, h, lo, c, v, out, True)


@njit(cache=True)
def cci_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    for i in range(len(c)):
        tp = (h[i] + lo[i] + c[i]) / 3.0
        push(st, 0, tp, n)
        if not full(st, 0, n):
            out[0, i] = NAN
            continue
        mean = wsum(st, 0, n) / n
        md = 0.0
        for j in range(n):
            md += abs(st[2 + j] - mean)
        md /= n
        flat = tie(tp - mean, abs(mean)) or tie(md, abs(mean))  # TA-Lib's flatness test
        out[0, i] = 0.0 if flat else (tp - mean) / (0.015 * md)


@njit(cache=True)
def willr_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    for i in range(len(c)):
        push(st, 0, h[i], n)
        push(st, 2 + n, lo[i], n)
        if not full(st, 0, n):
            out[0, i] = NAN
            continue
        hh, ll = wmax(st, 0, n), wmin(st, 2 + n, n)
        flat = tie(hh - ll, abs(hh) + abs(ll))
        out[0, i] = 0.0 if flat else (hh - c[i]) / (hh - ll) * -100.0


@njit(cache=True)
def mfi_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    for i in range(len(c)):
        tp = (h[i] + lo[i] + c[i]) / 3.0
        prev = st[0]
        st[0] = tp
        if prev != prev:
            out[0, i] = NAN
            continue
        mf = 0.0 if tie(tp - prev, abs(tp) + abs(prev)) else tp * v[i]
        push(st, 1, mf if tp > prev else 0.0, n)
        push(st, 3 + n, mf if tp < prev else 0.0, n)
        if not full(st, 1, n):
            out[0, i] = NAN
            continue
        pos, neg = wsum(st, 1, n), wsum(st, 3 + n, n)
        out[0, i] = 100.0 * pos / (pos + neg) if pos + neg != 0 else 0.0


@njit(cache=True)
def uo_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    f, m, s = int(p[0]), int(p[1]), int(p[2])
    for i in range(len(c)):
        pc = st[0]
        st[0] = c[i]
        if pc != pc:
            out[0, i] = NAN
            continue
        low_ = min(lo[i], pc)
        push(st, 1, c[i] - low_, s)
        push(st, 3 + s, max(h[i], pc) - low_, s)
        if not full(st, 1, s):
            out[0, i] = NAN
            continue
        avg = np.zeros(3)
        for q, n in enumerate((f, m, s)):
            bp = tr = 0.0
            for k in range(n):
                bp += ago(st, 1, k, s)
                tr += ago(st, 3 + s, k, s)
            avg[q] = bp / tr if tr != 0 else 0.0
        out[0, i] = 100.0 * (4.0 * avg[0] + 2.0 * avg[1] + avg[2]) / 7.0


@njit(cache=True)
def stoch_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    k, d, sk = int(p[0]), int(p[1]), int(p[2])
    for i in range(len(c)):
        push(st, 0, h[i], k)
        push(st, 2 + k, lo[i], k)
        b = 4 + 2 * k
        if not full(st, 0, k):
            out[0, i] = NAN
            out[1, i] = NAN
            continue
        hh, ll = wmax(st, 0, k), wmin(st, 2 + k, k)
        fk = 0.0 if tie(hh - ll, abs(hh) + abs(ll)) else (c[i] - ll) / (hh - ll) * 100.0
        slow_k = sma(st, b, fk, sk)
        out[0, i] = slow_k
        out[1, i] = sma(st, b + 2 + sk, slow_k, d)


@njit(cache=True)
def stochrsi_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n, rn, k, d = int(p[0]), p[1], int(p[2]), int(p[3])
    for i in range(len(c)):
        g, l_ = _wilder_gain_loss(st, 0, _x(src, o, h, lo, c, v, i), rn)
        b = 7
        if g != g:
            out[0, i] = NAN
            out[1, i] = NAN
            continue
        r = 100.0 * g / (g + l_) if g + l_ != 0 else 0.0
        push(st, b, r, n)
        if not full(st, b, n):
            out[0, i] = NAN
            out[1, i] = NAN
            continue
        hh, ll = wmax(st, b, n), wmin(st, b, n)
        fk = 0.0 if tie(hh - ll, abs(hh) + abs(ll)) else (r - ll) / (hh - ll) * 100.0
        kk = sma(st, b + 2 + n, fk, k)
        out[0, i] = kk
        out[1, i] = sma(st, b + 4 + n + k, kk, d)


@njit(cache=True)
def fisher_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    for i in range(len(c)):
        x = (h[i] + lo[i]) / 2.0
        push(st, 2, x, n)
        if not full(st, 2, n):
            out[0, i] = NAN
            out[1, i] = NAN
            continue
        hh, ll = wmax(st, 2, n), wmin(st, 2, n)
        prev_v = st[0] if st[0] == st[0] else 0.0
        prev_f = st[1] if st[1] == st[1] else 0.0
        val = 0.66 * ((x - ll) / (hh - ll) - 0.5 if hh != ll else 0.0) + 0.67 * prev_v
        val = min(max(val, -0.999), 0.999)
        fish = 0.5 * np.log((1.0 + val) / (1.0 - val)) + 0.5 * prev_f
        st[0] = val
        st[1] = fish
        out[0, i] = fish
        out[1, i] = prev_f if st[2 + n + 2] > 0 else NAN
        st[2 + n + 2] = 1.0


@njit(cache=True)
def tsi_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    f, s, sig = p[0], p[1], p[2]
    for i in range(len(c)):
        x = _x(src, o, h, lo, c, v, i)
        prev = st[0]
        st[0] = x
        if prev != prev:
            out[0, i] = NAN
            out[1, i] = NAN
            continue
        pc = x - prev
        a1 = ema(st, 1, pc, s, 2.0 / (s + 1.0))
        a2 = ema(st, 4, a1, f, 2.0 / (f + 1.0))
        b1 = ema(st, 7, abs(pc), s, 2.0 / (s + 1.0))
        b2 = ema(st, 10, b1, f, 2.0 / (f + 1.0))
        t = 100.0 * a2 / b2 if b2 == b2 and b2 != 0 else NAN
        out[0, i] = t
        out[1, i] = ema(st, 13, t, sig, 2.0 / (sig + 1.0))


# ------------------------------------------------------------------ trend


@njit(cache=True, inline="always")
def _dm(st, b, h, lo):  # type: ignore[no-untyped-def]
    """+DM and −DM against the previous bar (kept at st[b], st[b+1])."""
    ph, pl = st[b], st[b + 1]
    st[b], st[b + 1] = h, lo
    if ph != ph:
        return NAN, NAN
    up, down = h - ph, pl - lo
    pdm = up if up > down and up > 0 else 0.0
    mdm = down if down > up and down > 0 else 0.0
    return pdm, mdm


@njit(cache=True, inline="always")
def _wilder_sum(st, b, x, n):  # type: ignore[no-untyped-def]
    """TA-Lib's DM/TR smoothing: sum of the first n−1 values, then s − s/n + x. State: count, sum."""
    if st[b] < n - 1:
        st[b] += 1.0
        st[b + 1] += x
        return st[b + 1] if st[b] == n - 1 else NAN
    st[b + 1] = st[b + 1] - st[b + 1] / n + x
    return st[b + 1]


@njit(cache=True)
def dm_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n = p[0]
    for i in range(len(c)):
        pdm, mdm = _dm(st, 0, h[i], lo[i])
        if pdm != pdm:
            out[0, i] = NAN
            out[1, i] = NAN
            continue
        out[0, i] = _wilder_sum(st, 2, pdm, n)
        out[1, i] = _wilder_sum(st, 4, mdm, n)


@njit(cache=True)
def adx_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n = p[0]
    ni = int(n)
    for i in range(len(c)):
        pdm, mdm = _dm(st, 0, h[i], lo[i])
        tr = _tr(st, 2, h[i], lo[i], c[i])
        for k in range(4):
            out[k, i] = NAN
        if pdm != pdm:
            continue
        # TA-Lib: +DI/−DI from smoothed sums once n bars of moves exist (first at index n)
        if st[3] < n:
            st[3] += 1.0
            st[4] += pdm
            st[5] += mdm
            st[6] += tr
            if st[3] < n:
                if st[3] == n - 1:
                    continue
                continue
            # the n-th move: TA-Lib starts from the sum of the first n−1 and applies one smoothing step
            s_p, s_m, s_t = st[4] - pdm, st[5] - mdm, st[6] - tr
            st[4] = s_p - s_p / n + pdm
            st[5] = s_m - s_m / n + mdm
            st[6] = s_t - s_t / n + tr
        else:
            st[4] = st[4] - st[4] / n + pdm
            st[5] = st[5] - st[5] / n + mdm
            st[6] = st[6] - st[6] / n + tr
        pdi = 100.0 * st[4] / st[6] if st[6] != 0 else 0.0
        mdi = 100.0 * st[5] / st[6] if st[6] != 0 else 0.0
        out[1, i] = pdi
        out[2, i] = mdi
        dx = 100.0 * abs(pdi - mdi) / (pdi + mdi) if pdi + mdi != 0 else 0.0
        adx = ema(st, 7, dx, n, 1.0 / n)
        out[0, i] = adx
        if adx == adx:
            push(st, 10, adx, ni)
            if full(st, 10, ni):
                out[3, i] = (adx + ago(st, 10, ni - 1, ni)) / 2.0


@njit(cache=True)
def aroon_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    w = n + 1
    for i in range(len(c)):
        push(st, 0, h[i], w)
        push(st, 2 + w, lo[i], w)
        if not full(st, 0, w):
            out[0, i] = NAN
            out[1, i] = NAN
            out[2, i] = NAN
            continue
        up = 100.0 * (n - argmax_age(st, 0, w)) / n
        down = 100.0 * (n - argmin_age(st, 2 + w, w)) / n
        out[0, i] = up
        out[1, i] = down
        out[2, i] = up - down


@njit(cache=True, inline="always")
def _atr(st, b, h, lo, c, n):  # type: ignore[no-untyped-def]
    """TA-Lib ATR: Wilder average of true ranges from the second bar. State: prev close, ema block."""
    first = st[b] != st[b]
    tr = _tr(st, b, h, lo, c)
    if first:
        return NAN
    return ema(st, b + 1, tr, n, 1.0 / n)


@njit(cache=True)
def atr_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n = p[0]
    a = 1.0 / n
    keep = 1.0 - a
    i, bars = 0, len(c)
    while i < bars and st[1] < n:  # seeding: the shared kernel
        out[0, i] = _atr(st, 0, h[i], lo[i], c[i], n)
        i += 1
    pc, val = st[0], st[3]  # seeded: the Wilder recursion in registers
    for j in range(i, bars):
        tr = max(h[j] - lo[j], abs(h[j] - pc), abs(lo[j] - pc))
        pc = c[j]
        if tr == tr:  # val·(1−a) + tr·a: only a multiply and an add wait on the previous value
            val = val * keep + tr * a
        out[0, j] = val
    st[0], st[3] = pc, val


@njit(cache=True)
def natr_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    for i in range(len(c)):
        a = _atr(st, 0, h[i], lo[i], c[i], p[0])
        out[0, i] = a / c[i] * 100.0 if c[i] != 0 else NAN


@njit(cache=True)
def supertrend_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n, mult = p[0], p[1]
    for i in range(len(c)):
        a = _atr(st, 0, h[i], lo[i], c[i], n)
        for k in range(4):
            out[k, i] = NAN
        if a != a:
            continue
        mid = (h[i] + lo[i]) / 2.0
        up, dn = mid + mult * a, mid - mult * a
        # state: 4 final upper, 5 final lower, 6 direction, 7 previous close
        fu, fl, d, pc = st[4], st[5], st[6], st[7]
        if fu != fu:
            fu, fl, d = up, dn, 1.0
        else:
            fu = up if (up < fu or pc > fu) else fu
            fl = dn if (dn > fl or pc < fl) else fl
            if c[i] > st[4]:
                d = 1.0
            elif c[i] < st[5]:
                d = -1.0
        st[4], st[5], st[6], st[7] = fu, fl, d, c[i]
        out[0, i] = fl if d > 0 else fu
        out[1, i] = d
        out[2, i] = fl if d > 0 else NAN
        out[3, i] = fu if d < 0 else NAN


@njit(cache=True)
def psar_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    # TA-Lib SAR with separate start (af0), step (af) and maximum. State:
    # 0 count, 1 is_long, 2 sar, 3 ep, 4 af, 5 new_high, 6 new_low
    af0, step, mx = p[0], p[1], p[2]
    for i in range(len(c)):
        for k in range(4):
            out[k, i] = NAN
        if st[0] == 0.0:
            st[0] = 1.0
            st[5], st[6] = h[i], lo[i]
            continue
        if st[0] == 1.0:
            st[0] = 2.0
            up_move, down_move = h[i] - st[5], st[6] - lo[i]
            is_long = not (down_move > 0 and down_move > up_move)
            st[1] = 1.0 if is_long else 0.0
            st[4] = af0
            if is_long:
                st[3], st[2] = h[i], st[6]
            else:
                st[3], st[2] = lo[i], st[5]
            st[5], st[6] = h[i], lo[i]
        prev_high, prev_low = st[5], st[6]
        new_high, new_low = h[i], lo[i]
        st[5], st[6] = new_high, new_low
        sar, ep, af = st[2], st[3], st[4]
        rev = 0.0
        if st[1] == 1.0:
            if new_low <= sar:
                st[1] = 0.0
                rev = 1.0
                sar = max(ep, prev_high, new_high)
                outv = sar
                af = af0
                ep = new_low
                sar = sar + af * (ep - sar)
                sar = max(sar, prev_high, new_high)
            else:
                outv = sar
                if new_high > ep:
                    ep = new_high
                    af = min(af + step, mx)
                sar = sar + af * (ep - sar)
                sar = min(sar, prev_low, new_low)
        else:
            if new_high >= sar:
                st[1] = 1.0
                rev = 1.0
                sar = min(ep, prev_low, new_low)
                outv = sar
                af = af0
                ep = new_high
                sar = sar + af * (ep - sar)
                sar = min(sar, prev_low, new_low)
            else:
                outv = sar
                if new_low < ep:
                    ep = new_low
                    af = min(af + step, mx)
                sar = sar + af * (ep - sar)
                sar = max(sar, prev_high, new_high)
        st[2], st[3], st[4] = sar, ep, af
        if st[1] == 1.0:
            out[0, i] = outv
        else:
            out[1, i] = outv
        out[2, i] = af
        out[3, i] = rev


@njit(cache=True)
def vortex_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    for i in range(len(c)):
        ph, pl = st[0], st[1]
        tr = _tr(st, 2, h[i], lo[i], c[i])
        st[0], st[1] = h[i], lo[i]
        if ph != ph:
            out[0, i] = NAN
            out[1, i] = NAN
            continue
        push(st, 3, abs(h[i] - pl), n)
        push(st, 5 + n, abs(lo[i] - ph), n)
        push(st, 7 + 2 * n, tr, n)
        if not full(st, 3, n):
            out[0, i] = NAN
            out[1, i] = NAN
            continue
        trs = wsum(st, 7 + 2 * n, n)
        out[0, i] = wsum(st, 3, n) / trs if trs != 0 else NAN
        out[1, i] = wsum(st, 5 + n, n) / trs if trs != 0 else NAN


@njit(cache=True)
def trix_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n, sig = p[0], p[1]
    a = 2.0 / (n + 1.0)
    for i in range(len(c)):
        e1 = ema(st, 0, _x(src, o, h, lo, c, v, i), n, a)
        e2 = ema(st, 3, e1, n, a)
        e3 = ema(st, 6, e2, n, a)
        prev = st[9]
        st[9] = e3
        t = (e3 / prev - 1.0) * 100.0 if prev == prev and e3 == e3 else NAN
        out[0, i] = t
        out[1, i] = ema(st, 10, t, sig, 2.0 / (sig + 1.0))


@njit(cache=True)
def ppo_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    f, s, sig = p[0], p[1], p[2]
    for i in range(len(c)):
        x = _x(src, o, h, lo, c, v, i)
        ef = ema(st, 0, x, f, 2.0 / (f + 1.0))
        es = ema(st, 3, x, s, 2.0 / (s + 1.0))
        val = (ef - es) / es * 100.0 if es == es and es != 0 else NAN
        sg = ema(st, 6, val, sig, 2.0 / (sig + 1.0))
        out[0, i] = val
        out[1, i] = sg
        out[2, i] = val - sg


@njit(cache=True)
def macd_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    # TA-Lib MACD: the fast EMA starts at bar (slow − fast) so both lines begin at bar slow − 1
    src = int(p[len(p) - 1])
    f, s, sig = p[0], p[1], p[2]
    af, a_s, ag = 2.0 / (f + 1.0), 2.0 / (s + 1.0), 2.0 / (sig + 1.0)
    i, bars = 0, len(c)
    while i < bars and st[6] < sig:  # until the signal line is seeded: the shared kernels
        x = _x(src, o, h, lo, c, v, i)
        st[9] += 1.0
        ef = ema(st, 0, x, f, af) if st[9] > s - f else NAN
        es = ema(st, 3, x, s, a_s)
        m = ef - es
        sg = ema(st, 6, m, sig, ag)
        out[0, i] = m if sg == sg or m == m else NAN
        out[1, i] = sg
        out[2, i] = m - sg
        i += 1
    ef, es, sg = st[2], st[5], st[8]  # then the same recursions in registers
    for j in range(i, bars):
        x = _x(src, o, h, lo, c, v, j)
        if x == x:
            ef = ef + (x - ef) * af
            es = es + (x - es) * a_s
        m = ef - es
        sg = sg + (m - sg) * ag
        out[0, j] = m
        out[1, j] = sg
        out[2, j] = m - sg
    st[2], st[5], st[8] = ef, es, sg
    st[9] += bars - i


@njit(cache=True)
def roc_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n = int(p[0])
    for i in range(len(c)):
        x = _x(src, o, h, lo, c, v, i)
        push(st, 0, x, n + 1)
        if not full(st, 0, n + 1):
            out[0, i] = NAN
            continue
        old = ago(st, 0, n, n + 1)
        out[0, i] = (x / old - 1.0) * 100.0 if old != 0 else 0.0


@njit(cache=True)
def mom_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n = int(p[0])
    for i in range(len(c)):
        x = _x(src, o, h, lo, c, v, i)
        push(st, 0, x, n + 1)
        out[0, i] = x - ago(st, 0, n, n + 1) if full(st, 0, n + 1) else NAN


# ------------------------------------------------------------------ volatility


@njit(cache=True)
def bbands_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    src = int(p[len(p) - 1])
    n, k = int(p[0]), p[1]
    r = 2 + n  # moving_std's sums follow its window
    i, bars = 0, len(c)
    while i < bars and st[r + 3] == 0.0:  # until the first full window: the shared kernel
        x = _x(src, o, h, lo, c, v, i)
        mid, sd = moving_std(st, 0, x, n)
        if mid != mid:
            for j in range(5):
                out[j, i] = NAN
        else:
            _bands(out, i, x, mid, sd, k)
        i += 1
    # then moving_std's sums with position, sums and counter in registers
    inv_n = 1.0 / n
    pos, ref, s1, s2, since = int(st[1]), st[r], st[r + 1], st[r + 2], st[r + 3]
    for j in range(i, bars):
        x = _x(src, o, h, lo, c, v, j)
        old = st[2 + pos]
        s1 += (x - ref) - (old - ref)
        s2 += (x - ref) * (x - ref) - (old - ref) * (old - ref)
        st[2 + pos] = x
        pos = pos + 1 if pos + 1 < n else 0
        if since >= n:
            ref, s1, s2, since = x, 0.0, 0.0, 1.0
            for q in range(n):
                d = st[2 + q] - x
                s1 += d
                s2 += d * d
        else:
            since += 1.0
        m1 = s1 * inv_n
        var = s2 * inv_n - m1 * m1
        _bands(out, j, x, ref + m1, np.sqrt(var) if var > 0.0 else 0.0, k)
    st[1], st[r], st[r + 1], st[r + 2], st[r + 3] = pos, ref, s1, s2, since


@njit(cache=True, inline="always")
def _bands(out, i, x, mid, sd, k):  # type: ignore[no-untyped-def]
    up, dn = mid + k * sd, mid - k * sd
    out[0, i] = dn
    out[1, i] = mid
    out[2, i] = up
    out[3, i] = (up - dn) / mid * 100.0 if mid != 0 else NAN
    out[4, i] = (x - dn) / (up - dn) if up != dn else NAN


@njit(cache=True)
def kc_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n, k = p[0], p[1]
    a = 2.0 / (n + 1.0)
    for i in range(len(c)):
        basis = ema(st, 0, c[i], n, a)
        rng = ema(st, 3, _tr(st, 6, h[i], lo[i], c[i]), n, a)
        out[0, i] = basis - k * rng
        out[1, i] = basis
        out[2, i] = basis + k * rng


@njit(cache=True)
def donchian_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    ln, un = int(p[0]), int(p[1])
    for i in range(len(c)):
        push(st, 0, lo[i], ln)
        push(st, 2 + ln, h[i], un)
        lower = wmin(st, 0, ln) if full(st, 0, ln) else NAN
        upper = wmax(st, 2 + ln, un) if full(st, 2 + ln, un) else NAN
        out[0, i] = lower
        out[1, i] = (lower + upper) / 2.0
        out[2, i] = upper


@njit(cache=True)
def squeeze_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    bn, bk, kn, kk = int(p[0]), p[1], int(p[2]), p[3]
    for i in range(len(c)):
        b_c = 1
        b_kc = b_c + 2 + bn
        b_tr = b_kc + 2 + kn
        b_h = b_tr + 2 + kn
        b_l = b_h + 2 + kn
        b_d = b_l + 2 + kn
        push(st, b_c, c[i], bn)
        push(st, b_kc, c[i], kn)
        push(st, b_tr, _tr(st, 0, h[i], lo[i], c[i]), kn)
        push(st, b_h, h[i], kn)
        push(st, b_l, lo[i], kn)
        for j in range(4):
            out[j, i] = NAN
        if not (full(st, b_c, bn) and full(st, b_kc, kn)):
            continue
        mid = wsum(st, b_c, bn) / bn
        sd = stdev(st, b_c, bn, mid)
        ub, lb = mid + bk * sd, mid - bk * sd
        kmid = wsum(st, b_kc, kn) / kn
        krng = wsum(st, b_tr, kn) / kn
        uk, lk = kmid + kk * krng, kmid - kk * krng
        on = lb > lk and ub < uk
        off = lb < lk and ub > uk
        delta = c[i] - ((wmax(st, b_h, kn) + wmin(st, b_l, kn)) / 2.0 + kmid) / 2.0
        push(st, b_d, delta, kn)
        out[1, i] = 1.0 if on else 0.0
        out[2, i] = 1.0 if off else 0.0
        out[3, i] = 0.0 if (on or off) else 1.0
        if full(st, b_d, kn):
            out[0, i] = _linreg_last(st, b_d, kn)


# ------------------------------------------------------------------ volume


@njit(cache=True)
def obv_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    for i in range(len(c)):
        pc = st[0]
        if pc != pc:
            st[1] = v[i]
        elif c[i] > pc:
            st[1] += v[i]
        elif c[i] < pc:
            st[1] -= v[i]
        st[0] = c[i]
        out[0, i] = st[1]


@njit(cache=True)
def cmf_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    for i in range(len(c)):
        rng = h[i] - lo[i]
        mfm = ((c[i] - lo[i]) - (h[i] - c[i])) / rng if rng != 0 else 0.0
        push(st, 0, mfm * v[i], n)
        push(st, 2 + n, v[i], n)
        if not full(st, 0, n):
            out[0, i] = NAN
            continue
        vs = wsum(st, 2 + n, n)
        out[0, i] = wsum(st, 0, n) / vs if vs != 0 else 0.0


@njit(cache=True)
def kvo_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    f, s, sig = p[0], p[1], p[2]
    for i in range(len(c)):
        tp = (h[i] + lo[i] + c[i]) / 3.0
        prev = st[0]
        st[0] = tp
        if prev != prev:
            out[0, i] = NAN
            out[1, i] = NAN
            continue
        sv = v[i] if tp > prev else (-v[i] if tp < prev else 0.0)
        k = ema(st, 1, sv, f, 2.0 / (f + 1.0)) - ema(st, 4, sv, s, 2.0 / (s + 1.0))
        out[0, i] = k
        out[1, i] = ema(st, 7, k, sig, 2.0 / (sig + 1.0))


@njit(cache=True)
def volume_sma_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    for i in range(len(c)):
        out[0, i] = sma(st, 0, v[i], int(p[0]))


@njit(cache=True)
def ohlc4_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    for i in range(len(c)):
        out[0, i] = (o[i] + h[i] + lo[i] + c[i]) / 4.0


@njit(cache=True)
def midprice_run(st, p, o, h, lo, c, v, ts, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    for i in range(len(c)):
        push(st, 0, h[i], n)
        push(st, 2 + n, lo[i], n)
        out[0, i] = (wmax(st, 0, n) + wmin(st, 2 + n, n)) / 2.0 if full(st, 0, n) else NAN


# ------------------------------------------------------------------ incremental entry points
# One bar through the same run. The work array packs everything the incremental driver owns, so a
# Python call passes two arrays instead of nine (numba's per-array dispatch cost dominates a bar):
# work = [open, high, low, close, volume, n_out, n_params, outputs…, params…, state…].


@njit(cache=True, inline="always")
def _views(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    w[0], w[1], w[2], w[3], w[4] = o, h, lo, c, v
    tsb[0] = t
    k, m = int(w[5]), int(w[6])
    out = w[7 : 7 + k].reshape((k, 1))
    p = w[7 + k : 7 + k + m]
    st = w[7 + k + m :]
    return st, p, w[0:1], w[1:2], w[2:3], w[3:4], w[4:5], tsb, out


@njit(cache=True)
def ema_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    ema_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def sma_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    sma_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def wma_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    wma_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def dema_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    dema_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def tema_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    tema_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def trima_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    trima_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def zlma_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    zlma_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def kama_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    kama_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def alma_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    alma_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def linreg_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    linreg_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def vwap_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    vwap_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def rsi_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    rsi_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def cmo_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    cmo_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def cci_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    cci_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def willr_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    willr_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def mfi_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    mfi_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def uo_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    uo_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def stoch_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    stoch_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def stochrsi_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    stochrsi_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def fisher_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    fisher_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def tsi_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    tsi_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def dm_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    dm_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def adx_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    adx_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def aroon_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    aroon_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def atr_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    atr_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def natr_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    natr_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def supertrend_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    supertrend_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def psar_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    psar_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def vortex_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    vortex_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def trix_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    trix_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def ppo_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    ppo_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def macd_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    macd_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def roc_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    roc_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def mom_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    mom_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def bbands_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    bbands_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def kc_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    kc_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def donchian_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    donchian_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def squeeze_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    squeeze_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def obv_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    obv_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def cmf_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    cmf_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def kvo_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    kvo_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def volume_sma_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    volume_sma_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def ohlc4_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    ohlc4_run(*_views(w, tsb, o, h, lo, c, v, t))


@njit(cache=True)
def midprice_inc(w, tsb, o, h, lo, c, v, t):  # type: ignore[no-untyped-def]
    midprice_run(*_views(w, tsb, o, h, lo, c, v, t))
