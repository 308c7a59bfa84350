"""`trade backtest audit-toolkit` and `audit-incremental-parity`: indicator self-checks."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ..data.bars import Bars
from ..features.indicators import INDICATORS, compute_batch, make_incremental
from ..features.registry import default_catalog

console = Console(highlight=False)


def sample_bars(n: int, seed: int) -> Bars:
    """A deterministic random walk with flat stretches, zero volume and jumps (no files needed)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 0.004, n)
    steps[rng.random(n) < 0.01] *= 10  # jumps
    close = 100 * np.exp(np.cumsum(steps))
    flat = rng.random(n) < 0.03
    close[1:][flat[1:]] = close[:-1][flat[1:]]
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0, 0.002, (2, n)))
    high = np.maximum(open_, close) * (1 + wick[0] * ~flat)
    low = np.minimum(open_, close) * (1 - wick[1] * ~flat)
    vol = np.where(rng.random(n) < 0.05, 0.0, rng.gamma(2, 100, n))
    ts = 1_735_689_600_000 + np.arange(n, dtype=np.int64) * 900_000
    return Bars.from_arrays("SAMPLE", "15m", ts, open_, high, low, close, vol)


def register(app: typer.Typer) -> None:
    """Attach the feature audit commands to the `backtest` command group."""

    @app.command("audit-toolkit")
    def audit_toolkit(
        bars: Annotated[int, typer.Option("--bars", help="Sample bars.")] = 3000,
        seed: Annotated[int, typer.Option("--seed")] = 7,
    ) -> None:
        """Every indicator produces exactly its declared outputs, valid after its warmup."""
        data = sample_bars(bars, seed)
        cat = default_catalog()
        problems = []
        for name in sorted(INDICATORS):
            spec = cat.get(name)
            assert spec is not None
            params = spec.resolve_params({})
            declared = [o.name for o in spec.outputs_for(params)]
            out = compute_batch(name, params, data, "close" if spec.has_source else None)
            if list(out) != declared:
                problems.append(f"{name}: outputs {list(out)} != declared {declared}")
                continue
            w = spec.warmup(params)
            for k, arr in out.items():
                if len(arr) != len(data):
                    problems.append(f"{name}.{k}: {len(arr)} values for {len(data)} bars")
                elif name not in ("psar", "supertrend") and np.isnan(arr[w:]).any():
                    problems.append(f"{name}.{k}: NaN after the declared warmup of {w} bars")
        for p in problems:
            console.print(f"FAIL {p}", markup=False)
        if problems:
            raise typer.Exit(1)
        console.print(
            f"ok: {len(INDICATORS)} indicators produce exactly their declared outputs", markup=False
        )

    @app.command("audit-incremental-parity")
    def audit_incremental_parity(
        bars: Annotated[int, typer.Option("--bars", help="Sample bars.")] = 2000,
        seed: Annotated[int, typer.Option("--seed")] = 7,
        tolerance: Annotated[
            float, typer.Option("--tolerance", help="Max relative difference.")
        ] = 1e-9,
    ) -> None:
        """Batch vs incremental, per indicator: max abs and rel difference."""
        data = sample_bars(bars, seed)
        cat = default_catalog()
        table = Table(title=f"batch vs incremental over {bars} bars (seed {seed})")
        for col in ("indicator", "max abs diff", "max rel diff", "NaN mismatch", "ok"):
            table.add_column(col)
        failed = 0
        for name in sorted(INDICATORS):
            spec = cat.get(name)
            assert spec is not None
            params = spec.resolve_params({})
            src = "close" if spec.has_source else None
            batch = compute_batch(name, params, data, src)
            ind = make_incremental(name, params, src)
            rows = []
            for i in range(len(data)):
                ind.update(
                    data.open[i],
                    data.high[i],
                    data.low[i],
                    data.close[i],
                    data.volume[i],
                    ts=int(data.ts[i]),
                )
                rows.append(ind.values())
            inc = np.array(rows)
            mabs = mrel = 0.0
            nan_mismatch = 0
            for k, a in enumerate(batch.values()):
                b = inc[:, k]
                nan_mismatch += int((np.isnan(a) != np.isnan(b)).sum())
                ok = ~np.isnan(a) & ~np.isnan(b)
                if ok.any():
                    d = np.abs(a[ok] - b[ok])
                    mabs = max(mabs, float(d.max()))
                    mrel = max(mrel, float((d / np.maximum(np.abs(a[ok]), 1e-12)).max()))
            good = mrel <= tolerance and nan_mismatch == 0
            failed += not good
            table.add_row(
                name, f"{mabs:.3g}", f"{mrel:.3g}", str(nan_mismatch), "yes" if good else "NO"
            )
        console.print(table)
        if failed:
            console.print(f"{failed} indicator(s) above tolerance {tolerance}", markup=False)
            raise typer.Exit(1)
