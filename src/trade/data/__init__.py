"""Market data: the DuckDB store, Bybit history sync, gaps, resampling and synthetic markets."""

from .bars import Bars
from .resample import resample
from .store import MarketStore
from .synthetic import PATTERNS, synthetic_market

__all__ = ["PATTERNS", "Bars", "MarketStore", "resample", "synthetic_market"]
