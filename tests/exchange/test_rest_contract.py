"""Every REST endpoint the client uses, against the fake exchange: what is sent (signed, in the
order Bybit expects) and what comes back (parsed, paginated, oldest first)."""

from __future__ import annotations

import time

import pytest

from fakes.bybit import FakeBybit
from trade.exchange.bybit import Credentials, OrderNotFound, Rejected
from trade.timeframes import tf_ms

from .conftest import buy, client, run

T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC
MIN = 60_000


def bars(n: int, start: int = T0, step: int = MIN, price: float = 100.0) -> list[list[float]]:
    return [
        [
            start + i * step,
            price + i,
            price + i + 2,
            price + i - 1,
            price + i + 1,
            10.0 + i,
            (10.0 + i) * (price + i),
        ]
        for i in range(n)
    ]


def test_server_time_and_clock_offset(fake: FakeBybit, creds: Credentials) -> None:
    fake.set_time(T0)

    async def go() -> tuple[int, int]:
        async with client(fake, creds) as c:
            return await c.server_time(), await c.sync_time()

    before = time.time() * 1000
    server, offset = run(go())
    after = time.time() * 1000
    assert server == T0
    # the offset turns the local clock into the exchange's (frozen at T0 here): the sync's
    # midpoint lies between the two readings around it, however long the round trip took
    assert T0 - after - 1 <= offset <= T0 - before + 1  # ± the 1 ms int() may cut


def test_klines_oldest_first_and_the_open_bar_never_closed(fake: FakeBybit) -> None:
    rows = bars(1500)
    fake.load_klines("BTCUSDT", "1", rows)
    fake.set_time(T0 + 1499 * MIN + 30_000)  # the last bar is still open

    async def go():  # type: ignore[no-untyped-def]
        async with client(fake, None) as c:
            await c.sync_time()
            page = await c.klines("BTCUSDT", "1m", T0, T0 + 1499 * MIN)
            head = await c.klines("BTCUSDT", "1m", T0, T0 + 9 * MIN)
            return page, head

    page, head = run(go())
    # start+end spanning more than 1000 bars: Bybit's newest 1000, returned oldest first
    assert [k.start for k in page] == [r[0] for r in rows[500:]]
    assert [k.confirm for k in page[-2:]] == [True, False]
    assert all(k.confirm for k in page[:-1])
    assert [k.start for k in head] == [r[0] for r in rows[:10]]
    k = head[3]
    assert (k.open, k.high, k.low, k.close, k.volume) == tuple(rows[3][1:6])
    q = [r for r in fake.requests if r.path == "/v5/market/kline"][-1]
    assert "interval=1&" in q.raw_query and "limit=1000" in q.raw_query


def test_mark_klines_and_funding(fake: FakeBybit) -> None:
    fake.load_mark_klines("BTCUSDT", "1", [r[:5] for r in bars(5)])
    fake.load_funding("BTCUSDT", [[T0 + i * 8 * 3_600_000, 0.0001 * (i + 1)] for i in range(5)])
    fake.set_time(T0 + 10 * 86_400_000)

    async def go():  # type: ignore[no-untyped-def]
        async with client(fake, None) as c:
            await c.sync_time()
            return (
                await c.klines("BTCUSDT", "1m", T0, T0 + 4 * MIN, mark=True),
                await c.funding("BTCUSDT", T0, T0 + 3 * 8 * 3_600_000),
            )

    mark, funding = run(go())
    assert [(k.start, k.close, k.volume) for k in mark] == [(r[0], r[4], 0.0) for r in bars(5)]
    assert funding == [(T0 + i * 8 * 3_600_000, pytest.approx(0.0001 * (i + 1))) for i in range(4)]


def test_instruments_and_ticker(fake: FakeBybit) -> None:
    fake.trade("BTCUSDT", 97_000.5)

    async def go():  # type: ignore[no-untyped-def]
        async with client(fake, None) as c:
            return await c.instruments(), await c.instrument("ETHUSDT"), await c.ticker("BTCUSDT")

    every, eth, ticker = run(go())
    assert {"BTCUSDT", "ETHUSDT"} <= {i["symbol"] for i in every}
    assert eth["symbol"] == "ETHUSDT" and "tickSize" in eth["priceFilter"]
    assert float(ticker["lastPrice"]) == 97_000.5


def test_account_endpoints_and_benign_not_modified(fake: FakeBybit, creds: Credentials) -> None:
    async def go():  # type: ignore[no-untyped-def]
        async with client(fake, creds) as c:
            info = await c.account_info()
            wallet = await c.wallet()
            flat = await c.positions("BTCUSDT")
            for _ in range(2):  # the second answer is "not modified": success
                await c.set_leverage("BTCUSDT", 3)
                await c.set_margin_mode("ISOLATED_MARGIN")
                await c.set_position_mode("BTCUSDT")
            return info, wallet, flat

    info, wallet, flat = run(go())
    assert str(info["unifiedMarginStatus"]) in {"5", "6"}
    assert wallet.equity == wallet.wallet_balance > 0
    assert len(flat) == 1 and flat[0].size == 0 and flat[0].side == ""
    assert sum(r.path == "/v5/position/set-leverage" for r in fake.requests) == 2
    assert all(
        r.signed_ok for r in fake.requests if r.path.startswith(("/v5/position", "/v5/account"))
    )


