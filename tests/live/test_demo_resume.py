"""Demo sessions resumed with `--session NAME` after they went down, against the fake exchange.

A session is taken down abruptly (its broker's stop only closes the streams: no entry cancelled,
no reconcile, nothing sent, as a kill leaves it); while it is down the fake is made to do what the
exchange may do: hit the position's stop, fill its take-profit, partially fill its resting limit
entry, or hold a position this session never opened. The session is then resumed from its record:
the state it ends in is the documented one, each finding is exactly one `reconcile` journal line,
the local position is the fake's, every execution is booked once and the equity is the fake's
wallet."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fakes.bybit import FakeBybit
from fakes.market_day import MarketDay
from trade.data import MarketStore
from trade.engine.backtest import parse_time
from trade.engine.play_engine import PlayEngine
from trade.exchange.bybit import BybitRest
from trade.live.bybit_broker import BybitBroker
from trade.live.launch import make_runner, open_record, plan_session
from trade.live.orders import link_id
from trade.live.runner import LiveRunner
from trade.live.session import SessionRecord, session_path

from .inproc import subscribed

MINUTE = 60_000
NAME = "resumed"


class DemoSession:
    """One demo session on a replayed day, taken down and resumed by the test."""

    def __init__(self, fake: FakeBybit, home: Path, play: str, symbol: str, start: str) -> None:
        self.fake, self.play, self.symbol = fake, play, symbol
        self.start = parse_time(start, "t")
        plan = plan_session(play, "demo", symbol=symbol, session=NAME)
        with MarketStore(home / "market.duckdb", read_only=True) as store:
            self.day = MarketDay(
                fake, store, symbol, PlayEngine(plan.compiled).timeframes(), self.start,
                self.start + 24 * 3_600_000,
            )  # fmt: skip
            self.day.load_history()
        self.next_minute = self.start - MINUTE  # the next minute to play

    def down_until(self, close: int) -> None:
        """Minutes that close while the session is down: their bars exist, no trade is played."""
        while self.next_minute + MINUTE <= close:
            self.next_minute += MINUTE
            self.fake.set_time(self.next_minute)
            self.day.push_closed(self.next_minute)

    def run(
        self,
        until: str,
        *,
        kill: bool,
        on_foreign: str | None = None,
        after: Callable[[int, LiveRunner], None] | None = None,
    ) -> LiveRunner:
        """Start (or resume) the session and play minutes up to `until`; then take it down
        abruptly (`kill`) or stop it as Ctrl-C does."""
        resume = session_path(NAME).exists()
        plan = plan_session(
            None if resume else self.play, None if resume else "demo",
            symbol=None if resume else self.symbol, session=NAME, on_foreign=on_foreign,
        )  # fmt: skip
        assert plan.resume == resume
        record = open_record(plan)
        end = parse_time(until, "t")

        async def go() -> LiveRunner:
            async with BybitRest(
                environment=plan.environment, credentials=plan.credentials, backoff=0.01
            ) as rest:
                runner = make_runner(plan, record, rest, store_path=None, backoff=0.01)
                seen = {c["id"] for c in self.fake.connections}
                task = asyncio.create_task(runner.run())
                await subscribed(self.fake, 2, task, seen=seen)

                async def wait(close: int) -> None:
                    await runner.wait_handled(close)
                    if after is not None:
                        after(close, runner)

                while self.next_minute + MINUTE <= end:
                    await self.day.play_minute(self.next_minute, wait, trades=True)
                    self.next_minute += MINUTE
                if kill:
                    broker = runner.broker
                    assert isinstance(broker, BybitBroker)
                    broker.stop = broker._close_stream  # type: ignore[method-assign]
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                else:
                    runner.request_stop()
                    await task
                return runner

        try:
            return asyncio.run(go())
        finally:
            record.close()


def findings() -> list[str]:
    with SessionRecord(session_path(NAME), readonly=True) as rec:
        return [j["message"] for j in rec.journal_rows() if j["kind"] == "reconcile"]


def assert_agrees_with_the_fake(fake: FakeBybit, broker: BybitBroker, symbol: str) -> None:
    """Local position = the fake's, every execution booked once, equity = the fake's wallet."""
    pos = fake.positions[symbol]
    local = broker.book.position
    if local is None:
        assert pos["size"] == "0"
    else:
        sign = "Buy" if local.side == "long" else "Sell"
        assert (pos["side"], float(pos["size"])) == (sign, local.qty)
    with SessionRecord(session_path(NAME), readonly=True) as rec:
        booked = sorted(f["exec_id"] for f in rec.fill_rows())
    assert booked == sorted(e["execId"] for e in fake.executions if e["symbol"] == symbol)
    assert broker.equity == pytest.approx(float(fake.wallet["totalEquity"]), abs=1e-6)


def _reasons(broker: BybitBroker) -> list[tuple[str, str]]:
    return [(t["side"], t["exit_reason"]) for t in broker.trades()]


def test_a_stop_hit_while_down_is_booked_once_and_the_trade_closed_with_its_reason(
    fake: FakeBybit, home: Path
) -> None:
    s = DemoSession(fake, home, "ema_cross", "BTCUSDT", "2025-06-11T07:30")
    first = s.run("2025-06-11T08:30", kill=True)
    broker = first.broker
    assert isinstance(broker, BybitBroker) and broker.side() == "short"
    stop = float(fake.positions["BTCUSDT"]["stopLoss"])
    assert stop > 0
    s.down_until(parse_time("2025-06-11T08:40", "t"))
    fake.trade("BTCUSDT", stop + 50.0)  # through the stop while nobody listens
    assert fake.positions["BTCUSDT"]["size"] == "0"
    s.down_until(parse_time("2025-06-11T08:45", "t"))

    second = s.run("2025-06-11T09:30", kill=False)
    broker = second.broker
    assert isinstance(broker, BybitBroker) and not broker.halted
    assert _reasons(broker) == [("short", "stop_loss")]
    (trade,) = broker.trades()
    assert trade["exit_price"] == stop + 50.0
    (finding,) = findings()
    assert "booked from the exchange: Trade Buy" in finding and "(StopLoss," in finding
    assert_agrees_with_the_fake(fake, broker, "BTCUSDT")
    with SessionRecord(session_path(NAME), readonly=True) as rec:
        assert rec.trade_rows() == broker.trades()
        entries = [o for o in rec.order_rows() if o["link_id"].endswith("-en")]
    assert len(entries) == 1  # nothing sent twice


def test_a_resumed_session_trades_on_as_if_it_never_stopped(fake: FakeBybit, home: Path) -> None:
    """Down for a minute while short (no instant missed): the 14:00 flip closes the short with
    the Play's exit and opens the long, as the backtest does; nothing was found to reconcile."""
    s = DemoSession(fake, home, "ema_cross", "BTCUSDT", "2025-06-11T07:30")
    s.run("2025-06-11T08:20", kill=True)
    s.down_until(parse_time("2025-06-11T08:21", "t"))
    runner = s.run("2025-06-11T14:05", kill=False)
    broker = runner.broker
    assert isinstance(broker, BybitBroker) and not broker.halted
    assert _reasons(broker) == [("short", "signal")] and broker.side() == "long"
    assert findings() == []
    assert_agrees_with_the_fake(fake, broker, "BTCUSDT")
    assert float(fake.positions["BTCUSDT"]["stopLoss"]) > 0
    with SessionRecord(session_path(NAME), readonly=True) as rec:
        resumed = [j for j in rec.journal_rows() if j["kind"] == "resume"]
        sent = [o["link_id"] for o in rec.order_rows()]
    assert len(resumed) == 1
    t8, t14 = parse_time("2025-06-11T08:00", "t"), parse_time("2025-06-11T14:00", "t")
    assert sent == [
        link_id(NAME, t8, 0, "entry"), link_id(NAME, t14, 0, "exit"), link_id(NAME, t14, 1, "entry")
    ]  # fmt: skip
    assert sorted(o["orderLinkId"] for o in fake.orders.values()) == sorted(sent)


