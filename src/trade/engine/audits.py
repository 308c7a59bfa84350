"""Audits that make a backtest believable: look-ahead, warmup convergence, determinism, parity.

Each returns a plain report (lists of findings) that the CLI prints; none of them changes the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from ..data.bars import Bars
from ..play.compile import CompiledPlay
from ..play.evaluate import evaluate_vectorised
from .market import MarketWindow
from .runner import ArraySource, evaluation_instants


@dataclass
class Finding:
    instant: int
    what: str  # series id or "case <block>#<k>"
    full: float
    truncated: float


@dataclass
class LookaheadReport:
    checked_instants: int
    checked_values: int
    findings: list[Finding] = field(default_factory=list)


def truncate_window(window: MarketWindow, t: int) -> MarketWindow:
    """The window as it was at instant `t`: only bars that had closed by `t` exist."""
    bars = {tf: _cut(b, t) for tf, b in window.bars.items()}
    ib = window.intrabar
    keep = ib.ts_close <= t
    intrabar = replace(
        ib,
        ts_open=ib.ts_open[keep],
        ts_close=ib.ts_close[keep],
        open=ib.open[keep],
        high=ib.high[keep],
        low=ib.low[keep],
        close=ib.close[keep],
    )
    mark = _cut(window.mark, t) if window.mark is not None else None
    fk = window.funding_ts <= t
    return replace(
        window,
        bars=bars,
        intrabar=intrabar,
        mark=mark,
        funding_ts=window.funding_ts[fk],
        funding_rate=window.funding_rate[fk],
        end_ms=min(window.end_ms, t),
    )


def _cut(b: Bars, t: int) -> Bars:
    return b.slice(0, int(np.searchsorted(b.ts + b.tf_ms, t, side="right")))


def audit_lookahead(
    compiled: CompiledPlay, window: MarketWindow, samples: int = 12, seed: int = 0
) -> LookaheadReport:
    """Recompute every series and case truth with the data cut at sampled instants; any difference
    from the full-data value at that instant means something read the future."""
    instants = evaluation_instants(compiled, window)
    n = len(instants)
    full = ArraySource(compiled, window, instants)
    full_truth = _truths(compiled, full, n)
    rng = np.random.default_rng(seed)
    picks = (
        sorted(set(rng.choice(np.arange(1, n), size=min(samples, n - 1), replace=False).tolist()))
        if n > 1
        else []
    )
    report = LookaheadReport(checked_instants=len(picks), checked_values=0)
    series = sorted(
        compiled.series - {s for s in compiled.series if s.id.startswith("position.")},
        key=lambda s: (s.id, s.offset),
    )
    for k in picks:
        t = int(instants[k])
        cut = truncate_window(window, t)
        sub = instants[: k + 1]
        src = ArraySource(compiled, cut, sub)
        for s in series:
            a, b = float(full.series(s)[k]), float(src.series(s)[k])
            report.checked_values += 1
            if not _same(a, b):
                report.findings.append(
                    Finding(t, f"{s.id}[{s.offset}]" if s.offset else s.id, a, b)
                )
        cut_truth = _truths(compiled, src, k + 1)
        for key, arr in full_truth.items():
            report.checked_values += 1
            if int(arr[k]) != int(cut_truth[key][k]):
                report.findings.append(Finding(t, key, float(arr[k]), float(cut_truth[key][k])))
    return report


def _truths(compiled: CompiledPlay, source: ArraySource, n: int) -> dict[str, np.ndarray]:
    out = {}
    if compiled.uses_position:
        return out
    for block in compiled.blocks:
        for k, (cond, _) in enumerate(block.cases):
            out[f"case {block.id}#{k}"] = evaluate_vectorised(cond, source, n)
    return out


def _same(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or a == b


@dataclass
class WarmupRow:
    series: str
    max_abs_diff: float
    converged: bool


def audit_warmup(
    compiled: CompiledPlay,
    window: MarketWindow,
    factors: tuple[float, ...] = (1.0, 2.0, 4.0),
    rel_tol: float = 1e-6,
) -> tuple[list[WarmupRow], int]:
    """Compute features with the standard warmup and with `factors`× more history; report series
    whose value at the first evaluated instant still moves (not converged) and a warmup suggestion
    in exec bars (the smallest tested multiple that converges, or the largest tested)."""
    instants = evaluation_instants(compiled, window)[:1]
    series = sorted(
        (
            s
            for s in compiled.series
            if not s.id.startswith("position.")
            and s.id not in ("last_price", "mark_price", "funding_rate")
        ),
        key=lambda s: s.id,
    )
    base_need = compiled.warmup_exec_bars()
    values: dict[float, dict[str, float]] = {}
    for f in factors:
        w = _with_history(window, compiled, f)
        src = ArraySource(compiled, w, instants)
        values[f] = {
            s.id + (f"[{s.offset}]" if s.offset else ""): float(src.series(s)[0]) for s in series
        }
    ref = values[max(factors)]
    rows = []
    suggestion_factor = max(factors)
    for f in sorted(factors):
        ok = all(_close(values[f][k], ref[k], rel_tol) for k in ref)
        if ok:
            suggestion_factor = f
            break
    for k in ref:
        diffs = [
            abs(values[f][k] - ref[k])
            for f in factors
            if not (np.isnan(values[f][k]) and np.isnan(ref[k]))
        ]
        mx = max(diffs, default=0.0)
        rows.append(WarmupRow(k, mx, _close(values[min(factors)][k], ref[k], rel_tol)))
    return rows, int(np.ceil(max(base_need, 1) * suggestion_factor))


def _with_history(window: MarketWindow, compiled: CompiledPlay, factor: float) -> MarketWindow:
    """The same window with only `factor` × the standard warmup history before its start."""
    from ..timeframes import TIMEFRAMES
    from .market import warmup_ms

    need = warmup_ms(compiled)
    bars = {}
    for tf, b in window.bars.items():
        first = window.start_ms - int(need[tf] * factor)
        first = (first // TIMEFRAMES[tf]) * TIMEFRAMES[tf]
        bars[tf] = b.window(first, None)
    return replace(window, bars=bars)


def _close(a: float, b: float, tol: float) -> bool:
    if np.isnan(a) or np.isnan(b):
        return bool(np.isnan(a) and np.isnan(b))
    return abs(a - b) <= tol * max(1.0, abs(b))


def parity_summary(fast: Mapping[str, object], replay: Mapping[str, object]) -> bool:
    return fast["trades_fingerprint"] == replay["trades_fingerprint"]
