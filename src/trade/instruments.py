"""Instrument specifications: the exchange filters every order passes through.

One place rounds prices to the tick and quantities down to the qty step, so the simulator, the live
adapter and reports agree on precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, types


@dataclass(frozen=True)
class InstrumentSpec:
    """Exchange filters and margin facts of one USDT-margined perpetual."""

    symbol: str
    tick_size: float
    qty_step: float
    min_qty: float
    min_notional: float
    max_leverage: float = 100.0
    maintenance_margin_rate: float = 0.005
    funding_interval_hours: float = 8.0

    def round_price(self, price: float) -> float:
        """Nearest tick (half away from zero), printed without binary noise."""
        return round_price(price, self.tick_size)

    def round_qty_down(self, qty: float) -> float:
        """Largest multiple of the qty step not above `qty` (tolerant of float noise)."""
        return round_qty_down(qty, self.qty_step)


# Compiled once and called both from Python and from the jitted backtest loop, so every path rounds
# with the very same arithmetic. The floors stay floats (`np.floor`): numba's `math.floor` returns an
# int64, which wraps to a negative number past 9.2e18 steps (a huge equity on a micro-priced symbol).


@njit(cache=True)
def round_price(price: float, tick: float) -> float:
    return _round_to(np.floor(price / tick + 0.5) * tick, tick)


@njit(cache=True)
def round_qty_down(qty: float, step: float) -> float:
    return _round_to(np.floor(qty / step + 1e-9) * step, step)


@njit(cache=True)
def _round_to(value: float, step: float) -> float:
    """`value` (a multiple of `step` up to float noise) to two decimals beyond the step's."""
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return round(value, decimals + 2)


def compile_rounding() -> None:
    """Compile the rounding kernels for floats now (numba's cache serves them when it holds
    them): a live session's first order would otherwise compile them while its instant waits."""
    for kernel in (round_price, round_qty_down):
        kernel.compile((types.float64, types.float64))


#: Used when a symbol has no stored specs (synthetic markets, unknown symbols in tests).
def default_spec(symbol: str) -> InstrumentSpec:
    return InstrumentSpec(
        symbol=symbol, tick_size=0.01, qty_step=0.001, min_qty=0.001, min_notional=5.0
    )
