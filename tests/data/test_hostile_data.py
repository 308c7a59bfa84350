"""Market data that must never reach the store: non-finite or absurd values, timestamps in another
unit, binary or oversized content — from files and from the exchange alike. Each is refused with one
short line naming the file or endpoint and where, and the store is left as it was."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from store_snapshot import store_snapshot
from trade.cli.main import run
from trade.data import MarketStore, synthetic_market
from trade.data.sync import sync_funding, sync_ohlcv
from trade.errors import ExchangeError
from trade.exchange.bybit import BybitRest
from trade.report.artifacts import iso

H = "ts_ms,open,high,low,close,volume\n"
CASES = {
    "inf_high.csv": (H + "60000,1,inf,0.5,1.5,1\n", "high infinite or above 1e+12 on line(s) 2"),
    "huge_volume.csv": (
        H + "60000,1,2,0.5,1.5,1\n120000,1,2,0.5,1.5,1e400\n",
        "volume infinite or above 1e+15 on line(s) 3",
    ),
    "absurd_price.csv": (
        H + "60000,1,2e13,0.5,1.5,1\n",
        "high infinite or above 1e+12 on line(s) 2",
    ),
    "micros.csv": (
        H + "1748538300000000,1,2,0.5,1.5,1\n",
        "ts_ms out of range on line(s) 2 (they look like microseconds)",
    ),
    "nanos.csv": (
        H + "1748538300000000000,1,2,0.5,1.5,1\n",
        "ts_ms out of range on line(s) 2 (they look like nanoseconds)",
    ),
    "overflow.csv": (
        H + "9e18,1,2,0.5,1.5,1\n60000,1,2,0.5,1.5,1\n",
        "ts_ms out of range on line(s) 2 (they look like nanoseconds)",
    ),
    "negative_ts.csv": (
        H + "-60000,1,2,0.5,1.5,1\n",
        "ts_ms out of range on line(s) 2 (expected epoch milliseconds, 1970 to 2100)",
    ),
    "seconds.csv": (
        H + "1748538300,1,2,0.5,1.5,1\n1748538360,1,2,0.5,1.5,1\n",
        "ts_ms look like seconds (e.g. 1748538300); expected epoch milliseconds",
    ),
    "long_number.csv": (
        H + "60000,1,2," + "9" * 4000 + "x,1.5,1\n",
        "column 'low' is not numeric on line(s) 2 (e.g. '99999999999999999999999… (4003 characters))",
    ),
    "binary.csv": (H + "\x00\xff\xfe garbage", "not a UTF-8 text file (binary data?)"),
    "binary_header.csv": ("\x80" + H + "60000,1,2,0.5,1.5,1\n", "not a UTF-8 text file"),
    "long_row.csv": (H + "6" * 3_000_000 + "\n", "a row too long to parse"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_files_are_refused_with_one_short_line(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "m.duckdb"
    monkeypatch.setenv("TRADE_DB", str(db))
    before = store_snapshot(db)
    text, message = CASES[name]
    bad = tmp_path / name
    bad.write_bytes(text.encode("latin-1"))
    assert run(["data", "import", str(bad), "--symbol", "XUSDT", "--tf", "1m"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: {message}") and err.count("\n") == 1 and len(err) < 300
    assert store_snapshot(db) == before


def test_an_infinite_funding_rate_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADE_DB", str(tmp_path / "m.duckdb"))
    f = tmp_path / "bybit_XUSDT_funding.csv"
    f.write_text("ts_ms,funding_rate\n28800000,0.0001\n57600000,inf\n")
    assert run(["data", "import", str(f)]) == 2
    assert capsys.readouterr().err == (
        f"error: {f}: funding_rate infinite or beyond ±1 on line(s) 3\n"
    )


def answering(body: object) -> BybitRest:
    """A client whose every request gets `body` as Bybit's `result`."""
    client = BybitRest("http://bybit.test", retries=0)
    payload = {"retCode": 0, "retMsg": "OK", "result": body}
    client.client = httpx.AsyncClient(
        base_url="http://bybit.test",
        transport=httpx.MockTransport(lambda _: httpx.Response(200, text=json.dumps(payload))),
    )
    return client


