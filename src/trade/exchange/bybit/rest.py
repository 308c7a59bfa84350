"""A thin async client for Bybit's v5 REST API on httpx, with retries that respect rate limits.

Retries on retCode 10006 (rate limit; waits until `X-Bapi-Limit-Reset-Timestamp`), HTTP 429, 5xx and
timeouts, with exponential backoff; any other error code is an ExchangeError naming the endpoint.
The base URL comes from `TRADE_BYBIT_REST_URL` so tests talk to a fake server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx

from ... import config
from ...errors import ExchangeError
from ...timeframes import canonical

INTERVALS = {
    "1m": "1",
    "3m": "3",
    "5m": "5",
    "15m": "15",
    "30m": "30",
    "1h": "60",
    "2h": "120",
    "4h": "240",
    "6h": "360",
    "12h": "720",
    "D": "D",
    "W": "W",
}
RATE_LIMIT = 10006


def interval_of(tf: str) -> str:
    return INTERVALS[canonical(tf)]


class BybitRest:
    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 6,
        backoff: float = 0.2,
    ) -> None:
        self.base_url = (base_url or config.bybit_rest_url()).rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self.retried = 0

    async def __aenter__(self) -> BybitRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """GET a public endpoint and return `result`, retrying transient failures."""
        delay = self.backoff
        last = ""
        for _attempt in range(self.retries + 1):
            try:
                r = await self.client.get(path, params=dict(params))
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{type(exc).__name__}"
            else:
                if r.status_code == 429 or r.status_code >= 500:
                    last = f"HTTP {r.status_code}"
                    await self._wait_reset(r, delay)
                    delay *= 2
                    self.retried += 1
                    continue
                if r.status_code != 200:
                    raise ExchangeError(f"Bybit {path}: HTTP {r.status_code}: {r.text[:200]}")
                body = r.json()
                code = body.get("retCode")
                if code == 0:
                    return body["result"]
                if code != RATE_LIMIT:
                    raise ExchangeError(f"Bybit {path}: retCode {code}: {body.get('retMsg')}")
                last = f"retCode {code}"
                await self._wait_reset(r, delay)
                delay *= 2
                self.retried += 1
                continue
            self.retried += 1
            await asyncio.sleep(delay)
            delay *= 2
        raise ExchangeError(
            f"Bybit {path}: giving up after {self.retries + 1} attempts (last: {last})"
        )

    @staticmethod
    async def _wait_reset(r: httpx.Response, delay: float) -> None:
        reset = r.headers.get("X-Bapi-Limit-Reset-Timestamp")
        if reset is not None:
            wait = int(reset) / 1000.0 - time.time()
            await asyncio.sleep(min(max(wait, 0.0), 10.0))
        else:
            await asyncio.sleep(delay)

    async def klines(
        self, symbol: str, tf: str, start_ms: int, end_ms: int, *, mark: bool = False
    ) -> list[list[str]]:
        """Up to 1000 klines with start in [start, end], oldest first (Bybit answers newest first)."""
        path = "/v5/market/mark-price-kline" if mark else "/v5/market/kline"
        res = await self.get(
            path,
            {
                "category": "linear",
                "symbol": symbol,
                "interval": interval_of(tf),
                "start": start_ms,
                "end": end_ms,
                "limit": 1000,
            },
        )
        rows = res.get("list", [])
        return sorted(rows, key=lambda row: int(row[0]))

    async def funding(self, symbol: str, start_ms: int, end_ms: int) -> list[dict[str, str]]:
        res = await self.get(
            "/v5/market/funding/history",
            {
                "category": "linear",
                "symbol": symbol,
                "startTime": start_ms,
                "endTime": end_ms,
                "limit": 200,
            },
        )
        return sorted(res.get("list", []), key=lambda row: int(row["fundingRateTimestamp"]))

    async def instrument(self, symbol: str) -> dict[str, Any]:
        res = await self.get(
            "/v5/market/instruments-info", {"category": "linear", "symbol": symbol}
        )
        items = res.get("list", [])
        if not items:
            raise ExchangeError(f"Bybit has no linear instrument {symbol!r}")
        return items[0]
