"""Order requests, account settings and the small value types the simulated exchange accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class AccountConfig:
    """Account and exchange costs of one simulated run (isolated margin, one-way mode, USDT)."""

    starting_equity: float
    leverage: float = 1.0
    taker_bps: float = 5.5
    maker_bps: float = 2.0
    slippage_bps: float = 2.0
    mmr: float | None = None  # None: the instrument's maintenance margin rate
    liquidation_fee_bps: float | None = None  # None: the taker fee
    max_drawdown_pct: float | None = None
    max_position_equity_pct: float = 100.0
    min_notional: float | None = None  # None: the instrument's
    stop_beyond_liquidation: Literal["reject", "tighten"] = "reject"


@dataclass(frozen=True)
class Level:
    """A TP/SL/trigger level: an absolute price, or a distance from the fill price.

    kind: "price" (absolute), "percent" (of the fill price), "distance" (price units),
    "rr" (multiple of the stop-loss distance; take profit and break-even only).
    """

    kind: Literal["price", "percent", "distance", "rr"]
    value: float

    def distance(self, fill: float, stop_distance: float | None) -> float:
        if self.kind == "percent":
            return fill * self.value / 100.0
        if self.kind == "distance":
            return self.value
        if self.kind == "rr":
            if stop_distance is None:
                raise ValueError("an rr level needs a stop loss")
            return self.value * stop_distance
        raise ValueError("an absolute price has no distance")


@dataclass(frozen=True)
class Sizing:
    model: Literal["percent_equity", "risk_based", "fixed_notional"]
    value: float


@dataclass(frozen=True)
class Trailing:
    """Trailing stop: `distance` behind the best price of closed exec bars, once `activation_pct`
    of favourable move from the entry is reached."""

    distance: Level
    activation_pct: float = 0.0


@dataclass(frozen=True)
class BreakEven:
    """Move the stop to entry ± offset once a closed exec bar reached `trigger` in profit."""

    trigger: Level
    offset_pct: float = 0.0


@dataclass(frozen=True)
class OrderRequest:
    side: Literal["buy", "sell"]
    kind: Literal["market", "limit"] = "market"
    qty: float | None = None
    sizing: Sizing | None = None
    reduce_only: bool = False
    close_percent: float | None = None  # reduce-only: share of the position to close
    limit_price: float | None = None
    expire_ts: int | None = None
    stop_loss: Level | None = None
    take_profit: Level | None = None
    trailing: Trailing | None = None
    break_even: BreakEven | None = None
    exit_reason: str = "signal"
    tag: dict[str, Any] = field(default_factory=dict)
