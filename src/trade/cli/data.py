"""`trade data …`: import files into the market store and inspect what it holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from .. import config
from ..errors import InputError

app = typer.Typer(help="The local market store: import, status, gaps.", no_args_is_help=True)
console = Console(highlight=False)


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
        str | None, typer.Option("--exchange", help="Source exchange label.")
    ] = None,
) -> None:
    """Validate and import files; all files or none are written."""
    from ..data import MarketStore
    from ..data.files import infer_names, read_funding, read_mark, read_ohlcv

    loaded = []
    for f in files:
        ex, sym, k, t = infer_names(f)
        sym, k, t = symbol or sym, kind or k or ("ohlcv" if tf else None), tf or t
        if sym is None or k is None:
            raise InputError(
                f"{f}: cannot infer symbol/kind from the name; pass --symbol, --tf and --kind"
            )
        if k not in ("ohlcv", "funding", "mark"):
            raise InputError(f"--kind {k!r}: expected ohlcv, funding or mark")
        if k != "funding" and t is None:
            raise InputError(f"{f}: pass --tf for {k} data")
        if k == "ohlcv":
            loaded.append((k, read_ohlcv(f, t, sym), ex or exchange or "import", f))  # type: ignore[arg-type]
        elif k == "mark":
            loaded.append((k, read_mark(f, t, sym), ex or exchange or "import", f))  # type: ignore[arg-type]
        else:
            loaded.append((k, (sym, *read_funding(f)), ex or exchange or "import", f))
    with MarketStore(config.db_path()) as store:
        store.con.execute("BEGIN TRANSACTION")
        try:
            for k, payload, source, _ in loaded:
                if k == "ohlcv":
                    store._insert_ohlcv(payload, None, source)
                elif k == "mark":
                    store._insert_mark(payload, source)
                else:
                    store._insert_funding(*payload, source)
            store.con.execute("COMMIT")
        except BaseException:
            store.con.execute("ROLLBACK")
            raise
    for k, payload, _, f in loaded:
        rows = len(payload) if k != "funding" else len(payload[1])
        console.print(f"imported {rows:,} {k} rows from {f}", markup=False)


@app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Per symbol and timeframe: span, rows and missing bars."""
    from ..data import MarketStore
    from ..report.artifacts import iso

    with MarketStore(config.db_path()) as store:
        store.ensure_sample()
        rows = store.status()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"market store {config.db_path()}")
    for col in ("symbol", "tf", "first", "last", "rows", "missing"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["symbol"],
            r["timeframe"],
            iso(r["first"]),
            iso(r["last"]),
            f"{r['rows']:,}",
            str(r["missing"]),
        )
    console.print(table)


@app.command("gaps")
def gaps(
    symbol: Annotated[str, typer.Option("--symbol")],
    tf: Annotated[str, typer.Option("--tf")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Missing intervals of a stored series (first missing open → last missing open)."""
    from ..data import MarketStore
    from ..report.artifacts import iso
    from ..timeframes import tf_ms

    with MarketStore(config.db_path()) as store:
        bars = store.load_bars(symbol, tf, None, None)
    if len(bars) == 0:
        raise InputError(f"no {symbol} {tf} bars in the store")
    step = tf_ms(tf)
    d = np.diff(bars.ts)
    idx = np.flatnonzero(d != step)
    holes = [(int(bars.ts[i]) + step, int(bars.ts[i + 1]) - step) for i in idx]
    missing = sum((b - a) // step + 1 for a, b in holes)
    if as_json:
        print(
            json.dumps(
                {
                    "symbol": symbol,
                    "timeframe": tf,
                    "missing_bars": missing,
                    "gaps": [{"first": a, "last": b} for a, b in holes],
                }
            )
        )
        return
    for a, b in holes:
        console.print(f"{iso(a)} → {iso(b)}  ({(b - a) // step + 1} bars)", markup=False)
    console.print(f"{len(holes)} gap(s), {missing} missing bar(s)", markup=False)


@app.command("sync")
def sync(
    symbol: Annotated[str, typer.Option("--symbol")],
    tf: Annotated[list[str], typer.Option("--tf", help="Timeframe (repeatable).")],
    start: Annotated[str, typer.Option("--start", help="UTC date/datetime.")],
    end: Annotated[str, typer.Option("--end", help="UTC date/datetime (exclusive).")],
    funding: Annotated[
        bool, typer.Option("--funding/--no-funding", help="Also sync funding.")
    ] = False,
    mark: Annotated[
        bool, typer.Option("--mark/--no-mark", help="Also sync mark-price klines of each --tf.")
    ] = False,
    instruments: Annotated[
        bool, typer.Option("--instruments/--no-instruments", help="Also refresh the instrument's filters.")
    ] = False,
) -> None:
    """Fetch closed bars from Bybit (base URL: $TRADE_BYBIT_REST_URL) into the store."""
    import asyncio

    from rich.progress import Progress

    from ..data import MarketStore
    from ..data.sync import sync_funding, sync_instrument, sync_ohlcv
    from ..engine.backtest import parse_time
    from ..exchange.bybit import BybitRest

    s, e = parse_time(start, "--start"), parse_time(end, "--end")
    if e <= s:
        raise InputError(f"--end {end} must be after --start {start}")

    async def go() -> list[str]:
        lines = []
        async with BybitRest() as client:
            with (
                MarketStore(config.db_path()) as store,
                Progress(console=console, transient=True) as bar,
            ):
                for t in tf:
                    task = bar.add_task(f"{symbol} {t}", total=1)
                    n = await sync_ohlcv(
                        store,
                        client,
                        symbol,
                        t,
                        s,
                        e,
                        lambda i, total, task=task: bar.update(task, completed=i, total=total),
                    )
                    lines.append(f"{symbol} {t}: {n:,} bars written")
                    if mark:
                        n = await sync_ohlcv(store, client, symbol, t, s, e, mark=True)
                        lines.append(f"{symbol} mark {t}: {n:,} bars written")
                if funding:
                    lines.append(
                        f"{symbol} funding: {await sync_funding(store, client, symbol, s, e):,} rows written"
                    )
                if instruments:
                    spec = await sync_instrument(store, client, symbol)
                    lines.append(
                        f"{symbol} instrument: tick {spec.tick_size:g}, qty step {spec.qty_step:g}, "
                        f"min notional {spec.min_notional:g}"
                    )
            lines.append(f"requests retried: {client.retried}")
        return lines

    for line in asyncio.run(go()):
        console.print(line, markup=False)


@app.command("heal")
def heal_cmd(
    symbol: Annotated[str, typer.Option("--symbol")],
    tf: Annotated[list[str], typer.Option("--tf", help="Timeframe (repeatable).")],
) -> None:
    """Fetch exactly the bars missing inside each stored series."""
    from ..data import MarketStore, heal_for_window

    with MarketStore(config.db_path()) as store:
        n = heal_for_window(store, symbol, list(tf), None, None)
    console.print(f"{n:,} missing bars fetched", markup=False)
