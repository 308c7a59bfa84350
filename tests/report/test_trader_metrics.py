"""The metrics a trader expects (CAGR, buy-and-hold of the same window, monthly returns, the long /
short split) and the console summary that shows them in 80 columns."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from trade.cli.main import run
from trade.data import MarketStore
from trade.report.metrics import cagr_pct, compute_metrics


def test_cagr_is_the_compound_annual_rate() -> None:
    two_years = int(2 * 365.25 * 86_400_000)
    assert cagr_pct(100.0, 121.0, two_years) == pytest.approx(10.0)
    assert cagr_pct(100.0, 81.0, two_years) == pytest.approx(-10.0)
    assert cagr_pct(100.0, 0.0, two_years) is None
    assert cagr_pct(100.0, 120.0, 0) is None


def test_compute_metrics_long_short_split_and_buy_and_hold() -> None:
    trades = [
        {"side": "long", "pnl": 10.0, "fees": 1.0, "funding": 0.0, "notional": 100.0,
         "entry_time": 0, "exit_time": 60_000, "exit_reason": "signal"},
        {"side": "long", "pnl": -5.0, "fees": 1.0, "funding": 0.0, "notional": 100.0,
         "entry_time": 60_000, "exit_time": 120_000, "exit_reason": "stop_loss"},
        {"side": "short", "pnl": 3.0, "fees": 1.0, "funding": 0.0, "notional": 100.0,
         "entry_time": 120_000, "exit_time": 180_000, "exit_reason": "signal"},
    ]  # fmt: skip
    ts = np.array([60_000, 120_000, 180_000], dtype=np.int64)
    m = compute_metrics(
        trades, ts, np.array([110.0, 105.0, 108.0]), starting_equity=100.0,
        bars_per_year=525_960, window=(0, 180_000), buy_hold_final=90.0,
    )  # fmt: skip
    assert m["long_trades"] == 2 and m["short_trades"] == 1
    assert m["long_pnl"] == 5.0 and m["short_pnl"] == 3.0
    assert m["long_win_rate_pct"] == 50.0 and m["short_win_rate_pct"] == 100.0
    assert m["buy_and_hold_return_pct"] == -10.0
    assert m["monthly_returns_pct"] == {"1970-01": 8.0}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_result_metrics_match_the_artifacts_and_the_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "m.duckdb"
    assert run(["backtest", "run", "--play", "ema_cross", "--db", str(db), "--out", "run"]) == 0
    shown = capsys.readouterr().out
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    m = result["metrics"]

    # buy and hold: the first evaluated exec bar's close to the last one's
    with MarketStore(db) as store:
        bars = store.load_bars("BTCUSDT", "15m", None, None)
    equity = read_csv(tmp_path / "run" / "equity.csv")
    first, last = (np.datetime64(equity[i]["time"][:-1]).astype("datetime64[ms]").astype(np.int64)
                   for i in (0, -1))  # fmt: skip
    close_at = dict(zip((bars.ts + 900_000).tolist(), bars.close.tolist(), strict=True))
    assert m["buy_and_hold_return_pct"] == pytest.approx(
        (close_at[int(last)] / close_at[int(first)] - 1) * 100, abs=1e-9
    )
    # monthly returns: month-end equity over the previous month-end (the first from the start)
    month_end: dict[str, float] = {}
    for row in equity:
        month_end[row["time"][:7]] = float(row["equity"])
    prev, expected = 10_000.0, {}
    for month, eq in month_end.items():
        expected[month] = (eq / prev - 1) * 100
        prev = eq
    assert m["monthly_returns_pct"] == pytest.approx(expected, abs=1e-9)
    # the long / short split adds up to the trades
    trades = read_csv(tmp_path / "run" / "trades.csv")
    longs = [float(t["pnl"]) for t in trades if t["side"] == "long"]
    assert m["long_trades"] == len(longs) and m["long_trades"] + m["short_trades"] == len(trades)
    assert m["long_win_rate_pct"] == pytest.approx(sum(p > 0 for p in longs) / len(longs) * 100)

    # the console summary: 80 columns, the new figures, the exit reasons and the report's path
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(
        line.startswith("return") and "buy & hold" in line and "CAGR" in line for line in lines
    )
    assert any("sortino" in line for line in lines)
    assert any("exposure" in line for line in lines)
    reasons = " · ".join(f"{k} {v}" for k, v in m["exit_reasons"].items())
    assert f"exit reasons: {reasons}" in shown
    assert lines[-1] == "report: run/report.html"
    assert f"fingerprint {result['trades_fingerprint'][:16]}" in lines


def test_cagr_of_minutes_beyond_a_float_is_none() -> None:
    assert cagr_pct(100.0, 108.0, 180_000) is None


def test_calmar_of_minutes_beyond_a_float_is_none() -> None:
    from trade.report.metrics import calmar

    assert calmar(100.0, 108.0, 3, 525_960, 4.5) is None
