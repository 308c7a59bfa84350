"""The per-bar decision path as one object: replay drives it over history, the live runner over
the exchange's stream, and nothing else decides.

`PlayEngine` is fed closed bars (any timeframe, in close-time order, lower timeframe first on equal
closes) and, at each evaluation instant, the instant values the Play reads (last price, mark price,
funding rate) and the position view the executor reports. `step()` then advances every condition
once (crossovers and windows count instants, so it runs at every instant) and `decisions()` turns
the truths into decisions with the same `intents_at` and `decide` as every mode. It does no I/O and
reads no clock; `state()` / `restore()` cover all of it (features, condition memories, the instant
values and the last instant evaluated), so a session resumes exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ..play import ast as A
from ..play.compile import CompiledPlay
from ..play.evaluate import IncrementalCondition
from .decide import Decision, decide, intents_at
from .features import IncrementalFeatures

INSTANT_IDS = ("last_price", "mark_price", "funding_rate")
STATE_VERSION = 1


class PointSource:
    """One instant's values for condition operands: `resolve(series)` gives a getter, and
    `position.*` series read the executor's position view set before each step."""

    def __init__(self, resolve: Callable[[A.Series], Callable[[], float]]) -> None:
        self.resolve = resolve
        self.position: dict[str, float] = {}

    def getter(self, s: A.Series) -> Callable[[], float]:
        if s.id[:9] == "position.":
            sid = s.id
            return lambda: self.position[sid]
        return self.resolve(s)

    def value(self, s: A.Series) -> float:
        return self.getter(s)()


class ConditionSet:
    """Every case condition of every block, stepped together (one flat list of truths, block
    after block) and bound once to a point source, so a step is one call per condition."""

    def __init__(self, compiled: CompiledPlay, point: PointSource) -> None:
        self.blocks = compiled.blocks
        self.conditions = [IncrementalCondition(c) for b in compiled.blocks for c, _ in b.cases]
        self.steps = [c.bind(point) for c in self.conditions]

    def step(self) -> list[int]:
        return [step() for step in self.steps]

    def by_block(self, flat: list[int]) -> list[list[int]]:
        out, a = [], 0
        for block in self.blocks:
            b = a + len(block.cases)
            out.append(flat[a:b])
            a = b
        return out

    def state(self) -> list[list[object]]:
        return [c.state() for c in self.conditions]

    def restore(self, state: list[list[object]]) -> None:
        if len(state) != len(self.conditions):
            raise ValueError("condition state does not match this Play's conditions")
        for c, s in zip(self.conditions, state, strict=True):
            c.restore(s)


class PlayEngine:
    """Incremental features, incremental conditions and `decide` for one compiled Play."""

    def __init__(
        self,
        compiled: CompiledPlay,
        resolve: Callable[[A.Series], Callable[[], float]] | None = None,
    ) -> None:
        """Features are computed incrementally from the bars fed, unless `resolve` gives every
        series' value another way (fast mode reads its batch arrays when conditions need the
        position and so cannot be vectorised)."""
        self.compiled = compiled
        self.features = IncrementalFeatures(compiled) if resolve is None else None
        self._external = resolve
        used = {s.id for s in compiled.series}
        self.instant_ids = [k for k in INSTANT_IDS if k in used]
        self.instant = [math.nan] * len(INSTANT_IDS)  # set by the driver before each step
        self.point = PointSource(self._resolve)
        self.conditions = ConditionSet(compiled, self.point)
        self.uses_position = compiled.uses_position
        self.last_instant: int | None = None
        self._has_else = any(b.else_ for b in compiled.blocks)

    def _resolve(self, s: A.Series) -> Callable[[], float]:
        if self._external is not None:
            return self._external(s)
        if s.id in INSTANT_IDS:
            slots, k = self.instant, INSTANT_IDS.index(s.id)
            return lambda: slots[k]
        return self.features.getter(s)

    # ------------------------------------------------------------------ feeding

    def _features(self) -> IncrementalFeatures:
        if self.features is None:
            raise TypeError("this engine reads precomputed series; it is not fed bars")
        return self.features

    def timeframes(self) -> list[str]:
        return self._features().timeframes()

    def feeder(self, tf: str) -> Callable[[int, float, float, float, float, float], None]:
        """The bound update for closed bars of `tf` (replay calls it once per bar)."""
        return self._features().feeder(tf)

    def feed(self, tf: str, ts: int, o: float, h: float, lo: float, c: float, v: float) -> None:
        """One closed bar of `tf` (opened at `ts`)."""
        self._features().on_bar(tf, ts, o, h, lo, c, v)

    def set_instant(self, **values: float) -> None:
        """The instant values as of the evaluation instant (`last_price=…`, …)."""
        for name, x in values.items():
            self.instant[INSTANT_IDS.index(name)] = x

    # ------------------------------------------------------------------ evaluating

    def step(self, t: int, position: Mapping[str, float] | None = None) -> list[int]:
        """Every case's truth at instant `t` (block after block); must run at every instant."""
        if position is not None:
            self.point.position = position  # type: ignore[assignment]  # read, never written
        self.last_instant = t
        return self.conditions.step()

    def decisions(self, flat: list[int], side: str, entry_pending: bool) -> list[Decision]:
        """Decisions from one instant's truths for the executor's position side."""
        if not self._has_else and A.Truth.TRUE not in flat:
            return []
        intents = intents_at(self.compiled.blocks, self.conditions.by_block(flat))
        if not intents:
            return []
        return decide(intents, side, self.compiled.play.position_policy, entry_pending)

    def evaluate(
        self,
        t: int,
        side: str,
        entry_pending: bool = False,
        position: Mapping[str, float] | None = None,
    ) -> list[Decision]:
        """`step` then `decisions`: what to do at exec close `t`."""
        return self.decisions(self.step(t, position), side, entry_pending)

    # ------------------------------------------------------------------ checkpoints

    def state(self) -> dict[str, Any]:
        """JSON-able: everything needed to continue exactly where this engine is."""
        return {
            "version": STATE_VERSION,
            "play": self.compiled.play.name,
            "features": self._features().state(),
            "conditions": self.conditions.state(),
            "instant": [None if math.isnan(x) else x for x in self.instant],
            "last_instant": self.last_instant,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION or state.get("play") != self.compiled.play.name:
            raise ValueError(
                f"engine state of {state.get('play')!r} (version {state.get('version')}) "
                f"does not fit Play {self.compiled.play.name!r} (version {STATE_VERSION})"
            )
        self._features().restore(state["features"])
        self.conditions.restore(state["conditions"])
        self.instant[:] = [math.nan if x is None else float(x) for x in state["instant"]]
        self.last_instant = state["last_instant"]
