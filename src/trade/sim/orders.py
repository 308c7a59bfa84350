"""Order requests, account settings and the small value types the simulated exchange accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InputError, SimulationError

#: Every exit_reason a trade can carry and every reason a rejection can give (docs/execution.md
#: lists each; the jitted loop codes them by their index here).
EXIT_REASONS = (
    "signal",
    "take_profit",
    "stop_loss",
    "liquidation",
    "max_drawdown",
    "end_of_data",
    "trailing_stop",
    "flatten",
)
REJECT_REASONS = (
    "position_open",
    "risk_sizing_needs_stop",
    "qty_step",
    "min_qty",
    "min_notional",
    "stop_beyond_liquidation",
    "atr_missing",
    "halted",
)


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

    def __post_init__(self) -> None:
        checks = [
            (self.starting_equity > 0, "starting_equity must be positive"),
            (self.leverage > 0, "leverage must be positive"),
            (min(self.taker_bps, self.maker_bps, self.slippage_bps) >= 0, "fees and slippage must be >= 0"),
            (self.mmr is None or 0 <= self.mmr < 1, "mmr must be in [0, 1)"),
            (self.liquidation_fee_bps is None or self.liquidation_fee_bps >= 0, "liquidation_fee_bps must be >= 0"),
            (self.max_drawdown_pct is None or 0 < self.max_drawdown_pct <= 100, "max_drawdown_pct must be in (0, 100]"),
            (self.max_position_equity_pct > 0, "max_position_equity_pct must be positive"),
            (self.stop_beyond_liquidation in ("reject", "tighten"), "stop_beyond_liquidation must be reject or tighten"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise InputError(f"account: {message} ({self})")


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
                raise SimulationError("an rr level needs a stop loss")
            return self.value * stop_distance
        raise SimulationError("an absolute price level has no distance")


@dataclass(frozen=True)
class Sizing:
    """How an entry is sized at fill (DESIGN §5): percent_equity, risk_based (needs a stop) or
    fixed_notional; the notional is capped, then the qty rounded down to the step."""

    model: Literal["percent_equity", "risk_based", "fixed_notional"]
    value: float
    cap: float | None = None  # a notional ceiling in USDT (a live guard's shrink), else none


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
    """One order decided at an instant T; it acts from the first intrabar bar opening at or after T.

    kind: "market" fills at that bar's open (± slippage); "limit" rests at `limit_price` (maker fee);
    "stop" rests until the price trades through `stop_price`, then fills like a market order there
    (or at the open on a gap). Entries give `qty` or `sizing` (sized at fill); reduce-only orders
    close `close_percent` of the position (default all) or `qty`. `expire_ts`: resting orders still
    unfilled at the first bar opening at or after it are cancelled. `tag` is echoed in events and
    the trade's `metadata`.
    """

    side: Literal["buy", "sell"]
    kind: Literal["market", "limit", "stop"] = "market"
    qty: float | None = None
    sizing: Sizing | None = None
    reduce_only: bool = False
    close_percent: float | None = None  # reduce-only: share of the position to close
    limit_price: float | None = None
    stop_price: float | None = None
    expire_ts: int | None = None
    stop_loss: Level | None = None
    take_profit: Level | None = None
    trailing: Trailing | None = None
    break_even: BreakEven | None = None
    exit_reason: str = "signal"
    tag: dict[str, Any] = field(default_factory=dict)

    def problem(self) -> str | None:
        """What makes this request malformed (a caller bug), or None."""
        if self.side not in ("buy", "sell"):
            return f"side must be buy or sell, got {self.side!r}"
        if self.kind not in ("market", "limit", "stop"):
            return f"kind must be market, limit or stop, got {self.kind!r}"
        if self.kind == "limit" and not (self.limit_price and self.limit_price > 0):
            return "a limit order needs a positive limit_price"
        if self.kind == "stop" and not (self.stop_price and self.stop_price > 0):
            return "a stop order needs a positive stop_price"
        if self.qty is not None and not self.qty > 0:
            return f"qty must be positive, got {self.qty}"
        if self.close_percent is not None and not 0 < self.close_percent <= 100:
            return f"close_percent must be in (0, 100], got {self.close_percent}"
        if not self.reduce_only and self.qty is None and self.sizing is None:
            return "an entry needs qty or sizing"
        if self.sizing is not None and not self.sizing.value > 0:
            return f"sizing value must be positive, got {self.sizing.value}"
        if self.exit_reason not in EXIT_REASONS:
            return f"exit_reason must be one of {', '.join(EXIT_REASONS)}, got {self.exit_reason!r}"
        return None
