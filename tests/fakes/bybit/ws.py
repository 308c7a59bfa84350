"""The WebSocket side of the fake: public and private streams, auth, subscriptions, and the
delivery knobs for private messages (stall, drop, duplicate, reorder, delay)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .kills import Hook, Kills
from .market import INTERVAL_MS

if TYPE_CHECKING:
    import itertools

    from .matching import Exchange
    from .models import Batch

PRIVATE_TOPICS = ("order", "execution", "position", "wallet")
REORDERED = ("position", "order", "execution", "wallet")  # `reorder_private`'s order


@dataclass
class Conn:
    id: str
    stream: str  # "public" or "private"
    ws: web.WebSocketResponse
    transport: Any
    authed: bool = False
    topics: set[str] = field(default_factory=set)
    # written in order by its own task; a callable there runs once what is before it was sent
    outbox: asyncio.Queue[str | Callable[[], None]] = field(default_factory=asyncio.Queue)


class Streams:
    """WebSocket handling for FakeBybit (a base of it: the state lives on the fake)."""

    keys: dict[str, str]
    ex: Exchange
    dup_exec: bool
    reorder_private: bool
    delay_topic: dict[str, float]
    _drop_next: Counter[str]
    _kills: Kills
    _conns: dict[str, Conn]
    _ws_received: list[dict[str, Any]]
    _connects: Counter[str]
    _ids: itertools.count[int]
    _loop: asyncio.AbstractEventLoop
    _stall_until: float
    _maintenance_until: int

    def server_ms(self) -> int:
        raise NotImplementedError

    def ticker(self, symbol: str) -> dict[str, Any]:
        raise NotImplementedError

    async def _ws(self, request: web.Request, stream: str) -> web.StreamResponse:
        if self.server_ms() < self._maintenance_until:
            return web.Response(status=503, text="Service is under maintenance.")
        hook = self._kills.due("connect", stream)
        if hook is not None:
            self._kills.kill(hook, stream)
            return web.Response(status=503, text="the client was killed connecting")
        ws = web.WebSocketResponse(autoping=False, timeout=0.5)
        await ws.prepare(request)
        conn = Conn(f"fake-{next(self._ids)}", stream, ws, request.transport)
        self._conns[conn.id] = conn
        self._connects[stream] += 1
        writer = asyncio.get_running_loop().create_task(self._write(conn))
        try:
            async for msg in ws:
                if self._stalled():
                    continue
                if msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    self._ws_message(conn, msg.data)
        except ConnectionError:
            pass
        finally:
            self._conns.pop(conn.id, None)
            writer.cancel()
        return ws

    @staticmethod
    async def _write(conn: Conn) -> None:
        """Send the socket's queued messages in order (so no control call waits on a socket)."""
        while not conn.ws.closed:
            text_ = await conn.outbox.get()
            if callable(text_):
                text_()
                continue
            try:
                await conn.ws.send_str(text_)
            except ConnectionError:
                return

    def _stalled(self) -> bool:
        return time.monotonic() < self._stall_until

    def _ws_message(self, conn: Conn, data: str) -> None:
        try:
            req = json.loads(data)
            op = req.get("op")
            self._ws_received.append({"stream": conn.stream} | req)
        except (ValueError, AttributeError):
            self._send(conn, {"success": False, "ret_msg": "invalid JSON", "conn_id": conn.id})
            return
        req_id = req.get("req_id", "")
        base = {"conn_id": conn.id, "req_id": req_id, "op": op}
        if op == "ping":
            if conn.stream == "public":
                self._send(conn, base | {"success": True, "ret_msg": "pong"})
            else:
                self._send(conn, base | {"op": "pong", "args": [str(self.server_ms())]})
        elif op == "auth" and conn.stream == "private":
            error = self._ws_auth_error(req.get("args"))
            conn.authed = error == ""
            self._send(conn, base | {"success": conn.authed, "ret_msg": error})
        elif op in ("subscribe", "unsubscribe"):
            self._subscribe(conn, op, req.get("args"), base)
        else:
            self._send(conn, base | {"success": False, "ret_msg": f"unknown op {op!r}"})

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
        if not hmac.compare_digest(str(sign).lower().encode(), want.hexdigest().encode()):
            return "Request not authorized"
        return ""

    def _subscribe(self, conn: Conn, op: str, args: Any, base: dict[str, Any]) -> None:
        if conn.stream == "private" and not conn.authed:
            self._send(conn, base | {"success": False, "ret_msg": "Request not authorized"})
            return
        topics = [str(t) for t in args] if isinstance(args, list) else []
        bad = [t for t in topics if not self._topic_ok(conn.stream, t)] or ([] if topics else ["?"])
        new = [t for t in topics if t not in bad and t not in conn.topics]
        for t in topics:
            if t not in bad:
                (conn.topics.add if op == "subscribe" else conn.topics.discard)(t)
        ret = f"error:handler not found,topic:{','.join(bad)}" if bad else ""
        self._send(conn, base | {"success": not bad, "ret_msg": ret})
        if op == "subscribe":
            for t in new:
                if t.startswith("tickers."):
                    sym, now = t.split(".", 1)[1], self.server_ms()
                    snap = {"topic": t, "type": "snapshot", "data": self.ticker(sym),
                            "cs": next(self._ids), "ts": now}  # fmt: skip
                    self._send(conn, snap)

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

    def _send(self, conn: Conn, msg: dict[str, Any] | str) -> None:
        """Queue one message (lost while the sockets are stalled, as on a half-open link)."""
        if not self._stalled() and not conn.ws.closed:
            conn.outbox.put_nowait(msg if isinstance(msg, str) else dumps(msg))

    def _send_public(self, topic: str, msg: dict[str, Any]) -> None:
        text_ = dumps({"topic": topic} | msg)
        for conn in list(self._conns.values()):
            if conn.stream == "public" and topic in conn.topics:
                self._send(conn, text_)

    def _send_private(self, topic: str, text_: str, hook: Hook | None = None) -> None:
        sent = []
        for conn in list(self._conns.values()):
            if conn.stream == "private" and conn.authed and topic in conn.topics:
                self._send(conn, text_)
                sent.append(conn)
        if hook is not None:
            self._kill_after(hook, topic, sent)

    def _publish(self, batches: list[Batch]) -> None:
        """Push private messages per the delivery knobs: drop_next, reorder, dup, delay."""
        for batch in batches:
            if self.reorder_private:
                batch = sorted(batch, key=lambda e: REORDERED.index(e[0]))
            for topic, item in batch:
                if self._drop_next[topic] > 0:
                    self._drop_next[topic] -= 1
                    continue
                msg = dumps({"id": f"{next(self._ids)}-fake", "topic": topic,
                              "creationTime": self.server_ms(), "data": [item]})  # fmt: skip
                copies = 2 if topic == "execution" and self.dup_exec else 1
                delay = self.delay_topic.get(topic, 0.0)
                hook = self._kills.due("execution", None, item) if topic == "execution" else None
                for i in range(copies):
                    last = hook if i == copies - 1 else None
                    if delay > 0:
                        self._loop.call_later(delay, self._send_private, topic, msg, last)
                    else:
                        self._send_private(topic, msg, last)

    def _kill_after(self, hook: Hook, topic: str, sent: list[Conn]) -> None:
        """The hook fires once the message is on the wire (at once when nobody receives it)."""
        if not sent:
            self._kills.kill(hook, topic)
            return
        sent[0].outbox.put_nowait(lambda: self._kills.kill(hook, topic))


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
