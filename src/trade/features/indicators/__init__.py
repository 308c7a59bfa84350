"""Indicators: one jitted run per indicator (steps.py), driven in batch or incrementally.

`compute_batch` calls the run once over whole arrays; `make_incremental` feeds the same run one bar
at a time, with state that serialises to JSON and restores exactly. `register_indicators` fills the
DSL's feature catalog. Nothing here reads data or files: callers pass bars in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...data.bars import Bars
from ..catalog import FeatureCatalog, FeatureSpec
from ..work import WorkArrayDriver
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
    out = np.empty((len(d.outputs), len(bars)))
    st = _initial_state(d, params)
    p = np.array(d.encode(params, source), dtype=np.float64)
    if len(bars):
        d.run(st, p, bars.open, bars.high, bars.low, bars.close, bars.volume, bars.ts, out)
    return {o.name: out[k] for k, o in enumerate(d.outputs)}


_HEAD = 7  # open, high, low, close, volume, n_out, n_params (see steps._views)


class IncrementalIndicator(WorkArrayDriver):
    """One indicator updated bar by bar through the same jitted run as the batch driver.

    Everything it owns lives in one float64 work array (bar, outputs, params, state) so an update
    is a single cheap call into numba.
    """

    _kind = "indicator"

    def __init__(
        self,
        name: str,
        params: Mapping[str, Any],
        source: str | None = None,
        state: np.ndarray | None = None,
    ) -> None:
        self.d = _lookup(name)
        self.name = self._label = name
        self.params = dict(params)
        self.source = source
        p = self.d.encode(params, source)
        st = _initial_state(self.d, params) if state is None else state
        k = len(self.d.outputs)
        self._k, self._o0, self._p0 = k, _HEAD, _HEAD + k
        self._st0 = self._p0 + len(p)
        w = np.empty(self._st0 + len(st))
        w[:5] = 0.0
        w[5], w[6] = k, len(p)
        w[_HEAD : self._p0] = np.nan
        w[self._p0 : self._st0] = p
        w[self._st0 :] = st
        self._w = w
        self._ts = np.zeros(1, dtype=np.int64)
        self._inc = getattr(steps, f"{name}_inc")

    def update(
        self, open: float, high: float, low: float, close: float, volume: float, ts: int = 0
    ) -> None:
        """Consume one closed bar; `ts` (bar open time, ms UTC) matters only to vwap's anchor."""
        self._inc(self._w, self._ts, open, high, low, close, volume, ts)

    @property
    def kernel(self) -> tuple[Any, np.ndarray, np.ndarray]:
        """(jitted step, work array, ts cell): `step(work, cell, o, h, lo, c, v, ts)` is `update`
        without its Python frame, for drivers that update many features per bar."""
        return self._inc, self._w, self._ts

    def to_state(self) -> dict[str, Any]:
        """JSON-able: name, params, source, the state array and the last outputs (NaN as None)."""
        return {
            "name": self.name,
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params.items()},
            "source": self.source,
            "state": [None if x != x else x for x in self.state.tolist()],
            "out": [None if x != x else x for x in self.values()],
        }


def make_incremental(
    name: str, params: Mapping[str, Any], source: str | None = None
) -> IncrementalIndicator:
    """An incremental driver for `name` with resolved `params` (source defaults to close)."""
    return IncrementalIndicator(name, params, source)


def restore_incremental(state: Mapping[str, Any]) -> IncrementalIndicator:
    """Rebuild an incremental driver from `to_state()` output; it continues exactly."""
    st = np.array([np.nan if x is None else x for x in state["state"]], dtype=np.float64)
    ind = IncrementalIndicator(state["name"], state["params"], state["source"], st)
    ind._w[_HEAD : ind._p0] = [np.nan if x is None else x for x in state["out"]]
    return ind
