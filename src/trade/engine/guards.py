"""Guards: risk limits between the engine's decisions and the orders, in every mode (backtest,
paper, demo and live): one implementation, so a backtest shows what the guards would have done.

The limits come from a Play's `risk.guards`, capped by the account's `~/.trade/config.toml`
`[guards]`: a Play may only tighten an account limit (a looser value is refused before anything
connects, naming the key); a backtest applies the Play's own guards (`--account-guards` adds the
account's). At every evaluation instant the runner shows the guards the account (`observe`), then
passes the engine's decisions through them (`filter`) before the broker (or the simulator) sees them:

| guard | acts on | action |
|---|---|---|
| `max_daily_loss_usdt` / `_pct` | equity against the first equity of the UTC day | halt entries until the next UTC day |
| `max_drawdown_pct` | equity against its peak in the session | halt entries for the rest of the session |
| `min_balance` | equity | halt entries while below |
| `max_position_notional` | an entry's size | shrink it to the ceiling (USDT) |
| `max_leverage` | an entry's size against equity | shrink it to equity × the ceiling |
| `max_price_deviation_pct` | a limit entry's price against the last traded price | veto |
| `max_orders_per_minute` | orders sent in the last 60 s of exchange (or simulated) time | veto the entry |
| `require_stop` | an entry of a Play without `risk.stop_loss` | veto |

Exits are never vetoed (they are counted by `max_orders_per_minute`): a halt stops entries and an
open position keeps its stop. Every veto, shrink, halt and lift is journaled with the guard's name.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError

from .. import config
from ..errors import InputError
from ..play.compile import CompiledPlay
from ..play.model import Guards, Play
from ..sim.levels import sized_notional, stop_distance
from ..sim.orders import OrderRequest, Sizing
from .decide import Decision
from .execution import MissingAtr, SimExecution, entry_request

DAY_MS = 86_400_000
GUARD_KEYS = tuple(Guards.model_fields)


def _looser(key: str, play: Any, account: Any) -> bool:
    if key == "min_balance":
        return play < account
    if key == "require_stop":
        return bool(account) and not play
    return play > account


def _tighter(key: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return b if a is None else a
    if key == "min_balance":
        return max(a, b)
    if key == "require_stop":
        return a or b
    return min(a, b)


def account_guards() -> Guards:
    """The `[guards]` table of the account's config file (none: no account limits)."""
    raw = config.user_config().get("guards", {})
    path = config.user_config_path()
    if not isinstance(raw, dict):
        raise InputError(f"{path}: [guards] must be a table")
    try:
        return Guards.model_validate(raw)
    except ValidationError as exc:
        e = exc.errors()[0]
        key = ".".join(str(x) for x in e["loc"])
        raise InputError(f"{path}: [guards] {key}: {e['msg']} (got {e.get('input')!r})") from None


def effective_guards(play: Play, origin: str, account: Guards | None = None) -> Guards:
    """The Play's guards tightened by the account's; a Play that loosens one is refused."""
    account = account_guards() if account is None else account
    mine = play.risk.guards
    merged: dict[str, Any] = {}
    for key in GUARD_KEYS:
        a, p = getattr(account, key), getattr(mine, key)
        if a is not None and p is not None and _looser(key, p, a):
            raise InputError(
                f"{origin}: risk.guards.{key}: {p} loosens the account's limit {a} "
                f"({config.user_config_path()} [guards]); a Play may only tighten it"
            )
        merged[key] = _tighter(key, a, p)
    return Guards(**merged)


class AccountView(Protocol):
    """What the guards read of the account (a live broker's view, or the simulator's)."""

    @property
    def side(self) -> str: ...  # "flat" | "long" | "short"

    @property
    def qty(self) -> float: ...

    @property
    def entry_price(self) -> float | None: ...

    @property
    def balance(self) -> float: ...  # the wallet balance, before the open position's PnL


class Journal(Protocol):
    """Where the guards write what they did: a session's record, or a backtest's events."""

    def journal(self, ts: int | None, kind: str, message: str, /, **data: Any) -> None: ...


