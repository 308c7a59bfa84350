"""The fake's account: orders, one-way positions, wallet and executions, moved by test trades.

Nothing here does I/O. Every state change returns the private WebSocket messages it causes as
batches (one batch per order action or fill: execution, order, position, wallet for a fill), and the
server publishes them. Amounts are Decimals so prices, fees and PnL come out exact.

Rules chosen where the reference leaves room (the module docstring of the package lists them all):
- Market orders wait for the next `trade()` and fill at its price (`fill_mode="immediate"` fills them
  on create at the last price). Limit orders fill at their own price when a trade crosses it strictly
  (a buy when the trade is below the limit, a sell when above); a trade at the limit fills nothing.
- Fills are not capped by the trade's size; `partial_fill_ratio` fills that share of what is left
  (rounded down to the qty step, at least one step) at each trade.
- Position TP/SL trigger on the last price; the triggering trade fills a reduce-only Market order at
  its own price. IM = entry value / leverage, whatever the account's margin mode.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import ROUND_DOWN, Decimal
from typing import Any

from .errors import Reject
from .market import Instrument, int_param
from .models import LINK_ID, ZERO, Batch, D, Order, Position, dec, fake_uuid, flag, num, q8


class Exchange:
    """Orders, positions, wallet and executions of one fake account."""

    def __init__(
        self,
        now: Callable[[], int],
        *,
        balance: float,
        taker_fee: float,
        maker_fee: float,
        leverage: float = 10,
    ) -> None:
        self.now = now
        self.instruments: dict[str, Instrument] = {}
        self.orders: dict[str, Order] = {}
        self.by_link: dict[str, str] = {}
        self.positions: dict[str, Position] = {}
        self.executions: list[dict[str, Any]] = []
        self.closed_pnl: list[dict[str, Any]] = []
        self.balance = D(str(balance))
        self.taker_fee = D(str(taker_fee))
        self.maker_fee = D(str(maker_fee))
        self.default_leverage = D(str(leverage))
        self.last: dict[str, Decimal] = {}
        self.mark: dict[str, Decimal] = {}
        self.fill_mode = "next_trade"
        self.partial_fill_ratio: float | None = None
        self.margin_mode = "REGULAR_MARGIN"
        self.position_mode = 0
        self._order_n: Iterator[int] = itertools.count(1)
        self._exec_n: Iterator[int] = itertools.count(1)
        self._seq: Iterator[int] = itertools.count(1)

    # ------------------------------------------------------------------ look-ups

    def instrument(self, symbol: Any) -> Instrument:
        ins = self.instruments.get(str(symbol or ""))
        if ins is None:
            raise Reject(10001, "params error: symbol invalid")
        return ins

    def position(self, symbol: str) -> Position:
        if symbol not in self.positions:
            self.positions[symbol] = Position(symbol, self.default_leverage)
        return self.positions[symbol]

    def find(self, p: dict[str, Any]) -> Order:
        """The order named by orderId (which wins) or orderLinkId; 110001 if there is none."""
        oid, link = p.get("orderId") or "", p.get("orderLinkId") or ""
        if not oid and not link:
            raise Reject(10001, "params error: orderId or orderLinkId is required")
        o = self.orders.get(oid) if oid else self.orders.get(self.by_link.get(link, ""))
        if o is None:
            raise Reject(110001)
        return o

    def ref(self, order_id_or_link_id: str) -> Order:
        o = self.orders.get(order_id_or_link_id) or self.orders.get(
            self.by_link.get(order_id_or_link_id, "")
        )
        if o is None:
            raise KeyError(f"no order {order_id_or_link_id!r}")
        return o

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open and symbol in (None, o.symbol)]

    # ------------------------------------------------------------------ margin

    def _ref_price(self, o: Order) -> Decimal:
        if o.order_type == "Limit":
            return o.price
        return o.trigger_price or self.last.get(o.symbol, ZERO)

    def _opening(self, symbol: str, side: str, qty: Decimal) -> Decimal:
        pos = self.positions.get(symbol)
        if pos is None or pos.side in ("", side):
            return qty
        return max(ZERO, qty - pos.size)

    def _order_im(self) -> Decimal:
        total = ZERO
        for o in self.open_orders():
            if o.reduce_only or o.status == "Untriggered":
                continue
            lev = self.position(o.symbol).leverage
            total += self._opening(o.symbol, o.side, o.leaves) * self._ref_price(o) / lev
        return total

    def _upl(self, pos: Position) -> Decimal:
        mark = self.mark.get(pos.symbol, pos.avg)
        return (mark - pos.avg) * pos.size * pos.direction

    def available(self) -> Decimal:
        equity = self.balance + sum((self._upl(p) for p in self.positions.values()), ZERO)
        pos_im = sum((p.size * p.avg / p.leverage for p in self.positions.values()), ZERO)
        return equity - pos_im - self._order_im()

    # ------------------------------------------------------------------ order actions

    def create(self, p: dict[str, Any]) -> tuple[dict[str, str], list[Batch]]:
        ins = self.instrument(p.get("symbol"))
        side, otype = p.get("side"), p.get("orderType")
        if side not in ("Buy", "Sell"):
            raise Reject(10001, f"params error: side invalid: {side!r}")
        if otype not in ("Market", "Limit"):
            raise Reject(10001, f"params error: orderType invalid: {otype!r}")
        if p.get("positionIdx") not in (None, 0, "0"):
            raise Reject(10001, "position idx not match position mode")  # one-way only
        qty = dec(p, "qty", required=True)
        assert qty is not None
        price = dec(p, "price") or ZERO
        link = str(p.get("orderLinkId") or "")
        if link and not LINK_ID.fullmatch(link):
            raise Reject(10001, "params error: orderLinkId must be 1-36 of [A-Za-z0-9_-]")
        if link in self.by_link:
            raise Reject(110072)
        if otype == "Limit" and price <= 0:
            raise Reject(10001, "params error: price is required for a Limit order")
        self._check_qty(ins, qty)
        tp, sl = dec(p, "takeProfit") or ZERO, dec(p, "stopLoss") or ZERO
        trigger = dec(p, "triggerPrice") or ZERO
        for name, value in (("price", price), ("takeProfit", tp), ("stopLoss", sl)):
            self._check_tick(ins, name, value)
        self._check_tick(ins, "triggerPrice", trigger)
        direction = int_param(p, "triggerDirection") or 0
        if trigger and direction not in (1, 2):
            raise Reject(10001, "params error: triggerDirection must be 1 or 2 with triggerPrice")
        reduce_only = flag(p, "reduceOnly")
        pos = self.positions.get(ins.symbol)
        if reduce_only and (pos is None or pos.side in ("", side)):
            raise Reject(110017)
        now = self.now()
        n = next(self._order_n)
        o = Order(
            n=n,
            order_id=fake_uuid(1, n),
            link_id=link,
            symbol=ins.symbol,
            side=side,
            order_type=otype,
            qty=qty,
            price=price if otype == "Limit" else ZERO,
            tif=str(p.get("timeInForce") or ("IOC" if otype == "Market" else "GTC")),
            reduce_only=reduce_only,
            close_on_trigger=flag(p, "closeOnTrigger"),
            take_profit=tp,
            stop_loss=sl,
            tpsl_mode=str(p.get("tpslMode") or ("Full" if tp or sl else "")),
            trigger_price=trigger,
            trigger_direction=direction if trigger else 0,
            trigger_by=str(p.get("triggerBy") or ("LastPrice" if trigger else "")),
            stop_order_type="Stop" if trigger else "",
            status="Untriggered" if trigger else "New",
            last_price_on_created=self.last.get(ins.symbol, ZERO),
            created=now,
            updated=now,
        )
        ref = self._ref_price(o)
        if ref and not reduce_only:
            if qty * ref < ins.min_notional:
                raise Reject(
                    110094, f"Order does not meet minimum order value {ins.min_notional}USDT"
                )
            opening = self._opening(ins.symbol, side, qty)
            if opening * ref / self.position(ins.symbol).leverage > self.available():
                raise Reject(110007)
        self.orders[o.order_id] = o
        if link:
            self.by_link[link] = o.order_id
        batches = [self._touch(o)]
        last = self.last.get(o.symbol)
        if self.fill_mode == "immediate" and otype == "Market" and not trigger and last:
            batches += self._fill(o, last, self._fill_qty(o, o.leaves), maker=False)
        return {"orderId": o.order_id, "orderLinkId": o.link_id}, batches

    def amend(self, p: dict[str, Any]) -> tuple[dict[str, str], list[Batch]]:
        o = self.find(p)
        if not o.is_open:
            raise Reject(110001)
        ins = self.instrument(o.symbol)
        before = replace(o)
        qty, price = dec(p, "qty"), dec(p, "price")
        if qty is not None:
            self._check_qty(ins, qty)
            if qty <= o.cum_qty:
                raise Reject(10001, "params error: qty must exceed the filled qty")
            o.qty = qty
        if price is not None and o.order_type == "Limit":
            self._check_tick(ins, "price", price)
            o.price = price
        for key, attr in (("takeProfit", "take_profit"), ("stopLoss", "stop_loss")):
            v = dec(p, key)
            if v is not None:
                self._check_tick(ins, key, v)
                setattr(o, attr, v)
        trigger = dec(p, "triggerPrice")
        if trigger is not None and o.trigger_price:
            self._check_tick(ins, "triggerPrice", trigger)
            o.trigger_price = trigger
        if o == before:
            raise Reject(10001, "The order remains unchanged as the parameters entered match")
        o.updated = self.now()
        return {"orderId": o.order_id, "orderLinkId": o.link_id}, [self._touch(o)]

    def cancel(
        self, p: dict[str, Any], *, race_fill: bool = False
    ) -> tuple[dict[str, str], list[Batch]]:
        """Cancel one open order. With `race_fill` a fill wins the race: the order fills, two
        Filled messages go out (the second as the cancel's echo) and the cancel answers 110001."""
        o = self.find(p)
        if not o.is_open:
            raise Reject(110001)
        if race_fill:
            price = o.price if o.order_type == "Limit" else self.last.get(o.symbol, ZERO)
            batches = self._fill(o, price, o.leaves, maker=o.order_type == "Limit")
            echo = o.view() | {
                "cancelType": "CancelByUser",
                "rejectReason": "EC_OrigClOrdIDDoesNotExist",
            }
            batches.append([("order", echo)])
            err = Reject(110001)
            err.batches = batches
            raise err
        self._cancel(o)
        return {"orderId": o.order_id, "orderLinkId": o.link_id}, [self._touch(o)]

    def cancel_all(self, p: dict[str, Any]) -> tuple[dict[str, Any], list[Batch]]:
        symbol, settle, base = p.get("symbol"), p.get("settleCoin"), p.get("baseCoin")
        if not (symbol or settle or base):
            raise Reject(10001, "params error: symbol, baseCoin or settleCoin is required")
        if symbol:
            self.instrument(symbol)
        kind = p.get("orderFilter")
        done, batches, cancelled = [], [], []
        for o in self.open_orders(symbol or None):
            if base and not o.symbol.startswith(str(base)):
                continue
            if (kind == "Order" and o.trigger_price) or (
                kind == "StopOrder" and not o.trigger_price
            ):
                continue
            self._cancel(o)
            cancelled.append(o)
            batches.append([("order", o.view())])
            done.append({"orderId": o.order_id, "orderLinkId": o.link_id})
        for sym in sorted({o.symbol for o in cancelled} | ({symbol} if symbol else set())):
            batches.append([("position", self.position_view(sym))])
        return {"list": done, "success": "1"}, batches

    def _cancel(self, o: Order) -> None:
        o.status = "Deactivated" if o.status == "Untriggered" else "Cancelled"
        o.cancel_type = "CancelByUser"
        o.updated = self.now()

    def _touch(self, o: Order) -> Batch:
        """An order message and, as Bybit does on every order action, a position message."""
        return [("order", o.view()), ("position", self.position_view(o.symbol))]

    @staticmethod
    def _check_qty(ins: Instrument, qty: Decimal) -> None:
        if qty % ins.step:
            raise Reject(10001, f"params error: qty {qty} is not a multiple of qtyStep {ins.step}")
        if qty < ins.min_qty:
            raise Reject(10001, "The number of contracts exceeds minimum limit allowed")
        if qty > ins.max_qty:
            raise Reject(10001, "The number of contracts exceeds maximum limit allowed")

    @staticmethod
    def _check_tick(ins: Instrument, name: str, price: Decimal) -> None:
        if price % ins.tick:
            raise Reject(
                10001, f"params error: {name} {price} is not a multiple of tickSize {ins.tick}"
            )

    # ------------------------------------------------------------------ market moves

    def trade(self, symbol: str, price: Decimal) -> list[Batch]:
        """A public trade: fill what it reaches, then position TP/SL, then conditional orders."""
        self.last[symbol] = self.mark[symbol] = price
        batches: list[Batch] = []
        for o in self.open_orders(symbol):
            if o.status == "Untriggered":
                continue
            if o.order_type == "Market":
                batches += self._fill(o, price, self._fill_qty(o, o.leaves), maker=False)
            elif (o.side == "Buy" and price < o.price) or (o.side == "Sell" and price > o.price):
                batches += self._fill(o, o.price, self._fill_qty(o, o.leaves), maker=True)
        batches += self._position_tpsl(symbol, price)
        for o in self.open_orders(symbol):
            if o.status != "Untriggered":
                continue
            up, down = o.trigger_direction == 1, o.trigger_direction == 2
            if (up and price >= o.trigger_price) or (down and price <= o.trigger_price):
                o.status, o.updated = "Triggered", self.now()
                batches.append([("order", o.view())])
                o.status = "New"
                if o.order_type == "Market":
                    batches += self._fill(o, price, self._fill_qty(o, o.leaves), maker=False)
        return batches

    def _position_tpsl(self, symbol: str, price: Decimal) -> list[Batch]:
        pos = self.positions.get(symbol)
        if pos is None or pos.size == 0:
            return []
        d = pos.direction
        if pos.take_profit and (price - pos.take_profit) * d >= 0:
            kind, trigger = "TakeProfit", pos.take_profit
        elif pos.stop_loss and (price - pos.stop_loss) * d <= 0:
            kind, trigger = "StopLoss", pos.stop_loss
        else:
            return []
        now, n = self.now(), next(self._order_n)
        o = Order(
            n=n,
            order_id=fake_uuid(1, n),
            link_id="",
            symbol=symbol,
            side="Sell" if d > 0 else "Buy",
            order_type="Market",
            qty=pos.size,
            price=ZERO,
            tif="IOC",
            reduce_only=True,
            close_on_trigger=True,
            trigger_price=trigger,
            trigger_direction=1 if (kind == "TakeProfit") == (d > 0) else 2,
            trigger_by="LastPrice",
            stop_order_type=kind,
            create_type=f"CreateBy{kind}",
            status="Triggered",
            last_price_on_created=price,
            created=now,
            updated=now,
        )
        self.orders[o.order_id] = o
        return self._fill(o, price, pos.size, maker=False)

    def _fill_qty(self, o: Order, leaves: Decimal) -> Decimal:
        if self.partial_fill_ratio is None:
            return leaves
        step = self.instruments[o.symbol].step
        part = (leaves * D(str(self.partial_fill_ratio)) / step).to_integral_value(ROUND_DOWN)
        return min(leaves, max(step, part * step))

    def fill(self, o: Order, price: Decimal, qty: Decimal | None) -> list[Batch]:
        """An explicit fill of `qty` (default: all that is left) at `price`."""
        if not o.is_open:
            raise ValueError(f"order {o.order_id} is {o.status}, not open")
        qty = o.leaves if qty is None else min(qty, o.leaves)
        if o.status == "Untriggered":
            o.status = "New"
        return self._fill(o, price, qty, maker=o.order_type == "Limit")

    def _fill(
        self,
        o: Order,
        price: Decimal,
        qty: Decimal,
        *,
        maker: bool,
        exec_type: str = "Trade",
        fee_rate: Decimal | None = None,
    ) -> list[Batch]:
        """Book one fill: execution, order, position, wallet (one batch, in that order)."""
        now = self.now()
        pos = self.position(o.symbol)
        if o.reduce_only:  # never more than the position: Bybit shrinks the order to fit
            room = pos.size if pos.side not in ("", o.side) else ZERO
            if room <= 0:
                o.status, o.cancel_type, o.updated = "Deactivated", "CancelByReduceOnly", now
                return [[("order", o.view())]]
            if room < o.leaves:
                o.qty = o.cum_qty + room
            qty = min(qty, room)
        rate = fee_rate if fee_rate is not None else self.maker_fee if maker else self.taker_fee
        value = qty * price
        fee = q8(value * rate)
        if pos.size == 0:
            pos.cur_realised, pos.entry_fees, pos.created = ZERO, ZERO, now
        size_before, avg_before, entry_fees = pos.size, pos.avg, pos.entry_fees
        closed, pnl = pos.apply(o.side, qty, price)
        pnl = q8(pnl)
        fee_share = q8(entry_fees * closed / size_before) if closed else ZERO
        pos.entry_fees -= fee_share
        if closed and (pos.size == 0 or qty > closed):  # flat or flipped: old TP/SL are gone
            pos.take_profit = pos.stop_loss = ZERO
        if qty > closed:  # opened or grew: the order's attached TP/SL become the position's
            pos.entry_fees += q8(fee * (qty - closed) / qty)
            if o.take_profit:
                pos.take_profit = o.take_profit
            if o.stop_loss:
                pos.stop_loss = o.stop_loss
        net = pnl - fee
        self.balance += net
        pos.cur_realised += net
        pos.cum_realised += net
        pos.updated, pos.seq = now, next(self._seq)
        o.cum_qty += qty
        o.cum_value += value
        o.cum_fee += fee
        o.status = "Filled" if o.cum_qty >= o.qty else "PartiallyFilled"
        o.updated = now
        ex = self.book_execution(
            o.symbol,
            price,
            qty,
            execFee=num(fee),
            feeRate=num(rate),
            execType=exec_type,
            execTime=str(now),
            isMaker=maker,
            orderId=o.order_id,
            orderLinkId=o.link_id,
            side=o.side,
            orderPrice=num(o.price),
            orderQty=num(o.qty),
            leavesQty=num(o.leaves),
            orderType=o.order_type,
            stopOrderType=o.stop_order_type,
            createType=o.create_type,
            closedSize=num(closed),
            execPnl=num(pnl),
            seq=pos.seq,
        )
        if closed:
            exit_fee = q8(fee * closed / qty)
            self.closed_pnl.append(
                {
                    "symbol": o.symbol,
                    "orderId": o.order_id,
                    "side": o.side,
                    "qty": num(o.qty),
                    "orderPrice": num(o.price),
                    "orderType": o.order_type,
                    "execType": exec_type,
                    "closedSize": num(closed),
                    "cumEntryValue": num(closed * avg_before),
                    "avgEntryPrice": num(avg_before),
                    "cumExitValue": num(closed * price),
                    "avgExitPrice": num(price),
                    "closedPnl": num(pnl - fee_share - exit_fee),
                    "fillCount": "1",
                    "leverage": num(pos.leverage),
                    "createdTime": str(now),
                    "updatedTime": str(now),
                }
            )
        return [
            [
                ("execution", ex),
                ("order", o.view()),
                ("position", self.position_view(o.symbol)),
                ("wallet", self.wallet_view()),
            ]
        ]

    def book_execution(
        self, symbol: str, price: Decimal, qty: Decimal, **fields: Any
    ) -> dict[str, Any]:
        """Record one execution: Bybit's fields, `fields` over neutral defaults."""
        mark = num(self.mark.get(symbol, price))
        item = {
            "category": "linear",
            "symbol": symbol,
            "execId": fake_uuid(2, next(self._exec_n)),
            "execPrice": num(price),
            "execQty": num(qty),
            "execValue": num(price * qty),
            "execFee": "0",
            "feeRate": "0",
            "feeCurrency": "USDT",
            "execType": "Trade",
            "execTime": str(self.now()),
            "isMaker": False,
            "orderId": "",
            "orderLinkId": "",
            "side": "Buy",
            "orderPrice": "0",
            "orderQty": num(qty),
            "leavesQty": "0",
            "orderType": "Market",
            "stopOrderType": "",
            "createType": "CreateByUser",
            "markPrice": mark,
            "indexPrice": mark,
            "closedSize": "0",
            "execPnl": "0",
            "seq": fields.pop("seq", None) or next(self._seq),
            "blockTradeId": "",
            "tradeIv": "",
            "markIv": "",
            "underlyingPrice": "",
            "isLeverage": "",
        } | fields
        self.executions.append(item)
        return item

    def funding(self, symbol: str, rate: Decimal) -> list[Batch]:
        """Book a funding settlement at the mark price: longs pay a positive rate."""
        pos = self.positions.get(symbol)
        if pos is None or pos.size == 0:
            return []
        now = self.now()
        mark = self.mark.get(symbol, pos.avg)
        value = pos.size * mark
        fee = q8(value * rate * pos.direction)
        self.balance -= fee
        pos.cur_realised -= fee
        pos.cum_realised -= fee
        pos.updated, pos.seq = now, next(self._seq)
        ex = self.book_execution(
            symbol,
            mark,
            pos.size,
            execFee=num(fee),
            feeRate=num(rate),
            execType="Funding",
            execTime=str(now),
            side=pos.side,
            orderQty="0",
            orderType="UNKNOWN",
            stopOrderType="UNKNOWN",
            createType="",
            seq=pos.seq,
        )
        return [
            [
                ("execution", ex),
                ("position", self.position_view(symbol)),
                ("wallet", self.wallet_view()),
            ]
        ]

    def close_out(self, symbol: str, price: Decimal, exec_type: str) -> list[Batch]:
        """The exchange closes the whole position: `BustTrade` (liquidation) or `AdlTrade`."""
        pos = self.positions.get(symbol)
        if pos is None or pos.size == 0:
            raise ValueError(f"no open {symbol} position to close")
        now, n = self.now(), next(self._order_n)
        o = Order(
            n=n,
            order_id=fake_uuid(1, n),
            link_id="",
            symbol=symbol,
            side="Sell" if pos.direction > 0 else "Buy",
            order_type="Limit" if exec_type == "BustTrade" else "Market",
            qty=pos.size,
            price=price,
            tif="IOC",
            reduce_only=True,
            close_on_trigger=True,
            create_type="CreateByLiq" if exec_type == "BustTrade" else "CreateByAdl_PassThrough",
            last_price_on_created=self.last.get(symbol, price),
            created=now,
            updated=now,
        )
        self.orders[o.order_id] = o
        rate = None if exec_type == "BustTrade" else ZERO
        return self._fill(o, price, pos.size, maker=False, exec_type=exec_type, fee_rate=rate)

    # ------------------------------------------------------------------ views

    def position_view(self, symbol: str) -> dict[str, Any]:
        pos = self.position(symbol)
        ins = self.instruments[symbol]
        mark = self.mark.get(symbol, pos.avg)
        open_ = pos.size > 0
        liq = bust = ""
        if open_:
            d, inv = pos.direction, 1 / pos.leverage
            bust = num(q8(pos.avg * (1 - d * inv)).quantize(ins.tick))
            liq = num(q8(pos.avg * (1 - d * (inv - ins.mmr))).quantize(ins.tick))
        im = pos.size * pos.avg / pos.leverage
        return {
            "category": "linear",
            "positionIdx": 0,
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": symbol,
            "side": pos.side,
            "size": num(pos.size),
            "avgPrice": num(pos.avg),
            "positionValue": num(pos.size * pos.avg),
            "tradeMode": 0,
            "autoAddMargin": 0,
            "positionStatus": "Normal",
            "leverage": num(pos.leverage),
            "markPrice": num(mark),
            "liqPrice": liq,
            "bustPrice": bust,
            "positionIM": num(q8(im)),
            "positionMM": num(q8(pos.size * mark * ins.mmr)),
            "positionBalance": num(q8(im)),
            "takeProfit": num(pos.take_profit),
            "stopLoss": num(pos.stop_loss),
            "trailingStop": "0",
            "sessionAvgPrice": "",
            "unrealisedPnl": num(q8(self._upl(pos))),
            "curRealisedPnl": num(pos.cur_realised),
            "cumRealisedPnl": num(pos.cum_realised),
            "adlRankIndicator": 2 if open_ else 0,
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
            "tpslMode": pos.tpsl_mode,
            "createdTime": str(pos.created),
            "updatedTime": str(pos.updated),
            "seq": pos.seq,
        }

    def wallet_view(self) -> dict[str, Any]:
        """The UNIFIED account with its USDT coin, as wallet-balance and the `wallet` topic show."""
        poss = [p for p in self.positions.values() if p.size > 0]
        upl = q8(sum((self._upl(p) for p in poss), ZERO))
        pos_im = q8(sum((p.size * p.avg / p.leverage for p in poss), ZERO))
        mm = q8(
            sum(
                (
                    p.size * self.mark.get(p.symbol, p.avg) * self.instruments[p.symbol].mmr
                    for p in poss
                ),
                ZERO,
            )
        )
        order_im = q8(self._order_im())
        equity = self.balance + upl
        im = pos_im + order_im
        available = max(ZERO, equity - im)
        cum = sum((p.cum_realised for p in self.positions.values()), ZERO)
        return {
            "accountType": "UNIFIED",
            "accountLTV": "0",
            "accountIMRate": num(q8(im / equity)) if equity > 0 else "0",
            "accountMMRate": num(q8(mm / equity)) if equity > 0 else "0",
            "totalEquity": num(equity),
            "totalWalletBalance": num(self.balance),
            "totalMarginBalance": num(equity),
            "totalAvailableBalance": num(available),
            "totalPerpUPL": num(upl),
            "totalInitialMargin": num(im),
            "totalMaintenanceMargin": num(mm),
            "coin": [
                {
                    "coin": "USDT",
                    "equity": num(equity),
                    "usdValue": num(equity),
                    "walletBalance": num(self.balance),
                    "free": "",
                    "locked": "0",
                    "spotHedgingQty": "0",
                    "borrowAmount": "0",
                    "availableToWithdraw": num(available),
                    "availableToBorrow": "",
                    "accruedInterest": "0",
                    "totalOrderIM": num(order_im),
                    "totalPositionIM": num(pos_im),
                    "totalPositionMM": num(mm),
                    "unrealisedPnl": num(upl),
                    "cumRealisedPnl": num(cum),
                    "bonus": "0",
                    "marginCollateral": True,
                    "collateralSwitch": True,
                }
            ],
        }
