"""Bybit v5 WebSocket streams (websockets): public klines and tickers, private order, execution,
position and wallet, kept alive through anything the network does.

One `BybitStream` owns one socket and hands out `StreamEvent`s from a queue:
- an application `ping` every `ping_interval` (Bybit: 20 s); a watchdog that replaces a socket from
  which nothing (not even a pong) arrived for `2 × ping_interval` — a half-open connection;
- reconnects with exponential backoff and jitter, then re-auth and re-subscription of every topic,
  and one `reconnected` event per recovery, so the caller reconciles by REST (Bybit replays nothing);
- only `confirm: true` klines are closed bars (the flag is kept on every kline event);
- executions deduplicated by `execId`, stale order updates (older `updatedTime`, or the same time
  with less filled) and stale positions (lower `seq`) dropped, so duplicated or reordered private
  messages give the same picture as clean ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from ...errors import ExchangeError
from .auth import Credentials, ws_auth_message
from .errors import ConfigError
from .models import Execution, Kline, Order, Position, Wallet

PING_INTERVAL_S = 20.0
SEEN_EXECUTIONS = 50_000  # execIds remembered for deduplication


@dataclass(frozen=True)
class StreamEvent:
    """What a stream saw: `kind` is kline, ticker, trade, order, execution, position, wallet,
    connected, reconnected, disconnected or error; `items` are parsed objects."""

    kind: str
    topic: str = ""
    items: tuple[Any, ...] = ()
    detail: str = ""
    at: float = field(default_factory=time.monotonic)


class BybitStream:
    """One public or private Bybit stream; `async with BybitStream(...) as s:` then
    `await s.next()` or `async for event in s:`."""

    def __init__(
        self,
        url: str,
        topics: Iterable[str],
        *,
        credentials: Credentials | None = None,
        clock_ms: Callable[[], int] | None = None,
        ping_interval: float = PING_INTERVAL_S,
        watchdog: float | None = None,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        open_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.topics: list[str] = list(dict.fromkeys(topics))
        self.credentials = credentials
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.ping_interval = ping_interval
        self.watchdog = watchdog if watchdog is not None else 2 * ping_interval
        self.backoff, self.max_backoff, self.open_timeout = backoff, max_backoff, open_timeout
        self.events: asyncio.Queue[StreamEvent] = asyncio.Queue()
        self.connects = 0  # sockets opened and made ready (auth + subscribe sent)
        self.reconnects = 0
        self.watchdog_trips = 0
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._req = 0
        self._tickers: dict[str, dict[str, Any]] = {}
        self._exec_seen: OrderedDict[str, None] = OrderedDict()
        self._order_mark: dict[str, tuple[int, float, int]] = {}
        self._position_seq: dict[str, int] = {}

    # ------------------------------------------------------------------ life cycle

    async def __aenter__(self) -> BybitStream:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"bybit-stream {self.url}")

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None and self._ws.transport is not None:
            self._ws.transport.abort()  # whatever the task awaits on the socket ends now
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def next(self, timeout: float | None = None) -> StreamEvent:
        """The next event (raises TimeoutError after `timeout` seconds)."""
        async with asyncio.timeout(timeout):
            return await self.events.get()

    def __aiter__(self) -> BybitStream:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self.events.get()

    async def subscribe(self, topics: Iterable[str]) -> None:
        new = [t for t in topics if t not in self.topics]
        self.topics += new
        if new and self._ws is not None:
            await self._send(self._ws, {"op": "subscribe", "args": new})

    # ------------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        failures = 0
        while not self._closing:
            reason = ""
            try:
                async with connect(
                    self.url,
                    ping_interval=None,  # the application ping below is Bybit's keep-alive
                    open_timeout=self.open_timeout,
                    close_timeout=1.0,
                    max_size=2**22,
                ) as ws:
                    await self._ready(ws)
                    failures = 0
                    reason = await self._read(ws)
            except ConfigError as exc:
                self._emit("error", detail=str(exc))
                return  # wrong keys: reconnecting cannot help
            except InvalidStatus as exc:
                reason = f"connect refused (HTTP {exc.response.status_code})"
            except (OSError, WebSocketException, TimeoutError) as exc:
                reason = type(exc).__name__
            finally:
                self._ws = None
            if self._closing:
                return
            self._emit("disconnected", detail=reason)
            delay = min(self.max_backoff, self.backoff * 2**failures) * random.uniform(0.5, 1.0)
            failures += 1
            await asyncio.sleep(delay)

    async def _ready(self, ws: ClientConnection) -> None:
        """Authenticate (private) and subscribe every topic; then announce the connection."""
        if self.credentials is not None:
            await self._send(ws, ws_auth_message(self.credentials, self.clock_ms() + 10_000))
            reply = await self._await_op(ws, "auth")
            if not reply.get("success"):
                text = self.credentials.redact(str(reply.get("ret_msg", "")))
                raise ConfigError("private stream", None, f"auth refused: {text}")
        if self.topics:
            await self._send(ws, {"op": "subscribe", "args": list(self.topics)})
        self._ws = ws
        self.connects += 1
        if self.connects > 1:
            self.reconnects += 1
            self._emit("reconnected", detail=f"resubscribed {len(self.topics)} topic(s)")
        else:
            self._emit("connected")

    async def _await_op(self, ws: ClientConnection, op: str) -> dict[str, Any]:
        """Read until the reply to `op` (anything else read meanwhile is dispatched)."""
        deadline = time.monotonic() + self.open_timeout
        while True:
            async with asyncio.timeout(max(deadline - time.monotonic(), 0.01)):
                raw = await ws.recv()
            msg = _json(raw) or {}
            if msg.get("op") == op:
                return msg
            self._dispatch(msg)

    async def _read(self, ws: ClientConnection) -> str:
        """Read until the socket closes or the watchdog trips; returns why it ended."""
        pinger = asyncio.create_task(self._pings(ws))
        try:
            while True:
                try:
                    async with asyncio.timeout(self.watchdog):  # wait_for can swallow a cancel
                        raw = await ws.recv()
                except TimeoutError:
                    self.watchdog_trips += 1
                    if ws.transport is not None:
                        ws.transport.abort()
                    return f"nothing received for {self.watchdog:g} s (half-open socket)"
                msg = _json(raw)
                if msg is None:
                    self._emit("error", detail=f"non-JSON message: {str(raw)[:80]!r}")
                else:
                    self._dispatch(msg)
        finally:
            pinger.cancel()  # not awaited: that would swallow our own cancellation

    async def _pings(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            with contextlib.suppress(WebSocketException, OSError):
                await self._send(ws, {"op": "ping"})

    async def _send(self, ws: ClientConnection, msg: dict[str, Any]) -> None:
        self._req += 1
        await ws.send(json.dumps({"req_id": str(self._req)} | msg))

    # ------------------------------------------------------------------ messages

    def _emit(
        self, kind: str, topic: str = "", items: Iterable[Any] = (), detail: str = ""
    ) -> None:
        self.events.put_nowait(StreamEvent(kind, topic, tuple(items), detail))

    def _dispatch(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op in ("ping", "pong", "auth"):
            return
        if op in ("subscribe", "unsubscribe"):
            if msg.get("success") is False:
                self._emit("error", detail=f"{op} refused: {msg.get('ret_msg', '')}")
            return
        topic = str(msg.get("topic", ""))
        data = msg.get("data")
        if not topic or data is None:
            return
        try:
            self._route(topic, msg, data)
        except ExchangeError as exc:  # a malformed message: reported, the stream goes on
            self._emit("error", topic, detail=str(exc))

    def _route(self, topic: str, msg: dict[str, Any], data: Any) -> None:
        items = data if isinstance(data, list) else [data]
        head = topic.split(".")[0]
        if head == "kline":
            self._emit("kline", topic, [Kline.from_ws(k, topic) for k in items])
        elif head == "tickers":
            symbol = topic.split(".", 1)[1]
            state = {} if msg.get("type") == "snapshot" else self._tickers.get(symbol, {})
            state = state | (data if isinstance(data, dict) else {})
            self._tickers[symbol] = state
            self._emit("ticker", topic, [dict(state)])
        elif head == "publicTrade":
            self._emit("trade", topic, items)
        elif head == "execution":
            fresh = [e for e in map(Execution.parse, items) if self._first_time(e.exec_id)]
            if fresh:
                self._emit("execution", topic, fresh)
        elif head == "order":
            fresh = [o for o in map(Order.parse, items) if self._newer_order(o)]
            if fresh:
                self._emit("order", topic, fresh)
        elif head == "position":
            fresh = [p for p in map(Position.parse, items) if self._newer_position(p)]
            if fresh:
                self._emit("position", topic, fresh)
        elif head == "wallet":
            self._emit("wallet", topic, [Wallet.parse(a) for a in items])

    def _first_time(self, exec_id: str) -> bool:
        if exec_id in self._exec_seen:
            return False
        self._exec_seen[exec_id] = None
        if len(self._exec_seen) > SEEN_EXECUTIONS:
            self._exec_seen.popitem(last=False)
        return True

    def _newer_order(self, o: Order) -> bool:
        """At-least-once delivery: keep an update only if it is later (or as late, more filled,
        or final where the last one was not)."""
        mark = (o.updated, o.cum_exec_qty, 2 if o.is_final else int(o.status == "PartiallyFilled"))
        last = self._order_mark.get(o.order_id)
        if last is not None and mark <= last:
            return False
        self._order_mark[o.order_id] = mark
        return True

    def _newer_position(self, p: Position) -> bool:
        last = self._position_seq.get(p.symbol)
        if last is not None and p.seq and p.seq <= last:
            return False
        if p.seq:
            self._position_seq[p.symbol] = p.seq
        return True


def _json(raw: str | bytes) -> dict[str, Any] | None:
    """The message as a dict; None when it is not JSON (reported, never fatal)."""
    try:
        msg = json.loads(raw)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else {}


def kline_topic(interval: str, symbol: str) -> str:
    return f"kline.{interval}.{symbol}"
