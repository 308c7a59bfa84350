"""`trade backtest audit-toolkit` and `audit-incremental-parity`: indicator self-checks."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the feature audit commands to the `backtest` command group."""
