"""`trade exchange …`: check that an exchange account is ready to trade."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import InputError

app = typer.Typer(
    help="Exchange accounts: check keys, clock, modes and balance.", no_args_is_help=True
)
console = Console(highlight=False)


@app.command("check")
def check(
    mode: Annotated[str, typer.Option("--mode", help="demo or live.")],
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Symbol whose filters to show (default BTCUSDT).")
    ] = None,
    play: Annotated[
        str | None, typer.Option("--play", help="Play whose symbol and leverage to check.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the account of a mode: clock, keys, permissions, account type, position mode,
    USDT balance and the symbol's filters. Exit 2 when anything needs fixing."""
    from ..exchange.bybit import BybitRest, load_credentials
    from ..exchange.bybit.check import check_account

    if mode not in ("demo", "live"):
        raise InputError(f"--mode {mode!r}: expected demo or live")
    leverage = None
    if play is not None:
        from ..play import find_play, validate_play

        compiled = validate_play(find_play(play))
        symbol = symbol or compiled.play.symbol
        leverage = float(compiled.play.account.leverage)
    symbol = (symbol or "BTCUSDT").upper()
    creds = load_credentials(mode)
    other_env = "live" if mode == "demo" else "demo"
    try:
        other = load_credentials(other_env)
    except InputError:
        other = None

    async def go():  # type: ignore[no-untyped-def]
        async with BybitRest(environment=mode, credentials=creds) as client:
            return await check_account(client, symbol, leverage, other)

    report = asyncio.run(go())
    if as_json:
        print(json.dumps(report.as_json()))
    else:
        table = Table(title=f"Bybit {mode} account", show_lines=False)
        for col in ("check", "", "detail"):
            table.add_column(col)
        for c in report.checks:
            table.add_row(c.name, "ok" if c.ok else "FIX", c.detail)
        console.print(table)
    if not report.ok:
        raise InputError("\n".join(report.problems))
