"""Type-checker decisions that are easy to get wrong."""

from __future__ import annotations

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
