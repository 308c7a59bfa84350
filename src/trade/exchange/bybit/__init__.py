"""Bybit v5: the thin async REST client (market data now; private endpoints join it for live)."""

from .rest import BybitRest, interval_of

__all__ = ["BybitRest", "interval_of"]