def test_a_take_profit_filled_while_down_closes_the_trade_as_take_profit(
    fake: FakeBybit, home: Path
) -> None:
    s = DemoSession(fake, home, "bb_mean_reversion", "ETHUSDT", "2025-06-23T16:00")
    s.run("2025-06-23T16:45", kill=True)
    pos = fake.positions["ETHUSDT"]
    assert pos["side"] == "Buy" and float(pos["takeProfit"]) > 0
    target = float(pos["takeProfit"])
    s.down_until(parse_time("2025-06-23T16:50", "t"))
    fake.trade("ETHUSDT", target + 1.0)
    s.down_until(parse_time("2025-06-23T17:00", "t"))
    runner = s.run("2025-06-23T17:05", kill=False)
    broker = runner.broker
    assert isinstance(broker, BybitBroker) and not broker.halted
    assert _reasons(broker) == [("long", "take_profit")]
    assert broker.trades()[0]["exit_price"] == target + 1.0
    (finding,) = findings()
    assert "Trade Sell" in finding and "(TakeProfit," in finding
    assert_agrees_with_the_fake(fake, broker, "ETHUSDT")


def test_a_limit_entry_partly_filled_while_down_is_protected_and_its_rest_adopted(
    fake: FakeBybit, home: Path
) -> None:
    """The short limit entry of 06:15 rests when the session goes down; 40% of it fills while
    down. Resumed at 06:30: the fill booked, the order adopted as partly filled (still resting),
    the position protected with the levels re-based to its fill; at 06:45 the rest expires and is
    cancelled."""
    s = DemoSession(fake, home, "bb_mean_reversion", "ETHUSDT", "2025-06-23T06:00")
    s.run("2025-06-23T06:15", kill=True)
    link = link_id(NAME, parse_time("2025-06-23T06:15", "t"), 0, "entry")
    (order,) = [o for o in fake.orders.values() if o["orderLinkId"] == link]
    assert (order["orderType"], order["orderStatus"], order["side"]) == ("Limit", "New", "Sell")
    qty, price = float(order["qty"]), float(order["price"])
    part = round(qty * 0.4, 2)
    s.down_until(parse_time("2025-06-23T06:20", "t"))
    fake.fill(link, price, part)
    s.down_until(parse_time("2025-06-23T06:30", "t"))
    state: dict[str, Any] = {}

    def after(close: int, runner: LiveRunner) -> None:
        if close == parse_time("2025-06-23T06:31", "t"):
            broker = runner.broker
            assert isinstance(broker, BybitBroker)
            state["side"], state["qty"] = broker.side(), broker.book.position.qty  # type: ignore[union-attr]
            state["order"] = broker.orders[link].status
            state["fake"] = dict(fake.positions["ETHUSDT"])
            state["findings"] = findings()

    runner = s.run("2025-06-23T06:46", kill=False, after=after)
    assert (state["side"], state["qty"], state["order"]) == ("short", part, "PartiallyFilled")
    assert state["fake"]["size"] == f"{part:g}"
    # the fixed 40 stop and 60 target from the fill price
    assert (float(state["fake"]["stopLoss"]), float(state["fake"]["takeProfit"])) == (
        price + 40, price - 60,
    )  # fmt: skip
    found = state["findings"]
    assert len(found) == 2, found
    assert (
        "booked from the exchange: Trade Sell" in found[0] and f"{part:g} at {price:g}" in found[0]
    )
    assert found[1].startswith(f"entry {link} found on the exchange: New -> PartiallyFilled")
    broker = runner.broker
    assert isinstance(broker, BybitBroker)
    done = fake.orders[order["orderId"]]
    assert (done["orderStatus"], done["cumExecQty"]) == ("Cancelled", f"{part:g}")
    with SessionRecord(session_path(NAME), readonly=True) as rec:
        cancels = [j for j in rec.journal_rows() if j["kind"] == "cancel"]
    assert [c["data"]["link_id"] for c in cancels] == [link]
    assert "expired" in cancels[0]["message"]
    assert findings() == found  # nothing more was found after the resume
    assert_agrees_with_the_fake(fake, broker, "ETHUSDT")


