"""Where a run writes: refused before any work when it cannot be written, one directory per run
even for runs started in the same second, and a run that loses a race for `--out` says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from trade.cli.main import run
from trade.errors import InputError
from trade.report.artifacts import write_run

SYNTH = ["--synthetic", "--bars", "20000", "--no-report"]


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (
            "{tmp}/file.txt/run",
            "--out {tmp}/file.txt/run: {tmp}/file.txt is a file, not a directory",
        ),
        ("/proc/run", "--out /proc/run: cannot write in /proc ("),  # then the system's reason
        ("/sys/x/run", "--out /sys/x/run: cannot write in /sys ("),
    ],
)
def test_an_unwritable_out_is_refused_before_the_store_is_opened(
    out: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.txt").write_text("x")
    db = tmp_path / "m.duckdb"
    args = ["--db", str(db), "backtest", "run", "--play", "ema_cross"]
    assert run([*args, "--out", out.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message.format(tmp=tmp_path)}") and err.count("\n") == 1
    assert not db.exists()  # refused before any work


def test_a_read_only_working_directory_is_refused_for_the_default_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir("/proc")
    assert run(["--db", str(tmp_path / "m.duckdb"), "backtest", "run", "--play", "ema_cross"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: runs/ (the default output directory): cannot write in /proc (")


def test_runs_started_together_with_other_options_get_their_own_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    base = ["backtest", "run", "--play", "ema_cross", *SYNTH]
    for extra in ([], [], ["--intrabar", "optimistic"], ["--mode", "replay"]):
        assert run([*base, *extra]) == 0
    names = sorted(p.name for p in (tmp_path / "runs" / "ema_cross").iterdir())
    assert len(names) == 4
    kinds = sorted("-".join(n.split("-")[1:3]) for n in names)
    assert kinds == [
        "fast-optimistic",
        "fast-pessimistic",
        "fast-pessimistic",
        "replay-pessimistic",
    ]
    assert [p.name for p in tmp_path.rglob(".*")] == []  # no hidden temporaries left


def test_a_run_that_loses_the_race_for_its_out_keeps_the_winner_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"

    def other_run_finishes_first(_: Path) -> None:
        out.mkdir()
        (out / "result.json").write_text("{}")

    with pytest.raises(InputError, match="another run wrote there meanwhile"):
        write_run(out, {}, "t", "e", "", {"x": other_run_finishes_first})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert [p.name for p in out.iterdir()] == ["result.json"]
