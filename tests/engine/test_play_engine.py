"""PlayEngine, the one per-bar decision object replay and live drive: fed bar by bar it takes the
decisions replay takes, and a checkpoint (JSON) taken mid-stream continues exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trade.data import synthetic_market
from trade.engine.play_engine import PlayEngine
from trade.play import validate_play_text

PLAY = """
version: "1"
name: engine_object
symbol: BTCUSDT
timeframes: {low_tf: 1m, med_tf: 5m, exec: low_tf}
account: {starting_equity: 10000, leverage: 1}
features:
  fast: {indicator: ema, params: {length: 5}}
  slow: {indicator: ema, params: {length: 20}}
  trend: {indicator: ema, tf: med_tf, params: {length: 10}}
  rsi: {indicator: rsi, params: {length: 14}}
actions:
  - id: entries
    cases:
      - when: [[fast, cross_above, slow], [close, ">", trend], {holds_for: {bars: 3, expr: [rsi, ">", 40]}}]
        emit: [{action: entry_long}]
  - id: exits
    cases:
      - when: {any: [[fast, cross_below, slow], {occurred_within: {bars: 5, expr: [last_price, "<", trend]}}]}
        emit: [{action: exit_long}]
position_policy: {mode: long_only}
risk: {sizing: {model: percent_equity, value: 10}}
"""


def bars_in_close_order(n: int) -> list[tuple[str, int, list[float]]]:
    """(tf, open ms, [o, h, l, c, v]) of 1m and 5m bars, lower timeframe first on equal closes."""
    one = synthetic_market("volatile", n, 7, symbol="BTCUSDT")
    out = []
    for i in range(n):
        out.append(("1m", int(one.ts[i]), [one.open[i], one.high[i], one.low[i], one.close[i],
                                           one.volume[i]]))  # fmt: skip
        if (i + 1) % 5 == 0:
            s = slice(i - 4, i + 1)
            five = [one.open[i - 4], one.high[s].max(), one.low[s].min(), one.close[i],
                    one.volume[s].sum()]  # fmt: skip
            out.append(("5m", int(one.ts[i - 4]), five))
    return out


def run(engine: PlayEngine, stream: list[tuple[str, int, list[float]]], side: str = "flat"):  # type: ignore[no-untyped-def]
    """Feed the stream; at each 1m close evaluate with last_price = that close. Returns
    (instant, truths, decisions) per instant."""
    out = []
    for tf, ts, (o, h, lo, c, v) in stream:
        engine.feed(tf, ts, o, h, lo, c, v)
        if tf == "1m":
            t = ts + 60_000
            engine.set_instant(last_price=c)
            flat = engine.step(t)
            out.append((t, flat, engine.decisions(flat, side, False)))
    return out


def test_a_json_checkpoint_mid_stream_continues_exactly() -> None:
    compiled = validate_play_text(PLAY, "engine_object.yml")
    stream = bars_in_close_order(3000)
    cut = next(
        k
        for k, (tf, ts, _) in enumerate(stream)
        if tf == "1m" and ts >= stream[0][1] + 1777 * 60_000
    )
    whole = run(PlayEngine(compiled), stream)
    first = PlayEngine(compiled)
    head = run(first, stream[:cut])
    saved = json.loads(json.dumps(first.state()))  # a checkpoint survives JSON
    resumed = PlayEngine(compiled)
    resumed.restore(saved)
    assert resumed.last_instant == head[-1][0]
    tail = run(resumed, stream[cut:])
    assert head + tail == whole
    entries = [t for t, _, d in whole if d and d[0].kind == "entry"]
    assert len(entries) > 10  # the stream exercises crosses, windows and the 5m feature


def test_decisions_follow_the_position_side() -> None:
    compiled = validate_play_text(PLAY, "engine_object.yml")
    stream = bars_in_close_order(1500)
    flat = run(PlayEngine(compiled), stream, "flat")
    long = run(PlayEngine(compiled), stream, "long")
    assert [t for t, f, _ in flat] == [t for t, f, _ in long]
    assert {d[0].kind for _, _, d in flat if d} == {"entry"}
    assert {d[0].kind for _, _, d in long if d} == {"exit", "refused"}


def test_a_checkpoint_of_another_play_is_refused() -> None:
    compiled = validate_play_text(PLAY, "engine_object.yml")
    other = validate_play_text(PLAY.replace("name: engine_object", "name: other"), "other.yml")
    state = PlayEngine(other).state()
    with pytest.raises(
        ValueError, match=r"engine state of 'other' .* does not fit Play 'engine_object'"
    ):
        PlayEngine(compiled).restore(state)
    assert np.isnan(PlayEngine(compiled).instant[0])
