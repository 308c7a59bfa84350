"""The simulated exchange: orders, fills, TP/SL, fees, slippage, funding, margin and liquidation.

Independent of the engine: the backtest, the bar-by-bar replay and paper trading all drive the same
`SimulatedExchange`, so a Play fills the same way in each (semantics: docs/execution.md).
"""

from .exchange import IntrabarBar, SimulatedExchange
from .orders import AccountConfig, BreakEven, Level, OrderRequest, Sizing, Trailing
from .position import Position

__all__ = [
    "AccountConfig",
    "BreakEven",
    "IntrabarBar",
    "Level",
    "OrderRequest",
    "Position",
    "SimulatedExchange",
    "Sizing",
    "Trailing",
]
