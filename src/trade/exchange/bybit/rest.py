"""The one async client for Bybit's v5 REST API (httpx): signing, the exchange's clock, and the
error policy of `errors.py` applied in one place.

- Reads and idempotent writes (leverage, modes, trading-stop, cancel-all) are retried through rate
  limits (until `X-Bapi-Limit-Reset-Timestamp`), 5xx, 10016 and timeouts, with jittered backoff.
- Order create, amend and cancel are retried only where Bybit certainly did not apply them (rate
  limit, clock skew, connection refused). After a timeout, 5xx or 10016 the outcome is unknown and
  `UnknownOutcome` is raised: `place_order` then looks the order up by `orderLinkId` and re-sends
  (with the same id) only when Bybit has no such order.
- 10002 re-syncs the clock offset from `/v5/market/time` and retries once.
- HTTP 403 pauses every request to that host for ten minutes (`IpBanned` at once, no request storm).
- A key or secret never appears in an exception: Bybit's messages are scrubbed before they travel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ...bounds import MAX_FUNDING_RATE
from ...errors import ExchangeError
from ...instruments import InstrumentSpec
from ...timeframes import canonical, tf_ms
from .auth import DEFAULT_RECV_WINDOW, Credentials, rest_headers
from .environment import endpoints
from .errors import (
    CLOCK,
    NOT_MODIFIED,
    PROCESSING,
    RATE_LIMIT_CODES,
    SERVER_BUSY,
    BybitError,
    ClockSkew,
    DuplicateOrder,
    IpBanned,
    RateLimited,
    Rejected,
    Unavailable,
    UnknownOutcome,
    classify,
)
from .models import Execution, Kline, Order, Position, Wallet, field_of, millis, number

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
KLINE_LIMIT = 1000  # Bybit's maximum page for klines
FUNDING_LIMIT = 200  # ... for funding history
ORDER_PAGE = 50  # ... for order lists
EXEC_PAGE = 100  # ... for executions
MAX_WAIT_S = 30.0  # never sleep longer than this on one reset header
IP_BAN_PAUSE_S = 600.0
#: Writes whose outcome is unknown after a timeout, 5xx or 10016 (not idempotent by themselves).
ORDER_WRITES = frozenset({"/v5/order/create", "/v5/order/amend", "/v5/order/cancel"})

#: host → monotonic time until which every request to it is refused (after an HTTP 403)
_ip_paused_until: dict[str, float] = {}


def interval_of(tf: str) -> str:
    """Bybit's `interval` parameter for one of our timeframe names."""
    return INTERVALS[canonical(tf)]


@dataclass(frozen=True)
class Ack:
    """Bybit's answer to an order write: the ids only; the state comes from the streams."""

    order_id: str
    order_link_id: str


