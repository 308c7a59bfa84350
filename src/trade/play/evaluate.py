"""The two condition evaluators over the same typed AST.

`evaluate_vectorised` computes a condition at every evaluation instant at once (numpy; backtest).
`IncrementalCondition` computes it one instant at a time (replay, paper, live). Both use the
three-valued truth of `ast.Truth` (missing is not false) and must agree at every instant; a property
test holds them to that. Neither ever reads a value after the current instant: series sources
answer "as of" the instant, and windows and crossovers look only backwards.
"""

from __future__ import annotations

import math
import operator
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np
from numba import njit

from . import ast as A

F, M, T = A.Truth.FALSE, A.Truth.MISSING, A.Truth.TRUE


class SeriesSource(Protocol):
    """Gives the value of a series at every evaluation instant (offset applied, NaN = missing)."""

    def series(self, s: A.Series) -> np.ndarray: ...


class ValueSource(Protocol):
    """Gives the value of a series at the current evaluation instant (offset applied)."""

    def value(self, s: A.Series) -> float: ...


# ---------------------------------------------------------------- vectorised


def evaluate_vectorised(cond: A.Cond, source: SeriesSource, n: int) -> np.ndarray:
    """Truth (int8: 0 false, 1 missing, 2 true) of `cond` at each of `n` evaluation instants."""
    return _VecEval(source, n).cond(cond)


class _VecEval:
    def __init__(self, source: SeriesSource, n: int) -> None:
        self.source = source
        self.n = n

    def expr(self, e: A.Expr) -> np.ndarray:
        if isinstance(e, A.Const):
            return np.full(self.n, e.value)
        if isinstance(e, A.Series):
            return np.asarray(self.source.series(e), dtype=np.float64)
        left, right = self.expr(e.left), self.expr(e.right)
        with np.errstate(all="ignore"):
            if e.op == "+":
                return left + right
            if e.op == "-":
                return left - right
            if e.op == "*":
                return left * right
            out = left / right if e.op == "/" else np.remainder(left, right)
        out[right == 0] = np.nan
        return out

    def cond(self, c: A.Cond) -> np.ndarray:
        if isinstance(c, A.Cmp):
            return self.cmp(c)
        if isinstance(c, A.Logic):
            parts = [self.cond(i) for i in c.items]
            out = parts[0].copy()
            for p in parts[1:]:
                out = np.minimum(out, p) if c.op == "all" else np.maximum(out, p)
            return out
        if isinstance(c, A.Not):
            return (T - self.cond(c.item)).astype(np.int8)
        return self.window(c)

    def cmp(self, c: A.Cmp) -> np.ndarray:
        lhs = self.expr(c.lhs)
        rhs = [self.expr(r) for r in c.rhs]
        if c.op != "in":  # one jitted pass, no temporaries
            out = np.empty(self.n, dtype=np.int8)
            r1 = rhs[1] if len(rhs) > 1 else rhs[0]
            _compare(_OPS[c.op], lhs, rhs[0], r1, float(c.tol or 0.0), out)
            return out
        missing = np.isnan(lhs)
        for r in rhs:
            missing |= np.isnan(r)
        res = np.zeros(self.n, dtype=bool)
        for r in rhs:
            res |= lhs == r
        out = np.where(res, T, F).astype(np.int8)
        out[missing] = M
        return out

    def window(self, w: A.Window) -> np.ndarray:
        x = self.cond(w.expr)
        n, k = w.bars, w.min_true
        padded = np.concatenate([np.full(n - 1, M, dtype=np.int8), x])
        view = np.lib.stride_tricks.sliding_window_view(padded, n)
        if w.kind == "holds_for":
            return view.min(axis=1).astype(np.int8)
        if w.kind == "occurred_within":
            return view.max(axis=1).astype(np.int8)
        trues = (view == T).sum(axis=1)
        unknown = (view == M).sum(axis=1)
        out = np.full(len(x), M, dtype=np.int8)
        out[trues >= k] = T
        out[trues + unknown < k] = F
        return out


_OPS = {
    op: k
    for k, op in enumerate(
        (">", ">=", "<", "<=", "==", "!=", "between", "near_pct", "near_abs", "cross_above",
         "cross_below")
    )
}  # fmt: skip


