"""Fuzzing `trade data import`: generated market files (values, timestamp units, header and field
damage, encodings, gzip and Parquet containers) imported in-process into one store. The property:
exit code 0 or 2 and never a traceback, each case in under 5 s of CPU and 500 MB, and after a
refusal the store exactly as it was. Two shards of 250 files, so pytest-xdist spreads them over its
workers."""

from __future__ import annotations

import gzip
import io
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from store_snapshot import store_snapshot
from trade.cli.main import run

from .test_fuzz_plays import LIMIT_BYTES, LIMIT_S, Tally, case_seconds, peak_rss

pytestmark = pytest.mark.slow

SHARDS, PER_SHARD = 2, 250
HEADERS = {
    "ohlcv": "ts_ms,open,high,low,close,volume",
    "mark": "ts_ms,open,high,low,close",
    "funding": "ts_ms,funding_rate",
}
UNITS = [1] * 6 + [1000, 1_000_000, 1 / 1000]  # ms mostly; then µs, ns and seconds
NUMBERS = st.one_of(
    st.floats(0.5, 2.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["inf", "-inf", "nan", "1e400", "", "abc", "0", "-1", "1" * 60, "0x10"]),
)


@st.composite
def market_file(draw: st.DrawFn) -> tuple[str, bytes, list[str]]:
    kind = draw(st.sampled_from(sorted(HEADERS)))
    cols = HEADERS[kind].split(",")
    if draw(st.integers(0, 9)) == 0:  # a damaged header
        cols = draw(st.permutations(cols))[: draw(st.integers(1, len(cols)))]
    start = draw(st.integers(0, 2_000_000)) * 60_000 + 1_699_999_980_000 * draw(st.integers(0, 1))
    step = draw(st.sampled_from([60_000] * 6 + [3_600_000, 28_800_000, 0, -60_000, 61_000]))
    unit = draw(st.sampled_from(UNITS))
    damaged = draw(st.integers(0, 3)) == 0  # else every value is plausible
    lines = [",".join(cols)]
    for i in range(draw(st.integers(0, 40))):
        ts = (start + i * step) * unit
        if kind == "funding":
            vals = [draw(NUMBERS if damaged else st.floats(-0.01, 0.01))]
        else:
            lo = draw(st.floats(1.0, 100.0))
            vals = [lo * 1.01, lo * 1.02, lo, lo * 1.015]  # open, high, low, close: consistent
            if damaged and draw(st.integers(0, 4)) == 0:
                vals[draw(st.integers(0, 3))] = draw(NUMBERS)
            if kind == "ohlcv":
                vals.append(draw(NUMBERS if damaged else st.floats(0, 1e6)))
        fields = [str(int(ts)) if math.isfinite(ts) else str(ts), *map(str, vals)]
        if draw(st.integers(0, 30)) == 0:
            fields = fields[: draw(st.integers(0, len(fields)))]
        lines.append(",".join(fields))
    text = "\n".join(lines) + "\n"
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "utf-16", "latin-1"]))
    raw = text.encode(encoding)
    if draw(st.integers(0, 15)) == 0:  # binary damage
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=40)) + raw[at:]
    container = draw(
        st.sampled_from(
            ["csv"] * 4 + ["csv.gz"] * 2 + ["gz-cut", "parquet", "parquet", "parquet-junk"]
        )
    )
    suffix = {"gz-cut": "csv.gz", "parquet-junk": "parquet"}.get(container, container)
    if container in ("csv.gz", "gz-cut"):
        raw = gzip.compress(raw, mtime=0)
        if container == "gz-cut":
            raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif container == "parquet":
        raw = to_parquet(text) or raw
    args = ["--symbol", "XUSDT"] + (["--kind", kind] if kind != "ohlcv" else [])
    if kind != "funding":
        args += ["--tf", draw(st.sampled_from(["1m"] * 6 + ["1h", "D", "7m"]))]
    return suffix, raw, args


def to_parquet(text: str) -> bytes | None:
    """The CSV as a Parquet file when Arrow can read it at all (else the CSV bytes are used)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        table = pacsv.read_csv(io.BytesIO(text.encode()))
    except pa.ArrowException:
        return None
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@pytest.mark.parametrize("shard", range(SHARDS))
def test_generated_market_files_exit_0_or_2_and_a_refusal_changes_nothing(
    shard: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "m.duckdb"
    monkeypatch.setenv("TRADE_DB", str(db))
    tally = Tally()
    refused = 0
    state = [store_snapshot(db, 300)]  # the store after the previous case

    @seed(30_000 + shard)
    @settings(
        max_examples=PER_SHARD,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=market_file())
    def one(case: tuple[str, bytes, list[str]]) -> None:
        nonlocal refused
        suffix, raw, args = case
        f = tmp_path / f"fuzz.{suffix}"
        f.write_bytes(raw)
        tally.cases += 1
        code, took = case_seconds(lambda: run(["data", "import", str(f), *args]))
        err = capsys.readouterr().err
        assert code in (0, 2), (args, code, err)
        assert "Traceback" not in err and len(err) < 2000, err
        assert took < LIMIT_S and peak_rss() - tally.base_rss < LIMIT_BYTES
        tally.longest = max(tally.longest, (took, "data import"))
        after = store_snapshot(db, 300)
        if code == 2:
            refused += 1
            assert after == state[0]
        state[0] = after

    one()
    print(
        f"\nfuzz files shard {shard}: {tally.cases} files, {refused} refused, "
        f"longest {tally.longest[0]:.2f} s"
    )
    assert tally.cases >= PER_SHARD
