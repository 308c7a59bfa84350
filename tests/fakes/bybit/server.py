"""`FakeBybit`: the aiohttp server (REST and both WebSocket streams on one port), its asyncio loop
on a daemon thread, and the synchronous control methods tests drive it with."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import inspect
import itertools
import json
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from trade.data.sample import sample_instruments
from trade.instruments import InstrumentSpec

from . import preload as preloading
from .errors import Reject
from .faults import HTTP_STATUS, Faults
from .market import INTERVAL_MS, Instrument, Series, bar_end, check_interval, text
from .matching import Batch, Exchange, fake_uuid, num
from .rest import ROUTES, is_private

DEFAULT_KEY, DEFAULT_SECRET = "FAKEBYBITKEY0001", "FAKEBYBITSECRET0000000000000000001"
PRIVATE_TOPICS = ("order", "execution", "position", "wallet")
REORDERED = ("position", "order", "execution", "wallet")  # `reorder_private`'s order
#: Demo answers these with HTTP 404 and retCode 10017 (route not found), as Bybit's demo does for
#: endpoints it does not support.
DEMO_UNSUPPORTED = frozenset({"/v5/user/query-api", "/v5/position/switch-isolated"})
WRITE_LIMITED = frozenset(
    {
        "/v5/order/create",
        "/v5/order/amend",
        "/v5/order/cancel",
        "/v5/order/cancel-all",
        "/v5/position/set-leverage",
        "/v5/position/trading-stop",
        "/v5/position/switch-mode",
    }
)


class Clock:
    """Real time unless frozen by `set`; a frozen clock moves only by `advance`."""

    def __init__(self) -> None:
        self.frozen: int | None = None

    def now_ms(self) -> int:
        frozen = self.frozen
        return int(time.time() * 1000) if frozen is None else frozen

    def set(self, ms: int) -> None:
        self.frozen = int(ms)

    def advance(self, ms: int) -> None:
        if self.frozen is None:
            raise RuntimeError("advance() moves a frozen clock: call set_time() first")
        self.frozen += int(ms)


@dataclass
class Request:
    """One REST request as received (`signed_ok`: None for public endpoints)."""

    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)
    signed_ok: bool | None = None

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


@dataclass
class Conn:
    id: str
    stream: str  # "public" or "private"
    ws: web.WebSocketResponse
    transport: Any
    authed: bool = False
    topics: set[str] = field(default_factory=set)


class FakeBybit:
    """A Bybit v5 exchange on 127.0.0.1 for tests: `with FakeBybit() as fake: ...`."""

    def __init__(
        self,
        keys: dict[str, str] | None = None,
        *,
        balance: float = 10_000.0,
        taker_fee: float = 0.00055,
        maker_fee: float = 0.0002,
        leverage: float = 10,
    ) -> None:
        self.keys = dict(keys) if keys else {DEFAULT_KEY: DEFAULT_SECRET}
        self.api_key, self.api_secret = next(iter(self.keys.items()))
        self.clock = Clock()
        self.clock_skew_ms = 0
        self.demo = False
        self.unified_margin_status = 6  # UTA 2.0 Pro
        self.permissions: dict[str, list[str]] = {
            "ContractTrade": ["Order", "Position"],
            "Spot": [],
            "Wallet": ["AccountTransfer"],
            "Options": [],
            "Derivatives": [],
            "CopyTrading": [],
            "BlockTrade": [],
            "Exchange": [],
            "NFT": [],
            "Affiliate": [],
        }
        self.ex = Exchange(
            self.server_ms,
            balance=balance,
            taker_fee=taker_fee,
            maker_fee=maker_fee,
            leverage=leverage,
        )
        for spec in sample_instruments():
            self.ex.instruments[spec.symbol] = Instrument.of(spec)
        self.klines: dict[tuple[str, str], Series] = {}
        self.mark_klines: dict[tuple[str, str], Series] = {}
        self.funding_series: dict[str, Series] = {}
        self.funding_rates: dict[str, str] = {}
        # fault knobs (plain attributes, read on every request or message)
        self.slow_seconds = 1.5  # "slow": answer this late
        self.timeout_seconds = 3.0  # "timeout": past any sane client timeout
        self.rate_limit_reset_ms = 50  # "ratelimit": the window resets this far ahead
        self.delay = 0.0  # added to every REST request
        self.dup_exec = False
        self.reorder_private = False
        self.double_filled_on_cancel = False
        self.delay_topic: dict[str, float] = {}
        self._drop_next: Counter[str] = Counter()
        self._rejects: deque[int] = deque()
        self._faults = Faults()
        self._maintenance_until = 0  # server ms
        self._stall_until = 0.0  # monotonic
        self._requests: list[Request] = []
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._conns: dict[str, Conn] = {}
        self._connects: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-bybit", daemon=True
        )
        self._thread.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port: int = sock.getsockname()[1]
        asyncio.run_coroutine_threadsafe(self._start(sock), self._loop).result(10)

    # ------------------------------------------------------------------ lifecycle and urls

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_public_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v5/public/linear"

    @property
    def ws_private_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v5/private"

    def env(self) -> dict[str, str]:
        return {
            "TRADE_BYBIT_REST_URL": self.rest_url,
            "TRADE_BYBIT_WS_PUBLIC_URL": self.ws_public_url,
            "TRADE_BYBIT_WS_PRIVATE_URL": self.ws_private_url,
        }

    def __enter__(self) -> FakeBybit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, abort every socket and end the loop thread."""
        if self._closed:
            return
        self._closed = True
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.2
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def _stop(self) -> None:
        for conn in list(self._conns.values()):
            conn.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await self._runner.cleanup()

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the fake's loop (awaiting it if it is a coroutine) and wait."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("FakeBybit control methods are for test code, not the fake's loop")

        async def run() -> Any:
            out = fn(*args)
            return await out if inspect.isawaitable(out) else out

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    # ------------------------------------------------------------------ clock

    def server_ms(self) -> int:
        """Server time: the clock plus `clock_skew_ms`."""
        return self.clock.now_ms() + self.clock_skew_ms

    def set_time(self, ms: int) -> None:
        self.clock.set(ms)

    def advance(self, ms: int) -> None:
        self.clock.advance(ms)

    # ------------------------------------------------------------------ set-up

    def add_instrument(
        self, spec: InstrumentSpec, *, max_qty: str | None = None, status: str = "Trading"
    ) -> None:
        self._call(
            self.ex.instruments.__setitem__, spec.symbol, Instrument.of(spec, max_qty, status)
        )

    def load_klines(self, symbol: str, interval: str, rows: Iterable[Sequence[Any]]) -> None:
        """Ascending `[start_ms, o, h, l, c, v, turnover]` rows (turnover = v × c when left out).
        The last close becomes the last and mark price if there is none yet."""
        self._call(self._load, self.klines, (symbol, check_interval(interval)), rows, 7)

    def load_mark_klines(self, symbol: str, interval: str, rows: Iterable[Sequence[Any]]) -> None:
        """Ascending `[start_ms, o, h, l, c]` rows."""
        self._call(self._load, self.mark_klines, (symbol, check_interval(interval)), rows, 5)

    def load_funding(self, symbol: str, rows: Iterable[Sequence[Any]]) -> None:
        """Ascending `[settlement_ms, rate]` rows."""
        self._call(self._load, self.funding_series, symbol, rows, 2)

    def _load(self, table: dict[Any, Series], key: Any, rows: Any, width: int) -> None:
        series = table[key] = Series(width)
        series.load(rows.tolist() if hasattr(rows, "tolist") else rows)
        last = series.last()
        if last is not None and width == 7 and key[0] not in self.ex.last:
            self.ex.last[key[0]] = self.ex.mark[key[0]] = Decimal(last[4])

    def preload(
        self,
        positions: Iterable[dict[str, Any]] = (),
        orders: Iterable[dict[str, Any]] = (),
        executions: Iterable[dict[str, Any]] = (),
    ) -> None:
        """State left behind by an earlier run (see `preload.py` for the fields)."""

        def load() -> None:
            for p in positions:
                preloading.position(self.ex, p)
            for o in orders:
                preloading.order(self.ex, o)
            for e in executions:
                preloading.execution(self.ex, e)

        self._call(load)

    @property
    def fill_mode(self) -> str:
        return self.ex.fill_mode

    @fill_mode.setter
    def fill_mode(self, mode: str) -> None:
        if mode not in ("next_trade", "immediate"):
            raise ValueError(f"fill_mode must be 'next_trade' or 'immediate', got {mode!r}")
        self.ex.fill_mode = mode

    @property
    def partial_fill_ratio(self) -> float | None:
        return self.ex.partial_fill_ratio

    @partial_fill_ratio.setter
    def partial_fill_ratio(self, ratio: float | None) -> None:
        if ratio is not None and not 0 < ratio <= 1:
            raise ValueError(f"partial_fill_ratio must be in (0, 1], got {ratio!r}")
        self.ex.partial_fill_ratio = ratio

    # ------------------------------------------------------------------ market driving

    def trade(self, symbol: str, price: float, qty: float = 1.0, side: str = "Buy") -> None:
        """Print a public trade: last and mark move, publicTrade and a tickers delta go out, then
        whatever it fills or triggers (see the matching rules)."""
        self._call(
            self._trade, symbol, Decimal(repr(float(price))), Decimal(repr(float(qty))), side
        )

    async def _trade(self, symbol: str, price: Decimal, qty: Decimal, side: str) -> None:
        self.ex.instrument(symbol)
        prev = self.ex.last.get(symbol)
        now, n = self.server_ms(), next(self._ids)
        batches = self.ex.trade(symbol, price)
        tick = "ZeroPlusTick" if prev is None or price == prev else "PlusTick"
        if prev is not None and price < prev:
            tick = "MinusTick"
        trade = {"T": now, "s": symbol, "S": side, "v": num(qty), "p": num(price), "L": tick,
                 "i": fake_uuid(3, n), "BT": False, "seq": n}  # fmt: skip
        await self._send_public(
            f"publicTrade.{symbol}", {"type": "snapshot", "ts": now, "data": [trade]}
        )
        t = self.ticker(symbol)
        delta = {k: t[k] for k in ("symbol", "lastPrice", "markPrice", "indexPrice", "bid1Price",
                                   "ask1Price")} | {"tickDirection": tick}  # fmt: skip
        await self._send_public(
            f"tickers.{symbol}", {"type": "delta", "data": delta, "cs": n, "ts": now}
        )
        await self._publish(batches)

    def kline(
        self,
        symbol: str,
        interval: str,
        start: int,
        o: float,
        h: float,
        l: float,  # noqa: E741
        c: float,
        v: float,
        confirm: bool,
        turnover: float | None = None,
    ) -> None:
        """Upsert one bar and push it to `kline.{interval}.{symbol}` subscribers."""
        check_interval(interval)
        ohlcv = [float(x) for x in (o, h, l, c, v)]
        row = [start, *ohlcv, ohlcv[4] * ohlcv[3] if turnover is None else float(turnover)]
        self._call(self._kline, symbol, interval, row, confirm)

    async def _kline(self, symbol: str, interval: str, row: list[Any], confirm: bool) -> None:
        item = self.klines.setdefault((symbol, interval), Series(7)).upsert(row)
        start, now = int(row[0]), self.server_ms()
        bar = {"start": start, "end": bar_end(start, interval), "interval": interval,
               "open": item[1], "close": item[4], "high": item[2], "low": item[3],
               "volume": item[5], "turnover": item[6], "confirm": bool(confirm),
               "timestamp": now}  # fmt: skip
        msg = {"type": "snapshot", "ts": now, "data": [bar]}
        await self._send_public(f"kline.{interval}.{symbol}", msg)

    def fill(self, order_id_or_link_id: str, price: float, qty: float | None = None) -> None:
        """Fill an open order explicitly (all that is left when `qty` is None)."""

        async def go() -> None:
            o = self.ex.ref(order_id_or_link_id)
            q = None if qty is None else Decimal(repr(float(qty)))
            await self._publish(self.ex.fill(o, Decimal(repr(float(price))), q))

        self._call(go)

    def funding(self, symbol: str, rate: float) -> None:
        """Settle funding on the open position at the mark price (no-op when flat)."""

        async def go() -> None:
            self.funding_rates[symbol] = text(rate)
            await self._publish(self.ex.funding(symbol, Decimal(repr(float(rate)))))

        self._call(go)

    def liquidate(self, symbol: str, price: float) -> None:
        self._call(self._close_out, symbol, price, "BustTrade")

    def adl(self, symbol: str, price: float) -> None:
        self._call(self._close_out, symbol, price, "AdlTrade")

    async def _close_out(self, symbol: str, price: float, kind: str) -> None:
        await self._publish(self.ex.close_out(symbol, Decimal(repr(float(price))), kind))

    def ticker(self, symbol: str) -> dict[str, Any]:
        ins = self.ex.instrument(symbol)
        last, mark = self.ex.last.get(symbol), self.ex.mark.get(symbol)
        last_s = num(last) if last is not None else ""
        mark_s = num(mark) if mark is not None else last_s
        period = ins.funding_minutes * 60_000
        return {
            "symbol": symbol,
            "lastPrice": last_s,
            "indexPrice": mark_s,
            "markPrice": mark_s,
            "prevPrice24h": last_s,
            "price24hPcnt": "0",
            "highPrice24h": last_s,
            "lowPrice24h": last_s,
            "prevPrice1h": last_s,
            "openInterest": "0",
            "openInterestValue": "0",
            "turnover24h": "0",
            "volume24h": "0",
            "fundingRate": self.funding_rates.get(symbol, "0.0001"),
            "nextFundingTime": str((self.server_ms() // period + 1) * period),
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "bid1Price": last_s,
            "bid1Size": "1",
            "ask1Price": num(last + ins.tick) if last is not None else "",
            "ask1Size": "1",
            "basis": "",
            "fundingIntervalHour": str(ins.funding_minutes // 60),
            "fundingCap": "0.005",
        }

    # ------------------------------------------------------------------ faults

    def inject(self, fault: str, path: str | None = None, times: int = 1) -> None:
        """Queue `fault` for the next `times` REST requests (to `path` only, when given)."""
        self._faults.add(fault, path, times)

    def reject_next_order(self, code: int, message: str | None = None) -> None:
        """The next order/create answers `code` with Bybit's message, nothing applied."""
        Reject(code, message)  # an unknown code still gets a message; fails on nothing
        self._rejects.append(code)

    def maintenance(self, seconds: float) -> None:
        """Every REST call answers 10016 and WS connects are refused until the clock passes."""
        self._maintenance_until = self.server_ms() + int(seconds * 1000)

    def drop_all_ws(self, code: int = 1006) -> None:
        """Close every socket: 1006 aborts the TCP connection with no close frame."""

        async def go() -> None:
            conns = list(self._conns.values())
            if code == 1006:
                for conn in conns:
                    conn.transport.abort()
            else:
                await asyncio.gather(*(c.ws.close(code=code) for c in conns))

        self._call(go)

    def stall_ws(self, seconds: float) -> None:
        """Half-open sockets for `seconds` (real time): nothing sent, no ping answered."""
        self._stall_until = time.monotonic() + seconds

    def drop_next(self, topic: str) -> None:
        """Lose the next private message on `topic` (REST still shows the change)."""
        if topic not in PRIVATE_TOPICS:
            raise ValueError(f"drop_next: private topic expected, got {topic!r}")
        self._drop_next[topic] += 1

    # ------------------------------------------------------------------ inspection (copies)

    @property
    def orders(self) -> dict[str, dict[str, Any]]:
        return self._call(lambda: {k: o.view() for k, o in self.ex.orders.items()})

    @property
    def positions(self) -> dict[str, dict[str, Any]]:
        return self._call(lambda: {s: self.ex.position_view(s) for s in self.ex.positions})

    @property
    def executions(self) -> list[dict[str, Any]]:
        return self._call(lambda: [dict(e) for e in self.ex.executions])

    @property
    def wallet(self) -> dict[str, Any]:
        return self._call(self.ex.wallet_view)

    @property
    def requests(self) -> list[Request]:
        return [replace(r) for r in list(self._requests)]

    @property
    def connections(self) -> list[dict[str, Any]]:
        return self._call(
            lambda: [
                {"id": c.id, "stream": c.stream, "authed": c.authed, "topics": sorted(c.topics)}
                for c in self._conns.values()
            ]
        )

    @property
    def connects(self) -> dict[str, int]:
        return {"public": self._connects["public"], "private": self._connects["private"]}

    # ------------------------------------------------------------------ REST

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/v5/public/linear":
            return await self._ws(request, "public")
        if request.path == "/v5/private":
            return await self._ws(request, "private")
        req = Request(
            request.method,
            request.path,
            dict(request.query),
            request.rel_url.raw_query_string,
            dict(request.headers),
            await request.read(),
        )
        self._requests.append(req)
        if self.delay:
            await asyncio.sleep(self.delay)
        fault = self._faults.take(req.path)
        private = is_private(req.path)
        headers = self._limit_headers(req) if private else {}
        if fault == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if fault in HTTP_STATUS:
            status = HTTP_STATUS[fault]
            return web.Response(status=status, text=f"HTTP {status} (injected)", headers=headers)
        if fault == "ratelimit":
            reset = self.server_ms() + self.rate_limit_reset_ms
            headers |= {"X-Bapi-Limit-Status": "0", "X-Bapi-Limit-Reset-Timestamp": str(reset)}
            return self._answer(Reject(10006, "Too many visits!"), headers)
        if fault == "maintenance" or self.server_ms() < self._maintenance_until:
            return self._answer(Reject(10016, "Service is under maintenance."), headers)
        if fault == "clock":
            return self._answer(self._clock_error(self.server_ms() + 5000, 5000), headers)
        if fault == "unknown":
            return self._answer(Reject(10016), headers)
        if fault == "timeout":
            await asyncio.sleep(self.timeout_seconds)
            return self._answer(Reject(10016, "Server Timeout"), headers)
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        handler = ROUTES.get((req.method, req.path))
        if handler is None or (self.demo and req.path in DEMO_UNSUPPORTED):
            body = {"retCode": 10017, "retMsg": "Route not found", "result": {},
                    "retExtInfo": {}, "time": self.server_ms()}  # fmt: skip
            return web.json_response(body, status=404, headers=headers)
        try:
            key = self._authenticate(req) if private else ""
            params = req.query if req.method == "GET" else self._body(req)
            if req.path == "/v5/order/create" and self._rejects:
                raise Reject(self._rejects.popleft())
            result, batches = ROUTES[(req.method, req.path)](self, params, key)
        except Reject as err:
            await self._publish(err.batches)
            return self._answer(err, headers)
        await self._publish(batches)
        if fault == "partial" and len(result.get("list", ())) > 1:
            result = result | {"list": result["list"][: len(result["list"]) // 2]}
        if fault == "unknown_after_apply":
            return self._answer(Reject(10016), headers)
        if fault == "timeout_after_apply":
            await asyncio.sleep(self.timeout_seconds)
        return self._answer(result, headers)

    def _answer(self, result: dict[str, Any] | Reject, headers: dict[str, str]) -> web.Response:
        if isinstance(result, Reject):
            code, msg, result = result.code, result.message, {}
        else:
            code, msg = 0, "OK"
        body = {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {},
                "time": self.server_ms()}  # fmt: skip
        return web.json_response(body, headers=headers, dumps=_dumps)

    @staticmethod
    def _body(req: Request) -> dict[str, Any]:
        try:
            body = json.loads(req.body or b"{}")
        except ValueError:
            raise Reject(10001, "params error: the body is not JSON") from None
        if not isinstance(body, dict):
            raise Reject(10001, "params error: the body must be a JSON object")
        return body

    def _limit_headers(self, req: Request) -> dict[str, str]:
        """Bybit's per-key, per-endpoint rolling 1 s window (reported, never enforced)."""
        limit = 10 if req.path in WRITE_LIMITED else 50
        hits = self._hits.setdefault((req.headers.get("X-BAPI-API-KEY", ""), req.path), deque())
        while hits and req.at - hits[0] > 1.0:
            hits.popleft()
        hits.append(req.at)
        return {
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": str(max(0, limit - len(hits))),
            "X-Bapi-Limit-Reset-Timestamp": str(self.server_ms()),
        }

    def _clock_error(self, ts: int, recv_window: int) -> Reject:
        return Reject(
            10002,
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{ts}],server_timestamp[{self.server_ms()}],recv_window[{recv_window}]",
        )

    def _authenticate(self, req: Request) -> str:
        """Check Bybit's HMAC headers over the raw query (GET) or body (POST); the key if good."""
        h = {k.lower(): v for k, v in req.headers.items()}
        key, ts, sign = (
            h.get("x-bapi-api-key", ""),
            h.get("x-bapi-timestamp", ""),
            h.get("x-bapi-sign", ""),
        )
        rw = h.get("x-bapi-recv-window", "5000")
        payload = req.raw_query if req.method == "GET" else req.body.decode("utf-8", "replace")
        origin = f"{ts}{key}{rw}{payload}"
        secret = self.keys.get(key)
        req.signed_ok = secret is not None and hmac.compare_digest(
            sign.lower(), hmac.new(secret.encode(), origin.encode(), hashlib.sha256).hexdigest()
        )
        if secret is None:
            raise Reject(10003, "API key is invalid.")
        if not ts.isdigit() or not rw.isdigit():
            raise Reject(
                10002, "invalid request, X-BAPI-TIMESTAMP and X-BAPI-RECV-WINDOW must be ms"
            )
        now = self.server_ms()
        if not now - int(rw) <= int(ts) < now + 1000:
            raise self._clock_error(int(ts), int(rw))
        if not req.signed_ok:
            raise Reject(10004, f"error sign! origin_string[{origin}]")
        return key

    # ------------------------------------------------------------------ WebSocket

    async def _ws(self, request: web.Request, stream: str) -> web.StreamResponse:
        if self.server_ms() < self._maintenance_until:
            return web.Response(status=503, text="Service is under maintenance.")
        ws = web.WebSocketResponse(autoping=False, timeout=0.5)
        await ws.prepare(request)
        conn = Conn(f"fake-{next(self._ids)}", stream, ws, request.transport)
        self._conns[conn.id] = conn
        self._connects[stream] += 1
        try:
            async for msg in ws:
                if self._stalled():
                    continue
                if msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    await self._ws_message(conn, msg.data)
        except ConnectionError:
            pass
        finally:
            self._conns.pop(conn.id, None)
        return ws

    def _stalled(self) -> bool:
        return time.monotonic() < self._stall_until

    async def _ws_message(self, conn: Conn, data: str) -> None:
        try:
            req = json.loads(data)
            op = req.get("op")
        except (ValueError, AttributeError):
            await self._send(
                conn, {"success": False, "ret_msg": "invalid JSON", "conn_id": conn.id}
            )
            return
        req_id = req.get("req_id", "")
        base = {"conn_id": conn.id, "req_id": req_id, "op": op}
        if op == "ping":
            if conn.stream == "public":
                await self._send(conn, base | {"success": True, "ret_msg": "pong"})
            else:
                await self._send(conn, base | {"op": "pong", "args": [str(self.server_ms())]})
        elif op == "auth" and conn.stream == "private":
            error = self._ws_auth_error(req.get("args"))
            conn.authed = error == ""
            await self._send(conn, base | {"success": conn.authed, "ret_msg": error})
        elif op in ("subscribe", "unsubscribe"):
            await self._subscribe(conn, op, req.get("args"), base)
        else:
            await self._send(conn, base | {"success": False, "ret_msg": f"unknown op {op!r}"})

    def _ws_auth_error(self, args: Any) -> str:
        """'' when `["KEY", expires, sign]` signs "GET/realtime{expires}" and expires is ahead."""
        if not isinstance(args, list) or len(args) != 3:
            return "Params Error"
        key, expires, sign = args
        secret = self.keys.get(str(key))
        if secret is None:
            return "API key is invalid."
        if not str(expires).isdigit() or int(expires) <= self.server_ms():
            return "Params Error: expires is in the past"
        want = hmac.new(secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256)
        if not hmac.compare_digest(str(sign).lower(), want.hexdigest()):
            return "Request not authorized"
        return ""

    async def _subscribe(self, conn: Conn, op: str, args: Any, base: dict[str, Any]) -> None:
        if conn.stream == "private" and not conn.authed:
            await self._send(conn, base | {"success": False, "ret_msg": "Request not authorized"})
            return
        topics = [str(t) for t in args] if isinstance(args, list) else []
        bad = [t for t in topics if not self._topic_ok(conn.stream, t)] or ([] if topics else ["?"])
        new = [t for t in topics if t not in bad and t not in conn.topics]
        for t in topics:
            if t not in bad:
                (conn.topics.add if op == "subscribe" else conn.topics.discard)(t)
        ret = f"error:handler not found,topic:{','.join(bad)}" if bad else ""
        await self._send(conn, base | {"success": not bad, "ret_msg": ret})
        if op == "subscribe":
            for t in new:
                if t.startswith("tickers."):
                    sym, now = t.split(".", 1)[1], self.server_ms()
                    snap = {"topic": t, "type": "snapshot", "data": self.ticker(sym),
                            "cs": next(self._ids), "ts": now}  # fmt: skip
                    await self._send(conn, snap)

    def _topic_ok(self, stream: str, topic: str) -> bool:
        if stream == "private":
            return topic in PRIVATE_TOPICS
        parts = topic.split(".")
        if parts[0] == "kline" and len(parts) == 3:
            return parts[1] in INTERVAL_MS and parts[2] in self.ex.instruments
        return (
            parts[0] in ("tickers", "publicTrade")
            and len(parts) == 2
            and (parts[1] in self.ex.instruments)
        )

    async def _send(self, conn: Conn, msg: dict[str, Any] | str) -> None:
        if self._stalled() or conn.ws.closed:
            return
        with contextlib.suppress(ConnectionError):
            await conn.ws.send_str(msg if isinstance(msg, str) else _dumps(msg))

    async def _send_public(self, topic: str, msg: dict[str, Any]) -> None:
        text_ = _dumps({"topic": topic} | msg)
        for conn in list(self._conns.values()):
            if conn.stream == "public" and topic in conn.topics:
                await self._send(conn, text_)

    async def _send_private(self, topic: str, text_: str) -> None:
        for conn in list(self._conns.values()):
            if conn.stream == "private" and conn.authed and topic in conn.topics:
                await self._send(conn, text_)

    async def _publish(self, batches: list[Batch]) -> None:
        """Push private messages per the delivery knobs: drop_next, reorder, dup, delay."""
        for batch in batches:
            if self.reorder_private:
                batch = sorted(batch, key=lambda e: REORDERED.index(e[0]))
            for topic, item in batch:
                if self._drop_next[topic] > 0:
                    self._drop_next[topic] -= 1
                    continue
                msg = _dumps({"id": f"{next(self._ids)}-fake", "topic": topic,
                              "creationTime": self.server_ms(), "data": [item]})  # fmt: skip
                copies = 2 if topic == "execution" and self.dup_exec else 1
                delay = self.delay_topic.get(topic, 0.0)
                for _ in range(copies):
                    if delay > 0:
                        self._later(delay, self._send_private(topic, msg))
                    else:
                        await self._send_private(topic, msg)

    def _later(self, delay: float, coro: Any) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            await coro

        task = self._loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
