"""report.html: one self-contained page per backtest (no network, no external files).

The charts are TradingView Lightweight Charts (vendored standalone build, inlined): candles with the
Play's indicators (price-scale ones over the candles, oscillators in panes of their own), volume,
entry / exit markers coloured by outcome with a tooltip; equity against buy-and-hold with the
drawdown below. Tables: monthly returns heatmap, exit reasons, metrics, trades, the resolved Play.
The page keeps its charts in `window.report` (the browser test and a curious reader use it).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .artifacts import iso
from .metrics import buy_and_hold_curve, monthly_returns_pct

VENDOR = Path(__file__).with_name("vendor") / "lightweight-charts.standalone.production.js"
MAX_CANDLES = 20_000  # more are merged (a chart, not a data dump)
MAX_POINTS = 20_000  # equity points drawn
#: indicators drawn on the price scale (their price-valued outputs); every other one gets a pane
PRICE_SCALE = frozenset(
    ("ema", "sma", "wma", "dema", "tema", "trima", "zlma", "kama", "alma", "linreg", "vwap",
     "supertrend", "psar", "bbands", "kc", "donchian")
)  # fmt: skip
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def write_report(path: Path, res: Any) -> None:
    """Write report.html for a BacktestResult (from `trade.engine.backtest`)."""
    from ..engine.features import compute_batch_features

    compiled, window, out, result = res.compiled, res.window, res.output, res.result
    exec_tf = compiled.exec_tf
    bars = window.bars[exec_tf].window(window.start_ms, window.end_ms)
    values = compute_batch_features(compiled, window.bars)
    indicators = []
    for f in compiled.features:
        if f.kind != "indicator":
            continue
        fb = window.bars[f.tf]
        for o in f.outputs:
            if o.kind != "float":
                continue
            name = f.key if len(f.outputs) == 1 else f"{f.key}.{o.name}"
            # a value is known at its bar's close: drawn on the exec candle closing with it
            ts_close = fb.ts + fb.tf_ms
            idx = np.searchsorted(ts_close, bars.ts + bars.tf_ms, side="right") - 1
            series = values[f"{f.key}.{o.name}"]
            v = np.where(idx >= 0, series[np.maximum(idx, 0)], np.nan)
            indicators.append((name, f.type, v))
    path.write_text(
        render(
            title=f"{result['play']} · {result['symbol']} · {exec_tf}",
            result=result,
            bars=(bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume, bars.tf_ms),
            indicators=indicators,
            trades=res.trades,
            equity_ts=np.asarray(out.equity_ts),
            equity=np.asarray(out.equity),
            starting_equity=float(compiled.play.account.starting_equity),
            play=compiled.play.model_dump(mode="json", exclude_defaults=False),
            guard_events=[e for e in out.events if e.get("type") == "guard"],
        )
    )


def render(
    *,
    title: str,
    result: Mapping[str, Any],
    bars: tuple,
    indicators: Sequence[tuple[str, str, np.ndarray]],
    trades: Sequence[Mapping[str, Any]],
    equity_ts: np.ndarray,
    equity: np.ndarray,
    starting_equity: float,
    play: Mapping[str, Any],
    guard_events: Sequence[Mapping[str, Any]] = (),
) -> str:
    ts, o, h, lo, c, vol, tf_ms = bars
    keep, tf_ms = _merge_plan(len(ts), tf_ms)
    if keep is not None:
        ts, o, h, lo, c, vol = _merge(keep, len(ts), ts, o, h, lo, c, vol)
        indicators = [(n, t, v[np.minimum(keep + (keep[1] - keep[0]) - 1, len(v) - 1)])
                      for n, t, v in indicators]  # fmt: skip
    bh = buy_and_hold_curve(equity_ts, ts + tf_ms, c, starting_equity)
    e_idx = _thin(equity_ts)
    peak = np.maximum.accumulate(np.concatenate([[starting_equity], equity]))[1:]
    dd = np.where(peak > 0, (equity - peak) / peak * 100.0, 0.0) if len(equity) else equity
    price_lo, price_hi = (float(np.nanmin(lo)), float(np.nanmax(h))) if len(ts) else (0.0, 0.0)
    panes: dict[str, int] = {}
    ind_out = []
    for name, itype, v in indicators:
        finite = v[np.isfinite(v)]
        on_price = (
            itype in PRICE_SCALE
            and len(finite) > 0
            and price_lo * 0.5 <= float(np.median(finite)) <= price_hi * 1.5
        )
        key = name.split(".")[0]
        pane = 0 if on_price else panes.setdefault(key, len(panes) + 1)
        ind_out.append({"name": name, "pane": pane, "v": _floats(v)})
    candle_of = np.searchsorted  # fill time → the candle it happened in
    trade_out = []
    for t in trades:
        trade_out.append(
            {
                "id": t["trade_id"],
                "side": t["side"],
                "entry": int(ts[max(candle_of(ts, int(t["entry_time"]), "right") - 1, 0)]) // 1000,
                "exit": int(ts[max(candle_of(ts, int(t["exit_time"]), "right") - 1, 0)]) // 1000,
                "entry_time": iso(int(t["entry_time"])),
                "exit_time": iso(int(t["exit_time"])),
                "entry_price": float(t["entry_price"]),
                "exit_price": float(t["exit_price"]),
                "pnl": float(t["pnl"]),
                "return_pct": float(t["return_pct"]),
                "reason": t["exit_reason"],
            }
        )
    data = {
        "candles": {
            "t": (np.asarray(ts) // 1000).tolist(),
            "o": _floats(o),
            "h": _floats(h),
            "l": _floats(lo),
            "c": _floats(c),
            "v": _floats(vol),
        },
        "indicators": ind_out,
        "trades": trade_out,
        "equity": {
            "t": (equity_ts[e_idx] // 1000).tolist(),
            "equity": _floats(equity[e_idx]),
            "buy_hold": _floats(bh[e_idx]) if len(bh) else [],
            "drawdown": _floats(dd[e_idx]),
        },
    }
    metrics = dict(result.get("metrics", {}))
    monthly = monthly_returns_pct(equity_ts, equity, starting_equity)
    summary = {
        k: result.get(k)
        for k in ("play", "symbol", "mode", "window", "trades", "trades_fingerprint")
    }
    return _PAGE.format(
        title=html.escape(title),
        summary=html.escape(json.dumps(summary, indent=1)),
        coverage=_data_section(result),
        guards=_guards_section(result, guard_events),
        headline=_headline(metrics, bh, starting_equity),
        price_height=380 + 140 * len(panes),
        monthly=_monthly_table(monthly),
        reasons=_reasons_table(trades),
        metrics="".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in metrics.items()
            if not isinstance(v, dict)
        ),
        n_trades=len(trades),
        trades=_trades_rows(trades),
        play=html.escape(yaml.safe_dump(dict(play), sort_keys=False, allow_unicode=True)),
        library=VENDOR.read_text(encoding="utf-8"),
        data=json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/"),
    )


def _guards_section(result: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> str:
    """The guards in force and every action they took (vetoes, shrinks, halts and their lifts);
    nothing when the run had no guard."""
    g = result.get("guards") or {}
    if not g.get("limits"):
        return ""
    limits = ", ".join(f"{k}={v}" for k, v in g["limits"].items())
    source = "the Play's and the account's" if g.get("account") else "the Play's"
    rows = "".join(
        f"<tr><td>{iso(int(e['ts']))}</td><td>{html.escape(str(e['guard']))}</td>"
        f'<td>{html.escape(str(e["action"]))}</td><td style="text-align:left">'
        f"{html.escape(str(e['message']))}</td></tr>"
        for e in events
    )
    table = (
        '<table id="guards"><tr><th>instant</th><th>guard</th><th>action</th><th>what</th></tr>'
        f"{rows}</table>"
        if rows
        else "<p>no guard acted</p>"
    )
    n = len(events)
    return f"<h2>Guards ({n} action{'s' if n != 1 else ''})</h2><p>{html.escape(source)} limits: {html.escape(limits)}</p>{table}"


def _data_section(result: Mapping[str, Any]) -> str:
    """The run's warnings (constant conditions, skipped gaps, bars priced without 1m data) and
    its coverage: the exec bars missing from the window and those priced on their own OHLC."""
    warnings = result.get("warnings") or []
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    listed = f'<ul id="warnings">{items}</ul>' if warnings else ""
    cov = result.get("coverage")
    pre = f'<pre id="coverage">{html.escape(json.dumps(cov, indent=1))}</pre>' if cov else ""
    return f"<h2>Data coverage and warnings ({len(warnings)})</h2>{listed}{pre}"


def _merge_plan(n: int, tf_ms: int) -> tuple[np.ndarray | None, int]:
    if n <= MAX_CANDLES:
        return None, tf_ms
    k = math.ceil(n / MAX_CANDLES)
    return np.arange(0, n, k), tf_ms * k


def _merge(idx: np.ndarray, n: int, ts, o, h, lo, c, vol) -> tuple:  # type: ignore[no-untyped-def]
    k = int(idx[1] - idx[0])
    return (
        ts[idx],
        o[idx],
        np.maximum.reduceat(h, idx),
        np.minimum.reduceat(lo, idx),
        c[np.minimum(idx + k - 1, n - 1)],
        np.add.reduceat(vol, idx),
    )


def _thin(ts: np.ndarray) -> np.ndarray:
    """Indices of at most MAX_POINTS equity points with strictly increasing whole seconds."""
    if len(ts) == 0:
        return np.empty(0, dtype=np.int64)
    sec = ts // 1000
    last_of_second = np.flatnonzero(np.append(sec[1:] != sec[:-1], True))
    step = max(1, math.ceil(len(last_of_second) / MAX_POINTS))
    keep = last_of_second[::step]
    if keep[-1] != last_of_second[-1]:
        keep = np.append(keep, last_of_second[-1])
    return keep


def _floats(a: Any) -> list[float | None]:
    """JSON numbers (10 decimals at most), NaN as null (a gap in the line)."""
    arr = np.round(np.asarray(a, dtype=float), 10)
    return [None if x != x else x for x in arr.tolist()]


def _headline(metrics: Mapping[str, Any], bh: np.ndarray, start: float) -> str:
    bh_ret = (float(bh[-1]) / start - 1.0) * 100.0 if len(bh) and bh[-1] == bh[-1] else None
    items = [
        ("return", metrics.get("total_return_pct"), "%"),
        ("buy & hold", bh_ret, "%"),
        ("max drawdown", metrics.get("max_drawdown_pct"), "%"),
        ("sharpe", metrics.get("sharpe"), ""),
        ("sortino", metrics.get("sortino"), ""),
        ("trades", metrics.get("trades"), ""),
        ("win rate", metrics.get("win_rate_pct"), "%"),
        ("profit factor", metrics.get("profit_factor"), ""),
    ]
    return "".join(
        f'<div class="kpi"><span>{k}</span><b>{"–" if v is None else _fmt2(v) + unit}</b></div>'
        for k, v, unit in items
    )


def _monthly_table(monthly: Mapping[str, float]) -> str:
    """Years down, months across, each cell shaded by its return (green up, red down)."""
    if not monthly:
        return "<p>no equity points</p>"
    years = sorted({m[:4] for m in monthly})
    big = max(abs(v) for v in monthly.values()) or 1.0
    head = "".join(f"<th>{m}</th>" for m in MONTHS)
    rows = []
    for y in years:
        cells, total = [], 1.0
        for i in range(12):
            key = f"{y}-{i + 1:02d}"
            if key not in monthly:
                cells.append('<td class="empty"></td>')
                continue
            v = monthly[key]
            total *= 1 + v / 100.0
            alpha = 0.15 + 0.75 * min(abs(v) / big, 1.0)
            rgb = "38,166,154" if v >= 0 else "239,83,80"
            cells.append(
                f'<td class="month" data-month="{key}" data-value="{v}" '
                f'style="background:rgba({rgb},{alpha:.2f})">{v:+.2f}%</td>'
            )
        cells.append(f'<td class="year">{(total - 1) * 100:+.2f}%</td>')
        rows.append(f"<tr><th>{y}</th>{''.join(cells)}</tr>")
    return f'<table id="monthly"><tr><th></th>{head}<th>year</th></tr>{"".join(rows)}</table>'


def _reasons_table(trades: Sequence[Mapping[str, Any]]) -> str:
    by: dict[str, list[float]] = {}
    for t in trades:
        by.setdefault(str(t["exit_reason"]), []).append(float(t["pnl"]))
    rows = "".join(
        f'<tr data-reason="{html.escape(r)}"><td>{html.escape(r)}</td><td>{len(p)}</td>'
        f"<td>{sum(1 for x in p if x > 0)}</td><td>{sum(p):,.2f}</td></tr>"
        for r, p in sorted(by.items(), key=lambda kv: -len(kv[1]))
    )
    return (
        '<table id="exit-reasons"><tr><th>exit reason</th><th>trades</th><th>winners</th>'
        f"<th>pnl</th></tr>{rows}</table>"
    )


def _trades_rows(trades: Sequence[Mapping[str, Any]]) -> str:
    cols = ("trade_id", "side", "entry_time", "entry_price", "exit_time", "exit_price", "qty",
            "exit_reason", "pnl", "return_pct")  # fmt: skip
    return "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(_fmt(iso(int(t[k])) if k.endswith('_time') else t[k]))}</td>"
            for k in cols
        )
        + "</tr>"
        for t in trades
    )


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:,.6g}"
    return str(v)


def _fmt2(v: Any) -> str:
    return f"{v:,.2f}" if isinstance(v, float) else str(v)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:20px;color:#222;background:#fafafa;max-width:1400px}}
table{{border-collapse:collapse;font-size:13px;margin-bottom:16px}}
td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}} th{{background:#eee}}
.chart{{position:relative;background:#fff;border:1px solid #ddd;margin-bottom:12px}}
.kpis{{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0 16px}}
.kpi{{background:#fff;border:1px solid #ddd;padding:6px 12px;display:flex;flex-direction:column}}
.kpi span{{font-size:11px;color:#666}} .kpi b{{font-size:16px}}
#tooltip{{position:absolute;display:none;z-index:10;pointer-events:none;background:#fff;
  border:1px solid #999;padding:6px 8px;font:12px monospace;white-space:pre;box-shadow:0 2px 6px #0003}}
#monthly td.month{{min-width:56px}} #monthly td.empty{{background:#f4f4f4}}
.legend{{font-size:12px;color:#555;margin:4px 0}}
pre{{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto}}
</style></head><body>
<h1>{title}</h1>
<div class="kpis">{headline}</div>
<pre id="summary">{summary}</pre>
{coverage}
{guards}
<h2>Price, indicators and trades</h2>
<div class="legend">scroll to zoom, drag to pan; ▲▼ entries, ● exits, green won, red lost; hover a marker for the trade</div>
<div id="price" class="chart" style="height:{price_height}px"><div id="tooltip"></div></div>
<h2>Equity, buy-and-hold and drawdown</h2>
<div class="legend">blue: strategy equity · grey: buy-and-hold of the same window · red: drawdown %</div>
<div id="equity" class="chart" style="height:420px"></div>
<h2>Monthly returns</h2>{monthly}
<h2>Exit reasons</h2>{reasons}
<h2>Metrics</h2><table id="metrics"><tr><th>metric</th><th>value</th></tr>{metrics}</table>
<h2>Trades ({n_trades})</h2>
<table id="trades"><tr><th>id</th><th>side</th><th>entry</th><th>entry price</th><th>exit</th>
<th>exit price</th><th>qty</th><th>reason</th><th>pnl</th><th>return %</th></tr>{trades}</table>
<h2>Play (resolved)</h2><pre id="play">{play}</pre>
<script>{library}</script>
<script id="report-data" type="application/json">{data}</script>
<script>
(function () {{
  "use strict";
  var LC = LightweightCharts;
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var COLORS = ["#1565c0", "#ef6c00", "#6a1b9a", "#2e7d32", "#ad1457", "#00838f", "#5d4037", "#9e9d24"];
  var base = {{
    autoSize: true,
    layout: {{ background: {{ color: "#ffffff" }}, textColor: "#333" }},
    grid: {{ vertLines: {{ color: "#f0f0f0" }}, horzLines: {{ color: "#f0f0f0" }} }},
    timeScale: {{ timeVisible: true, secondsVisible: false }},
    crosshair: {{ mode: LC.CrosshairMode.Normal }},
  }};
  function points(t, v) {{
    var out = [];
    for (var i = 0; i < t.length; i++) out.push(v[i] === null ? {{ time: t[i] }} : {{ time: t[i], value: v[i] }});
    return out;
  }}
  // ---- price pane: candles, volume, indicators, markers
  var C = D.candles;
  var chart = LC.createChart(document.getElementById("price"), base);
  var candles = chart.addSeries(LC.CandlestickSeries, {{
    upColor: "#26a69a", downColor: "#ef5350", borderVisible: false,
    wickUpColor: "#26a69a", wickDownColor: "#ef5350",
  }});
  var bars = [];
  for (var i = 0; i < C.t.length; i++) bars.push({{ time: C.t[i], open: C.o[i], high: C.h[i], low: C.l[i], close: C.c[i] }});
  candles.setData(bars);
  var volume = chart.addSeries(LC.HistogramSeries, {{
    priceFormat: {{ type: "volume" }}, priceScaleId: "volume", color: "#90a4ae80", lastValueVisible: false,
    priceLineVisible: false,
  }});
  volume.priceScale().applyOptions({{ scaleMargins: {{ top: 0.82, bottom: 0 }} }});
  var vols = [];
  for (var j = 0; j < C.t.length; j++) vols.push({{ time: C.t[j], value: C.v[j] === null ? 0 : C.v[j] }});
  volume.setData(vols);
  var indicators = {{}};
  D.indicators.forEach(function (ind, k) {{
    var s = chart.addSeries(LC.LineSeries, {{
      color: COLORS[k % COLORS.length], lineWidth: ind.pane === 0 ? 2 : 1, title: ind.name,
      priceLineVisible: false, lastValueVisible: true,
    }}, ind.pane);
    s.setData(points(C.t, ind.v));
    indicators[ind.name] = s;
  }});
  var panes = chart.panes();
  if (panes.length > 1) {{
    panes[0].setHeight(360);
    for (var p = 1; p < panes.length; p++) panes[p].setHeight(130);
  }}
  var markers = [];
  var byTime = {{}};
  D.trades.forEach(function (t) {{
    var color = t.pnl > 0 ? "#2e7d32" : "#c62828";
    markers.push({{ time: t.entry, position: t.side === "long" ? "belowBar" : "aboveBar",
      shape: t.side === "long" ? "arrowUp" : "arrowDown", color: color, id: "entry-" + t.id, text: "#" + t.id }});
    markers.push({{ time: t.exit, position: t.side === "long" ? "aboveBar" : "belowBar",
      shape: "circle", color: color, id: "exit-" + t.id }});
    (byTime[t.entry] = byTime[t.entry] || []).push(t);
    if (t.exit !== t.entry) (byTime[t.exit] = byTime[t.exit] || []).push(t);
  }});
  markers.sort(function (a, b) {{ return a.time - b.time; }});
  LC.createSeriesMarkers(candles, markers);
  var tip = document.getElementById("tooltip");
  function fmt(x) {{ return x.toLocaleString("en-US", {{ maximumFractionDigits: 6 }}); }}
  function describe(t) {{
    return "#" + t.id + " " + t.side + "\\n" +
      "entry " + t.entry_time + " @ " + fmt(t.entry_price) + "\\n" +
      "exit  " + t.exit_time + " @ " + fmt(t.exit_price) + "\\n" +
      "pnl " + (t.pnl >= 0 ? "+" : "") + t.pnl.toFixed(2) + " (" + (t.return_pct >= 0 ? "+" : "") +
      t.return_pct.toFixed(2) + "%)  reason " + t.reason;
  }}
  chart.subscribeCrosshairMove(function (param) {{
    var hit = param.time !== undefined ? byTime[param.time] : undefined;
    if (!hit || !param.point) {{ tip.style.display = "none"; return; }}
    tip.textContent = hit.map(describe).join("\\n\\n");
    tip.style.display = "block";
    var box = document.getElementById("price");
    var x = param.point.x + 16, y = param.point.y + 16;
    if (x + tip.offsetWidth > box.clientWidth) x = param.point.x - tip.offsetWidth - 16;
    if (y + tip.offsetHeight > box.clientHeight) y = Math.max(0, param.point.y - tip.offsetHeight - 16);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }});
  chart.timeScale().fitContent();
  // ---- equity pane: equity, buy-and-hold, drawdown
  var E = D.equity;
  var eq = LC.createChart(document.getElementById("equity"), base);
  var equity = eq.addSeries(LC.LineSeries, {{ color: "#1565c0", lineWidth: 2, title: "equity", priceLineVisible: false }});
  equity.setData(points(E.t, E.equity));
  var hold = eq.addSeries(LC.LineSeries, {{ color: "#9e9e9e", lineWidth: 1, title: "buy & hold", priceLineVisible: false }});
  hold.setData(points(E.t, E.buy_hold));
  var drawdown = eq.addSeries(LC.AreaSeries, {{
    lineColor: "#c62828", topColor: "#c6282810", bottomColor: "#c6282860", lineWidth: 1,
    title: "drawdown %", priceLineVisible: false, invertFilledArea: true,
  }}, 1);
  drawdown.setData(points(E.t, E.drawdown));
  var ep = eq.panes();
  if (ep.length > 1) {{ ep[0].setHeight(280); ep[1].setHeight(120); }}
  eq.timeScale().fitContent();
  window.report = {{ chart: chart, candles: candles, volume: volume, indicators: indicators,
    equityChart: eq, equity: equity, buyHold: hold, drawdown: drawdown, data: D }};
}})();
</script>
</body></html>
"""
