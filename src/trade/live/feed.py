"""The live market feed: every closed bar of every timeframe a session uses, exactly once, in
order, with nothing missing.

Bybit pushes a kline many times while it forms and once more with `confirm: true` when it closes;
only that last one counts. A bar can also never arrive (a dropped socket, a lost message): when a
closed bar opens later than the next one expected, the missing bars are fetched by REST and handed
out first; after a reconnect every timeframe is caught up by REST to the exchange's clock at once,
not at its next live bar. A bar that was handed out already (a duplicate push, or one REST and the
stream both delivered) is dropped.

`EvaluationClock` is the replay rule for live: an exec close T is evaluated once every timeframe's
bar closing at or before T has been fed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace

from ..exchange.bybit import BybitRest, BybitStream, Kline, StreamEvent, interval_of, kline_topic
from ..timeframes import canonical, tf_ms


@dataclass(frozen=True)
class ClosedBar:
    tf: str
    bar: Kline
    source: str  # "stream" or "rest" (backfilled)

    @property
    def close_ms(self) -> int:
        return self.bar.start + tf_ms(self.tf)


class MarketFeed:
    """Closed bars of `timeframes` of `symbol` from the public stream, gaps filled by REST.

    `last_open` gives, per timeframe, the open time of the last bar already fed (from warmup or a
    checkpoint); the feed continues right after it. `async for bar in feed.bars():` yields bars in
    close-time order within each batch (lower timeframe first on equal closes)."""

    def __init__(
        self,
        rest: BybitRest,
        stream_url: str,
        symbol: str,
        timeframes: Iterable[str],
        last_open: dict[str, int],
        *,
        ping_interval: float = 20.0,
        backoff: float = 0.5,
        on_event: Callable[[StreamEvent], None] | None = None,
    ) -> None:
        self.rest, self.symbol = rest, symbol
        self.tfs = [canonical(t) for t in timeframes]
        missing = [t for t in self.tfs if t not in last_open]
        if missing:
            raise ValueError(f"no last bar for {missing}: warm the feed up first")
        self.last_open = {canonical(t): v for t, v in last_open.items()}
        self.topic_tf = {kline_topic(interval_of(t), symbol): t for t in self.tfs}
        self.stream = BybitStream(
            stream_url, list(self.topic_tf), ping_interval=ping_interval, backoff=backoff,
            clock_ms=rest.now_ms,
        )  # fmt: skip
        self.on_event = on_event
        self.backfilled = 0  # bars fetched by REST because the stream missed them
        self.duplicates = 0  # closed bars dropped because they were handed out already

    async def __aenter__(self) -> MarketFeed:
        self.stream.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.close()

    async def bars(self) -> AsyncIterator[ClosedBar]:
        """Closed bars forever (until the feed is closed)."""
        while True:
            event = await self.stream.next()
            if self.on_event is not None:
                self.on_event(event)
            for bar in await self.handle(event):
                yield bar

    async def handle(self, event: StreamEvent) -> list[ClosedBar]:
        """The closed bars an event makes available, gaps first."""
        out: list[ClosedBar] = []
        if event.kind == "kline":
            tf = self.topic_tf.get(event.topic)
            if tf is None:
                return out
            for k in event.items:
                if k.confirm:
                    out += await self._accept(tf, k)
        elif event.kind == "reconnected":
            await self.rest.sync_time()  # the outage may have been long: where is the exchange now?
            for tf in self.tfs:
                out += await self.catch_up(tf)
        return sorted(out, key=lambda b: (b.close_ms, tf_ms(b.tf)))

    async def _accept(self, tf: str, k: Kline) -> list[ClosedBar]:
        step = tf_ms(tf)
        self.rest.observe_server_time(k.start + step)  # a closed bar: the exchange is past its end
        expected = self.last_open[tf] + step
        if k.start < expected:
            self.duplicates += 1
            return []
        # every bar opening before a confirmed one is closed, whatever our clock says
        out = (
            await self._backfill(tf, expected, k.start - step, k.start)
            if k.start > expected
            else []
        )
        if self.last_open[tf] + step != k.start:  # REST could not deliver the whole gap
            return out
        self.last_open[tf] = k.start
        return [*out, ClosedBar(tf, k, "stream")]

    async def catch_up(self, tf: str) -> list[ClosedBar]:
        """Every bar of `tf` closed by the exchange's clock that was not fed yet (after a
        reconnect: Bybit replays nothing)."""
        step = tf_ms(tf)
        now = self.rest.now_ms()
        last_closed_open = (now // step) * step - step
        return await self._backfill(tf, self.last_open[tf] + step, last_closed_open, now)

    async def _backfill(self, tf: str, first: int, last: int, closed_by: int) -> list[ClosedBar]:
        """Bars opening in [first, last] and closed by `closed_by`, by REST, contiguous from
        `first`."""
        step = tf_ms(tf)
        out: list[ClosedBar] = []
        lo = first
        while lo <= last:
            hi = min(last, lo + 999 * step)
            page = [
                k
                for k in await self.rest.klines(self.symbol, tf, lo, hi)
                if k.confirm or k.start + step <= closed_by
            ]
            for k in page:
                if k.start == self.last_open[tf] + step:
                    self.last_open[tf] = k.start
                    out.append(ClosedBar(tf, replace(k, confirm=True), "rest"))
            if self.last_open[tf] < hi:
                break  # Bybit has not got the bar yet: the next push or reconnect retries
            lo = hi + step
        self.backfilled += len(out)
        return out


class EvaluationClock:
    """When an exec close may be evaluated: once every timeframe's bar that closes at or before
    it has been fed, exactly as replay feeds them."""

    def __init__(self, timeframes: Iterable[str], exec_tf: str) -> None:
        self.tfs = [canonical(t) for t in timeframes]
        self.exec_ms = tf_ms(canonical(exec_tf))
        self.fed_close: dict[str, int] = {}

    def fed(self, bar: ClosedBar) -> None:
        self.fed_close[bar.tf] = max(self.fed_close.get(bar.tf, 0), bar.close_ms)

    def ready(self, t: int) -> bool:
        """Every timeframe's latest bar closing at or before `t` is in."""
        for tf in self.tfs:
            step = tf_ms(tf)
            if self.fed_close.get(tf, 0) < (t // step) * step:
                return False
        return True

    def due(self, after: int) -> list[int]:
        """Exec closes after `after` that are ready now, in order."""
        out: list[int] = []
        t = after + self.exec_ms
        while self.fed_close.get(self._exec_tf(), 0) >= t and self.ready(t):
            out.append(t)
            t += self.exec_ms
        return out

    def _exec_tf(self) -> str:
        return next(tf for tf in self.tfs if tf_ms(tf) == self.exec_ms)
