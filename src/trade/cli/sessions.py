"""`trade play run | sessions | diff`: trade a Play (paper, demo, live) and look back at sessions."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..errors import InputError

console = Console(highlight=False)


def run(
    play: Annotated[
        str | None,
        typer.Option("--play", help="Play name or path (a resumed session: its own by default)."),
    ] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="paper, demo or live (default paper).")
    ] = None,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Required for --mode live: real money.")
    ] = False,
    session: Annotated[
        str | None,
        typer.Option(
            "--session",
            help="Session name (default: Play-symbol-mode-time); resumes an existing one.",
        ),
    ] = None,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Trade this symbol instead of the Play's.")
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No live panel: one line per evaluation instead.")
    ] = False,
    accept_play_change: Annotated[
        bool,
        typer.Option(
            "--accept-play-change", help="Resume a session whose Play file changed (journaled)."
        ),
    ] = False,
    on_foreign: Annotated[
        str | None,
        typer.Option(
            "--on-foreign",
            help="halt (default) or adopt: a position or orders on the symbol this session did "
            "not create (demo and live; recorded in the session).",
        ),
    ] = None,
) -> None:
    """Trade a Play on live market data until Ctrl-C or SIGTERM (resting entries are cancelled,
    an open position keeps its exchange-resident stop). Every session is recorded under
    ~/.trade/sessions/ for `trade play diff`; `--session NAME` of an existing session resumes it."""
    from ..live import lock
    from ..live.launch import plan_session

    plan = plan_session(
        play, mode, symbol=symbol, session=session, confirm=confirm,
        accept_play_change=accept_play_change, on_foreign=on_foreign,
    )  # fmt: skip
    key = plan.credentials.api_key if plan.credentials else None
    keys = lock.lock_keys(plan.name, plan.mode, plan.environment, plan.symbol, key)
    with lock.hold(keys, plan.name):
        _run(plan, quiet)


def _run(plan, quiet: bool) -> None:  # type: ignore[no-untyped-def]
    from ..live.launch import open_record, run_session
    from ..live.panel import render

    record = open_record(plan)
    console.print(
        f"session {plan.name}: {plan.compiled.play.name} on {plan.symbol}, {plan.mode} mode "
        f"({'resumed from' if plan.resume else 'recorded in'} {record.path})",
        markup=False,
    )
    if quiet or not console.is_terminal:
        last = [None]

        def line(s):  # type: ignore[no-untyped-def]
            if s.last_instant != last[0]:
                last[0] = s.last_instant
                b = s.broker
                console.print(
                    f"{_iso(s.last_instant)}  position {b.side} {b.qty:g}  stop {_n(b.stop)}  "
                    f"target {_n(b.target)}  equity {b.equity:,.2f}  decisions {s.decisions}",
                    markup=False,
                )

        asyncio.run(run_session(plan, record, on_update=line))
    else:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            asyncio.run(run_session(plan, record, on_update=lambda s: live.update(render(s))))
    record.close()
    console.print(f"session {plan.name} stopped; `trade play diff {plan.name}` replays it")


def sessions(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List recorded sessions (newest last)."""
    from ..live.session import list_sessions, sessions_dir

    rows = list(list_sessions())
    if as_json:
        print(json.dumps([_session_json(s) for s in rows]))
        return
    if not rows:
        console.print(f"no sessions in {sessions_dir()}", markup=False)
        return
    table = Table(title=f"sessions in {sessions_dir()}")
    for col in ("session", "mode", "play", "symbol", "created", "last bar", "decisions", "trades"):
        table.add_column(col)
    for s in rows:
        table.add_row(
            s.name, s.meta.get("mode", ""), s.meta.get("play", ""), s.meta.get("symbol", ""),
            s.meta.get("created", ""), _iso(s.last_bar_ms), str(s.decisions), str(s.trades),
        )  # fmt: skip
    console.print(table)


