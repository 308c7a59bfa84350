"""What the live runner needs from whoever executes its decisions: the simulated exchange fed
live bars (paper) or Bybit through the order manager (demo, live).

The runner calls, in this order and never concurrently:
`start` once; then per closed 1m bar `on_minute`; per evaluation instant `before_instant`, the
position facts (`side`, `entry_pending`, `position_values`) and, when the engine decided
something, `execute`; finally `stop`. Both brokers turn an entry decision into an order with the
same `engine.execution.entry_request`, so stops, targets, trailing and break-even mean the same
thing in every mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..engine.decide import Decision
from ..exchange.bybit import Kline
from ..play import ast as A


@dataclass(frozen=True)
class DecisionContext:
    """What an entry needs beyond the decision: series values as of the instant (ATR distances),
    the exec bar's close (the limit price's base) and the guards' size ceiling."""

    series_value: Callable[[A.Series], float]
    exec_close: float
    notional_cap: float | None = None  # a guard's ceiling on an entry's notional (USDT)


@dataclass(frozen=True)
class BrokerView:
    """The account as the live panel and `trade play sessions` show it."""

    side: str  # "flat" | "long" | "short"
    qty: float = 0.0
    entry_price: float | None = None
    stop: float | None = None
    target: float | None = None
    equity: float = 0.0
    balance: float = 0.0
    open_orders: tuple[dict[str, Any], ...] = ()
    halted: str | None = None  # why entries are refused, when they are
    extra: dict[str, Any] = field(default_factory=dict)


class Broker(Protocol):
    mode: str  # "paper" | "demo" | "live"

    @property
    def halted(self) -> bool:
        """True when no new entry may be sent (drawdown limit, an unprotectable position, …)."""
        ...

    async def start(self, first_instant: int) -> None:
        """Before the first bar is fed: account set-up (demo/live: one-way mode, leverage,
        isolated margin, instrument filters, wallet, private stream)."""
        ...

    async def on_minute(self, bar: Kline) -> None:
        """Every closed 1m bar of the session, in order, before any instant at or after its
        close is evaluated."""
        ...

    async def before_instant(self, t: int) -> None:
        """At evaluation instant `t`, before the engine decides: the position view is current
        as of `t` (paper: every bar closed by `t` simulated; demo/live: fills booked, trailing
        stop and break-even amended, expired entries cancelled)."""
        ...

    def side(self) -> str: ...

    def entry_pending(self) -> bool: ...

    def position_values(self, t: int) -> dict[str, float]: ...

    async def execute(self, t: int, decisions: Sequence[Decision], ctx: DecisionContext) -> None:
        """Act on the engine's decisions at instant `t` (orders go out at once)."""
        ...

    async def flatten(self, t: int) -> None:
        """Close the open position now (reduce-only market); before `stop` when asked to."""
        ...

    async def stop(self) -> None:
        """End of session: resting entries cancelled, an open position keeps its stop."""
        ...

    def view(self) -> BrokerView: ...

    def trades(self) -> list[dict[str, Any]]:
        """Closed trades so far, in the backtest's trade fields."""
        ...
