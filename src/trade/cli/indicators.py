"""`trade indicators …`: list the indicator library and compute one on an OHLCV file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ..errors import InputError
from ..features.catalog import did_you_mean
from ..features.indicators import INDICATORS, compute_batch, make_incremental
from ..features.registry import default_catalog

app = typer.Typer(help="The indicator library.", no_args_is_help=True)
console = Console(highlight=False)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every indicator: params with defaults and bounds, typed outputs, warmup at the defaults."""
    cat = default_catalog()
    rows = []
    for name in sorted(INDICATORS):
        spec = cat.get(name)
        assert spec is not None
        defaults = spec.resolve_params({})
        rows.append(
            {
                "name": name,
                "params": [
                    {
                        "name": p.name,
                        "type": p.type.__name__,
                        "default": p.default,
                        "min": p.min,
                        "max": p.max,
                        "choices": list(p.choices) if p.choices else None,
                    }
                    for p in spec.params
                ],
                "source": spec.has_source,
                "outputs": [
                    {"name": o.name, "type": o.kind.value} for o in spec.outputs_for(defaults)
                ],
                "warmup": spec.warmup(defaults),
                "doc": spec.doc,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} indicators")
    for col in ("name", "params (defaults)", "outputs", "warmup", "source"):
        table.add_column(col)
    for r in rows:
        params = ", ".join(f"{p['name']}={p['default']}" for p in r["params"])
        outs = ", ".join(f"{o['name']}:{o['type']}" for o in r["outputs"])
        table.add_row(r["name"], params, outs, str(r["warmup"]), "yes" if r["source"] else "")
    console.print(table)


@app.command("compute")
def compute(
    name: Annotated[str, typer.Argument(help="Indicator name.")],
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="OHLCV file: CSV, CSV.gz or Parquet (ts_ms,open,high,low,close,volume)."
        ),
    ],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="name=value (repeatable).")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="close/open/high/low/volume/hl2/hlc3/ohlc4.")
    ] = None,
    incremental: Annotated[
        bool, typer.Option("--incremental", help="Use the bar-by-bar driver.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write CSV here (default stdout).")
    ] = None,
) -> None:
    """Compute one indicator over a file; output has ts_ms plus one column per output."""
    from ..data.files import read_ohlcv

    spec = default_catalog().get(name)
    if spec is None or spec.kind != "indicator":
        raise InputError(
            f"unknown indicator {name!r}{did_you_mean(name, INDICATORS)}; see `trade indicators list`"
        )
    raw = {}
    for item in param or []:
        k, sep, v = item.partition("=")
        if not sep:
            raise InputError(f"--param {item!r}: expected name=value")
        raw[k.strip()] = _number(v.strip())
    try:
        params = spec.resolve_params(raw)
    except ValueError as exc:
        raise InputError(f"--param: {exc}") from None
    if source is not None and not spec.has_source:
        raise InputError(f"--source: {name} reads its own inputs and takes no source")
    if source is not None and source not in (
        "close",
        "open",
        "high",
        "low",
        "volume",
        "hl2",
        "hlc3",
        "ohlc4",
    ):
        raise InputError(
            f"--source {source!r}: expected close, open, high, low, volume, hl2, hlc3 or ohlc4"
        )
    bars = read_ohlcv(data, "1m", "FILE", check_alignment=False)
    src = (source or "close") if spec.has_source else None
    if incremental:
        ind = make_incremental(name, params, src)
        rows = []
        for i in range(len(bars)):
            ind.update(
                bars.open[i],
                bars.high[i],
                bars.low[i],
                bars.close[i],
                bars.volume[i],
                ts=int(bars.ts[i]),
            )
            rows.append(ind.values())
        arr = np.array(rows).reshape(len(bars), len(spec.outputs_for(params)))
        values = {o.name: arr[:, k] for k, o in enumerate(spec.outputs_for(params))}
    else:
        values = compute_batch(name, params, bars, src)
    lines = ["ts_ms," + ",".join(values)]
    cols = list(values.values())
    for i in range(len(bars)):
        lines.append(
            f"{int(bars.ts[i])},"
            + ",".join("" if np.isnan(c[i]) else repr(float(c[i])) for c in cols)
        )
    text = "\n".join(lines) + "\n"
    if out is None:
        print(text, end="")
    else:
        out.write_text(text)
        console.print(f"wrote {len(bars)} rows to {out}", markup=False)


def _number(text: str) -> object:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
