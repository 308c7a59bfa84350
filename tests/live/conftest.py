"""Sessions against the fake exchange: a home with the bundled sample in its market store, and a
fake Bybit the client reaches through the `TRADE_BYBIT_*_URL` overrides, with demo keys it knows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.bybit import FakeBybit
from trade.data import MarketStore
from trade.exchange.bybit import rest as rest_module

from .session_proc import STARTED


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TRADE_DB", str(tmp_path / "market.duckdb"))
    with MarketStore(tmp_path / "market.duckdb") as store:
        store.ensure_sample()
    return tmp_path


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBybit]:
    with FakeBybit() as server:
        for var, url in server.env().items():  # what a user's TRADE_BYBIT_*_URL would do
            monkeypatch.setenv(var, url)
        monkeypatch.setenv("BYBIT_DEMO_API_KEY", server.api_key)
        monkeypatch.setenv("BYBIT_DEMO_API_SECRET", server.api_secret)
        yield server
    rest_module._ip_paused_until.clear()  # an HTTP 403 test must not pause the next test


@pytest.fixture(autouse=True)
def reap_sessions() -> Iterator[None]:
    """A session process a test started does not outlive it, whatever the test's outcome."""
    yield
    while STARTED:
        STARTED.pop().reap()
