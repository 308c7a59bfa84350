"""Property: the jitted fast path gives exactly the per-bar reference's fills, trades and events."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from trade.sim import (
    AccountConfig,
    BreakEven,
    Level,
    OrderRequest,
    SimulatedExchange,
    Sizing,
    Trailing,
)

from .helpers import SPEC, M


def make(
    scan: bool, bars: np.ndarray, intrabar: str, funding: list[int], dd: float | None
) -> SimulatedExchange:
    sim = SimulatedExchange(
        SPEC,
        AccountConfig(starting_equity=10_000.0, leverage=5, max_drawdown_pct=dd),
        exec_tf_ms=5 * M,
        intrabar=intrabar,
        scan=scan,
    )
    ts = np.arange(len(bars), dtype=np.int64) * M
    f_ts = np.array(sorted(set(funding)), dtype=np.int64) * M
    sim.load(
        ts,
        ts + M,
        bars[:, 0],
        bars[:, 1],
        bars[:, 2],
        bars[:, 3],
        funding_ts=f_ts,
        funding_rate=np.full(len(f_ts), 0.0003),
    )
    return sim


@st.composite
def scenario(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(20, 120))
    steps = draw(st.lists(st.floats(-0.03, 0.03), min_size=n, max_size=n))
    closes = 100 * np.exp(np.cumsum(steps))
    opens = np.concatenate([[100.0], closes[:-1]]) * np.exp(
        draw(st.lists(st.floats(-0.01, 0.01), min_size=n, max_size=n))
    )
    wick = np.abs(np.array(draw(st.lists(st.floats(0, 0.02), min_size=n, max_size=n))))
    highs = np.maximum(opens, closes) * (1 + wick)
    lows = np.minimum(opens, closes) * (1 - wick)
    bars = np.round(np.column_stack([opens, highs, lows, closes]), 2)
    bars[:, 1] = bars.max(axis=1)
    bars[:, 2] = bars.min(axis=1)
    orders = []
    for _ in range(draw(st.integers(1, 8))):
        t = draw(st.integers(0, n - 1)) * M
        kind = draw(st.sampled_from(["entry", "entry", "exit", "limit"]))
        side = draw(st.sampled_from(["buy", "sell"]))
        sl = draw(st.one_of(st.none(), st.builds(lambda v: Level("percent", v), st.floats(0.5, 5))))
        tp = (
            draw(st.one_of(st.none(), st.builds(lambda v: Level("rr", v), st.floats(0.5, 3))))
            if sl
            else None
        )
        trail = draw(
            st.one_of(
                st.none(), st.builds(lambda v: Trailing(Level("percent", v)), st.floats(0.5, 3))
            )
        )
        be = draw(
            st.one_of(
                st.none(), st.builds(lambda v: BreakEven(Level("percent", v)), st.floats(0.5, 3))
            )
        )
        if kind == "exit":
            req = OrderRequest(
                side=side, reduce_only=True, close_percent=draw(st.sampled_from([50.0, 100.0]))
            )
        elif kind == "limit":
            req = OrderRequest(
                side=side,
                kind="limit",
                sizing=Sizing("percent_equity", 50),
                limit_price=100.0,
                expire_ts=t + 10 * M,
                stop_loss=sl,
                take_profit=tp,
            )
        else:
            req = OrderRequest(
                side=side,
                sizing=Sizing("percent_equity", draw(st.sampled_from([20.0, 100.0]))),
                stop_loss=sl,
                take_profit=tp,
                trailing=trail,
                break_even=be,
            )
        orders.append((t, req))
    orders.sort(key=lambda o: o[0])
    funding = draw(st.lists(st.integers(0, n - 1), max_size=4))
    return (
        bars,
        orders,
        draw(st.sampled_from(["pessimistic", "optimistic"])),
        funding,
        draw(st.sampled_from([None, 3.0, 10.0])),
    )


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_scan_equals_per_bar(sc) -> None:  # type: ignore[no-untyped-def]
    bars, orders, intrabar, funding, dd = sc
    runs = []
    for scan in (True, False):
        sim = make(scan, bars, intrabar, funding, dd)
        for t, req in orders:
            sim.advance_to(t, stop_on_change=False)
            sim.submit(req, t)
        sim.advance_to(len(bars) * M)
        sim.close_all(len(bars) * M, float(bars[-1, 3]))
        runs.append((sim.trades, sim.events, sim.cash, sim.counters))
    assert runs[0] == runs[1]
