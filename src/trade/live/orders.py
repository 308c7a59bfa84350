"""Order ids and order bodies for Bybit: deterministic `orderLinkId`s and prices and quantities
already on the instrument's grid, so a retry can never double an order and Bybit never refuses a
filter we could have met."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

LINK_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
#: What an order of ours is for: the fourth part of its link id.
#: `adopt` names a position taken over (`--on-foreign adopt`): no order is sent under it.
ROLES = {"entry": "en", "exit": "ex", "close": "cl", "adopt": "ad"}
_CODES = {v: k for k, v in ROLES.items()}
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if n == 0:
            return out


def session_prefix(session_id: str) -> str:
    """Ten characters naming the session in every link id it sends (a hash: session names may be
    64 characters and hold dots, which Bybit refuses)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:10]


def link_id(session_id: str, t: int, index: int, role: str) -> str:
    """`<session>-<instant in s, base 36>-<decision index>-<role>`: the same decision at the same
    instant always gets the same id, so a re-sent order is recognised as the one already sent."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {sorted(ROLES)}, got {role!r}")
    link = f"{session_prefix(session_id)}-{_base36(t // 1000)}-{index}-{ROLES[role]}"
    assert LINK_RE.match(link), link
    return link


def role_of(link: str, prefix: str) -> str | None:
    """The role of one of this session's link ids; None for anything else (foreign, TP/SL)."""
    parts = link.split("-")
    if len(parts) != 4 or parts[0] != prefix:
        return None
    return _CODES.get(parts[3])


def text(x: float) -> str:
    """A price or quantity as Bybit wants it: a plain decimal without float noise."""
    return f"{x:.10f}".rstrip("0").rstrip(".") or "0"


def entry_body(
    symbol: str,
    link: str,
    side: str,
    qty: float,
    limit_price: float | None,
    stop_loss: float,
    take_profit: float,
) -> dict[str, Any]:
    """An entry: Market, or Limit (GTC) at `limit_price`, with the stop and target attached to the
    whole position (Full mode), both triggered by the last traded price as in the backtest."""
    body: dict[str, Any] = {
        "symbol": symbol,
        "side": "Buy" if side == "buy" else "Sell",
        "orderType": "Market" if limit_price is None else "Limit",
        "qty": text(qty),
        "orderLinkId": link,
    }
    if limit_price is not None:
        body |= {"price": text(limit_price), "timeInForce": "GTC"}
    if not math.isnan(stop_loss) or not math.isnan(take_profit):
        body["tpslMode"] = "Full"
    if not math.isnan(stop_loss):
        body |= {"stopLoss": text(stop_loss), "slTriggerBy": "LastPrice"}
    if not math.isnan(take_profit):
        body |= {"takeProfit": text(take_profit), "tpTriggerBy": "LastPrice"}
    return body


def reduce_body(symbol: str, link: str, position_side: str, qty: float) -> dict[str, Any]:
    """A reduce-only market order closing `qty` of a `position_side` position."""
    return {
        "symbol": symbol,
        "side": "Sell" if position_side == "long" else "Buy",
        "orderType": "Market",
        "qty": text(qty),
        "reduceOnly": True,
        "orderLinkId": link,
    }
