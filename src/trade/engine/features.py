"""Feature values for a compiled Play, two ways: whole arrays (fast mode) or bar by bar (replay/live).

Both compute every feature on its own timeframe's bars from the same first bar, through the one
definition of each indicator and structure, so the values the conditions see are the same.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..data.bars import Bars
from ..features import indicators, structures
from ..play import ast as A
from ..play.compile import PRICE_BUILTINS, CompiledPlay, FeatureNode


def builtin_prices(
    bars: Bars, derived: Iterable[str] = ("hl2", "hlc3", "ohlc4")
) -> dict[str, np.ndarray]:
    """The exec-timeframe price built-ins (`close`, `hl2`, …) as arrays; of the derived ones only
    those asked for (each costs a pass and an array)."""
    out = {
        "open": bars.open,
        "high": bars.high,
        "low": bars.low,
        "close": bars.close,
        "volume": bars.volume,
    }
    derived = set(derived)
    if "hl2" in derived:
        out["hl2"] = (bars.high + bars.low) / 2.0
    if "hlc3" in derived:
        out["hlc3"] = (bars.high + bars.low + bars.close) / 3.0
    if "ohlc4" in derived:
        out["ohlc4"] = (bars.open + bars.high + bars.low + bars.close) / 4.0
    return out


def builtin_prices_scalar(o: float, h: float, lo: float, c: float, v: float) -> dict[str, float]:
    return {
        "open": o,
        "high": h,
        "low": lo,
        "close": c,
        "volume": v,
        "hl2": (h + lo) / 2.0,
        "hlc3": (h + lo + c) / 3.0,
        "ohlc4": (o + h + lo + c) / 4.0,
    }


def series_tf(compiled: CompiledPlay) -> dict[str, str]:
    """Timeframe of every feed a series id lives on (`ema.value` → `15m`, `close` → exec tf)."""
    out = {name: compiled.exec_tf for name in PRICE_BUILTINS}
    for f in compiled.features:
        for o in f.outputs:
            out[f"{f.key}.{o.name}"] = f.tf
    return out


def compute_batch_features(
    compiled: CompiledPlay, bars: Mapping[str, Bars]
) -> dict[str, np.ndarray]:
    """Every feature output (and the exec price built-ins) as arrays on its own timeframe's bars."""
    used = {s.id for s in compiled.series}
    prices = builtin_prices(bars[compiled.exec_tf], derived={"hl2", "hlc3", "ohlc4"} & used)
    values: dict[str, np.ndarray] = dict(prices)
    per_key: dict[str, dict[str, np.ndarray]] = {}
    for f in compiled.features:
        b = bars[f.tf]
        if f.kind == "indicator":
            out = indicators.compute_batch(f.type, f.params, b, f.source)
        else:
            deps = {slot: per_key[key] for slot, key in f.deps.items()}
            out = structures.compute_structure_batch(f.type, f.params, b, deps)
        per_key[f.key] = out
        for name, arr in out.items():
            values[f"{f.key}.{name}"] = arr
    return values


# a feature's step on its timeframe's bar: update, values, (output index, history) sinks,
# dependency slots → feature keys (structures only), the key to keep current values under, names
_Step = tuple[
    Callable[..., None],
    Callable[[], tuple[float, ...]],
    list[tuple[int, deque[float]]],
    tuple[tuple[str, str], ...] | None,
    str | None,
    tuple[str, ...],
]