def account_equity(view: AccountView, last_price: float) -> float:
    if view.side == "flat" or view.entry_price is None:
        return view.balance
    sign = 1.0 if view.side == "long" else -1.0
    return view.balance + sign * view.qty * (last_price - view.entry_price)


EntryRequest = Callable[[Decision], OrderRequest | None]


class GuardSet:
    """The guards of one session: halts from the account's state, vetoes and shrinks of orders."""

    def __init__(self, limits: Guards, play: Play, record: Journal) -> None:
        self.limits, self.play, self.record = limits, play, record
        self.halts: dict[str, str] = {}  # guard → why entries are halted
        self.peak = -math.inf
        self.day: tuple[int, float] | None = None  # (UTC day, equity at its first instant)
        self.sent: deque[int] = deque()  # instants of orders sent, for the per-minute count
        self.actions: dict[str, int] = {}  # guard → vetoes and shrinks so far

    @property
    def active(self) -> list[str]:
        return active(self.limits)

    def states(self) -> dict[str, str]:
        """What `trade play status` shows: every configured guard, halted or armed (and acted)."""
        out = {}
        for k in self.active:
            name = "max_daily_loss" if k.startswith("max_daily_loss") else k
            if name in self.halts:
                out[k] = f"halted: {self.halts[name]}"
            else:
                n = self.actions.get(name, 0)
                out[k] = f"armed ({n} action{'s' if n != 1 else ''})" if n else "armed"
        return out

    @property
    def halted(self) -> str | None:
        return next((f"{k}: {why}" for k, why in self.halts.items()), None)

    # ------------------------------------------------------------------ the account

    def observe(self, t: int, view: AccountView, last_price: float) -> None:
        """Halts (and lifts) from the account's equity as of instant `t`: the wallet balance plus
        the open position valued at the last traded price (the same rule in every mode)."""
        lim, equity = self.limits, account_equity(view, last_price)
        if not math.isfinite(equity):
            return
        day = t // DAY_MS
        if self.day is None or self.day[0] != day:
            self.day = (day, equity)
            self._lift(t, "max_daily_loss", "a new UTC day began")
        if lim.max_daily_loss_usdt is not None or lim.max_daily_loss_pct is not None:
            start = self.day[1]
            allowed = min(
                lim.max_daily_loss_usdt if lim.max_daily_loss_usdt is not None else math.inf,
                start * lim.max_daily_loss_pct / 100 if lim.max_daily_loss_pct else math.inf,
            )
            loss = start - equity
            if loss >= allowed:
                self._halt(
                    t, "max_daily_loss",
                    f"lost {loss:.2f} USDT today (limit {allowed:.2f}; equity {equity:.2f})",
                )  # fmt: skip
        self.peak = max(self.peak, equity)
        if lim.max_drawdown_pct is not None:
            dd = (1 - equity / self.peak) * 100 if self.peak > 0 else 0.0
            if dd >= lim.max_drawdown_pct:
                self._halt(
                    t, "max_drawdown_pct",
                    f"drawdown {dd:.2f}% from the peak {self.peak:.2f} (limit "
                    f"{lim.max_drawdown_pct:g}%)",
                )  # fmt: skip
        if lim.min_balance is not None:
            if equity < lim.min_balance:
                self._halt(
                    t, "min_balance", f"equity {equity:.2f} below {lim.min_balance:.2f} USDT"
                )
            else:
                self._lift(t, "min_balance", f"equity {equity:.2f} is back above the minimum")

    def _halt(self, t: int, guard: str, why: str) -> None:
        if guard in self.halts:
            return
        self.halts[guard] = why
        self.record.journal(
            t, "halt", f"{guard}: entries halted ({why}); open positions keep their stops",
            guard=guard, action="halt",
        )  # fmt: skip

    def _lift(self, t: int, guard: str, why: str) -> None:
        if self.halts.pop(guard, None) is not None:
            self.record.journal(
                t, "guard", f"{guard}: entries allowed again ({why})", guard=guard, action="lift"
            )

    # ------------------------------------------------------------------ orders

    def filter(
        self,
        t: int,
        decisions: Sequence[Decision],
        view: AccountView,
        last_price: float,
        request: EntryRequest,
        fee_rate: float,
    ) -> tuple[list[Decision], float | None]:
        """The decisions the broker may act on, and the ceiling on an entry's notional."""
        while self.sent and self.sent[0] <= t - 60_000:
            self.sent.popleft()
        kept: list[Decision] = []
        cap: float | None = None
        for d in decisions:
            if d.kind == "refused":
                kept.append(d)
                continue
            if d.kind == "exit":
                self.sent.append(t)
                kept.append(d)
                continue
            veto = self._veto(t, d, last_price, request)
            if veto is not None:
                guard, why = veto
                self._act(t, guard, "veto", f"{d.side} entry vetoed ({why})", side=d.side)
                continue
            cap = self._cap(t, d, view, last_price, request, fee_rate)
            self.sent.append(t)
            kept.append(d)
        return kept, cap

    def _veto(
        self, t: int, d: Decision, last_price: float, request: EntryRequest
    ) -> tuple[str, str] | None:
        lim = self.limits
        if self.halts:
            guard, why = next(iter(self.halts.items()))
            return guard, f"halted: {why}"
        if lim.require_stop and self.play.risk.stop_loss is None:
            return "require_stop", "the Play has no risk.stop_loss"
        if lim.max_orders_per_minute is not None and len(self.sent) >= lim.max_orders_per_minute:
            return (
                "max_orders_per_minute",
                f"{len(self.sent)} order(s) sent in the last minute (limit "
                f"{lim.max_orders_per_minute})",
            )
        if lim.max_price_deviation_pct is not None and math.isfinite(last_price):
            req = request(d)
            if req is not None and req.limit_price is not None:
                dev = abs(req.limit_price / last_price - 1) * 100
                if dev > lim.max_price_deviation_pct:
                    return (
                        "max_price_deviation_pct",
                        f"limit {req.limit_price:g} is {dev:.3f}% from the last price "
                        f"{last_price:g} (limit {lim.max_price_deviation_pct:g}%)",
                    )
        return None

    def _cap(
        self,
        t: int,
        d: Decision,
        view: AccountView,
        price: float,
        request: EntryRequest,
        fee_rate: float,
    ) -> float | None:
        lim = self.limits
        equity = account_equity(view, price)
        caps: list[tuple[float, str]] = []
        if lim.max_position_notional is not None:
            caps.append((lim.max_position_notional, "max_position_notional"))
        if lim.max_leverage is not None and math.isfinite(equity):
            caps.append((equity * lim.max_leverage, "max_leverage"))
        if not caps:
            return None
        cap, guard = min(caps)
        req = request(d)
        if req is None or req.sizing is None or not (math.isfinite(equity) and price > 0):
            return cap
        base = req.limit_price or price
        acc = self.play.account
        wanted = sized_notional(
            Sizing(req.sizing.model, req.sizing.value), equity, base, fee_rate,
            stop_distance(req.stop_loss, base), acc.leverage,
            self.play.risk.sizing.max_position_equity_pct,
        )  # fmt: skip
        if wanted is not None and wanted > cap:
            self._act(
                t, guard, "shrink",
                f"{d.side} entry shrunk from about {wanted:.2f} to {cap:.2f} USDT notional",
                side=d.side, wanted=round(wanted, 2), cap=round(cap, 2),
            )  # fmt: skip
        return cap

    def _act(self, t: int, guard: str, action: str, message: str, **data: Any) -> None:
        self.actions[guard] = self.actions.get(guard, 0) + 1
        self.record.journal(t, "guard", f"{guard}: {message}", guard=guard, action=action, **data)


