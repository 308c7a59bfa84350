"""IncrementalFeatures, the bar-by-bar feature state replay and live run on: after every bar each
series the Play reads (current values, offsets, structure fields fed by other features, price
built-ins) equals the batch value of that bar, and a state saved mid-stream as JSON continues
exactly where the original goes on."""

from __future__ import annotations

import json
import math

import pytest

from trade.data import synthetic_market
from trade.engine.features import IncrementalFeatures, compute_batch_features
from trade.play import validate_play_text

PLAY = """
version: "1"
name: incremental_state
symbol: BTCUSDT
timeframes: {low_tf: 1m, exec: low_tf}
account: {starting_equity: 10000, leverage: 1}
features:
  ema: {indicator: ema, params: {length: 10}}
  atr: {indicator: atr, params: {length: 14}}
  bb: {indicator: bbands, params: {length: 20, std: 2.0}}
structures:
  exec:
    - {type: swing, key: piv, params: {left: 3, right: 3}}
    - {type: fibonacci, key: fib, uses: piv, params: {levels: [0.5]}}
    - {type: zone, key: zn, uses: {swing: piv, atr: atr}, params: {width_atr: 1, zone_type: supply}}
actions:
  entry_long: [[ema, cross_above, "fib.level[0.5]"], ["ema[2]", "<", hl2], ["close[1]", ">", zn.lower]]
  exit_long: [[close, cross_below, bb.lower], ["bb.upper[3]", ">", "atr"]]
position_policy: {mode: long_only}
risk: {sizing: {model: percent_equity, value: 10}}
"""


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.fixture(scope="module")
def setup():  # type: ignore[no-untyped-def]
    compiled = validate_play_text(PLAY)
    bars = synthetic_market("volatile", 1500, 3)
    batch = compute_batch_features(compiled, {"1m": bars})
    series = [s for s in compiled.series if s.id in batch]
    return compiled, bars, batch, series


def _feed(feats: IncrementalFeatures, bars, i: int) -> None:  # type: ignore[no-untyped-def]
    feats.on_bar(
        "1m", int(bars.ts[i]), float(bars.open[i]), float(bars.high[i]), float(bars.low[i]),
        float(bars.close[i]), float(bars.volume[i]),
    )  # fmt: skip


def test_every_series_equals_the_batch_value_after_every_bar(setup) -> None:  # type: ignore[no-untyped-def]
    compiled, bars, batch, series = setup
    assert {s.offset for s in series} == {0, 1, 2, 3}
    assert {"hl2", "close", "zn.lower", "fib.level[0.5]", "bb.upper", "atr.value"} <= {
        s.id for s in series
    }
    feats = IncrementalFeatures(compiled)
    for s in series:  # nothing closed yet: nothing is known
        assert math.isnan(feats.value(s))
    valid = 0
    for i in range(len(bars)):
        _feed(feats, bars, i)
        for s in series:
            want = batch[s.id][i - s.offset] if i >= s.offset else math.nan
            assert _same(feats.value(s), float(want)), (s, i)
            valid += not math.isnan(want)
    assert valid > 0.9 * len(bars) * len(series)


def test_state_saved_mid_stream_continues_exactly(setup) -> None:  # type: ignore[no-untyped-def]
    compiled, bars, _, series = setup
    original = IncrementalFeatures(compiled)
    getters = [original.getter(s) for s in series]
    for i in range(700):
        _feed(original, bars, i)
    saved = json.loads(json.dumps(original.state(), allow_nan=False))
    resumed = IncrementalFeatures(compiled)
    resumed_getters = [resumed.getter(s) for s in series]  # bound before the restore
    resumed.restore(saved)
    for i in range(700, len(bars)):
        _feed(original, bars, i)
        _feed(resumed, bars, i)
        for s, a, b in zip(series, getters, resumed_getters, strict=True):
            assert _same(a(), b()), (s, i)
    assert resumed.bars_seen == original.bars_seen == {"1m": len(bars)}


def test_a_state_of_another_play_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    compiled, bars, _, _ = setup
    feats = IncrementalFeatures(compiled)
    _feed(feats, bars, 0)
    saved = feats.state()
    saved["objects"]["ema"]["params"] = {"length": 11}
    with pytest.raises(ValueError, match="ema: state is for another indicator or params"):
        IncrementalFeatures(compiled).restore(saved)
