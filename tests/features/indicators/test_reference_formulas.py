"""Indicators TA-Lib lacks, against plain-Python references written from their formulas (pandas-ta's
conventional definitions, EMAs seeded with the SMA of their first `length` inputs as everywhere in
the library), on real BTCUSDT 15m bars. Also: parameter validation messages and Bollinger bands
on a flat window."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trade.data.bars import Bars
from trade.features.indicators import compute_batch
from trade.features.registry import default_catalog

from .common import read_bars

NAN = math.nan


@pytest.fixture(scope="module")
def b(market_dir) -> Bars:  # type: ignore[no-untyped-def]
    return read_bars(market_dir / "bybit_BTCUSDT_15m.csv.gz", "15m", "BTCUSDT").slice(0, 1500)


def ours(b: Bars, name: str, **raw: object) -> dict[str, np.ndarray]:
    spec = default_catalog().get(name)
    assert spec is not None
    return compute_batch(name, spec.resolve_params(raw), b, "close" if spec.has_source else None)


def close_to(got: np.ndarray, ref: list[float] | np.ndarray) -> None:
    ref = np.asarray(ref, dtype=float)
    assert np.array_equal(np.isnan(got), np.isnan(ref)), "NaN positions differ"
    ok = ~np.isnan(ref)
    scale = float(np.abs(ref[ok]).max()) if ok.any() else 1.0
    np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-9, atol=1e-12 * scale)


def ema_ref(xs: list[float], n: int) -> list[float]:
    """EMA seeded with the SMA of the first n non-NaN inputs; NaN inputs keep the last value."""
    out, seed, val = [], [], NAN
    for x in xs:
        if x != x:
            out.append(val)
        elif len(seed) < n:
            seed.append(x)
            val = sum(seed) / n if len(seed) == n else NAN
            out.append(val)
        else:
            val = val + (x - val) * 2.0 / (n + 1)
            out.append(val)
    return out


def sma_ref(xs: list[float], n: int) -> list[float]:
    return [sum(xs[i - n + 1 : i + 1]) / n if i >= n - 1 else NAN for i in range(len(xs))]


def tr_ref(b: Bars) -> list[float]:
    h, lo, c = b.high, b.low, b.close
    return [h[0] - lo[0]] + [
        max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(b))
    ]


def atr_ref(b: Bars, n: int) -> list[float]:
    """Wilder ATR from the second bar (TA-Lib): SMA of the first n true ranges, then 1/n."""
    tr, out, val = tr_ref(b), [NAN], NAN
    for i in range(1, len(b)):
        if i < n:
            out.append(NAN)
        elif i == n:
            val = sum(tr[1 : n + 1]) / n
            out.append(val)
        else:
            val = val + (tr[i] - val) / n
            out.append(val)
    return out


def test_zlma(b: Bars) -> None:
    n, c = 20, list(b.close)
    lag = (n - 1) // 2
    y = [2 * c[i] - c[i - lag] if i >= lag else NAN for i in range(len(c))]
    close_to(ours(b, "zlma", length=n)["value"], ema_ref(y, n))


def test_alma(b: Bars) -> None:
    n, sigma, offset, c = 9, 6.0, 0.85, list(b.close)
    m, s = offset * (n - 1), n / sigma
    w = [math.exp(-((j - m) ** 2) / (2 * s * s)) for j in range(n)]
    ref = [
        sum(w[j] * c[i - n + 1 + j] for j in range(n)) / sum(w) if i >= n - 1 else NAN
        for i in range(len(c))
    ]
    close_to(ours(b, "alma", length=n, sigma=sigma, offset=offset)["value"], ref)


@pytest.mark.parametrize("anchor", ["D", "W"])
def test_vwap_resets_at_the_utc_anchor(b: Bars, anchor: str) -> None:
    period = 86_400_000 if anchor == "D" else 7 * 86_400_000
    shift = 0 if anchor == "D" else 4 * 86_400_000  # epoch was a Thursday; weeks start Monday
    ref, key, pv, vol = [], None, 0.0, 0.0
    for i in range(len(b)):
        k = (int(b.ts[i]) - shift) // period
        if k != key:
            key, pv, vol = k, 0.0, 0.0
        tp = (b.high[i] + b.low[i] + b.close[i]) / 3
        pv += tp * b.volume[i]
        vol += b.volume[i]
        ref.append(pv / vol if vol > 0 else tp)
    close_to(ours(b, "vwap", anchor=anchor)["value"], ref)
    assert int(b.ts[0]) % 86_400_000 == 0  # the fixture starts at midnight, so day 1 is whole


def test_fisher(b: Bars) -> None:
    n = 9
    x = [(hi + lo) / 2 for hi, lo in zip(b.high, b.low, strict=True)]
    fish, sig, val, prev = [], [], 0.0, 0.0
    for i in range(len(x)):
        if i < n - 1:
            fish.append(NAN)
            sig.append(NAN)
            continue
        hh, ll = max(x[i - n + 1 : i + 1]), min(x[i - n + 1 : i + 1])
        raw = (x[i] - ll) / (hh - ll) - 0.5 if hh != ll else 0.0
        val = min(max(0.66 * raw + 0.67 * val, -0.999), 0.999)
        f = 0.5 * math.log((1 + val) / (1 - val)) + 0.5 * prev
        sig.append(prev if i > n - 1 else NAN)
        fish.append(f)
        prev = f
    got = ours(b, "fisher", length=n)
    close_to(got["fisher"], fish)
    close_to(got["signal"], sig)


def test_tsi(b: Bars) -> None:
    fast, slow, signal, c = 13, 25, 13, list(b.close)
    pc = [NAN] + [c[i] - c[i - 1] for i in range(1, len(c))]
    num = ema_ref(ema_ref(pc, slow), fast)
    den = ema_ref(ema_ref([abs(x) for x in pc], slow), fast)
    tsi = [100 * a / d if d == d and d != 0 else NAN for a, d in zip(num, den, strict=True)]
    got = ours(b, "tsi", fast=fast, slow=slow, signal=signal)
    close_to(got["tsi"], tsi)
    close_to(got["signal"], ema_ref(tsi, signal))


def test_supertrend(b: Bars) -> None:
    n, mult = 10, 3.0
    atr = atr_ref(b, n)
    trend, direction, fu, fl, d = [], [], NAN, NAN, NAN
    for i in range(len(b)):
        if atr[i] != atr[i]:
            trend.append(NAN)
            direction.append(NAN)
            continue
        mid = (b.high[i] + b.low[i]) / 2
        up, dn = mid + mult * atr[i], mid - mult * atr[i]
        if fu != fu:
            fu, fl, d = up, dn, 1.0
        else:
            pc = b.close[i - 1]
            new_fu = up if up < fu or pc > fu else fu
            new_fl = dn if dn > fl or pc < fl else fl
            if b.close[i] > fu:
                d = 1.0
            elif b.close[i] < fl:
                d = -1.0
            fu, fl = new_fu, new_fl
        trend.append(fl if d > 0 else fu)
        direction.append(d)
    got = ours(b, "supertrend", length=n, multiplier=mult)
    close_to(got["trend"], trend)
    close_to(got["direction"], direction)
    up_dir = np.array(direction) > 0
    close_to(got["long"], np.where(up_dir, trend, NAN))
    close_to(got["short"], np.where(np.array(direction) < 0, trend, NAN))


def test_vortex(b: Bars) -> None:
    n, h, lo = 14, b.high, b.low
    tr = tr_ref(b)
    vip, vim = [], []
    for i in range(len(b)):
        if i < n:
            vip.append(NAN)
            vim.append(NAN)
            continue
        w = range(i - n + 1, i + 1)
        trs = sum(tr[j] for j in w)
        vip.append(sum(abs(h[j] - lo[j - 1]) for j in w) / trs)
        vim.append(sum(abs(lo[j] - h[j - 1]) for j in w) / trs)
    got = ours(b, "vortex", length=n)
    close_to(got["vip"], vip)
    close_to(got["vim"], vim)


def test_kc(b: Bars) -> None:
    n, scalar = 20, 2.0
    basis, rng = ema_ref(list(b.close), n), ema_ref(tr_ref(b), n)
    got = ours(b, "kc", length=n, scalar=scalar)
    close_to(got["basis"], basis)
    close_to(got["lower"], [m - scalar * r for m, r in zip(basis, rng, strict=True)])
    close_to(got["upper"], [m + scalar * r for m, r in zip(basis, rng, strict=True)])


def test_donchian(b: Bars) -> None:
    ln, un = 10, 30
    lower = [min(b.low[i - ln + 1 : i + 1]) if i >= ln - 1 else NAN for i in range(len(b))]
    upper = [max(b.high[i - un + 1 : i + 1]) if i >= un - 1 else NAN for i in range(len(b))]
    got = ours(b, "donchian", lower_length=ln, upper_length=un)
    close_to(got["lower"], lower)
    close_to(got["upper"], upper)
    close_to(got["middle"], [(a + z) / 2 for a, z in zip(lower, upper, strict=True)])


def test_squeeze(b: Bars) -> None:
    bn, bk, kn, kk = 20, 2.0, 20, 1.5
    c, h, lo = list(b.close), list(b.high), list(b.low)
    tr = tr_ref(b)
    sqz, on, off, no = [], [], [], []
    delta: list[float] = []
    for i in range(len(c)):
        if i < max(bn, kn) - 1:
            for col in (sqz, on, off, no):
                col.append(NAN)
            continue
        win = c[i - bn + 1 : i + 1]
        mid = sum(win) / bn
        sd = math.sqrt(sum((x - mid) ** 2 for x in win) / bn)
        kmid = sum(c[i - kn + 1 : i + 1]) / kn
        krng = sum(tr[i - kn + 1 : i + 1]) / kn
        lb, ub, lk, uk = mid - bk * sd, mid + bk * sd, kmid - kk * krng, kmid + kk * krng
        is_on, is_off = lb > lk and ub < uk, lb < lk and ub > uk
        on.append(float(is_on))
        off.append(float(is_off))
        no.append(float(not (is_on or is_off)))
        hh, ll = max(h[i - kn + 1 : i + 1]), min(lo[i - kn + 1 : i + 1])
        delta.append(c[i] - ((hh + ll) / 2 + kmid) / 2)
        if len(delta) < kn:
            sqz.append(NAN)
            continue
        ys = delta[-kn:]
        xs = range(kn)
        xm, ym = (kn - 1) / 2, sum(ys) / kn
        slope = sum((x - xm) * (y - ym) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - xm) ** 2 for x in xs
        )
        sqz.append(ym + slope * (kn - 1 - xm))
    got = ours(b, "squeeze", bb_length=bn, bb_std=bk, kc_length=kn, kc_scalar=kk)
    close_to(got["sqz"], sqz)
    for k, ref in (("on", on), ("off", off), ("no_sqz", no)):
        np.testing.assert_array_equal(got[k], ref)
    assert 0 < np.nansum(got["on"]) < len(b) - 100  # the sample has squeezes and releases


def test_cmf(b: Bars) -> None:
    n, h, lo, c, v = 20, b.high, b.low, b.close, b.volume
    mfv = [((c[i] - lo[i]) - (h[i] - c[i])) / (h[i] - lo[i]) * v[i] if h[i] != lo[i] else 0.0
           for i in range(len(b))]  # fmt: skip
    ref = [
        sum(mfv[i - n + 1 : i + 1]) / sum(v[i - n + 1 : i + 1]) if i >= n - 1 else NAN
        for i in range(len(b))
    ]
    close_to(ours(b, "cmf", length=n)["value"], ref)


def test_kvo(b: Bars) -> None:
    fast, slow, signal = 34, 55, 13
    tp = (b.high + b.low + b.close) / 3
    sv = [NAN] + [
        b.volume[i] * (1 if tp[i] > tp[i - 1] else -1 if tp[i] < tp[i - 1] else 0)
        for i in range(1, len(b))
    ]
    kvo = [f - s for f, s in zip(ema_ref(sv, fast), ema_ref(sv, slow), strict=True)]
    got = ours(b, "kvo", fast=fast, slow=slow, signal=signal)
    close_to(got["kvo"], kvo)
    close_to(got["signal"], ema_ref(kvo, signal))


def test_volume_sma_and_ohlc4(b: Bars) -> None:
    close_to(ours(b, "volume_sma", length=20)["value"], sma_ref(list(b.volume), 20))
    close_to(ours(b, "ohlc4")["value"], (b.open + b.high + b.low + b.close) / 4)


def test_bbands_flat_window_has_zero_width() -> None:
    """The O(1) std is rebuilt around a recent value, so a flat window gives exactly zero."""
    n = 60
    close = np.r_[np.linspace(60_000, 61_000, 30), np.full(n - 30, 61_234.5)]
    ts = np.arange(n, dtype=np.int64) * 60_000
    bars = Bars.from_arrays("X", "1m", ts, close, close, close, close, np.ones(n))
    got = ours(bars, "bbands", length=20, std=2.0)
    assert got["upper"][-1] == got["lower"][-1] == got["middle"][-1] == 61_234.5
    assert got["bandwidth"][-1] == 0.0 and np.isnan(got["percent_b"][-1])


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("ema", {"length": -3}, "param 'length' of ema: must be >= 1, got -3"),
        ("ema", {"lenght": 3}, "unknown param 'lenght' for ema; did you mean 'length'?"),
        ("bbands", {"std": "wide"}, "param 'std' of bbands: expected a number, got 'wide'"),
        ("macd", {"fast": 30}, "macd: fast (30) must be less than slow (26)"),
        ("vwap", {"anchor": "M"}, "param 'anchor' of vwap: expected one of D, W, got 'M'"),
    ],
)
def test_params_fail_with_a_clear_message(name: str, raw: dict, message: str) -> None:
    spec = default_catalog().get(name)
    assert spec is not None
    with pytest.raises(ValueError) as exc:
        spec.resolve_params(raw)
    assert str(exc.value) == message
