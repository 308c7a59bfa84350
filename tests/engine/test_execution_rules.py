"""docs/execution.md "Rules in detail", the parts the engine decides before the simulator sees an
order: the limit price and its expiry, and an ATR distance fixed at the signal bar."""

from __future__ import annotations

import numpy as np

from trade.data.bars import Bars
from trade.engine.decide import Decision
from trade.engine.execution import SimExecution
from trade.engine.market import MarketWindow, build_intrabar
from trade.instruments import InstrumentSpec
from trade.play import ast as A
from trade.play import validate_play_text

M15, M = 900_000, 60_000
SPEC = InstrumentSpec("BTCUSDT", tick_size=0.1, qty_step=0.001, min_qty=0.001, min_notional=5.0)

PLAY = """version: "1"
name: rules
symbol: BTCUSDT
timeframes: {low_tf: 15m, exec: low_tf}
account: {starting_equity: 10000, leverage: 1}
features:
  atr: {indicator: atr, params: {length: 14}}
actions:
  entry_long: [[close, ">", 0]]
  entry_short: [[close, "<", 0]]
risk:
  stop_loss: {type: atr_multiple, value: 2, atr: atr}
  trailing: {type: atr_multiple, value: 1.5, atr: atr}
  sizing: {model: percent_equity, value: 10}
entry: {order_type: limit, limit_offset_pct: 0.25, expire_after_bars: 3}
"""


def execution(atr: list[float]) -> SimExecution:
    """Two 15m bars closing at 100.0 (tick 0.1), 1m bars inside; `atr` per instant."""
    n = 30
    ts = np.arange(n, dtype=np.int64) * M
    px = np.full(n, 100.0)
    minute = Bars.from_arrays("BTCUSDT", "1m", ts, px, px, px, px, np.ones(n))
    ex15 = Bars.from_arrays("BTCUSDT", "15m", ts[::15], *(px[::15],) * 4, np.ones(2))
    window = MarketWindow(
        "BTCUSDT", SPEC, {"15m": ex15}, build_intrabar(minute, ex15, 0, 2 * M15),
        None, np.empty(0, np.int64), np.empty(0), 0, 2 * M15,
    )  # fmt: skip

    def series_at(s: A.Series, i: int) -> float:
        assert s.id == "atr.value"
        return atr[i]

    compiled = validate_play_text(PLAY)
    return SimExecution(compiled, window, window.instants("15m"), "pessimistic", series_at)


def test_limit_price_rounded_to_the_nearest_tick_halves_up_and_its_expiry() -> None:
    ex = execution([4.0, 9.0])
    ex.execute(0, M15, [Decision("entry", "long")])
    (order,) = ex.sim.pending
    # 100 × (1 − 0.25%) = 99.75 → 99.8 at tick 0.1 (a half rounds up)
    assert order.req.limit_price == 99.8
    assert order.req.expire_ts == M15 + 3 * M15
    ex.sim.pending.clear()
    ex.execute(0, M15, [Decision("entry", "short")])
    assert ex.sim.pending[0].req.limit_price == 100.3  # 100.25 → 100.3


def test_atr_distances_are_fixed_at_the_signal_bar() -> None:
    ex = execution([4.0, 9.0])
    ex.execute(0, M15, [Decision("entry", "long")])
    (order,) = ex.sim.pending
    assert order.req.stop_loss is not None and order.req.trailing is not None
    # value × ATR at instant 0 (4.0), as price distances that do not follow later ATR values
    assert (order.req.stop_loss.kind, order.req.stop_loss.value) == ("distance", 8.0)
    assert (order.req.trailing.distance.kind, order.req.trailing.distance.value) == (
        "distance",
        6.0,
    )


def test_an_entry_without_its_atr_is_rejected_and_counted() -> None:
    ex = execution([float("nan"), 9.0])
    ex.execute(0, M15, [Decision("entry", "long")])
    assert ex.sim.pending == []
    assert ex.sim.rejections == {"atr_missing": 1} and ex.sim.counters["rejected_entries"] == 1
    assert ex.sim.events[-1] == {"type": "reject", "ts": M15, "reason": "atr_missing", "atr": "atr"}


def test_a_refused_entry_is_counted_as_position_open() -> None:
    ex = execution([4.0, 9.0])
    ex.execute(0, M15, [Decision("refused", "long", block="b")])
    assert ex.sim.rejections == {"position_open": 1} and ex.sim.counters["rejected_entries"] == 1
    assert ex.sim.events[-1] == {
        "type": "reject", "ts": M15, "reason": "position_open", "side": "buy", "tag": {"block": "b"}
    }  # fmt: skip
