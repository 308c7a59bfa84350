"""sweep.csv and stats.npz: one row per (symbol, combination), each file written whole and renamed
into place, so an interrupted sweep leaves the rows that finished and never half a file.

Columns: trial, symbol, the swept variables, every scalar metric (in result.json's order; the
per-reason and per-month metrics as JSON), trades_fingerprint. Rows are sorted by trial then
symbol, so two identical sweeps write identical bytes whatever order workers finished in.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..play.model import Scalar
from ..report.artifacts import _num, _texts
from .diagnostics import CurveStats
from .jobs import Row

TABLE = "sweep.csv"
STATS = "stats.npz"


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ordered(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r.index, r.symbol))


def table_text(rows: Sequence[Row], names: Sequence[str]) -> str:
    return Checkpoint(None, names).text(rows)


def _cells(values: Sequence[Any]) -> list[str]:
    """`_cell` of each value, the floats rounded in one numpy call (the same rounding: numpy's
    round of one value costs microseconds, and a row has dozens)."""
    out = [_cell(v) if not isinstance(v, float) else "" for v in values]
    floats = [k for k, v in enumerate(values) if isinstance(v, float)]
    for k, text in zip(floats, _texts([values[k] for k in floats]), strict=True):
        out[k] = text
    return out


def metric_cells(metrics: Mapping[str, Any]) -> list[str]:
    """A row's metrics as sweep.csv's cells, in their own order (`Row.cells`)."""
    return _cells(list(metrics.values()))


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    if isinstance(v, str):
        return v
    return _num(v)


class Checkpoint:
    """Writes sweep.csv and, before it, stats.npz: every row's `CurveStats` (the diagnostics'
    input, kept for resume), by trial and symbol, so a row in the table always has its stats. A
    row's line is formatted once: the table is rewritten at every checkpoint, its lines are not."""

    def __init__(self, out: Path | None, names: Sequence[str]) -> None:
        self.out, self.names = out, list(names)
        self.metric_names: list[str] = []
        self.lines: dict[tuple[int, str], str] = {}
        self.stats: dict[tuple[int, str], np.ndarray] = {}

    def text(self, rows: Sequence[Row]) -> str:
        rows = ordered(rows)
        metric_names = list(rows[0].metrics) if rows else []
        if metric_names != self.metric_names:  # the columns follow the first row's metrics
            self.metric_names, self.lines = metric_names, {}
        head = ["trial", "symbol", *self.names, *metric_names, "trades_fingerprint"]
        out = [_csv_line(head)]
        for r in rows:
            line = self.lines.get((r.index, r.symbol))
            if line is None:
                cells = _cells([r.values[n] for n in self.names])
                if r.cells and list(r.metrics) == metric_names:
                    cells.extend(r.cells)
                else:
                    cells.extend(_cells([r.metrics.get(m) for m in metric_names]))
                line = _csv_line([str(r.index), r.symbol, *cells, r.fingerprint])
                self.lines[(r.index, r.symbol)] = line
            out.append(line)
        return "".join(out)

    def save(self, rows: Sequence[Row]) -> None:
        assert self.out is not None
        new = [r for r in rows if (r.index, r.symbol) not in self.stats]
        for r in new:
            self.stats[(r.index, r.symbol)] = r.stats.to_array()
        if new or not (self.out / STATS).is_file():
            keys = sorted(self.stats)
            vectors = [self.stats[k] for k in keys]
            buf = io.BytesIO()
            np.savez(
                buf,
                trial=np.array([k[0] for k in keys], dtype=np.int64),
                symbol=np.array([k[1] for k in keys], dtype=str),
                length=np.array([len(v) for v in vectors], dtype=np.int64),
                values=np.concatenate(vectors) if vectors else np.empty(0),
            )
            write_atomic(self.out / STATS, buf.getvalue())
        write_atomic(self.out / TABLE, self.text(rows).encode())


def save(out: Path, rows: Sequence[Row], names: Sequence[str]) -> None:
    """sweep.csv and stats.npz of `rows` at once (see `Checkpoint`)."""
    Checkpoint(out, names).save(rows)


def _csv_line(cells: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def _read_stats(path: Path) -> dict[tuple[str, str], np.ndarray]:
    """stats.npz by (trial, symbol) as sweep.csv writes them (empty when the file is absent)."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as f:
            ends = np.cumsum(f["length"])
            parts = np.split(f["values"], ends[:-1]) if len(ends) else []
            return {
                (str(t), str(s)): v
                for t, s, v in zip(f["trial"].tolist(), f["symbol"].tolist(), parts, strict=True)
            }
    except (OSError, ValueError, KeyError):
        raise InputError(f"{path}: not a sweep's statistics; remove {path.parent}") from None


def load(out: Path, names: Sequence[str], types: dict[str, list[Scalar]]) -> list[Row]:
    """The rows an earlier run of the same sweep kept (resume). Values are matched back to the
    space's own values by their text, so a resumed row has exactly the values it ran with."""
    table = out / TABLE
    if not table.is_file():
        return []
    by_text = {n: {_cell(v): v for v in vals} for n, vals in types.items()}
    stats = _read_stats(out / STATS)
    rows: list[Row] = []
    with table.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            try:
                values = {n: by_text[n][rec[n]] for n in names}
                metrics = {
                    k: _parse(v)
                    for k, v in rec.items()
                    if k not in ("trial", "symbol", "trades_fingerprint", *names)
                }
                rows.append(
                    Row(
                        int(rec["trial"]),
                        rec["symbol"],
                        values,
                        metrics,
                        rec["trades_fingerprint"],
                        CurveStats.from_array(stats[(rec["trial"], rec["symbol"])]),
                    )
                )
            except (KeyError, ValueError):
                raise InputError(
                    f"{table}: row {rec.get('trial')!r} does not belong to this sweep or has no "
                    f"statistics in {STATS}; remove {out} or choose another --out"
                ) from None
    return rows


def _parse(text: str) -> Any:
    if text == "":
        return None
    if text[:1] in "{[":
        return json.loads(text)
    try:
        return int(text)
    except ValueError:
        return float(text)
