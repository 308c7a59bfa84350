"""sweep.html: one self-contained page per sweep or walk-forward (no network, no external files).

Read from the directory's own files (sweep.json, sweep.csv, walkforward.json), so a resumed sweep
draws all its rows. Heatmaps of the objective over every pair of swept variables (the best over
the others), the objective against the trial number and, for a walk-forward, the folds and the
stitched out-of-sample equity. Charts use the Lightweight Charts build report.html inlines.
"""

from __future__ import annotations

import csv
import html
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..report.html import VENDOR
from .jobs import bankrupt
from .table import TABLE, write_atomic

PAGE = "sweep.html"


def write_sweep_report(out: Path) -> Path:
    """Write `out/sweep.html` from a sweep's own files (sweep.json, sweep.csv)."""
    return write_page(out, json.loads((out / "sweep.json").read_text()), out / TABLE, None)


def write_page(out: Path, summary: Mapping[str, Any], rows_csv: Path, wf: Any) -> Path:
    """sweep.html from a summary, a sweep table (a walk-forward: its last fold's) and the
    walk-forward's folds and stitched equity (None for a sweep)."""
    with rows_csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    path = out / PAGE
    write_atomic(path, render(summary, rows, wf).encode())
    return path


def _num(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def render(summary: Mapping[str, Any], rows: Sequence[Mapping[str, str]], wf: Any) -> str:
    objective = summary.get("objective", "sharpe")
    minimise = objective in (
        "max_drawdown_pct",
        "max_drawdown_abs",
        "max_drawdown_duration_bars",
        "total_fees",
    )
    names = list(summary.get("space", {}))
    per_trial: dict[int, list[float | None]] = {}
    values_of: dict[int, dict[str, str]] = {}
    for r in rows:
        i = int(r["trial"])
        ruined = bankrupt(_num(r.get("max_drawdown_pct")))  # no objective, as in the sweep
        per_trial.setdefault(i, []).append(None if ruined else _num(r.get(objective)))
        values_of[i] = {n: r[n] for n in names}
    agg = {
        i: (None if any(v is None for v in vs) else sum(vs) / len(vs))  # type: ignore[arg-type]
        for i, vs in per_trial.items()
    }
    trials = sorted(agg)
    best_so_far: list[float | None] = []
    best: float | None = None
    for i in trials:
        v = agg[i]
        if v is not None and (best is None or (v < best if minimise else v > best)):
            best = v
        best_so_far.append(best)
    data = {
        "trials": trials,
        "objective": [agg[i] for i in trials],
        "best": best_so_far,
        "stitched": wf.get("stitched", {}) if wf else {},
    }
    heatmaps = "".join(
        _heatmap(a, b, summary["space"], agg, values_of, minimise)
        for a, b in itertools.combinations(names, 2)
    ) or (_strip(names[0], summary["space"], agg, values_of, minimise) if names else "")
    return _PAGE.format(
        title=html.escape(
            f"{'walk-forward' if wf else 'sweep'} · {summary.get('play', '')} · {objective}"
        ),
        summary=html.escape(
            json.dumps(
                {
                    k: summary.get(k)
                    for k in (
                        "play",
                        "symbols",
                        "windows",
                        "search",
                        "trials",
                        "seed",
                        "objective",
                        "winner",
                    )
                },
                indent=1,
            )
        ),
        diagnostics=(
            "per fold, in the table below"
            if wf
            else html.escape(json.dumps(summary.get("diagnostics"), indent=1))
        ),
        heatmaps=heatmaps or "<p>no rows</p>",
        folds=_folds(wf) if wf else "",
        library=VENDOR.read_text(encoding="utf-8"),
        data=json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/"),
        objective=html.escape(objective),
        heat_note=" (the last fold's train sweep)" if wf else "",
    )


def _colour(v: float | None, lo: float, hi: float, minimise: bool) -> str:
    if v is None:
        return "background:#eee"
    share = 0.5 if hi == lo else (v - lo) / (hi - lo)
    if minimise:
        share = 1 - share
    rgb = "38,166,154" if share >= 0.5 else "239,83,80"
    return f"background:rgba({rgb},{0.15 + 0.75 * abs(share - 0.5) * 2:.2f})"


def _cells(
    key: tuple[str, ...], names: tuple[str, ...], agg: Mapping[int, float | None],
    values_of: Mapping[int, Mapping[str, str]], minimise: bool,
) -> dict[tuple[str, ...], float | None]:  # fmt: skip
    """The best objective of the trials at each value pair (the other variables free)."""
    out: dict[tuple[str, ...], float | None] = {}
    for i, vals in values_of.items():
        k = tuple(vals[n] for n in names)
        v, old = agg.get(i), out.get(k)
        if k not in out or (v is not None and (old is None or (v < old if minimise else v > old))):
            out[k] = v
    del key
    return out


def _heatmap(
    a: str, b: str, space: Mapping[str, Sequence[Any]], agg: Mapping[int, float | None],
    values_of: Mapping[int, Mapping[str, str]], minimise: bool,
) -> str:  # fmt: skip
    cells = _cells((a, b), (a, b), agg, values_of, minimise)
    known = [v for v in cells.values() if v is not None]
    lo, hi = (min(known), max(known)) if known else (0.0, 0.0)
    col_vals = [str(v) if not isinstance(v, float) else repr(v) for v in space[b]]
    row_vals = [str(v) if not isinstance(v, float) else repr(v) for v in space[a]]
    head = "".join(f"<th>{html.escape(v)}</th>" for v in col_vals)
    body = []
    for ra in row_vals:
        tds = []
        for cb in col_vals:
            v = cells.get((ra, cb))
            text = "" if v is None else f"{v:.4g}"
            tds.append(
                f'<td style="{_colour(v, lo, hi, minimise)}" title="{html.escape(a)}={ra} {html.escape(b)}={cb}">{text}</td>'
            )
        body.append(f"<tr><th>{html.escape(ra)}</th>{''.join(tds)}</tr>")
    return (
        f"<h3>{html.escape(a)} (down) × {html.escape(b)} (across)</h3>"
        f'<table class="heat"><tr><th></th>{head}</tr>{"".join(body)}</table>'
    )


def _strip(
    a: str, space: Mapping[str, Sequence[Any]], agg: Mapping[int, float | None],
    values_of: Mapping[int, Mapping[str, str]], minimise: bool,
) -> str:  # fmt: skip
    cells = _cells((a,), (a,), agg, values_of, minimise)
    known = [v for v in cells.values() if v is not None]
    lo, hi = (min(known), max(known)) if known else (0.0, 0.0)
    vals = [str(v) if not isinstance(v, float) else repr(v) for v in space[a]]
    head = "".join(f"<th>{html.escape(v)}</th>" for v in vals)
    tds = "".join(
        f'<td style="{_colour(cells.get((v,)), lo, hi, minimise)}">'
        f"{'' if cells.get((v,)) is None else format(cells[(v,)], '.4g')}</td>"
        for v in vals
    )
    return f'<h3>{html.escape(a)}</h3><table class="heat"><tr>{head}</tr><tr>{tds}</tr></table>'


def _folds(wf: Mapping[str, Any]) -> str:
    rows = []
    for f in wf.get("folds", []):
        d = f.get("diagnostics") or {}
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(x))}</td>"
                for x in (
                    f["fold"], f["train"][0], f["train"][1], f["test"][0], f["test"][1],
                    " ".join(f"{k}={v}" for k, v in f["values"].items()),
                    _fmt(f["in_sample"]), _fmt(f["out_of_sample"]), f["test_trades"],
                    _fmt(d.get("deflated_sharpe")), _fmt(d.get("pbo")),
                    _fmt((d.get("neighbourhood") or {}).get("score")),
                    "yes" if d.get("likely_overfit") else "no",
                )
            )
            + "</tr>"
        )  # fmt: skip
    overall = html.escape(json.dumps(wf.get("overall"), indent=1))
    return (
        "<h2>Walk-forward folds</h2><table><tr><th>fold</th><th>train from</th><th>train to</th>"
        "<th>test from</th><th>test to</th><th>parameters</th><th>in-sample</th>"
        "<th>out-of-sample</th><th>test trades</th><th>deflated Sharpe</th><th>PBO</th>"
        "<th>stability</th><th>likely overfit</th></tr>"
        f'{"".join(rows)}</table><h2>Stitched out-of-sample equity</h2><div id="stitched"></div>'
        f"<pre>{overall}</pre>"
    )


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; }}
td, th {{ border: 1px solid #ddd; padding: 3px 7px; text-align: right; }}
.heat td {{ min-width: 3.5em; }}
#trials, #stitched {{ height: 320px; max-width: 1100px; }}
pre {{ background: #f6f6f6; padding: .6em; overflow: auto; }}
</style></head><body>
<h1>{title}</h1>
<pre>{summary}</pre>
<h2>Overfitting diagnostics</h2>
<pre>{diagnostics}</pre>
<h2>{objective} by trial (dots) and best so far (line)</h2>
<div id="trials"></div>
<h2>Heatmaps of {objective}{heat_note}</h2>
{heatmaps}
{folds}
<script>{library}</script>
<script>
const data = {data};
const LW = LightweightCharts;
const numbered = {{ timeScale: {{ tickMarkFormatter: t => String(t - 1) }},
  localization: {{ timeFormatter: t => 'trial ' + (t - 1) }} }};
function chart(id, extra) {{
  const el = document.getElementById(id);
  return el ? LW.createChart(el, Object.assign({{ height: 320, autoSize: true }}, extra)) : null;
}}
window.sweep = {{}};
const tc = chart('trials', numbered);
if (tc) {{
  const pts = data.trials.map((t, k) => ({{ time: t + 1, value: data.objective[k] }}))
    .filter(p => p.value !== null);
  const dots = tc.addSeries(LW.LineSeries, {{ lineVisible: false, pointMarkersVisible: true, color: '#2962ff' }});
  dots.setData(pts);
  const best = tc.addSeries(LW.LineSeries, {{ color: '#26a69a', lineWidth: 2 }});
  best.setData(data.trials.map((t, k) => ({{ time: t + 1, value: data.best[k] }}))
    .filter(p => p.value !== null));
  tc.timeScale().fitContent();
  window.sweep.trials = tc;
}}
if (data.stitched && data.stitched.t) {{
  const sc = chart('stitched', {{}});
  if (sc) {{
    const s = sc.addSeries(LW.LineSeries, {{ color: '#2962ff' }});
    s.setData(data.stitched.t.map((t, k) => ({{ time: t, value: data.stitched.equity[k] }})));
    sc.timeScale().fitContent();
    window.sweep.stitched = sc;
  }}
}}
</script></body></html>
"""
