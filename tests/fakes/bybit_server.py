"""A fake Bybit v5 REST server on 127.0.0.1 (free port) serving real market files, with faults.

Routes are a table `(method, path) → handler(Request) → Reply`; the market endpoints are built in
(`/v5/market/kline`, `/mark-price-kline`, `/funding/history`, `/instruments-info`), and the live
path adds private endpoints with `fake.route("POST", "/v5/order/create", handler)`.

Faults are consumed in order, one per request (optionally only by requests to one path):
"ok", "ratelimit" (retCode 10006, `X-Bapi-Limit-Reset-Timestamp` `rate_limit_reset_ms` ahead), "http500",
"http502", "http429", "slow" (sleeps `slow_seconds` before answering: past a client's timeout),
"partial" (answers only the newest half of the page), "drop" (closes the connection unanswered).
Every request is recorded in `fake.requests`.
"""

from __future__ import annotations

import csv
import gzip
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

INTERVAL_OF_FILE_TF = {"1m": "1", "5m": "5", "15m": "15", "1h": "60", "4h": "240", "1d": "D"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    at: float = field(default_factory=time.monotonic)  # arrival time

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Reply]


def ok(result: dict[str, Any]) -> Reply:
    """A successful Bybit answer."""
    return Reply(
        200, {"retCode": 0, "retMsg": "OK", "result": result, "time": int(time.time() * 1000)}
    )


def error(code: int, message: str) -> Reply:
    """A Bybit business error (HTTP 200 with a non-zero retCode)."""
    return Reply(200, {"retCode": code, "retMsg": message, "result": {}})


