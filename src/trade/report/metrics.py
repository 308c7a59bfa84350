"""Backtest metrics (DESIGN §8) from the closed trades and the equity curve.

Each metric is a small function whose docstring states its formula, so a reader can check a number
by hand. Returns are per evaluation bar of the equity curve; annualisation uses `bars_per_year`.
Undefined values (no trades, zero variance, no losses) are None, never 0 or infinity in disguise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Trade = Mapping[str, Any]


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


def profit_factor(pnls: Sequence[float]) -> float | None:
    """Σ winning pnl / |Σ losing pnl| (None without losses)."""
    wins = sum(p for p in pnls if p > 0)
    losses = -sum(p for p in pnls if p < 0)
    return None if losses == 0 else wins / losses


def win_rate_pct(pnls: Sequence[float]) -> float | None:
    """Trades with pnl > 0 / trades × 100."""
    return None if not pnls else sum(1 for p in pnls if p > 0) / len(pnls) * 100.0


def expectancy(pnls: Sequence[float]) -> float | None:
    """Mean pnl per trade."""
    return None if not pnls else sum(pnls) / len(pnls)


def payoff_ratio(pnls: Sequence[float]) -> float | None:
    """Mean winning pnl / |mean losing pnl|."""
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    if not wins or not losses:
        return None
    return (sum(wins) / len(wins)) / abs(sum(losses) / len(losses))


def time_in_market_pct(trades: Sequence[Trade], start_ms: int, end_ms: int) -> float:
    """Union of the [entry_time, exit_time) intervals clipped to [start, end] / (end − start) × 100."""
    if end_ms <= start_ms:
        return 0.0
    spans = sorted(
        (max(int(t["entry_time"]), start_ms), min(int(t["exit_time"]), end_ms)) for t in trades
    )
    spans = [(s, e) for s, e in spans if e > s]
    covered, cur_s, cur_e = 0, None, None
    for s, e in spans:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                covered += cur_e - cur_s  # type: ignore[operator]
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        covered += cur_e - cur_s  # type: ignore[operator]
    return covered / (end_ms - start_ms) * 100.0


def exposure_pct(
    trades: Sequence[Trade], start_ms: int, end_ms: int, starting_equity: float
) -> float:
    """Σ notional × time held inside [start, end] / (end − start) / starting equity × 100: the
    time-weighted position size relative to the starting equity (leverage shows here)."""
    if end_ms <= start_ms:
        return 0.0
    weighted = sum(
        float(t["notional"])
        * max(0, min(int(t["exit_time"]), end_ms) - max(int(t["entry_time"]), start_ms))
        for t in trades
    )
    return weighted / (end_ms - start_ms) / starting_equity * 100.0


def liquidation_count(trades: Sequence[Trade]) -> int:
    """Trades whose exit_reason is `liquidation`."""
    return sum(1 for t in trades if t["exit_reason"] == "liquidation")


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
    trades: Sequence[Trade],
    equity_ts: np.ndarray,
    equity: np.ndarray,
    *,
    starting_equity: float,
    bars_per_year: float,
    window: tuple[int, int],
    counters: Mapping[str, int] | None = None,
    buy_hold_final: float | None = None,
    closes: Sequence[Trade] | None = None,
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
    pnls = [float(t["pnl"]) for t in trades]
    mdd_abs, mdd_pct = max_drawdown(np.concatenate([[starting_equity], equity]))
    rets = bar_returns(np.concatenate([[starting_equity], equity]))
    start_ms, end_ms = window
    durations = [(int(t["exit_time"]) - int(t["entry_time"])) / 3_600_000 for t in trades]
    longs = [t for t in trades if t["side"] == "long"]
    shorts = [t for t in trades if t["side"] == "short"]
    out: dict[str, Any] = {
        "trades": len(trades),
        "starting_equity": starting_equity,
        "final_equity": final,
        "total_return_pct": total_return_pct(starting_equity, final),
        "cagr_pct": cagr_pct(starting_equity, final, end_ms - start_ms),
        "buy_and_hold_return_pct": (
            None if buy_hold_final is None else total_return_pct(starting_equity, buy_hold_final)
        ),
        "max_drawdown_abs": mdd_abs,
        "max_drawdown_pct": mdd_pct,
        "max_drawdown_duration_bars": max_drawdown_duration_bars(
            np.concatenate([[starting_equity], equity])
        ),
        "sharpe": sharpe(rets, bars_per_year),
        "sortino": sortino(rets, bars_per_year),
        "calmar": calmar(starting_equity, final, len(equity), bars_per_year, mdd_pct),
        "profit_factor": profit_factor(pnls),
        "win_rate_pct": win_rate_pct(pnls),
        "expectancy": expectancy(pnls),
        "payoff_ratio": payoff_ratio(pnls),
        "avg_trade_hours": (sum(durations) / len(durations)) if durations else None,
        "max_trade_hours": max(durations) if durations else None,
        "long_trades": len(longs),
        "short_trades": len(shorts),
        "long_pnl": sum(float(t["pnl"]) for t in longs),
        "short_pnl": sum(float(t["pnl"]) for t in shorts),
        "long_win_rate_pct": win_rate_pct([float(t["pnl"]) for t in longs]),
        "short_win_rate_pct": win_rate_pct([float(t["pnl"]) for t in shorts]),
        "total_fees": sum(float(t["fees"]) for t in trades),
        "total_funding": sum(float(t["funding"]) for t in trades),
        "time_in_market_pct": time_in_market_pct(trades, start_ms, end_ms),
        "exposure_pct": exposure_pct(
            trades if closes is None else closes, start_ms, end_ms, starting_equity
        ),
        "exit_reasons": _count(t["exit_reason"] for t in trades),
        "monthly_returns_pct": monthly_returns_pct(equity_ts, equity, starting_equity),
        "liquidations": liquidation_count(trades),
    }
    out.update({k: int((counters or {}).get(k, 0)) for k in COUNTERS})
    return {k: (_round(v) if isinstance(v, float) else v) for k, v in out.items()}


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return dict(sorted(out.items()))


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
    the first month starts from the starting equity."""
    out: dict[str, float] = {}
    if len(equity_ts) == 0:
        return out
    months = np.asarray(equity_ts, dtype="datetime64[ms]").astype("datetime64[M]")
    last = np.flatnonzero(np.append(months[1:] != months[:-1], True))
    prev = starting_equity
    for i in last:
        end = float(equity[i])
        out[str(months[i])] = _round((end / prev - 1.0) * 100.0)  # type: ignore[assignment]
        prev = end
    return out
