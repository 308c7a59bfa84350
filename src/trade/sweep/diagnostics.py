"""How likely a sweep's winner is overfit: the deflated Sharpe ratio, the probability of backtest
overfitting by combinatorially symmetric cross-validation, and the winner's neighbourhood stability.

Pure functions of numbers (per-bar returns, objectives); nothing here runs a backtest. Sharpe
ratios here are per bar (not annualised), as both papers define them. A run's part (`CurveStats`:
its Sharpe, skewness, kurtosis and per-block sums) is computed where the run ran, so a sweep
ships a few numbers per combination instead of its equity curve.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numba import njit

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()
DSR_SIGNIFICANT = 0.95  # below: the winner's Sharpe is not significant given the trials
PBO_OVERFIT = 0.5  # above: the in-sample winner is more often below the median out of sample


def expected_max_sharpe(trials: int, variance: float) -> float:
    """SR0: the expected maximum Sharpe of `trials` independent zero-skill trials whose Sharpe
    ratios vary with `variance` (Bailey & López de Prado 2014, eq. 2 with the false-discovery
    approximation): √V · ((1 − γ) Z⁻¹[1 − 1/N] + γ Z⁻¹[1 − 1/(N e)])."""
    if trials < 2 or variance <= 0:
        return 0.0
    z1 = _N.inv_cdf(1.0 - 1.0 / trials)
    z2 = _N.inv_cdf(1.0 - 1.0 / (trials * math.e))
    return math.sqrt(variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def deflated_sharpe(
    sharpe: float, trials: int, variance: float, observations: int, skew: float, kurtosis: float
) -> float | None:
    """DSR = Φ((SR − SR0) √(T − 1) / √(1 − γ3 SR + (γ4 − 1)/4 SR²)): the probability that the
    selected Sharpe (per bar) beats the best of `trials` zero-skill trials (kurtosis: 3 = normal).
    None when undefined (fewer than 2 observations, or a non-positive denominator)."""
    if observations < 2:
        return None
    sr0 = expected_max_sharpe(trials, variance)
    denom = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if denom <= 0:
        return None
    return _N.cdf((sharpe - sr0) * math.sqrt(observations - 1) / math.sqrt(denom))


def cscv_blocks(bars: int, blocks: int = 16) -> int:
    """The number of CSCV blocks for `bars` bars: `blocks`, shrunk (to an even number ≥ 2) until
    each half holds at least `blocks` bars."""
    while blocks > 2 and bars < 2 * blocks:
        blocks -= 2
    return blocks


def block_sums(returns: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Σr and Σr² over each of `blocks` contiguous blocks of the rows of `returns` (T × N), and
    each block's number of bars."""
    m = np.asarray(returns, dtype=np.float64)
    edges = np.linspace(0, len(m), blocks + 1).astype(int)
    return (
        np.add.reduceat(m, edges[:-1], axis=0),
        np.add.reduceat(m * m, edges[:-1], axis=0),
        np.diff(edges).astype(np.float64),
    )


