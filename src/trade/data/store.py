"""MarketStore: the embedded DuckDB database every mode reads history from.

Tables: ohlcv, funding, mark (klines), instruments and sync_meta. Every write runs inside one
transaction, so an interrupted import or sync leaves the store as it was. Reads return numpy arrays
through DuckDB's columnar fetch (no Python rows), which keeps a million-bar load well under a second.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import numpy as np

from .. import config
from ..errors import DataError
from ..instruments import InstrumentSpec
from ..timeframes import TIMEFRAMES, canonical
from .bars import Bars
from .resample import resample

SCHEMA = """
CREATE TABLE IF NOT EXISTS ohlcv (
    symbol VARCHAR, timeframe VARCHAR, ts BIGINT,
    open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE, turnover DOUBLE,
    PRIMARY KEY (symbol, timeframe, ts));
CREATE TABLE IF NOT EXISTS funding (symbol VARCHAR, ts BIGINT, rate DOUBLE, PRIMARY KEY (symbol, ts));
CREATE TABLE IF NOT EXISTS mark (
    symbol VARCHAR, timeframe VARCHAR, ts BIGINT, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE,
    PRIMARY KEY (symbol, timeframe, ts));
CREATE TABLE IF NOT EXISTS instruments (
    symbol VARCHAR PRIMARY KEY, tick_size DOUBLE, qty_step DOUBLE, min_qty DOUBLE, min_notional DOUBLE,
    max_leverage DOUBLE, maintenance_margin_rate DOUBLE, funding_interval_hours DOUBLE);
CREATE TABLE IF NOT EXISTS sync_meta (
    symbol VARCHAR, kind VARCHAR, timeframe VARCHAR, source VARCHAR, updated_ms BIGINT, rows BIGINT,
    PRIMARY KEY (symbol, kind, timeframe));
