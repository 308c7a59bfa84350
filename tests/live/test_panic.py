"""`trade panic` against the fake exchange: two open positions with their stops, resting entries
and a conditional order, while Bybit answers 10006 twice and 10016 once (the close applied, the
answer lost): at the end everything is flat and cancelled, each position got exactly one close,
and the kill switch refuses `trade play run` until `trade panic --reset`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fakes.bybit import FakeBybit
from trade.exchange.bybit import BybitRest, Credentials

from .cli_run import process_env, trade


@pytest.fixture
def env(tmp_path: Path, fake: FakeBybit) -> dict[str, str]:
    return process_env(tmp_path, fake, demo_keys=True, sample=False)


def open_account(fake: FakeBybit) -> None:
    """A long BTCUSDT and a short ETHUSDT, each with a stop; a resting limit entry on each; a
    conditional order on BTCUSDT."""
    fake.fill_mode = "immediate"
    fake.trade("BTCUSDT", 100_000.0)
    fake.trade("ETHUSDT", 2_500.0)

    async def go() -> None:
        creds = Credentials("demo", fake.api_key, fake.api_secret)
        async with BybitRest(fake.rest_url, environment="demo", credentials=creds) as rest:
            await rest.sync_time()
            for body in (
                {"symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.01",
                 "stopLoss": "97000", "tpslMode": "Full", "orderLinkId": "a-en"},
                {"symbol": "ETHUSDT", "side": "Sell", "orderType": "Market", "qty": "0.5",
                 "stopLoss": "2600", "tpslMode": "Full", "orderLinkId": "b-en"},
                {"symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit", "qty": "0.01",
                 "price": "90000", "orderLinkId": "a-limit"},
                {"symbol": "ETHUSDT", "side": "Sell", "orderType": "Limit", "qty": "0.5",
                 "price": "2800", "orderLinkId": "b-limit"},
                {"symbol": "BTCUSDT", "side": "Sell", "orderType": "Market", "qty": "0.01",
                 "triggerPrice": "95000", "triggerDirection": 2, "reduceOnly": True,
                 "orderLinkId": "a-cond"},
            ):  # fmt: skip
                await rest.place_order(body)

    asyncio.run(go())


def test_panic_flattens_through_rate_limits_and_a_lost_answer_then_blocks_new_sessions(
    fake: FakeBybit, env: dict[str, str]
) -> None:
    open_account(fake)
    pos = fake.positions
    assert (pos["BTCUSDT"]["size"], pos["BTCUSDT"]["stopLoss"]) == ("0.01", "97000")
    assert (pos["ETHUSDT"]["size"], pos["ETHUSDT"]["stopLoss"]) == ("0.5", "2600")
    assert sum(o["orderStatus"] in ("New", "Untriggered") for o in fake.orders.values()) == 3
    fake.inject("ratelimit", "/v5/order/cancel-all", times=1)
    fake.inject("ratelimit", "/v5/order/create", times=1)
    fake.inject("unknown_after_apply", "/v5/order/create", times=1)
    before = len(fake.requests)

    done = trade("panic", "--mode", "demo", "--confirm", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo account flat: no open position, no open order" in done.stdout
    assert "closed BTCUSDT long 0.01" in done.stdout and "closed ETHUSDT short 0.5" in done.stdout
    assert all(p["size"] == "0" for p in fake.positions.values()), fake.positions
    assert [o for o in fake.orders.values() if not _final(o)] == []
    closes = [o for o in fake.orders.values() if o["orderLinkId"].startswith("panic-")]
    assert sorted((o["symbol"], o["side"], o["qty"], o["orderStatus"]) for o in closes) == [
        ("BTCUSDT", "Sell", "0.01", "Filled"),
        ("ETHUSDT", "Buy", "0.5", "Filled"),
    ]
    assert all(o["reduceOnly"] for o in closes)
    # the faults were met: two rate-limited answers, one lost answer looked up by orderLinkId
    sent = fake.requests[before:]
    creates = [r for r in sent if r.path == "/v5/order/create"]
    # BTCUSDT's close: rate-limited, re-sent, applied with its answer lost (found by its link id,
    # never sent a third time); ETHUSDT's close: once
    assert [r.json()["symbol"] for r in creates] == ["BTCUSDT", "BTCUSDT", "ETHUSDT"]
    assert sum(r.path == "/v5/order/cancel-all" for r in sent) == 2
    assert any(r.path == "/v5/order/realtime" and "orderLinkId" in r.query for r in sent)

    refused = trade("play", "run", "--play", "ema_cross", "--mode", "paper", env=env)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "kill switch on (trade panic --mode demo at" in (
        refused.stderr
    ), refused.stderr
    assert "until `trade panic --reset`" in refused.stderr
    again = trade("panic", "--reset", env=env)
    assert again.returncode == 0 and again.stdout.startswith("kill switch removed")
    allowed = trade("play", "run", "--play", "ema_cross", "--mode", "live", env=env)
    assert allowed.returncode == 2 and "--mode live trades real money" in allowed.stderr


def _final(o: dict) -> bool:
    return o["orderStatus"] in ("Filled", "Cancelled", "Rejected", "Deactivated")


def test_panic_needs_confirm_and_a_mode(fake: FakeBybit, env: dict[str, str]) -> None:
    for args, message in (
        (["--mode", "demo"], "add --confirm"),
        (["--mode", "paper", "--confirm"], "--mode 'paper': expected demo or live"),
    ):
        done = trade("panic", *args, env=env)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert message in done.stderr
    assert fake.requests == []
    assert not (Path(env["HOME"]) / ".trade" / "KILL_SWITCH").exists()
