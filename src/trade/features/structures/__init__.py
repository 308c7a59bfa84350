"""Market structure detectors: swing, trend, market_structure, fibonacci, zone, derived_zone,
rolling_window. One jitted run each (detectors.py), driven in batch or incrementally.

`compute_structure_batch` calls the run once over whole arrays; `make_structure` feeds the same run
one bar at a time, with state that serialises to JSON and restores exactly, so batch and incremental
values are identical by construction. `register_structures` fills the DSL's feature catalog.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...data.bars import Bars
from ..catalog import FeatureCatalog, FeatureSpec, OutputSpec, ParamSpec, ValueKind
from ..work import WorkArrayDriver
from . import detectors as D

__all__ = [
    "STRUCTURES",
    "IncrementalStructure",
    "compute_structure_batch",
    "make_structure",
    "register_structures",
    "restore_structure",
]

INT, B = ValueKind.INT, ValueKind.BOOL


def _e(name: str, members: tuple[str, ...]) -> OutputSpec:
    return OutputSpec(name, ValueKind.ENUM, members)


def _fib_outputs(p: Mapping[str, Any]) -> tuple[OutputSpec, ...]:
    return (
        *(OutputSpec(f"level[{r:g}]") for r in p["levels"]),
        OutputSpec("anchor_high"),
        OutputSpec("anchor_low"),
        OutputSpec("range"),
        _e("direction", D.DIRS),
    )


def _dz_outputs(p: Mapping[str, Any]) -> tuple[OutputSpec, ...]:
    slots = []
    for k in range(p["max_active"]):
        slots += [
            OutputSpec(f"zone[{k}].upper"),
            OutputSpec(f"zone[{k}].lower"),
            _e(f"zone[{k}].state", D.ZONE_STATES),
            OutputSpec(f"zone[{k}].touched", B),
            OutputSpec(f"zone[{k}].inside", B),
        ]
    return (
        *slots,
        OutputSpec("any_active", B),
        OutputSpec("any_touched", B),
        OutputSpec("any_inside", B),
        OutputSpec("closest_active_lower"),
        OutputSpec("closest_active_upper"),
        OutputSpec("active_count", INT),
    )


@dataclass(frozen=True)
class StructureDef:
    """A detector: its catalog spec, its jitted run and entry point, and its layout helpers."""

    spec: FeatureSpec
    run: Callable[..., None]  # (st, p, o, h, lo, c, v, d, out) over any number of bars
    inc: Callable[..., None]  # (work, o, h, lo, c, v, *dependency fields): one bar
    encode: Callable[[Mapping[str, Any]], list[float]]  # params → p
    deps: Callable[[Mapping[str, Any]], D.Deps]  # params → (slot, field) rows of d
    init: Callable[[Mapping[str, Any]], D.Init]  # params → initial state, outputs before any bar


def _def(spec: FeatureSpec) -> StructureDef:
    """Bind a spec to the run, entry point and helpers named after it in detectors.py."""
    n = spec.name
    return StructureDef(
        spec,
        getattr(D, f"{n}_run"),
        getattr(D, f"{n}_inc"),
        getattr(D, f"{n}_params"),
        getattr(D, f"{n}_deps"),
        getattr(D, f"{n}_init"),
    )


LEVELS = ParamSpec("levels", list, (0.382, 0.5, 0.618), doc="ratios of the swing range")
STRUCTURES: dict[str, StructureDef] = {
    "swing": _def(
        FeatureSpec(
            "swing",
            "structure",
            (
                ParamSpec("mode", str, "fractal", choices=("fractal", "atr_zigzag")),
                ParamSpec("left", int, 3, min=1, max=500),
                ParamSpec("right", int, 3, min=1, max=500),
                ParamSpec("atr_length", int, 14, min=1, max=1000),
                ParamSpec("atr_multiplier", float, 2.0, min=0.01, max=100),
                ParamSpec("min_pct_move", float, 0.0, min=0.0, max=100),
                ParamSpec("strict_alternation", bool, False),
            ),
            (
                OutputSpec("high_level"),
                OutputSpec("high_idx", INT),
                OutputSpec("low_level"),
                OutputSpec("low_idx", INT),
                _e("last_pivot_type", D.PIVOTS),
                OutputSpec("pivot_this_bar", B),
                _e("pair_direction", D.DIRS),
                OutputSpec("version", INT),
            ),
            lambda p: p["left"] + p["right"] + 1 if p["mode"] == "fractal" else p["atr_length"] + 1,
            doc="swing pivots (fractal or ATR zigzag)",
        ),
    ),
    "trend": _def(
        FeatureSpec(
            "trend",
            "structure",
            (),
            (
                OutputSpec("direction", INT),
                OutputSpec("strength", INT),
                OutputSpec("bars_in_trend", INT),
                _e("last_wave", D.WAVES),
            ),
            lambda p: 0,
            uses=("swing",),
            doc="HH/HL/LH/LL waves",
        ),
    ),
    "market_structure": _def(
        FeatureSpec(
            "market_structure",
            "structure",
            (ParamSpec("confirmation", str, "close", choices=("close", "wick")),),
            (
                _e("bias", D.DIRS),
                OutputSpec("bos_this_bar", B),
                OutputSpec("choch_this_bar", B),
                _e("bos_direction", D.DIRS),
                _e("choch_direction", D.DIRS),
                OutputSpec("last_bos_level"),
                OutputSpec("last_choch_level"),
            ),
            lambda p: 0,
            uses=("swing",),
            doc="break of structure / change of character",
        ),
    ),
    "fibonacci": _def(
        FeatureSpec(
            "fibonacci",
            "structure",
            (LEVELS, ParamSpec("mode", str, "retracement", choices=("retracement", "extension"))),
            _fib_outputs,
            lambda p: 0,
            uses=("swing",),
            doc="fibonacci levels of the latest swing pair",
        ),
    ),
    "zone": _def(
        FeatureSpec(
            "zone",
            "structure",
            (
                ParamSpec("width_atr", float, 0.5, min=0.0, max=100),
                ParamSpec("zone_type", str, "demand", choices=("demand", "supply")),
            ),
            (
                _e("state", D.ZONE_STATES),
                OutputSpec("upper"),
                OutputSpec("lower"),
                OutputSpec("age_bars", INT),
            ),
            lambda p: 0,
            uses=("swing", "atr"),
            doc="demand/supply zone around new pivots",
        ),
    ),
    "derived_zone": _def(
        FeatureSpec(
            "derived_zone",
            "structure",
            (
                LEVELS,
                ParamSpec("max_active", int, 3, min=1, max=20),
                ParamSpec("width_pct", float, 0.1, min=0.0, max=50),
            ),
            _dz_outputs,
            lambda p: 0,
            uses=("swing",),
            doc="zones at fibonacci levels of each new pair",
        ),
    ),
    "rolling_window": _def(
        FeatureSpec(
            "rolling_window",
            "structure",
            (
                ParamSpec("size", int, 20, min=1, max=100_000),
                ParamSpec("field", str, "high", choices=("open", "high", "low", "close", "volume")),
                ParamSpec("mode", str, "max", choices=("max", "min")),
                ParamSpec("include_current", bool, False),
            ),
            (OutputSpec("value"),),
            lambda p: p["size"] + (0 if p["include_current"] else 1) - 1,
            doc="min/max over a window",
        ),
    ),
}


def register_structures(catalog: FeatureCatalog) -> None:
    """Add every structure detector's FeatureSpec to `catalog`."""
    for d in STRUCTURES.values():
        catalog.register(d.spec)


