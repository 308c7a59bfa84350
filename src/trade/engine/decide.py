"""From action intents at an instant to decisions, under the Play's position policy.

Exits are decided before entries; within a block the first matching case wins (else applies when no
case is true — a missing condition is not true). One function serves every mode, so fast backtest,
replay and live take the same decisions from the same truths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..play.ast import Truth
from ..play.compile import CompiledBlock
from ..play.model import Intent, PositionPolicy


@dataclass(frozen=True)
class Decision:
    """One thing to do at the next 1m open: close part of the position or open a new one, or an
    entry refused because a position is open (counted, never silently dropped)."""

    kind: str  # "exit" | "entry" | "refused"
    side: str  # the position side closed (exit) or opened (entry): "long" | "short"
    percent: float = 100.0
    block: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def intents_at(
    blocks: Sequence[CompiledBlock], truth: Sequence[Sequence[int]]
) -> list[tuple[str, Intent]]:
    """Intents emitted at one instant; `truth[block_index][case_index]` is a case's truth."""
    out: list[tuple[str, Intent]] = []
    for block, cases in zip(blocks, truth, strict=True):
        if Truth.TRUE in cases:  # the first true case wins
            out += [(block.id, i) for i in block.cases[cases.index(Truth.TRUE)][1]]
        elif block.else_:
            out += [(block.id, i) for i in block.else_]
    return out


def decide(
    intents: Sequence[tuple[str, Intent]],
    position: str,
    policy: PositionPolicy,
    entry_pending: bool = False,
) -> list[Decision]:
    """Decisions for the current position side ("flat", "long", "short").

    - Exits: `exit_long` applies when long, `exit_short` when short, `exit_all` to either; several
      exits at one instant close the largest percent asked.
    - Entries: only when flat after the exits (no pyramiding); an opposite entry while positioned
      flips only with `allow_flip`; entry_long and entry_short at the same instant cancel out; no
      new entry while a limit entry is resting.
    - An entry that cannot act because a position is still open after the exits is a "refused"
      decision (the simulator counts it under `position_open`).
    """
    out: list[Decision] = []
    side_after = position
    if position != "flat":
        wanted = {"exit_all", f"exit_{position}"}
        exits = [(b, i) for b, i in intents if i.action in wanted]
        if exits:
            block, best = max(exits, key=lambda bi: bi[1].percent)
            out.append(Decision("exit", position, best.percent, block, dict(best.metadata)))
            if best.percent >= 100.0:
                side_after = "flat"
    if entry_pending:
        return out
    entries = {}
    for b, i in intents:
        if i.action == "entry_long" and policy.mode != "short_only":
            entries.setdefault("long", (b, i))
        elif i.action == "entry_short" and policy.mode != "long_only":
            entries.setdefault("short", (b, i))
    if len(entries) != 1:
        return out
    ((side, (block, intent)),) = entries.items()
    if side_after == "flat":
        out.append(Decision("entry", side, 100.0, block, dict(intent.metadata)))
    elif side_after != side and policy.allow_flip:
        out = [d for d in out if d.kind != "exit"]
        out.append(Decision("exit", side_after, 100.0, block, {"flip": True}))
        out.append(Decision("entry", side, 100.0, block, dict(intent.metadata)))
    else:
        out.append(Decision("refused", side, 100.0, block, dict(intent.metadata)))
    return out
