"""result.json records how a run was made, and `trade backtest rerun` repeats it exactly."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numba
import numpy as np
import pytest

from trade import __version__
from trade.cli.main import run

SYN = ["--synthetic", "--pattern", "range", "--bars", "20000", "--seed", "7"]


def backtest(tmp_path: Path, out: str, *extra: str) -> dict:
    args = ["--db", str(tmp_path / "m.duckdb"), "backtest", "run", "--play", "ema_cross"]
    args += [*extra, "--out", str(tmp_path / out), "--no-report"]
    assert run(args) == 0
    return json.loads((tmp_path / out / "result.json").read_text())


def test_result_records_sets_seed_play_data_and_versions(tmp_path: Path) -> None:
    result = backtest(tmp_path, "a", *SYN, "--set", "fast=8", "--intrabar", "optimistic")
    prov = result["provenance"]
    assert prov["command"] == [
        "trade", "--db", str(tmp_path / "m.duckdb"), "backtest", "run", "--play", "ema_cross",
        *SYN, "--set", "fast=8", "--intrabar", "optimistic", "--out", str(tmp_path / "a"),
        "--no-report",
    ]  # fmt: skip
    assert prov["overrides"] == {"fast": "8"}
    assert prov["variables"] == {"fast": 8, "slow": 50}
    assert prov["play"]["features"]["ema_fast"]["params"] == {"length": 8}
    assert prov["request"]["intrabar"] == "optimistic"
    assert prov["data"]["source"] == "synthetic"
    assert prov["data"]["synthetic"] == {"pattern": "range", "bars": 20000, "seed": 7}
    assert prov["data"]["intrabar_bars"]["rows"] > 0
    assert prov["data"]["timeframes"]["15m"]["rows"] == 20000 // 15
    assert prov["data"]["timeframes"]["4h"]["rows"] == 20000 // 240
    assert prov["versions"] == {
        "trade": __version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "python": prov["versions"]["python"],
    }
    kept = (tmp_path / "a" / "play.yml").read_bytes()
    assert hashlib.sha256(kept).hexdigest() == prov["play_sha256"]
    source = Path(__file__).resolve().parents[1] / "plays" / "examples" / "ema_cross.yml"
    assert kept == source.read_bytes()


def test_rerun_reproduces_a_synthetic_run_with_its_sets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = backtest(tmp_path, "a", *SYN, "--set", "fast=8")
    default = backtest(tmp_path, "plain", *SYN)
    assert default["trades_fingerprint"] != first["trades_fingerprint"]  # the --set matters
    capsys.readouterr()
    assert run(["backtest", "rerun", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 0
    again = json.loads((tmp_path / "b" / "result.json").read_text())
    assert again["trades_fingerprint"] == first["trades_fingerprint"]
    assert again["input_hash"] == first["input_hash"]
    assert (tmp_path / "b" / "trades.csv").read_text() == (
        tmp_path / "a" / "trades.csv"
    ).read_text()
    assert "ok: same trades fingerprint" in capsys.readouterr().out


def test_rerun_reproduces_a_store_run(tmp_path: Path) -> None:
    first = backtest(tmp_path, "a", "--set", "slow=30")
    assert first["provenance"]["data"]["store"] == str(tmp_path / "m.duckdb")
    assert run(["backtest", "rerun", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 0
    again = json.loads((tmp_path / "b" / "result.json").read_text())
    assert again["trades_fingerprint"] == first["trades_fingerprint"]
    assert again["window"] == first["window"]


def test_rerun_refuses_an_edited_play_and_reports_a_changed_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backtest(tmp_path, "a", *SYN)
    result_path = tmp_path / "a" / "result.json"
    result = json.loads(result_path.read_text())
    result["trades_fingerprint"] = "0" * 64
    result_path.write_text(json.dumps(result))
    capsys.readouterr()
    assert run(["backtest", "rerun", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 1
    assert "MISMATCH: trades fingerprint: recorded 0000000000000000" in capsys.readouterr().out
    play = tmp_path / "a" / "play.yml"
    play.write_text(play.read_text().replace("fast: 20", "fast: 21"))
    assert run(["backtest", "rerun", str(tmp_path / "a"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip() == f"error: {play}: changed since the run (its sha256 differs from result.json)"
    )
    assert not (tmp_path / "c").exists()
    assert run(["backtest", "rerun", str(tmp_path / "nothing")]) == 2
    assert "result.json: not found" in capsys.readouterr().err
