"""`trade dashboard`: every session in a local web page, kept current by server-sent events.

Starlette on uvicorn, bound to 127.0.0.1 only; every request needs the random token of the URL
the command prints (else 403). The page is one HTML document with the vendored TradingView
Lightweight Charts (the report's copy): per session its state, position, stop and target, open
orders, equity and today's PnL, guards, streams, a live 1m price chart with a marker on every fill,
the equity curve, and the latest decisions and journal lines. The server only reads the session
files (read-only, WAL: a running session never waits); `/events` polls them twice a second and
pushes a session's data whenever it changed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..report.html import VENDOR
from .control import _status
from .session import SessionRecord, sessions_dir

BARS_SHOWN = 360  # the last six hours of 1m bars
LINES_SHOWN = 30
POLL_S = 0.5


def session_payload(path: Path) -> dict[str, Any]:
    """Everything the page shows of one session, from its file alone."""
    with SessionRecord(path, readonly=True) as rec:
        meta = rec.meta()
        name = meta.get("name", path.stem)
        con = rec.con
        start = int(meta.get("start_ms", 0) or 0)
        bars = con.execute(
            "SELECT ts, open, high, low, close FROM bars WHERE tf = '1m' AND ts >= ? "
            "ORDER BY ts DESC LIMIT ?",
            (start - BARS_SHOWN * 60_000, BARS_SHOWN),
        ).fetchall()
        fills = rec.fill_rows()
        decisions = rec.decision_rows()[-LINES_SHOWN:]
        journal = rec.journal_rows()[-LINES_SHOWN:]
        equity = rec.equity_rows()
        trades = rec.trade_rows()
    markers = [
        {
            "time": f["ts"] // 60_000 * 60,
            "position": "belowBar" if f["side"] in ("buy", "Buy") else "aboveBar",
            "shape": "arrowUp" if f["side"] in ("buy", "Buy") else "arrowDown",
            "color": "#2e7d32" if f["side"] in ("buy", "Buy") else "#c62828",
            "text": f"{f['side'].lower()} {f['qty']:g} @ {f['price']:.2f}",
        }
        for f in fills
        if f["kind"] != "funding"
    ]
    markers.sort(key=lambda m: m["time"])
    return {
        "name": name,
        "status": _status(name, meta),
        "bars": [
            {"time": b[0] // 1000, "open": b[1], "high": b[2], "low": b[3], "close": b[4]}
            for b in reversed(bars)
        ],
        "markers": markers,
        "equity": [{"time": t // 1000, "value": v} for t, v in equity],
        "trades": len(trades),
        "decisions": [
            {"ts": d["ts"], "kind": d["kind"], "side": d["side"], "block": d["block"]}
            for d in decisions
        ],
        "journal": [{"ts": j["ts"], "kind": j["kind"], "message": j["message"]} for j in journal],
    }


def _signature(path: Path) -> str:
    """Changes whenever the session wrote something the page shows."""
    st = path.stat()
    wal = path.with_name(path.name + "-wal")
    return f"{st.st_mtime_ns}:{st.st_size}:{wal.stat().st_mtime_ns if wal.exists() else 0}"


def make_app(token: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def allowed(request: Request) -> bool:
        return secrets.compare_digest(request.query_params.get("token", ""), token)

    def refuse() -> Response:
        return Response("forbidden: the URL's token is missing or wrong\n", status_code=403)

    async def page(request: Request) -> Response:
        if not allowed(request):
            return refuse()
        html = PAGE.replace("__TOKEN_RAW__", token).replace("__TOKEN__", json.dumps(token))
        return HTMLResponse(html)

    async def vendor(request: Request) -> Response:
        if not allowed(request):
            return refuse()
        return Response(VENDOR.read_bytes(), media_type="text/javascript")

    async def sessions(request: Request) -> Response:
        if not allowed(request):
            return refuse()
        files = sorted(sessions_dir().glob("*.sqlite"))
        return JSONResponse([await asyncio.to_thread(session_payload, p) for p in files])

    async def events(request: Request) -> Response:
        if not allowed(request):
            return refuse()

        async def stream() -> AsyncIterator[str]:
            seen: dict[Path, str] = {}
            while not await request.is_disconnected():
                for path in sorted(sessions_dir().glob("*.sqlite")):
                    sig = _signature(path)
                    if seen.get(path) != sig:
                        seen[path] = sig
                        data = await asyncio.to_thread(session_payload, path)
                        yield f"event: session\ndata: {json.dumps(data)}\n\n"
                yield ": alive\n\n"
                await asyncio.sleep(POLL_S)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    return Starlette(
        routes=[
            Route("/", page),
            Route("/vendor/lightweight-charts.js", vendor),
            Route("/api/sessions", sessions),
            Route("/events", events),
        ]
    )


def serve(port: int, say: Any) -> None:
    """Serve until Ctrl-C; `say` prints the URL (with its token) once the port is bound."""
    import uvicorn

    token = secrets.token_urlsafe(24)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)  # connections queue from here, before the server takes over
    bound = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            make_app(token), log_level="warning", timeout_graceful_shutdown=1, lifespan="off"
        )
    )
    say(f"dashboard on http://127.0.0.1:{bound}/?token={token}")
    server.run(sockets=[sock])


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trade dashboard</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; background: #fafafa; }
.session { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 12px;
  margin-bottom: 16px; }
.session h2 { margin: 0 0 8px; font-size: 16px; }
.facts { display: grid; grid-template-columns: repeat(4, auto); gap: 4px 16px; width: max-content; }
.facts dt { color: #777; } .facts dd { margin: 0; font-variant-numeric: tabular-nums; }
.price { height: 320px; margin-top: 8px; } .equity { height: 140px; margin-top: 8px; }
.cols { display: grid; grid-template-columns: 1fr 1fr 1fr; gap: 12px; margin-top: 8px; }
.cols ol { margin: 0; padding-left: 18px; font-size: 12px; max-height: 220px; overflow: auto; }
.halted { color: #c62828; font-weight: bold; }
</style></head>
<body>
<h1>Sessions</h1>
<div id="sessions"><p id="empty">no sessions yet</p></div>
<script src="/vendor/lightweight-charts.js?token=__TOKEN_RAW__"></script>
<script>
(function () {
  "use strict";
  var TOKEN = __TOKEN__, LC = LightweightCharts;
  var dash = window.dash = { sessions: {}, markers: {}, updates: 0 };
  var FIELDS = ["state", "mode", "position", "stop", "target", "equity", "day_pnl", "orders",
    "halted", "guards", "last_bar", "streams"];
  function num(x) { return x === null || x === undefined ? "-" : Number(x).toLocaleString("en-US",
    { minimumFractionDigits: 2, maximumFractionDigits: 2 }); }
  function iso(ms) { return ms ? new Date(ms).toISOString().slice(0, 16).replace("T", " ") : "-"; }
  function card(name) {
    var el = document.createElement("section");
    el.className = "session"; el.dataset.session = name;
    var h = document.createElement("h2"); h.textContent = name; el.appendChild(h);
    var dl = document.createElement("dl"); dl.className = "facts";
    FIELDS.forEach(function (f) {
      var dt = document.createElement("dt"); dt.textContent = f.replace("_", " ");
      var dd = document.createElement("dd"); dd.dataset.field = f;
      dl.appendChild(dt); dl.appendChild(dd);
    });
    el.appendChild(dl);
    var price = document.createElement("div"); price.className = "price"; el.appendChild(price);
    var eq = document.createElement("div"); eq.className = "equity"; el.appendChild(eq);
    var cols = document.createElement("div"); cols.className = "cols";
    ["orders", "decisions", "journal"].forEach(function (k) {
      var box = document.createElement("div");
      var t = document.createElement("h3"); t.textContent = k; box.appendChild(t);
      var ol = document.createElement("ol"); ol.dataset.list = k; box.appendChild(ol);
      cols.appendChild(box);
    });
    el.appendChild(cols);
    var empty = document.getElementById("empty"); if (empty) empty.remove();
    document.getElementById("sessions").appendChild(el);
    var opts = { autoSize: true, timeScale: { timeVisible: true, secondsVisible: false },
      layout: { background: { color: "#ffffff" }, textColor: "#333" } };
    var chart = LC.createChart(price, opts);
    var candles = chart.addSeries(LC.CandlestickSeries, { upColor: "#26a69a",
      downColor: "#ef5350", borderVisible: false, wickUpColor: "#26a69a", wickDownColor: "#ef5350" });
    var echart = LC.createChart(eq, opts);
    var line = echart.addSeries(LC.LineSeries, { color: "#1565c0", lineWidth: 2, title: "equity" });
    return { el: el, candles: candles, markers: LC.createSeriesMarkers(candles, []), equity: line,
      chart: chart };
  }
  function set(s, field, text) { s.el.querySelector('[data-field="' + field + '"]').textContent = text; }
  function list(s, key, items) {
    var ol = s.el.querySelector('[data-list="' + key + '"]');
    ol.textContent = "";
    items.forEach(function (t) { var li = document.createElement("li"); li.textContent = t; ol.appendChild(li); });
  }
  function render(p) {
    var s = dash.sessions[p.name] || (dash.sessions[p.name] = card(p.name));
    var st = p.status;
    set(s, "state", st.state);
    set(s, "mode", st.mode + " · " + st.play + " · " + st.symbol);
    set(s, "position", !st.side || st.side === "flat" ? "flat" :
      st.side + " " + st.qty + " @ " + num(st.entry_price));
    set(s, "stop", num(st.stop)); set(s, "target", num(st.target));
    set(s, "equity", num(st.equity)); set(s, "day_pnl", num(st.day_pnl));
    set(s, "orders", String((st.open_orders || []).length));
    set(s, "halted", st.halted || "no");
    s.el.querySelector('[data-field="halted"]').className = st.halted ? "halted" : "";
    set(s, "guards", Object.keys(st.guards || {}).map(function (k) { return k + ": " + st.guards[k]; }).join("; ") || "-");
    var b = st.last_bar;
    set(s, "last_bar", b ? b.tf + " " + iso(b.start) + " close " + num(b.close) : "-");
    var str = st.streams || {};
    set(s, "streams", "public " + (str.public || "-") + " · private " + (str.private || "-"));
    s.candles.setData(p.bars);
    s.markers.setMarkers(p.markers);
    dash.markers[p.name] = p.markers;
    s.equity.setData(p.equity);
    list(s, "orders", (st.open_orders || []).map(function (o) { return JSON.stringify(o); }));
    list(s, "decisions", p.decisions.slice().reverse().map(function (d) {
      return iso(d.ts) + " " + d.kind + " " + d.side + " (" + d.block + ")"; }));
    list(s, "journal", p.journal.slice().reverse().map(function (j) {
      return iso(j.ts) + " " + j.kind + ": " + j.message; }));
    dash.updates += 1;
  }
  var es = new EventSource("/events?token=" + encodeURIComponent(TOKEN));
  es.addEventListener("session", function (e) { render(JSON.parse(e.data)); });
})();
</script>
</body></html>
"""
