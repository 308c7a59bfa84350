"""What guards cost a backtest: the same Play on two years of real BTCUSDT 15m bars, without guards
and with guards that never trip (same trades), in fast and replay mode. A guarded Play is evaluated
at every instant (no jitted loop, no skipping between signals), so fast mode slows down for it;
this prints by how much. No target: the figures say what docs/operations.md states.

    python benchmarks/guards.py [--market-dir DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backtest import FILES, PLAY, WINDOW  # the end-to-end benchmark's Play and data

GUARDS = """\
  guards:
    max_daily_loss_pct: 100
    max_drawdown_pct: 99
    max_position_notional: 100000000
    max_orders_per_minute: 50
"""


def best(runs: int, fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    walls, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return min(walls), out


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
    from trade.engine.backtest import run_backtest

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "m.duckdb"
        cmd = [sys.executable, "-m", "trade.cli.main", "--db", str(db), "data", "import"]
        subprocess.run([*cmd, *(str(a.market_dir / f) for f in FILES)], check=True,
                       capture_output=True)  # fmt: skip
        plain, guarded = Path(tmp) / "plain.yml", Path(tmp) / "guarded.yml"
        plain.write_text(PLAY)
        guarded.write_text(PLAY + GUARDS)
        times: dict[tuple[str, str], float] = {}
        for mode in ("fast", "replay"):
            for name, play in (("unguarded", plain), ("guarded", guarded)):
                run_backtest(play, start=WINDOW[0], end=WINDOW[1], mode=mode, db=db)  # warm
                wall, res = best(
                    a.runs,
                    lambda p=play, m=mode: run_backtest(
                        p, start=WINDOW[0], end=WINDOW[1], mode=m, db=db
                    ),
                )
                times[mode, name] = wall
                r = res.result  # type: ignore[attr-defined]
                print(f"{mode:<7}{name:<10} {wall:6.2f} s  {r['trades']} trades  "
                      f"{r['evaluated_instants']:,} instants  {r['trades_fingerprint'][:16]}")  # fmt: skip
        for mode in ("fast", "replay"):
            ratio = times[mode, "guarded"] / times[mode, "unguarded"]
            print(f"{mode}: guarded / unguarded = {ratio:.2f}×")
        print(
            f"guarded fast / guarded replay = {times['fast', 'guarded'] / times['replay', 'guarded']:.2f}×"
        )


if __name__ == "__main__":
    main()
