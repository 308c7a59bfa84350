"""Paper trading: the backtest's simulated exchange fed the live 1m bars, mark bars and funding
as they close, so a paper session on some bars equals a backtest on the same bars, byte for byte.

Orders are executed by the same `SimExecution` the backtest drivers use (the same order builder,
the same fills, fees, funding, liquidation, trailing and break-even); only the arrival of the
bars differs. No keys and no orders leave the machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..engine.decide import Decision
from ..engine.execution import SimExecution
from ..exchange.bybit import Kline
from ..instruments import InstrumentSpec
from ..play.compile import CompiledPlay
from ..timeframes import MINUTE_MS
from .broker import BrokerView, DecisionContext
from .session import SessionRecord


@dataclass
class MarketExtras:
    """Mark-price bars and funding settlements the runner has fetched so far, oldest first; the
    paper broker hands each to its simulator before the first bar it prices."""

    marks: list[tuple[int, int, float, float, float]] = field(default_factory=list)
    """(open time, close time, high, low, close) of closed mark bars."""
    funding: list[tuple[int, float]] = field(default_factory=list)
    """(settlement time, rate)."""


class PaperBroker:
    """`Broker` over a SimulatedExchange fed bar by bar."""

    mode = "paper"

    def __init__(
        self,
        compiled: CompiledPlay,
        instrument: InstrumentSpec,
        record: SessionRecord,
        extras: MarketExtras,
        *,
        intrabar_policy: str = "pessimistic",
    ) -> None:
        self.compiled, self.record, self.extras = compiled, record, extras
        self.instrument = instrument
        self._ctx: DecisionContext | None = None
        self.ex = SimExecution.fed(
            compiled,
            instrument,
            intrabar_policy,
            series_at=lambda s, i: self._context().series_value(s),
            exec_close_at=lambda t: self._context().exec_close,
        )
        self.sim = self.ex.sim
        self._marks_given = 0
        self._funding_given = 0
        self._events_seen = 0
        self._trades_seen = 0
        self.first_open: int | None = None  # the first 1m bar simulated opens here

    def _context(self) -> DecisionContext:
        assert self._ctx is not None, "series read outside an instant"
        return self._ctx

    @property
    def halted(self) -> bool:
        return self.sim.halted

    async def start(self, first_instant: int) -> None:
        self.record.journal(None, "paper", "paper account opened", equity=self.sim.cash)

    async def on_minute(self, bar: Kline) -> None:
        ts_close = bar.start + MINUTE_MS
        marks = self.extras.marks
        while self._marks_given < len(marks) and marks[self._marks_given][1] <= ts_close:
            m_open, m_close, hi, lo, close = marks[self._marks_given]
            self.sim.add_mark(m_close, close, m_open, hi, lo)
            self._marks_given += 1
        funding = self.extras.funding
        while self._funding_given < len(funding) and funding[self._funding_given][0] <= bar.start:
            self.sim.add_funding(*funding[self._funding_given])
            self._funding_given += 1
        if self.first_open is None:
            self.first_open = bar.start
        self.sim.feed((bar.start, ts_close, bar.open, bar.high, bar.low, bar.close))
        self._book()

    async def before_instant(self, t: int) -> None:
        self.sim.advance_to(t)  # every fed bar is processed already; kept for the contract
        self._book()

    def side(self) -> str:
        return self.sim.side()

    def entry_pending(self) -> bool:
        return self.sim.has_pending_entry()

    def position_values(self, t: int) -> dict[str, float]:
        return self.ex.position_values(t)

    async def execute(self, t: int, decisions: Sequence[Decision], ctx: DecisionContext) -> None:
        self._ctx = ctx
        self.ex.notional_cap = ctx.notional_cap
        try:
            self.ex.execute(0, t, decisions)
        finally:
            self._ctx = None
            self.ex.notional_cap = None
        self._book()

    async def stop(self) -> None:
        t = int(self.sim.tape.ts_close[-1]) if self.sim.tape.n else 0
        for order in self.sim.open_orders():
            if not order["reduce_only"]:
                self.sim.cancel(order["id"], t)
        self._book()
        self.record.journal(t, "stop", "paper session stopped; an open position keeps its stop")

    async def flatten(self, t: int) -> None:
        """`trade play stop --flatten`: the position closed at the last traded price (taker)."""
        tape = self.sim.tape
        if self.sim.position is not None and tape.n:
            self.sim.close_all(int(tape.ts_close[-1]), float(tape.c[-1]), "flatten")
            self._book()

    def view(self) -> BrokerView:
        pos = self.sim.position
        t = int(self.sim.tape.ts_close[-1]) if self.sim.tape.n else 0
        mark = self.sim.mark_at(t) if self.sim.tape.n else math.nan
        equity = self.sim.equity(mark) if mark == mark else self.sim.cash
        return BrokerView(
            side=self.sim.side(),
            qty=pos.qty if pos else 0.0,
            entry_price=pos.entry_price if pos else None,
            stop=pos.sl if pos and pos.sl == pos.sl else None,
            target=pos.tp if pos and pos.tp == pos.tp else None,
            equity=equity,
            balance=self.sim.cash,
            open_orders=tuple(self.sim.open_orders()),
            halted="max_drawdown" if self.sim.halted else None,
        )

    def trades(self) -> list[dict[str, Any]]:
        return list(self.sim.trades)

    def _book(self) -> None:
        """Record what the simulator did since the last call: fills, trades, the rest."""
        events = self.sim.events
        for k in range(self._events_seen, len(events)):
            e = events[k]
            link = f"paper-{e['id']}" if "id" in e else ""
            if e["type"] == "fill":
                self.record.fill(
                    f"paper-fill-{k}", e["ts"], link, e["side"], e["qty"], e["price"], e["fee"],
                    e.get("reason", "entry"), {"tag": e.get("tag")},
                )  # fmt: skip
                if link:
                    self.record.order_status(link, "filled")
                continue
            if e["type"] == "order":
                body = {x: v for x, v in e.items() if x not in ("type", "ts", "id")}
                self.record.order_intent(link, e["ts"], body)
                self.record.order_status(link, "accepted")
            elif link and e["type"] in ("cancel", "expire", "reject", "skip"):
                self.record.order_status(
                    link, {"cancel": "cancelled", "expire": "expired"}.get(e["type"], "rejected"),
                    reason=e.get("reason"),
                )  # fmt: skip
            detail = {x: v for x, v in e.items() if x not in ("type", "ts")}
            self.record.journal(e["ts"], e["type"], _describe(e), **detail)
        self._events_seen = len(events)
        for trade in self.sim.trades[self._trades_seen :]:
            self.record.trade(trade)
        self._trades_seen = len(self.sim.trades)


def _describe(e: dict[str, Any]) -> str:
    kind = e["type"]
    if kind == "order":
        return f"order {e['id']}: {e['side']} {e['kind']}" + (
            " reduce-only" if e["reduce_only"] else ""
        )
    if kind == "reject":
        return f"entry refused: {e['reason']}"
    if kind == "amend_stop":
        return f"stop moved to {e['sl']} ({e['kind']})"
    if kind == "funding":
        return f"funding {e['rate']} on {e['qty']} at mark {e['mark']}: paid {e['paid']:.6f}"
    return kind
