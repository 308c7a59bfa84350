"""`trade backtest …`: run a Play on history, and the audits that make a run trustworthy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import config
from ..errors import InputError
from ..report.artifacts import write_run
from . import feature_audits
from .options import parse_sets

app = typer.Typer(
    help="Run backtests and the audits that make them trustworthy.", no_args_is_help=True
)
feature_audits.register(app)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@app.command("run")
def run(
    play: Annotated[
        str, typer.Option("--play", help="Play name (plays/examples/NAME.yml) or path.")
    ],
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Override the Play's symbol.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="First exec bar (UTC date/datetime).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="End of the window, exclusive (UTC).")
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Run on a generated market.")
    ] = False,
    pattern: Annotated[str, typer.Option("--pattern", help="Synthetic pattern.")] = "trend_up",
    bars: Annotated[int, typer.Option("--bars", help="Synthetic 1m bars.")] = 100_000,
    seed: Annotated[int, typer.Option("--seed", help="Synthetic seed.")] = 1,
    fix_gaps: Annotated[
        bool, typer.Option("--fix-gaps", help="Heal missing bars from Bybit first.")
    ] = False,
    intrabar: Annotated[
        str, typer.Option("--intrabar", help="TP+SL in one 1m bar: pessimistic|optimistic.")
    ] = "pessimistic",
    mode: Annotated[
        str, typer.Option("--mode", help="fast (vectorised) or replay (bar by bar).")
    ] = "fast",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a variable: name=value.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default runs/<play>/<run_id>/).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print result.json to stdout.")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip report.html.")] = False,
    db: Annotated[Path | None, typer.Option("--db", help="Market store path.")] = None,
) -> None:
    """Backtest a Play and write result.json, trades.csv, equity.csv, events.jsonl (and report.html)."""
    from ..engine.backtest import Synthetic, run_backtest

    if bars <= 0:
        raise InputError(f"--bars {bars}: expected a positive number of 1m bars")
    syn = Synthetic(pattern, bars, seed) if synthetic else None
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out}: exists and is not an empty directory")
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    ) as bar:
        task = bar.add_task(f"{mode} backtest", total=1)

        def progress(i: int, n: int) -> None:
            bar.update(task, total=max(n, 1), completed=i)

        res = run_backtest(
            play,
            symbol=symbol,
            start=start,
            end=end,
            synthetic=syn,
            fix_gaps=fix_gaps,
            intrabar=intrabar,
            mode=mode,
            overrides=parse_sets(set_),
            db=db or config.db_path(),
            progress=progress,
        )
    result = res.result
    if out is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        out = Path("runs") / result["play"] / f"{stamp}-{result['input_hash'][:8]}"
    extra = {}
    if not no_report:
        from ..report import html

        extra["report.html"] = lambda d: html.write_report(d / "report.html", res)
    write_run(out, result, res.trades_text, res.equity_text, res.events_text, extra)
    result_path = out / "result.json"
    if as_json:
        print(result_path.read_text(), end="")
        return
    _summary(result, out)


def _summary(result: dict, out: Path) -> None:
    m = result["metrics"]
    table = Table(
        title=f"{result['play']} · {result['symbol']} · {result['window']['start']} → {result['window']['end']} · {result['mode']}"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("trades", result["trades"]),
        ("final equity", m.get("final_equity")),
        ("return %", m.get("total_return_pct")),
        ("max drawdown %", m.get("max_drawdown_pct")),
        ("sharpe", m.get("sharpe")),
        ("profit factor", m.get("profit_factor")),
        ("win rate %", m.get("win_rate_pct")),
        ("fees", m.get("total_fees")),
        ("funding", m.get("total_funding")),
        ("fingerprint", result["trades_fingerprint"][:16]),
    ]
    for k, v in rows:
        table.add_row(k, f"{v:,.4f}" if isinstance(v, float) else str(v))
    console.print(table)
    if result.get("note"):
        console.print(f"note: {result['note']}")
    console.print(f"artifacts: {out}", markup=False)
