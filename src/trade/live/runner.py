"""The live runner: one Play on one symbol, fed by the exchange's stream, deciding with the same
`PlayEngine` replay uses, acting through a broker (paper, demo or live).

A session, in order:
1. The exchange's clock is read (never the local one): the session's window starts at the first
   exec-bar boundary at or after it; the first instant evaluated is that bar's close.
2. Warmup: every timeframe's history from exactly where a backtest of that window would start it
   (the Play's warmup before the window start), from the market store and then REST up to now,
   fed to the engine in replay's order (close time, lower timeframe first).
3. The market feed hands out closed bars once each, gaps backfilled by REST. 1m bars go to the
   broker as they close (with the mark bars and funding due before them); the engine's bars wait
   until an instant needs them, then are fed exactly as replay feeds them.
4. The clock rule: an exec close T is evaluated once every timeframe's bar closing by T is in
   (`EvaluationClock`); a bar that does not come within a grace period is fetched by REST. At T
   the broker brings the position up to date, the engine steps every condition and decides, the
   decisions are recorded and executed at once.
5. Everything fed and done is recorded in the session file (`session.py`); closed bars, marks and
   funding are also written to the market store at each exec close.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.bars import Bars
from ..engine.decide import Decision
from ..engine.execution import MissingAtr, entry_request
from ..engine.guards import GuardSet, describe
from ..engine.market import warmup_ms
from ..engine.play_engine import INSTANT_IDS, PlayEngine
from ..exchange.bybit import BybitRest, Kline
from ..instruments import InstrumentSpec, compile_rounding
from ..play.compile import CompiledPlay
from ..play.model import Guards
from ..sim.orders import OrderRequest
from ..sim.tape import Tape
from ..timeframes import MINUTE_MS, TIMEFRAMES, tf_ms
from .broker import Broker, BrokerView, DecisionContext
from .feed import ClosedBar, EvaluationClock, MarketFeed
from .notify import Notifier
from .paper import MarketExtras
from .session import SessionRecord

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MARK_TF = "1h"  # the mark bars a session tracks: what the sample and `trade data sync` store
MARK_HISTORY_MS = 8 * HOUR_MS  # the mark history a backtest loads before its window
LATE_MS = 60_000  # an instant evaluated later than this after its close is missed, not traded
BrokerFactory = Callable[[InstrumentSpec, MarketExtras], Broker]


@dataclass(frozen=True)
class Snapshot:
    """What the live panel shows after each step."""

    mode: str
    symbol: str
    play: str
    broker: BrokerView
    last_bar: ClosedBar | None
    last_instant: int | None
    next_instant: int
    exchange_ms: int
    decisions: int
    trades: int
    stream: str
    day_pnl: float = math.nan  # equity change since the UTC day began (exchange time)
    guards: dict[str, Any] = dataclasses.field(default_factory=dict)
    guard_halt: str | None = None  # the guard halting entries, and why


class LiveRunner:
    """Runs one session until `request_stop()` (or a signal handler calling it)."""

    def __init__(
        self,
        compiled: CompiledPlay,
        symbol: str,
        rest: BybitRest,
        public_ws_url: str,
        record: SessionRecord,
        make_broker: BrokerFactory,
        *,
        store_path: Path | None = None,
        ping_interval: float = 20.0,
        backoff: float = 0.5,
        grace_s: float = 3.0,
        on_update: Callable[[Snapshot], None] | None = None,
        guards: Guards | None = None,
        notifier: Notifier | None = None,
        resume: bool = False,
    ) -> None:
        self.compiled, self.symbol = compiled, symbol
        self.rest, self.ws_url, self.record = rest, public_ws_url, record
        self.make_broker = make_broker
        self.store_path = store_path
        self.ping_interval, self.backoff, self.grace_s = ping_interval, backoff, grace_s
        self.on_update = on_update
        self.resume = resume  # continue the session already in `record` (see resume.py)
        self.notifier = notifier
        if notifier is not None:
            record.listeners.append(notifier.on_event)
        self.guard_limits = guards or Guards()
        self.guards: GuardSet | None = None
        self.instrument: InstrumentSpec | None = None
        self.last_price = math.nan  # the last 1m close: the guards' reference price
        self.engine = PlayEngine(compiled)
        self.exec_tf = compiled.exec_tf
        self.exec_ms = TIMEFRAMES[self.exec_tf]
        self.engine_tfs = self.engine.timeframes()
        self.tfs = sorted({*self.engine_tfs, "1m"}, key=tf_ms)
        self.extras = MarketExtras()
        self.broker: Broker | None = None
        self.start_ms = 0
        self.last_instant: int | None = None
        self.last_bar: ClosedBar | None = None
        self.decisions = 0
        # the position facts the engine decided on at the last instant (recorded with it)
        self.facts: dict[str, Any] = {}
        self.exec_close = math.nan
        self.stream_state = "connecting"
        self.event_at = 0.0  # monotonic arrival time of the stream event being handled
        self._pending: list[ClosedBar] = []  # closed bars the engine has not been fed yet
        self._store_rows: list[tuple[str, Kline]] = []
        self._store_marks: list[Kline] = []
        self._store_funding: list[tuple[int, float]] = []
        self._last_funding_ts = 0
        self._stop = asyncio.Event()
        self.flatten_requested = False  # `trade play stop --flatten`: close the position too
        self._day_open: tuple[int, float] | None = None  # (UTC day, equity at its first step)
        self._progress = asyncio.Condition()
        self.handled_close = 0  # every bar closing by here is handled, due instants evaluated
        self.finished = False
        self.failure: BaseException | None = None
        # the instant values a Play may read, kept as replay computes them
        self._tape = Tape(self.exec_ms) if self.engine.instant_ids else None

    # ------------------------------------------------------------------ control

    def request_stop(self, flatten: bool = False) -> None:
        """End the session: resting entries are cancelled, a position keeps its stop (with
        `flatten`, the position is closed first)."""
        self.flatten_requested = self.flatten_requested or flatten
        self._stop.set()

    async def wait_handled(self, close_ms: int, timeout: float = 60.0) -> None:
        """Until every bar closing by `close_ms` is handled (tests pace a replayed day by it). A
        minute is handled in milliseconds, but a paper session's simulator compiles its scans
        the first minute it has an order or a position to check when numba's cache is cold (a
        fresh checkout): seconds, more on a loaded machine."""
        async with asyncio.timeout(timeout):
            async with self._progress:
                await self._progress.wait_for(
                    lambda: self.handled_close >= close_ms or self.finished
                )
        if self.handled_close < close_ms:
            raise RuntimeError(f"the session ended before {_iso(close_ms)}: {self.failure!r}")

    # ------------------------------------------------------------------ the session

    async def run(self) -> None:
        try:
            await self._run()
        except BaseException as exc:
            self.failure = exc
            if isinstance(exc, Exception):
                self.record.journal(
                    None, "error", f"session failed: {exc}", type=type(exc).__name__
                )
            raise
        finally:
            if self.notifier is not None:
                await asyncio.to_thread(self.notifier.close)
            async with self._progress:
                self.finished = True
                self._progress.notify_all()

    async def _run(self) -> None:
        await self.rest.sync_time()
        now = self.rest.now_ms()
        if self.resume:
            from .resume import rebuild

            last_open = await rebuild(self, now)
        else:
            last_open = await self._begin(now)
        # the bars closed by the last instant (a new session's: its warmup) go to the engine now,
        # not inside the next instant: their first feeding compiles the Play's kernels when
        # numba's cache is cold, seconds in which an instant's orders would wait; so would the
        # first order's rounding
        self._feed(self.last_instant or self.start_ms)
        compile_rounding()
        assert self.broker is not None
        clock = EvaluationClock(self.tfs, self.exec_tf)
        for tf in self.tfs:
            clock.fed_close[tf] = last_open[tf] + tf_ms(tf)
        feed = MarketFeed(
            self.rest, self.ws_url, self.symbol, self.tfs, last_open,
            ping_interval=self.ping_interval, backoff=self.backoff,
        )  # fmt: skip
        self.record.set_meta(state="running")
        try:
            async with feed:
                if self.resume:  # what closed while the session was down, before any push
                    bars = [b for tf in self.tfs for b in await feed.catch_up(tf)]
                    await self._handle(sorted(bars, key=_replay_order), clock)
                    for t in clock.due(self.last_instant or self.start_ms):
                        await self._evaluate(t)  # its bars were all in when the session stopped
                await self._loop(feed, clock)
        finally:
            if self.flatten_requested:
                await self.broker.flatten(self.rest.now_ms())
            await self.broker.stop()
            await self._flush_store()
            self.record.journal(self.rest.now_ms(), "stop", "session stopped")
            self._update()
            self.record.set_meta(state="stopped")

    async def _begin(self, now: int) -> dict[str, int]:
        """A new session: its window, instrument, warmup and broker; each timeframe's last bar."""
        self.start_ms = -(-now // self.exec_ms) * self.exec_ms
        first_instant = self.start_ms + self.exec_ms
        instrument = self.instrument = await self._instrument()
        self.record.set_meta(
            start_ms=self.start_ms, exec_tf=self.exec_tf, timeframes=",".join(self.tfs),
            instrument=json.dumps(dataclasses.asdict(instrument)),
        )  # fmt: skip
        last_open = await self._warmup(now)
        await self._warm_marks(now)
        self.broker = self.make_broker(instrument, self.extras)
        self.guards = GuardSet(self.guard_limits, self.compiled.play, self.record)
        self.record.journal(now, "guards", f"guards: {describe(self.guard_limits)}")
        await self.broker.start(first_instant)
        self.record.journal(
            now, "start", f"session started; first evaluation at {_iso(first_instant)}",
            start_ms=self.start_ms,
        )  # fmt: skip
        self.last_instant = self.start_ms
        return last_open

    async def _loop(self, feed: MarketFeed, clock: EvaluationClock) -> None:
        waiting_since: float | None = None
        while not self._stop.is_set():
            try:
                event = await feed.stream.next(timeout=0.25)
            except TimeoutError:
                event = None
            bars: list[ClosedBar] = []
            # when what is being handled arrived (the reaction-time benchmark measures from here)
            self.event_at = event.at if event is not None else time.monotonic()
            if event is not None:
                if event.kind in ("connected", "reconnected", "disconnected"):
                    self.stream_state = event.kind
                    if event.kind != "connected":
                        self.record.journal(self.rest.now_ms(), "stream", f"public {event.kind}")
                bars = await feed.handle(event)
            blocked = self._blocked(clock)
            if blocked and not bars:
                waiting_since = waiting_since or time.monotonic()
                if time.monotonic() - waiting_since >= self.grace_s:
                    for tf in blocked:  # the push never came: ask REST for it
                        bars += await feed.catch_up(tf)
                    waiting_since = None
            elif not blocked:
                waiting_since = None
            if bars:
                await self._handle(sorted(bars, key=_replay_order), clock)
            if event is not None or bars:
                done = self.last_instant if self._blocked(clock) else clock.fed_close["1m"]
                await self._mark_handled(done or 0)

    def _blocked(self, clock: EvaluationClock) -> list[str]:
        """Timeframes holding up the next instant whose exec minute has closed."""
        t = (self.last_instant or 0) + self.exec_ms
        if clock.fed_close.get("1m", 0) < t:
            return []
        return [tf for tf in self.tfs if clock.fed_close.get(tf, 0) < (t // tf_ms(tf)) * tf_ms(tf)]

    async def _handle(self, bars: list[ClosedBar], clock: EvaluationClock) -> None:
        assert self.broker is not None
        self.record.bars([_bar_row(b.tf, b.bar, b.source) for b in bars])
        for b in bars:
            self._store_rows.append((b.tf, b.bar))
            if b.tf == "1m" and b.bar.start >= self.start_ms:
                await self._extras_before(b.bar.start)
                if self._tape is not None:
                    self._tape_bar(b.bar)
                await self.broker.on_minute(b.bar)
                self.last_price = b.bar.close
            if b.tf in self.engine_tfs:
                self._pending.append(b)
            clock.fed(b)
            self.last_bar = b
            for t in clock.due(self.last_instant or self.start_ms):
                await self._evaluate(t)

    async def _evaluate(self, t: int) -> None:
        """Instant `t`, exactly as replay: feed the bars closed by t, step, decide, act; an
        instant evaluated more than `LATE_MS` after it closed (exchange time) decides but its
        decisions are journaled as missed, never executed late."""
        assert self.broker is not None
        decisions = await self._decide(t)
        late_s = (self.rest.now_ms() - t) // 1000
        self.record.decisions(
            t, [(d.kind, d.side, d.percent, d.block, d.metadata) for d in decisions], self.facts
        )
        self.decisions += len(decisions)
        self.last_instant = t
        equity = self.broker.view().equity  # as of t, recorded once the orders are out
        if decisions and late_s * 1000 > LATE_MS:
            self.record.journal(
                t, "missed", f"{len(decisions)} decision(s) at {_iso(t)} not executed: evaluated "
                f"{late_s} s late",
                decisions=[f"{d.kind} {d.side} {d.percent:g}% ({d.block})" for d in decisions],
            )  # fmt: skip
        elif decisions:
            await self.act(t, decisions)
        # `t` is done once its orders are out: what a reader of the record may rely on
        self.record.set_meta(last_instant=t)
        if t % self.exec_ms == 0:
            last_bar = self.last_bar.close_ms if self.last_bar is not None else None
            self.record.checkpoint(t, last_bar, self.engine.state())
        if math.isfinite(equity):
            self.record.equity(t, equity)
        if t % DAY_MS == 0:
            self._daily_summary(t)
        if t % HOUR_MS == 0:  # the store is written hourly (and at the end): one short lock
            await self._flush_store()

    async def _decide(self, t: int) -> list[Decision]:
        """Feed the engine the bars closed by `t`, bring the broker up to `t`, step and decide
        (a halted broker takes no new entry; the Play's exits still close what is open)."""
        assert self.broker is not None and self.guards is not None
        engine = self.engine
        self._feed(t)
        if self._tape is not None:
            engine.set_instant(**self._instant_values(t))
        broker = self.broker
        await broker.before_instant(t)
        self.guards.observe(t, broker.view(), self.last_price)
        position = broker.position_values(t) if engine.uses_position else None
        side, pending, view = broker.side(), broker.entry_pending(), broker.view()
        self.facts = {
            "side": side, "pending": pending, "halted": broker.halted, "position": position,
            "qty": view.qty, "entry_price": view.entry_price, "equity": view.equity,
            "balance": view.balance,
        }  # fmt: skip
        flat = engine.step(t, position)
        decisions = engine.decisions(flat, side, pending)
        if broker.halted:
            decisions = [d for d in decisions if d.kind == "exit"]
        return decisions

    def _feed(self, t: int) -> None:
        """Feed the engine the pending bars closed by `t`, in replay's order. A bar fed before
        the instant that would feed it changes nothing: each timeframe's features read only
        that timeframe's bars, whose order the feed keeps."""
        ready = [b for b in self._pending if b.close_ms <= t]
        self._pending = [b for b in self._pending if b.close_ms > t]
        for b in sorted(ready, key=_replay_order):
            k = b.bar
            self.engine.feed(b.tf, k.start, k.open, k.high, k.low, k.close, k.volume)
            if b.tf == self.exec_tf:
                self.exec_close = k.close

    async def act(self, t: int, decisions: Sequence[Decision]) -> None:
        """The guards' verdict on the decisions, then the orders."""
        assert self.broker is not None and self.guards is not None
        broker = self.broker
        ctx = DecisionContext(self.engine.features.value, self.exec_close)  # type: ignore[union-attr]
        kept, cap = self.guards.filter(
            t, list(decisions), broker.view(), self.last_price, self._request(t, ctx), self._taker
        )
        if kept:
            await broker.execute(t, kept, dataclasses.replace(ctx, notional_cap=cap))

    def _daily_summary(self, t: int) -> None:
        """At 00:00 UTC: the day that ended, in one journal line (and one notification)."""
        assert self.broker is not None
        view = self.broker.view()
        day = [x for x in self.broker.trades() if t - DAY_MS <= int(x["exit_time"]) < t]
        pnl = sum(float(x["pnl"]) for x in day)
        self.record.journal(
            t, "summary",
            f"{_iso(t - DAY_MS)[:10]}: {len(day)} trade(s) closed, pnl {pnl:.2f} USDT; equity "
            f"{view.equity:.2f}; position {view.side} {view.qty:g}",
            trades=len(day), pnl=pnl, equity=view.equity,
        )  # fmt: skip

    def _request(self, t: int, ctx: DecisionContext) -> Callable[[Decision], OrderRequest | None]:
        """The order an entry decision becomes (what the guards check), as the brokers build it."""
        assert self.instrument is not None
        spec = self.instrument

        def build(d: Decision) -> OrderRequest | None:
            try:
                return entry_request(
                    self.compiled, spec, d, t, ctx.series_value, ctx.exec_close, {}
                )
            except MissingAtr:
                return None  # the broker refuses it with its reason

        return build

    @property
    def _taker(self) -> float:
        return self.compiled.play.account.fee_bps.taker / 1e4

    async def _mark_handled(self, close_ms: int) -> None:
        async with self._progress:
            self.handled_close = max(self.handled_close, close_ms)
            self._progress.notify_all()
        self._update()

    def _update(self) -> None:
        if self.broker is None:
            return
        snap = self.snapshot()
        # what `trade play status` and the dashboard read, without touching the session
        self.record.set_meta(status=json.dumps(status_of(snap), default=str))
        if self.on_update is not None:
            self.on_update(snap)

    def snapshot(self) -> Snapshot:
        assert self.broker is not None
        return Snapshot(
            mode=self.broker.mode,
            symbol=self.symbol,
            play=self.compiled.play.name,
            broker=self.broker.view(),
            last_bar=self.last_bar,
            last_instant=self.last_instant,
            next_instant=(self.last_instant or self.start_ms) + self.exec_ms,
            exchange_ms=self.rest.now_ms(),
            decisions=self.decisions,
            trades=len(self.broker.trades()),
            stream=self.stream_state,
            day_pnl=self._day_pnl(),
            guards=self.guards.states() if self.guards is not None else {},
            guard_halt=self.guards.halted if self.guards is not None else None,
        )

    def _day_pnl(self) -> float:
        """Equity now against the first equity seen in this UTC day of exchange time."""
        assert self.broker is not None
        equity = self.broker.view().equity
        day = self.rest.now_ms() // DAY_MS
        if self._day_open is None or self._day_open[0] != day:
            self._day_open = (day, equity)
        return equity - self._day_open[1]

    # ------------------------------------------------------------------ warmup

    async def _instrument(self) -> InstrumentSpec:
        """The filters a backtest of this symbol uses (the store's), else the exchange's."""
        stored = self._read_store(lambda s: s.instrument(self.symbol))
        if stored is not None:
            return stored
        from ..exchange.bybit import instrument_spec

        info = await self.rest.instrument(self.symbol)
        spec = instrument_spec(info, 0.005)
        self._with_store(lambda s: s.write_instrument(spec))
        return spec

    async def _warmup(self, now: int) -> dict[str, int]:
        """Feed-ready history: the engine gets every bar a backtest starting at the window start
        would have fed before its first instant; returns each timeframe's last bar open."""
        need = warmup_ms(self.compiled)
        last_open: dict[str, int] = {}
        warm: list[ClosedBar] = []
        for tf in self.tfs:
            step = tf_ms(tf)
            first = -(-(self.start_ms - need.get(tf, 0)) // step) * step
            last = (now // step) * step - step  # the last bar closed by now
            got = self._stored_prefix(tf, first, last)
            lo = got[-1].start + step if got else first
            source = {id(k): "store" for k in got}
            while lo <= last:
                page = [k for k in await self.rest.klines(self.symbol, tf, lo, last) if k.confirm]
                page = [k for k in page if k.start >= lo]
                if not page or page[0].start != lo:
                    break  # the exchange has a hole here: the feed's backfill tries again
                for k in page:
                    if k.start != lo:
                        break
                    got.append(k)
                    lo += step
                else:
                    continue
                break
            last_open[tf] = got[-1].start if got else first - step
            warm += [ClosedBar(tf, k, source.get(id(k), "rest")) for k in got]
            # the stored history goes back too: a live write replaces a bundled sample series
            # whole (`MarketStore._insert`), and the store must keep every bar the session fed
            self._store_rows += [(tf, k) for k in got]
        warm.sort(key=lambda b: (b.close_ms, tf_ms(b.tf)))
        self.record.bars([_bar_row(b.tf, b.bar, b.source) for b in warm])
        self._pending = [b for b in warm if b.tf in self.engine_tfs]
        return last_open

    def _stored_prefix(self, tf: str, first: int, last: int) -> list[Kline]:
        """Stored bars from `first` on, as long as they follow each other with no hole."""
        bars = self._read_store(lambda s: s.load_bars(self.symbol, tf, first, last + 1))
        out: list[Kline] = []
        if bars is None:
            return out
        step, expect = tf_ms(tf), first
        for i in range(len(bars)):
            ts = int(bars.ts[i])
            if ts != expect:
                break
            out.append(
                Kline(ts, float(bars.open[i]), float(bars.high[i]), float(bars.low[i]),
                      float(bars.close[i]), float(bars.volume[i]), 0.0, True)
            )  # fmt: skip
            expect += step
        return out

    async def _warm_marks(self, now: int) -> None:
        """The mark bars a backtest of this window loads before it (the last ones before the
        window start price its first bars)."""
        step = tf_ms(MARK_TF)
        lo = -(-(self.start_ms - MARK_HISTORY_MS) // step) * step
        hi = (now // step) * step - step
        if hi >= lo:
            for k in await self.rest.klines(self.symbol, MARK_TF, lo, hi, mark=True):
                if k.confirm:
                    self._add_mark(k)
        self._last_funding_ts = self.start_ms - 1

    async def _extras_before(self, minute_open: int) -> None:
        """Mark bars and funding due before the 1m bar opening at `minute_open` is simulated: the
        mark bar closing with it, and settlements at or before its open (asked once an hour)."""
        step = tf_ms(MARK_TF)
        close = minute_open + MINUTE_MS
        if close % step == 0:
            known = self.extras.marks[-1][1] if self.extras.marks else 0
            if known < close:
                got = await self._fetch_closed_mark(close - step)
                if got is None:
                    self.record.journal(
                        minute_open, "mark", f"no closed mark bar for {_iso(close - step)} yet"
                    )
        if minute_open % HOUR_MS == 0 and minute_open > self._last_funding_ts:
            rows = await self.rest.funding(self.symbol, self._last_funding_ts + 1, minute_open)
            for ts, rate in rows:
                if ts > self._last_funding_ts:
                    self.extras.funding.append((ts, rate))
                    self.record.funding(ts, rate)
                    self._store_funding.append((ts, rate))
                    if self._tape is not None:
                        self._tape.append_funding(ts, rate)
                    self._last_funding_ts = ts
            self._last_funding_ts = max(self._last_funding_ts, minute_open)

    async def _fetch_closed_mark(self, start: int) -> Kline | None:
        for attempt in range(3):
            for k in await self.rest.klines(self.symbol, MARK_TF, start, start, mark=True):
                if k.start == start and k.confirm:
                    self._add_mark(k)
                    return k
            await asyncio.sleep(0.2 * (attempt + 1))
        return None

    def _add_mark(self, k: Kline) -> None:
        step = tf_ms(MARK_TF)
        self.extras.marks.append((k.start, k.start + step, k.high, k.low, k.close))
        self.record.mark(k.start, step, k.open, k.high, k.low, k.close)
        self._store_marks.append(k)
        if self._tape is not None:
            self._tape.append_mark(k.start + step, k.close, k.start, k.high, k.low)

    # ------------------------------------------------------------------ instant values

    def _tape_bar(self, k: Kline) -> None:
        assert self._tape is not None
        self._tape.append_bar(k.start, k.start + MINUTE_MS, k.open, k.high, k.low, k.close)

    def _instant_values(self, t: int) -> dict[str, float]:
        """last_price, mark_price and funding_rate as of `t`, as replay computes them."""
        tape = self._tape
        assert tape is not None
        out: dict[str, float] = {}
        ids = self.engine.instant_ids
        if tape.n and int(tape.ts_close[tape.n - 1]) <= t:
            last = float(tape.c[tape.n - 1])
            mark = float(tape.mark[tape.n - 1])
        else:
            last = mark = math.nan
        if "last_price" in ids:
            out["last_price"] = last
        if "mark_price" in ids:
            out["mark_price"] = last if math.isnan(mark) else mark
        if "funding_rate" in ids:
            k = int(np.searchsorted(tape.funding_ts, t, side="right")) - 1
            out["funding_rate"] = float(tape.funding_rate[k]) if k >= 0 else math.nan
        return {k: out[k] for k in INSTANT_IDS if k in out}

    # ------------------------------------------------------------------ the market store

    def _read_store(self, fn: Callable[[Any], Any]) -> Any:
        if self.store_path is None or not self.store_path.exists():
            return None
        from ..data import MarketStore

        with MarketStore(self.store_path, read_only=True) as store:
            return fn(store)

    def _with_store(self, fn: Callable[[Any], Any]) -> None:
        if self.store_path is None:
            return
        from ..data import MarketStore

        with MarketStore(self.store_path) as store:
            fn(store)

    async def _flush_store(self) -> None:
        """Write the closed bars, marks and funding gathered since the last flush (in a thread:
        another process may hold the store for a moment)."""
        if self.store_path is None or not (
            self._store_rows or self._store_marks or self._store_funding
        ):
            return
        rows, marks, funding = self._store_rows, self._store_marks, self._store_funding
        self._store_rows, self._store_marks, self._store_funding = [], [], []
        await asyncio.to_thread(self._write_store, rows, marks, funding)

    def _write_store(
        self,
        rows: list[tuple[str, Kline]],
        marks: list[Kline],
        funding: list[tuple[int, float]],
    ) -> None:
        def write(store: Any) -> None:
            for tf in {tf for tf, _ in rows}:
                ks = [k for t, k in rows if t == tf]
                store.write_ohlcv(_bars(self.symbol, tf, ks), source="bybit")
            if marks:
                store.write_mark(_bars(self.symbol, MARK_TF, marks), source="bybit")
            if funding:
                store.write_funding(
                    self.symbol,
                    np.array([f[0] for f in funding], dtype=np.int64),
                    np.array([f[1] for f in funding]),
                    source="bybit",
                )

        self._with_store(write)


def status_of(s: Snapshot) -> dict[str, Any]:
    """The session's state as one JSON object, written to its record after every step."""
    b = s.broker
    bar = s.last_bar
    return {
        "mode": s.mode, "symbol": s.symbol, "play": s.play,
        "side": b.side, "qty": b.qty, "entry_price": b.entry_price, "stop": b.stop,
        "target": b.target, "equity": _finite(b.equity), "balance": _finite(b.balance),
        "day_pnl": _finite(s.day_pnl), "open_orders": list(b.open_orders), "halted": b.halted or s.guard_halt,
        "guards": s.guards,
        "last_bar": None if bar is None else {
            "tf": bar.tf, "start": bar.bar.start, "close": bar.bar.close, "source": bar.source},
        "last_instant": s.last_instant, "next_instant": s.next_instant,
        "exchange_ms": s.exchange_ms, "decisions": s.decisions, "trades": s.trades,
        "streams": {"public": s.stream, "private": b.extra.get("private_stream")},
    }  # fmt: skip


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def _bars(symbol: str, tf: str, ks: list[Kline]) -> Bars:
    col = lambda name: np.array([getattr(k, name) for k in ks], dtype=np.float64)  # noqa: E731
    return Bars.from_arrays(
        symbol, tf, np.array([k.start for k in ks], dtype=np.int64), col("open"), col("high"),
        col("low"), col("close"), col("volume"),
    )  # fmt: skip


def _replay_order(b: ClosedBar) -> tuple[int, int]:
    """Replay's feeding order: close time, lower timeframe first."""
    return (b.close_ms, tf_ms(b.tf))


def _bar_row(
    tf: str, k: Kline, source: str
) -> tuple[str, int, float, float, float, float, float, str]:
    return (tf, k.start, k.open, k.high, k.low, k.close, k.volume, source)


def _iso(ms: int) -> str:
    from ..report.artifacts import iso

    return iso(ms)
