"""`trade panic`: flatten an account when everything else is failing, then refuse new sessions.

In order: the kill switch is set (no `trade play run` starts until `trade panic --reset`); the
sessions of that mode still running are stopped (SIGTERM) so none places anything new; every order
on the account's USDT perpetuals is cancelled (`cancel-all` by settle coin); every open position is
closed with a reduce-only market order; then orders and positions are read again until none is
left. The REST client retries through rate limits (10006: until the limit resets) and server
errors; a close whose outcome is unknown (10016, a timeout) is looked up by its `orderLinkId`
before anything is sent again, so each position gets exactly one close.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..exchange.bybit import BybitRest, Position
from ..exchange.bybit.errors import BybitError
from .orders import reduce_body


def kill_switch_path() -> Path:
    """`$TRADE_KILL_SWITCH`, else `~/.trade/KILL_SWITCH`."""
    env = os.environ.get("TRADE_KILL_SWITCH")
    return Path(env) if env else Path.home() / ".trade" / "KILL_SWITCH"


def check_kill_switch() -> None:
    """Refuse to start while the kill switch is set (one line, exit 2)."""
    path = kill_switch_path()
    if path.exists():
        why = path.read_text(encoding="utf-8").strip() or "set"
        raise InputError(
            f"kill switch on ({why}; {path}): no session starts until `trade panic --reset`"
        )


def set_kill_switch(mode: str) -> Path:
    path = kill_switch_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    path.write_text(f"trade panic --mode {mode} at {stamp}\n", encoding="utf-8")
    return path


def reset_kill_switch() -> bool:
    """True when a kill switch was removed."""
    path = kill_switch_path()
    if not path.exists():
        return False
    path.unlink()
    return True


@dataclass
class PanicReport:
    cancelled: list[str] = field(default_factory=list)  # order ids
    closes: list[dict[str, Any]] = field(default_factory=list)  # one per close sent
    positions_left: list[str] = field(default_factory=list)
    orders_left: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def flat(self) -> bool:
        return not self.positions_left and not self.orders_left


async def open_positions(rest: BybitRest) -> list[Position]:
    res = await rest.get(
        "/v5/position/list", {"category": "linear", "settleCoin": "USDT", "limit": 200}, signed=True
    )
    return [p for p in (Position.parse(x) for x in res.get("list") or []) if p.size > 0]


async def open_order_ids(rest: BybitRest) -> list[str]:
    res = await rest.get(
        "/v5/order/realtime",
        {"category": "linear", "settleCoin": "USDT", "openOnly": 0, "limit": 50},
        signed=True,
    )
    return [str(o.get("orderId")) for o in res.get("list") or []]


async def panic(rest: BybitRest, *, rounds: int = 6, pause_s: float = 0.5) -> PanicReport:
    """Cancel everything and close everything on the account's USDT perpetuals."""
    report = PanicReport()
    await rest.sync_time()
    stamp = _base36(rest.now_ms() // 1000)
    sent: dict[str, str] = {}  # symbol → the link id of its latest close
    for r in range(rounds):
        try:
            if await open_order_ids(rest):
                res = await rest.post(
                    "/v5/order/cancel-all", {"category": "linear", "settleCoin": "USDT"}
                )
                report.cancelled += [str(o.get("orderId")) for o in res.get("list") or []]
            positions = await open_positions(rest)
            for p in positions:
                if not await _close_due(rest, p, sent.get(p.symbol)):
                    continue  # the close sent earlier is still working
                link = f"panic-{stamp}-{r}-{p.symbol}"[:36]
                side = "long" if p.side == "Buy" else "short"
                ack = await rest.place_order(reduce_body(p.symbol, link, side, p.size))
                sent[p.symbol] = link
                report.closes.append(
                    {"symbol": p.symbol, "side": side, "qty": p.size, "link_id": link,
                     "order_id": ack.order_id}
                )  # fmt: skip
            orders_left = await open_order_ids(rest)
            if not positions and not orders_left:
                report.positions_left, report.orders_left = [], []
                return report
        except BybitError as exc:  # retried by the client already; try the whole round again
            report.errors.append(str(exc))
        await asyncio.sleep(pause_s)
    with contextlib.suppress(BybitError):
        report.positions_left = [p.symbol for p in await open_positions(rest)]
        report.orders_left = await open_order_ids(rest)
    return report


async def _close_due(rest: BybitRest, p: Position, link: str | None) -> bool:
    """A position gets a (new) close only when no earlier close of it can still fill."""
    if link is None:
        return True
    found = await rest.find_order(p.symbol, link)
    return found is None or found.is_final


def stop_running_sessions(mode: str, wait_s: float = 15.0) -> list[str]:
    """SIGTERM every running session of `mode` (they cancel their entries and stop trading)."""
    from .control import all_statuses, stop_session

    names = [s["name"] for s in all_statuses() if s["state"] == "running" and s["mode"] == mode]
    deadline = time.monotonic() + wait_s
    for name in names:
        with contextlib.suppress(InputError):
            stop_session(name, wait_s=max(0.1, deadline - time.monotonic()))
    return names


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, k = divmod(n, 36)
        out = digits[k] + out
        if not n:
            return out
