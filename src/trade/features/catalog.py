"""The feature catalog: what the DSL may reference, with typed params and typed outputs.

The Play type checker knows features only through this interface; the indicator and structure
registries fill it. Every output is carried at run time as a float64 array (or float per bar):
NaN means missing, bools are 0.0/1.0, ints are integral floats and enums are the index of the
member in `OutputSpec.members`. One encoding keeps both condition evaluators trivial and identical.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ValueKind(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    ENUM = "enum"


@dataclass(frozen=True)
class OutputSpec:
    """One typed output of a feature (an indicator line or a structure field)."""

    name: str
    kind: ValueKind = ValueKind.FLOAT
    members: tuple[str, ...] = ()  # enum members, encoded as their index
    doc: str = ""

    def encode(self, member: str) -> float:
        """Float code of an enum member (its index)."""
        return float(self.members.index(member))


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class ParamSpec:
    """A validated parameter: type, default, inclusive bounds or choices."""

    name: str
    type: type  # int, float, str, bool or list (a list of floats)
    default: Any = REQUIRED
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    doc: str = ""

    def coerce(self, value: Any) -> Any:
        """Return `value` converted to this parameter's type or raise ValueError saying why."""
        t = self.type
        if t is bool:
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            return value
        if t is int:
            if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
                raise ValueError(f"expected an integer, got {value!r}")
            value = int(value)
        elif t is float:
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ValueError(f"expected a number, got {value!r}")
            value = float(value)
        elif t is str:
            if not isinstance(value, str):
                raise ValueError(f"expected a string, got {value!r}")
        elif t is list:
            if not isinstance(value, list | tuple) or not value:
                raise ValueError(f"expected a non-empty list of numbers, got {value!r}")
            out = []
            for v in value:
                if isinstance(v, bool) or not isinstance(v, int | float):
                    raise ValueError(f"expected a list of numbers, got element {v!r}")
                out.append(float(v))
            return tuple(out)
        if self.choices is not None and value not in self.choices:
            opts = ", ".join(str(c) for c in self.choices)
            raise ValueError(f"expected one of {opts}, got {value!r}")
        if self.min is not None and value < self.min:
            raise ValueError(f"must be >= {self.min:g}, got {value!r}")
        if self.max is not None and value > self.max:
            raise ValueError(f"must be <= {self.max:g}, got {value!r}")
        return value


OutputsFn = Callable[[Mapping[str, Any]], tuple[OutputSpec, ...]]


@dataclass(frozen=True)
class FeatureSpec:
    """Everything the DSL needs to know about a feature type (never how to compute it).

    kind: "indicator" (declared under `features:`) or "structure" (under `structures:`).
    outputs: a fixed tuple, or a function of the resolved params (e.g. fibonacci `level[0.618]`).
    warmup: bars of its own timeframe needed before the first valid value, from resolved params.
    uses: dependency slots a structure needs, each naming the required type (`swing`, `atr`).
    check: optional cross-parameter check returning an error message or None.
    """

    name: str
    kind: str
    params: tuple[ParamSpec, ...]
    outputs: tuple[OutputSpec, ...] | OutputsFn
    warmup: Callable[[Mapping[str, Any]], int]
    has_source: bool = False
    uses: tuple[str, ...] = ()
    check: Callable[[Mapping[str, Any]], str | None] | None = None
    doc: str = ""
    param_index: dict[str, ParamSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})

    def resolve_params(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Validated params with defaults applied; raises ValueError with a one-line reason."""
        out: dict[str, Any] = {}
        for key in raw:
            if key not in self.param_index:
                raise ValueError(
                    f"unknown param {key!r} for {self.name}{did_you_mean(key, self.param_index)}"
                )
        for p in self.params:
            if p.name in raw:
                try:
                    out[p.name] = p.coerce(raw[p.name])
                except ValueError as exc:
                    raise ValueError(f"param {p.name!r} of {self.name}: {exc}") from None
            elif p.default is REQUIRED:
                raise ValueError(f"param {p.name!r} of {self.name} is required")
            else:
                out[p.name] = p.default
        if self.check is not None:
            msg = self.check(out)
            if msg:
                raise ValueError(f"{self.name}: {msg}")
        return out

    def outputs_for(self, params: Mapping[str, Any]) -> tuple[OutputSpec, ...]:
        return self.outputs(params) if callable(self.outputs) else self.outputs

    def default_output(self, params: Mapping[str, Any]) -> str | None:
        """`value` for single-output features (so `ema_fast` means `ema_fast.value`)."""
        outs = self.outputs_for(params)
        return outs[0].name if len(outs) == 1 else None


class FeatureCatalog:
    """Name → FeatureSpec, filled by the indicator and structure registries."""

    def __init__(self, specs: Iterable[FeatureSpec] = ()) -> None:
        self._specs: dict[str, FeatureSpec] = {}
        for s in specs:
            self.register(s)

    def register(self, spec: FeatureSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"feature {spec.name!r} registered twice")
        self._specs[spec.name] = spec

    def get(self, name: str) -> FeatureSpec | None:
        return self._specs.get(name)

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for n, s in self._specs.items() if kind is None or s.kind == kind)

    def __contains__(self, name: object) -> bool:
        return name in self._specs


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`; did you mean 'x'?` when a close option exists, else an empty string."""
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""
