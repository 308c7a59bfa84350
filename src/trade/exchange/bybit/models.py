"""Bybit's objects parsed and checked at the edge.

Bybit sends numbers as strings; everything that enters the system passes `number()` / `millis()`
here, so a text timestamp, a non-finite price or a missing field is one ExchangeError naming the
object and the field, never a traceback deep inside the engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...bounds import FIRST_TS_MS, LAST_TS_MS, MAX_PRICE, MAX_VOLUME
from ...errors import ExchangeError

MIN_MS, MAX_MS = FIRST_TS_MS, LAST_TS_MS
MAX_MAGNITUDE = MAX_VOLUME  # no price, quantity or balance of a USDT perpetual comes near this


def number(value: Any, what: str, *, empty: float | None = None) -> float:
    """A finite float of sane magnitude from Bybit's string (empty → `empty` when allowed)."""
    if value in ("", None) and empty is not None:
        return empty
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ExchangeError(f"Bybit sent {what} = {str(value)[:40]!r}: not a number") from None
    if not math.isfinite(x) or abs(x) > MAX_MAGNITUDE:
        raise ExchangeError(f"Bybit sent {what} = {str(value)[:40]!r}: out of range")
    return x


def millis(value: Any, what: str) -> int:
    """A millisecond UTC timestamp between 2000 and 2100 (seconds or µs are refused, not guessed)."""
    try:
        ms = int(str(value))
    except ValueError:
        raise ExchangeError(f"Bybit sent {what} = {str(value)[:40]!r}: not a timestamp") from None
    if not MIN_MS <= ms < MAX_MS:
        raise ExchangeError(f"Bybit sent {what} = {ms}: not a millisecond timestamp")
    return ms


def _stamp(value: Any, what: str) -> int:
    """An optional timestamp: 0 when Bybit left it out."""
    return millis(value, what) if value not in ("", None, "0", 0) else 0


