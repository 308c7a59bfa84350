"""Simulator speed: 1m bars checked per second while a position with TP/SL is open, over 1,000,000
bars (target >= 10,000,000/s), against the same simulator walking bar by bar in Python (the
per-bar reference) and being fed one bar at a time (replay / paper), in the same process.

    python benchmarks/sim.py [--bars 1000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from trade.instruments import InstrumentSpec
from trade.sim import AccountConfig, Level, OrderRequest, SimulatedExchange

SPEC = InstrumentSpec("B", tick_size=0.01, qty_step=0.001, min_qty=0.001, min_notional=5.0)
M = 60_000


def market(n: int) -> tuple[np.ndarray, ...]:
    """A quiet random walk: the stop and target (±50%) stay out of reach for the whole run."""
    rng = np.random.default_rng(3)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.00002, n)))
    o = np.concatenate([[100.0], c[:-1]])
    h, lo = np.maximum(o, c) * 1.0001, np.minimum(o, c) * 0.9999
    ts = np.arange(n, dtype=np.int64) * M
    return ts, o, h, lo, c


ENTRY = OrderRequest(
    side="buy", qty=1.0, stop_loss=Level("percent", 50.0), take_profit=Level("percent", 50.0)
)


def run(n: int, mode: str) -> float:
    """Seconds to check bars 1..n-1 with the position open (mode: scan, walk or feed)."""
    ts, o, h, lo, c = market(n)
    sim = SimulatedExchange(
        SPEC, AccountConfig(starting_equity=10_000.0), exec_tf_ms=15 * M, scan=mode != "walk"
    )
    if mode == "feed":
        sim.submit(ENTRY, 0)
        sim.feed((0, M, o[0], h[0], lo[0], c[0]))
        rows = list(
            zip(
                ts.tolist(),
                (ts + M).tolist(),
                o.tolist(),
                h.tolist(),
                lo.tolist(),
                c.tolist(),
                strict=False,
            )
        )
        t = time.perf_counter()
        for row in rows[1:]:
            sim.feed(row)
    else:
        sim.load(ts, ts + M, o, h, lo, c)
        sim.submit(ENTRY, 0)
        sim.advance_to(M)
        t = time.perf_counter()
        sim.advance_to(int(ts[-1]) + M)
    elapsed = time.perf_counter() - t
    assert sim.position is not None and not sim.trades
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    n = ap.parse_args().bars
    small = min(n, 100_000)
    run(10_000, "scan")  # JIT warm-up
    rates = {
        "scan": (n - 1) / run(n, "scan"),
        "walk": (small - 1) / run(small, "walk"),
        "feed": (small - 1) / run(small, "feed"),
    }
    print(f"open position with TP/SL, {n - 1:,} 1m bars checked")
    print(f"load + advance_to (jitted scan): {rates['scan']:14,.0f} bars/s   (target 10,000,000)")
    print(f"per-bar walk (reference)       : {rates['walk']:14,.0f} bars/s   ({small - 1:,} bars)")
    print(f"feed one bar at a time         : {rates['feed']:14,.0f} bars/s   ({small - 1:,} bars)")
    print(f"scan / per-bar walk            : {rates['scan'] / rates['walk']:10.1f}x")
    print(f"scan / feed                    : {rates['scan'] / rates['feed']:10.1f}x")


if __name__ == "__main__":
    main()
