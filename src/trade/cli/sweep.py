"""`trade sweep` and `trade walkforward`: search a Play's variables, then ask whether the winner
holds out of sample (see docs/sweeps.md)."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import config
from ..errors import InputError
from .options import output_name

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

PlayOpt = Annotated[
    str, typer.Option("--play", help="Play name (plays/examples/NAME.yml) or path.")
]
GridOpt = Annotated[bool, typer.Option("--grid", help="Every combination (the default).")]
SearchOpt = Annotated[
    str | None, typer.Option("--search", help="optuna: a seeded TPE search of --trials.")
]
TrialsOpt = Annotated[int | None, typer.Option("--trials", help="Trials of --search optuna.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of --search optuna.")]
ObjectiveOpt = Annotated[
    str | None,
    typer.Option("--objective", help="Metric to rank by (default: the sweep block's, or sharpe)."),
]
SymbolOpt = Annotated[
    str | None, typer.Option("--symbol", help="Symbols, comma separated (default the Play's).")
]
StartOpt = Annotated[str | None, typer.Option("--start", help="First exec bar (UTC).")]
EndOpt = Annotated[str | None, typer.Option("--end", help="End of the window, exclusive (UTC).")]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", help="name=lo..hi:step or name=a,b,c (adds to the sweep block)."),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Processes that run combinations: this one and N - 1 forked workers "
        "(default: one per CPU).",
    ),
]
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help="Run on a Ray cluster: auto (the configured one, else a local one) or ADDRESS.",
        metavar="auto|ADDRESS",
    ),
]
IntrabarOpt = Annotated[
    str, typer.Option("--intrabar", help="TP+SL in one 1m bar: pessimistic|optimistic.")
]
DbOpt = Annotated[Path | None, typer.Option("--db", help="Market store path.")]


def sweep(
    play: PlayOpt,
    grid: GridOpt = False,
    search: SearchOpt = None,
    trials: TrialsOpt = None,
    seed: SeedOpt = 0,
    objective: ObjectiveOpt = None,
    symbol: SymbolOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    param: ParamOpt = None,
    workers: WorkersOpt = None,
    ray: RayOpt = None,
    intrabar: IntrabarOpt = "pessimistic",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output directory; an existing sweep there is resumed."),
    ] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip sweep.html.")] = False,
    db: DbOpt = None,
) -> None:
    """Run every combination (--grid) or a seeded search (--search optuna) of the Play's variables;
    write sweep.csv, the winner as a Play, the overfitting diagnostics and sweep.html."""
    from ..sweep.run import Interrupted, plan, run_sweep

    kind = _search_kind(grid, search)
    workers = _workers(workers)
    p = plan(
        play,
        symbols=symbol.split(",") if symbol else None,
        start=start,
        end=end,
        params=param or [],
        objective=objective,
        intrabar=intrabar,
        db=db or config.db_path(),
    )
    if out is None:
        out = Path("runs") / p.base.play.name / output_name("sweep")
    total = p.space.size() if kind == "grid" else (trials or 0)
    with _bar(f"{kind} sweep", total) as progress:
        try:
            res = run_sweep(
                p,
                out,
                search=kind,
                trials=trials,
                seed=seed,
                workers=workers,
                ray=ray,
                progress=progress,
            )
        except Interrupted as exc:
            err.print(f"{exc}; run the same command to resume", markup=False, soft_wrap=True)
            raise typer.Exit(130) from None
    if not no_report:
        from ..sweep.html import write_sweep_report

        write_sweep_report(out)
    _summary(p, res, out)


def _search_kind(grid: bool, search: str | None) -> str:
    if search is None:
        return "grid"
    if grid:
        raise InputError("--grid and --search exclude each other")
    if search != "optuna":
        raise InputError(f"--search {search!r}: expected optuna")
    return "optuna"


class _bar:
    """A rich progress bar (stderr, only on a terminal) fed by the sweep's progress callback:
    runs done, runs per second, the best objective so far and its values."""

    def __init__(self, label: str, total: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[best]}"),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        )
        self.task = self.progress.add_task(label, total=max(total, 1), rate="", best="")
        self.t0 = time.monotonic()

    def __enter__(self) -> Any:
        self.progress.__enter__()

        def update(done: int, total: int, best: float | None, values: dict | None) -> None:
            rate = done / max(time.monotonic() - self.t0, 1e-9)
            shown = (
                ""
                if best is None
                else f"best {best:.4g} " + " ".join(f"{k}={v}" for k, v in (values or {}).items())
            )
            self.progress.update(
                self.task, total=max(total, 1), completed=done, rate=f"{rate:.1f}/s", best=shown
            )

        return update

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)


def _summary(p: Any, res: Any, out: Path) -> None:
    from ..play.space import as_text

    say = [f"{p.base.play.name} · {', '.join(p.symbols)} · {len(res.rows)} runs · {p.objective}"]
    if res.winner is None:
        say.append(f"no combination has a {p.objective} (no trades?)")
    else:
        sets = " ".join(f"--set {k}={as_text(v)}" for k, v in res.winner.items())
        say.append(f"winner {p.objective} {res.winner_objective:.6g}: {sets}")
        nb = res.diagnostics["neighbourhood"]
        score = "–" if nb["score"] is None else f"{nb['score']:.2f}"
        say.append(f"neighbourhood stability {score} (1 = a plateau, 0 = a lone peak)")
        for sym, d in res.diagnostics["per_symbol"].items():
            dsr = "–" if d["deflated_sharpe"] is None else f"{d['deflated_sharpe']:.3f}"
            pbo = "–" if d["pbo"] is None else f"{d['pbo']:.3f}"
            verdict = "LIKELY OVERFIT" if d["likely_overfit"] else "no overfitting flagged"
            say.append(
                f"{sym}: deflated Sharpe {dsr} over {d['trials']} trials · PBO {pbo} · {verdict}"
            )
    say.append(f"artifacts: {out}")
    for line in say:
        console.print(line, markup=False, soft_wrap=True)


def walkforward(
    play: PlayOpt,
    train: Annotated[str, typer.Option("--train", help="Train window length, e.g. 90d.")],
    test: Annotated[str, typer.Option("--test", help="Test window length, e.g. 30d.")],
    step: Annotated[
        str | None, typer.Option("--step", help="How far each fold moves (default --test).")
    ] = None,
    anchored: Annotated[
        bool, typer.Option("--anchored", help="Every train window starts at the beginning.")
    ] = False,
    grid: GridOpt = False,
    search: SearchOpt = None,
    trials: TrialsOpt = None,
    seed: SeedOpt = 0,
    objective: ObjectiveOpt = None,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Override the Play's symbol.")
    ] = None,
    start: StartOpt = None,
    end: EndOpt = None,
    param: ParamOpt = None,
    workers: WorkersOpt = None,
    ray: RayOpt = None,
    intrabar: IntrabarOpt = "pessimistic",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output directory (default runs/<play>/walkforward-<time>/)."),
    ] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip sweep.html.")] = False,
    db: DbOpt = None,
) -> None:
    """Optimise on each train window, run the winner on the following test window, stitch the
    out-of-sample equity; in-sample vs out-of-sample per fold and overall."""
    from ..report.artifacts import check_out_dir
    from ..sweep import walkforward as wfm
    from ..sweep.run import manifest, plan

    kind = _search_kind(grid, search)
    workers = _workers(workers)
    check_out_dir(out)
    p = plan(
        play,
        symbols=[symbol] if symbol else None,
        start=start,
        end=end,
        params=param or [],
        objective=objective,
        intrabar=intrabar,
        db=db or config.db_path(),
    )
    if out is None:
        out = Path("runs") / p.base.play.name / output_name("walkforward")
    head = manifest(
        p, kind, trials if kind == "optuna" else None, seed if kind == "optuna" else None
    )
    head.update(train=train, test=test, step=step or test, anchored=anchored)
    with _bar("walk-forward", p.space.size() if kind == "grid" else (trials or 0)) as progress:
        res = wfm.walk_forward(
            p,
            train=train,
            test=test,
            step=step,
            anchored=anchored,
            search=kind,
            trials=trials,
            seed=seed,
            workers=workers,
            ray=ray,
            progress=progress,
        )
    wfm.write(out, p, res, head, report=not no_report)
    say = [f"{p.base.play.name} · {p.symbols[0]} · {len(res.folds)} folds · {p.objective}"]
    for r in res.folds:
        vals = " ".join(f"{k}={v}" for k, v in (r.values or {}).items()) or "–"
        ins = "–" if r.in_sample is None else f"{r.in_sample:.4g}"
        oos = "–" if r.out_of_sample is None else f"{r.out_of_sample:.4g}"
        d = r.diagnostics
        flag = " LIKELY OVERFIT" if d.get("likely_overfit") else ""
        say.append(
            f"fold {r.fold.number}: test from {_day(r.fold.test[0])}  {vals}  in-sample {ins}  "
            f"out-of-sample {oos}{flag}"
        )
    o = res.overall
    say.append(
        f"stitched out-of-sample: return {o['stitched_return_pct']:+.2f} %, max drawdown "
        f"{o['stitched_max_drawdown_pct']:.2f} %, {o['test_trades']} trades"
    )
    say.append(f"artifacts: {out}")
    for line in say:
        console.print(line, markup=False, soft_wrap=True)


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


def _workers(given: int | None) -> int:
    """`--workers`, by default one process per CPU this process may run on."""
    if given is None:
        return (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
    if given < 1:
        raise InputError(f"--workers {given}: expected 1 or more")
    return given
