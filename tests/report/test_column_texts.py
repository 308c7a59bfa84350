"""The vectorised paths of trades.csv and the drawdown duration give exactly what the per-value
definitions give (the trades fingerprint hashes these bytes)."""

from __future__ import annotations

import numpy as np
import pytest

from trade.report.artifacts import _num, _texts
from trade.report.metrics import (
    bar_returns,
    curve_measures,
    drawdowns,
    max_drawdown,
    max_drawdown_duration_bars,
    sharpe,
    sortino,
)


def test_a_float_column_is_written_as_each_value_alone() -> None:
    rng = np.random.default_rng(3)
    values = [float(x) for x in rng.normal(0, 1e5, 2000)]
    values += [float(x) for x in rng.uniform(-1e-9, 1e-9, 200)]
    values += [0.0, -0.0, 1e-11, -1e-11, 0.5e-10, 2.5e-10, float("nan"), 1e200, 109381.55000000001]
    values += [float(np.float64(x)) for x in (0.1, 0.2, 0.30000000000000004)]
    assert _texts(values) == [_num(v) for v in values]
    mixed = [1, 2.5, True, "signal", None]
    assert _texts(mixed) == [_num(v) for v in mixed]
    assert _texts([]) == []


def _duration_by_loop(equity: np.ndarray) -> int:
    under = equity < np.maximum.accumulate(equity)
    best = run = 0
    for u in under:
        run = run + 1 if u else 0
        best = max(best, run)
    return best


def test_drawdown_duration_equals_the_running_count() -> None:
    rng = np.random.default_rng(11)
    for n in (1, 2, 3, 50, 5000):
        for _ in range(20):
            e = 1000 + np.cumsum(rng.normal(0, 1, n))
            assert max_drawdown_duration_bars(e) == _duration_by_loop(e)
    assert max_drawdown_duration_bars(np.array([1.0, 2.0, 3.0])) == 0
    assert max_drawdown_duration_bars(np.array([3.0, 2.0, 1.0, 3.0, 2.0])) == 2
    assert max_drawdown_duration_bars(np.array([])) == 0


def test_the_one_pass_drawdowns_equal_the_definitions() -> None:
    """What compute_metrics reads (one pass) is `max_drawdown` and the duration, to the bit."""
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 50, 5000):
        for _ in range(20):
            e = 1000 + np.cumsum(rng.normal(0, 1, n))
            e[rng.random(n) < 0.2] = e[0]  # flat stretches and repeated peaks
            assert drawdowns(e) == (*max_drawdown(e), max_drawdown_duration_bars(e))
    odd = np.array([5.0, 0.0, 3.0, -1.0, 6.0])  # not positive: by the definitions themselves
    assert drawdowns(odd)[2] == max_drawdown_duration_bars(odd) == 3


def test_the_curve_measures_equal_the_definitions_also_on_a_curve_that_reaches_zero() -> None:
    """compute_metrics reads drawdowns, Sharpe and Sortino from one helper: on a positive curve
    the jitted passes give the definitions' numbers (the ratios to the last bits); a curve that
    reaches zero (a bankrupt account) is measured by the definitions, not divided by zero."""
    rng = np.random.default_rng(8)
    for n in (3, 50, 5000):  # at least two returns: both ratios are defined
        e = 1000 + np.cumsum(rng.normal(0, 1, n))
        dd_abs, dd_pct, dd_bars, sh, so = curve_measures(e, 35_040.0)
        r = bar_returns(e)
        assert (dd_abs, dd_pct, dd_bars) == drawdowns(e)
        assert sh == pytest.approx(sharpe(r, 35_040.0), rel=1e-9)
        assert so == pytest.approx(sortino(r, 35_040.0), rel=1e-9)
    assert curve_measures(np.array([1000.0, 990.0]), 1.0) == (10.0, 1.0, 1, None, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        for odd in ([100.0, 50.0, 0.0, 0.0], [100.0, 0.0, 10.0, 20.0], [0.0, 1.0, 2.0, 3.0]):
            c = np.array(odd)
            got = curve_measures(c, 1.0)
            np.testing.assert_equal(got[:3], (*max_drawdown(c), max_drawdown_duration_bars(c)))
            want = (sharpe(bar_returns(c), 1.0), sortino(bar_returns(c), 1.0))
            assert [x is None or np.isnan(x) for x in got[3:]] == [
                x is None or np.isnan(x) for x in want
            ]


def test_a_sweep_row_is_written_as_each_value_alone() -> None:
    from trade.sweep.table import _cell, _cells

    rng = np.random.default_rng(4)
    row = [8, "long_only", True, None, {"signal": 3}, [1.5], *rng.normal(0, 1e4, 30).tolist()]
    row += [0.1 + 0.2, -0.0, float("nan"), 1e-11, 109381.55000000001]
    assert _cells(row) == [_cell(v) for v in row]
