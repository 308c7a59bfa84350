"""The simulator against an independent plain-Python reference on real data: the EMA(20)/EMA(50)
cross on 15m bars resampled from the real 1m BTCUSDT month, enter/exit at the next open, 5.5 bps
taker, no slippage, all-in at 1x."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from trade.data.bars import Bars
from trade.data.resample import resample
from trade.instruments import InstrumentSpec
from trade.sim import AccountConfig, OrderRequest, SimulatedExchange, Sizing

SPEC = InstrumentSpec("BTCUSDT", tick_size=0.1, qty_step=0.001, min_qty=0.001, min_notional=5.0)
FEE = 0.00055
M15 = 900_000


def ema(x: np.ndarray, n: int) -> list[float]:
    out, val = [], math.nan
    for i, v in enumerate(x):
        if i == n - 1:
            val = sum(x[:n]) / n
        elif i >= n:
            val = val + (v - val) * 2 / (n + 1)
        out.append(val)
    return out


def reference(m15: Bars, fast: list[float], slow: list[float]) -> tuple[list[tuple], float]:
    cash, qty, entry, trades = 10_000.0, 0.0, None, []
    for i in range(1, len(m15) - 1):
        if math.isnan(slow[i - 1]):
            continue
        up = fast[i - 1] <= slow[i - 1] and fast[i] > slow[i]
        down = fast[i - 1] >= slow[i - 1] and fast[i] < slow[i]
        px, t = m15.open[i + 1], int(m15.ts[i + 1])
        if qty == 0 and up:
            qty = math.floor(cash / (px * (1 + FEE)) / 0.001 + 1e-9) * 0.001
            qty = round(qty, 5)
            cash -= qty * px * FEE
            entry = (t, px)
        elif qty > 0 and down:
            cash += qty * (px - entry[1]) - qty * px * FEE  # type: ignore[index]
            trades.append((entry[0], entry[1], t, px))  # type: ignore[index]
            qty = 0.0
    if qty > 0:  # end of data: close at the last close
        px, t = m15.close[-1], int(m15.ts[-1]) + M15
        cash += qty * (px - entry[1]) - qty * px * FEE  # type: ignore[index]
        trades.append((entry[0], entry[1], t, px))  # type: ignore[index]
    return trades, cash


def test_simulator_equals_reference(market_dir: Path) -> None:
    with gzip.open(market_dir / "bybit_BTCUSDT_1m.csv.gz", "rt") as fh:
        a = np.loadtxt(fh, delimiter=",", skiprows=1)
    m1 = Bars.from_arrays(
        "BTCUSDT", "1m", a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5]
    )
    m15 = resample(m1, "15m")
    m1 = m1.window(int(m15.ts[0]), int(m15.ts[-1]) + M15)
    fast, slow = ema(m15.close, 20), ema(m15.close, 50)
    ref_trades, ref_cash = reference(m15, fast, slow)

    sim = SimulatedExchange(
        SPEC, AccountConfig(starting_equity=10_000.0, slippage_bps=0.0), exec_tf_ms=M15
    )
    sim.load(m1.ts, m1.ts + 60_000, m1.open, m1.high, m1.low, m1.close)
    for i in range(1, len(m15) - 1):
        t = int(m15.ts[i]) + M15  # the close of 15m bar i
        sim.advance_to(t)
        if math.isnan(slow[i - 1]):
            continue
        if sim.position is None and fast[i - 1] <= slow[i - 1] and fast[i] > slow[i]:
            sim.submit(OrderRequest(side="buy", sizing=Sizing("percent_equity", 100.0)), t)
        elif sim.position is not None and fast[i - 1] >= slow[i - 1] and fast[i] < slow[i]:
            sim.submit(OrderRequest(side="sell", reduce_only=True), t)
    end = int(m15.ts[-1]) + M15
    sim.advance_to(end)
    sim.close_all(end, float(m15.close[-1]))
    got = [(t["entry_time"], t["entry_price"], t["exit_time"], t["exit_price"]) for t in sim.trades]
    assert len(ref_trades) >= 20
    assert got == ref_trades
    assert {t["exit_reason"] for t in sim.trades} <= {"signal", "end_of_data"}
    # final equity (flat after the end-of-data close): realised PnL net of every fee
    assert abs(sim.equity(float(m15.close[-1])) - ref_cash) <= 1e-9 * ref_cash
