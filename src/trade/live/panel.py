"""The live panel `trade play run` keeps on screen: position, stop and target, open orders,
equity, the last bar and the next evaluation, redrawn after every step of the session."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..report.artifacts import iso
from .runner import Snapshot


def _num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def render(s: Snapshot) -> Group:
    b = s.broker
    head = Text(
        f"{s.play} · {s.symbol} · {s.mode} · exchange time {iso(s.exchange_ms)} · "
        f"public stream {s.stream}",
        style="bold",
    )
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="dim")
    t.add_column()
    pos = "flat" if b.side == "flat" else f"{b.side} {b.qty:g} @ {_num(b.entry_price)}"
    t.add_row("position", pos)
    t.add_row("stop", _num(b.stop))
    t.add_row("target", _num(b.target))
    t.add_row("equity", f"{_num(b.equity)} USDT (balance {_num(b.balance)})")
    if s.last_bar is not None:
        k = s.last_bar.bar
        t.add_row(
            "last bar",
            f"{s.last_bar.tf} {iso(k.start)} O {k.open:g} H {k.high:g} L {k.low:g} C {k.close:g}",
        )
    t.add_row("next evaluation", iso(s.next_instant))
    t.add_row("decisions", f"{s.decisions} · trades closed {s.trades}")
    if b.halted:
        t.add_row("halted", Text(b.halted, style="bold red"))
    parts: list[object] = [head, t]
    if b.open_orders:
        o = Table(title="open orders", title_justify="left")
        for col in ("id", "side", "kind", "price", "reduce-only"):
            o.add_column(col)
        for order in b.open_orders:
            price = order.get("limit_price") or order.get("stop_price") or order.get("price")
            o.add_row(
                str(order.get("id", order.get("link_id", ""))), str(order.get("side", "")),
                str(order.get("kind", "")), _num(price), "yes" if order.get("reduce_only") else "",
            )  # fmt: skip
        parts.append(o)
    return Group(*parts)  # type: ignore[arg-type]
