"""SimulatedExchange: DESIGN §5 executed on intrabar (normally 1m) bars, one semantics at two speeds.

Feed bars one at a time (`feed`: replay, paper trading) or load them once and `advance_to` an
instant (backtest): the second jumps over quiet bars with a jitted scan and processes the bar that
matters with the same per-bar code, so both ways produce the same fills, trades and events.

Order of events inside one bar: funding settlements due at or before its open; resting orders whose
expiry has come are cancelled; market orders due fill at the open (exits first, so a flip closes
then opens at the same open); resting limit and stop orders the bar trades through fill; the open
position's liquidation / stop / take-profit levels are checked against the bar (a level the open
already crossed fills at the open). At the bar's close: excursions, the drawdown limit, and at an
exec-bar close the trailing stop and break-even move (effective from the next bar).
The simulator never acts on a bar after the one it is processing. On a loaded tape a level scan
may read past it, only to remember how far no stop, target or liquidation price is reached (see
`_level_trigger`); what it returns is clipped to the bars asked for, so it changes nothing but speed.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from ..errors import SimulationError
from ..instruments import InstrumentSpec
from .levels import entry_levels, moved_stop, sized_notional, stop_distance
from .orders import EXIT_REASONS, REJECT_REASONS, AccountConfig, OrderRequest
from .position import Position
from .scan import extremes, first_touch, first_trigger, first_true
from .tape import Tape


class IntrabarBar(NamedTuple):
    """One intrabar bar as `feed` takes it (times in ms UTC)."""

    ts_open: int
    ts_close: int
    open: float
    high: float
    low: float
    close: float


class _Pending:
    """An order accepted and not yet filled, cancelled or expired."""

    __slots__ = ("id", "req", "ts")

    def __init__(self, oid: int, req: OrderRequest, ts: int) -> None:
        self.id, self.req, self.ts = oid, req, ts


class SimulatedExchange:
    """A simulated USDT perpetual account on one instrument (isolated margin, one-way mode)."""

    def __init__(
        self,
        instrument: InstrumentSpec,
        account: AccountConfig,
        *,
        exec_tf_ms: int,
        intrabar: str = "pessimistic",
        scan: bool = True,
    ) -> None:
        """`intrabar`: how a bar reaching both stop and take-profit resolves ("pessimistic": the
        stop; "optimistic": the target). `scan=False` processes every bar with the per-bar code
        (the reference the fast path is tested against)."""
        if intrabar not in ("pessimistic", "optimistic"):
            raise SimulationError(
                f"intrabar policy must be pessimistic or optimistic, got {intrabar!r}"
            )
        if exec_tf_ms <= 0:
            raise SimulationError(f"exec_tf_ms must be positive, got {exec_tf_ms}")
        self.instrument = instrument
        self.account = account
        self.exec_tf_ms = exec_tf_ms
        self.optimistic = intrabar == "optimistic"
        self.scan = scan
        self.taker = account.taker_bps / 1e4
        self.maker = account.maker_bps / 1e4
        self.slip = account.slippage_bps / 1e4
        self.mmr = account.mmr if account.mmr is not None else instrument.maintenance_margin_rate
        liq_bps = account.liquidation_fee_bps
        self.liq_fee = (liq_bps if liq_bps is not None else account.taker_bps) / 1e4
        self.min_notional = (
            account.min_notional if account.min_notional is not None else instrument.min_notional
        )
        self.dd_frac = (account.max_drawdown_pct or 0.0) / 100.0
        self.tape = Tape(exec_tf_ms)
        self.cash = account.starting_equity
        self.peak = account.starting_equity
        self.position: Position | None = None
        self.pending: list[_Pending] = []
        self.trades: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        #: (ts, cash, signed qty, entry price) after every cash or position change (the jitted
        #: loop leaves them as one float array)
        self.ledger: list[tuple[int, float, float, float]] = []
        self.counters: dict[str, int] = {
            "rejected_entries": 0,
            "ambiguous_exits": 0,
            "liquidations": 0,
        }
        self.rejections: dict[str, int] = {}
        self.funding_total = 0.0  # paid (+) / received (−) over the run
        self.halted = False
        self._next_id = 1
        self._trade_id = 1
        self._k = 0  # next bar index to process
        self._fund_i = 0  # next funding event to settle
        self._changed = False
        self._last_close = math.nan
        # (position, (sl, tp, liq), from, to, found): no level reached in [from, to); found: at `to`
        self._levels_memo: tuple[Any, ...] | None = None
        self._funding_bar = (-1, 0)  # (funding index, the first bar opening at or after it)

    # ------------------------------------------------------------------ market data

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
        mark_ts_open: np.ndarray | None = None,
        mark_high: np.ndarray | None = None,
        mark_low: np.ndarray | None = None,
    ) -> None:
        """Give the whole intrabar series (plus optional mark bars by close time, with their open
        times, highs and lows where known, and funding events) at once; then process it with
        `advance_to`. See `tape` for the mark each bar is priced at."""
        if self._k:
            raise SimulationError("load after bars were processed")
        self.tape.load(
            ts_open, ts_close, open, high, low, close, mark_ts_close, mark_close, funding_ts,
            funding_rate, mark_ts_open, mark_high, mark_low,
        )  # fmt: skip

    def load_tape(self, columns: Mapping[str, np.ndarray]) -> None:
        """`load` from a loaded tape's `Tape.columns()` (the same series, derived once)."""
        if self._k:
            raise SimulationError("load after bars were processed")
        self.tape.load_columns(columns)

    def add_mark(
        self, ts_close: int, close: float, ts_open: int = -1, high: float = math.nan,
        low: float = math.nan,
    ) -> None:  # fmt: skip
        """Append a mark-price bar (before feeding intrabar bars that close at or after it)."""
        self.tape.append_mark(int(ts_close), float(close), int(ts_open), float(high), float(low))

    def add_funding(self, ts: int, rate: float) -> None:
        """Append a funding event (before feeding the bar that opens at or after `ts`)."""
        if self._k and ts <= int(self.tape.ts_open[self._k - 1]):
            raise SimulationError(f"funding at {ts} arrives after the bar it settles on")
        self.tape.append_funding(int(ts), float(rate))

    def feed(self, bar: IntrabarBar | Sequence[float]) -> int | None:
        """Process one new intrabar bar (replay, paper). Returns its close when the position or an
        order changed on it, else None."""
        b = IntrabarBar(*bar)
        if self._k != self.tape.n:
            raise SimulationError("feed while loaded bars are still unprocessed")
        self.tape.append_bar(
            int(b.ts_open), int(b.ts_close), float(b.open), float(b.high), float(b.low),
            float(b.close),
        )  # fmt: skip
        return self._run(self.tape.n, stop_on_change=True)

    def mark_at(self, ts: int) -> float:
        """Mark price at instant `ts`: the mark over the last bar closed by then (see `tape`;
        its close where no mark bar has closed yet)."""
        return self.tape.mark_at(ts)

    # ------------------------------------------------------------------ orders

    def submit(self, req: OrderRequest, ts: int) -> int:
        """Accept an order decided at instant `ts`; it acts from the first bar opening at or after
        `ts`. Returns its id (also when refused because the account is halted)."""
        problem = req.problem()
        if problem is not None:
            raise SimulationError(f"bad order request: {problem}")
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
        if req.stop_price is not None:
            self.events[-1]["stop_price"] = req.stop_price
        return oid

    def refuse(self, ts: int, reason: str, **detail: Any) -> None:
        """Count an entry the caller could not send as a rejection (`position_open`: a position
        is open and no exit precedes the entry; `atr_missing`: its ATR distance has no value yet),
        so no signal is dropped silently; `detail` goes into the event."""
        if reason not in REJECT_REASONS:
            raise SimulationError(f"unknown rejection reason {reason!r}")
        self.counters["rejected_entries"] += 1
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        self.events.append({"type": "reject", "ts": ts, "reason": reason, **detail})

    def cancel(self, oid: int, ts: int) -> bool:
        """Cancel a pending order; False when it is no longer pending."""
        for p in self.pending:
            if p.id == oid:
                self.pending.remove(p)
                self.events.append({"type": "cancel", "ts": ts, "id": oid})
                return True
        return False

    # ------------------------------------------------------------------ queries

    def open_orders(self) -> list[dict[str, Any]]:
        """Pending orders as plain dicts (id, submitted ts, and the request's fields)."""
        return [
            {"id": p.id, "ts": p.ts, "side": p.req.side, "kind": p.req.kind,
             "reduce_only": p.req.reduce_only, "qty": p.req.qty,
             "limit_price": p.req.limit_price, "stop_price": p.req.stop_price,
             "expire_ts": p.req.expire_ts, "tag": p.req.tag}
            for p in self.pending
        ]  # fmt: skip

    def has_pending_entry(self) -> bool:
        """An entry order is waiting (so the engine does not send another)."""
        return any(not p.req.reduce_only for p in self.pending)

    def side(self) -> str:
        """ "long", "short" or "flat"."""
        return self.position.side if self.position else "flat"

    @property
    def balance(self) -> float:
        """Cash: starting equity + realised PnL − fees − funding (the wallet balance)."""
        return self.cash

    def equity(self, mark_price: float) -> float:
        """Cash plus the open position's unrealised PnL at `mark_price`."""
        pos = self.position
        return self.cash if pos is None else self.cash + pos.unrealized_pnl(mark_price)

    def equity_curve(self, instants: np.ndarray) -> np.ndarray:
        """Equity at each instant: cash and position as of the instant (a fill at an instant's own
        timestamp comes after it), unrealised PnL at the mark as of the instant."""
        start = self.account.starting_equity
        if len(self.ledger) == 0:
            return np.full(len(instants), start)
        # the rows appended per fill, or the jitted loop's array of them
        led = np.asarray(self.ledger, dtype=np.float64).reshape(-1, 4)
        instants = np.ascontiguousarray(instants, dtype=np.int64)
        tape = self.tape
        return equity_at(
            instants, led[:, 0].astype(np.int64), np.ascontiguousarray(led[:, 1]),
            np.ascontiguousarray(led[:, 2]), np.ascontiguousarray(led[:, 3]), start,
            tape.ts_close, tape.dd_price,
        )  # fmt: skip

    # ------------------------------------------------------------------ stepping

    def advance_to(self, ts: int, stop_on_change: bool = False) -> int | None:
        """Process every bar with ts_close <= ts. With `stop_on_change`, return right after the
        bar where the position or a pending order changed (returning that bar's close), so the
        caller can act from that instant; else None."""
        tc, k, n = self.tape.py_ts_close, self._k, self.tape.n  # tc views past n (see Tape)
        if k == n or tc[k] > ts:
            return None  # nothing closed since the last call
        if k + 1 == n or tc[k + 1] > ts:
            # bar by bar (replay, one call per instant): exactly one bar closed, and usually the
            # scan passes it; asking it here spares `_run`'s frame and loop (≈7% of replay)
            if self.scan:
                j = self._skip(k, k + 1)
                if j > k:
                    self._k = j
                    return None
            end = k + 1
        else:
            # the end is usually a few bars ahead: bisect there before searching the whole tape
            near = min(k + 64, n)
            end = bisect.bisect_right(tc, ts, k, near)
            if end == near < n:
                end = int(self.tape.ts_close.searchsorted(ts, side="right"))
        return self._run(end, stop_on_change)

    def _run(self, end: int, stop_on_change: bool) -> int | None:
        """Process bars up to index `end` (exclusive); see advance_to."""
        tape = self.tape
        while self._k < end:
            k = self._k
            if self.scan:
                j = self._skip(k, end)
                if j > k:
                    self._k = j
                    continue
            self._changed = False
            self._bar(k)
            self._k = k + 1
            if stop_on_change and self._changed:
                return int(tape.ts_close[k])
        return None

    def _skip(self, k: int, end: int) -> int:
        """First bar in [k, end] the per-bar code must see, found without walking in Python."""
        tape, pos = self.tape, self.position
        if pos is None and not self.pending:
            # flat with nothing resting: no bar can matter (funding is not charged when flat)
            last_open, fts = tape.py_ts_open[end - 1], tape.py_funding_ts
            while self._fund_i < len(fts) and fts[self._fund_i] <= last_open:
                self._fund_i += 1
            self._last_close = tape.py_c[end - 1]
            return end
        if self.halted:
            return k
        if pos is not None and not self.pending:
            stop = self._quiet_until(k, end)
            if stop <= k:
                return k
            if self.dd_frac > 0:
                j, self.peak = first_trigger(
                    tape.h, tape.lo, tape.dd_price, tape.liq_low, tape.liq_high, k, stop,
                    pos.side == "long", pos.sl, pos.tp, pos.liq_price, pos.qty, pos.entry_price,
                    self.cash, self.peak, self.dd_frac,
                )  # fmt: skip
            else:
                j = self._level_trigger(pos, k, stop)
        elif pos is None and len(self.pending) == 1:
            p = self.pending[0]
            if p.req.kind == "market" or p.req.reduce_only or p.ts > tape.py_ts_open[k]:
                return k
            stop = end
            if p.req.expire_ts is not None:
                stop = bisect.bisect_left(tape.py_ts_open, p.req.expire_ts, k, end)
            if stop <= k:
                return k
            buy = p.req.side == "buy"
            if p.req.kind == "limit":
                lim = float(p.req.limit_price)  # type: ignore[arg-type]
                j = first_touch(tape.h, tape.lo, k, stop, buy, lim, True)
            else:
                trig = float(p.req.stop_price)  # type: ignore[arg-type]
                j = first_touch(tape.h, tape.lo, k, stop, not buy, trig, False)
        else:
            return k
        if j > k:
            if pos is not None:
                self._excursions(pos, k, j)
            self._last_close = tape.py_c[j - 1]
        return j

    def _level_trigger(self, pos: Position, k: int, stop: int) -> int:
        """`first_trigger` without the drawdown limit: the first bar in [k, stop) reaching the
        position's stop, target or liquidation price (else stop).

        Those levels do not move between bars that need no per-bar code, so the answer holds until
        they change: the scan runs up to `_AHEAD` bars past `stop` (never past the bars the tape
        has) and remembers how far it found nothing. Stepping bar by bar then costs one scan per
        few hundred bars instead of one per bar. Nothing scanned ahead is acted on early: the
        result is clipped to `stop`.
        """
        tape = self.tape
        memo = self._levels_memo
        levels = (pos.sl, pos.tp, pos.liq_price)
        lo = k
        # tuples compare items by identity first, so an unchanged NaN level matches itself
        if memo is not None and memo[0] is pos and memo[1] == levels and memo[2] <= k <= memo[3]:
            hit, found = memo[3], memo[4]
            if found or hit >= stop:
                return min(hit, stop)
            lo, k = memo[2], hit  # nothing up to where it looked; look on from there
        to = min(tape.n, max(stop, k + _AHEAD))
        j, _ = first_trigger(
            tape.h, tape.lo, tape.dd_price, tape.liq_low, tape.liq_high, k, to,
            pos.side == "long", pos.sl, pos.tp, pos.liq_price, pos.qty, pos.entry_price,
            self.cash, self.peak, 0.0,
        )  # fmt: skip
        if to > stop:  # it looked ahead (a fed tape has nothing to look at): remember
            self._levels_memo = (pos, levels, lo, j, j < to)
        return min(j, stop)

    def _quiet_until(self, k: int, end: int) -> int:
        """Bars from k the position scan may pass over: up to the bar where the next funding
        settles and, with a trailing stop or break-even, up to the next exec close."""
        tape, stop = self.tape, end
        fi = self._fund_i
        if fi < len(tape.py_funding_ts):
            cached = self._funding_bar
            if cached[0] == fi:
                f = cached[1]
            else:
                f = int(tape.ts_open.searchsorted(tape.py_funding_ts[fi], side="left"))
                if f < tape.n:  # the bar exists, so later bars cannot move it
                    self._funding_bar = (fi, f)
            stop = min(stop, f)
        pos = self.position
        if pos is not None and (pos.trailing is not None or pos.break_even is not None):
            stop = min(stop, first_true(tape.exec_close, k, end))
        return stop

    # ------------------------------------------------------------------ one bar

    def _bar(self, k: int) -> None:
        tape = self.tape
        t_open = int(tape.ts_open[k])
        o = float(tape.o[k])
        self._funding_until(t_open)
        for p in [p for p in self.pending if p.ts <= t_open and p.req.kind != "market"]:
            if p.req.expire_ts is not None and t_open >= p.req.expire_ts:
                self.pending.remove(p)
                self.events.append({"type": "expire", "ts": t_open, "id": p.id})
                self._changed = True
        due = [p for p in self.pending if p.ts <= t_open and p.req.kind == "market"]
        for p in sorted(due, key=lambda p: not p.req.reduce_only):
            self.pending.remove(p)
            self._market(p, t_open, o, k)
        for p in [p for p in self.pending if p.ts <= t_open and p.req.kind != "market"]:
            self._resting(p, t_open, k)
        if self.position is not None and not self.halted:
            self._levels(t_open, k)
        if self.position is not None:
            self._excursions(self.position, k, k + 1)
            self._bar_close(k)
        elif self.dd_frac > 0 and not self.halted and self.cash <= self.peak * (1 - self.dd_frac):
            self._halt(int(tape.ts_close[k]), self.cash)
        self._last_close = float(tape.c[k])

    def _funding_until(self, t: int) -> None:
        """Settle funding events with ts <= t on the position held just before them."""
        tape = self.tape
        while self._fund_i < len(tape.funding_ts) and tape.funding_ts[self._fund_i] <= t:
            ft, rate = int(tape.funding_ts[self._fund_i]), float(tape.funding_rate[self._fund_i])
            self._fund_i += 1
            pos = self.position
            if pos is None:
                continue
            mark = tape.mark_at(ft)
            if math.isnan(mark):
                mark = self._last_close
            amount = pos.qty * mark * rate * pos.sign  # > 0: the position pays
            pos.funding += amount
            self.cash -= amount
            self.funding_total += amount
            self.events.append(
                {"type": "funding", "ts": ft, "rate": rate, "mark": mark, "qty": pos.qty,
                 "paid": amount}
            )  # fmt: skip
            self._ledger(ft)

    def _market(self, p: _Pending, t: int, o: float, k: int) -> None:
        """Fill a market order at the bar's open ± slippage."""
        buy = p.req.side == "buy"
        price = o * (1 + self.slip) if buy else o * (1 - self.slip)
        self._execute(p, price, t, self.taker, k)

    def _resting(self, p: _Pending, t: int, k: int) -> None:
        """Fill a resting limit once the bar trades through it (at the limit, or the open when it
        gapped through in the trader's favour; maker fee) or a stop once the bar reaches it (at the stop, or the open on a gap; ± slippage, taker fee)."""
        tape, req = self.tape, p.req
        o, h, lo = float(tape.o[k]), float(tape.h[k]), float(tape.lo[k])
        buy = req.side == "buy"
        if req.kind == "limit":
            lim = float(req.limit_price)  # type: ignore[arg-type]
            if (buy and lo < lim) or (not buy and h > lim):  # a touch fills nothing (queue)
                self.pending.remove(p)
                self._execute(p, min(o, lim) if buy else max(o, lim), t, self.maker, k)
            return
        trig = float(req.stop_price)  # type: ignore[arg-type]
        if (buy and h >= trig) or (not buy and lo <= trig):
            self.pending.remove(p)
            px = max(o, trig) * (1 + self.slip) if buy else min(o, trig) * (1 - self.slip)
            self._execute(p, px, t, self.taker, k)

    def _execute(self, p: _Pending, price: float, t: int, fee_rate: float, k: int) -> None:
        """A triggered order at `price`: reduce the position, or open one."""
        req = p.req
        if not req.reduce_only:
            self._open(p, price, t, fee_rate, k)
            return
        pos = self.position
        if pos is None or (pos.side == "long") == (req.side == "buy"):
            self.events.append(
                {"type": "skip", "ts": t, "id": p.id, "reason": "no position to reduce"}
            )
            return
        if req.qty is not None:
            qty = min(pos.qty, self.instrument.round_qty_down(req.qty))
        else:
            share = (req.close_percent or 100.0) / 100.0
            qty = pos.qty if share >= 1.0 else self.instrument.round_qty_down(pos.qty * share)
        if qty <= 0:
            self._reject(t, p.id, "qty_step", req)
            return
        self._close(qty, price, t, req.exit_reason, fee_rate, k, req.tag)

    def _open(self, p: _Pending, price: float, t: int, fee_rate: float, k: int) -> None:
        """Open a position at the actual fill price: size, filters, liquidation, TP/SL levels."""
        req, spec = p.req, self.instrument
        if self.position is not None:
            self._reject(t, p.id, "position_open", req)
            return
        side = "long" if req.side == "buy" else "short"
        lev = self.account.leverage
        sl_dist = stop_distance(req.stop_loss, price)
        if req.qty is not None:
            raw_qty = req.qty
        else:
            assert req.sizing is not None  # checked by OrderRequest.problem
            notional = sized_notional(
                req.sizing, self.cash, price, fee_rate, sl_dist, lev,
                self.account.max_position_equity_pct,
            )  # fmt: skip
            if notional is None:
                self._reject(t, p.id, "risk_sizing_needs_stop", req)
                return
            raw_qty = notional / price
        qty = spec.round_qty_down(raw_qty)
        if qty <= 0:
            self._reject(t, p.id, "qty_step", req)
            return
        if qty < spec.min_qty:
            self._reject(t, p.id, "min_qty", req)
            return
        if qty * price < self.min_notional:
            self._reject(t, p.id, "min_notional", req)
            return
        lv = entry_levels(
            side, price, spec, lev, self.mmr, req.stop_loss, req.take_profit, req.trailing,
            req.break_even, self.account.stop_beyond_liquidation,
        )  # fmt: skip
        if lv is None:
            self._reject(t, p.id, "stop_beyond_liquidation", req)
            return
        liq, sl, tp = lv.liq, lv.sl, lv.tp
        fee = qty * price * fee_rate
        self.cash -= fee
        pos = Position(side, qty, price, t, fee, liq, qty * price / lev, sl, tp, tag=dict(req.tag))
        pos.best_seen = pos.worst_seen = price
        pos.trailing, pos.trail_dist = req.trailing, lv.trail_dist
        pos.break_even, pos.be_dist = req.break_even, lv.be_dist
        self.position = pos
        self._changed = True
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
                "maker": fee_rate == self.maker and req.kind == "limit",
                "tag": req.tag,
            }
        )
        self._ledger(t)

    def _levels(self, t: int, k: int) -> None:
        """Liquidation, stop and take-profit against bar k (the fill's own bar included)."""
        pos = self.position
        assert pos is not None
        tape = self.tape
        o, h, lo = float(tape.o[k]), float(tape.h[k]), float(tape.lo[k])
        long = pos.side == "long"
        sl, tp, liq = pos.sl, pos.tp, pos.liq_price
        no_mark = math.isnan(float(tape.mark[k]))
        exit_slip = 1.0 - self.slip if long else 1.0 + self.slip
        # a level the open already crossed fills at the open (liquidation: at its price)
        if no_mark and (o - liq) * pos.sign <= 0:
            return self._liquidate(t, k)
        if sl == sl and (o - sl) * pos.sign <= 0:
            return self._close(pos.qty, o * exit_slip, t, pos.stop_kind, self.taker, k)
        if tp == tp and (o - tp) * pos.sign >= 0:
            return self._close(pos.qty, o * exit_slip, t, "take_profit", self.taker, k)
        hit_sl = sl == sl and ((long and lo <= sl) or (not long and h >= sl))
        hit_tp = tp == tp and ((long and h >= tp) or (not long and lo <= tp))
        if hit_sl and hit_tp:
            self.counters["ambiguous_exits"] += 1
            if self.optimistic:
                hit_sl = False
            else:
                hit_tp = False
        if hit_sl:  # a stop inside the liquidation price is reached first on any path
            return self._close(pos.qty, sl * exit_slip, t, pos.stop_kind, self.taker, k)
        if (long and float(tape.liq_low[k]) <= liq) or (
            not long and float(tape.liq_high[k]) >= liq
        ):
            return self._liquidate(t, k)
        if hit_tp:
            return self._close(pos.qty, tp * exit_slip, t, "take_profit", self.taker, k)
        return None

    def _liquidate(self, t: int, k: int) -> None:
        pos = self.position
        assert pos is not None
        self.counters["liquidations"] += 1
        self._close(pos.qty, pos.liq_price, t, "liquidation", self.liq_fee, k)

    def _bar_close(self, k: int) -> None:
        """Drawdown limit on equity at the close (mark where known), then trailing/break-even at
        an exec close."""
        pos = self.position
        assert pos is not None
        tape = self.tape
        t_close = int(tape.ts_close[k])
        eq = self.cash + pos.unrealized_pnl(float(tape.dd_price[k]))
        if self.dd_frac > 0 and eq <= self.peak * (1 - self.dd_frac):
            c = float(tape.c[k])
            exit_px = c * (1 - self.slip) if pos.side == "long" else c * (1 + self.slip)
            self._close(pos.qty, exit_px, t_close, "max_drawdown", self.taker, k)
            self._halt(t_close, eq)
            return
        self.peak = max(self.peak, eq)
        if bool(tape.exec_close[k]) and (pos.trailing is not None or pos.break_even is not None):
            self._move_stop(pos, t_close)

    def _halt(self, t: int, equity: float) -> None:
        """The drawdown limit was breached: refuse every later entry."""
        self.halted = True
        for p in self.pending:
            self.events.append({"type": "cancel", "ts": t, "id": p.id})
        self.pending.clear()
        self.events.append(
            {"type": "halt", "ts": t, "reason": "max_drawdown", "equity": equity, "peak": self.peak}
        )
        self._changed = True

    def _move_stop(self, pos: Position, t: int) -> None:
        """Trail / break-even from the best price of closed bars; a stop never loosens."""
        moved = moved_stop(
            pos.side, pos.entry_price, pos.best_seen, pos.sl, pos.stop_kind, self.instrument,
            pos.trailing, pos.trail_dist, pos.break_even, pos.be_dist,
        )  # fmt: skip
        if moved is not None:
            pos.sl, pos.stop_kind = moved
            self.events.append({"type": "amend_stop", "ts": t, "sl": moved[0], "kind": moved[1]})

    def _excursions(self, pos: Position, k0: int, k1: int) -> None:
        """Best and worst prices traded over bars [k0, k1) (MAE/MFE, trailing, break-even)."""
        if k1 == k0 + 1:
            hi, lo = self.tape.py_h[k0], self.tape.py_lo[k0]
        else:
            hi, lo = extremes(self.tape.h, self.tape.lo, k0, k1)
        if pos.side == "long":
            pos.best_seen, pos.worst_seen = max(pos.best_seen, hi), min(pos.worst_seen, lo)
        else:
            pos.best_seen, pos.worst_seen = min(pos.best_seen, lo), max(pos.worst_seen, hi)

    def _close(
        self,
        qty: float,
        price: float,
        t: int,
        reason: str,
        fee_rate: float,
        k: int,
        tag: dict[str, Any] | None = None,
    ) -> None:
        """Close `qty` of the position at `price`; record the trade (its share of the entry fee
        and funding) and the fill."""
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
            mae = (min(pos.worst_seen, price) / ref - 1) * 100
            mfe = (max(pos.best_seen, price) / ref - 1) * 100
        else:
            mae = (1 - max(pos.worst_seen, price) / ref) * 100
            mfe = (1 - min(pos.best_seen, price) / ref) * 100
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
                "tag": pos.tag if tag is None else tag,
            }
        )
        if share >= 1.0 - 1e-12:
            self.position = None
        else:
            rest = pos.qty - qty
            pos.qty = self.instrument.round_qty_down(rest) if rest > 0 else 0.0
            pos.margin -= pos.margin * share
            pos.entry_fee -= entry_fee
            pos.funding -= funding
        self.peak = max(self.peak, self.cash) if self.position is None else self.peak
        self._changed = True
        self._ledger(t)

    def _reject(self, t: int, oid: int, reason: str, req: OrderRequest) -> None:
        if not req.reduce_only:
            self.counters["rejected_entries"] += 1
        self.rejections[reason] = self.rejections.get(reason, 0) + 1
        self.events.append(
            {"type": "reject", "ts": t, "id": oid, "reason": reason, "side": req.side}
        )
        self._changed = True

    def _ledger(self, t: int) -> None:
        pos = self.position
        q = 0.0 if pos is None else pos.qty * pos.sign
        self.ledger.append((t, self.cash, q, pos.entry_price if pos else 0.0))

    # ------------------------------------------------------------------ the end

    def close_all(self, t: int, price: float, reason: str = "end_of_data") -> None:
        """Cancel pending orders and close any open position at `price` (taker fee, no slippage),
        e.g. at the last close when the data end."""
        if reason not in EXIT_REASONS:
            raise SimulationError(f"unknown exit reason {reason!r}")
        for p in list(self.pending):
            self.cancel(p.id, t)
        if self.position is not None:
            self._close(self.position.qty, price, t, reason, self.taker, max(self._k - 1, 0))


