"""Backtest metrics (DESIGN §8) from the closed trades and the equity curve.

Each metric is a small function whose docstring states its formula, so a reader can check a number
by hand. Returns are per evaluation bar of the equity curve; annualisation uses `bars_per_year`.
Undefined values (no trades, zero variance, no losses) are None, never 0 or infinity in disguise.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from .positions import Closes, Positions

Trade = Mapping[str, Any]


@dataclass(frozen=True)
class TradeColumns:
    """The trade fields the metrics read, one array per field (`side` +1 long, −1 short)."""

    side: np.ndarray
    entry_time: np.ndarray
    exit_time: np.ndarray
    notional: np.ndarray
    pnl: np.ndarray
    fees: np.ndarray
    funding: np.ndarray
    exit_reason: np.ndarray


Trades = Sequence[Trade] | Positions | Closes | TradeColumns


def columns(trades: Trades) -> TradeColumns:
    """Trades as columns: a position or close table's own arrays, or built from dicts."""
    if isinstance(trades, TradeColumns):
        return trades
    if isinstance(trades, Positions | Closes):
        f = trades.floats
        return TradeColumns(
            trades.side, trades.entry_time, trades.exit_time, f["notional"], f["pnl"],
            f["fees"], f["funding"], trades.exit_reason,
        )  # fmt: skip

    def col(key: str, dtype: Any) -> np.ndarray:
        return np.array([t[key] for t in trades], dtype=dtype).reshape(len(trades))

    return TradeColumns(
        np.array([1.0 if t["side"] == "long" else -1.0 for t in trades]),
        col("entry_time", np.int64), col("exit_time", np.int64), col("notional", np.float64),
        col("pnl", np.float64), col("fees", np.float64), col("funding", np.float64),
        col("exit_reason", object),
    )  # fmt: skip


def total_return_pct(start: float, final: float) -> float:
    """(final − start) / start × 100."""
    return (final - start) / start * 100.0


def max_drawdown(equity: np.ndarray) -> tuple[float, float]:
    """Largest peak-to-trough fall: (abs = max(peak − equity), pct = max((peak − equity) / peak × 100))."""
    if len(equity) == 0:
        return 0.0, 0.0
    peak = np.maximum.accumulate(equity)
    dd = peak - equity
    return float(dd.max()), float((dd / peak).max() * 100.0)


