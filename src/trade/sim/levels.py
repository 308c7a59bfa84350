"""The price levels and the size of an entry, and how a stop moves: pure functions of the fill.

The simulated exchange and the live order manager both call these, so a stop, a target, a trailed
stop and a position size are the same numbers in a backtest and on Bybit for the same fill price
(the jitted loop in `kernel.py` keeps its own copy, held equal by the parity tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..errors import SimulationError
from ..instruments import InstrumentSpec
from .orders import BreakEven, Level, Sizing, Trailing


@dataclass(frozen=True)
class EntryLevels:
    """What a fill at `price` gives the position: liquidation, stop and target prices (NaN when
    absent) and the distances trailing and break-even work with (NaN when not used)."""

    liq: float
    sl: float
    tp: float
    sl_dist: float | None
    trail_dist: float
    be_dist: float


def stop_distance(stop_loss: Level | None, price: float) -> float | None:
    """The stop's distance from a fill at `price` before rounding (None without a stop)."""
    if stop_loss is None:
        return None
    if stop_loss.kind == "price":
        return abs(price - stop_loss.value)
    return stop_loss.distance(price, None)


def liquidation_price(side: str, price: float, leverage: float, mmr: float) -> float:
    """Isolated margin: long `entry × (1 − 1/L + MMR)`, short `entry × (1 + 1/L − MMR)`."""
    if side == "long":
        return price * (1 - 1 / leverage + mmr)
    return price * (1 + 1 / leverage - mmr)


def entry_levels(
    side: str,
    price: float,
    spec: InstrumentSpec,
    leverage: float,
    mmr: float,
    stop_loss: Level | None,
    take_profit: Level | None,
    trailing: Trailing | None,
    break_even: BreakEven | None,
    stop_beyond_liquidation: Literal["reject", "tighten"],
) -> EntryLevels | None:
    """The levels of a `side` position filled at `price`, rounded to the tick; None when the stop
    lies beyond the liquidation price and the policy is to reject the entry."""
    sign = 1.0 if side == "long" else -1.0
    sl_dist = stop_distance(stop_loss, price)
    liq = liquidation_price(side, price, leverage, mmr)
    sl = math.nan
    if stop_loss is not None:
        sl = stop_loss.value if stop_loss.kind == "price" else price - sign * float(sl_dist)  # type: ignore[arg-type]
        sl = spec.round_price(sl)
        if (sl - liq) * sign <= 0:
            if stop_beyond_liquidation == "reject":
                return None
            sl = spec.round_price(liq + sign * spec.tick_size)
            if (sl - liq) * sign <= 0:  # rounding landed on the wrong side
                sl = spec.round_price(sl + sign * spec.tick_size)
            sl_dist = abs(price - sl)
    tp = math.nan
    if take_profit is not None:
        tp = (
            take_profit.value
            if take_profit.kind == "price"
            else price + sign * take_profit.distance(price, sl_dist)
        )
        tp = spec.round_price(tp)
    trail_dist = trailing.distance.distance(price, sl_dist) if trailing is not None else math.nan
    be_dist = break_even.trigger.distance(price, sl_dist) if break_even is not None else math.nan
    return EntryLevels(liq, sl, tp, sl_dist, trail_dist, be_dist)


def sized_notional(
    sizing: Sizing,
    equity: float,
    price: float,
    fee_rate: float,
    sl_dist: float | None,
    leverage: float,
    max_position_equity_pct: float,
) -> float | None:
    """DESIGN §5 sizing from `equity` (flat: the wallet balance) at the fill price, capped by
    max_position_equity_pct and by the margin available after the fee; None when risk-based sizing
    has no stop."""
    if sizing.model == "percent_equity":
        notional = equity * sizing.value / 100.0 * leverage
    elif sizing.model == "fixed_notional":
        notional = sizing.value
    elif sizing.model == "risk_based":
        if not sl_dist:
            return None
        notional = equity * sizing.value / 100.0 / (sl_dist / price)
    else:
        raise SimulationError(f"unknown sizing model {sizing.model!r}")
    notional = min(notional, equity * leverage * max_position_equity_pct / 100.0)
    if sizing.cap is not None:
        notional = min(notional, sizing.cap)
    return min(notional, equity / (1.0 / leverage + fee_rate))


def moved_stop(
    side: str,
    entry_price: float,
    best: float,
    sl: float,
    stop_kind: str,
    spec: InstrumentSpec,
    trailing: Trailing | None,
    trail_dist: float,
    break_even: BreakEven | None,
    be_dist: float,
) -> tuple[float, str] | None:
    """The stop after an exec close, from the best price of closed bars since the fill: break-even
    once the trigger is reached, the trail once activated, whichever is tighter; never looser than
    `sl`. Returns (new stop, exit reason when it fills) or None when the stop stays."""
    sign = 1.0 if side == "long" else -1.0
    new, kind = sl, stop_kind
    if break_even is not None and (best - entry_price) * sign >= be_dist:
        be = spec.round_price(entry_price * (1 + sign * break_even.offset_pct / 100.0))
        if math.isnan(new) or (be - new) * sign > 0:
            new = be
    if trailing is not None:
        moved = (best - entry_price) * sign / entry_price * 100.0
        if moved >= trailing.activation_pct:
            trail = spec.round_price(best - sign * trail_dist)
            if math.isnan(new) or (trail - new) * sign > 0:
                new, kind = trail, "trailing_stop"
    if new == new and (math.isnan(sl) or new != sl):
        return new, kind
    return None