def describe(limits: Guards) -> str:
    """The limits in force, for the session's journal."""
    on = {k: v for k, v in limits.model_dump().items() if v not in (None, False)}
    return ", ".join(f"{k}={v}" for k, v in on.items()) or "none"


# ---------------------------------------------------------------------- the backtest


@dataclass(frozen=True)
class SimAccount:
    """The simulated account as the guards read it (what a paper broker's view shows)."""

    side: str
    qty: float
    entry_price: float | None
    balance: float


class _Events:
    """A backtest's journal: every guard action becomes an event of the run (events.jsonl), in
    the simulator's own list so it sits among the orders and fills of its instant."""

    def __init__(self, ex: SimExecution) -> None:
        self.ex = ex

    def journal(self, ts: int | None, kind: str, message: str, /, **data: Any) -> None:
        self.ex.sim.events.append({"type": "guard", "ts": ts, "message": message, **data})


class SimGuards:
    """The guards around a backtest's simulator, called where the live runner calls them around
    its broker: `observe` at every instant once the simulator has reached it, `act` on the
    engine's decisions (the simulator then sees what the guards kept, with their size ceiling)."""

    def __init__(
        self, limits: Guards, compiled: CompiledPlay, ex: SimExecution, last_price: np.ndarray
    ) -> None:
        self.compiled, self.ex = compiled, ex
        self.last = np.asarray(last_price, dtype=np.float64).tolist()
        self.set = GuardSet(limits, compiled.play, _Events(ex))
        self.taker = compiled.play.account.fee_bps.taker / 1e4

    @classmethod
    def of(
        cls,
        limits: Guards,
        compiled: CompiledPlay,
        ex: SimExecution,
        last_price: Callable[[], np.ndarray],
    ) -> SimGuards | None:
        """The guards of a run, or None when no limit is set (the run is then unguarded)."""
        if not active(limits):
            return None
        return cls(limits, compiled, ex, last_price())

    def view(self) -> SimAccount:
        sim = self.ex.sim
        pos = sim.position
        if pos is None:
            return SimAccount("flat", 0.0, None, sim.cash)
        return SimAccount(pos.side, pos.qty, pos.entry_price, sim.cash)

    def observe(self, i: int, t: int) -> None:
        self.set.observe(t, self.view(), self.last[i])

    def act(self, i: int, t: int, decisions: Sequence[Decision]) -> None:
        kept, cap = self.set.filter(
            t, decisions, self.view(), self.last[i], self._request(i, t), self.taker
        )
        if not kept:
            return
        ex = self.ex
        ex.notional_cap = cap
        try:
            ex.execute(i, t, kept)
        finally:
            ex.notional_cap = None

    def _request(self, i: int, t: int) -> EntryRequest:
        ex = self.ex

        def build(d: Decision) -> OrderRequest | None:
            try:
                return entry_request(
                    self.compiled, ex.instrument, d, t, lambda s: ex.series_at(s, i),
                    ex.exec_close_at(t), {},
                )  # fmt: skip
            except MissingAtr:
                return None  # the simulator refuses it with its reason

        return build


