"""`trade panic`: cancel every order and close every position on the account, then a kill switch."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer
from rich.console import Console

from .. import logs
from ..errors import InputError

console = Console(highlight=False)


def panic(
    mode: Annotated[
        str | None, typer.Option("--mode", help="demo or live: whose account to flatten.")
    ] = None,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Required: this cancels and closes everything.")
    ] = False,
    reset: Annotated[
        bool, typer.Option("--reset", help="Remove the kill switch (sessions may start again).")
    ] = False,
) -> None:
    """Cancel every order and close every position on the account's USDT perpetuals with
    reduce-only market orders, retrying through rate limits and errors; then keep a kill switch
    on that refuses `trade play run` until `trade panic --reset`. Exit 1 if anything is left."""
    from ..exchange.bybit import BybitRest, load_credentials
    from ..live.panic import (
        kill_switch_path,
        reset_kill_switch,
        set_kill_switch,
        stop_running_sessions,
    )
    from ..live.panic import (
        panic as flatten_account,
    )

    if reset:
        if mode is not None or confirm:
            raise InputError("--reset takes no other option")
        removed = reset_kill_switch()
        console.print(
            f"kill switch {'removed' if removed else 'was not set'} ({kill_switch_path()})",
            markup=False,
        )
        return
    if mode not in ("demo", "live"):
        raise InputError(f"--mode {mode!r}: expected demo or live")
    if not confirm:
        raise InputError(
            f"trade panic cancels every order and closes every position on the {mode} account: "
            "add --confirm"
        )
    creds = load_credentials(mode)
    path = set_kill_switch(mode)
    console.print(f"kill switch on ({path}): no session starts until `trade panic --reset`")
    stopped = stop_running_sessions(mode)
    if stopped:
        console.print(f"stopped running {mode} sessions: {', '.join(stopped)}", markup=False)

    async def go():  # type: ignore[no-untyped-def]
        async with BybitRest(environment=mode, credentials=creds) as rest:
            return await flatten_account(rest)

    report = asyncio.run(go())
    logs.setup()
    logs.log(
        logging.WARNING, f"trade panic --mode {mode}", mode=mode, closes=report.closes,
        cancelled=len(report.cancelled), errors=report.errors, flat=report.flat,
        positions_left=report.positions_left, orders_left=report.orders_left,
    )  # fmt: skip
    for c in report.closes:
        console.print(
            f"closed {c['symbol']} {c['side']} {c['qty']:g} (reduce-only market {c['link_id']})",
            markup=False,
        )
    console.print(f"cancelled {len(report.cancelled)} order(s)", markup=False)
    for e in report.errors:
        console.print(f"retried after: {e}", markup=False)
    if not report.flat:
        console.print(
            f"NOT FLAT: positions {report.positions_left or '-'}, orders {report.orders_left or '-'}",
            markup=False,
        )
        raise typer.Exit(1)
    console.print(f"{mode} account flat: no open position, no open order", markup=False)
