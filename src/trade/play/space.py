"""The search space of a sweep: the values of each swept variable, the constraints between them, and
the `--param` syntax. One definition for the Play's `sweep:` block and the command line.

Nothing here runs a backtest; values come out as the text a `--set name=value` would carry, so a
combination is replayed by `trade backtest run --set …` exactly.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .model import Scalar, SweepParam

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_CONSTRAINT_RE = re.compile(r"^\s*(\S+?)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")
_NAME_RE = re.compile(r"[A-Za-z_]\w*")
MAX_COMBINATIONS = 1_000_000


def values_of(p: SweepParam) -> list[Scalar]:
    """The ordered values of one parameter (ints stay ints; floats are rounded to 12 digits so
    `0.1 + 2 × 0.1` is written as 0.3)."""
    if p.choices is not None:
        return list(dict.fromkeys(p.choices))
    assert p.low is not None and p.high is not None
    ints = all(isinstance(x, int) for x in (p.low, p.high, p.step or 1))
    if p.log:
        assert p.count is not None
        a, b = math.log(p.low), math.log(p.high)
        raw = [math.exp(a + (b - a) * i / (p.count - 1)) for i in range(p.count)]
        if ints:
            return list(dict.fromkeys(round(x) for x in raw))
        return [round(x, 12) for x in raw]
    step = p.step if p.step is not None else 1
    n = math.floor((p.high - p.low) / step + 1e-9) + 1
    if n > MAX_COMBINATIONS:
        raise InputError(f"a range of {n:,} values; at most {MAX_COMBINATIONS:,}")
    if ints:
        return [int(p.low + i * step) for i in range(n)]
    return [round(p.low + i * step, 12) for i in range(n)]


def as_text(value: Scalar) -> str:
    """The `--set` text of a value (YAML reads it back as the same value)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Constraint:
    text: str
    left: str | float
    op: str
    right: str | float

    def names(self) -> list[str]:
        return [x for x in (self.left, self.right) if isinstance(x, str)]

    def holds(self, values: Mapping[str, Any]) -> bool:
        def side(x: str | float) -> Any:
            return values[x] if isinstance(x, str) else x

        try:
            return bool(OPS[self.op](side(self.left), side(self.right)))
        except TypeError:  # a string choice against a number: the combination is not allowed
            return False


def parse_constraint(text: str) -> Constraint:
    """`fast < slow`, `slow >= 2` … → Constraint; ValueError naming what was expected."""
    m = _CONSTRAINT_RE.match(text)
    if m is None:
        raise ValueError(
            f"constraint {text!r}: expected `name OP name` or `name OP number` with OP one of "
            f"{' '.join(OPS)}"
        )

    def operand(tok: str) -> str | float:
        if _NAME_RE.fullmatch(tok):
            return tok
        try:
            return float(tok)
        except ValueError:
            raise ValueError(
                f"constraint {text!r}: {tok!r} is neither a variable nor a number"
            ) from None

    c = Constraint(text.strip(), operand(m.group(1)), m.group(2), operand(m.group(3)))
    if not c.names():
        raise ValueError(f"constraint {text!r} names no variable")
    return c


@dataclass(frozen=True)
class Space:
    """Swept variables (in order) with their values, and the constraints every combination meets.
    `fixed` holds the Play's other variables (constraints may name them)."""

    params: dict[str, list[Scalar]]
    constraints: tuple[Constraint, ...]
    fixed: Mapping[str, Any]

    def allowed(self, values: Mapping[str, Any]) -> bool:
        merged = {**self.fixed, **values}
        return all(c.holds(merged) for c in self.constraints)

    def grid(self) -> Iterator[dict[str, Scalar]]:
        """Every allowed combination, the last parameter varying fastest."""
        names = list(self.params)
        for combo in itertools.product(*(self.params[n] for n in names)):
            values = dict(zip(names, combo, strict=True))
            if self.allowed(values):
                yield values

    def size(self) -> int:
        return math.prod(len(v) for v in self.params.values())


def parse_param(item: str) -> tuple[str, SweepParam]:
    """`--param name=lo..hi:step`, `name=lo..hi` (step 1) or `name=a,b,c` → (name, SweepParam)."""
    import yaml
    from pydantic import ValidationError

    name, sep, spec = item.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not _NAME_RE.fullmatch(name) or not spec:
        raise InputError(f"--param {item!r}: expected name=lo..hi:step, name=lo..hi or name=a,b,c")

    def scalar(tok: str) -> Any:
        try:
            v = yaml.safe_load(tok)
        except yaml.YAMLError:
            return tok
        return v if isinstance(v, bool | int | float | str) else tok

    try:
        if ".." in spec:
            rng, _, step = spec.partition(":")
            lo, _, hi = rng.partition("..")
            nums = [scalar(x.strip()) for x in (lo, hi, step or "1")]
            if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in nums):
                raise InputError(f"--param {item!r}: lo, hi and step must be numbers")
            return name, SweepParam(low=nums[0], high=nums[1], step=nums[2])
        return name, SweepParam(choices=[scalar(x.strip()) for x in spec.split(",")])
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise InputError(f"--param {item!r}: {msg}") from None


def check_sweep(
    sweep: Any,
    variables: Mapping[str, Any],
    report: Callable[[str, str], None],
    metric_names: Sequence[str],
) -> None:
    """The `sweep:` block's cross-checks the model cannot make: every swept or constrained name
    is a variable of the Play, ranges are not empty, the objective is a metric."""
    from ..features.catalog import did_you_mean

    for name, p in sweep.params.items():
        path = f"sweep.params.{name}"
        if name not in variables:
            hint = did_you_mean(name, variables) or (
                f"; the Play declares: {', '.join(variables) or 'no variables'}"
            )
            report(path, f"unknown variable {name!r}{hint}")
            continue
        try:
            if not values_of(p):
                report(path, "empty range")
        except InputError as exc:
            report(path, str(exc))
    for i, text in enumerate(sweep.constraints):
        path = f"sweep.constraints[{i}]"
        try:
            c = parse_constraint(text)
        except ValueError as exc:
            report(path, str(exc))
            continue
        for n in c.names():
            if n not in variables:
                report(
                    path, f"constraint {text!r}: unknown variable {n!r}{did_you_mean(n, variables)}"
                )
    if sweep.objective not in metric_names:
        report(
            "sweep.objective",
            f"{sweep.objective!r} is not a metric{did_you_mean(sweep.objective, metric_names)}; "
            f"expected one of {', '.join(metric_names)}",
        )
