"""Sweep benchmark: a 20×20 grid of the EMA cross (400 combinations) by `trade sweep`'s machinery,
side by side with vectorbt's broadcast of the same grid (one Portfolio over 400 columns), in the
same run, on the real BTCUSDT 15m history of the test fixtures (its length is printed). Both must
produce the same number of closed trades in every combination (exit 1 otherwise). Prints seconds
end to end, the ratio, and our speed-up from 1 to 2 worker processes.

    pip install -e '.[peers]'
    python benchmarks/sweep.py [--market-dir DIR] [--repeat 5]

Ours is timed from the bars in memory to the written sweep.csv (every combination's features,
simulation, metrics, trades fingerprint and the diagnostics); vectorbt from the close prices to
its trade records (the EMA signals computed with TA-Lib, the EMA ours matches, then one broadcast
`Portfolio.from_signals`), in a process of its own. Both after a warm-up that compiles their numba
code. The engines take turns, round after round, and each one's best round is reported.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import peers
from trade.data.bars import Bars
from trade.engine.market import MarketData, warmup_ms
from trade.instruments import InstrumentSpec
from trade.play import validate_play_text
from trade.play.space import as_text
from trade.sweep.jobs import SweepData
from trade.sweep.run import Plan, build_space, run_sweep

FAST = list(range(5, 45, 2))  # 20 values
SLOW = list(range(50, 250, 10))  # 20 values, every one above every fast
PLAY = (Path(__file__).resolve().parent / "peers" / "ema_cross.yml").read_text()
PLAY = PLAY.replace("variables: {tf: 15m}", "variables: {fast: 20, slow: 50}")
PLAY = PLAY.replace("length: 20}", 'length: "{{fast}}"}').replace(
    "length: 50}", 'length: "{{slow}}"}'
)
FRACTIONAL = InstrumentSpec(
    "BENCH", tick_size=1e-8, qty_step=1e-12, min_qty=1e-12, min_notional=0.0
)


def make_plan(bars: Bars) -> Plan:
    """The sweep's plan on bars in memory (no store): one timeframe, no 1m, no marks or funding."""
    base = validate_play_text(PLAY, "ema_cross_sweep_bench.yml")
    space = build_space(
        base, [f"fast={','.join(map(str, FAST))}", f"slow={','.join(map(str, SLOW))}"]
    )
    need = 0
    for f in (min(FAST), max(FAST)):
        for s in (min(SLOW), max(SLOW)):
            c = validate_play_text(PLAY, "b.yml", {"fast": as_text(f), "slow": as_text(s)})
            need = max(need, warmup_ms(c)[c.exec_tf])
    start = int(bars.ts[0]) + need
    end = int(bars.ts[-1]) + bars.tf_ms
    data = MarketData(
        symbol=bars.symbol,
        instrument=FRACTIONAL,
        bars={"15m": bars},
        minute=None,
        marks={},
        funding_ts=np.empty(0, dtype=np.int64),
        funding_rate=np.empty(0),
        start_ms=start,
        end_ms=end,
    )
    shared = SweepData(PLAY, "ema_cross_sweep_bench.yml", "pessimistic", {bars.symbol: data},
                       {bars.symbol: (start, end)})  # fmt: skip
    return Plan(
        Path("ema_cross_sweep_bench.yml"), PLAY, base, space, "sharpe", [bars.symbol], shared
    )


CPU: dict[int, tuple[float, float]] = {}  # workers → CPU seconds (this process, forked workers)


def ours(bars: Bars, workers: int) -> tuple[dict[tuple[int, int], int], float]:
    """Closed (signal) trades per (fast, slow), and seconds end to end."""
    with tempfile.TemporaryDirectory() as tmp:
        c0, t0 = os.times(), time.perf_counter()
        res = run_sweep(make_plan(bars), Path(tmp) / "sweep", workers=workers)
        seconds, c1 = time.perf_counter() - t0, os.times()
    CPU[workers] = (  # the CPU it got: on a shared machine, less than its wall time
        c1.user - c0.user + c1.system - c0.system,
        c1.children_user - c0.children_user + c1.children_system - c0.children_system,
    )
    counts = {
        (int(r.values["fast"]), int(r.values["slow"])): int(
            r.metrics["exit_reasons"].get("signal", 0)
        )
        for r in res.rows
    }
    return counts, seconds


