"""Every malformed Play is rejected with its expected one-line message, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trade.cli.main import run

BAD = Path(__file__).resolve().parents[1] / "fixtures" / "bad_plays"
EXPECTED: dict[str, str] = yaml.safe_load((BAD / "expected.yml").read_text())


def test_corpus_is_complete() -> None:
    files = {p.name for p in BAD.glob("*.yml")} - {"expected.yml"}
    assert files == set(EXPECTED)
    assert len(files) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rejected_with_expected_message(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = BAD / name
    assert run(["play", "validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert f"error: {path}:{EXPECTED[name]}" in err.splitlines()
    assert "Traceback" not in err + out


@pytest.mark.parametrize("name", ["binary_junk.yml", "setup_cycle.yml", "float_equality.yml"])
def test_console_script_exits_2(name: str) -> None:
    exe = Path(sys.executable).with_name("trade")
    r = subprocess.run(
        [str(exe), "play", "validate", str(BAD / name)], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert EXPECTED[name] in r.stderr and "Traceback" not in r.stderr


def test_every_problem_is_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (BAD / "unknown_variable.yml").read_text()
    assert run(["play", "validate", str(BAD / "unknown_variable.yml")]) == 2
    err = capsys.readouterr().err
    assert err.count("unknown variable {{fast}}") == text.count("{{fast}}") == 2


def test_an_unknown_indicator_is_reported_once_not_again_where_it_is_used(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = BAD / "unknown_indicator_referenced.yml"
    assert run(["play", "validate", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"error: {path}:{EXPECTED['unknown_indicator_referenced.yml']}"]


def test_no_message_names_an_internal_class() -> None:
    assert not [text for text in EXPECTED.values() if "instance of" in text]
