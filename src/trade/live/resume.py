"""Resuming a session after a crash, a `kill -9` or a stop: the runner is rebuilt from its record.

Nothing but the session file is trusted. Its bars (warmup included), mark bars and funding are
fed again in replay's order, through the runner's own `_decide`, up to the last instant the
session evaluated: the engine ends exactly where it was. The engine checkpoint written after
every exec close (its features' and conditions' state) is not loaded in place of this pass but
checked against it: the rebuilt state at the last checkpointed instant must equal it, so a record
that cannot reproduce its own engine is refused rather than trusted halfway. Paper's simulated account is a pure function of the bars, marks, funding and
decisions it was given, so it is rebuilt by the same pass: every recorded decision is executed
again at its instant (those journaled as `missed` are not, as they were not). The rebuild must
reproduce the record: the same decisions at every instant, the same fills and closed trades; any
difference refuses the resume with the first one found (`--accept-play-change` journals them
instead: a changed Play may decide differently).

A demo or live broker cannot be replayed: its fills happened on the exchange. The engine is fed the
position facts recorded with each instant (side, pending entry, position values) instead of a
broker's, its decisions are checked against the record the same way, and the broker is rebuilt from
the record (its orders, fills, levels and stop moves), then reconciled with the exchange before
anything is sent (`BybitBroker.resume`).

Then the runner's feed continues from each timeframe's last recorded bar; what closed while the
session was down comes by REST, and instants evaluated more than a minute after they closed are
journaled as missed (runner.LATE_MS).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..engine.decide import Decision
from ..engine.guards import GuardSet
from ..errors import InputError
from ..exchange.bybit import Kline
from ..instruments import InstrumentSpec
from ..timeframes import MINUTE_MS, tf_ms
from .broker import BrokerView, DecisionContext
from .feed import ClosedBar, EvaluationClock
from .session import SessionRecord

if TYPE_CHECKING:
    from .runner import LiveRunner

DecisionKey = tuple[int, str, str, float, str]


class RebuildMismatch(InputError):
    """The record and its replay disagree: resuming would trade from a wrong state."""


class _Replaying:
    """The record as the broker sees it while being rebuilt: what it books again is checked
    against what was booked; only what the crash kept from being written is added (fills and
    trades are keyed, so the same booking twice is one row); journal lines are not repeated."""

    def __init__(self, record: SessionRecord) -> None:
        self.record = record
        self.fills = {r["exec_id"]: r for r in record.fill_rows()}
        self.trades = {int(t["trade_id"]): t for t in record.trade_rows()}
        self.orders = {r["link_id"] for r in record.order_rows()}
        self.mismatches: list[str] = []

    def fill(self, exec_id: str, ts: int, link_id: str, side: str, qty: float, price: float,
             fee: float, kind: str, data: Mapping[str, Any] | None = None) -> bool:  # fmt: skip
        old = self.fills.get(exec_id)
        if old is not None:
            got = (ts, link_id, side, qty, price, fee, kind)
            was = tuple(old[k] for k in ("ts", "link_id", "side", "qty", "price", "fee", "kind"))
            if got != was:
                self.mismatches.append(f"fill {exec_id}: recorded {was}, rebuilt {got}")
            return False
        return self.record.fill(exec_id, ts, link_id, side, qty, price, fee, kind, data)

    def trade(self, trade: Mapping[str, Any]) -> None:
        old = self.trades.get(int(trade["trade_id"]))
        if old is None:
            self.record.trade(trade)
        elif json.dumps(dict(trade), sort_keys=True) != json.dumps(old, sort_keys=True):
            self.mismatches.append(f"trade {trade['trade_id']}: recorded {old}, rebuilt {trade}")

    def order_intent(self, link_id: str, ts: int, body: Mapping[str, Any]) -> None:
        if link_id not in self.orders:
            self.record.order_intent(link_id, ts, body)

    def order_status(self, link_id: str, status: str, **kw: Any) -> None:
        self.record.order_status(link_id, status, **kw)

    def journal(self, *args: Any, **kw: Any) -> None:
        pass


async def rebuild(runner: LiveRunner, now: int) -> dict[str, int]:
    """Bring `runner` (engine, instant values, paper account) to where its record ends; returns
    each timeframe's last recorded bar open, where the feed continues."""
    record = runner.record
    meta = record.meta()
    name = meta.get("name", record.path.stem)
    if "instrument" not in meta or "start_ms" not in meta:
        raise InputError(f"session {name!r} never started trading: nothing to resume")
    runner.start_ms = start = int(meta["start_ms"])
    instrument = runner.instrument = InstrumentSpec(**json.loads(meta["instrument"]))
    bars = sorted(
        (ClosedBar(r[0], Kline(r[1], *r[2:7], 0.0, True), r[7]) for r in record.bar_rows()),
        key=lambda b: (b.close_ms, tf_ms(b.tf)),
    )
    last_open = {tf: start - tf_ms(tf) for tf in runner.tfs}
    for b in bars:
        last_open[b.tf] = max(last_open.get(b.tf, b.bar.start), b.bar.start)
    marks = [(int(m[0]), int(m[0]) + int(m[1]), m[3], m[4], m[5]) for m in record.mark_rows()]
    funding = record.funding_rows()
    rows_at: dict[int, list[dict[str, Any]]] = {}
    for d in record.decision_rows():
        rows_at.setdefault(d["ts"], []).append(d)
    # `last_instant` is written once an instant's orders are out; decisions recorded after it
    # belong to an instant the crash interrupted: it was decided (and, on paper, acted on)
    end = max(int(meta.get("last_instant", start)), max(rows_at, default=start))
    missed = {j["ts"] for j in record.journal_rows() if j["kind"] == "missed"}
    checkpoint = next((c for c in reversed(record.checkpoint_rows()) if c[0] <= end), None)
    accepted = meta.get("play_change_accepted") == "1"

    broker = runner.make_broker(instrument, runner.extras)
    replaying = _Replaying(record)
    # the guards see the rebuild's instants again: what they journaled (and notified) then is
    # not said twice; they journal to the record again once the rebuild is done
    runner.guards = GuardSet(runner.guard_limits, runner.compiled.play, replaying)
    own_record = getattr(broker, "record", None)
    from_record = getattr(broker, "resumes_from_record", False)
    if from_record:
        facts = record.instant_facts()
        runner.broker = _Recorded(broker, facts, name)  # type: ignore[assignment]
    else:
        runner.broker = broker
        broker.record = replaying  # type: ignore[attr-defined]
    mismatches = replaying.mismatches
    given_marks = given_funding = 0
    clock = EvaluationClock(runner.tfs, runner.exec_tf)
    runner.last_instant = start
    try:
        while given_marks < len(marks) and marks[given_marks][1] <= start:
            runner_mark(runner, marks[given_marks])
            given_marks += 1
        for b in bars:
            if b.tf == "1m" and b.bar.start >= start:
                close = b.bar.start + MINUTE_MS
                while given_marks < len(marks) and marks[given_marks][1] <= close:
                    runner_mark(runner, marks[given_marks])
                    given_marks += 1
                while given_funding < len(funding) and funding[given_funding][0] <= b.bar.start:
                    ts, rate = funding[given_funding]
                    runner.extras.funding.append((ts, rate))
                    if runner._tape is not None:
                        runner._tape.append_funding(ts, rate)
                    given_funding += 1
                if runner._tape is not None:
                    runner._tape_bar(b.bar)
                await broker.on_minute(b.bar)
                runner.last_price = b.bar.close
            if b.tf in runner.engine_tfs:
                runner._pending.append(b)
            clock.fed(b)
            for t in clock.due(runner.last_instant):
                if t > end:
                    break
                decided = await runner._decide(t)
                got = [_key(t, _as_row(d)) for d in decided]
                want = [_key(t, r) for r in rows_at.get(t, [])]
                if got != want:
                    mismatches.append(f"decisions at {_iso(t)}: recorded {want}, rebuilt {got}")
                if checkpoint is not None and t == checkpoint[0]:
                    rebuilt = json.dumps(runner.engine.state(), sort_keys=True)
                    if rebuilt != json.dumps(checkpoint[2], sort_keys=True):
                        mismatches.append(f"engine state at {_iso(t)} differs from its checkpoint")
                runner.decisions += len(want)
                runner.last_instant = t
                todo = [_decision(r) for r in rows_at.get(t, [])]
                if todo and t not in missed:
                    if from_record:  # what the orders of `t` were meant to be (levels, expiry)
                        ctx = DecisionContext(runner.engine.features.value, runner.exec_close)  # type: ignore[union-attr]
                        broker.replay_decisions(t, todo, ctx, instrument)  # type: ignore[attr-defined]
                    else:
                        await runner.act(t, todo)
            runner.last_bar = b
    finally:
        runner.guards.record = record
        runner.broker = broker
        if not from_record:
            broker.record = own_record  # type: ignore[attr-defined]
    if runner.last_instant != end:
        raise RebuildMismatch(
            f"session {name!r}: its recorded bars reach {_iso(runner.last_instant)}, its last "
            f"evaluation was {_iso(end)}; the record is incomplete, refusing to resume"
        )
    if mismatches and not accepted:
        raise RebuildMismatch(
            f"session {name!r}: rebuilding from the record differs from it ({len(mismatches)} "
            f"difference(s); first: {mismatches[0]}); refusing to resume"
        )
    if from_record:
        broker.restore(start)  # type: ignore[attr-defined]
    for m in mismatches:
        record.journal(now, "rebuild", f"the changed Play rebuilds differently: {m}")
    runner._last_funding_ts = max(start - 1, funding[-1][0] if funding else 0)
    fed = sum(1 for b in bars if b.tf == "1m" and b.bar.start >= start)
    record.journal(
        now, "resume",
        f"session resumed: {fed} minutes and {len(rows_at)} decision instants rebuilt from the "
        f"record; last evaluation {_iso(end)}, exchange time {_iso(now)}",
        last_instant=end, trades=len(broker.trades()),
    )  # fmt: skip
    record.set_meta(last_instant=end, resumes=int(meta.get("resumes", "0")) + 1)
    if from_record:
        await broker.resume(now)  # type: ignore[attr-defined]
    return {tf: last_open[tf] for tf in runner.tfs}


