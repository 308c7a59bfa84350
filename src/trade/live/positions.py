"""The fill book: the position and closed trades of a live session, rebuilt from its executions.

Executions are kept by `execId` and folded in exchange order (time, then sequence) every time one
is added, so a fill pushed twice, pushed late, pushed out of order or only found later by REST
gives the same position and the same trades as a clean stream. Closed trades carry the backtest's
trade fields (`SimulatedExchange._close`): entry fee and funding are shared out over partial
closes, MAE/MFE come from the 1m bars traded while the position was open.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..exchange.bybit import Execution

MINUTE_MS = 60_000
EPS = 1e-12
#: execType → exit_reason of the trade it closes (Bybit closes these, not us)
FORCED = {"BustTrade": "liquidation", "AdlTrade": "adl"}
POSITION_FILLS = frozenset({"Trade", *FORCED})
#: exit_reason of a position TP/SL fill: the target, or the stop as it stood (trailed or not)
STOP_REASONS = ("take_profit", "stop_loss", "trailing_stop")


@dataclass
class BookPosition:
    """The open position as the fills say (one-way: one side at a time)."""

    side: str  # "long" | "short"
    qty: float
    entry_price: float
    entry_ts: int
    entry_fee: float  # belongs to the qty still open
    funding: float = 0.0  # paid (+) / received (−) on the qty still open
    link_id: str = ""  # the order that opened it
    tag: dict[str, Any] = field(default_factory=dict)

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "long" else -1.0


class FillBook:
    """Executions of one symbol by `execId`, and the position and trades they make.

    `exit_reason(execution, position)` names why one of our own reduce orders closed (the broker
    knows its link ids); stop fills take the stop's kind in force at that time (`stop_kinds`)."""

    def __init__(self, exec_ms: int, exit_reason: Callable[[Execution], str]) -> None:
        self.exec_ms = exec_ms
        self.exit_reason = exit_reason
        self.executions: dict[str, Execution] = {}
        self.tags: dict[str, dict[str, Any]] = {}  # entry link id → the decision's tag
        self.bars: dict[int, tuple[float, float]] = {}  # 1m open time → (high, low)
        self._bar_starts: list[int] = []
        self.stop_kinds: list[tuple[int, str]] = []  # (exchange ms, kind) as the stop changed
        self.position: BookPosition | None = None
        self.trades: list[dict[str, Any]] = []
        self.funding_total = 0.0
        self.last_exec_ms = 0
        self.qty_step: float | None = None  # the instrument's, once known: sums stay on its grid

    # ------------------------------------------------------------------ inputs

    def add(self, executions: list[Execution]) -> list[Execution]:
        """Keep the executions not seen before and refold; returns the new ones."""
        new = [e for e in executions if e.exec_id not in self.executions]
        for e in new:
            self.executions[e.exec_id] = e
            self.last_exec_ms = max(self.last_exec_ms, e.time)
        if new:
            self.fold()
        return new

    def bar(self, start: int, high: float, low: float) -> None:
        if start not in self.bars:
            bisect.insort(self._bar_starts, start)
        self.bars[start] = (high, low)

    def stop_kind(self, at_ms: int, kind: str) -> None:
        """The position's stop became a `kind` stop (stop_loss, trailing_stop) at `at_ms`."""
        self.stop_kinds.append((at_ms, kind))

    # ------------------------------------------------------------------ queries

    def best_worst(self, pos: BookPosition, until_ms: int | None = None) -> tuple[float, float]:
        """Most and least favourable prices traded from the fill's own 1m bar up to (not
        including) the bar opening at `until_ms`, fill price included (as the simulator's
        best_seen / worst_seen)."""
        first = _minute(pos.entry_ts)
        i = bisect.bisect_left(self._bar_starts, first)
        j = (
            len(self._bar_starts)
            if until_ms is None
            else bisect.bisect_left(self._bar_starts, until_ms)
        )
        hi = lo = pos.entry_price
        for start in self._bar_starts[i:j]:
            h, low = self.bars[start]
            hi, lo = max(hi, h), min(lo, low)
        return (hi, lo) if pos.side == "long" else (lo, hi)

    # ------------------------------------------------------------------ the fold

    def fold(self) -> None:
        """Position and trades from every execution, in exchange order."""
        pos: BookPosition | None = None
        trades: list[dict[str, Any]] = []
        funding_total = 0.0
        for e in sorted(self.executions.values(), key=lambda e: (e.time, e.seq, e.exec_id)):
            if e.exec_type == "Funding":
                funding_total += e.fee
                if pos is not None:
                    pos.funding += e.fee
                continue
            if e.exec_type not in POSITION_FILLS or e.qty <= 0:
                continue
            side = "long" if e.side == "Buy" else "short"
            qty = e.qty
            if pos is not None and pos.side != side:
                closed = min(qty, pos.qty)
                fee = e.fee * closed / e.qty
                trades.append(self._trade(len(trades) + 1, pos, closed, e, fee))
                rest = self._grid(pos.qty - closed)
                if rest <= EPS:
                    pos = None
                else:
                    share = closed / pos.qty
                    pos.entry_fee -= pos.entry_fee * share
                    pos.funding -= pos.funding * share
                    pos.qty = rest
                qty -= closed
            if qty > EPS:
                fee = e.fee * qty / e.qty
                if pos is None:
                    tag = self.tags.get(e.order_link_id, {})
                    pos = BookPosition(side, qty, e.price, e.time, fee, 0.0, e.order_link_id, tag)
                else:
                    total = pos.qty + qty
                    pos.entry_price = (pos.entry_price * pos.qty + e.price * qty) / total
                    pos.qty, pos.entry_fee = self._grid(total), pos.entry_fee + fee
        self.position, self.trades, self.funding_total = pos, trades, funding_total

    def _grid(self, qty: float) -> float:
        """`qty` on the qty step (sums of float quantities pick up noise)."""
        step = self.qty_step
        return qty if step is None else round(round(qty / step) * step, 12)

    def _reason(self, e: Execution, pos: BookPosition) -> str:
        if e.exec_type in FORCED:
            return FORCED[e.exec_type]
        if e.stop_order_type == "TakeProfit":
            return "take_profit"
        if e.stop_order_type in ("StopLoss", "TrailingStop"):
            kind = "stop_loss"
            for at, k in self.stop_kinds:
                if pos.entry_ts <= at <= e.time:
                    kind = k
            return kind
        return self.exit_reason(e)

    def _trade(
        self, trade_id: int, pos: BookPosition, qty: float, e: Execution, exit_fee: float
    ) -> dict[str, Any]:
        """`qty` of `pos` closed by `e`: the backtest's trade fields."""
        share = qty / pos.qty
        entry_fee, funding = pos.entry_fee * share, pos.funding * share
        price = e.price
        gross = (price - pos.entry_price) * qty * pos.sign
        pnl = gross - entry_fee - exit_fee - funding
        notional = qty * pos.entry_price
        best, worst = self.best_worst(pos, _minute(e.time))
        ref = pos.entry_price
        if pos.side == "long":
            mae = (min(worst, price) / ref - 1) * 100
            mfe = (max(best, price) / ref - 1) * 100
        else:
            mae = (1 - max(worst, price) / ref) * 100
            mfe = (1 - min(best, price) / ref) * 100
        return {
            "trade_id": trade_id,
            "side": pos.side,
            "entry_time": pos.entry_ts,
            "entry_price": pos.entry_price,
            "exit_time": e.time,
            "exit_price": price,
            "qty": qty,
            "notional": notional,
            "exit_reason": self._reason(e, pos),
            "fees": entry_fee + exit_fee,
            "funding": funding,
            "pnl": pnl,
            "return_pct": pnl / notional * 100.0,
            "mae_pct": mae,
            "mfe_pct": mfe,
            "bars_held": (_minute(e.time) - _minute(pos.entry_ts)) // self.exec_ms,
            "metadata": dict(pos.tag),
        }


def _minute(ms: int) -> int:
    """The open of the 1m bar holding `ms` (bars held count bar opens, as the backtest does)."""
    return ms // MINUTE_MS * MINUTE_MS