FOREIGN = {"symbol": "BTCUSDT", "side": "Sell", "size": "0.05", "avgPrice": "109000"}


def test_a_foreign_position_found_on_resume_halts_and_is_protected(
    fake: FakeBybit, home: Path
) -> None:
    s = DemoSession(fake, home, "ema_cross", "BTCUSDT", "2025-06-11T07:30")
    s.run("2025-06-11T07:45", kill=True)
    s.down_until(parse_time("2025-06-11T07:50", "t"))
    fake.preload(positions=[FOREIGN])
    runner = s.run("2025-06-11T08:05", kill=False)
    broker = runner.broker
    assert isinstance(broker, BybitBroker) and broker.halted and broker.side() == "flat"
    (finding,) = findings()
    assert finding == (
        "the exchange shows a Sell position of 0.05 that this session's fills do not explain "
        "(they make it flat)"
    )
    # the stop invariant holds for it too: the Play's 3% from its price
    assert fake.positions["BTCUSDT"]["stopLoss"] == "112270"
    assert fake.positions["BTCUSDT"]["size"] == "0.05"
    # the 08:00 short entry was dropped (halted): nothing was sent
    assert [o for o in fake.orders.values() if o["orderLinkId"]] == []


def test_a_foreign_position_is_adopted_with_on_foreign_adopt(fake: FakeBybit, home: Path) -> None:
    """Adopted: booked at its average price, the Play's stop from that price; the Play's 08:00
    short entry is refused as the position is open; and its 14:00 exit closes it (signal)."""
    s = DemoSession(fake, home, "ema_cross", "BTCUSDT", "2025-06-11T07:30")
    s.run("2025-06-11T07:45", kill=True)
    s.down_until(parse_time("2025-06-11T07:50", "t"))
    fake.preload(positions=[FOREIGN])
    runner = s.run("2025-06-11T14:05", kill=False, on_foreign="adopt")
    broker = runner.broker
    assert isinstance(broker, BybitBroker) and not broker.halted
    (finding,) = findings()
    assert finding == (
        "foreign short position of 0.05 at 109000 adopted (--on-foreign adopt): the Play's stop "
        "and exits manage it"
    )
    (trade, *_) = broker.trades()
    assert (trade["side"], trade["entry_price"], trade["qty"], trade["exit_reason"]) == (
        "short", 109_000.0, 0.05, "signal",
    )  # fmt: skip
    with SessionRecord(session_path(NAME), readonly=True) as rec:
        stops = [j["data"]["sl"] for j in rec.journal_rows() if "sl" in j["data"]]
        assert rec.meta()["on_foreign"] == "adopt"
    assert stops[0] == 112_270.0
    assert broker.side() == "long"


