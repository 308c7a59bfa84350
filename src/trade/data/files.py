"""Reading market data files (CSV, CSV.gz, Parquet) with validation that names the bad rows.

A file either passes every check or is rejected with the first problems listed by line number
(header = line 1), so nothing half-valid ever reaches the store.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from pathlib import Path

import numpy as np

from ..bounds import LAST_TS_MS, MAX_FUNDING_RATE, MAX_PRICE, MAX_VOLUME
from ..errors import DataError, InputError
from ..timeframes import canonical, tf_ms
from .bars import Bars

OHLCV = ("ts_ms", "open", "high", "low", "close", "volume")
FUNDING = ("ts_ms", "funding_rate")
MARK = ("ts_ms", "open", "high", "low", "close")
NAME_RE = re.compile(
    r"^(?P<exchange>[a-z]+)_(?P<symbol>[A-Z0-9]+)_(?P<rest>[A-Za-z0-9_]+?)(?:\.csv\.gz|\.csv|\.parquet)$"
)
MAX_LISTED = 5
TS_UNITS = ((1e17, "nanoseconds"), (1e14, "microseconds"))


def infer_names(path: Path) -> tuple[str | None, str | None, str | None, str | None]:
    """(exchange, symbol, kind, timeframe) from `<exchange>_<SYMBOL>_<tf|funding|mark_tf>.csv.gz`."""
    m = NAME_RE.match(path.name)
    if not m:
        return None, None, None, None
    rest = m.group("rest")
    if rest == "funding":
        return m.group("exchange"), m.group("symbol"), "funding", None
    if rest.startswith("mark_"):
        return m.group("exchange"), m.group("symbol"), "mark", rest[5:]
    return m.group("exchange"), m.group("symbol"), "ohlcv", rest


def read_table(path: Path, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Columns of a CSV/CSV.gz/Parquet file as float arrays (ts_ms as int64)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    parquet = path.name.lower().endswith(".parquet")
    try:
        table = pq.read_table(path) if parquet else pacsv.read_csv(path)
        names = table.column_names
    except pa.ArrowInvalid as exc:
        problem = _printable(str(exc)) if parquet else _csv_problem(path, str(exc))
        raise DataError(f"{path}: {problem}") from None
    except UnicodeDecodeError:  # Arrow decodes column names itself
        raise DataError(f"{path}: not a UTF-8 text file (binary data?)") from None
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        raise DataError(f"{path}: corrupt or truncated file ({_printable(str(exc))})") from None
    except pa.ArrowException as exc:  # e.g. a Parquet type Arrow cannot convert
        raise DataError(f"{path}: unreadable ({_printable(str(exc))})") from None
    _check_columns(path, names, columns)
    data = {}
    for c in columns:
        col = table.column(c)
        if not (
            pa.types.is_integer(col.type)
            or pa.types.is_floating(col.type)
            or pa.types.is_null(col.type)
        ):
            raise DataError(f"{path}: {_not_numeric(c, col.to_pylist())}")
        data[c] = col.to_numpy(zero_copy_only=False).astype(np.float64)
    ts = data["ts_ms"]
    if np.isnan(ts).any():
        raise DataError(f"{path}: missing ts_ms on {_lines(np.isnan(ts))}")
    _check_time_unit(path, ts)
    data["ts_ms"] = ts.astype(np.int64)
    return data


def _check_time_unit(path: Path, ts: np.ndarray) -> None:
    """Timestamps must be epoch milliseconds between 1970 and 2100; name the unit they look like."""
    bad = ~np.isfinite(ts) | (ts < 0) | (ts >= LAST_TS_MS)
    if bad.any():
        first = float(ts[np.flatnonzero(bad)[0]])
        unit = next((u for floor, u in TS_UNITS if np.isfinite(first) and first >= floor), None)
        why = f"they look like {unit}" if unit else "expected epoch milliseconds, 1970 to 2100"
        raise DataError(f"{path}: ts_ms out of range on {_lines(bad)} ({why})")
    if len(ts) and bool(np.all((ts >= 1e9) & (ts < 1e10))):
        raise DataError(
            f"{path}: ts_ms look like seconds (e.g. {int(ts[0])}); expected epoch milliseconds"
        )


def _csv_problem(path: Path, arrow_message: str) -> str:
    """Arrow's CSV error, located: the first line whose field count differs from the header."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", newline="") as fh:
            rows = csv.reader(fh)
            width = len(next(rows, []))
            for line, row in enumerate(rows, start=2):
                if row and len(row) != width:
                    return f"line {line} has {len(row)} fields, the header has {width}"
    except UnicodeDecodeError:
        return "not a UTF-8 text file (binary data?)"
    except (OSError, EOFError, csv.Error):
        pass
    if "straddl" in arrow_message:  # Arrow's name for a row longer than its read block
        return "a row too long to parse (no line break within a megabyte)"
    return _printable(arrow_message)


