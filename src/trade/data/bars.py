"""`Bars`: the one in-memory container for OHLCV series that every layer passes around.

Columns are contiguous numpy arrays (int64 ms open times, float64 prices and volume) so features,
the simulator and the engine read them without copies. A `Bars` never holds an unclosed bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..timeframes import tf_ms


@dataclass(frozen=True)
class Bars:
    """OHLCV bars of one symbol and timeframe, sorted by open time, all arrays of equal length."""

    symbol: str
    timeframe: str
    ts: np.ndarray  # int64 bar open times, ms UTC
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.ts)
        for name in ("open", "high", "low", "close", "volume"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Bars.{name} has {len(getattr(self, name))} rows, ts has {n}")

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def tf_ms(self) -> int:
        return tf_ms(self.timeframe)

    @property
    def ts_close(self) -> np.ndarray:
        """Close time of every bar (`ts + tf_ms`): the instant its values become visible."""
        return self.ts + self.tf_ms

    def slice(self, start: int, stop: int) -> Bars:
        """Rows `[start, stop)` as a new Bars sharing memory with this one."""
        return Bars(
            self.symbol,
            self.timeframe,
            self.ts[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
        )

    def window(self, start_ms: int | None, end_ms: int | None) -> Bars:
        """Bars whose open time lies in `[start_ms, end_ms)` (None = unbounded)."""
        lo = 0 if start_ms is None else int(np.searchsorted(self.ts, start_ms, "left"))
        hi = len(self.ts) if end_ms is None else int(np.searchsorted(self.ts, end_ms, "left"))
        return self.slice(lo, hi)

    @classmethod
    def from_arrays(
        cls,
        symbol: str,
        timeframe: str,
        ts: np.ndarray,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
    ) -> Bars:
        f = np.ascontiguousarray
        return cls(
            symbol,
            timeframe,
            f(ts, dtype=np.int64),
            f(open, dtype=np.float64),
            f(high, dtype=np.float64),
            f(low, dtype=np.float64),
            f(close, dtype=np.float64),
            f(volume, dtype=np.float64),
        )
