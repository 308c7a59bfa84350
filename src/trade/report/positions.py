"""Position-level trades and the fills they are made of.

The simulators record one close per exit fill (a partial exit is a close of part of the position).
A trader counts positions: trades.csv has one row per position, from its entry fill to the fill
that left it flat, and fills.csv lists every fill (entries and each partial exit) with the block
that caused it. Trade counts, win rate and expectancy are per position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FILL_COLUMNS = (
    "fill_id",
    "trade_id",
    "time",
    "action",
    "side",
    "qty",
    "price",
    "fee",
    "pnl",
    "reason",
    "block",
)


def positions(closes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Merge the close records of each position (same side and entry fill) into one trade.

    qty, notional, fees, funding and pnl are sums; the exit price is the qty-weighted mean of the
    exits; exit time, reason, excursions and bars held are the final exit's (its excursions span the
    whole position); return_pct is pnl over the entry notional."""
    out: list[dict[str, Any]] = []
    for c in closes:
        last = out[-1] if out else None
        if last is not None and (last["entry_time"], last["side"]) == (c["entry_time"], c["side"]):
            for k in ("qty", "notional", "fees", "funding", "pnl"):
                last[k] += c[k]
            last["_exit_value"] += c["qty"] * c["exit_price"]
            last["exits"] += 1
            for k in ("exit_time", "exit_reason", "mae_pct", "mfe_pct", "bars_held"):
                last[k] = c[k]
            continue
        row = {k: c[k] for k in c if k != "trade_id"}
        row.update(trade_id=len(out) + 1, exits=1, _exit_value=c["qty"] * c["exit_price"])
        out.append(row)
    for p in out:
        p["exit_price"] = p.pop("_exit_value") / p["qty"]
        p["return_pct"] = p["pnl"] / p["notional"] * 100.0
    return out


def position_trades(
    closes: Sequence[Mapping[str, Any]], events: Iterable[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(trades, fills): one trade per position, each naming the block that opened it and, for a
    signal exit, the block whose exit closed it; every fill with its trade id."""
    trades, all_fills = positions(closes), fills(events)
    for t in trades:
        t["entry_block"] = t["exit_block"] = ""
    for f in all_fills:
        t = trades[f["trade_id"] - 1] if 0 < f["trade_id"] <= len(trades) else None
        if t is None:
            continue
        if f["action"] == "entry":
            t["entry_block"] = f["block"]
        else:
            t["exit_block"] = f["block"] if f["reason"] == "signal" else ""
    return trades, all_fills


def fills(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every fill event in order, numbered, each with the position (trade_id) it belongs to."""
    out: list[dict[str, Any]] = []
    trade_id = 0
    for e in events:
        if e.get("type") != "fill":
            continue
        entry = "pnl" not in e
        if entry:
            trade_id += 1
        tag = e.get("tag") or {}
        out.append(
            {
                "fill_id": len(out) + 1,
                "trade_id": trade_id,
                "time": e["ts"],
                "action": "entry" if entry else "exit",
                "side": e["side"],
                "qty": e["qty"],
                "price": e["price"],
                "fee": e["fee"],
                "pnl": e.get("pnl", float("nan")),
                "reason": e.get("reason", ""),
                "block": tag.get("block", ""),
            }
        )
    return out
