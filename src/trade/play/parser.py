"""The one condition parser: YAML values → syntax AST, for every place a condition appears.

It checks shape only (which forms, operators and arities exist); names are resolved and types
checked later by `typecheck`, once the Play's features are known.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import InputError
from ..features.catalog import did_you_mean
from ..timeframes import parse_duration
from .ast import (
    ARITH_OPS,
    OPERATORS,
    WINDOW_KINDS,
    ArithSyntax,
    BoolSyntax,
    CmpSyntax,
    CondSyntax,
    ExprSyntax,
    LogicSyntax,
    Name,
    NotSyntax,
    Num,
    SetupSyntax,
    WindowSyntax,
)
from .model import MAX_BARS

REF_RE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[[^\[\]]+\])*$")
FORMS = ("all", "any", "not", "setup", *WINDOW_KINDS)


class ConditionError(Exception):
    """A problem at a key path inside a condition; the loader adds file and line."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


def parse_condition(value: Any, path: str) -> CondSyntax:
    """Parse any condition form of the DSL (see docs/dsl.md)."""
    if isinstance(value, dict):
        return _parse_form(value, path)
    if isinstance(value, list):
        if len(value) == 3 and isinstance(value[1], str) and value[1] in ARITH_OPS:
            raise ConditionError(
                path,
                "arithmetic is an operand, not a condition; compare it, e.g. [[a, '-', b], '>', 0]",
            )
        if _looks_like_comparison(value):
            return _parse_comparison(value, path)
        if not value:
            raise ConditionError(path, "empty condition list")
        items = tuple(parse_condition(v, f"{path}[{i}]") for i, v in enumerate(value))
        return LogicSyntax("all", items, path)
    if isinstance(value, str) and REF_RE.match(value.strip()):
        return BoolSyntax(Name(value.strip(), path), path)
    raise ConditionError(
        path,
        f"expected a condition ([lhs, op, rhs], a list, or a mapping with one of {', '.join(FORMS)}), got {value!r}",
    )


def _looks_like_comparison(value: list[Any]) -> bool:
    if len(value) not in (3, 4) or not isinstance(value[1], str):
        return False
    op = value[1]
    if op in OPERATORS:
        return True
    # a non-reference token in the operator slot, or a near-miss of an operator, is a typo of one
    return not REF_RE.match(op) or bool(did_you_mean(op, OPERATORS))


def _parse_form(value: dict[str, Any], path: str) -> CondSyntax:
    if len(value) != 1:
        keys = ", ".join(map(str, value))
        raise ConditionError(
            path, f"a condition mapping has exactly one key ({', '.join(FORMS)}), got {keys}"
        )
    ((key, body),) = value.items()
    sub = f"{path}.{key}"
    if key in ("all", "any"):
        if not isinstance(body, list) or not body:
            raise ConditionError(sub, f"'{key}' expects a non-empty list of conditions")
        items = tuple(parse_condition(v, f"{sub}[{i}]") for i, v in enumerate(body))
        return LogicSyntax(key, items, sub)
    if key == "not":
        return NotSyntax(parse_condition(body, sub), sub)
    if key == "setup":
        if not isinstance(body, str):
            raise ConditionError(sub, f"'setup' expects a setup name, got {body!r}")
        return SetupSyntax(body, sub)
    if key in WINDOW_KINDS:
        return _parse_window(key, body, sub)
    raise ConditionError(path, f"unknown condition form {key!r}{did_you_mean(str(key), FORMS)}")


