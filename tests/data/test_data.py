"""Market store, import validation, gaps, resampling and synthetic markets on the real data set."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from store_snapshot import store_snapshot
from trade.cli.main import run
from trade.data import MarketStore, resample, synthetic_market
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
        "unsorted.csv: timestamps not increasing on line(s) 3",
    ),
    "dupe.csv": (
        "ts_ms,open,high,low,close,volume\n60000,1,2,0.5,1.5,1\n60000,1,2,0.5,1.5,1\n",
        "dupe.csv: duplicate timestamp on line(s) 3",
    ),
    "high_low.csv": (
        "ts_ms,open,high,low,close,volume\n60000,1,2,0.5,1.5,1\n120000,1,0.9,0.5,0.8,1\n",
        "high_low.csv: high below open/close on line(s) 3",
    ),
    "low_high.csv": (
        "ts_ms,open,high,low,close,volume\n60000,1,2,1.2,1.5,1\n",
        "low_high.csv: low above open/close on line(s) 2",
    ),
    "nan.csv": (
        "ts_ms,open,high,low,close,volume\n60000,1,2,0.5,,1\n120000,1,2,0.5,NaN,1\n",
        "nan.csv: missing or NaN close on line(s) 2, 3",
    ),
    "columns.csv": (
        "time,open,high,low,close,volume\n60000,1,2,0.5,1.5,1\n",
        "columns.csv: missing column(s) ts_ms; expected header ts_ms,open,high,low,close,volume",
    ),
    "fields.csv": (
        "ts_ms,open,high,low,close,volume\n60000,1,2,0.5,1.5,1\n120000,1,2,0.5\n",
        "fields.csv: line 3 has 4 fields, the header has 6",
    ),
    "text.csv": (
        "ts_ms,open,high,low,close,volume\n60000,1,2,0.5,1.5,1\n120000,1,2,abc,1.5,1\n",
        "text.csv: column 'low' is not numeric on line(s) 3 (e.g. 'abc')",
    ),
    "negative.csv": (
        "ts_ms,open,high,low,close,volume\n60000,1,2,0.5,1.5,-1\n",
        "negative.csv: negative volume on line(s) 2",
    ),
    "zero.csv": (
        "ts_ms,open,high,low,close,volume\n60000,1,2,0,1.5,1\n",
        "zero.csv: non-positive low on line(s) 2",
    ),
    "misaligned.csv": (
        "ts_ms,open,high,low,close,volume\n60001,1,2,0.5,1.5,1\n",
        "misaligned.csv: timestamps not aligned to 1m on line(s) 2",
    ),
    "empty.csv": ("ts_ms,open,high,low,close,volume\n", "empty.csv: no rows"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_exit_2_and_leave_the_store_unchanged(
    name: str, db: Path, tmp_path: Path, market_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = store_snapshot(db)
    good = market_dir / "bybit_ETHUSDT_5m.csv.gz"  # valid, listed first: still not written
    text, message = BAD_FILES[name]
    bad = tmp_path / name
    bad.write_text(text)
    assert run(["data", "import", str(good), str(bad), "--symbol", "XUSDT", "--tf", "1m"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad.parent}/{message}") and "Traceback" not in err
    assert store_snapshot(db) == before


def test_truncated_gzip_is_rejected_and_nothing_written(
    db: Path, tmp_path: Path, market_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = store_snapshot(db)
    data = (market_dir / "bybit_BTCUSDT_1h.csv.gz").read_bytes()
    cut = tmp_path / "bybit_XUSDT_1h.csv.gz"
    cut.write_bytes(data[: len(data) // 2])
    assert run(["data", "import", str(cut)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cut}: corrupt or truncated file") and "Traceback" not in err
    assert store_snapshot(db) == before


def test_bad_parquet_is_rejected(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"ts_ms": [60_000], "open": [1.0], "close": [1.0]}), path)
    assert run(["data", "import", str(path), "--symbol", "XUSDT", "--tf", "1m"]) == 2
    assert "missing column(s) high, low, volume" in capsys.readouterr().err
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not a parquet file at all")
    assert run(["data", "import", str(junk), "--symbol", "XUSDT", "--tf", "1m"]) == 2
    assert f"error: {junk}: " in capsys.readouterr().err


def test_import_infers_names_and_reads_funding_mark_and_parquet(
    db: Path, tmp_path: Path, market_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    hourly = market_dir / "bybit_ETHUSDT_1h.csv.gz"
    parquet = tmp_path / "binance_SOLUSDT_4h.parquet"
    pq.write_table(pacsv.read_csv(market_dir / "bybit_ETHUSDT_4h.csv.gz"), parquet)
    files = [hourly, market_dir / "bybit_ETHUSDT_funding.csv.gz", parquet]
    files.append(market_dir / "bybit_ETHUSDT_mark_1h.csv.gz")
    assert run(["data", "import", *map(str, files)]) == 0
    out = capsys.readouterr().out
    assert f"imported 18,873 ohlcv rows from {hourly}" in out
    with MarketStore(db) as store:
        h = store.load_bars("ETHUSDT", "1h", None, None)
        four = store.load_bars("SOLUSDT", "4h", None, None)
        f_ts, f_rate = store.load_funding("ETHUSDT", None, None)
        mark = store.load_mark("ETHUSDT", None, None)
    assert_rows(h, read(hourly, "1h"))
    assert_rows(four, read(market_dir / "bybit_ETHUSDT_4h.csv.gz", "4h"))
    with gzip.open(market_dir / "bybit_ETHUSDT_funding.csv.gz", "rt") as fh:
        funding = np.loadtxt(fh, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(f_ts, funding[:, 0].astype(np.int64))
    np.testing.assert_array_equal(f_rate, funding[:, 1])
    assert mark is not None and mark.timeframe == "1h" and len(mark) > 18_000


def assert_rows(got: Bars, want: Bars) -> None:
    for col in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, col), getattr(want, col))


def test_import_without_a_name_or_options_is_an_input_error(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "prices.csv"
    f.write_text("ts_ms,open,high,low,close,volume\n60000,1,2,0.5,1.5,1\n")
    assert run(["data", "import", str(f)]) == 2
    assert "cannot infer symbol/kind from the name" in capsys.readouterr().err
    assert run(["data", "import", str(f), "--symbol", "X", "--kind", "candles"]) == 2
    assert "--kind 'candles': expected one of ohlcv, funding, mark" in capsys.readouterr().err
