"""The whole backtest loop of a market-order Play, jitted: decisions at each instant, the simulator's
per-bar code on every intrabar bar, records out.

It is a transcription of `SimulatedExchange`'s per-bar code (funding at the open, due market orders
exits first, liquidation / stop / take-profit, excursions, the drawdown limit and, at an exec close,
the trailing stop and break-even at the close) and of `decide` (partial exits included), for Plays
whose decisions do not depend on the position and that use market entries (see
`engine.fastloop.eligible`). Every number is computed with the same operations in the same order as
the Python code, so its trades, events, ledger and counters are identical to the general path (a
test runs both on every eligible example and validation Play); Python only turns the records it
returns into dicts.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types

from ..instruments import round_price, round_qty_down
from .orders import EXIT_REASONS, REJECT_REASONS  # noqa: F401 (read as K.EXIT_REASONS …)
from .scan import bisect, first_trigger, first_true

# event record columns
EV_TYPE, EV_TS, EV_ID, EV_SIDE, EV_QTY, EV_PRICE, EV_FEE, EV_LIQ, EV_SL, EV_TP = range(10)
EV_REASON, EV_PNL, EV_RATE, EV_MARK, EV_PAID, EV_TAG, EV_REDUCE, EV_PERCENT = range(10, 18)
EV_WIDTH = 18
# event types (EV_LIQ / EV_SL hold equity / peak for a halt)
(E_ORDER, E_OPEN, E_CLOSE, E_REJECT, E_SKIP, E_FUNDING, E_CANCEL, E_HALT, E_ATR, E_AMEND,
 E_REFUSE) = range(1, 12)  # fmt: skip
# exit reasons and reject reasons (EV_REASON): indexes into orders.EXIT_REASONS / REJECT_REASONS
R_SIGNAL, R_TP, R_SL, R_LIQ, R_DD, R_END, R_TRAIL = range(7)  # EXIT_REASONS
J_POS, J_NEEDS_STOP, J_QTY_STEP, J_MIN_QTY, J_MIN_NOTIONAL, J_BEYOND_LIQ, J_ATR = range(7)
# trade record columns
TR_ENTRY_TS, TR_ENTRY_PX, TR_EXIT_TS, TR_EXIT_PX, TR_QTY, TR_NOTIONAL, TR_REASON = range(7)
TR_FEES, TR_FUNDING, TR_PNL, TR_RETURN, TR_MAE, TR_MFE, TR_BARS, TR_SIDE = range(7, 15)
TR_WIDTH = 15
# level kinds (stop loss / take profit): none, percent of the fill, price distance, R multiple
L_NONE, L_PERCENT, L_DISTANCE, L_RR = range(4)
# sizing models
S_PERCENT, S_RISK, S_FIXED = range(3)
# scalar inputs (cfg) and outputs (acc)
(C_START, C_LEV, C_TAKER, C_SLIP, C_MMR, C_LIQ_FEE, C_MIN_NOTIONAL, C_DD, C_MAX_POS, C_TICK, C_STEP,
 C_MIN_QTY, C_TIGHTEN, C_OPTIMISTIC, C_EXEC_MS, C_SIZING, C_SIZE, C_SL_KIND, C_TP_KIND, C_FLIP,
 C_END_PRICE, C_TR_KIND, C_TR_ACTIVATION, C_BE_KIND, C_BE_OFFSET) = range(25)  # fmt: skip
N_CFG = 25
(A_CASH, A_PEAK, A_FUNDING, A_HALTED, A_REJECTED, A_AMBIGUOUS, A_LIQS, A_SIGNALS, A_N_EV, A_N_TR,
 A_N_LEDGER) = range(11)  # fmt: skip
MAX_PENDING = 8

# The helpers carry their argument types: called from the kernel with constants (a reason, a
# first row 0), numba would otherwise compile one copy per literal value met during inference.
_ROWS, _I, _F = types.float64[:, ::1], types.int64, types.float64
_CLOSE_ARGS = (_ROWS, _ROWS, _ROWS, _I, _I, _I, _F, _F, _F, _F, _I, _I, _F, _I, _F, _F, _F, _I, _F,
               _F, _F, _F, _I, _F)  # fmt: skip


@njit((_ROWS, _I), cache=True)
def _grow(a: np.ndarray, n: int) -> np.ndarray:
    """`a` with room for row `n` (doubled when full). Copied element by element: a slice
    assignment would pull numba's shape-mismatch error formatting into the first compile."""
    if n < a.shape[0]:
        return a
    b = np.empty((2 * a.shape[0], a.shape[1]))
    for i in range(n):
        for j in range(a.shape[1]):
            b[i, j] = a[i, j]
    return b