def max_drawdown_duration_bars(equity: np.ndarray) -> int:
    """Longest run of consecutive bars with equity below its running peak."""
    if len(equity) == 0:
        return 0
    under = np.concatenate([[0], (equity < np.maximum.accumulate(equity)).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(under))  # run starts and ends, alternating
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


def drawdowns(equity: np.ndarray) -> tuple[float, float, int]:
    """(`max_drawdown`'s abs and pct, `max_drawdown_duration_bars`): the same numbers in one
    jitted pass over a curve of positive values, else by those definitions."""
    c = np.ascontiguousarray(equity, dtype=np.float64)
    if len(c) == 0 or not bool((c > 0).all()):
        return (*max_drawdown(c), max_drawdown_duration_bars(c))
    dd_abs, dd_rel, longest = _curve_pass(c)[:3]
    return float(dd_abs), float(dd_rel * 100.0), int(longest)


def bar_returns(equity: np.ndarray) -> np.ndarray:
    """r_i = equity_i / equity_{i−1} − 1."""
    if len(equity) < 2:
        return np.empty(0)
    return equity[1:] / equity[:-1] - 1.0


def sharpe(returns: np.ndarray, bars_per_year: float) -> float | None:
    """mean(r) / std(r, ddof=1) × √bars_per_year (risk-free rate 0)."""
    if len(returns) < 2:
        return None
    sd = float(np.std(returns, ddof=1))
    return None if sd == 0 else float(np.mean(returns)) / sd * math.sqrt(bars_per_year)


def sortino(returns: np.ndarray, bars_per_year: float) -> float | None:
    """mean(r) / √(mean(min(r, 0)²)) × √bars_per_year (downside deviation over all bars)."""
    if len(returns) < 2:
        return None
    dd = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    return None if dd == 0 else float(np.mean(returns)) / dd * math.sqrt(bars_per_year)


def curve_measures(
    curve: np.ndarray, bars_per_year: float
) -> tuple[float, float, int, float | None, float | None]:
    """`drawdowns(curve)`, then `sharpe` and `sortino` of `bar_returns(curve)`, in two passes over
    a curve of positive values without the returns array or numpy's temporaries (a sweep
    computes them for every combination). The drawdowns are the same numbers; the return sums
    run in bar order where numpy's are pairwise, so the ratios' last bits may differ. A curve
    that reaches zero or below is measured by the definitions (its returns are not finite)."""
    c = np.ascontiguousarray(curve, dtype=np.float64)
    n = len(c) - 1
    if n < 2 or not bool((c > 0).all()):
        returns = bar_returns(c)
        return (*drawdowns(c), sharpe(returns, bars_per_year), sortino(returns, bars_per_year))
    dd_abs, dd_rel, longest, mean, m2, down2 = _curve_pass(c)
    sd, down = math.sqrt(m2 / (n - 1)), math.sqrt(down2 / n)
    root = math.sqrt(bars_per_year)
    return (
        float(dd_abs),
        float(dd_rel * 100.0),
        int(longest),
        None if sd == 0 or sd != sd else mean / sd * root,
        None if down == 0 or down != down else mean / down * root,
    )


@njit(cache=True)
def _curve_pass(curve: np.ndarray) -> tuple[float, float, int, float, float, float]:
    """Of a curve of positive values: the largest drawdown (absolute and as a fraction of its
    peak), the longest run of points below the running peak, and of r_i = curve_i / curve_(i−1)
    − 1 the mean, Σ(r − mean)² and Σ min(r, 0)²."""
    n = len(curve) - 1
    peak = curve[0]
    dd_abs = dd_rel = 0.0
    run = longest = 0
    total = down2 = 0.0
    for i in range(n + 1):
        x = curve[i]
        if x > peak:
            peak = x
        dd = peak - x
        if dd > dd_abs:
            dd_abs = dd
        if dd / peak > dd_rel:
            dd_rel = dd / peak
        run = run + 1 if x < peak else 0
        if run > longest:
            longest = run
        if i > 0:
            r = x / curve[i - 1] - 1.0
            total += r
            if r < 0.0:
                down2 += r * r
    mean = total / n if n > 0 else 0.0
    m2 = 0.0
    for i in range(n):
        d = (curve[i + 1] / curve[i] - 1.0) - mean
        m2 += d * d
    return dd_abs, dd_rel, longest, mean, m2, down2


def calmar(
    start: float, final: float, n_bars: int, bars_per_year: float, mdd_pct: float
) -> float | None:
    """Annualised return % / max drawdown %, annualised = ((final/start)^(bars_per_year/n) − 1) × 100."""
    if n_bars < 1 or mdd_pct == 0 or final <= 0:
        return None
    annual = _compound_pct(final / start, bars_per_year / n_bars)
    return None if annual is None else annual / mdd_pct


def cagr_pct(start: float, final: float, span_ms: int) -> float | None:
    """Compound annual growth: ((final / start)^(1 / years) − 1) × 100, years = span / 365.25 days
    (the run's window). None when undefined or beyond a float."""
    if span_ms <= 0 or final <= 0 or start <= 0:
        return None
    return _compound_pct(final / start, YEAR_MS / span_ms)


def _compound_pct(growth: float, periods: float) -> float | None:
    """(growth^periods − 1) × 100; None beyond a float (a short run's gain compounded to a year)."""
    try:
        return (growth**periods - 1.0) * 100.0
    except OverflowError:
        return None


YEAR_MS = 365.25 * 86_400_000


def total(values: Sequence[float] | np.ndarray) -> float:
    """Σ values added one by one in order, in one numpy call (numpy's own sum is pairwise, with
    other last bits than this module's sums always had); 0 (an int, as `sum`) when empty."""
    x = np.asarray(values, dtype=np.float64)
    return float(np.add.accumulate(x)[-1]) + 0.0 if len(x) else 0


def profit_factor(pnls: Sequence[float] | np.ndarray) -> float | None:
    """Σ winning pnl / |Σ losing pnl| (None without losses)."""
    p = np.asarray(pnls, dtype=np.float64)
    wins = total(p[p > 0])
    losses = -total(p[p < 0])
    return None if losses == 0 else wins / losses


def win_rate_pct(pnls: Sequence[float] | np.ndarray) -> float | None:
    """Trades with pnl > 0 / trades × 100."""
    p = np.asarray(pnls, dtype=np.float64)
    return None if not len(p) else int(np.count_nonzero(p > 0)) / len(p) * 100.0


def expectancy(pnls: Sequence[float] | np.ndarray) -> float | None:
    """Mean pnl per trade."""
    return None if not len(pnls) else total(pnls) / len(pnls)


def payoff_ratio(pnls: Sequence[float] | np.ndarray) -> float | None:
    """Mean winning pnl / |mean losing pnl|."""
    p = np.asarray(pnls, dtype=np.float64)
    wins, losses = p[p > 0], p[p < 0]
    if not len(wins) or not len(losses):
        return None
    return (total(wins) / len(wins)) / abs(total(losses) / len(losses))


def time_in_market_pct(trades: Trades, start_ms: int, end_ms: int) -> float:
    """Union of the [entry_time, exit_time) intervals clipped to [start, end] / (end − start) × 100."""
    if end_ms <= start_ms:
        return 0.0
    t = columns(trades)
    s = np.maximum(t.entry_time, start_ms)
    e = np.minimum(t.exit_time, end_ms)
    keep = e > s
    s, e = s[keep], e[keep]
    order = np.lexsort((e, s))
    s, e = s[order], e[order]
    if len(s) == 0:
        return 0.0
    reach = np.maximum.accumulate(e)  # the union so far ends here
    new = np.ones(len(s), dtype=bool)
    new[1:] = s[1:] > reach[:-1]  # a gap: a new run of overlapping intervals starts
    first = np.flatnonzero(new)
    ends = reach[np.append(first[1:], len(s)) - 1]
    covered = int((ends - s[first]).sum())
    return covered / (end_ms - start_ms) * 100.0


def exposure_pct(trades: Trades, start_ms: int, end_ms: int, starting_equity: float) -> float:
    """Σ notional × time held inside [start, end] / (end − start) / starting equity × 100: the
    time-weighted position size relative to the starting equity (leverage shows here)."""
    if end_ms <= start_ms:
        return 0.0
    t = columns(trades)
    held = np.maximum(0, np.minimum(t.exit_time, end_ms) - np.maximum(t.entry_time, start_ms))
    weighted = total(t.notional * held.astype(np.float64))
    return weighted / (end_ms - start_ms) / starting_equity * 100.0


def liquidation_count(trades: Trades) -> int:
    """Trades whose exit_reason is `liquidation`."""
    return int(np.count_nonzero(columns(trades).exit_reason == "liquidation"))


#: Run counters copied into the metrics (0 when the caller has none).
COUNTERS = ("rejected_entries", "ambiguous_exits", "fallback_bars_1m")

#: The metrics a sweep may rank combinations by (numbers; None ranks last), and those where lower
#: is better. A test checks every name against a backtest's `metrics`.
OBJECTIVES = (
    "sharpe",
    "sortino",
    "calmar",
    "total_return_pct",
    "cagr_pct",
    "final_equity",
    "profit_factor",
    "win_rate_pct",
    "expectancy",
    "payoff_ratio",
    "max_drawdown_pct",
    "max_drawdown_abs",
    "max_drawdown_duration_bars",
    "trades",
    "long_pnl",
    "short_pnl",
    "total_fees",
    "exposure_pct",
    "time_in_market_pct",
)
MINIMISED = frozenset(
    {"max_drawdown_pct", "max_drawdown_abs", "max_drawdown_duration_bars", "total_fees"}
)


def compute_metrics(
    trades: Trades,
    equity_ts: np.ndarray,
    equity: np.ndarray,
    *,
    starting_equity: float,
    bars_per_year: float,
    window: tuple[int, int],
    counters: Mapping[str, int] | None = None,
    buy_hold_final: float | None = None,
    closes: Trades | None = None,
) -> dict[str, Any]:
    """Every DESIGN §8 metric, rounded for reading (raw trades and equity are in the CSVs).

    `trades` carry the trades.csv fields (times in ms); `equity` is the curve at `equity_ts` (one
    point per exec bar, the last after any end-of-data close); returns and drawdowns start from
    `starting_equity`. `window` is the run's [start, end) in ms: time in market and exposure are
    shares of all of it, so a position held from the first exec close on is not counted as the
    whole window. `counters` (rejected_entries, ambiguous_exits, fallback_bars_1m) come from
    the simulator and the data layer. `buy_hold_final` is the buy-and-hold equity at the end
    (`buy_and_hold_curve`), for the benchmark return of the same window. `closes` are the close
    records behind position-level `trades` (one per exit fill): exposure weights each part of a
    partially closed position by the time it was held.
    """
    equity = np.asarray(equity, dtype=float)
    final = float(equity[-1]) if len(equity) else starting_equity
    t = columns(trades)
    pnls = np.asarray(t.pnl, dtype=np.float64)
    curve = np.concatenate([[starting_equity], equity])
    mdd_abs, mdd_pct, mdd_bars, sharpe_ratio, sortino_ratio = curve_measures(curve, bars_per_year)
    start_ms, end_ms = window
    durations = (t.exit_time - t.entry_time) / 3_600_000
    long = t.side > 0
    long_pnls, short_pnls = pnls[long], pnls[~long]
    out: dict[str, Any] = {
        "trades": len(pnls),
        "starting_equity": starting_equity,
        "final_equity": final,
        "total_return_pct": total_return_pct(starting_equity, final),
        "cagr_pct": cagr_pct(starting_equity, final, end_ms - start_ms),
        "buy_and_hold_return_pct": (
            None if buy_hold_final is None else total_return_pct(starting_equity, buy_hold_final)
        ),
        "max_drawdown_abs": mdd_abs,
        "max_drawdown_pct": mdd_pct,
        "max_drawdown_duration_bars": mdd_bars,
        "sharpe": sharpe_ratio,
        "sortino": sortino_ratio,
        "calmar": calmar(starting_equity, final, len(equity), bars_per_year, mdd_pct),
        "profit_factor": profit_factor(pnls),
        "win_rate_pct": win_rate_pct(pnls),
        "expectancy": expectancy(pnls),
        "payoff_ratio": payoff_ratio(pnls),
        "avg_trade_hours": (total(durations) / len(durations)) if len(durations) else None,
        "max_trade_hours": float(durations.max()) if len(durations) else None,
        "long_trades": len(long_pnls),
        "short_trades": len(short_pnls),
        "long_pnl": total(long_pnls),
        "short_pnl": total(short_pnls),
        "long_win_rate_pct": win_rate_pct(long_pnls),
        "short_win_rate_pct": win_rate_pct(short_pnls),
        "total_fees": total(t.fees),
        "total_funding": total(t.funding),
        "time_in_market_pct": time_in_market_pct(t, start_ms, end_ms),
        "exposure_pct": exposure_pct(
            t if closes is None else closes, start_ms, end_ms, starting_equity
        ),
        "exit_reasons": _count(t.exit_reason.tolist()),
        "monthly_returns_pct": monthly_returns_pct(equity_ts, equity, starting_equity),
        "liquidations": liquidation_count(t),
    }
    out.update({k: int((counters or {}).get(k, 0)) for k in COUNTERS})
    return {k: (_round(v) if isinstance(v, float) else v) for k, v in out.items()}


def _count(items: Any) -> dict[str, int]:
    return dict(sorted(Counter(items).items()))


def _round(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 10)


def buy_and_hold_curve(
    equity_ts: np.ndarray, bar_close_ts: np.ndarray, close: np.ndarray, starting_equity: float
) -> np.ndarray:
    """Equity of holding the asset unlevered over the same window, fees aside:
    starting_equity × close(t) / close(t₀), where close(t) is the last exec close at or before t
    and t₀ the first equity instant."""
    if len(equity_ts) == 0 or len(close) == 0:
        return np.empty(0)
    idx = np.searchsorted(bar_close_ts, equity_ts, side="right") - 1
    px = np.where(idx >= 0, close[np.maximum(idx, 0)], np.nan)
    base = px[0] if px[0] == px[0] else close[0]
    return starting_equity * px / base


def monthly_returns_pct(
    equity_ts: np.ndarray, equity: np.ndarray, starting_equity: float
) -> dict[str, float]:
    """Per calendar month (UTC, `YYYY-MM`): (last equity of the month / last equity before it − 1) × 100;
    the first month starts from the starting equity. `equity_ts` is sorted (a curve's times)."""
    out: dict[str, float] = {}
    if len(equity_ts) == 0:
        return out
    ts = np.asarray(equity_ts, dtype=np.int64)
    first, final = ts[[0, -1]].astype("datetime64[ms]").astype("datetime64[M]")
    months = np.arange(first, final + 1)  # every month the (sorted) curve spans
    ends = np.searchsorted(ts, (months + 1).astype("datetime64[ms]").astype(np.int64), "left")
    starts = np.append(0, ends[:-1])
    prev = starting_equity
    names = np.datetime_as_string(months).tolist()
    for name, a, b in zip(names, starts.tolist(), ends.tolist(), strict=True):
        if b > a:  # the month's last point
            end = float(equity[b - 1])
            out[name] = _round((end / prev - 1.0) * 100.0)  # type: ignore[assignment]
            prev = end
    return out
