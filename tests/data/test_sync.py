"""Bybit history sync and gap healing end to end against a fake Bybit server on 127.0.0.1 that
serves the real files, with injected rate limits, 5xx, timeouts, dropped connections and partial
pages."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fakes.bybit import FakeBybit
from trade.cli.main import run
from trade.data import MarketStore
from trade.data.sync import heal, sync_ohlcv
from trade.errors import ExchangeError
from trade.exchange.bybit import BybitRest
from trade.instruments import InstrumentSpec

TESTS = Path(__file__).resolve().parents[1]


def read_rows(path: Path) -> np.ndarray:
    """A market CSV(.gz) as a float array (header skipped)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as fh:
        return np.loadtxt(fh, delimiter=",", skiprows=1, ndmin=2)


def inject(fake: FakeBybit, faults: list[str]) -> None:
    """Queue REST faults, one per request in this order ("ok" answers normally)."""
    for fault in faults:
        fake.inject(fault)


@pytest.fixture(scope="module")
def real_1m(market_dir: Path) -> np.ndarray:
    return read_rows(market_dir / "bybit_BTCUSDT_1m.csv.gz")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "m.duckdb"
    monkeypatch.setenv("TRADE_DB", str(path))
    return path


@pytest.fixture
def fake(market_dir: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The fake serving the real BTCUSDT files: 1m and 1h klines, 1h mark klines, funding."""
    with FakeBybit() as server:
        for tf, interval in (("1m", "1"), ("1h", "60")):
            rows = read_rows(market_dir / f"bybit_BTCUSDT_{tf}.csv.gz")
            server.load_klines("BTCUSDT", interval, rows)
        server.load_mark_klines(
            "BTCUSDT", "60", read_rows(market_dir / "bybit_BTCUSDT_mark_1h.csv.gz")
        )
        server.load_funding("BTCUSDT", read_rows(market_dir / "bybit_BTCUSDT_funding.csv.gz"))
        monkeypatch.setenv("TRADE_BYBIT_REST_URL", server.rest_url)
        yield server


def iso(ms: float) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M")


def assert_bars_equal(store_path: Path, rows: np.ndarray, tf: str = "1m") -> None:
    with MarketStore(store_path) as store:
        got = store.load_bars("BTCUSDT", tf, None, None)
    np.testing.assert_array_equal(got.ts, rows[:, 0].astype(np.int64))
    for k, col in enumerate(("open", "high", "low", "close", "volume"), start=1):
        np.testing.assert_array_equal(getattr(got, col), rows[:, k])


def test_sync_a_month_of_1m_with_faults_stores_exactly_the_real_bars(
    real_1m: np.ndarray,
    market_dir: Path,
    db: Path,
    fake: FakeBybit,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inject(
        fake,
        ["ratelimit", "ok", "http500", "ok", "partial", "http429", "ok", "drop", "ok", "http502"],
    )
    start, end = int(real_1m[0, 0]), int(real_1m[-1, 0]) + 60_000
    args = ["data", "sync", "--symbol", "BTCUSDT", "--tf", "1m"]
    code = run([*args, "--start", iso(start), "--end", iso(end)])
    out = capsys.readouterr().out
    assert code == 0
    assert "BTCUSDT 1m: 44,613 bars written" in out
    assert "requests retried: 5" in out  # ratelimit, 500, 429, dropped connection, 502
    assert_bars_equal(db, real_1m)
    # every kline request is one window of at most 1000 bars, asked with both start and end
    klines = [r.query for r in fake.requests if r.path == "/v5/market/kline"]
    assert all(q["limit"] == "1000" for q in klines)
    assert all((int(q["end"]) - int(q["start"])) // 60_000 + 1 <= 1000 for q in klines)
    assert len({(q["start"], q["end"]) for q in klines}) == 45 + 1  # 45 windows + the short page
    funding = read_rows(market_dir / "bybit_BTCUSDT_funding.csv.gz")
    funding = funding[(funding[:, 0] >= start) & (funding[:, 0] < end)]
    with MarketStore(db) as store:
        f_ts, f_rate = store.load_funding("BTCUSDT", None, None)
        spec = store.instrument("BTCUSDT")
    np.testing.assert_array_equal(f_ts, funding[:, 0].astype(np.int64))
    np.testing.assert_array_equal(f_rate, funding[:, 1])
    assert spec == InstrumentSpec("BTCUSDT", 0.1, 0.001, 0.001, 5.0, 100.0, 0.005, 8.0)


def test_mark_and_hourly_sync_store_the_real_series(
    market_dir: Path, db: Path, fake: FakeBybit
) -> None:
    start, end = "2025-06-01", "2025-06-15"
    args = ["data", "sync", "--symbol", "BTCUSDT", "--tf", "1h", "--start", start, "--end", end]
    code = run([*args, "--mark", "--no-funding", "--no-instruments"])
    assert code == 0
    lo, hi = 1_748_736_000_000, 1_749_945_600_000
    hourly = read_rows(market_dir / "bybit_BTCUSDT_1h.csv.gz")
    assert_bars_equal(db, hourly[(hourly[:, 0] >= lo) & (hourly[:, 0] < hi)], "1h")
    mark = read_rows(market_dir / "bybit_BTCUSDT_mark_1h.csv.gz")
    mark = mark[(mark[:, 0] >= lo) & (mark[:, 0] < hi)]
    with MarketStore(db) as store:
        got = store.load_mark("BTCUSDT", None, None)
    assert got is not None and len(got) == 14 * 24
    np.testing.assert_array_equal(got.ts, mark[:, 0].astype(np.int64))
    np.testing.assert_array_equal(np.c_[got.open, got.high, got.low, got.close], mark[:, 1:5])


def test_the_still_open_bar_is_never_stored(real_1m: np.ndarray, db: Path, fake: FakeBybit) -> None:
    now = int(real_1m[100, 0]) + 30_000  # halfway through bar 100

    async def go() -> int:
        async with BybitRest(fake.rest_url) as client:
            with MarketStore(db) as store:
                lo, hi = int(real_1m[0, 0]), int(real_1m[200, 0])
                return await sync_ohlcv(store, client, "BTCUSDT", "1m", lo, hi, now_ms=now)

    assert asyncio.run(go()) == 100
    assert_bars_equal(db, real_1m[:100])


def test_a_timeout_is_retried(real_1m: np.ndarray, fake: FakeBybit) -> None:
    fake.inject("slow")
    fake.slow_seconds = 10.0  # far past the client's timeout; the retry must answer within it

    async def go() -> tuple[list[list[str]], int]:
        async with BybitRest(fake.rest_url, timeout=2.0) as client:
            rows = await client.klines("BTCUSDT", "1m", int(real_1m[0, 0]), int(real_1m[9, 0]))
            return rows, client.retried

    rows, retried = asyncio.run(go())
    assert retried == 1 and [k.start for k in rows] == real_1m[:10, 0].astype(int).tolist()


def test_rate_limit_waits_for_the_reset_timestamp(real_1m: np.ndarray, fake: FakeBybit) -> None:
    fake.inject("ratelimit")
    fake.rate_limit_reset_ms = 400

    async def go() -> None:
        async with BybitRest(fake.rest_url, backoff=0.01) as client:
            await client.klines("BTCUSDT", "1m", int(real_1m[0, 0]), int(real_1m[9, 0]))

    asyncio.run(go())
    first, second = fake.requests
    assert second.at - first.at >= 0.35  # the reset header, not the 10 ms backoff


def test_persistent_5xx_gives_up_with_a_clear_error(real_1m: np.ndarray, fake: FakeBybit) -> None:
    fake.inject("http500", times=3)

    async def go() -> None:
        async with BybitRest(fake.rest_url, retries=2, backoff=0.01) as client:
            await client.klines("BTCUSDT", "1m", int(real_1m[0, 0]), int(real_1m[9, 0]))

    with pytest.raises(
        ExchangeError, match=r"kline: giving up after 3 attempts \(last: HTTP 500\)"
    ):
        asyncio.run(go())


def test_heal_fills_exactly_the_missing_bars(
    real_1m: np.ndarray,
    market_dir: Path,
    db: Path,
    fake: FakeBybit,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gapped = market_dir / "bybit_BTCUSDT_1m_gaps.csv.gz"
    assert run(["data", "import", str(gapped), "--symbol", "BTCUSDT", "--tf", "1m"]) == 0
    inject(fake, ["http500", "ratelimit"])
    assert run(["data", "heal", "--symbol", "BTCUSDT", "--tf", "1m"]) == 0
    assert "42 missing bars fetched" in capsys.readouterr().out
    klines = {
        (int(r.query["start"]), int(r.query["end"]))
        for r in fake.requests
        if r.path == "/v5/market/kline"
    }
    asked = sum((hi - lo) // 60_000 + 1 for lo, hi in klines)
    assert asked == 42  # exactly the missing bars were requested
    rows = read_rows(gapped)
    span = (real_1m[:, 0] >= rows[0, 0]) & (real_1m[:, 0] <= rows[-1, 0])
    assert_bars_equal(db, real_1m[span])  # the gapless file, bar for bar


def test_heal_with_a_window_also_fetches_a_missing_head_and_tail(
    real_1m: np.ndarray, db: Path, fake: FakeBybit
) -> None:
    with MarketStore(db) as store:
        from trade.data.bars import Bars

        mid = real_1m[1000:2000]
        store.write_ohlcv(Bars.from_arrays("BTCUSDT", "1m", *mid[:, :6].T))

        async def go() -> int:
            async with BybitRest(fake.rest_url) as client:
                lo, hi = int(real_1m[0, 0]), int(real_1m[3000, 0])
                return await heal(store, client, "BTCUSDT", "1m", lo, hi)

        assert asyncio.run(go()) == 2000
    assert_bars_equal(db, real_1m[:3000])


def test_unrecoverable_error_is_a_clean_message(
    db: Path, fake: FakeBybit, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["data", "sync", "--symbol", "NOPEUSDT", "--tf", "1m"]
    code = run([*args, "--start", "2025-06-01", "--end", "2025-06-02"])
    err = capsys.readouterr().err
    assert code == 1
    assert "error: Bybit /v5/market/kline: retCode 10001: params error: symbol invalid" in err
    assert "Traceback" not in err


def test_killed_sync_leaves_a_consistent_store_and_a_rerun_completes(
    real_1m: np.ndarray, tmp_path: Path, fake: FakeBybit, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "m.duckdb"
    monkeypatch.setenv("TRADE_DB", str(db))
    fake.delay = 0.05
    args = ["data", "sync", "--symbol", "BTCUSDT", "--tf", "1m", "--start", iso(real_1m[0, 0])]
    args += ["--end", iso(real_1m[-1, 0] + 60_000), "--no-funding", "--no-instruments", "--no-mark"]
    victim = subprocess.Popen(
        [sys.executable, "-m", "trade.cli.main", *args],
        env={**os.environ, "TRADE_DB": str(db), "TRADE_BYBIT_REST_URL": fake.rest_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(fake.requests) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait()
    assert victim.returncode == -signal.SIGKILL
    with MarketStore(db) as store:
        partial = store.load_bars("BTCUSDT", "1m", None, None)
    assert 10_000 <= len(partial) < len(real_1m)
    assert len(partial) % 1000 == 0  # whole windows only: each one is its own transaction
    np.testing.assert_array_equal(partial.ts, real_1m[: len(partial), 0].astype(np.int64))
    before = len(fake.requests)
    assert run(args) == 0
    fetched = [r for r in fake.requests[before:] if r.path == "/v5/market/kline"]
    assert len(fetched) == 45 - len(partial) // 1000  # only what was missing
    assert_bars_equal(db, real_1m)


def test_sync_also_stores_1m_mark_klines_by_default(
    real_1m: np.ndarray, db: Path, fake: FakeBybit
) -> None:
    """The backtest values equity and liquidation at a 1m mark where one is stored, so a plain
    sync fetches it next to the --tf series (a stand-in mark here: the traded 1m bars + 0.01%)."""
    mark_1m = real_1m[:, :5].copy()
    mark_1m[:, 1:5] *= 1.0001
    fake.load_mark_klines("BTCUSDT", "1", mark_1m)
    lo = int(real_1m[0, 0]) // 86_400_000 * 86_400_000 + 86_400_000  # the first whole day
    args = ["data", "sync", "--symbol", "BTCUSDT", "--tf", "1h", "--no-funding", "--no-instruments"]
    assert run([*args, "--start", iso(lo), "--end", iso(lo + 86_400_000)]) == 0
    want = mark_1m[(mark_1m[:, 0] >= lo) & (mark_1m[:, 0] < lo + 86_400_000)]
    with MarketStore(db) as store:
        got = store.load_mark("BTCUSDT", None, None)
    assert got is not None and got.timeframe == "1m" and len(got) == 1440
    np.testing.assert_array_equal(got.ts, want[:, 0].astype(np.int64))
    np.testing.assert_array_equal(np.c_[got.open, got.high, got.low, got.close], want[:, 1:5])
    asked = {r.query["interval"] for r in fake.requests if r.path == "/v5/market/mark-price-kline"}
    assert asked == {"1", "60"}


def test_heal_leaves_a_complete_sample_series_and_replaces_a_short_one_whole(
    real_1m: np.ndarray, db: Path, fake: FakeBybit
) -> None:
    """The sample's BTCUSDT 1m month: healing inside it fetches nothing; healing a window that
    reaches past its first bar fetches the whole window, which replaces the sample's series (the
    user's bars never fill the sample's, nor the other way round)."""
    first = int(real_1m[0, 0])  # the sample's first minute too
    with MarketStore(db) as store:
        store.ensure_sample()

        async def go(lo: int, hi: int) -> int:
            async with BybitRest(fake.rest_url) as client:
                return await heal(store, client, "BTCUSDT", "1m", lo, hi)

        assert asyncio.run(go(first, first + 500 * 60_000)) == 0
        assert fake.requests == [] and store.series_source("ohlcv", "BTCUSDT", "1m") == "sample"
        assert asyncio.run(go(first - 60 * 60_000, first + 500 * 60_000)) == 500
        assert store.series_source("ohlcv", "BTCUSDT", "1m") == "bybit"
    assert_bars_equal(db, real_1m[:500])
