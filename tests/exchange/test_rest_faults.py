"""The REST error policy against injected faults: each case asserts what happened on the exchange
(how many orders exist, how many requests were sent), not only what the client raised."""

from __future__ import annotations

import time

import pytest

from fakes.bybit import FakeBybit
from trade.exchange.bybit import (
    ConfigError,
    Credentials,
    IpBanned,
    RateLimited,
    Unavailable,
    UnknownOutcome,
)

from .conftest import buy, client, run

ENTRY = buy("f-entry-1")
# the client's timeout against the fake's "timeout" faults: an answer that never comes in time
# (10 s) is told apart from a normal one (milliseconds, a second or so on a loaded machine)
CLIENT_TIMEOUT_S = 2.0


def creates(fake: FakeBybit) -> int:
    return sum(r.path == "/v5/order/create" for r in fake.requests)


def orders_with_link(fake: FakeBybit, link: str) -> int:
    return sum(o["orderLinkId"] == link for o in fake.orders.values())


def place(fake: FakeBybit, creds: Credentials, **kw: float) -> str:
    async def go() -> str:
        async with client(fake, creds, **kw) as c:
            return (await c.place_order(ENTRY)).order_link_id

    return run(go())


def test_rate_limit_on_create_waits_for_the_reset_and_sends_once_more(
    fake: FakeBybit, creds: Credentials
) -> None:
    fake.trade("BTCUSDT", 100_000)
    fake.rate_limit_reset_ms = 300
    fake.inject("ratelimit", path="/v5/order/create")
    t = time.monotonic()
    assert place(fake, creds) == "f-entry-1"
    assert time.monotonic() - t >= 0.2  # waited for the window's reset, not the 10 ms backoff
    assert creates(fake) == 2 and orders_with_link(fake, "f-entry-1") == 1


def test_rate_limit_that_persists_gives_up_typed(fake: FakeBybit, creds: Credentials) -> None:
    fake.rate_limit_reset_ms = 1
    fake.inject("ratelimit", path="/v5/account/wallet-balance", times=10)

    async def go() -> None:
        async with client(fake, creds, retries=2) as c:
            await c.wallet()

    with pytest.raises(RateLimited, match=r"giving up after 3 attempts"):
        run(go())


@pytest.mark.parametrize("fault", ["unknown_after_apply", "timeout_after_apply"])
def test_unknown_outcome_after_apply_is_looked_up_not_resent(
    fake: FakeBybit, creds: Credentials, fault: str
) -> None:
    fake.trade("BTCUSDT", 100_000)
    fake.timeout_seconds = 10.0
    fake.inject(fault, path="/v5/order/create")
    assert place(fake, creds, timeout=CLIENT_TIMEOUT_S) == "f-entry-1"
    assert creates(fake) == 1  # found by orderLinkId: never re-sent
    assert orders_with_link(fake, "f-entry-1") == 1


@pytest.mark.parametrize("fault", ["unknown", "timeout", "http502"])
def test_unknown_outcome_not_applied_is_sent_again_with_the_same_link_id(
    fake: FakeBybit, creds: Credentials, fault: str
) -> None:
    fake.trade("BTCUSDT", 100_000)
    fake.timeout_seconds = 10.0
    fake.inject(fault, path="/v5/order/create")
    assert place(fake, creds, timeout=CLIENT_TIMEOUT_S) == "f-entry-1"
    bodies = [r.json() for r in fake.requests if r.path == "/v5/order/create"]
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # same orderLinkId both times
    assert orders_with_link(fake, "f-entry-1") == 1


def test_a_create_that_raises_unknown_outcome_on_its_own(
    fake: FakeBybit, creds: Credentials
) -> None:
    fake.trade("BTCUSDT", 100_000)
    fake.inject("unknown_after_apply", path="/v5/order/create")

    async def go() -> None:
        async with client(fake, creds) as c:
            await c.create_order(ENTRY)

    with pytest.raises(UnknownOutcome, match=r"/v5/order/create: retCode 10016"):
        run(go())
    assert orders_with_link(fake, "f-entry-1") == 1


def test_duplicate_link_id_means_the_order_exists(fake: FakeBybit, creds: Credentials) -> None:
    fake.trade("BTCUSDT", 100_000)
    assert place(fake, creds) == "f-entry-1"
    assert place(fake, creds) == "f-entry-1"  # 110072 → found, not an error
    assert orders_with_link(fake, "f-entry-1") == 1


@pytest.mark.parametrize("skew_ms", [-3_000, 10_000])
def test_clock_skew_resyncs_once_and_succeeds(
    fake: FakeBybit, creds: Credentials, skew_ms: int
) -> None:
    fake.clock_skew_ms = skew_ms  # -3 s: the local clock runs ahead; +10 s: it lags

    async def go() -> tuple[float, int, int]:
        async with client(fake, creds) as c:
            wallet = await c.wallet()
            return wallet.equity, c.resyncs, c.offset_ms

    equity, resyncs, offset = run(go())
    assert equity > 0 and resyncs == 1 and abs(offset - skew_ms) < 500
    assert sum(r.path == "/v5/account/wallet-balance" for r in fake.requests) == 2


def test_http_403_pauses_every_request_without_a_storm(fake: FakeBybit, creds: Credentials) -> None:
    fake.inject("http403")

    async def go() -> None:
        async with client(fake, creds) as c:
            with pytest.raises(IpBanned, match=r"HTTP 403.*pauses for 10 min"):
                await c.wallet()
            for _ in range(5):
                with pytest.raises(IpBanned, match=r"paused after HTTP 403"):
                    await c.positions("BTCUSDT")

    run(go())
    assert len(fake.requests) == 1


def test_5xx_on_a_read_is_retried(fake: FakeBybit, creds: Credentials) -> None:
    fake.inject("http500", times=2)

    async def go() -> float:
        async with client(fake, creds) as c:
            return (await c.wallet()).equity

    assert run(go()) > 0
    assert [r.path for r in fake.requests] == ["/v5/account/wallet-balance"] * 3


def test_maintenance_reads_give_up_typed_and_recover_after(
    fake: FakeBybit, creds: Credentials
) -> None:
    fake.maintenance(60)  # longer than any retrying on a loaded machine

    async def go() -> float:
        async with client(fake, creds, retries=1) as c:
            with pytest.raises(Unavailable, match=r"retCode 10016"):
                await c.wallet()
            fake.maintenance(0)  # over
            return (await c.wallet()).equity

    assert run(go()) > 0


def test_wrong_secret_and_unknown_key_are_fatal_configuration(fake: FakeBybit) -> None:
    async def go(creds: Credentials) -> None:
        async with client(fake, creds) as c:
            await c.wallet()

    with pytest.raises(ConfigError, match=r"10004: request signature was refused") as bad_sign:
        run(go(Credentials("demo", fake.api_key, "not-the-secret")))
    with pytest.raises(ConfigError, match=r"10003: API key is invalid") as unknown:
        run(go(Credentials("demo", "NOSUCHKEY", "x")))
    assert bad_sign.value.exit_code == unknown.value.exit_code == 2
    assert len(fake.requests) == 2  # no retries of a configuration error
