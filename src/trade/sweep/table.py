"""sweep.csv and stats/: one row per (symbol, combination), each file written whole and renamed
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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..play.model import Scalar
from ..report.artifacts import _num
from .diagnostics import CurveStats
from .jobs import Row

TABLE = "sweep.csv"
STATS = "stats"


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


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    if isinstance(v, str):
        return v
    return _num(v)


class Checkpoint:
    """Writes sweep.csv and each new row's `CurveStats` (the diagnostics' input, kept for resume)
    as stats/<trial>-<symbol>.npy, written once and before the table that lists its row. A row's
    line is formatted once: the table is rewritten at every checkpoint, its lines are not."""

    def __init__(self, out: Path | None, names: Sequence[str]) -> None:
        self.out, self.names = out, list(names)
        self.metric_names: list[str] = []
        self.lines: dict[tuple[int, str], str] = {}
        self.saved: set[str] = set()
        if out is not None:
            (out / STATS).mkdir(exist_ok=True)
            self.saved = {f.name for f in (out / STATS).iterdir()}

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
                cells = [str(r.index), r.symbol, *(_cell(r.values[n]) for n in self.names)]
                cells += [_cell(r.metrics.get(m)) for m in metric_names]
                line = self.lines[(r.index, r.symbol)] = _csv_line([*cells, r.fingerprint])
            out.append(line)
        return "".join(out)

    def save(self, rows: Sequence[Row]) -> None:
        assert self.out is not None
        for r in rows:
            name = _stats_name(r.index, r.symbol)
            if name not in self.saved:
                buf = io.BytesIO()
                np.save(buf, r.stats.to_array())
                write_atomic(self.out / STATS / name, buf.getvalue())
                self.saved.add(name)
        write_atomic(self.out / TABLE, self.text(rows).encode())


def save(out: Path, rows: Sequence[Row], names: Sequence[str]) -> None:
    """sweep.csv and stats/ of `rows` at once (see `Checkpoint`)."""
    Checkpoint(out, names).save(rows)


def _csv_line(cells: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def _stats_name(index: int | str, symbol: str) -> str:
    return f"{index}-{symbol}.npy"


def load(out: Path, names: Sequence[str], types: dict[str, list[Scalar]]) -> list[Row]:
    """The rows an earlier run of the same sweep kept (resume). Values are matched back to the
    space's own values by their text, so a resumed row has exactly the values it ran with."""
    table = out / TABLE
    if not table.is_file():
        return []
    by_text = {n: {_cell(v): v for v in vals} for n, vals in types.items()}
    rows: list[Row] = []
    with table.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            stats = out / STATS / _stats_name(rec.get("trial", ""), rec.get("symbol", ""))
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
                        CurveStats.from_array(np.load(stats)),
                    )
                )
            except (KeyError, ValueError, OSError):
                raise InputError(
                    f"{table}: row {rec.get('trial')!r} does not belong to this sweep or its "
                    f"statistics {stats.name} are missing; remove {out} or choose another --out"
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
