"""report.html: one self-contained page per backtest (no network, no external files).

Charts are inline SVG drawn here in Python, so the page opens offline and renders identically in any
browser; a few lines of inline JavaScript add hover read-outs. One marker element per trade entry and
exit (`.marker.entry`, `.marker.exit`) lets a browser test count them.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import iso

W, H_PRICE, H_EQ, PAD = 1200, 420, 200, 50
MAX_CANDLES = 4000


def write_report(path: Path, res: Any) -> None:
    """Write report.html for a BacktestResult (from `trade.engine.backtest`)."""
    compiled, window, out, result = res.compiled, res.window, res.output, res.result
    bars = window.bars[compiled.exec_tf].window(window.start_ms, window.end_ms)
    path.write_text(
        render(
            title=f"{result['play']} · {result['symbol']}",
            result=result,
            ts=bars.ts,
            o=bars.open,
            h=bars.high,
            lo=bars.low,
            c=bars.close,
            tf_ms=bars.tf_ms,
            trades=out.trades,
            equity_ts=out.equity_ts,
            equity=out.equity,
        )
    )


def render(
    *,
    title: str,
    result: Mapping[str, Any],
    ts: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    tf_ms: int,
    trades: Sequence[Mapping[str, Any]],
    equity_ts: np.ndarray,
    equity: np.ndarray,
) -> str:
    ts, o, h, lo, c, tf_ms = _downsample(ts, o, h, lo, c, tf_ms)
    price_svg = _price_chart(ts, o, h, lo, c, tf_ms, trades)
    eq_svg = _equity_chart(equity_ts, equity)
    metrics = result.get("metrics", {})
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in metrics.items()
    )
    trade_rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(_fmt(iso(int(t[k])) if k.endswith('_time') else t[k]))}</td>"
            for k in (
                "trade_id",
                "side",
                "entry_time",
                "entry_price",
                "exit_time",
                "exit_price",
                "qty",
                "exit_reason",
                "pnl",
            )
        )
        + "</tr>"
        for t in trades
    )
    summary = {
        k: result.get(k)
        for k in ("play", "symbol", "mode", "window", "trades", "trades_fingerprint")
    }
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:20px;color:#222;background:#fafafa}}
svg{{background:#fff;border:1px solid #ddd;display:block;margin-bottom:12px}}
table{{border-collapse:collapse;font-size:13px;margin-bottom:16px}}
td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}} th{{background:#eee}}
.up{{fill:#26a69a;stroke:#26a69a}} .down{{fill:#ef5350;stroke:#ef5350}}
.marker.entry{{fill:#1565c0}} .marker.exit{{fill:#ff8f00}}
#readout{{font-family:monospace;min-height:1.2em}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<pre id="summary">{html.escape(json.dumps(summary, indent=1))}</pre>
<div id="readout"></div>
<h2>Price and trades</h2>{price_svg}
<h2>Equity and drawdown</h2>{eq_svg}
<h2>Metrics</h2><table id="metrics"><tr><th>metric</th><th>value</th></tr>{rows}</table>
<h2>Trades ({len(trades)})</h2>
<table id="trades"><tr><th>id</th><th>side</th><th>entry</th><th>entry price</th><th>exit</th><th>exit price</th><th>qty</th><th>reason</th><th>pnl</th></tr>{trade_rows}</table>
<script>
(function () {{
  var out = document.getElementById("readout");
  document.querySelectorAll("[data-info]").forEach(function (el) {{
    el.addEventListener("mouseenter", function () {{ out.textContent = el.getAttribute("data-info"); }});
  }});
}})();
</script>
</body></html>
"""


def _downsample(
    ts: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, tf_ms: int
) -> tuple:
    """Merge candles so at most MAX_CANDLES are drawn (a chart, not a data dump)."""
    n = len(ts)
    if n <= MAX_CANDLES:
        return ts, o, h, lo, c, tf_ms
    k = math.ceil(n / MAX_CANDLES)
    idx = np.arange(0, n, k)
    return (
        ts[idx],
        o[idx],
        np.maximum.reduceat(h, idx),
        np.minimum.reduceat(lo, idx),
        c[np.minimum(idx + k - 1, n - 1)],
        tf_ms * k,
    )