class IncrementalFeatures:
    """Feature state updated one closed bar at a time, with the history offsets need.

    `on_bar(tf, …)` must be called for every closed bar of every timeframe the Play uses, in order of
    close time (bars closing at the same instant: lower timeframe first). `value(series)` then
    answers as of the last closed bar of that series' timeframe.
    """

    def __init__(self, compiled: CompiledPlay) -> None:
        self.compiled = compiled
        self.tf_of = series_tf(compiled)
        # every output keeps at least its current value (risk rules read ATRs that no condition
        # references); series read at offsets keep that much history
        depth: dict[str, int] = {
            f"{f.key}.{o.name}": 0 for f in compiled.features for o in f.outputs
        }
        for s in compiled.series:
            depth[s.id] = max(depth.get(s.id, 0), s.offset)
        self.history: dict[str, deque[float]] = {
            sid: deque(maxlen=d + 1) for sid, d in depth.items()
        }
        self.by_tf: dict[str, list[FeatureNode]] = {}
        for f in compiled.features:
            self.by_tf.setdefault(f.tf, []).append(f)
        self.objects: dict[str, Any] = {}
        for f in compiled.features:
            if f.kind == "indicator":
                self.objects[f.key] = indicators.make_incremental(f.type, f.params, f.source)
            else:
                self.objects[f.key] = structures.make_structure(f.type, f.params)
        self.current: dict[str, dict[str, float]] = {}
        self.bars_seen: dict[str, int] = {}
        self._plans: dict[str, list[_Step]] = {}
        self.price_sinks = [(n, self.history[n]) for n in PRICE_BUILTINS if n in self.history]

    def timeframes(self) -> list[str]:
        return sorted({self.compiled.exec_tf, *self.by_tf})

    def _plan(self, tf: str) -> list[_Step]:
        """Per timeframe: each feature's bound update and values, the histories its outputs feed,
        its dependency slots (structures) and whether a structure depends on its current values
        (so they are kept as a mapping)."""
        plan = self._plans.get(tf)
        if plan is None:
            needed = {d for f in self.compiled.features for d in f.deps.values()}
            plan = []
            for f in self.by_tf.get(tf, ()):
                sinks = [
                    (k, self.history[f"{f.key}.{o.name}"])
                    for k, o in enumerate(f.outputs)
                    if f"{f.key}.{o.name}" in self.history
                ]
                obj = self.objects[f.key]
                deps = tuple(f.deps.items()) if f.kind == "structure" else None
                keep = f.key if f.key in needed else None
                plan.append((obj.update, obj.values, sinks, deps, keep, f.output_names))
            self._plans[tf] = plan
        return plan

    def on_bar(self, tf: str, ts: int, o: float, h: float, lo: float, c: float, v: float) -> None:
        self.bars_seen[tf] = self.bars_seen.get(tf, 0) + 1
        if self.price_sinks and tf == self.compiled.exec_tf:
            prices = builtin_prices_scalar(o, h, lo, c, v)
            for name, hist in self.price_sinks:
                hist.appendleft(prices[name])
        current = self.current
        for update, values, sinks, deps, keep, names in self._plan(tf):
            if deps is None:  # an indicator (the bar's open time matters to vwap's anchor)
                update(o, h, lo, c, v, ts)
            else:
                update(o, h, lo, c, v, {slot: current[key] for slot, key in deps})
            vals = values()
            if keep is not None:
                current[keep] = dict(zip(names, vals, strict=True))
            for k, hist in sinks:
                hist.appendleft(float(vals[k]))

    def value(self, s: A.Series) -> float:
        hist = self.history[s.id]
        return hist[s.offset] if s.offset < len(hist) else math.nan

    def getter(self, s: A.Series) -> Callable[[], float]:
        """`value(s)` as a closure over its history (histories are never replaced, only refilled)."""
        hist, off = self.history[s.id], s.offset
        if off == 0:
            return lambda: hist[0] if hist else math.nan
        return lambda: hist[off] if off < len(hist) else math.nan

    def state(self) -> dict[str, Any]:
        """JSON-able state: every feature's own state plus the offset histories."""
        return {
            "objects": {k: o.to_state() for k, o in self.objects.items()},
            "history": {
                k: [None if math.isnan(x) else x for x in h] for k, h in self.history.items()
            },
            "current": {
                k: {n: (None if math.isnan(x) else x) for n, x in v.items()}
                for k, v in self.current.items()
            },
            "bars_seen": dict(self.bars_seen),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        for f in self.compiled.features:
            st = state["objects"][f.key]
            self.objects[f.key] = (
                indicators.restore_incremental(st)
                if f.kind == "indicator"
                else structures.restore_structure(st)
            )
        for k, vals in state["history"].items():
            hist = self.history[k]  # refilled in place: getters hold these deques
            hist.clear()
            hist.extend(math.nan if x is None else x for x in vals)
        self.current = {
            k: {n: (math.nan if x is None else x) for n, x in v.items()}
            for k, v in state["current"].items()
        }
        self.bars_seen = dict(state["bars_seen"])
        self._plans = {}
        self.price_sinks = [(n, self.history[n]) for n in PRICE_BUILTINS if n in self.history]
