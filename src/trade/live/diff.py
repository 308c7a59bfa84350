"""`trade play diff SESSION`: replay a session's recorded bars and hold its decisions against it.

The recorded bars (warmup included), mark bars and funding make the same MarketWindow a backtest
of the session's window would load, and `run_replay` runs the Play text the session ran (kept in
the session file). Every decision the session took must come out of the replay at the same
instant; any difference is listed. For demo and live sessions each trade is then set against the
simulated trade on the same bars: the fill price gap in bps (positive: the live fill was worse
for the trader), the fill latency and the PnL gap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.bars import Bars
from ..engine.decide import Decision
from ..engine.market import MarketWindow, build_intrabar, play_timeframes
from ..engine.runner import run_replay
from ..errors import InputError
from ..instruments import InstrumentSpec
from ..play.compile import validate_play_text
from ..report.positions import position_trades, positions
from ..timeframes import tf_ms
from .session import SessionRecord

DecisionKey = tuple[int, str, str, float, str]


@dataclass
class DiffReport:
    session: str
    mode: str
    decisions_live: int
    decisions_replayed: int
    missing: list[DecisionKey] = field(default_factory=list)  # live only
    extra: list[DecisionKey] = field(default_factory=list)  # replay only
    trades: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        return not self.missing and not self.extra

    def as_json(self) -> dict[str, Any]:
        def keys(rows: list[DecisionKey]) -> list[dict[str, Any]]:
            return [
                {"ts": t, "kind": k, "side": s, "percent": p, "block": b} for t, k, s, p, b in rows
            ]

        return {
            "session": self.session,
            "mode": self.mode,
            "reproduced": self.reproduced,
            "decisions_live": self.decisions_live,
            "decisions_replayed": self.decisions_replayed,
            "only_live": keys(self.missing),
            "only_replay": keys(self.extra),
            "trades": self.trades,
        }


def diff_session(record: SessionRecord) -> DiffReport:
    meta = record.meta()
    for key in ("play_text", "start_ms", "last_instant", "instrument", "symbol"):
        if key not in meta:
            raise InputError(f"{record.path}: the session recorded no {key} (did it evaluate?)")
    compiled = validate_play_text(meta["play_text"], meta.get("play_path", "play.yml"))
    window = _window(record, compiled, meta)
    replayed: list[DecisionKey] = []

    def seen(t: int, decisions: list[Decision]) -> None:
        replayed.extend(_key(t, d.kind, d.side, d.percent, d.block) for d in decisions)

    out = run_replay(
        compiled, window, intrabar_policy=meta.get("intrabar", "pessimistic"), on_decisions=seen
    )
    live = [
        _key(r["ts"], r["kind"], r["side"], r["percent"], r["block"])
        for r in record.decision_rows()
        if r["ts"] <= window.end_ms
    ]
    report = DiffReport(
        session=meta.get("name", record.path.stem),
        mode=meta.get("mode", "?"),
        decisions_live=len(live),
        decisions_replayed=len(replayed),
        missing=_minus(live, replayed),
        extra=_minus(replayed, live),
    )
    sim_trades, _ = position_trades(out.trades, out.events)
    sim_trades = [t for t in sim_trades if t["exit_reason"] != "end_of_data"]
    live_trades = positions(record.trade_rows())
    report.trades = [_gap(lv, sm) for lv, sm in zip(live_trades, sim_trades, strict=False)]
    return report


def _key(t: int, kind: str, side: str, percent: float, block: str) -> DecisionKey:
    return (int(t), kind, side, float(percent), block)


def _minus(a: list[DecisionKey], b: list[DecisionKey]) -> list[DecisionKey]:
    left = list(b)
    out = []
    for k in a:
        if k in left:
            left.remove(k)
        else:
            out.append(k)
    return out


def _gap(live: dict[str, Any], sim: dict[str, Any]) -> dict[str, Any]:
    """One trade, live against simulated: price gaps in bps (positive = worse for the trader)."""
    sign = 1.0 if live["side"] == "long" else -1.0

    def bps(lp: float, sp: float, buying: bool) -> float:
        return (lp / sp - 1.0) * 1e4 * (1.0 if buying else -1.0)

    return {
        "side": live["side"],
        "sim_side": sim["side"],
        "entry_time": live["entry_time"],
        "entry_live": live["entry_price"],
        "entry_sim": sim["entry_price"],
        "entry_gap_bps": bps(live["entry_price"], sim["entry_price"], sign > 0),
        "entry_latency_ms": int(live["entry_time"]) - int(sim["entry_time"]),
        "exit_time": live["exit_time"],
        "exit_live": live["exit_price"],
        "exit_sim": sim["exit_price"],
        "exit_gap_bps": bps(live["exit_price"], sim["exit_price"], sign < 0),
        "exit_latency_ms": int(live["exit_time"]) - int(sim["exit_time"]),
        "exit_reason_live": live["exit_reason"],
        "exit_reason_sim": sim["exit_reason"],
        "pnl_live": live["pnl"],
        "pnl_sim": sim["pnl"],
        "pnl_gap": live["pnl"] - sim["pnl"],
    }


def _window(record: SessionRecord, compiled: Any, meta: dict[str, str]) -> MarketWindow:
    symbol = meta["symbol"]
    start, end = int(meta["start_ms"]), int(meta["last_instant"])
    if end <= start:
        raise InputError(f"{record.path}: the session evaluated no instant yet")
    rows = record.bar_rows()
    bars: dict[str, Bars] = {}
    for tf in {*play_timeframes(compiled), "1m"}:
        mine = [r for r in rows if r[0] == tf and r[1] + tf_ms(tf) <= end]
        bars[tf] = _bars(symbol, tf, [r[1:7] for r in mine])
    marks = record.mark_rows()
    mark = None
    if marks:
        tf_of = {tf_ms(t): t for t in ("1m", "5m", "15m", "1h", "4h")}
        tf = tf_of.get(int(marks[0][1]), "1h")
        mark = _bars(symbol, tf, [(m[0], m[2], m[3], m[4], m[5], 0.0) for m in marks])
    funding = [f for f in record.funding_rows() if start <= f[0] <= end]
    minute = bars.pop("1m") if "1m" not in play_timeframes(compiled) else bars["1m"]
    spec = InstrumentSpec(**json.loads(meta["instrument"]))
    return MarketWindow(
        symbol=symbol,
        instrument=spec,
        bars=bars,
        intrabar=build_intrabar(minute, bars[compiled.exec_tf], start, end),
        mark=mark,
        funding_ts=np.array([f[0] for f in funding], dtype=np.int64),
        funding_rate=np.array([f[1] for f in funding], dtype=np.float64),
        start_ms=start,
        end_ms=end,
    )


def _bars(symbol: str, tf: str, rows: list[tuple[Any, ...]]) -> Bars:
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return Bars.from_arrays(
        symbol, tf, a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5]
    )
