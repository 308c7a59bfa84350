"""Backtest drivers: fast (vectorised truths, skip to the instants that matter) and replay (bar by bar).

Both share everything that decides: the same compiled Play, the same `decide`, the same order
builder, the same guards and the same simulator. They differ only in how feature values and
condition truths are produced (whole arrays vs incremental state), which is exactly what the parity
audit checks. A guarded run (`risk.guards`) evaluates every instant, as a live session does: the
daily loss, drawdown and balance guards watch the account at each one, so fast mode then skips
neither instants nor into the jitted loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..gcpause import gc_paused
from ..play import ast as A
from ..play.compile import CompiledBlock, CompiledPlay
from ..play.evaluate import evaluate_vectorised
from ..play.model import Guards
from ..report.positions import Closes, FillTags
from ..sim.tape import fresh_marks
from ..timeframes import MINUTE_MS, TIMEFRAMES
from . import fastloop
from .asof import asof_index, closes_are, take_asof
from .decide import Decision, decide, intents_at
from .execution import SimExecution
from .features import FeatureCache, compute_batch_features, series_tf
from .guards import SimGuards
from .market import MarketWindow
from .play_engine import INSTANT_IDS, PlayEngine

ProgressFn = Callable[[int, int], None]
DecisionsFn = Callable[[int, list[Decision]], None]


@dataclass
class RunOutput:
    """What a driver produced; the report layer turns it into artifacts and metrics."""

    instants: np.ndarray
    equity_ts: np.ndarray
    equity: np.ndarray
    trades: Sequence[dict[str, Any]]  # a list, or built on first use (the jitted loop)
    events: Sequence[dict[str, Any]]  # a list, or built on first use (the jitted loop)
    counters: dict[str, int] = field(default_factory=dict)
    signals: int = 0
    # the closes and fills as columns when the driver has them (the jitted loop): the report
    # layer then reads positions, metrics and the fingerprint without a dict per trade
    records: tuple[Closes, FillTags] | None = None


def evaluation_instants(compiled: CompiledPlay, window: MarketWindow) -> np.ndarray:
    """Exec bar closes in the window, or every intrabar close with `evaluation: every_1m`."""
    exec_instants = window.instants(compiled.exec_tf)
    if compiled.play.evaluation == "every_1m":
        ib = window.intrabar
        return ib.ts_close[(ib.ts_close > window.start_ms) & (ib.ts_close <= window.end_ms)]
    return exec_instants


def instant_values(
    window: MarketWindow, instants: np.ndarray, names: Iterable[str] = INSTANT_IDS
) -> dict[str, np.ndarray]:
    """`names` among last_price, mark_price and funding_rate, as of each instant."""
    names = set(names)
    ib = window.intrabar
    out: dict[str, np.ndarray] = {}
    if names & {"last_price", "mark_price"}:
        last = take_asof(ib.close, np.searchsorted(ib.ts_close, instants, side="right") - 1)
        out["last_price"] = last
        if "mark_price" in names:
            if window.mark is not None and len(window.mark):
                # the simulator's mark (sim.tape): the mark over the last intrabar bar closed
                m = window.mark
                marks = fresh_marks(
                    ib.ts_open, ib.ts_close, ib.open, ib.high, ib.low, ib.close, m.ts,
                    m.ts + m.tf_ms, m.high, m.low, m.close,
                )[0]  # fmt: skip
                mark = take_asof(marks, np.searchsorted(ib.ts_close, instants, side="right") - 1)
                out["mark_price"] = np.where(np.isnan(mark), last, mark)
            else:
                out["mark_price"] = last.copy()
    if "funding_rate" in names:
        fidx = np.searchsorted(window.funding_ts, instants, side="right") - 1
        out["funding_rate"] = take_asof(window.funding_rate, fidx)
    return {k: out[k] for k in INSTANT_IDS if k in names}


class ArraySource:
    """Series over all instants from batch features (as of each instant, by timestamp)."""

    def __init__(
        self,
        compiled: CompiledPlay,
        window: MarketWindow,
        instants: np.ndarray,
        cache: FeatureCache | None = None,
    ) -> None:
        self.values = compute_batch_features(compiled, window.bars, cache)
        self.tf_of = series_tf(compiled)
        self.window, self.instants = window, instants
        # a feed whose bar closes are exactly the instants (the exec timeframe) reads a slice
        self.first: dict[str, int] = {}
        for tf, b in window.bars.items():
            a = int(np.searchsorted(b.ts, instants[0] - b.tf_ms)) if len(instants) else 0
            if closes_are(b.ts, b.tf_ms, a, np.asarray(instants, dtype=np.int64)):
                self.first[tf] = a
        self.index = {
            tf: asof_index(b.ts, b.tf_ms, instants)
            for tf, b in window.bars.items()
            if tf not in self.first
        }
        self.cache: dict[A.Series, np.ndarray] = {}

    def series(self, s: A.Series) -> np.ndarray:
        got = self.cache.get(s)
        if got is None:
            if s.id in INSTANT_IDS:
                got = instant_values(self.window, self.instants, [s.id])[s.id]
            else:
                tf, values = self.tf_of[s.id], self.values[s.id]
                first = self.first.get(tf)
                if first is not None and first >= s.offset:
                    a = first - s.offset
                    got = values[a : a + len(self.instants)]
                    got.flags.writeable = False  # a view of the feature's own array
                else:
                    index = (
                        self.index[tf] if first is None else np.arange(len(self.instants)) + first
                    )
                    got = take_asof(values, index, s.offset)
            self.cache[s] = got
        return got


def run_fast(
    compiled: CompiledPlay,
    window: MarketWindow,
    *,
    intrabar_policy: str,
    progress: ProgressFn | None = None,
    feature_cache: FeatureCache | None = None,
    guards: Guards | None = None,
    tape: Mapping[str, np.ndarray] | None = None,
) -> RunOutput:
    """`feature_cache`: see `compute_batch_features` (a sweep shares features across runs);
    `guards`: the limits applied (default: the Play's `risk.guards`); `tape`: the window's
    `window_tape`, when the caller made it before (see `SimExecution`)."""
    instants = evaluation_instants(compiled, window)
    source = ArraySource(compiled, window, instants, feature_cache)
    ex = SimExecution(
        compiled, window, instants, intrabar_policy, lambda s, i: float(source.series(s)[i]),
        tape=tape,
    )  # fmt: skip
    n = len(instants)
    guard = _guards(compiled, window, instants, ex, guards)
    if compiled.uses_position or guard is not None:
        # Position-dependent conditions cannot be vectorised ahead of the position, and guards
        # watch the account at every instant: evaluate per instant, on the batch feature arrays.
        i_ref = [0]

        def resolve(s: A.Series) -> Callable[[], float]:
            values = memoryview(np.ascontiguousarray(source.series(s), dtype=np.float64))
            return lambda: values[i_ref[0]]  # a Python float

        def at(i: int, t: int) -> None:
            i_ref[0] = i

        engine = PlayEngine(compiled, resolve)
        with gc_paused():  # see gcpause: events, trades and ledger rows by the thousand
            _loop_every_instant(engine, ex, instants, at, progress, guards=guard)
    else:
        table = [
            [evaluate_vectorised(cond, source, n) for cond, _ in block.cases]
            for block in compiled.blocks
        ]
        if n and fastloop.eligible(compiled):
            fastloop.run(compiled, ex, instants, _chosen_cases(table, n), source.series)
            if progress is not None:
                progress(n, n)
        else:
            with gc_paused():
                _loop_skipping(compiled, ex, instants, table, progress)
    return ex.finish()


def run_replay(
    compiled: CompiledPlay,
    window: MarketWindow,
    *,
    intrabar_policy: str,
    progress: ProgressFn | None = None,
    on_decisions: DecisionsFn | None = None,
    guards: Guards | None = None,
) -> RunOutput:
    """Replay: history fed bar by bar through the PlayEngine, the live path's decision object.
    `on_decisions(t, decisions)` sees every instant's decisions before the guards (`trade play
    diff`); `guards`: the limits applied (default: the Play's `risk.guards`)."""
    instants = evaluation_instants(compiled, window)
    engine = PlayEngine(compiled)
    feats = engine.features
    assert feats is not None
    inst_vals = instant_values(window, instants, engine.instant_ids)
    ex = SimExecution(compiled, window, instants, intrabar_policy, lambda s, i: feats.value(s))
    guard = _guards(compiled, window, instants, ex, guards)
    # every closed bar of every timeframe, in close-time order (lower timeframe first on ties)
    feeds = []
    for tf in engine.timeframes():
        b = window.bars[tf]
        feeds.append((b.ts + b.tf_ms, np.full(len(b), TIMEFRAMES[tf]), tf, b))
    close_all = np.concatenate([f[0] for f in feeds])
    tf_rank = np.concatenate([f[1] for f in feeds])
    which = np.concatenate([np.full(len(f[0]), k) for k, f in enumerate(feeds)])
    row = np.concatenate([np.arange(len(f[0])) for f in feeds])
    order = np.lexsort((tf_rank, close_all))
    # plain lists: the loop below reads one element at a time, which numpy scalars make slow
    closes, feed_of, row_of = (x[order].tolist() for x in (close_all, which, row))
    columns = [
        (
            engine.feeder(tf),
            b.ts.tolist(),
            b.open.tolist(),
            b.high.tolist(),
            b.low.tolist(),
            b.close.tolist(),
            b.volume.tolist(),
        )
        for _, _, tf, b in feeds
    ]
    total = len(closes)
    cursor = [0]
    slots = engine.instant
    # (slot, values over instants) for the instant values the Play reads (usually none)
    inst_cols = [
        (INSTANT_IDS.index(k), memoryview(np.ascontiguousarray(v))) for k, v in inst_vals.items()
    ]

    def at(i: int, t: int) -> None:
        k = cursor[0]
        while k < total and closes[k] <= t:
            feed, ts, o, h, lo, c, v = columns[feed_of[k]]
            r = row_of[k]
            feed(ts[r], o[r], h[r], lo[r], c[r], v[r])
            k += 1
        cursor[0] = k
        for slot, values in inst_cols:
            slots[slot] = values[i]  # a Python float

    with gc_paused():  # millions of short-lived acyclic objects; see gcpause
        _loop_every_instant(engine, ex, instants, at, progress, on_decisions, guard)
    return ex.finish()


def _guards(
    compiled: CompiledPlay,
    window: MarketWindow,
    instants: np.ndarray,
    ex: SimExecution,
    limits: Guards | None,
) -> SimGuards | None:
    """The run's guards, reading the last traded price as of each instant (a live session's
    reference price: the last 1m close), or None when no limit is set."""
    return SimGuards.of(
        compiled.play.risk.guards if limits is None else limits, compiled, ex,
        lambda: instant_values(window, instants, ["last_price"])["last_price"],
    )  # fmt: skip


def _loop_every_instant(
    engine: PlayEngine,
    ex: SimExecution,
    instants: np.ndarray,
    at: Callable[[int, int], None],
    progress: ProgressFn | None,
    on_decisions: DecisionsFn | None = None,
    guards: SimGuards | None = None,
) -> None:
    """Evaluate at every instant (replay, and fast mode with position-dependent conditions or
    guards): the simulator advances to the instant, the guards see the account there, `at(i, t)`
    makes the instant's values current, the engine steps every condition and decides, and the
    guards pass on what may go to the simulator (in a live session's order)."""
    n = len(instants)
    step = max(1, n // 200)
    instant_list = instants.tolist()
    sim = ex.sim
    advance = sim.advance_to
    has_else = any(b.else_ for b in engine.compiled.blocks)
    uses_position = engine.uses_position
    # `engine.step` inlined: this loop runs millions of times and a call costs as much as a step
    steps, point = engine.conditions.steps, engine.point
    true = int(A.Truth.TRUE)
    for i in range(n):
        if progress is not None and i % step == 0:
            progress(i, n)
        t = instant_list[i]
        advance(t)
        if guards is not None:
            guards.observe(i, t)
        at(i, t)
        if uses_position:
            point.position = ex.position_values(t)
        flat = [s() for s in steps]
        if sim.halted or (not has_else and true not in flat):
            continue  # halted, or no case holds: no intent (the usual instant)
        decisions = engine.decisions(flat, ex.side(), ex.entry_pending())
        if decisions:
            if on_decisions is not None:
                on_decisions(t, decisions)
            if guards is None:
                ex.execute(i, t, decisions)
            else:
                guards.act(i, t, decisions)
    if n:
        engine.last_instant = instant_list[-1]
    ex.advance_to(int(instants[-1]) if n else 0)


def _loop_skipping(
    compiled: CompiledPlay,
    ex: SimExecution,
    instants: np.ndarray,
    table: list[list[np.ndarray]],
    progress: ProgressFn | None,
) -> None:
    """Jump from one instant that can matter to the next; the simulator covers the bars between."""
    policy = compiled.play.position_policy
    n = len(instants)
    chosen = _chosen_cases(table, n)
    masks = _intent_masks(compiled, chosen, n)
    # positioned, an entry either flips or is refused (and counted): every entry instant matters
    entries = masks["entry_long"] | masks["entry_short"]
    relevant = {
        "flat": entries,
        "long": masks["exit_long"] | masks["exit_all"] | entries,
        "short": masks["exit_short"] | masks["exit_all"] | entries,
    }
    nexts = {side: _next_true(mask) for side, mask in relevant.items()}
    i = 0
    step = max(1, n // 200)
    last_report = -step
    while i < n:
        if ex.halted:
            break
        side = ex.side()
        j = i if ex.entry_pending() else int(nexts[side][i])
        target = int(instants[j]) if j < n else int(instants[-1])
        changed = ex.advance_to(target, stop_on_change=True)
        if changed is not None and (j >= n or changed < target or ex.side() != side):
            i = int(instants.searchsorted(changed, side="left"))
            if j >= n and i >= n:
                break
            continue
        if j >= n:
            break
        if ex.side() == side or ex.entry_pending():
            truth = _table_truth(compiled.blocks, chosen, j)
            intents = intents_at(compiled.blocks, truth)
            if intents:
                decisions = decide(intents, ex.side(), policy, ex.entry_pending())
                if decisions:
                    ex.execute(j, int(instants[j]), decisions)
        i = j + 1
        if progress is not None and i - last_report >= step:
            progress(i, n)
            last_report = i
    ex.advance_to(int(instants[-1]) if n else 0)


def _chosen_cases(table: list[list[np.ndarray]], n: int) -> list[np.ndarray]:
    """Per block, the index of the first true case at each instant (−1: none, so `else`)."""
    out = []
    for cases in table:
        chosen = np.full(n, -1, dtype=np.int16)  # case indexes are small; memory is not
        for k in range(len(cases) - 1, -1, -1):
            chosen[cases[k] == A.Truth.TRUE] = k
        out.append(chosen)
    return out


def _intent_masks(
    compiled: CompiledPlay, chosen: list[np.ndarray], n: int
) -> dict[str, np.ndarray]:
    masks = {
        a: np.zeros(n, dtype=bool)
        for a in ("entry_long", "entry_short", "exit_long", "exit_short", "exit_all")
    }
    for block, ch in zip(compiled.blocks, chosen, strict=True):
        for k, (_, emits) in enumerate(block.cases):
            for intent in emits:
                masks[intent.action] |= ch == k
        if block.else_:
            for intent in block.else_:
                masks[intent.action] |= ch == -1
    return masks


def _table_truth(
    blocks: tuple[CompiledBlock, ...], chosen: list[np.ndarray], j: int
) -> list[list[int]]:
    """The case truths at instant j as a table: TRUE for each block's chosen case."""
    T, F = A.Truth.TRUE, A.Truth.FALSE
    out = []
    for block, ch in zip(blocks, chosen, strict=True):
        pick = int(ch[j])
        out.append([T if k == pick else F for k in range(len(block.cases))])
    return out


def _next_true(mask: np.ndarray | bool) -> np.ndarray:
    """next[i] = smallest j >= i with mask[j] (len(mask) when none)."""
    m = np.asarray(mask, dtype=bool)
    n = len(m)
    idx = np.where(m, np.arange(n), n)
    return np.minimum.accumulate(idx[::-1])[::-1] if n else idx


def bars_per_year(tf: str) -> float:
    return 365.0 * 24 * 60 * MINUTE_MS / TIMEFRAMES[tf]


__all__ = ["Decision", "RunOutput", "math", "run_fast", "run_replay"]
