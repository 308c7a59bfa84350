"""Rebuild the bundled sample (src/trade/sample/) from the full Bybit market data set.

Usage: python scripts/build_sample.py MARKET_DIR   (or set TRADE_MARKET_DATA)
The sample keeps the 1m month, enough 15m/1h/4h/D history before it for long warmups, funding,
1h mark prices and instrument specs, as zstd Parquet (well under 10 MB).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

OUT = Path(__file__).resolve().parents[1] / "src" / "trade" / "sample"
END = 1751328000000  # 2025-07-01 00:00 UTC
FROM = {  # first bar kept per timeframe
    "1m": 0,
    "15m": 1730419200000,  # 2024-11-01
    "1h": 1717200000000,  # 2024-06-01
    "4h": 0,
    "1d": 0,
    "mark_1h": 1746057600000,  # 2025-05-01
    "funding": 1717200000000,
}


def main(market: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for sym in ("BTCUSDT", "ETHUSDT"):
        for tf in ("1m", "15m", "1h", "4h", "1d"):
            _cut(market / f"bybit_{sym}_{tf}.csv.gz", OUT / f"ohlcv_{sym}_{tf}.parquet", FROM[tf])
        _cut(
            market / f"bybit_{sym}_mark_1h.csv.gz", OUT / f"mark_{sym}_1h.parquet", FROM["mark_1h"]
        )
        _cut(
            market / f"bybit_{sym}_funding.csv.gz", OUT / f"funding_{sym}.parquet", FROM["funding"]
        )
    pq.write_table(
        pacsv.read_csv(market / "bybit_instruments.csv"),
        OUT / "instruments.parquet",
        compression="zstd",
    )
    total = sum(f.stat().st_size for f in OUT.glob("*.parquet"))
    print(f"sample: {len(list(OUT.glob('*.parquet')))} files, {total / 1e6:.2f} MB")


def _cut(src: Path, dst: Path, first: int) -> None:
    t: pa.Table = pacsv.read_csv(src)
    ts = t.column("ts_ms")
    t = t.filter(pc.and_(pc.greater_equal(ts, first), pc.less(ts, END)))
    pq.write_table(t, dst, compression="zstd", compression_level=19)


if __name__ == "__main__":
    arg = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TRADE_MARKET_DATA")
    if not arg:
        sys.exit("usage: python scripts/build_sample.py MARKET_DIR (or set TRADE_MARKET_DATA)")
    main(Path(arg))
