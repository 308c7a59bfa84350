"""The EMA(20)/EMA(50) cross run by peer libraries on the same bars and the same signals.

Every peer gets signals computed with TA-Lib's EMA (the oracle our EMA matches) so the comparison
is about execution: entry/exit at the next bar's open, 5.5 bps taker, no slippage, all-in at 1x.
Each function returns (trades, final_equity, seconds) with trades as (entry_ms, entry_price,
exit_ms, exit_price) for closed trades only.
"""

from __future__ import annotations

import time

import numpy as np

FEE = 0.00055
CASH = 10_000.0

Trade = tuple[int, float, int, float]


def signals(close: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Cross-up / cross-down at each bar close, only from bar `start + 1` (the first evaluated bar
    has no previous evaluation instant to cross from)."""
    import talib

    f, s = talib.EMA(close, 20), talib.EMA(close, 50)
    up = np.zeros(len(close), dtype=bool)
    dn = np.zeros(len(close), dtype=bool)
    pf, ps = f[:-1], s[:-1]
    with np.errstate(invalid="ignore"):
        up[1:] = (pf <= ps) & (f[1:] > s[1:])
        dn[1:] = (pf >= ps) & (f[1:] < s[1:])
    up[: start + 1] = False
    dn[: start + 1] = False
    return up, dn


def reference(ts, o, c, up, dn) -> tuple[list[Trade], float, float]:  # type: ignore[no-untyped-def]
    """A plain-Python loop: the independent reference the engine and the peers must equal."""
    t0 = time.perf_counter()
    cash, qty, entry = CASH, 0.0, None
    trades: list[Trade] = []
    n = len(ts)
    for i in range(n - 1):
        if qty == 0.0 and up[i]:
            px = o[i + 1]
            qty = cash / (px * (1 + FEE))
            cash -= qty * px * (1 + FEE)
            entry = (int(ts[i + 1]), float(px))
        elif qty > 0.0 and dn[i]:
            px = o[i + 1]
            cash += qty * px * (1 - FEE)
            trades.append((entry[0], entry[1], int(ts[i + 1]), float(px)))  # type: ignore[index]
            qty = 0.0
    final = cash + qty * c[-1] * (1 - FEE)
    return trades, final, time.perf_counter() - t0


def run_vectorbt(ts, o, h, lo, c, v, up, dn) -> tuple[list[Trade], float, float]:  # type: ignore[no-untyped-def]
    import pandas as pd
    import vectorbt as vbt

    idx = pd.to_datetime(ts, unit="ms")
    t0 = time.perf_counter()
    entries = pd.Series(np.roll(up, 1), index=idx)
    exits = pd.Series(np.roll(dn, 1), index=idx)
    entries.iloc[0] = exits.iloc[0] = False
    pf = vbt.Portfolio.from_signals(
        close=pd.Series(c, index=idx),
        entries=entries,
        exits=exits,
        price=pd.Series(o, index=idx),
        fees=FEE,
        init_cash=CASH,
        size=np.inf,
        freq="1min",
    )
    rec = pf.trades.values
    final = float(pf.value().iloc[-1])
    seconds = time.perf_counter() - t0
    trades = [
        (
            int(ts[r["entry_idx"]]),
            float(r["entry_price"]),
            int(ts[r["exit_idx"]]),
            float(r["exit_price"]),
        )
        for r in rec
        if r["status"] == 1
    ]
    return trades, final, seconds


def run_backtesting_py(ts, o, h, lo, c, v, up, dn) -> tuple[list[Trade], float, float]:  # type: ignore[no-untyped-def]
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    df = pd.DataFrame(
        {"Open": o, "High": h, "Low": lo, "Close": c, "Volume": v},
        index=pd.to_datetime(ts, unit="ms"),
    )
    sig_up, sig_dn = up, dn

    class Cross(Strategy):
        def init(self) -> None:
            self.i = -1

        def next(self) -> None:
            i = len(self.data) - 1
            if not self.position and sig_up[i]:
                self.buy()
            elif self.position and sig_dn[i]:
                self.position.close()

    t0 = time.perf_counter()
    bt = FractionalBacktest(
        df, Cross, cash=CASH, commission=FEE, trade_on_close=False, finalize_trades=False
    )
    stats = bt.run()
    seconds = time.perf_counter() - t0
    tr = stats["_trades"]
    trades = [
        (
            int(r.EntryTime.value // 1_000_000),
            float(r.EntryPrice),
            int(r.ExitTime.value // 1_000_000),
            float(r.ExitPrice),
        )
        for r in tr.itertuples()
    ]
    return trades, float(stats["Equity Final [$]"]), seconds


def run_backtrader(ts, o, h, lo, c, v, up, dn) -> tuple[list[Trade], float, float]:  # type: ignore[no-untyped-def]
    import backtrader as bt
    import pandas as pd

    df = pd.DataFrame(
        {"open": o, "high": h, "low": lo, "close": c, "volume": v},
        index=pd.to_datetime(ts, unit="ms"),
    )
    sig_up, sig_dn = up, dn
    out: list[Trade] = []

    class Cross(bt.Strategy):
        def __init__(self) -> None:
            self.entry: tuple[int, float] | None = None

        def next(self) -> None:
            i = len(self) - 1
            if not self.position and sig_up[i]:
                # all-in at the next open is unknown now; size on this close with a small margin
                self.buy(size=self.broker.getcash() / (self.data.close[0] * (1 + FEE)) * 0.98)
            elif self.position and sig_dn[i]:
                self.close()

        def notify_trade(self, trade) -> None:  # type: ignore[no-untyped-def]
            if trade.isclosed:
                hist_open = trade.dtopen
                out.append(
                    (
                        int(pd.Timestamp(bt.num2date(hist_open)).value // 1_000_000),
                        float(trade.price),
                        int(pd.Timestamp(bt.num2date(trade.dtclose)).value // 1_000_000),
                        float(self.data.open[0]),
                    )
                )

    t0 = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(Cross)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=FEE)
    cerebro.run()
    seconds = time.perf_counter() - t0
    return out, float(cerebro.broker.getvalue()), seconds
