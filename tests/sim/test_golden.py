"""Golden scenarios: every number below is computed by hand from DESIGN §5's rules."""

from __future__ import annotations

import pytest

from trade.sim import Level, OrderRequest, Sizing

from .helpers import M, sim_with

BUY_QTY = OrderRequest(side="buy", qty=1.0)


def flat_bars(n: int, price: float = 100.0) -> list[tuple[float, float, float, float]]:
    return [(price, price, price, price)] * n


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
    assert sim.rejections == {"min_notional": 1, "min_qty": 1}
    assert sim.position is None


def test_limit_entry_fills_at_limit_with_maker_fee():
    sim = sim_with([(100, 100, 100, 100), (100, 100.5, 98.5, 99)])
    sim.submit(
        OrderRequest(side="buy", kind="limit", qty=1.0, limit_price=99.0, expire_ts=10 * M), 0
    )
    sim.advance_to(M)
    assert sim.position is None  # the first bar never traded down to 99
    sim.advance_to(2 * M)
    assert sim.position is not None and sim.position.entry_price == 99.0
    assert sim.cash == pytest.approx(10_000 - 99.0 * 0.0002)


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


@pytest.mark.parametrize("lev", [1.0, 10.0])
def test_percent_equity_sizing(lev: float):
    sim = sim_with(flat_bars(2), leverage=lev)
    sim.submit(OrderRequest(side="buy", sizing=Sizing("percent_equity", 100.0)), 0)
    sim.advance_to(M)
    # capped by available margin after fees: notional ≤ E / (1/L + taker)
    expected = int(min(10_000 * lev, 10_000 / (1 / lev + 0.00055)) / 100 * 1000) / 1000
    assert sim.position is not None and sim.position.qty == pytest.approx(expected)
    if lev == 1.0:
        assert expected == 99.945  # E / (price × (1 + taker)) rounded down to the step


@pytest.mark.parametrize(("lev", "qty"), [(1.0, 50.0), (10.0, 50.0)])
def test_risk_based_sizing(lev: float, qty: float):
    # risk 1% of 10000 = 100 over a 2% stop → notional 5000 → 50 units at 100, whatever the leverage
    sim = sim_with(flat_bars(2), leverage=lev)
    sim.submit(
        OrderRequest(side="buy", sizing=Sizing("risk_based", 1.0), stop_loss=Level("percent", 2.0)),
        0,
    )
    sim.advance_to(M)
    assert sim.position is not None and sim.position.qty == qty


@pytest.mark.parametrize(("lev", "qty"), [(1.0, 25.0), (10.0, 25.0)])
def test_fixed_notional_sizing(lev: float, qty: float):
    sim = sim_with(flat_bars(2), leverage=lev)
    sim.submit(OrderRequest(side="buy", sizing=Sizing("fixed_notional", 2500.0)), 0)
    sim.advance_to(M)
    assert sim.position is not None and sim.position.qty == qty


def test_trailing_stop_moves_only_at_exec_close():
    # exec = 2 minutes; trailing 1 price unit behind the best high of closed exec bars
    from trade.sim import Trailing

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
