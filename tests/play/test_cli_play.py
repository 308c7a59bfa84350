"""`trade play validate|show` with --set: the normalised Play, defaults and overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trade.cli.main import run

EXAMPLES = Path(__file__).resolve().parents[2] / "plays" / "examples"


def test_validate_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["play", "validate", str(EXAMPLES)]) == 0
    out = capsys.readouterr().out
    assert f"{len(list(EXAMPLES.glob('*.yml')))} Play(s) valid" in out


def test_show_json_applies_defaults_and_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["play", "show", str(EXAMPLES / "ema_cross.yml"), "--json", "--set", "fast=12"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["variables"] == {"fast": 12, "slow": 50}
    assert data["features"]["ema_fast"] == {
        "indicator": "ema",
        "tf": "15m",
        "params": {"length": 12},
        "source": "close",
        "warmup": 11 + 91,  # first value at bar 11, then the seed fades below 1e-6
    }
    assert data["account"]["fee_bps"] == {"taker": 5.5, "maker": 2.0}
    assert data["entry"] == {
        "order_type": "market",
        "limit_offset_pct": 0.0,
        "expire_after_bars": 1,
    }
    assert data["warmup_exec_bars"] == 49 + 354


def test_set_unknown_variable_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["play", "show", str(EXAMPLES / "ema_cross.yml"), "--set", "fats=12"]) == 2
    assert "--set fats: unknown variable 'fats'; did you mean 'fast'?" in capsys.readouterr().err


def test_set_malformed(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["play", "show", str(EXAMPLES / "ema_cross.yml"), "--set", "fast"]) == 2
    assert "--set 'fast': expected name=value" in capsys.readouterr().err
