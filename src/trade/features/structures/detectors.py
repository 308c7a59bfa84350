"""Market structure detectors, one class each, updated once per closed bar of their timeframe.

Each detector reads only the bar it is given and its dependencies' current fields (a swing's levels,
an ATR value), so it never sees the future. Its whole state is plain numbers and lists, so it
serialises to JSON and restores exactly. The batch driver simply runs the same update over a series,
which keeps batch and incremental identical by construction.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar

NAN = math.nan
PIVOTS = ("none", "high", "low")
DIRS = ("none", "bullish", "bearish")
WAVES = ("none", "HH", "HL", "LH", "LL")
ZONE_STATES = ("none", "active", "broken")


class Detector(ABC):
    """Base: `update` consumes one bar; `values` returns the fields in declared order."""

    fields: ClassVar[tuple[str, ...]] = ()
    state_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)
        self.i = -1  # index of the last bar seen

    @abstractmethod
    def update(
        self,
        o: float,
        h: float,
        lo: float,
        c: float,
        v: float,
        deps: Mapping[str, Mapping[str, float]],
    ) -> None:
        """Consume one closed bar (and the dependencies' fields at that bar)."""

    @abstractmethod
    def values(self) -> tuple[float, ...]:
        """The fields after the last update, in declared order."""

    def to_state(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params.items()},
            "i": self.i,
            "vars": {k: _enc(getattr(self, k)) for k in self.state_keys},
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.i = state["i"]
        for k, v in state["vars"].items():
            cur = getattr(self, k)
            setattr(self, k, _dec(v, cur))

    type_name: ClassVar[str] = ""


def _enc(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) else x
    if isinstance(x, deque):
        return {"deque": [_enc(v) for v in x], "maxlen": x.maxlen}
    if isinstance(x, list):
        return [_enc(v) for v in x]
    if isinstance(x, dict):
        return {k: _enc(v) for k, v in x.items()}
    return x


def _dec(x: Any, like: Any) -> Any:
    if x is None:
        return NAN
    if isinstance(x, dict) and "deque" in x:
        return deque((NAN if v is None else v for v in x["deque"]), maxlen=x["maxlen"])
    if isinstance(x, list):
        return [_dec(v, None) for v in x]
    if isinstance(x, dict):
        return {k: _dec(v, None) for k, v in x.items()}
    return x


# ------------------------------------------------------------------ swing


class Swing(Detector):
    """Pivots: fractal (strictly above/below `left` bars before and `right` after, confirmed `right`
    bars later) or ATR zigzag (a reversal of `atr_multiplier` × ATR against the running extreme)."""

    type_name = "swing"
    fields = (
        "high_level",
        "high_idx",
        "low_level",
        "low_idx",
        "last_pivot_type",
        "pivot_this_bar",
        "pair_direction",
        "version",
    )
    state_keys = (
        "highs",
        "lows",
        "high_level",
        "high_idx",
        "low_level",
        "low_idx",
        "last",
        "pivot",
        "pair",
        "version",
        "prev_close",
        "atr",
        "atr_n",
        "atr_sum",
        "zz_dir",
        "zz_ext",
        "zz_ext_idx",
    )

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        w = params["left"] + params["right"] + 1
        self.highs: deque[float] = deque(maxlen=w)
        self.lows: deque[float] = deque(maxlen=w)
        self.high_level = self.low_level = NAN
        self.high_idx = self.low_idx = NAN
        self.last = 0  # PIVOTS index
        self.pivot = 0
        self.pair = 0
        self.version = 0
        self.prev_close = NAN
        self.atr = NAN
        self.atr_n = 0
        self.atr_sum = 0.0
        self.zz_dir = 0
        self.zz_ext = NAN
        self.zz_ext_idx = -1

    def update(
        self,
        o: float,
        h: float,
        lo: float,
        c: float,
        v: float,
        deps: Mapping[str, Mapping[str, float]],
    ) -> None:
        self.i += 1
        self.pivot = 0
        if self.params["mode"] == "fractal":
            self._fractal(h, lo)
        else:
            self._zigzag(h, lo, c)

    def _fractal(self, h: float, lo: float) -> None:
        self.highs.append(h)
        self.lows.append(lo)
        left, right = self.params["left"], self.params["right"]
        if len(self.highs) < left + right + 1:
            return
        hs, ls = list(self.highs), list(self.lows)
        ch, cl = hs[left], ls[left]
        idx = self.i - right
        if all(ch > x for k, x in enumerate(hs) if k != left):
            self._pivot("high", ch, idx)
        if all(cl < x for k, x in enumerate(ls) if k != left):
            self._pivot("low", cl, idx)

    def _zigzag(self, h: float, lo: float, c: float) -> None:
        n = self.params["atr_length"]
        pc = self.prev_close
        tr = h - lo if math.isnan(pc) else max(h - lo, abs(h - pc), abs(lo - pc))
        self.prev_close = c
        if math.isnan(self.atr):
            self.atr_sum += tr
            self.atr_n += 1
            if self.atr_n == n:
                self.atr = self.atr_sum / n
        else:
            self.atr = (self.atr * (n - 1) + tr) / n
        if self.zz_dir == 0:
            self.zz_dir, self.zz_ext, self.zz_ext_idx = 1, h, self.i
            return
        if self.zz_dir == 1:
            if h > self.zz_ext:
                self.zz_ext, self.zz_ext_idx = h, self.i
            elif (
                not math.isnan(self.atr)
                and self.zz_ext - lo >= self.params["atr_multiplier"] * self.atr
            ):
                self._pivot("high", self.zz_ext, self.zz_ext_idx)
                self.zz_dir, self.zz_ext, self.zz_ext_idx = -1, lo, self.i
        else:
            if lo < self.zz_ext:
                self.zz_ext, self.zz_ext_idx = lo, self.i
            elif (
                not math.isnan(self.atr)
                and h - self.zz_ext >= self.params["atr_multiplier"] * self.atr
            ):
                self._pivot("low", self.zz_ext, self.zz_ext_idx)
                self.zz_dir, self.zz_ext, self.zz_ext_idx = 1, h, self.i

    def _pivot(self, kind: str, level: float, idx: int) -> None:
        p = self.params
        other = self.low_level if kind == "high" else self.high_level
        if (
            p["min_pct_move"] > 0
            and not math.isnan(other)
            and abs(level - other) / other * 100 < p["min_pct_move"]
        ):
            return
        same = PIVOTS[self.last] == kind
        if same and p["strict_alternation"]:
            better = level > self.high_level if kind == "high" else level < self.low_level
            if not better:
                return
        if kind == "high":
            self.high_level, self.high_idx = level, float(idx)
        else:
            self.low_level, self.low_idx = level, float(idx)
        if not same or not p["strict_alternation"]:
            if PIVOTS[self.last] == "low" and kind == "high":
                self.pair = 1
            elif PIVOTS[self.last] == "high" and kind == "low":
                self.pair = 2
        self.last = PIVOTS.index(kind)
        self.pivot = 1
        self.version += 1

    def values(self) -> tuple[float, ...]:
        return (
            self.high_level,
            self.high_idx,
            self.low_level,
            self.low_idx,
            float(self.last),
            float(self.pivot),
            float(self.pair),
            float(self.version),
        )


def _swing(deps: Mapping[str, Mapping[str, float]]) -> Mapping[str, float]:
    return deps["swing"]


# ------------------------------------------------------------------ trend


class Trend(Detector):
    """Waves from consecutive swing pivots: HH/LH on highs, HL/LL on lows; direction 1 with a higher
    high and a higher low, −1 with a lower high and a lower low, else 0."""

    type_name = "trend"
    fields = ("direction", "strength", "bars_in_trend", "last_wave")
    state_keys = (
        "prev_high",
        "prev_low",
        "high_wave",
        "low_wave",
        "direction",
        "strength",
        "bars",
        "wave",
        "seen",
    )

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.prev_high = self.prev_low = NAN
        self.high_wave = self.low_wave = 0
        self.direction = 0
        self.strength = 0
        self.bars = 0
        self.wave = 0
        self.seen = 0.0

    def update(
        self,
        o: float,
        h: float,
        lo: float,
        c: float,
        v: float,
        deps: Mapping[str, Mapping[str, float]],
    ) -> None:
        self.i += 1
        s = _swing(deps)
        self.bars += 1
        if s["version"] != self.seen and s["pivot_this_bar"] == 1.0:
            self.seen = s["version"]
            if s["last_pivot_type"] == 1.0:  # high
                lvl = s["high_level"]
                if not math.isnan(self.prev_high):
                    self.high_wave = 1 if lvl > self.prev_high else 3
                    self.wave = self.high_wave
                self.prev_high = lvl
            else:
                lvl = s["low_level"]
                if not math.isnan(self.prev_low):
                    self.low_wave = 2 if lvl > self.prev_low else 4
                    self.wave = self.low_wave
                self.prev_low = lvl
            new = (
                1
                if (self.high_wave == 1 and self.low_wave == 2)
                else -1
                if (self.high_wave == 3 and self.low_wave == 4)
                else 0
            )
            if new != self.direction:
                self.direction, self.strength, self.bars = new, (1 if new else 0), 0
            elif new != 0:
                self.strength += 1

    def values(self) -> tuple[float, ...]:
        return (float(self.direction), float(self.strength), float(self.bars), float(self.wave))


# ------------------------------------------------------------------ market structure


class MarketStructure(Detector):
    """Break of structure / change of character: a close (or wick) beyond the last unbroken swing
    level; against the current bias it is a CHoCH (bias flips, broken levels cleared), with it a BOS."""

    type_name = "market_structure"
    fields = (
        "bias",
        "bos_this_bar",
        "choch_this_bar",
        "bos_direction",
        "choch_direction",
        "last_bos_level",
        "last_choch_level",
    )
    state_keys = (
        "hi",
        "lo",
        "hi_broken",
        "lo_broken",
        "bias",
        "bos",
        "choch",
        "bos_dir",
        "choch_dir",
        "bos_level",
        "choch_level",
    )

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.hi = self.lo = NAN
        self.hi_broken = self.lo_broken = False
        self.bias = 0
        self.bos = self.choch = 0
        self.bos_dir = self.choch_dir = 0
        self.bos_level = self.choch_level = NAN

    def update(
        self,
        o: float,
        h: float,
        lo: float,
        c: float,
        v: float,
        deps: Mapping[str, Mapping[str, float]],
    ) -> None:
        self.i += 1
        s = _swing(deps)
        if s["high_level"] != self.hi and not math.isnan(s["high_level"]):
            self.hi, self.hi_broken = s["high_level"], False
        if s["low_level"] != self.lo and not math.isnan(s["low_level"]):
            self.lo, self.lo_broken = s["low_level"], False
        self.bos = self.choch = 0
        up_px, dn_px = (c, c) if self.params["confirmation"] == "close" else (h, lo)
        if not self.hi_broken and not math.isnan(self.hi) and up_px > self.hi:
            self._break(1, self.hi)
            self.hi_broken = True
        elif not self.lo_broken and not math.isnan(self.lo) and dn_px < self.lo:
            self._break(2, self.lo)
            self.lo_broken = True

    def _break(self, direction: int, level: float) -> None:
        if self.bias != 0 and self.bias != direction:
            self.choch, self.choch_dir, self.choch_level = 1, direction, level
            self.hi_broken = self.lo_broken = True  # a CHoCH clears the broken levels
        else:
            self.bos, self.bos_dir, self.bos_level = 1, direction, level
        self.bias = direction

    def values(self) -> tuple[float, ...]:
        return (
            float(self.bias),
            float(self.bos),
            float(self.choch),
            float(self.bos_dir),
            float(self.choch_dir),
            self.bos_level,
            self.choch_level,
        )


# ------------------------------------------------------------------ fibonacci


class Fibonacci(Detector):
    """Levels of the latest swing pair: retracement (back into the move) or extension (beyond it)."""

    type_name = "fibonacci"
    state_keys = ("hi", "lo", "direction")

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.hi = self.lo = NAN
        self.direction = 0

    def update(
        self,
        o: float,
        h: float,
        lo: float,
        c: float,
        v: float,
        deps: Mapping[str, Mapping[str, float]],
    ) -> None:
        self.i += 1
        s = _swing(deps)
        self.hi, self.lo, self.direction = s["high_level"], s["low_level"], int(s["pair_direction"])

    def values(self) -> tuple[float, ...]:
        rng = self.hi - self.lo
        out = []
        for r in self.params["levels"]:
            if self.direction == 0:
                out.append(NAN)
            elif self.params["mode"] == "retracement":
                out.append(self.hi - r * rng if self.direction == 1 else self.lo + r * rng)
            else:
                out.append(self.hi + r * rng if self.direction == 1 else self.lo - r * rng)
        return (*out, self.hi, self.lo, rng, float(self.direction))


# ------------------------------------------------------------------ zones


class Zone(Detector):
    """A demand (at swing lows) or supply (at swing highs) zone `width_atr` × ATR deep, active until a
    close leaves it on the far side (broken)."""

    type_name = "zone"
    fields = ("state", "upper", "lower", "age_bars")
    state_keys = ("state", "upper", "lower", "age", "seen")

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.state = 0
        self.upper = self.lower = NAN
        self.age = NAN
        self.seen = 0.0

    def update(
        self,
        o: float,
        h: float,
        lo: float,
        c: float,
        v: float,
        deps: Mapping[str, Mapping[str, float]],
    ) -> None:
        self.i += 1
        s, atr = _swing(deps), deps["atr"]["value"]
        demand = self.params["zone_type"] == "demand"
        want = 2.0 if demand else 1.0
        if (
            s["pivot_this_bar"] == 1.0
            and s["last_pivot_type"] == want
            and s["version"] != self.seen
            and not math.isnan(atr)
        ):
            self.seen = s["version"]
            w = self.params["width_atr"] * atr
            if demand:
                self.lower, self.upper = s["low_level"], s["low_level"] + w
            else:
                self.lower, self.upper = s["high_level"] - w, s["high_level"]
            self.state, self.age = 1, 0.0
            return
        if self.state == 0:
            return
        self.age += 1
        if self.state == 1 and ((demand and c < self.lower) or (not demand and c > self.upper)):
            self.state = 2

    def values(self) -> tuple[float, ...]:
        return (float(self.state), self.upper, self.lower, self.age)


class DerivedZone(Detector):
    """Up to `max_active` zones at fibonacci `levels` of each new swing pair (± `width_pct` % of the
    level), newest first. Per bar: touched (range reached it), inside (close in it), broken (close
    beyond its far side; never on its creation bar)."""

    type_name = "derived_zone"
    state_keys = ("zones", "seen", "touched", "inside")

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.zones: list[
            list[float]
        ] = []  # [upper, lower, state, support(1)/resistance(0), created_i]
        self.seen = 0.0
        self.touched: list[float] = []
        self.inside: list[float] = []

    def update(
        self,
        o: float,
        h: float,
        lo: float,
        c: float,
        v: float,
        deps: Mapping[str, Mapping[str, float]],
    ) -> None:
        self.i += 1
        s = _swing(deps)
        new_pair = (
            s["pivot_this_bar"] == 1.0 and s["version"] != self.seen and s["pair_direction"] != 0.0
        )
        for z in self.zones:  # break/touch the existing zones first (not ones created this bar)
            if z[2] == 1.0 and ((z[3] == 1.0 and c < z[1]) or (z[3] == 0.0 and c > z[0])):
                z[2] = 2.0
        if new_pair:
            self.seen = s["version"]
            hi, low = s["high_level"], s["low_level"]
            rng = hi - low
            bullish = s["pair_direction"] == 1.0
            for r in sorted(self.params["levels"], reverse=not bullish):
                lvl = hi - r * rng if bullish else low + r * rng
                w = lvl * self.params["width_pct"] / 100.0
                self.zones.insert(
                    0, [lvl + w, lvl - w, 1.0, 1.0 if bullish else 0.0, float(self.i)]
                )
            self.zones = self.zones[: self.params["max_active"]]
        self.touched = [
            1.0 if z[2] == 1.0 and lo <= z[0] and h >= z[1] else 0.0 for z in self.zones
        ]
        self.inside = [1.0 if z[2] == 1.0 and z[1] <= c <= z[0] else 0.0 for z in self.zones]
        self._close = c

    def values(self) -> tuple[float, ...]:
        out: list[float] = []
        m = self.params["max_active"]
        for k in range(m):
            if k < len(self.zones):
                z = self.zones[k]
                out += [z[0], z[1], z[2], self.touched[k], self.inside[k]]
            else:
                out += [NAN, NAN, 0.0, 0.0, 0.0]
        active = [z for z in self.zones if z[2] == 1.0]
        c = getattr(self, "_close", NAN)
        below = [z[0] for z in active if z[0] <= c]
        above = [z[1] for z in active if z[1] >= c]
        out += [
            1.0 if active else 0.0,
            1.0 if any(self.touched) else 0.0,
            1.0 if any(self.inside) else 0.0,
            max(below) if below else NAN,
            min(above) if above else NAN,
            float(len(active)),
        ]
        return tuple(out)

    def to_state(self) -> dict[str, Any]:
        st = super().to_state()
        st["vars"]["_close"] = _enc(getattr(self, "_close", NAN))
        return st

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(
            {**state, "vars": {k: v for k, v in state["vars"].items() if k != "_close"}}
        )
        self._close = _dec(state["vars"].get("_close"), 0.0)


# ------------------------------------------------------------------ rolling window


class RollingWindow(Detector):
    """Min or max of a field over the last `size` bars; by default the current bar is excluded, so
    `close > hi20.value` can fire on a breakout."""

    type_name = "rolling_window"
    fields = ("value",)
    state_keys = ("buf", "value")

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.buf: deque[float] = deque(maxlen=params["size"])
        self.value = NAN

    def update(
        self,
        o: float,
        h: float,
        lo: float,
        c: float,
        v: float,
        deps: Mapping[str, Mapping[str, float]],
    ) -> None:
        self.i += 1
        x = {"open": o, "high": h, "low": lo, "close": c, "volume": v}[self.params["field"]]
        pick = max if self.params["mode"] == "max" else min
        n = self.params["size"]
        if self.params["include_current"]:
            self.buf.append(x)
            self.value = pick(self.buf) if len(self.buf) == n else NAN
        else:
            self.value = pick(self.buf) if len(self.buf) == n else NAN
            self.buf.append(x)

    def values(self) -> tuple[float, ...]:
        return (self.value,)
