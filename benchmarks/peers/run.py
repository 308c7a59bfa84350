"""Peer benchmark: the EMA(20)/EMA(50) cross by our fast mode, our replay mode, vectorbt,
backtesting.py and backtrader on (a) the real BTCUSDT 15m history and (b) 1,000,000 synthetic 1m
bars executed at 1m. Prints trades, final equity, compute seconds, bars/s and our throughput over
each peer's; exits 1 if any engine's trades differ from the plain-Python reference.

    pip install -e '.[peers]'
    python benchmarks/peers/run.py [--market-dir DIR] [--bars 1000000] [--skip-slow]

Our time includes feature computation; peers get precomputed signals (they are timed on execution
only), which favours them.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers
from trade.data import synthetic_market
from trade.data.bars import Bars
from trade.engine.market import window_from_bars
from trade.engine.runner import run_fast, run_replay
from trade.instruments import InstrumentSpec
from trade.play import validate_play_text

PLAY = (Path(__file__).resolve().parent / "ema_cross.yml").read_text()
FRACTIONAL = InstrumentSpec(
    "BENCH", tick_size=1e-8, qty_step=1e-12, min_qty=1e-12, min_notional=0.0
)


def ours(bars: Bars, mode: str) -> tuple[list[peers.Trade], float, float, int]:
    compiled = validate_play_text(
        PLAY.replace("low_tf: 15m", f"low_tf: {bars.timeframe}"), "ema_cross_bench.yml"
    )
    t0 = time.perf_counter()
    window = window_from_bars(compiled, bars, instrument=FRACTIONAL)
    out = (run_fast if mode == "fast" else run_replay)(
        compiled, window, intrabar_policy="pessimistic"
    )
    seconds = time.perf_counter() - t0
    start_idx = int(np.searchsorted(bars.ts, window.start_ms))
    trades = [
        (int(t["entry_time"]), float(t["entry_price"]), int(t["exit_time"]), float(t["exit_price"]))
        for t in out.trades
        if t["exit_reason"] == "signal"
    ]
    return trades, float(out.equity[-1]), seconds, start_idx


def same(a: list[peers.Trade], b: list[peers.Trade]) -> bool:
    return len(a) == len(b) and all(
        x[0] == y[0]
        and x[2] == y[2]
        and abs(x[1] - y[1]) <= 1e-9 * y[1]
        and abs(x[3] - y[3]) <= 1e-9 * y[3]
        for x, y in zip(a, b, strict=True)
    )


def workload(label: str, bars: Bars, skip_slow: bool) -> bool:
    print(f"\n== {label}: {len(bars):,} bars ==")
    # warm the JIT caches of both modes outside the timing (replay's incremental kernels too)
    ours(bars.slice(0, 3000), "fast")
    ours(bars.slice(0, 3000), "replay")
    fast_trades, fast_eq, fast_s, start = ours(bars, "fast")
    up, dn = peers.signals(bars.close, start)
    args = (bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume, up, dn)
    ref, ref_eq, _ = peers.reference(bars.ts, bars.open, bars.close, up, dn)
    rows = [("ours fast", fast_trades, fast_eq, fast_s)]
    rows.append(("ours replay", *ours(bars, "replay")[:3]))
    peers.run_vectorbt(*[a[:3000] for a in args])  # compile vectorbt's numba outside the timing
    for name, fn in (
        ("vectorbt", peers.run_vectorbt),
        ("backtesting.py", peers.run_backtesting_py),
        ("backtrader", peers.run_backtrader),
    ):
        if skip_slow and name != "vectorbt" and len(bars) > 200_000:
            print(f"{name}: skipped (--skip-slow)")
            continue
        rows.append((name, *fn(*args)))
    ok = True
    print(
        f"{'engine':16s} {'trades':>7s} {'final equity':>14s} {'seconds':>9s} {'bars/s':>12s} {'speed-up of ours fast':>22s} same trades"
    )
    for name, trades, eq, s in rows:
        match = same(trades, ref)
        ok &= match
        ratio = s / fast_s if fast_s else float("nan")
        print(
            f"{name:16s} {len(trades):7d} {eq:14.4f} {s:9.3f} {len(bars) / s:12,.0f} {ratio:22.2f} {'yes' if match else 'NO'}"
        )
    print(f"reference        {len(ref):7d} {ref_eq:14.4f}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--market-dir",
        type=Path,
        default=Path(__file__).resolve().parents[3] / "shared" / "data" / "market",
    )
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument(
        "--skip-slow", action="store_true", help="skip backtesting.py/backtrader on the 1m workload"
    )
    a = ap.parse_args()
    with gzip.open(a.market_dir / "bybit_BTCUSDT_15m.csv.gz", "rt") as fh:
        r = np.loadtxt(fh, delimiter=",", skiprows=1)
    real = Bars.from_arrays(
        "BTCUSDT", "15m", r[:, 0].astype(np.int64), r[:, 1], r[:, 2], r[:, 3], r[:, 4], r[:, 5]
    )
    ok = workload("(a) real BTCUSDT 15m", real, a.skip_slow)
    ok &= workload(
        "(b) synthetic 1m executed at 1m",
        synthetic_market("volatile", a.bars, 42, symbol="BENCH"),
        a.skip_slow,
    )
    if not ok:
        print("\nFAIL: some engine's trades differ from the reference")
        return 1
    print("\nall engines took the reference's trades")
    return 0


if __name__ == "__main__":
    sys.exit(main())
