"""Bybit v5: the one async client (signed REST and WebSocket streams) the live path and data sync use."""

from .auth import Credentials, load_credentials
from .environment import Endpoints, endpoints
from .errors import (
    BybitError,
    ClockSkew,
    ConfigError,
    DuplicateOrder,
    IpBanned,
    OrderNotFound,
    RateLimited,
    Rejected,
    Unavailable,
    UnknownOutcome,
)
from .models import Execution, Kline, Order, Position, Wallet
from .rest import Ack, BybitRest, instrument_spec, interval_of
from .stream import BybitStream, StreamEvent, kline_topic

__all__ = [
    "Ack",
    "BybitError",
    "BybitRest",
    "BybitStream",
    "ClockSkew",
    "ConfigError",
    "Credentials",
    "DuplicateOrder",
    "Endpoints",
    "Execution",
    "IpBanned",
    "Kline",
    "Order",
    "OrderNotFound",
    "Position",
    "RateLimited",
    "Rejected",
    "StreamEvent",
    "Unavailable",
    "UnknownOutcome",
    "Wallet",
    "endpoints",
    "instrument_spec",
    "interval_of",
    "kline_topic",
    "load_credentials",
]
