"""Incremental == batch for every indicator, 3 param sets, on real and on generated OHLCV;
state serialised mid-stream and restored continues exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trade.data.bars import Bars
from trade.features.indicators import (
    INDICATORS,
    compute_batch,
    make_incremental,
    restore_incremental,
)

from .common import param_sets, read_bars, source_of

NAMES = sorted(INDICATORS)


def incremental(name: str, params: dict, bars: Bars, cut: int | None = None) -> np.ndarray:
    ind = make_incremental(name, params, source_of(name))
    rows = []
    for i in range(len(bars)):
        if cut is not None and i == cut:
            ind = restore_incremental(json.loads(json.dumps(ind.to_state())))
        ind.update(
            bars.open[i],
            bars.high[i],
            bars.low[i],
            bars.close[i],
            bars.volume[i],
            ts=int(bars.ts[i]),
        )
        rows.append(ind.values())
    return np.array(rows)


def assert_same(batch: dict[str, np.ndarray], inc: np.ndarray, name: str) -> None:
    for k, out in enumerate(INDICATORS[name].outputs):
        a, b = batch[out.name], inc[:, k]
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{name}.{out.name}: NaN positions differ"
        ok = ~np.isnan(a)
        np.testing.assert_allclose(b[ok], a[ok], rtol=1e-9, atol=0, err_msg=f"{name}.{out.name}")


@pytest.fixture(scope="module")
def real(market_dir) -> Bars:  # type: ignore[no-untyped-def]
    return read_bars(market_dir / "bybit_BTCUSDT_15m.csv.gz", "15m", "BTCUSDT").slice(0, 2500)


@pytest.mark.parametrize("name", NAMES)
def test_parity_on_real_btc_15m(name: str, real: Bars) -> None:
    for params in param_sets(name):
        batch = compute_batch(name, params, real, source_of(name))
        assert_same(batch, incremental(name, params, real, cut=1234), name)


@st.composite
def ohlcv(draw) -> Bars:  # type: ignore[no-untyped-def]
    n = draw(st.integers(1, 160))
    kinds = draw(st.lists(st.sampled_from(["walk", "flat", "jump"]), min_size=n, max_size=n))
    price, rows = 100.0, []
    for k in kinds:
        if k == "jump":
            price *= draw(st.sampled_from([0.7, 1.4]))
        elif k == "walk":
            price *= 1 + draw(st.floats(-0.02, 0.02))
        o = price
        c = price if k == "flat" else price * (1 + draw(st.floats(-0.01, 0.01)))
        h = max(o, c) * (1 + (0 if k == "flat" else draw(st.floats(0, 0.01))))
        lo = min(o, c) * (1 - (0 if k == "flat" else draw(st.floats(0, 0.01))))
        v = (
            0.0
            if k == "flat" or (draw(st.booleans()) and draw(st.booleans()))
            else draw(st.floats(0, 1000))
        )
        rows.append((o, h, lo, c, v))
        price = c
    a = np.array(rows)
    ts = np.arange(n, dtype=np.int64) * 3_600_000
    return Bars.from_arrays("GEN", "1h", ts, a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(bars=ohlcv(), which=st.integers(0, 2))
def test_parity_on_generated_ohlcv(bars: Bars, which: int) -> None:
    for name in NAMES:
        params = param_sets(name)[which]
        batch = compute_batch(name, params, bars, source_of(name))
        assert_same(batch, incremental(name, params, bars, cut=len(bars) // 2), name)
