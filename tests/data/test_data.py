"""Market store, import validation, gaps, resampling and synthetic markets on the real data set."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from trade.cli.main import run
from trade.data import PATTERNS, MarketStore, resample, synthetic_market
from trade.data.bars import Bars


def read(path: Path, tf: str) -> Bars:
    with gzip.open(path, "rt") as fh:
        a = np.loadtxt(fh, delimiter=",", skiprows=1)
    return Bars.from_arrays(
        "BTCUSDT", tf, a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5]
    )


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "m.duckdb"
    monkeypatch.setenv("TRADE_DB", str(path))
    return path


def test_gaps_report_exactly_the_missing_minutes(
    db: Path, market_dir: Path, capsys: pytest.CaptureFixture[str]
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
    capsys.readouterr()
    assert run(["data", "gaps", "--symbol", "BTCUSDT", "--tf", "1m", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    got = [t for g in report["gaps"] for t in range(g["first"], g["last"] + 60_000, 60_000)]
    expected = np.loadtxt(
        market_dir / "bybit_BTCUSDT_1m_gaps.missing.csv", delimiter=",", skiprows=1, dtype=np.int64
    ).tolist()
    assert got == expected and len(got) == 42


@pytest.mark.parametrize(("src", "dst"), [("1m", "5m"), ("1m", "15m"), ("1h", "4h"), ("1h", "1d")])
def test_resampling_equals_the_exchange_files(market_dir: Path, src: str, dst: str) -> None:
    low = read(market_dir / f"bybit_BTCUSDT_{src}.csv.gz", src)
    high = read(market_dir / f"bybit_BTCUSDT_{dst}.csv.gz", dst)
    got = resample(low, dst)
    common, i, j = np.intersect1d(got.ts, high.ts, return_indices=True)
    assert len(common) > 100
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(got, col)[i], getattr(high, col)[j])
    np.testing.assert_allclose(got.volume[i], high.volume[j], rtol=1e-9)


def test_resample_never_emits_a_partial_trailing_bucket() -> None:
    b = synthetic_market("range", 100, 1)  # 100 minutes: 6 full 15m buckets + 10 minutes
    r = resample(b, "15m")
    assert len(r) == 6 and r.ts[-1] + 900_000 <= b.ts[-1] + 60_000


def test_weekly_buckets_start_on_monday() -> None:
    b = synthetic_market("trend_up", 60 * 24 * 21, 2)
    w = resample(b, "W")
    import datetime as dt

    assert all(dt.datetime.fromtimestamp(t / 1000, tz=dt.UTC).weekday() == 0 for t in w.ts)


BAD_FILES = {
    "unsorted.csv": (
        "ts_ms,open,high,low,close,volume\n120000,1,2,0.5,1.5,1\n60000,1,2,0.5,1.5,1\n",
        "timestamps not increasing on line(s) 3",
    ),
    "dupe.csv": (
        "ts_ms,open,high,low,close,volume\n60000,1,2,0.5,1.5,1\n60000,1,2,0.5,1.5,1\n",
        "duplicate timestamp on line(s) 3",
    ),
    "high_low.csv": (
        "ts_ms,open,high,low,close,volume\n60000,1,2,0.5,1.5,1\n120000,1,0.9,0.5,0.8,1\n",
        "high below open/close on line(s) 3",
    ),
    "nan.csv": (
        "ts_ms,open,high,low,close,volume\n60000,1,2,0.5,,1\n",
        "missing or NaN close on line(s) 2",
    ),
    "columns.csv": (
        "time,open,high,low,close,volume\n60000,1,2,0.5,1.5,1\n",
        "missing column(s) ts_ms",
    ),
    "misaligned.csv": (
        "ts_ms,open,high,low,close,volume\n60001,1,2,0.5,1.5,1\n",
        "timestamps not aligned to 1m on line(s) 2",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_exit_2_and_leave_the_store_unchanged(
    name: str, db: Path, tmp_path: Path, market_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = market_dir / "bybit_BTCUSDT_1h.csv.gz"
    text, message = BAD_FILES[name]
    bad = tmp_path / name
    bad.write_text(text)
    assert (
        run(
            [
                "data",
                "import",
                str(good),
                str(bad),
                "--symbol",
                "BTCUSDT",
                "--tf",
                "1m" if name != "x" else "1h",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    with MarketStore(db) as store:
        assert store.symbols() == []


def test_truncated_gzip_is_rejected(
    db: Path, tmp_path: Path, market_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = (market_dir / "bybit_BTCUSDT_1h.csv.gz").read_bytes()
    cut = tmp_path / "cut_BTCUSDT_1h.csv.gz"
    cut.write_bytes(data[: len(data) // 2])
    assert run(["data", "import", str(cut), "--symbol", "BTCUSDT", "--tf", "1h"]) == 2
    assert "cut_BTCUSDT_1h.csv.gz:" in capsys.readouterr().err


def test_store_round_trip_and_sample(db: Path) -> None:
    with MarketStore(db) as store:
        assert store.ensure_sample() is True
        assert store.ensure_sample() is False
        b = store.load_bars("BTCUSDT", "1m", None, None)
        assert len(b) == 44_613 and np.all(np.diff(b.ts) == 60_000)
        five = store.bars_for("BTCUSDT", "5m", int(b.ts[0]), int(b.ts[-1]))
        np.testing.assert_array_equal(
            five.close, resample(b, "5m").window(int(b.ts[0]), int(b.ts[-1])).close
        )
        spec = store.instrument("ETHUSDT")
        assert spec is not None and (spec.tick_size, spec.qty_step, spec.min_notional) == (
            0.01,
            0.01,
            5.0,
        )
        f_ts, _ = store.load_funding("BTCUSDT", int(b.ts[0]), int(b.ts[-1]))
        assert len(f_ts) == 93 and np.all(np.diff(f_ts) == 8 * 3_600_000)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_synthetic_is_deterministic_and_coherent(pattern: str) -> None:
    a, b = synthetic_market(pattern, 5000, 9), synthetic_market(pattern, 5000, 9)
    np.testing.assert_array_equal(a.close, b.close)
    assert not np.array_equal(a.close, synthetic_market(pattern, 5000, 10).close)
    assert np.all(a.high >= np.maximum(a.open, a.close)) and np.all(
        a.low <= np.minimum(a.open, a.close)
    )
    assert np.all(a.low > 0)
