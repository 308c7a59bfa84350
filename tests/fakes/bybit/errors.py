"""Bybit business errors the fake answers with, and Bybit's wording for the ones tests provoke."""

from __future__ import annotations

#: retMsg per code, as Bybit words them (used by `reject_next_order` and the matching engine).
MESSAGES = {
    10001: "params error",
    10016: "Internal System Error.",
    110001: "order not exists or too late to cancel",
    110007: "ab not enough for new order",
    110017: "current position is zero, cannot fix reduce-only order qty",
    110024: "You have an existing position, so position mode cannot be switched",
    110025: "Position mode is not modified",
    110026: "Cross/isolated margin mode is not modified",
    110028: "You have existing open orders, so position mode cannot be switched",
    110043: "Set leverage not modified",
    110072: "OrderLinkedID is duplicate",
    110090: (
        "Order placement failed as your position may exceed the max limit. "
        "Please adjust your leverage to lower the max. position limit"
    ),
    110094: "Order does not meet minimum order value 5USDT",
    34040: "Not modified",
}


class Reject(Exception):
    """A request refused with Bybit's retCode and retMsg (HTTP 200, nothing applied)."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message or MESSAGES.get(code, "error")
        self.batches: list = []  # private messages the refused request still caused
        super().__init__(f"{code}: {self.message}")