class BybitRest:
    """Async Bybit v5 REST client; use as `async with BybitRest(...) as client:`.

    `environment` picks the hosts (demo or live, after the `TRADE_BYBIT_*` overrides); a
    `base_url` wins over both. Private endpoints need `credentials`."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        environment: str = "live",
        credentials: Credentials | None = None,
        timeout: float = 10.0,
        retries: int = 6,
        backoff: float = 0.2,
        recv_window: int = DEFAULT_RECV_WINDOW,
    ) -> None:
        self.base_url = (base_url or endpoints(environment).rest).rstrip("/")
        self.environment = environment
        self.credentials = credentials
        self.retries = retries
        self.backoff = backoff
        self.recv_window = recv_window
        self.offset_ms = 0  # exchange clock minus local clock, from the last sync
        self.retried = 0  # transient failures retried so far (reported by `trade data sync`)
        self.resyncs = 0  # clock re-syncs forced by 10002
        self.limits: dict[str, tuple[int, int, int]] = {}  # path → (limit, remaining, reset ms)
        self.ip_ban_pause_s = IP_BAN_PAUSE_S
        self.host = httpx.URL(self.base_url).host
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def __aenter__(self) -> BybitRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()

    # ------------------------------------------------------------------ the exchange's clock

    def now_ms(self) -> int:
        """The exchange's time as last measured: the local clock plus the offset (from the last
        sync, moved forward by any later server timestamp)."""
        return int(time.time() * 1000) + self.offset_ms

    def observe_server_time(self, server_ms: int) -> None:
        """A timestamp the exchange sent (an answer's `time`, a closed bar's end): the exchange's
        clock is at least there, so `now_ms` never runs behind what the exchange has shown. (An
        exchange whose clock jumps ahead, like a test exchange replaying a day, is followed.)"""
        if 0 < server_ms < 10**14:
            ahead = server_ms - int(time.time() * 1000)
            if ahead > self.offset_ms:
                self.offset_ms = ahead

    async def server_time(self) -> int:
        res = await self.request("GET", "/v5/market/time")
        nano, sec = str(res.get("timeNano", "")), str(res.get("timeSecond", ""))
        if nano.isdigit():
            return millis(int(nano) // 1_000_000, "server time")
        if sec.isdigit():
            return millis(int(sec) * 1000, "server time")
        raise BybitError("/v5/market/time", None, f"no server time in {res!r:.120}")

    async def sync_time(self) -> int:
        """Measure the offset to the exchange's clock (midpoint of the round trip); returns it."""
        before = time.time() * 1000
        server = await self.server_time()
        after = time.time() * 1000
        self.offset_ms = int(server - (before + after) / 2)
        return self.offset_ms

    # ------------------------------------------------------------------ transport

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        *,
        signed: bool = False,
    ) -> dict[str, Any]:
        """Send one request and return Bybit's `result`, applying the error policy."""
        if signed and self.credentials is None:
            raise BybitError(path, None, "this endpoint needs API keys")
        query = str(httpx.QueryParams({k: str(v) for k, v in (params or {}).items()}))
        payload = json.dumps(body, separators=(",", ":")) if body is not None else ""
        order_write = path in ORDER_WRITES
        delay, last, clock_retried = self.backoff, "", False
        attempt = 0
        while attempt <= self.retries:
            self._check_ip_pause(path)
            await self._respect_limit(path)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            if signed:
                assert self.credentials is not None
                signed_text = payload if body is not None else query
                headers |= rest_headers(
                    self.credentials, self.now_ms(), signed_text, self.recv_window
                )
            url = f"{path}?{query}" if query else path
            try:
                r = await self.client.request(method, url, content=payload or None, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never reached Bybit
                last = type(exc).__name__
            except httpx.TransportError as exc:  # sent, answer lost: timeouts, dropped sockets
                last = type(exc).__name__
                if order_write:
                    raise UnknownOutcome(path, None, f"{last} after sending") from None
            else:
                self._note_limits(path, r)
                outcome = self._outcome(path, r, order_write)
                if isinstance(outcome, dict):
                    return outcome
                if outcome == "clock":
                    if clock_retried:
                        raise ClockSkew(path, CLOCK, "timestamp still outside recv_window")
                    clock_retried = True
                    self.resyncs += 1
                    await self.sync_time()
                    continue  # the one clock retry is not counted against `retries`
                last = outcome
                if outcome.startswith("rate limit"):
                    await self._wait_reset(r, delay)
                    attempt, delay = attempt + 1, delay * 2
                    self.retried += 1
                    continue
            attempt += 1
            if attempt > self.retries:
                break
            self.retried += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, MAX_WAIT_S)
        kind = RateLimited if last.startswith("rate limit") else Unavailable
        raise kind(path, None, self._redact(f"giving up after {attempt} attempts (last: {last})"))

    def _outcome(self, path: str, r: httpx.Response, order_write: bool) -> dict[str, Any] | str:
        """The result, or a retry reason ('clock', 'rate limit …', other); raises the rest."""
        if r.status_code == 403:
            _ip_paused_until[self.host] = time.monotonic() + self.ip_ban_pause_s
            raise IpBanned(
                path,
                None,
                f"HTTP 403: Bybit refuses this IP (rate limit breached or region blocked); "
                f"every request to {self.host} pauses for {self.ip_ban_pause_s / 60:g} min",
            )
        if r.status_code == 429:
            return "rate limit (HTTP 429)"
        if r.status_code >= 500:
            if order_write:
                raise UnknownOutcome(path, None, f"HTTP {r.status_code} after sending")
            return f"HTTP {r.status_code}"
        if r.status_code != 200:
            raise BybitError(path, None, self._redact(f"HTTP {r.status_code}: {r.text[:200]}"))
        try:
            answer = r.json()
            code = int(answer.get("retCode"))
        except (ValueError, TypeError, AttributeError):
            raise BybitError(path, None, f"answer is not a v5 envelope: {r.text[:120]!r}") from None
        stamp = answer.get("time")
        if isinstance(stamp, int) and not isinstance(stamp, bool):
            self.observe_server_time(stamp)
        message = self._redact(str(answer.get("retMsg", "")))
        if code == 0 or code in NOT_MODIFIED:
            result = answer.get("result")
            return result if isinstance(result, dict) else {}
        if code in RATE_LIMIT_CODES:
            return f"rate limit ({code})"
        if code == CLOCK:
            return "clock"
        if code in SERVER_BUSY:
            if order_write:
                raise UnknownOutcome(path, code, message)
            return f"retCode {code}"
        if code == PROCESSING:
            return f"retCode {code}"
        raise classify(path, code, message)

    def _redact(self, text: str) -> str:
        return self.credentials.redact(text) if self.credentials is not None else text

    def _check_ip_pause(self, path: str) -> None:
        until = _ip_paused_until.get(self.host, 0.0)
        if time.monotonic() < until:
            raise IpBanned(
                path, None, f"paused after HTTP 403 for {until - time.monotonic():.0f} s more"
            )

    def _note_limits(self, path: str, r: httpx.Response) -> None:
        h = r.headers
        if "X-Bapi-Limit-Status" not in h:
            return  # public endpoints carry no per-UID limit headers
        with contextlib.suppress(ValueError):
            self.limits[path] = (
                int(h.get("X-Bapi-Limit", "0")),
                int(h["X-Bapi-Limit-Status"]),
                int(h.get("X-Bapi-Limit-Reset-Timestamp", "0")),
            )

    async def _respect_limit(self, path: str) -> None:
        """Wait for the window to reset when the last answer said no request is left in it."""
        limit = self.limits.get(path)
        if limit is not None and limit[1] <= 0:
            wait = (limit[2] - self.now_ms()) / 1000.0
            if wait > 0:
                await asyncio.sleep(min(wait, MAX_WAIT_S))

    async def _wait_reset(self, r: httpx.Response, delay: float) -> None:
        """Sleep until the rate-limit window resets when Bybit says when, else the backoff."""
        reset = r.headers.get("X-Bapi-Limit-Reset-Timestamp")
        if reset is not None and reset.isdigit():
            await asyncio.sleep(min(max(int(reset) - self.now_ms(), 0) / 1000.0, MAX_WAIT_S))
        else:
            await asyncio.sleep(delay)

    async def get(self, path: str, params: Mapping[str, Any], *, signed: bool = False) -> dict:
        return await self.request("GET", path, params, signed=signed)

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body=body, signed=True)

    async def _pages(
        self, path: str, params: Mapping[str, Any], limit: int, *, signed: bool = True
    ) -> list[dict[str, Any]]:
        """Every item of a cursor-paginated list."""
        out: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(10_000):
            q = dict(params) | {"limit": limit} | ({"cursor": cursor} if cursor else {})
            res = await self.get(path, q, signed=signed)
            items = res.get("list") or []
            out += [i for i in items if isinstance(i, dict)]
            cursor = str(res.get("nextPageCursor") or "")
            if not cursor or not items:
                return out
        raise BybitError(path, None, "pagination did not end")

    # ------------------------------------------------------------------ market data

    async def klines(
        self, symbol: str, tf: str, start_ms: int, end_ms: int, *, mark: bool = False
    ) -> list[Kline]:
        """Up to 1000 klines opening in [start, end] (both inclusive), oldest first.

        Bybit answers newest first and includes the still-open bar; that one comes back with
        `confirm=False` (judged by the exchange's clock) and must never be stored as closed."""
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
        step, now = tf_ms(canonical(tf)), self.now_ms()
        what = f"{symbol} {'mark ' if mark else ''}{tf} kline"
        bars: dict[int, Kline] = {}
        for row in res.get("list") or []:
            start = millis(row[0] if isinstance(row, list) and row else None, f"{what} start")
            bars[start] = Kline.from_row(row, what, closed=start + step <= now, mark=mark)
        return [bars[k] for k in sorted(bars)]

    async def funding(self, symbol: str, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        """Up to 200 (timestamp, rate) settlements in [start, end], oldest first."""
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
        rows: dict[int, float] = {}
        for r in res.get("list") or []:
            ts = millis(field_of(r, "fundingRateTimestamp", "funding"), f"{symbol} funding time")
            rate = number(field_of(r, "fundingRate", "funding"), f"{symbol} fundingRate")
            if abs(rate) > MAX_FUNDING_RATE:
                raise ExchangeError(f"Bybit sent an impossible {symbol} funding rate at ts {ts}")
            rows[ts] = rate
        return sorted(rows.items())

    async def instruments(self) -> list[dict[str, Any]]:
        """Every trading linear instrument (cursor-paginated)."""
        return await self._pages(
            "/v5/market/instruments-info", {"category": "linear"}, 1000, signed=False
        )

    async def instrument(self, symbol: str) -> dict[str, Any]:
        """The raw `instruments-info` entry of a linear perpetual."""
        res = await self.get(
            "/v5/market/instruments-info", {"category": "linear", "symbol": symbol}
        )
        items = res.get("list") or []
        if not items:
            raise Rejected("/v5/market/instruments-info", None, f"no linear instrument {symbol!r}")
        return items[0]

    async def ticker(self, symbol: str) -> dict[str, Any]:
        res = await self.get("/v5/market/tickers", {"category": "linear", "symbol": symbol})
        items = res.get("list") or []
        if not items:
            raise Rejected("/v5/market/tickers", None, f"no ticker for {symbol!r}")
        return items[0]

    # ------------------------------------------------------------------ account

    async def wallet(self) -> Wallet:
        res = await self.get(
            "/v5/account/wallet-balance", {"accountType": "UNIFIED", "coin": "USDT"}, signed=True
        )
        accounts = res.get("list") or []
        return Wallet.parse(accounts[0] if accounts else {})

    async def account_info(self) -> dict[str, Any]:
        return await self.get("/v5/account/info", {}, signed=True)

    async def api_key_info(self) -> dict[str, Any]:
        """The key's permissions (mainnet only: demo does not serve `/v5/user/query-api`)."""
        return await self.get("/v5/user/query-api", {}, signed=True)

    async def positions(self, symbol: str) -> list[Position]:
        res = await self.get(
            "/v5/position/list", {"category": "linear", "symbol": symbol}, signed=True
        )
        return [Position.parse(p) for p in res.get("list") or []]

    async def set_leverage(self, symbol: str, leverage: float) -> None:
        lev = f"{leverage:g}"
        await self.post(
            "/v5/position/set-leverage",
            {"category": "linear", "symbol": symbol, "buyLeverage": lev, "sellLeverage": lev},
        )

    async def set_margin_mode(self, mode: str = "ISOLATED_MARGIN") -> None:
        """Account-wide on the unified account (not per symbol)."""
        res = await self.post("/v5/account/set-margin-mode", {"setMarginMode": mode})
        reasons = res.get("reasons") or []
        if reasons:
            text = "; ".join(f"{r.get('reasonCode')}: {r.get('reasonMsg')}" for r in reasons)
            raise Rejected("/v5/account/set-margin-mode", None, text)

    async def set_position_mode(self, symbol: str, hedge: bool = False) -> None:
        await self.post(
            "/v5/position/switch-mode",
            {"category": "linear", "symbol": symbol, "mode": 3 if hedge else 0},
        )

    async def trading_stop(
        self,
        symbol: str,
        *,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        trailing_stop: float | None = None,
    ) -> None:
        """Set the position's exchange-resident TP/SL (full mode, triggered by last price);
        0 removes a level, None leaves it as it is."""
        body: dict[str, Any] = {
            "category": "linear",
            "symbol": symbol,
            "tpslMode": "Full",
            "positionIdx": 0,
        }
        if stop_loss is not None:
            body |= {"stopLoss": _text(stop_loss), "slTriggerBy": "LastPrice"}
        if take_profit is not None:
            body |= {"takeProfit": _text(take_profit), "tpTriggerBy": "LastPrice"}
        if trailing_stop is not None:
            body["trailingStop"] = _text(trailing_stop)
        await self.post("/v5/position/trading-stop", body)

    async def closed_pnl(self, symbol: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        return await self._pages(
            "/v5/position/closed-pnl",
            {"category": "linear", "symbol": symbol, "startTime": start_ms, "endTime": end_ms},
            100,
        )

    # ------------------------------------------------------------------ orders

    async def create_order(self, params: Mapping[str, Any]) -> Ack:
        """One `order/create`; raises UnknownOutcome when Bybit may have applied it."""
        body = {"category": "linear", "positionIdx": 0} | dict(params)
        res = await self.post("/v5/order/create", body)
        return Ack(str(res.get("orderId", "")), str(res.get("orderLinkId", "")))

    async def place_order(self, params: Mapping[str, Any], attempts: int = 3) -> Ack:
        """Create an order exactly once, whatever happens on the wire.

        `params` must carry an `orderLinkId`. After an unknown outcome the order is looked up by
        that id; only when Bybit has no such order is the same request sent again, and a
        duplicate-id answer means the earlier request did create it."""
        link = str(params.get("orderLinkId") or "")
        if not link:
            raise ValueError("place_order needs an orderLinkId")
        symbol = str(params["symbol"])
        for _ in range(attempts):
            try:
                return await self.create_order(params)
            except UnknownOutcome:
                pass
            except DuplicateOrder:
                pass
            try:
                found = await self.find_order(symbol, link)
            except (Unavailable, RateLimited) as exc:
                raise UnknownOutcome(
                    "/v5/order/create",
                    None,
                    f"order {link}: outcome unknown, look-up failed ({exc})",
                ) from None
            if found is not None:
                return Ack(found.order_id, found.order_link_id)
        raise UnknownOutcome(
            "/v5/order/create",
            None,
            f"order {link} neither confirmed nor found after {attempts} tries",
        )

    async def amend_order(self, symbol: str, order_link_id: str, **fields: float) -> Ack:
        body: dict[str, Any] = {
            "category": "linear",
            "symbol": symbol,
            "orderLinkId": order_link_id,
        }
        body |= {k: _text(v) for k, v in fields.items()}
        res = await self.post("/v5/order/amend", body)
        return Ack(str(res.get("orderId", "")), str(res.get("orderLinkId", order_link_id)))

    async def cancel_order(
        self, symbol: str, order_link_id: str = "", *, order_id: str = ""
    ) -> Ack:
        """Cancel by `orderLinkId`, or by `order_id` (an order without one: not ours)."""
        by = {"orderId": order_id} if order_id else {"orderLinkId": order_link_id}
        res = await self.post("/v5/order/cancel", {"category": "linear", "symbol": symbol} | by)
        return Ack(str(res.get("orderId", "")), str(res.get("orderLinkId", order_link_id)))

    async def cancel_all(self, symbol: str) -> list[Ack]:
        res = await self.post("/v5/order/cancel-all", {"category": "linear", "symbol": symbol})
        return [
            Ack(str(i.get("orderId", "")), str(i.get("orderLinkId", "")))
            for i in res.get("list") or []
        ]

    async def open_orders(self, symbol: str, **by: str) -> list[Order]:
        """Open orders of `symbol` (or one by `orderId=` / `orderLinkId=`, open or recently final)."""
        q: dict[str, Any] = {"category": "linear", "symbol": symbol} | by
        if not by:
            q["openOnly"] = 0
        return [Order.parse(o) for o in await self._pages("/v5/order/realtime", q, ORDER_PAGE)]

    async def order_history(self, symbol: str, **by: Any) -> list[Order]:
        q = {"category": "linear", "symbol": symbol} | by
        return [Order.parse(o) for o in await self._pages("/v5/order/history", q, ORDER_PAGE)]

    async def find_order(self, symbol: str, order_link_id: str) -> Order | None:
        """The order with this `orderLinkId`, open or final, or None when Bybit has none."""
        for lookup in (self.open_orders, self.order_history):
            found = await lookup(symbol, orderLinkId=order_link_id)
            found = [o for o in found if o.order_link_id == order_link_id]
            if found:
                return max(found, key=lambda o: (o.updated, o.cum_exec_qty))
        return None

    async def executions(
        self, symbol: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> list[Execution]:
        """Executions of `symbol` in [start, end] (Bybit: a 7-day window), oldest first."""
        q: dict[str, Any] = {"category": "linear", "symbol": symbol}
        if start_ms is not None:
            q["startTime"] = start_ms
        if end_ms is not None:
            q["endTime"] = end_ms
        rows = [Execution.parse(e) for e in await self._pages("/v5/execution/list", q, EXEC_PAGE)]
        unique = {e.exec_id: e for e in rows}
        return sorted(unique.values(), key=lambda e: (e.time, e.exec_id))


def _text(x: float) -> str:
    """A price or quantity as Bybit wants it: a plain decimal string without float noise."""
    return f"{x:.10f}".rstrip("0").rstrip(".") or "0"


def instrument_spec(info: Mapping[str, Any], maintenance_margin_rate: float) -> InstrumentSpec:
    """Our InstrumentSpec from an `instruments-info` entry (the MMR comes from the risk tiers,
    which that endpoint does not carry, so the caller passes the one it knows)."""
    what = f"instrument {info.get('symbol')!r}"
    try:
        lot, price, lev = info["lotSizeFilter"], info["priceFilter"], info["leverageFilter"]
        return InstrumentSpec(
            symbol=str(info["symbol"]),
            tick_size=number(price["tickSize"], f"{what} tickSize"),
            qty_step=number(lot["qtyStep"], f"{what} qtyStep"),
            min_qty=number(lot["minOrderQty"], f"{what} minOrderQty"),
            min_notional=number(lot.get("minNotionalValue") or 0.0, f"{what} minNotionalValue"),
            max_leverage=number(lev["maxLeverage"], f"{what} maxLeverage"),
            maintenance_margin_rate=maintenance_margin_rate,
            funding_interval_hours=number(info.get("fundingInterval") or 480, what) / 60.0,
        )
    except (KeyError, TypeError) as exc:
        raise BybitError("/v5/market/instruments-info", None, f"{what} lacks {exc}") from None
