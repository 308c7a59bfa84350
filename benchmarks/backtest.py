"""End-to-end `trade backtest run` wall time: two years of real BTCUSDT 15m bars, a 4-indicator
Play (EMA 20/50, RSI 14, ATR 14 stop), every artifact and the HTML report written. Target: under
3 s with warm caches (the first run, which compiles the kernels, is printed but not judged).

    python benchmarks/backtest.py [--market-dir DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAY = """\
version: "1"
name: bench_four_indicators
symbol: BTCUSDT
timeframes: {low_tf: 15m, exec: low_tf}
account: {starting_equity: 10000, leverage: 3}
features:
  ema_fast: {indicator: ema, params: {length: 20}}
  ema_slow: {indicator: ema, params: {length: 50}}
  rsi: {indicator: rsi, params: {length: 14}}
  atr: {indicator: atr, params: {length: 14}}
actions:
  entry_long: [[ema_fast, ">", ema_slow], [rsi, cross_above, 50]]
  exit_long: [[ema_fast, cross_below, ema_slow]]
position_policy: {mode: long_only, exit_mode: first_hit}
risk:
  stop_loss: {type: atr_multiple, value: 2, atr: atr}
  take_profit: {type: rr_ratio, value: 3}
  sizing: {model: risk_based, value: 1.0}
"""
WINDOW = ("2024-01-01", "2026-01-01")
FILES = ("bybit_BTCUSDT_15m.csv.gz", "bybit_BTCUSDT_funding.csv.gz", "bybit_BTCUSDT_mark_1h.csv.gz")


def trade(db: Path, *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "trade.cli.main", "--db", str(db), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return time.perf_counter() - t0, done.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--market-dir",
        type=Path,
        default=Path(
            os.environ.get("TRADE_MARKET_DATA")
            or Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "market"
        ),
        help="real data files (default: $TRADE_MARKET_DATA, else the test fixtures)",
    )
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db, play = Path(tmp) / "m.duckdb", Path(tmp) / "bench.yml"
        play.write_text(PLAY)
        trade(db, "data", "import", *(str(a.market_dir / f) for f in FILES))
        walls = []
        for k in range(a.runs + 1):
            out = Path(tmp) / f"run{k}"
            args = [
                "--play",
                str(play),
                "--start",
                WINDOW[0],
                "--end",
                WINDOW[1],
                "--out",
                str(out),
            ]
            wall, stdout = trade(db, "backtest", "run", *args, "--json")
            walls.append(wall)
            result = json.loads(stdout)
        print(
            f"trade backtest run: {result['evaluated_instants']:,} 15m bars ({WINDOW[0]} → "
            f"{WINDOW[1]}), 4 indicators, {result['trades']} trades"
        )
        print(f"first run (compiles kernels): {walls[0]:.2f} s wall")
        print(
            f"warm runs: {', '.join(f'{w:.2f}' for w in walls[1:])} s wall; best {min(walls[1:]):.2f} s"
            " (target < 3 s)"
        )


if __name__ == "__main__":
    main()
