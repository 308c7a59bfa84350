"""MarketStore: the embedded DuckDB database every mode reads history from.

Tables: ohlcv, funding, mark (klines), instruments and sync_meta. Every write runs inside one
transaction, so an interrupted import or sync leaves the store as it was. Reads return numpy arrays
through DuckDB's columnar fetch (`fetchnumpy`, no Python rows), ordered in numpy rather than by
`ORDER BY`, which keeps a million-bar load well under half a second.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import numpy as np

from .. import config
from ..instruments import InstrumentSpec
from ..timeframes import TIMEFRAMES, bucket_start, canonical
from .bars import Bars
from .opening import connect
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


SAMPLE_SOURCE = "sample"  # sync_meta source of the series the bundled sample wrote


class MarketStore:
    """The local market database (default `~/.trade/market.duckdb`, `--db`, or `$TRADE_DB`)."""

    def __init__(self, path: Path | None = None, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else config.db_path()
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = connect(self.path, read_only)
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
        self,
        bars: Bars,
        turnover: np.ndarray | None = None,
        source: str = "sample",
        replace: bool = True,
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
            replace,
        )

    def write_funding(
        self, symbol: str, ts: np.ndarray, rate: np.ndarray, source: str = "import"
    ) -> int:
        with self._transaction():
            return self._insert_funding(symbol, ts, rate, source)

    def _insert_funding(
        self,
        symbol: str,
        ts: np.ndarray,
        rate: np.ndarray,
        source: str = "sample",
        replace: bool = True,
    ) -> int:
        return self._insert(
            "funding",
            {
                "symbol": np.full(len(ts), symbol),
                "ts": np.asarray(ts, dtype=np.int64),
                "rate": np.asarray(rate, dtype=float),
            },
            (symbol, "funding", "", source),
            replace,
        )

    def write_mark(self, bars: Bars, source: str = "import") -> int:
        with self._transaction():
            return self._insert_mark(bars, source)

    def _insert_mark(self, bars: Bars, source: str = "sample", replace: bool = True) -> int:
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
            replace,
        )

    def write_instrument(self, spec: InstrumentSpec) -> None:
        with self._transaction():
            self._insert_instrument(spec)

    def _insert_instrument(self, spec: InstrumentSpec, replace: bool = True) -> None:
        self.con.execute(
            f"INSERT OR {'REPLACE' if replace else 'IGNORE'} INTO instruments "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
        self,
        table: str,
        columns: dict[str, np.ndarray],
        meta: tuple[str, str, str, str],
        replace: bool = True,
    ) -> int:
        """Write one series' rows into `table` inside the caller's transaction.

        A series (symbol, kind, timeframe) holds either the bundled sample or the user's data, never
        both: a user write (`replace=True`, upserting) first drops a series the sample wrote, and
        the sample (`replace=False`) never writes into a series that already holds rows. The
        series' source is kept in sync_meta."""
        import pyarrow as pa

        n = len(columns["ts"])
        if n == 0:
            return 0
        where, args = _series_where(table, meta)
        if replace and self.is_sample_series(meta[1], meta[0], meta[2]):
            self.con.execute(f"DELETE FROM {table} WHERE {where}", args).fetchall()
        elif not replace:
            held = self.con.execute(f"SELECT count(*) FROM {table} WHERE {where}", args).fetchall()
            if held[0][0]:
                return 0
        self.con.register("_incoming", pa.table(columns))
        try:
            verb = "REPLACE" if replace else "IGNORE"
            self.con.execute(f"INSERT OR {verb} INTO {table} SELECT * FROM _incoming")
        finally:
            self.con.unregister("_incoming")
        self.con.execute(
            "INSERT OR REPLACE INTO sync_meta VALUES (?, ?, ?, ?, epoch_ms(now()), ?)",
            [meta[0], meta[1], meta[2], meta[3], n],
        )
        return n

    def delete_range(
        self,
        kind: str,
        symbol: str,
        tf: str | None,
        start_ms: int | None,
        end_ms: int | None,
        dry_run: bool = False,
    ) -> int:
        """Delete (or with `dry_run` only count) a symbol's rows of one series — ohlcv or mark of
        timeframe `tf`, or funding — opening in [start, end); one transaction."""
        if kind not in ("ohlcv", "mark", "funding"):
            raise ValueError(f"delete_range: kind {kind!r} is not ohlcv, mark or funding")
        where, params = "symbol = ? AND ts >= ? AND ts < ?", [symbol, *_bounds(start_ms, end_ms)]
        if kind != "funding":
            where, params = f"{where} AND timeframe = ?", [*params, canonical(str(tf))]
        with self._transaction():
            row = self.con.execute(f"SELECT count(*) FROM {kind} WHERE {where}", params).fetchone()
            if not dry_run:
                self.con.execute(f"DELETE FROM {kind} WHERE {where}", params)
        return int(row[0]) if row else 0

    def _transaction(self) -> _Tx:
        return _Tx(self.con)

    # ------------------------------------------------------------------ reads

    def load_bars(self, symbol: str, tf: str, start_ms: int | None, end_ms: int | None) -> Bars:
        """Stored bars with open time in [start, end) (None = unbounded), as numpy columns."""
        tf = canonical(tf)
        res = self.con.execute(
            "SELECT ts, open, high, low, close, volume FROM ohlcv WHERE symbol = ? AND timeframe = ? "
            "AND ts >= ? AND ts < ?",
            [symbol, tf, *_bounds(start_ms, end_ms)],
        ).fetchnumpy()
        res = _by_ts(res)
        return Bars.from_arrays(
            symbol, tf, res["ts"], res["open"], res["high"], res["low"], res["close"], res["volume"]
        )

    def bars_for(self, symbol: str, tf: str, start_ms: int | None, end_ms: int | None) -> Bars:
        """Bars of `tf` opening in [start, end): stored ones, or resampled from a stored lower
        timeframe that divides `tf` (DESIGN §4).

        The source is the candidate that covers most of the window (the stored `tf` itself wins
        ties, then the largest lower timeframe: fewer rows to aggregate)."""
        tf = canonical(tf)
        step = TIMEFRAMES[tf]
        lo = None if start_ms is None else bucket_start(start_ms, tf)
        hi = None if end_ms is None else bucket_start(end_ms - 1, tf) + step
        best, best_cover = tf, self._cover(symbol, tf, start_ms, end_ms)
        for lower, ms in sorted(TIMEFRAMES.items(), key=lambda kv: -kv[1]):
            if ms < step and step % ms == 0:
                cover = self._cover(symbol, lower, lo, hi)
                if cover > best_cover:
                    best, best_cover = lower, cover
        if best == tf:
            return self.load_bars(symbol, tf, start_ms, end_ms)
        return resample(self.load_bars(symbol, best, lo, hi), tf).window(start_ms, end_ms)

    def _cover(self, symbol: str, tf: str, start_ms: int | None, end_ms: int | None) -> int:
        """Milliseconds of [start, end) spanned by the stored series of `tf` (0 if none)."""
        lo, hi = _bounds(start_ms, end_ms)
        row = self.con.execute(
            "SELECT min(ts), max(ts) FROM ohlcv WHERE symbol = ? AND timeframe = ? "
            "AND ts >= ? AND ts < ?",
            [symbol, tf, lo, hi],
        ).fetchone()
        if row is None or row[0] is None:
            return 0
        return int(row[1]) + TIMEFRAMES[tf] - int(row[0])

    def series_source(self, kind: str, symbol: str, tf: str) -> str | None:
        """Who wrote a series: `sample`, the exchange or file label of an import, `bybit` for a
        sync; None when nothing is stored. `kind` is ohlcv, mark or funding (tf '')."""
        tf = canonical(tf) if tf else ""
        rows = self.con.execute(
            "SELECT source FROM sync_meta WHERE symbol = ? AND kind = ? AND timeframe = ?",
            [symbol, kind, tf],
        ).fetchall()
        return str(rows[0][0]) if rows else None

    def is_sample_series(self, kind: str, symbol: str, tf: str) -> bool:
        """Whether a series holds only the sample's rows (a user write replaces it whole). A store
        whose sample was loaded by an earlier version (no `sample_apart` marker) may have merged
        user rows into a series marked `sample`; those are never dropped."""
        from .sample import APART_MARKER

        if self.series_source(kind, symbol, tf) != SAMPLE_SOURCE:
            return False
        apart = self.con.execute(
            "SELECT count(*) FROM sync_meta WHERE symbol = '*' AND kind = ?", [APART_MARKER]
        ).fetchall()
        return bool(apart[0][0])

    def user_times(
        self, kind: str, symbol: str, tf: str, start_ms: int | None, end_ms: int | None
    ) -> np.ndarray:
        """Open times of the user's own rows (none while the series is the sample's): what a sync
        or heal need not fetch again."""
        if self.is_sample_series(kind, symbol, tf):
            return np.empty(0, dtype=np.int64)
        return self.stored_times(kind, symbol, tf, start_ms, end_ms)

    def stored_times(
        self, kind: str, symbol: str, tf: str, start_ms: int | None, end_ms: int | None
    ) -> np.ndarray:
        """Open times stored for an `ohlcv` or `mark` series in [start, end) (int64, sorted)."""
        if kind not in ("ohlcv", "mark"):
            raise ValueError(f"stored_times: kind {kind!r} is not ohlcv or mark")
        res = self.con.execute(
            f"SELECT ts FROM {kind} WHERE symbol = ? AND timeframe = ? AND ts >= ? AND ts < ? "
            "ORDER BY ts",
            [symbol, canonical(tf), *_bounds(start_ms, end_ms)],
        ).fetchnumpy()
        return np.asarray(res["ts"], dtype=np.int64)

    def load_funding(
        self, symbol: str, start_ms: int | None, end_ms: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Funding settlements in [start, end): (ts int64, rate float64)."""
        res = self.con.execute(
            "SELECT ts, rate FROM funding WHERE symbol = ? AND ts >= ? AND ts < ? ORDER BY ts",
            [symbol, *_bounds(start_ms, end_ms)],
        ).fetchnumpy()
        return np.asarray(res["ts"], dtype=np.int64), np.asarray(res["rate"], dtype=np.float64)

    def load_mark(
        self,
        symbol: str,
        start_ms: int | None,
        end_ms: int | None,
        cover_from: int | None = None,
    ) -> Bars | None:
        """Mark-price klines in [start, end) (volume zero), or None: see `pick_mark`."""
        return pick_mark(self.mark_series(symbol, start_ms, end_ms), start_ms, end_ms, cover_from)

    def mark_series(self, symbol: str, start_ms: int | None, end_ms: int | None) -> dict[str, Bars]:
        """Every stored mark timeframe's klines in [start, end) (volume zero), finest first."""
        res = self.con.execute(
            "SELECT timeframe, ts, open, high, low, close FROM mark WHERE symbol = ? AND ts >= ? "
            "AND ts < ?",
            [symbol, *_bounds(start_ms, end_ms)],
        ).fetchnumpy()
        out: dict[str, Bars] = {}
        tfs = np.asarray(res["timeframe"], dtype=object)
        for tf in sorted(set(tfs.tolist()), key=TIMEFRAMES.get):  # type: ignore[arg-type]
            rows = _by_ts({k: np.asarray(v)[tfs == tf] for k, v in res.items() if k != "timeframe"})
            zeros = np.zeros(len(rows["ts"]))
            out[tf] = Bars.from_arrays(
                symbol,
                tf,
                rows["ts"],
                rows["open"],
                rows["high"],
                rows["low"],
                rows["close"],
                zeros,
            )
        return out

    def instrument(self, symbol: str) -> InstrumentSpec | None:
        """Stored filters of `symbol` (bundled for the sample symbols, else synced), or None."""
        row = self.con.execute(
            "SELECT symbol, tick_size, qty_step, min_qty, min_notional, max_leverage, "
            "maintenance_margin_rate, funding_interval_hours FROM instruments WHERE symbol = ?",
            [symbol],
        ).fetchone()
        return None if row is None else InstrumentSpec(*row)

    def span(self, symbol: str, tf: str) -> tuple[int, int] | None:
        """(first open, last open) of a stored series, or None."""
        row = self.con.execute(
            "SELECT min(ts), max(ts) FROM ohlcv WHERE symbol = ? AND timeframe = ?",
            [symbol, canonical(tf)],
        ).fetchone()
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    def symbols(self) -> list[str]:
        """Symbols with stored OHLCV bars, sorted."""
        rows = self.con.execute("SELECT DISTINCT symbol FROM ohlcv ORDER BY symbol").fetchall()
        return [r[0] for r in rows]

    def status(self) -> list[dict[str, Any]]:
        """Per stored series (ohlcv, mark, funding): source, span, rows, gaps and bars missing
        inside the span. Funding has no fixed grid, so its gaps are not counted (None)."""
        grid = ", ".join(f"('{tf}', {ms})" for tf, ms in TIMEFRAMES.items())
        rows = self.con.execute(
            f"""
            WITH grid(timeframe, ms) AS (VALUES {grid}),
            s AS (SELECT 'ohlcv' AS kind, symbol, timeframe, ts FROM ohlcv
                  UNION ALL SELECT 'mark', symbol, timeframe, ts FROM mark),
            d AS (SELECT *, ts - lag(ts) OVER (PARTITION BY kind, symbol, timeframe ORDER BY ts)
                  AS dt FROM s)
            SELECT d.symbol, d.kind, d.timeframe, min(ts), max(ts), count(*),
                   count(dt) FILTER (WHERE dt <> grid.ms), any_value(grid.ms)
            FROM d JOIN grid USING (timeframe) GROUP BY d.symbol, d.kind, d.timeframe
            UNION ALL
            SELECT symbol, 'funding', '', min(ts), max(ts), count(*), NULL, NULL
            FROM funding GROUP BY symbol
            """
        ).fetchall()
        order = {"ohlcv": 0, "mark": 1, "funding": 2}
        tf_rank = {tf: i for i, tf in enumerate(TIMEFRAMES)} | {"": 0}
        rows.sort(key=lambda r: (r[0], order[r[1]], tf_rank[r[2]]))
        sources = {
            (sym, kind, tf): src
            for sym, kind, tf, src in self.con.execute(
                "SELECT symbol, kind, timeframe, source FROM sync_meta"
            ).fetchall()
        }
        return [
            {
                "symbol": sym,
                "kind": kind,
                "timeframe": tf,
                "source": sources.get((sym, kind, tf)),
                "first": int(lo),
                "last": int(hi),
                "rows": int(n),
                "gaps": None if ms is None else int(gaps),
                "missing": None if ms is None else int((hi - lo) // ms + 1 - n),
            }
            for sym, kind, tf, lo, hi, n, gaps, ms in rows
        ]

    # ------------------------------------------------------------------ the bundled sample

    def ensure_sample(self) -> bool:
        """Load the bundled sample into this store once, into the series the user has not stored
        (see `_insert`). Returns True when it loaded now."""
        from .sample import load_sample

        if self.has_sample():
            return False
        load_sample(self)
        return True

    def has_sample(self) -> bool:
        """Whether the bundled sample was loaded into this store."""
        from .sample import SAMPLE_MARKER

        marker = self.con.execute(
            "SELECT count(*) FROM sync_meta WHERE kind = ?", [SAMPLE_MARKER]
        ).fetchone()
        return bool(marker and marker[0])


def _series_where(table: str, meta: tuple[str, str, str, str]) -> tuple[str, list[str]]:
    """SQL selecting one series' rows: funding is per symbol, klines per symbol and timeframe."""
    if table == "funding":
        return "symbol = ?", [meta[0]]
    return "symbol = ? AND timeframe = ?", [meta[0], meta[2]]


def _by_ts(res: dict[str, Any]) -> dict[str, Any]:
    """Columns ordered by ts. Sorting in numpy only when needed is several times faster than
    `ORDER BY` for a million rows, and rows usually come back in insertion (= time) order."""
    ts = res["ts"]
    if len(ts) < 2 or bool(np.all(ts[1:] > ts[:-1])):
        return res
    order = np.argsort(ts, kind="stable")
    return {k: np.asarray(v)[order] for k, v in res.items()}


def _bounds(start_ms: int | None, end_ms: int | None) -> tuple[int, int]:
    """SQL bounds for a half-open window where None means unbounded."""
    return (
        -(2**62) if start_ms is None else int(start_ms),
        2**62 if end_ms is None else int(end_ms),
    )


class _Tx:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def __enter__(self) -> None:
        self.con.execute("BEGIN TRANSACTION")

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.con.execute("ROLLBACK" if et is not None else "COMMIT")


def pick_mark(
    series: dict[str, Bars], start_ms: int | None, end_ms: int | None, cover_from: int | None = None
) -> Bars | None:
    """The mark klines of [start, end) from `series` (per timeframe): of the finest timeframe whose
    bars reach from `cover_from` (default `start`) to `end`, else of the finest one (a week of 1m
    marks does not stand in for two years of 1h marks). One rule for the store and for a sweep's
    shared data, so both price the same window on the same marks."""
    lo, hi = _bounds(start_ms, end_ms)
    cut = {tf: b.window(lo, hi) for tf, b in series.items()}
    rows = sorted((tf for tf, b in cut.items() if len(b)), key=TIMEFRAMES.get)  # type: ignore[arg-type]
    if not rows:
        return None
    need_from = lo if cover_from is None else int(cover_from)
    covering = [
        tf for tf in rows if cut[tf].ts[0] <= need_from and cut[tf].ts[-1] + TIMEFRAMES[tf] >= hi
    ]
    return cut[(covering or rows)[0]]
