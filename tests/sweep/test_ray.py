"""`trade sweep --ray`: the same rows on a Ray cluster (a local one started here) as in local
processes; an address where no cluster answers is one line, exit 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray

from trade.cli.main import run
from trade.sweep.run import plan, run_sweep

ROOT = Path(__file__).resolve().parents[2]
PLAY = ROOT / "plays" / "examples" / "ema_cross.yml"
START, END = "2025-06-05", "2025-06-19"
PARAMS = ["fast=8..16:4", "slow=30..50:10"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store") / "market.duckdb"


@pytest.fixture
def cluster():  # type: ignore[no-untyped-def]
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def _plan(db: Path):  # type: ignore[no-untyped-def]
    return plan(str(PLAY), params=PARAMS, start=START, end=END, db=db)


def test_ray_rows_equal_local_rows_grid_and_optuna(cluster, db: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for kind, extra in (("grid", {}), ("optuna", {"trials": 6, "seed": 3})):
        local = run_sweep(_plan(db), tmp_path / f"{kind}-local", search=kind, workers=2, **extra)
        remote = run_sweep(_plan(db), tmp_path / f"{kind}-ray", search=kind, ray="auto", **extra)
        assert [r.fingerprint for r in remote.rows] == [r.fingerprint for r in local.rows]
        assert (tmp_path / f"{kind}-ray" / "sweep.csv").read_bytes() == (
            tmp_path / f"{kind}-local" / "sweep.csv"
        ).read_bytes()


def test_an_unreachable_ray_address_is_one_line_exit_2(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not ray.is_initialized()
    out = tmp_path / "out"
    code = run(["--db", str(db), "sweep", "--play", str(PLAY), "--param", "fast=8,12",
                "--start", START, "--end", END, "--ray", "127.0.0.1:9", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: --ray 127.0.0.1:9: cannot reach a Ray cluster (")
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()