def _exit_intent_killed_before_it_left(fake: FakeBybit, home: Path) -> tuple[DemoSession, str]:
    """Down at 08:30 right after an exit's intent (closing the short) was committed, before its
    request left."""
    s = DemoSession(fake, home, "ema_cross", "BTCUSDT", "2025-06-11T07:30")
    first = s.run("2025-06-11T08:30", kill=True)
    assert isinstance(first.broker, BybitBroker) and first.broker.book.position is not None
    qty = first.broker.book.position.qty
    t = parse_time("2025-06-11T08:30", "t")
    link = link_id(NAME, t, 0, "exit")
    with SessionRecord(session_path(NAME)) as rec:
        rec.order_intent(link, t, {"symbol": "BTCUSDT", "side": "Buy", "orderType": "Market",
                                   "qty": f"{qty:g}", "reduceOnly": True, "orderLinkId": link})  # fmt: skip
    return s, link


def test_an_intent_the_exchange_never_received_is_final_as_not_sent_never_sent_late(
    fake: FakeBybit, home: Path
) -> None:
    """Resumed two minutes later: looked up by its link id, not found, final as `not_sent` and
    its instant journaled missed; nothing is sent for it."""
    s, link = _exit_intent_killed_before_it_left(fake, home)
    s.down_until(parse_time("2025-06-11T08:32", "t"))
    runner = s.run("2025-06-11T08:35", kill=False)
    broker = runner.broker
    assert isinstance(broker, BybitBroker) and broker.side() == "short"
    assert findings() == [
        f"exit {link} (intent) is not on the exchange: final as not_sent, never sent late"
    ]
    with SessionRecord(session_path(NAME), readonly=True) as rec:
        (row,) = [o for o in rec.order_rows() if o["link_id"] == link]
        (missed,) = [j for j in rec.journal_rows() if j["kind"] == "missed"]
    assert (row["status"], row["reason"]) == ("not_sent", "not found on the exchange")
    assert missed["ts"] == parse_time("2025-06-11T08:30", "t")
    assert missed["message"].endswith("its request never reached the exchange and it is 120 s late")
    assert link not in {o["orderLinkId"] for o in fake.orders.values()}
    assert_agrees_with_the_fake(fake, broker, "BTCUSDT")


def test_an_intent_whose_instant_is_not_past_is_sent_on_resume_with_its_link_id(
    fake: FakeBybit, home: Path
) -> None:
    """Resumed within the minute: the same request is sent once, with the same orderLinkId."""
    s, link = _exit_intent_killed_before_it_left(fake, home)
    runner = s.run("2025-06-11T08:35", kill=False)
    broker = runner.broker
    assert isinstance(broker, BybitBroker) and broker.side() == "flat"
    assert _reasons(broker) == [("short", "signal")]
    (finding,) = findings()
    assert finding.startswith(f"exit {link} (intent) is not on the exchange: sent now with the ")
    assert [o["orderLinkId"] for o in fake.orders.values()].count(link) == 1
    assert_agrees_with_the_fake(fake, broker, "BTCUSDT")