def field_of(obj: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return obj[key]
    except (KeyError, TypeError):
        raise ExchangeError(f"Bybit sent {what} without {key!r}") from None


@dataclass(frozen=True)
class Kline:
    """One bar; `confirm` is True only for a closed bar (REST rows: decided by the caller's clock)."""

    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    turnover: float
    confirm: bool

    @classmethod
    def from_row(cls, row: Sequence[Any], what: str, closed: bool, mark: bool = False) -> Kline:
        """A REST row `[start, o, h, l, c, volume, turnover]` (mark rows stop after close)."""
        width = 5 if mark else 7
        if not isinstance(row, list | tuple) or len(row) < width:
            raise ExchangeError(f"Bybit sent a {what} row with fewer than {width} fields")
        o, h, lo, c = (number(row[i], f"{what}[{i}]") for i in range(1, 5))
        vol = 0.0 if mark else number(row[5], f"{what} volume")
        turnover = 0.0 if mark else number(row[6], f"{what} turnover")
        return cls(millis(row[0], f"{what} start"), o, h, lo, c, vol, turnover, closed)._checked(
            what
        )

    @classmethod
    def from_ws(cls, item: Mapping[str, Any], what: str) -> Kline:
        """An item of a `kline.{interval}.{symbol}` message."""
        get = lambda k: field_of(item, k, what)  # noqa: E731
        return cls(
            millis(get("start"), f"{what} start"),
            number(get("open"), f"{what} open"),
            number(get("high"), f"{what} high"),
            number(get("low"), f"{what} low"),
            number(get("close"), f"{what} close"),
            number(get("volume"), f"{what} volume"),
            number(item.get("turnover", 0), f"{what} turnover"),
            get("confirm") is True,
        )._checked(what)

    def _checked(self, what: str) -> Kline:
        if not (self.low <= min(self.open, self.close) and self.high >= max(self.open, self.close)):
            raise ExchangeError(f"Bybit sent an inconsistent {what} at {self.start}")
        if self.low <= 0 or self.high > MAX_PRICE or self.volume < 0:
            raise ExchangeError(
                f"Bybit sent an impossible price or volume in {what} at {self.start}"
            )
        return self


@dataclass(frozen=True)
class Execution:
    """One fill (or funding, liquidation, ADL) from `execution/list` or the `execution` topic."""

    exec_id: str
    order_id: str
    order_link_id: str
    symbol: str
    side: str
    exec_type: str  # Trade, Funding, BustTrade, AdlTrade, Delivery, ...
    price: float
    qty: float
    fee: float
    time: int
    is_maker: bool
    leaves_qty: float
    closed_size: float
    stop_order_type: str = ""  # TakeProfit / StopLoss when a position TP/SL filled
    seq: int = 0  # the symbol's sequence: orders executions that share a millisecond

    @classmethod
    def parse(cls, d: Mapping[str, Any]) -> Execution:
        w = "execution"
        return cls(
            exec_id=str(field_of(d, "execId", w)),
            order_id=str(d.get("orderId", "")),
            order_link_id=str(d.get("orderLinkId", "")),
            symbol=str(field_of(d, "symbol", w)),
            side=str(d.get("side", "")),
            exec_type=str(d.get("execType", "Trade")),
            price=number(d.get("execPrice"), f"{w} execPrice", empty=0.0),
            qty=number(d.get("execQty"), f"{w} execQty", empty=0.0),
            fee=number(d.get("execFee"), f"{w} execFee", empty=0.0),
            time=millis(field_of(d, "execTime", w), f"{w} execTime"),
            is_maker=d.get("isMaker") in (True, "true"),
            leaves_qty=number(d.get("leavesQty"), f"{w} leavesQty", empty=0.0),
            closed_size=number(d.get("closedSize"), f"{w} closedSize", empty=0.0),
            stop_order_type=str(d.get("stopOrderType") or ""),
            seq=int(number(d.get("seq"), f"{w} seq", empty=0.0)),
        )


@dataclass(frozen=True)
class Order:
    """An order's state from `order/realtime`, `order/history` or the `order` topic."""

    order_id: str
    order_link_id: str
    symbol: str
    side: str
    order_type: str
    status: str  # New, PartiallyFilled, Filled, Cancelled, Rejected, Untriggered, Deactivated, ...
    qty: float
    price: float
    cum_exec_qty: float
    leaves_qty: float
    avg_price: float
    reduce_only: bool
    take_profit: float
    stop_loss: float
    stop_order_type: str
    reject_reason: str
    updated: int

    FINAL = frozenset({"Filled", "Cancelled", "Rejected", "Deactivated", "PartiallyFilledCanceled"})

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL

    @classmethod
    def parse(cls, d: Mapping[str, Any]) -> Order:
        w = "order"
        return cls(
            order_id=str(field_of(d, "orderId", w)),
            order_link_id=str(d.get("orderLinkId", "")),
            symbol=str(field_of(d, "symbol", w)),
            side=str(d.get("side", "")),
            order_type=str(d.get("orderType", "")),
            status=str(field_of(d, "orderStatus", w)),
            qty=number(d.get("qty"), f"{w} qty", empty=0.0),
            price=number(d.get("price"), f"{w} price", empty=0.0),
            cum_exec_qty=number(d.get("cumExecQty"), f"{w} cumExecQty", empty=0.0),
            leaves_qty=number(d.get("leavesQty"), f"{w} leavesQty", empty=0.0),
            avg_price=number(d.get("avgPrice"), f"{w} avgPrice", empty=0.0),
            reduce_only=d.get("reduceOnly") in (True, "true"),
            take_profit=number(d.get("takeProfit"), f"{w} takeProfit", empty=0.0),
            stop_loss=number(d.get("stopLoss"), f"{w} stopLoss", empty=0.0),
            stop_order_type=str(d.get("stopOrderType", "")),
            reject_reason=str(d.get("rejectReason", "")),
            updated=_stamp(d.get("updatedTime") or d.get("createdTime"), f"{w} updatedTime"),
        )


@dataclass(frozen=True)
class Position:
    """A one-way position (`side` "" when flat) from `position/list` or the `position` topic."""

    symbol: str
    side: str
    size: float
    avg_price: float
    leverage: float
    mark_price: float
    liq_price: float
    take_profit: float
    stop_loss: float
    unrealised_pnl: float
    position_idx: int
    seq: int

    @classmethod
    def parse(cls, d: Mapping[str, Any]) -> Position:
        w = "position"
        return cls(
            symbol=str(field_of(d, "symbol", w)),
            side=str(d.get("side", "")),
            size=number(d.get("size"), f"{w} size", empty=0.0),
            avg_price=number(d.get("avgPrice"), f"{w} avgPrice", empty=0.0),
            leverage=number(d.get("leverage"), f"{w} leverage", empty=0.0),
            mark_price=number(d.get("markPrice"), f"{w} markPrice", empty=0.0),
            liq_price=number(d.get("liqPrice"), f"{w} liqPrice", empty=0.0),
            take_profit=number(d.get("takeProfit"), f"{w} takeProfit", empty=0.0),
            stop_loss=number(d.get("stopLoss"), f"{w} stopLoss", empty=0.0),
            unrealised_pnl=number(d.get("unrealisedPnl"), f"{w} unrealisedPnl", empty=0.0),
            position_idx=int(number(d.get("positionIdx"), f"{w} positionIdx", empty=0.0)),
            seq=int(number(d.get("seq"), f"{w} seq", empty=0.0)),
        )


@dataclass(frozen=True)
class Wallet:
    """The USDT side of the unified account."""

    equity: float
    wallet_balance: float
    available: float
    unrealised_pnl: float

    @classmethod
    def parse(cls, account: Mapping[str, Any]) -> Wallet:
        """From one `wallet-balance` account entry (or a `wallet` topic item)."""
        coins = [c for c in account.get("coin") or [] if c.get("coin") == "USDT"]
        if not coins:
            return cls(0.0, 0.0, 0.0, 0.0)
        c = coins[0]
        w = "wallet USDT"
        balance = number(c.get("walletBalance"), f"{w} walletBalance", empty=0.0)
        available = c.get("availableToWithdraw") or account.get("totalAvailableBalance")
        return cls(
            equity=number(c.get("equity"), f"{w} equity", empty=balance),
            wallet_balance=balance,
            available=number(available, f"{w} available", empty=balance),
            unrealised_pnl=number(c.get("unrealisedPnl"), f"{w} unrealisedPnl", empty=0.0),
        )
