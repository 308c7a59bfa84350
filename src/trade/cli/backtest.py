"""`trade backtest …` commands."""

from __future__ import annotations

import typer

from . import feature_audits

app = typer.Typer(
    help="Run backtests and the audits that make them trustworthy.", no_args_is_help=True
)
feature_audits.register(app)
