"""sweep.csv and curves/: one row per (symbol, combination), each file written whole and renamed
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
from .jobs import Row

TABLE = "sweep.csv"
CURVES = "curves"


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
    rows = ordered(rows)
    metric_names = list(rows[0].metrics) if rows else []
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "symbol", *names, *metric_names, "trades_fingerprint"])
    for r in rows:
        cells = [str(r.index), r.symbol, *(_cell(r.values[n]) for n in names)]
        cells += [_cell(r.metrics.get(m)) for m in metric_names]
        w.writerow([*cells, r.fingerprint])
    return buf.getvalue()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    if isinstance(v, str):
        return v
    return _num(v)


def save(out: Path, rows: Sequence[Row], names: Sequence[str]) -> None:
    """sweep.csv, and each new row's equity curve (the diagnostics' input, kept for resume) as
    curves/<trial>-<symbol>.npy, written once and before the table that lists its row."""
    folder = out / CURVES
    folder.mkdir(exist_ok=True)
    have = {f.name for f in folder.iterdir()}
    for r in rows:
        name = _curve_name(r.index, r.symbol)
        if name not in have:
            buf = io.BytesIO()
            np.save(buf, r.equity)
            write_atomic(folder / name, buf.getvalue())
    write_atomic(out / TABLE, table_text(rows, names).encode())


def _curve_name(index: int | str, symbol: str) -> str:
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
            curve = out / CURVES / _curve_name(rec.get("trial", ""), rec.get("symbol", ""))
            try:
                values = {n: by_text[n][rec[n]] for n in names}
                metrics = {
                    k: _parse(v)
                    for k, v in rec.items()
                    if k not in ("trial", "symbol", "trades_fingerprint", *names)
                }
                equity = np.load(curve)
                rows.append(
                    Row(
                        int(rec["trial"]),
                        rec["symbol"],
                        values,
                        metrics,
                        rec["trades_fingerprint"],
                        equity,
                    )
                )
            except (KeyError, ValueError, OSError):
                raise InputError(
                    f"{table}: row {rec.get('trial')!r} does not belong to this sweep or its "
                    f"curve {curve.name} is missing; remove {out} or choose another --out"
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
