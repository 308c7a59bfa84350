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
from ..engine.features import FeatureCache
from ..engine.market import MarketData, MarketWindow, warmup_ms, window_of
from ..engine.runner import run_fast
from ..play import CompiledPlay, validate_play_text
from ..play.model import Scalar
from ..play.space import as_text
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


@dataclass
class _Caches:
    """One sweep's reusable parts in a worker process: features (by definition and history),
    compiled Plays (by values: walk-forward folds run the same combinations again) and windows
    (by window and warmup: in a grid, the combinations that need the same history)."""

    features: FeatureCache = field(default_factory=dict)
    plays: dict[tuple[tuple[str, str], ...], CompiledPlay] = field(default_factory=dict)
    windows: dict[tuple[Any, ...], MarketWindow] = field(default_factory=dict)


_CACHES: dict[str, _Caches] = {}  # per SweepData token, in each worker process
_WINDOWS_KEPT = 8  # windows hold their own intrabar arrays: keep the last few only


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
    w_key = (job.symbol, start, end, compiled.exec_tf, *sorted(warmup_ms(compiled).items()))
    window = cache.windows.pop(w_key, None) or window_of(
        shared.data[job.symbol], compiled, start, end
    )
    cache.windows[w_key] = window  # the most recent last
    while len(cache.windows) > _WINDOWS_KEPT:
        del cache.windows[next(iter(cache.windows))]
    out = run_fast(compiled, window, intrabar_policy=shared.intrabar, feature_cache=cache.features)
    table, metrics = summarise(compiled, window, out)
    start_eq = compiled.play.account.starting_equity
    equity = np.asarray(out.equity, dtype=np.float64)
    return Row(
        job.index,
        job.symbol,
        dict(job.values),
        metrics,
        table.fingerprint(),
        CurveStats.of(equity, start_eq),
        *((equity, np.asarray(out.equity_ts, dtype=np.int64)) if job.curve else ()),
    )


# ---------------------------------------------------------------- local worker processes

_SHARED: SweepData | None = None


def init_worker(shared: SweepData) -> None:
    """Process-pool initializer: keep the data; Ctrl-C is the parent's to handle."""
    import signal

    global _SHARED
    _SHARED = shared
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def evaluate_chunk_in_worker(jobs: list[Job]) -> list[Row]:
    assert _SHARED is not None, "init_worker was not called"
    return [evaluate(_SHARED, job) for job in jobs]
