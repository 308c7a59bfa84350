"""Every metric against a hand-computed value on a small fixed trade list and equity curve."""

import math

import numpy as np
import pytest

from trade.report import metrics as m

H = 3_600_000
TRADES = [
    {
        "side": "long",
        "entry_time": 0,
        "exit_time": 2 * H,
        "pnl": 100.0,
        "fees": 2.0,
        "funding": 1.0,
        "notional": 1000.0,
        "exit_reason": "take_profit",
    },
    {
        "side": "short",
        "entry_time": 3 * H,
        "exit_time": 4 * H,
        "pnl": -50.0,
        "fees": 1.0,
        "funding": -0.5,
        "notional": 2000.0,
        "exit_reason": "stop_loss",
    },
    {
        "side": "long",
        "entry_time": 5 * H,
        "exit_time": 8 * H,
        "pnl": 30.0,
        "fees": 1.0,
        "funding": 0.0,
        "notional": 1000.0,
        "exit_reason": "signal",
    },
]
PNLS = [t["pnl"] for t in TRADES]


def test_trade_statistics():
    assert m.profit_factor(PNLS) == pytest.approx(130 / 50)
    assert m.win_rate_pct(PNLS) == pytest.approx(200 / 3)
    assert m.expectancy(PNLS) == pytest.approx(80 / 3)
    assert m.payoff_ratio(PNLS) == pytest.approx(65 / 50)
    assert m.profit_factor([1.0]) is None and m.win_rate_pct([]) is None


def test_drawdown():
    eq = np.array([100.0, 120.0, 90.0, 110.0, 130.0, 125.0])
    assert m.max_drawdown(eq) == (30.0, pytest.approx(25.0))
    assert m.max_drawdown_duration_bars(eq) == 2


def test_ratios():
    eq = np.array([100.0, 110.0, 99.0, 108.9])
    r = m.bar_returns(eq)
    assert r.tolist() == pytest.approx([0.1, -0.1, 0.1])
    mean, sd = 0.1 / 3, math.sqrt(((0.1 - 0.1 / 3) ** 2 * 2 + (-0.1 - 0.1 / 3) ** 2) / 2)
    assert m.sharpe(r, 4) == pytest.approx(mean / sd * 2)
    assert m.sortino(r, 4) == pytest.approx(mean / math.sqrt(0.01 / 3) * 2)
    # 3 bars at 3 bars/year: one year; return 8.9%, drawdown 10% → calmar 0.89
    assert m.calmar(100.0, 108.9, 3, 3, 10.0) == pytest.approx(0.89)


def test_time_in_market_and_exposure():
    assert m.time_in_market_pct(TRADES, 0, 10 * H) == pytest.approx(60.0)
    # clipped to the window [1h, 6h]: 1h + 1h + 1h of 5h
    assert m.time_in_market_pct(TRADES, H, 6 * H) == pytest.approx(60.0)
    assert m.exposure_pct(TRADES, H, 6 * H, 10_000.0) == pytest.approx(
        (1000 + 2000 + 1000) / 5 / 10_000 * 100
    )
    # (1000×2h + 2000×1h + 1000×3h) / 10h / 10000 × 100
    assert m.exposure_pct(TRADES, 0, 10 * H, 10_000.0) == pytest.approx(7.0)


def test_time_in_market_counts_from_the_window_start():
    """The equity curve's first point is the first exec close (01:00 for a 1h Play starting at
    00:00); a position held from 01:00 to the end of a 4h window is in the market 3h of 4."""
    held = [{**TRADES[0], "entry_time": H, "exit_time": 4 * H}]
    out = m.compute_metrics(
        held,
        np.arange(1, 5) * H,
        np.array([10_000.0, 10_010.0, 10_020.0, 10_030.0]),
        starting_equity=10_000.0,
        bars_per_year=8760,
        window=(0, 4 * H),
    )
    assert out["time_in_market_pct"] == 75.0
    assert out["exposure_pct"] == 1000 * 3 / 4 / 10_000 * 100


def test_liquidation_count():
    assert m.liquidation_count(TRADES) == 0
    assert m.liquidation_count([*TRADES, {**TRADES[0], "exit_reason": "liquidation"}]) == 1


def test_compute_metrics_summary():
    eq = np.array([10_000.0, 10_100.0, 10_050.0, 10_080.0])
    out = m.compute_metrics(
        TRADES,
        np.arange(4) * H,
        eq,
        starting_equity=10_000.0,
        bars_per_year=8760,
        window=(0, 3 * H),
        counters={"rejected_entries": 2, "ambiguous_exits": 1, "liquidations": 9},
    )
    assert out["trades"] == 3
    # the curve starts at the starting equity: 10000, 10000, 10100, 10050, 10080
    assert out["max_drawdown_abs"] == 50.0
    assert out["max_drawdown_pct"] == pytest.approx(50 / 10_100 * 100)
    assert out["max_drawdown_duration_bars"] == 2
    r = [0.0, 0.01, 10_050 / 10_100 - 1, 10_080 / 10_050 - 1]
    mean = sum(r) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 3)
    assert out["sharpe"] == pytest.approx(mean / sd * math.sqrt(8760))
    down = math.sqrt((10_050 / 10_100 - 1) ** 2 / 4)
    assert out["sortino"] == pytest.approx(mean / down * math.sqrt(8760))
    # 4 points at 8760 bars/year; drawdown 0.495…%
    annual = (1.008 ** (8760 / 4) - 1) * 100
    assert out["calmar"] == pytest.approx(annual / (50 / 10_100 * 100))
    assert out["profit_factor"] == pytest.approx(2.6) and out["payoff_ratio"] == pytest.approx(1.3)
    # window 0..3h: only the first trade [0, 2h) lies inside it (1000 notional)
    assert out["time_in_market_pct"] == pytest.approx(2 / 3 * 100)
    assert out["exposure_pct"] == pytest.approx(1000 * 2 / 3 / 10_000 * 100)
    # the counters come from the run; liquidations are counted from the trades
    assert (out["rejected_entries"], out["ambiguous_exits"], out["fallback_bars_1m"]) == (2, 1, 0)
    assert out["liquidations"] == 0
    assert out["final_equity"] == 10_080.0
    assert out["total_return_pct"] == pytest.approx(0.8)
    assert out["total_fees"] == 4.0 and out["total_funding"] == 0.5
    assert (out["long_trades"], out["short_trades"]) == (2, 1)
    assert out["long_pnl"] == 130.0 and out["short_pnl"] == -50.0
    assert out["avg_trade_hours"] == pytest.approx(2.0) and out["max_trade_hours"] == 3.0
    assert out["exit_reasons"] == {"signal": 1, "stop_loss": 1, "take_profit": 1}


def test_total_adds_in_order_as_python_sum_does():
    rng = np.random.default_rng(7)
    values = (rng.standard_normal(1000) * 10.0 ** rng.integers(-8, 8, 1000)).tolist()
    assert m.total(values) == sum(values)  # the same bits: one addition after another
    assert m.total([]) == 0 and isinstance(m.total([]), int)
    assert math.copysign(1.0, m.total([-0.0])) == 1.0  # as 0 + (−0.0)
