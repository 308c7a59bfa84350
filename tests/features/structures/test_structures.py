"""Structure detectors: hand-built price paths with known answers, batch == incremental on real and
generated data, and state serialise → restore → continue equal to an uninterrupted run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trade.data.bars import Bars
from trade.features.registry import default_catalog
from trade.features.structures import (
    STRUCTURES,
    compute_structure_batch,
    make_structure,
    restore_structure,
)

from ..indicators.common import read_bars


def bars_from(
    highs: list[float], lows: list[float] | None = None, closes: list[float] | None = None
) -> Bars:
    h = np.array(highs, dtype=float)
    lo = np.array(lows, dtype=float) if lows is not None else h - 1
    c = np.array(closes, dtype=float) if closes is not None else (h + lo) / 2
    o = c.copy()
    ts = np.arange(len(h), dtype=np.int64) * 900_000
    return Bars.from_arrays(
        "T",
        "15m",
        ts,
        o,
        np.maximum(h, np.maximum(o, c)),
        np.minimum(lo, np.minimum(o, c)),
        c,
        np.ones(len(h)),
    )


def params(type_: str, **raw: Any) -> dict[str, Any]:
    spec = default_catalog().get(type_)
    assert spec is not None
    return spec.resolve_params(raw)


def swing(b: Bars, **raw: Any) -> dict[str, np.ndarray]:
    return compute_structure_batch("swing", params("swing", **raw), b, {})


def test_fractal_pivot_is_confirmed_right_bars_later() -> None:
    b = bars_from([1, 2, 3, 9, 3, 2, 1, 2])  # a peak at bar 3
    s = swing(b, left=2, right=2)
    assert np.isnan(s["high_level"][4])  # not yet: needs 2 bars after the peak
    assert s["high_level"][5] == 9 and s["high_idx"][5] == 3 and s["pivot_this_bar"][5] == 1
    assert s["pivot_this_bar"][6] == 0 and s["last_pivot_type"][5] == 1  # "high"


def test_fractal_needs_strictly_higher() -> None:
    s = swing(bars_from([1, 5, 9, 9, 5, 1, 1]), left=2, right=2)
    assert np.isnan(s["high_level"]).all()  # equal highs are not a pivot


def test_zigzag_reverses_after_atr_multiple() -> None:
    highs = [10.0] * 5 + [11, 12, 13, 14, 15] + [14, 12, 10] + [11, 13, 15]
    b = bars_from(highs, [x - 1 for x in highs])
    s = swing(b, mode="atr_zigzag", atr_length=3, atr_multiplier=2.0)
    # ATR of equal 1-wide bars with moves ≈ 1-2; a drop from 15 to 11 (low of the 10-high bar is 9)
    assert s["high_level"][12] == 15 and s["high_idx"][12] == 9
    assert np.isnan(s["high_level"][10])


def test_trend_waves_hh_hl() -> None:
    # lows 5 → 6 (HL) and highs 10 → 12 (HH): direction 1
    highs = [8, 9, 10, 9, 7, 6, 7, 9, 12, 9, 8, 7, 8, 8, 8]
    lows = [7, 8, 9, 8, 6, 5, 6, 8, 11, 8, 7, 6, 7, 7, 7]
    b = bars_from(highs, lows)
    p = params("swing", left=2, right=2)
    s = compute_structure_batch("swing", p, b, {})
    t = compute_structure_batch("trend", params("trend"), b, {"swing": s})
    assert t["direction"][-1] == 1 and t["last_wave"][-1] in (1.0, 2.0)  # HH or HL


def test_bos_then_choch() -> None:
    # a swing high at 10 (bar 2) and low at 5 (bar 5); a close above 10 is a BOS (bias was none),
    # then a swing low at 8 and a close below it is a CHoCH to bearish
    highs = [8, 9, 10, 8, 7, 6, 7, 11, 12, 13, 11, 9, 10, 11, 7, 6]
    lows = [7, 8, 9, 7, 6, 5, 6, 10, 11, 12, 10, 8, 9, 10, 6, 5]
    closes = [7.5, 8.5, 9.5, 7.5, 6.5, 5.5, 6.5, 10.5, 11.5, 12.5, 10.5, 8.5, 9.5, 10.5, 6.5, 5.5]
    b = bars_from(highs, lows, closes)
    s = swing(b, left=2, right=2)
    ms = compute_structure_batch("market_structure", params("market_structure"), b, {"swing": s})
    bos = np.flatnonzero(ms["bos_this_bar"] == 1)
    choch = np.flatnonzero(ms["choch_this_bar"] == 1)
    assert bos[0] == 7 and ms["last_bos_level"][7] == 10 and ms["bos_direction"][7] == 1
    assert len(choch) == 1 and ms["choch_direction"][choch[0]] == 2 and ms["bias"][-1] == 2
    assert not (set(bos) & set(choch))


def test_fibonacci_levels_numerically() -> None:
    highs = [5, 4, 3, 4, 6, 8, 10, 8, 7, 6]
    b = bars_from(highs, [x - 1 for x in highs])
    s = swing(b, left=2, right=2)
    f = compute_structure_batch(
        "fibonacci", params("fibonacci", levels=[0.5, 0.618]), b, {"swing": s}
    )
    # low 2 at bar 2, then high 10 at bar 6 (confirmed at 8): bullish pair, range 8
    assert f["direction"][8] == 1 and f["range"][8] == 8
    assert f["level[0.5]"][8] == pytest.approx(6.0) and f["level[0.618]"][8] == pytest.approx(
        10 - 0.618 * 8
    )
    ext = compute_structure_batch(
        "fibonacci", params("fibonacci", levels=[0.5], mode="extension"), b, {"swing": s}
    )
    assert ext["level[0.5]"][8] == pytest.approx(14.0)


def test_zone_breaks_on_a_close_beyond_its_far_side() -> None:
    highs = [9, 8, 7, 8, 9, 10, 9, 8, 7.5, 6]
    lows = [8, 7, 6, 7, 8, 9, 8, 7, 6.5, 5]
    closes = [8.5, 7.5, 6.5, 7.5, 8.5, 9.5, 8.5, 7.5, 6.8, 5.5]
    b = bars_from(highs, lows, closes)
    s = swing(b, left=2, right=2)
    atr = {"value": np.full(len(b), 2.0)}
    z = compute_structure_batch("zone", params("zone", width_atr=0.5), b, {"swing": s, "atr": atr})
    # demand zone at the low 6 (bar 2, confirmed bar 4): [6, 7]; close 5.5 at bar 9 breaks it
    assert (z["lower"][4], z["upper"][4], z["state"][4]) == (6.0, 7.0, 1.0)
    assert z["state"][8] == 1.0 and z["state"][9] == 2.0 and z["age_bars"][9] == 5


def test_derived_zone_touch_break_and_never_broken_on_creation() -> None:
    highs = [5, 4, 3, 4, 6, 8, 10, 8, 7, 6.2, 5.5, 6]
    lows = [4, 3, 2, 3, 5, 7, 9, 7, 6, 5.9, 4.0, 5]
    closes = [4.5, 3.5, 2.5, 3.5, 5.5, 7.5, 9.5, 7.5, 6.5, 6.05, 4.2, 5.5]
    b = bars_from(highs, lows, closes)
    s = swing(b, left=2, right=2)
    p = params("derived_zone", levels=[0.5], max_active=2, width_pct=1.0)
    dz = compute_structure_batch("derived_zone", p, b, {"swing": s})
    # bullish pair low 2 → high 10 confirmed at bar 8: zone at 6 ± 0.06 created at bar 8 (active)
    assert dz["zone[0].state"][8] == 1.0 and dz["zone[0].upper"][8] == pytest.approx(6.06)
    assert dz["zone[0].touched"][9] == 1.0 and dz["zone[0].inside"][9] == 1.0
    assert dz["zone[0].state"][10] == 2.0  # close 4.2 below the support zone: broken
    assert dz["active_count"][10] == 0 and dz["any_active"][10] == 0


@pytest.mark.parametrize(
    ("include", "expected"),
    [(False, [math.nan, math.nan, 3, 4, 5]), (True, [math.nan, 3, 4, 5, 5])],
)
def test_rolling_window_with_and_without_current(include: bool, expected: list[float]) -> None:
    b = bars_from([1, 3, 4, 5, 2], [0, 0, 0, 0, 0])
    r = compute_structure_batch(
        "rolling_window",
        params("rolling_window", size=2, field="high", include_current=include),
        b,
        {},
    )
    np.testing.assert_array_equal(r["value"], expected)


@pytest.mark.parametrize("size", [1, 3, 50, 1000])
@pytest.mark.parametrize("mode", ["max", "min"])
@pytest.mark.parametrize("include", [False, True])
def test_rolling_window_equals_python_max_min(size: int, mode: str, include: bool) -> None:
    # ties, NaN holes (Python's max/min: a NaN oldest value sticks, later NaNs are skipped)
    rng = np.random.default_rng(size)
    x = np.round(rng.normal(0, 3, 4000))
    x[rng.random(len(x)) < 0.02] = np.nan
    b = bars_from(list(np.where(np.isnan(x), 0.0, x)), [-100.0] * len(x), list(x))
    r = compute_structure_batch(
        "rolling_window",
        params("rolling_window", size=size, field="close", mode=mode, include_current=include),
        b,
        {},
    )
    pick = max if mode == "max" else min
    xs = b.close.tolist()
    want = []
    for i in range(len(xs)):
        stop = i + 1 if include else i
        window = xs[max(0, stop - size) : stop]
        want.append(pick(window) if len(window) == size else math.nan)
    np.testing.assert_array_equal(r["value"], want)


def test_wide_fractal_window_matches_its_definition() -> None:
    rng = np.random.default_rng(3)
    h = np.round(100 + np.cumsum(rng.normal(0, 1, 3000)))
    b = bars_from(list(h), list(h - 1 - np.round(rng.random(len(h)) * 3)))
    left, right = 150, 40
    s = swing(b, left=left, right=right)
    hs, ls = b.high.tolist(), b.low.tolist()
    for i in range(left + right, len(hs)):
        c = i - right
        win = range(c - left, i + 1)
        is_hi = all(hs[c] > hs[j] for j in win if j != c)
        is_lo = all(ls[c] < ls[j] for j in win if j != c)
        assert s["pivot_this_bar"][i] == float(is_hi or is_lo), i
        if is_hi:
            assert (s["high_level"][i], s["high_idx"][i]) == (hs[c], c)
        if is_lo:
            assert (s["low_level"][i], s["low_idx"][i]) == (ls[c], c)
    assert s["version"][-1] > 5


def test_derived_zone_keeps_the_newest_max_active_zones() -> None:
    highs = [5, 4, 3, 4, 6, 8, 10, 8, 7, 6.2]
    lows = [4, 3, 2, 3, 5, 7, 9, 7, 6, 5.9]
    b = bars_from(highs, lows, [(x + y) / 2 for x, y in zip(highs, lows, strict=True)])
    s = swing(b, left=2, right=2)
    p = params("derived_zone", levels=[0.5, 0.382, 0.618], max_active=2, width_pct=0.0)
    dz = compute_structure_batch("derived_zone", p, b, {"swing": s})
    # bullish pair 2 → 10 at bar 8: levels inserted in ascending ratio order, each at the front,
    # so the deepest retracements are kept and the 0.382 zone falls off
    assert dz["zone[0].upper"][8] == pytest.approx(10 - 0.618 * 8)
    assert dz["zone[1].upper"][8] == pytest.approx(6.0)
    assert dz["active_count"][8] == 2


def test_state_is_strict_json_and_restores_wide_windows_exactly() -> None:
    rng = np.random.default_rng(11)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 1500)))
    b = bars_from(list(c * 1.003), list(c * 0.997), list(c))
    for type_, raw in (
        ("swing", {"left": 300, "right": 200}),
        ("rolling_window", {"size": 700, "field": "close", "mode": "min"}),
    ):
        p = params(type_, **raw)
        batch = compute_structure_batch(type_, p, b, {})
        det = make_structure(type_, p)
        rows = []
        for i in range(len(b)):
            if i in (250, 900):
                det = restore_structure(json.loads(json.dumps(det.to_state(), allow_nan=False)))
            det.update(b.open[i], b.high[i], b.low[i], b.close[i], b.volume[i], {})
            rows.append(det.values())
        inc = np.array(rows)
        for k, name in enumerate(batch):
            np.testing.assert_array_equal(inc[:, k], batch[name], err_msg=f"{type_}.{name}")


CHAIN = [
    ("piv", "swing", {"left": 3, "right": 3}, {}),
    (
        "zz",
        "swing",
        {
            "mode": "atr_zigzag",
            "atr_multiplier": 1.5,
            "strict_alternation": True,
            "min_pct_move": 0.1,
        },
        {},
    ),
    ("tr", "trend", {}, {"swing": "piv"}),
    ("ms", "market_structure", {"confirmation": "wick"}, {"swing": "zz"}),
    ("fib", "fibonacci", {"levels": [0.382, 0.618]}, {"swing": "piv"}),
    ("zd", "zone", {"zone_type": "supply"}, {"swing": "piv", "atr": "atr"}),
    ("dz", "derived_zone", {"max_active": 3}, {"swing": "zz"}),
    ("rw", "rolling_window", {"size": 20, "field": "low", "mode": "min"}, {}),
]


def run_chain(
    b: Bars, cut: int | None
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    atr = {"value": np.convolve(b.high - b.low, np.ones(5) / 5, mode="full")[: len(b)]}
    batch: dict[str, dict[str, np.ndarray]] = {"atr": atr}
    for key, type_, raw, uses in CHAIN:
        batch[key] = compute_structure_batch(
            type_, params(type_, **raw), b, {slot: batch[k] for slot, k in uses.items()}
        )
    dets = {key: make_structure(type_, params(type_, **raw)) for key, type_, raw, _ in CHAIN}
    rows: dict[str, list[tuple[float, ...]]] = {key: [] for key, *_ in CHAIN}
    current: dict[str, dict[str, float]] = {}
    for i in range(len(b)):
        if cut is not None and i == cut:
            dets = {
                k: restore_structure(json.loads(json.dumps(d.to_state()))) for k, d in dets.items()
            }
        current["atr"] = {"value": float(atr["value"][i])}
        for key, type_, raw, uses in CHAIN:
            d = dets[key]
            d.update(
                b.open[i],
                b.high[i],
                b.low[i],
                b.close[i],
                b.volume[i],
                {slot: current[k] for slot, k in uses.items()},
            )
            names = [o.name for o in STRUCTURES[type_].spec.outputs_for(params(type_, **raw))]
            current[key] = dict(zip(names, d.values(), strict=True))
            rows[key].append(d.values())
    return batch, {k: np.array(v) for k, v in rows.items()}


def assert_chain_equal(b: Bars, cut: int | None) -> None:
    batch, inc = run_chain(b, cut)
    for key, type_, raw, _ in CHAIN:
        names = [o.name for o in STRUCTURES[type_].spec.outputs_for(params(type_, **raw))]
        for k, n in enumerate(names):
            np.testing.assert_array_equal(inc[key][:, k], batch[key][n], err_msg=f"{key}.{n}")


def test_batch_equals_incremental_on_real_btc(market_dir: Path) -> None:
    b = read_bars(market_dir / "bybit_BTCUSDT_15m.csv.gz", "15m", "BTCUSDT").slice(0, 4000)
    assert_chain_equal(b, cut=2345)
    batch, _ = run_chain(b, None)
    assert (
        batch["piv"]["version"][-1] > 100
        and batch["ms"]["bos_this_bar"].sum() > 5
        and batch["ms"]["choch_this_bar"].sum() > 5
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.floats(-0.03, 0.03), min_size=5, max_size=200), cut=st.integers(0, 199))
def test_batch_equals_incremental_on_generated_paths(steps: list[float], cut: int) -> None:
    c = 100 * np.exp(np.cumsum(steps))
    b = bars_from(list(c * 1.004), list(c * 0.996), list(c))
    assert_chain_equal(b, cut=min(cut, len(b) - 1))
