"""`trade data …`: import files into the market store, sync it from Bybit, find and heal gaps, and
show what it holds. Library errors surface as one-line messages (exit 2 for bad input)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .. import config
from ..errors import InputError

app = typer.Typer(
    help="The local market store: import, sync, gaps, heal, status.", no_args_is_help=True
)
console = Console(highlight=False, soft_wrap=True)


def parse_utc(text: str, flag: str) -> int:
    """`2025-06-01`, `2025-06-01T12:00`, `2025-06-01 12:00:00` (UTC unless an offset is given)
    → epoch ms."""
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{flag} {text!r}: expected a UTC date or datetime such as 2025-06-01 or 2025-06-01T12:00"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def _window(start: str | None, end: str | None) -> tuple[int | None, int | None]:
    s = None if start is None else parse_utc(start, "--start")
    e = None if end is None else parse_utc(end, "--end")
    if s is not None and e is not None and e <= s:
        raise InputError(f"--end {end} must be after --start {start}")
    return s, e


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="CSV, CSV.gz or Parquet files.")],
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Symbol (default: from the file name).")
    ] = None,
    tf: Annotated[
        str | None, typer.Option("--tf", help="Timeframe (default: from the file name).")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="ohlcv, funding or mark (default: from the file name)."),
    ] = None,
    exchange: Annotated[
        str | None,
        typer.Option("--exchange", help="Source exchange label (default: from the file name)."),
    ] = None,
) -> None:
    """Validate every file, then import them all in one transaction (all or nothing)."""
    from ..data.imports import import_files, read_import

    loaded = [read_import(f, symbol=symbol, tf=tf, kind=kind, exchange=exchange) for f in files]
    import_files(config.db_path(), loaded)
    for item in loaded:
        console.print(
            f"imported {item.rows:,} {item.kind} rows from {item.path}",
            markup=False,
            soft_wrap=True,
        )


@app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Per symbol and series: source, span, rows, gaps and missing bars."""
    from ..data import open_reader

    with open_reader() as store:
        rows = store.status()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"market store {config.db_path()}")
    cols = (
        "symbol",
        "kind",
        "tf",
        "source",
        "first (UTC)",
        "last (UTC)",
        "rows",
        "gaps",
        "missing",
    )
    for col in cols:
        table.add_column(col, justify="right" if col in ("rows", "gaps", "missing") else "left")
    for r in rows:
        table.add_row(
            r["symbol"],
            r["kind"],
            r["timeframe"],
            r["source"] or "",
            _iso(r["first"]),
            _iso(r["last"]),
            f"{r['rows']:,}",
            "" if r["gaps"] is None else str(r["gaps"]),
            "" if r["missing"] is None else f"{r['missing']:,}",
        )
    console.print(table)


