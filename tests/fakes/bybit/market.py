"""Market data the fake serves: instruments, kline and mark-kline series, funding history.

Selection follows the reference's kline semantics:
newest first; start only → the first `limit` bars from start; otherwise the newest `limit` bars up to
end; bars that have not opened yet by server time do not exist; the still-open bar is included.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trade.instruments import InstrumentSpec

from .errors import Reject

MINUTE = 60_000
INTERVAL_MS = {
    "1": MINUTE,
    "3": 3 * MINUTE,
    "5": 5 * MINUTE,
    "15": 15 * MINUTE,
    "30": 30 * MINUTE,
    "60": 60 * MINUTE,
    "120": 120 * MINUTE,
    "240": 240 * MINUTE,
    "360": 360 * MINUTE,
    "720": 720 * MINUTE,
    "D": 1440 * MINUTE,
    "W": 7 * 1440 * MINUTE,
    "M": 0,  # calendar months: see bar_end
}
DEFAULT_MAX_QTY = {"BTCUSDT": "1190", "ETHUSDT": "7240"}  # Bybit's published maxOrderQty


def check_interval(interval: str) -> str:
    if interval not in INTERVAL_MS:
        raise Reject(10001, f"params error: invalid interval {interval!r}")
    return interval


def bar_end(start: int, interval: str) -> int:
    """Last millisecond of the bar opening at `start`."""
    if interval != "M":
        return start + INTERVAL_MS[interval] - 1
    t = dt.datetime.fromtimestamp(start / 1000, tz=dt.UTC)
    nxt = t.replace(year=t.year + t.month // 12, month=t.month % 12 + 1)
    return int(nxt.timestamp() * 1000) - 1


def text(x: Any) -> str:
    """One value as Bybit prints it: strings as given, numbers without binary noise."""
    if isinstance(x, str):
        return x
    if isinstance(x, Decimal):
        return format(x, "f")
    if isinstance(x, int):
        return str(x)
    return repr(float(x))


@dataclass(frozen=True)
class Instrument:
    """Filters of one linear perpetual, as Decimals for exact validation."""

    symbol: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    max_leverage: Decimal
    mmr: Decimal
    funding_minutes: int
    status: str = "Trading"

    @classmethod
    def of(cls, spec: InstrumentSpec, max_qty: str | None = None, status: str = "Trading"):
        def dec(x: float) -> Decimal:
            return Decimal(repr(float(x))).normalize()

        return cls(
            symbol=spec.symbol,
            tick=dec(spec.tick_size),
            step=dec(spec.qty_step),
            min_qty=dec(spec.min_qty),
            max_qty=Decimal(max_qty or DEFAULT_MAX_QTY.get(spec.symbol, "1000000")),
            min_notional=dec(spec.min_notional),
            max_leverage=dec(spec.max_leverage),
            mmr=dec(spec.maintenance_margin_rate),
            funding_minutes=int(spec.funding_interval_hours * 60),
            status=status,
        )

    def entry(self) -> dict[str, Any]:
        """Its `instruments-info` item."""
        return {
            "symbol": self.symbol,
            "contractType": "LinearPerpetual",
            "status": self.status,
            "baseCoin": self.symbol.removesuffix("USDT"),
            "quoteCoin": "USDT",
            "settleCoin": "USDT",
            "launchTime": "1584230400000",
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": str(max(0, -self.tick.as_tuple().exponent)),  # type: ignore[operator]
            "fundingInterval": self.funding_minutes,
            "leverageFilter": {
                "minLeverage": "1",
                "maxLeverage": text(self.max_leverage),
                "leverageStep": "0.01",
            },
            "priceFilter": {
                "minPrice": text(self.tick),
                "maxPrice": "1999999.8",
                "tickSize": text(self.tick),
            },
            "lotSizeFilter": {
                "maxOrderQty": text(self.max_qty),
                "maxMktOrderQty": text(self.max_qty),
                "minOrderQty": text(self.min_qty),
                "qtyStep": text(self.step),
                "postOnlyMaxOrderQty": text(self.max_qty),
                "minNotionalValue": text(self.min_notional),
            },
            "unifiedMarginTrade": True,
            "copyTrading": "both",
            "upperFundingRate": "0.00375",
            "lowerFundingRate": "-0.00375",
            "isPreListing": False,
        }


class Series:
    """One (symbol, interval) of klines, or one symbol's funding: ascending rows, formatted to
    Bybit's strings only when served (a month of 1m bars loads in milliseconds)."""

    def __init__(self, width: int) -> None:
        self.width = width  # columns served: 7 for klines, 5 for mark klines, 2 for funding
        self.starts: list[int] = []
        self.rows: list[Sequence[Any]] = []

    def load(self, rows: Iterable[Sequence[Any]]) -> None:
        """Replace the series (rows in any order; the last of equal starts wins)."""
        by_start = {int(row[0]): row for row in rows}
        self.starts = sorted(by_start)
        self.rows = [by_start[s] for s in self.starts]

    def upsert(self, row: Sequence[Any]) -> list[str]:
        start = int(row[0])
        i = bisect_left(self.starts, start)
        if i < len(self.starts) and self.starts[i] == start:
            self.rows[i] = row
        else:
            self.starts.insert(i, start)
            self.rows.insert(i, row)
        return self.format(row)

    def format(self, row: Sequence[Any]) -> list[str]:
        """A row as Bybit's strings (a 6-column OHLCV row gains turnover = volume × close)."""
        vals = list(row)
        if self.width == 7 and len(vals) == 6:
            vals.append(float(vals[5]) * float(vals[4]))
        if len(vals) < self.width:
            raise ValueError(f"row {row!r}: expected {self.width} columns")
        return [str(int(vals[0]))] + [text(v) for v in vals[1 : self.width]]

    def last(self) -> list[str] | None:
        return self.format(self.rows[-1]) if self.rows else None

    def page(self, start: int | None, end: int | None, limit: int, now: int) -> list[list[str]]:
        """Bybit's selection, newest first (bars opening after `now` do not exist yet)."""
        hi = now if end is None else min(end, now)
        i = 0 if start is None else bisect_left(self.starts, start)
        j = bisect_right(self.starts, hi)
        if start is not None and end is None:
            sel = self.rows[i : min(j, i + limit)]
        else:
            sel = self.rows[max(i, j - limit) : j]
        return [self.format(row) for row in reversed(sel)]


def int_param(p: dict[str, Any], key: str) -> int | None:
    v = p.get(key)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        raise Reject(10001, f"params error: {key} must be an integer, got {v!r}") from None


def limit_param(p: dict[str, Any], default: int, most: int) -> int:
    """`limit` within 1..most (Bybit answers the maximum when asked for more)."""
    n = int_param(p, "limit")
    if n is None:
        return default
    if n < 1:
        raise Reject(10001, f"params error: limit must be at least 1, got {n}")
    return min(n, most)
