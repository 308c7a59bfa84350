"""The Bybit order manager against the fake exchange, one fault per test: each drives the broker
through the runner's calls and asserts the position, the orders on the fake and the journal."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from fakes.bybit import FakeBybit
from trade.engine.decide import Decision
from trade.errors import ExchangeError
from trade.exchange.bybit import BybitRest, Credentials, Kline
from trade.exchange.bybit import rest as rest_module
from trade.live.broker import DecisionContext
from trade.live.bybit_broker import TIMER_S, BybitBroker, ForeignState
from trade.live.orders import link_id
from trade.live.session import SessionRecord
from trade.play import validate_play_text

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC: an exec close of every timeframe
M, M15 = 60_000, 900_000
SYM = "BTCUSDT"
SESSION = "broker-test"

PLAY = """version: "1"
name: live_broker
symbol: BTCUSDT
timeframes: {low_tf: 15m, exec: low_tf}
account: {starting_equity: 10000, leverage: 2}
actions:
  entry_long: [[close, ">", 0]]
risk:
  stop_loss: {type: percent, value: 2}
  take_profit: {type: percent, value: 4}
  sizing: {model: percent_equity, value: 10}
"""
LIMIT_PLAY = PLAY + "entry: {order_type: limit, limit_offset_pct: 0.2, expire_after_bars: 2}\n"
TRAIL_PLAY = """version: "1"
name: live_trail
symbol: BTCUSDT
timeframes: {low_tf: 15m, exec: low_tf}
account: {starting_equity: 10000, leverage: 2}
actions:
  entry_long: [[close, ">", 0]]
risk:
  stop_loss: {type: percent, value: 2}
  trailing: {type: percent, value: 1, activation_pct: 1.0}
  break_even: {trigger: {type: rr_ratio, value: 1}, offset_pct: 0.1}
  sizing: {model: percent_equity, value: 10}
