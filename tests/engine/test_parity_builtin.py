"""Fast and replay drivers take identical trades, on Plays that use only built-in series.

(Feature-based Plays are covered by the example-Play parity suite.)
"""

from __future__ import annotations

import numpy as np
import pytest

from trade.data.bars import Bars
from trade.engine.market import window_from_bars
from trade.engine.runner import run_fast, run_replay
from trade.play import validate_play_text

HEAD = """
version: "1"
name: {name}
symbol: BTCUSDT
timeframes: {{low_tf: 15m, exec: low_tf}}
account: {{starting_equity: 10000, leverage: {lev}}}
"""

PLAYS = {
    "momentum_sl_tp": """
actions:
  entry_long: [[close, ">", "high[1]"], [close, ">", "close[4]"]]
  entry_short: [[close, "<", "low[1]"], [close, "<", "close[4]"]]
  exit_all: {holds_for: {bars: 3, expr: [close, "<", open]}}
risk:
  stop_loss: {type: percent, value: 1.5}
  take_profit: {type: rr_ratio, value: 2}
  sizing: {model: risk_based, value: 1}
""",
    "blocks_partial_flip": """
actions:
  - id: entries
    cases:
      - when: {count_true: {bars: 5, min_true: 4, expr: [close, ">", open]}}
        emit: [{action: entry_long, metadata: {why: up}}]
      - when: {count_true: {bars: 5, min_true: 4, expr: [close, "<", open]}}
        emit: entry_short
  - id: exits
    cases:
      - when: [[hl2, cross_below, "low[2]"]]
        emit: [{action: exit_long, percent: 50}]
    else: {emit: []}
position_policy: {mode: long_short, allow_flip: true}
risk:
  trailing: {type: percent, value: 1.0, activation_pct: 0.5}
  break_even: {trigger: {type: percent, value: 0.8}}
  sizing: {model: percent_equity, value: 50}
""",
    "position_aware": """
actions:
  entry_long: [[close, ">", "close[1]"], {not: [close, "<", open]}]
  exit_long: {any: [[position.bars_held, ">=", 8], [position.unrealized_pnl_pct, "<", -0.7]]}
position_policy: {mode: long_only}
risk:
  sizing: {model: fixed_notional, value: 5000}
""",
    "limit_entries": """
actions:
  entry_long: [[close, "<", "low[1]"]]
  exit_long: [[close, ">", "high[1]"]]
entry: {order_type: limit, limit_offset_pct: 0.2, expire_after_bars: 2}
position_policy: {mode: long_only}
risk:
  stop_loss: {type: fixed, value: 400}
  sizing: {model: percent_equity, value: 100}
""",
}


def compile_play(name: str, body: str, lev: int = 3):  # type: ignore[no-untyped-def]
    return validate_play_text(HEAD.format(name=name, lev=lev) + body, f"{name}.yml")


@pytest.mark.parametrize("name", sorted(PLAYS))
def test_fast_equals_replay_on_real_15m(name: str, btc_15m: Bars) -> None:
    compiled = compile_play(name, PLAYS[name])
    bars = btc_15m.slice(0, 6000)
    window = window_from_bars(compiled, bars)
    fast = run_fast(compiled, window, intrabar_policy="pessimistic")
    replay = run_replay(compiled, window, intrabar_policy="pessimistic")
    assert len(fast.trades) > 20
    assert fast.trades == replay.trades
    assert np.array_equal(fast.equity, replay.equity)


def test_exit_reasons_cover_the_risk_rules(btc_15m: Bars) -> None:
    out = run_fast(
        compile_play("m", PLAYS["momentum_sl_tp"]),
        window_from_bars(compile_play("m", PLAYS["momentum_sl_tp"]), btc_15m.slice(0, 6000)),
        intrabar_policy="pessimistic",
    )
    reasons = {t["exit_reason"] for t in out.trades}
    assert {"stop_loss", "take_profit", "signal"} <= reasons
