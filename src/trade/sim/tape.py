"""The market data a simulated exchange has been given: intrabar bars, mark bars, funding events.

Loaded all at once (backtest) or appended one item at a time (replay, paper); both end in the same
arrays, so the per-bar code and the jitted scans read the same numbers either way. Per-bar values
that depend on other series (the mark as of each bar's close) are computed when the bar arrives,
from what is known at that instant only: the tape never looks past the bar it is given.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..errors import SimulationError
from .scan import bisect


class _Column:
    """A growable 1-D array (capacity doubling) whose `view` is the filled part."""

    def __init__(self, dtype: type) -> None:
        self.buf = np.empty(16, dtype=dtype)
        self.n = 0

    def set(self, values: np.ndarray) -> None:
        """Hold `values` as the whole column, without copying (a million-bar backtest would pay
        for the copies in page faults). It is never written: the next append reallocates."""
        self.buf = np.ascontiguousarray(values, dtype=self.buf.dtype)
        self.n = len(self.buf)

    def append(self, value: float) -> None:
        if self.n == len(self.buf):
            grown = np.empty(max(16, 2 * len(self.buf)), dtype=self.buf.dtype)
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        self.buf[self.n] = value
        self.n += 1

    @property
    def view(self) -> np.ndarray:
        return self.buf[: self.n]


class Tape:
    """Bars (ts_open, ts_close, OHLC), the mark as of each bar's close, and funding events.

    Derived per bar: `mark` (mark series close as of the bar's close, NaN if none yet), `liq_low` /
    `liq_high` (the prices liquidation is checked against: the mark where known, else the bar's
    low / high), `dd_price` (the price equity is valued at on the bar's close: mark, else close) and
    `exec_close` (the bar closes an exec bar).
    """

    def __init__(self, exec_tf_ms: int) -> None:
        self.exec_tf_ms = exec_tf_ms
        names_i = ("ts_open", "ts_close", "mark_ts", "funding_ts")
        names_f = ("o", "h", "lo", "c", "mark", "liq_low", "liq_high", "dd_price")
        names_f += ("mark_close", "funding_rate")
        self._cols: dict[str, _Column] = {n: _Column(np.int64) for n in names_i}
        self._cols.update({n: _Column(np.float64) for n in names_f})
        self._cols["exec_close"] = _Column(np.bool_)
        order = ("ts_open", "ts_close", "o", "h", "lo", "c", "mark", "liq_low", "liq_high")
        self._bar_cols = [self._cols[n] for n in (*order, "dd_price")]
        self._py_of: np.ndarray | None = None  # the ts_open buffer the memoryviews were made for
        self.refresh()

    # ------------------------------------------------------------------ filling

    def load(
        self,
        ts_open: np.ndarray,
        ts_close: np.ndarray,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        mark_ts_close: np.ndarray | None,
        mark_close: np.ndarray | None,
        funding_ts: np.ndarray | None,
        funding_rate: np.ndarray | None,
    ) -> None:
        """Replace everything with whole series (all arrays of one series have equal length).
        The tape keeps the arrays it is given: do not modify them afterwards."""
        cols = self._cols
        for name, arr in (
            ("ts_open", ts_open),
            ("ts_close", ts_close),
            ("o", open_),
            ("h", high),
            ("lo", low),
            ("c", close),
        ):
            cols[name].set(np.asarray(arr))
        if len({cols[n].n for n in ("ts_open", "ts_close", "o", "h", "lo", "c")}) != 1:
            raise SimulationError("intrabar arrays differ in length")
        cols["mark_ts"].set(np.asarray(mark_ts_close if mark_ts_close is not None else []))
        cols["mark_close"].set(np.asarray(mark_close if mark_close is not None else []))
        cols["funding_ts"].set(np.asarray(funding_ts if funding_ts is not None else []))
        cols["funding_rate"].set(np.asarray(funding_rate if funding_rate is not None else []))
        if cols["mark_ts"].n != cols["mark_close"].n:
            raise SimulationError("mark arrays differ in length")
        if cols["funding_ts"].n != cols["funding_rate"].n:
            raise SimulationError("funding arrays differ in length")
        tc = cols["ts_close"].view
        mark = self._mark_as_of(tc)
        known = ~np.isnan(mark)
        cols["mark"].set(mark)
        if known.any():
            cols["liq_low"].set(np.where(known, mark, cols["lo"].view))
            cols["liq_high"].set(np.where(known, mark, cols["h"].view))
            cols["dd_price"].set(np.where(known, mark, cols["c"].view))
        else:  # no mark anywhere: the bars' own prices (shared, never written)
            cols["liq_low"].set(cols["lo"].view)
            cols["liq_high"].set(cols["h"].view)
            cols["dd_price"].set(cols["c"].view)
        cols["exec_close"].set(tc % self.exec_tf_ms == 0)
        self._py_of = None  # every buffer is new, even if ts_open is the array given last time
        self.refresh()

    def append_bar(
        self, ts_open: int, ts_close: int, o: float, h: float, lo: float, c: float
    ) -> None:
        """Add the next intrabar bar (it must open at or after the previous bar's close)."""
        n = self.n
        if n and ts_open < self.ts_close[n - 1]:
            raise SimulationError(f"bar opening at {ts_open} overlaps the previous bar")
        if not (lo <= min(o, c) and h >= max(o, c)):
            raise SimulationError(f"bar at {ts_open} has inconsistent OHLC")
        if len(self.mark_ts) and ts_close >= self.mark_ts[0]:
            mark = float(self.mark_close[int(np.searchsorted(self.mark_ts, ts_close, "right")) - 1])
            values = (ts_open, ts_close, o, h, lo, c, mark, mark, mark, mark)
        else:
            values = (ts_open, ts_close, o, h, lo, c, math.nan, lo, h, c)
        cols = self._bar_cols
        if n == len(cols[0].buf):
            for col in cols:
                col.append(0)  # grows the buffer; the value is overwritten below
                col.n = n
        for col, v in zip(cols, values, strict=False):
            col.buf[n] = v
            col.n = n + 1
        ec = self._cols["exec_close"]
        ec.append(ts_close % self.exec_tf_ms == 0)
        self._bind_bars()

    def append_mark(self, ts_close: int, close: float) -> None:
        """Add the next mark-price bar, before any intrabar bar closing at or after `ts_close`."""
        col = self._cols["mark_ts"]
        if col.n and ts_close <= col.view[-1]:
            raise SimulationError(f"mark bar closing at {ts_close} is not after the previous one")
        col.append(ts_close)
        self._cols["mark_close"].append(close)
        self.refresh()

    def append_funding(self, ts: int, rate: float) -> None:
        """Add the next funding event, before the bar opening at or after `ts` is given."""
        col = self._cols["funding_ts"]
        if col.n and ts <= col.view[-1]:
            raise SimulationError(f"funding at {ts} is not after the previous one")
        col.append(ts)
        self._cols["funding_rate"].append(rate)
        self.refresh()

    def refresh(self) -> None:
        """Re-bind every array view (after a load or an append)."""
        self._bind_bars()
        cols = self._cols
        self.mark_ts, self.mark_close = cols["mark_ts"].view, cols["mark_close"].view
        self.funding_ts, self.funding_rate = cols["funding_ts"].view, cols["funding_rate"].view
        self.py_funding_ts = memoryview(self.funding_ts)

    def _bind_bars(self) -> None:
        cols = self._cols
        n = self.n = cols["ts_open"].n
        self.ts_open, self.ts_close = cols["ts_open"].buf[:n], cols["ts_close"].buf[:n]
        self.o, self.h = cols["o"].buf[:n], cols["h"].buf[:n]
        self.lo, self.c = cols["lo"].buf[:n], cols["c"].buf[:n]
        self.mark, self.exec_close = cols["mark"].buf[:n], cols["exec_close"].buf[:n]
        self.liq_low, self.liq_high = cols["liq_low"].buf[:n], cols["liq_high"].buf[:n]
        self.dd_price = cols["dd_price"].buf[:n]
        # The same numbers as Python scalars: memoryviews index in a fraction of an array's time,
        # which the per-bar code (one bar per evaluation instant in replay) feels. They view the
        # whole buffers (valid below `n`), so an append re-creates them only when the buffers grow
        # (a load replaces, and a growing append reallocates, every bar column at once).
        if cols["ts_open"].buf is not self._py_of:
            self._py_of = cols["ts_open"].buf
            self.py_ts_open, self.py_ts_close, self.py_h, self.py_lo, self.py_c = (
                memoryview(cols[name].buf) for name in ("ts_open", "ts_close", "h", "lo", "c")
            )

    # ------------------------------------------------------------------ reading

    def _mark_as_of(self, instants: np.ndarray) -> np.ndarray:
        mts, mc = self._cols["mark_ts"].view, self._cols["mark_close"].view
        if len(mts) == 0:
            return np.full(len(instants), np.nan)
        j = np.searchsorted(mts, instants, side="right") - 1
        return np.where(j >= 0, mc[np.maximum(j, 0)], np.nan)

    def marks_at(self, instants: np.ndarray) -> np.ndarray:
        """Mark at each instant: the last mark bar closed by it, else the last traded price (the
        close of the last bar closed by it), else NaN."""
        return _marks_at(
            np.ascontiguousarray(instants, dtype=np.int64), self.ts_close, self.c, self.mark_ts,
            self.mark_close,
        )  # fmt: skip

    def mark_at(self, ts: int) -> float:
        """`marks_at` for one instant."""
        return float(self.marks_at(np.array([ts]))[0])


@njit(cache=True)
def _marks_at(
    instants: np.ndarray,
    ts_close: np.ndarray,
    close: np.ndarray,
    mark_ts: np.ndarray,
    mark_close: np.ndarray,
) -> np.ndarray:
    """`Tape.marks_at` in one pass without temporaries (it prices every instant of an equity
    curve): cursors are searched for the first instant, walk forward over sorted instants and are
    searched again only where the instants go back."""
    out = np.empty(len(instants))
    if len(instants) == 0:
        return out
    # searched for the first instant (one look-up costs a search, not a walk from the start)
    km = bisect(mark_ts, instants[0], True)
    kb = bisect(ts_close, instants[0], True)
    prev = instants[0]
    for i in range(len(instants)):
        t = instants[i]
        if t < prev:
            km = bisect(mark_ts, t, True)
            kb = bisect(ts_close, t, True)
        prev = t
        while km < len(mark_ts) and mark_ts[km] <= t:
            km += 1
        while kb < len(ts_close) and ts_close[kb] <= t:
            kb += 1
        price = mark_close[km - 1] if km > 0 else np.nan
        if price != price:
            price = close[kb - 1] if kb > 0 else np.nan
        out[i] = price
    return out