def vectorbt(bars: Bars, start: int) -> tuple[dict[tuple[int, int], int], float]:
    """The same grid as one vectorbt broadcast: entries/exits for 400 columns, one Portfolio."""
    import pandas as pd
    import talib
    import vectorbt as vbt

    idx = pd.to_datetime(bars.ts, unit="ms")
    t0 = time.perf_counter()
    ema = {n: talib.EMA(bars.close, n) for n in {*FAST, *SLOW}}
    cols = [(f, s) for f in FAST for s in SLOW]
    up = np.zeros((len(bars), len(cols)), dtype=bool)
    dn = np.zeros_like(up)
    with np.errstate(invalid="ignore"):
        for k, (f, s) in enumerate(cols):
            a, b = ema[f], ema[s]
            up[1:, k] = (a[:-1] <= b[:-1]) & (a[1:] > b[1:])
            dn[1:, k] = (a[:-1] >= b[:-1]) & (a[1:] < b[1:])
    up[: start + 1] = dn[: start + 1] = False
    entries = np.roll(up, 1, axis=0)  # act at the next bar's open
    exits = np.roll(dn, 1, axis=0)
    entries[0] = exits[0] = False
    columns = pd.MultiIndex.from_tuples(cols, names=["fast", "slow"])
    pf = vbt.Portfolio.from_signals(
        close=pd.Series(bars.close, index=idx),
        entries=pd.DataFrame(entries, index=idx, columns=columns),
        exits=pd.DataFrame(exits, index=idx, columns=columns),
        price=pd.Series(bars.open, index=idx),
        fees=peers.FEE,
        init_cash=peers.CASH,
        size=np.inf,
        freq="15min",
    )
    rec = pf.trades.values
    seconds = time.perf_counter() - t0
    closed = rec[rec["status"] == 1]
    per_col = np.bincount(closed["col"], minlength=len(cols))
    return {c: int(n) for c, n in zip(cols, per_col, strict=True)}, seconds


class Separate:
    """vectorbt in a process of its own, forked before either engine has run: its broadcast leaves
    this process a gigabyte larger, and forking our worker from a process that size costs tens of
    milliseconds more (its page tables), which a sweep started by `trade sweep` never pays. The
    timing is vectorbt's own, taken in that process."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=_serve_vectorbt, args=(theirs,), daemon=True)
        self.proc.start()

    def __call__(self, bars: Bars, start: int) -> tuple[dict[tuple[int, int], int], float]:
        self.conn.send((bars, start))
        return self.conn.recv()  # type: ignore[no-any-return]

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join()


def _serve_vectorbt(conn) -> None:  # type: ignore[no-untyped-def]
    while (ask := conn.recv()) is not None:
        conn.send(vectorbt(*ask))


def rounds(repeat: int, engines: dict[str, tuple]) -> dict[str, tuple[dict, list[float]]]:  # type: ignore[type-arg]
    """Every engine once per round, the rounds one after another: this machine's speed drifts by
    tens of percent within a minute, and timing all of one engine's runs before the next's
    compared their machines as much as their code. Each engine's trade counts must not change."""
    out: dict[str, tuple[dict, list[float]]] = {}  # type: ignore[type-arg]
    for _ in range(repeat):
        for name, (fn, *args) in engines.items():
            counts, seconds = fn(*args)
            if name in out and out[name][0] != counts:
                raise SystemExit(f"FAIL: a repeated run of {name} took other trades")
            out.setdefault(name, (counts, []))[1].append(seconds)
    return out