T = 1_748_538_300_000  # 2025-05-29 17:05 UTC


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["yesterday", "1", "2", "0.5", "1.5", "1", "1"], "start = 'yesterday': not a timestamp"),
        ([f"{T}.5", "1", "2", "0.5", "1.5", "1", "1"], f"start = '{T}.5': not a timestamp"),
        (["1748538300", "1", "2", "0.5", "1.5", "1", "1"], "not a millisecond timestamp"),
        ([], "start = 'None': not a timestamp"),
        (None, "start = 'None': not a timestamp"),
    ],
)
def test_a_kline_without_a_millisecond_timestamp_is_an_exchange_error(
    row: object, message: str
) -> None:
    async def go() -> None:
        async with answering({"list": [row]}) as client:
            await client.klines("BTCUSDT", "1m", 0, 60_000)

    with pytest.raises(ExchangeError, match=r"^Bybit sent BTCUSDT 1m kline ") as err:
        asyncio.run(go())
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["inf", "2", "0.5", "1.5", "1"], "kline[1] = 'inf': out of range"),
        (["1", "2", "0.5", "1.5", "1e400"], "kline volume = '1e400': out of range"),
        (
            ["1", "2e12", "0.5", "1.5", "1"],
            f"impossible price or volume in BTCUSDT 1m kline at {T}",
        ),
    ],
)
def test_non_finite_or_absurd_klines_from_the_exchange_are_never_stored(
    values: list[str], message: str, tmp_path: Path
) -> None:
    rows = [[str(T + 60_000), *values, "1"], [str(T), "1", "2", "0.5", "1.5", "1", "1"]]
    if "impossible" in message:
        rows[0][0] = str(T)
        rows = rows[:1]

    async def go(store: MarketStore) -> int:
        async with answering({"list": rows}) as client:
            return await sync_ohlcv(
                store, client, "BTCUSDT", "1m", T, T + 120_000, now_ms=T + 10**7
            )

    with MarketStore(tmp_path / "m.duckdb") as store:
        with pytest.raises(ExchangeError) as err:
            asyncio.run(go(store))
        assert message in str(err.value)
        assert store.symbols() == []


def test_an_infinite_funding_rate_from_the_exchange_is_never_stored(tmp_path: Path) -> None:
    rows = [
        {"symbol": "BTCUSDT", "fundingRate": "0.0001", "fundingRateTimestamp": str(T)},
        {
            "symbol": "BTCUSDT",
            "fundingRate": "Infinity",
            "fundingRateTimestamp": str(T + 28_800_000),
        },
    ]

    async def go(store: MarketStore) -> int:
        async with answering({"list": rows}) as client:
            return await sync_funding(store, client, "BTCUSDT", T, T + 86_400_000)

    with MarketStore(tmp_path / "m.duckdb") as store:
        with pytest.raises(ExchangeError, match="BTCUSDT fundingRate = 'Infinity': out of range"):
            asyncio.run(go(store))
        ts, _ = store.load_funding("BTCUSDT", None, None)
        assert len(ts) == 0


def test_a_funding_rate_beyond_100_percent_from_the_exchange_is_refused() -> None:
    rows = [{"symbol": "BTCUSDT", "fundingRate": "1.5", "fundingRateTimestamp": str(T)}]

    async def go() -> None:
        async with answering({"list": rows}) as client:
            await client.funding("BTCUSDT", T, T + 1)

    with pytest.raises(
        ExchangeError, match=rf"^Bybit sent an impossible BTCUSDT funding rate at ts {T}$"
    ):
        asyncio.run(go())


def test_data_delete_removes_exactly_a_window_and_only_with_confirm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "m.duckdb"
    monkeypatch.setenv("TRADE_DB", str(db))
    with MarketStore(db) as store:
        store.write_ohlcv(synthetic_market("range", 600, 1, symbol="XUSDT"))
        ts = store.load_bars("XUSDT", "1m", None, None).ts
    lo, hi = int(ts[100]), int(ts[200])
    args = [
        "data",
        "delete",
        "--symbol",
        "XUSDT",
        "--tf",
        "1m",
        "--start",
        iso(lo),
        "--end",
        iso(hi),
    ]
    assert run(args) == 2
    assert (
        f"would delete 100 XUSDT 1m ohlcv rows from {iso(lo)} to {iso(hi)}"
        in capsys.readouterr().err
    )
    assert run([*args, "--confirm"]) == 0
    assert "deleted 100 XUSDT 1m ohlcv rows" in capsys.readouterr().out
    with MarketStore(db) as store:
        left = store.load_bars("XUSDT", "1m", None, None).ts
    assert len(left) == 500 and not ((left >= lo) & (left < hi)).any()
    assert run(["data", "delete", "--symbol", "XUSDT", "--kind", "mark"]) == 2
    assert capsys.readouterr().err == "error: --tf is required to delete mark rows\n"
