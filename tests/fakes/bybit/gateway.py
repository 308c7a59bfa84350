"""The REST side of the fake: one aiohttp handler for every path, which records the request,
applies the next queued fault, checks Bybit's HMAC headers and answers in Bybit's envelope."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .errors import Reject
from .faults import HTTP_STATUS, Faults
from .kills import Kills
from .rest import ROUTES, is_private
from .ws import Streams, dumps

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

    def header(self, name: str, default: str = "") -> str:
        """A header by its name in any case (clients differ in how they spell them)."""
        name = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == name), default)


class Gateway(Streams):
    """REST dispatch for FakeBybit (a base of it: the state lives on the fake)."""

    keys: dict[str, str]
    demo: bool
    delay: float
    slow_seconds: float
    timeout_seconds: float
    rate_limit_reset_ms: int
    _faults: Faults
    _kills: Kills
    _rejects: deque[Reject]
    _requests: list[Request]
    _hits: dict[tuple[str, str], deque[float]]
    _maintenance_until: int

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
                raise self._rejects.popleft()
            if self._killed("received", req.path, params):
                return self._unanswered(request)
            result, batches = handler(self, params, key)
        except Reject as err:
            self._publish(err.batches)
            return self._answer(err, headers)
        self._publish(batches)
        if self._killed("applied", req.path, params):
            return self._unanswered(request)
        if fault == "partial" and len(result.get("list", ())) > 1:
            result = result | {"list": result["list"][: len(result["list"]) // 2]}
        if fault == "unknown_after_apply":
            return self._answer(Reject(10016), headers)
        if fault == "timeout_after_apply":
            await asyncio.sleep(self.timeout_seconds)
        answer = self._answer(result, headers)
        hook = self._kills.due("answered", req.path, params)
        if hook is not None:
            await answer.prepare(request)
            await answer.write_eof()
            self._kills.kill(hook, req.path)
        return answer

    def _killed(self, step: str, path: str, params: dict[str, Any]) -> bool:
        """Fire a kill hook armed for this step of this request, if one is due."""
        hook = self._kills.due(step, path, params)
        if hook is not None:
            self._kills.kill(hook, path)
        return hook is not None

    @staticmethod
    def _unanswered(request: web.Request) -> web.Response:
        """The client died waiting: its connection is closed without an answer."""
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    def _answer(self, result: dict[str, Any] | Reject, headers: dict[str, str]) -> web.Response:
        if isinstance(result, Reject):
            code, msg, result = result.code, result.message, {}
        else:
            code, msg = 0, "OK"
        body = {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {},
                "time": self.server_ms()}  # fmt: skip
        return web.json_response(body, headers=headers, dumps=dumps)

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
        hits = self._hits.setdefault((req.header("X-BAPI-API-KEY"), req.path), deque())
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
        key, ts, sign = (req.header(f"X-BAPI-{h}") for h in ("API-KEY", "TIMESTAMP", "SIGN"))
        rw = req.header("X-BAPI-RECV-WINDOW", "5000")
        payload = req.raw_query if req.method == "GET" else req.body.decode("utf-8", "replace")
        origin = f"{ts}{key}{rw}{payload}"
        secret = self.keys.get(key)
        digest = hmac.new((secret or "").encode(), origin.encode(), hashlib.sha256).hexdigest()
        req.signed_ok = secret is not None and hmac.compare_digest(
            sign.lower().encode(), digest.encode()
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
