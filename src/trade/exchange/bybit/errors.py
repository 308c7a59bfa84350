"""Bybit's answers as types, so every caller applies the same policy to the same code.

The table is Bybit's (retCode → meaning); the policy is ours:

| type | codes | what the caller does |
|---|---|---|
| `RateLimited` | 10006, 10429, HTTP 429 | the client waits for the reset header and re-sends (the same body, so the same `orderLinkId`) |
| `ClockSkew` | 10002 | the client re-syncs its clock offset and retries once |
| `UnknownOutcome` | 10016, 10000, 5xx or a timeout on an order write | never re-sent blindly: look the order up by `orderLinkId` |
| `Unavailable` | 10016, 10000, 5xx, timeouts on reads, after the retries | retry later; nothing was changed |
| `NOT_MODIFIED` | 110025, 110026, 110027, 110043, 34040 | success: the setting already had that value |
| `Rejected` | margin, min notional, price band, bad parameter … | Bybit's code and message reach the strategy |
| `OrderNotFound` | 110001, 110008, 110010 | the order is already final: reconcile |
| `DuplicateOrder` | 110072 | the order exists already: fetch it by `orderLinkId` |
| `ConfigError` | 10003, 10004, 10005, 10010, 33004 | fatal: keys, permissions or IP binding are wrong |
| `IpBanned` | HTTP 403 | every request to the host pauses for ten minutes; no request storm |
"""

from __future__ import annotations

from ...errors import ExchangeError

NOT_MODIFIED = frozenset({110025, 110026, 110027, 110043, 34040})
RATE_LIMIT_CODES = frozenset({10006, 10429})
SERVER_BUSY = frozenset({10016, 10000})
CLOCK = 10002
ORDER_GONE = frozenset({110001, 110008, 110010})
DUPLICATE = 110072
PROCESSING = 110079  # "order is processing, try later"
CONFIG = {
    10003: "API key is invalid, expired, or belongs to another environment",
    10004: "request signature was refused (wrong API secret)",
    10005: "API key lacks the permission this request needs",
    10010: "request came from an IP address the API key is not bound to",
    33004: "API key has expired",
}


class BybitError(ExchangeError):
    """An answer from Bybit that the client could not turn into a result."""

    def __init__(self, path: str, code: int | None, message: str) -> None:
        self.path, self.code, self.bybit_message = path, code, message
        where = f"Bybit {path}"
        what = f"retCode {code}: {message}" if code is not None else message
        super().__init__(f"{where}: {what}")


class RateLimited(BybitError):
    """Too many requests; still limited after the client's waits."""


class ClockSkew(BybitError):
    """The request's timestamp fell outside Bybit's window, even after a re-sync."""


class Unavailable(BybitError):
    """Bybit did not answer usefully (5xx, 10016, timeouts, maintenance) within the retries."""


class UnknownOutcome(BybitError):
    """An order write may or may not have been applied: look the order up before anything else."""


class Rejected(BybitError):
    """Bybit refused the request for a business reason (margin, filters, parameters)."""


class OrderNotFound(Rejected):
    """The order is not open (already filled, cancelled or never existed)."""


class DuplicateOrder(Rejected):
    """An order with this `orderLinkId` exists already."""


class ConfigError(BybitError):
    """Keys, permissions or IP binding are wrong: nothing will work until the user fixes them."""

    exit_code = 2


class IpBanned(BybitError):
    """HTTP 403: Bybit refuses this IP for a while; every request is paused."""


def classify(path: str, code: int, message: str) -> BybitError:
    """The error type of a non-zero retCode that is not handled by retrying."""
    if code in CONFIG:
        return ConfigError(path, code, f"{CONFIG[code]} ({message})")
    if code in ORDER_GONE:
        return OrderNotFound(path, code, message)
    if code == DUPLICATE:
        return DuplicateOrder(path, code, message)
    if code in RATE_LIMIT_CODES:
        return RateLimited(path, code, message)
    if code == CLOCK:
        return ClockSkew(path, code, message)
    if code in SERVER_BUSY:
        return Unavailable(path, code, message)
    return Rejected(path, code, message)
