"""`trade indicators …` and the indicator audits, through the real CLI entry point."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import talib

from trade.cli.main import run


def test_list_json_has_every_indicator(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["indicators", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {r["name"]: r for r in rows}
    assert len(rows) == 44
    assert [o["name"] for o in by["bbands"]["outputs"]] == [
        "lower",
        "middle",
        "upper",
        "bandwidth",
        "percent_b",
    ]
    assert by["ema"]["params"][0] == {
        "name": "length",
        "type": "int",
        "default": 20,
        "min": 1,
        "max": 100000,
        "choices": None,
    }
    assert by["ema"]["warmup"] == 19 + 147  # first value at bar 19, then the seed fades below 1e-6


def test_compute_matches_talib_both_drivers(
    tmp_path: Path, market_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = market_dir / "bybit_BTCUSDT_1h.csv.gz"
    for flag in ([], ["--incremental"]):
        out = tmp_path / f"rsi{len(flag)}.csv"
        assert (
            run(
                [
                    "indicators",
                    "compute",
                    "rsi",
                    "--param",
                    "length=9",
                    "--data",
                    str(src),
                    "--out",
                    str(out),
                    *flag,
                ]
            )
            == 0
        )
        a = np.genfromtxt(out, delimiter=",", skip_header=1)
        with gzip.open(src, "rt") as fh:
            close = np.loadtxt(fh, delimiter=",", skiprows=1)[:, 4]
        ref = talib.RSI(close, 9)
        np.testing.assert_allclose(a[300:, 1], ref[300:], rtol=1e-9)
        assert out.read_text().splitlines()[0] == "ts_ms,value"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["indicators", "compute", "emma", "--data", "x.csv"],
            "unknown indicator 'emma'; did you mean 'ema'?",
        ),
        (
            ["indicators", "compute", "ema", "--param", "length=-3", "--data", "x.csv"],
            "param 'length' of ema: must be >= 1, got -3",
        ),
        (
            ["indicators", "compute", "ema", "--data", "/nonexistent.csv"],
            "/nonexistent.csv: no such file",
        ),
        (
            ["indicators", "compute", "atr", "--source", "hl2", "--data", "x.csv"],
            "atr reads its own inputs",
        ),
    ],
)
def test_compute_bad_input_exits_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_audits_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["backtest", "audit-toolkit", "--bars", "600"]) == 0
    assert run(["backtest", "audit-incremental-parity", "--bars", "400"]) == 0
    assert "ok: 44 indicators" in capsys.readouterr().out


def test_audits_fail_on_planted_problems(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trade.cli import feature_audits
    from trade.features.indicators import IncrementalIndicator

    real_batch, real_values = feature_audits.compute_batch, IncrementalIndicator.values

    def missing_output(name, params, bars, source=None):  # type: ignore[no-untyped-def]
        out = real_batch(name, params, bars, source)
        return {k: v for k, v in out.items() if k != "signal"} if name == "macd" else out

    monkeypatch.setattr(
        feature_audits, "compute_batch", missing_output
    )  # planted: macd.signal gone
    assert run(["backtest", "audit-toolkit", "--bars", "600"]) == 1
    assert "macd: outputs" in capsys.readouterr().out
    monkeypatch.undo()

    def drifting(self):  # type: ignore[no-untyped-def]
        vals = real_values(self)
        return tuple(v * (1 + 1e-6) for v in vals) if self.name == "rsi" else vals

    monkeypatch.setattr(IncrementalIndicator, "values", drifting)  # planted: incremental drifts
    assert run(["backtest", "audit-incremental-parity", "--bars", "400"]) == 1
    assert "rsi" in capsys.readouterr().out