def read_rows(path: Path) -> np.ndarray:
    """A market CSV(.gz) as a float array (header skipped)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as fh:
        return np.loadtxt(fh, delimiter=",", skiprows=1, ndmin=2)


class FakeBybit:
    """The fake server; `with FakeBybit() as fake:` runs it on a thread, `fake.url` is its base."""

    def __init__(self) -> None:
        self.klines: dict[tuple[str, str], np.ndarray] = {}  # (symbol, interval) → ts,o,h,l,c,v
        self.mark: dict[tuple[str, str], np.ndarray] = {}  # (symbol, interval) → ts,o,h,l,c
        self.funding: dict[str, np.ndarray] = {}  # symbol → ts,rate
        self.instruments: dict[str, dict[str, Any]] = {}  # symbol → instruments-info entry
        self.faults: deque[str] = deque()
        self.fault_path: str | None = None  # only requests to this path consume faults
        self.requests: list[Request] = []
        self.slow_seconds = 1.5
        self.rate_limit_reset_ms = 50  # "ratelimit" says the window resets this far ahead
        self.delay = 0.0  # added to every request (lets a test kill a sync midway)
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/v5/market/kline"): lambda r: self._klines(r, self.klines, 6),
            ("GET", "/v5/market/mark-price-kline"): lambda r: self._klines(r, self.mark, 5),
            ("GET", "/v5/market/funding/history"): self._funding,
            ("GET", "/v5/market/instruments-info"): self._instruments,
        }
        self._partial = threading.local()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ set-up

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Add or replace an endpoint."""
        self.routes[(method.upper(), path)] = handler

    def add_klines(self, symbol: str, interval: str, rows: np.ndarray) -> None:
        self.klines[(symbol, interval)] = rows

    def add_market_files(
        self, market_dir: Path, symbols: Iterable[str] = ("BTCUSDT",), tfs: Iterable[str] = ("1m",)
    ) -> FakeBybit:
        """Serve the real Bybit files: klines of `tfs`, 1h mark klines, funding, instruments."""
        for sym in symbols:
            for tf in tfs:
                self.klines[(sym, INTERVAL_OF_FILE_TF[tf])] = read_rows(
                    market_dir / f"bybit_{sym}_{tf}.csv.gz"
                )
            self.mark[(sym, "60")] = read_rows(market_dir / f"bybit_{sym}_mark_1h.csv.gz")
            self.funding[sym] = read_rows(market_dir / f"bybit_{sym}_funding.csv.gz")
        with open(market_dir / "bybit_instruments.csv") as fh:
            for row in csv.DictReader(fh):
                self.instruments[row["symbol"]] = instrument_entry(row)
        return self

    def __enter__(self) -> FakeBybit:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # ------------------------------------------------------------------ market endpoints

    def _klines(self, r: Request, table: dict[tuple[str, str], np.ndarray], cols: int) -> Reply:
        q = r.query
        rows = table.get((q.get("symbol", ""), q.get("interval", "")))
        if rows is None:
            return error(10001, "params error: symbol invalid")
        lo, hi = int(q.get("start", 0)), int(q.get("end", 2**62))
        limit = min(int(q.get("limit", 200)), 1000)
        sel = rows[(rows[:, 0] >= lo) & (rows[:, 0] <= hi)][::-1][:limit]  # newest first
        if getattr(self._partial, "on", False) and len(sel) > 1:
            sel = sel[: len(sel) // 2]
        out = []
        for row in sel:
            item = [str(int(row[0]))] + [repr(float(x)) for x in row[1:cols]]
            if cols == 6:
                item.append(repr(float(row[5] * row[4])))  # turnover ≈ volume × close
            out.append(item)
        return ok({"category": "linear", "symbol": q["symbol"], "list": out})

    def _funding(self, r: Request) -> Reply:
        q = r.query
        rows = self.funding.get(q.get("symbol", ""))
        if rows is None:
            return error(10001, "params error: symbol invalid")
        lo, hi = int(q.get("startTime", 0)), int(q.get("endTime", 2**62))
        limit = min(int(q.get("limit", 200)), 200)
        sel = rows[(rows[:, 0] >= lo) & (rows[:, 0] <= hi)][::-1][:limit]
        if getattr(self._partial, "on", False) and len(sel) > 1:
            sel = sel[: len(sel) // 2]
        out = [
            {
                "symbol": q["symbol"],
                "fundingRate": repr(float(x[1])),
                "fundingRateTimestamp": str(int(x[0])),
            }
            for x in sel
        ]
        return ok({"category": "linear", "list": out})

    def _instruments(self, r: Request) -> Reply:
        sym = r.query.get("symbol")
        items = [v for k, v in self.instruments.items() if sym is None or k == sym]
        return ok({"category": "linear", "list": items, "nextPageCursor": ""})

    # ------------------------------------------------------------------ HTTP plumbing

    def _dispatch(self, req: Request) -> Reply | None:
        """The reply for one request, after its fault (None = drop the connection)."""
        self.requests.append(req)
        if self.delay:
            time.sleep(self.delay)
        fault = "ok"
        if self.faults and (self.fault_path is None or req.path == self.fault_path):
            fault = self.faults.popleft()
        if fault == "drop":
            return None
        if fault in ("http500", "http502"):
            return Reply(int(fault[4:]), {"error": "internal"})
        if fault == "http429":
            return Reply(429, {"error": "too many requests"})
        if fault == "ratelimit":
            reset = str(int(time.time() * 1000) + self.rate_limit_reset_ms)
            return Reply(
                200,
                {"retCode": 10006, "retMsg": "Too many visits!", "result": {}},
                {"X-Bapi-Limit-Reset-Timestamp": reset},
            )
        if fault == "slow":
            time.sleep(self.slow_seconds)
        handler = self.routes.get((req.method, req.path))
        if handler is None:
            return Reply(404, {"error": f"no route {req.method} {req.path}"})
        self._partial.on = fault == "partial"
        try:
            return handler(req)
        finally:
            self._partial.on = False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                u = urlparse(self.path)
                size = int(self.headers.get("Content-Length") or 0)
                req = Request(
                    method,
                    u.path,
                    {k: v[0] for k, v in parse_qs(u.query).items()},
                    dict(self.headers.items()),
                    self.rfile.read(size) if size else b"",
                )
                reply = fake._dispatch(req)
                if reply is None:
                    self.close_connection = True
                    return
                data = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return _Handler


def instrument_entry(row: dict[str, str]) -> dict[str, Any]:
    """A Bybit `instruments-info` entry for one row of `bybit_instruments.csv`."""
    return {
        "symbol": row["symbol"],
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": row["symbol"].removesuffix("USDT"),
        "quoteCoin": "USDT",
        "fundingInterval": int(float(row["funding_interval_hours"]) * 60),
        "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": row["tick_size"]},
        "lotSizeFilter": {
            "maxOrderQty": "1190.000",
            "minOrderQty": row["min_qty"],
            "qtyStep": row["qty_step"],
            "minNotionalValue": row["min_notional"],
        },
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": f"{float(row['max_leverage']):.2f}",
            "leverageStep": "0.01",
        },
    }
