"""Every example Play on the bundled sample: replay's trades equal fast mode's exactly (same
fingerprint), runs are deterministic, and each example actually trades."""

from __future__ import annotations

from pathlib import Path

import pytest

from trade.engine.backtest import run_backtest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "plays" / "examples").glob("*.yml"))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store") / "market.duckdb"


@pytest.mark.parametrize("play", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_fast_equals_replay(play: Path, db: Path) -> None:
    fast = run_backtest(play, mode="fast", db=db)
    replay = run_backtest(play, mode="replay", db=db)
    assert fast.result["trades"] > 0, f"{play.stem} made no trades on the sample"
    assert fast.result["trades_fingerprint"] == replay.result["trades_fingerprint"]
    assert fast.trades_text == replay.trades_text
    assert fast.equity_text == replay.equity_text


def test_two_runs_are_byte_identical(db: Path) -> None:
    a = run_backtest(ROOT / "plays/examples/ema_cross.yml", db=db)
    b = run_backtest(ROOT / "plays/examples/ema_cross.yml", db=db)
    assert a.trades_text == b.trades_text
    assert a.result["trades_fingerprint"] == b.result["trades_fingerprint"]
    assert a.result["input_hash"] == b.result["input_hash"]
