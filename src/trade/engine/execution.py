"""The engine's execution adapter for the simulated exchange: decisions → orders, and position facts
back to the engine. Live trading plugs a Bybit adapter with the same methods into the same loops.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..instruments import InstrumentSpec
from ..play import ast as A
from ..play.compile import CompiledPlay
from ..play.model import Distance
from ..report.positions import Closes, FillTags
from ..sim import AccountConfig, BreakEven, Level, OrderRequest, SimulatedExchange, Sizing, Trailing
from ..sim.tape import Tape
from ..timeframes import TIMEFRAMES
from .decide import Decision
from .market import MarketWindow

SIDES = ("flat", "long", "short")


def account_config(compiled: CompiledPlay) -> AccountConfig:
    acc = compiled.play.account
    return AccountConfig(
        starting_equity=acc.starting_equity,
        leverage=acc.leverage,
        taker_bps=acc.fee_bps.taker,
        maker_bps=acc.fee_bps.maker,
        slippage_bps=acc.slippage_bps,
        mmr=acc.mmr,
        liquidation_fee_bps=acc.liquidation_fee_bps,
        max_drawdown_pct=acc.max_drawdown_pct,
        max_position_equity_pct=compiled.play.risk.sizing.max_position_equity_pct,
        min_notional=acc.min_notional,
        stop_beyond_liquidation=compiled.play.risk.stop_beyond_liquidation,
    )


def window_tape(window: MarketWindow, exec_ms: int) -> dict[str, np.ndarray]:
    """The simulator's tape of `window` (its intrabar bars, the mark over each, funding), as
    `Tape.columns()`."""
    ib, mark = window.intrabar, window.mark
    tape = Tape(exec_ms)
    tape.load(
        ib.ts_open,
        ib.ts_close,
        ib.open,
        ib.high,
        ib.low,
        ib.close,
        mark_ts_close=(mark.ts + mark.tf_ms) if mark is not None else None,
        mark_close=mark.close if mark is not None else None,
        funding_ts=window.funding_ts,
        funding_rate=window.funding_rate,
        mark_ts_open=mark.ts if mark is not None else None,
        mark_high=mark.high if mark is not None else None,
        mark_low=mark.low if mark is not None else None,
    )
    return tape.columns()


class SimExecution:
    """Drives a SimulatedExchange on behalf of one driver: over a loaded MarketWindow (backtest,
    replay), or fed bar by bar (`SimExecution.fed`: paper trading)."""

    def __init__(
        self,
        compiled: CompiledPlay,
        window: MarketWindow | None,
        instants: np.ndarray,
        intrabar_policy: str,
        series_at: Callable[[A.Series, int], float],
        *,
        instrument: InstrumentSpec | None = None,
        exec_close_at: Callable[[int], float] | None = None,
        tape: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """`tape`: `window_tape(window, …)` made before (a sweep's combinations of one span share
        the window's intrabar, marks and funding), else it is made here."""
        self.compiled = compiled
        self.window = window
        self.instants = instants
        self.series_at = series_at
        self.exec_ms = TIMEFRAMES[compiled.exec_tf]
        self.instrument = window.instrument if window is not None else instrument
        assert self.instrument is not None
        self.exec_close_at = exec_close_at or self._window_exec_close
        self.sim = SimulatedExchange(
            self.instrument,
            account_config(compiled),
            exec_tf_ms=self.exec_ms,
            intrabar=intrabar_policy,
        )
        if window is not None:
            self.sim.load_tape(tape if tape is not None else window_tape(window, self.exec_ms))
        self.signals = 0
        self.notional_cap: float | None = None  # a live guard's size ceiling for the next entries
        self.closed = False  # the run already ended with the end-of-data close (fast loop)
        self.records: tuple[Closes, FillTags] | None = None  # the jitted loop's, as columns

    @classmethod
    def fed(
        cls,
        compiled: CompiledPlay,
        instrument: InstrumentSpec,
        intrabar_policy: str,
        series_at: Callable[[A.Series, int], float],
        exec_close_at: Callable[[int], float],
    ) -> SimExecution:
        """An empty simulator the caller feeds 1m bars, marks and funding as they arrive."""
        return cls(
            compiled, None, np.empty(0, dtype=np.int64), intrabar_policy, series_at,
            instrument=instrument, exec_close_at=exec_close_at,
        )  # fmt: skip

    @property
    def halted(self) -> bool:
        return self.sim.halted

    def side(self) -> str:
        return self.sim.side()

    def entry_pending(self) -> bool:
        return self.sim.has_pending_entry()

    def advance_to(self, t: int, stop_on_change: bool = False) -> int | None:
        return self.sim.advance_to(t, stop_on_change)

    def position_values(self, t: int) -> dict[str, float]:
        pos = self.sim.position
        if pos is None:
            return {
                "position.side": 0.0,
                "position.entry_price": math.nan,
                "position.bars_held": math.nan,
                "position.unrealized_pnl_pct": math.nan,
            }
        price = self.sim.mark_at(int(t))
        return {
            "position.side": float(SIDES.index(pos.side)),
            "position.entry_price": pos.entry_price,
            "position.bars_held": float((int(t) - pos.entry_ts) // self.exec_ms),
            "position.unrealized_pnl_pct": (price / pos.entry_price - 1.0) * 100.0 * pos.sign,
        }

    def execute(self, i: int, t: int, decisions: Sequence[Decision]) -> None:
        for d in decisions:
            self.signals += 1
            tag: dict[str, Any] = (
                {"block": d.block, **d.metadata} if d.metadata else {"block": d.block}
            )
            if d.kind == "refused":
                side = "buy" if d.side == "long" else "sell"
                self.sim.refuse(t, "position_open", side=side, tag=tag)
            elif d.kind == "exit":
                side = "sell" if d.side == "long" else "buy"
                self.sim.submit(
                    OrderRequest(side=side, reduce_only=True, close_percent=d.percent, tag=tag), t
                )
            else:
                req = self._entry(i, t, d, tag)
                if req is not None:
                    self.sim.submit(req, t)

    def _entry(self, i: int, t: int, d: Decision, tag: dict[str, Any]) -> OrderRequest | None:
        try:
            return entry_request(
                self.compiled, self.instrument, d, t, lambda s: self.series_at(s, i),
                self.exec_close_at(t), tag, self.notional_cap,
            )  # fmt: skip
        except MissingAtr as exc:
            self.sim.refuse(t, "atr_missing", atr=str(exc))
            return None

    def _window_exec_close(self, t: int) -> float:
        assert self.window is not None
        b = self.window.bars[self.compiled.exec_tf]
        k = int(b.ts.searchsorted(t - b.tf_ms, side="right")) - 1  # the last bar closed by t
        return float(b.close[k])

    def finish(self) -> Any:
        from .runner import RunOutput

        n = len(self.instants)
        if n:
            last_t = int(self.instants[-1])
            if not self.closed:
                self.sim.advance_to(last_t)
                self.sim.close_all(last_t, self.exec_close_at(last_t), "end_of_data")
            # the curve counts ledger entries before each instant, so the close at last_t is not in
            # it; the last point comes after that close
            equity = self.sim.equity_curve(self.instants)
            equity[-1] = self.sim.cash
        else:
            equity = np.empty(0)
        counters = dict(self.sim.counters)
        counters["fallback_bars_1m"] = self.window.intrabar.fallbacks if self.window else 0
        counters.update(self.sim.tape.source_counts())
        counters.update({f"rejected_{k}": v for k, v in self.sim.rejections.items()})
        if not self.closed:  # the jitted loop's trades carry no metadata
            for t in self.sim.trades:
                t.pop("metadata", None)
        return RunOutput(
            instants=self.instants,
            equity_ts=self.instants,
            equity=equity,
            trades=self.sim.trades,
            events=self.sim.events,
            counters=counters,
            signals=self.signals,
            records=self.records,
        )


def entry_request(
    compiled: CompiledPlay,
    instrument: InstrumentSpec,
    d: Decision,
    t: int,
    series_value: Callable[[A.Series], float],
    exec_close: float,
    tag: dict[str, Any],
    notional_cap: float | None = None,
) -> OrderRequest:
    """The order an entry decision at instant `t` sends, in every mode: stop, target, trailing and
    break-even from the Play's risk block (ATR distances read as of `t`), market or limit (priced
    off the exec bar's close, rounded to the tick) with its expiry; `notional_cap` is a live guard's
    ceiling on the size. Raises MissingAtr when an ATR distance has no value yet."""
    play = compiled.play
    risk, entry = play.risk, play.entry
    buy = d.side == "long"

    def level(dist: Distance | None) -> Level | None:
        if dist is None:
            return None
        if dist.type == "percent":
            return Level("percent", dist.value)
        if dist.type == "fixed":
            return Level("distance", dist.value)
        if dist.type == "rr_ratio":
            return Level("rr", dist.value)
        atr = series_value(A.Series(f"{dist.atr}.value", 0, A.Kind.FLOAT))
        if not atr > 0:
            raise MissingAtr(dist.atr)
        return Level("distance", dist.value * atr)

    sl = level(risk.stop_loss)
    tp = level(risk.take_profit)
    trailing = None
    if risk.trailing is not None:
        tr = risk.trailing
        trailing = Trailing(
            level(Distance(type=tr.type, value=tr.value, atr=tr.atr)), tr.activation_pct
        )  # type: ignore[arg-type]
    be = (
        BreakEven(level(risk.break_even.trigger), risk.break_even.offset_pct)  # type: ignore[arg-type]
        if risk.break_even
        else None
    )
    kind = "market"
    limit_price = expire = None
    if entry.order_type == "limit":
        kind = "limit"
        off = entry.limit_offset_pct / 100.0
        limit_price = instrument.round_price(
            exec_close * (1 - off) if buy else exec_close * (1 + off)
        )
        expire = t + entry.expire_after_bars * TIMEFRAMES[compiled.exec_tf]
    return OrderRequest(
        side="buy" if buy else "sell",
        kind=kind,
        sizing=Sizing(risk.sizing.model, risk.sizing.value, notional_cap),
        limit_price=limit_price,
        expire_ts=expire,
        stop_loss=sl,
        take_profit=tp,
        trailing=trailing,
        break_even=be,
        tag=tag,
    )


class MissingAtr(Exception):
    """The ATR a distance needs is not available at the signal instant (warmup)."""
