"""Decision policy: exits before entries, no pyramiding, flips only when allowed."""

from trade.engine.decide import Decision, decide
from trade.play.model import Intent, PositionPolicy

LS = PositionPolicy(mode="long_short")


def it(action: str, percent: float = 100.0, **meta: object) -> tuple[str, Intent]:
    return ("b", Intent(action=action, percent=percent, metadata=meta))


def test_flat_entry():
    assert decide([it("entry_long")], "flat", LS) == [Decision("entry", "long", 100.0, "b", {})]


def test_no_pyramiding_when_already_long_the_entry_is_refused():
    assert decide([it("entry_long", tag=2)], "long", LS) == [
        Decision("refused", "long", 100.0, "b", {"tag": 2})
    ]


def test_opposite_entry_without_flip_is_refused():
    assert decide([it("entry_short")], "long", LS) == [Decision("refused", "short", 100.0, "b")]


def test_opposite_entry_with_flip_closes_then_opens():
    pol = PositionPolicy(mode="long_short", allow_flip=True)
    assert decide([it("entry_short", tag=1)], "long", pol) == [
        Decision("exit", "long", 100.0, "b", {"flip": True}),
        Decision("entry", "short", 100.0, "b", {"tag": 1}),
    ]


def test_exit_then_entry_same_instant_reenters_opposite():
    got = decide([it("exit_long"), it("entry_short")], "long", LS)
    assert got == [
        Decision("exit", "long", 100.0, "b", {}),
        Decision("entry", "short", 100.0, "b", {}),
    ]


def test_partial_exit_keeps_position_so_no_entry():
    got = decide([it("exit_long", 50), it("entry_short")], "long", LS)
    assert got == [
        Decision("exit", "long", 50.0, "b", {}),
        Decision("refused", "short", 100.0, "b", {}),
    ]


def test_largest_exit_percent_wins():
    got = decide([it("exit_long", 25), it("exit_all", 60)], "long", LS)
    assert got == [Decision("exit", "long", 60.0, "b", {})]


def test_exit_for_other_side_is_ignored():
    assert decide([it("exit_short")], "long", LS) == []


def test_both_entries_at_once_cancel_out():
    assert decide([it("entry_long"), it("entry_short")], "flat", LS) == []


def test_policy_blocks_disallowed_side():
    assert decide([it("entry_short")], "flat", PositionPolicy(mode="long_only")) == []


def test_no_entry_while_limit_entry_rests():
    assert decide([it("entry_long")], "flat", LS, entry_pending=True) == []
