"""`trade play …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="play commands.", no_args_is_help=True)
