"""The fake Bybit exchange itself, exercised with raw httpx and websockets and signed with pybit's
own signer (the reference client), so the live client's contract tests stand on a checked fake."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from pybit._http_manager import generate_signature

from fakes.bybit import FakeBybit

BAR0 = 1_749_999_960_000  # a 1m bar start
T0 = BAR0 + 30_000  # the fake's frozen clock: halfway through that bar
PRIVATE = ["order", "execution", "position", "wallet"]


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as f:
        f.set_time(T0)
        yield f


class Api:
    """A minimal signed REST caller: sign exactly what is sent, as Bybit requires."""

    def __init__(self, fake: FakeBybit, key: str | None = None, secret: str | None = None) -> None:
        self.fake = fake
        self.key = key or fake.api_key
        self.secret = secret or fake.api_secret
        self.http = httpx.Client(base_url=fake.rest_url, timeout=2.0)

    def headers(self, payload: str, ts: int | None, rw: int = 5000) -> dict[str, str]:
        ts = self.fake.server_ms() if ts is None else ts
        sign = generate_signature(False, self.secret, f"{ts}{self.key}{rw}{payload}")
        return {
            "X-BAPI-API-KEY": self.key,
            "X-BAPI-TIMESTAMP": str(ts),
            "X-BAPI-SIGN": sign,
            "X-BAPI-RECV-WINDOW": str(rw),
        }

    def get(self, path: str, params: dict[str, Any], ts: int | None = None) -> httpx.Response:
        query = httpx.QueryParams(params)
        return self.http.get(path, params=query, headers=self.headers(str(query), ts))

    def post(self, path: str, body: dict[str, Any], ts: int | None = None) -> httpx.Response:
        raw = json.dumps(body)
        headers = self.headers(raw, ts) | {"Content-Type": "application/json"}
        return self.http.post(path, content=raw, headers=headers)

    def call(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        r = self.get(path, params) if method == "GET" else self.post(path, params)
        assert r.status_code == 200, r.text
        return r.json()

    def ok(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        body = self.call(method, path, {"category": "linear", **params})
        assert body["retCode"] == 0, body
        return body["result"]

    def code(self, method: str, path: str, **params: Any) -> int:
        return self.call(method, path, {"category": "linear", **params})["retCode"]

    def order(self, **params: Any) -> dict[str, Any]:
        return self.ok("POST", "/v5/order/create", symbol="BTCUSDT", **params)


@pytest.fixture
def api(fake: FakeBybit) -> Iterator[Api]:
    a = Api(fake)
    yield a
    a.http.close()


def public(fake: FakeBybit, path: str, **params: Any) -> dict[str, Any]:
    return httpx.get(fake.rest_url + path, params=params, timeout=2.0).json()


async def recv(ws: Any, timeout: float = 60.0) -> dict[str, Any]:
    """The next message (it takes milliseconds; the bound only catches a hang)."""
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def take(ws: Any, n: int) -> list[dict[str, Any]]:
    return [await recv(ws) for _ in range(n)]


async def nothing_more(ws: Any, wait: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        await recv(ws, wait)


def auth_args(fake: FakeBybit, expires: int | None = None, secret: str | None = None) -> list:
    expires = fake.server_ms() + 10_000 if expires is None else expires
    sign = generate_signature(False, secret or fake.api_secret, f"GET/realtime{expires}")
    return [fake.api_key, expires, sign]


async def private_ws(fake: FakeBybit, topics: list[str] = PRIVATE) -> Any:
    ws = await websockets.connect(fake.ws_private_url)
    await ws.send(json.dumps({"op": "auth", "args": auth_args(fake)}))
    assert (await recv(ws))["success"] is True
    await ws.send(json.dumps({"op": "subscribe", "req_id": "s", "args": topics}))
    assert (await recv(ws))["success"] is True
    return ws


def topics(msgs: list[dict[str, Any]]) -> list[str]:
    return [m["topic"] for m in msgs]


def long_position(fake: FakeBybit, api: Api, **attached: Any) -> None:
    """Open 0.01 BTC long at 50000 (taker fee 0.275)."""
    fake.trade("BTCUSDT", 50_000.0)
    api.order(side="Buy", orderType="Market", qty="0.01", **attached)
    fake.trade("BTCUSDT", 50_000.0)


# ---------------------------------------------------------------------------------- auth


def test_signatures_are_checked_over_exactly_what_was_sent(fake: FakeBybit, api: Api) -> None:
    params = {"accountType": "UNIFIED", "coin": "USDT"}
    r = api.get("/v5/account/wallet-balance", params)
    assert r.json()["retCode"] == 0
    assert r.headers["X-Bapi-Limit"] == "50" and r.headers["X-Bapi-Limit-Status"] == "49"
    assert r.headers["X-Bapi-Limit-Reset-Timestamp"] == str(T0)
    # the same query sent in another order than signed
    headers = api.headers("accountType=UNIFIED&coin=USDT", None)
    r = api.http.get("/v5/account/wallet-balance?coin=USDT&accountType=UNIFIED", headers=headers)
    assert r.json()["retCode"] == 10004
    assert "error sign! origin_string[" in r.json()["retMsg"]
    assert api.secret not in r.text
    # a POST body is signed as raw bytes, spaces and all
    r = api.post("/v5/position/set-leverage", {"category": "linear", "symbol": "BTCUSDT",
                 "buyLeverage": "5", "sellLeverage": "5"})  # fmt: skip
    assert r.json()["retCode"] == 0 and r.headers["X-Bapi-Limit"] == "10"
    lower = {k.lower(): v for k, v in api.headers("", None).items()}  # header names in any case
    assert api.http.get("/v5/account/info", headers=lower).json()["retCode"] == 0
    assert Api(fake, key="NOSUCHKEY").get("/v5/account/info", {}).json()["retCode"] == 10003
    assert Api(fake, secret="wrong").get("/v5/account/info", {}).json()["retCode"] == 10004
    assert [r.signed_ok for r in fake.requests] == [True, False, True, True, False, False]


@pytest.mark.parametrize(
    ("ts", "code"),
    [(T0 - 5000, 0), (T0 - 5001, 10002), (T0 + 999, 0), (T0 + 1000, 10002)],
)
def test_the_timestamp_window_is_server_minus_recv_window_to_server_plus_1s(
    api: Api, ts: int, code: int
) -> None:
    body = api.get("/v5/account/info", {}, ts=ts).json()
    assert body["retCode"] == code
    if code:
        assert f"req_timestamp[{ts}],server_timestamp[{T0}],recv_window[5000]" in body["retMsg"]


def test_clock_skew_moves_server_time(fake: FakeBybit, api: Api) -> None:
    fake.clock_skew_ms = -10_000  # the client's clock looks 10 s ahead
    assert public(fake, "/v5/market/time")["result"] == {
        "timeSecond": str((T0 - 10_000) // 1000),
        "timeNano": str((T0 - 10_000) * 1_000_000),
    }
    assert api.get("/v5/account/info", {}, ts=T0).json()["retCode"] == 10002
    assert api.get("/v5/account/info", {}, ts=T0 - 10_000).json()["retCode"] == 0
    fake.advance(60_000)
    assert fake.server_ms() == T0 + 50_000


def test_a_running_clock_moves_at_its_speed(fake: FakeBybit) -> None:
    fake.set_time(T0, speed=1000.0)  # a session replayed 1000 times faster than real time
    time.sleep(0.05)
    fake.advance(3_600_000)
    elapsed = fake.server_ms() - T0 - 3_600_000
    assert 50_000 <= elapsed < 3_600_000  # at least 0.05 s × 1000, and still running
    with FakeBybit() as real:
        assert abs(real.server_ms() - time.time() * 1000) < 1000
        with pytest.raises(RuntimeError, match="call set_time"):
            real.advance(1)


def test_demo_has_no_query_api(fake: FakeBybit, api: Api) -> None:
    assert api.ok("GET", "/v5/user/query-api")["permissions"]["ContractTrade"] == [
        "Order",
        "Position",
    ]
    fake.demo = True
    r = api.get("/v5/user/query-api", {})
    assert (r.status_code, r.json()["retCode"]) == (404, 10017)
    assert api.ok("GET", "/v5/account/info")["unifiedMarginStatus"] == 6


# ---------------------------------------------------------------------------------- market


def bars(n: int, start: int = BAR0 - 5 * 60_000) -> list[list[float]]:
    return [
        [start + i * 60_000, 100 + i, 101 + i, 99 + i, 100.5 + i, 1.0 + i, 2.0] for i in range(n)
    ]


def starts(body: dict[str, Any]) -> list[int]:
    return [int(row[0]) for row in body["result"]["list"]]


def test_kline_pages_follow_bybits_semantics(fake: FakeBybit) -> None:
    fake.load_klines("BTCUSDT", "1", bars(8))  # 5 closed, the open bar at BAR0, 2 in the future

    def ask(**params: Any) -> dict[str, Any]:
        base = {"category": "linear", "symbol": "BTCUSDT", "interval": "1"}
        return public(fake, "/v5/market/kline", **base | params)

    m = 60_000
    latest = ask()
    assert starts(latest) == [BAR0 - k * m for k in range(6)]  # newest first, open bar included
    assert latest["result"]["list"][0] == [str(BAR0), "105", "106", "104", "105.5", "6.0", "2.0"]
    assert starts(ask(start=BAR0 - 4 * m, limit=2)) == [BAR0 - 3 * m, BAR0 - 4 * m]
    assert starts(ask(start=BAR0 - 5 * m, end=BAR0 - m, limit=2)) == [BAR0 - m, BAR0 - 2 * m]
    assert starts(ask(end=BAR0 - 3 * m, limit=10)) == [BAR0 - 3 * m, BAR0 - 4 * m, BAR0 - 5 * m]
    assert ask(interval="2")["retCode"] == 10001
    assert ask(symbol="NOPEUSDT")["retMsg"] == "params error: symbol invalid"
    fake.advance(2 * m)  # two more bars have opened
    assert starts(ask(limit=1)) == [BAR0 + 2 * m]
    fake.load_mark_klines("BTCUSDT", "1", [[BAR0 - m, 1, 2, 0.5, 1.5]])
    mark = public(fake, "/v5/market/mark-price-kline", symbol="BTCUSDT", interval="1")
    assert mark["result"]["list"] == [[str(BAR0 - m), "1", "2", "0.5", "1.5"]]


def test_funding_history_needs_an_end_and_answers_newest_first(fake: FakeBybit) -> None:
    eight_h = 8 * 3_600_000
    fake.load_funding("BTCUSDT", [[BAR0 - k * eight_h, 0.0001 * k] for k in range(300)][::-1])
    ask = {"category": "linear", "symbol": "BTCUSDT"}
    assert public(fake, "/v5/market/funding/history", **ask, startTime=BAR0)["retCode"] == 10001
    got = public(fake, "/v5/market/funding/history", **ask, endTime=BAR0, limit=500)["result"]
    assert len(got["list"]) == 200
    assert got["list"][0] == {"symbol": "BTCUSDT", "fundingRate": "0.0",
                              "fundingRateTimestamp": str(BAR0)}  # fmt: skip
    assert int(got["list"][-1]["fundingRateTimestamp"]) == BAR0 - 199 * eight_h


def test_instruments_page_with_a_cursor_and_prelaunch_is_empty(fake: FakeBybit) -> None:
    first = public(fake, "/v5/market/instruments-info", category="linear", limit=1)["result"]
    assert [i["symbol"] for i in first["list"]] == ["BTCUSDT"]
    btc = first["list"][0]
    assert btc["lotSizeFilter"] | btc["priceFilter"] | btc["leverageFilter"] == {
        "maxOrderQty": "1190", "maxMktOrderQty": "1190", "minOrderQty": "0.001",
        "qtyStep": "0.001", "postOnlyMaxOrderQty": "1190", "minNotionalValue": "5",
        "minPrice": "0.1", "maxPrice": "1999999.8", "tickSize": "0.1",
        "minLeverage": "1", "maxLeverage": "100", "leverageStep": "0.01",
    }  # fmt: skip
    second = public(fake, "/v5/market/instruments-info", category="linear", limit=1,
                    cursor=first["nextPageCursor"])["result"]  # fmt: skip
    assert [i["symbol"] for i in second["list"]] == ["ETHUSDT"] and second["nextPageCursor"] == ""
    pre = public(fake, "/v5/market/instruments-info", category="linear", status="PreLaunch")
    assert pre["result"]["list"] == []


# ---------------------------------------------------------------------------------- matching


def test_a_market_order_fills_at_the_next_trade(fake: FakeBybit, api: Api) -> None:
    fake.trade("BTCUSDT", 50_000.0)
    ack = api.order(side="Buy", orderType="Market", qty="0.01", orderLinkId="m1")
    assert ack["orderLinkId"] == "m1"
    assert fake.orders[ack["orderId"]]["orderStatus"] == "New" and fake.executions == []
    fake.trade("BTCUSDT", 50_010.0)
    (ex,) = fake.executions
    assert (ex["execPrice"], ex["execQty"], ex["execFee"], ex["isMaker"]) == (
        "50010", "0.01", "0.275055", False,
    )  # fmt: skip
    order = fake.orders[ack["orderId"]]
    assert (order["orderStatus"], order["cumExecQty"], order["avgPrice"]) == (
        "Filled", "0.01", "50010",
    )  # fmt: skip
    pos = fake.positions["BTCUSDT"]
    assert (pos["side"], pos["size"], pos["avgPrice"], pos["positionIM"]) == (
        "Buy", "0.01", "50010", "50.01",
    )  # fmt: skip
    assert fake.wallet["totalWalletBalance"] == "9999.724945"


def test_immediate_mode_fills_a_market_order_on_create(fake: FakeBybit, api: Api) -> None:
    fake.fill_mode = "immediate"
    fake.trade("BTCUSDT", 50_000.0)
    api.order(side="Sell", orderType="Market", qty="0.002")
    assert [(e["side"], e["execPrice"]) for e in fake.executions] == [("Sell", "50000")]
    assert fake.positions["BTCUSDT"]["side"] == "Sell"


def test_limit_orders_fill_at_their_price_when_crossed(fake: FakeBybit, api: Api) -> None:
    fake.trade("BTCUSDT", 50_000.0)
    buy = api.order(side="Buy", orderType="Limit", qty="0.01", price="49990")
    sell = api.order(side="Sell", orderType="Limit", qty="0.01", price="50100")
    fake.trade("BTCUSDT", 49_990.0)  # a touch is not a cross
    assert fake.executions == []
    fake.trade("BTCUSDT", 49_989.9)
    fake.trade("BTCUSDT", 50_100.5)
    got = [(e["orderId"], e["execPrice"], e["execFee"], e["isMaker"]) for e in fake.executions]
    assert got == [
        (buy["orderId"], "49990", "0.09998", True),
        (sell["orderId"], "50100", "0.1002", True),
    ]
    pos = fake.positions["BTCUSDT"]
    assert (pos["size"], pos["cumRealisedPnl"]) == ("0", "0.89982")  # 1.10 - both fees


def test_partial_fills_by_ratio_and_explicitly(fake: FakeBybit, api: Api) -> None:
    fake.trade("BTCUSDT", 50_000.0)
    ack = api.order(side="Buy", orderType="Limit", qty="0.1", price="49000", orderLinkId="p")
    fake.partial_fill_ratio = 0.3
    fake.trade("BTCUSDT", 48_000.0)
    order = fake.orders[ack["orderId"]]
    assert (order["orderStatus"], order["cumExecQty"], order["leavesQty"]) == (
        "PartiallyFilled", "0.03", "0.07",
    )  # fmt: skip
    fake.fill("p", 48_999.0, 0.05)
    fake.fill(ack["orderId"], 49_000.0)
    assert [e["execQty"] for e in fake.executions] == ["0.03", "0.05", "0.02"]
    assert fake.orders[ack["orderId"]]["orderStatus"] == "Filled"
    assert fake.positions["BTCUSDT"]["avgPrice"] == "48999.5"


def test_position_tp_sl_triggers_on_last_price_with_four_messages(
    fake: FakeBybit, api: Api
) -> None:
    long_position(fake, api, stopLoss="49000", takeProfit="52000")
    assert (fake.positions["BTCUSDT"]["stopLoss"], fake.positions["BTCUSDT"]["takeProfit"]) == (
        "49000", "52000",
    )  # fmt: skip

    async def go() -> list[dict[str, Any]]:
        ws = await private_ws(fake)
        fake.trade("BTCUSDT", 49_000.1)  # above the stop: nothing
        fake.trade("BTCUSDT", 48_999.5)
        msgs = await take(ws, 4)
        await nothing_more(ws)
        await ws.close()
        return msgs

    msgs = asyncio.run(go())
    assert topics(msgs) == ["execution", "order", "position", "wallet"]
    ex, order, pos, wallet = (m["data"][0] for m in msgs)
    assert all(m["creationTime"] == T0 for m in msgs)
    assert (ex["execPrice"], ex["closedSize"], ex["execPnl"], ex["execFee"]) == (
        "48999.5", "0.01", "-10.005", "0.26949725",
    )  # fmt: skip
    assert (ex["stopOrderType"], ex["createType"]) == ("StopLoss", "CreateByStopLoss")
    assert (order["orderStatus"], order["reduceOnly"], order["triggerPrice"]) == (
        "Filled", True, "49000",
    )  # fmt: skip
    assert (pos["size"], pos["side"], pos["stopLoss"]) == ("0", "", "0")
    assert wallet["totalWalletBalance"] == "9989.45050275"  # 10000 - 0.275 - 10.005 - fee


def test_a_conditional_order_triggers_on_its_direction(fake: FakeBybit, api: Api) -> None:
    fake.trade("BTCUSDT", 50_000.0)
    ack = api.order(side="Buy", orderType="Market", qty="0.01", triggerPrice="50500",
                    triggerDirection=1)  # fmt: skip
    assert fake.orders[ack["orderId"]]["orderStatus"] == "Untriggered"
    fake.trade("BTCUSDT", 50_400.0)
    assert fake.executions == []
    fake.trade("BTCUSDT", 50_600.0)
    assert [e["execPrice"] for e in fake.executions] == ["50600"]
    assert fake.orders[ack["orderId"]]["stopOrderType"] == "Stop"


def test_funding_is_booked_at_the_mark_price(fake: FakeBybit, api: Api) -> None:
    long_position(fake, api)
    fake.funding("BTCUSDT", 0.0001)
    fake.funding("BTCUSDT", -0.0002)
    got = [(e["execType"], e["execPrice"], e["execQty"], e["execFee"]) for e in fake.executions]
    assert got[1:] == [("Funding", "50000", "0.01", "0.05"), ("Funding", "50000", "0.01", "-0.1")]
    assert fake.positions["BTCUSDT"]["size"] == "0.01"
    assert fake.wallet["totalWalletBalance"] == "9999.775"  # 10000 - 0.275 - 0.05 + 0.1


def test_a_reduce_only_order_never_exceeds_the_position(fake: FakeBybit, api: Api) -> None:
    long_position(fake, api)
    ack = api.order(side="Sell", orderType="Market", qty="0.05", reduceOnly=True)
    fake.trade("BTCUSDT", 50_100.0)
    order = fake.orders[ack["orderId"]]
    assert (order["orderStatus"], order["qty"], order["cumExecQty"]) == ("Filled", "0.01", "0.01")
    assert fake.positions["BTCUSDT"]["size"] == "0"
    body = api.call("POST", "/v5/order/create", {"category": "linear", "symbol": "BTCUSDT",
                    "side": "Sell", "orderType": "Market", "qty": "0.01", "reduceOnly": True})  # fmt: skip
    assert body["retCode"] == 110017  # nothing left to reduce


@pytest.mark.parametrize(("kind", "fee"), [("BustTrade", "0.22"), ("AdlTrade", "0")])
def test_liquidation_and_adl_close_the_position(
    fake: FakeBybit, api: Api, kind: str, fee: str
) -> None:
    long_position(fake, api)
    (fake.liquidate if kind == "BustTrade" else fake.adl)("BTCUSDT", 40_000.0)
    last = fake.executions[-1]
    assert (last["execType"], last["execPrice"], last["execFee"], last["closedSize"]) == (
        kind, "40000", fee, "0.01",
    )  # fmt: skip
    assert fake.positions["BTCUSDT"]["size"] == "0"


# ---------------------------------------------------------------------------------- order rules


def test_order_filters_and_rejections(fake: FakeBybit, api: Api) -> None:
    fake.trade("BTCUSDT", 50_000.0)
    place = {"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit"}
    assert api.code("POST", "/v5/order/create", **place, qty="0.0015", price="50000") == 10001
    assert api.code("POST", "/v5/order/create", **place, qty="0.001", price="50000.05") == 10001
    assert api.code("POST", "/v5/order/create", **place, qty="2000", price="50000") == 10001
    assert api.code("POST", "/v5/order/create", **place, qty="0.01", price="50000",
                    positionIdx=1) == 10001  # fmt: skip
    assert api.code("POST", "/v5/order/create", **place, qty="0.001", price="1000") == 110094
    assert api.code("POST", "/v5/order/create", **place, qty="3", price="50000") == 110007
    assert api.code("POST", "/v5/order/create", **place, qty="0.01", price="50000",
                    triggerPrice="51000", triggerDirection="up") == 10001  # fmt: skip
    fake.reject_next_order(110007)
    body = api.call("POST", "/v5/order/create",
                    {"category": "linear", **place, "qty": "0.01", "price": "50000"})  # fmt: skip
    assert (body["retCode"], body["retMsg"]) == (110007, "ab not enough for new order")
    fake.reject_next_order(110090)
    body = api.call("POST", "/v5/order/create",
                    {"category": "linear", **place, "qty": "0.01", "price": "50000"})  # fmt: skip
    assert body["retCode"] == 110090 and "max. position limit" in body["retMsg"]
    api.order(side="Buy", orderType="Limit", qty="0.01", price="49000", orderLinkId="dup")
    body = api.call("POST", "/v5/order/create",
                    {"category": "linear", **place, "qty": "0.01", "price": "49000",
                     "orderLinkId": "dup"})  # fmt: skip
    assert (body["retCode"], body["retMsg"]) == (110072, "OrderLinkedID is duplicate")
    assert len(fake.orders) == 1


def test_amend_cancel_and_queries(fake: FakeBybit, api: Api) -> None:
    fake.trade("BTCUSDT", 50_000.0)
    ids = [
        api.order(side="Buy", orderType="Limit", qty="0.01", price=str(49_000 + k),
                  orderLinkId=f"L{k}")["orderId"]
        for k in range(3)
    ]  # fmt: skip
    api.ok("POST", "/v5/order/amend", symbol="BTCUSDT", orderLinkId="L0", price="48000")
    assert fake.orders[ids[0]]["price"] == "48000"
    api.ok("POST", "/v5/order/cancel", symbol="BTCUSDT", orderId=ids[1])
    assert api.code("POST", "/v5/order/cancel", symbol="BTCUSDT", orderId=ids[1]) == 110001
    assert api.code("POST", "/v5/order/amend", symbol="BTCUSDT", orderId=ids[1], qty="1") == 110001
    open_ = api.ok("GET", "/v5/order/realtime", symbol="BTCUSDT", limit=1)
    assert [o["orderLinkId"] for o in open_["list"]] == ["L2"]  # newest first
    nxt = api.ok("GET", "/v5/order/realtime", symbol="BTCUSDT", limit=1,
                 cursor=open_["nextPageCursor"])  # fmt: skip
    assert [o["orderLinkId"] for o in nxt["list"]] == ["L0"] and nxt["nextPageCursor"] == ""
    by_link = api.ok("GET", "/v5/order/realtime", symbol="BTCUSDT", orderLinkId="L1")
    assert [o["orderStatus"] for o in by_link["list"]] == ["Cancelled"]
    assert api.code("GET", "/v5/order/realtime") == 10001  # linear needs a symbol or a coin
    done = api.ok("POST", "/v5/order/cancel-all", symbol="BTCUSDT")
    assert sorted(d["orderLinkId"] for d in done["list"]) == ["L0", "L2"]
    history = api.ok("GET", "/v5/order/history", symbol="BTCUSDT")
    assert [o["orderStatus"] for o in history["list"]] == ["Cancelled"] * 3


def test_execution_list_pages_newest_first_within_its_window(fake: FakeBybit, api: Api) -> None:
    fake.trade("BTCUSDT", 50_000.0)
    for k in range(3):
        api.order(side="Buy", orderType="Market", qty="0.001")
        fake.advance(1000)
        fake.trade("BTCUSDT", 50_000.0 + k)
    first = api.ok("GET", "/v5/execution/list", symbol="BTCUSDT", limit=2)
    assert [e["execPrice"] for e in first["list"]] == ["50002", "50001"]
    rest = api.ok("GET", "/v5/execution/list", symbol="BTCUSDT", limit=2,
                  cursor=first["nextPageCursor"])  # fmt: skip
    assert [e["execPrice"] for e in rest["list"]] == ["50000"]
    since = api.ok("GET", "/v5/execution/list", symbol="BTCUSDT", startTime=T0 + 2000)
    assert [e["execPrice"] for e in since["list"]] == ["50002", "50001"]
    week = 7 * 86_400_000
    assert api.code("GET", "/v5/execution/list", startTime=T0 - week - 1, endTime=T0) == 10001


def test_position_settings_and_their_not_modified_codes(fake: FakeBybit, api: Api) -> None:
    lev = {"symbol": "BTCUSDT", "buyLeverage": "10", "sellLeverage": "10"}
    assert api.code("POST", "/v5/position/set-leverage", **lev) == 110043
    assert api.code("POST", "/v5/position/set-leverage", **lev | {"buyLeverage": "5"}) == 10001
    too_high = lev | {"buyLeverage": "101", "sellLeverage": "101"}
    assert api.code("POST", "/v5/position/set-leverage", **too_high) == 10001
    mode = {"setMarginMode": "REGULAR_MARGIN"}
    assert api.code("POST", "/v5/account/set-margin-mode", **mode) == 110026
    assert api.ok("POST", "/v5/account/set-margin-mode", setMarginMode="ISOLATED_MARGIN") == {
        "reasons": []
    }
    assert api.ok("GET", "/v5/account/info")["marginMode"] == "ISOLATED_MARGIN"
    assert api.code("POST", "/v5/position/switch-mode", symbol="BTCUSDT", mode=0) == 110025
    assert api.code("POST", "/v5/position/switch-isolated", symbol="BTCUSDT", tradeMode=1) != 0
    assert api.code("GET", "/v5/position/list") == 10001
    flat = api.ok("GET", "/v5/position/list", symbol="BTCUSDT")["list"]
    assert [(p["symbol"], p["size"], p["side"]) for p in flat] == [("BTCUSDT", "0", "")]
    assert api.ok("GET", "/v5/position/list", settleCoin="USDT")["list"] == []
    stop = {"symbol": "BTCUSDT", "tpslMode": "Full", "positionIdx": 0, "stopLoss": "49000"}
    assert api.code("POST", "/v5/position/trading-stop", **stop) == 10001  # flat
    long_position(fake, api)
    assert api.code("POST", "/v5/position/trading-stop", **stop | {"tpslMode": ""}) == 10001
    api.ok("POST", "/v5/position/trading-stop", **stop)
    assert api.code("POST", "/v5/position/trading-stop", **stop) == 34040
    assert api.code("POST", "/v5/position/trading-stop", **stop | {"stopLoss": "51000"}) == 10001
    assert fake.positions["BTCUSDT"]["stopLoss"] == "49000"


def test_preloaded_state_is_what_rest_shows(fake: FakeBybit, api: Api) -> None:
    fake.preload(
        positions=[{"symbol": "BTCUSDT", "side": "Sell", "size": "0.02", "avgPrice": "60000",
                    "stopLoss": "61000"}],
        orders=[{"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.02",
                 "price": "55000", "orderLinkId": "old-1"}],
        executions=[{"symbol": "BTCUSDT", "side": "Sell", "execPrice": "60000",
                     "execQty": "0.02", "orderLinkId": "old-0"}],
    )  # fmt: skip
    pos = api.ok("GET", "/v5/position/list", settleCoin="USDT")["list"]
    assert [(p["side"], p["size"], p["avgPrice"], p["stopLoss"]) for p in pos] == [
        ("Sell", "0.02", "60000", "61000")
    ]
    orders = api.ok("GET", "/v5/order/realtime", symbol="BTCUSDT")["list"]
    assert [(o["orderLinkId"], o["orderStatus"]) for o in orders] == [("old-1", "New")]
    execs = api.ok("GET", "/v5/execution/list", symbol="BTCUSDT")["list"]
    assert [(e["orderLinkId"], e["execValue"]) for e in execs] == [("old-0", "1200")]
    fake.trade("BTCUSDT", 61_000.0)  # the preloaded stop still protects the short
    assert fake.positions["BTCUSDT"]["size"] == "0"


# ---------------------------------------------------------------------------------- WebSocket


def test_ws_ping_pong_in_both_formats(fake: FakeBybit) -> None:
    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with (
            websockets.connect(fake.ws_public_url) as pub,
            websockets.connect(fake.ws_private_url) as priv,
        ):
            await pub.send(json.dumps({"op": "ping", "req_id": "p1"}))
            await priv.send(json.dumps({"op": "ping", "req_id": "p2"}))
            return await recv(pub), await recv(priv)

    pub, priv = asyncio.run(go())
    assert pub == {"success": True, "ret_msg": "pong", "conn_id": pub["conn_id"], "req_id": "p1",
                   "op": "ping"}  # fmt: skip
    assert priv == {"req_id": "p2", "op": "pong", "args": [str(T0)], "conn_id": priv["conn_id"]}
    assert sorted(fake.ws_received, key=lambda m: m["stream"]) == [
        {"stream": "private", "op": "ping", "req_id": "p2"},
        {"stream": "public", "op": "ping", "req_id": "p1"},
    ]


def test_private_topics_need_auth_first(fake: FakeBybit) -> None:
    async def go() -> list[dict[str, Any]]:
        async with websockets.connect(fake.ws_private_url) as ws:
            out = []
            for msg in (
                {"op": "subscribe", "args": ["order"]},
                {"op": "auth", "args": auth_args(fake, secret="wrong")},
                {"op": "auth", "args": auth_args(fake, expires=T0)},  # expired
                {"op": "auth", "args": [*auth_args(fake)[:2], "é" * 64]},
                {"op": "auth", "args": auth_args(fake)},
                {"op": "subscribe", "args": ["order", "orderbook.1.BTCUSDT"]},
                {"op": "subscribe", "args": PRIVATE},
            ):
                await ws.send(json.dumps(msg))
                out.append(await recv(ws))
            assert fake.connections == [
                {"id": out[0]["conn_id"], "stream": "private", "authed": True,
                 "topics": sorted(PRIVATE)}
            ]  # fmt: skip
            return out

    replies = asyncio.run(go())
    assert [(r["op"], r["success"]) for r in replies] == [
        ("subscribe", False), ("auth", False), ("auth", False), ("auth", False), ("auth", True),
        ("subscribe", False), ("subscribe", True),
    ]  # fmt: skip
    assert replies[0]["ret_msg"] == "Request not authorized"
    assert replies[5]["ret_msg"] == "error:handler not found,topic:orderbook.1.BTCUSDT"
    assert fake.connects == {"public": 0, "private": 1}


def test_public_topics_push_klines_tickers_and_trades(fake: FakeBybit) -> None:
    async def go() -> list[dict[str, Any]]:
        async with websockets.connect(fake.ws_public_url) as ws:
            args = ["kline.1.BTCUSDT", "tickers.BTCUSDT", "publicTrade.BTCUSDT", "kline.2.BTCUSDT"]
            await ws.send(json.dumps({"op": "subscribe", "req_id": "a", "args": args}))
            out = await take(ws, 2)  # the ack and the tickers snapshot
            fake.kline("BTCUSDT", "1", BAR0, 1, 2, 0.5, 1.5, 10, False)
            fake.kline("BTCUSDT", "1", BAR0, 1, 2, 0.5, 1.75, 12, True)
            fake.trade("BTCUSDT", 50_000.0, 0.5, "Sell")
            out += await take(ws, 4)
            await ws.send(json.dumps({"op": "unsubscribe", "args": ["publicTrade.BTCUSDT"]}))
            out.append(await recv(ws))
            fake.trade("BTCUSDT", 50_001.0)
            out.append(await recv(ws))  # only the tickers delta now
            await nothing_more(ws)
            return out

    ack, snap, k1, k2, trade, delta, unsub, delta2 = asyncio.run(go())
    assert (ack["success"], ack["ret_msg"]) == (
        False,
        "error:handler not found,topic:kline.2.BTCUSDT",
    )
    assert (snap["topic"], snap["type"], snap["data"]["symbol"]) == (
        "tickers.BTCUSDT", "snapshot", "BTCUSDT",
    )  # fmt: skip
    assert k1["data"] == [{"start": BAR0, "end": BAR0 + 59_999, "interval": "1", "open": "1.0",
                           "close": "1.5", "high": "2.0", "low": "0.5", "volume": "10.0",
                           "turnover": "15.0", "confirm": False, "timestamp": T0}]  # fmt: skip
    assert (k2["data"][0]["close"], k2["data"][0]["confirm"]) == ("1.75", True)
    latest = public(fake, "/v5/market/kline", symbol="BTCUSDT", interval="1")["result"]["list"]
    assert latest == [[str(BAR0), "1.0", "2.0", "0.5", "1.75", "12.0", "21.0"]]
    assert trade["topic"] == "publicTrade.BTCUSDT"
    assert {k: trade["data"][0][k] for k in ("T", "s", "S", "v", "p")} == {
        "T": T0, "s": "BTCUSDT", "S": "Sell", "v": "0.5", "p": "50000",
    }  # fmt: skip
    assert (delta["type"], delta["data"]["lastPrice"], delta["data"]["markPrice"]) == (
        "delta", "50000", "50000",
    )  # fmt: skip
    assert unsub["success"] is True
    assert (delta2["topic"], delta2["data"]["lastPrice"]) == ("tickers.BTCUSDT", "50001")


def test_drop_all_ws_aborts_or_closes_with_a_code(fake: FakeBybit) -> None:
    async def go(code: int) -> int | None:
        ws = await websockets.connect(fake.ws_public_url)
        await ws.send(json.dumps({"op": "ping"}))
        await recv(ws)
        fake.drop_all_ws(code)
        with pytest.raises(websockets.ConnectionClosed) as info:
            await recv(ws)
        return None if info.value.rcvd is None else info.value.rcvd.code

    assert asyncio.run(go(1006)) is None  # no close frame at all
    assert asyncio.run(go(1011)) == 1011
    assert fake.connections == [] and fake.connects == {"public": 2, "private": 0}


def test_stall_ws_leaves_a_half_open_socket(fake: FakeBybit) -> None:
    async def go() -> None:
        async with websockets.connect(fake.ws_public_url) as ws:
            await ws.send(json.dumps({"op": "subscribe", "args": ["publicTrade.BTCUSDT"]}))
            await recv(ws)
            fake.stall_ws(60)  # longer than the checks below take on a loaded machine
            await ws.send(json.dumps({"op": "ping"}))
            fake.trade("BTCUSDT", 50_000.0)
            await nothing_more(ws, 0.3)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(await ws.ping(), 0.1)  # no frame-level pong either
            assert len(fake.connections) == 1  # still open
            fake.stall_ws(0)  # over
            await ws.send(json.dumps({"op": "ping", "req_id": "after"}))
            assert (await recv(ws))["req_id"] == "after"

    asyncio.run(go())


def fill_messages(fake: FakeBybit, api: Api, n: int, wait: float = 0.2) -> list[dict[str, Any]]:
    """The private messages of one market order (order and position pushes) and its fill."""

    async def go() -> list[dict[str, Any]]:
        ws = await private_ws(fake)
        fake.trade("BTCUSDT", 50_000.0)
        await asyncio.to_thread(api.order, side="Buy", orderType="Market", qty="0.01")
        fake.trade("BTCUSDT", 50_000.0)
        msgs = await take(ws, n)
        await nothing_more(ws, wait)
        await ws.close()
        return msgs

    return asyncio.run(go())


def test_private_delivery_as_configured(fake: FakeBybit, api: Api) -> None:
    assert topics(fill_messages(fake, api, 6)) == [
        "order", "position", "execution", "order", "position", "wallet",
    ]  # fmt: skip


def test_duplicated_executions(fake: FakeBybit, api: Api) -> None:
    fake.dup_exec = True
    msgs = fill_messages(fake, api, 7)
    assert topics(msgs)[2:4] == ["execution", "execution"] and msgs[2] == msgs[3]


def test_reordered_private_messages(fake: FakeBybit, api: Api) -> None:
    fake.reorder_private = True
    assert topics(fill_messages(fake, api, 6)) == [
        "position", "order", "position", "order", "execution", "wallet",
    ]  # fmt: skip


def test_a_lost_execution_is_still_on_rest(fake: FakeBybit, api: Api) -> None:
    fake.drop_next("execution")
    assert topics(fill_messages(fake, api, 5)) == [
        "order",
        "position",
        "order",
        "position",
        "wallet",
    ]
    assert len(api.ok("GET", "/v5/execution/list", symbol="BTCUSDT")["list"]) == 1


def test_a_delayed_topic_arrives_late(fake: FakeBybit, api: Api) -> None:
    fake.delay_topic["execution"] = 0.3
    msgs = fill_messages(fake, api, 6, wait=0.5)
    assert topics(msgs) == ["order", "position", "order", "position", "wallet", "execution"]


def test_a_cancel_racing_a_fill_gives_two_filled_messages(fake: FakeBybit, api: Api) -> None:
    async def go() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        ws = await private_ws(fake, ["order"])
        fake.trade("BTCUSDT", 50_000.0)
        ack = await asyncio.to_thread(
            api.order, side="Buy", orderType="Limit", qty="0.01", price="49000", orderLinkId="r"
        )
        await recv(ws)  # New
        fake.double_filled_on_cancel = True
        body = await asyncio.to_thread(
            api.call, "POST", "/v5/order/cancel",
            {"category": "linear", "symbol": "BTCUSDT", "orderId": ack["orderId"]},
        )  # fmt: skip
        msgs = await take(ws, 2)
        await ws.close()
        return body, msgs

    body, (first, second) = asyncio.run(go())
    assert body["retCode"] == 110001
    a, b = first["data"][0], second["data"][0]
    assert (a["orderStatus"], a["cancelType"]) == ("Filled", "UNKNOWN")
    assert (b["orderStatus"], b["cancelType"], b["rejectReason"]) == (
        "Filled", "CancelByUser", "EC_OrigClOrdIDDoesNotExist",
    )  # fmt: skip
    assert fake.positions["BTCUSDT"]["size"] == "0.01"


# ---------------------------------------------------------------------------------- REST faults


def test_unknown_after_apply_leaves_exactly_one_order(fake: FakeBybit, api: Api) -> None:
    fake.trade("BTCUSDT", 50_000.0)
    fake.inject("unknown_after_apply", path="/v5/order/create")
    api.ok("GET", "/v5/account/info")  # another path does not consume it
    order = {"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.01",
             "price": "49000", "orderLinkId": "once"}  # fmt: skip
    assert api.code("POST", "/v5/order/create", **order) == 10016
    found = api.ok("GET", "/v5/order/realtime", symbol="BTCUSDT", orderLinkId="once")["list"]
    assert [o["orderStatus"] for o in found] == ["New"]
    assert api.code("POST", "/v5/order/create", **order) == 110072
    fake.inject("unknown")
    assert api.code("POST", "/v5/order/create", **order | {"orderLinkId": "never"}) == 10016
    assert [o["orderLinkId"] for o in fake.orders.values()] == ["once"]


def test_timeouts_before_and_after_apply(fake: FakeBybit, api: Api) -> None:
    fake.trade("BTCUSDT", 50_000.0)
    fake.timeout_seconds = 0.4
    api.http.timeout = httpx.Timeout(0.15)
    order = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
             "qty": "0.01", "price": "49000"}  # fmt: skip
    fake.inject("timeout")
    with pytest.raises(httpx.ReadTimeout):
        api.post("/v5/order/create", order | {"orderLinkId": "t1"})
    fake.inject("timeout_after_apply")
    with pytest.raises(httpx.ReadTimeout):
        api.post("/v5/order/create", order | {"orderLinkId": "t2"})
    assert [o["orderLinkId"] for o in fake.orders.values()] == ["t2"]


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("http403", 403, None), ("http429", 429, None), ("http500", 500, None),
     ("http502", 502, None), ("clock", 200, 10002), ("maintenance", 200, 10016)],
)  # fmt: skip
def test_one_shot_faults(
    fake: FakeBybit, api: Api, fault: str, status: int, code: int | None
) -> None:
    fake.inject(fault)
    r = api.get("/v5/account/info", {})
    assert r.status_code == status
    if code is not None:
        assert r.json()["retCode"] == code
    assert api.get("/v5/account/info", {}).json()["retCode"] == 0  # consumed once


def test_rate_limit_fault_says_when_the_window_resets(fake: FakeBybit, api: Api) -> None:
    fake.rate_limit_reset_ms = 700
    fake.inject("ratelimit", times=2)
    for _ in range(2):
        r = api.get("/v5/account/info", {})
        assert r.json()["retCode"] == 10006
        assert r.headers["X-Bapi-Limit-Reset-Timestamp"] == str(T0 + 700)
        assert r.headers["X-Bapi-Limit-Status"] == "0"
    assert api.get("/v5/account/info", {}).json()["retCode"] == 0


def test_a_dropped_connection_is_unanswered(fake: FakeBybit) -> None:
    fake.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(fake.rest_url + "/v5/market/time", timeout=2.0)
    assert len(fake.requests) == 1


def test_maintenance_refuses_rest_and_ws_until_the_clock_passes(fake: FakeBybit, api: Api) -> None:
    fake.maintenance(30)
    assert public(fake, "/v5/market/time")["retCode"] == 10016
    assert api.get("/v5/account/info", {}).json()["retCode"] == 10016

    async def connect() -> None:
        async with websockets.connect(fake.ws_public_url):
            pass

    with pytest.raises(websockets.InvalidStatus) as info:
        asyncio.run(connect())
    assert info.value.response.status_code == 503
    fake.advance(30_000)
    assert api.get("/v5/account/info", {}).json()["retCode"] == 0
    asyncio.run(connect())
    assert fake.connects["public"] == 1
