"""The open position of a simulated account (isolated margin, one-way mode)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .orders import BreakEven, Trailing


@dataclass
class Position:
    """One open position; `entry_fee` and `funding` belong to the qty still open."""

    side: str  # "long" | "short"
    qty: float
    entry_price: float
    entry_ts: int
    entry_fee: float
    liq_price: float
    margin: float  # initial margin = notional / leverage
    sl: float = math.nan
    tp: float = math.nan
    funding: float = 0.0  # paid (+) / received (−) on the open qty
    best_seen: float = math.nan  # most favourable price traded since the fill
    worst_seen: float = math.nan  # least favourable price traded since the fill
    trailing: Trailing | None = None
    trail_dist: float = math.nan
    break_even: BreakEven | None = None
    be_dist: float = math.nan
    stop_kind: str = "stop_loss"  # exit_reason when the stop fills ("trailing_stop" once trailed)
    tag: dict[str, Any] = field(default_factory=dict)

    @property
    def sign(self) -> float:
        """+1 for a long, −1 for a short."""
        return 1.0 if self.side == "long" else -1.0

    @property
    def notional(self) -> float:
        """qty × entry price."""
        return self.qty * self.entry_price

    def unrealized_pnl(self, price: float) -> float:
        """qty × (price − entry) for a long, qty × (entry − price) for a short (fees not included)."""
        return self.qty * (price - self.entry_price) * self.sign