_AHEAD = 512  # bars a level scan looks past what the caller asked for (see _level_trigger)


@njit(cache=True)
def equity_at(
    instants: np.ndarray,
    led_ts: np.ndarray,
    led_cash: np.ndarray,
    led_qty: np.ndarray,
    led_entry: np.ndarray,
    start: float,
    ts_close: np.ndarray,
    dd_price: np.ndarray,
) -> np.ndarray:
    """Equity at each (sorted) instant in one pass: the ledger entry before the instant (cash,
    signed qty, entry price) valued at the instant's mark (`Tape.marks_at`: `dd_price` of the last
    bar closed by it, walked along with the instants); a price not known yet values the position
    at nothing (cash)."""
    out = np.empty(len(instants))
    j = 0
    k = 0  # bars closed by the instant
    for i in range(len(instants)):
        while j < len(led_ts) and led_ts[j] < instants[i]:
            j += 1
        while k < len(ts_close) and ts_close[k] <= instants[i]:
            k += 1
        if j == 0:
            out[i] = start
            continue
        price = dd_price[k - 1] if k > 0 else np.nan
        eq = led_cash[j - 1] + led_qty[j - 1] * (price - led_entry[j - 1])
        out[i] = eq if eq == eq else led_cash[j - 1]
    return out


__all__ = ["IntrabarBar", "SimulatedExchange"]
