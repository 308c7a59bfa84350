"""Market store speed: load 1,000,000 1m bars for a window from DuckDB into numpy (target < 0.5 s) and
import the bundled sample into a fresh store (target < 5 s).

    python benchmarks/data.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from trade.data import MarketStore, synthetic_market


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        with MarketStore(Path(d) / "s.duckdb") as store:
            store.ensure_sample()
        print(
            f"import bundled sample into a fresh store: {time.perf_counter() - t:.2f} s (target < 5 s)"
        )
        bars = synthetic_market("volatile", 1_200_000, 1, symbol="BENCH")
        with MarketStore(Path(d) / "b.duckdb") as store:
            store.write_ohlcv(bars)
            lo, hi = int(bars.ts[100_000]), int(bars.ts[1_100_000])
            best = min(_timed(lambda: store.load_bars("BENCH", "1m", lo, hi)) for _ in range(3))
            n = len(store.load_bars("BENCH", "1m", lo, hi))
        print(f"load {n:,} 1m bars for a window into numpy: {best:.3f} s (target < 0.5 s)")


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
