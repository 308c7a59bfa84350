"""Overfitting diagnostics against a published example, hand-computed cases and pure noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trade.sweep.diagnostics import (
    DSR_SIGNIFICANT,
    CurveStats,
    cscv,
    deflated_sharpe,
    diagnose,
    diagnose_stats,
    expected_max_sharpe,
    neighbourhood,
)


def test_deflated_sharpe_matches_the_papers_numerical_example() -> None:
    """Bailey & López de Prado, "The Deflated Sharpe Ratio: Correcting for Selection Bias,
    Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5), 2014, section
    "A numerical example": 100 trials, the best with an annualised Sharpe of 2.5 over 5 years of
    daily returns (T = 1250), annualised variance of the trials' Sharpe 0.5, skewness −3,
    kurtosis 10 (250 days a year). The paper gives SR0 = 0.1132 and DSR = 0.9004."""
    sr, variance = 2.5 / math.sqrt(250), 0.5 / 250
    assert expected_max_sharpe(100, variance) == pytest.approx(0.1132, abs=5e-5)
    assert deflated_sharpe(sr, 100, variance, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=5e-5)


def test_deflated_sharpe_of_one_trial_is_the_probabilistic_sharpe() -> None:
    # one trial: SR0 = 0, DSR = Φ(SR √(T−1) / √(1 − γ3 SR + (γ4−1)/4 SR²)); normal returns:
    # SR 0.1, T 101 → Φ(0.1 × 10 / √(1 + 0.005)) = Φ(0.997509…) = 0.840740…
    assert deflated_sharpe(0.1, 1, 0.0, 101, 0.0, 3.0) == pytest.approx(0.8407405, abs=1e-6)


def test_cscv_hand_computed_anti_persistent_pair() -> None:
    """Two strategies, two blocks: each wins the block the other loses. Whichever block is in
    sample, its winner is last of 2 out of sample: ω = 1/3, λ = ln(1/2), PBO = 1."""
    a = [0.02, 0.01, -0.01, -0.02]
    b = [-0.01, -0.02, 0.02, 0.01]
    pbo, logits = cscv(np.array([a, b]).T, blocks=2)
    assert pbo == 1.0
    assert logits.tolist() == pytest.approx([math.log(0.5), math.log(0.5)])


def test_cscv_a_strategy_better_everywhere_is_not_overfit() -> None:
    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 0.01, size=(640, 9))
    edge = rng.normal(0.0, 0.01, size=640) + 0.02  # mean far above its noise in every block
    pbo, logits = cscv(np.column_stack([noise, edge]), blocks=16)
    assert len(logits) == math.comb(16, 8)
    assert pbo == 0.0
    assert np.allclose(logits, math.log(10))  # first of 10 out of sample: ω = 10/11


def test_pure_noise_strategies_are_flagged_overfit() -> None:
    rng = np.random.default_rng(2015)
    rets = rng.normal(0.0, 0.01, size=(100, 1500))  # 100 zero-skill trials
    curves = 10_000 * np.cumprod(1 + rets, axis=1)
    srs = rets.mean(axis=1) / rets.std(axis=1, ddof=1)
    d = diagnose(curves, int(np.argmax(srs)), 10_000)
    assert d["trials"] == 100 and d["bars"] == 1500
    # the best of 100 noises is no better than the best of 100 lucky draws: not significant
    assert d["sharpe_per_bar"] > d["expected_max_sharpe_per_bar"] * 0.8
    assert d["deflated_sharpe"] < DSR_SIGNIFICANT
    assert 0.2 < d["pbo"] < 0.8  # the in-sample best is a coin toss out of sample
    assert d["likely_overfit"] is True


def test_neighbourhood_stability_by_hand() -> None:
    space = {"a": [1, 2, 3], "b": [10, 20]}
    obj = {(1, 10): 1.0, (2, 10): 3.0, (3, 10): 2.0, (1, 20): 0.0, (2, 20): 2.5, (3, 20): 1.5}
    got = neighbourhood({"a": 2, "b": 10}, space, obj)
    # falls to the neighbours: a=1 → 2.0, a=3 → 1.0, b=20 → 0.5; mean 7/6; spread 3.0 − 0.0
    assert got["score"] == pytest.approx(1 - (7 / 6) / 3.0)
    assert got["neighbours"]["a"]["below"] == {"value": 1, "objective": 1.0}
    assert got["neighbours"]["b"] == {"above": {"value": 20, "objective": 2.5}}
    # minimised objective: the winner is the lowest, falls are rises
    low = neighbourhood({"a": 1, "b": 20}, space, obj, minimise=True)
    assert low["score"] == pytest.approx(1 - ((2.5 - 0.0) + (1.0 - 0.0)) / 2 / 3.0)


def test_curve_stats_are_the_returns_moments_and_block_sums() -> None:
    """What a worker sends back of a curve: by their numpy definitions, on the returns from the
    starting equity (the first bar's return included)."""
    rng = np.random.default_rng(8)
    equity = 10_000 * np.cumprod(1 + rng.normal(0.0002, 0.01, 997))
    st = CurveStats.of(equity, 9_950.0)
    e = np.concatenate([[9_950.0], equity])
    r = e[1:] / e[:-1] - 1.0
    z = (r - r.mean()) / r.std()
    assert st.bars == 997
    assert st.sharpe == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-9)
    assert st.skew == pytest.approx(np.mean(z**3), rel=1e-9)
    assert st.kurtosis == pytest.approx(np.mean(z**4), rel=1e-9)
    edges = np.linspace(0, 997, 17).astype(int)
    assert len(st.sums) == 16
    assert np.allclose(st.sums, np.add.reduceat(r, edges[:-1]), rtol=1e-12, atol=0)
    assert np.allclose(st.squares, np.add.reduceat(r * r, edges[:-1]), rtol=1e-12, atol=0)
    assert CurveStats.from_array(st.to_array()) == st
    flat = CurveStats.of(np.full(40, 9_950.0), 9_950.0)
    assert (flat.sharpe, flat.skew, flat.kurtosis, len(flat.sums)) == (0.0, 0.0, 3.0, 16)
    assert len(CurveStats.of(np.full(20, 1.0), 1.0).sums) == 10  # 2 × blocks ≤ bars


