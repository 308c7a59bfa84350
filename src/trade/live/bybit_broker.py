"""The order manager for demo and live trading: the engine's decisions as Bybit orders, the stop
invariant, and the position view rebuilt from the exchange's executions (DESIGN §9.3, §9.4).

Every level and size is computed by the simulator's own functions (`sim.levels`): the entry is
sized from the live wallet balance at the last price and sent with a stop (and target) computed
from that price; when it fills, the levels are re-based to the average fill price, so they equal
the backtest's for the same fill. At every evaluation instant the position is read by REST (the
exchange is the truth), fills the stream may have missed are fetched, expired limit entries are
cancelled, trailing stop and break-even are amended, and a position without a stop on the exchange
gets one at once or is closed, halting the session.

The private stream (order, execution, position, wallet) is consumed by a background task; it and
the runner's calls act on the exchange one at a time (one lock), never interleaved.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..data.sample import sample_instruments
from ..engine.decide import Decision
from ..engine.execution import MissingAtr, entry_request
from ..errors import ExchangeError, InputError
from ..exchange.bybit import (
    BybitError,
    BybitRest,
    BybitStream,
    ConfigError,
    Credentials,
    Execution,
    Kline,
    Order,
    OrderNotFound,
    Position,
    Rejected,
    StreamEvent,
    UnknownOutcome,
    instrument_spec,
)
from ..instruments import InstrumentSpec
from ..play.compile import CompiledPlay
from ..sim import Level, OrderRequest
from ..sim.levels import entry_levels, moved_stop, sized_notional, stop_distance
from ..timeframes import TIMEFRAMES
from .broker import BrokerView, DecisionContext
from .orders import entry_body, link_id, reduce_body, role_of, session_prefix
from .positions import MINUTE_MS, FillBook
from .runner import LATE_MS
from .session import SessionRecord

if TYPE_CHECKING:
    from .launch import SessionPlan
    from .paper import MarketExtras

PRIVATE_TOPICS = ("order", "execution", "position", "wallet")
CONNECT_TIMEOUT_S = 15.0
EXEC_WINDOW_MS = 7 * 24 * 3_600_000 - 60_000  # Bybit's execution list spans at most 7 days
EXEC_LOOKBACK_MS = 3_600_000  # executions are read from this long before the last one booked
RECONCILE_MS = 60_000  # a full reconcile at least this often (exchange time)
TIMER_S = 1.0  # how often the timer looks at the exchange's clock
#: a position's own TP/SL, listed as conditional orders by Bybit: not foreign orders
POSITION_TPSL = frozenset({"TakeProfit", "StopLoss", "TrailingStop", "PartialTakeProfit",
                           "PartialStopLoss"})  # fmt: skip
FOREIGN_POLICIES = ("halt", "adopt")
MARGIN_LOCKED = (110024, 110028)  # the margin mode cannot change with a position / open orders
DEFAULT_MMR = 0.005
LAG_S = 0.3
SIDES = ("flat", "long", "short")
#: exit_reason of a trade one of our reduce orders closed, by the order's role
ROLE_REASONS = {"exit": "signal", "close": "unprotected"}
EXTERNAL = "external"  # closed by something else: by hand on Bybit, another program
NOT_SENT = "not_sent"  # an intent the exchange never received (final: never sent late)


def check_play(compiled: CompiledPlay, mode: str) -> None:
    """Demo and live keep a stop on the exchange for every open position: a Play needs one."""
    if mode in ("demo", "live") and compiled.play.risk.stop_loss is None:
        raise InputError(
            f"play {compiled.play.name!r}: --mode {mode} needs risk.stop_loss (every open "
            "position keeps a stop on the exchange); try --mode paper"
        )


class ForeignState(ExchangeError):
    """A new session's symbol holds a position or orders it did not create, under
    `--on-foreign halt` (the user closes them, trades another symbol, or adopts them)."""

    exit_code = 2


@dataclass
class OurOrder:
    """An order this session sent, followed to its end."""

    role: str  # entry | exit | close
    t: int
    status: str = "intent"  # Bybit's orderStatus once known
    order_id: str = ""
    expire_ts: int | None = None
    limit: bool = False
    body: dict[str, Any] = field(default_factory=dict)  # what was sent

    @property
    def final(self) -> bool:
        return self.status in Order.FINAL or self.status in ("rejected", "failed", NOT_SENT)

    def shown(self, link: str) -> dict[str, Any]:
        """The order as the live panel lists it."""
        b = self.body
        return {
            "link_id": link, "role": self.role, "status": self.status,
            "side": str(b.get("side", "")).lower(), "kind": str(b.get("orderType", "")).lower(),
            "price": float(b["price"]) if "price" in b else None,
            "reduce_only": bool(b.get("reduceOnly")), "expire_ts": self.expire_ts,
        }  # fmt: skip


@dataclass
class Protection:
    """The levels of the open position, as the backtest would hold them for the same fill."""

    link: str  # the entry order that opened the position
    basis: float  # the average fill price they were computed from
    sl: float
    tp: float
    kind: str  # exit reason when the stop fills: stop_loss | trailing_stop
    req: OrderRequest
    trail_dist: float
    be_dist: float
    moved: bool = False  # trailed or moved to break-even


class BybitBroker:
    """Bybit (demo or live) behind the runner's `Broker` contract."""

    #: a resume rebuilds it from the record and reconciles it with the exchange (its fills
    #: cannot be replayed): `replay_minute`, `replay_decisions`, `restore`, `resume`
    resumes_from_record = True

    def __init__(
        self,
        rest: BybitRest,
        private_ws_url: str,
        credentials: Credentials,
        compiled: CompiledPlay,
        symbol: str,
        record: SessionRecord,
        session_id: str,
        mode: str,
        *,
        maintenance_margin_rate: float | None = None,
        stream_options: dict[str, Any] | None = None,
        on_foreign: str = "halt",
    ) -> None:
        if mode not in ("demo", "live"):
            raise InputError(f"BybitBroker mode must be demo or live, got {mode!r}")
        if on_foreign not in FOREIGN_POLICIES:
            raise InputError(f"--on-foreign {on_foreign!r}: expected halt or adopt")
        self.on_foreign = on_foreign
        check_play(compiled, mode)
        play = compiled.play
        self.mode = mode
        self.rest, self.ws_url, self.credentials = rest, private_ws_url, credentials
        self.compiled, self.symbol, self.record = compiled, symbol, record
        self.session_id = session_id
        self.prefix = session_prefix(session_id)
        self.exec_ms = TIMEFRAMES[compiled.exec_tf]
        acc = play.account
        self.leverage = acc.leverage
        self.taker, self.maker = acc.fee_bps.taker / 1e4, acc.fee_bps.maker / 1e4
        self.mmr = (
            maintenance_margin_rate
            if maintenance_margin_rate is not None
            else _mmr(symbol, acc.mmr)
        )
        self.stream_options = stream_options or {}
        self.spec: InstrumentSpec | None = None
        self.book = FillBook(self.exec_ms, self._exit_reason)
        self.orders: dict[str, OurOrder] = {}
        self.requests: dict[str, OrderRequest] = {}  # entry link id → its request
        self.prot: Protection | None = None
        self.exchange_pos: Position | None = None  # the latest word, REST or pushed
        self._rest_pos: Position | None = None  # the open position as REST last showed it
        self.balance = math.nan
        self.equity = math.nan
        self.last_close = math.nan
        self._last_bar_close = 0  # close time of the last 1m bar seen
        self._wallet_at_t = math.nan  # the balance read at the current instant
        self._blind: str | None = None  # why the position could not be read at this instant
        self._halted: str | None = None
        self._suspect = True  # the stream may have missed something: reconcile by REST
        self._dirty = False  # something was filled since the last check at a minute's close
        self._since = 0  # executions are read from here (the session's start)
        self._recorded: dict[int, dict[str, Any]] = {}
        self._reported: set[str] = set()  # reconcile findings journaled already
        self._last_full = 0  # exchange time of the last full reconcile (the 60 s timer)
        self._trigger = ""  # what started the reconcile under way (journaled with findings)
        self._entries_at: dict[int, list[str]] | None = None  # resume: entry links by instant
        self._expiry: dict[str, int | None] = {}  # resume: entry link → its expiry
        self._saved_prot: dict[str, dict[str, Any]] = {}  # resume: entry link → its last levels
        self._lock = asyncio.Lock()
        self._connected = asyncio.Event()  # set on connecting, or on an error before it
        self._connect_error: str | None = None
        self.private_state = "connecting"  # what `trade play status` shows of the private stream
        self._stream: BybitStream | None = None
        self._task: asyncio.Task[None] | None = None
        self._timer_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ contract: facts

    @property
    def halted(self) -> bool:
        return self._halted is not None

    def side(self) -> str:
        pos = self.book.position
        return pos.side if pos is not None else "flat"

    def entry_pending(self) -> bool:
        return any(o.role == "entry" and not o.final for o in self.orders.values())

    def position_values(self, t: int) -> dict[str, float]:
        pos = self.book.position
        if pos is None:
            return {
                "position.side": 0.0,
                "position.entry_price": math.nan,
                "position.bars_held": math.nan,
                "position.unrealized_pnl_pct": math.nan,
            }
        price = self._mark()
        return {
            "position.side": float(SIDES.index(pos.side)),
            "position.entry_price": pos.entry_price,
            # counted from the fill's minute, as the backtest counts from the fill's bar open
            "position.bars_held": float((int(t) - _minute(pos.entry_ts)) // self.exec_ms),
            "position.unrealized_pnl_pct": (price / pos.entry_price - 1.0) * 100.0 * pos.sign,
        }

    def trades(self) -> list[dict[str, Any]]:
        return [dict(t) for t in self.book.trades]

    def view(self) -> BrokerView:
        pos, prot = self.book.position, self.prot
        orders = tuple(o.shown(k) for k, o in self.orders.items() if not o.final)
        return BrokerView(
            side=self.side(),
            qty=pos.qty if pos else 0.0,
            entry_price=pos.entry_price if pos else None,
            stop=prot.sl if prot and pos and not math.isnan(prot.sl) else None,
            target=prot.tp if prot and pos and not math.isnan(prot.tp) else None,
            equity=self.equity,
            balance=self.balance,
            open_orders=orders,
            halted=self._halted,
            extra={
                "funding": self.book.funding_total,
                "mode": self.mode,
                "private_stream": self.private_state,
            },
        )

    # ------------------------------------------------------------------ contract: life cycle

    async def start(self, first_instant: int) -> None:
        """Instrument filters, a clean symbol (no foreign position or orders), one-way mode, the
        Play's leverage, isolated margin, the wallet, then the private stream."""
        rest, sym = self.rest, self.symbol
        await rest.sync_time()
        self.spec = instrument_spec(await rest.instrument(sym), self.mmr)
        self.book.qty_step = self.spec.qty_step
        if self.on_foreign == "halt":
            await self._refuse_foreign()
        now = await self._account()
        self._since = now - MINUTE_MS
        self.record.set_meta(exec_since=self._since)
        self.record.journal(
            now, "start", f"{self.mode} broker on {sym}: one-way, {self.leverage:g}x isolated",
            tick=self.spec.tick_size, qty_step=self.spec.qty_step, balance=self.balance,
            first_instant=first_instant, on_foreign=self.on_foreign,
        )  # fmt: skip
        await self._open_stream()
        self._suspect = True
        async with self._lock:
            await self._guarded(
                now, lambda t: self._reconcile(t, "start"), self._rebase, self._protect
            )

    async def resume(self, now: int) -> None:
        """A resumed session (`restore` first): the set-up of `start` (its own position and
        orders are not foreign), the private stream, then the reconcile, before anything can be
        sent: fills while down booked, intents resolved, expired entries cancelled, levels
        re-based, a missing stop placed."""
        rest, sym = self.rest, self.symbol
        await rest.sync_time()
        self.spec = instrument_spec(await rest.instrument(sym), self.mmr)
        self.book.qty_step = self.spec.qty_step
        self.book.fold()
        self._restore_protection()
        now = await self._account()
        self.record.journal(
            now, "start", f"{self.mode} broker on {sym} resumed: one-way, {self.leverage:g}x "
            f"isolated; the record holds {self.side()} and {len(self.book.executions)} fill(s)",
            balance=self.balance,
        )  # fmt: skip
        await self._open_stream()
        self._suspect = True
        async with self._lock:
            await self._guarded(
                now, lambda t: self._reconcile(t, "resume"), self._expire, self._rebase,
                self._protect,
            )  # fmt: skip

    async def _refuse_foreign(self) -> None:
        rest, sym = self.rest, self.symbol
        foreign = [p for p in await rest.positions(sym) if p.size > 0]
        if foreign:
            p = foreign[0]
            raise ForeignState(
                f"{sym} already has a {p.side} position of {p.size:g} on Bybit {self.mode} that "
                "this session did not open; close it first, trade another symbol or take it "
                "over with --on-foreign adopt"
            )
        strangers = [o for o in await rest.open_orders(sym) if not self._ours(o.order_link_id)]
        if strangers:
            raise ForeignState(
                f"{sym} has {len(strangers)} open order(s) on Bybit {self.mode} that this "
                f"session did not send (e.g. {strangers[0].order_link_id or strangers[0].order_id});"
                " cancel them first, trade another symbol or have them cancelled with "
                "--on-foreign adopt"
            )

    async def _account(self) -> int:
        """One-way mode, the Play's leverage, isolated margin, the wallet; returns the time."""
        rest, sym = self.rest, self.symbol
        await rest.set_position_mode(sym, hedge=False)
        await rest.set_leverage(sym, self.leverage)
        now = rest.now_ms()
        try:
            await rest.set_margin_mode("ISOLATED_MARGIN")
        except Rejected as exc:
            if exc.code not in MARGIN_LOCKED:
                raise
            # a position (adopted, or left by an earlier account mode) pins the account's mode
            self.record.journal(
                now, "margin", f"margin mode kept as it is: {exc.bybit_message}", code=exc.code
            )
        try:
            w = await rest.wallet()
            self.balance, self.equity = w.wallet_balance, w.equity
        except ExchangeError as exc:
            self._halt(now, f"the wallet balance could not be read ({exc})")
        return now

    async def _open_stream(self) -> None:
        self._stream = BybitStream(
            self.ws_url, PRIVATE_TOPICS, credentials=self.credentials, clock_ms=self.rest.now_ms,
            **self.stream_options,
        )  # fmt: skip
        self._stream.start()
        self._task = asyncio.create_task(self._consume(), name="bybit-broker private stream")
        self._timer_task = asyncio.create_task(self._timer(), name="bybit-broker reconcile timer")
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await self._connected.wait()
        except TimeoutError:
            self._connect_error = f"not connected within {CONNECT_TIMEOUT_S:g} s"
        if self._connect_error is not None:
            await self._close_stream()
            raise ExchangeError(
                f"Bybit {self.mode} private stream {self.ws_url}: {self._connect_error}"
            )

    # ------------------------------------------------------------------ resume

    def replay_minute(self, bar: Kline) -> None:
        """A recorded 1m bar while the session is rebuilt: the book's excursions, no request."""
        self.book.bar(bar.start, bar.high, bar.low)
        self.last_close, self._last_bar_close = bar.close, bar.start + MINUTE_MS

    def replay_decisions(
        self, t: int, decisions: Sequence[Decision], ctx: DecisionContext, spec: InstrumentSpec
    ) -> None:
        """The requests behind the entry orders recorded at `t` (levels, trailing, break-even,
        expiry), computed again from the engine as of `t`, as `_entry` did; nothing is sent."""
        if self._entries_at is None:
            self._entries_at = {}
            for r in self.record.order_rows():
                if role_of(r["link_id"], self.prefix) == "entry":
                    self._entries_at.setdefault(int(r["ts"]), []).append(r["link_id"])
        entries = [(i, d) for i, d in enumerate(decisions) if d.kind == "entry"]
        for link in self._entries_at.get(t, []):
            index = int(link.split("-")[2])
            # the index counts the decisions the guards kept: the same one unless one was vetoed
            match = [d for i, d in entries if i == index] or [d for _, d in entries]
            if not match:
                continue
            d = match[0]
            tag: dict[str, Any] = {"block": d.block, **d.metadata}
            try:
                req = entry_request(
                    self.compiled, spec, d, t, ctx.series_value, ctx.exec_close, tag
                )
            except MissingAtr:
                continue
            self.requests[link] = req
            self.book.tags[link] = dict(tag)
            self._expiry[link] = req.expire_ts

    def restore(self, start_ms: int) -> None:
        """The broker as its record left it: its orders and their last known state, its fills
        (the position and trades they make), its levels and stop moves, a halt; the exchange is
        not asked here (`resume` reconciles)."""
        rec = self.record
        for r in rec.order_rows():
            link, body = r["link_id"], r["body"]
            role = role_of(link, self.prefix)
            if role is None:
                continue
            self.orders[link] = OurOrder(
                role, int(r["ts"]), status=r["status"], order_id=r["exchange_id"] or "",
                expire_ts=self._expiry.get(link), limit=body.get("orderType") == "Limit",
                body=body,
            )  # fmt: skip
        for j in rec.journal_rows():
            prot = j["data"].get("prot") if j["kind"] == "stop" else None
            if prot is not None:
                self._saved_prot[prot["link"]] = prot
                if prot.get("at") is not None:
                    self.book.stop_kind(int(prot["at"]), prot["kind"])
            elif j["kind"] == "halt" and "why" in j["data"]:  # the broker's (not a guard's)
                self._halted = j["data"]["why"]
            elif j["kind"] == "reconcile" and j["data"].get("adopted") is not None:
                req = self._adopt_request()
                if req is not None:
                    self.requests[j["data"]["adopted"]] = req
            if j["kind"] == "reconcile":
                self._reported.add(j["message"])
        self.book.add([_recorded_execution(self.symbol, f) for f in rec.fill_rows()])
        self._recorded = {int(t["trade_id"]): t for t in rec.trade_rows()}
        self._sync_trades()
        self._since = int(rec.meta().get("exec_since", start_ms - MINUTE_MS))

    def _restore_protection(self) -> None:
        """The open position's levels as last set on the exchange (re-based by `_rebase` when
        fills while down moved its average price)."""
        pos = self.book.position
        saved = self._saved_prot.get(pos.link_id) if pos is not None else None
        req = self.requests.get(pos.link_id) if pos is not None else None
        if pos is None or saved is None or req is None:
            return
        basis = float(saved["basis"])
        lv = self._levels(pos.side, basis, req) or self._levels(pos.side, basis, req, "tighten")
        assert lv is not None
        self.prot = Protection(
            pos.link_id, basis, float(saved["sl"]), _float(saved.get("tp")), saved["kind"], req,
            lv.trail_dist, lv.be_dist, bool(saved["moved"]),
        )  # fmt: skip

    async def on_minute(self, bar: Kline) -> None:
        """Excursions; and after a fill (or while a market order is out), the fill booked, the
        levels re-based and the stop checked at the minute's close, whatever the stream did."""
        self._check_task()
        self.book.bar(bar.start, bar.high, bar.low)
        self.last_close, self._last_bar_close = bar.close, bar.start + MINUTE_MS
        if self.book.trades and self.book.trades[-1]["exit_time"] >= bar.start:
            self.book.fold()  # a late bar changes the excursions of a trade that closed in it
            self._sync_trades()
        t = bar.start + MINUTE_MS
        if t % self.exec_ms == 0:
            return  # an exec close: `before_instant` does all of it next
        if self._dirty or any(not o.final and not o.limit for o in self.orders.values()):
            async with self._lock:
                self._dirty = False
                await self._guarded(t, self._reconcile, self._rebase, self._protect)

    async def before_instant(self, t: int) -> None:
        self._check_task()
        async with self._lock:
            self._wallet_at_t = math.nan
            ok = await self._guarded(
                t, self._reconcile, self._expire, self._rebase, self._move_stop, self._protect
            )
            self._blind = None if ok else "the position could not be read from Bybit"

    async def _guarded(self, t: int, *steps: Callable[[int], Awaitable[None]]) -> bool:
        """Run the steps; Bybit unreachable after the client's retries (outage, rate limit, IP
        pause) ends them for this time: journaled, the next instant tries again (the position
        keeps the stop it has on the exchange). Wrong keys are not waited out."""
        try:
            for step in steps:
                await step(t)
        except ConfigError:
            raise
        except BybitError as exc:
            self._suspect = True
            self.record.journal(t, "unreachable", f"Bybit not reachable: {exc}")
            return False
        return True

    async def execute(self, t: int, decisions: Sequence[Decision], ctx: DecisionContext) -> None:
        self._check_task()
        async with self._lock:
            closing = False
            for i, d in enumerate(decisions):
                tag: dict[str, Any] = {"block": d.block, **d.metadata}
                if d.kind == "refused":
                    self.record.journal(
                        t, "refused", f"{d.side} entry refused: a position is open", **tag
                    )
                elif d.kind == "exit":
                    closing = await self._exit(t, i, d) or closing
                else:
                    await self._entry(t, i, d, ctx, tag, closing)
            if any(o.t == t for o in self.orders.values()):  # after the instant's orders
                await self._guarded(
                    t, lambda t: self._reconcile(t, "order"), self._rebase, self._protect
                )

    async def stop(self) -> None:
        """Resting entries cancelled; an open position keeps its stop (checked); streams closed."""
        if self.spec is None:  # start failed before anything was set up
            await self._close_stream()
            return
        async with self._lock:
            now = self.rest.now_ms()
            for link, o in list(self.orders.items()):
                if o.role == "entry" and not o.final:
                    await self._cancel(now, link, "session stopped")
            await self._reconcile(now)
            await self._protect(now)
            self.record.journal(now, "stop", "broker stopped", side=self.side())
        await self._close_stream()

    async def flatten(self, t: int) -> None:
        """`trade play stop --flatten`: the open position closed with a reduce-only market order."""
        async with self._lock:
            p = await self._position()
            if p is None:
                return
            side = "long" if p.side == "Buy" else "short"
            link = link_id(self.session_id, t, 0, "close")
            self.orders[link] = OurOrder("close", t)
            await self._send(t, link, reduce_body(self.symbol, link, side, p.size), "flatten")

    # ------------------------------------------------------------------ decisions

    async def _entry(
        self, t: int, i: int, d: Decision, ctx: DecisionContext, tag: dict[str, Any], flip: bool
    ) -> None:
        spec = self._spec()
        try:
            req = entry_request(
                self.compiled, spec, d, t, ctx.series_value, ctx.exec_close, tag, ctx.notional_cap
            )
        except MissingAtr as exc:
            self._refuse(t, "atr_missing", f"{d.side} entry: ATR {exc} has no value yet")
            return
        if self._halted is not None:
            self._refuse(t, "halted", f"{d.side} entry: the session is halted ({self._halted})")
            return
        side = "long" if req.side == "buy" else "short"
        limit = req.kind == "limit"
        if self._blind is not None:
            self._refuse(t, "position_unknown", f"{side} entry: {self._blind}")
            return
        price = float(req.limit_price) if limit else await self._last_price(t)  # type: ignore[arg-type]
        equity = await self._sizing_equity(t, flip)
        if not equity > 0:
            self._refuse(t, "wallet", f"{side} entry: no wallet balance read at this instant")
            return
        play = self.compiled.play
        sl_dist = stop_distance(req.stop_loss, price)
        assert req.sizing is not None
        notional = sized_notional(
            req.sizing, equity, price, self.maker if limit else self.taker, sl_dist,
            self.leverage, play.risk.sizing.max_position_equity_pct,
        )  # fmt: skip
        if notional is None:
            self._refuse(t, "risk_sizing_needs_stop", f"{side} entry: risk sizing needs a stop")
            return
        qty = spec.round_qty_down(notional / price)
        min_notional = play.account.min_notional
        min_notional = spec.min_notional if min_notional is None else min_notional
        for bad, reason in (
            (qty <= 0, "qty_step"),
            (0 < qty < spec.min_qty, "min_qty"),
            (qty > 0 and qty * price < min_notional, "min_notional"),
        ):
            if bad:
                self._refuse(t, reason, f"{side} entry: {qty:g} at {price:g} fails {reason}")
                return
        lv = self._levels(side, price, req)
        if lv is None:
            self._refuse(t, "stop_beyond_liquidation", f"{side} entry: stop beyond liquidation")
            return
        link = link_id(self.session_id, t, i, "entry")
        body = entry_body(
            self.symbol, link, req.side, qty, req.limit_price if limit else None, lv.sl, lv.tp
        )
        self.requests[link] = req
        self.book.tags[link] = dict(tag)
        self.orders[link] = OurOrder("entry", t, expire_ts=req.expire_ts, limit=limit)
        await self._send(t, link, body, f"{side} {'limit' if limit else 'market'} entry")

    async def _exit(self, t: int, i: int, d: Decision) -> bool:
        """A reduce-only market order for `percent` of the position; True when it closes all."""
        pos = self.book.position
        if pos is None or pos.side != d.side:
            self.record.journal(t, "skip", f"exit {d.side}: no {d.side} position to reduce")
            return False
        whole = d.percent >= 100.0
        qty = pos.qty if whole else self._spec().round_qty_down(pos.qty * d.percent / 100.0)
        if qty <= 0:
            self._refuse(t, "qty_step", f"exit {d.percent:g}% of {pos.qty:g} rounds to nothing")
            return False
        link = link_id(self.session_id, t, i, "exit")
        self.orders[link] = OurOrder("exit", t)
        await self._send(
            t, link, reduce_body(self.symbol, link, pos.side, qty), f"exit {d.percent:g}%"
        )
        return whole

    async def _send(self, t: int, link: str, body: dict[str, Any], what: str) -> None:
        """Intent on disk, then the order exactly once (`place_order`), then its outcome."""
        self.record.order_intent(link, t, body)
        self.orders[link].body = body
        await self._request(t, link, body, what)

    async def _request(self, t: int, link: str, body: dict[str, Any], what: str) -> None:
        """The request of an intent on disk, and its outcome."""
        order = self.orders[link]
        try:
            ack = await self.rest.place_order(body)
        except Rejected as exc:
            order.status = "rejected"
            reason = f"retCode {exc.code}: {exc.bybit_message}"
            self.record.order_status(link, "rejected", reason=reason)
            self.record.journal(
                t, "rejected", f"{what} {link} rejected by Bybit ({reason})",
                link_id=link, code=exc.code, text=exc.bybit_message,
            )  # fmt: skip
            return
        except UnknownOutcome as exc:
            self._suspect = True  # the next reconcile looks it up
            self.record.order_status(link, "unknown", reason=str(exc))
            self.record.journal(t, "unknown", f"{what} {link}: outcome unknown ({exc})")
            return
        except BybitError as exc:  # rate limit or no connection after the retries: not applied
            order.status = "failed"
            self.record.order_status(link, "failed", reason=str(exc))
            self.record.journal(t, "failed", f"{what} {link} not sent ({exc})", link_id=link)
            return
        order.order_id = ack.order_id
        if order.status in ("intent", "unknown"):  # the stream may have told its fate already
            order.status = "sent"
        self.record.order_status(link, order.status, exchange_id=ack.order_id)
        self.record.journal(t, "order", f"{what} {link} sent", link_id=link, **_loggable(body))

    def _refuse(self, t: int, reason: str, message: str) -> None:
        self.record.journal(t, "rejected", message, reason=reason)

    # ------------------------------------------------------------------ each instant

    async def _reconcile(self, t: int, trigger: str = "instant") -> None:
        """The reconciler (DESIGN §9.6), one function for every trigger: `start`, `resume`,
        `reconnect` (the private stream came back), `timer` (60 s of exchange time), `order`
        (after the orders of an instant) and `instant` (each evaluation: the position and wallet
        always, the rest when the stream may have missed something).

        The position and wallet by REST; then the executions since the last one booked (those
        the stream missed are booked), every order of ours not final looked up by its link id
        (an intent the exchange never received is sent now while its instant is at most 60 s
        old, else it becomes `not_sent`: never sent late) and the
        symbol's open orders (a foreign one halts the session, or is cancelled with
        `--on-foreign adopt`); a position the fills do not explain halts it (or is adopted).
        Each finding is one `reconcile` journal line."""
        rest, sym = self.rest, self.symbol
        p, _ = await asyncio.gather(self._position(), self._wallet())
        pending = [k for k, o in self.orders.items() if not o.final]
        full = trigger != "instant" or self._suspect or pending or self._mismatch(p)
        if not full:
            return
        self._last_full, self._trigger = rest.now_ms(), trigger
        since = max(
            self._since, self.book.last_exec_ms - EXEC_LOOKBACK_MS, rest.now_ms() - EXEC_WINDOW_MS
        )
        # while down, everything was missed; otherwise the fills of the session's own orders may
        # simply not have come by stream yet: not findings
        expected = frozenset() if trigger == "resume" else frozenset(self.orders)
        self._book(t, await rest.executions(sym, start_ms=since), expected)
        if self._mismatch(p):  # a fill between the two reads, or a list lagging the position
            await asyncio.sleep(LAG_S)
            p = await self._position()
            self._book(t, await rest.executions(sym, start_ms=since), expected)
        for link in pending:
            await self._resolve(t, link, trigger)
        await self._foreign_orders(t)
        if self._mismatch(p) or self._foreign_held():
            await self._foreign_position(t, p)
        else:
            self._suspect = False

    async def _resolve(self, t: int, link: str, trigger: str) -> None:
        """One unfinished order of ours, by its link id: its state adopted, or (an intent or an
        unknown outcome the exchange has no trace of) final as `not_sent`."""
        o = self.orders[link]
        found = await self.rest.find_order(self.symbol, link)
        unresolved = o.status in ("intent", "unknown")
        if found is None:
            if not unresolved:
                return
            late_s = (self.rest.now_ms() - o.t) // 1000
            if late_s * 1000 <= LATE_MS and o.body:  # its instant is not past: sent now
                self._finding(
                    t, f"{o.role} {link} ({o.status}) is not on the exchange: sent now with the "
                    f"same orderLinkId, {late_s} s after its instant", link_id=link,
                )  # fmt: skip
                await self._request(o.t, link, o.body, f"{o.role} (re-sent)")
                return
            was, o.status = o.status, NOT_SENT
            self.record.order_status(link, NOT_SENT, reason="not found on the exchange")
            self._finding(
                t, f"{o.role} {link} ({was}) is not on the exchange: final as not_sent, never "
                "sent late", link_id=link, status=NOT_SENT,
            )  # fmt: skip
            self.record.journal(
                o.t, "missed", f"{o.role} {link} at {_iso(o.t)} not executed: its request never "
                f"reached the exchange and it is {late_s} s late", link_id=link,
            )  # fmt: skip
            return
        was = o.status
        self._order_update(found)
        if was != o.status and (unresolved or trigger == "resume"):
            self._finding(
                t, f"{o.role} {link} found on the exchange: {was} -> {o.status}, "
                f"{found.cum_exec_qty:g} of {found.qty:g} filled", link_id=link, status=o.status,
            )  # fmt: skip

    async def _foreign_orders(self, t: int) -> None:
        """Open orders on the symbol this session did not send (a position's own TP/SL aside):
        halt and report, or cancel them (`--on-foreign adopt`: the Play cannot manage them)."""
        for o in await self.rest.open_orders(self.symbol):
            if self._ours(o.order_link_id) or o.stop_order_type in POSITION_TPSL:
                continue
            name = o.order_link_id or o.order_id
            what = f"foreign order {name}: {o.side} {o.order_type} {o.qty:g}"
            if o.price > 0:
                what += f" at {o.price:g}"
            if self.on_foreign == "adopt":
                with contextlib.suppress(OrderNotFound):
                    await self.rest.cancel_order(self.symbol, order_id=o.order_id)
                self._finding(t, f"{what}: cancelled (--on-foreign adopt)", order_id=o.order_id)
            elif self._finding(t, f"{what}: not sent by this session", order_id=o.order_id):
                self._halt(t, f"{what} is on the symbol (--on-foreign halt)")

    def _foreign_held(self) -> bool:
        """The fills make a position that something else opened, and it is not adopted."""
        pos = self.book.position
        return pos is not None and not self._ours(pos.link_id) and pos.link_id not in self.requests

    async def _foreign_position(self, t: int, p: Position | None) -> None:
        """The exchange's position is not the one this session's fills make it: halt and report
        (the stop invariant still protects it), or adopt a foreign position (`--on-foreign
        adopt`): the Play's stop from its average price, the Play's exits manage it."""
        pos = self.book.position
        if self.on_foreign == "adopt" and p is not None and (pos is None or self._foreign_held()):
            await self._adopt(t, p)
            return
        shown = f"a {p.side} position of {p.size:g}" if p is not None else "no position"
        why = (
            f"the exchange shows {shown} that this session's fills do not explain "
            f"(they make it {self.side()})"
        )
        if self._foreign_held() and not self._mismatch(p):
            why = f"the exchange shows {shown} that this session did not open"
        self._finding(t, why)
        self._halt(t, why)

    async def _adopt(self, t: int, p: Position) -> None:
        side = "long" if p.side == "Buy" else "short"
        req = self._adopt_request()
        if req is None:
            self._finding(t, f"foreign {side} position of {p.size:g}: cannot be adopted (the "
                          "Play's stop needs an ATR value)")  # fmt: skip
            self._halt(t, f"a foreign {side} position cannot be adopted")
            return
        pos = self.book.position
        if pos is not None:  # its fills are booked: the position they make is taken over
            link = pos.link_id
        else:  # opened before the executions read: booked at its average price, no fee,
            # a second before it was found (every later fill on the exchange folds after it,
            # whatever the offset between our clock and the exchange's)
            link = link_id(self.session_id, t, 0, "adopt")
            e = Execution(
                exec_id=f"adopt-{link}", order_id="", order_link_id=link, symbol=self.symbol,
                side=p.side, exec_type="Trade", price=p.avg_price, qty=p.size, fee=0.0,
                time=min(t, self.rest.now_ms()) - 1_000, is_maker=False, leaves_qty=0.0,
                closed_size=0.0,
            )  # fmt: skip
            self._book(t, [e])
        self.requests[link] = req
        self._finding(
            t, f"foreign {side} position of {p.size:g} at {p.avg_price:g} adopted (--on-foreign "
            "adopt): the Play's stop and exits manage it", adopted=link,
        )  # fmt: skip

    def _adopt_request(self) -> OrderRequest | None:
        """The levels an adopted position gets: the Play's stop and target (not ATR-based)."""
        risk = self.compiled.play.risk
        stop, tp = risk.stop_loss, risk.take_profit
        if stop is None or stop.type not in ("percent", "fixed"):
            return None
        target = None if tp is None or tp.type not in ("percent", "fixed") else tp
        return OrderRequest(
            side="buy", stop_loss=_level(stop.type, stop.value),
            take_profit=None if target is None else _level(target.type, target.value),
        )  # fmt: skip

    def _finding(self, t: int, message: str, **data: Any) -> bool:
        """One `reconcile` journal line per finding (a state seen again, in this process or
        before a resume, is not a new one); False when it was reported already."""
        if message in self._reported:
            return False
        self._reported.add(message)
        self.record.journal(t, "reconcile", message, trigger=self._trigger, **data)
        return True

    async def _expire(self, t: int) -> None:
        for link, o in list(self.orders.items()):
            if o.role == "entry" and not o.final and o.expire_ts is not None and t >= o.expire_ts:
                await self._cancel(t, link, "expired")

    async def _cancel(self, t: int, link: str, why: str) -> None:
        with contextlib.suppress(OrderNotFound):  # final already: looked up below
            await self.rest.cancel_order(self.symbol, link)
        found = await self.rest.find_order(self.symbol, link)
        if found is not None:
            self._order_update(found)
        o = self.orders[link]
        filled = found.cum_exec_qty if found is not None else 0.0
        self.record.journal(
            t, "cancel", f"entry {link} {why}: {o.status}, {filled:g} filled",
            link_id=link, status=o.status, filled=filled,
        )  # fmt: skip
        if filled:  # the part that filled stays (protected): its executions are booked now
            self._book(t, await self.rest.executions(self.symbol, start_ms=self._since))

    async def _rebase(self, t: int) -> None:
        """The open position's levels from its average fill price (the backtest's function)."""
        pos = self.book.position
        if pos is None:
            self.prot = None
            return
        prot = self.prot
        if prot is not None and prot.link == pos.link_id and prot.basis == pos.entry_price:
            return
        req = self.requests.get(pos.link_id)
        if req is None:
            return  # not ours: the reconcile halted; the invariant still protects it
        lv = self._levels(pos.side, pos.entry_price, req) or self._levels(
            pos.side, pos.entry_price, req, "tighten"
        )
        assert lv is not None
        sl, kind, moved = lv.sl, "stop_loss", False
        same = prot is not None and prot.link == pos.link_id and prot.moved
        if same and (prot.sl - sl) * pos.sign > 0:  # type: ignore[union-attr]
            sl, kind, moved = prot.sl, prot.kind, True  # never loosen a stop already moved
        what = f"levels re-based to the fill at {pos.entry_price:g}"
        state = _prot_state(pos.link_id, pos.entry_price, sl, lv.tp, kind, moved)
        if await self._set_levels(t, sl, lv.tp, what, state):  # else tried again next instant
            self.prot = Protection(
                pos.link_id, pos.entry_price, sl, lv.tp, kind, req, lv.trail_dist, lv.be_dist,
                moved,
            )  # fmt: skip

    async def _move_stop(self, t: int) -> None:
        """Trailing stop and break-even at an exec close, from the best price of closed 1m bars
        since the fill (the backtest's `moved_stop`), amended with trading-stop."""
        pos, prot = self.book.position, self.prot
        if t % self.exec_ms or pos is None or prot is None or prot.link != pos.link_id:
            return
        if prot.req.trailing is None and prot.req.break_even is None:
            return
        best, _ = self.book.best_worst(pos, t)
        moved = moved_stop(
            pos.side, pos.entry_price, best, prot.sl, prot.kind, self._spec(), prot.req.trailing,
            prot.trail_dist, prot.req.break_even, prot.be_dist,
        )  # fmt: skip
        if moved is None:
            return
        new, kind = moved
        at = self.rest.now_ms()
        state = _prot_state(prot.link, prot.basis, new, prot.tp, kind, True) | {"at": at}
        if await self._set_levels(t, new, math.nan, f"stop moved ({kind}) to {new:g}", state):
            prot.sl, prot.kind, prot.moved = new, kind, True
            self.book.stop_kind(at, kind)

    async def _protect(self, t: int) -> None:
        """The stop invariant: an open position without a stop on the exchange gets one at once;
        when that fails, the position is closed reduce-only and the session halts."""
        p = self._rest_pos
        if p is None or p.stop_loss > 0:
            return
        p = await self._position()  # act on the exchange's word now, not on a pushed snapshot
        if p is None or p.stop_loss > 0:
            return
        sl = self._stop_for(p)
        if sl is not None and await self._set_levels(t, sl, math.nan, "stop missing: placed"):
            return
        why = "no stop level is known" if sl is None else "the stop could not be placed"
        await self._close_unprotected(t, p, why)

    async def _close_unprotected(self, t: int, p: Position, why: str) -> None:
        side = "long" if p.side == "Buy" else "short"
        link = link_id(self.session_id, t, 0, "close")
        self.orders[link] = OurOrder("close", t)
        self._halt(t, f"an open {side} position had no stop on the exchange and {why}")
        await self._send(t, link, reduce_body(self.symbol, link, side, p.size), "protective close")

    async def _set_levels(
        self, t: int, sl: float, tp: float, what: str, prot: dict[str, Any] | None = None
    ) -> bool:
        """trading-stop for the position (NaN leaves a level as it is); False when Bybit refused
        it after the client's retries (journaled). `prot`: the position's levels once set,
        journaled with the line (what a resume restores)."""
        try:
            await self.rest.trading_stop(
                self.symbol,
                stop_loss=None if math.isnan(sl) else sl,
                take_profit=None if math.isnan(tp) else tp,
            )
        except BybitError as exc:
            self.record.journal(
                t, "stop_failed", f"{what}: trading-stop failed ({exc})", sl=sl, tp=tp,
                code=exc.code,
            )  # fmt: skip
            return False
        extra = {} if prot is None else {"prot": prot}
        self.record.journal(t, "stop", what, sl=_num(sl), tp=_num(tp), **extra)
        return True

    # ------------------------------------------------------------------ the private stream

    async def _timer(self) -> None:
        """A full reconcile whenever 60 s of exchange time passed without one (between exec
        closes too, and while the market stream is quiet)."""
        while True:
            await asyncio.sleep(TIMER_S)
            if self.rest.now_ms() - self._last_full < RECONCILE_MS:
                continue
            async with self._lock:
                now = self.rest.now_ms()
                if now - self._last_full >= RECONCILE_MS:
                    self._last_full = now  # an unreachable exchange is tried again in 60 s
                    await self._guarded(
                        now, lambda t: self._reconcile(t, "timer"), self._rebase, self._protect
                    )

    async def _consume(self) -> None:
        assert self._stream is not None
        while True:
            ev = await self._stream.next()
            await self._on_event(ev)

    async def _on_event(self, ev: StreamEvent) -> None:
        now = self.rest.now_ms()
        if ev.kind in ("connected", "reconnected", "disconnected"):
            self.private_state = ev.kind
        if ev.kind == "connected":
            self._connected.set()
        elif ev.kind in ("reconnected", "disconnected"):
            self._suspect = True  # Bybit replays nothing: what was missed is read by REST
            self.record.journal(now, ev.kind, f"private stream {ev.kind}: {ev.detail}")
            if ev.kind == "reconnected":
                async with self._lock:
                    await self._guarded(
                        now, lambda t: self._reconcile(t, "reconnect"), self._rebase,
                        self._protect,
                    )  # fmt: skip
        elif ev.kind == "error":
            self.record.journal(now, "stream_error", ev.detail)
            if not self._connected.is_set():  # e.g. the keys were refused: do not wait
                self._connect_error = ev.detail
                self._connected.set()
        elif ev.kind == "execution":
            execs = [e for e in ev.items if e.symbol == self.symbol]
            async with self._lock:
                if self._book(now, execs):
                    self._dirty = True
                    await self._rebase(now)
        elif ev.kind == "order":
            for o in ev.items:
                if o.symbol == self.symbol:
                    self._order_update(o)
        elif ev.kind == "position":
            for p in ev.items:
                if p.symbol == self.symbol:
                    self.exchange_pos = p
        elif ev.kind == "wallet" and ev.items:
            self.balance, self.equity = ev.items[0].wallet_balance, ev.items[0].equity

    def _book(
        self, t: int, executions: list[Execution], expected: frozenset[str] | None = None
    ) -> bool:
        """Book executions of our symbol (each once); True when any was new. `expected`: read by
        the reconciler, which sent the orders of these link ids (their fills may simply beat the
        stream); any other new one is a finding (the stream missed a stop, a target, a fill
        while the session was down, something foreign)."""
        new = self.book.add([e for e in executions if e.symbol == self.symbol])
        for e in new:
            self.record.fill(
                e.exec_id, e.time, e.order_link_id, e.side, e.qty, e.price, e.fee, e.exec_type,
                {"order_id": e.order_id, "stop_order_type": e.stop_order_type,
                 "maker": e.is_maker, "seq": e.seq},
            )  # fmt: skip
            if expected is not None and e.order_link_id not in expected:
                what = e.stop_order_type or role_of(e.order_link_id, self.prefix) or "foreign"
                self._finding(
                    t, f"execution {e.exec_id} booked from the exchange: {e.exec_type} {e.side} "
                    f"{e.qty:g} at {e.price:g} ({what}, {_iso(e.time)})", exec_id=e.exec_id,
                )  # fmt: skip
            if e.exec_type == "Funding":
                self.record.journal(t, "funding", f"funding {e.fee:g} USDT", fee=e.fee)
        if new:
            self._sync_trades()
        return bool(new)

    def _sync_trades(self) -> None:
        """Closed trades into the record (again when a late bar changed their excursions)."""
        for trade in self.book.trades:
            if self._recorded.get(trade["trade_id"]) == trade:
                continue
            if trade["trade_id"] not in self._recorded:
                self.record.journal(
                    trade["exit_time"], "trade",
                    f"{trade['side']} {trade['qty']:g} closed at {trade['exit_price']:g}: "
                    f"{trade['exit_reason']}, pnl {trade['pnl']:.2f}",
                    trade_id=trade["trade_id"], reason=trade["exit_reason"],
                )  # fmt: skip
            self.record.trade(trade)
            self._recorded[trade["trade_id"]] = dict(trade)

    def _order_update(self, o: Order) -> None:
        mine = self.orders.get(o.order_link_id)
        if mine is None or mine.status == o.status:
            return
        if mine.final and not o.is_final:
            return  # a late message about an earlier state
        mine.status, mine.order_id = o.status, o.order_id
        reason = o.reject_reason if o.reject_reason not in ("", "EC_NoError") else None
        self.record.order_status(o.order_link_id, o.status, exchange_id=o.order_id, reason=reason)

    # ------------------------------------------------------------------ helpers

    def _exit_reason(self, e: Execution) -> str:
        return ROLE_REASONS.get(role_of(e.order_link_id, self.prefix) or "", EXTERNAL)

    def _ours(self, link: str) -> bool:
        return role_of(link, self.prefix) is not None

    def _spec(self) -> InstrumentSpec:
        if self.spec is None:
            raise ExchangeError("the broker is not started")
        return self.spec

    def _levels(self, side: str, price: float, req: OrderRequest, policy: str | None = None) -> Any:
        return entry_levels(
            side, price, self._spec(), self.leverage, self.mmr, req.stop_loss, req.take_profit,
            req.trailing, req.break_even,
            policy or self.compiled.play.risk.stop_beyond_liquidation,  # type: ignore[arg-type]
        )  # fmt: skip

    def _stop_for(self, p: Position) -> float | None:
        """The stop an unprotected position should have: its own levels when it is ours, else
        the Play's stop distance from its average price (when that needs no ATR value)."""
        side = "long" if p.side == "Buy" else "short"
        prot, pos = self.prot, self.book.position
        if prot is not None and pos is not None and pos.side == side and not math.isnan(prot.sl):
            return prot.sl
        stop = self.compiled.play.risk.stop_loss
        if stop is None or stop.type not in ("percent", "fixed"):
            return None
        req = OrderRequest(side="buy", stop_loss=_level(stop.type, stop.value))
        lv = self._levels(side, p.avg_price, req, "tighten")
        return None if lv is None or math.isnan(lv.sl) else lv.sl

    async def _wallet(self) -> None:
        """The balance entries are sized on, read with the position (NaN when unreadable: no
        entry is sized on a stale balance)."""
        try:
            w = await self.rest.wallet()
        except ExchangeError as exc:
            self._wallet_at_t = math.nan
            self.record.journal(self.rest.now_ms(), "wallet", f"wallet not read ({exc})")
            return
        self.balance, self.equity = w.wallet_balance, w.equity
        self._wallet_at_t = w.wallet_balance

    async def _position(self) -> Position | None:
        """The symbol's position as REST shows it now (None: flat)."""
        listed = [p for p in await self.rest.positions(self.symbol) if p.symbol == self.symbol]
        self.exchange_pos = listed[0] if listed else None
        p = self.exchange_pos
        self._rest_pos = p if p is not None and p.size > 0 else None
        return self._rest_pos

    def _mismatch(self, p: Position | None) -> bool:
        """The exchange's position and the fills' disagree (side or size)."""
        pos = self.book.position
        size = p.size if p is not None else 0.0
        if pos is None:
            return size > 0
        side = "long" if p is not None and p.side == "Buy" else "short"
        step = self._spec().qty_step
        return size <= 0 or side != pos.side or abs(size - pos.qty) > step / 2

    def _mark(self) -> float:
        p = self.exchange_pos
        if p is not None and p.mark_price > 0:
            return p.mark_price
        return self.last_close

    async def _last_price(self, t: int) -> float:
        """The last traded price at instant `t`: the close of the 1m bar that closed at `t` (no
        request on the way to the order), else the ticker's."""
        if self._last_bar_close == t and self.last_close > 0:
            return self.last_close
        try:
            last = float((await self.rest.ticker(self.symbol)).get("lastPrice") or "nan")
        except (BybitError, ValueError):
            last = math.nan
        if not last > 0:
            last = self.last_close
        if not last > 0:
            raise ExchangeError(f"Bybit {self.mode}: no last price for {self.symbol}")
        return last

    async def _sizing_equity(self, t: int, flip: bool) -> float:
        """The wallet balance read at this instant (the backtest sizes on cash); on a flip, as it
        will be once the close sent just before fills at the last price."""
        pos = self.book.position
        if not flip or pos is None:
            return self._wallet_at_t
        last = await self._last_price(t)
        return (
            self._wallet_at_t
            + pos.qty * (last - pos.entry_price) * pos.sign
            - (pos.qty * last * self.taker)
        )

    def _halt(self, t: int, why: str) -> None:
        if self._halted is None:
            self._halted = why
            self.record.journal(t, "halt", f"session halted: {why}", why=why)

    def _check_task(self) -> None:
        """A background failure is not swallowed: the runner's next call raises it."""
        for task in (self._task, self._timer_task):
            if task is not None and task.done() and not task.cancelled():
                exc = task.exception()
                if exc is not None:
                    raise exc

    async def _close_stream(self) -> None:
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
            self._timer_task = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._stream is not None:
            await self._stream.close()
            self._stream = None


def make_bybit_broker(
    plan: SessionPlan, record: SessionRecord, rest: BybitRest
) -> Callable[[InstrumentSpec, MarketExtras], BybitBroker]:
    """The demo or live broker of a planned session, built once the runner knows the instrument
    (its maintenance margin rate is the one the backtest uses; the filters come from Bybit)."""
    from ..exchange.bybit import endpoints

    assert plan.credentials is not None  # planning refused demo and live without keys
    credentials = plan.credentials

    def make(spec: InstrumentSpec, extras: MarketExtras) -> BybitBroker:
        mmr = plan.compiled.play.account.mmr
        return BybitBroker(
            rest, endpoints(plan.environment).ws_private, credentials, plan.compiled,
            plan.symbol, record, plan.name, plan.mode,
            maintenance_margin_rate=spec.maintenance_margin_rate if mmr is None else mmr,
            on_foreign=plan.on_foreign,
        )  # fmt: skip

    return make


def _mmr(symbol: str, play_mmr: float | None) -> float:
    """The maintenance margin rate the backtest uses: the Play's, else the bundled spec's."""
    if play_mmr is not None:
        return play_mmr
    for spec in sample_instruments():
        if spec.symbol == symbol:
            return spec.maintenance_margin_rate
    return DEFAULT_MMR


def _level(kind: str, value: float) -> Level:
    return Level("percent", value) if kind == "percent" else Level("distance", value)


def _minute(ms: int) -> int:
    return ms // MINUTE_MS * MINUTE_MS


def _iso(ms: int) -> str:
    from ..report.artifacts import iso

    return iso(ms)


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _float(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _prot_state(
    link: str, basis: float, sl: float, tp: float, kind: str, moved: bool
) -> dict[str, Any]:
    return {"link": link, "basis": basis, "sl": sl, "tp": _num(tp), "kind": kind, "moved": moved}


def _recorded_execution(symbol: str, f: dict[str, Any]) -> Execution:
    """A booked fill as the exchange reported it (the record keeps what the book needs)."""
    data = f["data"]
    return Execution(
        exec_id=f["exec_id"], order_id=str(data.get("order_id", "")), order_link_id=f["link_id"],
        symbol=symbol, side=f["side"], exec_type=f["kind"], price=f["price"], qty=f["qty"],
        fee=f["fee"], time=int(f["ts"]), is_maker=bool(data.get("maker")), leaves_qty=0.0,
        closed_size=0.0, stop_order_type=str(data.get("stop_order_type", "")),
        seq=int(data.get("seq", 0)),
    )  # fmt: skip


def _loggable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k in ("side", "orderType", "qty", "price",
                                                   "stopLoss", "takeProfit", "reduceOnly")}  # fmt: skip


__all__ = ["BybitBroker", "ForeignState", "check_play", "make_bybit_broker"]
