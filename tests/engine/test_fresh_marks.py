"""The mark equity, liquidation and `position.*` are valued at is fresh as of the bar processed
(docs/execution.md, "The mark"): here checked end to end against an oracle written from that page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trade.data.bars import Bars
from trade.engine.backtest import run_backtest
from trade.engine.execution import SimExecution
from trade.engine.market import MarketWindow, build_intrabar
from trade.instruments import default_spec
from trade.play import validate_play_text
from trade.report.metrics import bar_returns, max_drawdown, sharpe
from trade.sim import OrderRequest

ROOT = Path(__file__).resolve().parents[2]
H, M15, M = 3_600_000, 900_000, 60_000


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store") / "market.duckdb"


def estimated_marks(ib_close_ts, ib_open, ib_close, mark: Bars, instants):  # type: ignore[no-untyped-def]
    """The page's rule, instant by instant: the last 1m close by T plus the basis at the last
    1h mark bar closed by T (its close minus the traded close at its close time)."""
    out = []
    for t in instants:
        k = int(np.searchsorted(ib_close_ts, t, side="right")) - 1
        j = int(np.searchsorted(mark.ts + mark.tf_ms, t, side="right")) - 1
        tau = int(mark.ts[j] + mark.tf_ms)
        r = int(np.searchsorted(ib_close_ts, tau, side="right")) - 1
        ref = ib_close[r] if r >= 0 else ib_open[0]
        out.append(mark.close[j] + (ib_close[k] - ref))
    return np.array(out)


def equity_from_events(events, instants, start, price):  # type: ignore[no-untyped-def]
    """Cash and position from the event log (fills and funding before each instant), valued at
    `price` per instant."""
    out, cash, qty, entry, e = [], start, 0.0, 0.0, 0
    for t, px in zip(instants, price, strict=True):
        while e < len(events) and events[e]["ts"] < t:
            ev = events[e]
            e += 1
            if ev["type"] == "funding":
                cash -= ev["paid"]
            elif ev["type"] == "fill" and "reason" not in ev:  # an opening fill
                cash -= ev["fee"]
                qty, entry = (ev["qty"] if ev["side"] == "buy" else -ev["qty"]), ev["price"]
            elif ev["type"] == "fill":
                sign = 1.0 if qty > 0 else -1.0
                cash += (ev["price"] - entry) * ev["qty"] * sign - ev["fee"]
                qty -= sign * ev["qty"]
        out.append(cash + qty * (px - entry))
    return np.array(out)


def test_a_15m_plays_equity_sharpe_and_drawdown_at_the_estimated_mark(db: Path) -> None:
    res = run_backtest(ROOT / "plays/examples/ema_cross.yml", db=db)
    out, window = res.output, res.window
    ib, mark = window.intrabar, window.mark
    assert mark is not None and mark.timeframe == "1h" and ib.fallbacks == 0
    instants = out.equity_ts
    est = estimated_marks(ib.ts_close, ib.open, ib.close, mark, instants)
    start = res.compiled.play.account.starting_equity
    expected = equity_from_events(list(out.events), instants, start, est)
    expected[-1] = out.equity[-1]  # the last point comes after the end-of-data close
    assert expected[-1] == pytest.approx(start + sum(t["pnl"] for t in out.trades), abs=1e-6)
    np.testing.assert_allclose(out.equity, expected, rtol=0, atol=1e-6)
    curve = np.concatenate([[start], expected])
    bpy = 365 * 24 * 4
    metrics = res.result["metrics"]
    assert metrics["sharpe"] == pytest.approx(sharpe(bar_returns(curve), bpy), abs=1e-9)
    assert metrics["max_drawdown_pct"] == pytest.approx(max_drawdown(curve)[1], abs=1e-9)
    assert metrics["mark_estimated_bars"] == len(ib.ts_open) and metrics["mark_1m_bars"] == 0
    # the last closed 1h mark (what equity was valued at before) gives other figures
    j = np.searchsorted(mark.ts + mark.tf_ms, instants, side="right") - 1
    stale = equity_from_events(list(out.events), instants, start, mark.close[j])
    stale[-1] = expected[-1]
    assert np.abs(stale - expected).max() > 10.0
    assert sharpe(bar_returns(np.concatenate([[start], stale])), bpy) != pytest.approx(
        metrics["sharpe"], abs=1e-3
    )


PLAY = """version: "1"
name: fresh
symbol: BTCUSDT
timeframes: {low_tf: 15m, exec: low_tf}
account: {starting_equity: 10000, leverage: 1, slippage_bps: 0}
actions:
  entry_long: [[close, ">", 0]]
  exit_long: [[position.unrealized_pnl_pct, "<", -0.5]]
risk: {sizing: {model: fixed_notional, value: 1000}}
"""


def test_position_values_at_the_mark_as_of_the_instant_never_older_than_the_entry() -> None:
    # 14:00 → 15:00 in 1m bars: 100 until 14:30, then 110; the 1h mark bar closing at 14:00
    # says 99: basis −1 against the traded price then (no bar closed by 14:00: the first open)
    t0 = 14 * H
    n = 60
    ts = t0 + np.arange(n, dtype=np.int64) * M
    px = np.where(ts < t0 + 30 * M, 100.0, 110.0)
    minute = Bars.from_arrays("BTCUSDT", "1m", ts, px, px, px, px, np.ones(n))
    ex15 = Bars.from_arrays(
        "BTCUSDT", "15m", ts[::15], px[::15], px[::15], px[::15], px[::15], np.ones(4)
    )
    mark = Bars.from_arrays(
        "BTCUSDT", "1h", np.array([t0 - H]), *(np.array([99.0]),) * 4, np.zeros(1)
    )
    window = MarketWindow(
        "BTCUSDT", default_spec("BTCUSDT"), {"15m": ex15},
        build_intrabar(minute, ex15, t0, t0 + H), mark, np.empty(0, np.int64), np.empty(0), t0,
        t0 + H,
    )  # fmt: skip
    compiled = validate_play_text(PLAY)
    instants = window.instants("15m")
    ex = SimExecution(compiled, window, instants, "pessimistic", lambda s, i: np.nan)
    ex.sim.submit(OrderRequest(side="buy", qty=1.0), t0 + 30 * M)  # fills at 14:30 at 110
    ex.advance_to(t0 + 45 * M)
    got = ex.position_values(t0 + 45 * M)
    # the mark at 14:45: 99 + (110 − 100) = 109, against the entry 110: −0.909…%, never the 14:00
    # mark 99 alone (−10%)
    assert got["position.entry_price"] == 110.0
    assert got["position.bars_held"] == 1.0
    assert got["position.unrealized_pnl_pct"] == pytest.approx((109 / 110 - 1) * 100)
