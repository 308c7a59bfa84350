"""One combination of a sweep, run where a worker runs it: in this process, a local worker process
or a Ray worker. Workers never open the market store: they receive `SweepData` (read once by the
parent) and cut each combination's window from it exactly as `run_backtest` would load it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.backtest import summarise
from ..engine.execution import window_tape
from ..engine.features import FeatureCache
from ..engine.market import MarketData, MarketWindow, warmup_ms, window_of
from ..engine.runner import run_fast
from ..play import CompiledPlay, validate_play_text
from ..play.model import Scalar
from ..play.space import as_text
from ..timeframes import TIMEFRAMES
from .diagnostics import CurveStats


@dataclass(frozen=True)
class SweepData:
    """What every combination needs, shipped once per worker."""

    play_text: str
    origin: str
    intrabar: str
    data: dict[str, MarketData]  # per symbol
    windows: dict[str, tuple[int, int]]  # per symbol: [start, end) of the evaluated exec bars
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # names this data's caches


@dataclass(frozen=True)
class Job:
    index: int  # the combination's place in the sweep (trial number for a search)
    symbol: str
    values: dict[str, Scalar]
    start: int | None = None  # a sub-window of the symbol's window (walk-forward folds)
    end: int | None = None
    curve: bool = False  # send the equity curve back (a walk-forward's test runs are stitched)


@dataclass
class Row:
    """What a sweep keeps of one run: its metrics, trades fingerprint and what the diagnostics
    read of its equity curve (`CurveStats`: a few dozen numbers where the curve is 70k for two
    years of 15m bars, which workers would otherwise send back and the parent hold)."""

    index: int
    symbol: str
    values: dict[str, Scalar]
    metrics: dict[str, Any]
    fingerprint: str
    stats: CurveStats
    # the curve and its times, for a job that asked for them (`Job.curve`)
    equity: np.ndarray = field(default_factory=lambda: np.empty(0))
    equity_ts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    # the metrics as sweep.csv's cells, in `metrics` order: formatted by the worker that ran the
    # combination, so the parent does not format every row itself (empty: the parent formats)
    cells: tuple[str, ...] = ()


class _Recent(dict[tuple[Any, ...], dict[str, np.ndarray]]):
    """The features computed last (a `FeatureCache` of at most `size` entries, the least recently
    used dropped): a grid reuses a feature within a few dozen runs or never, and keeping every
    one held hundreds of megabytes, each new array in fresh pages."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get(self, key: tuple[Any, ...], default: Any = None) -> Any:
        got = self.pop(key, None)
        if got is None:
            return default
        super().__setitem__(key, got)  # the most recent last
        return got

    def __setitem__(self, key: tuple[Any, ...], value: dict[str, np.ndarray]) -> None:
        super().__setitem__(key, value)
        while len(self) > self.size:
            del self[next(iter(self))]


_FEATURES_KEPT = 128


@dataclass
class _Caches:
    """One sweep's reusable parts in a worker process: features (by definition and history),
    compiled Plays (by values: walk-forward folds run the same combinations again) and windows
    (by span and warmup: in a grid, the combinations that need the same history). The windows of
    one span share its first window's intrabar, marks and funding (`window_of(like=…)`): another
    warmup costs views of the bars, so a span keeps every warmup's window, and one simulator tape
    (the mark over every intrabar bar is derived once per span, not once per combination)."""

    features: FeatureCache = field(default_factory=lambda: _Recent(_FEATURES_KEPT))
    plays: dict[tuple[tuple[str, str], ...], CompiledPlay] = field(default_factory=dict)
    # per span (symbol, start, end, exec timeframe), its windows by warmup
    windows: dict[tuple[Any, ...], dict[tuple[Any, ...], MarketWindow]] = field(
        default_factory=dict
    )
    # per span, the simulator's tape of its windows (they share the intrabar, marks and funding)
    tapes: dict[tuple[Any, ...], dict[str, np.ndarray]] = field(default_factory=dict)


def bankrupt(max_drawdown_pct: float | None) -> bool:
    """A run whose equity fell to zero or below: its drawdown from the peak is 100% or more."""
    return max_drawdown_pct is not None and max_drawdown_pct >= 100.0


_CACHES: dict[str, _Caches] = {}  # per SweepData token, in each worker process
_SPANS_KEPT = 4  # a span's intrabar arrays are its own: keep the last few spans only


def evaluate(shared: SweepData, job: Job) -> Row:
    """Run one combination on the fast path (features shared through this process's cache)."""
    if shared.token not in _CACHES:
        _CACHES.clear()  # one sweep's at a time
        _CACHES[shared.token] = _Caches()
    cache = _CACHES[shared.token]
    overrides = {k: as_text(v) for k, v in job.values.items()}
    key = tuple(sorted(overrides.items()))
    compiled = cache.plays.get(key)
    if compiled is None:
        compiled = cache.plays[key] = validate_play_text(shared.play_text, shared.origin, overrides)
    w_start, w_end = shared.windows[job.symbol]
    start = w_start if job.start is None else job.start
    end = w_end if job.end is None else job.end
    span = (job.symbol, start, end, compiled.exec_tf)
    windows = cache.windows.pop(span, {})
    cache.windows[span] = windows  # the most recent last
    while len(cache.windows) > _SPANS_KEPT:
        cache.tapes.pop(oldest := next(iter(cache.windows)), None)
        del cache.windows[oldest]
    need = tuple(sorted(warmup_ms(compiled).items()))
    window = windows.get(need)
    if window is None:
        like = next(iter(windows.values()), None)
        window = windows[need] = window_of(shared.data[job.symbol], compiled, start, end, like=like)
    tape = cache.tapes.get(span)
    if tape is None:
        tape = cache.tapes[span] = window_tape(window, TIMEFRAMES[compiled.exec_tf])
    out = run_fast(
        compiled, window, intrabar_policy=shared.intrabar, feature_cache=cache.features, tape=tape
    )
    table, metrics = summarise(compiled, window, out)
    from .table import metric_cells  # (the table module reads `Row` from this one)

    start_eq = compiled.play.account.starting_equity
    equity = np.asarray(out.equity, dtype=np.float64)
    row = Row(
        job.index,
        job.symbol,
        dict(job.values),
        metrics,
        table.fingerprint(),
        CurveStats.of(equity, start_eq),
        cells=tuple(metric_cells(metrics)),
    )
    if job.curve:
        row.equity, row.equity_ts = equity, np.asarray(out.equity_ts, dtype=np.int64)
    return row