@njit(cache=True)
def _compare(
    op: int, lhs: np.ndarray, r0: np.ndarray, r1: np.ndarray, tol: float, out: np.ndarray
) -> None:
    """Truth of `lhs op r0` (`between`: r0..r1; `near_*`: within tol) at each instant; missing
    when an operand is NaN; crossovers compare with the previous instant (missing at the first)."""
    f, m, t = np.int8(F), np.int8(M), np.int8(T)
    for i in range(len(lhs)):
        a, b = lhs[i], r0[i]
        if a != a or b != b:
            out[i] = m
            continue
        if op == 0:
            res = a > b
        elif op == 1:
            res = a >= b
        elif op == 2:
            res = a < b
        elif op == 3:
            res = a <= b
        elif op == 4:
            res = a == b
        elif op == 5:
            res = a != b
        elif op == 6:
            c = r1[i]
            if c != c:
                out[i] = m
                continue
            res = a >= b and a <= c
        elif op == 7:
            res = abs(a - b) <= abs(b) * tol / 100.0
        elif op == 8:
            res = abs(a - b) <= tol
        else:
            pa, pb = (lhs[i - 1], r0[i - 1]) if i > 0 else (np.nan, np.nan)
            if pa != pa or pb != pb:
                out[i] = m
                continue
            res = (pa <= pb and a > b) if op == 9 else (pa >= pb and a < b)
        out[i] = t if res else f


# ---------------------------------------------------------------- incremental


def _arith(op: str, left: float, right: float) -> float:
    """`left op right` for one instant, as `_VecEval.expr` computes it over arrays (IEEE semantics,
    missing in, missing out; x/0 and x%0 are missing)."""
    if math.isnan(left) or math.isnan(right):
        return math.nan
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        return math.nan
    if op == "/":
        return left / right
    return float(np.remainder(left, right))


class IncrementalCondition:
    """A condition evaluated once per evaluation instant, keeping the state windows and crosses need.

    `step` must be called at every instant (even when the result is not used) so that crossovers
    compare with the previous instant and windows count instants, exactly as the vectorised form does.
    The tree binds its operands to the source on the first step (and again if the source changes),
    so a step costs one call per operand.
    """

    def __init__(self, cond: A.Cond) -> None:
        self.root = _build(cond)
        self._source: ValueSource | None = None

    def step(self, source: ValueSource) -> int:
        if source is not self._source:
            self.bind(source)
        return self.root.step()

    def bind(self, source: ValueSource) -> Callable[[], int]:
        """Bind the operands to `source`; returns the step for it (no source check per call)."""
        self.root.bind(source)
        self._source = source
        return self.root.step

    def state(self) -> list[object]:
        """JSON-able state (crossover memories and window buffers) in a fixed walk order."""
        out: list[object] = []
        self.root.dump(out)
        return out

    def restore(self, state: list[object]) -> None:
        it = iter(state)
        self.root.load(it)


class _Node(ABC):
    @abstractmethod
    def step(self) -> int:
        """Truth at this instant (operands read from the bound source); updates the node's memory."""

    def bind(self, source: ValueSource) -> None:
        for child in self.children():
            child.bind(source)

    def dump(self, out: list[object]) -> None:
        for child in self.children():
            child.dump(out)

    def load(self, it: object) -> None:
        for child in self.children():
            child.load(it)

    def children(self) -> list[_Node]:
        return []


def _operand(e: A.Expr, source: ValueSource) -> Callable[[], float]:
    """An operand read from `source` as a closure (arithmetic by `_arith`). A source with
    `getter(series)` hands out a direct closure per series, sparing a look-up per step."""
    if isinstance(e, A.Const):
        v = e.value
        return lambda: v
    if isinstance(e, A.Series):
        make = getattr(source, "getter", None)
        if make is not None:
            return make(e)  # type: ignore[no-any-return]
        s = e
        return lambda: source.value(s)
    op, left, right = e.op, _operand(e.left, source), _operand(e.right, source)
    return lambda: _arith(op, left(), right())


_BINARY: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}

_UNBOUND: Callable[[], float] = lambda: math.nan  # noqa: E731


class _CmpNode(_Node):
    """A comparison: operand binding and memory for every shape, the step of `in`; each other
    shape has a subclass with its own step (see _build)."""

    def __init__(self, c: A.Cmp) -> None:
        self.c = c
        self.lhs = _UNBOUND
        self.rhs = [_UNBOUND for _ in c.rhs]

    def bind(self, source: ValueSource) -> None:
        self.lhs = _operand(self.c.lhs, source)
        self.rhs = [_operand(r, source) for r in self.c.rhs]

    def step(self) -> int:  # `in`: equal to one of the operands
        lhs = self.lhs()
        rhs = [f() for f in self.rhs]
        if math.isnan(lhs) or any(math.isnan(r) for r in rhs):
            return M
        return T if any(lhs == r for r in rhs) else F

    def dump(self, out: list[object]) -> None:
        out.append([None, None])

    def load(self, it: object) -> None:
        next(it)  # type: ignore[call-overload]


class _BinaryNode(_CmpNode):
    """`> >= < <= == !=` against one operand."""

    def __init__(self, c: A.Cmp) -> None:
        super().__init__(c)
        self.op = _BINARY[c.op]

    def step(self) -> int:
        lhs = self.lhs()
        r = self.rhs[0]()
        if lhs != lhs or r != r:  # NaN
            return M
        return T if self.op(lhs, r) else F


