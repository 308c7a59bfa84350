"""Market structure detectors: swing, trend, market_structure, fibonacci, zone, derived_zone,
rolling_window. One class each (detectors.py); the batch driver runs the same update over a series."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...data.bars import Bars
from ..catalog import FeatureCatalog, FeatureSpec, OutputSpec, ParamSpec, ValueKind
from . import detectors as D

__all__ = [
    "STRUCTURES",
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
    spec: FeatureSpec
    cls: type[D.Detector]


LEVELS = ParamSpec("levels", list, (0.382, 0.5, 0.618), doc="ratios of the swing range")
STRUCTURES: dict[str, StructureDef] = {
    "swing": StructureDef(
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
        D.Swing,
    ),
    "trend": StructureDef(
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
        D.Trend,
    ),
    "market_structure": StructureDef(
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
        D.MarketStructure,
    ),
    "fibonacci": StructureDef(
        FeatureSpec(
            "fibonacci",
            "structure",
            (LEVELS, ParamSpec("mode", str, "retracement", choices=("retracement", "extension"))),
            _fib_outputs,
            lambda p: 0,
            uses=("swing",),
            doc="fibonacci levels of the latest swing pair",
        ),
        D.Fibonacci,
    ),
    "zone": StructureDef(
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
        D.Zone,
    ),
    "derived_zone": StructureDef(
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
        D.DerivedZone,
    ),
    "rolling_window": StructureDef(
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
        D.RollingWindow,
    ),
}


def register_structures(catalog: FeatureCatalog) -> None:
    """Add every structure detector's FeatureSpec to `catalog`."""
    for d in STRUCTURES.values():
        catalog.register(d.spec)


def make_structure(type_: str, params: Mapping[str, Any]) -> D.Detector:
    return STRUCTURES[type_].cls(dict(params))


def restore_structure(state: Mapping[str, Any]) -> D.Detector:
    params = dict(state["params"])
    if "levels" in params:
        params["levels"] = tuple(params["levels"])
    det = make_structure(state["type"], params)
    det.load_state(state)
    return det


def compute_structure_batch(
    type_: str, params: Mapping[str, Any], bars: Bars, deps: Mapping[str, Mapping[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Run the detector over every bar; deps are the dependencies' field arrays by slot."""
    d = STRUCTURES[type_]
    det = make_structure(type_, params)
    names = [o.name for o in d.spec.outputs_for(params)]
    out = np.full((len(bars), len(names)), np.nan)
    dep_cols = {slot: {k: a.tolist() for k, a in fields.items()} for slot, fields in deps.items()}
    o, h, lo, c, v = (x.tolist() for x in (bars.open, bars.high, bars.low, bars.close, bars.volume))
    for i in range(len(bars)):
        row = {slot: {k: col[i] for k, col in fields.items()} for slot, fields in dep_cols.items()}
        det.update(o[i], h[i], lo[i], c[i], v[i], row)
        out[i] = det.values()
    return {n: np.ascontiguousarray(out[:, k]) for k, n in enumerate(names)}