def fmt(seconds: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in seconds)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--market-dir",
        type=Path,
        default=Path(
            os.environ.get("TRADE_MARKET_DATA")
            or Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "market"
        ),
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="rounds (each runs every engine once); the best is reported",
    )
    a = ap.parse_args()
    with gzip.open(a.market_dir / "bybit_BTCUSDT_15m.csv.gz", "rt") as fh:
        r = np.loadtxt(fh, delimiter=",", skiprows=1)
    bars = Bars.from_arrays(
        "BTCUSDT", "15m", r[:, 0].astype(np.int64), r[:, 1], r[:, 2], r[:, 3], r[:, 4], r[:, 5]
    )
    days = (int(bars.ts[-1]) + bars.tf_ms - int(bars.ts[0])) / 86_400_000
    print(
        f"data: BTCUSDT 15m, {len(bars):,} bars, {days:.0f} days ({days / 365.25:.2f} years); "
        f"grid {len(FAST)}×{len(SLOW)} = {len(FAST) * len(SLOW)} combinations"
    )
    plan = make_plan(bars)
    start = int(np.searchsorted(bars.ts, plan.shared.windows[bars.symbol][0]))
    vbt = Separate()
    # warm-up: numba compiles (ours and vectorbt's) outside the timing
    small = bars.slice(0, 6000)
    run_sweep(make_plan(small), Path(tempfile.mkdtemp()) / "w", workers=1)
    vbt(small, int(np.searchsorted(small.ts, make_plan(small).shared.windows["BTCUSDT"][0])))
    got = rounds(
        a.repeat, {"one": (ours, bars, 1), "two": (ours, bars, 2), "vbt": (vbt, bars, start)}
    )
    vbt.close()
    (one, s1), (two, s2), (vbt_counts, sv) = got["one"], got["two"], got["vbt"]
    t1, t2, tv = min(s1), min(s2), min(sv)
    ok = one == two == vbt_counts
    n = len(FAST) * len(SLOW)
    print(
        f"{'engine':24s} {'seconds':>8s} {'ms/combination':>15s} {'closed trades (all 400)':>24s}"
    )
    for name, secs, counts in (
        ("ours, 1 worker", t1, one),
        ("ours, 2 workers", t2, two),
        ("vectorbt broadcast", tv, vbt_counts),
    ):
        print(f"{name:24s} {secs:8.2f} {secs / n * 1000:15.2f} {sum(counts.values()):24,d}")
    print(f"same trade count in every combination: {'yes' if ok else 'NO'}")
    print(
        f"vectorbt / ours (1 worker): {tv / t1:.2f}x; vectorbt / ours (2 workers): {tv / t2:.2f}x"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"speed-up from 1 to 2 workers: {t1 / t2:.2f}x "
        f"(on {os.cpu_count()} CPUs, load average {load:.1f} at the end)"
    )
    print(
        f"per round ({a.repeat} rounds): 1 worker {fmt(s1)} s; 2 workers {fmt(s2)} s; "
        f"vectorbt {fmt(sv)} s"
    )
    paired = sorted(x / y for x, y in zip(s1, s2, strict=True))
    print(
        f"speed-up within each round (1 and 2 workers a few seconds apart): {fmt(paired)}x, "
        f"median {paired[len(paired) // 2]:.2f}x"
    )
    (p1, _), (p2, w2) = CPU[1], CPU[2]
    print(
        f"CPU seconds (last round): 1 worker {p1:.2f}; 2 workers: this process {p2:.2f}, the "
        f"forked worker {w2:.2f}, so 1 -> 2 workers could reach {p1 / ((p2 + w2) / 2):.2f}x "
        "with 2 free cores"
    )
    print(
        "targets: faster than vectorbt end to end: "
        f"{'met' if t1 < tv else 'NOT met'} with 1 worker, {'met' if t2 < tv else 'NOT met'} "
        f"with 2; >= 1.8x from 1 to 2 workers: {'met' if t1 / t2 >= 1.8 else 'NOT met'}"
    )
    if not ok:
        diff = [k for k in one if one[k] != vbt_counts.get(k)]
        print(f"differing combinations: {diff[:10]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
