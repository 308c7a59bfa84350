"""`trade sweep`: every row is the backtest of its combination, tables are reproducible, an
interrupted sweep keeps its rows and resumes, bad input is refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trade.cli.main import run
from trade.engine.backtest import run_backtest
from trade.play.space import as_text
from trade.report.artifacts import iso
from trade.report.metrics import OBJECTIVES
from trade.sweep import executors
from trade.sweep.diagnostics import CurveStats
from trade.sweep.run import Interrupted, plan, run_sweep

ROOT = Path(__file__).resolve().parents[2]
PLAY = ROOT / "plays" / "examples" / "ema_cross.yml"
START, END = "2025-06-05", "2025-06-19"
PARAMS = ["fast=8..16:4", "slow=30..50:10"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store") / "market.duckdb"


def _plan(db: Path, params: list[str] = PARAMS, **kw):  # type: ignore[no-untyped-def]
    return plan(str(PLAY), params=params, start=START, end=END, db=db, **kw)


def _assert_rows_are_backtests(p, rows, db: Path) -> None:  # type: ignore[no-untyped-def]
    for r in rows:
        a, b = p.shared.windows[r.symbol]
        bt = run_backtest(
            PLAY,
            symbol=r.symbol,
            start=iso(a),
            end=iso(b),
            overrides={k: as_text(v) for k, v in r.values.items()},
            db=db,
        )
        assert r.fingerprint == bt.result["trades_fingerprint"], r.values
        assert r.metrics == bt.result["metrics"], r.values
        # what the diagnostics read of the curve is the backtest's curve's
        start_eq = bt.compiled.play.account.starting_equity
        assert r.stats == CurveStats.of(bt.output.equity, start_eq), r.values
        assert r.stats.bars == len(bt.output.equity) > 0


def test_every_grid_row_equals_the_backtest_of_its_combination(db: Path, tmp_path: Path) -> None:
    p = _plan(db)
    res = run_sweep(p, tmp_path / "s")
    assert [r.values for r in res.rows] == [
        {"fast": f, "slow": s} for f in (8, 12, 16) for s in (30, 40, 50)
    ]
    assert len({r.fingerprint for r in res.rows}) == 9  # the parameters change the trades
    _assert_rows_are_backtests(p, res.rows, db)
    assert set(OBJECTIVES) <= set(res.rows[0].metrics)  # every objective is a metric
    assert iso(p.shared.windows["BTCUSDT"][0]) == "2025-06-05T00:00:00Z"


def test_optuna_rows_equal_backtests_and_reruns_are_identical(db: Path, tmp_path: Path) -> None:
    p = _plan(db, params=["fast=5..20:1", "slow=25..60:5"])
    a = run_sweep(p, tmp_path / "a", search="optuna", trials=12, seed=7)
    b = run_sweep(_plan(db, params=["fast=5..20:1", "slow=25..60:5"]), tmp_path / "b",
                  search="optuna", trials=12, seed=7)  # fmt: skip
    assert (tmp_path / "a" / "sweep.csv").read_bytes() == (
        tmp_path / "b" / "sweep.csv"
    ).read_bytes()
    assert 1 < len(a.rows) <= 12
    assert all(r.values["fast"] in range(5, 21) and r.values["slow"] % 5 == 0 for r in a.rows)
    _assert_rows_are_backtests(p, a.rows, db)
    c = run_sweep(p, tmp_path / "c", search="optuna", trials=12, seed=8)
    assert [r.values for r in c.rows] != [r.values for r in b.rows]  # the seed matters


def _count_evaluated_here(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The combinations this process runs from now on (the trial numbers, in order)."""
    ran: list[int] = []
    real = executors.evaluate

    def counting(shared, job):  # type: ignore[no-untyped-def]
        ran.append(job.index)
        return real(shared, job)

    monkeypatch.setattr(executors, "evaluate", counting)
    return ran


