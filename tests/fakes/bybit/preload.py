"""State left behind by an earlier run: positions, orders and executions put straight into the
account, as Bybit-shaped dicts (only the fields that matter are required; the rest default)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .matching import Exchange
from .models import ZERO, Order, fake_uuid


def _d(x: Any) -> Decimal:
    return Decimal(str(x)) if x not in (None, "") else ZERO


def position(ex: Exchange, d: dict[str, Any]) -> None:
    """`{symbol, side, size, avgPrice[, leverage, takeProfit, stopLoss]}`."""
    sym = ex.instrument(d["symbol"]).symbol
    pos = ex.position(sym)
    pos.side, pos.size, pos.avg = str(d["side"]), _d(d["size"]), _d(d["avgPrice"])
    pos.leverage = _d(d.get("leverage") or pos.leverage)
    pos.take_profit, pos.stop_loss = _d(d.get("takeProfit")), _d(d.get("stopLoss"))
    pos.created = pos.updated = int(d.get("createdTime") or ex.now())
    ex.mark.setdefault(sym, pos.avg)
    ex.last.setdefault(sym, pos.avg)


def order(ex: Exchange, d: dict[str, Any]) -> None:
    """`{symbol, side, orderType, qty[, price, orderLinkId, orderStatus, triggerPrice, ...]}`."""
    sym = ex.instrument(d["symbol"]).symbol
    n = next(ex._order_n)
    trigger = _d(d.get("triggerPrice"))
    created = int(d.get("createdTime") or ex.now())
    o = Order(
        n=n,
        order_id=str(d.get("orderId") or fake_uuid(1, n)),
        link_id=str(d.get("orderLinkId") or ""),
        symbol=sym,
        side=str(d["side"]),
        order_type=str(d["orderType"]),
        qty=_d(d["qty"]),
        price=_d(d.get("price")),
        tif=str(d.get("timeInForce") or ("IOC" if d["orderType"] == "Market" else "GTC")),
        reduce_only=bool(d.get("reduceOnly", False)),
        close_on_trigger=bool(d.get("closeOnTrigger", False)),
        take_profit=_d(d.get("takeProfit")),
        stop_loss=_d(d.get("stopLoss")),
        trigger_price=trigger,
        trigger_direction=int(d.get("triggerDirection") or 0),
        trigger_by="LastPrice" if trigger else "",
        stop_order_type=str(d.get("stopOrderType") or ("Stop" if trigger else "")),
        status=str(d.get("orderStatus") or ("Untriggered" if trigger else "New")),
        cum_qty=_d(d.get("cumExecQty")),
        created=created,
        updated=int(d.get("updatedTime") or created),
    )
    ex.orders[o.order_id] = o
    if o.link_id:
        ex.by_link[o.link_id] = o.order_id


def execution(ex: Exchange, d: dict[str, Any]) -> None:
    """Any execution fields; `symbol` is required, the rest default to a Buy trade."""
    sym = ex.instrument(d["symbol"]).symbol
    fields = {k: v for k, v in d.items() if k != "symbol"}
    ex.book_execution(sym, _d(d.get("execPrice")), _d(d.get("execQty")), **fields)