"""


class MarketStore:
    """The local market database (default `~/.trade/market.duckdb`, `--db`, or `$TRADE_DB`)."""

    def __init__(self, path: Path | None = None, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else config.db_path()
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise DataError(f"cannot open market store {self.path}: {exc}") from None
        if not read_only:
            self.con.execute(SCHEMA)

    def __enter__(self) -> MarketStore:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    # ------------------------------------------------------------------ writes (transactional)

    def write_ohlcv(
        self, bars: Bars, turnover: np.ndarray | None = None, source: str = "import"
    ) -> int:
        with self._transaction():
            return self._insert_ohlcv(bars, turnover, source)

    def _insert_ohlcv(
        self, bars: Bars, turnover: np.ndarray | None = None, source: str = "sample"
    ) -> int:
        return self._insert(
            "ohlcv",
            {
                "symbol": np.full(len(bars), bars.symbol),
                "timeframe": np.full(len(bars), canonical(bars.timeframe)),
                "ts": bars.ts,
                "open": bars.open,
                "high": bars.high,
                "low": bars.low,
                "close": bars.close,
                "volume": bars.volume,
                "turnover": turnover if turnover is not None else np.full(len(bars), np.nan),
            },
            (bars.symbol, "ohlcv", canonical(bars.timeframe), source),
        )

    def write_funding(
        self, symbol: str, ts: np.ndarray, rate: np.ndarray, source: str = "import"
    ) -> int:
        with self._transaction():
            return self._insert_funding(symbol, ts, rate, source)

    def _insert_funding(
        self, symbol: str, ts: np.ndarray, rate: np.ndarray, source: str = "sample"
    ) -> int:
        return self._insert(
            "funding",
            {
                "symbol": np.full(len(ts), symbol),
                "ts": np.asarray(ts, dtype=np.int64),
                "rate": np.asarray(rate, dtype=float),
            },
            (symbol, "funding", "", source),
        )

    def write_mark(self, bars: Bars, source: str = "import") -> int:
        with self._transaction():
            return self._insert_mark(bars, source)

    def _insert_mark(self, bars: Bars, source: str = "sample") -> int:
        return self._insert(
            "mark",
            {
                "symbol": np.full(len(bars), bars.symbol),
                "timeframe": np.full(len(bars), canonical(bars.timeframe)),
                "ts": bars.ts,
                "open": bars.open,
                "high": bars.high,
                "low": bars.low,
                "close": bars.close,
            },
            (bars.symbol, "mark", canonical(bars.timeframe), source),
        )

    def write_instrument(self, spec: InstrumentSpec) -> None:
        with self._transaction():
            self._insert_instrument(spec)

    def _insert_instrument(self, spec: InstrumentSpec) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO instruments VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                spec.symbol,
                spec.tick_size,
                spec.qty_step,
                spec.min_qty,
                spec.min_notional,
                spec.max_leverage,
                spec.maintenance_margin_rate,
                spec.funding_interval_hours,
            ],
        )

    def _insert(
        self, table: str, columns: dict[str, np.ndarray], meta: tuple[str, str, str, str]
    ) -> int:
        """Upsert columns into `table` (inside the caller's transaction)."""
        import pyarrow as pa

        n = len(columns["ts"])
        if n == 0:
            return 0
        self.con.register("_incoming", pa.table(columns))
        try:
            self.con.execute(f"INSERT OR REPLACE INTO {table} SELECT * FROM _incoming")
        finally:
            self.con.unregister("_incoming")
        self.con.execute(
            "INSERT OR REPLACE INTO sync_meta VALUES (?, ?, ?, ?, epoch_ms(now()), ?)",
            [meta[0], meta[1], meta[2], meta[3], n],
        )
        return n

    def _transaction(self) -> _Tx:
        return _Tx(self.con)

    # ------------------------------------------------------------------ reads

    def load_bars(self, symbol: str, tf: str, start_ms: int | None, end_ms: int | None) -> Bars:
        """Stored bars with open time in [start, end) (None = unbounded)."""
        tf = canonical(tf)
        res = self.con.execute(
            "SELECT ts, open, high, low, close, volume FROM ohlcv WHERE symbol = ? AND timeframe = ? "
            "AND ts >= ? AND ts < ? ORDER BY ts",
            [
                symbol,
                tf,
                -(2**62) if start_ms is None else start_ms,
                2**62 if end_ms is None else end_ms,
            ],
        ).fetchnumpy()
        return Bars.from_arrays(
            symbol, tf, res["ts"], res["open"], res["high"], res["low"], res["close"], res["volume"]
        )

    def bars_for(self, symbol: str, tf: str, start_ms: int | None, end_ms: int | None) -> Bars:
        """Bars of `tf` for the window: stored ones, or resampled from the largest stored lower
        timeframe that divides `tf` (DESIGN §4)."""
        tf = canonical(tf)
        if self._has(symbol, tf, start_ms, end_ms):
            return self.load_bars(symbol, tf, start_ms, end_ms)
        step = TIMEFRAMES[tf]
        for lower, ms in sorted(TIMEFRAMES.items(), key=lambda kv: -kv[1]):
            if ms < step and step % ms == 0 and self._has(symbol, lower, start_ms, end_ms):
                lo = None if start_ms is None else (start_ms // step) * step
                return resample(self.load_bars(symbol, lower, lo, end_ms), tf)
        return self.load_bars(symbol, tf, start_ms, end_ms)

    def _has(self, symbol: str, tf: str, start_ms: int | None, end_ms: int | None) -> bool:
        row = self.con.execute(
            "SELECT count(*) FROM ohlcv WHERE symbol = ? AND timeframe = ? AND ts >= ? AND ts < ?",
            [
                symbol,
                tf,
                -(2**62) if start_ms is None else start_ms,
                2**62 if end_ms is None else end_ms,
            ],
        ).fetchone()
        return bool(row and row[0])

    def load_funding(
        self, symbol: str, start_ms: int | None, end_ms: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        res = self.con.execute(
            "SELECT ts, rate FROM funding WHERE symbol = ? AND ts >= ? AND ts < ? ORDER BY ts",
            [
                symbol,
                -(2**62) if start_ms is None else start_ms,
                2**62 if end_ms is None else end_ms,
            ],
        ).fetchnumpy()
        return np.asarray(res["ts"], dtype=np.int64), np.asarray(res["rate"], dtype=np.float64)

    def load_mark(self, symbol: str, start_ms: int | None, end_ms: int | None) -> Bars | None:
        """Mark-price klines of the finest stored mark timeframe (volume zero), or None."""
        row = self.con.execute(
            "SELECT timeframe FROM mark WHERE symbol = ? GROUP BY timeframe", [symbol]
        ).fetchall()
        if not row:
            return None
        tf = min((r[0] for r in row), key=lambda t: TIMEFRAMES[t])
        res = self.con.execute(
            "SELECT ts, open, high, low, close FROM mark WHERE symbol = ? AND timeframe = ? AND ts >= ? AND ts < ? ORDER BY ts",
            [
                symbol,
                tf,
                -(2**62) if start_ms is None else start_ms,
                2**62 if end_ms is None else end_ms,
            ],
        ).fetchnumpy()
        if len(res["ts"]) == 0:
            return None
        return Bars.from_arrays(
            symbol,
            tf,
            res["ts"],
            res["open"],
            res["high"],
            res["low"],
            res["close"],
            np.zeros(len(res["ts"])),
        )

    def instrument(self, symbol: str) -> InstrumentSpec | None:
        row = self.con.execute("SELECT * FROM instruments WHERE symbol = ?", [symbol]).fetchone()
        return None if row is None else InstrumentSpec(*row)

    def span(self, symbol: str, tf: str) -> tuple[int, int] | None:
        """(first open, last open) of a stored series, or None."""
        row = self.con.execute(
            "SELECT min(ts), max(ts) FROM ohlcv WHERE symbol = ? AND timeframe = ?",
            [symbol, canonical(tf)],
        ).fetchone()
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    def symbols(self) -> list[str]:
        return [
            r[0]
            for r in self.con.execute(
                "SELECT DISTINCT symbol FROM ohlcv ORDER BY symbol"
            ).fetchall()
        ]

    def status(self) -> list[dict[str, Any]]:
        """Per symbol/timeframe: span, rows and missing bars inside the span."""
        rows = self.con.execute(
            "SELECT symbol, timeframe, min(ts), max(ts), count(*) FROM ohlcv GROUP BY symbol, timeframe ORDER BY symbol, timeframe"
        ).fetchall()
        out = []
        for sym, tf, lo, hi, n in rows:
            expected = (hi - lo) // TIMEFRAMES[tf] + 1
            out.append(
                {
                    "symbol": sym,
                    "timeframe": tf,
                    "first": int(lo),
                    "last": int(hi),
                    "rows": int(n),
                    "missing": int(expected - n),
                }
            )
        return out

    # ------------------------------------------------------------------ the bundled sample

    def ensure_sample(self) -> bool:
        """Load the bundled sample once (if its series are absent). Returns True when it loaded."""
        from .sample import SAMPLE_SYMBOLS, load_sample

        if all(self.span(s, "1m") is not None for s in SAMPLE_SYMBOLS):
            return False
        load_sample(self)
        return True


class _Tx:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def __enter__(self) -> None:
        self.con.execute("BEGIN TRANSACTION")

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.con.execute("ROLLBACK" if et is not None else "COMMIT")