def _parse_window(kind: str, body: Any, path: str) -> WindowSyntax:
    allowed = {"bars", "duration", "expr"} | ({"min_true"} if kind == "count_true" else set())
    if not isinstance(body, dict):
        raise ConditionError(path, f"'{kind}' expects a mapping with bars (or duration) and expr")
    for k in body:
        if k not in allowed:
            raise ConditionError(
                f"{path}.{k}", f"unknown key {k!r} in {kind}{did_you_mean(str(k), allowed)}"
            )
    if "expr" not in body:
        raise ConditionError(path, f"'{kind}' needs 'expr'")
    if ("bars" in body) == ("duration" in body):
        raise ConditionError(path, f"'{kind}' needs exactly one of 'bars' or 'duration'")
    bars = duration_ms = None
    if "bars" in body:
        bars = body["bars"]
        if isinstance(bars, bool) or not isinstance(bars, int) or bars < 1:
            raise ConditionError(f"{path}.bars", f"expected a positive integer, got {bars!r}")
        if bars > MAX_BARS:
            raise ConditionError(f"{path}.bars", f"{bars:,} bars; at most {MAX_BARS:,}")
    else:
        try:
            duration_ms = parse_duration(str(body["duration"]))
        except InputError as exc:
            raise ConditionError(f"{path}.duration", str(exc)) from None
    min_true = None
    if kind == "count_true":
        if "min_true" not in body:
            raise ConditionError(path, "'count_true' needs 'min_true'")
        min_true = body["min_true"]
        if isinstance(min_true, bool) or not isinstance(min_true, int) or min_true < 1:
            raise ConditionError(
                f"{path}.min_true", f"expected a positive integer, got {min_true!r}"
            )
        if bars is not None and min_true > bars:
            raise ConditionError(f"{path}.min_true", f"min_true {min_true} exceeds bars {bars}")
    expr = parse_condition(body["expr"], f"{path}.expr")
    return WindowSyntax(kind, bars, duration_ms, min_true, expr, path)


def _parse_comparison(value: list[Any], path: str) -> CmpSyntax:
    op = value[1]
    if op not in OPERATORS:
        raise ConditionError(
            f"{path}[1]",
            f"unknown operator {op!r}{_operator_hint(op)}; expected one of {' '.join(OPERATORS)}",
        )
    lhs = parse_operand(value[0], f"{path}[0]")
    tol: float | None = None
    if op in ("near_pct", "near_abs"):
        if len(value) != 4:
            raise ConditionError(
                path, f"'{op}' takes a 4th element, the tolerance: [lhs, {op}, rhs, tol]"
            )
        tol = value[3]
        if (
            isinstance(tol, bool)
            or not isinstance(tol, int | float)
            or not math.isfinite(tol)
            or tol < 0
        ):
            raise ConditionError(
                f"{path}[3]", f"tolerance must be a non-negative number, got {tol!r}"
            )
        tol = float(tol)
    elif len(value) != 3:
        raise ConditionError(
            path, f"'{op}' takes exactly 3 elements [lhs, {op}, rhs], got {len(value)}"
        )
    raw = value[2]
    rhs: ExprSyntax | tuple[ExprSyntax, ...]
    if op == "between":
        if not isinstance(raw, list) or len(raw) != 2:
            raise ConditionError(f"{path}[2]", f"'between' expects [low, high], got {raw!r}")
        rhs = tuple(parse_operand(v, f"{path}[2][{i}]") for i, v in enumerate(raw))
    elif op == "in":
        if not isinstance(raw, list) or not raw:
            raise ConditionError(f"{path}[2]", f"'in' expects a non-empty list, got {raw!r}")
        rhs = tuple(parse_operand(v, f"{path}[2][{i}]") for i, v in enumerate(raw))
    else:
        rhs = parse_operand(raw, f"{path}[2]")
    return CmpSyntax(op, lhs, rhs, tol, path)


def parse_operand(value: Any, path: str) -> ExprSyntax:
    """A number, a bool, a reference/enum-literal string, or `[a, op, b]` arithmetic."""
    if isinstance(value, bool):
        return Num(value, path)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConditionError(path, f"expected a finite number, got {value!r}")
        return Num(value, path)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None and math.isfinite(number):
            return Num(int(number) if re.fullmatch(r"[+-]?\d+", text) else number, path)
        if not REF_RE.match(text):
            raise ConditionError(
                path,
                f"bad reference {value!r}; expected a name like ema_fast, bb.upper, fib.level[0.618] or close[1]",
            )
        return Name(text, path)
    if isinstance(value, list):
        if len(value) == 3 and isinstance(value[1], str) and value[1] in ARITH_OPS:
            return ArithSyntax(
                value[1],
                parse_operand(value[0], f"{path}[0]"),
                parse_operand(value[2], f"{path}[2]"),
                path,
            )
        raise ConditionError(
            path,
            f"expected an operand or [a, op, b] with op in {' '.join(ARITH_OPS)}, got {value!r}",
        )
    raise ConditionError(path, f"expected an operand (number, name or arithmetic), got {value!r}")


#: operators written the other way round or as in other languages
_MISSPELT = {"=>": ">=", "=<": "<=", "=": "==", "<>": "!=", "=!": "!="}


def _operator_hint(op: str) -> str:
    if op in _MISSPELT:
        return f"; did you mean {_MISSPELT[op]!r}?"
    return did_you_mean(op, OPERATORS)
