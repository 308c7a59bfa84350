"""`trade walkforward`: folds, the stitched out-of-sample equity, and no test window's data in
its own parameters (a planted future-only signal is not picked up)."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest

from trade.cli.main import run
from trade.engine.backtest import run_backtest
from trade.play.space import as_text
from trade.report.artifacts import iso
from trade.sweep.run import plan, run_sweep
from trade.sweep.walkforward import folds, walk_forward

ROOT = Path(__file__).resolve().parents[2]
PLAY = ROOT / "plays" / "examples" / "ema_cross.yml"
START, END = "2024-12-01", "2025-04-01"  # 120 days of the bundled 15m bars
PARAMS = ["fast=8..16:4", "slow=30..50:10"]
DAY = 86_400_000


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store") / "market.duckdb"


@pytest.fixture(scope="module")
def wf_plan(db: Path):  # type: ignore[no-untyped-def]
    return plan(str(PLAY), params=PARAMS, start=START, end=END, db=db)


@pytest.fixture(scope="module")
def result(wf_plan):  # type: ignore[no-untyped-def]
    return walk_forward(wf_plan, train="60d", test="20d")


def test_fold_windows() -> None:
    rolling = folds(0, 120 * DAY, 60 * DAY, 20 * DAY, 20 * DAY, anchored=False)
    assert [(f.train, f.test) for f in rolling] == [
        ((0, 60 * DAY), (60 * DAY, 80 * DAY)),
        ((20 * DAY, 80 * DAY), (80 * DAY, 100 * DAY)),
        ((40 * DAY, 100 * DAY), (100 * DAY, 120 * DAY)),
    ]
    anchored = folds(0, 120 * DAY, 60 * DAY, 20 * DAY, 30 * DAY, anchored=True)
    assert [(f.train, f.test) for f in anchored] == [
        ((0, 60 * DAY), (60 * DAY, 80 * DAY)),
        ((0, 90 * DAY), (90 * DAY, 110 * DAY)),
    ]


def test_test_windows_follow_their_train_and_never_overlap(result) -> None:  # type: ignore[no-untyped-def]
    fs = [r.fold for r in result.folds]
    assert len(fs) == 3
    for f in fs:
        assert f.train[1] == f.test[0]  # the test starts where the train ends
    for a, b in itertools.pairwise(fs):
        assert a.test[1] <= b.test[0]
    assert iso(fs[0].test[0]) == "2025-01-30T00:00:00Z"
    # each fold's parameters were chosen on runs over the train window's bars exactly: one
    # return per 15m bar of [train start, train end), none past its end
    for r in result.folds:
        assert len(r.train_rows) == 9
        bars = (r.fold.train[1] - r.fold.train[0]) // (15 * 60_000)
        assert all(row.stats.bars == bars for row in r.train_rows)
        assert len(r.test.equity_ts) and r.test.equity_ts[-1] == r.fold.test[1]


def test_stitched_equity_is_the_folds_test_runs_chained(result, db: Path) -> None:  # type: ignore[no-untyped-def]
    parts, level, start_eq = [], 10_000.0, 10_000.0
    for r in result.folds:
        bt = run_backtest(
            PLAY,
            start=iso(r.fold.test[0]),
            end=iso(r.fold.test[1]),
            overrides={k: as_text(v) for k, v in (r.values or {}).items()},
            db=db,
        )
        assert bt.result["trades_fingerprint"] == r.test.fingerprint
        assert bt.result["metrics"]["sharpe"] == r.out_of_sample
        parts.append(bt.output.equity * (level / start_eq))
        level = float(parts[-1][-1])
    assert np.array_equal(result.stitched, np.concatenate(parts))
    assert result.overall["stitched_return_pct"] == pytest.approx((level / start_eq - 1) * 100)


def test_in_sample_is_the_best_train_run(result, wf_plan) -> None:  # type: ignore[no-untyped-def]
    for r in result.folds:
        best = max(r.train_rows, key=lambda row: row.metrics["sharpe"])
        assert r.values == best.values and r.in_sample == best.metrics["sharpe"]
        assert 0 <= r.diagnostics["pbo"] <= 1 and "deflated_sharpe" in r.diagnostics


def _plant(p, at: int):  # type: ignore[no-untyped-def]
    """The plan's data with every 15m bar from `at` on replaced by a 10-day swing under a 6-hour
    zigzag that whipsaws the short EMAs (on it the slowest pair wins): a signal that exists
    only in the future of `at`."""
    data = p.shared.data["BTCUSDT"]
    b = data.bars["15m"]
    k = np.arange(len(b)) - int(np.searchsorted(b.ts, at))
    late = k >= 0
    swing = 1 + 0.06 * np.sin(2 * np.pi * k / 960)
    zigzag = 1 + 0.004 * np.sign(np.sin(2 * np.pi * k / 24))
    close = np.where(late, 95_000.0 * swing * zigzag, b.close)
    opened = np.where(late, np.concatenate([[close[0]], close[:-1]]), b.open)
    high = np.where(late, np.maximum(opened, close) * 1.0005, b.high)
    low = np.where(late, np.minimum(opened, close) * 0.9995, b.low)
    bars = dataclasses.replace(b, open=opened, high=high, low=low, close=close)
    planted = dataclasses.replace(data, bars={**data.bars, "15m": bars})
    shared = dataclasses.replace(p.shared, data={"BTCUSDT": planted}, token="planted")
    return dataclasses.replace(p, shared=shared)


def test_a_planted_future_only_signal_is_not_picked_up(result, wf_plan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fold2 = result.folds[1].fold
    planted = _plant(wf_plan, fold2.test[0])
    b = walk_forward(planted, train="60d", test="20d")
    # what a look-ahead would choose: the best on fold 2's test window of the planted data
    peek = run_sweep(planted, tmp_path / "peek", window=fold2.test)
    best_on_test = max(peek.rows, key=lambda r: r.metrics["sharpe"]).values
    assert best_on_test == {"fast": 16, "slow": 50} != result.folds[1].values  # a peek would
    # fold 1 and fold 2's choices saw none of it: identical to the real data's
    for k in (0, 1):
        assert b.folds[k].values == result.folds[k].values
        assert b.folds[k].in_sample == result.folds[k].in_sample
        assert [r.fingerprint for r in b.folds[k].train_rows] == [
            r.fingerprint for r in result.folds[k].train_rows
        ]
    assert b.folds[0].test.fingerprint == result.folds[0].test.fingerprint
    assert b.folds[1].test.fingerprint != result.folds[1].test.fingerprint  # it did trade on it


def test_the_cli_writes_folds_and_the_stitched_curve(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "wf"
    code = run(["--db", str(db), "walkforward", "--play", str(PLAY), "--train", "60d", "--test", "20d",
                "--param", PARAMS[0], "--param", PARAMS[1], "--start", START, "--end", END,
                "--out", str(out), "--workers", "2"])  # fmt: skip
    said = capsys.readouterr().out
    assert code == 0, said
    assert sorted(f.name for f in out.iterdir()) == [
        "fold-1", "fold-2", "fold-3", "folds.csv", "stitched_equity.csv", "sweep.html",
        "walkforward.json",
    ]  # fmt: skip
    assert "ema_cross · BTCUSDT · 3 folds · sharpe" in said
    assert (out / "folds.csv").read_text().count("\n") == 4
    assert "Walk-forward folds" in (out / "sweep.html").read_text()


def test_train_and_test_longer_than_the_window_is_exit_2(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "wf"
    code = run(["--db", str(db), "walkforward", "--play", str(PLAY), "--train", "100d", "--test", "30d",
                "--param", "fast=8,12", "--start", START, "--end", END, "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        "error: --train 100d + --test 30d do not fit in the window "
        "2024-12-01T00:00:00Z → 2025-04-01T00:00:00Z"
    )
    assert not out.exists()
