"""Golden scenarios: every number below is computed by hand from DESIGN §5's rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trade.errors import InputError, SimulationError
from trade.sim import AccountConfig, BreakEven, Level, OrderRequest, Sizing, Trailing

from .helpers import M, flat_bars, sim_with

BUY_QTY = OrderRequest(side="buy", qty=1.0)


def test_market_fill_at_next_open_with_slippage_and_taker_fee():
    sim = sim_with([(100, 101, 99, 100)] * 3, slippage_bps=2.0)
    sim.submit(BUY_QTY, 0)
    sim.advance_to(M)
    pos = sim.position
    assert pos is not None and pos.entry_price == pytest.approx(100.02, abs=1e-12)
    # taker 5.5 bps of 100.02 notional
    assert sim.cash == pytest.approx(10_000 - 100.02 * 0.00055, abs=1e-9)


def test_round_trip_exact_fees_and_slippage():
    sim = sim_with(
        [(100, 100, 100, 100), (110, 110, 110, 110), (110, 110, 110, 110)], slippage_bps=10.0
    )
    sim.submit(BUY_QTY, 0)
    sim.advance_to(M)
    sim.submit(OrderRequest(side="sell", reduce_only=True), M)
    sim.advance_to(2 * M)
    (t,) = sim.trades
    assert t["entry_price"] == pytest.approx(100.1)  # 100 × (1 + 0.001)
    assert t["exit_price"] == pytest.approx(109.89)  # 110 × (1 − 0.001)
    assert t["fees"] == pytest.approx((100.1 + 109.89) * 0.00055)
    assert t["pnl"] == pytest.approx(9.79 - (100.1 + 109.89) * 0.00055)
    assert sim.cash == pytest.approx(10_000 + t["pnl"])


def test_gap_through_stop_fills_at_open():
    sim = sim_with([(100, 100, 100, 100), (97, 97.5, 96, 97)])
    sim.submit(OrderRequest(side="buy", qty=1.0, stop_loss=Level("percent", 2.0)), 0)
    sim.advance_to(2 * M)
    (t,) = sim.trades
    assert (t["exit_price"], t["exit_reason"], t["exit_time"]) == (97.0, "stop_loss", M)


@pytest.mark.parametrize(
    ("policy", "price", "reason"),
    [("pessimistic", 98.0, "stop_loss"), ("optimistic", 104.0, "take_profit")],
)
def test_tp_and_sl_in_one_bar(policy: str, price: float, reason: str):
    sim = sim_with([(100, 100, 100, 100), (100, 105, 97, 100)], intrabar=policy)
    req = OrderRequest(
        side="buy", qty=1.0, stop_loss=Level("percent", 2.0), take_profit=Level("rr", 2.0)
    )
    sim.submit(req, 0)
    sim.advance_to(2 * M)
    (t,) = sim.trades
    assert (t["exit_price"], t["exit_reason"]) == (price, reason)
    assert sim.counters["ambiguous_exits"] == 1


def test_stop_hit_on_the_entry_bar():
    sim = sim_with([(100, 100.5, 97.5, 99)])
    sim.submit(OrderRequest(side="buy", qty=1.0, stop_loss=Level("distance", 2.0)), 0)
    sim.advance_to(M)
    (t,) = sim.trades
    assert (t["entry_time"], t["exit_time"], t["exit_price"], t["exit_reason"]) == (
        0,
        0,
        98.0,
        "stop_loss",
    )


def test_funding_long_pays_short_receives_flat_nothing():
    # funding at 2 min with rate 0.0001; mark = last price (close of the bar before) = 100
    for side, sign in (("buy", -1.0), ("sell", 1.0)):
        sim = sim_with(flat_bars(4), funding=[(2 * M, 0.0001)])
        sim.submit(OrderRequest(side=side, qty=2.0), 0)  # type: ignore[arg-type]
        sim.advance_to(4 * M)
        fee = 200 * 0.00055
        assert sim.cash == pytest.approx(10_000 - fee + sign * 2.0 * 100 * 0.0001)
        sim.close_all(4 * M, 100.0)
        assert sim.trades[0]["funding"] == pytest.approx(-sign * 0.02)
    sim = sim_with(flat_bars(4), funding=[(2 * M, 0.0001)])
    sim.advance_to(4 * M)
    assert sim.cash == 10_000 and not [e for e in sim.events if e["type"] == "funding"]


@pytest.mark.parametrize(("lev", "liq"), [(10, 90.5), (25, 96.5)])
def test_liquidation_price_and_loss(lev: float, liq: float):
    sim = sim_with([(100, 100, 100, 100), (100, 100, 80, 85)], leverage=lev)
    sim.submit(OrderRequest(side="buy", qty=10.0), 0)
    sim.advance_to(2 * M)
    (t,) = sim.trades
    assert t["exit_reason"] == "liquidation"
    assert t["exit_price"] == pytest.approx(liq)
    # loss: 10 × (100 − liq), fees: entry taker on 1000 + liquidation fee (taker) on 10 × liq
    assert t["pnl"] == pytest.approx(-10 * (100 - liq) - 1000 * 0.00055 - 10 * liq * 0.00055)
    assert sim.counters["liquidations"] == 1


def test_stop_beyond_liquidation_is_rejected():
    sim = sim_with(flat_bars(3), leverage=25)
    sim.submit(
        OrderRequest(side="buy", qty=1.0, stop_loss=Level("percent", 5.0)), 0
    )  # 95 < liq 96.5
    sim.advance_to(2 * M)
    assert sim.position is None
    assert (
        sim.rejections == {"stop_beyond_liquidation": 1} and sim.counters["rejected_entries"] == 1
    )


def test_half_partial_exit():
    sim = sim_with([(100, 100, 100, 100), (110, 110, 110, 110), (120, 120, 120, 120)])
    sim.submit(OrderRequest(side="buy", qty=2.0), 0)
    sim.advance_to(M)
    sim.submit(OrderRequest(side="sell", reduce_only=True, close_percent=50.0), M)
    sim.advance_to(2 * M)
    assert sim.position is not None and sim.position.qty == 1.0
    (t,) = sim.trades
    assert (t["qty"], t["exit_price"]) == (1.0, 110.0)
    assert t["fees"] == pytest.approx(
        100 * 0.00055 + 110 * 0.00055
    )  # half the entry fee + exit fee
    assert t["pnl"] == pytest.approx(10 - 100 * 0.00055 - 110 * 0.00055)


def test_min_notional_and_qty_step_rejections():
    sim = sim_with(flat_bars(3))
    sim.submit(OrderRequest(side="buy", sizing=Sizing("fixed_notional", 4.0)), 0)  # 4 USDT < 5
    sim.advance_to(M)
    sim.submit(OrderRequest(side="buy", qty=0.0004), M)  # rounds down to 0 at step 0.001
    sim.advance_to(2 * M)
    assert sim.rejections == {"min_notional": 1, "qty_step": 1}
    assert sim.position is None


@pytest.mark.parametrize(
    ("side", "bar", "filled"),
    [
        ("buy", (100, 100.5, 99.0, 99.5), False),  # low == limit: a touch, no fill
        ("buy", (100, 100.5, 98.99, 99.5), True),  # one tick below: traded through
        ("sell", (100, 101.0, 99.5, 100.5), False),  # high == limit
        ("sell", (100, 101.01, 99.5, 100.5), True),
    ],
)
def test_limit_fills_only_when_traded_through_at_the_limit_with_maker_fee(
    side: str, bar: tuple, filled: bool
):
    limit = 99.0 if side == "buy" else 101.0
    sim = sim_with([(100, 100, 100, 100), bar, (100, 100, 100, 100)])
    req = OrderRequest(side=side, kind="limit", qty=1.0, limit_price=limit, expire_ts=10 * M)  # type: ignore[arg-type]
    sim.submit(req, 0)
    sim.advance_to(3 * M)
    if not filled:
        assert sim.position is None and len(sim.pending) == 1
        return
    assert sim.position is not None and sim.position.entry_price == limit
    assert sim.position.entry_ts == M
    assert sim.cash == pytest.approx(10_000 - limit * 0.0002)  # maker 2 bps
    (fill,) = [e for e in sim.events if e["type"] == "fill"]
    assert fill["maker"] is True


def test_limit_entry_gapping_through_fills_at_the_better_open():
    sim = sim_with([(100, 100, 100, 100), (97, 98, 96.5, 97.5)])
    sim.submit(
        OrderRequest(side="buy", kind="limit", qty=1.0, limit_price=99.0, expire_ts=10 * M), 0
    )
    sim.advance_to(2 * M)
    assert sim.position is not None and sim.position.entry_price == 97.0


def test_limit_expiry():
    sim = sim_with(flat_bars(5))
    sim.submit(
        OrderRequest(side="buy", kind="limit", qty=1.0, limit_price=90.0, expire_ts=3 * M), 0
    )
    sim.advance_to(5 * M)
    assert sim.position is None and not sim.pending
    assert [e["ts"] for e in sim.events if e["type"] == "expire"] == [3 * M]


def test_max_drawdown_halts():
    sim = sim_with(
        [(100, 100, 100, 100), (100, 100, 94, 94), (94, 94, 94, 94), (94, 94, 94, 94)],
        max_drawdown_pct=5.0,
        leverage=2,
    )
    sim.submit(OrderRequest(side="buy", qty=100.0), 0)
    sim.advance_to(4 * M)
    (t,) = sim.trades
    # equity at the close of bar 1: 10000 − 5.5 − 600 < 9500 → closed at that close
    assert (t["exit_reason"], t["exit_price"]) == ("max_drawdown", 94.0)
    assert sim.halted
    sim.submit(OrderRequest(side="buy", qty=1.0), 4 * M)
    assert sim.rejections == {"halted": 1}


def test_end_of_data_close():
    sim = sim_with([(100, 100, 100, 100), (105, 105, 105, 105)])
    sim.submit(OrderRequest(side="buy", qty=1.0), 0)
    sim.advance_to(2 * M)
    sim.close_all(2 * M, 105.0)
    (t,) = sim.trades
    assert (t["exit_reason"], t["exit_price"], t["exit_time"]) == ("end_of_data", 105.0, 2 * M)
    assert sim.cash == pytest.approx(10_000 + 5 - 100 * 0.00055 - 105 * 0.00055)


@pytest.mark.parametrize(
    ("model", "value", "lev", "qty"),
    [
        # all in at 1x: capped by margin after fees, E / (price × (1 + taker)) = 99.945 (rounded down)
        ("percent_equity", 100.0, 1.0, 99.945),
        # 10x: E × 10 = 100000 is above E / (1/10 + taker) = 99453.008… → 994.530 at 100
        ("percent_equity", 100.0, 10.0, 994.53),
        ("percent_equity", 20.0, 10.0, 200.0),  # 10000 × 20% × 10 = 20000
        # risk 1% of 10000 = 100 over a 2% stop → notional 5000 → 50 at 100, whatever the leverage
        ("risk_based", 1.0, 1.0, 50.0),
        ("risk_based", 1.0, 10.0, 50.0),
        # risk 5% over a 2% stop → 25000: capped at 1x (99.945), allowed at 10x (250)
        ("risk_based", 5.0, 1.0, 99.945),
        ("risk_based", 5.0, 10.0, 250.0),
        ("fixed_notional", 2500.0, 1.0, 25.0),
        ("fixed_notional", 2500.0, 10.0, 25.0),
        ("fixed_notional", 50_000.0, 1.0, 99.945),
        ("fixed_notional", 50_000.0, 10.0, 500.0),
    ],
)
def test_sizing_models(model: str, value: float, lev: float, qty: float):
    sim = sim_with(flat_bars(2), leverage=lev)
    req = OrderRequest(side="buy", sizing=Sizing(model, value), stop_loss=Level("percent", 2.0))  # type: ignore[arg-type]
    sim.submit(req, 0)
    sim.advance_to(M)
    assert sim.position is not None and sim.position.qty == qty


def test_position_cap_by_max_position_equity_pct():
    sim = sim_with(flat_bars(2), leverage=10, max_position_equity_pct=50.0)
    sim.submit(OrderRequest(side="buy", sizing=Sizing("percent_equity", 100.0)), 0)
    sim.advance_to(M)
    assert sim.position is not None and sim.position.qty == 500.0  # 10000 × 10 × 50%


def test_risk_sizing_without_a_stop_is_rejected():
    sim = sim_with(flat_bars(2))
    sim.submit(OrderRequest(side="buy", sizing=Sizing("risk_based", 1.0)), 0)
    sim.advance_to(M)
    assert sim.rejections == {"risk_sizing_needs_stop": 1} and sim.position is None


def test_trailing_stop_moves_only_at_exec_close():
    # exec = 2 minutes; trailing 1 price unit behind the best high of closed exec bars
    bars = [
        (100, 100, 100, 100),
        (100, 105, 100, 105),
        (105, 105, 104.5, 104.5),
        (104.5, 104.5, 103, 103),
    ]
    sim = sim_with(bars, exec_minutes=2)
    sim.submit(OrderRequest(side="buy", qty=1.0, trailing=Trailing(Level("distance", 1.0))), 0)
    sim.advance_to(4 * M)
    (t,) = sim.trades
    # at the exec close (t=2m) the best high is 105 → stop 104; bar 2 (low 104.5) does not hit;
    # bar 3 trades down to 103 → trailing stop at 104
    assert (t["exit_reason"], t["exit_price"], t["exit_time"]) == ("trailing_stop", 104.0, 3 * M)
    assert [(e["ts"], e["sl"]) for e in sim.events if e["type"] == "amend_stop"] == [(2 * M, 104.0)]


# ---------------------------------------------------------------- short side, stop entries, mark


def test_short_gap_through_stop_fills_at_the_open():
    sim = sim_with([(100, 100, 100, 100), (103, 104, 102.5, 103)])
    sim.submit(OrderRequest(side="sell", qty=1.0, stop_loss=Level("percent", 2.0)), 0)  # SL 102
    sim.advance_to(2 * M)
    (t,) = sim.trades
    assert (t["side"], t["exit_price"], t["exit_reason"], t["exit_time"]) == (
        "short",
        103.0,
        "stop_loss",
        M,
    )
    assert t["pnl"] == pytest.approx(-3 - (100 + 103) * 0.00055, abs=1e-12)


def test_short_take_profit_at_its_level():
    sim = sim_with([(100, 100, 100, 100), (99, 99.5, 96, 96.5)])
    sim.submit(OrderRequest(side="sell", qty=1.0, take_profit=Level("percent", 3.0)), 0)  # TP 97
    sim.advance_to(2 * M)
    (t,) = sim.trades
    assert (t["exit_price"], t["exit_reason"]) == (97.0, "take_profit")
    assert t["pnl"] == pytest.approx(3 - (100 + 97) * 0.00055, abs=1e-12)
    # MFE counts prices while the position is open: the exit at 97 (3%); MAE: 100 (0%)
    assert (t["mfe_pct"], t["mae_pct"]) == (pytest.approx(3.0), pytest.approx(0.0))


def test_market_order_fills_at_the_first_bar_opening_at_or_after_the_signal():
    sim = sim_with([(100, 100, 100, 100), (101, 101, 101, 101), (102, 102, 102, 102)])
    sim.submit(BUY_QTY, M // 2)  # decided inside bar 0: bar 1 is the first to open after it
    sim.advance_to(3 * M)
    assert sim.position is not None
    assert (sim.position.entry_price, sim.position.entry_ts) == (101.0, M)


@pytest.mark.parametrize(
    ("bar1", "fill"), [((100, 101.5, 99.8, 101.2), 101.0), ((102, 103, 101.5, 102.5), 102.0)]
)
def test_buy_stop_entry_triggers_at_its_price_or_the_gap_open(bar1: tuple, fill: float):
    sim = sim_with([(100, 100.5, 99.5, 100), bar1], slippage_bps=2.0)
    sim.submit(OrderRequest(side="buy", kind="stop", qty=1.0, stop_price=101.0), 0)
    assert sim.advance_to(M, stop_on_change=True) is None  # bar 0 never reached 101
    assert sim.advance_to(2 * M, stop_on_change=True) == 2 * M
    pos = sim.position
    assert pos is not None and pos.entry_price == pytest.approx(fill * 1.0002, abs=1e-12)
    assert sim.cash == pytest.approx(10_000 - fill * 1.0002 * 0.00055, abs=1e-9)
    assert sim.events[-1]["maker"] is False


def test_liquidation_against_the_mark_series():
    # 10x long, liquidation 90.5: the traded low 91 stays above it, the mark (90 at 2m) does not
    bars = [(100, 100, 100, 100), (95, 95, 91, 92), (92, 92, 92, 92)]
    sim = sim_with(bars, leverage=10, mark=[(M, 100.0), (2 * M, 90.0)])
    sim.submit(OrderRequest(side="buy", qty=10.0), 0)
    sim.advance_to(3 * M)
    (t,) = sim.trades
    assert (t["exit_reason"], t["exit_price"], t["exit_time"]) == ("liquidation", 90.5, M)
    no_mark = sim_with(bars, leverage=10)
    no_mark.submit(OrderRequest(side="buy", qty=10.0), 0)
    no_mark.advance_to(3 * M)
    assert not no_mark.trades and no_mark.counters["liquidations"] == 0


def test_short_liquidation_at_10x():
    sim = sim_with([(100, 100, 100, 100), (105, 112, 104, 110)], leverage=10)
    sim.submit(OrderRequest(side="sell", qty=10.0), 0)
    sim.advance_to(2 * M)
    (t,) = sim.trades
    assert (t["exit_reason"], t["exit_price"]) == (
        "liquidation",
        pytest.approx(109.5),
    )  # 100 × 1.095
    assert t["pnl"] == pytest.approx(-95 - 1000 * 0.00055 - 1095 * 0.00055)


def test_funding_uses_the_mark_at_the_funding_instant():
    sim = sim_with(flat_bars(4), funding=[(2 * M, 0.0001)], mark=[(2 * M, 101.0)])
    sim.submit(OrderRequest(side="buy", qty=2.0), 0)
    sim.advance_to(4 * M)
    (ev,) = [e for e in sim.events if e["type"] == "funding"]
    assert (ev["ts"], ev["mark"], ev["paid"]) == (2 * M, 101.0, pytest.approx(0.0202))
    assert sim.funding_total == pytest.approx(0.0202)


# ---------------------------------------------------------------- policies and stop management


def test_stop_beyond_liquidation_tightened_by_policy():
    sim = sim_with(
        [(100, 100, 100, 100), (100, 100, 96, 97)], leverage=25, stop_beyond_liquidation="tighten"
    )
    sim.submit(OrderRequest(side="buy", qty=1.0, stop_loss=Level("percent", 5.0)), 0)
    sim.advance_to(2 * M)
    (t,) = sim.trades
    # liquidation 96.5: the stop moves one tick inside, to 96.51, and fills there
    assert (t["exit_reason"], t["exit_price"]) == ("stop_loss", 96.51)
    assert sim.counters["liquidations"] == 0


def test_break_even_moves_at_the_close_and_applies_from_the_next_bar():
    bars = [(100, 101.5, 100, 101), (101, 101, 99.5, 100), (100, 100, 100, 100)]
    sim = sim_with(bars)
    sim.submit(OrderRequest(side="buy", qty=1.0, break_even=BreakEven(Level("percent", 1.0))), 0)
    sim.advance_to(3 * M)
    (t,) = sim.trades
    assert [e["sl"] for e in sim.events if e["type"] == "amend_stop"] == [100.0]
    assert (t["exit_reason"], t["exit_price"], t["exit_time"]) == ("stop_loss", 100.0, M)
    assert t["pnl"] == pytest.approx(-200 * 0.00055)


def test_flip_closes_then_opens_at_the_same_open():
    sim = sim_with([(100, 100, 100, 100), (105, 105, 105, 105)])
    sim.submit(BUY_QTY, 0)
    sim.advance_to(M)
    sim.submit(OrderRequest(side="sell", qty=1.0), M)  # entry short
    sim.submit(OrderRequest(side="sell", reduce_only=True), M)  # the exit, submitted after
    sim.advance_to(2 * M)
    (t,) = sim.trades
    assert (t["side"], t["exit_price"], t["exit_time"]) == ("long", 105.0, M)
    assert sim.position is not None
    assert (sim.position.side, sim.position.entry_price, sim.position.entry_ts) == (
        "short",
        105.0,
        M,
    )


def test_exchange_side_target_acts_before_a_later_signal_exit():
    # exec 2m: the target (102) is hit inside the exec bar; the exit decided at its close finds
    # no position and is skipped
    bars = [(100, 100, 100, 100), (101, 103, 101, 102), (102, 102, 102, 102)]
    sim = sim_with(bars, exec_minutes=2)
    sim.submit(OrderRequest(side="buy", qty=1.0, take_profit=Level("percent", 2.0)), 0)
    sim.advance_to(2 * M)
    sim.submit(OrderRequest(side="sell", reduce_only=True), 2 * M)
    sim.advance_to(3 * M)
    (t,) = sim.trades
    assert (t["exit_reason"], t["exit_price"], t["exit_time"]) == ("take_profit", 102.0, M)
    assert sim.events[-1]["type"] == "skip"


def test_reduce_only_by_quantity():
    sim = sim_with([(100, 100, 100, 100), (110, 110, 110, 110)])
    sim.submit(OrderRequest(side="buy", qty=2.0), 0)
    sim.advance_to(M)
    sim.submit(OrderRequest(side="sell", reduce_only=True, qty=0.5), M)
    sim.advance_to(2 * M)
    (t,) = sim.trades
    assert t["qty"] == 0.5 and sim.position is not None and sim.position.qty == 1.5
    assert t["pnl"] == pytest.approx(5 - 50 * 0.00055 - 55 * 0.00055)


def test_cancel_a_resting_limit():
    sim = sim_with([(100, 100, 100, 100), (99, 99, 98, 98.5)])
    oid = sim.submit(OrderRequest(side="buy", kind="limit", qty=1.0, limit_price=99.0), 0)
    assert [o["id"] for o in sim.open_orders()] == [oid]
    sim.advance_to(M)
    assert sim.cancel(oid, M) and not sim.cancel(oid, M)
    sim.advance_to(2 * M)
    assert sim.position is None and sim.open_orders() == []


def test_realised_loss_breaching_the_drawdown_limit_halts_a_flat_account():
    sim = sim_with(
        [(100, 100, 100, 100), (100, 100, 93, 95), (95, 95, 95, 95)], max_drawdown_pct=5.0
    )
    sim.submit(OrderRequest(side="buy", qty=100.0, stop_loss=Level("distance", 6.0)), 0)
    sim.advance_to(3 * M)
    (t,) = sim.trades
    assert (t["exit_reason"], t["exit_price"]) == ("stop_loss", 94.0)
    # cash 10000 − 600 − 5.5 − 5.17 = 9389.33 ≤ 9500: halted at that bar's close
    assert sim.cash == pytest.approx(9389.33)
    assert sim.halted and sim.events[-1] == {
        "type": "halt",
        "ts": 2 * M,
        "reason": "max_drawdown",
        "equity": pytest.approx(9389.33),
        "peak": 10_000.0,
    }


def test_equity_curve_marks_the_open_position_and_ends_after_the_final_close():
    sim = sim_with([(100, 100, 100, 100), (104, 104, 104, 104)])
    sim.submit(BUY_QTY, 0)
    sim.advance_to(2 * M)
    eq = sim.equity_curve(np.array([0, M, 2 * M], dtype=np.int64))
    # before the fill; at 1m (close 100, entry fee paid); at 2m (close 104)
    assert eq.tolist() == pytest.approx([10_000.0, 10_000 - 0.055, 10_004 - 0.055])
    sim.close_all(2 * M, 104.0)
    assert sim.equity(104.0) == sim.cash == pytest.approx(10_004 - 0.055 - 0.0572)


def test_bad_requests_and_accounts_fail_loud():
    sim = sim_with(flat_bars(2))
    with pytest.raises(SimulationError, match="a limit order needs a positive limit_price"):
        sim.submit(OrderRequest(side="buy", kind="limit", qty=1.0), 0)
    with pytest.raises(SimulationError, match="an entry needs qty or sizing"):
        sim.submit(OrderRequest(side="buy"), 0)
    with pytest.raises(InputError, match="leverage must be positive"):
        AccountConfig(starting_equity=1000.0, leverage=0)


# ---------------------------------------------------------------- the mark, fresh at every bar


def test_liquidation_in_the_bar_whose_estimated_mark_first_touches_the_level():
    # one coarse mark bar closed at 0 with the mark at 101 while the first bar opens at 100: the
    # basis is +1, so the estimated mark over a bar is its traded range + 1. 10x long from 100,
    # liquidation 90.5: bar 1 trades down to 89.6 (mark 90.6, above), bar 2 to 89.4 (mark 90.4)
    bars = [(100, 100, 100, 100), (95, 95, 89.6, 92), (92, 92, 89.4, 91), (91, 91, 91, 91)]
    sim = sim_with(bars, leverage=10, mark=[(0, 101.0)])
    sim.submit(OrderRequest(side="buy", qty=10.0), 0)
    sim.advance_to(4 * M)
    (t,) = sim.trades
    assert (t["exit_reason"], t["exit_price"], t["exit_time"]) == ("liquidation", 90.5, 2 * M)
    # the traded low 89.6 of bar 1 is beyond the liquidation price, and counts in the excursion
    assert t["mae_pct"] == pytest.approx(-10.4)
    assert sim.tape.source_counts() == {
        "mark_1m_bars": 0,
        "mark_estimated_bars": 4,
        "mark_missing_bars": 0,
    }
    # a short the same way: liquidation 109.5, mark = traded + 1: bar 1's high 108.4 → 109.4,
    # bar 2's high 108.6 → 109.6
    bars = [(100, 100, 100, 100), (105, 108.4, 104, 106), (106, 108.6, 105, 106)]
    sim = sim_with(bars, leverage=10, mark=[(0, 101.0)])
    sim.submit(OrderRequest(side="sell", qty=10.0), 0)
    sim.advance_to(3 * M)
    (t,) = sim.trades
    assert (t["exit_reason"], t["exit_time"]) == ("liquidation", 2 * M)
    assert t["exit_price"] == pytest.approx(109.5)


def test_the_basis_is_taken_at_the_last_closed_mark_bar():
    # mark bars close at 1m (100.5: basis +0.5 against bar 0's close 100) and 3m (basis −1
    # against bar 2's close 102); the mark at each bar's close is that bar's close + the basis
    bars = [(100, 100, 100, 100), (101, 101, 101, 101), (102, 102, 102, 102), (103, 103, 103, 103)]
    sim = sim_with(bars, mark=[(M, 100.5), (3 * M, 101.0)])
    assert [sim.mark_at(k * M) for k in range(5)] == pytest.approx(
        [math.nan, 100.5, 101.5, 101.0, 102.0], nan_ok=True
    )
    before = sim_with(bars, mark=[(2 * M, 100.0)])  # no mark closed by bar 0's close: traded
    assert before.mark_at(M) == 100.0 and before.tape.source_counts()["mark_missing_bars"] == 1


def test_a_mark_bar_spanning_the_bar_gives_its_own_high_and_low():
    # 1m mark bars (open, high, low) for bars 1 and 2; bar 3 has none: estimated from bar 2's mark
    bars = [(100, 100, 100, 100), (99, 99, 92, 95), (95, 95, 90, 93), (93, 93, 93, 93)]
    marks = [(2 * M, 95.5, M, 99.5, 91.0), (3 * M, 93.2, 2 * M, 95.5, 90.6)]
    sim = sim_with(bars, leverage=10, mark=marks)
    assert sim.tape.source_counts() == {
        "mark_1m_bars": 2,
        "mark_estimated_bars": 1,
        "mark_missing_bars": 1,
    }
    assert sim.mark_at(4 * M) == pytest.approx(93.2)  # 93.2 + (93 − 93)
    sim.submit(OrderRequest(side="buy", qty=10.0), 0)
    sim.advance_to(4 * M)
    # traded low 90 is through 90.5, but the mark's own low 90.6 is not: no liquidation
    assert sim.position is not None and sim.counters["liquidations"] == 0
    assert sim.equity(sim.mark_at(4 * M)) == pytest.approx(10_000 - 0.55 - 10 * 6.8)


def test_equity_is_valued_at_the_estimated_mark():
    bars = [(100, 100, 100, 100), (101, 101, 101, 101), (102, 102, 102, 102)]
    sim = sim_with(bars, mark=[(0, 99.0)])  # basis −1 against the first open
    sim.submit(OrderRequest(side="buy", qty=1.0), 0)
    sim.advance_to(3 * M)
    curve = sim.equity_curve(np.array([M, 2 * M, 3 * M]))
    fee = 100 * 0.00055
    assert curve == pytest.approx([10_000 - fee - 1, 10_000 - fee + 0, 10_000 - fee + 1])


def test_fed_marks_and_bars_price_as_a_loaded_tape():
    bars = [(100, 100, 99, 99.5), (99, 101, 98, 100), (100, 102, 99, 101), (101, 101, 97, 98)]
    marks = [(M, 99.9), (2 * M, 100.2, M, 101.3, 98.2), (4 * M, 98.3)]
    loaded = sim_with(bars, mark=[(*m, -1, m[1], m[1]) if len(m) == 2 else m for m in marks])
    fed = sim_with([])
    for k, bar in enumerate(bars):
        for m in marks:
            if k * M < m[0] <= (k + 1) * M:
                fed.add_mark(*m[:2], *(m[2:] or (-1,)))  # type: ignore[arg-type]
        fed.feed((k * M, (k + 1) * M, *bar))
    for name in ("mark", "liq_low", "liq_high", "dd_price", "mark_src"):
        np.testing.assert_array_equal(getattr(fed.tape, name), getattr(loaded.tape, name))
