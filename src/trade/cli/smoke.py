"""`trade --smoke quick|full`: offline end-to-end self-check, one line per step, non-zero on failure."""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from ..errors import TradeError

console = Console(highlight=False)
ROOT = Path(__file__).resolve().parents[3]


def _examples() -> list[Path]:
    from ..play.resolve import search_dirs

    for d in search_dirs():
        if d.name == "examples":
            return sorted(d.glob("*.yml"))
    return []


def run_smoke(level: str) -> int:
    """Run the smoke steps; returns the exit code (0 all passed, 1 a step failed)."""
    from ..engine.backtest import run_backtest

    tmp = Path(tempfile.mkdtemp(prefix="trade-smoke-"))
    db = tmp / "market.duckdb"
    steps: list[tuple[str, Callable[[], str]]] = []
    examples = _examples()

    def validate_all() -> str:
        from ..play import validate_play

        for p in examples:
            validate_play(p)
        return f"{len(examples)} Plays valid"

    def parity(p: Path) -> Callable[[], str]:
        def step() -> str:
            fast = run_backtest(p, mode="fast", db=db)
            replay = run_backtest(p, mode="replay", db=db)
            f, r = fast.result["trades_fingerprint"], replay.result["trades_fingerprint"]
            if f != r:
                raise AssertionError(
                    f"fast {fast.result['trades']} trades {f[:12]} != replay {replay.result['trades']} trades {r[:12]}"
                )
            if fast.result["trades"] == 0:
                raise AssertionError("no trades on the bundled sample")
            return f"{fast.result['trades']} trades, fingerprint {f[:12]}"

        return step

    def toolkit() -> str:
        from .main import run

        with contextlib.redirect_stdout(io.StringIO()):
            code = run(["backtest", "audit-toolkit", "--bars", "1500"])
        if code:
            raise AssertionError("audit-toolkit failed")
        return "44 indicators"

    def inc_parity() -> str:
        from .main import run

        with contextlib.redirect_stdout(io.StringIO()):
            code = run(["backtest", "audit-incremental-parity", "--bars", "600"])
        if code:
            raise AssertionError("audit-incremental-parity failed")
        return "batch == incremental"

    def data_checks() -> str:
        import numpy as np

        from ..data import MarketStore, resample

        with MarketStore(db) as store:
            store.ensure_sample()
            m1 = store.load_bars("BTCUSDT", "1m", None, None)
            if np.any(np.diff(m1.ts) != 60_000):
                raise AssertionError("gaps in the bundled 1m sample")
            m15 = store.load_bars("BTCUSDT", "15m", int(m1.ts[0]), int(m1.ts[-1]))
            r = resample(m1, "15m")
            common, i, j = np.intersect1d(r.ts, m15.ts, return_indices=True)
            if len(common) < 100 or not np.array_equal(r.close[i], m15.close[j]):
                raise AssertionError("1m → 15m resampling differs from the stored 15m bars")
        return f"sample coherent ({len(m1):,} 1m bars, {len(common):,} 15m bars checked)"

    steps.append(("validate example Plays", validate_all))
    if level == "quick":
        steps.append(
            (
                "parity ema_cross (fast vs replay)",
                parity(next(p for p in examples if p.stem == "ema_cross")),
            )
        )
        steps.append(("indicator toolkit", toolkit))
    else:
        steps.append(("data checks", data_checks))
        for p in examples:
            steps.append((f"parity {p.stem} (fast vs replay)", parity(p)))
        steps.append(("indicator toolkit", toolkit))
        steps.append(("indicator incremental parity", inc_parity))
    failed = 0
    t_all = time.perf_counter()
    for name, fn in steps:
        t = time.perf_counter()
        try:
            detail = fn()
            console.print(
                f"PASS  {name:48s} {time.perf_counter() - t:6.1f}s  {detail}",
                markup=False,
                soft_wrap=True,
            )
        except (AssertionError, TradeError) as exc:
            failed += 1
            console.print(
                f"FAIL  {name:48s} {time.perf_counter() - t:6.1f}s  {exc}",
                markup=False,
                soft_wrap=True,
            )
    console.print(
        f"smoke {level}: {len(steps) - failed}/{len(steps)} passed in {time.perf_counter() - t_all:.1f}s",
        markup=False,
    )
    return 1 if failed else 0