def test_identical_sweeps_give_identical_tables_whatever_the_workers(
    db: Path, tmp_path: Path
) -> None:
    run_sweep(_plan(db), tmp_path / "one", workers=1)
    run_sweep(_plan(db), tmp_path / "two", workers=2)
    one = (tmp_path / "one" / "sweep.csv").read_bytes()
    assert one == (tmp_path / "two" / "sweep.csv").read_bytes()
    assert one.count(b"\n") == 10
    assert (tmp_path / "one" / "winner.yml").read_bytes() == (
        tmp_path / "two" / "winner.yml"
    ).read_bytes()


def test_two_workers_are_this_process_and_one_forked_worker(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--workers 2` keeps two processes busy, not three: this one runs combinations between
    handing chunks to its one forked worker (which runs the rest)."""
    import multiprocessing

    here = _count_evaluated_here(monkeypatch)
    forked: list[tuple[int, list[int]]] = []  # workers forked, and what this process ran by then
    real_fork = executors.LocalProcesses._fork

    def fork(self):  # type: ignore[no-untyped-def]
        real_fork(self)
        forked.append((len(self.procs), list(here)))

    monkeypatch.setattr(executors.LocalProcesses, "_fork", fork)
    res = run_sweep(_plan(db), tmp_path / "two", workers=2)
    assert forked == [(1, [0])]  # one worker, forked after this process ran the first combination
    assert sorted(r.index for r in res.rows) == list(range(9))
    # 9 single-combination chunks: after the first, two go to the worker and this process takes
    # the next, and so on
    assert 2 <= len(here) <= 7
    assert multiprocessing.active_children() == []  # the worker has exited


@pytest.mark.parametrize("failing", [0, 1, 8])
def test_an_error_in_any_process_stops_the_sweep_with_that_error(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    """Whether this process or the worker ran the failing combination (0 runs here, before the
    fork; 1 goes to the worker first), the sweep raises the combination's own error, the worker
    is gone, and the rows finished before it are kept."""
    import multiprocessing

    from trade.errors import DataError

    real = executors.evaluate

    def failing_at(shared, job):  # type: ignore[no-untyped-def]
        if job.index == failing:
            raise DataError(f"BTCUSDT: no data for trial {failing}")
        return real(shared, job)

    monkeypatch.setattr(executors, "evaluate", failing_at)
    with pytest.raises(DataError, match=f"no data for trial {failing}"):
        run_sweep(_plan(db), tmp_path / "s", workers=2)
    assert multiprocessing.active_children() == []
    kept = (tmp_path / "s" / "sweep.csv").read_text().splitlines()[1:]
    assert all(not line.startswith(f"{failing},") for line in kept)


def test_an_error_the_worker_cannot_send_back_still_stops_the_sweep(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception that cannot be pickled (its class is local) reaches this process as a
    RuntimeError naming it, not as a worker that hangs or dies silently."""
    import multiprocessing

    class Local(Exception):
        pass

    real = executors.evaluate

    def failing_at_one(shared, job):  # type: ignore[no-untyped-def]
        if job.index == 1:  # the worker's first combination
            raise Local("trial 1 went wrong")
        return real(shared, job)

    monkeypatch.setattr(executors, "evaluate", failing_at_one)
    with pytest.raises(RuntimeError, match=r"Local\('trial 1 went wrong'\) could not be sent back"):
        run_sweep(_plan(db), tmp_path / "s", workers=2)
    assert multiprocessing.active_children() == []


def test_the_winner_play_backtests_to_the_winner_row(db: Path, tmp_path: Path) -> None:
    p = _plan(db)
    res = run_sweep(p, tmp_path / "s")
    best = max(res.rows, key=lambda r: r.metrics["sharpe"])
    assert res.winner == best.values
    a, b = p.shared.windows["BTCUSDT"]
    bt = run_backtest(tmp_path / "s" / "winner.yml", start=iso(a), end=iso(b), db=db)
    assert bt.result["trades_fingerprint"] == best.fingerprint


def _full_and_cut_after_four(db: Path, tmp_path: Path, workers: int) -> tuple[Path, Path]:
    """The sweep run whole (with 1 worker) into `full`, and run again into `cut` with `workers`
    until Ctrl-C after its fourth row: `cut` keeps exactly those four rows."""
    full = tmp_path / "full"
    run_sweep(_plan(db), full)
    out = tmp_path / "cut"

    def stop_after_four(done: int, total: int, best, values) -> None:  # type: ignore[no-untyped-def]
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="4 of 9 runs kept"):
        run_sweep(_plan(db), out, workers=workers, progress=stop_after_four)
    assert (out / "sweep.csv").read_text().count("\n") == 5
    return full, out


def test_ctrl_c_keeps_finished_rows_and_the_same_command_resumes(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full, out = _full_and_cut_after_four(db, tmp_path, workers=1)
    assert sorted(f.name for f in out.iterdir()) == ["stats.npz", "sweep.csv", "sweep.json"]
    with np.load(out / "stats.npz") as kept:  # what the diagnostics read of each kept row
        assert kept["trial"].tolist() == [0, 1, 2, 3]
        assert kept["symbol"].tolist() == ["BTCUSDT"] * 4
    ran = _count_evaluated_here(monkeypatch)
    run_sweep(_plan(db), out)
    assert ran == [4, 5, 6, 7, 8]  # only what the interrupted run had not finished
    assert (out / "sweep.csv").read_bytes() == (full / "sweep.csv").read_bytes()
    assert (out / "winner.yml").read_bytes() == (full / "winner.yml").read_bytes()
    # the kept rows' statistics came back whole: the same diagnostics
    resumed = json.loads((out / "sweep.json").read_text())
    assert resumed["diagnostics"] == json.loads((full / "sweep.json").read_text())["diagnostics"]


def test_ctrl_c_with_two_workers_keeps_the_finished_rows_and_resumes(
    db: Path, tmp_path: Path
) -> None:
    """With a forked worker, Ctrl-C keeps every row collected so far (a chunk still running in
    the worker is lost and runs again on resume)."""
    full, out = _full_and_cut_after_four(db, tmp_path, workers=2)
    run_sweep(_plan(db), out, workers=2)
    assert (out / "sweep.csv").read_bytes() == (full / "sweep.csv").read_bytes()
    assert (out / "winner.yml").read_bytes() == (full / "winner.yml").read_bytes()


def test_resuming_another_sweep_is_refused(db: Path, tmp_path: Path) -> None:
    run_sweep(_plan(db), tmp_path / "s")
    with pytest.raises(Exception, match="holds another sweep \\(differs in space\\)"):
        run_sweep(_plan(db, params=["fast=8..16:4", "slow=30..60:10"]), tmp_path / "s")


def test_several_symbols_in_one_sweep(db: Path, tmp_path: Path) -> None:
    p = _plan(db, params=["fast=8,12", "slow=40"], symbols=["BTCUSDT", "ETHUSDT"])
    res = run_sweep(p, tmp_path / "s", workers=2)
    assert [(r.index, r.symbol) for r in res.rows] == [
        (0, "BTCUSDT"), (0, "ETHUSDT"), (1, "BTCUSDT"), (1, "ETHUSDT")
    ]  # fmt: skip
    _assert_rows_are_backtests(p, res.rows, db)
    mean = {i: np.mean([r.metrics["sharpe"] for r in res.rows if r.index == i]) for i in (0, 1)}
    assert res.winner == {"fast": 8 if mean[0] >= mean[1] else 12, "slow": 40}
    assert set(res.diagnostics["per_symbol"]) == {"BTCUSDT", "ETHUSDT"}


BAD_SWEEP = """\
sweep:
  params:
    fats: {low: 5, high: 20, step: 5}
    slow: {low: 60, high: 40}
"""


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (BAD_SWEEP, ":29: sweep.params.slow: empty range: low 60 is above high 40"),
        (
            BAD_SWEEP.replace("{low: 60, high: 40}", "{choices: [40, 50]}"),
            ":28: sweep.params.fats: unknown variable 'fats'; did you mean 'fast'?",
        ),
        (
            "sweep:\n  params: {fast: {choices: [5, 10]}}\n  constraints: [fast < slwo]\n",
            ":28: sweep.constraints[0]: constraint 'fast < slwo': unknown variable 'slwo'",
        ),
        (
            "sweep:\n  params: {fast: {choices: [5, 10]}}\n  objective: sharp\n",
            ":28: sweep.objective: 'sharp' is not a metric; did you mean 'sharpe'?",
        ),
    ],
)
def test_a_malformed_sweep_block_is_one_line_exit_2_and_writes_nothing(
    block: str, expected: str, db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    play = tmp_path / "p.yml"
    play.write_text(PLAY.read_text() + block)
    out = tmp_path / "out"
    code = run(["--db", str(db), "sweep", "--play", str(play), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: {play}{expected}" in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--objective", "sharp"], "error: --objective 'sharp': not a metric; did you mean 'sharpe'?"),
        (["--param", "fats=1..3"], "error: --param 'fats=1..3': unknown variable 'fats'; did you mean 'fast'?"),
        (["--param", "fast=9..3"], "error: --param 'fast=9..3': empty range: low 9 is above high 3"),
        (["--param", "fast"], "error: --param 'fast': expected name=lo..hi:step, name=lo..hi or name=a,b,c"),
        (["--search", "optuna"], "error: --search optuna needs --trials N (1 or more)"),
        (["--search", "random"], "error: --search 'random': expected optuna"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_exit_2_and_write_nothing(
    args: list[str], expected: str, db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = run(["--db", str(db), "sweep", "--play", str(PLAY), "--param", "slow=40,50",
                "--start", START, "--end", END, "--out", str(out), *args])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[0].startswith(expected), err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_the_cli_writes_the_table_the_winner_and_the_page(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = run(["--db", str(db), "sweep", "--play", str(PLAY), "--grid", "--param", PARAMS[0], "--param", PARAMS[1],
                "--start", START, "--end", END, "--out", str(out), "--workers", "2"])  # fmt: skip
    said = capsys.readouterr().out
    assert code == 0
    assert sorted(f.name for f in out.iterdir()) == [
        "stats.npz", "sweep.csv", "sweep.html", "sweep.json", "winner.yml"
    ]  # fmt: skip
    assert "ema_cross · BTCUSDT · 9 runs · sharpe" in said
    assert "winner sharpe " in said and "deflated Sharpe" in said and "PBO" in said
    page = (out / "sweep.html").read_text()
    assert "LightweightCharts" in page and "fast (down) × slow (across)" in page


@pytest.mark.parametrize(("given", "cpus", "used"), [([], 3, 3), (["--workers", "1"], 3, 1)])
def test_the_cli_runs_one_process_per_cpu_unless_told(
    db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    given: list[str],
    cpus: int,
    used: int,
) -> None:
    import os

    import trade.sweep.run

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    seen: list[int] = []
    real = trade.sweep.run.run_sweep

    def recording(*a, **kw):  # type: ignore[no-untyped-def]
        seen.append(kw["workers"])
        return real(*a, **kw)

    monkeypatch.setattr(trade.sweep.run, "run_sweep", recording)
    code = run(["--db", str(db), "sweep", "--play", str(PLAY), "--param", PARAMS[0], "--param", PARAMS[1],
                "--start", START, "--end", END, "--out", str(tmp_path / "o"), "--no-report", *given])  # fmt: skip
    assert code == 0
    assert seen == [used]
    assert (tmp_path / "o" / "sweep.csv").read_text().count("\n") == 10


def test_the_store_is_read_once_and_features_and_marks_once_per_definition_and_history(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trade.data
    from trade.features import indicators

    opened: list[object] = []
    real_open = trade.data.open_reader

    def counting_open(*a, **k):  # type: ignore[no-untyped-def]
        opened.append(a)
        return real_open(*a, **k)

    monkeypatch.setattr(trade.data, "open_reader", counting_open)
    p = _plan(db, symbols=["BTCUSDT", "ETHUSDT"])
    assert len(opened) == 1  # both symbols from one read-only opening; workers get arrays
    computed: list[tuple[str, int]] = []
    real_compute = indicators.compute_batch

    def counting_compute(kind, params, bars, source):  # type: ignore[no-untyped-def]
        computed.append((bars.symbol, params["length"]))
        return real_compute(kind, params, bars, source)

    monkeypatch.setattr(indicators, "compute_batch", counting_compute)
    from trade.sim.tape import Tape

    marks_derived: list[int] = []  # the mark over every intrabar bar: once per symbol's window
    real_load = Tape.load

    def counting_load(self, ts_open, *a, **k):  # type: ignore[no-untyped-def]
        marks_derived.append(len(ts_open))
        return real_load(self, ts_open, *a, **k)

    monkeypatch.setattr(Tape, "load", counting_load)
    run_sweep(p, tmp_path / "s")
    assert len(opened) == 1
    assert len(marks_derived) == 2 and min(marks_derived) > 10_000  # 9 runs per symbol
    # per symbol: ema_slow once per slow (3); ema_fast once per (fast, slow), since the slow EMA
    # sets how much history every feature of the run starts from (9): 12 of 18 computations
    for sym in ("BTCUSDT", "ETHUSDT"):
        mine = sorted(length for s, length in computed if s == sym)
        assert mine == sorted([30, 40, 50] + [f for f in (8, 12, 16) for _ in range(3)])


def test_a_window_cut_like_another_of_its_span_is_the_window_cut_afresh(db: Path) -> None:
    from trade.engine.market import window_of
    from trade.play import validate_play_text

    p = _plan(db)
    data = p.shared.data["BTCUSDT"]
    a, b = p.shared.windows["BTCUSDT"]
    short, long = (
        validate_play_text(p.play_text, str(PLAY), {"fast": "8", "slow": slow})
        for slow in ("30", "50")
    )
    first = window_of(data, short, a, b)
    fresh, like = window_of(data, long, a, b), window_of(data, long, a, b, like=first)
    tf = long.exec_tf
    assert len(fresh.bars[tf]) > len(first.bars[tf])  # the longer warmup: more history
    assert fresh.bars.keys() == like.bars.keys()
    for name in ("ts", "open", "high", "low", "close", "volume"):
        for k in fresh.bars:
            assert np.array_equal(getattr(fresh.bars[k], name), getattr(like.bars[k], name))
    assert like.intrabar is first.intrabar  # shared, not rebuilt
    for name in ("ts_open", "ts_close", "open", "high", "low", "close", "fallback_ts"):
        assert np.array_equal(getattr(fresh.intrabar, name), getattr(like.intrabar, name))
    assert fresh.intrabar.fallbacks == like.intrabar.fallbacks
    assert np.array_equal(fresh.funding_ts, like.funding_ts)
    assert np.array_equal(fresh.funding_rate, like.funding_rate)
    assert (fresh.mark is None) == (like.mark is None)
    if fresh.mark is not None and like.mark is not None:
        assert np.array_equal(fresh.mark.ts, like.mark.ts)
        assert np.array_equal(fresh.mark.close, like.mark.close)
    assert (fresh.start_ms, fresh.end_ms, fresh.missing_exec) == (
        like.start_ms,
        like.end_ms,
        like.missing_exec,
    )


def test_sweeps_started_in_the_same_second_never_share_a_default_directory(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared directory would be resumed by the second sweep while the first still writes it."""
    import datetime as dt

    from trade.cli import options

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Frozen:
            return cls(2026, 1, 2, 3, 4, 5, tzinfo=tz)

    monkeypatch.setattr(options, "datetime", Frozen)
    monkeypatch.chdir(tmp_path)
    cmd = ["--db", str(db), "sweep", "--play", str(PLAY), "--param", "fast=8", "--param",
           "slow=30", "--start", START, "--end", END, "--no-report"]  # fmt: skip
    assert run(cmd) == 0 and run(cmd) == 0
    made = sorted((tmp_path / "runs" / "ema_cross").iterdir())
    assert len(made) == 2
    for d in made:
        assert d.name.startswith("sweep-20260102T030405-") and len(d.name) == len("sweep-") + 22
        assert len((d / "sweep.csv").read_text().splitlines()) == 2  # the header and one row


def test_the_mean_over_symbols_does_not_depend_on_the_order_rows_arrive_in() -> None:
    """Workers finish in any order; the objective of a combination over three symbols is summed in
    the sweep's symbol order, so its last bit (a tie, Optuna's next trial) cannot follow them."""
    from trade.sweep.jobs import Row
    from trade.sweep.run import aggregate

    stats = CurveStats.of(np.array([1000.0, 1001.0, 1002.0]), 1000.0)
    values = {"A": 1e16, "B": 1.0, "C": -1e16}  # (1e16 + 1) − 1e16 = 0, (1e16 − 1e16) + 1 = 1
    rows = [Row(0, s, {"x": 1}, {"sharpe": v}, "f", stats) for s, v in values.items()]
    arrivals = [rows, rows[::-1], [rows[0], rows[2], rows[1]]]
    got = {aggregate(order, "sharpe", ["A", "B", "C"])[0] for order in arrivals}
    assert got == {0.0}  # 1e16 + 1.0 − 1e16 in the order A, B, C
    assert aggregate(rows, "sharpe", ["A", "C", "B"])[0] == 1.0 / 3.0  # another symbol order


def test_a_bankrupt_combination_is_kept_in_the_table_and_never_the_winner(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """At 50× with 1% slippage the first round trip costs more than the account holds: its equity
    goes below zero. Its Sharpe (a single ruinous loss, then flat) is above the 100× and 200×
    runs', which bleed fees to a few cents: by its metric it would win."""
    import csv

    text = (
        PLAY.read_text()
        .replace("leverage: 1", 'leverage: "{{lev}}"')
        .replace("slippage_bps: 2", "slippage_bps: 100")
        .replace("variables: {fast: 20, slow: 50}", "variables: {fast: 8, slow: 30, lev: 1}")
        .replace("  stop_loss: {type: percent, value: 3}\n", "")
    )
    play = tmp_path / "lev.yml"
    play.write_text(text)
    out = tmp_path / "out"
    code = run(["--db", str(db), "sweep", "--play", str(play), "--param", "lev=50,100,200",
                "--start", START, "--end", END, "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with (out / "sweep.csv").open() as f:
        rows = {int(r["lev"]): r for r in csv.DictReader(f)}
    assert sorted(rows) == [50, 100, 200]
    assert float(rows[50]["final_equity"]) < 0 and float(rows[50]["max_drawdown_pct"]) > 100
    assert [float(rows[k]["max_drawdown_pct"]) < 100 for k in (100, 200)] == [True, True]
    sharpe = {k: float(r["sharpe"]) for k, r in rows.items()}
    assert sharpe[50] > sharpe[100] > sharpe[200]

    def refuse(constant: str) -> None:
        raise AssertionError(f"sweep.json holds {constant}")

    summary = json.loads((out / "sweep.json").read_text(), parse_constant=refuse)
    assert summary["winner"]["values"] == {"lev": 100}
    assert summary["winner"]["objective"] == sharpe[100]
    assert "lev: 100" in (out / "winner.yml").read_text()
    diag = summary["diagnostics"]["per_symbol"]["BTCUSDT"]
    assert diag["trials"] == 3 and 0.0 <= diag["pbo"] <= 1.0
    assert 0.0 <= diag["deflated_sharpe"] <= 1.0
    # the bankrupt neighbour has no objective, like a run without trades
    assert summary["diagnostics"]["neighbourhood"]["neighbours"]["lev"]["below"] == {
        "value": 50,
        "objective": None,
    }
