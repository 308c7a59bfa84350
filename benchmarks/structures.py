"""Structure detectors speed: all seven together over N bars (target: 1,000,000 bars in under 3 s).

python benchmarks/structures.py [--bars 1000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from trade.data import synthetic_market
from trade.data.bars import Bars
from trade.features.registry import default_catalog
from trade.features.structures import compute_structure_batch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    n = ap.parse_args().bars
    b = synthetic_market("volatile", n, 5)
    cat = default_catalog()

    def p(t: str, **raw: object) -> dict:
        spec = cat.get(t)
        assert spec is not None
        return spec.resolve_params(raw)

    atr = {"value": np.full(n, float(np.mean(b.high - b.low)))}

    def run_all(bars: Bars, atr: dict[str, np.ndarray]) -> None:
        s = compute_structure_batch("swing", p("swing"), bars, {})
        for t, raw, deps in (
            ("trend", {}, {"swing": s}),
            ("market_structure", {}, {"swing": s}),
            ("fibonacci", {}, {"swing": s}),
            ("zone", {}, {"swing": s, "atr": atr}),
            ("derived_zone", {}, {"swing": s}),
            ("rolling_window", {}, {}),
        ):
            compute_structure_batch(t, p(t, **raw), bars, deps)

    warm = min(n, 1000)  # compile (or load the cached machine code) outside the timing
    run_all(b.slice(0, warm), {"value": atr["value"][:warm]})
    t0 = time.perf_counter()
    run_all(b, atr)
    dt = time.perf_counter() - t0
    print(
        f"7 detectors over {n:,} bars: {dt:.2f} s ({n / dt:,.0f} bars/s; target 1,000,000 bars < 3 s)"
    )


if __name__ == "__main__":
    main()
