"""`trade validate suite [DIR]`: run each validation Play and check its `expected:` block."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .. import config
from ..errors import InputError

app = typer.Typer(
    help="Validation suites: Plays that assert their own outcomes.", no_args_is_help=True
)
console = Console(highlight=False)


def check(result: dict[str, Any], expected: Any) -> list[str]:
    """Problems with a run against a Play's `expected:` block (empty = pass)."""
    problems = []
    n = result["trades"]
    if n < expected.trades_min:
        problems.append(f"{n} trades < {expected.trades_min}")
    if expected.trades_max is not None and n > expected.trades_max:
        problems.append(f"{n} trades > {expected.trades_max}")
    seen = result["metrics"]["exit_reasons"]
    for reason in expected.exit_reasons:
        if not seen.get(reason):
            problems.append(f"no {reason} exit")
    if expected.funding_paid and not (result["metrics"]["total_funding"] or 0) > 0:
        problems.append("no funding paid")
    return problems


@app.command("suite")
def suite(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Directory of validation Plays (default: plays/validation)."),
    ] = None,
    db: Annotated[Path | None, typer.Option("--db", help="Market store path.")] = None,
) -> None:
    """Run every Play in DIR (bundled data, or synthetic data named in `expected.data`)."""
    from ..engine.backtest import Synthetic, run_backtest
    from ..play import play_files, validate_play
    from ..play.resolve import play_dir

    directory = directory or play_dir("validation")
    files = play_files([directory])
    if not files:
        raise InputError(f"no Play files in {directory}")
    table = Table(title=f"validation suite {directory}")
    for col in ("Play", "trades", "expected", "exit reasons", "pass"):
        table.add_column(col)
    failed = 0
    for f in files:
        compiled = validate_play(f)
        exp = compiled.play.expected
        if exp is None:
            raise InputError(f"{f}: a validation Play needs an `expected:` block")
        syn = exp.data.get("synthetic")
        res = run_backtest(
            f,
            db=db or config.db_path(),
            synthetic=Synthetic(syn["pattern"], int(syn["bars"]), int(syn.get("seed", 1)))
            if syn
            else None,
        )
        problems = check(res.result, exp)
        failed += bool(problems)
        rng = f"{exp.trades_min}..{exp.trades_max if exp.trades_max is not None else ''}"
        want = ", ".join(exp.exit_reasons + (["funding paid"] if exp.funding_paid else []))
        reasons = ", ".join(f"{k} {v}" for k, v in res.result["metrics"]["exit_reasons"].items())
        table.add_row(
            f.stem,
            str(res.result["trades"]),
            f"{rng} {want}".strip(),
            reasons,
            "yes" if not problems else "NO: " + "; ".join(problems),
        )
    console.print(table)
    console.print(f"{len(files) - failed}/{len(files)} validation Plays passed", markup=False)
    if failed:
        raise typer.Exit(1)
