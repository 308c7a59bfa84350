"""Position-level trades and the fills they are made of.

The simulators record one close per exit fill (a partial exit is a close of part of the position).
A trader counts positions: trades.csv has one row per position, from its entry fill to the fill
that left it flat, and fills.csv lists every fill (entries and each partial exit) with the block
that caused it. Trade counts, win rate and expectancy are per position.

A simulator's closes become positions as columns (`Closes` → `Positions`): a sweep reads the
metrics and the fingerprint of thousands of trades per run without a dict per trade. `positions`
and `position_trades` do the same on dicts (a live session's recorded trades); both give the same
rows, which a test checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

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


# ------------------------------------------------------------------------------ as columns

#: Float fields of a close record and of a position, in trades.csv's order.
FLOATS = (
    "entry_price", "exit_price", "qty", "notional", "fees", "funding", "pnl", "return_pct",
    "mae_pct", "mfe_pct",
)  # fmt: skip
SUMMED = ("qty", "notional", "fees", "funding", "pnl")  # a position's parts add up


@dataclass(frozen=True)
class Closes:
    """Close records (one per exit fill, in order) as columns: `side` +1 long / −1 short, times in
    ms, `bars_held` ints, `exit_reason` names, the `FLOATS` as float64 arrays."""

    side: np.ndarray
    entry_time: np.ndarray
    exit_time: np.ndarray
    bars_held: np.ndarray
    exit_reason: np.ndarray  # str objects
    floats: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.side)

    @classmethod
    def from_dicts(cls, closes: Sequence[Mapping[str, Any]]) -> Closes:
        def col(key: str, dtype: Any) -> np.ndarray:
            return np.array([c[key] for c in closes], dtype=dtype).reshape(len(closes))

        return cls(
            side=np.array([1.0 if c["side"] == "long" else -1.0 for c in closes]),
            entry_time=col("entry_time", np.int64),
            exit_time=col("exit_time", np.int64),
            bars_held=col("bars_held", np.int64),
            exit_reason=col("exit_reason", object),
            floats={k: col(k, np.float64) for k in FLOATS},
        )


@dataclass(frozen=True)
class FillTags:
    """Per fill, in order: whether it opened a position, the block that caused it, and whether
    it was an exit on a signal (the only exit that names a block)."""

    entry: np.ndarray  # bool
    block: np.ndarray  # str objects
    signal: np.ndarray  # bool

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]]) -> FillTags:
        rows = fills(events)
        return cls(
            entry=np.array([f["action"] == "entry" for f in rows], dtype=bool),
            block=np.array([f["block"] for f in rows], dtype=object).reshape(len(rows)),
            signal=np.array([f["reason"] == "signal" for f in rows], dtype=bool),
        )


@dataclass(frozen=True)
class Positions:
    """One row per position (trades.csv), as columns; `rows()` gives `position_trades`' dicts."""

    side: np.ndarray
    entry_time: np.ndarray
    exit_time: np.ndarray
    bars_held: np.ndarray
    exit_reason: np.ndarray
    floats: dict[str, np.ndarray]
    exits: np.ndarray  # closes per position
    entry_block: np.ndarray
    exit_block: np.ndarray

    def __len__(self) -> int:
        return len(self.side)

    def rows(self) -> list[dict[str, Any]]:
        """The positions as dicts, keys and values as `position_trades` gives them."""
        f = {k: v.tolist() for k, v in self.floats.items()}
        sides = ["long" if s > 0 else "short" for s in self.side.tolist()]
        et, xt, bars = self.entry_time.tolist(), self.exit_time.tolist(), self.bars_held.tolist()
        exits = self.exits.tolist()
        return [
            {"side": sides[i], "entry_time": et[i], "entry_price": f["entry_price"][i],
             "exit_time": xt[i], "exit_price": f["exit_price"][i], "qty": f["qty"][i],
             "notional": f["notional"][i], "exit_reason": self.exit_reason[i],
             "fees": f["fees"][i], "funding": f["funding"][i], "pnl": f["pnl"][i],
             "return_pct": f["return_pct"][i], "mae_pct": f["mae_pct"][i],
             "mfe_pct": f["mfe_pct"][i], "bars_held": bars[i], "trade_id": i + 1,
             "exits": exits[i], "entry_block": self.entry_block[i],
             "exit_block": self.exit_block[i]}
            for i in range(len(self))
        ]  # fmt: skip

    def fingerprint(self) -> str:
        """sha256 over the trades' values, column by column in trades.csv's order: numbers as
        trades.csv rounds them (10 decimals; −0 as 0, every NaN alike) in IEEE float64 or int64
        bytes, text as UTF-8 each ended by NUL. Equal fingerprints mean equal trades.csv files;
        no text is formatted, so a sweep pays microseconds for it."""
        from .artifacts import TRADE_COLUMNS

        n = len(self)
        text = {
            "side": np.where(self.side > 0, "long", "short").tolist(),
            "exit_reason": self.exit_reason.tolist(),
            "exit_block": self.exit_block.tolist(),
            "entry_block": self.entry_block.tolist(),
        }
        ints = {
            "trade_id": np.arange(1, n + 1, dtype=np.int64),
            "entry_time": self.entry_time,
            "exit_time": self.exit_time,
            "exits": self.exits,
            "bars_held": self.bars_held,
        }
        h = hashlib.sha256(f"trades {n}\n".encode())
        for col in TRADE_COLUMNS:
            h.update(col.encode() + b"\0")
            if col in text:
                h.update(("\0".join(text[col]) + "\0" if n else "").encode())  # each ended by NUL
            elif col in ints:
                h.update(np.ascontiguousarray(ints[col], dtype="<i8").tobytes())
            else:
                v = np.round(self.floats[col], 10) + 0.0
                v[np.isnan(v)] = np.nan
                h.update(np.ascontiguousarray(v, dtype="<f8").tobytes())
        return h.hexdigest()


