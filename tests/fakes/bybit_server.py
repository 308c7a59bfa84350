"""A fake Bybit v5 REST server on 127.0.0.1 serving real klines, with injectable faults.

Faults are consumed in order, one per request: "ok", "ratelimit" (retCode 10006 with a reset header),
"http500", "http429", "slow" (sleeps past the client's timeout), "partial" (answers only the newest
half of the page). Serves /v5/market/kline, /v5/market/mark-price-kline, /v5/market/funding/history
and /v5/market/instruments-info; the live path will add private endpoints here.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

MINUTES = {
    "1": 1,
    "3": 3,
    "5": 5,
    "15": 15,
    "30": 30,
    "60": 60,
    "120": 120,
    "240": 240,
    "360": 360,
    "720": 720,
    "D": 1440,
}


class FakeBybit:
    def __init__(self) -> None:
        self.klines: dict[
            tuple[str, str], np.ndarray
        ] = {}  # (symbol, interval) → rows ts,o,h,l,c,v
        self.faults: deque[str] = deque()
        self.requests: list[str] = []
        self.slow_seconds = 1.5
        self.delay = 0.0  # added to every request (lets a test kill a sync midway)
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_klines(self, symbol: str, interval: str, rows: np.ndarray) -> None:
        self.klines[(symbol, interval)] = rows

    def __enter__(self) -> FakeBybit:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                u = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                fake.requests.append(self.path)
                if fake.delay:
                    time.sleep(fake.delay)
                fault = fake.faults.popleft() if fake.faults else "ok"
                if fault == "http500":
                    return self._send(500, {"error": "internal"})
                if fault == "http429":
                    return self._send(429, {"error": "too many"})
                if fault == "ratelimit":
                    return self._send(
                        200,
                        {"retCode": 10006, "retMsg": "Too many visits!", "result": {}},
                        {"X-Bapi-Limit-Reset-Timestamp": str(int(time.time() * 1000) + 50)},
                    )
                if fault == "slow":
                    time.sleep(fake.slow_seconds)
                if u.path in ("/v5/market/kline", "/v5/market/mark-price-kline"):
                    return self._klines(
                        q, partial=fault == "partial", mark=u.path.endswith("mark-price-kline")
                    )
                return self._send(
                    200, {"retCode": 10001, "retMsg": f"unknown path {u.path}", "result": {}}
                )

            def _klines(self, q: dict[str, str], partial: bool, mark: bool) -> None:
                rows = fake.klines.get((q["symbol"], q["interval"]))
                if rows is None:
                    return self._send(
                        200,
                        {"retCode": 10001, "retMsg": "params error: symbol invalid", "result": {}},
                    )
                start, end, limit = int(q["start"]), int(q["end"]), int(q.get("limit", 200))
                sel = rows[(rows[:, 0] >= start) & (rows[:, 0] <= end)][::-1][
                    :limit
                ]  # newest first
                if partial and len(sel) > 1:
                    sel = sel[: len(sel) // 2]
                cols = 5 if mark else 6
                out = [
                    [str(int(r[0]))]
                    + [repr(float(x)) for x in r[1:cols]]
                    + ([] if mark else [repr(float(r[5] * r[4]))])
                    for r in sel
                ]
                self._send(
                    200,
                    {
                        "retCode": 0,
                        "retMsg": "OK",
                        "result": {"category": "linear", "symbol": q["symbol"], "list": out},
                        "time": int(time.time() * 1000),
                    },
                )

            def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


def serve_forever_from_file(
    path: str, symbol: str, interval: str, port_file: str, delay: float
) -> None:  # pragma: no cover
    """Entry point for a separate process (used by the kill-midway test)."""
    import gzip

    with gzip.open(path, "rt") as fh:
        rows = np.loadtxt(fh, delimiter=",", skiprows=1)
    fake = FakeBybit()
    fake.add_klines(symbol, interval, rows)
    fake.delay = delay
    with fake:
        with open(port_file, "w") as fh:
            fh.write(fake.url)
        while True:
            time.sleep(1)
