"""Public and private streams against the fake: topics, the `confirm` flag, pings, the watchdog,
reconnects that re-authenticate and re-subscribe, and private messages that arrive twice, late, out
of order or not at all."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import pytest

from fakes.bybit import FakeBybit
from trade.exchange.bybit import BybitStream, Credentials, OrderNotFound, StreamEvent

from .conftest import buy, client, run

T0 = 1_735_689_600_000
MIN = 60_000
WAIT_S = 60.0  # how long an expected event may take on a loaded machine (it takes milliseconds)
SETTLE_S = 0.3  # how long to listen on for anything more once the expected events are in


async def until(stream: BybitStream, kind: str, timeout: float = WAIT_S) -> StreamEvent:
    """The next event of `kind` (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        event = await stream.next(max(deadline - time.monotonic(), 0.01))
        if event.kind == kind:
            return event


async def ready(stream: BybitStream, fake: FakeBybit) -> None:
    """Connected, and the fake shows every topic subscribed (and the socket authed, if private)."""
    await until(stream, "connected")
    kind = "private" if stream.credentials is not None else "public"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for c in fake.connections:
            if c["stream"] == kind and set(stream.topics) <= set(c["topics"]):
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the fake never showed the {kind} subscriptions")


async def registered(fake: FakeBybit, stream: str, count: int = 1) -> None:
    """Wait until the fake has accepted `count` sockets of `stream` in all and one is live (a client
    may see the handshake complete before the server's side has recorded it)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        live = sum(c["stream"] == stream for c in fake.connections)
        if live >= 1 and fake.connects[stream] >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the fake never registered socket {count} of {stream}")


async def collect(
    stream: BybitStream, done: Callable[[list[StreamEvent]], bool], what: str
) -> list[StreamEvent]:
    """Events until `done(events)` holds, then whatever else comes within `SETTLE_S`."""
    out: list[StreamEvent] = []
    deadline = time.monotonic() + WAIT_S
    while not done(out):
        left = deadline - time.monotonic()
        assert left > 0, f"never saw {what}: {[e.kind for e in out]}"
        with contextlib.suppress(TimeoutError):
            out.append(await stream.next(left))
    settled = time.monotonic() + SETTLE_S
    while (left := settled - time.monotonic()) > 0:
        try:
            out.append(await stream.next(left))
        except TimeoutError:
            break
    return out


def items(events: list[StreamEvent], kind: str) -> list:  # type: ignore[type-arg]
    return [x for e in events if e.kind == kind for x in e.items]


def public(fake: FakeBybit, topics: list[str], **kw: float) -> BybitStream:
    kw.setdefault("backoff", 0.01)
    return BybitStream(fake.ws_public_url, topics, **kw)


def private(fake: FakeBybit, creds: Credentials, **kw: float) -> BybitStream:
    kw.setdefault("backoff", 0.01)
    return BybitStream(
        fake.ws_private_url, ["order", "execution", "position", "wallet"], credentials=creds, **kw
    )


def test_klines_of_several_intervals_keep_the_confirm_flag_and_tickers_merge(
    fake: FakeBybit,
) -> None:
    topics = ["kline.1.BTCUSDT", "kline.5.BTCUSDT", "tickers.BTCUSDT"]

    async def go() -> list[StreamEvent]:
        async with public(fake, topics) as s:
            await ready(s, fake)
            fake.kline("BTCUSDT", "1", T0, 100, 101, 99, 100.5, 3, confirm=False)
            fake.kline("BTCUSDT", "1", T0, 100, 102, 99, 101.5, 5, confirm=True)
            fake.kline("BTCUSDT", "5", T0, 100, 102, 98, 101.0, 9, confirm=False)
            fake.trade("BTCUSDT", 101.7)
            seen = await collect(
                s, lambda ev: any(x.get("lastPrice") == "101.7" for x in items(ev, "ticker")),
                "the ticker of the trade (pushed last)",
            )  # fmt: skip
            return seen, fake.connections

    events, conn = run(go())
    klines = [(e.topic, k.close, k.confirm) for e in events if e.kind == "kline" for k in e.items]
    assert klines == [
        ("kline.1.BTCUSDT", 100.5, False),
        ("kline.1.BTCUSDT", 101.5, True),
        ("kline.5.BTCUSDT", 101.0, False),
    ]
    tickers = [e.items[0] for e in events if e.kind == "ticker"]
    assert float(tickers[-1]["lastPrice"]) == 101.7 and "symbol" in tickers[-1]
    assert sorted(conn[0]["topics"]) == sorted(topics)


def test_application_pings_every_interval(fake: FakeBybit) -> None:
    interval = 0.1

    def pings() -> int:
        return sum(m.get("op") == "ping" for m in fake.ws_received)

    async def go() -> tuple[int, float]:
        opened = time.monotonic()
        async with public(fake, ["kline.1.BTCUSDT"], ping_interval=interval) as s:
            await ready(s, fake)
            deadline = opened + WAIT_S
            while pings() < 5:
                assert time.monotonic() < deadline, f"{pings()} ping(s) in {WAIT_S:g} s"
                await asyncio.sleep(0.005)
            return pings(), time.monotonic() - opened

    n, took = run(go())
    # they keep coming, one an interval at most (a loaded machine only spaces them more)
    assert n <= (took + 0.01) / interval, (n, took)


def test_a_dropped_socket_reconnects_resubscribes_and_says_so_once(fake: FakeBybit) -> None:
    topics = ["kline.1.BTCUSDT", "kline.15.BTCUSDT", "tickers.BTCUSDT"]

    async def go() -> list[StreamEvent]:
        async with public(fake, topics) as s:
            await ready(s, fake)
            fake.drop_all_ws(1006)
            await until(s, "reconnected")
            await registered(fake, "public", 2)
            await asyncio.sleep(0.1)
            fake.kline("BTCUSDT", "15", T0, 1, 2, 0.5, 1.5, 1, confirm=True)
            seen = await collect(s, lambda ev: bool(items(ev, "kline")), "the kline")
            return seen, fake.connections

    after, live = run(go())
    assert fake.connects["public"] == 2
    assert len(live) == 1 and sorted(live[0]["topics"]) == sorted(topics)
    assert [e.kind for e in after].count("reconnected") == 0
    assert any(e.kind == "kline" and e.items[0].confirm for e in after)


def test_a_half_open_socket_is_replaced_within_two_ping_intervals(fake: FakeBybit) -> None:
    interval = 1.0  # long beside the scheduling delays of a loaded machine (the slack below)

    async def go() -> tuple[float, str]:
        async with public(fake, ["kline.1.BTCUSDT"], ping_interval=interval) as s:
            await ready(s, fake)
            fake.stall_ws(5.0)  # open, silent, no pongs
            stalled = time.monotonic()
            dropped = await until(s, "disconnected")
            await until(s, "reconnected")
            await registered(fake, "public", 2)
            assert s.watchdog_trips == 1
            return dropped.at - stalled, dropped.detail

    took, why = run(go())
    # the watchdog trips 2 intervals after the last message received, which came before the stall
    # (a loaded machine may add scheduling delay, hence the slack below one more interval)
    assert took <= 3 * interval and why == "nothing received for 2 s (half-open socket)"
    assert fake.connects["public"] == 2


def test_private_stream_auth_and_a_fill_in_four_messages(
    fake: FakeBybit, creds: Credentials
) -> None:
    fake.trade("BTCUSDT", 100_000)

    async def go() -> list[StreamEvent]:
        async with private(fake, creds) as s, client(fake, creds) as c:
            await ready(s, fake)
            await c.place_order(buy("p-1"))
            fake.trade("BTCUSDT", 100_010)
            seen = await collect(
                s, lambda ev: any(e.kind == "wallet" for e in ev[1 + _first(ev, "execution"):]),
                "the wallet after the fill",
            )  # fmt: skip
            return seen, fake.connections

    events, conns = run(go())
    kinds = [e.kind for e in events if e.kind != "position" or e.items[0].size > 0]
    assert kinds[-4:] == ["execution", "order", "position", "wallet"]
    fill = next(e for e in events if e.kind == "execution").items[0]
    assert (fill.order_link_id, fill.price, fill.qty) == ("p-1", 100_010, 0.01)
    final = [o for e in events if e.kind == "order" for o in e.items][-1]
    assert final.status == "Filled"
    conn = conns[0]
    assert conn["authed"] and sorted(conn["topics"]) == ["execution", "order", "position", "wallet"]


def test_duplicated_and_reordered_private_messages_give_the_same_picture(
    fake: FakeBybit, creds: Credentials
) -> None:
    fake.trade("BTCUSDT", 100_000)
    fake.dup_exec = True
    fake.reorder_private = True

    async def go() -> list[StreamEvent]:
        async with private(fake, creds) as s, client(fake, creds) as c:
            await ready(s, fake)
            await c.place_order(buy("p-2", "0.02", "99990"))
            fake.partial_fill_ratio = 0.5
            fake.trade("BTCUSDT", 99_980)  # half
            fake.partial_fill_ratio = None
            fake.trade("BTCUSDT", 99_970)  # the rest
            return await collect(
                s, lambda ev: len({f.exec_id for f in items(ev, "execution")}) == 2
                and any(o.status == "Filled" for o in items(ev, "order"))
                and any(p.size == pytest.approx(0.02) for p in items(ev, "position")),
                "both fills, the Filled order and the whole position",
            )  # fmt: skip

    events = run(go())
    fills = [x for e in events if e.kind == "execution" for x in e.items]
    assert len(fills) == 2 and len({f.exec_id for f in fills}) == 2
    assert sum(f.qty for f in fills) == pytest.approx(0.02)
    assert all(f.price == 99_990 for f in fills)  # a crossed limit fills at its price
    orders = [o for e in events if e.kind == "order" for o in e.items]
    assert orders[-1].status == "Filled" and orders[-1].cum_exec_qty == pytest.approx(0.02)
    positions = [p for e in events if e.kind == "position" for p in e.items]
    assert positions[-1].size == pytest.approx(0.02)


def test_a_cancel_racing_a_fill_leaves_the_order_filled(
    fake: FakeBybit, creds: Credentials
) -> None:
    fake.trade("BTCUSDT", 100_000)
    fake.double_filled_on_cancel = True

    async def go() -> tuple[list[StreamEvent], OrderNotFound]:
        async with private(fake, creds) as s, client(fake, creds) as c:
            await ready(s, fake)
            await c.place_order(buy("race-1", "0.01", "99990"))
            with pytest.raises(OrderNotFound) as failed:
                await c.cancel_order("BTCUSDT", "race-1")
            seen = await collect(
                s, lambda ev: any(o.status == "Filled" for o in items(ev, "order")), "the fill"
            )
            return seen, failed.value

    events, failed = run(go())
    assert failed.code == 110001
    orders = [
        o for e in events if e.kind == "order" for o in e.items if o.order_link_id == "race-1"
    ]
    assert [o.status for o in orders][-1] == "Filled"
    assert sum(o.status == "Filled" for o in orders) == 1  # the second Filled was dropped


def test_a_lost_execution_is_visible_by_rest(fake: FakeBybit, creds: Credentials) -> None:
    fake.trade("BTCUSDT", 100_000)
    fake.drop_next("execution")

    async def go():  # type: ignore[no-untyped-def]
        async with private(fake, creds) as s, client(fake, creds) as c:
            await ready(s, fake)
            await c.place_order(buy("lost-1"))
            fake.trade("BTCUSDT", 100_001)
            events = await collect(  # the execution message is sent before the order's
                s, lambda ev: any(o.status == "Filled" for o in items(ev, "order")), "the fill"
            )
            return events, await c.executions("BTCUSDT")

    events, rest = run(go())
    assert not [e for e in events if e.kind == "execution"]
    assert [(e.order_link_id, e.qty) for e in rest] == [("lost-1", 0.01)]


def test_private_reconnect_reauthenticates_and_resubscribes(
    fake: FakeBybit, creds: Credentials
) -> None:
    async def go() -> None:
        async with private(fake, creds) as s:
            await ready(s, fake)
            fake.drop_all_ws(1011)
            event = await until(s, "reconnected")
            assert event.detail == "resubscribed 4 topic(s)"
            await registered(fake, "private", 2)
            await asyncio.sleep(0.1)
            return fake.connections

    conns = run(go())
    assert len(conns) == 1 and conns[0]["authed"] and len(conns[0]["topics"]) == 4
    assert fake.connects["private"] == 2


def test_maintenance_refuses_connects_then_the_stream_comes_back(fake: FakeBybit) -> None:
    async def go() -> list[str]:
        async with public(fake, ["kline.1.BTCUSDT"]) as s:
            await ready(s, fake)
            fake.maintenance(60)
            fake.drop_all_ws(1001)
            details = []
            while (e := await s.next(WAIT_S)).kind != "reconnected":
                details.append(e.detail)
                if e.detail == "connect refused (HTTP 503)":
                    fake.maintenance(0)  # over once a connect was refused
            await registered(fake, "public", 2)
            return details

    details = run(go())
    assert fake.connects["public"] == 2
    assert "connect refused (HTTP 503)" in details


def test_wrong_keys_end_the_private_stream_with_one_error(fake: FakeBybit) -> None:
    bad = Credentials("demo", fake.api_key, "wrong-secret-0000")

    async def go() -> StreamEvent:
        async with private(fake, bad) as s:
            return await until(s, "error")

    event = run(go())
    assert event.detail.startswith("Bybit private stream: auth refused")
    assert "wrong-secret-0000" not in event.detail and fake.api_key not in event.detail


def _first(events: list[StreamEvent], kind: str) -> int:
    """Index of the first event of `kind` (len(events) if none)."""
    return next((i for i, e in enumerate(events) if e.kind == kind), len(events))