def _lookup(type_: str) -> StructureDef:
    d = STRUCTURES.get(type_)
    if d is None:
        raise KeyError(f"unknown structure {type_!r}")
    return d


def compute_structure_batch(
    type_: str, params: Mapping[str, Any], bars: Bars, deps: Mapping[str, Mapping[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Every output of the detector over all bars; deps are the dependencies' field arrays by slot."""
    d = _lookup(type_)
    names = [o.name for o in d.spec.outputs_for(params)]
    n = len(bars)
    out = np.empty((len(names), n))
    if n:
        fields = d.deps(params)
        dep = np.empty((len(fields), n))
        for j, (slot, name) in enumerate(fields):
            col = np.asarray(deps[slot][name], dtype=np.float64)
            if col.shape != (n,):
                raise ValueError(f"{type_}: dependency {slot}.{name} has {col.shape}, bars {n}")
            dep[j] = col
        st, _ = d.init(params)
        p = np.array(d.encode(params), dtype=np.float64)
        d.run(
            np.array(st, dtype=np.float64),
            p,
            bars.open,
            bars.high,
            bars.low,
            bars.close,
            bars.volume,
            dep,
            out,
        )
    return {name: out[k] for k, name in enumerate(names)}


class IncrementalStructure(WorkArrayDriver):
    """One detector updated bar by bar through the same jitted run as the batch driver.

    Everything it owns lives in one float64 work array (bar, dependency fields, outputs, params,
    state) so an update is a single cheap call into numba.
    """

    _kind = "detector"

    def __init__(
        self,
        type_: str,
        params: Mapping[str, Any],
        state: list[float] | None = None,
        out: list[float] | None = None,
    ) -> None:
        self.d = _lookup(type_)
        self.type_name = self._label = type_
        self.params = dict(params)
        self.fields = tuple(o.name for o in self.d.spec.outputs_for(self.params))
        self._deps = self.d.deps(self.params)
        p = self.d.encode(self.params)
        st0, out0 = self.d.init(self.params)
        st = st0 if state is None else state
        out = out0 if out is None else out
        if len(st) != len(st0) or len(out) != len(self.fields):
            raise ValueError(f"{type_}: state does not match its params")
        nd, k = len(self._deps), len(self.fields)
        self._o0 = D.HEAD + nd
        self._p0 = self._o0 + k
        self._st0 = self._p0 + len(p)
        w = np.zeros(self._st0 + len(st))
        w[5], w[6], w[7] = nd, k, len(p)
        w[self._o0 : self._p0] = out
        w[self._p0 : self._st0] = p
        w[self._st0 :] = st
        self._w = w
        self._inc: Callable[..., None] = self.d.inc

    def update(
        self,
        o: float,
        h: float,
        lo: float,
        c: float,
        v: float,
        deps: Mapping[str, Mapping[str, float]],
    ) -> None:
        """Consume one closed bar and the dependencies' fields at that bar."""
        self._inc(self._w, o, h, lo, c, v, *[deps[slot][f] for slot, f in self._deps])

    @property
    def dependency_fields(self) -> tuple[tuple[str, str], ...]:
        """(slot, field) of every dependency value an update takes, in the order it takes them."""
        return tuple(self._deps)

    @property
    def kernel(self) -> tuple[Callable[..., None], np.ndarray]:
        """(jitted step, work array): `step(work, o, h, lo, c, v, *dependency values)` is
        `update` without its Python frame and mappings, for drivers that update many features."""
        return self._inc, self._w

    def to_state(self) -> dict[str, Any]:
        """JSON-able: type, params, the state array and the last outputs (NaN as None)."""
        return {
            "type": self.type_name,
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params.items()},
            "state": [None if x != x else x for x in self.state.tolist()],
            "out": [None if x != x else x for x in self.values()],
        }


def make_structure(type_: str, params: Mapping[str, Any]) -> IncrementalStructure:
    """An incremental driver for the detector `type_` with resolved `params`."""
    return IncrementalStructure(type_, params)


def restore_structure(state: Mapping[str, Any]) -> IncrementalStructure:
    """Rebuild an incremental driver from `to_state()` output; it continues exactly."""
    params = dict(state["params"])
    if "levels" in params:
        params["levels"] = tuple(params["levels"])

    def dec(xs: list[float | None]) -> list[float]:
        return [math.nan if x is None else float(x) for x in xs]

    return IncrementalStructure(state["type"], params, dec(state["state"]), dec(state["out"]))
