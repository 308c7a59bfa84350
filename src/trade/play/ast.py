"""The condition AST: syntax nodes from the parser and typed nodes from the type checker.

Syntax nodes keep names unresolved (a string may be a reference or an enum literal until the type
checker sees the other operand). Typed nodes are what both evaluators run: every operand is a
constant, a series read at an offset, or arithmetic over those. Every node carries the key path it
came from so errors point at the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..features.catalog import ValueKind

COMPARISON_OPS = (">", ">=", "<", "<=", "==", "!=")
SPECIAL_OPS = ("between", "in", "near_pct", "near_abs", "cross_above", "cross_below")
OPERATORS = COMPARISON_OPS + SPECIAL_OPS
ARITH_OPS = ("+", "-", "*", "/", "%")
WINDOW_KINDS = ("holds_for", "occurred_within", "count_true")


class Truth:
    """Three-valued truth encoded so AND = min, OR = max and NOT = 2 − x (NOT missing = missing)."""

    FALSE = 0
    MISSING = 1
    TRUE = 2


# ---------------------------------------------------------------- syntax (parser output)


@dataclass(frozen=True)
class Num:
    value: float | int | bool
    path: str


@dataclass(frozen=True)
class Name:
    text: str
    path: str


@dataclass(frozen=True)
class ArithSyntax:
    op: str
    left: ExprSyntax
    right: ExprSyntax
    path: str


ExprSyntax = Num | Name | ArithSyntax


@dataclass(frozen=True)
class CmpSyntax:
    op: str
    lhs: ExprSyntax
    rhs: ExprSyntax | tuple[ExprSyntax, ...]
    tol: float | None
    path: str


@dataclass(frozen=True)
class BoolSyntax:
    """A bare bool reference used as a condition (`piv.pivot_this_bar`)."""

    ref: Name
    path: str


@dataclass(frozen=True)
class LogicSyntax:
    op: str  # all | any
    items: tuple[CondSyntax, ...]
    path: str


@dataclass(frozen=True)
class NotSyntax:
    item: CondSyntax
    path: str


@dataclass(frozen=True)
class WindowSyntax:
    kind: str
    bars: int | None
    duration_ms: int | None
    min_true: int | None
    expr: CondSyntax
    path: str


@dataclass(frozen=True)
class SetupSyntax:
    name: str
    path: str


CondSyntax = CmpSyntax | BoolSyntax | LogicSyntax | NotSyntax | WindowSyntax | SetupSyntax


# ---------------------------------------------------------------- typed (type checker output)


class Kind(StrEnum):
    """Static type of an operand (a feature output's ValueKind, or an enum literal)."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    ENUM = "enum"


def kind_of(value_kind: ValueKind) -> Kind:
    return Kind(value_kind.value)


@dataclass(frozen=True)
class Const:
    value: float
    kind: Kind
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Series:
    """A series read as of the evaluation instant, `offset` bars back in its own timeframe."""

    id: str  # "close", "ema_fast.value", "piv.high_level", "position.side"
    offset: int
    kind: Kind
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Arith:
    op: str
    left: Expr
    right: Expr
    kind: Kind


Expr = Const | Series | Arith


@dataclass(frozen=True)
class Cmp:
    op: str
    lhs: Expr
    rhs: tuple[Expr, ...]  # one operand, two for between, any number for in
    tol: float | None = None


@dataclass(frozen=True)
class Logic:
    op: str  # all | any
    items: tuple[Cond, ...]


@dataclass(frozen=True)
class Not:
    item: Cond


@dataclass(frozen=True)
class Window:
    kind: str  # holds_for | occurred_within | count_true
    bars: int
    min_true: int
    expr: Cond


Cond = Cmp | Logic | Not | Window


def series_in(node: Cond | Expr) -> set[Series]:
    """Every series a condition or expression reads (so a driver knows what to provide)."""
    out: set[Series] = set()

    def walk(n: Cond | Expr) -> None:
        if isinstance(n, Series):
            out.add(n)
        elif isinstance(n, Arith):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, Cmp):
            walk(n.lhs)
            for r in n.rhs:
                walk(r)
        elif isinstance(n, Logic):
            for i in n.items:
                walk(i)
        elif isinstance(n, Not):
            walk(n.item)
        elif isinstance(n, Window):
            walk(n.expr)

    walk(node)
    return out
