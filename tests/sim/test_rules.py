"""docs/execution.md "Rules in detail": the rules a re-implementation would otherwise guess, one
golden scenario each, numbers by hand."""

from __future__ import annotations

import numpy as np
import pytest

from trade.play import ast as A
from trade.play.evaluate import IncrementalCondition, evaluate_vectorised
from trade.sim import BreakEven, Level, OrderRequest, Sizing, Trailing

from .helpers import M, flat_bars, sim_with


def test_the_stop_distance_behind_sizing_targets_and_break_even_is_taken_before_rounding():
    sim = sim_with(flat_bars(2))
    req = OrderRequest(
        side="buy",
        sizing=Sizing("risk_based", 1.0),
        stop_loss=Level("percent", 1.234),  # d = 1.234; the stop rounds to 98.77 (d' = 1.23)
        take_profit=Level("rr", 2.0),
        break_even=BreakEven(Level("rr", 1.0)),
    )
    sim.submit(req, 0)
    sim.advance_to(M)
    pos = sim.position
    assert pos is not None
    assert pos.sl == 98.77
    assert pos.tp == 102.47  # round_tick(100 + 2 × 1.234 = 102.468), not 102.46 from d'
    assert pos.be_dist == pytest.approx(1.234)
    assert pos.qty == 81.037  # 10000 × 1% / (1.234 / 100) = 8103.73 USDT, not 8130.08 from d'


def test_the_margin_cap_of_a_limit_entry_assumes_the_maker_fee():
    bars = [(100, 100, 100, 100), (100, 100, 98.5, 99), (99, 99, 99, 99)]
    sim = sim_with(bars)
    req = OrderRequest(
        side="buy", kind="limit", limit_price=99.0, sizing=Sizing("percent_equity", 100.0)
    )
    sim.submit(req, 0)
    sim.advance_to(3 * M)
    pos = sim.position
    assert pos is not None and pos.entry_price == 99.0
    # 10000 / (1/1 + 0.0002) / 99 = 100.9899… → 100.989 (the taker fee would give 100.954)
    assert pos.qty == 100.989


def _cross_truths(values: list[float]) -> tuple[list[int], list[int]]:
    f = A.Series("f.value", 0, A.Kind.FLOAT)
    cond = A.Cmp("cross_above", f, (A.Const(0.0, A.Kind.FLOAT),))
    data = np.array(values)

    class Source:
        i = 0

        def series(self, s: A.Series) -> np.ndarray:
            return data

        def value(self, s: A.Series) -> float:
            return float(data[self.i])

    src = Source()
    step = IncrementalCondition(cond)
    inc = []
    for i in range(len(values)):
        src.i = i
        inc.append(step.step(src))
    return evaluate_vectorised(cond, src, len(values)).tolist(), inc


def test_a_crossover_is_missing_at_the_first_evaluated_instant():
    # above zero from the first instant on: no previous value there, so no cross at all
    vec, inc = _cross_truths([1.0, 2.0, -1.0, 1.0])
    assert vec == inc == [A.Truth.MISSING, A.Truth.FALSE, A.Truth.FALSE, A.Truth.TRUE]


def test_bars_held_counts_whole_exec_bars_from_the_fill():
    sim = sim_with(flat_bars(12), exec_minutes=5)
    sim.submit(OrderRequest(side="buy", qty=1.0), 0)
    sim.advance_to(5 * M)
    sim.submit(OrderRequest(side="sell", reduce_only=True, close_percent=50.0), 9 * M)
    sim.advance_to(10 * M)
    sim.submit(OrderRequest(side="sell", reduce_only=True), 10 * M)
    sim.advance_to(11 * M)
    assert [t["bars_held"] for t in sim.trades] == [1, 2]  # 9 min // 5, 10 min // 5


