"""`trade walkforward`: optimise on each train window, run the winner on the test window after it,
stitch the out-of-sample equity.

A fold's parameters come from a sweep whose every run ends at the train window's end: the test
window's bars reach only the fold's test run (its warmup reads bars before the test window, which
are the past). The stitched curve is the folds' test runs chained: each starts where the previous
one ended.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.runner import bars_per_year
from ..errors import InputError
from ..gcpause import gc_frozen
from ..play.model import Scalar
from ..report.artifacts import iso
from ..report.metrics import max_drawdown, sharpe, total_return_pct
from ..timeframes import TIMEFRAMES, parse_duration
from . import table
from .diagnostics import diagnose_stats, neighbourhood
from .executors import Executor, make_executor
from .jobs import Job, Row
from .run import Plan, ProgressFn, _best, _grid, _optuna, aggregate


@dataclass(frozen=True)
class Fold:
    number: int
    train: tuple[int, int]
    test: tuple[int, int]


def folds(
    start: int, end: int, train_ms: int, test_ms: int, step_ms: int, anchored: bool
) -> list[Fold]:
    """Train [a, b), test [b, b + test) moving by `step`; anchored: every train starts at `start`.
    Only folds whose test window ends by `end`."""
    out: list[Fold] = []
    k = 0
    while True:
        b = start + train_ms + k * step_ms
        a = start if anchored else b - train_ms
        if b + test_ms > end:
            return out
        out.append(Fold(k + 1, (a, b), (b, b + test_ms)))
        k += 1


@dataclass
class FoldResult:
    fold: Fold
    values: dict[str, Scalar] | None
    in_sample: float | None
    test: Row | None
    out_of_sample: float | None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    train_rows: list[Row] = field(default_factory=list)


@dataclass
class WalkForward:
    folds: list[FoldResult]
    stitched_ts: np.ndarray
    stitched: np.ndarray
    overall: dict[str, Any]


def walk_forward(
    p: Plan,
    *,
    train: str,
    test: str,
    step: str | None = None,
    anchored: bool = False,
    search: str = "grid",
    trials: int | None = None,
    seed: int = 0,
    workers: int = 1,
    ray: str | None = None,
    progress: ProgressFn | None = None,
) -> WalkForward:
    if len(p.symbols) != 1:
        raise InputError("--symbol: a walk-forward runs on one symbol")
    if search == "optuna" and (trials is None or trials < 1):
        raise InputError("--search optuna needs --trials N (1 or more)")
    sym = p.symbols[0]
    exec_ms = TIMEFRAMES[p.base.exec_tf]
    lengths = {}
    for flag, text in (("--train", train), ("--test", test), ("--step", step or test)):
        ms = parse_duration(text)
        if ms % exec_ms:
            raise InputError(f"{flag} {text}: not a whole number of {p.base.exec_tf} bars")
        lengths[flag] = ms
    start, end = p.shared.windows[sym]
    plan = folds(start, end, lengths["--train"], lengths["--test"], lengths["--step"], anchored)
    if not plan:
        raise InputError(
            f"--train {train} + --test {test} do not fit in the window {iso(start)} → {iso(end)}"
        )
    with gc_frozen():  # see gcpause: hundreds of runs, each leaving a few cycles
        executor = make_executor(p.shared, workers, ray)
        try:
            results = [_fold(p, executor, f, search, trials, seed, progress) for f in plan]
        finally:
            executor.close()
        return _stitch(p, results)


def _fold(
    p: Plan,
    executor: Executor,
    f: Fold,
    search: str,
    trials: int | None,
    seed: int,
    progress: ProgressFn | None,
) -> FoldResult:
    rows: list[Row] = []

    def keep(_rows: Sequence[Row], force: bool = False) -> None:
        pass  # a fold's rows live in memory; the walk-forward is written at the end

    if search == "grid":
        _grid(p, executor, rows, keep, progress, f.train)
    else:
        assert trials is not None
        _optuna(p, executor, rows, keep, trials, seed, progress, f.train)
    agg = aggregate(rows, p.objective, p.symbols)
    i = _best(agg, p.minimise)
    res = FoldResult(f, None, None, None, None, train_rows=table.ordered(rows))
    if i is None:
        return res
    winner = next(r.values for r in rows if r.index == i)
    res.values, res.in_sample = dict(winner), agg[i]
    res.test = next(iter(executor.run([Job(i, p.symbols[0], winner, *f.test, curve=True)])))
    oos = res.test.metrics.get(p.objective)
    res.out_of_sample = None if oos is None else float(oos)
    mine = sorted(rows, key=lambda r: r.index)
    at = next(k for k, r in enumerate(mine) if r.index == i)
    objective_of = {tuple(r.values[n] for n in p.names): agg.get(r.index) for r in rows}
    res.diagnostics = {
        **diagnose_stats([r.stats for r in mine], at),
        "neighbourhood": neighbourhood(winner, p.space.params, objective_of, p.minimise),
    }
    return res


def _stitch(p: Plan, results: list[FoldResult]) -> WalkForward:
    """The test runs chained: fold k's curve scaled by the equity fold k − 1 ended with."""
    start_eq = float(p.base.play.account.starting_equity)
    level, ts_parts, eq_parts = start_eq, [], []
    for r in results:
        if r.test is None:
            continue
        ts_parts.append(r.test.equity_ts)
        eq_parts.append(r.test.equity * (level / start_eq))
        if len(r.test.equity):
            level = float(eq_parts[-1][-1])
    ts = np.concatenate(ts_parts) if ts_parts else np.empty(0, dtype=np.int64)
    eq = np.concatenate(eq_parts) if eq_parts else np.empty(0)
    curve = np.concatenate([[start_eq], eq])
    rets = curve[1:] / curve[:-1] - 1.0
    ins = [r.in_sample for r in results if r.in_sample is not None]
    oos = [r.out_of_sample for r in results if r.out_of_sample is not None]
    overall = {
        "folds": len(results),
        "objective": p.objective,
        "mean_in_sample": float(np.mean(ins)) if ins else None,
        "mean_out_of_sample": float(np.mean(oos)) if oos else None,
        "stitched_return_pct": total_return_pct(start_eq, float(curve[-1])),
        "stitched_max_drawdown_pct": max_drawdown(curve)[1],
        "stitched_sharpe": sharpe(rets, bars_per_year(p.base.exec_tf)),
        "test_trades": sum(int(r.test.metrics.get("trades", 0)) for r in results if r.test),
    }
    return WalkForward(results, ts, eq, overall)


