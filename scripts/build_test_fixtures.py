"""Rebuild the real-data test fixtures (tests/fixtures/market/) from the full market data set.

Usage: python scripts/build_test_fixtures.py MARKET_DIR   (or set TRADE_MARKET_DATA)

The tests read only these committed files, so a clone anywhere runs them. Files the tests read
whole (exact row counts, the gap fixture, the two-year 15m series of the TA-Lib oracle and the
backtest benchmark) are copied byte for byte; the rest are cut to the rows the tests use, line by
line (values untouched), and re-gzipped deterministically. Writes README.md with every file's
source, range, row count and sha256.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import os
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "market"
ONE_MINUTE = "one-minute month"  # cut to the span of bybit_BTCUSDT_1m.csv.gz

# name -> why it is here and, for cut files, the kept rows as (first ts, last ts) or a row count
WHOLE = {
    "bybit_BTCUSDT_1m.csv.gz": "sync, simulator cross-check, engine 1m tests, resampling",
    "bybit_BTCUSDT_1m_gaps.csv.gz": "gap detection and healing (42 known holes)",
    "bybit_BTCUSDT_1m_gaps.missing.csv": "the ground truth of the gap fixture",
    "bybit_BTCUSDT_15m.csv.gz": "TA-Lib oracle, parity, structures, backtest benchmark",
    "bybit_BTCUSDT_1h.csv.gz": "resampling to 4h/1d, indicator CLI, fake exchange",
    "bybit_BTCUSDT_4h.csv.gz": "resampling ground truth",
    "bybit_BTCUSDT_1d.csv.gz": "resampling ground truth",
    "bybit_BTCUSDT_funding.csv.gz": "fake exchange, backtest benchmark",
    "bybit_BTCUSDT_mark_1h.csv.gz": "fake exchange, backtest benchmark",
    "bybit_ETHUSDT_1h.csv.gz": "import of every kind (exact row count)",
    "bybit_ETHUSDT_4h.csv.gz": "import of Parquet",
    "bybit_ETHUSDT_funding.csv.gz": "import of funding",
    "bybit_ETHUSDT_mark_1h.csv.gz": "import of mark prices",
    "bybit_instruments.csv": "fake exchange instruments",
}
CUT: dict[str, tuple[str, str | int | tuple[int, int]]] = {
    "bybit_BTCUSDT_5m.csv.gz": ("resampling 1m to 5m (the 1m month only)", ONE_MINUTE),
    "bybit_ETHUSDT_5m.csv.gz": ("a valid file beside a bad one (the 1m month only)", ONE_MINUTE),
    "bybit_ETHUSDT_15m.csv.gz": ("TA-Lib oracle on ETHUSDT (first 20,000 bars)", 20_000),
    "bybit_ETHUSDT_1m_ties.csv.gz": (
        "indicator ties as TA-Lib: typical prices equal up to rounding",
        (1749828360000, 1750038300000),
    ),
    "bybit_BTCUSDT_1m_ties_a.csv.gz": (
        "indicator ties as TA-Lib: a typical-price tie (MFI)",
        (1750860300000, 1750902240000),
    ),
    "bybit_BTCUSDT_1m_ties_b.csv.gz": (
        "indicator ties as TA-Lib: an RSI window flat to the last bit (STOCHRSI)",
        (1751136300000, 1751178240000),
    ),
    "binance_BTCUSDT_5m_flat.csv.gz": (
        "indicator ties as TA-Lib: a run of identical bars (KAMA, STOCHRSI)",
        (1729990800000, 1730230500000),
    ),
}
# cut files whose rows come from a differently named file of the data set
SOURCE = {
    "bybit_ETHUSDT_1m_ties.csv.gz": "bybit_ETHUSDT_1m.csv.gz",
    "bybit_BTCUSDT_1m_ties_a.csv.gz": "bybit_BTCUSDT_1m.csv.gz",
    "bybit_BTCUSDT_1m_ties_b.csv.gz": "bybit_BTCUSDT_1m.csv.gz",
    "binance_BTCUSDT_5m_flat.csv.gz": "binance_BTCUSDT_5m.csv.gz",
}
SPEC_SOURCE = "tick/qty step as the data shows; min notional, leverage, MMR as Bybit publishes"


def main(market: Path) -> None:
    if not (market / "MANIFEST.tsv").is_file():
        sys.exit(f"error: {market}: no MANIFEST.tsv; expected the market data set directory")
    OUT.mkdir(parents=True, exist_ok=True)
    with open(market / "MANIFEST.tsv") as fh:
        manifest = {r["file"]: r for r in csv.DictReader(fh, delimiter="\t")}
    rows = []
    for name, why in WHOLE.items():
        shutil.copyfile(market / name, OUT / name)
        rows.append((name, why, "whole file"))
    _, first, last = _span(market / "bybit_BTCUSDT_1m.csv.gz", iso=False)
    for name, (why, keep) in CUT.items():
        span = (int(first), int(last)) if keep == ONE_MINUTE else keep
        _cut(market / SOURCE.get(name, name), OUT / name, span)  # type: ignore[arg-type]
        rows.append((name, why, "cut"))
    _write_readme(rows, manifest)
    total = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"fixtures: {len(rows)} files, {total / 1e6:.2f} MB")


def _cut(src: Path, dst: Path, keep: tuple[int, int] | int) -> None:
    with gzip.open(src, "rt", newline="") as fh:
        header, *lines = fh.readlines()
    if isinstance(keep, int):
        kept = lines[:keep]
    else:
        kept = [ln for ln in lines if keep[0] <= int(ln.split(",", 1)[0]) <= keep[1]]
    with open(dst, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write((header + "".join(kept)).encode())


def _span(path: Path, iso: bool = True) -> tuple[int, str, str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        lines = fh.read().splitlines()[1:]
    if not lines or not lines[0].split(",", 1)[0].isdigit():
        return len(lines), "", ""
    first, last = (int(lines[i].split(",", 1)[0]) for i in (0, -1))
    return (len(lines), _iso(first), _iso(last)) if iso else (len(lines), str(first), str(last))


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def _write_readme(rows: list[tuple[str, str, str]], manifest: dict[str, dict[str, str]]) -> None:
    lines = [
        "# Real market data fixtures",
        "",
        "Real Bybit (and one Binance) USDT-perpetual klines, funding and mark prices for the tests and",
        "benchmarks, so a clone anywhere runs them. Built by `scripts/build_test_fixtures.py` from the",
        "project's full market data set (format: gzip CSV with a header, UTC, `ts_ms` = bar open in",
        "epoch ms; see `docs/data.md`). Whole files are byte-identical to the data set; cut files keep",
        "a contiguous run of the original lines, values untouched. `sha256sum -c SHA256SUMS` verifies",
        "them.",
        "",
        "| file | rows | first | last | kept | original source | used by |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, why, how in sorted(rows):
        n, first, last = _span(OUT / name)
        source = manifest.get(SOURCE.get(name, name), {}).get("source", SPEC_SOURCE)
        source = source.split(" (blob")[0]
        lines.append(f"| `{name}` | {n} | {first} | {last} | {how} | {source} | {why} |")
    sums = [f"{hashlib.sha256((OUT / n).read_bytes()).hexdigest()}  {n}" for n, _, _ in rows]
    (OUT / "SHA256SUMS").write_text("\n".join(sorted(sums, key=lambda s: s[66:])) + "\n")
    (OUT / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    arg = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TRADE_MARKET_DATA")
    if not arg:
        sys.exit(
            "usage: python scripts/build_test_fixtures.py MARKET_DIR (or set TRADE_MARKET_DATA)"
        )
    main(Path(arg))
