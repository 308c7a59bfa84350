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
from ..play.compile import PRICE_BUILTINS, CompiledPlay

# The price built-ins from a bar's open, high, low, close and volume: one formula for Python floats
# (a bar at a time) and numpy arrays (every bar), so batch and incremental values are the same.
_PRICE_OF: dict[str, Callable[..., Any]] = {
    "open": lambda o, h, lo, c, v: o,
    "high": lambda o, h, lo, c, v: h,
    "low": lambda o, h, lo, c, v: lo,
    "close": lambda o, h, lo, c, v: c,
    "volume": lambda o, h, lo, c, v: v,
    "hl2": lambda o, h, lo, c, v: (h + lo) / 2.0,
    "hlc3": lambda o, h, lo, c, v: (h + lo + c) / 3.0,
    "ohlc4": lambda o, h, lo, c, v: (o + h + lo + c) / 4.0,
}


def builtin_prices(
    bars: Bars, derived: Iterable[str] = ("hl2", "hlc3", "ohlc4")
) -> dict[str, np.ndarray]:
    """The exec-timeframe price built-ins (`close`, `hl2`, …) as arrays; of the derived ones only
    those asked for (each costs a pass and an array)."""
    ohlcv = (bars.open, bars.high, bars.low, bars.close, bars.volume)
    wanted = {"open", "high", "low", "close", "volume"} | set(derived)
    return {name: _PRICE_OF[name](*ohlcv) for name in _PRICE_OF if name in wanted}


def series_tf(compiled: CompiledPlay) -> dict[str, str]:
    """Timeframe of every feed a series id lives on (`ema.value` → `15m`, `close` → exec tf)."""
    out = {name: compiled.exec_tf for name in PRICE_BUILTINS}
    for f in compiled.features:
        for o in f.outputs:
            out[f"{f.key}.{o.name}"] = f.tf
    return out


FeatureCache = dict[tuple[Any, ...], dict[str, np.ndarray]]


def compute_batch_features(
    compiled: CompiledPlay, bars: Mapping[str, Bars], cache: FeatureCache | None = None
) -> dict[str, np.ndarray]:
    """Every feature output (and the exec price built-ins) as arrays on its own timeframe's bars.

    With `cache` (a sweep's, one per process), a feature whose definition and bars were already
    computed is reused: its key holds the kind, type, params, source, timeframe, symbol, the first bar and
    the bar count (the warmup history changes values), and its dependencies' keys."""
    used = {s.id for s in compiled.series}
    prices = builtin_prices(bars[compiled.exec_tf], derived={"hl2", "hlc3", "ohlc4"} & used)
    values: dict[str, np.ndarray] = dict(prices)
    per_key: dict[str, dict[str, np.ndarray]] = {}
    keys: dict[str, tuple[Any, ...]] = {}
    for f in compiled.features:
        b = bars[f.tf]
        key = (
            f.kind,
            f.type,
            repr(sorted(f.params.items())),
            f.source,
            f.tf,
            b.symbol,
            int(b.ts[0]) if len(b) else None,
            len(b),
            tuple((slot, keys[dep]) for slot, dep in sorted(f.deps.items())),
        )
        keys[f.key] = key
        out = cache.get(key) if cache is not None else None
        if out is None:
            if f.kind == "indicator":
                out = indicators.compute_batch(f.type, f.params, b, f.source)
            else:
                deps = {slot: per_key[k] for slot, k in f.deps.items()}
                out = structures.compute_structure_batch(f.type, f.params, b, deps)
            if cache is not None:
                cache[key] = out
        per_key[f.key] = out
        for name, arr in out.items():
            values[f"{f.key}.{name}"] = arr
    return values


