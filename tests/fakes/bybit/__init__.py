"""A fake Bybit v5 exchange for the live path's tests: REST and both WebSocket streams on one free
port of 127.0.0.1, deterministic and driven by the test.

    with FakeBybit() as fake:                 # its own asyncio loop on a daemon thread
        monkeypatch.setenv(...fake.env())     # TRADE_BYBIT_REST_URL / _WS_PUBLIC_URL / _WS_PRIVATE_URL
        fake.load_klines("BTCUSDT", "1", rows)
        fake.trade("BTCUSDT", 50_000.0)       # fills, triggers, pushes
        fake.positions["BTCUSDT"]["size"]

Every control method is synchronous and thread-safe (it runs on the fake's loop and waits), so it
may be called from sync tests or from inside a test's own event loop; `orders`, `positions`,
`executions`, `wallet`, `requests`, `ws_received` and `connections` return copies.

Time is `fake.clock`: real time by default; `set_time(ms)` freezes it, `set_time(ms, speed)` runs it
from ms at `speed` times real time, `advance(ms)` moves it; server time adds `clock_skew_ms`. Server
time stamps everything (`/v5/market/time`, the signature window, envelopes, orders, executions).

What it models (facts from the reference's sections 2, 3, 5, 6 and 8):
- Auth: HMAC-SHA256 over the raw query string (GET) or body bytes (POST); unknown key 10003, bad
  signature 10004 (with Bybit's `origin_string[...]` text, which holds the API key but never the
  secret), timestamp outside `server - recv_window <= ts < server + 1000` 10002. `X-Bapi-Limit*`
  headers on every private answer (a rolling 1 s count per key and path, reported, not enforced;
  the reset timestamp is "now" unless a `ratelimit` fault says otherwise).
- Market: instruments (BTCUSDT and ETHUSDT from the packaged sample's specs, `add_instrument`),
  cursor pages, an empty list for `status=PreLaunch`; klines and mark klines (newest first; start
  only → the first `limit` from start; otherwise the newest `limit` up to end; bars opening after
  server time do not exist, the still-open bar is served; 10001 for a bad interval); funding history
  (10001 with startTime alone; newest first; limit ≤ 200); tickers; server time.
- Account: UNIFIED wallet in USDT, account info (UTA 2.0), positions (one-way; a flat position is
  listed when `symbol` is given), leverage (110043 unchanged), margin mode (account-wide; unchanged
  answers the benign 110026; 110024 with a position, 110028 with open orders), position mode (110025
  unchanged), switch-isolated refused (100028, UTA 2.0), trading-stop (34040 unchanged), closed PnL.
- Orders: create (filters, 110094 min notional, 110007 margin, 110072 duplicate orderLinkId,
  110017 reduce-only with nothing to reduce; a larger reduce-only order shrinks to the position;
  positionIdx 0 only), amend, cancel (110001 unless open), cancel-all, realtime (open orders; by
  orderId/orderLinkId it finds closed ones too; openOnly=1 closed ones), history and execution list
  (7-day windows, cursors, newest first).
- Matching, driven by `trade(symbol, price)`: last and mark move; publicTrade and a tickers delta go
  out; pending Market orders fill at that price (`fill_mode="immediate"`: at the last price on
  create); Limit orders fill at their price when the trade crosses it strictly (a buy limit when the
  trade is below it: a trade exactly at the limit fills nothing, `fill()` fills at touch); position
  TP/SL trigger on the last price (a reduce-only Market order, stopOrderType TakeProfit/StopLoss,
  createType CreateByTakeProfit/CreateByStopLoss, filled at that trade); conditional orders trigger
  on triggerPrice/triggerDirection (a triggered Market fills at that trade, a Limit rests).
  `partial_fill_ratio` fills that share of what is left per trade; `fill()` fills explicitly.
- Private messages per fill, in order: execution, order, position, wallet. Every order action also
  pushes the order and, as Bybit does, the position. Fees taker 0.055%, maker 0.02%; one-way
  accounting with a weighted average entry; realised PnL and fees go to the wallet; IM = entry
  value / leverage. `funding()` books an execType=Funding execution at the mark price (longs pay a
  positive rate); `liquidate()` (BustTrade) and `adl()` (AdlTrade) close the position.
- Faults: `inject(fault, path=None, times=1)` (see faults.py; "ok" answers normally, so a list of
  faults can be laid out request by request), `reject_next_order(code)`, `maintenance(seconds)`
  (REST 10016 and WS upgrades refused with HTTP 503 until server time passes), `drop_all_ws(code)`,
  `stall_ws(seconds)`, `dup_exec`, `reorder_private` (position, order, execution, wallet),
  `delay_topic[topic]`, `drop_next(topic)`, `double_filled_on_cancel` (stays on until reset),
  `preload(...)`. Crash hooks (kills.py): `kill_on(pid, step, where)` SIGKILLs a client process
  when a request to `where` arrives, is applied or is answered, once an execution is on the wire,
  or when a stream connects; `bar_positions` holds the position at every confirmed 1m kline. On demo (`fake.demo = True`) `/v5/user/query-api` answers HTTP 404 with retCode
  10017, as Bybit's demo does for endpoints it does not support.

What it does not model: hedge mode (position mode 3 is stored, matching stays one-way), order book
depth and slippage (fills ignore the trade's size), cross-margin liquidation (nothing liquidates on
its own), PostOnly/FOK/IOC semantics for limits, trailing stops, Partial-mode TP/SL sizes, the
exchange-side TP/SL orders as separate conditional orders, risk tiers, the 24 h retention of
cancelled orders, the trade WebSocket, spot, inverse and options.
"""

from .server import FakeBybit, Request

__all__ = ["FakeBybit", "Request"]
