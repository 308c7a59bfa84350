"""`trade runs …`: the backtests kept under runs/ (one directory per run, see docs/artifacts.md),
listed, shown and compared side by side."""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..errors import InputError
from .options import output_name

app = typer.Typer(
    help="List, show and compare the backtests kept under runs/.", no_args_is_help=True
)
console = Console(highlight=False)

RootOpt = Annotated[
    Path, typer.Option("--root", help="Where runs are kept (runs/<play>/<run_id>/).")
]
#: (label, metrics key, format) of the figures compared
FIGURES = (
    ("return %", "total_return_pct", "{:+,.2f}"),
    ("buy & hold %", "buy_and_hold_return_pct", "{:+,.2f}"),
    ("CAGR %", "cagr_pct", "{:+,.2f}"),
    ("max drawdown %", "max_drawdown_pct", "{:,.2f}"),
    ("sharpe", "sharpe", "{:,.2f}"),
    ("sortino", "sortino", "{:,.2f}"),
    ("trades", "trades", "{}"),
    ("win rate %", "win_rate_pct", "{:,.2f}"),
    ("profit factor", "profit_factor", "{:,.2f}"),
    ("expectancy", "expectancy", "{:,.2f}"),
    ("exposure %", "exposure_pct", "{:,.2f}"),
    ("fees", "total_fees", "{:,.2f}"),
    ("final equity", "final_equity", "{:,.2f}"),
)


@dataclass(frozen=True)
class Run:
    path: Path
    result: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"


def _read(path: Path) -> Run:
    file = path / "result.json"
    try:
        result = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{file}: not a readable result ({exc})") from None
    if not isinstance(result, dict) or "metrics" not in result:
        raise InputError(f"{file}: not a backtest result (no metrics)")
    return Run(path, result)


def _all(root: Path) -> list[Run]:
    if not root.is_dir():
        raise InputError(f"--root {root}: no such directory; backtests write runs/ where they run")
    return [_read(p.parent) for p in sorted(root.glob("*/*/result.json"))]


def _find(root: Path, ref: str) -> Run:
    """A run by its directory, by `<play>/<run_id>` under the root, or by a unique part of its id."""
    direct = Path(ref)
    if (direct / "result.json").is_file():
        return _read(direct)
    if (root / ref / "result.json").is_file():
        return _read(root / ref)
    hits = [r for r in _all(root) if ref in r.name]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise InputError(f"run {ref!r}: not found under {root} (trade runs list shows them)")
    names = ", ".join(r.name for r in hits[:5]) + (" …" if len(hits) > 5 else "")
    raise InputError(f"run {ref!r}: {len(hits)} runs match ({names}); give more of the id")


def _fmt(v: Any, pattern: str) -> str:
    return "–" if v is None else pattern.format(v)


@app.command("list")
def list_runs(
    play: Annotated[str | None, typer.Option("--play", help="Only this Play's runs.")] = None,
    root: RootOpt = Path("runs"),
) -> None:
    """One line per run, oldest first: id, symbol, window, trades, return, drawdown, Sharpe."""
    runs = [r for r in _all(root) if play is None or r.result.get("play") == play]
    if not runs:
        console.print(f"no runs under {root}" + (f" for Play {play}" if play else ""), markup=False)
        return
    width = max(len(r.name) for r in runs)
    console.print(
        f"{'run':<{width}}  {'symbol':<8} {'window':<23} {'trades':>6} {'return %':>9} "
        f"{'max dd %':>8} {'sharpe':>7}",
        markup=False,
        soft_wrap=True,
    )
    for r in runs:
        res, m = r.result, r.result["metrics"]
        window = f"{res['window']['start'][:10]} → {res['window']['end'][:10]}"
        console.print(
            f"{r.name:<{width}}  {res['symbol']:<8} {window:<23} {res['trades']:>6} "
            f"{_fmt(m.get('total_return_pct'), '{:+,.2f}'):>9} "
            f"{_fmt(m.get('max_drawdown_pct'), '{:,.2f}'):>8} {_fmt(m.get('sharpe'), '{:,.2f}'):>7}",
            markup=False,
            soft_wrap=True,
        )


