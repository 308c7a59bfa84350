"""The fake's REST endpoints: `(method, path) → handler(fake, params, api_key) → (result, batches)`.

A handler raises `Reject` for a business error; `batches` are the private messages its change caused.
Authentication, faults, rate-limit headers and the envelope are the server's job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import Reject
from .market import check_interval, int_param, limit_param
from .models import ZERO, Batch, Order, dec, num

if TYPE_CHECKING:
    from .server import FakeBybit

Result = tuple[dict[str, Any], list[Batch]]
Handler = Callable[["FakeBybit", dict[str, Any], str], Result]
WEEK_MS = 7 * 86_400_000

ROUTES: dict[tuple[str, str], Handler] = {}


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    def add(fn: Handler) -> Handler:
        ROUTES[(method, path)] = fn
        return fn

    return add


def is_private(path: str) -> bool:
    return not path.startswith("/v5/market/")


# ---------------------------------------------------------------------------------- helpers


def linear(p: dict[str, Any], *, required: bool = True) -> None:
    cat = p.get("category")
    if cat is None and not required:
        return
    if cat != "linear":
        raise Reject(10001, f"params error: category {cat!r} is not supported (only linear)")


def page(items: list[Any], p: dict[str, Any], default: int, most: int) -> tuple[list[Any], str]:
    """One page of `items` from the opaque `cursor`, and the cursor of the next ("" at the end)."""
    limit = limit_param(p, default, most)
    cursor = str(p.get("cursor") or "")
    if cursor and not (cursor.startswith("page~") and cursor[5:].isdigit()):
        raise Reject(10001, f"params error: cursor invalid: {cursor!r}")
    start = int(cursor[5:]) if cursor else 0
    nxt = f"page~{start + limit}" if start + limit < len(items) else ""
    return items[start : start + limit], nxt


def week(p: dict[str, Any], now: int) -> tuple[int, int]:
    """[startTime, endTime] with Bybit's defaults: the last 7 days, and never more than 7 days."""
    lo, hi = int_param(p, "startTime"), int_param(p, "endTime")
    if lo is None and hi is None:
        return now - WEEK_MS, now
    if lo is None:
        assert hi is not None
        return hi - WEEK_MS, hi
    if hi is None:
        return lo, lo + WEEK_MS
    if hi - lo > WEEK_MS:
        raise Reject(10001, "params error: the time range between startTime and endTime > 7 days")
    return lo, hi


def symbol_scope(fake: FakeBybit, p: dict[str, Any]) -> str | None:
    """The `symbol` filter; linear needs one of symbol, baseCoin or settleCoin."""
    sym = p.get("symbol")
    if not (sym or p.get("baseCoin") or p.get("settleCoin")):
        raise Reject(10001, "params error: symbol, baseCoin or settleCoin is required")
    if sym:
        fake.ex.instrument(sym)
    return sym or None


# ---------------------------------------------------------------------------------- market


@route("GET", "/v5/market/time")
def server_time(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    now = fake.server_ms()
    return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}, []


def _klines(fake: FakeBybit, p: dict[str, Any], mark: bool) -> Result:
    linear(p, required=False)
    sym, interval = str(p.get("symbol") or ""), check_interval(str(p.get("interval") or ""))
    table = fake.mark_klines if mark else fake.klines
    series = table.get((sym, interval))
    if series is None:
        if sym not in fake.ex.instruments:
            raise Reject(10001, "params error: symbol invalid")
        rows: list[list[str]] = []
    else:
        start, end = int_param(p, "start"), int_param(p, "end")
        rows = series.page(start, end, limit_param(p, 200, 1000), fake.server_ms())
    return {"category": "linear", "symbol": sym, "list": rows}, []