def cscv(returns: np.ndarray, blocks: int = 16) -> tuple[float, np.ndarray]:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation (Bailey,
    Borwein, López de Prado & Zhu 2015). `returns` is T × N (bars × trials). The rows are cut into
    `blocks` (even) contiguous blocks; for every choice of half of them as in-sample, the trial
    with the best in-sample Sharpe is ranked among all trials out of sample (the other half):
    ω = rank / (N + 1), λ = ln(ω / (1 − ω)). PBO is the share of splits with λ ≤ 0 (the in-sample
    winner at or below the out-of-sample median). Returns (PBO, every λ)."""
    m = np.asarray(returns, dtype=np.float64)
    t, n = m.shape
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be even and at least 2, got {blocks}")
    if n < 2 or t < 2 * blocks:
        raise ValueError(f"need at least 2 trials and {2 * blocks} bars, got {n} and {t}")
    return cscv_of_sums(*block_sums(m, blocks))


def cscv_of_sums(s: np.ndarray, q: np.ndarray, cnt: np.ndarray) -> tuple[float, np.ndarray]:
    """`cscv` from each block's Σr and Σr² (blocks × N) and bar counts (see `block_sums`)."""
    blocks, n = s.shape
    halves = np.array(list(itertools.combinations(range(blocks), blocks // 2)))
    splits = np.zeros((len(halves), blocks), dtype=bool)  # per split, its in-sample blocks
    np.put_along_axis(splits, halves, True, axis=1)

    def sharpe_of(mask: np.ndarray) -> np.ndarray:
        w = mask.astype(np.float64)  # a float product is BLAS's; a boolean one took seconds
        out = np.empty((len(w), n))
        _sharpes(w @ s, w @ q, w @ cnt, out)  # splits × N, from the sums over the blocks
        return out

    def rank_of(is_sr: np.ndarray, oos_sr: np.ndarray) -> np.ndarray:
        out = np.empty(len(is_sr))
        _ranks(is_sr, oos_sr, out)
        return out

    # The splits in lexicographic order pair up: split k's out-of-sample half is split
    # (S − 1 − k)'s in-sample half, so the first half of the splits gives every Sharpe needed.
    # A few dozen splits at a time: 12,870 splits × 400 trials would make every step a fresh
    # 40 MB array, whose page faults cost seconds; arrays of 16k values are reused memory.
    total = len(splits)
    rank = np.empty(total)
    step = max(1, 2**14 // max(n, 1))
    for a in range(0, total // 2, step):
        b = min(a + step, total // 2)
        part = splits[a:b]
        is_sr, oos_sr = sharpe_of(part), sharpe_of(~part)
        rank[a:b] = rank_of(is_sr, oos_sr)
        rank[total - b : total - a] = rank_of(oos_sr, is_sr)[::-1]
    omega = rank / (n + 1.0)
    logits = np.log(omega / (1.0 - omega))
    return float(np.mean(logits <= 0)), logits


@njit(cache=True)
def _sharpes(sm: np.ndarray, sq: np.ndarray, c: np.ndarray, out: np.ndarray) -> None:
    """Per split (row) and trial: mean / standard deviation (ddof 1) of the returns whose sum,
    sum of squares and count are given; 0 where the deviation is (nearly) 0 or not a number."""
    for i in range(sm.shape[0]):
        ci = c[i]
        for j in range(sm.shape[1]):
            mean = sm[i, j] / ci
            var = (sq[i, j] - ci * (mean * mean)) / (ci - 1.0)
            if var < 0.0:
                var = 0.0
            sd = math.sqrt(var)
            out[i, j] = mean / sd if sd > 1e-15 else 0.0


@njit(cache=True)
def _ranks(is_sr: np.ndarray, oos_sr: np.ndarray, out: np.ndarray) -> None:
    """Per split: the out-of-sample rank (1..N, ties at their mean rank) of the trial best in
    sample (the first of equals, as `np.argmax`)."""
    for i in range(is_sr.shape[0]):
        best = 0
        for j in range(is_sr.shape[1]):
            if is_sr[i, j] != is_sr[i, j]:  # np.argmax: the first NaN, if any
                best = j
                break
            if is_sr[i, j] > is_sr[i, best]:
                best = j
        chosen = oos_sr[i, best]
        below = ties = 0
        for j in range(oos_sr.shape[1]):
            x = oos_sr[i, j]
            if x < chosen:
                below += 1
            elif x == chosen:
                ties += 1
        out[i] = below + (ties + 1) / 2.0


def neighbourhood(
    winner: Mapping[str, Any],
    space: Mapping[str, Sequence[Any]],
    objective_of: Mapping[tuple[Any, ...], float | None],
    minimise: bool = False,
) -> dict[str, Any]:
    """The objective one step away from the winner in each parameter (others fixed), and a score:
    1 − mean fall to the neighbours / (best − worst objective of the sweep), clipped to [0, 1].
    1: the neighbours do as well (a plateau); 0: they do as badly as the worst combination.
    `objective_of` maps each combination (values in `space` order) to its objective."""
    names = list(space)
    sign = -1.0 if minimise else 1.0
    known = [v for v in objective_of.values() if v is not None]
    key = tuple(winner[n] for n in names)
    best = objective_of.get(key)
    per: dict[str, Any] = {}
    falls: list[float] = []
    for i, name in enumerate(names):
        vals = list(space[name])
        k = vals.index(winner[name])
        near = {}
        for step, label in ((-1, "below"), (1, "above")):
            if 0 <= k + step < len(vals):
                nk = list(key)
                nk[i] = vals[k + step]
                obj = objective_of.get(tuple(nk))
                near[label] = {"value": vals[k + step], "objective": obj}
                if obj is not None and best is not None:
                    falls.append(sign * (best - obj))
        per[name] = near
    spread = (max(known) - min(known)) if known else 0.0
    if not falls or best is None:
        score = None
    elif spread == 0:
        score = 1.0
    else:
        score = float(min(1.0, max(0.0, 1.0 - float(np.mean(falls)) / spread)))
    return {"score": score, "neighbours": per}


@dataclass(frozen=True)
class CurveStats:
    """What the diagnostics read of one run's equity curve: the number of bars, the per-bar
    Sharpe, skewness and kurtosis of its returns, Σr and Σr² per CSCV block (`cscv_blocks`)."""

    bars: int
    sharpe: float
    skew: float
    kurtosis: float
    sums: tuple[float, ...]
    squares: tuple[float, ...]

    @classmethod
    def of(cls, equity: np.ndarray, starting_equity: float, blocks: int = 16) -> CurveStats:
        """From the curve's returns r_i = e_i / e_(i−1) − 1 (e_0 the starting equity, as the
        metrics): the Sharpe is mean / standard deviation (ddof 1), 0 for a flat curve; skewness
        and kurtosis are the population moments of the standardised returns (0 and 3 for a flat
        curve); in two passes over the bars. A bankrupt curve (a point at or below zero) loses
        everything at its first such point, return −1, and is flat after it, returns 0: a ruined
        account has nothing left to gain or lose, and its numbers stay finite."""
        e = np.ascontiguousarray(equity, dtype=np.float64)
        edges = np.linspace(0, len(e), cscv_blocks(len(e), blocks) + 1).astype(np.int64)
        if bool((e > 0).all()):
            sharpe, skew, kurt, s, q = _curve_stats(e, float(starting_equity), edges)
        else:
            sharpe, skew, kurt, s, q = _ruined_stats(e, float(starting_equity), edges)
        return cls(len(e), sharpe, skew, kurt, tuple(s.tolist()), tuple(q.tolist()))

    def to_array(self) -> np.ndarray:
        """One float vector (a sweep keeps it per row, for resume)."""
        head = [self.bars, self.sharpe, self.skew, self.kurtosis, len(self.sums)]
        return np.array([*head, *self.sums, *self.squares], dtype=np.float64)

    @classmethod
    def from_array(cls, a: np.ndarray) -> CurveStats:
        v = np.asarray(a, dtype=np.float64).tolist()
        if len(v) < 5 or len(v) != 5 + 2 * int(v[4]):
            raise ValueError("not a CurveStats vector")
        k = int(v[4])
        return cls(int(v[0]), v[1], v[2], v[3], tuple(v[5 : 5 + k]), tuple(v[5 + k :]))


def diagnose(
    curves: np.ndarray, winner: int, starting_equity: float, blocks: int = 16
) -> dict[str, Any]:
    """DSR of the winner's Sharpe given all trials, and PBO, from the trials' equity curves
    (N × T, same bars). `blocks` shrinks (to an even number ≥ 2) when there are few bars."""
    return diagnose_stats([CurveStats.of(c, starting_equity, blocks) for c in curves], winner)


def diagnose_stats(stats: Sequence[CurveStats], winner: int) -> dict[str, Any]:
    """`diagnose` from each trial's `CurveStats` (trials over the same bars)."""
    n = len(stats)
    t = stats[winner].bars
    srs = np.array([x.sharpe for x in stats])
    skew, kurt = stats[winner].skew, stats[winner].kurtosis
    variance = float(np.var(srs, ddof=1)) if n > 1 else 0.0
    dsr = deflated_sharpe(float(srs[winner]), n, variance, t, skew, kurt)
    blocks = len(stats[winner].sums)
    pbo = None
    if n >= 2 and t >= 2 * blocks:
        s = np.array([x.sums for x in stats]).T  # blocks × N
        q = np.array([x.squares for x in stats]).T
        cnt = np.diff(np.linspace(0, t, blocks + 1).astype(int)).astype(np.float64)
        pbo, _ = cscv_of_sums(s, q, cnt)
    flagged = (dsr is not None and dsr < DSR_SIGNIFICANT) or (pbo is not None and pbo > PBO_OVERFIT)
    return {
        "trials": n,
        "bars": t,
        "sharpe_per_bar": float(srs[winner]),
        "expected_max_sharpe_per_bar": expected_max_sharpe(n, variance),
        "sharpe_variance": variance,
        "skew": skew,
        "kurtosis": kurt,
        "deflated_sharpe": dsr,
        "pbo": pbo,
        "cscv_blocks": blocks,
        "likely_overfit": bool(flagged),
    }


def _ruined_stats(
    equity: np.ndarray, start: float, edges: np.ndarray
) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    """`_curve_stats` of a curve with a point at or below zero, by the definitions (a bankrupt
    run is rare; `_curve_stats` would divide by its zero point)."""
    ruin = int(np.argmax(equity <= 0.0))
    r = np.zeros(len(equity))
    prev = np.concatenate(([start], equity[:-1]))
    r[:ruin] = equity[:ruin] / prev[:ruin] - 1.0
    r[ruin] = -1.0
    s = np.array([r[a:b].sum() for a, b in itertools.pairwise(edges)])
    q = np.array([(r[a:b] ** 2).sum() for a, b in itertools.pairwise(edges)])
    n = len(r)
    d = r - r.mean()
    sd0 = math.sqrt(float(np.mean(d**2)))
    if n < 2 or sd0 == 0.0:
        return 0.0, 0.0, 3.0, s, q
    sd1 = float(np.std(r, ddof=1))
    return (
        float(r.mean() / sd1),
        float(np.mean(d**3) / sd0**3),
        float(np.mean(d**4) / sd0**4),
        s,
        q,
    )


@njit(cache=True)
def _curve_stats(
    equity: np.ndarray, start: float, edges: np.ndarray
) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    n = len(equity)
    r = np.empty(n)
    prev, total = start, 0.0
    blocks = len(edges) - 1
    s, q = np.zeros(blocks), np.zeros(blocks)
    for b in range(blocks):  # the returns, their total and each block's sums in one pass
        sb = qb = 0.0
        for i in range(edges[b], edges[b + 1]):
            x = equity[i] / prev - 1.0
            r[i] = x
            prev = equity[i]
            total += x
            sb += x
            qb += x * x
        s[b], q[b] = sb, qb
    if n < 2:
        return 0.0, 0.0, 3.0, s, q
    mean = total / n
    m2 = m3 = m4 = 0.0  # the central moments' sums in one pass
    for i in range(n):
        d = r[i] - mean
        d2 = d * d
        m2 += d2
        m3 += d2 * d
        m4 += d2 * d2
    sd1, sd0 = math.sqrt(m2 / (n - 1)), math.sqrt(m2 / n)
    if sd0 == 0.0:
        return 0.0, 0.0, 3.0, s, q
    return mean / sd1, m3 / n / sd0**3, m4 / n / sd0**4, s, q
