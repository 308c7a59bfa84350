"""Market data: the DuckDB store, Bybit history sync, gaps, resampling and synthetic markets.

The backtest engine reads everything through `MarketStore`; the rest are pure functions on `Bars`.
"""

from .bars import Bars
from .gaps import find_gaps, missing_ranges
from .opening import open_reader
from .resample import resample
from .store import MarketStore
from .sync import heal_for_window
from .synthetic import PATTERNS, synthetic_market

__all__ = [
    "PATTERNS",
    "Bars",
    "MarketStore",
    "find_gaps",
    "heal_for_window",
    "missing_ranges",
    "open_reader",
    "resample",
    "synthetic_market",
]