class IncrementalFeatures:
    """Feature state updated one closed bar at a time, with the history offsets need.

    `on_bar(tf, …)` must be called for every closed bar of every timeframe the Play uses, in order of
    close time (bars closing at the same instant: lower timeframe first). `value(series)` then
    answers as of the last closed bar of that series' timeframe.

    Replay and live call `on_bar` once per bar, so it is built to do little besides the jitted
    updates: each feature's kernel is bound once, current values are read straight from the
    feature's own output array (a memoryview, so a read is a Python float), and only series read
    at an offset, structure fields and used price built-ins keep a history.
    """

    def __init__(self, compiled: CompiledPlay) -> None:
        self.compiled = compiled
        self.objects: dict[str, Any] = {}
        for f in compiled.features:
            if f.kind == "indicator":
                self.objects[f.key] = indicators.make_incremental(f.type, f.params, f.source)
            else:
                self.objects[f.key] = structures.make_structure(f.type, f.params)
        # (memoryview of the feature's outputs, index) for every feature output
        self._cell = {
            f"{f.key}.{o.name}": (memoryview(self.objects[f.key].outputs), k)
            for f in compiled.features
            for k, o in enumerate(f.outputs)
        }
        # histories: the series the Play reads at an offset, and the structure fields and price
        # built-ins it reads at all (a structure's fields before its first bar are not values);
        # an indicator output read as of now is read from the indicator's own array
        fields = {
            f"{f.key}.{o.name}"
            for f in compiled.features
            if f.kind == "structure"
            for o in f.outputs
        }
        depth: dict[str, int] = {}
        for s in compiled.series:
            if s.offset or s.id in PRICE_BUILTINS or s.id in fields:
                depth[s.id] = max(depth.get(s.id, 0), s.offset)
        self.history: dict[str, deque[float]] = {
            sid: deque(maxlen=d + 1) for sid, d in depth.items()
        }
        self.price_sinks = [
            (_PRICE_OF[n], self.history[n]) for n in PRICE_BUILTINS if n in self.history
        ]
        self.bars_seen: dict[str, int] = dict.fromkeys(self.timeframes(), 0)
        self._feeders = {tf: self._feeder(tf) for tf in self.timeframes()}
        self._getters: dict[A.Series, Callable[[], float]] = {}

    def timeframes(self) -> list[str]:
        return sorted({self.compiled.exec_tf, *(f.tf for f in self.compiled.features)})

    def on_bar(self, tf: str, ts: int, o: float, h: float, lo: float, c: float, v: float) -> None:
        self._feeders[tf](ts, o, h, lo, c, v)

    def feeder(self, tf: str) -> Callable[[int, float, float, float, float, float], None]:
        """`on_bar` for one timeframe as `feed(ts, o, h, lo, c, v)`: what a driver that knows the
        bar's timeframe calls, without the look-ups."""
        return self._feeders[tf]

    def _feeder(self, tf: str) -> Callable[[int, float, float, float, float, float], None]:
        """The timeframe's bar step, bound once (restore refills the arrays it holds, never
        replaces them): the price built-ins, then the indicators, then the structures in
        dependency order (indicators never depend on structures), then the histories of their
        outputs, which no later update of this bar changes."""
        prices = self.price_sinks if tf == self.compiled.exec_tf else []
        feats = [f for f in self.compiled.features if f.tf == tf]
        indicators = [self.objects[f.key].kernel for f in feats if f.kind == "indicator"]
        structures = []
        for f in feats:
            if f.kind == "structure":
                obj = self.objects[f.key]
                deps = [
                    self._cell[f"{f.deps[slot]}.{name}"] for slot, name in obj.dependency_fields
                ]
                structures.append((*obj.kernel, deps))
        pushes = [
            (*self._cell[f"{f.key}.{o.name}"], self.history[f"{f.key}.{o.name}"])
            for f in feats
            for o in f.outputs
            if f"{f.key}.{o.name}" in self.history
        ]
        seen = self.bars_seen

        def feed(ts: int, o: float, h: float, lo: float, c: float, v: float) -> None:
            seen[tf] += 1
            for price, hist in prices:
                hist.appendleft(price(o, h, lo, c, v))
            for kernel, work, cell in indicators:  # the bar's open time matters to vwap's anchor
                kernel(work, cell, o, h, lo, c, v, ts)
            for kernel, work, deps in structures:
                kernel(work, o, h, lo, c, v, *[mv[k] for mv, k in deps])
            for mv, k, hist in pushes:
                hist.appendleft(mv[k])

        return feed

    def value(self, s: A.Series) -> float:
        return self.getter(s)()

    def getter(self, s: A.Series) -> Callable[[], float]:
        """`value(s)` as a closure over its history or its feature's output array (neither is
        ever replaced, only refilled)."""
        got = self._getters.get(s)
        if got is None:
            hist = self.history.get(s.id)
            off = s.offset
            if hist is None:  # an indicator output read as of now: its own output array
                mv, k = self._cell[s.id]
                got = lambda: mv[k]  # noqa: E731
            elif off == 0:
                got = lambda: hist[0] if hist else math.nan  # noqa: E731
            else:
                got = lambda: hist[off] if off < len(hist) else math.nan  # noqa: E731
            self._getters[s] = got
        return got

    def state(self) -> dict[str, Any]:
        """JSON-able state: every feature's own state plus the histories."""
        return {
            "objects": {k: o.to_state() for k, o in self.objects.items()},
            "history": {
                k: [None if math.isnan(x) else x for x in h] for k, h in self.history.items()
            },
            "bars_seen": dict(self.bars_seen),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from `state()` output: everything is refilled in place, so getters and bound
        updates keep working."""
        for f in self.compiled.features:
            st = state["objects"][f.key]
            restored = (
                indicators.restore_incremental(st)
                if f.kind == "indicator"
                else structures.restore_structure(st)
            )
            self.objects[f.key].assign(restored)
        if set(state["history"]) != set(self.history):
            raise ValueError("feature state does not match this Play's series")
        for k, vals in state["history"].items():
            hist = self.history[k]
            hist.clear()
            hist.extend(math.nan if x is None else x for x in vals)
        self.bars_seen.update(dict.fromkeys(self.timeframes(), 0) | dict(state["bars_seen"]))
