"""Bybit v5: the thin async REST client (market data now; private endpoints join it for live)."""

from .rest import Auth, BybitRest, instrument_spec, interval_of

__all__ = ["Auth", "BybitRest", "instrument_spec", "interval_of"]
