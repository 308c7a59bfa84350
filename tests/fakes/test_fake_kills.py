"""The fake's crash hooks: a client process is SIGKILLed at exactly the step it was armed for (the
request arrived, applied, answered; an execution pushed; a socket connecting), and the exchange is
left in the state that step names. The "client" here is a sleeping child process; the requests
come from the test, signed as any client's."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from fakes.bybit import FakeBybit

from .test_fake_exchange import T0, Api, private_ws, recv

CREATE = "/v5/order/create"


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as f:
        f.set_time(T0)
        f.trade("BTCUSDT", 50_000.0)
        yield f


@pytest.fixture
def api(fake: FakeBybit) -> Iterator[Api]:
    a = Api(fake)
    yield a
    a.http.close()


@pytest.fixture
def client() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def dead(proc: subprocess.Popen[bytes]) -> bool:
    """Killed by SIGKILL (the kill is complete before the fake goes on: no waiting here)."""
    return proc.poll() == -9


def order(api: Api, link: str, **extra: Any) -> httpx.Response:
    body = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market",
            "qty": "0.01", "orderLinkId": link, **extra}  # fmt: skip
    return api.post(CREATE, body)


def test_killed_when_a_create_arrives_nothing_is_applied_or_answered(
    fake: FakeBybit, api: Api, client: subprocess.Popen[bytes]
) -> None:
    fake.kill_on(client.pid, "received", CREATE)
    with pytest.raises(httpx.RemoteProtocolError):
        order(api, "a-1")
    assert dead(client)
    assert fake.orders == {} and fake.kills_armed == 0
    assert fake.kills == [{"pid": client.pid, "step": "received", "where": CREATE, "at": T0}]
    assert order(api, "a-1").json()["retCode"] == 0  # a hook fires once


def test_killed_after_the_create_is_applied_the_order_exists_unanswered(
    fake: FakeBybit, api: Api, client: subprocess.Popen[bytes]
) -> None:
    fake.kill_on(client.pid, "applied", CREATE)
    with pytest.raises(httpx.RemoteProtocolError):
        order(api, "a-1")
    assert dead(client)
    assert [o["orderLinkId"] for o in fake.orders.values()] == ["a-1"]
    assert order(api, "a-1").json()["retCode"] == 110072  # the retry finds it by its link id


def test_killed_after_the_answer_left(
    fake: FakeBybit, api: Api, client: subprocess.Popen[bytes]
) -> None:
    fake.kill_on(client.pid, "answered", CREATE)
    r = order(api, "a-1")
    assert client.wait(5) == -9  # killed just after the answer left: it may be read first
    assert r.json()["retCode"] == 0 and r.json()["result"]["orderLinkId"] == "a-1"


def test_a_hook_fires_at_the_nth_request_that_matches(
    fake: FakeBybit, api: Api, client: subprocess.Popen[bytes]
) -> None:
    fake.kill_on(client.pid, "received", CREATE, nth=2, match=lambda b: b.get("side") == "Sell")
    assert order(api, "a-1", side="Sell").json()["retCode"] == 0
    assert order(api, "a-2").json()["retCode"] == 0  # a Buy: not counted
    assert not dead(client)
    with pytest.raises(httpx.RemoteProtocolError):
        order(api, "a-3", side="Sell")
    assert dead(client)
    assert sorted(o["orderLinkId"] for o in fake.orders.values()) == ["a-1", "a-2"]


def test_killed_once_an_execution_is_on_the_wire(
    fake: FakeBybit, api: Api, client: subprocess.Popen[bytes]
) -> None:
    async def go() -> list[dict[str, Any]]:
        ws = await private_ws(fake)
        assert order(api, "a-1").json()["retCode"] == 0
        await recv(ws), await recv(ws)  # the order and the position it pushes
        fake.kill_on(client.pid, "execution")
        assert not dead(client)
        fake.trade("BTCUSDT", 50_010.0)  # fills: execution, order, position, wallet
        got = [await recv(ws) for _ in range(4)]
        await ws.close()
        return got

    got = asyncio.run(go())
    assert dead(client)
    assert [m["topic"] for m in got] == ["execution", "order", "position", "wallet"]
    assert fake.kills[0]["step"] == "execution" and fake.kills[0]["where"] == "execution"


def test_killed_while_a_stream_connects(fake: FakeBybit, client: subprocess.Popen[bytes]) -> None:
    fake.kill_on(client.pid, "connect", "private")

    async def go() -> None:
        pub = await websockets.connect(fake.ws_public_url)  # another stream: not this hook
        assert not dead(client)
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(fake.ws_private_url)
        assert refused.value.response.status_code == 503
        await pub.close()

    asyncio.run(go())
    assert dead(client) and fake.connects == {"public": 1, "private": 0}


def test_the_position_is_logged_at_every_confirmed_1m_bar(fake: FakeBybit, api: Api) -> None:
    fake.kline("BTCUSDT", "1", T0 - 90_000, 1, 1, 1, 1, 1, confirm=True)  # flat
    assert order(api, "a-1", stopLoss="49000").json()["retCode"] == 0
    fake.trade("BTCUSDT", 50_000.0)
    fake.kline("BTCUSDT", "1", T0 - 30_000, 1, 1, 1, 1, 1, confirm=False)  # not closed: skipped
    fake.kline("BTCUSDT", "1", T0 - 30_000, 1, 1, 1, 1, 1, confirm=True)
    fake.kline("BTCUSDT", "5", T0 - 30_000, 1, 1, 1, 1, 1, confirm=True)  # not 1m: skipped
    assert fake.bar_positions == [
        {"close": T0 - 30_000, "symbol": "BTCUSDT", "side": "", "size": "0", "stopLoss": "0"},
        {"close": T0 + 30_000, "symbol": "BTCUSDT", "side": "Buy", "size": "0.01",
         "stopLoss": "49000"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("step", "where", "message"),
    [
        ("crash", None, "unknown kill step 'crash'"),
        ("received", None, "received names a REST path such as /v5/order/create, got None"),
        ("connect", "/v5/private", "connect names a stream (public or private)"),
        ("execution", "private", "execution names no path or stream, got 'private'"),
    ],
)
def test_a_bad_hook_is_refused(fake: FakeBybit, step: str, where: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fake.kill_on(1, step, where)
    assert fake.kills_armed == 0
