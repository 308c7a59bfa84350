"""The one async client for Bybit's v5 REST API (httpx), with retries that respect rate limits.

Transient failures are retried with exponential backoff: retCode 10006 and HTTP 429 (waiting until
`X-Bapi-Limit-Reset-Timestamp` when the answer carries it), HTTP 5xx, timeouts and dropped
connections. Any other error is an ExchangeError naming the endpoint and Bybit's message; nothing is
swallowed. The base URL comes from `trade.config.bybit_rest_url()` (`$TRADE_BYBIT_REST_URL`) so tests
talk to a fake server on 127.0.0.1.

Market endpoints live here now; private endpoints (orders, positions, wallet) join later through the
same `request()` with an `auth` signer that adds Bybit's `X-BAPI-*` headers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ... import config
from ...errors import ExchangeError
from ...instruments import InstrumentSpec
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
KLINE_LIMIT = 1000  # Bybit's maximum page for klines
FUNDING_LIMIT = 200  # ... and for funding history
MAX_WAIT_S = 30.0  # never sleep longer than this on one reset header

#: (method, path, query-or-body text) → headers to add; the live path supplies a signer.
Auth = Callable[[str, str, str], dict[str, str]]


def interval_of(tf: str) -> str:
    """Bybit's `interval` parameter for one of our timeframe names."""
    return INTERVALS[canonical(tf)]


class BybitRest:
    """Async Bybit v5 REST client; use as `async with BybitRest() as client:`."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 6,
        backoff: float = 0.2,
        auth: Auth | None = None,
    ) -> None:
        self.base_url = (base_url or config.bybit_rest_url()).rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.auth = auth
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self.retried = 0  # transient failures retried so far (reported by `trade data sync`)

    async def __aenter__(self) -> BybitRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()

    # ------------------------------------------------------------------ transport

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one request and return Bybit's `result`, retrying transient failures."""
        query = {k: str(v) for k, v in (params or {}).items()}
        payload = json.dumps(body, separators=(",", ":")) if body is not None else ""
        delay, last = self.backoff, ""
        for _attempt in range(self.retries + 1):
            headers = {"Content-Type": "application/json"} if body is not None else {}
            if self.auth is not None:
                signed = payload if body is not None else str(httpx.QueryParams(query))
                headers |= self.auth(method, path, signed)
            try:
                r = await self.client.request(
                    method, path, params=query, content=payload or None, headers=headers
                )
            except httpx.TransportError as exc:  # timeouts, refused or dropped connections
                last = f"{type(exc).__name__}"
                await self._pause(None, delay)
            else:
                transient, result = self._parse(path, r)
                if not transient:
                    return result
                last = transient
                await self._pause(r, delay)
            delay *= 2
            self.retried += 1
        raise ExchangeError(
            f"Bybit {path}: giving up after {self.retries + 1} attempts (last: {last})"
        )

    async def get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("GET", path, params)

    @staticmethod
    def _parse(path: str, r: httpx.Response) -> tuple[str, dict[str, Any]]:
        """('', result) on success, (reason, {}) for a retryable answer; raises for the rest."""
        if r.status_code == 429 or r.status_code >= 500:
            return f"HTTP {r.status_code}", {}
        if r.status_code != 200:
            raise ExchangeError(f"Bybit {path}: HTTP {r.status_code}: {r.text[:200]}")
        try:
            body = r.json()
        except ValueError:
            raise ExchangeError(f"Bybit {path}: answer is not JSON: {r.text[:200]!r}") from None
        code = body.get("retCode")
        if code == 0:
            return "", body.get("result") or {}
        if code == RATE_LIMIT:
            return f"retCode {code}", {}
        raise ExchangeError(f"Bybit {path}: retCode {code}: {body.get('retMsg')}")

    @staticmethod
    async def _pause(r: httpx.Response | None, delay: float) -> None:
        """Sleep until the rate-limit window resets when Bybit says when, else the backoff delay."""
        reset = None if r is None else r.headers.get("X-Bapi-Limit-Reset-Timestamp")
        if reset is not None and reset.isdigit():
            await asyncio.sleep(min(max(int(reset) / 1000.0 - time.time(), 0.0), MAX_WAIT_S))
        else:
            await asyncio.sleep(delay)

    # ------------------------------------------------------------------ market endpoints

    async def klines(
        self, symbol: str, tf: str, start_ms: int, end_ms: int, *, mark: bool = False
    ) -> list[list[str]]:
        """Up to 1000 klines opening in [start, end] (both inclusive), oldest first.

        Bybit answers newest first; rows are `[start, open, high, low, close, volume, turnover]`
        (mark klines stop after close)."""
        path = "/v5/market/mark-price-kline" if mark else "/v5/market/kline"
        res = await self.get(
            path,
            {
                "category": "linear",
                "symbol": symbol,
                "interval": interval_of(tf),
                "start": start_ms,
                "end": end_ms,
                "limit": KLINE_LIMIT,
            },
        )
        return _by_time(path, res.get("list", []), lambda row: row[0])

    async def funding(self, symbol: str, start_ms: int, end_ms: int) -> list[dict[str, str]]:
        """Up to 200 funding settlements in [start, end], oldest first."""
        res = await self.get(
            "/v5/market/funding/history",
            {
                "category": "linear",
                "symbol": symbol,
                "startTime": start_ms,
                "endTime": end_ms,
                "limit": FUNDING_LIMIT,
            },
        )
        return _by_time(
            "/v5/market/funding/history",
            res.get("list", []),
            lambda row: row["fundingRateTimestamp"],
        )

    async def instrument(self, symbol: str) -> dict[str, Any]:
        """The raw `instruments-info` entry of a linear perpetual."""
        res = await self.get(
            "/v5/market/instruments-info", {"category": "linear", "symbol": symbol}
        )
        items = res.get("list", [])
        if not items:
            raise ExchangeError(f"Bybit has no linear instrument {symbol!r}")
        return items[0]


def _by_time(path: str, rows: Any, ts_of: Callable[[Any], Any]) -> list[Any]:
    """Rows sorted by their timestamp, which must be a decimal integer; any other answer (a
    text, a float, a missing field) is refused with the row shown, never a traceback."""
    if not isinstance(rows, list):
        raise ExchangeError(f"Bybit {path}: 'list' is not a list ({str(rows)[:80]})")
    for row in rows:
        try:
            ts = ts_of(row)
        except (KeyError, IndexError, TypeError):
            ts = None
        if not (isinstance(ts, str | int) and str(ts).isdigit() and len(str(ts)) <= 13):
            raise ExchangeError(f"Bybit {path}: malformed row {str(row)[:120]}")
    return sorted(rows, key=lambda row: int(ts_of(row)))


def instrument_spec(info: Mapping[str, Any], maintenance_margin_rate: float) -> InstrumentSpec:
    """Our InstrumentSpec from an `instruments-info` entry (the MMR comes from the risk tiers,
    which that endpoint does not carry, so the caller passes the one it knows)."""
    try:
        lot, price, lev = info["lotSizeFilter"], info["priceFilter"], info["leverageFilter"]
        return InstrumentSpec(
            symbol=str(info["symbol"]),
            tick_size=float(price["tickSize"]),
            qty_step=float(lot["qtyStep"]),
            min_qty=float(lot["minOrderQty"]),
            min_notional=float(lot.get("minNotionalValue") or 0.0),
            max_leverage=float(lev["maxLeverage"]),
            maintenance_margin_rate=maintenance_margin_rate,
            funding_interval_hours=float(info.get("fundingInterval") or 480) / 60.0,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ExchangeError(f"Bybit instruments-info: unexpected entry ({exc!r})") from None
