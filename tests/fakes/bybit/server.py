"""`FakeBybit`: the aiohttp server (REST and both WebSocket streams on one port), its asyncio loop
on a daemon thread, and the synchronous control methods tests drive it with."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from aiohttp import web

from trade.data.sample import sample_instruments
from trade.instruments import InstrumentSpec

from . import preload as preloading
from .errors import Reject
from .faults import Faults
from .gateway import Gateway, Request
from .kills import Kills, Match
from .market import Instrument, Series, bar_end, check_interval, text
from .matching import Exchange
from .models import fake_uuid, num
from .ws import PRIVATE_TOPICS, Conn

DEFAULT_KEY, DEFAULT_SECRET = "FAKEBYBITKEY0001", "FAKEBYBITSECRET0000000000000000001"


class Clock:
    """Real time unless set: `set(ms)` freezes it at ms, `set(ms, speed)` runs it from ms at
    `speed` times real time (a session that starts in the past and runs fast); `advance` moves it."""

    def __init__(self) -> None:
        self._state: tuple[int, float, float] | None = None  # (ms, monotonic then, speed)

    def now_ms(self) -> int:
        state = self._state
        if state is None:
            return int(time.time() * 1000)
        ms, then, speed = state
        return ms + int((time.monotonic() - then) * 1000 * speed)

    def set(self, ms: int, speed: float = 0.0) -> None:
        if speed < 0:
            raise ValueError(f"clock speed must be >= 0, got {speed}")
        self._state = (int(ms), time.monotonic(), float(speed))

    def advance(self, ms: int) -> None:
        state = self._state
        if state is None:
            raise RuntimeError("advance() moves a set clock: call set_time() first")
        self.set(self.now_ms() + int(ms), state[2])


class FakeBybit(Gateway):
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
        self._rejects: deque[Reject] = deque()
        self._faults = Faults()
        self._kills = Kills(self.server_ms)
        self._bar_positions: list[dict[str, Any]] = []
        self._maintenance_until = 0  # server ms
        self._stall_until = 0.0  # monotonic
        self._requests: list[Request] = []
        self._ws_received: list[dict[str, Any]] = []  # every JSON message a socket sent us
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._conns: dict[str, Conn] = {}
        self._connects: Counter[str] = Counter()
        self._ids = itertools.count(1)
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

    def set_time(self, ms: int, speed: float = 0.0) -> None:
        """Freeze the clock at `ms` (or run it from there at `speed` times real time)."""
        self.clock.set(ms, speed)

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

    def _trade(self, symbol: str, price: Decimal, qty: Decimal, side: str) -> None:
        self.ex.instrument(symbol)
        prev = self.ex.last.get(symbol)
        now, n = self.server_ms(), next(self._ids)
        batches = self.ex.trade(symbol, price)
        tick = "ZeroPlusTick" if prev is None or price == prev else "PlusTick"
        if prev is not None and price < prev:
            tick = "MinusTick"
        trade = {"T": now, "s": symbol, "S": side, "v": num(qty), "p": num(price), "L": tick,
                 "i": fake_uuid(3, n), "BT": False, "seq": n}  # fmt: skip
        self._send_public(f"publicTrade.{symbol}", {"type": "snapshot", "ts": now, "data": [trade]})
        t = self.ticker(symbol)
        delta = {k: t[k] for k in ("symbol", "lastPrice", "markPrice", "indexPrice", "bid1Price",
                                   "ask1Price")} | {"tickDirection": tick}  # fmt: skip
        self._send_public(f"tickers.{symbol}", {"type": "delta", "data": delta, "cs": n, "ts": now})
        self._publish(batches)

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

    def _kline(self, symbol: str, interval: str, row: list[Any], confirm: bool) -> None:
        item = self.klines.setdefault((symbol, interval), Series(7)).upsert(row)
        start, now = int(row[0]), self.server_ms()
        bar = {"start": start, "end": bar_end(start, interval), "interval": interval,
               "open": item[1], "close": item[4], "high": item[2], "low": item[3],
               "volume": item[5], "turnover": item[6], "confirm": bool(confirm),
               "timestamp": now}  # fmt: skip
        msg = {"type": "snapshot", "ts": now, "data": [bar]}
        if confirm and interval == "1":
            p = self.ex.position_view(symbol)
            self._bar_positions.append({"close": start + 60_000, "symbol": symbol,
                                        "side": p["side"], "size": p["size"],
                                        "stopLoss": p["stopLoss"]})  # fmt: skip
        self._send_public(f"kline.{interval}.{symbol}", msg)

    def fill(self, order_id_or_link_id: str, price: float, qty: float | None = None) -> None:
        """Fill an open order explicitly (all that is left when `qty` is None)."""

        def go() -> None:
            o = self.ex.ref(order_id_or_link_id)
            q = None if qty is None else Decimal(repr(float(qty)))
            self._publish(self.ex.fill(o, Decimal(repr(float(price))), q))

        self._call(go)

    def funding(self, symbol: str, rate: float) -> None:
        """Settle funding on the open position at the mark price (no-op when flat)."""

        def go() -> None:
            self.funding_rates[symbol] = text(rate)
            self._publish(self.ex.funding(symbol, Decimal(repr(float(rate)))))

        self._call(go)

    def liquidate(self, symbol: str, price: float) -> None:
        self._call(self._close_out, symbol, price, "BustTrade")

    def adl(self, symbol: str, price: float) -> None:
        self._call(self._close_out, symbol, price, "AdlTrade")

    def _close_out(self, symbol: str, price: float, kind: str) -> None:
        self._publish(self.ex.close_out(symbol, Decimal(repr(float(price))), kind))

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

    def kill_on(
        self, pid: int, step: str, where: str | None = None, *, nth: int = 1,
        match: Match | None = None,
    ) -> None:  # fmt: skip
        """SIGKILL process `pid` at the `nth` matching `step` (see kills.py): "received",
        "applied" or "answered" of the REST path `where`, "execution" (once one is pushed), or
        "connect" of the stream `where` (public or private)."""
        self._kills.arm(pid, step, where, nth, match)

    def disarm_kills(self) -> None:
        self._kills.disarm()

    @property
    def kills(self) -> list[dict[str, Any]]:
        """The kills done: pid, step, where and the server time."""
        return [dict(k) for k in list(self._kills.fired)]

    @property
    def kills_armed(self) -> int:
        return self._kills.armed

    def reject_next_order(self, code: int, message: str | None = None) -> None:
        """The next order/create answers `code` with Bybit's message, nothing applied."""
        self._rejects.append(Reject(code, message))

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
    def bar_positions(self) -> list[dict[str, Any]]:
        """The position at every confirmed 1m kline pushed (its close, side, size, stopLoss): what
        the stop invariant is checked against, bar by bar."""
        return [dict(b) for b in list(self._bar_positions)]

    @property
    def requests(self) -> list[Request]:
        return [replace(r) for r in list(self._requests)]

    @property
    def ws_received(self) -> list[dict[str, Any]]:
        """Every JSON message clients sent (with its `stream`), stalled sockets excepted."""
        return [dict(m) for m in list(self._ws_received)]

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
