"""A run never hides what its data lacks: a missing exec bar is an error (or, with --allow-gaps, a
listed and reported skip), and exec bars priced without 1m data are a printed and counted warning
(or, with --require-1m, an error). Runs on the bundled sample: 15m from 2024-11, 1m from
2025-05-29 17:05."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trade.cli.main import run
from trade.data import MarketStore

GAP_TS = 1_748_600_100_000  # 2025-05-30 10:15 UTC, a 15m bar inside the 1m month


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("honesty") / "m.duckdb"
    with MarketStore(path) as store:
        store.ensure_sample()
        store.con.execute(
            "DELETE FROM ohlcv WHERE symbol = 'BTCUSDT' AND timeframe = '15m' AND ts = ?", [GAP_TS]
        )
    return str(path)


def said(err: str) -> list[str]:
    """The error and warning lines (a first run also prints a one-time compile notice)."""
    return [line for line in err.splitlines() if line.startswith(("error: ", "warning: "))]


def backtest(db: str, out: Path, *args: str) -> int:
    return run(["backtest", "run", "--play", "ema_cross", "--db", db, "--out", str(out), *args])


def test_a_missing_exec_bar_is_an_error_naming_symbol_timeframe_and_range(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = backtest(db, tmp_path / "run", "--start", "2025-05-30", "--end", "2025-06-02")
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "run").exists()
    assert said(err) == [
        "error: BTCUSDT 15m: 1 bar(s) missing inside the window 2025-05-30 00:00 → 2025-06-02 "
        "00:00: 2025-05-30 10:15; heal them with --fix-gaps, or run without them with --allow-gaps"
    ]


def test_allow_gaps_runs_and_lists_the_missing_bar(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ("--start", "2025-05-30", "--end", "2025-06-02", "--allow-gaps")
    assert backtest(db, out, *args) == 0
    warning = (
        "BTCUSDT 15m: 1 bar(s) missing inside the window were skipped (--allow-gaps): "
        "2025-05-30 10:15"
    )
    assert said(capsys.readouterr().err) == [f"warning: {warning}"]
    result = json.loads((out / "result.json").read_text())
    assert result["warnings"] == [warning]
    assert result["evaluated_instants"] == 3 * 96 - 1
    cov = result["coverage"]
    assert (cov["exec_bars"], cov["missing_exec_bars"], cov["fallback_bars_1m"]) == (287, 1, 0)
    assert cov["missing"] == [
        {"first": "2025-05-30T10:15:00Z", "last": "2025-05-30T10:15:00Z", "bars": 1}
    ]
    report = (out / "report.html").read_text()
    assert f"<li>{warning}</li>" in report and "2025-05-30T10:15:00Z" in report


def test_bars_without_1m_data_are_a_counted_warning(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert backtest(db, out, "--start", "2025-05-28", "--end", "2025-05-30", "--json") == 0
    # 2025-05-28 00:00 → 2025-05-29 16:45: 164 of 192 bars before the first minute (17:05)
    warning = (
        "BTCUSDT: 164 of 192 15m bars (85.42% of the window) have no 1m data (2025-05-28 00:00 → "
        "2025-05-29 16:45); fills, stops and liquidations there are priced on the exec bar's OHLC "
        "(--require-1m makes this an error)"
    )
    captured = capsys.readouterr()
    assert said(captured.err) == [f"warning: {warning}"]
    result = json.loads(captured.out)
    assert result["warnings"] == [warning]
    assert result["metrics"]["fallback_bars_1m"] == 164
    cov = result["coverage"]
    assert (cov["exec_bars"], cov["fallback_bars_1m"], cov["fallback_share_pct"]) == (
        192,
        164,
        85.4167,
    )
    assert cov["fallback"] == [
        {"first": "2025-05-28T00:00:00Z", "last": "2025-05-29T16:45:00Z", "bars": 164}
    ]


def test_require_1m_makes_the_fallback_an_error(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--start", "2025-05-28", "--end", "2025-05-30", "--require-1m")
    assert backtest(db, tmp_path / "run", *args) == 2
    assert said(capsys.readouterr().err) == [
        "error: BTCUSDT: 164 15m bar(s) of the window have no 1m data (2025-05-28 00:00 → "
        "2025-05-29 16:45); sync 1m for them, or drop --require-1m to price them on the exec "
        "bar's OHLC"
    ]
    assert not (tmp_path / "run").exists()


def test_a_window_inside_the_1m_month_has_no_warning(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--start", "2025-06-03", "--end", "2025-06-05", "--require-1m", "--json")
    assert backtest(db, tmp_path / "run", *args) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert said(captured.err) == [] and result["warnings"] == []
    assert result["coverage"]["fallback_bars_1m"] == 0 == result["coverage"]["missing_exec_bars"]
