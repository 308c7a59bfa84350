"""trades.csv holds one row per position (entry to flat); fills.csv every fill with its block."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from trade.cli.main import run
from trade.report.positions import position_trades

ENTRY = 1_748_563_200_000
CLOSE = {"side": "long", "entry_time": ENTRY, "entry_price": 100.0, "fees": 0.0, "funding": 0.0}


def test_a_partial_exit_and_the_final_exit_make_one_trade_with_three_fills() -> None:
    closes = [
        {**CLOSE, "trade_id": 1, "exit_time": ENTRY + 60_000, "exit_price": 110.0, "qty": 1.0,
         "notional": 100.0, "exit_reason": "signal", "fees": 0.2, "funding": 0.1, "pnl": 9.7,
         "return_pct": 9.7, "mae_pct": -1.0, "mfe_pct": 10.0, "bars_held": 1},
        {**CLOSE, "trade_id": 2, "exit_time": ENTRY + 120_000, "exit_price": 95.0, "qty": 3.0,
         "notional": 300.0, "exit_reason": "stop_loss", "fees": 0.6, "funding": 0.3, "pnl": -15.9,
         "return_pct": -5.3, "mae_pct": -5.0, "mfe_pct": 12.0, "bars_held": 2},
        {**CLOSE, "trade_id": 3, "side": "short", "entry_time": ENTRY + 120_000,
         "entry_price": 95.0, "exit_time": ENTRY + 180_000, "exit_price": 94.0, "qty": 1.0,
         "notional": 95.0, "exit_reason": "end_of_data", "pnl": 1.0, "return_pct": 1.05,
         "mae_pct": 0.0, "mfe_pct": 1.1, "bars_held": 1},
    ]  # fmt: skip
    events = [
        {"type": "order", "ts": ENTRY - 1},
        {"type": "fill", "ts": ENTRY, "side": "buy", "qty": 4.0, "price": 100.0, "fee": 0.4,
         "tag": {"block": "entries"}},
        {"type": "fill", "ts": ENTRY + 60_000, "side": "sell", "qty": 1.0, "price": 110.0,
         "fee": 0.1, "pnl": 9.7, "reason": "signal", "tag": {"block": "take_some"}},
        {"type": "fill", "ts": ENTRY + 120_000, "side": "sell", "qty": 3.0, "price": 95.0,
         "fee": 0.3, "pnl": -15.9, "reason": "stop_loss", "tag": {"block": "entries"}},
        {"type": "fill", "ts": ENTRY + 120_000, "side": "sell", "qty": 1.0, "price": 95.0,
         "fee": 0.1, "tag": {"block": "shorts"}},
        {"type": "fill", "ts": ENTRY + 180_000, "side": "buy", "qty": 1.0, "price": 94.0,
         "fee": 0.1, "pnl": 1.0, "reason": "end_of_data", "tag": {"block": "shorts"}},
    ]  # fmt: skip
    trades, fills = position_trades(closes, events)
    assert len(trades) == 2 and len(fills) == 5
    t = trades[0]
    assert (t["trade_id"], t["side"], t["exits"], t["qty"], t["notional"]) == (
        1,
        "long",
        2,
        4.0,
        400.0,
    )
    assert t["pnl"] == pytest.approx(-6.2) and t["fees"] == pytest.approx(0.8)
    assert t["exit_price"] == pytest.approx((110.0 + 3 * 95.0) / 4)
    assert t["return_pct"] == pytest.approx(-6.2 / 400.0 * 100)
    assert (t["exit_time"], t["exit_reason"], t["mae_pct"], t["mfe_pct"], t["bars_held"]) == (
        ENTRY + 120_000, "stop_loss", -5.0, 12.0, 2,
    )  # fmt: skip
    assert (t["entry_block"], t["exit_block"]) == ("entries", "")  # a stop names no block
    assert [(f["trade_id"], f["action"], f["block"]) for f in fills] == [
        (1, "entry", "entries"), (1, "exit", "take_some"), (1, "exit", "entries"),
        (2, "entry", "shorts"), (2, "exit", "shorts"),
    ]  # fmt: skip
    assert trades[1]["trade_id"] == 2 and trades[1]["exits"] == 1


def read(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_partial_exits_stay_inside_their_position(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["backtest", "run", "--play", "macd_blocks", "--db", str(tmp_path / "m.duckdb")]
    assert run([*args, "--out", str(out), "--no-report"]) == 0
    result = json.loads((out / "result.json").read_text())
    trades, fills = read(out / "trades.csv"), read(out / "fills.csv")
    assert result["trades"] == len(trades) == result["metrics"]["trades"]
    assert result["fills"] == len(fills)
    assert [int(t["trade_id"]) for t in trades] == list(range(1, len(trades) + 1))
    partial = [t for t in trades if int(t["exits"]) > 1]
    assert partial, "macd_blocks takes partial profits: some position has several exits"
    for t in trades:
        mine = [f for f in fills if f["trade_id"] == t["trade_id"]]
        entries = [f for f in mine if f["action"] == "entry"]
        exits = [f for f in mine if f["action"] == "exit"]
        assert len(entries) == 1 and len(exits) == int(t["exits"])
        assert entries[0]["time"] == t["entry_time"] and entries[0]["block"] == t["entry_block"]
        assert sum(float(f["qty"]) for f in exits) == pytest.approx(float(t["qty"]))
        assert sum(float(f["pnl"]) for f in exits) == pytest.approx(float(t["pnl"]))
        assert exits[-1]["time"] == t["exit_time"] and exits[-1]["reason"] == t["exit_reason"]
        if t["exit_reason"] == "signal":
            assert t["exit_block"] in {"take_some", "shorts_out", "entries"}
            assert t["exit_block"] == exits[-1]["block"]
        else:
            assert t["exit_block"] == ""
    pnls = [float(t["pnl"]) for t in trades]
    m = result["metrics"]
    assert m["win_rate_pct"] == pytest.approx(sum(p > 0 for p in pnls) / len(pnls) * 100)
    assert m["expectancy"] == pytest.approx(sum(pnls) / len(pnls))


def test_exposure_weights_each_closed_part_by_its_own_holding_time() -> None:
    import numpy as np

    from trade.report.metrics import compute_metrics

    def close(qty: float, exit_min: int) -> dict:
        return {"side": "long", "entry_time": 0, "exit_time": exit_min * 60_000, "qty": qty,
                "notional": qty * 100.0, "pnl": 1.0, "fees": 0.0, "funding": 0.0,
                "exit_reason": "signal", "exit_price": 100.0, "entry_price": 100.0,
                "return_pct": 1.0, "mae_pct": 0.0, "mfe_pct": 0.0, "bars_held": 1,
                "trade_id": 1}  # fmt: skip

    closes = [close(1.0, 5), close(1.0, 10)]  # half closed after 5 of 10 minutes
    trades, _ = position_trades(closes, [])
    m = compute_metrics(
        trades, np.array([600_000]), np.array([1002.0]), starting_equity=1000.0,
        bars_per_year=52_560, window=(0, 600_000), closes=closes,
    )  # fmt: skip
    assert m["trades"] == 1
    assert m["exposure_pct"] == pytest.approx((100 * 5 + 100 * 10) / 10 / 1000 * 100)