"""
LONG = [Decision("entry", "long", block="entries")]


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as server:
        server.set_time(T0 + 1_000, speed=1.0)  # the session's first minute, in real time
        server.trade(SYM, 50_000.0)
        yield server
    rest_module._ip_paused_until.clear()


@asynccontextmanager
async def session(
    fake: FakeBybit, tmp_path: Path, play: str = PLAY, start: bool = True
) -> AsyncIterator[tuple[BybitBroker, SessionRecord]]:
    creds = Credentials("demo", fake.api_key, fake.api_secret)
    record = SessionRecord(tmp_path / "session.sqlite")
    async with BybitRest(
        fake.rest_url, environment="demo", credentials=creds, backoff=0.01, timeout=2.0
    ) as rest:
        broker = BybitBroker(
            rest, fake.ws_private_url, creds, validate_play_text(play), SYM, record, SESSION,
            "demo", stream_options={"backoff": 0.05},
        )  # fmt: skip
        try:
            if start:
                await broker.start(T0)
            yield broker, record
        finally:
            await broker.stop() if start else None
            record.close()


def ctx(close: float = 50_000.0) -> DecisionContext:
    return DecisionContext(series_value=lambda s: math.nan, exec_close=close)


async def until(cond: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Until `cond()` holds: what it waits for takes milliseconds, or seconds on a loaded machine."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def kinds(record: SessionRecord) -> list[str]:
    return [j["kind"] for j in record.journal_rows()]


def journal(record: SessionRecord, kind: str) -> list[dict[str, Any]]:
    return [j for j in record.journal_rows() if j["kind"] == kind]


def bar(start: int, o: float, h: float, lo: float, c: float) -> Kline:
    return Kline(start, o, h, lo, c, 1.0, c, True)


async def enter_long(broker: BybitBroker, fake: FakeBybit, fill: float = 50_100.0) -> None:
    """A market long decided at T0 and filled at `fill` by the next trade."""
    await broker.before_instant(T0)
    await broker.execute(T0, LONG, ctx())
    fake.trade(SYM, fill)
    await broker.before_instant(T0 + M15)


ENTRY = link_id(SESSION, T0, 0, "entry")


def test_market_entry_carries_stop_and_target_then_levels_rebase_to_the_fill(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            await broker.before_instant(T0)
            await broker.execute(T0, LONG, ctx())
            (order,) = fake.orders.values()
            # 10% of 10,000 USDT at 2x = 2,000 USDT at the last price 50,000: 0.04 BTC; stop and
            # target 2% and 4% from that price, on the whole position, by the last price
            assert (order["orderLinkId"], order["orderType"], order["side"], order["qty"]) == (
                ENTRY, "Market", "Buy", "0.04",
            )  # fmt: skip
            assert (order["stopLoss"], order["takeProfit"], order["tpslMode"]) == (
                "49000", "52000", "Full",
            )  # fmt: skip
            assert (order["slTriggerBy"], order["tpTriggerBy"]) == ("LastPrice", "LastPrice")
            assert broker.entry_pending() and broker.side() == "flat"
            fake.trade(SYM, 50_100.0)
            await broker.before_instant(T0 + M15)
            pos = fake.positions[SYM]
            # the simulator's levels for a fill at 50,100: 50,100 × (1 ∓ 2% / 4%)
            assert (pos["size"], pos["avgPrice"], pos["stopLoss"], pos["takeProfit"]) == (
                "0.04", "50100", "49098", "52104",
            )  # fmt: skip
            assert broker.side() == "long" and not broker.entry_pending()
            view = broker.view()
            assert (view.qty, view.entry_price, view.stop, view.target) == (
                0.04, 50_100.0, 49_098.0, 52_104.0,
            )  # fmt: skip
            (rebase,) = [j for j in journal(record, "stop") if "re-based" in j["message"]]
            # with the levels a resume restores
            assert rebase["data"] == {
                "sl": 49_098.0, "tp": 52_104.0,
                "prot": {"link": ENTRY, "basis": 50_100.0, "sl": 49_098.0, "tp": 52_104.0,
                         "kind": "stop_loss", "moved": False},
            }  # fmt: skip
            (row,) = record.order_rows()
            assert (row["link_id"], row["status"]) == (ENTRY, "Filled")
            assert len(record.fill_rows()) == 1

    asyncio.run(go())


def test_take_profit_filled_while_the_private_stream_is_down_is_booked_once_from_rest(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            await enter_long(broker, fake)
            fake.drop_all_ws()
            fake.trade(SYM, 52_200.0)  # through the target: filled while nobody listens
            # the stream never tells: the reconcile after its reconnect reads it by REST
            await until(lambda: broker.side() == "flat", "the reconcile after the reconnect")
            (found,) = journal(record, "reconcile")
            assert found["data"]["trigger"] == "reconnect"
            assert found["message"].startswith("execution ")
            assert (
                "booked from the exchange: Trade Sell 0.04 at 52200 (TakeProfit"
                in (found["message"])
            )
            await broker.before_instant(T0 + 2 * M15)
            assert broker.side() == "flat" and fake.positions[SYM]["size"] == "0"
            (trade,) = broker.trades()
            assert (trade["exit_reason"], trade["entry_price"], trade["exit_price"]) == (
                "take_profit", 50_100.0, 52_200.0,
            )  # fmt: skip
            fees = 0.04 * 50_100 * 0.00055 + 0.04 * 52_200 * 0.00055
            assert trade["qty"] == 0.04
            assert trade["fees"] == pytest.approx(fees, abs=1e-9)
            assert trade["pnl"] == pytest.approx(0.04 * 2_100 - fees, abs=1e-9)
            await until(lambda: "reconnected" in kinds(record), "the stream to reconnect")
            await broker.before_instant(T0 + 3 * M15)
            assert len(broker.trades()) == 1 and len(record.trade_rows()) == 1
            assert [f["kind"] for f in record.fill_rows()] == ["Trade", "Trade"]
            assert not broker.halted
            assert [o["orderStatus"] for o in fake.orders.values()] == ["Filled", "Filled"]

    asyncio.run(go())


def _stream_run(fake: FakeBybit, tmp_path: Path) -> tuple[Any, ...]:
    """Entry and take-profit seen through the stream only (no instant in between)."""

    async def go() -> tuple[Any, ...]:
        async with session(fake, tmp_path) as (broker, record):
            await broker.before_instant(T0)
            await broker.execute(T0, LONG, ctx())
            fake.trade(SYM, 50_100.0)
            await until(lambda: broker.side() == "long", "the fill by stream")
            await until(lambda: broker.view().stop == 49_098.0, "the re-based stop")
            fake.trade(SYM, 52_200.0)
            await until(lambda: len(broker.trades()) == 1, "the take-profit by stream")
            fills = [
                {k: f[k] for k in ("side", "qty", "price", "fee", "kind")}
                for f in record.fill_rows()
            ]
            keep = ("side", "entry_price", "exit_price", "qty", "exit_reason", "fees", "pnl")
            trades = [{k: t[k] for k in keep} for t in broker.trades()]
            journaled = [(j["kind"], j["message"]) for j in record.journal_rows()][1:]  # no start
            return trades, fills, [fake.positions[SYM]["size"], broker.side()], journaled

    return asyncio.run(go())


def test_duplicated_and_reordered_executions_give_the_same_book(
    fake: FakeBybit, tmp_path: Path
) -> None:
    clean = _stream_run(fake, tmp_path / "clean")
    assert clean[0][0]["exit_reason"] == "take_profit" and len(clean[1]) == 2
    assert clean[2] == ["0", "flat"]
    assert [kind for kind, _ in clean[3]] == ["order", "stop", "trade"]
    assert clean[3][-1][1] == "long 0.04 closed at 52200: take_profit, pnl 81.75"
    with FakeBybit() as noisy:
        noisy.set_time(T0 + 1_000, speed=1.0)
        noisy.trade(SYM, 50_000.0)
        noisy.dup_exec = True
        noisy.reorder_private = True
        assert _stream_run(noisy, tmp_path / "noisy") == clean


@pytest.mark.parametrize("fault", ["ratelimit", "unknown_after_apply"])
def test_rate_limit_or_unknown_outcome_on_an_entry_leaves_exactly_one_order(
    fake: FakeBybit, tmp_path: Path, fault: str
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            await broker.before_instant(T0)
            fake.inject(fault, path="/v5/order/create")
            await broker.execute(T0, LONG, ctx())
            creates = [r for r in fake.requests if r.path == "/v5/order/create"]
            assert len(creates) == (2 if fault == "ratelimit" else 1)
            assert [o["orderLinkId"] for o in fake.orders.values()] == [ENTRY]
            fake.trade(SYM, 50_100.0)
            await broker.before_instant(T0 + M15)
            assert fake.positions[SYM]["size"] == "0.04" and broker.side() == "long"
            assert [o["orderLinkId"] for o in fake.orders.values()] == [ENTRY]
            (sent,) = journal(record, "order")
            assert sent["data"]["link_id"] == ENTRY and "unknown" not in kinds(record)

    asyncio.run(go())


def test_rejected_entry_leaves_no_phantom_position_and_the_journal_says_why(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            await broker.before_instant(T0)
            fake.reject_next_order(110007)
            await broker.execute(T0, LONG, ctx())
            assert fake.orders == {} and fake.positions[SYM]["size"] == "0"
            assert broker.side() == "flat" and not broker.entry_pending()
            fake.trade(SYM, 50_100.0)
            await broker.before_instant(T0 + M15)
            assert broker.side() == "flat" and broker.trades() == []
            (rej,) = journal(record, "rejected")
            assert rej["data"]["code"] == 110007
            assert rej["data"]["text"] == "ab not enough for new order"
            assert "retCode 110007: ab not enough for new order" in rej["message"]
            (row,) = record.order_rows()
            assert (row["status"], row["reason"]) == (
                "rejected", "retCode 110007: ab not enough for new order",
            )  # fmt: skip
            assert not broker.halted

    asyncio.run(go())


def test_partial_fill_of_a_limit_entry_is_protected_and_the_rest_cancelled_at_expiry(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path, LIMIT_PLAY) as (broker, record):
            await broker.before_instant(T0)
            await broker.execute(T0, LONG, ctx())
            (order,) = fake.orders.values()
            # 0.2% under the close; sized at that price: 2,000 / 49,900 → 0.04; stop 2% under it
            assert (order["orderType"], order["price"], order["qty"], order["stopLoss"]) == (
                "Limit", "49900", "0.04", "48902",
            )  # fmt: skip
            fake.partial_fill_ratio = 0.5
            fake.trade(SYM, 49_800.0)  # through the limit: half of it fills
            await broker.before_instant(T0 + M15)  # not expired yet (two exec bars)
            assert broker.entry_pending() and broker.side() == "long"
            assert broker.view().open_orders == ({
                "link_id": ENTRY, "role": "entry", "status": "PartiallyFilled", "side": "buy",
                "kind": "limit", "price": 49_900.0, "reduce_only": False, "expire_ts": T0 + 2 * M15,
            },)  # fmt: skip
            assert fake.orders[order["orderId"]]["orderStatus"] == "PartiallyFilled"
            await broker.before_instant(T0 + 2 * M15)  # expiry: the rest is cancelled
            after = fake.orders[order["orderId"]]
            assert after["orderStatus"] in ("Cancelled", "PartiallyFilledCanceled")
            assert after["cumExecQty"] == "0.02"
            pos = fake.positions[SYM]
            assert (pos["size"], pos["avgPrice"], pos["stopLoss"], pos["takeProfit"]) == (
                "0.02", "49900", "48902", "51896",
            )  # fmt: skip
            assert not broker.entry_pending() and broker.view().qty == 0.02
            (cancel,) = journal(record, "cancel")
            assert cancel["data"]["filled"] == 0.02 and "expired" in cancel["message"]
            fake.trade(SYM, 49_700.0)  # nothing left to fill
            assert fake.positions[SYM]["size"] == "0.02"

    asyncio.run(go())


def test_trailing_stop_and_break_even_amended_at_exec_closes_never_loosened(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path, TRAIL_PLAY) as (broker, record):
            await enter_long(broker, fake, fill=50_000.0)
            assert fake.positions[SYM]["stopLoss"] == "49000"
            for i in range(15):  # the first exec bar after the fill: high 50,600
                await broker.on_minute(bar(T0 + i * M, 50_000, 50_600 if i == 7 else 50_300,
                                           49_950, 50_200))  # fmt: skip
            fake.set_time(T0 + M15 + 1_000, speed=1.0)  # (the client re-syncs its clock)
            fake.trade(SYM, 50_550.0)
            await broker.before_instant(T0 + M15)  # +1.2%: trail 500 under 50,600
            assert fake.positions[SYM]["stopLoss"] == "50100"
            for i in range(15, 30):  # lower: the stop stays
                await broker.on_minute(bar(T0 + i * M, 50_300, 50_400, 50_150, 50_300))
            await broker.before_instant(T0 + 2 * M15)
            assert fake.positions[SYM]["stopLoss"] == "50100"
            for i in range(30, 45):  # 51,200: trail 50,700 beats break-even at 50,050
                await broker.on_minute(bar(T0 + i * M, 50_300, 51_200, 50_250, 51_100))
            fake.set_time(T0 + 3 * M15 + 1_000, speed=1.0)
            fake.trade(SYM, 51_100.0)
            await broker.before_instant(T0 + 3 * M15)
            assert fake.positions[SYM]["stopLoss"] == "50700"
            moves = [j["data"]["sl"] for j in journal(record, "stop") if "moved" in j["message"]]
            assert moves == [50_100.0, 50_700.0]
            fake.trade(SYM, 50_650.0)  # through the trailed stop
            await broker.before_instant(T0 + 4 * M15)
            (trade,) = broker.trades()
            assert (trade["exit_reason"], trade["exit_price"]) == ("trailing_stop", 50_650.0)
            assert trade["mfe_pct"] == pytest.approx((51_200 / 50_000 - 1) * 100)

    asyncio.run(go())


def test_break_even_alone_moves_the_stop_to_entry_plus_offset(
    fake: FakeBybit, tmp_path: Path
) -> None:
    play = TRAIL_PLAY.replace("activation_pct: 1.0", "activation_pct: 5.0")  # trail never on

    async def go() -> None:
        async with session(fake, tmp_path, play) as (broker, _):
            await enter_long(broker, fake, fill=50_000.0)
            for i in range(15):  # +1,000 = one stop distance: break-even at entry + 0.1%
                await broker.on_minute(bar(T0 + i * M, 50_000, 51_000, 49_950, 50_900))
            fake.trade(SYM, 50_900.0)
            await broker.before_instant(T0 + M15)
            assert fake.positions[SYM]["stopLoss"] == "50050"
            assert broker.view().stop == 50_050.0

    asyncio.run(go())


def test_a_position_that_lost_its_stop_gets_it_back_at_the_next_instant(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            await enter_long(broker, fake)
            creds = Credentials("demo", fake.api_key, fake.api_secret)
            async with BybitRest(fake.rest_url, credentials=creds) as other:
                await other.trading_stop(SYM, stop_loss=0)  # removed by hand
            assert fake.positions[SYM]["stopLoss"] == "0"
            await broker.before_instant(T0 + 2 * M15)
            assert fake.positions[SYM]["stopLoss"] == "49098"
            assert [j["message"] for j in journal(record, "stop")][-1] == "stop missing: placed"
            assert not broker.halted

    asyncio.run(go())


def test_a_stop_that_cannot_be_placed_closes_the_position_and_halts(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            await enter_long(broker, fake)
            creds = Credentials("demo", fake.api_key, fake.api_secret)
            async with BybitRest(fake.rest_url, credentials=creds) as other:
                await other.trading_stop(SYM, stop_loss=0)
            fake.inject("unknown", path="/v5/position/trading-stop", times=50)
            await broker.before_instant(T0 + 2 * M15)
            assert broker.halted
            close = link_id(SESSION, T0 + 2 * M15, 0, "close")
            order = [o for o in fake.orders.values() if o["orderLinkId"] == close]
            assert [(o["side"], o["reduceOnly"], o["qty"]) for o in order] == [
                ("Sell", True, "0.04")
            ]
            fake.trade(SYM, 50_000.0)
            await broker.before_instant(T0 + 3 * M15)
            assert fake.positions[SYM]["size"] == "0" and broker.side() == "flat"
            assert [t["exit_reason"] for t in broker.trades()] == ["unprotected"]
            assert "stop_failed" in kinds(record)
            (halt,) = journal(record, "halt")
            assert "could not be placed" in halt["message"]
            await broker.execute(T0 + 3 * M15, LONG, ctx())  # halted: no new entry
            assert len(fake.orders) == 2  # the entry and the protective close, nothing more
            assert journal(record, "rejected")[-1]["data"]["reason"] == "halted"

    asyncio.run(go())


def test_a_foreign_position_appearing_gets_a_stop_and_halts_the_session(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            await broker.before_instant(T0)
            fake.preload(positions=[{"symbol": SYM, "side": "Buy", "size": "0.01",
                                     "avgPrice": "50000"}])  # fmt: skip
            await broker.before_instant(T0 + M15)
            assert fake.positions[SYM]["stopLoss"] == "49000"  # the Play's 2% from its price
            assert broker.halted
            (halt,) = journal(record, "halt")
            assert "do not explain" in halt["message"]
            await broker.before_instant(T0 + 2 * M15)  # seen again: not a new finding
            (found,) = journal(record, "reconcile")
            assert found["message"] == (
                "the exchange shows a Buy position of 0.01 that this session's fills do not "
                "explain (they make it flat)"
            )
            assert found["data"]["trigger"] == "instant"

    asyncio.run(go())


def test_start_refuses_a_symbol_with_a_foreign_position_or_orders(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go(what: str) -> str:
        async with session(fake, tmp_path / what, start=False) as (broker, _):
            with pytest.raises(ForeignState) as err:
                await broker.start(T0)
            return str(err.value)

    fake.preload(orders=[{"symbol": SYM, "side": "Buy", "orderType": "Limit", "qty": "0.01",
                          "price": "40000", "orderLinkId": "manual-1"}])  # fmt: skip
    assert "1 open order(s)" in asyncio.run(go("orders")) and "manual-1" in asyncio.run(
        go("orders2")
    )
    fake.preload(positions=[{"symbol": SYM, "side": "Sell", "size": "0.5", "avgPrice": "50000"}])
    message = asyncio.run(go("position"))
    assert message == (
        "BTCUSDT already has a Sell position of 0.5 on Bybit demo that this session did not open; "
        "close it first, trade another symbol or take it over with --on-foreign adopt"
    )


def test_an_unreadable_wallet_at_start_halts(fake: FakeBybit, tmp_path: Path) -> None:
    async def go() -> None:
        fake.inject("http502", path="/v5/account/wallet-balance", times=20)
        async with session(fake, tmp_path) as (broker, record):
            assert broker.halted
            assert "wallet balance could not be read" in journal(record, "halt")[0]["message"]
            await broker.execute(T0, LONG, ctx())
            assert fake.orders == {}

    asyncio.run(go())


def test_funding_is_booked_as_funding_and_shared_into_the_trade(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            await enter_long(broker, fake)
            fake.funding(SYM, 0.0001)  # at the mark 50,100: 0.04 × 50,100 × 0.0001 paid
            await until(lambda: broker.book.funding_total > 0, "the funding execution")
            assert broker.side() == "long" and broker.view().qty == 0.04
            await broker.before_instant(T0 + 2 * M15)
            await broker.execute(T0 + 2 * M15, [Decision("exit", "long")], ctx())
            fake.trade(SYM, 50_200.0)
            await broker.before_instant(T0 + 3 * M15)
            (trade,) = broker.trades()
            assert trade["exit_reason"] == "signal"
            assert trade["funding"] == pytest.approx(0.2004, abs=1e-9)
            fees = 0.04 * (50_100 + 50_200) * 0.00055
            assert trade["pnl"] == pytest.approx(0.04 * 100 - fees - 0.2004, abs=1e-9)
            assert [f["kind"] for f in record.fill_rows()] == ["Trade", "Funding", "Trade"]
            assert len(journal(record, "funding")) == 1

    asyncio.run(go())


@pytest.mark.parametrize(("how", "reason"), [("liquidate", "liquidation"), ("adl", "adl")])
def test_liquidation_and_adl_close_the_position_with_their_reason(
    fake: FakeBybit, tmp_path: Path, how: str, reason: str
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            await enter_long(broker, fake)
            getattr(fake, how)(SYM, 48_000.0)
            await broker.before_instant(T0 + 2 * M15)
            assert broker.side() == "flat" and fake.positions[SYM]["size"] == "0"
            (trade,) = broker.trades()
            assert (trade["exit_reason"], trade["exit_price"]) == (reason, 48_000.0)
            assert not broker.halted
            assert [j["data"]["reason"] for j in journal(record, "trade")] == [reason]

    asyncio.run(go())


def test_partial_exit_is_reduce_only_and_rounded_down_to_the_qty_step(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, _):
            await enter_long(broker, fake)
            await broker.execute(T0 + M15, [Decision("exit", "long", percent=33.0)], ctx())
            exit_link = link_id(SESSION, T0 + M15, 0, "exit")
            (order,) = [o for o in fake.orders.values() if o["orderLinkId"] == exit_link]
            assert (order["side"], order["reduceOnly"], order["qty"]) == ("Sell", True, "0.013")
            fake.trade(SYM, 50_300.0)
            await broker.before_instant(T0 + 2 * M15)
            assert fake.positions[SYM]["size"] == "0.027" and broker.view().qty == 0.027
            (trade,) = broker.trades()
            assert (trade["qty"], trade["exit_reason"]) == (0.013, "signal")
            assert fake.positions[SYM]["stopLoss"] == "49098"  # the rest keeps its stop

    asyncio.run(go())


def test_a_flip_closes_then_opens_at_the_same_trade(fake: FakeBybit, tmp_path: Path) -> None:
    play = PLAY.replace("  entry_long: [[close, \">\", 0]]\n", "  entry_long: [[close, \">\", 0]]\n"
                        "  entry_short: [[close, \"<\", 0]]\n")  # fmt: skip
    play += "position_policy: {mode: long_short, allow_flip: true}\n"

    async def go() -> None:
        async with session(fake, tmp_path, play) as (broker, _):
            await enter_long(broker, fake)
            flip = [Decision("exit", "long"), Decision("entry", "short")]
            await broker.execute(T0 + M15, flip, ctx(50_100.0))
            sent = [(o["side"], o["reduceOnly"], o["qty"]) for o in fake.orders.values()][1:]
            # the short is sized on the balance the close leaves at the last price (10% × 2x)
            assert sent == [("Sell", True, "0.04"), ("Sell", False, "0.039")]
            fake.trade(SYM, 50_000.0)
            await broker.before_instant(T0 + 2 * M15)
            pos = fake.positions[SYM]
            assert (pos["side"], pos["size"], pos["avgPrice"]) == ("Sell", "0.039", "50000")
            assert (pos["stopLoss"], pos["takeProfit"]) == ("51000", "48000")
            assert broker.side() == "short" and broker.view().qty == 0.039
            (trade,) = broker.trades()
            assert (trade["side"], trade["exit_reason"], trade["exit_price"]) == (
                "long", "signal", 50_000.0,
            )  # fmt: skip

    asyncio.run(go())


def test_stop_cancels_the_resting_entry_and_leaves_the_position_with_its_stop(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path, LIMIT_PLAY) as (broker, record):
            await broker.before_instant(T0)
            await broker.execute(T0, LONG, ctx())
            fake.partial_fill_ratio = 0.5
            fake.trade(SYM, 49_800.0)  # half filled, half resting
            await broker.before_instant(T0 + M15)
            await broker.stop()
            (order,) = fake.orders.values()
            assert order["orderStatus"] in ("Cancelled", "PartiallyFilledCanceled")
            pos = fake.positions[SYM]
            assert (pos["size"], pos["stopLoss"]) == ("0.02", "48902")
            assert [j["message"] for j in journal(record, "cancel")] == [
                f"entry {ENTRY} session stopped: Cancelled, 0.02 filled"
            ]
            assert journal(record, "stop")[-1]["message"] == "broker stopped"
            assert not [c for c in fake.connections if c["stream"] == "private"]

    asyncio.run(go())


def test_a_private_stream_refusing_the_keys_stops_the_start_at_once(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> str:
        record = SessionRecord(tmp_path / "session.sqlite")
        good = Credentials("demo", fake.api_key, fake.api_secret)
        bad = Credentials("demo", fake.api_key, "not-the-secret-0000000000000000000")
        async with BybitRest(fake.rest_url, environment="demo", credentials=good) as rest:
            broker = BybitBroker(
                rest, fake.ws_private_url, bad, validate_play_text(PLAY), SYM, record, SESSION,
                "demo",
            )  # fmt: skip
            with pytest.raises(ExchangeError) as err:
                await asyncio.wait_for(broker.start(T0), 5.0)
        record.close()
        return str(err.value)

    message = asyncio.run(go())
    assert message.startswith(f"Bybit demo private stream {fake.ws_private_url}: ")
    assert "auth refused" in message and "not-the-secret" not in message


def test_bybit_unreachable_at_an_instant_refuses_entries_until_it_answers_again(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            fake.inject("http502", path="/v5/position/list", times=7)  # 1 try + 6 retries
            await broker.before_instant(T0)  # no exception: the session goes on
            (down,) = journal(record, "unreachable")
            assert "/v5/position/list" in down["message"] and "HTTP 502" in down["message"]
            await broker.execute(T0, LONG, ctx())
            assert fake.orders == {}
            assert journal(record, "rejected")[-1]["data"]["reason"] == "position_unknown"
            await broker.before_instant(T0 + M15)  # answers again
            await broker.execute(T0 + M15, LONG, ctx())
            assert [o["orderLinkId"] for o in fake.orders.values()] == [
                link_id(SESSION, T0 + M15, 0, "entry")
            ]

    asyncio.run(go())


def test_a_lost_fill_is_found_by_rest_and_a_late_one_is_booked_once(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            await broker.before_instant(T0)
            await broker.execute(T0, LONG, ctx())
            fake.drop_next("execution")  # the entry's fill never comes by stream
            fake.trade(SYM, 50_100.0)
            await until(lambda: not broker.entry_pending(), "the order's Filled message")
            await asyncio.sleep(0.2)
            assert broker.side() == "flat"  # the order says filled; no fill was pushed
            await broker.before_instant(T0 + M15)
            assert broker.side() == "long" and broker.view().qty == 0.04
            assert fake.positions[SYM]["stopLoss"] == "49098"
            fake.delay_topic["execution"] = 0.5  # the take-profit's fill comes late
            fake.trade(SYM, 52_200.0)
            await broker.before_instant(T0 + 2 * M15)  # REST has it already
            assert broker.side() == "flat" and len(broker.trades()) == 1
            await asyncio.sleep(0.8)  # ... then the stream pushes it: nothing changes
            assert [t["exit_reason"] for t in broker.trades()] == ["take_profit"]
            assert len(record.fill_rows()) == 2 and len(record.trade_rows()) == 1
            assert len(journal(record, "trade")) == 1 and not broker.halted

    asyncio.run(go())


async def exchange_time_passes(broker: BybitBroker, fake: FakeBybit, ms: int) -> None:
    """`ms` of exchange time go by (the client learns it from the exchange's clock)."""
    fake.advance(ms)
    await broker.rest.sync_time()


def test_the_timer_reconciles_every_60_s_of_exchange_time_between_instants(
    fake: FakeBybit, tmp_path: Path
) -> None:
    """A take-profit whose fill the stream never delivers is found by the 60 s timer, with no
    evaluation instant and no minute close in between."""

    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            await enter_long(broker, fake)
            fake.drop_next("execution")
            fake.trade(SYM, 52_200.0)
            await asyncio.sleep(TIMER_S * 2)
            assert broker.side() == "long"  # less than 60 s of exchange time: not yet
            await exchange_time_passes(broker, fake, 61_000)
            await until(lambda: broker.side() == "flat", "the timer's reconcile")
            (found,) = journal(record, "reconcile")
            assert found["data"]["trigger"] == "timer"
            assert "Trade Sell 0.04 at 52200 (TakeProfit," in found["message"]
            assert [t["exit_reason"] for t in broker.trades()] == ["take_profit"]

    asyncio.run(go())


def test_the_orders_of_an_instant_are_reconciled_at_once(fake: FakeBybit, tmp_path: Path) -> None:
    """A market entry filled at once whose fill the stream loses is booked (and protected) by
    the reconcile that follows the instant's orders; a fill of an order being followed is not a
    finding."""

    async def go() -> None:
        fake.fill_mode = "immediate"
        async with session(fake, tmp_path) as (broker, record):
            await broker.before_instant(T0)
            fake.drop_next("execution")
            await broker.execute(T0, LONG, ctx())
            assert broker.side() == "long" and broker.view().qty == 0.04
            assert fake.positions[SYM]["stopLoss"] == "49000"
            assert journal(record, "reconcile") == []

    asyncio.run(go())


FOREIGN_ORDER = {"symbol": SYM, "side": "Buy", "orderType": "Limit", "qty": "0.01",
                 "price": "40000", "orderLinkId": "manual-1"}  # fmt: skip


def test_a_foreign_order_appearing_mid_session_halts_it_once(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        async with session(fake, tmp_path) as (broker, record):
            await broker.before_instant(T0)
            fake.preload(orders=[FOREIGN_ORDER])
            await exchange_time_passes(broker, fake, 61_000)
            await until(lambda: broker.halted, "the timer's reconcile")
            await exchange_time_passes(broker, fake, 61_000)
            await until(lambda: len(journal(record, "reconcile")) == 1 and
                        broker._last_full >= fake.server_ms() - 1_000, "a second timer round")  # fmt: skip
            (found,) = journal(record, "reconcile")
            assert found["message"] == (
                "foreign order manual-1: Buy Limit 0.01 at 40000: not sent by this session"
            )
            (halt,) = journal(record, "halt")
            assert "(--on-foreign halt)" in halt["message"]
            assert [o["orderStatus"] for o in fake.orders.values()] == ["New"]  # left alone

    asyncio.run(go())


def test_on_foreign_adopt_cancels_foreign_orders_at_start_and_protects_a_foreign_position(
    fake: FakeBybit, tmp_path: Path
) -> None:
    async def go() -> None:
        fake.preload(orders=[FOREIGN_ORDER], positions=[
            {"symbol": SYM, "side": "Sell", "size": "0.02", "avgPrice": "50000"}])  # fmt: skip
        creds = Credentials("demo", fake.api_key, fake.api_secret)
        record = SessionRecord(tmp_path / "session.sqlite")
        async with BybitRest(
            fake.rest_url, environment="demo", credentials=creds, backoff=0.01, timeout=2.0
        ) as rest:
            broker = BybitBroker(
                rest, fake.ws_private_url, creds, validate_play_text(PLAY), SYM, record, SESSION,
                "demo", stream_options={"backoff": 0.05}, on_foreign="adopt",
            )  # fmt: skip
            await broker.start(T0)
            try:
                assert not broker.halted and broker.side() == "short"
                assert [o["orderStatus"] for o in fake.orders.values()] == ["Cancelled"]
                pos = fake.positions[SYM]
                # the Play's 2% stop and 4% target from the adopted position's price
                assert (pos["stopLoss"], pos["takeProfit"]) == ("51000", "48000")
                assert [(j["message"], j["data"]["trigger"]) for j in journal(record, "reconcile")] == [
                    ("foreign order manual-1: Buy Limit 0.01 at 40000: cancelled (--on-foreign adopt)",
                     "start"),
                    ("foreign short position of 0.02 at 50000 adopted (--on-foreign adopt): the "
                     "Play's stop and exits manage it", "start"),
                ]  # fmt: skip
                fake.trade(SYM, 51_500.0)  # the adopted position's stop
                await until(lambda: broker.side() == "flat", "the stop's fill")
                (trade,) = broker.trades()
                assert (trade["side"], trade["qty"], trade["exit_reason"]) == (
                    "short", 0.02, "stop_loss",
                )  # fmt: skip
            finally:
                await broker.stop()
                record.close()

    asyncio.run(go())
