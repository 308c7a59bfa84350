"""trades.csv holds one row per position (entry to flat); fills.csv every fill with its block."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from trade.cli.main import run
from trade.report.artifacts import trades_csv
from trade.report.positions import Closes, FillTags, position_table, position_trades

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


def _random_run(seed: int) -> tuple[list[dict], list[dict]]:
    """Closes and fill events of a made-up run: positions of one to three exit fills, both
    sides, signal and other exits, entries and signal exits naming blocks."""
    rng = np.random.default_rng(seed)
    closes: list[dict] = []
    events: list[dict] = []
    t = ENTRY
    for _ in range(60):
        side = "long" if rng.random() < 0.5 else "short"
        entry_px = float(rng.uniform(50, 150))
        events.append({"type": "fill", "ts": t, "qty": 1.0, "price": entry_px, "fee": 0.01,
                       "side": "buy", "tag": {"block": f"in{rng.integers(3)}"}})  # fmt: skip
        out_t = t
        for _ in range(int(rng.integers(1, 4))):
            out_t += int(rng.integers(1, 50)) * 60_000
            reason = ["signal", "stop_loss", "take_profit"][int(rng.integers(3))]
            qty = float(rng.uniform(0.1, 2))
            closes.append(
                {"trade_id": len(closes) + 1, "side": side, "entry_time": t,
                 "entry_price": entry_px, "exit_time": out_t,
                 "exit_price": float(rng.uniform(50, 150)), "qty": qty,
                 "notional": qty * entry_px, "exit_reason": reason,
                 "fees": float(rng.uniform(0, 1)), "funding": float(rng.normal(0, 0.1)),
                 "pnl": float(rng.normal(0, 10)), "return_pct": float(rng.normal()),
                 "mae_pct": float(-rng.uniform(0, 5)), "mfe_pct": float(rng.uniform(0, 5)),
                 "bars_held": int(rng.integers(1, 50))}
            )  # fmt: skip
            events.append({"type": "fill", "ts": out_t, "side": "sell", "qty": qty, "pnl": 1.0,
                           "price": 1.0, "fee": 0.0, "reason": reason,
                           "tag": {"block": f"out{rng.integers(3)}"}})  # fmt: skip
        t = out_t + 60_000
    return closes, events


def test_the_columns_merge_positions_exactly_as_the_dicts_do() -> None:
    """The table a backtest and a sweep read (columns) gives `position_trades`' rows: same
    keys, same order, every float equal to the last bit (partial exits summed in order)."""
    for seed in range(5):
        closes, events = _random_run(seed)
        table = position_table(Closes.from_dicts(closes), FillTags.from_events(events))
        rows = table.rows()
        want, _ = position_trades(closes, events)
        assert any(r["exits"] > 1 for r in want) and len(rows) == len(want) == 60
        assert [list(r) for r in rows] == [list(w) for w in want]
        assert rows == want
    empty = position_table(Closes.from_dicts([]), FillTags.from_events([]))
    assert empty.rows() == [] and len(empty) == 0


def test_the_fingerprint_changes_exactly_when_trades_csv_does() -> None:
    closes, events = _random_run(7)

    def both(cl: list[dict]) -> tuple[str, str]:
        table = position_table(Closes.from_dicts(cl), FillTags.from_events(events))
        return table.fingerprint(), trades_csv(table.rows())

    base_fp, base_csv = both(closes)
    assert both(closes) == (base_fp, base_csv)
    changes = {
        "pnl": lambda v: v + 1e-9,  # the 9th decimal: trades.csv shows it
        "fees": lambda v: v + 1e-12,  # below the 10 decimals trades.csv keeps
        "mae_pct": lambda v: float("nan"),
        "exit_reason": lambda v: "liquidation",
        "exit_time": lambda v: v + 1,
        "side": lambda v: "short" if v == "long" else "long",
    }
    for key, change in changes.items():
        cl = [dict(c) for c in closes]
        cl[-1][key] = change(cl[-1][key])
        fp, text = both(cl)
        assert (fp == base_fp) == (text == base_csv), key
        assert (text == base_csv) == (key == "fees"), key
    # −0 and 0, and NaNs of either sign, are the same text and the same fingerprint
    for a, b in ((0.0, -0.0), (float("nan"), -float("nan"))):
        one, two = [dict(c) for c in closes], [dict(c) for c in closes]
        one[0]["funding"], two[0]["funding"] = a, b
        assert both(one) == both(two)
