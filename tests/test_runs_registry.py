"""`trade runs list|show|compare` over the run directories backtests leave under runs/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trade.cli.main import run

SYN = ["--synthetic", "--pattern", "range", "--bars", "20000", "--no-report"]


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three runs: ema_cross twice (different --set), macd_blocks once, in ./runs/."""
    monkeypatch.chdir(tmp_path)
    db = ["--db", str(tmp_path / "m.duckdb")]
    for play, out, extra in (
        ("ema_cross", "runs/ema_cross/aaa-first", ["--set", "fast=8"]),
        ("ema_cross", "runs/ema_cross/bbb-second", []),
        ("macd_blocks", "runs/macd_blocks/ccc-third", []),
    ):
        assert run(["backtest", "run", "--play", play, *db, *SYN, *extra, "--out", out]) == 0
    return tmp_path / "runs"


def result(path: Path) -> dict:
    return json.loads((path / "result.json").read_text())


def test_list_filters_by_play(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run(["runs", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["run", "symbol", "window"]
    names = [line.split()[0] for line in lines[1:]]
    assert names == ["ema_cross/aaa-first", "ema_cross/bbb-second", "macd_blocks/ccc-third"]
    first = result(runs / "ema_cross" / "aaa-first")
    ret = f"{first['metrics']['total_return_pct']:+,.2f}"
    assert lines[1].split()[-4:-2] == [str(first["trades"]), ret]
    assert run(["runs", "list", "--play", "macd_blocks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["macd_blocks/ccc-third"]


def test_show_finds_a_run_by_part_of_its_id(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run(["runs", "show", "bbb"]) == 0
    shown = capsys.readouterr().out
    second = result(runs / "ema_cross" / "bbb-second")
    assert f"fingerprint {second['trades_fingerprint'][:16]}" in shown
    assert (
        "command: trade backtest run --play ema_cross --db " in shown
        and "--out runs/ema_cross/bbb-second" in shown
    )
    assert run(["runs", "show", "ema_cross/"]) == 2
    assert "2 runs match (ema_cross/aaa-first, ema_cross/bbb-second)" in capsys.readouterr().err
    assert run(["runs", "show", "zzz"]) == 2
    assert "run 'zzz': not found under runs" in capsys.readouterr().err


def test_compare_side_by_side_and_equity_page(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(["runs", "compare", "aaa", "bbb", "ccc", "--out", "cmp.html"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "[1] ema_cross/aaa-first", "[2] ema_cross/bbb-second", "[3] macd_blocks/ccc-third",
    ]  # fmt: skip
    results = [result(runs / p) for p in ("ema_cross/aaa-first", "ema_cross/bbb-second",
                                          "macd_blocks/ccc-third")]  # fmt: skip
    row = next(line for line in lines if line.startswith("return %"))
    assert row.split()[2:] == [f"{r['metrics']['total_return_pct']:+,.2f}" for r in results]
    row = next(line for line in lines if line.startswith("trades"))
    assert row.split()[1:] == [str(r["trades"]) for r in results]
    page = Path("cmp.html").read_text()
    data = json.loads(
        re.search(r'<script id="compare-data" type="application/json">(.*?)</script>', page).group(
            1
        )
    )
    assert [d["name"] for d in data] == [
        "[1] ema_cross/aaa-first", "[2] ema_cross/bbb-second", "[3] macd_blocks/ccc-third",
    ]  # fmt: skip
    for d, name in zip(data, ("ema_cross/aaa-first", "ema_cross/bbb-second",
                              "macd_blocks/ccc-third"), strict=True):  # fmt: skip
        rows = (runs / name / "equity.csv").read_text().splitlines()[1:]
        assert d["points"][-1]["value"] == float(rows[-1].split(",")[1])
    assert "LightweightCharts" in page and "<script src" not in page
    assert run(["runs", "compare", "aaa"]) == 2
    assert "compare: give two or more runs" in capsys.readouterr().err
