"""Type-checker decisions that are easy to get wrong."""

from __future__ import annotations

import pytest

from trade.errors import PlayError
from trade.play import ast as A
from trade.play import validate_play_text

PLAY = """
version: "1"
name: t
symbol: BTCUSDT
timeframes: {low_tf: 15m}
account: {starting_equity: 1000}
structures:
  exec: [{type: swing, key: piv}]
actions:
  entry_long: [[piv.last_pivot_type, "==", low], [close, ">", low]]
"""


def test_enum_member_named_like_a_series_is_the_member_on_an_enum_side() -> None:
    compiled = validate_play_text(PLAY)
    ((cond, _),) = compiled.blocks[0].cases
    enum_cmp, price_cmp = cond.items  # type: ignore[union-attr]
    assert enum_cmp.rhs == (A.Const(2.0, A.Kind.ENUM, ("none", "high", "low")),)
    assert price_cmp.rhs == (A.Series("low", 0, A.Kind.FLOAT),)


def test_warmup_of_a_structure_adds_its_dependencies() -> None:
    compiled = validate_play_text(
        PLAY.replace(
            "[{type: swing, key: piv}]",
            "[{type: swing, key: piv, params: {left: 4, right: 2}}, {type: trend, key: tr, uses: piv}]",
        )
    )
    assert compiled.feature("piv").warmup == 7 and compiled.feature("tr").warmup == 7


CONSTANT = """
version: "1"
name: t
symbol: BTCUSDT
timeframes: {low_tf: 15m}
account: {starting_equity: 1000}
features:
  rsi: {indicator: rsi, params: {length: 14}}
setups:
  calm: [rsi, between, [30, 70]]
actions:
  entry_long: [{setup: calm}, [rsi, ">", rsi], [30, "<", 70]]
  exit_long: [[close, ">=", "close[1]"], [rsi, between, [50, 50]]]
"""


def test_reversed_constant_between_bounds_do_not_validate() -> None:
    text = CONSTANT.replace("[30, 70]", "[70, 30]")
    with pytest.raises(PlayError) as exc:
        validate_play_text(text, origin="p.yml")
    assert exc.value.problems == [
        "p.yml:10: setups.calm[2]: 'between' bounds [70, 30] are reversed (low > high), "
        "so it is never true; write [30, 70]"
    ]


def test_conditions_provably_constant_are_warnings() -> None:
    compiled = validate_play_text(CONSTANT, origin="p.yml")
    assert compiled.warnings == (
        "p.yml:12: actions.entry_long[1]: '>' compares rsi.value (float) with itself, so it is "
        "always false once the value exists",
        "p.yml:12: actions.entry_long[2]: '<' compares only literals, so it has the same truth "
        "at every bar",
    )


def test_validate_prints_warnings_and_exits_0(tmp_path, capsys) -> None:
    from trade.cli.main import run

    path = tmp_path / "p.yml"
    path.write_text(CONSTANT)
    assert run(["play", "validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "1 Play(s) valid"
    assert err.splitlines() == [
        f"warning: {path}:12: actions.entry_long[1]: '>' compares rsi.value (float) with itself, "
        "so it is always false once the value exists",
        f"warning: {path}:12: actions.entry_long[2]: '<' compares only literals, so it has the "
        "same truth at every bar",
    ]
