"""SimulatedExchange: DESIGN §5 executed on intrabar (1m) bars, one semantics at two speeds.

Feed bars one at a time (`feed`, for paper trading) or load them once and `advance_to` an instant
(backtest, replay): the second jumps over quiet bars with a jitted scan and processes the bar that
matters with the same per-bar code, so both ways produce the same fills.

Order of events inside one bar: funding settlements due at or before its open, limit expiries, then
pending market orders fill at the open, resting limits that it trades through fill, then the open
position's stop/take-profit/liquidation levels are checked against the bar's range (a level already
crossed at the open fills at the open). At the bar's close: excursions, drawdown limit, and at an
exec-bar close the trailing stop and break-even move (effective from the next bar).
The simulator never reads a bar after the one it is processing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SimulationError
from ..instruments import InstrumentSpec
from .orders import AccountConfig, Level, OrderRequest
from .scan import first_limit_fill, first_trigger


@dataclass
class Position:
    side: str  # "long" | "short"
    qty: float
    entry_price: float
    entry_ts: int
    entry_fee: float  # fee of the remaining qty
    liq_price: float
    sl: float = math.nan
    tp: float = math.nan
    funding: float = 0.0  # paid (+) / received (−) on the remaining qty
    best: float = math.nan  # best price seen on closed bars (trailing, break-even)
    worst_seen: float = math.nan
    best_seen: float = math.nan
    trailing: Any = None
    trail_dist: float = math.nan
    break_even: Any = None
    be_dist: float = math.nan
    stop_kind: str = "stop_loss"
    tag: dict[str, Any] = field(default_factory=dict)

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "long" else -1.0


@dataclass
class _Pending:
    id: int
    req: OrderRequest
    ts: int  # submission instant


class SimulatedExchange:
    def __init__(
        self,
        instrument: InstrumentSpec,
        account: AccountConfig,
        *,
        exec_tf_ms: int,
        intrabar: str = "pessimistic",
        scan: bool = True,
    ) -> None:
        """`scan=False` processes every bar with the per-bar code (the reference the fast path is
        tested against)."""
        self.scan = scan
        if intrabar not in ("pessimistic", "optimistic"):
            raise SimulationError(f"intrabar policy {intrabar!r}")
        self.instrument = instrument
        self.account = account
        self.exec_tf_ms = exec_tf_ms
        self.optimistic = intrabar == "optimistic"
        self.taker = account.taker_bps / 1e4
        self.maker = account.maker_bps / 1e4
        self.slip = account.slippage_bps / 1e4
        self.mmr = account.mmr if account.mmr is not None else instrument.maintenance_margin_rate
        self.liq_fee = (
            account.liquidation_fee_bps
            if account.liquidation_fee_bps is not None
            else account.taker_bps
        ) / 1e4
        self.min_notional = (
            account.min_notional if account.min_notional is not None else instrument.min_notional
        )
        self.cash = account.starting_equity
        self.peak = account.starting_equity
        self.position: Position | None = None
        self.pending: list[_Pending] = []
        self.trades: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.ledger: list[
            tuple[int, float, float, float]
        ] = []  # (ts, cash, signed qty, entry price)
        self.counters: dict[str, int] = {
            "rejected_entries": 0,
            "ambiguous_exits": 0,
            "liquidations": 0,
        }
        self.rejections: dict[str, int] = {}
        self.halted = False
        self._next_id = 1
        self._trade_id = 1
        self._k = 0  # next bar index to process
        self._changed: int | None = None
        self._last_close = math.nan
        self._loaded = False
        self._fund_i = 0

    # ------------------------------------------------------------------ data

    def load(
        self,
        ts_open: np.ndarray,
        ts_close: np.ndarray,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        *,
        mark_ts_close: np.ndarray | None = None,
        mark_close: np.ndarray | None = None,
        funding_ts: np.ndarray | None = None,
        funding_rate: np.ndarray | None = None,
    ) -> None:
        """Give the whole intrabar series at once (backtest/replay); process it with advance_to."""
        self.ts_open = np.ascontiguousarray(ts_open, dtype=np.int64)
        self.ts_close = np.ascontiguousarray(ts_close, dtype=np.int64)
        self.o = np.ascontiguousarray(open, dtype=np.float64)
        self.h = np.ascontiguousarray(high, dtype=np.float64)
        self.lo = np.ascontiguousarray(low, dtype=np.float64)
        self.c = np.ascontiguousarray(close, dtype=np.float64)
        n = len(self.ts_open)
        if mark_ts_close is not None and mark_close is not None and len(mark_close):
            j = np.searchsorted(mark_ts_close, self.ts_close, side="right") - 1
            mark = np.where(j >= 0, mark_close[np.maximum(j, 0)], np.nan)
            self.mark = np.where(np.isnan(mark), self.c, mark)
            self.liq_low = self.mark
            self.liq_high = self.mark
        else:
            self.mark = self.c
            self.liq_low = self.lo
            self.liq_high = self.h
        self.funding_ts = np.asarray(
            funding_ts if funding_ts is not None else np.empty(0), dtype=np.int64
        )
        self.funding_rate = np.asarray(
            funding_rate if funding_rate is not None else np.empty(0), dtype=np.float64
        )
        self.exec_close = (self.ts_close % self.exec_tf_ms) == 0
        self._n = n
        self._loaded = True

    def mark_at(self, ts: int) -> float:
        """Mark price as of instant `ts` (last price where no mark series is loaded)."""
        k = int(np.searchsorted(self.ts_close, ts, side="right")) - 1
        return float(self.mark[k]) if k >= 0 else math.nan

    # ------------------------------------------------------------------ orders

    def submit(self, req: OrderRequest, ts: int) -> int:
        """Queue an order decided at instant `ts`; it acts from the first bar opening at or after ts."""
        oid = self._next_id
        self._next_id += 1
        if self.halted:
            self._reject(ts, oid, "halted", req)
            return oid
        self.pending.append(_Pending(oid, req, ts))
        self.events.append(
            {
                "type": "order",
                "ts": ts,
                "id": oid,
                "side": req.side,
                "kind": req.kind,
                "reduce_only": req.reduce_only,
                "close_percent": req.close_percent,
                "limit_price": req.limit_price,
                "tag": req.tag,
            }
        )
        return oid

    def cancel(self, oid: int, ts: int) -> bool:
        for p in self.pending:
            if p.id == oid:
                self.pending.remove(p)
                self.events.append({"type": "cancel", "ts": ts, "id": oid})
                return True
        return False

    def has_pending_entry(self) -> bool:
        return any(not p.req.reduce_only for p in self.pending)

    def side(self) -> str:
        return self.position.side if self.position else "flat"

    # ------------------------------------------------------------------ stepping

    def advance_to(self, ts: int, stop_on_change: bool = False) -> int | None:
        """Process every loaded bar with ts_close <= ts. With stop_on_change, return right after the
        bar where the position or a pending order changed (its ts_close); else None."""
        if not self._loaded:
            raise SimulationError("advance_to before load")
        end = int(np.searchsorted(self.ts_close, ts, side="right"))
        while self._k < end:
            k = self._k
            pos = self.position
            if self.scan and pos is None and not self.pending:
                # flat with nothing resting: no bar can matter (funding is not charged when flat)
                last_open = int(self.ts_open[end - 1])
                while (
                    self._fund_i < len(self.funding_ts)
                    and self.funding_ts[self._fund_i] <= last_open
                ):
                    self._fund_i += 1
                self._last_close = float(self.c[end - 1])
                self._k = end
                break
            if self.scan and pos is not None and not self.pending and not self.halted:
                stop = self._quiet_until(k, end)
                if stop > k:
                    j, self.peak = first_trigger(
                        self.h,
                        self.lo,
                        self.c,
                        self.liq_low,
                        self.liq_high,
                        k,
                        stop,
                        pos.side == "long",
                        pos.sl,
                        pos.tp,
                        pos.liq_price,
                        pos.qty,
                        pos.entry_price,
                        self.cash,
                        self.peak,
                        (self.account.max_drawdown_pct or 0.0) / 100.0,
                    )
                    if j > k:
                        self._excursions(pos, k, j)
                        self._last_close = float(self.c[j - 1])
                        self._k = j
                        continue
            elif (
                self.scan
                and pos is None
                and len(self.pending) == 1
                and self.pending[0].req.kind == "limit"
                and not self.halted
            ):
                p = self.pending[0]
                stop = self._limit_quiet_until(k, end, p)
                if stop > k:
                    j = first_limit_fill(
                        self.h, self.lo, k, stop, p.req.side == "buy", float(p.req.limit_price)
                    )
                    if j > k:
                        self._last_close = float(self.c[j - 1])
                        self._k = j
                        continue
            self._changed = None
            self._bar(k)
            self._k = k + 1
            if stop_on_change and self._changed is not None:
                return int(self.ts_close[k])
        return None

    def _quiet_until(self, k: int, end: int) -> int:
        """Bars from k that only the scan needs to see: stop before funding and, with a trailing
        stop or break-even, before the next exec close."""
        stop = end
        if self._fund_i < len(self.funding_ts):
            f = int(np.searchsorted(self.ts_open, self.funding_ts[self._fund_i], side="left"))
            stop = min(stop, f)
        pos = self.position
        if pos is not None and (pos.trailing is not None or pos.break_even is not None):
            nxt = (
                int(np.argmax(self.exec_close[k:end])) + k
                if k < end and self.exec_close[k:end].any()
                else end
            )
            stop = min(stop, nxt)
        return max(stop, k)

    def _limit_quiet_until(self, k: int, end: int, p: _Pending) -> int:
        stop = end
        if p.req.expire_ts is not None:
            stop = min(stop, int(np.searchsorted(self.ts_open, p.req.expire_ts, side="left")))
        if k < len(self.ts_open) and self.ts_open[k] < p.ts:
            return k
        return max(stop, k)

    def feed(
        self,
        ts_open: int,
        ts_close: int,
        o: float,
        h: float,
        lo: float,
        c: float,
        mark: float | None = None,
    ) -> None:
        """Process one new bar (paper trading): same per-bar code as advance_to."""
        arrays = [np.array([x]) for x in (ts_open, ts_close)]
        if not self._loaded:
            self.load(
                arrays[0], arrays[1], np.array([o]), np.array([h]), np.array([lo]), np.array([c])
            )
            self._k = 0
        else:
            self.ts_open = np.append(self.ts_open, ts_open)
            self.ts_close = np.append(self.ts_close, ts_close)
            self.o, self.h = np.append(self.o, o), np.append(self.h, h)
            self.lo, self.c = np.append(self.lo, lo), np.append(self.c, c)
            m = c if mark is None else mark
            self.mark = np.append(self.mark, m)
            self.liq_low = self.mark if mark is not None else self.lo
            self.liq_high = self.mark if mark is not None else self.h
            self.exec_close = np.append(self.exec_close, ts_close % self.exec_tf_ms == 0)
        self.advance_to(ts_close)

    # ------------------------------------------------------------------ one bar

    def _bar(self, k: int) -> None:
        t_open = int(self.ts_open[k])
        o, h, lo, c = float(self.o[k]), float(self.h[k]), float(self.lo[k]), float(self.c[k])
        self._funding_until(t_open)
        for p in [p for p in self.pending if p.ts <= t_open]:
            if p.req.kind == "limit" and p.req.expire_ts is not None and t_open >= p.req.expire_ts:
                self.pending.remove(p)
                self.events.append({"type": "expire", "ts": t_open, "id": p.id})
                self._changed = t_open
        # market orders at the open: reduce-only (exits) first, so a flip closes then opens
        due = [p for p in self.pending if p.ts <= t_open and p.req.kind == "market"]
        for p in sorted(due, key=lambda p: not p.req.reduce_only):
            self.pending.remove(p)
            self._market(p, t_open, o, k)
        for p in [p for p in self.pending if p.ts <= t_open and p.req.kind == "limit"]:
            self._limit(p, t_open, o, h, lo, k)
        if self.position is not None and not self.halted:
            self._levels(t_open, o, h, lo, k)
        if self.position is not None:
            self._excursions(self.position, k, k + 1)
            self._bar_close(k, c)
        self._last_close = c

    def _funding_until(self, t: int) -> None:
        while self._fund_i < len(self.funding_ts) and self.funding_ts[self._fund_i] <= t:
            ft, rate = int(self.funding_ts[self._fund_i]), float(self.funding_rate[self._fund_i])
            self._fund_i += 1
            pos = self.position
            if pos is None:
                continue
            mark = self.mark_at(ft)
            if math.isnan(mark):
                mark = self._last_close
            amount = pos.qty * mark * rate * pos.sign  # > 0: the position pays
            pos.funding += amount
            self.cash -= amount
            self.events.append(
                {
                    "type": "funding",
                    "ts": ft,
                    "rate": rate,
                    "mark": mark,
                    "qty": pos.qty,
                    "paid": amount,
                }
            )
            self._ledger(ft)

    def _market(self, p: _Pending, t: int, o: float, k: int) -> None:
        req = p.req
        buy = req.side == "buy"
        price = o * (1 + self.slip) if buy else o * (1 - self.slip)
        if req.reduce_only:
            pos = self.position
            if pos is None or (pos.side == "long") == buy:
                self.events.append(
                    {"type": "skip", "ts": t, "id": p.id, "reason": "no position to reduce"}
                )
                return
            share = (req.close_percent or 100.0) / 100.0
            qty = pos.qty if share >= 1.0 else self.instrument.round_qty_down(pos.qty * share)
            if qty <= 0:
                self._reject(t, p.id, "qty_step", req)
                return
            self._close(qty, price, t, req.exit_reason, self.taker, k)
            return
        self._open(p, price, t, self.taker, k)

    def _limit(self, p: _Pending, t: int, o: float, h: float, lo: float, k: int) -> None:
        req = p.req
        lim = float(req.limit_price)  # type: ignore[arg-type]
        buy = req.side == "buy"
        if (buy and lo <= lim) or (not buy and h >= lim):
            fill = min(o, lim) if buy else max(o, lim)
            self.pending.remove(p)
            self._open(p, fill, t, self.maker, k)

    def _open(self, p: _Pending, price: float, t: int, fee_rate: float, k: int) -> None:
        req = p.req
        if self.position is not None:
            self._reject(t, p.id, "position_open", req)
            return
        side = "long" if req.side == "buy" else "short"
        sign = 1.0 if side == "long" else -1.0
        lev = self.account.leverage
        equity = self.cash
        sl_dist = (
            req.stop_loss.distance(price, None)
            if req.stop_loss and req.stop_loss.kind != "price"
            else (abs(price - req.stop_loss.value) if req.stop_loss else None)
        )
        if req.qty is not None:
            qty = self.instrument.round_qty_down(req.qty)
        else:
            sz = req.sizing
            if sz is None:
                raise SimulationError("an entry needs qty or sizing")
            if sz.model == "percent_equity":
                notional = equity * sz.value / 100.0 * lev
            elif sz.model == "fixed_notional":
                notional = sz.value
            else:
                if not sl_dist:
                    self._reject(t, p.id, "risk_sizing_needs_stop", req)
                    return
                notional = equity * sz.value / 100.0 / (sl_dist / price)
            notional = min(notional, equity * lev * self.account.max_position_equity_pct / 100.0)
            notional = min(notional, equity / (1.0 / lev + fee_rate))
            qty = self.instrument.round_qty_down(notional / price)
        if qty <= 0 or qty < self.instrument.min_qty:
            self._reject(t, p.id, "min_qty", req)
            return
        if qty * price < self.min_notional:
            self._reject(t, p.id, "min_notional", req)
            return
        liq = (
            price * (1 - 1 / lev + self.mmr) if side == "long" else price * (1 + 1 / lev - self.mmr)
        )
        sl = math.nan
        if req.stop_loss is not None:
            sl = (
                req.stop_loss.value
                if req.stop_loss.kind == "price"
                else price - sign * float(sl_dist)
            )
            sl = self.instrument.round_price(sl)
            beyond = sl <= liq if side == "long" else sl >= liq
            if beyond:
                if self.account.stop_beyond_liquidation == "reject":
                    self._reject(t, p.id, "stop_beyond_liquidation", req)
                    return
                sl = self.instrument.round_price(liq + sign * self.instrument.tick_size)
                sl_dist = abs(price - sl)
        tp = math.nan
        if req.take_profit is not None:
            tp = (
                req.take_profit.value
                if req.take_profit.kind == "price"
                else price + sign * req.take_profit.distance(price, sl_dist)
            )
            tp = self.instrument.round_price(tp)
        fee = qty * price * fee_rate
        self.cash -= fee
        pos = Position(side, qty, price, t, fee, liq, sl, tp, tag=dict(req.tag))
        pos.best = pos.best_seen = pos.worst_seen = price
        if req.trailing is not None:
            pos.trailing = req.trailing
            pos.trail_dist = req.trailing.distance.distance(price, sl_dist)
        if req.break_even is not None:
            pos.break_even = req.break_even
            pos.be_dist = req.break_even.trigger.distance(price, sl_dist)
        self.position = pos
        self._changed = t
        self.events.append(
            {
                "type": "fill",
                "ts": t,
                "id": p.id,
                "side": req.side,
                "qty": qty,
                "price": price,
                "fee": fee,
                "liq_price": liq,
                "sl": None if math.isnan(sl) else sl,
                "tp": None if math.isnan(tp) else tp,
                "maker": fee_rate == self.maker,
            }
        )
        self._ledger(t)

    def _levels(self, t: int, o: float, h: float, lo: float, k: int) -> None:
        pos = self.position
        assert pos is not None
        long = pos.side == "long"
        liq_lo, liq_hi = float(self.liq_low[k]), float(self.liq_high[k])
        sl, tp, liq = pos.sl, pos.tp, pos.liq_price
        slip = self.slip
        # a level already crossed at the open fills at the open
        if long:
            if o <= liq:
                return self._liquidate(t, k)
            if sl == sl and o <= sl:
                return self._close(pos.qty, o * (1 - slip), t, pos.stop_kind, self.taker, k)
            if tp == tp and o >= tp:
                return self._close(pos.qty, o * (1 - slip), t, "take_profit", self.taker, k)
            hit_sl = sl == sl and lo <= sl
            hit_tp = tp == tp and h >= tp
        else:
            if o >= liq:
                return self._liquidate(t, k)
            if sl == sl and o >= sl:
                return self._close(pos.qty, o * (1 + slip), t, pos.stop_kind, self.taker, k)
            if tp == tp and o <= tp:
                return self._close(pos.qty, o * (1 + slip), t, "take_profit", self.taker, k)
            hit_sl = sl == sl and h >= sl
            hit_tp = tp == tp and lo <= tp
        if hit_sl and hit_tp:
            self.counters["ambiguous_exits"] += 1
            if self.optimistic:
                hit_sl = False
            else:
                hit_tp = False
        exit_side = -1.0 if long else 1.0  # a long exits by selling
        if hit_sl:
            return self._close(
                pos.qty, sl * (1 + exit_side * slip), t, pos.stop_kind, self.taker, k
            )
        if (long and liq_lo <= liq) or (not long and liq_hi >= liq):
            return self._liquidate(t, k)
        if hit_tp:
            return self._close(
                pos.qty, tp * (1 + exit_side * slip), t, "take_profit", self.taker, k
            )
        return None

    def _liquidate(self, t: int, k: int) -> None:
        pos = self.position
        assert pos is not None
        self.counters["liquidations"] += 1
        self._close(pos.qty, pos.liq_price, t, "liquidation", self.liq_fee, k)

    def _bar_close(self, k: int, c: float) -> None:
        pos = self.position
        assert pos is not None
        t_close = int(self.ts_close[k])
        eq = self.cash + pos.qty * (c - pos.entry_price) * pos.sign
        dd = self.account.max_drawdown_pct
        if dd is not None and eq <= self.peak * (1 - dd / 100.0):
            exit_px = c * (1 - self.slip) if pos.side == "long" else c * (1 + self.slip)
            self._close(pos.qty, exit_px, int(self.ts_open[k]), "max_drawdown", self.taker, k)
            self.halted = True
            self.pending.clear()
            self.events.append(
                {
                    "type": "halt",
                    "ts": t_close,
                    "reason": "max_drawdown",
                    "equity": eq,
                    "peak": self.peak,
                }
            )
            return
        self.peak = max(self.peak, eq)
        if bool(self.exec_close[k]) and (pos.trailing is not None or pos.break_even is not None):
            self._move_stop(pos, t_close)

    def _move_stop(self, pos: Position, t: int) -> None:
        sign = pos.sign
        best = pos.best_seen
        new = pos.sl
        kind = pos.stop_kind
        if pos.break_even is not None and (best - pos.entry_price) * sign >= pos.be_dist:
            be = self.instrument.round_price(
                pos.entry_price * (1 + sign * pos.break_even.offset_pct / 100.0)
            )
            if math.isnan(new) or (be - new) * sign > 0:
                new = be
        if pos.trailing is not None:
            moved = (best - pos.entry_price) * sign / pos.entry_price * 100.0
            if moved >= pos.trailing.activation_pct:
                trail = self.instrument.round_price(best - sign * pos.trail_dist)
                if math.isnan(new) or (trail - new) * sign > 0:
                    new, kind = trail, "trailing_stop"
        if new == new and (math.isnan(pos.sl) or new != pos.sl):
            pos.sl, pos.stop_kind = new, kind
            self.events.append({"type": "amend_stop", "ts": t, "sl": new, "kind": kind})

    def _excursions(self, pos: Position, k0: int, k1: int) -> None:
        hi, lo = float(self.h[k0:k1].max()), float(self.lo[k0:k1].min())
        if pos.side == "long":
            pos.best_seen = max(pos.best_seen, hi)
            pos.worst_seen = min(pos.worst_seen, lo)
        else:
            pos.best_seen = min(pos.best_seen, lo)
            pos.worst_seen = max(pos.worst_seen, hi)

    def _close(
        self, qty: float, price: float, t: int, reason: str, fee_rate: float, k: int
    ) -> None:
        pos = self.position
        assert pos is not None
        share = qty / pos.qty
        entry_fee = pos.entry_fee * share
        funding = pos.funding * share
        exit_fee = qty * price * fee_rate
        gross = (price - pos.entry_price) * qty * pos.sign
        self.cash += gross - exit_fee
        pnl = gross - entry_fee - exit_fee - funding
        notional = qty * pos.entry_price
        ref = pos.entry_price
        if pos.side == "long":
            mae, mfe = (
                (min(pos.worst_seen, price) / ref - 1) * 100,
                (max(pos.best_seen, price) / ref - 1) * 100,
            )
        else:
            mae, mfe = (
                (1 - max(pos.worst_seen, price) / ref) * 100,
                (1 - min(pos.best_seen, price) / ref) * 100,
            )
        self.trades.append(
            {
                "trade_id": self._trade_id,
                "side": pos.side,
                "entry_time": pos.entry_ts,
                "entry_price": pos.entry_price,
                "exit_time": t,
                "exit_price": price,
                "qty": qty,
                "notional": notional,
                "exit_reason": reason,
                "fees": entry_fee + exit_fee,
                "funding": funding,
                "pnl": pnl,
                "return_pct": pnl / notional * 100.0,
                "mae_pct": mae,
                "mfe_pct": mfe,
                "bars_held": (t - pos.entry_ts) // self.exec_tf_ms,
                "metadata": pos.tag,
            }
        )
        self._trade_id += 1
        self.events.append(
            {
                "type": "fill",
                "ts": t,
                "side": "sell" if pos.side == "long" else "buy",
                "qty": qty,
                "price": price,
                "fee": exit_fee,
                "reason": reason,
                "pnl": pnl,
            }
        )
        if share >= 1.0 - 1e-12:
            self.position = None
        else:
            pos.qty = self.instrument.round_qty_down(pos.qty - qty) if pos.qty - qty > 0 else 0.0
            pos.entry_fee -= entry_fee
            pos.funding -= funding
        self._changed = t
        self._ledger(t)

    def _reject(self, t: int, oid: int, reason: str, req: OrderRequest) -> None:
        if not req.reduce_only:
            self.counters["rejected_entries"] += 1
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        self.events.append(
            {"type": "reject", "ts": t, "id": oid, "reason": reason, "side": req.side}
        )
        self._changed = t

    def _ledger(self, t: int) -> None:
        pos = self.position
        q = 0.0 if pos is None else pos.qty * pos.sign
        self.ledger.append((t, self.cash, q, pos.entry_price if pos else 0.0))

    # ------------------------------------------------------------------ queries and the end

    def equity(self, price: float) -> float:
        pos = self.position
        if pos is None:
            return self.cash
        return self.cash + pos.qty * (price - pos.entry_price) * pos.sign

    def close_all(self, t: int, price: float, reason: str = "end_of_data") -> None:
        """Close any open position at `price` (taker fee, no slippage) and cancel pending orders."""
        for p in list(self.pending):
            self.cancel(p.id, t)
        if self.position is not None:
            self._close(self.position.qty, price, t, reason, self.taker, max(self._k - 1, 0))

    def equity_curve(self, instants: np.ndarray) -> np.ndarray:
        """Equity at each instant: ledger cash and position as of the instant (fills at an instant's own
        timestamp come after it), unrealised PnL at the mark."""
        if not self.ledger:
            return np.full(len(instants), self.account.starting_equity)
        lt = np.array([x[0] for x in self.ledger], dtype=np.int64)
        cash = np.array([x[1] for x in self.ledger])
        qty = np.array([x[2] for x in self.ledger])
        entry = np.array([x[3] for x in self.ledger])
        j = np.searchsorted(lt, instants, side="left") - 1
        ok = j >= 0
        jj = np.maximum(j, 0)
        k = np.searchsorted(self.ts_close, instants, side="right") - 1
        price = np.where(k >= 0, self.mark[np.maximum(k, 0)], np.nan)
        eq = np.where(ok, cash[jj] + qty[jj] * (price - entry[jj]), self.account.starting_equity)
        return np.where(np.isnan(eq), np.where(ok, cash[jj], self.account.starting_equity), eq)


__all__ = ["Level", "Position", "SimulatedExchange"]
