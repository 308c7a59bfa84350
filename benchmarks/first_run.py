"""The Quick-start command, `trade backtest run --play ema_cross`, cold and warm.

Cold: an empty numba cache directory and a new market store, as on a fresh install (the kernels
compile, the bundled sample is imported). Warm: the same command again with both in place.
Target: cold under 20 s on a 2-core machine; warm is what every later run costs.

    python benchmarks/first_run.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_COLD_S = 20.0


def quick_start(tmp: Path, out: str, cache: Path) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, stderr) of one Quick-start run."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "trade.cli.main", "--db", str(tmp / "market.duckdb")]
    cmd += ["backtest", "run", "--play", "ema_cross", "--out", str(tmp / out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stderr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="warm runs (the best is reported)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cache = tmp / "numba"
        wall, cpu, err = quick_start(tmp, "cold", cache)
        said = "compiling numeric kernels" in err
        print(f"cold  {wall:6.2f} s wall  {cpu:6.2f} s CPU  (notice shown: {said})")
        warm = [quick_start(tmp, f"warm{i}", cache)[:2] for i in range(a.runs)]
        w_wall, w_cpu = min(warm)
        print(f"warm  {w_wall:6.2f} s wall  {w_cpu:6.2f} s CPU  (best of {a.runs})")
        print(
            f"cold / warm {wall / w_wall:5.1f}x   cold target {TARGET_COLD_S:.0f} s: "
            f"{'met' if wall < TARGET_COLD_S else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
