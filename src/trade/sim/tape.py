"""The market data a simulated exchange has been given: intrabar bars, mark bars, funding events.

Loaded all at once (backtest) or appended one item at a time (replay, paper); both end in the same
arrays, so the per-bar code and the jitted scans read the same numbers either way. Per-bar values
that depend on other series (the mark over each bar) are computed when the bar arrives, from what
is known at that instant only: the tape never looks past the bar it is given.

The mark over a bar (DESIGN §5), fresh as of that bar:
- a mark bar spanning exactly the bar (1m mark bars for 1m bars): its high, low and close;
- else, once some mark bar has closed, the bar's traded prices shifted by the basis at the last
  mark bar closed by the bar's close: `mark_close + (price − ref)`, where `ref` is the traded price
  at that mark bar's close (the close of the last bar closed by then; before the first bar, its
  open). At a mark bar's own close this is that mark exactly;
- else (no mark known yet) the traded prices themselves.
`mark_src` records which (MARK_OWN, MARK_ESTIMATE, MARK_NONE) priced each bar.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping

import numpy as np
from numba import njit

from ..errors import SimulationError

MARK_NONE, MARK_OWN, MARK_ESTIMATE = 0, 1, 2  # `Tape.mark_src`: what priced a bar's mark
# `Tape`'s memoryviews of bar columns, by attribute
_PY_COLUMNS = {"py_ts_open": "ts_open", "py_ts_close": "ts_close", "py_h": "h", "py_lo": "lo",
               "py_c": "c"}  # fmt: skip


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
    """Bars (ts_open, ts_close, OHLC), the mark over each bar, and funding events.

    Derived per bar (see the module docstring): `mark` (the mark at the bar's close, NaN while no
    mark is known), `liq_low` / `liq_high` (the mark's low / high over the bar: what liquidation is
    checked against), `dd_price` (the price equity is valued at on the bar's close: the mark, else
    the close), `mark_src` and `exec_close` (the bar closes an exec bar).
    """

    def __init__(self, exec_tf_ms: int) -> None:
        self.exec_tf_ms = exec_tf_ms
        names_i = ("ts_open", "ts_close", "mark_ts", "mark_open_ts", "funding_ts")
        names_f = ("o", "h", "lo", "c", "mark", "liq_low", "liq_high", "dd_price")
        names_f += ("mark_close", "mark_high", "mark_low", "funding_rate")
        self._cols: dict[str, _Column] = {n: _Column(np.int64) for n in names_i}
        self._cols.update({n: _Column(np.float64) for n in names_f})
        self._cols["exec_close"] = _Column(np.bool_)
        self._cols["mark_src"] = _Column(np.int8)
        order = ("ts_open", "ts_close", "o", "h", "lo", "c", "mark", "liq_low", "liq_high")
        self._bar_cols = [self._cols[n] for n in (*order, "dd_price", "mark_src")]
        self._ref: dict[int, float] = {}  # mark bar index → the traded price at its close
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
        mark_ts_open: np.ndarray | None = None,
        mark_high: np.ndarray | None = None,
        mark_low: np.ndarray | None = None,
    ) -> None:
        """Replace everything with whole series (all arrays of one series have equal length).
        Mark bars without open times are never a bar's own mark; without high / low their range
        is their close. The tape keeps the arrays it is given: do not modify them afterwards."""
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
        mc = np.asarray(mark_close if mark_close is not None else [], dtype=np.float64)
        cols["mark_ts"].set(np.asarray(mark_ts_close if mark_ts_close is not None else []))
        cols["mark_close"].set(mc)
        cols["mark_open_ts"].set(
            np.asarray(mark_ts_open) if mark_ts_open is not None else np.full(len(mc), -1)
        )
        cols["mark_high"].set(np.asarray(mark_high) if mark_high is not None else mc)
        cols["mark_low"].set(np.asarray(mark_low) if mark_low is not None else mc)
        cols["funding_ts"].set(np.asarray(funding_ts if funding_ts is not None else []))
        cols["funding_rate"].set(np.asarray(funding_rate if funding_rate is not None else []))
        mark_names = ("mark_ts", "mark_open_ts", "mark_high", "mark_low")
        if any(cols[n].n != len(mc) for n in mark_names):
            raise SimulationError("mark arrays differ in length")
        if cols["funding_ts"].n != cols["funding_rate"].n:
            raise SimulationError("funding arrays differ in length")
        tc = cols["ts_close"].view
        if len(mc) == 0:  # no mark anywhere: the bars' own prices (shared, never written)
            cols["mark"].set(np.full(len(tc), np.nan))
            cols["liq_low"].set(cols["lo"].view)
            cols["liq_high"].set(cols["h"].view)
            cols["dd_price"].set(cols["c"].view)
            cols["mark_src"].set(np.full(len(tc), MARK_NONE, dtype=np.int8))
        else:
            mark, low, high, src = fresh_marks(
                cols["ts_open"].view, tc, cols["o"].view, cols["h"].view, cols["lo"].view,
                cols["c"].view, cols["mark_open_ts"].view, cols["mark_ts"].view,
                cols["mark_high"].view, cols["mark_low"].view, mc,
            )  # fmt: skip
            cols["mark"].set(mark)
            cols["liq_low"].set(low)
            cols["liq_high"].set(high)
            cols["dd_price"].set(np.where(src == MARK_NONE, cols["c"].view, mark))
            cols["mark_src"].set(src)
        self._ref = {}
        # floor division by a constant is several times faster in numpy than the remainder
        cols["exec_close"].set(tc // self.exec_tf_ms * self.exec_tf_ms == tc)
        self._py_of = None  # every buffer is new, even if ts_open is the array given last time
        self.refresh()

    def columns(self) -> dict[str, np.ndarray]:
        """Every column as it stands: another tape given them (`load_columns`) holds the same
        market data without deriving the marks again (a sweep runs one window per combination)."""
        return {name: col.view for name, col in self._cols.items()}

    def load_columns(self, columns: Mapping[str, np.ndarray]) -> None:
        """Replace everything with another tape's `columns()`; kept and never written, as `load`'s
        arrays are."""
        for name, col in self._cols.items():
            col.set(columns[name])
        self._ref = {}
        self._py_of = None
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
        cols = self._bar_cols
        if n == len(cols[0].buf):
            for col in cols:
                col.append(0)  # grows the buffer; the value is overwritten below
                col.n = n
        values = (ts_open, ts_close, o, h, lo, c, math.nan, lo, h, c, MARK_NONE)
        for col, v in zip(cols, values, strict=True):
            col.buf[n] = v
            col.n = n + 1
        j = int(np.searchsorted(self.mark_ts, ts_close, "right")) - 1 if len(self.mark_ts) else -1
        if j >= 0:  # a mark is known: the same numbers as `fresh_marks` gives a loaded tape
            if self.mark_open_ts[j] == ts_open and self.mark_ts[j] == ts_close:
                mark, low, high = self.mark_close[j], self.mark_low[j], self.mark_high[j]
                src = MARK_OWN
            else:
                ref = self._ref.get(j)
                if ref is None:
                    tc = self._cols["ts_close"].buf[: n + 1]
                    r = int(np.searchsorted(tc, self.mark_ts[j], "right")) - 1
                    first_open = self._cols["o"].buf[0]
                    ref = self._ref[j] = float(self._cols["c"].buf[r] if r >= 0 else first_open)
                m = self.mark_close[j]
                mark, low, high = m + (c - ref), m + (lo - ref), m + (h - ref)
                src = MARK_ESTIMATE
            for name, v in (("mark", mark), ("liq_low", low), ("liq_high", high)):
                self._cols[name].buf[n] = v
            self._cols["dd_price"].buf[n] = mark
            self._cols["mark_src"].buf[n] = src
        ec = self._cols["exec_close"]
        ec.append(ts_close % self.exec_tf_ms == 0)
        self._bind_bars()

    def append_mark(
        self, ts_close: int, close: float, ts_open: int = -1, high: float = math.nan,
        low: float = math.nan,
    ) -> None:  # fmt: skip
        """Add the next mark-price bar, before any intrabar bar closing at or after `ts_close`
        (`ts_open`, `high`, `low` as in `load`: absent, it is never a bar's own mark)."""
        col = self._cols["mark_ts"]
        if col.n and ts_close <= col.view[-1]:
            raise SimulationError(f"mark bar closing at {ts_close} is not after the previous one")
        if self.n and ts_close <= self.ts_close[self.n - 1]:
            raise SimulationError(
                f"mark bar closing at {ts_close} arrives after the bars it prices"
            )
        col.append(ts_close)
        self._cols["mark_close"].append(close)
        self._cols["mark_open_ts"].append(ts_open)
        self._cols["mark_high"].append(close if high != high else high)
        self._cols["mark_low"].append(close if low != low else low)
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
        self.mark_open_ts = cols["mark_open_ts"].view
        self.mark_high, self.mark_low = cols["mark_high"].view, cols["mark_low"].view
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
        self.dd_price, self.mark_src = cols["dd_price"].buf[:n], cols["mark_src"].buf[:n]
        # The same numbers as Python scalars (`py_*`, see `__getattr__`): memoryviews index in a
        # fraction of an array's time, which the per-bar code (one bar per evaluation instant in
        # replay) feels. They view the whole buffers (valid below `n`), so an append drops them
        # only when the buffers grow (a load replaces, and a growing append reallocates, every
        # bar column at once).
        if cols["ts_open"].buf is not self._py_of:
            self._py_of = cols["ts_open"].buf
            for name in _PY_COLUMNS:
                self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> memoryview:
        """The `py_*` memoryviews, made on first use after a load or a reallocation: the jitted
        fast path never reads them, and numpy makes each new export of an array (a sweep loads
        the same intrabar arrays into one tape per combination) slower while earlier ones live."""
        column = _PY_COLUMNS.get(name)
        if column is None:
            raise AttributeError(name)
        view = memoryview(self._cols[column].buf)
        setattr(self, name, view)
        return view

    # ------------------------------------------------------------------ reading

    def marks_at(self, instants: np.ndarray) -> np.ndarray:
        """Mark at each instant: `dd_price` of the last bar closed by it (the mark over that bar,
        else its close), else NaN."""
        j = np.searchsorted(self.ts_close, np.asarray(instants, dtype=np.int64), side="right") - 1
        if not self.n:
            return np.full(len(j), np.nan)
        return np.where(j >= 0, self.dd_price[np.maximum(j, 0)], np.nan)

    def mark_at(self, ts: int) -> float:
        """`marks_at` for one instant."""
        j = bisect.bisect_right(self.py_ts_close, ts, 0, self.n) - 1
        return float(self.dd_price[j]) if j >= 0 else math.nan

    def source_counts(self) -> dict[str, int]:
        """How many bars each source priced (the result's `mark_*_bars` counters)."""
        src = self.mark_src  # three comparisons: bincount widens every int8 to an int64 first
        return {
            "mark_1m_bars": int(np.count_nonzero(src == MARK_OWN)),
            "mark_estimated_bars": int(np.count_nonzero(src == MARK_ESTIMATE)),
            "mark_missing_bars": int(np.count_nonzero(src == MARK_NONE)),
        }


@njit(cache=True)
def fresh_marks(
    ts_open: np.ndarray,
    ts_close: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    m_open: np.ndarray,
    m_close_ts: np.ndarray,
    m_high: np.ndarray,
    m_low: np.ndarray,
    m_close: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The mark over each bar (close, low, high; NaN / the bar's low, high where none is known)
    and its source, by the module docstring's rule, walking bars and mark bars once."""
    n = len(ts_open)
    mark = np.full(n, np.nan)
    low, high = lo.copy(), h.copy()
    src = np.zeros(n, np.int8)
    j = -1  # the last mark bar closed by the current bar's close
    r = -1  # the last bar closed by mark bar j's close
    ref = np.nan
    for k in range(n):
        jj = j
        while jj + 1 < len(m_close_ts) and m_close_ts[jj + 1] <= ts_close[k]:
            jj += 1
        if jj < 0:
            continue
        if jj != j:
            j = jj
            while r + 1 < n and ts_close[r + 1] <= m_close_ts[j]:
                r += 1
            ref = c[r] if r >= 0 else o[0]
        if m_open[j] == ts_open[k] and m_close_ts[j] == ts_close[k]:
            mark[k], low[k], high[k], src[k] = m_close[j], m_low[j], m_high[j], MARK_OWN
        else:
            m = m_close[j]
            mark[k], low[k], high[k] = m + (c[k] - ref), m + (lo[k] - ref), m + (h[k] - ref)
            src[k] = MARK_ESTIMATE
    return mark, low, high, src