def active(limits: Guards) -> list[str]:
    """The limits set (a guard set to None or False is off)."""
    return [k for k in GUARD_KEYS if getattr(limits, k) not in (None, False)]


def summary(limits: Guards, account: bool, events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """result.json's `guards`: the limits applied, each guard's actions by kind, and the periods
    entries were halted (`end` null: still halted when the window ended)."""
    from ..report.artifacts import iso

    actions: dict[str, dict[str, int]] = {}
    halts: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("type") != "guard":
            continue
        guard, action = e["guard"], e["action"]
        per = actions.setdefault(guard, {})
        per[action] = per.get(action, 0) + 1
        if action == "halt":
            open_[guard] = {"guard": guard, "start": iso(e["ts"]), "end": None,
                            "message": e["message"]}  # fmt: skip
            halts.append(open_[guard])
        elif action == "lift" and guard in open_:
            open_.pop(guard)["end"] = iso(e["ts"])
    return {
        "limits": {k: getattr(limits, k) for k in active(limits)},
        "account": account,
        "actions": actions,
        "halts": halts,
    }


PLURAL = {"veto": "vetoes", "shrink": "shrinks", "halt": "halts"}


def acted(summary_: Mapping[str, Any]) -> str | None:
    """One line saying what the guards did in a run, or None when they did nothing."""
    parts = []
    for guard, per in summary_.get("actions", {}).items():
        done = [f"{n} {a if n == 1 else PLURAL[a]}" for a, n in per.items() if a != "lift"]
        if done:
            parts.append(f"{guard} {', '.join(done)}")
    return "guards acted: " + "; ".join(parts) if parts else None