@app.command("gaps")
def gaps(
    symbol: Annotated[str, typer.Option("--symbol")],
    tf: Annotated[str, typer.Option("--tf")],
    start: Annotated[
        str | None, typer.Option("--start", help="Also count a missing head from here.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Also count a missing tail up to here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Missing intervals of a stored series (first missing open → last missing open)."""
    from ..data import missing_ranges, open_reader
    from ..data.gaps import count_missing
    from ..timeframes import canonical, tf_ms

    tf = canonical(tf)
    s, e = _window(start, end)
    with open_reader(sample=False) as store:
        ts = store.stored_times("ohlcv", symbol, tf, s, e)
    if len(ts) == 0 and (s is None or e is None):
        raise InputError(f"no {symbol} {tf} bars in the store; import or sync them first")
    holes = missing_ranges(ts, tf, s, e)
    step, missing = tf_ms(tf), count_missing(holes, tf)
    if as_json:
        report: dict[str, Any] = {
            "symbol": symbol,
            "timeframe": tf,
            "missing_bars": missing,
            "gaps": [{"first": a, "last": b, "bars": (b - a) // step + 1} for a, b in holes],
        }
        print(json.dumps(report))
        return
    for a, b in holes:
        console.print(f"{_iso(a)} → {_iso(b)}  ({(b - a) // step + 1} bars)", markup=False)
    console.print(f"{len(holes)} gap(s), {missing} missing bar(s)", markup=False)


@app.command("delete")
def delete(
    symbol: Annotated[str, typer.Option("--symbol")],
    tf: Annotated[str | None, typer.Option("--tf", help="Timeframe (ohlcv and mark).")] = None,
    kind: Annotated[str, typer.Option("--kind", help="ohlcv, mark or funding.")] = "ohlcv",
    start: Annotated[str | None, typer.Option("--start", help="First open time deleted.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="End of the window, exclusive.")] = None,
    confirm: Annotated[bool, typer.Option("--confirm", help="Really delete.")] = False,
) -> None:
    """Delete a stored series (or its [start, end) window); without --confirm only say how much."""
    from ..data import MarketStore, open_reader
    from ..data.imports import KINDS
    from ..timeframes import canonical

    if kind not in KINDS:
        raise InputError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    if kind != "funding" and tf is None:
        raise InputError(f"--tf is required to delete {kind} rows")
    s, e = _window(start, end)
    what = f"{symbol} {kind}" if kind == "funding" else f"{symbol} {canonical(str(tf))} {kind}"
    span = f" from {start or 'the first'} to {end or 'the last'}"
    if not confirm:
        with open_reader(sample=False) as store:
            n = store.delete_range(kind, symbol, tf, s, e, dry_run=True)
        raise InputError(f"would delete {n:,} {what} rows{span}; add --confirm to delete them")
    with MarketStore(config.db_path()) as store:
        n = store.delete_range(kind, symbol, tf, s, e)
    console.print(f"deleted {n:,} {what} rows{span}", markup=False)


@app.command("sync")
def sync(
    symbol: Annotated[str, typer.Option("--symbol")],
    tf: Annotated[list[str], typer.Option("--tf", help="Timeframe (repeatable).")],
    start: Annotated[str, typer.Option("--start", help="UTC date/datetime.")],
    end: Annotated[str, typer.Option("--end", help="UTC date/datetime (exclusive).")],
    funding: Annotated[
        bool, typer.Option("--funding/--no-funding", help="Also sync funding settlements.")
    ] = True,
    mark: Annotated[
        bool,
        typer.Option(
            "--mark/--no-mark",
            help="Also sync mark-price klines: 1m (the backtest's mark) and each --tf.",
        ),
    ] = True,
    instruments: Annotated[
        bool,
        typer.Option("--instruments/--no-instruments", help="Also refresh the instrument specs."),
    ] = True,
) -> None:
    """Fetch closed bars from Bybit (base URL: $TRADE_BYBIT_REST_URL) into the store."""
    from ..data import MarketStore
    from ..data.sync import sync_funding, sync_instrument, sync_ohlcv
    from ..exchange.bybit import BybitRest
    from ..timeframes import canonical

    s, e = _window(start, end)
    assert s is not None and e is not None
    tfs = [canonical(t) for t in tf]

    async def go() -> list[str]:
        lines = []
        async with BybitRest() as client:
            await client.sync_time()  # bars still open by the exchange's clock are never stored
            with MarketStore(config.db_path()) as store, _progress() as bar:
                jobs: list[tuple[str, bool]] = [(t, False) for t in tfs]
                jobs += [(t, True) for t in dict.fromkeys(["1m", *tfs])] if mark else []
                for t, is_mark in jobs:
                    label = f"{symbol} {'mark ' if is_mark else ''}{t}"
                    task = bar.add_task(label, total=None)
                    n = await sync_ohlcv(
                        store,
                        client,
                        symbol,
                        t,
                        s,
                        e,
                        lambda i, total, task=task: bar.update(task, completed=i, total=total),
                        mark=is_mark,
                    )
                    lines.append(f"{label}: {n:,} bars written")
                if funding:
                    n = await sync_funding(store, client, symbol, s, e)
                    lines.append(f"{symbol} funding: {n:,} rows written")
                if instruments:
                    spec = await sync_instrument(store, client, symbol)
                    lines.append(
                        f"{symbol} instrument: tick {spec.tick_size:g}, qty step {spec.qty_step:g}, "
                        f"min notional {spec.min_notional:g}, max leverage {spec.max_leverage:g}"
                    )
            lines.append(f"requests retried: {client.retried}")
        return lines

    for line in asyncio.run(go()):
        console.print(line, markup=False)


@app.command("heal")
def heal_cmd(
    symbol: Annotated[str, typer.Option("--symbol")],
    tf: Annotated[list[str], typer.Option("--tf", help="Timeframe (repeatable).")],
    start: Annotated[
        str | None, typer.Option("--start", help="Also fetch a missing head from here.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Also fetch a missing tail up to here.")
    ] = None,
) -> None:
    """Fetch exactly the bars missing inside each stored series (or the given window)."""
    from ..data import MarketStore
    from ..data.sync import heal
    from ..exchange.bybit import BybitRest
    from ..timeframes import canonical

    s, e = _window(start, end)

    async def go(store: MarketStore, bar: Progress) -> int:
        total = 0
        async with BybitRest() as client:
            await client.sync_time()
            for t in tf:
                task = bar.add_task(f"heal {symbol} {canonical(t)}", total=None)
                update: Callable[[int, int], None] = lambda i, n, task=task: bar.update(  # noqa: E731
                    task, completed=i, total=n
                )
                total += await heal(store, client, symbol, canonical(t), s, e, update)
        return total

    with MarketStore(config.db_path()) as store, _progress() as bar:
        n = asyncio.run(go(store, bar))
    console.print(f"{n:,} missing bars fetched", markup=False)