def _printable(message: str, limit: int = 120) -> str:
    """The first line of a library's message, printable ASCII and short (it may quote the file)."""
    lines = message.splitlines() or [""]
    first = lines[0].encode("ascii", "backslashreplace").decode()
    return first if len(first) <= limit else f"{first[:limit]}…"


def _not_numeric(name: str, values: list[object]) -> str:
    bad = []
    for i, v in enumerate(values):
        try:
            float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            if v is not None:
                bad.append(i)
    shown = ", ".join(str(i + 2) for i in bad[:MAX_LISTED])
    return (
        f"column {name!r} is not numeric on line(s) {shown} (e.g. {_quote(values[bad[0]])})"
        if bad
        else (f"column {name!r} is not numeric")
    )


def _quote(value: object, limit: int = 24) -> str:
    """A value for a message: printable ASCII, cut short (a file may hold any bytes)."""
    text = ascii(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _check_columns(path: Path, have: list[str], need: tuple[str, ...]) -> None:
    missing = [c for c in need if c not in have]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; expected header {','.join(need)} (got {','.join(have)})"
        )


def _lines(mask: np.ndarray) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i + 2) for i in idx[:MAX_LISTED])
    more = f" and {len(idx) - MAX_LISTED} more" if len(idx) > MAX_LISTED else ""
    return f"line(s) {shown}{more}"


def validate_times(path: Path, ts: np.ndarray, tf: str | None) -> None:
    if len(ts) == 0:
        raise DataError(f"{path}: no rows")
    d = np.diff(ts)
    if (d == 0).any():
        raise DataError(
            f"{path}: duplicate timestamp on {_lines(np.concatenate([[False], d == 0]))}"
        )
    if (d < 0).any():
        raise DataError(
            f"{path}: timestamps not increasing on {_lines(np.concatenate([[False], d < 0]))}"
        )
    if tf is not None:
        from ..timeframes import bucket_start

        step = tf_ms(tf)
        if canonical(tf) == "W":
            misaligned = np.array([bucket_start(int(t), "W") != t for t in ts])
        else:
            misaligned = ts % step != 0
        if misaligned.any():
            raise DataError(f"{path}: timestamps not aligned to {tf} on {_lines(misaligned)}")


def validate_prices(
    path: Path, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray | None
) -> None:
    cols = {"open": o, "high": h, "low": lo, "close": c} | ({"volume": v} if v is not None else {})
    for name, col in cols.items():
        if np.isnan(col).any():
            raise DataError(f"{path}: missing or NaN {name} on {_lines(np.isnan(col))}")
        limit = MAX_VOLUME if name == "volume" else MAX_PRICE
        if (np.abs(col) > limit).any():
            raise DataError(
                f"{path}: {name} infinite or above {limit:.0e} on {_lines(np.abs(col) > limit)}"
            )
    for name, col in (("open", o), ("high", h), ("low", lo), ("close", c)):
        if (col <= 0).any():
            raise DataError(f"{path}: non-positive {name} on {_lines(col <= 0)}")
    if v is not None and (v < 0).any():
        raise DataError(f"{path}: negative volume on {_lines(v < 0)}")
    bad_h = h < np.maximum(o, c)
    if bad_h.any():
        raise DataError(f"{path}: high below open/close on {_lines(bad_h)}")
    bad_l = lo > np.minimum(o, c)
    if bad_l.any():
        raise DataError(f"{path}: low above open/close on {_lines(bad_l)}")


def read_ohlcv(path: Path, tf: str, symbol: str, check_alignment: bool = True) -> Bars:
    d = read_table(path, OHLCV)
    validate_times(path, d["ts_ms"], tf if check_alignment else None)
    validate_prices(path, d["open"], d["high"], d["low"], d["close"], d["volume"])
    return Bars.from_arrays(
        symbol, canonical(tf), d["ts_ms"], d["open"], d["high"], d["low"], d["close"], d["volume"]
    )


def read_mark(path: Path, tf: str, symbol: str) -> Bars:
    d = read_table(path, MARK)
    validate_times(path, d["ts_ms"], tf)
    validate_prices(path, d["open"], d["high"], d["low"], d["close"], None)
    return Bars.from_arrays(
        symbol,
        canonical(tf),
        d["ts_ms"],
        d["open"],
        d["high"],
        d["low"],
        d["close"],
        np.zeros(len(d["ts_ms"])),
    )


def read_funding(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = read_table(path, FUNDING)
    validate_times(path, d["ts_ms"], None)
    rate = d["funding_rate"]
    if np.isnan(rate).any():
        raise DataError(f"{path}: missing funding_rate on {_lines(np.isnan(rate))}")
    if (np.abs(rate) > MAX_FUNDING_RATE).any():
        raise DataError(
            f"{path}: funding_rate infinite or beyond ±{MAX_FUNDING_RATE:g} on "
            f"{_lines(np.abs(rate) > MAX_FUNDING_RATE)}"
        )
    return d["ts_ms"], rate
