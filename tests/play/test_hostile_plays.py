"""Plays built to exhaust memory, the stack or the numbers: each is refused at validation with one
line naming the key (or line) and the limit, quickly and without a traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from trade.cli.main import run

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "plays" / "examples" / "ema_cross.yml").read_text()
ENTRY = "  entry_long: [[ema_fast, cross_above, ema_slow]]\n"

BOMB = "x-bomb:\n" + "".join(
    f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
    for i in range(9)
)


def nested_all(depth: int) -> str:
    return "{all: [" * depth + "[ema_fast, '>', ema_slow]" + "]}" * depth


def setups_chain(depth: int) -> str:
    lines = ["setups:"] + [f"  s{i}: {{setup: s{i + 1}}}" for i in range(depth)]
    lines.append(f"  s{depth}: [ema_fast, '>', ema_slow]")
    return "\n".join(lines) + "\n"


CASES = {
    "alias_bomb": (BASE + BOMB, "more than 100,000 values once aliases are expanded"),
    "deep_conditions": (
        BASE.replace(ENTRY, f"  entry_long: {nested_all(400)}\n"),
        ":18: nested deeper than 40 levels",
    ),
    "deep_setups": (
        BASE.replace(ENTRY, "  entry_long: {setup: s0}\n") + setups_chain(300),
        "setups nested deeper than 32 levels",
    ),
    "long_integer": (
        BASE.replace("leverage: 1\n", "leverage: " + "7" * 5000 + "\n"),
        ":10: a number of 5000 characters; at most 40",
    ),
    "huge_warmup": (BASE + "warmup_bars: 100000000\n", "warmup_bars: "),
    "huge_window": (
        BASE.replace(
            ENTRY, "  entry_long: {holds_for: {bars: 1000000000000, expr: [close, '>', 1]}}\n"
        ),
        "bars: 1,000,000,000,000 bars; at most 100,000",
    ),
    "huge_offset": (
        BASE.replace(ENTRY, "  entry_long: [[close, '>', 'close[99999999999999999999]']]\n"),
        "offset [999999999999… (20 digits)] exceeds 100,000 bars",
    ),
    "infinite_equity": (BASE.replace("starting_equity: 10000", "starting_equity: .inf"), "finite"),
    "overflowing_equity": (
        BASE.replace("starting_equity: 10000", "starting_equity: 1e400"),
        "finite",
    ),
    "absurd_equity": (
        BASE.replace("starting_equity: 10000", "starting_equity: 1e300"),
        "account.starting_equity: ",
    ),
    "infinite_stop": (
        BASE.replace("type: percent, value: 3", "type: percent, value: .inf"),
        "finite",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_plays_are_refused_at_validation(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, message = CASES[name]
    play = tmp_path / f"{name}.yml"
    play.write_text(text)
    t0 = time.process_time()  # CPU time: an alias bomb expanded would take minutes of it
    assert run(["play", "validate", str(play)]) == 2
    assert time.process_time() - t0 < 5
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err) < 1000, err
    assert all(line.startswith(f"error: {play}:") for line in err.splitlines()), err


def test_a_two_gigabyte_file_is_refused_without_reading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    play = tmp_path / "huge.yml"
    with play.open("wb") as fh:  # sparse: no disk used
        fh.truncate(2_000_000_000)
    assert run(["play", "validate", str(play)]) == 2
    assert capsys.readouterr().err == (
        f"error: {play}:1: file is 2,000,000,000 bytes; a Play is at most 1,000,000\n"
    )


def test_a_5000_digit_set_value_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    play = tmp_path / "p.yml"
    play.write_text(BASE)
    assert run(["play", "validate", str(play), "--set", "fast=" + "9" * 5000]) == 2
    assert capsys.readouterr().err == (
        f"error: {play}:13: variables: --set fast: a number of 5000 characters; at most 40\n"
    )
