"""Play names resolve alike in every command, commands that default to a Play directory work from
any working directory, and help shows value names and flags rather than Python annotations."""

from __future__ import annotations

from pathlib import Path

import pytest

from trade.cli.main import run
from trade.play.resolve import play_dir

ROOT = Path(__file__).resolve().parents[1]


def test_play_commands_take_names_like_backtest_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # names resolve from the checkout too, not only ./plays
    assert run(["play", "validate", "ema_cross", "v_rsi"]) == 0
    out = capsys.readouterr().out
    assert f"ok  {ROOT / 'plays/examples/ema_cross.yml'}" in out
    assert f"ok  {ROOT / 'plays/validation/v_rsi.yml'}" in out
    assert run(["play", "show", "ema_cross"]) == 0
    assert "name: ema_cross" in capsys.readouterr().out
    assert run(["play", "validate", "ema_crosss"]) == 2
    assert "unknown Play 'ema_crosss'; did you mean 'ema_cross'?" in capsys.readouterr().err


def test_validation_directory_found_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert play_dir("validation") == ROOT / "plays" / "validation"
    (tmp_path / "plays" / "validation").mkdir(parents=True)
    assert play_dir("validation") == tmp_path / "plays" / "validation"  # ./plays first


@pytest.mark.parametrize(
    "command",
    [[], ["backtest", "run"], ["play", "validate"], ["validate", "suite"], ["runs", "compare"]],
)
def test_help_shows_flags_and_value_names(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "<bool>" not in text and "<list[" not in text and "<str>" not in text
    assert "<int>" not in text and "<Path>" not in text
    assert "--help" in text and "Show this message and exit." in text


def test_help_value_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["backtest", "run", "--help"]) == 0
    rows = {row.split()[1]: row for row in capsys.readouterr().out.splitlines()
            if row.strip("│ *").startswith("--")}  # fmt: skip
    assert rows["--set"].split()[2] == "TEXT…"
    assert rows["--bars"].split()[2] == "INTEGER"
    assert rows["--out"].split()[2] == "PATH"
    assert rows["--json"].split()[2] == "Print"  # a flag: no value name
