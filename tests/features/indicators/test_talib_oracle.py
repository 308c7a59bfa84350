"""TA-Lib is the oracle: our values equal TA-Lib's within 1e-6 relative on real BTCUSDT and ETHUSDT
15m data, from TA-Lib's first value on (same seeding, so no extra burn-in), with an absolute floor
of 1e-9 for values that are exactly zero in one library.

Ties get their own regression: slices of real 1m and 5m data (tests/fixtures/market) holding
typical prices equal to the previous bar's up to float rounding, RSI windows flat to the last bit,
and runs of identical bars. TA-Lib counts a difference within 1e-14 × the operands' magnitude as
zero; an exact `!=` does not, and MFI then differs for the 14 bars after each such tie."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import talib

from trade.data.bars import Bars
from trade.features.indicators import compute_batch, make_incremental
from trade.features.registry import default_catalog

from .common import read_bars

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "market"
TIE_FILES = sorted(FIXTURES.glob("*_ties*.csv.gz")) + sorted(FIXTURES.glob("*_flat.csv.gz"))


@pytest.fixture(scope="module", params=["BTCUSDT", "ETHUSDT"])
def bars(request, market_dir) -> Bars:  # type: ignore[no-untyped-def]
    return read_bars(market_dir / f"bybit_{request.param}_15m.csv.gz", "15m", request.param)


def ours(b: Bars, name: str, out: str = "value", **params: object) -> np.ndarray:
    spec = default_catalog().get(name)
    assert spec is not None
    return compute_batch(
        name, spec.resolve_params(params), b, "close" if spec.has_source else None
    )[out]


def ours_incremental(b: Bars, name: str, out: str = "value", **params: object) -> np.ndarray:
    """The same values fed one bar at a time, as replay and live compute them."""
    spec = default_catalog().get(name)
    assert spec is not None
    ind = make_incremental(name, spec.resolve_params(params), "close" if spec.has_source else None)
    k = [o.name for o in spec.outputs_for(spec.resolve_params(params))].index(out)
    got = np.empty(len(b))
    for i in range(len(b)):
        ind.update(b.open[i], b.high[i], b.low[i], b.close[i], b.volume[i], ts=int(b.ts[i]))
        got[i] = ind.values()[k]
    return got


Ours = Callable[..., np.ndarray]


def cases(b: Bars, ours: Ours = ours) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    h, lo, c, v = b.high, b.low, b.close, b.volume
    stoch = talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)
    srsi = talib.STOCHRSI(c, 14, 14, 3, 0)
    bb = talib.BBANDS(c, 20, 2, 2, 0)
    macd = talib.MACD(c, 12, 26, 9)
    aroon = talib.AROON(h, lo, 14)
    sar_l, sar_s = (
        ours(b, "psar", "long", af0=0.02, af=0.02, max_af=0.2),
        ours(b, "psar", "short", af0=0.02, af=0.02, max_af=0.2),
    )
    return {
        "EMA": (ours(b, "ema", length=20), talib.EMA(c, 20)),
        "SMA": (ours(b, "sma", length=20), talib.SMA(c, 20)),
        "WMA": (ours(b, "wma", length=20), talib.WMA(c, 20)),
        "DEMA": (ours(b, "dema", length=20), talib.DEMA(c, 20)),
        "TEMA": (ours(b, "tema", length=20), talib.TEMA(c, 20)),
        "TRIMA even": (ours(b, "trima", length=20), talib.TRIMA(c, 20)),
        "TRIMA odd": (ours(b, "trima", length=21), talib.TRIMA(c, 21)),
        "KAMA": (ours(b, "kama", length=10), talib.KAMA(c, 10)),
        "LINEARREG": (ours(b, "linreg", length=14), talib.LINEARREG(c, 14)),
        "RSI": (ours(b, "rsi", length=14), talib.RSI(c, 14)),
        "CCI": (ours(b, "cci", length=20), talib.CCI(h, lo, c, 20)),
        "WILLR": (ours(b, "willr", length=14), talib.WILLR(h, lo, c, 14)),
        "CMO": (ours(b, "cmo", length=14), talib.CMO(c, 14)),
        "ULTOSC": (ours(b, "uo"), talib.ULTOSC(h, lo, c, 7, 14, 28)),
        "STOCH k": (ours(b, "stoch", "k"), stoch[0]),
        "STOCH d": (ours(b, "stoch", "d"), stoch[1]),
        "STOCHRSI k": (ours(b, "stochrsi", "k", k=1), srsi[0]),
        "STOCHRSI d": (ours(b, "stochrsi", "d", k=1), srsi[1]),
        "ADX": (ours(b, "adx", "adx"), talib.ADX(h, lo, c, 14)),
        "PLUS_DI": (ours(b, "adx", "dmp"), talib.PLUS_DI(h, lo, c, 14)),
        "MINUS_DI": (ours(b, "adx", "dmn"), talib.MINUS_DI(h, lo, c, 14)),
        "ADXR": (ours(b, "adx", "adxr"), talib.ADXR(h, lo, c, 14)),
        "PLUS_DM": (ours(b, "dm", "dmp"), talib.PLUS_DM(h, lo, 14)),
        "MINUS_DM": (ours(b, "dm", "dmn"), talib.MINUS_DM(h, lo, 14)),
        "AROON up": (ours(b, "aroon", "up"), aroon[1]),
        "AROON down": (ours(b, "aroon", "down"), aroon[0]),
        "SAR": (np.where(np.isnan(sar_l), sar_s, sar_l), talib.SAR(h, lo, 0.02, 0.2)),
        "TRIX": (ours(b, "trix", "trix", length=18), talib.TRIX(c, 18)),
        "PPO (EMA)": (ours(b, "ppo", "ppo"), talib.PPO(c, 12, 26, 1)),
        "ATR": (ours(b, "atr"), talib.ATR(h, lo, c, 14)),
        "NATR": (ours(b, "natr"), talib.NATR(h, lo, c, 14)),
        "BBANDS upper": (ours(b, "bbands", "upper"), bb[0]),
        "BBANDS middle": (ours(b, "bbands", "middle"), bb[1]),
        "BBANDS lower": (ours(b, "bbands", "lower"), bb[2]),
        "OBV": (ours(b, "obv"), talib.OBV(c, v)),
        "MACD": (ours(b, "macd", "macd"), macd[0]),
        "MACD signal": (ours(b, "macd", "signal"), macd[1]),
        "MACD hist": (ours(b, "macd", "histogram"), macd[2]),
        "ROC": (ours(b, "roc"), talib.ROC(c, 10)),
        "MOM": (ours(b, "mom"), talib.MOM(c, 10)),
        "MIDPRICE": (ours(b, "midprice"), talib.MIDPRICE(h, lo, 14)),
        "MFI": (ours(b, "mfi", length=14), talib.MFI(h, lo, c, v, 14)),
    }


def beyond_tolerance(b: Bars, ours: Ours = ours) -> list[str]:
    bad = []
    for name, (x, y) in cases(b, ours).items():
        both = ~np.isnan(y)
        assert both.sum() > len(y) - 100, name
        assert not np.isnan(x[both]).any(), f"{name}: we are missing values TA-Lib has"
        over = np.abs(x[both] - y[both]) > 1e-6 * np.abs(y[both]) + 1e-9
        if over.any():
            bad.append(f"{name}: {over.sum()} values beyond 1e-6 relative")
    return bad


def test_matches_talib_after_warmup(bars: Bars) -> None:
    assert beyond_tolerance(bars) == []


def near_ties(b: Bars) -> int:
    """Typical prices unequal to the previous one only by rounding (within 1e-14 relative)."""
    tp = (b.high + b.low + b.close) / 3
    d, scale = np.diff(tp), np.abs(tp[1:]) + np.abs(tp[:-1])
    return int(((d != 0) & (np.abs(d) <= 1e-14 * scale)).sum())


def test_tie_fixtures_hold_the_ties_they_are_for() -> None:
    got = {p.name: near_ties(read_bars(p, "1m", "X")) for p in TIE_FILES}
    assert got == {
        "binance_BTCUSDT_5m_flat.csv.gz": 0,
        "bybit_BTCUSDT_1m_ties_a.csv.gz": 1,
        "bybit_BTCUSDT_1m_ties_b.csv.gz": 0,
        "bybit_ETHUSDT_1m_ties.csv.gz": 5,
    }
    # the flat file holds a run of identical closes longer than KAMA's 10-bar window
    flat = read_bars(FIXTURES / "binance_BTCUSDT_5m_flat.csv.gz", "5m", "BTCUSDT")
    run = longest = 0
    for same in np.diff(flat.close) == 0:
        run = run + 1 if same else 0
        longest = max(longest, run)
    assert longest >= 10


@pytest.mark.parametrize("path", TIE_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("driver", [ours, ours_incremental], ids=["batch", "incremental"])
def test_ties_as_talib(path: Path, driver: Ours) -> None:
    assert beyond_tolerance(read_bars(path, "1m", "X"), driver) == []


@pytest.mark.parametrize(("base", "tick"), [(104_000.0, 0.1), (2.5, 1e-4), (0.07, 1e-5)])
def test_tick_grid_ties_as_talib(base: float, tick: float) -> None:
    """Prices on a tick grid moving 0–2 ticks: thousands of equal highs, lows, closes and of up and
    down moves equal in ticks but not in floats (DM, Aroon, PSAR, OBV compare those raw)."""
    rng = np.random.default_rng(7)
    n = 8000
    on_grid = lambda x: np.round(x / tick) * tick  # noqa: E731
    c = on_grid(base + np.cumsum(rng.integers(-2, 3, n)) * tick)
    o = np.concatenate([[c[0]], c[:-1]])
    h = on_grid(np.maximum(o, c) + rng.integers(0, 3, n) * tick)
    lo = on_grid(np.minimum(o, c) - rng.integers(0, 3, n) * tick)
    b = Bars.from_arrays(
        "X", "1m", np.arange(n) * 60_000, o, h, lo, c, rng.integers(1, 50, n) * 1.0
    )
    up, down = np.diff(h), -np.diff(lo)
    equal_in_ticks = np.round(up / tick) == np.round(down / tick)
    assert (equal_in_ticks & (up != down)).sum() > 100
    assert near_ties(b) > 100
    assert beyond_tolerance(b) == []
