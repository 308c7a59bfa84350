"""A fake Bybit exchange per test, the client's environment pointed at it, and a runner for
coroutines (the fake lives on its own thread, so a test's event loop never blocks it)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from fakes.bybit import FakeBybit
from trade.exchange.bybit import BybitRest, Credentials
from trade.exchange.bybit import rest as rest_module

T = TypeVar("T")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBybit]:
    with FakeBybit() as server:
        for var, url in server.env().items():
            monkeypatch.setenv(var, url)
        yield server
    rest_module._ip_paused_until.clear()  # an HTTP 403 test must not pause the next test


@pytest.fixture
def creds(fake: FakeBybit) -> Credentials:
    return Credentials("demo", fake.api_key, fake.api_secret)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def client(fake: FakeBybit, creds: Credentials | None, **kw: Any) -> BybitRest:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 2.0)
    return BybitRest(fake.rest_url, environment="demo", credentials=creds, **kw)


def buy(link: str, qty: str = "0.01", price: str | None = None, symbol: str = "BTCUSDT") -> dict:
    """A buy order's parameters: Market, or Limit at `price`."""
    body = {"symbol": symbol, "side": "Buy", "orderType": "Market", "qty": qty, "orderLinkId": link}
    return body | ({"orderType": "Limit", "price": price} if price is not None else {})
