"""Simulator speed: 1m bars checked per second while a position with TP/SL is open, over 1,000,000
bars (target >= 10,000,000/s), against the per-bar Python walk of the same simulator.

    python benchmarks/sim.py [--bars 1000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from trade.instruments import InstrumentSpec
from trade.sim import AccountConfig, Level, OrderRequest, SimulatedExchange

SPEC = InstrumentSpec("B", tick_size=0.01, qty_step=0.001, min_qty=0.001, min_notional=5.0)


def run(n: int, scan: bool) -> tuple[float, int]:
    rng = np.random.default_rng(3)
    c = 100 * np.exp(
        np.cumsum(rng.normal(0, 0.00002, n))
    )  # a quiet market: the stop/target stay far
    o = np.concatenate([[100.0], c[:-1]])
    h, lo = np.maximum(o, c) * 1.0001, np.minimum(o, c) * 0.9999
    ts = np.arange(n, dtype=np.int64) * 60_000
    sim = SimulatedExchange(
        SPEC, AccountConfig(starting_equity=10_000.0), exec_tf_ms=900_000, scan=scan
    )
    sim.load(ts, ts + 60_000, o, h, lo, c)
    sim.submit(
        OrderRequest(
            side="buy",
            qty=1.0,
            stop_loss=Level("percent", 50.0),
            take_profit=Level("percent", 50.0),
        ),
        0,
    )
    sim.advance_to(60_000)
    t = time.perf_counter()
    sim.advance_to(int(ts[-1]) + 60_000)
    return time.perf_counter() - t, n - 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    n = ap.parse_args().bars
    run(10_000, True)  # JIT warm-up
    fast_s, bars = run(n, True)
    slow_s, _ = run(min(n, 200_000), False)
    slow_rate = min(n, 200_000) / slow_s
    print(f"open position with TP/SL over {bars:,} 1m bars")
    print(f"jitted scan : {fast_s * 1e3:8.1f} ms  {bars / fast_s:14,.0f} bars/s")
    print(
        f"per-bar walk: {'':8s}     {slow_rate:14,.0f} bars/s  (measured on {min(n, 200_000):,} bars)"
    )
    print(f"speed-up    : {bars / fast_s / slow_rate:8.1f}x")


if __name__ == "__main__":
    main()
