"""Indicators: one jitted step per indicator, driven in batch (whole arrays) or incrementally.

`compute_batch` runs a step over every bar inside numba; `make_incremental` wraps the same step for
one bar at a time, with state that serialises to JSON and restores exactly. The registry fills the
DSL's feature catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...data.bars import Bars
from ..catalog import FeatureCatalog, FeatureSpec
from . import steps
from .library import CONVERGENCE, DEFS, NAN_SLOTS, SOURCES, IndicatorDef

INDICATORS: dict[str, IndicatorDef] = DEFS

__all__ = [
    "INDICATORS",
    "SOURCES",
    "IncrementalIndicator",
    "compute_batch",
    "make_incremental",
    "register_indicators",
    "restore_incremental",
]


def spec_of(d: IndicatorDef) -> FeatureSpec:
    return FeatureSpec(
        name=d.name,
        kind="indicator",
        params=d.params,
        outputs=d.outputs,
        warmup=_warmup(d),
        has_source=d.has_source,
        check=d.check,
        doc=d.doc,
    )


def _warmup(d: IndicatorDef) -> Any:
    """First valid value plus the bars a recursive indicator needs to forget its seed."""
    conv = CONVERGENCE.get(d.name)
    return d.warmup if conv is None else (lambda p: d.warmup(p) + conv(p))


def register_indicators(catalog: FeatureCatalog) -> None:
    """Add every indicator's FeatureSpec to `catalog`."""
    for d in DEFS.values():
        catalog.register(spec_of(d))


def _initial_state(d: IndicatorDef, params: Mapping[str, Any]) -> np.ndarray:
    st = np.zeros(d.state_size(params))
    for k in NAN_SLOTS.get(d.name, lambda p: ())(params):
        st[k] = np.nan
    return st


def _driver(d: IndicatorDef) -> Any:
    """The cached jitted loop over all bars for this indicator's step."""
    return getattr(steps, f"{d.name}_batch")


def _lookup(name: str) -> IndicatorDef:
    d = DEFS.get(name)
    if d is None:
        raise KeyError(f"unknown indicator {name!r}")
    return d


def compute_batch(
    name: str, params: Mapping[str, Any], bars: Bars, source: str | None = None
) -> dict[str, np.ndarray]:
    """Every output of `name` over all bars (NaN before valid). Params must be resolved."""
    d = _lookup(name)
    out = np.empty((len(bars), len(d.outputs)))
    st = _initial_state(d, params)
    p = np.array(d.encode(params, source), dtype=np.float64)
    if len(bars):
        _driver(d)(st, p, bars.open, bars.high, bars.low, bars.close, bars.volume, bars.ts, out)
    return {o.name: np.ascontiguousarray(out[:, k]) for k, o in enumerate(d.outputs)}


class IncrementalIndicator:
    """One indicator updated bar by bar through the same jitted step as the batch driver."""

    def __init__(
        self,
        name: str,
        params: Mapping[str, Any],
        source: str | None = None,
        state: np.ndarray | None = None,
    ) -> None:
        self.d = _lookup(name)
        self.name = name
        self.params = dict(params)
        self.source = source
        self.p = np.array(self.d.encode(params, source), dtype=np.float64)
        self.st = _initial_state(self.d, params) if state is None else state
        self._bar = np.zeros((5, 1))
        self._ts = np.zeros(1, dtype=np.int64)
        self._out = np.full((1, len(self.d.outputs)), np.nan)

    def update(
        self, open: float, high: float, low: float, close: float, volume: float, ts: int = 0
    ) -> None:
        b = self._bar
        b[0, 0], b[1, 0], b[2, 0], b[3, 0], b[4, 0] = open, high, low, close, volume
        self._ts[0] = ts
        self.d.step(self.st, self.p, b[0], b[1], b[2], b[3], b[4], self._ts, 0, self._out)

    def values(self) -> tuple[float, ...]:
        return tuple(float(x) for x in self._out[0])

    def to_state(self) -> dict[str, Any]:
        """JSON-able: name, params, source, the state array and the last outputs (NaN as None)."""
        return {
            "name": self.name,
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params.items()},
            "source": self.source,
            "state": [None if x != x else float(x) for x in self.st],
            "out": [None if x != x else float(x) for x in self._out[0]],
        }


def make_incremental(
    name: str, params: Mapping[str, Any], source: str | None = None
) -> IncrementalIndicator:
    return IncrementalIndicator(name, params, source)


def restore_incremental(state: Mapping[str, Any]) -> IncrementalIndicator:
    st = np.array([np.nan if x is None else x for x in state["state"]], dtype=np.float64)
    ind = IncrementalIndicator(state["name"], state["params"], state["source"], st)
    ind._out[0] = [np.nan if x is None else x for x in state["out"]]
    return ind