@njit((_ROWS, _I), cache=True)
def _event_row(ev: np.ndarray, ne: int) -> np.ndarray:
    """`ev` with row `ne` ready to fill: every column NaN until set."""
    ev = _grow(ev, ne)
    for j in range(ev.shape[1]):
        ev[ne, j] = np.nan
    return ev


@njit(cache=True)
def run_market_play(
    ts_open, ts_close, o, h, lo, c, mark, liq_low, liq_high, dd_price, exec_close,
    f_ts, f_rate, f_mark, instants, ex_long, ex_short, en_long, en_short, sl_value, tp_value,
    tr_value, be_value, atr_bad, tag_percent, cfg,
    rejections,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """Run the Play; returns (events, trades, ledger, acc). `ex_*`/`en_*`: per instant the tag
    index of the intent that exits a long / short or enters long / short (−1: none; entries
    already filtered by the position mode). `sl_value` / `tp_value`: the stop's / target's level
    value per instant (an ATR multiple applied), or one element when constant; `tr_value` /
    `be_value` the same for the trailing distance and the break-even trigger; `atr_bad`: 1/2/3/4
    when the stop's / target's / trailing's / break-even's ATR is missing there (one element:
    never); `tag_percent`: the close percent of each exit intent (by tag index).
    `rejections` (counts per REJECT_REASONS) is filled in place."""
    start, lev, taker, slip = cfg[C_START], cfg[C_LEV], cfg[C_TAKER], cfg[C_SLIP]
    mmr, liq_fee, min_notional, dd_frac = cfg[C_MMR], cfg[C_LIQ_FEE], cfg[C_MIN_NOTIONAL], cfg[C_DD]
    max_pos, tick, step, min_qty = cfg[C_MAX_POS], cfg[C_TICK], cfg[C_STEP], cfg[C_MIN_QTY]
    tighten, optimistic = cfg[C_TIGHTEN] != 0.0, cfg[C_OPTIMISTIC] != 0.0
    exec_ms = np.int64(cfg[C_EXEC_MS])
    sizing, size = int(cfg[C_SIZING]), cfg[C_SIZE]
    sl_kind, tp_kind = int(cfg[C_SL_KIND]), int(cfg[C_TP_KIND])
    allow_flip = cfg[C_FLIP] != 0.0
    tr_kind, tr_activation = int(cfg[C_TR_KIND]), cfg[C_TR_ACTIVATION]
    be_kind, be_offset = int(cfg[C_BE_KIND]), cfg[C_BE_OFFSET]
    moves = tr_kind != L_NONE or be_kind != L_NONE  # the stop moves at exec closes
    nbars, ninst, nfund = len(ts_open), len(instants), len(f_ts)

    ev = np.empty((1024, EV_WIDTH))
    tr = np.empty((256, TR_WIDTH))
    led = np.empty((512, 4))
    ne = nt = nl = 0
    cash, peak, funding_total = start, start, 0.0
    halted = False
    rejected = ambiguous = liqs = signals = 0
    next_id, fi, k = 1, 0, 0
    last_close = np.nan
    # the position
    p_open = False
    p_sign = p_qty = p_entry = p_fee = p_liq = p_sl = p_tp = p_fund = p_best = p_worst = 0.0
    p_trail = p_be = np.nan  # trailing distance, break-even trigger distance
    p_stop_reason = R_SL  # R_TRAIL once the trailing stop moved it
    p_entry_ts = np.int64(0)
    p_tag = -1
    # pending market orders, in submit order
    q_n = 0
    q_id = np.zeros(MAX_PENDING, np.int64)
    q_ts = np.zeros(MAX_PENDING, np.int64)
    q_buy = np.zeros(MAX_PENDING, np.bool_)
    q_reduce = np.zeros(MAX_PENDING, np.bool_)
    q_tag = np.zeros(MAX_PENDING, np.int64)
    q_sl = np.zeros(MAX_PENDING)
    q_tp = np.zeros(MAX_PENDING)
    q_tr = np.zeros(MAX_PENDING)
    q_be = np.zeros(MAX_PENDING)
    q_pct = np.zeros(MAX_PENDING)  # close percent of a reduce-only order
    # the decisions of one instant (at most an exit and an entry)
    d_kind = np.zeros(2, np.int64)  # 1 exit, 2 entry, 3 entry refused (a position is open)
    d_buy = np.zeros(2, np.bool_)
    d_tag = np.zeros(2, np.int64)

    i = 0
    while i <= ninst:
        if not p_open and q_n == 0:
            # flat with nothing pending: nothing happens until an instant with an entry, so skip
            # to it (funding is not charged when flat; cash and peak do not move)
            i2 = i
            while i2 < ninst and en_long[i2] < 0 and en_short[i2] < 0:
                i2 += 1
            if i2 > i:
                t2 = instants[i2] if i2 < ninst else instants[ninst - 1]
                k0 = k
                while k < nbars and ts_close[k] <= t2:
                    k += 1
                if k > k0:
                    while fi < nfund and f_ts[fi] <= ts_open[k - 1]:
                        fi += 1
                    last_close = c[k - 1]
                i = i2
        elif p_open and q_n == 0:
            # positioned with nothing pending: the next instant that can decide is one with an
            # exit for this side or an entry (a flip, or refused and counted); until then only a
            # stop, target, liquidation, the drawdown limit or a funding settlement can act, so
            # scan for the first bar where one can (the simulator's fast path) and process that
            # bar, at its instant, as usual
            long = p_sign > 0
            ex_side = ex_long if long else ex_short
            i2 = i
            while i2 < ninst and ex_side[i2] < 0 and en_long[i2] < 0 and en_short[i2] < 0:
                i2 += 1
            t2 = instants[i2] if i2 < ninst else instants[ninst - 1]
            end = k
            while end < nbars and ts_close[end] <= t2:
                end += 1
            stop = end
            if fi < nfund:
                fk = bisect(ts_open, f_ts[fi], False)
                if fk < stop:
                    stop = fk
            if moves:  # the exec close where the stop may move needs the per-bar code
                stop = first_true(exec_close, k, stop)
            if stop > k:
                j, peak = first_trigger(
                    h, lo, dd_price, liq_low, liq_high, k, stop, long, p_sl, p_tp, p_liq, p_qty,
                    p_entry, cash, peak, dd_frac,
                )  # fmt: skip
                for m in range(k, j):  # excursions over the bars passed
                    p_best, p_worst = _excursion(long, h[m], lo[m], p_best, p_worst)
                if j > k:
                    last_close = c[j - 1]
                    k = j
            if k < end:  # that bar is processed at the instant it closes by
                i3 = bisect(instants, ts_close[k], False)
                i = i3 if i3 < i2 else i2
            else:
                i = i2
        t_inst = instants[i] if i < ninst else instants[ninst - 1]
        # ---------------------------------------------------------------- bars closed by t
        while k < nbars and ts_close[k] <= t_inst:
            t_open = ts_open[k]
            ok = o[k]
            # funding settled at or before the open, on the position held just before it
            while fi < nfund and f_ts[fi] <= t_open:
                ft, rate = f_ts[fi], f_rate[fi]
                fm = f_mark[fi]
                fi += 1
                if not p_open:
                    continue
                if math.isnan(fm):
                    fm = last_close
                amount = p_qty * fm * rate * p_sign
                p_fund += amount
                cash -= amount
                funding_total += amount
                ev = _event_row(ev, ne)
                ev[ne, EV_TYPE], ev[ne, EV_TS], ev[ne, EV_RATE] = E_FUNDING, ft, rate
                ev[ne, EV_MARK], ev[ne, EV_QTY], ev[ne, EV_PAID] = fm, p_qty, amount
                ne += 1
                led = _grow(led, nl)
                led[nl, 0], led[nl, 1], led[nl, 2], led[nl, 3] = ft, cash, p_qty * p_sign, p_entry
                nl += 1
            # due market orders at the open: reduce-only first, then entries (each in submit order)
            for want_reduce in (True, False):
                j = 0
                while j < q_n:
                    if q_ts[j] > t_open or q_reduce[j] != want_reduce:
                        j += 1
                        continue
                    oid, buy, tag, o_sl, o_tp = q_id[j], q_buy[j], q_tag[j], q_sl[j], q_tp[j]
                    o_tr, o_be, o_pct = q_tr[j], q_be[j], q_pct[j]
                    for m in range(j, q_n - 1):  # remove it
                        q_id[m], q_ts[m], q_buy[m] = q_id[m + 1], q_ts[m + 1], q_buy[m + 1]
                        q_reduce[m], q_tag[m], q_sl[m] = q_reduce[m + 1], q_tag[m + 1], q_sl[m + 1]
                        q_tp[m], q_tr[m], q_be[m] = q_tp[m + 1], q_tr[m + 1], q_be[m + 1]
                        q_pct[m] = q_pct[m + 1]
                    q_n -= 1
                    price = ok * (1 + slip) if buy else ok * (1 - slip)
                    if want_reduce:
                        if not p_open or (p_sign > 0) == buy:
                            ev = _event_row(ev, ne)
                            ev[ne, EV_TYPE], ev[ne, EV_TS], ev[ne, EV_ID] = E_SKIP, t_open, oid
                            ne += 1
                            continue
                        share = o_pct / 100.0
                        exit_qty = p_qty if share >= 1.0 else round_qty_down(p_qty * share, step)
                        if exit_qty <= 0:  # reduce-only: counted, not a rejected entry
                            rejections[J_QTY_STEP] += 1
                            ev, ne = _reject_event(ev, ne, t_open, oid, J_QTY_STEP, buy)
                            continue
                        exit_px, exit_ts, exit_rate, reason, exit_tag = (
                            price, t_open, taker, R_SIGNAL, tag
                        )  # fmt: skip
                    else:
                        # ------------------------------------------------ open at the fill
                        reject = -1
                        sign = 1.0 if buy else -1.0
                        sl_dist = np.nan
                        if sl_kind == L_PERCENT:
                            sl_dist = price * o_sl / 100.0
                        elif sl_kind == L_DISTANCE:
                            sl_dist = o_sl
                        notional = 0.0
                        equity = cash
                        if p_open:
                            reject = J_POS
                        elif sizing == S_PERCENT:
                            notional = equity * size / 100.0 * lev
                        elif sizing == S_FIXED:
                            notional = size
                        elif math.isnan(sl_dist) or sl_dist == 0.0:
                            reject = J_NEEDS_STOP
                        else:
                            notional = equity * size / 100.0 / (sl_dist / price)
                        qty = 0.0
                        liq = 0.0
                        sl = tp = np.nan
                        if reject < 0:
                            cap = equity * lev * max_pos / 100.0
                            if cap < notional:
                                notional = cap
                            cap = equity / (1.0 / lev + taker)
                            if cap < notional:
                                notional = cap
                            qty = round_qty_down(notional / price, step)
                            if qty <= 0:
                                reject = J_QTY_STEP
                            elif qty < min_qty:
                                reject = J_MIN_QTY
                            elif qty * price < min_notional:
                                reject = J_MIN_NOTIONAL
                        if reject < 0:
                            if buy:
                                liq = price * (1 - 1 / lev + mmr)
                            else:
                                liq = price * (1 + 1 / lev - mmr)
                            if sl_kind != L_NONE:
                                sl = round_price(price - sign * sl_dist, tick)
                                if (sl - liq) * sign <= 0:
                                    if not tighten:
                                        reject = J_BEYOND_LIQ
                                    else:
                                        sl = round_price(liq + sign * tick, tick)
                                        if (sl - liq) * sign <= 0:
                                            sl = round_price(sl + sign * tick, tick)
                                        sl_dist = abs(price - sl)
                        if reject >= 0:
                            rejected += 1
                            rejections[reject] += 1
                            ev, ne = _reject_event(ev, ne, t_open, oid, reject, buy)
                            continue
                        if tp_kind == L_PERCENT:
                            tp = round_price(price + sign * (price * o_tp / 100.0), tick)
                        elif tp_kind == L_DISTANCE:
                            tp = round_price(price + sign * o_tp, tick)
                        elif tp_kind == L_RR:
                            tp = round_price(price + sign * (o_tp * sl_dist), tick)
                        fee = qty * price * taker
                        cash -= fee
                        p_open, p_sign, p_qty, p_entry, p_entry_ts = True, sign, qty, price, t_open
                        p_fee, p_liq, p_sl, p_tp, p_fund, p_tag = fee, liq, sl, tp, 0.0, tag
                        p_trail = _distance(tr_kind, o_tr, price, sl_dist)
                        p_be = _distance(be_kind, o_be, price, sl_dist)
                        p_stop_reason = R_SL
                        p_best = p_worst = price
                        ev = _event_row(ev, ne)
                        ev[ne, EV_TYPE], ev[ne, EV_TS], ev[ne, EV_ID] = E_OPEN, t_open, oid
                        ev[ne, EV_SIDE], ev[ne, EV_QTY], ev[ne, EV_PRICE] = sign, qty, price
                        ev[ne, EV_FEE], ev[ne, EV_LIQ], ev[ne, EV_SL] = fee, liq, sl
                        ev[ne, EV_TP], ev[ne, EV_TAG] = tp, tag
                        ne += 1
                        led = _grow(led, nl)
                        led[nl, 0], led[nl, 1], led[nl, 2], led[nl, 3] = (
                            t_open,
                            cash,
                            qty * sign,
                            price,
                        )
                        nl += 1
                        continue
                    # ---------------------------------------------------- close (signal)
                    ne, nt, nl, ev, tr, led, cash, peak, flat, p_qty, p_fee, p_fund = _close(
                        ev, tr, led, ne, nt, nl, cash, peak, exit_qty, exit_px, exit_ts, reason,
                        exit_rate, exit_tag, p_sign, p_qty, p_entry, p_entry_ts, p_fee, p_fund,
                        p_best, p_worst, exec_ms, step,
                    )  # fmt: skip
                    p_open = not flat
            # liquidation / stop / take-profit against this bar (the fill's own bar included)
            if p_open and not halted:
                hk, lk = h[k], lo[k]
                long = p_sign > 0
                exit_slip = 1.0 - slip if long else 1.0 + slip
                reason = -1
                px = 0.0
                rate_ = taker
                if math.isnan(mark[k]) and (ok - p_liq) * p_sign <= 0:
                    reason, px, rate_ = R_LIQ, p_liq, liq_fee
                elif p_sl == p_sl and (ok - p_sl) * p_sign <= 0:
                    reason, px = p_stop_reason, ok * exit_slip
                elif p_tp == p_tp and (ok - p_tp) * p_sign >= 0:
                    reason, px = R_TP, ok * exit_slip
                else:
                    hit_sl = p_sl == p_sl and ((long and lk <= p_sl) or (not long and hk >= p_sl))
                    hit_tp = p_tp == p_tp and ((long and hk >= p_tp) or (not long and lk <= p_tp))
                    if hit_sl and hit_tp:
                        ambiguous += 1
                        if optimistic:
                            hit_sl = False
                        else:
                            hit_tp = False
                    if hit_sl:
                        reason, px = p_stop_reason, p_sl * exit_slip
                    elif (long and liq_low[k] <= p_liq) or (not long and liq_high[k] >= p_liq):
                        reason, px, rate_ = R_LIQ, p_liq, liq_fee
                    elif hit_tp:
                        reason, px = R_TP, p_tp * exit_slip
                if reason >= 0:
                    if reason == R_LIQ:
                        liqs += 1
                    ne, nt, nl, ev, tr, led, cash, peak = _close(
                        ev, tr, led, ne, nt, nl, cash, peak, p_qty, px, t_open, reason, rate_,
                        p_tag, p_sign, p_qty, p_entry, p_entry_ts, p_fee, p_fund, p_best, p_worst,
                        exec_ms, step,
                    )[:8]  # fmt: skip
                    p_open = False
            if p_open:
                p_best, p_worst = _excursion(p_sign > 0, h[k], lo[k], p_best, p_worst)
                t_close = ts_close[k]
                eq = cash + p_qty * (dd_price[k] - p_entry) * p_sign
                if dd_frac > 0 and eq <= peak * (1 - dd_frac):
                    ck = c[k]
                    px = ck * (1 - slip) if p_sign > 0 else ck * (1 + slip)
                    ne, nt, nl, ev, tr, led, cash, peak = _close(
                        ev, tr, led, ne, nt, nl, cash, peak, p_qty, px, t_close, R_DD, taker,
                        p_tag, p_sign, p_qty, p_entry, p_entry_ts, p_fee, p_fund, p_best, p_worst,
                        exec_ms, step,
                    )[:8]  # fmt: skip
                    p_open = False
                    ne, ev, q_n = _halt(ev, ne, t_close, eq, peak, q_id, q_n)
                    halted = True
                elif eq > peak:
                    peak = eq
                if p_open and moves and exec_close[k]:
                    # SimulatedExchange._move_stop: trail / break-even from the best price seen
                    new, new_reason = p_sl, p_stop_reason
                    if be_kind != L_NONE and (p_best - p_entry) * p_sign >= p_be:
                        be = round_price(p_entry * (1 + p_sign * be_offset / 100.0), tick)
                        if math.isnan(new) or (be - new) * p_sign > 0:
                            new = be
                    if tr_kind != L_NONE:
                        moved = (p_best - p_entry) * p_sign / p_entry * 100.0
                        if moved >= tr_activation:
                            trail = round_price(p_best - p_sign * p_trail, tick)
                            if math.isnan(new) or (trail - new) * p_sign > 0:
                                new, new_reason = trail, R_TRAIL
                    if new == new and (math.isnan(p_sl) or new != p_sl):
                        p_sl, p_stop_reason = new, new_reason
                        ev = _event_row(ev, ne)
                        ev[ne, EV_TYPE], ev[ne, EV_TS], ev[ne, EV_SL] = E_AMEND, t_close, new
                        ev[ne, EV_REASON] = new_reason
                        ne += 1
            elif dd_frac > 0 and not halted and cash <= peak * (1 - dd_frac):
                ne, ev, q_n = _halt(ev, ne, ts_close[k], cash, peak, q_id, q_n)
                halted = True
            last_close = c[k]
            k += 1
        if i == ninst or halted:  # halted: flat for good, nothing pending, no more decisions
            break
        # ---------------------------------------------------------------- decide at instant i
        side = 0.0 if not p_open else p_sign
        pending_entry = False
        for j in range(q_n):
            if not q_reduce[j]:
                pending_entry = True
        n_dec = 0
        side_after = side
        if side != 0.0:
            src = ex_long[i] if side > 0 else ex_short[i]
            if src >= 0:
                d_kind[0], d_buy[0], d_tag[0] = 1, side < 0, src
                n_dec = 1
                if tag_percent[src] >= 100.0:
                    side_after = 0.0
        if not pending_entry and (en_long[i] >= 0) != (en_short[i] >= 0):
            want = 1.0 if en_long[i] >= 0 else -1.0
            src = en_long[i] if want > 0 else en_short[i]
            if side_after == 0.0:
                d_kind[n_dec], d_buy[n_dec], d_tag[n_dec] = 2, want > 0, src
                n_dec += 1
            elif side_after != want and allow_flip:
                # the flip's exit carries the entry's block and {"flip": true}: tag −2 − src
                d_kind[0], d_buy[0], d_tag[0] = 1, side_after < 0, -2 - src
                d_kind[1], d_buy[1], d_tag[1] = 2, want > 0, src
                n_dec = 2
            else:  # a position stays open: the entry is refused and counted
                d_kind[n_dec], d_buy[n_dec], d_tag[n_dec] = 3, want > 0, src
                n_dec += 1
        for d in range(n_dec):
            signals += 1
            if d_kind[d] == 3:
                rejected += 1
                rejections[J_POS] += 1
                ev = _event_row(ev, ne)
                ev[ne, EV_TYPE], ev[ne, EV_TS], ev[ne, EV_REASON] = E_REFUSE, t_inst, J_POS
                ev[ne, EV_SIDE], ev[ne, EV_TAG] = 1.0 if d_buy[d] else -1.0, d_tag[d]
                ne += 1
                continue
            bad = atr_bad[i if len(atr_bad) > 1 else 0]
            if d_kind[d] == 2 and bad != 0:
                rejected += 1
                rejections[J_ATR] += 1
                ev = _event_row(ev, ne)
                ev[ne, EV_TYPE], ev[ne, EV_TS], ev[ne, EV_REASON] = E_ATR, t_inst, bad
                ne += 1
                continue
            if q_n == MAX_PENDING:  # orders fill by the next instant; more would be a bug here
                raise ValueError("run_market_play: too many pending orders")
            q_id[q_n], q_ts[q_n], q_buy[q_n] = next_id, t_inst, d_buy[d]
            q_reduce[q_n], q_tag[q_n] = d_kind[d] == 1, d_tag[d]
            q_sl[q_n] = sl_value[i if len(sl_value) > 1 else 0]
            q_tp[q_n] = tp_value[i if len(tp_value) > 1 else 0]
            q_tr[q_n] = tr_value[i if len(tr_value) > 1 else 0]
            q_be[q_n] = be_value[i if len(be_value) > 1 else 0]
            # an exit's percent (a flip's exit, tag −2 − src, closes all)
            q_pct[q_n] = tag_percent[d_tag[d]] if d_tag[d] >= 0 else 100.0
            q_n += 1
            ev = _event_row(ev, ne)
            ev[ne, EV_TYPE], ev[ne, EV_TS], ev[ne, EV_ID] = E_ORDER, t_inst, next_id
            ev[ne, EV_SIDE], ev[ne, EV_TAG] = 1.0 if d_buy[d] else -1.0, d_tag[d]
            ev[ne, EV_REDUCE] = 1.0 if d_kind[d] == 1 else 0.0
            ev[ne, EV_PERCENT] = q_pct[q_n - 1]
            ne += 1
            next_id += 1
        i += 1

    # ---------------------------------------------------------------- end of data
    t_end = instants[ninst - 1]
    for j in range(q_n):
        ev = _event_row(ev, ne)
        ev[ne, EV_TYPE], ev[ne, EV_TS], ev[ne, EV_ID] = E_CANCEL, t_end, q_id[j]
        ne += 1
    if p_open:
        ne, nt, nl, ev, tr, led, cash, peak = _close(
            ev, tr, led, ne, nt, nl, cash, peak, p_qty, cfg[C_END_PRICE], t_end, R_END, taker,
            p_tag, p_sign, p_qty, p_entry, p_entry_ts, p_fee, p_fund, p_best, p_worst, exec_ms, step,
        )[:8]  # fmt: skip
    acc = np.zeros(11)
    acc[A_CASH], acc[A_PEAK], acc[A_FUNDING], acc[A_HALTED] = cash, peak, funding_total, halted
    acc[A_REJECTED], acc[A_AMBIGUOUS], acc[A_LIQS], acc[A_SIGNALS] = (
        rejected, ambiguous, liqs, signals
    )  # fmt: skip
    acc[A_N_EV], acc[A_N_TR], acc[A_N_LEDGER] = ne, nt, nl
    return ev[:ne], tr[:nt], led[:nl], acc


@njit(cache=True, inline="always")
def _reject_event(ev, ne, t, oid, reason, buy):  # type: ignore[no-untyped-def]
    """Append a refused order's event (SimulatedExchange._reject)."""
    ev = _event_row(ev, ne)
    ev[ne, EV_TYPE], ev[ne, EV_TS], ev[ne, EV_ID] = E_REJECT, t, oid
    ev[ne, EV_REASON], ev[ne, EV_SIDE] = reason, 1.0 if buy else -1.0
    return ev, ne + 1


@njit(cache=True, inline="always")
def _distance(kind, value, fill, sl_dist):  # type: ignore[no-untyped-def]
    """orders.Level.distance for a trailing distance / break-even trigger (NaN when absent)."""
    if kind == L_PERCENT:
        return fill * value / 100.0
    if kind == L_DISTANCE:
        return value
    if kind == L_RR:
        return value * sl_dist
    return np.nan


@njit(cache=True, inline="always")
def _excursion(long, high, low, best, worst):  # type: ignore[no-untyped-def]
    """Best / worst price seen, updated with one bar (SimulatedExchange._excursions)."""
    if long:
        return (high if high > best else best), (low if low < worst else worst)
    return (low if low < best else best), (high if high > worst else worst)


@njit(_CLOSE_ARGS, cache=True)
def _close(
    ev, tr, led, ne, nt, nl, cash, peak, qty, price, t, reason, fee_rate, tag, p_sign, p_qty,
    p_entry, p_entry_ts, p_fee, p_fund, p_best, p_worst, exec_ms, step,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """Close `qty` of the position at `price` (SimulatedExchange._close); also returns whether
    that left it flat and the remaining qty, entry fee and funding."""
    share = qty / p_qty
    entry_fee = p_fee * share
    funding = p_fund * share
    exit_fee = qty * price * fee_rate
    gross = (price - p_entry) * qty * p_sign
    cash += gross - exit_fee
    pnl = gross - entry_fee - exit_fee - funding
    notional = qty * p_entry
    ref = p_entry
    if p_sign > 0:
        worst = price if price < p_worst else p_worst
        best = price if price > p_best else p_best
        mae = (worst / ref - 1) * 100
        mfe = (best / ref - 1) * 100
    else:
        worst = price if price > p_worst else p_worst
        best = price if price < p_best else p_best
        mae = (1 - worst / ref) * 100
        mfe = (1 - best / ref) * 100
    tr = _grow(tr, nt)
    tr[nt, TR_ENTRY_TS], tr[nt, TR_ENTRY_PX], tr[nt, TR_EXIT_TS] = p_entry_ts, p_entry, t
    tr[nt, TR_EXIT_PX], tr[nt, TR_QTY], tr[nt, TR_NOTIONAL] = price, qty, notional
    tr[nt, TR_REASON], tr[nt, TR_FEES], tr[nt, TR_FUNDING] = reason, entry_fee + exit_fee, funding
    tr[nt, TR_PNL], tr[nt, TR_RETURN] = pnl, pnl / notional * 100.0
    tr[nt, TR_MAE], tr[nt, TR_MFE], tr[nt, TR_SIDE] = mae, mfe, p_sign
    tr[nt, TR_BARS] = (t - p_entry_ts) // exec_ms
    nt += 1
    ev = _event_row(ev, ne)
    ev[ne, EV_TYPE], ev[ne, EV_TS], ev[ne, EV_SIDE] = E_CLOSE, t, -p_sign
    ev[ne, EV_QTY], ev[ne, EV_PRICE], ev[ne, EV_FEE] = qty, price, exit_fee
    ev[ne, EV_REASON], ev[ne, EV_PNL], ev[ne, EV_TAG] = reason, pnl, tag
    ne += 1
    flat = share >= 1.0 - 1e-12
    led = _grow(led, nl)
    if flat:
        rest_qty = rest_fee = rest_fund = 0.0
        if cash > peak:
            peak = cash
        led[nl, 0], led[nl, 1], led[nl, 2], led[nl, 3] = t, cash, 0.0, 0.0
    else:
        rest = p_qty - qty
        rest_qty = round_qty_down(rest, step) if rest > 0 else 0.0
        rest_fee, rest_fund = p_fee - entry_fee, p_fund - funding
        led[nl, 0], led[nl, 1], led[nl, 2], led[nl, 3] = t, cash, rest_qty * p_sign, p_entry
    nl += 1
    return ne, nt, nl, ev, tr, led, cash, peak, flat, rest_qty, rest_fee, rest_fund


@njit((_ROWS, _I, _I, _F, _F, types.int64[::1], _I), cache=True)
def _halt(ev, ne, t, equity, peak, q_id, q_n):  # type: ignore[no-untyped-def]
    """The drawdown limit was breached: cancel what is pending, record the halt."""
    for j in range(q_n):
        ev = _event_row(ev, ne)
        ev[ne, EV_TYPE], ev[ne, EV_TS], ev[ne, EV_ID] = E_CANCEL, t, q_id[j]
        ne += 1
    ev = _event_row(ev, ne)
    ev[ne, EV_TYPE], ev[ne, EV_TS], ev[ne, EV_LIQ], ev[ne, EV_SL] = E_HALT, t, equity, peak
    ne += 1
    return ne, ev, 0
