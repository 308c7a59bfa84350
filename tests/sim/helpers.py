"""Tiny builders for golden simulator scenarios: 1m bars from OHLC tuples starting at t=0."""

from __future__ import annotations

import numpy as np

from trade.instruments import InstrumentSpec
from trade.sim import AccountConfig, SimulatedExchange

M = 60_000
SPEC = InstrumentSpec(
    "TEST",
    tick_size=0.01,
    qty_step=0.001,
    min_qty=0.001,
    min_notional=5.0,
    maintenance_margin_rate=0.005,
)


def sim_with(
    bars: list[tuple[float, float, float, float]],
    *,
    exec_minutes: int = 1,
    intrabar: str = "pessimistic",
    funding: list[tuple[int, float]] | None = None,
    **account: object,
) -> SimulatedExchange:
    acc = {"starting_equity": 10_000.0, "slippage_bps": 0.0, **account}
    sim = SimulatedExchange(
        SPEC, AccountConfig(**acc), exec_tf_ms=exec_minutes * M, intrabar=intrabar
    )  # type: ignore[arg-type]
    a = np.array(bars, dtype=float)
    ts = np.arange(len(bars), dtype=np.int64) * M
    f_ts = np.array([f[0] for f in funding or []], dtype=np.int64)
    f_rate = np.array([f[1] for f in funding or []], dtype=float)
    sim.load(ts, ts + M, a[:, 0], a[:, 1], a[:, 2], a[:, 3], funding_ts=f_ts, funding_rate=f_rate)
    return sim
