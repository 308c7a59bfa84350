"""Run artifacts (DESIGN §8): result.json, trades.csv, equity.csv, events.jsonl, report.html.

Files are written into a temporary sibling directory and renamed into place at the end, so a failed
run never leaves a partial output directory. The trades fingerprint (`Positions.fingerprint`) is a
sha256 over the values trades.csv is written from: two runs with the same fingerprint traded
identically, to the last digit.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

TRADE_COLUMNS = (
    "trade_id",
    "side",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "qty",
    "notional",
    "exit_reason",
    "exit_block",
    "entry_block",
    "exits",
    "fees",
    "funding",
    "pnl",
    "return_pct",
    "mae_pct",
    "mfe_pct",
    "bars_held",
)


def iso(ms: int) -> str:
    """ISO-8601 UTC with a Z suffix, to the millisecond only when needed."""
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if ms % 1000:
        text += f".{ms % 1000:03d}"
    return text + "Z"


def _num(x: Any) -> str:
    """Shortest round-tripping text of a number (repr of the float), so bytes are deterministic."""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return repr(float(np.round(x, 10)) + 0.0) if x == x else ""
    return str(x)


def _texts(values: Sequence[Any]) -> list[str]:
    """`_num` of each value; a column of floats is rounded in one numpy call (the same rounding,
    elementwise), which a sweep of thousands of trades per run notices."""
    if values and all(isinstance(v, float) for v in values):
        raw = np.asarray(values, dtype=np.float64)
        rounded = np.round(raw, 10).tolist()
        return [repr(r + 0.0) if a == a else "" for a, r in zip(raw.tolist(), rounded, strict=True)]
    return [_num(v) for v in values]


def trades_csv(trades: Iterable[Mapping[str, Any]]) -> str:
    trades = list(trades)
    columns = [
        [iso(int(t[col])) for t in trades]
        if col in ("entry_time", "exit_time")
        else _texts([t[col] for t in trades])
        for col in TRADE_COLUMNS
    ]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(TRADE_COLUMNS)
    w.writerows(zip(*columns, strict=True))
    return buf.getvalue()


def fills_csv(fills: Iterable[Mapping[str, Any]]) -> str:
    """fills.csv: every fill (see `trade.report.positions`), times as ISO-8601."""
    from .positions import FILL_COLUMNS

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FILL_COLUMNS)
    for f in fills:
        w.writerow([iso(int(f[c])) if c == "time" else _num(f[c]) for c in FILL_COLUMNS])
    return buf.getvalue()


def equity_csv(ts: Sequence[int], equity: Sequence[float], drawdown_pct: Sequence[float]) -> str:
    """time,equity,drawdown_pct per evaluation bar (vectorised: a two-year 15m curve is 70k rows)."""
    t = np.asarray(ts, dtype=np.int64)
    if len(t) == 0:
        return "time,equity,drawdown_pct\n"
    times = np.datetime_as_string(t.astype("datetime64[ms]"), unit="s")
    eq = _nums(equity)
    dd = _nums(drawdown_pct)
    rows = [f"{a}Z,{b},{c}" for a, b, c in zip(times.tolist(), eq, dd, strict=True)]
    return "time,equity,drawdown_pct\n" + "\n".join(rows) + "\n"


def _nums(values: Sequence[float]) -> list[str]:
    """Vectorised `_num` for a float column (same text: rounded to 10 decimals, no -0.0)."""
    a = np.round(np.asarray(values, dtype=float), 10) + 0.0
    return ["" if x != x else repr(x) for x in a.tolist()]


def events_jsonl(events: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(e, sort_keys=True, default=_json_default) + "\n" for e in events)


def _json_default(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "__dict__"):
        return vars(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def check_out_dir(out_dir: Path | None) -> None:
    """Refuse, before any work starts, an output directory the run could not be written to:
    `--out` existing and not empty, below a file, or on a filesystem that takes no new directory
    (None: the default `runs/` tree, which must only be writable). The probe is a directory created
    and removed in the nearest existing ancestor, so nothing stays behind."""
    from ..errors import InputError

    if out_dir is None:
        label, out_dir = "runs/ (the default output directory)", Path("runs")
    else:
        label = f"--out {out_dir}"
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise InputError(f"{label}: exists and is not an empty directory")
    where = next(p for p in (out_dir.absolute(), *out_dir.absolute().parents) if p.exists())
    if not where.is_dir():
        raise InputError(f"{label}: {where} is a file, not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".trade-probe-", dir=where))
    except OSError as exc:
        raise InputError(f"{label}: cannot write in {where} ({exc.strerror})") from None


def write_run(
    out_dir: Path,
    result: Mapping[str, Any],
    trades_text: str,
    equity_text: str,
    events_text: str,
    extra: Mapping[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Write every artifact atomically into `out_dir` (which must not exist yet)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        from ..errors import InputError

        raise InputError(f"--out {out_dir}: directory exists and is not empty")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (tmp / "result.json").write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
        (tmp / "trades.csv").write_text(trades_text)
        (tmp / "equity.csv").write_text(equity_text)
        (tmp / "events.jsonl").write_text(events_text)
        for _name, writer in (extra or {}).items():
            writer(tmp)
        try:
            if out_dir.exists():
                out_dir.rmdir()
            tmp.rename(out_dir)
        except OSError:  # another run filled it since the check: keep its files, drop ours
            from ..errors import InputError

            raise InputError(
                f"--out {out_dir}: another run wrote there meanwhile; this run's files were discarded"
            ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
