"""Market data: the DuckDB store, Bybit history sync, gaps, resampling and synthetic markets."""

from .bars import Bars
from .resample import resample
from .store import MarketStore
from .sync import find_gaps, heal_for_window
from .synthetic import PATTERNS, synthetic_market

__all__ = [
    "PATTERNS",
    "Bars",
    "MarketStore",
    "find_gaps",
    "heal_for_window",
    "resample",
    "synthetic_market",
]