def diff(
    session: Annotated[str, typer.Argument(help="Session name (see `trade play sessions`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Replay a session's recorded bars: every decision must be reproduced (exit 1 otherwise);
    for demo and live, each trade's live fill against the simulated fill on the same bars."""
    from ..live.diff import diff_session
    from ..live.session import SessionRecord, session_path

    path = session_path(session)
    if not path.exists():
        raise InputError(f"no session {session!r} ({path}); `trade play sessions` lists them")
    with SessionRecord(path, readonly=True) as rec:
        report = diff_session(rec)
    if as_json:
        print(json.dumps(report.as_json()))
    else:
        verdict = "every decision reproduced" if report.reproduced else "DECISIONS DIFFER"
        console.print(
            f"{report.session} ({report.mode}): {report.decisions_live} decisions live, "
            f"{report.decisions_replayed} replayed: {verdict}",
            markup=False,
        )
        for title, rows in (("only live", report.missing), ("only in replay", report.extra)):
            for t, kind, side, pct, block in rows:
                console.print(f"  {title}: {_iso(t)} {kind} {side} {pct:g}% ({block})")
        if report.trades and report.mode != "paper":
            table = Table(title="live fills against simulated fills on the same bars")
            for col in ("entry", "side", "entry gap bps", "latency ms", "exit gap bps",
                        "exit reason", "pnl gap"):  # fmt: skip
                table.add_column(col)
            for g in report.trades:
                table.add_row(
                    _iso(g["entry_time"]), g["side"], f"{g['entry_gap_bps']:.2f}",
                    str(g["entry_latency_ms"]), f"{g['exit_gap_bps']:.2f}",
                    g["exit_reason_live"], f"{g['pnl_gap']:.4f}",
                )  # fmt: skip
            console.print(table)
    if not report.reproduced:
        raise typer.Exit(1)


def status(
    session: Annotated[
        str | None, typer.Argument(help="Session name (default: every session).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What sessions are doing, read from their records (never disturbs a running session):
    state, mode, position, stop, orders, equity, today's PnL, guards, last bar, stream health."""
    from ..live.control import all_statuses, session_status

    rows = [session_status(session)] if session else all_statuses()
    if as_json:
        print(json.dumps(rows[0] if session else rows))
        return
    if not rows:
        console.print("no sessions", markup=False)
    for st in rows:
        pos = st.get("side", "-")
        if pos not in ("flat", "-"):
            pos = f"{pos} {st['qty']:g} @ {_n(st.get('entry_price'))}"
        streams = st.get("streams") or {}
        bar = st.get("last_bar") or {}
        guards = ", ".join(f"{k} {v}" for k, v in (st.get("guards") or {}).items()) or "-"
        console.print(
            f"{st['name']} [{st['state']}] {st.get('mode')} {st.get('play')} {st.get('symbol')}\n"
            f"  position {pos}  stop {_n(st.get('stop'))}  target {_n(st.get('target'))}  "
            f"orders {len(st.get('open_orders') or [])}\n"
            f"  equity {_n(st.get('equity'))}  today {_n(st.get('day_pnl'))}  "
            f"halted {st.get('halted') or 'no'}  guards {guards}\n"
            f"  last bar {bar.get('tf', '-')} {_iso(bar.get('start'))} close {_n(bar.get('close'))}"
            f"  streams public {streams.get('public', '-')} private "
            f"{streams.get('private') or '-'}",
            markup=False,
        )


def stop(
    session: Annotated[str, typer.Argument(help="Session name (see `trade play status`).")],
    flatten: Annotated[
        bool, typer.Option("--flatten", help="Close the open position too (reduce-only market).")
    ] = False,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the session to stop.")
    ] = 60.0,
) -> None:
    """Stop a running session from another terminal, as SIGTERM does: resting entries
    cancelled, the position keeps its stop; `--flatten` closes the position first."""
    from ..live.control import stop_session

    st = stop_session(session, flatten=flatten, wait_s=wait)
    console.print(
        f"session {session} stopped: position {st.get('side', '-')}"
        f" {st.get('qty', 0):g}, stop {_n(st.get('stop'))}",
        markup=False,
    )


def _session_json(s) -> dict:  # type: ignore[no-untyped-def]
    keep = ("mode", "play", "symbol", "created", "environment", "start_ms", "last_instant")
    return {
        "name": s.name,
        "path": str(s.path),
        **{k: s.meta[k] for k in keep if k in s.meta},
        "last_bar_ms": s.last_bar_ms,
        "decisions": s.decisions,
        "trades": s.trades,
    }


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _n(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"