def test_percent_trailing_of_the_fill_from_the_fill_bar_on():
    # exec 3m; the order decided at 1m fills at bar 1's open (100). Bar 0's high 110 came before
    # the fill and does not count. Best by the exec close at 3m: 104 (bar 2). Distance 2% of the
    # fill = 2.0 (not 2% of 104); move 4% ≥ activation 3% → stop 102.0, filled in bar 3
    bars = [(100, 110, 100, 100), (100, 102, 100, 101), (101, 104, 101, 103), (103, 103, 101, 101)]
    sim = sim_with(bars, exec_minutes=3)
    trailing = Trailing(Level("percent", 2.0), activation_pct=3.0)
    sim.submit(OrderRequest(side="buy", qty=1.0, trailing=trailing), M)
    sim.advance_to(4 * M)
    assert [(e["ts"], e["sl"], e["kind"]) for e in sim.events if e["type"] == "amend_stop"] == [
        (3 * M, 102.0, "trailing_stop")
    ]
    (t,) = sim.trades
    assert (t["exit_reason"], t["exit_price"], t["exit_time"]) == ("trailing_stop", 102.0, 3 * M)
    # not activated: a 5% activation never arms with a 4% move
    sim = sim_with(bars, exec_minutes=3)
    sim.submit(OrderRequest(side="buy", qty=1.0, trailing=Trailing(Level("percent", 2.0), 5.0)), M)
    sim.advance_to(4 * M)
    assert sim.trades == [] and not [e for e in sim.events if e["type"] == "amend_stop"]


def test_a_trailing_distance_in_price_units_stays_fixed():
    # the engine turns an ATR trailing into `value × ATR at the signal bar` price units: a
    # distance that does not change as the position runs (stop = best − 1.5 at each exec close)
    bars = [(100, 103, 100, 102), (102, 106, 102, 105), (105, 105, 104, 104)]
    sim = sim_with(bars)
    sim.submit(OrderRequest(side="buy", qty=1.0, trailing=Trailing(Level("distance", 1.5))), 0)
    sim.advance_to(3 * M)
    assert [e["sl"] for e in sim.events if e["type"] == "amend_stop"] == [101.5, 104.5]
    (t,) = sim.trades
    assert (t["exit_reason"], t["exit_price"]) == ("trailing_stop", 104.5)


def test_the_exit_reason_after_break_even_is_stop_loss_after_trailing_trailing_stop():
    # both configured: at the first close the break-even (trigger 1) moves the stop to 100 and
    # the trailing (distance 3, from 102: 99) would not tighten it; at the second close the
    # trailing (106 − 3 = 103) does
    bars = [(100, 102, 100, 101), (101, 106, 101, 105), (105, 105, 102, 102)]
    sim = sim_with(bars)
    req = OrderRequest(
        side="buy",
        qty=1.0,
        trailing=Trailing(Level("distance", 3.0)),
        break_even=BreakEven(Level("distance", 1.0)),
    )
    sim.submit(req, 0)
    sim.advance_to(3 * M)
    moves = [(e["sl"], e["kind"]) for e in sim.events if e["type"] == "amend_stop"]
    assert moves == [(100.0, "stop_loss"), (103.0, "trailing_stop")]
    (t,) = sim.trades
    assert (t["exit_reason"], t["exit_price"]) == ("trailing_stop", 103.0)


def test_partial_exit_of_the_current_qty_rounded_down_with_fee_and_funding_shares():
    bars = [(100, 100, 100, 100), (100, 100, 100, 100), (110, 110, 110, 110), (110,) * 4]
    sim = sim_with(bars, funding=[(M, 0.0001)])
    sim.submit(OrderRequest(side="buy", qty=1.003), 0)
    sim.advance_to(2 * M)  # funding at 1m: 1.003 × 100 × 0.0001 = 0.01003 paid
    sim.submit(OrderRequest(side="sell", reduce_only=True, close_percent=50.0), 2 * M)
    sim.advance_to(3 * M)
    (t,) = sim.trades
    entry_fee = 1.003 * 100 * 0.00055
    share = 0.501 / 1.003  # 50% of 1.003 = 0.5015 → 0.501
    assert t["qty"] == 0.501
    assert t["fees"] == pytest.approx(entry_fee * share + 0.501 * 110 * 0.00055, abs=1e-12)
    assert t["funding"] == pytest.approx(0.01003 * share, abs=1e-12)
    pos = sim.position
    assert pos is not None and pos.qty == 0.502
    assert pos.entry_fee == pytest.approx(entry_fee * (1 - share), abs=1e-12)
    assert pos.funding == pytest.approx(0.01003 * (1 - share), abs=1e-12)