def summary(p: Plan, wf: WalkForward, head: dict[str, Any]) -> dict[str, Any]:
    return {
        **head,
        "folds": [
            {
                "fold": r.fold.number,
                "train": [iso(r.fold.train[0]), iso(r.fold.train[1])],
                "test": [iso(r.fold.test[0]), iso(r.fold.test[1])],
                "values": r.values,
                "in_sample": r.in_sample,
                "out_of_sample": r.out_of_sample,
                "test_trades": r.test.metrics.get("trades") if r.test else 0,
                "test_fingerprint": r.test.fingerprint if r.test else None,
                "diagnostics": r.diagnostics,
            }
            for r in wf.folds
        ],
        "overall": wf.overall,
        "stitched": {
            "t": (wf.stitched_ts // 1000).tolist(),
            "equity": [round(float(x), 6) for x in wf.stitched],
        },
    }


def write(out: Path, p: Plan, wf: WalkForward, head: dict[str, Any], report: bool) -> None:
    """walkforward.json, folds.csv, stitched_equity.csv, each fold's train table and sweep.html,
    built in a temporary directory renamed into place (nothing half-written)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out}: exists and is not an empty directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        data = summary(p, wf, head)
        (tmp / "walkforward.json").write_text(json.dumps(data, indent=2) + "\n")
        lines = ["fold,train_start,train_end,test_start,test_end,"
                 + ",".join(p.names) + ",in_sample,out_of_sample,test_trades,test_fingerprint"]  # fmt: skip
        for f in data["folds"]:
            vals = [table._cell((f["values"] or {}).get(n)) for n in p.names]
            lines.append(",".join([
                str(f["fold"]), *f["train"], *f["test"], *vals, table._cell(f["in_sample"]),
                table._cell(f["out_of_sample"]), str(f["test_trades"]), f["test_fingerprint"] or "",
            ]))  # fmt: skip
        (tmp / "folds.csv").write_text("\n".join(lines) + "\n")
        eq = ["time,equity"] + [
            f"{iso(int(t))},{table._cell(float(e))}"
            for t, e in zip(wf.stitched_ts, wf.stitched, strict=True)
        ]
        (tmp / "stitched_equity.csv").write_text("\n".join(eq) + "\n")
        for r in wf.folds:
            d = tmp / f"fold-{r.fold.number}"
            d.mkdir()
            table.save(d, r.train_rows, p.names)
        if report:
            from .html import write_page

            last = tmp / f"fold-{wf.folds[-1].fold.number}" / table.TABLE
            write_page(tmp, head, last, data)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