class _Recorded:
    """A demo or live broker while the engine is rebuilt: the engine gets the position facts
    recorded with each instant (the exchange's past cannot be replayed); 1m bars go to the broker's
    book (the excursions its trades and trailing stop are computed from)."""

    def __init__(self, broker: Any, facts: Mapping[int, Mapping[str, Any]], name: str) -> None:
        self.broker, self.facts, self.name = broker, facts, name
        self.mode = broker.mode
        self.now: Mapping[str, Any] = {"side": "flat", "pending": False, "halted": False}

    @property
    def halted(self) -> bool:
        return bool(self.now["halted"])

    async def on_minute(self, bar: Kline) -> None:
        self.broker.replay_minute(bar)

    async def before_instant(self, t: int) -> None:
        if t not in self.facts:
            raise RebuildMismatch(
                f"session {self.name!r}: no position facts recorded for the instant {_iso(t)} "
                "(written by an older trade); a demo or live session resumes only from a record "
                "that holds them"
            )
        self.now = self.facts[t]

    def side(self) -> str:
        return str(self.now["side"])

    def entry_pending(self) -> bool:
        return bool(self.now["pending"])

    def position_values(self, t: int) -> dict[str, float]:
        return {k: _float(v) for k, v in (self.now.get("position") or {}).items()}

    def view(self) -> BrokerView:
        f = self.now
        return BrokerView(
            side=self.side(), qty=float(f.get("qty") or 0.0), entry_price=f.get("entry_price"),
            equity=_float(f.get("equity")), balance=_float(f.get("balance")),
        )  # fmt: skip

    def trades(self) -> list[dict[str, Any]]:
        return []


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


def runner_mark(runner: LiveRunner, m: tuple[int, int, float, float, float]) -> None:
    """A recorded mark bar, where `runner._add_mark` would have put it (without re-recording)."""
    runner.extras.marks.append(m)
    if runner._tape is not None:
        runner._tape.append_mark(m[1], m[4], m[0], m[2], m[3])


def _as_row(d: Decision) -> dict[str, Any]:
    return {"kind": d.kind, "side": d.side, "percent": d.percent, "block": d.block}


def _key(t: int, d: Mapping[str, Any]) -> DecisionKey:
    return (int(t), d["kind"], d["side"], float(d["percent"]), d["block"])


def _decision(row: Mapping[str, Any]) -> Decision:
    return Decision(row["kind"], row["side"], row["percent"], row["block"], row["metadata"])


def _iso(ms: int) -> str:
    from ..report.artifacts import iso

    return iso(ms)
