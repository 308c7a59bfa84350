"""Entry point of the `trade` command: global options, sub-commands, error → exit code mapping.

Library errors (`trade.errors`) become one line on stderr and exit code 2 (bad input) or 1
(internal); a traceback is never shown for an input problem.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .. import __version__, config
from ..errors import InputError, TradeError
from . import backtest, dashboard, data, exchange, indicators, panic, play, runs, sweep, validate

app = typer.Typer(
    name="trade",
    help="Backtest and trade USDT-margined perpetual futures from YAML Plays.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(play.app, name="play")
app.add_typer(indicators.app, name="indicators")
app.add_typer(data.app, name="data")
app.add_typer(backtest.app, name="backtest")
app.add_typer(runs.app, name="runs")
app.add_typer(validate.app, name="validate")
app.add_typer(exchange.app, name="exchange")
app.command("sweep")(sweep.sweep)
app.command("walkforward")(sweep.walkforward)
app.command("panic")(panic.panic)
app.command("dashboard")(dashboard.dashboard)

err_console = Console(stderr=True, highlight=False)


def _version(value: bool) -> None:
    if value:
        print(f"trade {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Market store (default $TRADE_DB or ~/.trade/market.duckdb)."),
    ] = None,
    smoke: Annotated[
        str | None, typer.Option("--smoke", help="Run the offline self-check: quick or full.")
    ] = None,
) -> None:
    """Backtest and trade USDT-margined perpetual futures from YAML Plays."""
    config.set_db_path(db)
    if smoke is not None:
        if smoke not in ("quick", "full"):
            raise InputError(f"--smoke {smoke!r}: expected quick or full")
        from .smoke import run_smoke

        raise typer.Exit(run_smoke(smoke))
    if ctx.invoked_subcommand is None:
        print(ctx.get_help())
        raise typer.Exit(0)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (used by the console script and `trade_cli.py`)."""
    from ..gcpause import gc_paused_while_compiling
    from ..jitnotice import compile_notice

    config.set_command_line(["trade", *(sys.argv[1:] if argv is None else argv)])
    try:
        with (
            compile_notice(lambda msg: err_console.print(msg, markup=False)),
            gc_paused_while_compiling(),
        ):
            code = _command()(args=argv, prog_name="trade", standalone_mode=False)
    except TradeError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            err_console.print(f"error: {line}", markup=False, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except _USAGE_ERRORS as exc:  # bad flag or value: click's own message, exit 2
        exc.show()
        return exc.exit_code
    # without standalone mode click returns the code of a `typer.Exit` instead of raising it
    return code if isinstance(code, int) else 0


_VALUE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "Path": "PATH", "path": "PATH"}


def _type_in_help(self, ctx):  # type: ignore[no-untyped-def]
    """Help shows click-style value names (TEXT, INTEGER, PATH…, `…` when repeated) and nothing
    for a flag, where typer would print Python annotations such as `<bool>` or `<list[str]>`."""
    if getattr(self, "is_flag", False):
        return None
    if self.metavar:
        return self.metavar
    label = self.display_type(ctx).strip("<>")
    repeated = label.startswith("list[")
    label = label[5:-1] if repeated else label
    name = _VALUE_NAMES.get(label, label.upper())
    return f"{name}…" if repeated or self.nargs != 1 else name


typer.core.TyperOption.display_type_rich = _type_in_help  # type: ignore[method-assign]
typer.core.TyperArgument.display_type_rich = _type_in_help  # type: ignore[method-assign]


@functools.cache
def _command() -> Any:
    """The click command behind `app`, built once: typer rebuilds it on every call otherwise,
    which is half the cost of a quick command run in-process (tests, fuzzing)."""
    return typer.main.get_command(app)


# typer vendors click in recent releases; its exception base is not re-exported publicly.
try:
    from typer._click.exceptions import ClickException as _ClickException
except ImportError:  # older typer on top of click
    from click.exceptions import ClickException as _ClickException

_USAGE_ERRORS = (_ClickException,)


def entry() -> None:
    sys.exit(run())


if __name__ == "__main__":
    entry()
