"""The simulated exchange: orders, fills, TP/SL, fees, slippage, funding, margin and liquidation."""

from .exchange import Position, SimulatedExchange
from .orders import AccountConfig, BreakEven, Level, OrderRequest, Sizing, Trailing

__all__ = [
    "AccountConfig",
    "BreakEven",
    "Level",
    "OrderRequest",
    "Position",
    "SimulatedExchange",
    "Sizing",
    "Trailing",
]