def _price_chart(ts, o, h, lo, c, tf_ms, trades) -> str:  # type: ignore[no-untyped-def]
    if len(ts) == 0:
        return f'<svg width="{W}" height="{H_PRICE}"><text x="20" y="40">no bars</text></svg>'
    t0, t1 = float(ts[0]), float(ts[-1] + tf_ms)
    prices = [float(np.min(lo)), float(np.max(h))]
    for t in trades:
        prices += [float(t["entry_price"]), float(t["exit_price"])]
    p0, p1 = min(prices), max(prices)
    span = (p1 - p0) or 1.0

    def x(t: float) -> float:
        return PAD + (t - t0) / (t1 - t0) * (W - 2 * PAD)

    def y(p: float) -> float:
        return H_PRICE - PAD + (p0 - p) / span * (H_PRICE - 2 * PAD)

    cw = max(0.5, (W - 2 * PAD) / len(ts) * 0.7)
    parts = [f'<svg id="price" width="{W}" height="{H_PRICE}" xmlns="http://www.w3.org/2000/svg">']
    for i in range(len(ts)):
        cls = "up" if c[i] >= o[i] else "down"
        xm = x(float(ts[i]) + tf_ms / 2)
        top, bot = y(max(o[i], c[i])), y(min(o[i], c[i]))
        parts.append(
            f'<g class="{cls}"><line x1="{xm:.1f}" x2="{xm:.1f}" y1="{y(h[i]):.1f}" y2="{y(lo[i]):.1f}"/>'
            f'<rect x="{xm - cw / 2:.1f}" y="{top:.1f}" width="{cw:.1f}" height="{max(bot - top, 0.5):.1f}"/></g>'
        )
    for t in trades:
        for kind, tk, pk in (
            ("entry", "entry_time", "entry_price"),
            ("exit", "exit_time", "exit_price"),
        ):
            xm, ym = x(float(t[tk])), y(float(t[pk]))
            up = (t["side"] == "long") == (kind == "entry")
            pts = f"{xm:.1f},{ym:.1f} {xm - 6:.1f},{ym + (10 if up else -10):.1f} {xm + 6:.1f},{ym + (10 if up else -10):.1f}"
            info = f"#{t['trade_id']} {t['side']} {kind} {iso(int(t[tk]))} @ {t[pk]}" + (
                f" ({t['exit_reason']})" if kind == "exit" else ""
            )
            parts.append(
                f'<polygon class="marker {kind}" points="{pts}" data-info="{html.escape(info)}"/>'
            )
    parts.append(_axis_labels(t0, t1, p0, p1, H_PRICE))
    parts.append("</svg>")
    return "".join(parts)


def _equity_chart(ts: np.ndarray, eq: np.ndarray) -> str:
    if len(ts) < 2:
        return f'<svg id="equity" width="{W}" height="{H_EQ}"><text x="20" y="40">no equity points</text></svg>'
    t0, t1 = float(ts[0]), float(ts[-1])
    e0, e1 = float(np.min(eq)), float(np.max(eq))
    span = (e1 - e0) or 1.0
    peak = np.maximum.accumulate(eq)
    dd = (peak - eq) / peak * 100.0
    dmax = float(np.max(dd)) or 1.0
    step = max(1, len(ts) // 3000)

    def x(t: float) -> float:
        return PAD + (t - t0) / ((t1 - t0) or 1.0) * (W - 2 * PAD)

    eq_pts = " ".join(
        f"{x(float(ts[i])):.1f},{H_EQ - PAD + (e0 - eq[i]) / span * (H_EQ - 2 * PAD):.1f}"
        for i in range(0, len(ts), step)
    )
    dd_pts = " ".join(
        f"{x(float(ts[i])):.1f},{PAD / 2 + dd[i] / dmax * (H_EQ - 2 * PAD) / 2:.1f}"
        for i in range(0, len(ts), step)
    )
    return (
        f'<svg id="equity" width="{W}" height="{H_EQ}" xmlns="http://www.w3.org/2000/svg">'
        f'<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="{eq_pts}"/>'
        f'<polyline fill="none" stroke="#c62828" stroke-width="1" opacity="0.6" points="{dd_pts}"/>'
        f"{_axis_labels(t0, t1, e0, e1, H_EQ)}"
        f'<text x="{W - PAD - 160}" y="14" font-size="11" fill="#c62828">drawdown (max {dmax:.2f}%)</text></svg>'
    )


def _axis_labels(t0: float, t1: float, v0: float, v1: float, height: int) -> str:
    return (
        f'<text x="{PAD}" y="{height - 8}" font-size="11">{iso(int(t0))}</text>'
        f'<text x="{W - PAD - 150}" y="{height - 8}" font-size="11">{iso(int(t1))}</text>'
        f'<text x="4" y="{PAD - 8}" font-size="11">{v1:,.2f}</text>'
        f'<text x="4" y="{height - PAD + 14}" font-size="11">{v0:,.2f}</text>'
    )


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:,.6g}"
    return str(v)
