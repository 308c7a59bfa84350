"""Several processes on one market store: readers share it, a writer waits its turn, then gives up
with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trade.cli.main import run

ROOT = Path(__file__).resolve().parents[2]
CSV = "ts_ms,open,high,low,close,volume\n60000,1,2,0.5,1.5,1\n"


def hold(db: Path, seconds: float, read_only: bool) -> subprocess.Popen[str]:
    """Another process holding the store open; returns once the lock is taken."""
    code = (
        "import duckdb, sys, time\n"
        f"con = duckdb.connect({str(db)!r}, read_only={read_only})\n"
        "print('held', flush=True)\n"
        f"time.sleep({seconds})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "m.duckdb"
    monkeypatch.setenv("TRADE_DB", str(path))
    return path


def test_four_backtests_at_once_on_one_fresh_store_all_succeed(tmp_path: Path, db: Path) -> None:
    warm = ["backtest", "run", "--play", "ema_cross", "--no-report", "--out", str(tmp_path / "w")]
    assert run(["--db", str(tmp_path / "warm.duckdb"), *warm]) == 0  # kernels compiled and cached
    cmd = [sys.executable, "-m", "trade.cli.main", "--db", str(db), "backtest", "run"]
    procs = [
        subprocess.Popen(
            [*cmd, "--play", "ema_cross", "--no-report", "--out", str(tmp_path / f"run{k}")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
    prints = {(tmp_path / f"run{k}" / "trades.csv").read_text() for k in range(4)}
    assert len(prints) == 1  # the same trades from every process


def test_a_backtest_reads_while_another_process_reads(db: Path, tmp_path: Path) -> None:
    assert run(["data", "status", "--json"]) == 0  # creates the store with the sample
    holder = hold(db, 30, read_only=True)
    try:
        out = tmp_path / "run"
        args = ["backtest", "run", "--play", "ema_cross", "--no-report", "--out", str(out)]
        assert run(args) == 0
        assert (out / "trades.csv").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_writer_waits_for_a_reader_with_a_message(db: Path, tmp_path: Path) -> None:
    """The reader leaves only once the writer, in its own process, said it is waiting."""
    assert run(["data", "status", "--json"]) == 0
    f = tmp_path / "bybit_XUSDT_1m.csv"
    f.write_text(CSV)
    holder = hold(db, 600, read_only=True)
    writer = subprocess.Popen(
        [sys.executable, "-m", "trade.cli.main", "data", "import", str(f)],
        env={**os.environ, "TRADE_DB_WAIT": "60"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stderr is not None
        said = next((line for line in iter(writer.stderr.readline, "") if "in use" in line), "")
        assert said == (
            f"market store {db} is in use by another process (PID {holder.pid}); waiting up to "
            "60 s\n"
        )
        assert writer.poll() is None  # still waiting for the reader
        holder.kill()
        holder.wait()
        assert writer.wait(120) == 0, writer.stderr.read()
    finally:
        for proc in (holder, writer):
            proc.kill()
            proc.wait()


def test_a_writer_gives_up_with_one_line_and_nothing_written(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["data", "status", "--json"]) == 0
    capsys.readouterr()
    f = tmp_path / "bybit_XUSDT_1m.csv"
    f.write_text(CSV)
    monkeypatch.setenv("TRADE_DB_WAIT", "0.3")
    holder = hold(db, 30, read_only=False)
    try:
        assert run(["data", "import", str(f)]) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"market store {db} is in use by another process (PID {holder.pid}); waiting up to 0.3 s",
        f"error: market store {db} is still in use by another process (PID {holder.pid}) after "
        "0.3 s; try again when it has finished (or raise TRADE_DB_WAIT)",
    ]
    assert run(["data", "status", "--json"]) == 0
    assert "XUSDT" not in capsys.readouterr().out


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "1e9"])
def test_a_bad_wait_setting_is_refused(
    value: str, db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["data", "status", "--json"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("TRADE_DB_WAIT", value)
    holder = hold(db, 30, read_only=False)
    try:
        assert run(["data", "status"]) == 2
    finally:
        holder.kill()
        holder.wait()
    assert capsys.readouterr().err == (
        f"error: TRADE_DB_WAIT={value!r}: expected seconds between 0 and 86400\n"
    )


def test_a_new_store_appears_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB writes a new file's header after the file exists; a reader opening it in between is
    told it is 'not a valid DuckDB database file'. So DuckDB never creates the store's own path:
    the store is made under another name and linked into place whole."""
    import duckdb

    from trade.data import opening

    path = tmp_path / "m.duckdb"
    created: list[str] = []
    real = duckdb.connect

    def watched(database: str, *args: object, **kw: object) -> duckdb.DuckDBPyConnection:
        if not Path(database).exists():
            created.append(Path(database).name)
        return real(database, *args, **kw)

    monkeypatch.setattr(opening.duckdb, "connect", watched)
    opening.connect(path, read_only=False).close()
    assert created == [f".m.duckdb.{os.getpid()}.new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.duckdb"]
    opening.connect(path, read_only=True).close()


def test_a_store_made_meanwhile_by_another_process_is_kept(tmp_path: Path) -> None:
    """Two processes creating the same store: the second one's empty file never replaces the
    first one's (which may hold data by then)."""
    import duckdb

    from trade.data import opening

    path = tmp_path / "m.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE mine AS SELECT 42 AS x")
    con.close()
    opening._create(path)  # lost the race: the file appeared after this process looked
    con = opening.connect(path, read_only=True)
    assert con.execute("SELECT x FROM mine").fetchall() == [(42,)]
    con.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.duckdb"]