def test_a_bankrupt_curve_loses_everything_once_then_stays_flat() -> None:
    """A curve that reaches zero (or goes below it) has the return −1 at that point and 0 after:
    finite numbers, so the diagnostics of a sweep holding a ruined run stay defined."""
    rng = np.random.default_rng(3)
    alive = 10_000 * np.cumprod(1 + rng.normal(0.0, 0.02, 40))
    to_zero = CurveStats.of(np.concatenate([alive, np.zeros(24)]), 10_000.0)
    below = CurveStats.of(np.concatenate([alive, [-734.2, -734.2], np.full(22, -700.0)]), 10_000.0)
    assert to_zero == below
    e = np.concatenate([[10_000.0], alive])
    r = np.concatenate([e[1:] / e[:-1] - 1.0, [-1.0], np.zeros(23)])
    z = (r - r.mean()) / r.std()
    assert to_zero.bars == 64
    assert to_zero.sharpe == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-12)
    assert to_zero.skew == pytest.approx(np.mean(z**3), rel=1e-12)
    assert to_zero.kurtosis == pytest.approx(np.mean(z**4), rel=1e-12)
    edges = np.arange(0, 64, 4)  # 16 blocks of 4 bars
    assert np.allclose(to_zero.sums, np.add.reduceat(r, edges), rtol=1e-12, atol=0)
    assert np.allclose(to_zero.squares, np.add.reduceat(r * r, edges), rtol=1e-12, atol=0)
    assert to_zero.sums[10:] == (-1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    healthy = [CurveStats.of(10_000 * np.cumprod(1 + rng.normal(0, 0.02, 64)), 10_000.0)
               for _ in range(3)]  # fmt: skip
    for winner in range(4):
        d = diagnose_stats([to_zero, *healthy], winner)
        numbers = [v for v in d.values() if isinstance(v, float)]
        assert d["pbo"] is not None and all(math.isfinite(v) for v in numbers), d
