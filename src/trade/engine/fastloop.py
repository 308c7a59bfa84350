"""Fast mode's jitted loop for market-order Plays (`sim.kernel`): inputs built from the vectorised
truths, records turned back into the simulator's trades, events, ledger and counters.

A Play qualifies when its decisions cannot depend on the position (no `position.*` operand) and its
entries are market orders (trailing stops, break-even and partial exits included). The rest run
through the general loop (`runner._loop_skipping`); both give the same results, which the
parity tests check on every example Play.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import PlayError
from ..gcpause import gc_paused
from ..play import ast as A
from ..play.compile import CompiledPlay
from ..play.model import Distance
from ..report.positions import FLOATS, Closes, FillTags
from ..sim import kernel as K
from .execution import SimExecution


def eligible(compiled: CompiledPlay) -> bool:
    return not compiled.uses_position and compiled.play.entry.order_type == "market"


def run(
    compiled: CompiledPlay,
    ex: SimExecution,
    instants: np.ndarray,
    chosen: list[np.ndarray],
    series: Any,
) -> None:
    """Run the whole backtest in the kernel and leave its outcome in `ex.sim` (and `ex.signals`),
    exactly as the general loop followed by the end-of-data close would."""
    sim, play = ex.sim, compiled.play
    n = len(instants)
    tags, percents, ex_long, ex_short, en_long, en_short = _intent_sources(compiled, chosen, n)
    sl_kind, sl_value, sl_bad, sl_atr = _level(play.risk.stop_loss, series, n)
    tp_kind, tp_value, tp_bad, tp_atr = _level(play.risk.take_profit, series, n)
    trailing, be = play.risk.trailing, play.risk.break_even
    tr_kind, tr_value, tr_bad, tr_atr = _level(
        None
        if trailing is None
        else Distance(type=trailing.type, value=trailing.value, atr=trailing.atr),
        series,
        n,
    )
    be_kind, be_value, be_bad, be_atr = _level(None if be is None else be.trigger, series, n)
    # the first missing ATR in the order the general loop reads them (1 element or n)
    atr_bad = np.where(
        sl_bad, 1, np.where(tp_bad, 2, np.where(tr_bad, 3, np.where(be_bad, 4, 0)))
    ).astype(np.int8)
    acc_cfg, spec = sim.account, sim.instrument
    sizing = {"percent_equity": K.S_PERCENT, "risk_based": K.S_RISK, "fixed_notional": K.S_FIXED}
    cfg = np.zeros(K.N_CFG)
    cfg[K.C_START], cfg[K.C_LEV] = acc_cfg.starting_equity, acc_cfg.leverage
    cfg[K.C_TAKER], cfg[K.C_SLIP], cfg[K.C_MMR] = sim.taker, sim.slip, sim.mmr
    cfg[K.C_LIQ_FEE], cfg[K.C_MIN_NOTIONAL], cfg[K.C_DD] = (
        sim.liq_fee,
        sim.min_notional,
        sim.dd_frac,
    )
    cfg[K.C_MAX_POS] = acc_cfg.max_position_equity_pct
    cfg[K.C_TICK], cfg[K.C_STEP], cfg[K.C_MIN_QTY] = spec.tick_size, spec.qty_step, spec.min_qty
    cfg[K.C_TIGHTEN] = acc_cfg.stop_beyond_liquidation == "tighten"
    cfg[K.C_OPTIMISTIC], cfg[K.C_EXEC_MS] = sim.optimistic, ex.exec_ms
    cfg[K.C_SIZING], cfg[K.C_SIZE] = sizing[play.risk.sizing.model], play.risk.sizing.value
    cfg[K.C_SL_KIND], cfg[K.C_TP_KIND] = sl_kind, tp_kind
    cfg[K.C_FLIP] = play.position_policy.allow_flip
    cfg[K.C_END_PRICE] = ex.exec_close_at(int(instants[-1]))
    cfg[K.C_TR_KIND] = tr_kind
    cfg[K.C_TR_ACTIVATION] = 0.0 if trailing is None else trailing.activation_pct
    cfg[K.C_BE_KIND], cfg[K.C_BE_OFFSET] = be_kind, 0.0 if be is None else be.offset_pct
    tape = sim.tape
    f_ts = np.ascontiguousarray(tape.funding_ts, dtype=np.int64)
    rejections = np.zeros(len(K.REJECT_REASONS), dtype=np.int64)
    ev, tr, led, acc = K.run_market_play(
        tape.ts_open, tape.ts_close, tape.o, tape.h, tape.lo, tape.c, tape.mark, tape.liq_low,
        tape.liq_high, tape.dd_price, tape.exec_close, f_ts, np.ascontiguousarray(tape.funding_rate),
        tape.marks_at(f_ts), np.ascontiguousarray(instants, dtype=np.int64), ex_long, ex_short,
        en_long, en_short, sl_value, tp_value, tr_value, be_value, atr_bad,
        percents, cfg, rejections,
    )  # fmt: skip
    block_of = [b for b, _ in tags]
    tag_dicts = [_tag(b, intent.metadata) for b, intent in tags]
    sim.events = Lazy(  # type: ignore[assignment]
        lambda: _events(ev, tag_dicts, block_of, (sl_atr, tp_atr, tr_atr, be_atr))
    )
    sim.trades = Lazy(lambda: _trades(tr))  # type: ignore[assignment]
    ex.records = (_closes(tr), _fill_tags(ev, block_of))
    sim.ledger = led  # type: ignore[assignment]  # (ts, cash, signed qty, entry) rows, as an array
    sim.cash, sim.peak, sim.funding_total = (
        float(acc[K.A_CASH]),
        float(acc[K.A_PEAK]),
        float(acc[K.A_FUNDING]),
    )
    sim.halted = bool(acc[K.A_HALTED])
    sim.counters["rejected_entries"] = int(acc[K.A_REJECTED])
    sim.counters["ambiguous_exits"] = int(acc[K.A_AMBIGUOUS])
    sim.counters["liquidations"] = int(acc[K.A_LIQS])
    # reasons in order of first occurrence, as the simulator's dict has them
    kinds = ev[:, K.EV_TYPE]
    refused = np.isin(kinds, (K.E_REJECT, K.E_REFUSE, K.E_ATR))
    codes = np.where(kinds == K.E_ATR, K.J_ATR, ev[:, K.EV_REASON])[refused]
    codes = codes.astype(np.int64).tolist()
    for code in dict.fromkeys(codes):
        sim.rejections[K.REJECT_REASONS[code]] = int(rejections[code])
    ex.signals = int(acc[K.A_SIGNALS])
    ex.closed = True


class Lazy(Sequence[dict[str, Any]]):
    """Trades or events as dicts, built from the kernel's records on first use: a sweep that reads
    only the metrics it needs does not pay for tens of thousands of dicts it never looks at."""

    def __init__(self, build: Callable[[], list[dict[str, Any]]]) -> None:
        self._build: Callable[[], list[dict[str, Any]]] | None = build
        self._items: list[dict[str, Any]] = []

    def _all(self) -> list[dict[str, Any]]:
        if self._build is not None:
            with gc_paused():
                self._items = self._build()
            self._build = None
        return self._items

    def __len__(self) -> int:
        return len(self._all())

    def __getitem__(self, i: Any) -> Any:
        return self._all()[i]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return self._all() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._all())


def _tag(block: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {"block": block, **metadata} if metadata else {"block": block}


def _intent_sources(
    compiled: CompiledPlay, chosen: list[np.ndarray], n: int
) -> tuple[list[tuple[str, Any]], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tag table (block, intent), each intent's close percent, and per instant the intent
    `decide` acts on (index into the tag table; −1: none): for exiting a long and exiting a short,
    the one closing the largest percent (the first of equals, blocks in order, emits in order);
    for entering long and short, the first."""
    mode = compiled.play.position_policy.mode
    tags: list[tuple[str, Any]] = []
    percents: list[float] = []
    # int16: a Play has a handful of intents, and a million instants cost 2 MB per array, not 8
    ex_long, ex_short, en_long, en_short = (np.full(n, -1, dtype=np.int16) for _ in range(4))
    untouched = {id(a) for a in (ex_long, ex_short, en_long, en_short)}  # still all −1
    for block, ch in zip(compiled.blocks, chosen, strict=True):
        options = [(k, emits) for k, (_, emits) in enumerate(block.cases)]
        if block.else_:
            options.append((-1, block.else_))
        for k, emits in options:
            mask = ch == k
            for intent in emits:
                idx = len(tags)
                if idx >= np.iinfo(np.int16).max:
                    raise PlayError(f"{compiled.origin}: actions: more than {idx} intents")
                tags.append((block.id, intent))
                percents.append(intent.percent)
                a = intent.action
                targets = []
                if a in ("exit_long", "exit_all"):
                    targets.append(ex_long)
                if a in ("exit_short", "exit_all"):
                    targets.append(ex_short)
                if a == "entry_long" and mode != "short_only":
                    targets.append(en_long)
                if a == "entry_short" and mode != "long_only":
                    targets.append(en_short)
                for arr in targets:
                    if id(arr) in untouched:  # the first intent there: every instant is free
                        untouched.discard(id(arr))
                        arr[mask] = idx
                    elif arr is ex_long or arr is ex_short:
                        larger = np.asarray(percents)[arr] < intent.percent
                        arr[mask & ((arr < 0) | larger)] = idx
                    else:
                        arr[mask & (arr < 0)] = idx
    return tags, np.asarray(percents, dtype=np.float64), ex_long, ex_short, en_long, en_short


