"""report.html in a real headless Chromium: no console errors; the Play's indicators drawn in the
right panes with the right values; a wheel zooms the price chart; hovering a trade marker shows its
tooltip; the monthly heatmap matches equity.csv. Needs Debian's `chromium`; marked `browser`."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import talib

from trade.cli.main import run

pytestmark = pytest.mark.browser
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

PLAY = """\
version: "1"
name: ema_rsi
symbol: BTCUSDT
timeframes: {low_tf: 15m, med_tf: 1h, high_tf: 4h, exec: low_tf}
account: {starting_equity: 10000, leverage: 1}
features:
  ema_fast: {indicator: ema, params: {length: 20}}
  ema_slow: {indicator: ema, params: {length: 50}}
  rsi: {indicator: rsi, params: {length: 14}}
actions:
  entry_long: [[ema_fast, cross_above, ema_slow], [rsi, ">", 45]]
  exit_long: [[ema_fast, cross_below, ema_slow]]
position_policy: {mode: long_only, exit_mode: first_hit}
risk:
  stop_loss: {type: percent, value: 3}
  sizing: {model: percent_equity, value: 100}
"""

# Runs inside the page after the report's own script: zoom with a wheel, hover a trade's exit
# marker, then write what it saw into <pre id="probe">.
PROBE = """
<script>
setTimeout(function () {
  var r = window.report, out = {};
  out.candles = r.data.candles.t.length;
  var names = Object.keys(r.indicators);
  out.indicators = {};
  names.forEach(function (n) {
    var s = r.indicators[n], pts = s.data().filter(function (p) { return p.value !== undefined; });
    out.indicators[n] = { pane: s.getPane().paneIndex(), points: pts.length,
      last: pts[pts.length - 1].value, last_time: pts[pts.length - 1].time };
  });
  var box = document.getElementById("price").getBoundingClientRect();
  var ts = r.chart.timeScale();
  var before = ts.getVisibleLogicalRange();
  var cx = box.left + box.width / 2, cy = box.top + 150;
  // wheel in until ~150 candles show (each notch zooms a step), so a candle is wider than a pixel
  for (var k = 0; k < 60 && (ts.getVisibleLogicalRange().to - ts.getVisibleLogicalRange().from) > 150; k++) {
    document.elementFromPoint(cx, cy).dispatchEvent(new WheelEvent("wheel",
      { clientX: cx, clientY: cy, deltaY: -600, deltaMode: 0, bubbles: true, cancelable: true }));
  }
  setTimeout(function () {
    var after = ts.getVisibleLogicalRange();
    out.zoom = { before: before.to - before.from, after: after.to - after.from };
    var width = ts.width(), pick = null;
    r.data.trades.forEach(function (t) {
      var x = ts.timeToCoordinate(t.exit);
      if (pick === null && x !== null && x > 60 && x < width - 60) pick = t;
    });
    out.picked = pick;
    var x = box.left + ts.timeToCoordinate(pick.exit), y = box.top + r.candles.priceToCoordinate(pick.exit_price);
    var el = document.elementFromPoint(x, y);
    el.dispatchEvent(new MouseEvent("mouseenter", { clientX: x, clientY: y, bubbles: true }));
    el.dispatchEvent(new MouseEvent("mousemove", { clientX: x, clientY: y, bubbles: true }));
    setTimeout(function () {
      var tip = document.getElementById("tooltip");
      out.tooltip = { text: tip.textContent, display: getComputedStyle(tip).display };
      var pre = document.createElement("pre");
      pre.id = "probe";
      pre.textContent = JSON.stringify(out);
      document.body.appendChild(pre);
    }, 300);
  }, 300);
}, 500);
</script>
"""


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    return exe


def load(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran (5 s of virtual time), and every console message of the page."""
    r = subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,2000",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    return r.stdout, console


def test_console_check_catches_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>missingFunction();</script></body></html>")
    _, console = load(bad, tmp_path / "p0")
    assert any("Uncaught ReferenceError" in line for line in console)


def monthly_from_equity_csv(path: Path) -> dict[str, float]:
    last: dict[str, float] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            last[row["time"][:7]] = float(row["equity"])
    out, prev = {}, 10000.0
    for month, eq in last.items():
        out[month] = (eq / prev - 1) * 100
        prev = eq
    return out


def test_report_charts_indicators_tooltip_and_heatmap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    play = tmp_path / "ema_rsi.yml"
    play.write_text(PLAY)
    out = tmp_path / "run"
    db = str(tmp_path / "m.duckdb")
    assert (
        run(["backtest", "run", "--play", str(play), "--db", db, "--out", str(out), "--json"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["trades"] > 3
    page = out / "report.html"
    text = page.read_text()
    assert "<script src" not in text and "http://" not in text.replace("http://www.w3.org", "")
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(text.replace("</body>", PROBE + "</body>"))
    dom, console = load(probe_page, tmp_path / "p1")
    assert console == []
    probe = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S).group(1))

    # indicators: EMAs over the candles, RSI in a pane of its own, values as TA-Lib computes them
    ind = probe["indicators"]
    assert set(ind) == {"ema_fast", "ema_slow", "rsi"}
    assert ind["ema_fast"]["pane"] == 0 and ind["ema_slow"]["pane"] == 0
    assert ind["rsi"]["pane"] == 1
    from trade.data import MarketStore

    with MarketStore(Path(db)) as store:
        bars = store.load_bars("BTCUSDT", "15m", None, None)
    closes = bars.close[bars.ts + 900_000 <= ind["ema_fast"]["last_time"] * 1000 + 900_000]
    assert ind["ema_fast"]["last"] == pytest.approx(talib.EMA(closes, 20)[-1], rel=1e-9)
    assert ind["ema_slow"]["last"] == pytest.approx(talib.EMA(closes, 50)[-1], rel=1e-9)
    assert ind["rsi"]["last"] == pytest.approx(talib.RSI(closes, 14)[-1], rel=1e-6)
    assert ind["ema_fast"]["points"] == probe["candles"]  # a value on every candle

    # a wheel over the chart zooms in
    assert probe["zoom"]["after"] <= 150 < probe["zoom"]["before"]  # candles visible

    # hovering a trade's exit marker shows that trade
    t = probe["picked"]
    tip = probe["tooltip"]
    assert tip["display"] == "block"
    assert tip["text"].startswith(f"#{t['id']} long\nentry {t['entry_time']} @ ")
    assert f"reason {t['reason']}" in tip["text"]
    assert f"pnl {t['pnl']:+.2f}" in tip["text"]

    # the monthly heatmap holds the month-end equity returns
    cells = dict(re.findall(r'data-month="(\d{4}-\d\d)" data-value="([-0-9.e]+)"', dom))
    expected = monthly_from_equity_csv(out / "equity.csv")
    assert set(cells) == set(expected)
    for month, value in expected.items():
        assert float(cells[month]) == pytest.approx(value, abs=1e-9)

    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={tmp_path / 'p2'}",
            f"--screenshot={shot}",
            "--window-size=1400,2000",
            "--virtual-time-budget=5000",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=180,
        check=True,
    )
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