@route("GET", "/v5/market/kline")
def kline(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    return _klines(fake, p, mark=False)


@route("GET", "/v5/market/mark-price-kline")
def mark_price_kline(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    return _klines(fake, p, mark=True)


@route("GET", "/v5/market/funding/history")
def funding_history(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p, required=False)
    sym = str(p.get("symbol") or "")
    start, end = int_param(p, "startTime"), int_param(p, "endTime")
    if start is not None and end is None:
        raise Reject(10001, "params error: endTime is required when startTime is given")
    series = fake.funding_series.get(sym)
    if series is None and sym not in fake.ex.instruments:
        raise Reject(10001, "params error: symbol invalid")
    rows = [] if series is None else series.page(start, end, limit_param(p, 200, 200), 2**62)
    out = [{"symbol": sym, "fundingRate": r[1], "fundingRateTimestamp": r[0]} for r in rows]
    return {"category": "linear", "list": out}, []


@route("GET", "/v5/market/instruments-info")
def instruments_info(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    sym, status = p.get("symbol"), p.get("status") or "Trading"
    items = [
        ins.entry()
        for ins in fake.ex.instruments.values()
        if ins.status == status and sym in (None, ins.symbol)
    ]
    chunk, nxt = page(items, p, 500, 1000)
    return {"category": "linear", "list": chunk, "nextPageCursor": nxt}, []


@route("GET", "/v5/market/tickers")
def tickers(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    sym = p.get("symbol")
    if sym:
        fake.ex.instrument(sym)
    out = [fake.ticker(s) for s in fake.ex.instruments if sym in (None, s)]
    return {"category": "linear", "list": out}, []


# ---------------------------------------------------------------------------------- account


@route("GET", "/v5/account/wallet-balance")
def wallet_balance(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    if p.get("accountType") != "UNIFIED":
        raise Reject(10001, "params error: accountType only supports UNIFIED")
    coins = p.get("coin")
    wallet = fake.ex.wallet_view()
    if coins:
        wallet["coin"] = [c for c in wallet["coin"] if c["coin"] in str(coins).split(",")]
    return {"list": [wallet]}, []


@route("GET", "/v5/account/info")
def account_info(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    return {
        "unifiedMarginStatus": fake.unified_margin_status,
        "marginMode": fake.ex.margin_mode,
        "isMasterTrader": False,
        "spotHedgingStatus": "OFF",
        "updatedTime": str(fake.server_ms()),
        "dcpStatus": "OFF",
        "timeWindow": 10,
        "smpGroup": 0,
    }, []


@route("GET", "/v5/user/query-api")
def query_api(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    return {
        "id": "1",
        "note": "fake",
        "apiKey": key,
        "readOnly": 0,
        "secret": "",
        "permissions": fake.permissions,
        "ips": ["*"],
        "type": 1,
        "deadlineDay": 90,
        "expiredAt": "",
        "createdAt": "",
        "unified": 0,
        "uta": 1,
        "userID": 1,
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
        "rsaPublicKey": "",
        "isMaster": True,
    }, []


@route("POST", "/v5/account/set-margin-mode")
def set_margin_mode(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    mode = p.get("setMarginMode")
    if mode not in ("ISOLATED_MARGIN", "REGULAR_MARGIN", "PORTFOLIO_MARGIN"):
        raise Reject(10001, f"params error: setMarginMode invalid: {mode!r}")
    ex = fake.ex
    if mode == ex.margin_mode:
        raise Reject(110026)
    _no_positions_or_orders(fake)
    ex.margin_mode = str(mode)
    return {"reasons": []}, []


def _no_positions_or_orders(fake: FakeBybit) -> None:
    if any(pos.size for pos in fake.ex.positions.values()):
        raise Reject(110024)
    if fake.ex.open_orders():
        raise Reject(110028)


# ---------------------------------------------------------------------------------- positions


@route("GET", "/v5/position/list")
def position_list(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    sym = p.get("symbol")
    if sym:
        fake.ex.instrument(sym)
        items = [fake.ex.position_view(sym)]
    elif p.get("settleCoin") == "USDT" or p.get("baseCoin"):
        base = p.get("baseCoin")
        items = [
            fake.ex.position_view(s)
            for s, pos in sorted(fake.ex.positions.items())
            if pos.size and (not base or s.startswith(str(base)))
        ]
    else:
        raise Reject(10001, "params error: symbol or settleCoin is required")
    chunk, nxt = page(items, p, 20, 200)
    return {"category": "linear", "list": chunk, "nextPageCursor": nxt}, []


@route("POST", "/v5/position/set-leverage")
def set_leverage(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    ins = fake.ex.instrument(p.get("symbol"))
    buy, sell = dec(p, "buyLeverage", required=True), dec(p, "sellLeverage", required=True)
    if buy != sell:
        raise Reject(10001, "params error: buyLeverage must equal sellLeverage in one-way mode")
    assert buy is not None
    if buy < 1 or buy > ins.max_leverage:
        raise Reject(10001, f"params error: leverage {buy} outside 1..{ins.max_leverage}")
    pos = fake.ex.position(ins.symbol)
    if buy == pos.leverage:
        raise Reject(110043)
    pos.leverage = buy
    return {}, [[("position", fake.ex.position_view(ins.symbol))]]


@route("POST", "/v5/position/switch-mode")
def switch_mode(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    if not (p.get("symbol") or p.get("coin")):
        raise Reject(10001, "params error: symbol or coin is required")
    mode = int_param(p, "mode")
    if mode not in (0, 3):
        raise Reject(10001, f"params error: mode must be 0 or 3, got {p.get('mode')!r}")
    if mode == fake.ex.position_mode:
        raise Reject(110025)
    _no_positions_or_orders(fake)
    fake.ex.position_mode = mode
    return {}, []


@route("POST", "/v5/position/switch-isolated")
def switch_isolated(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    raise Reject(100028, "unified account is forbidden")


@route("POST", "/v5/position/trading-stop")
def trading_stop(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    ins = fake.ex.instrument(p.get("symbol"))
    if p.get("tpslMode") not in ("Full", "Partial"):
        raise Reject(10001, "params error: tpslMode is required (Full or Partial)")
    if p.get("positionIdx") is None:
        raise Reject(10001, "params error: positionIdx is required")
    pos = fake.ex.position(ins.symbol)
    if pos.size == 0:
        raise Reject(10001, "can not set tp/sl/ts for zero position")
    tp, sl = dec(p, "takeProfit"), dec(p, "stopLoss")
    last = fake.ex.last.get(ins.symbol, ZERO)
    d = pos.direction
    for name, value, above in (("TakeProfit", tp, d > 0), ("StopLoss", sl, d < 0)):
        if value is None or value == 0:
            continue
        fake.ex._check_tick(ins, name, value)
        if last and (value > last) != above:
            where = "higher" if above else "lower"
            raise Reject(
                10001,
                f"{name}:{num(value)} set for {pos.side} position should be {where} than "
                f"base_price:{num(last)}??LastPrice",
            )
    if (tp is None or tp == pos.take_profit) and (sl is None or sl == pos.stop_loss):
        raise Reject(34040)
    if tp is not None:
        pos.take_profit = tp
    if sl is not None:
        pos.stop_loss = sl
    pos.tpsl_mode = str(p["tpslMode"])
    pos.updated = fake.server_ms()
    return {}, [[("position", fake.ex.position_view(ins.symbol))]]


@route("GET", "/v5/position/closed-pnl")
def closed_pnl(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    sym = p.get("symbol")
    lo, hi = week(p, fake.server_ms())
    items = [
        r
        for r in reversed(fake.ex.closed_pnl)
        if sym in (None, r["symbol"]) and lo <= int(r["updatedTime"]) <= hi
    ]
    chunk, nxt = page(items, p, 50, 100)
    return {"category": "linear", "list": chunk, "nextPageCursor": nxt}, []


# ---------------------------------------------------------------------------------- orders


@route("POST", "/v5/order/create")
def order_create(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    return fake.ex.create(p)


@route("POST", "/v5/order/amend")
def order_amend(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    return fake.ex.amend(p)


@route("POST", "/v5/order/cancel")
def order_cancel(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    return fake.ex.cancel(p, race_fill=fake.double_filled_on_cancel)


@route("POST", "/v5/order/cancel-all")
def order_cancel_all(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    return fake.ex.cancel_all(p)


def _orders(fake: FakeBybit, p: dict[str, Any], keep: Callable[[Order], bool]) -> list[Order]:
    oid, link = p.get("orderId"), p.get("orderLinkId")
    kind = p.get("orderFilter")
    sym = p.get("symbol")
    out = [
        o
        for o in fake.ex.orders.values()
        if sym in (None, o.symbol)
        and oid in (None, o.order_id)
        and link in (None, o.link_id)
        and (p.get("baseCoin") is None or o.symbol.startswith(str(p["baseCoin"])))
        and not (kind == "Order" and o.trigger_price)
        and not (kind == "StopOrder" and not o.trigger_price)
        and keep(o)
    ]
    return sorted(out, key=lambda o: (o.created, o.n), reverse=True)


@route("GET", "/v5/order/realtime")
def order_realtime(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    symbol_scope(fake, p)
    by_id = bool(p.get("orderId") or p.get("orderLinkId"))
    closed = str(p.get("openOnly") or "0") == "1"
    orders = _orders(fake, p, lambda o: by_id or o.is_open != closed)
    chunk, nxt = page([o.view() for o in orders[:500]], p, 20, 50)
    return {"category": "linear", "list": chunk, "nextPageCursor": nxt}, []


@route("GET", "/v5/order/history")
def order_history(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    lo, hi = week(p, fake.server_ms())
    status = p.get("orderStatus")
    orders = _orders(fake, p, lambda o: lo <= o.created <= hi and status in (None, o.status))
    chunk, nxt = page([o.view() for o in orders], p, 20, 50)
    return {"category": "linear", "list": chunk, "nextPageCursor": nxt}, []


@route("GET", "/v5/execution/list")
def execution_list(fake: FakeBybit, p: dict[str, Any], key: str) -> Result:
    linear(p)
    lo, hi = week(p, fake.server_ms())
    want = {k: p.get(k) for k in ("symbol", "orderId", "orderLinkId", "execType")}
    items = [
        e
        for e in fake.ex.executions
        if lo <= int(e["execTime"]) <= hi and all(v is None or e[k] == v for k, v in want.items())
    ]
    items.sort(key=lambda e: (int(e["execTime"]), e["seq"], e["execId"]), reverse=True)
    chunk, nxt = page(items, p, 50, 100)
    return {"category": "linear", "list": chunk, "nextPageCursor": nxt}, []