def position_table(closes: Closes, tags: FillTags) -> Positions:
    """`position_trades` on columns: the closes of each position (same side and entry time, in a
    row) merged with the same arithmetic in the same order, so every value is identical."""
    n = len(closes)
    new = np.ones(n, dtype=bool)
    new[1:] = (closes.entry_time[1:] != closes.entry_time[:-1]) | (
        closes.side[1:] != closes.side[:-1]
    )
    first = np.flatnonzero(new)
    last = np.append(first[1:], n)[: len(first)] - 1  # no closes: no positions
    fl = closes.floats
    floats = {k: v[first] for k, v in fl.items()}
    value = fl["qty"][first] * fl["exit_price"][first]  # Σ qty × exit price
    exits = last - first + 1
    ends = {k: getattr(closes, k)[last] for k in ("exit_time", "exit_reason", "bars_held")}
    for k in ("mae_pct", "mfe_pct"):
        floats[k] = fl[k][last]
    for p in np.flatnonzero(exits > 1).tolist():  # partial exits: summed close by close
        a, b = int(first[p]), int(last[p])
        for k in SUMMED:
            s, col = float(fl[k][a]), fl[k]
            for j in range(a + 1, b + 1):
                s += float(col[j])
            floats[k][p] = s
        v = float(fl["qty"][a]) * float(fl["exit_price"][a])
        for j in range(a + 1, b + 1):
            v += float(fl["qty"][j]) * float(fl["exit_price"][j])
        value[p] = v
    floats["exit_price"] = value / floats["qty"]
    floats["return_pct"] = floats["pnl"] / floats["notional"] * 100.0
    m = len(first)
    entry_block = np.full(m, "", dtype=object)
    exit_block = np.full(m, "", dtype=object)
    tid = np.cumsum(tags.entry) - 1  # the position each fill belongs to (0-based)
    ok = (tid >= 0) & (tid < m)
    opened = ok & tags.entry
    entry_block[tid[opened]] = tags.block[opened]
    out = np.flatnonzero(ok & ~tags.entry)
    if len(out):  # the last exit fill of each position names its block (a signal's only)
        final = out[np.append(tid[out][1:] != tid[out][:-1], True)]
        exit_block[tid[final]] = np.where(tags.signal[final], tags.block[final], "")
    return Positions(
        side=closes.side[first],
        entry_time=closes.entry_time[first],
        exit_time=ends["exit_time"],
        bars_held=ends["bars_held"],
        exit_reason=ends["exit_reason"],
        floats=floats,
        exits=exits.astype(np.int64),
        entry_block=entry_block,
        exit_block=exit_block,
    )