def test_market_entry_with_stop_then_trading_stop_and_executions(
    fake: FakeBybit, creds: Credentials
) -> None:
    fake.trade("BTCUSDT", 100_000)

    async def go():  # type: ignore[no-untyped-def]
        async with client(fake, creds) as c:
            await c.set_leverage("BTCUSDT", 5)
            ack = await c.place_order(
                {
                    "symbol": "BTCUSDT",
                    "side": "Buy",
                    "orderType": "Market",
                    "qty": "0.01",
                    "orderLinkId": "t1-entry",
                    "stopLoss": "98000",
                    "slTriggerBy": "LastPrice",
                }
            )
            fake.trade("BTCUSDT", 100_050)  # the market order fills at the next trade
            pos = (await c.positions("BTCUSDT"))[0]
            await c.trading_stop("BTCUSDT", stop_loss=99_000, take_profit=103_000)
            await c.trading_stop("BTCUSDT", stop_loss=99_000, take_profit=103_000)  # 34040: ok
            moved = (await c.positions("BTCUSDT"))[0]
            order = await c.find_order("BTCUSDT", "t1-entry")
            fills = await c.executions("BTCUSDT")
            return ack, pos, moved, order, fills

    ack, pos, moved, order, fills = run(go())
    assert ack.order_link_id == "t1-entry" and ack.order_id
    assert (pos.side, pos.size, pos.avg_price, pos.stop_loss) == ("Buy", 0.01, 100_050, 98_000)
    assert (moved.stop_loss, moved.take_profit) == (99_000, 103_000)
    assert order is not None and order.status == "Filled" and order.cum_exec_qty == 0.01
    assert [(e.order_link_id, e.price, e.qty, e.exec_type) for e in fills] == [
        ("t1-entry", 100_050, 0.01, "Trade")
    ]
    assert fills[0].fee == pytest.approx(0.01 * 100_050 * 0.00055)
    body = next(r for r in fake.requests if r.path == "/v5/order/create").json()
    assert body["category"] == "linear" and body["positionIdx"] == 0


def test_limit_orders_amend_cancel_cancel_all_and_pagination(
    fake: FakeBybit, creds: Credentials
) -> None:
    fake.trade("ETHUSDT", 3_000)
    links = [f"lim-{i:03d}" for i in range(60)]  # more than one 50-order page

    async def go():  # type: ignore[no-untyped-def]
        async with client(fake, creds) as c:
            for i, link in enumerate(links):
                await c.create_order(
                    {
                        "symbol": "ETHUSDT",
                        "side": "Buy",
                        "orderType": "Limit",
                        "qty": "0.01",
                        "price": f"{2000 + i}",
                        "orderLinkId": link,
                    }
                )
            open_all = await c.open_orders("ETHUSDT")
            await c.amend_order("ETHUSDT", "lim-000", price=1_500)
            one = await c.open_orders("ETHUSDT", orderLinkId="lim-000")
            await c.cancel_order("ETHUSDT", "lim-001")
            with pytest.raises(OrderNotFound) as gone:
                await c.cancel_order("ETHUSDT", "lim-001")
            cancelled = await c.cancel_all("ETHUSDT")
            left = await c.open_orders("ETHUSDT")
            history = await c.order_history("ETHUSDT")
            return open_all, one, gone.value, cancelled, left, history

    open_all, one, gone, cancelled, left, history = run(go())
    assert sorted(o.order_link_id for o in open_all) == links
    assert len([r for r in fake.requests if r.path == "/v5/order/realtime"]) >= 2
    assert one[0].price == 1_500 and one[0].status == "New"
    assert gone.code == 110001
    assert len(cancelled) == 59 and left == []
    assert {o.status for o in history} == {"Cancelled"} and len(history) == 60


def test_rejections_carry_bybits_code_and_leave_nothing(
    fake: FakeBybit, creds: Credentials
) -> None:
    fake.trade("BTCUSDT", 100_000)
    fake.reject_next_order(110007)

    async def go():  # type: ignore[no-untyped-def]
        async with client(fake, creds) as c:
            with pytest.raises(Rejected) as margin:
                await c.place_order(buy("rej-1"))
            with pytest.raises(Rejected) as tiny:
                await c.place_order(buy("rej-2", "0.001", "1000"))
            return margin.value, tiny.value, await c.positions("BTCUSDT")

    margin, tiny, pos = run(go())
    assert margin.code == 110007 and "110007" in str(margin)
    assert tiny.code == 110094
    assert pos[0].size == 0 and fake.orders == {}


def test_closed_pnl_after_a_round_trip(fake: FakeBybit, creds: Credentials) -> None:
    fake.fill_mode = "immediate"
    fake.trade("BTCUSDT", 100_000)

    async def go():  # type: ignore[no-untyped-def]
        async with client(fake, creds) as c:
            for link, side in (("rt-open", "Buy"), ("rt-close", "Sell")):
                body = {
                    "symbol": "BTCUSDT",
                    "side": side,
                    "orderType": "Market",
                    "qty": "0.01",
                    "orderLinkId": link,
                }
                if side == "Sell":
                    body["reduceOnly"] = True
                    fake.trade("BTCUSDT", 101_000)
                await c.place_order(body)
            now = c.now_ms() if c.offset_ms else fake.clock.now_ms()
            return await c.closed_pnl("BTCUSDT", now - 86_400_000, now + 60_000)

    rows = run(go())
    assert len(rows) == 1 and float(rows[0]["closedPnl"]) == pytest.approx(
        10 - 0.01 * (100_000 + 101_000) * 0.00055, abs=1e-6
    )


def test_interval_names(fake: FakeBybit) -> None:
    from trade.exchange.bybit import interval_of

    assert [interval_of(t) for t in ("1m", "5m", "15m", "1h", "4h", "D")] == [
        "1",
        "5",
        "15",
        "60",
        "240",
        "D",
    ]
    assert tf_ms("15m") == 15 * MIN
