"""The fake's order and position records, Bybit's string formatting, and request parsing."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .errors import Reject

D = Decimal
ZERO = D(0)
Q8 = D("0.00000001")
OPEN = ("New", "PartiallyFilled", "Untriggered")
LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")

Event = tuple[str, dict[str, Any]]  # (private topic, one data item)
Batch = list[Event]


def q8(x: Decimal) -> Decimal:
    return x.quantize(Q8, ROUND_HALF_UP)


def num(x: Decimal) -> str:
    """A Decimal as Bybit's string (no exponent, no trailing zeros)."""
    if x == 0:
        return "0"
    return format(x.normalize(), "f")


def dec(p: dict[str, Any], key: str, *, required: bool = False) -> Decimal | None:
    v = p.get(key)
    if v is None or v == "":
        if required:
            raise Reject(10001, f"params error: {key} is required")
        return None
    try:
        d = D(str(v))
    except InvalidOperation:
        raise Reject(10001, f"params error: {key} must be a number, got {v!r}") from None
    if not d.is_finite() or d < 0:
        raise Reject(10001, f"params error: {key} invalid: {v!r}")
    return d


def flag(p: dict[str, Any], key: str) -> bool:
    v = p.get(key, False)
    return v is True or (isinstance(v, str) and v.lower() == "true")


def fake_uuid(kind: int, n: int) -> str:
    """A deterministic UUID-shaped id (`kind` keeps orders, executions and trades apart)."""
    return str(uuid.UUID(int=(kind << 96) | n, version=4))


@dataclass
class Order:
    n: int  # creation sequence: newest first means highest n first
    order_id: str
    link_id: str
    symbol: str
    side: str
    order_type: str
    qty: Decimal
    price: Decimal
    tif: str
    reduce_only: bool = False
    close_on_trigger: bool = False
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO
    tpsl_mode: str = ""
    trigger_price: Decimal = ZERO
    trigger_direction: int = 0
    trigger_by: str = ""
    stop_order_type: str = ""
    create_type: str = "CreateByUser"
    status: str = "New"
    cum_qty: Decimal = ZERO
    cum_value: Decimal = ZERO
    cum_fee: Decimal = ZERO
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    last_price_on_created: Decimal = ZERO
    created: int = 0
    updated: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def leaves(self) -> Decimal:
        return self.qty - self.cum_qty if self.is_open else ZERO

    def view(self) -> dict[str, Any]:
        """The order as `order/realtime` and the `order` topic show it."""
        avg = self.cum_value / self.cum_qty if self.cum_qty else ZERO
        return {
            "category": "linear",
            "orderId": self.order_id,
            "orderLinkId": self.link_id,
            "blockTradeId": "",
            "symbol": self.symbol,
            "price": num(self.price),
            "qty": num(self.qty),
            "side": self.side,
            "isLeverage": "",
            "positionIdx": 0,
            "orderStatus": self.status,
            "cancelType": self.cancel_type,
            "rejectReason": self.reject_reason,
            "avgPrice": num(q8(avg)),
            "leavesQty": num(self.leaves),
            "leavesValue": num(self.leaves * self.price),
            "cumExecQty": num(self.cum_qty),
            "cumExecValue": num(self.cum_value),
            "cumExecFee": num(self.cum_fee),
            "timeInForce": self.tif,
            "orderType": self.order_type,
            "stopOrderType": self.stop_order_type,
            "orderIv": "",
            "triggerPrice": num(self.trigger_price),
            "takeProfit": num(self.take_profit),
            "stopLoss": num(self.stop_loss),
            "tpTriggerBy": "LastPrice" if self.take_profit else "",
            "slTriggerBy": "LastPrice" if self.stop_loss else "",
            "triggerDirection": self.trigger_direction,
            "triggerBy": self.trigger_by,
            "lastPriceOnCreated": num(self.last_price_on_created),
            "reduceOnly": self.reduce_only,
            "closeOnTrigger": self.close_on_trigger,
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "tpslMode": self.tpsl_mode,
            "tpLimitPrice": "",
            "slLimitPrice": "",
            "placeType": "",
            "createType": self.create_type,
            "createdTime": str(self.created),
            "updatedTime": str(self.updated),
        }


@dataclass
class Position:
    symbol: str
    leverage: Decimal
    side: str = ""
    size: Decimal = ZERO
    avg: Decimal = ZERO
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO
    tpsl_mode: str = "Full"
    cur_realised: Decimal = ZERO
    cum_realised: Decimal = ZERO
    entry_fees: Decimal = ZERO  # opening fees of the current position (closed-pnl shares them)
    created: int = 0
    updated: int = 0
    seq: int = 0

    @property
    def direction(self) -> int:
        return {"Buy": 1, "Sell": -1}.get(self.side, 0)

    def apply(self, side: str, qty: Decimal, price: Decimal) -> tuple[Decimal, Decimal]:
        """Book a fill (one-way mode); return (size closed, realised PnL before fees)."""
        if self.side in ("", side):
            self.avg = q8((self.size * self.avg + qty * price) / (self.size + qty))
            self.size += qty
            self.side = side
            return ZERO, ZERO
        closed = min(qty, self.size)
        pnl = (price - self.avg) * closed * self.direction
        self.size -= closed
        if self.size == 0:
            self.side, self.avg = "", ZERO
        if qty > closed:  # a flip: the rest opens the other way
            self.side, self.size, self.avg = side, qty - closed, price
        return closed, pnl
