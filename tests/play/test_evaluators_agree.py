"""Property: the vectorised and incremental evaluators agree at every instant on random inputs."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trade.play import ast as A
from trade.play.evaluate import IncrementalCondition, evaluate_vectorised

MEMBERS = ("none", "bullish", "bearish")
FLOATS = [A.Series(f"f{i}.value", 0, A.Kind.FLOAT) for i in range(3)]
INT = A.Series("i0.value", 0, A.Kind.INT)
BOOL = A.Series("b0.value", 0, A.Kind.BOOL)
ENUM = A.Series("e0.value", 0, A.Kind.ENUM, MEMBERS)


class ArraySource:
    """Series by id over instants; an offset reads that many instants back (NaN before the start)."""

    def __init__(self, data: dict[str, np.ndarray]) -> None:
        self.data = data
        self.i = 0

    def series(self, s: A.Series) -> np.ndarray:
        a = self.data[s.id]
        out = np.full(len(a), np.nan)
        out[s.offset :] = a[: len(a) - s.offset] if s.offset else a
        return out

    def value(self, s: A.Series) -> float:
        j = self.i - s.offset
        return float(self.data[s.id][j]) if j >= 0 else math.nan


def numeric_expr(depth: int) -> st.SearchStrategy[A.Expr]:
    leaf = st.one_of(
        st.builds(
            lambda s, o: A.Series(s.id, o, s.kind),
            st.sampled_from([*FLOATS, INT]),
            st.integers(0, 2),
        ),
        st.builds(
            lambda v: A.Const(float(v), A.Kind.FLOAT), st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0])
        ),
        st.builds(lambda v: A.Const(float(v), A.Kind.INT), st.integers(-2, 2)),
    )
    if depth == 0:
        return leaf
    sub = numeric_expr(depth - 1)
    return st.one_of(
        leaf,
        st.builds(
            lambda op, a, b: A.Arith(op, a, b, A.Kind.FLOAT),
            st.sampled_from(["+", "-", "*", "/", "%"]),
            sub,
            sub,
        ),
    )


def comparison() -> st.SearchStrategy[A.Cond]:
    num = numeric_expr(2)
    return st.one_of(
        st.builds(
            lambda op, a, b: A.Cmp(op, a, (b,)),
            st.sampled_from([">", ">=", "<", "<=", "cross_above", "cross_below"]),
            num,
            num,
        ),
        st.builds(lambda a, lo, hi: A.Cmp("between", a, (lo, hi)), num, num, num),
        st.builds(
            lambda op, a, b, t: A.Cmp(op, a, (b,), t),
            st.sampled_from(["near_pct", "near_abs"]),
            num,
            num,
            st.sampled_from([0.0, 0.5, 5.0]),
        ),
        st.builds(
            lambda op, v: A.Cmp(op, INT, (A.Const(float(v), A.Kind.INT),)),
            st.sampled_from(["==", "!="]),
            st.integers(-1, 1),
        ),
        st.builds(lambda v: A.Cmp("==", BOOL, (A.Const(float(v), A.Kind.BOOL),)), st.booleans()),
        st.builds(
            lambda ms: A.Cmp(
                "in",
                ENUM,
                tuple(A.Const(float(MEMBERS.index(m)), A.Kind.ENUM, MEMBERS) for m in ms),
            ),
            st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=2),
        ),
    )


def condition() -> st.SearchStrategy[A.Cond]:
    def extend(children: st.SearchStrategy[A.Cond]) -> st.SearchStrategy[A.Cond]:
        return st.one_of(
            st.builds(
                lambda op, xs: A.Logic(op, tuple(xs)),
                st.sampled_from(["all", "any"]),
                st.lists(children, min_size=1, max_size=3),
            ),
            st.builds(A.Not, children),
            st.builds(
                lambda k, n, c: A.Window(k, n, 1, c),
                st.sampled_from(["holds_for", "occurred_within"]),
                st.integers(1, 4),
                children,
            ),
            st.builds(
                lambda n, k, c: A.Window("count_true", n, min(k, n), c),
                st.integers(1, 5),
                st.integers(1, 5),
                children,
            ),
        )

    return st.recursive(comparison(), extend, max_leaves=6)


def series_data(n: int) -> st.SearchStrategy[dict[str, np.ndarray]]:
    def arr(values: st.SearchStrategy[float]) -> st.SearchStrategy[np.ndarray]:
        return st.lists(values, min_size=n, max_size=n).map(lambda v: np.array(v, dtype=np.float64))

    # few distinct values, so equalities (and crossovers from equality) happen often; some NaN
    coarse = st.sampled_from([math.nan, -1.0, 0.0, 0.5, 1.0, 1.0, 2.0, 2.0])
    return st.fixed_dictionaries(
        {
            "f0.value": arr(coarse),
            "f1.value": arr(coarse),
            "f2.value": arr(st.one_of(st.just(math.nan), st.integers(-2, 2).map(float))),
            "i0.value": arr(st.one_of(st.just(math.nan), st.integers(-1, 1).map(float))),
            "b0.value": arr(st.sampled_from([0.0, 1.0, math.nan])),
            "e0.value": arr(st.sampled_from([0.0, 1.0, 2.0, math.nan])),
        }
    )


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cond=condition(), data=st.integers(1, 30).flatmap(series_data))
def test_vectorised_equals_incremental(cond: A.Cond, data: dict[str, np.ndarray]) -> None:
    n = len(data["f0.value"])
    source = ArraySource(data)
    vec = evaluate_vectorised(cond, source, n)
    inc = IncrementalCondition(cond)
    got = []
    for i in range(n):
        source.i = i
        got.append(inc.step(source))
    assert vec.tolist() == got


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cond=condition(), data=st.integers(2, 20).flatmap(series_data), cut=st.integers(0, 19))
def test_incremental_state_round_trips(cond: A.Cond, data: dict[str, np.ndarray], cut: int) -> None:
    """Stopping after `cut` instants, restoring the JSON state into a fresh evaluator, equals no stop."""
    import json

    n = len(data["f0.value"])
    cut = min(cut, n)
    source = ArraySource(data)
    whole, first = IncrementalCondition(cond), IncrementalCondition(cond)
    expected = []
    for i in range(n):
        source.i = i
        expected.append(whole.step(source))
    got = []
    for i in range(cut):
        source.i = i
        got.append(first.step(source))
    second = IncrementalCondition(cond)
    second.restore(json.loads(json.dumps(first.state())))
    for i in range(cut, n):
        source.i = i
        got.append(second.step(source))
    assert got == expected