def _level(dist: Distance | None, series: Any, n: int) -> tuple[int, np.ndarray, np.ndarray, str]:
    """A stop / target as (kind, value per instant, ATR missing per instant, ATR key)."""
    # constant levels are one-element arrays (the kernel reads element 0 then)
    none = np.zeros(1, dtype=bool)
    if dist is None:
        return K.L_NONE, np.zeros(1), none, ""
    if dist.type == "percent":
        return K.L_PERCENT, np.full(1, dist.value), none, ""
    if dist.type == "fixed":
        return K.L_DISTANCE, np.full(1, dist.value), none, ""
    if dist.type == "rr_ratio":
        return K.L_RR, np.full(1, dist.value), none, ""
    atr = np.asarray(series(A.Series(f"{dist.atr}.value", 0, A.Kind.FLOAT)), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(atr > 0)
    return K.L_DISTANCE, dist.value * atr, bad, str(dist.atr)


def _none(x: float) -> float | None:
    return None if math.isnan(x) else x


def _events(
    ev: np.ndarray,
    tags: list[dict[str, Any]],
    block_of: list[str],
    atr_keys: tuple[str, ...],
) -> list[dict[str, Any]]:
    """Kernel event records → the simulator's event dicts (same keys, values and order)."""
    out: list[dict[str, Any]] = []
    order_tags: dict[int, dict[str, Any]] = {}

    def tag_of(code: float) -> dict[str, Any]:
        j = int(code)
        return tags[j] if j >= 0 else {"block": block_of[-2 - j], "flip": True}

    for row in ev.tolist():
        kind, ts = int(row[K.EV_TYPE]), int(row[K.EV_TS])
        side = "buy" if row[K.EV_SIDE] > 0 else "sell"
        if kind == K.E_ORDER:
            tag = dict(tag_of(row[K.EV_TAG]))
            reduce = row[K.EV_REDUCE] != 0
            oid = int(row[K.EV_ID])
            order_tags[oid] = tag
            out.append(
                {"type": "order", "ts": ts, "id": oid, "side": side, "kind": "market",
                 "reduce_only": reduce, "close_percent": row[K.EV_PERCENT] if reduce else None,
                 "limit_price": None, "tag": tag}
            )  # fmt: skip
        elif kind == K.E_OPEN:
            out.append(
                {"type": "fill", "ts": ts, "id": int(row[K.EV_ID]), "side": side,
                 "qty": row[K.EV_QTY], "price": row[K.EV_PRICE], "fee": row[K.EV_FEE],
                 "liq_price": row[K.EV_LIQ], "sl": _none(row[K.EV_SL]), "tp": _none(row[K.EV_TP]),
                 "maker": False, "tag": dict(tag_of(row[K.EV_TAG]))}
            )  # fmt: skip
        elif kind == K.E_CLOSE:
            out.append(
                {"type": "fill", "ts": ts, "side": side, "qty": row[K.EV_QTY],
                 "price": row[K.EV_PRICE], "fee": row[K.EV_FEE],
                 "reason": K.EXIT_REASONS[int(row[K.EV_REASON])], "pnl": row[K.EV_PNL],
                 "tag": dict(tag_of(row[K.EV_TAG]))}
            )  # fmt: skip
        elif kind == K.E_REJECT:
            out.append(
                {"type": "reject", "ts": ts, "id": int(row[K.EV_ID]),
                 "reason": K.REJECT_REASONS[int(row[K.EV_REASON])], "side": side}
            )  # fmt: skip
        elif kind == K.E_REFUSE:
            out.append(
                {"type": "reject", "ts": ts, "reason": K.REJECT_REASONS[int(row[K.EV_REASON])],
                 "side": side, "tag": dict(tag_of(row[K.EV_TAG]))}
            )  # fmt: skip
        elif kind == K.E_SKIP:
            out.append(
                {"type": "skip", "ts": ts, "id": int(row[K.EV_ID]),
                 "reason": "no position to reduce"}
            )  # fmt: skip
        elif kind == K.E_FUNDING:
            out.append(
                {"type": "funding", "ts": ts, "rate": row[K.EV_RATE], "mark": row[K.EV_MARK],
                 "qty": row[K.EV_QTY], "paid": row[K.EV_PAID]}
            )  # fmt: skip
        elif kind == K.E_CANCEL:
            out.append({"type": "cancel", "ts": ts, "id": int(row[K.EV_ID])})
        elif kind == K.E_AMEND:
            out.append(
                {"type": "amend_stop", "ts": ts, "sl": row[K.EV_SL],
                 "kind": K.EXIT_REASONS[int(row[K.EV_REASON])]}
            )  # fmt: skip
        elif kind == K.E_HALT:
            out.append(
                {"type": "halt", "ts": ts, "reason": "max_drawdown", "equity": row[K.EV_LIQ],
                 "peak": row[K.EV_SL]}
            )  # fmt: skip
        else:  # E_ATR
            out.append(
                {"type": "reject", "ts": ts, "reason": "atr_missing",
                 "atr": atr_keys[int(row[K.EV_REASON]) - 1]}
            )  # fmt: skip
    return out


def _trades(tr: np.ndarray) -> list[dict[str, Any]]:
    out = []
    for k, r in enumerate(tr.tolist()):
        out.append(
            {"trade_id": k + 1, "side": "long" if r[K.TR_SIDE] > 0 else "short",
             "entry_time": int(r[K.TR_ENTRY_TS]), "entry_price": r[K.TR_ENTRY_PX],
             "exit_time": int(r[K.TR_EXIT_TS]), "exit_price": r[K.TR_EXIT_PX], "qty": r[K.TR_QTY],
             "notional": r[K.TR_NOTIONAL], "exit_reason": K.EXIT_REASONS[int(r[K.TR_REASON])],
             "fees": r[K.TR_FEES], "funding": r[K.TR_FUNDING], "pnl": r[K.TR_PNL],
             "return_pct": r[K.TR_RETURN], "mae_pct": r[K.TR_MAE], "mfe_pct": r[K.TR_MFE],
             "bars_held": int(r[K.TR_BARS])}
        )  # fmt: skip
    return out


_TR_FLOATS = {
    "entry_price": K.TR_ENTRY_PX, "exit_price": K.TR_EXIT_PX, "qty": K.TR_QTY,
    "notional": K.TR_NOTIONAL, "fees": K.TR_FEES, "funding": K.TR_FUNDING, "pnl": K.TR_PNL,
    "return_pct": K.TR_RETURN, "mae_pct": K.TR_MAE, "mfe_pct": K.TR_MFE,
}  # fmt: skip


def _closes(tr: np.ndarray) -> Closes:
    """Kernel trade records → close columns (the values `_trades` puts in dicts)."""
    reasons = np.array(K.EXIT_REASONS, dtype=object)
    return Closes(
        side=np.where(tr[:, K.TR_SIDE] > 0, 1.0, -1.0),
        entry_time=tr[:, K.TR_ENTRY_TS].astype(np.int64),
        exit_time=tr[:, K.TR_EXIT_TS].astype(np.int64),
        bars_held=tr[:, K.TR_BARS].astype(np.int64),
        exit_reason=reasons[tr[:, K.TR_REASON].astype(np.int64)],
        floats={k: np.ascontiguousarray(tr[:, _TR_FLOATS[k]]) for k in FLOATS},
    )


def _fill_tags(ev: np.ndarray, block_of: list[str]) -> FillTags:
    """Kernel event records → each fill's entry flag, block and signal flag (what `_events`
    gives the fill dicts: a flip's exit (tag −2 − j) names the entry's block)."""
    kind = ev[:, K.EV_TYPE]
    rows = ev[(kind == K.E_OPEN) | (kind == K.E_CLOSE)]
    code = rows[:, K.EV_TAG].astype(np.int64)
    blocks = np.array(block_of, dtype=object)
    return FillTags(
        entry=rows[:, K.EV_TYPE] == K.E_OPEN,
        block=blocks[np.where(code >= 0, code, -2 - code)],
        signal=(rows[:, K.EV_TYPE] == K.E_CLOSE) & (rows[:, K.EV_REASON] == K.R_SIGNAL),
    )