@app.command("show")
def show(
    run: Annotated[str, typer.Argument(help="Run directory, <play>/<run_id>, or part of an id.")],
    root: RootOpt = Path("runs"),
) -> None:
    """The run's summary (as `backtest run` printed it) and the command that made it."""
    from .backtest import summary

    r = _find(root, run)
    summary(r.result, r.path)
    command = (r.result.get("provenance") or {}).get("command")
    if command:
        console.print("command: " + " ".join(command), markup=False, soft_wrap=True)


@app.command("compare")
def compare(
    runs: Annotated[list[str], typer.Argument(help="Two or more runs (as for show).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="HTML page (default <root>/compare-<time>.html)."),
    ] = None,
    root: RootOpt = Path("runs"),
) -> None:
    """Metrics side by side, and an HTML page with the equity curves overlaid."""
    if len(runs) < 2:
        raise InputError("compare: give two or more runs")
    found = [_find(root, ref) for ref in runs]
    for i, r in enumerate(found, 1):
        console.print(f"[{i}] {r.name}", markup=False, soft_wrap=True)
    head = f"{'':<15}" + "".join(f"{f'[{i}]':>14}" for i in range(1, len(found) + 1))
    console.print(head, markup=False, soft_wrap=True)
    for label, key, pattern in FIGURES:
        cells = "".join(f"{_fmt(r.result['metrics'].get(key), pattern):>14}" for r in found)
        console.print(f"{label:<15}{cells}", markup=False, soft_wrap=True)
    if out is None:
        out = root / f"{output_name('compare')}.html"
    out.write_text(_page(found))
    console.print(f"equity curves: {out}", markup=False, soft_wrap=True)


def _equity(path: Path) -> list[dict[str, Any]]:
    """equity.csv as chart points (whole seconds, the last point of each second)."""
    points: dict[int, float] = {}
    file = path / "equity.csv"
    if not file.is_file():
        raise InputError(f"{file}: missing; a run directory keeps its equity curve")
    for line in file.read_text().splitlines()[1:]:
        time, equity, _ = line.split(",")
        stamp = dt.datetime.fromisoformat(time.replace("Z", "+00:00"))
        points[int(stamp.timestamp())] = float(equity)
    return [{"time": t, "value": v} for t, v in sorted(points.items())]


def _page(runs: list[Run]) -> str:
    from ..report.html import VENDOR

    colors = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#5d4037"]
    series = [
        {
            "name": f"[{i}] {r.name}",
            "color": colors[(i - 1) % len(colors)],
            "points": _equity(r.path),
        }
        for i, r in enumerate(runs, 1)
    ]
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f"<td>{_fmt(r.result['metrics'].get(key), pattern)}</td>" for r in runs)
        + "</tr>"
        for label, key, pattern in FIGURES
    )
    heads = "".join(f"<th>[{i}] {html.escape(r.name)}</th>" for i, r in enumerate(runs, 1))
    data = json.dumps(series, separators=(",", ":")).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>trade runs compare</title>
<style>
body{{font-family:system-ui,sans-serif;margin:20px;color:#222;background:#fafafa}}
table{{border-collapse:collapse;font-size:13px}} td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}}
th{{background:#eee}} #equity{{height:460px;background:#fff;border:1px solid #ddd;margin-bottom:16px}}
</style></head><body>
<h1>Runs compared</h1>
<div id="equity"></div>
<table id="compare"><tr><th></th>{heads}</tr>{rows}</table>
<script>{VENDOR.read_text(encoding="utf-8")}</script>
<script id="compare-data" type="application/json">{data}</script>
<script>
(function () {{
  var LC = LightweightCharts;
  var runs = JSON.parse(document.getElementById("compare-data").textContent);
  var chart = LC.createChart(document.getElementById("equity"), {{ autoSize: true,
    timeScale: {{ timeVisible: true }}, layout: {{ background: {{ color: "#ffffff" }} }} }});
  var series = runs.map(function (r) {{
    var s = chart.addSeries(LC.LineSeries, {{ color: r.color, lineWidth: 2, title: r.name, priceLineVisible: false }});
    s.setData(r.points);
    return s;
  }});
  chart.timeScale().fitContent();
  window.compare = {{ chart: chart, series: series }};
}})();
</script>
</body></html>
"""
