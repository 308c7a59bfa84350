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
Bar = tuple[float, float, float, float]


def sim_with(
    bars: list[Bar],
    *,
    exec_minutes: int = 1,
    intrabar: str = "pessimistic",
    funding: list[tuple[int, float]] | None = None,
    mark: list[tuple[float, ...]] | None = None,
    **account: object,
) -> SimulatedExchange:
    """A simulator loaded with 1m bars opening at 0, 1m, 2m…; funding (ts, rate) and mark bars
    (ts_close, close) or (ts_close, close, ts_open, high, low) optional; no slippage unless
    given."""
    acc = {"starting_equity": 10_000.0, "slippage_bps": 0.0, **account}
    sim = SimulatedExchange(
        SPEC,
        AccountConfig(**acc),  # type: ignore[arg-type]
        exec_tf_ms=exec_minutes * M,
        intrabar=intrabar,
    )
    a = np.array(bars, dtype=float).reshape(-1, 4)
    ts = np.arange(len(bars), dtype=np.int64) * M
    sim.load(
        ts,
        ts + M,
        a[:, 0],
        a[:, 1],
        a[:, 2],
        a[:, 3],
        mark_ts_close=np.array([m[0] for m in mark or []], dtype=np.int64),
        mark_close=np.array([m[1] for m in mark or []], dtype=float),
        funding_ts=np.array([f[0] for f in funding or []], dtype=np.int64),
        funding_rate=np.array([f[1] for f in funding or []], dtype=float),
        **_mark_bars(mark or []),
    )
    return sim


def _mark_bars(mark: list[tuple[float, ...]]) -> dict[str, np.ndarray]:
    if not mark or len(mark[0]) == 2:
        return {}
    a = np.array(mark, dtype=float)
    return {"mark_ts_open": a[:, 2].astype(np.int64), "mark_high": a[:, 3], "mark_low": a[:, 4]}


def flat_bars(n: int, price: float = 100.0) -> list[Bar]:
    return [(price, price, price, price)] * n
