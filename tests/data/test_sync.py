"""Bybit history sync and gap healing end to end against a fake Bybit server on 127.0.0.1 that
serves the real files, with injected rate limits, 5xx, timeouts and partial pages."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fakes.bybit_server import FakeBybit
from trade.cli.main import run
from trade.data import MarketStore


def rows_of(path: Path) -> np.ndarray:
    with gzip.open(path, "rt") as fh:
        return np.loadtxt(fh, delimiter=",", skiprows=1)


@pytest.fixture(scope="module")
def real_1m(market_dir: Path) -> np.ndarray:
    return rows_of(market_dir / "bybit_BTCUSDT_1m.csv.gz")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "m.duckdb"
    monkeypatch.setenv("TRADE_DB", str(db))
    return db


def iso(ms: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M")


def test_sync_a_month_of_1m_with_faults_stores_exactly_the_real_bars(
    real_1m: np.ndarray,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with FakeBybit() as fake:
        fake.add_klines("BTCUSDT", "1", real_1m)
        fake.faults.extend(
            ["ratelimit", "http500", "ok", "partial", "http429", "ok", "slow", "ratelimit"]
        )
        fake.slow_seconds = 11  # past the client's 10 s timeout: retried
        monkeypatch.setenv("TRADE_BYBIT_REST_URL", fake.url)
        start, end = real_1m[0, 0], real_1m[-1, 0] + 60_000
        code = run(
            [
                "data",
                "sync",
                "--symbol",
                "BTCUSDT",
                "--tf",
                "1m",
                "--start",
                iso(start),
                "--end",
                iso(end),
            ]
        )
    assert code == 0
    assert "requests retried: " in capsys.readouterr().out
    with MarketStore(env) as store:
        got = store.load_bars("BTCUSDT", "1m", None, None)
    np.testing.assert_array_equal(got.ts, real_1m[:, 0].astype(np.int64))
    np.testing.assert_array_equal(got.close, real_1m[:, 4])
    np.testing.assert_array_equal(got.volume, real_1m[:, 5])


def test_the_still_open_bar_is_never_stored(
    real_1m: np.ndarray, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from trade.data.sync import sync_ohlcv
    from trade.exchange.bybit import BybitRest

    now = int(real_1m[100, 0]) + 30_000  # halfway through bar 100
    with FakeBybit() as fake:
        fake.add_klines("BTCUSDT", "1", real_1m)

        async def go() -> int:
            async with BybitRest(fake.url) as client:
                with MarketStore(env) as store:
                    return await sync_ohlcv(
                        store,
                        client,
                        "BTCUSDT",
                        "1m",
                        int(real_1m[0, 0]),
                        int(real_1m[200, 0]),
                        now_ms=now,
                    )

        assert asyncio.run(go()) == 100
    with MarketStore(env) as store:
        assert store.load_bars("BTCUSDT", "1m", None, None).ts[-1] == real_1m[99, 0]


def test_heal_fills_exactly_the_missing_bars(
    real_1m: np.ndarray,
    market_dir: Path,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        run(
            [
                "data",
                "import",
                str(market_dir / "bybit_BTCUSDT_1m_gaps.csv.gz"),
                "--symbol",
                "BTCUSDT",
                "--tf",
                "1m",
            ]
        )
        == 0
    )
    with FakeBybit() as fake:
        fake.add_klines("BTCUSDT", "1", real_1m)
        fake.faults.extend(["http500", "ratelimit"])
        monkeypatch.setenv("TRADE_BYBIT_REST_URL", fake.url)
        assert run(["data", "heal", "--symbol", "BTCUSDT", "--tf", "1m"]) == 0
        assert "42 missing bars fetched" in capsys.readouterr().out
    with MarketStore(env) as store:
        got = store.load_bars("BTCUSDT", "1m", None, None)
    gapped = rows_of(market_dir / "bybit_BTCUSDT_1m_gaps.csv.gz")
    span = (real_1m[:, 0] >= gapped[0, 0]) & (
        real_1m[:, 0] <= gapped[-1, 0]
    )  # the gapless file, bar for bar
    np.testing.assert_array_equal(got.ts, real_1m[span, 0].astype(np.int64))
    for k, col in enumerate(("open", "high", "low", "close", "volume"), start=1):
        np.testing.assert_array_equal(getattr(got, col), real_1m[span, k])


def test_unrecoverable_error_is_a_clean_message(
    real_1m: np.ndarray,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with FakeBybit() as fake:
        monkeypatch.setenv("TRADE_BYBIT_REST_URL", fake.url)
        code = run(
            [
                "data",
                "sync",
                "--symbol",
                "NOPEUSDT",
                "--tf",
                "1m",
                "--start",
                "2025-06-01",
                "--end",
                "2025-06-02",
            ]
        )
    err = capsys.readouterr().err
    assert (
        code == 1
        and "retCode 10001: params error: symbol invalid" in err
        and "Traceback" not in err
    )


def test_killed_sync_leaves_a_consistent_store_and_a_rerun_completes(
    real_1m: np.ndarray, market_dir: Path, tmp_path: Path
) -> None:
    port_file = tmp_path / "url"
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); from fakes.bybit_server import serve_forever_from_file as s; s(*sys.argv[2:6], float(sys.argv[6]))",
            str(Path(__file__).resolve().parents[1]),
            str(market_dir / "bybit_BTCUSDT_1m.csv.gz"),
            "BTCUSDT",
            "1",
            str(port_file),
            "0.3",
        ],
    )
    try:
        for _ in range(200):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        env = {
            **os.environ,
            "TRADE_BYBIT_REST_URL": port_file.read_text(),
            "TRADE_DB": str(tmp_path / "m.duckdb"),
        }
        args = [
            sys.executable,
            "-m",
            "trade.cli.main",
            "data",
            "sync",
            "--symbol",
            "BTCUSDT",
            "--tf",
            "1m",
            "--start",
            iso(real_1m[0, 0]),
            "--end",
            iso(real_1m[-1, 0] + 60_000),
        ]
        victim = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(6.0)  # imports + a few 0.3 s windows; the whole sync needs ~14 s
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        with MarketStore(tmp_path / "m.duckdb") as store:
            partial = store.load_bars("BTCUSDT", "1m", None, None)
        assert 0 < len(partial) < len(real_1m)
        assert np.all(
            np.isin(partial.ts, real_1m[:, 0].astype(np.int64))
        )  # only real, whole windows
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        with MarketStore(tmp_path / "m.duckdb") as store:
            full = store.load_bars("BTCUSDT", "1m", None, None)
        np.testing.assert_array_equal(full.ts, real_1m[:, 0].astype(np.int64))
    finally:
        server.kill()