class _BetweenNode(_CmpNode):
    """`between` its two bounds (inclusive)."""

    def step(self) -> int:
        x, lo, hi = self.lhs(), self.rhs[0](), self.rhs[1]()
        if x != x or lo != lo or hi != hi:  # NaN
            return M
        return T if lo <= x <= hi else F


class _NearNode(_CmpNode):
    """`near_abs` / `near_pct`: within the tolerance (absolute, or percent of the operand)."""

    def __init__(self, c: A.Cmp) -> None:
        super().__init__(c)
        self.pct = c.op == "near_pct"
        self.tol = c.tol or 0.0

    def step(self) -> int:
        x, r = self.lhs(), self.rhs[0]()
        if x != x or r != r:  # NaN
            return M
        if self.pct:
            return T if abs(x - r) <= abs(r) * self.tol / 100.0 else F
        return T if abs(x - r) <= self.tol else F


class _CrossNode(_CmpNode):
    """cross_above / cross_below against the values at the previous evaluation instant."""

    def __init__(self, c: A.Cmp) -> None:
        super().__init__(c)
        self.above = c.op == "cross_above"
        self.prev_l = math.nan
        self.prev_r = math.nan

    def step(self) -> int:
        lhs = self.lhs()
        r = self.rhs[0]()
        pl, pr = self.prev_l, self.prev_r
        self.prev_l, self.prev_r = lhs, r
        if lhs != lhs or r != r or pl != pl or pr != pr:  # NaN
            return M
        if self.above:
            return T if pl <= pr and lhs > r else F
        return T if pl >= pr and lhs < r else F

    def dump(self, out: list[object]) -> None:
        out.append([_j(self.prev_l), _j(self.prev_r)])

    def load(self, it: object) -> None:
        pl, pr = next(it)  # type: ignore[call-overload]
        self.prev_l, self.prev_r = _f(pl), _f(pr)


class _LogicNode(_Node):
    def __init__(self, c: A.Logic) -> None:
        self.all = c.op == "all"
        self.items = [_build(i) for i in c.items]

    def step(self) -> int:
        # no short-circuit: every node keeps its state
        if self.all:
            out = T
            for item in self.items:
                v = item.step()
                if v < out:
                    out = v
        else:
            out = F
            for item in self.items:
                v = item.step()
                if v > out:
                    out = v
        return out

    def children(self) -> list[_Node]:
        return list(self.items)


class _NotNode(_Node):
    def __init__(self, c: A.Not) -> None:
        self.item = _build(c.item)

    def step(self) -> int:
        return T - self.item.step()

    def children(self) -> list[_Node]:
        return [self.item]


class _WindowNode(_Node):
    """holds_for / occurred_within / count_true over the last `bars` truths.

    The buffer's counts of false, missing and true are kept as truths enter and leave, so a step
    costs the same for any window length: holds_for is the minimum (false if any is false, else
    missing if any is missing), occurred_within the maximum, count_true a threshold on the counts.
    """

    def __init__(self, w: A.Window) -> None:
        self.w = w
        self.item = _build(w.expr)
        self.holds, self.within = w.kind == "holds_for", w.kind == "occurred_within"
        self._fill(deque([M] * w.bars, maxlen=w.bars))

    def _fill(self, buf: deque[int]) -> None:
        self.buf = buf
        self.counts = [0, 0, 0]  # indexed by truth: F, M, T
        for v in buf:
            self.counts[v] += 1

    def step(self) -> int:
        v = self.item.step()
        buf, counts = self.buf, self.counts
        if len(buf) == buf.maxlen:
            counts[buf[0]] -= 1
        buf.append(v)
        counts[v] += 1
        if self.holds:
            return F if counts[F] else (M if counts[M] else T)
        if self.within:
            return T if counts[T] else (M if counts[M] else F)
        trues, need = counts[T], self.w.min_true
        if trues >= need:
            return T
        return F if trues + counts[M] < need else M

    def children(self) -> list[_Node]:
        return [self.item]

    def dump(self, out: list[object]) -> None:
        out.append(list(self.buf))
        self.item.dump(out)

    def load(self, it: object) -> None:
        self._fill(deque(next(it), maxlen=self.w.bars))  # type: ignore[call-overload]
        self.item.load(it)


def _build(c: A.Cond) -> _Node:
    if isinstance(c, A.Cmp):
        if c.op in ("cross_above", "cross_below"):
            return _CrossNode(c)
        if c.op == "between":
            return _BetweenNode(c)
        if c.op in ("near_abs", "near_pct"):
            return _NearNode(c)
        return _BinaryNode(c) if c.op in _BINARY else _CmpNode(c)
    if isinstance(c, A.Logic):
        # all/any of one condition is that condition (same truth, same state walk)
        return _build(c.items[0]) if len(c.items) == 1 else _LogicNode(c)
    if isinstance(c, A.Not):
        return _NotNode(c)
    return _WindowNode(c)


def _j(x: float) -> float | None:
    return None if math.isnan(x) else x


def _f(x: float | None) -> float:
    return math.nan if x is None else float(x)
