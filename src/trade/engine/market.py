"""The market data one backtest needs: every Play timeframe with warmup, 1m intrabar truth, mark,
funding and instrument filters — loaded once, checked, and never read past the window's end.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..data.bars import Bars
from ..data.gaps import count_missing, missing_ranges
from ..errors import DataError
from ..instruments import InstrumentSpec, default_spec
from ..play.compile import CompiledPlay
from ..timeframes import MINUTE_MS, TIMEFRAMES
from .asof import asof_index


@dataclass(frozen=True)
class Intrabar:
    """The bars fills are priced on: 1m bars, or an exec bar where its minutes are missing."""

    ts_open: np.ndarray
    ts_close: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    fallbacks: int  # exec bars priced on their own OHLC for lack of 1m data
    fallback_ts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


@dataclass(frozen=True)
class MarketWindow:
    symbol: str
    instrument: InstrumentSpec
    bars: dict[str, Bars]  # every Play timeframe, warmup history included
    intrabar: Intrabar
    mark: Bars | None
    funding_ts: np.ndarray
    funding_rate: np.ndarray
    start_ms: int  # first evaluated exec bar's open time
    end_ms: int  # exclusive: the last evaluated exec bar closes here
    missing_exec: tuple[tuple[int, int], ...] = ()  # (first, last) open times of absent exec bars

    def instants(self, exec_tf: str) -> np.ndarray:
        b = self.bars[exec_tf]
        lo, hi = np.searchsorted(b.ts, [self.start_ms, self.end_ms])  # the bars are sorted
        return b.ts[lo:hi] + TIMEFRAMES[exec_tf]


def play_timeframes(compiled: CompiledPlay) -> list[str]:
    tfs = compiled.play.timeframes
    return sorted(
        {tfs.low_tf, tfs.med_tf, tfs.high_tf, *(f.tf for f in compiled.features)},
        key=TIMEFRAMES.get,
    )  # type: ignore[arg-type]


def warmup_ms(compiled: CompiledPlay) -> dict[str, int]:
    """History needed before the window start per timeframe (features' warmup + offsets + 2 bars)."""
    need: dict[str, int] = {tf: 0 for tf in play_timeframes(compiled)}
    need[compiled.exec_tf] = max(need.get(compiled.exec_tf, 0), compiled.play.warmup_bars)
    for f in compiled.features:
        need[f.tf] = max(need[f.tf], f.warmup)
        if f.type == "vwap":  # anchored: exact once one whole anchor period lies in the history
            anchor_ms = TIMEFRAMES["D"] if f.params["anchor"] == "D" else TIMEFRAMES["W"]
            need[f.tf] = max(need[f.tf], anchor_ms // TIMEFRAMES[f.tf])
    for s in compiled.series:
        tf = next(
            (f.tf for f in compiled.features if s.id.startswith(f.key + ".")), compiled.exec_tf
        )
        need[tf] = max(need[tf], s.offset + 1)
    return {tf: (n + 2) * TIMEFRAMES[tf] for tf, n in need.items()}


def build_intrabar(minute: Bars | None, exec_bars: Bars, start_ms: int, end_ms: int) -> Intrabar:
    """1m bars in [start, end); an exec bar with no 1m bar at all is used whole (and counted)."""
    ex = exec_bars.window(start_ms, end_ms)
    exec_ms = exec_bars.tf_ms
    if minute is None or len(minute) == 0:
        m_ts = np.empty(0, dtype=np.int64)
        covered = np.zeros(len(ex), dtype=bool)
        m = None
    else:
        m = minute.window(start_ms, end_ms)
        m_ts = m.ts
        bucket = (m_ts // exec_ms) * exec_ms  # sorted, as the bars are
        at = np.minimum(np.searchsorted(bucket, ex.ts), max(len(bucket) - 1, 0))
        covered = bucket[at] == ex.ts if len(bucket) else np.zeros(len(ex), dtype=bool)
    fb = ~covered
    if m is not None and not fb.any():  # every exec bar has 1m bars: they are the intrabar
        return Intrabar(m.ts, m.ts + MINUTE_MS, m.open, m.high, m.low, m.close, fallbacks=0)
    if m is None:  # no 1m data at all: the exec bars themselves
        return Intrabar(
            ex.ts, ex.ts + exec_ms, ex.open, ex.high, ex.low, ex.close, len(ex), ex.ts.copy()
        )
    parts_ts = [m_ts, ex.ts[fb]]
    parts_close_ts = [m_ts + MINUTE_MS, ex.ts[fb] + exec_ms]
    cols = {}
    for name in ("open", "high", "low", "close"):
        cols[name] = np.concatenate(
            [getattr(m, name) if m is not None else np.empty(0), getattr(ex, name)[fb]]
        )
    ts = np.concatenate(parts_ts)
    order = np.argsort(ts, kind="stable")
    return Intrabar(
        ts_open=ts[order],
        ts_close=np.concatenate(parts_close_ts)[order],
        open=cols["open"][order],
        high=cols["high"][order],
        low=cols["low"][order],
        close=cols["close"][order],
        fallbacks=int(fb.sum()),
        fallback_ts=ex.ts[fb],
    )


def load_from_store(
    compiled: CompiledPlay,
    store: object,
    symbol: str,
    start_ms: int | None,
    end_ms: int | None,
    history_factor: float = 1.0,
    *,
    allow_gaps: bool = False,
    require_1m: bool = False,
) -> MarketWindow:
    """Load a Play's data from the market store, checking the window is covered.

    An exec bar missing inside the window is an error unless `allow_gaps` (the run then lists
    them); an exec bar without 1m data is priced on its own OHLC, or an error with `require_1m`.
    `history_factor` > 1 loads that many times the warmup history (the warmup audit compares)."""
    need = warmup_ms(compiled)
    start, end = window_bounds(
        store, symbol, compiled.exec_tf, need, start_ms, end_ms, history_factor
    )
    history_from = {tf: start - int(need[tf] * history_factor) for tf in play_timeframes(compiled)}
    data = load_market_data(store, symbol, history_from, start, end)
    return window_of(
        data,
        compiled,
        start,
        end,
        history_factor=history_factor,
        allow_gaps=allow_gaps,
        require_1m=require_1m,
    )


def window_bounds(
    store: object,
    symbol: str,
    exec_tf: str,
    need: dict[str, int],
    start_ms: int | None,
    end_ms: int | None,
    history_factor: float = 1.0,
) -> tuple[int, int]:
    """[start, end) of the evaluated exec bars: as asked, else from the first bar where every
    timeframe has `need` of history (and 1m data, when any is stored) to the last stored bar."""
    from ..data import MarketStore

    assert isinstance(store, MarketStore)
    exec_ms = TIMEFRAMES[exec_tf]
    span = store.span(symbol, exec_tf) or _derived_span(store, symbol, exec_tf)
    if span is None:
        known = ", ".join(store.symbols()) or "none"
        raise DataError(
            f"no {exec_tf} data for {symbol} in the store (symbols stored: {known}); import or sync it first"
        )
    minute_span = store.span(symbol, "1m")
    if start_ms is None or end_ms is None:
        lo = max(
            span[0] + int(need[exec_tf] * history_factor),
            _first_with_history(store, symbol, need, history_factor),
        )
        hi = span[1] + exec_ms
        if minute_span is not None:
            lo, hi = max(lo, minute_span[0]), min(hi, minute_span[1] + MINUTE_MS)
        start = _ceil(lo if start_ms is None else start_ms, exec_ms)
        end = (hi // exec_ms) * exec_ms if end_ms is None else end_ms
    else:
        start, end = _ceil(start_ms, exec_ms), (end_ms // exec_ms) * exec_ms
    if end <= start:
        raise DataError(
            f"empty window for {symbol} {exec_tf}: start {_iso(start)} is not before end {_iso(end)}"
        )
    return start, end


MARK_LEAD_MS = 8 * 3_600_000  # mark history before the window (an 8h mark bar covers its start)


@dataclass(frozen=True)
class MarketData:
    """Everything the store holds for one symbol over a span: what a sweep reads once and slices
    into each combination's window (`window_of`), exactly as a single backtest would load it."""

    symbol: str
    instrument: InstrumentSpec
    bars: dict[str, Bars]  # per timeframe, from the earliest history any window needs
    minute: Bars | None  # 1m bars over [start, end)
    marks: dict[str, Bars]  # every stored mark timeframe over [start − MARK_LEAD_MS, end)
    funding_ts: np.ndarray
    funding_rate: np.ndarray
    start_ms: int
    end_ms: int


def load_market_data(
    store: object, symbol: str, history_from: dict[str, int], start: int, end: int
) -> MarketData:
    """Read once what windows inside [start, end) need; `history_from[tf]` is the earliest bar of
    each timeframe any of them needs (warmup)."""
    from ..data import MarketStore

    assert isinstance(store, MarketStore)
    bars: dict[str, Bars] = {}
    for tf, from_ms in history_from.items():
        b = store.bars_for(symbol, tf, from_ms, end)
        _check_cover(b, symbol, tf, from_ms, start, end)
        bars[tf] = b
    minute = store.load_bars(symbol, "1m", start, end) if store.span(symbol, "1m") else None
    f_ts, f_rate = store.load_funding(symbol, start, end + 1)
    return MarketData(
        symbol=symbol,
        instrument=store.instrument(symbol) or default_spec(symbol),
        bars=bars,
        minute=minute,
        marks=store.mark_series(symbol, start - MARK_LEAD_MS, end),
        funding_ts=np.asarray(f_ts, dtype=np.int64),
        funding_rate=np.asarray(f_rate, dtype=np.float64),
        start_ms=start,
        end_ms=end,
    )


def window_of(
    data: MarketData,
    compiled: CompiledPlay,
    start: int,
    end: int,
    *,
    history_factor: float = 1.0,
    allow_gaps: bool = False,
    require_1m: bool = False,
    like: MarketWindow | None = None,
) -> MarketWindow:
    """The window [start, end) of `compiled` cut from `data`: each timeframe from its own warmup,
    the 1m intrabar, the marks and the funding of the window. Checks coverage and gaps.

    `like`: a window cut before from the same `data`, span and options for a Play with the same
    exec timeframe (a sweep's combinations differ in warmup only): its intrabar, marks, funding
    and gap check hold for this one too, so only the bars are cut again."""
    from ..data.store import pick_mark

    symbol, exec_tf = data.symbol, compiled.exec_tf
    exec_ms = TIMEFRAMES[exec_tf]
    need = warmup_ms(compiled)
    bars: dict[str, Bars] = {}
    for tf in play_timeframes(compiled):
        from_ms = start - int(need[tf] * history_factor)
        have = data.bars.get(tf)
        if have is None:
            raise DataError(f"{symbol} {tf}: not loaded for this window")
        b = have.window(from_ms, end)
        _check_cover(b, symbol, tf, from_ms, start, end)
        bars[tf] = b
    if like is not None:
        assert (like.symbol, like.start_ms, like.end_ms) == (symbol, start, end)
        assert exec_tf in like.bars, "a window of another exec timeframe"
        return replace(like, bars=bars)
    holes = missing_ranges(bars[exec_tf].window(start, end).ts, exec_tf, start, end)
    if holes and not allow_gaps:
        raise DataError(
            f"{symbol} {exec_tf}: {count_missing(holes, exec_tf)} bar(s) missing inside the window "
            f"{_iso(start)} → {_iso(end)}: {describe_ranges(holes)}; heal them with --fix-gaps, or run "
            "without them with --allow-gaps"
        )
    intrabar = build_intrabar(data.minute, bars[exec_tf], start, end)
    if require_1m and intrabar.fallbacks:
        raise DataError(
            f"{symbol}: {intrabar.fallbacks} {exec_tf} bar(s) of the window have no 1m data "
            f"({describe_ranges(runs(intrabar.fallback_ts, exec_ms))}); sync 1m for them, or drop "
            "--require-1m to price them on the exec bar's OHLC"
        )
    lo, hi = np.searchsorted(data.funding_ts, [start, end + 1])
    return MarketWindow(
        symbol=symbol,
        instrument=data.instrument,
        bars=bars,
        intrabar=intrabar,
        mark=pick_mark(data.marks, start - MARK_LEAD_MS, end, cover_from=start),
        funding_ts=data.funding_ts[lo:hi],
        funding_rate=data.funding_rate[lo:hi],
        start_ms=start,
        end_ms=end,
        missing_exec=tuple(holes),
    )


def runs(ts: np.ndarray, step: int) -> list[tuple[int, int]]:
    """Consecutive runs (first, last) of sorted open times spaced `step` apart."""
    if len(ts) == 0:
        return []
    breaks = np.flatnonzero(np.diff(ts) != step)
    firsts = np.concatenate([[ts[0]], ts[breaks + 1]])
    lasts = np.concatenate([ts[breaks], [ts[-1]]])
    return [(int(a), int(b)) for a, b in zip(firsts, lasts, strict=True)]


def describe_ranges(ranges: list[tuple[int, int]], show: int = 3) -> str:
    """`first → last` open times of the first few ranges, and how many more there are."""
    text = ", ".join(_iso(a) if a == b else f"{_iso(a)} → {_iso(b)}" for a, b in ranges[:show])
    more = len(ranges) - show
    return text + (f" and {more} more range(s)" if more > 0 else "")


def _first_with_history(store: object, symbol: str, need: dict[str, int], factor: float) -> int:
    """Earliest window start at which every timeframe has its warmup history."""
    lo = 0
    for tf, ms in need.items():
        span = store.span(symbol, tf) or _derived_span(store, symbol, tf)  # type: ignore[attr-defined]
        if span is not None:
            lo = max(lo, span[0] + int(ms * factor))
    return lo


def _derived_span(store: object, symbol: str, tf: str) -> tuple[int, int] | None:
    """Span of `tf` when it is not stored but can be resampled from a stored lower timeframe."""
    for lower, ms in sorted(TIMEFRAMES.items(), key=lambda kv: -kv[1]):
        if ms < TIMEFRAMES[tf] and TIMEFRAMES[tf] % ms == 0:
            span = store.span(symbol, lower)  # type: ignore[attr-defined]
            if span is not None:
                step = TIMEFRAMES[tf]
                return _ceil(span[0], step), ((span[1] + ms) // step) * step - step
    return None


def _check_cover(b: Bars, symbol: str, tf: str, from_ms: int, start: int, end: int) -> None:
    step = TIMEFRAMES[tf]
    if len(b) == 0 or b.ts[0] > _ceil(from_ms, step):
        have = f"{_iso(int(b.ts[0]))} → {_iso(int(b.ts[-1]) + step)}" if len(b) else "nothing"
        raise DataError(
            f"missing {symbol} {tf} data for {_iso(from_ms)} → {_iso(end)} (warmup + window); the store has {have}; "
            f"sync or import it, or choose a later --start"
        )
    if b.ts[-1] + step < (end // step) * step:
        raise DataError(
            f"missing {symbol} {tf} data: the store ends at {_iso(int(b.ts[-1]) + step)} but the window runs to {_iso(end)}; "
            f"sync it or choose an earlier --end"
        )


def synthetic_window(
    compiled: CompiledPlay, pattern: str, n_bars: int, seed: int, symbol: str
) -> MarketWindow:
    """A coherent synthetic market: 1m bars, every higher timeframe aggregated from them."""
    from ..data import resample, synthetic_market

    minute = synthetic_market(pattern, n_bars, seed, symbol=symbol)
    exec_tf = compiled.exec_tf
    exec_ms = TIMEFRAMES[exec_tf]
    bars = {
        tf: (minute if tf == "1m" else resample(minute, tf)) for tf in play_timeframes(compiled)
    }
    need = warmup_ms(compiled)
    exec_bars = bars[exec_tf]
    if len(exec_bars) == 0:
        raise DataError(f"--bars {n_bars} 1m bars make no complete {exec_tf} bar")
    first_ok = max(int(bars[tf].ts[0]) + need[tf] for tf in bars if len(bars[tf]))
    start = _ceil(first_ok, exec_ms)
    end = int(exec_bars.ts[-1]) + exec_ms
    if end <= start:
        raise DataError(f"--bars {n_bars} is too short for this Play's warmup; use more bars")
    return MarketWindow(
        symbol=symbol,
        instrument=default_spec(symbol),
        bars=bars,
        intrabar=build_intrabar(minute, exec_bars, start, end),
        mark=None,
        funding_ts=np.empty(0, dtype=np.int64),
        funding_rate=np.empty(0),
        start_ms=start,
        end_ms=end,
    )


def asof_indices(window: MarketWindow, instants: np.ndarray) -> dict[str, np.ndarray]:
    return {tf: asof_index(b.ts, b.tf_ms, instants) for tf, b in window.bars.items()}


def _ceil(x: int, step: int) -> int:
    return -(-x // step) * step


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def window_from_bars(
    compiled: CompiledPlay,
    bars: Bars,
    minute: Bars | None = None,
    *,
    instrument: InstrumentSpec | None = None,
) -> MarketWindow:
    """A window over in-memory bars (benchmarks, tests): `bars` on the exec timeframe, optional 1m.

    Every other Play timeframe is resampled from the lowest bars given; the window starts at the first
    exec bar where every feature has its warmup.
    """
    exec_tf = compiled.exec_tf
    if bars.timeframe != exec_tf:
        raise DataError(f"bars are {bars.timeframe} but the Play executes on {exec_tf}")
    base = minute if minute is not None else bars
    tfs = {}
    for tf in play_timeframes(compiled):
        if tf == exec_tf:
            tfs[tf] = bars
        elif tf == base.timeframe:
            tfs[tf] = base
        else:
            from ..data import resample

            tfs[tf] = resample(base, tf)
    need = warmup_ms(compiled)
    exec_ms = TIMEFRAMES[exec_tf]
    start = _ceil(max(int(b.ts[0]) + need[tf] for tf, b in tfs.items() if len(b)), exec_ms)
    end = int(bars.ts[-1]) + exec_ms
    if end <= start:
        raise DataError("not enough bars for this Play's warmup")
    return MarketWindow(
        symbol=bars.symbol,
        instrument=instrument or default_spec(bars.symbol),
        bars=tfs,
        intrabar=build_intrabar(minute, bars, start, end),
        mark=None,
        funding_ts=np.empty(0, dtype=np.int64),
        funding_rate=np.empty(0),
        start_ms=start,
        end_ms=end,
    )
