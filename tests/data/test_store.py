"""MarketStore: window semantics, the resample source, the bundled sample, status; gap helpers;
synthetic pattern shapes."""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from trade.cli.main import run
from trade.data import (
    PATTERNS,
    MarketStore,
    find_gaps,
    missing_ranges,
    resample,
    synthetic_market,
)
from trade.data.bars import Bars

H, M, DAY = 3_600_000, 60_000, 86_400_000
START = 1_735_689_600_000  # 2025-01-01 00:00 UTC, a Wednesday


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with MarketStore(tmp_path / "nested" / "m.duckdb") as s:
        yield s


def assert_same(a: Bars, b: Bars) -> None:
    assert a.timeframe == b.timeframe
    for col in ("ts", "open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    np.testing.assert_allclose(a.volume, b.volume, rtol=1e-12)  # summation order may differ


def test_bars_for_a_resampled_tf_has_the_window_semantics_of_stored_bars(store: MarketStore):
    minute = synthetic_market("trend_up", 3 * 1440, 1)
    store.write_ohlcv(minute)
    got = store.bars_for("SYNTH", "1h", START + 90 * M, START + 10 * H + 30 * M)
    # open times in [01:30, 10:30): 02:00 … 10:00; the 10:00 bar is whole, as a stored one would be
    assert got.ts.tolist() == [START + k * H for k in range(2, 11)]
    assert_same(got, resample(minute, "1h").slice(2, 11))
    assert_same(store.bars_for("SYNTH", "1m", START, START + H), minute.slice(0, 60))


def test_weekly_bars_from_the_store_open_on_monday(store: MarketStore) -> None:
    minute = synthetic_market("range", 30 * 1440, 2)
    store.write_ohlcv(minute)
    weeks = store.bars_for("SYNTH", "W", None, None)
    days = [dt.datetime.fromtimestamp(t / 1000, tz=dt.UTC) for t in weeks.ts]
    # Wed 1 Jan → Fri 31 Jan: whole weeks start 6, 13, 20 Jan; the week of 27 Jan is partial
    assert [d.strftime("%a %H:%M") for d in days] == ["Mon 00:00"] * 3
    assert days[0].date() == dt.date(2025, 1, 6)
    assert_same(weeks, resample(minute, "W"))


def test_the_resample_source_is_the_one_covering_most_of_the_window(store: MarketStore) -> None:
    minute = synthetic_market("volatile", 10 * 1440, 3)
    store.write_ohlcv(resample(minute, "15m"))  # ten days of 15m
    store.write_ohlcv(minute.slice(8 * 1440, 10 * 1440))  # the last two days of 1m
    hourly = store.bars_for("SYNTH", "1h", None, None)
    assert len(hourly) == 240
    assert_same(hourly, resample(minute, "1h"))
    store.write_ohlcv(resample(minute, "1h").slice(0, 24))  # one stored day loses to 15m
    assert len(store.bars_for("SYNTH", "1h", None, None)) == 240


def test_load_bars_funding_mark_and_span(store: MarketStore) -> None:
    minute = synthetic_market("chop", 600, 4, symbol="ABCUSDT")
    store.write_ohlcv(minute)
    assert store.span("ABCUSDT", "1m") == (START, START + 599 * M)
    assert store.span("ABCUSDT", "5m") is None
    assert store.symbols() == ["ABCUSDT"]
    got = store.load_bars("ABCUSDT", "1m", START + 10 * M, START + 20 * M)
    assert got.ts.tolist() == [START + k * M for k in range(10, 20)]
    assert got.ts.dtype == np.int64 and got.close.dtype == np.float64
    store.write_funding("ABCUSDT", np.array([START, START + 8 * H]), np.array([1e-4, -2e-4]))
    f_ts, f_rate = store.load_funding("ABCUSDT", START + 1, None)
    assert f_ts.tolist() == [START + 8 * H] and f_rate.tolist() == [-2e-4]
    assert store.load_mark("ABCUSDT", None, None) is None
    store.write_mark(resample(minute, "1h"))
    mark = store.load_mark("ABCUSDT", START, START + 5 * H)
    assert mark is not None and mark.timeframe == "1h" and len(mark) == 5
    assert mark.volume.tolist() == [0.0] * 5
    # 1m marks for the first 10 minutes only: the finest series that covers the window is chosen
    store.write_mark(minute.window(START, START + 10 * M))
    assert store.load_mark("ABCUSDT", START, START + 5 * H).timeframe == "1h"  # type: ignore[union-attr]
    got = store.load_mark("ABCUSDT", START - H, START + 10 * M, cover_from=START)
    assert got is not None and got.timeframe == "1m" and len(got) == 10
    assert store.instrument("ABCUSDT") is None


def test_the_sample_loads_once_and_never_merges_with_the_users_series(store: MarketStore) -> None:
    first = 1_748_538_300_000  # 2025-05-29 17:05, the sample's first BTCUSDT minute
    mine = Bars.from_arrays("BTCUSDT", "1m", [first], [1.0], [2.0], [0.5], [1.5], [7.0])
    store.write_ohlcv(mine)
    assert store.ensure_sample() is True
    assert store.ensure_sample() is False
    got = store.load_bars("BTCUSDT", "1m", None, None)  # the user's series, not filled in
    assert got.ts.tolist() == [first] and (got.close[0], got.volume[0]) == (1.5, 7.0)
    assert store.series_source("ohlcv", "BTCUSDT", "1m") == "import"
    assert store.series_source("ohlcv", "BTCUSDT", "15m") == "sample"
    assert len(store.load_bars("ETHUSDT", "1m", None, None)) == 44_612
    # a user write into a sample series replaces it whole
    eth = Bars.from_arrays("ETHUSDT", "1m", [first, first + 2 * M], *[[2.0, 2.0]] * 4, [1.0, 1.0])
    store.write_ohlcv(eth, source="bybit")
    assert store.load_bars("ETHUSDT", "1m", None, None).ts.tolist() == [first, first + 2 * M]
    assert store.series_source("ohlcv", "ETHUSDT", "1m") == "bybit"
    assert store.user_times("ohlcv", "ETHUSDT", "15m", None, None).tolist() == []
    spec = store.instrument("ETHUSDT")
    assert spec is not None
    assert (spec.tick_size, spec.qty_step, spec.min_qty, spec.min_notional) == (0.01, 0.01, 0.01, 5)
    assert (spec.max_leverage, spec.maintenance_margin_rate, spec.funding_interval_hours) == (
        100,
        0.005,
        8,
    )


def test_the_sample_covers_the_minute_month_with_half_a_year_of_warmup(store: MarketStore):
    store.ensure_sample()
    for sym in ("BTCUSDT", "ETHUSDT"):
        minute = store.span(sym, "1m")
        assert minute is not None
        for tf in ("15m", "1h", "4h", "D"):
            span = store.span(sym, tf)
            assert span is not None and span[0] <= minute[0] - 182 * DAY, (sym, tf)
            assert span[1] >= minute[1], (sym, tf)
            assert (
                missing_ranges(store.stored_times("ohlcv", sym, tf, None, None), tf, None, None)
                == []
            )
        f_ts, _ = store.load_funding(sym, minute[0], minute[1])
        assert len(f_ts) == 93 and np.all(np.diff(f_ts) == 8 * H)
        mark = store.load_mark(sym, minute[0], minute[1])
        assert mark is not None and mark.ts[0] <= minute[0] + H and mark.ts[-1] >= minute[1] - H
    files = list((resources.files("trade") / "sample").iterdir())
    assert sum(f.stat().st_size for f in files) <= 10 * 1024 * 1024  # type: ignore[attr-defined]


def test_status_json_reports_span_rows_gaps_and_missing(
    tmp_path: Path, market_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "m.duckdb")
    gapped = market_dir / "bybit_BTCUSDT_1m_gaps.csv.gz"
    args = ["--db", db, "data", "import", str(gapped), "--symbol", "XBTUSDT", "--tf", "1m"]
    assert run(args) == 0
    capsys.readouterr()
    assert run(["--db", db, "data", "status", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r for r in rows if r["symbol"] == "XBTUSDT"] == [
        {
            "symbol": "XBTUSDT",
            "kind": "ohlcv",
            "timeframe": "1m",
            "first": 1_748_538_300_000,
            "last": 1_751_130_180_000,
            "source": "bybit",
            "rows": 43_157,
            "gaps": 42,  # 42 one-minute holes
            "missing": 42,
        }
    ]
    btc = [
        (r["kind"], r["timeframe"], r["source"], r["gaps"])
        for r in rows
        if r["symbol"] == "BTCUSDT"
    ]
    assert btc == [  # the bundled sample, loaded on first use
        ("ohlcv", "1m", "sample", 0),
        ("ohlcv", "15m", "sample", 0),
        ("ohlcv", "1h", "sample", 0),
        ("ohlcv", "4h", "sample", 0),
        ("ohlcv", "D", "sample", 0),
        ("mark", "1h", "sample", 0),
        ("funding", "", "sample", None),
    ]


@pytest.mark.parametrize("sample_first", [False, True])
def test_an_import_with_42_holes_shows_42_gaps_beside_the_sample(
    sample_first: bool, tmp_path: Path, market_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sample holds the same BTCUSDT minutes without holes; it must not fill the import's,
    whether it was loaded before the import or after."""
    db = str(tmp_path / "m.duckdb")
    if sample_first:
        assert run(["--db", db, "data", "status"]) == 0
    gapped = market_dir / "bybit_BTCUSDT_1m_gaps.csv.gz"
    args = ["--db", db, "data", "import", str(gapped), "--symbol", "BTCUSDT", "--tf", "1m"]
    assert run(args) == 0
    capsys.readouterr()
    assert run(["--db", db, "data", "status", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    minute = [r for r in rows if r["symbol"] == "BTCUSDT" and r["timeframe"] == "1m"]
    assert [(r["source"], r["rows"], r["gaps"], r["missing"]) for r in minute] == [
        ("bybit", 43_157, 42, 42)
    ]
    assert run(["--db", db, "data", "gaps", "--symbol", "BTCUSDT", "--tf", "1m"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "42 gap(s), 42 missing bar(s)"


def test_gap_helpers_are_exact() -> None:
    ts = np.array([0, 60_000, 240_000, 300_000, 420_000], dtype=np.int64)
    assert find_gaps(ts, "1m") == [(120_000, 180_000), (360_000, 360_000)]
    assert missing_ranges(ts, "1m", None, None) == [(120_000, 180_000), (360_000, 360_000)]
    assert missing_ranges(ts, "1m", -120_000, 600_001) == [
        (-120_000, -60_000),
        (120_000, 180_000),
        (360_000, 360_000),
        (480_000, 600_000),
    ]
    assert missing_ranges(np.array([], dtype=np.int64), "1h", 0, 2 * H) == [(0, H)]
    assert find_gaps(ts[:1], "1m") == []


def moves(pattern: str, seed: int) -> Bars:
    return synthetic_market(pattern, 5000, seed)


@pytest.mark.parametrize("seed", [1, 2, 9])
def test_each_pattern_has_its_shape(seed: int) -> None:
    c = {p: moves(p, seed).close for p in PATTERNS}
    vol = {p: float(np.diff(np.log(x)).std()) for p, x in c.items()}
    assert c["trend_up"][-1] / c["trend_up"][0] > 1.25
    assert c["trend_down"][-1] / c["trend_down"][0] < 0.75
    for p in ("range", "chop"):
        assert c[p].max() / c[p].min() < 1.1, p
    assert vol["chop"] > 1.5 * vol["range"]
    assert vol["volatile"] > 2.5 * vol["trend_up"]
    b = np.diff(np.log(c["breakout"]))
    assert b[3000:].std() > 2 * b[:2999].std()
    assert c["breakout"][-1] > 1.1 * c["breakout"][:3000].max()
    assert c["crash"][2750] / c["crash"][2500] < 0.75
    assert c["pump"][2750] / c["pump"][2500] > 1.3
    v = c["v_reversal"]
    assert 2250 <= int(np.argmin(v)) <= 2750 and v.min() / v[0] < 0.8 and v[-1] / v.min() > 1.25
    g = moves("gap_down", seed)
    jumps = np.flatnonzero(g.open[1:] != g.close[:-1]) + 1
    assert jumps.tolist() == [1250, 2500, 3750]
    assert np.all(g.open[jumps] / g.close[jumps - 1] < 0.951)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_synthetic_is_deterministic_and_well_formed(pattern: str) -> None:
    a, b = synthetic_market(pattern, 5000, 9), synthetic_market(pattern, 5000, 9)
    assert_same(a, b)
    assert not np.array_equal(a.close, synthetic_market(pattern, 5000, 10).close)
    assert np.all(a.high >= np.maximum(a.open, a.close))
    assert np.all(a.low <= np.minimum(a.open, a.close))
    assert np.all(a.low > 0) and np.all(a.volume > 0)
    assert a.timeframe == "1m" and np.all(np.diff(a.ts) == M) and a.ts[0] == START
    if pattern != "gap_down":
        np.testing.assert_array_equal(a.open[1:], a.close[:-1])  # one continuous 1m path
    c = synthetic_market(pattern, 100, 9, symbol="X", start_ms=START + DAY)
    assert c.symbol == "X" and c.ts[0] == START + DAY


def test_a_store_merged_by_an_earlier_version_never_loses_rows(store: MarketStore) -> None:
    """Before the sample was kept apart, it filled the holes of a user's series and marked the
    series `sample`; with no `sample_apart` marker a later import upserts and deletes nothing."""
    first = 1_748_538_300_000
    store.ensure_sample()
    store.con.execute("DELETE FROM sync_meta WHERE kind = 'sample_apart'")
    mine = Bars.from_arrays("BTCUSDT", "1m", [first], [1.0], [2.0], [0.5], [1.5], [7.0])
    store.write_ohlcv(mine)
    got = store.load_bars("BTCUSDT", "1m", None, None)
    assert len(got) == 44_613 and (got.close[0], got.volume[0]) == (1.5, 7.0)
