"""The first run on a machine: it says it is compiling, compiles only the kernels the Play uses, and
a second run loads them from the cache without a word."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from numba import njit
from numba.core import event

from trade.jitnotice import MESSAGE, compile_notice


def test_notice_once_at_the_first_compile_and_not_for_compiled_code() -> None:
    @njit
    def twice(x: float) -> float:
        return 2.0 * x

    said: list[str] = []
    with compile_notice(said.append):
        assert twice(1.5) == 3.0
        assert twice(2) == 4.0  # a second signature compiles again: still one notice
    assert said == [MESSAGE]
    said.clear()
    with compile_notice(said.append):
        assert twice(2.5) == 5.0
    assert said == []


@pytest.mark.slow
def test_cold_run_says_compiling_and_warm_run_does_not(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    args = ["backtest", "run", "--play", "ema_cross", "--synthetic", "--bars", "20000"]
    args += ["--no-report", "--db", str(tmp_path / "m.duckdb")]

    def run(out: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from trade.cli.main import run; sys.exit(run(sys.argv[1:]))"
        return subprocess.run(
            [sys.executable, "-c", code, *args, "--out", str(tmp_path / out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    cold = run("a")
    assert cold.returncode == 0, cold.stderr
    assert cold.stderr.count(MESSAGE) == 1
    cached = {p.name.split("-")[0] for p in (tmp_path / "numba").rglob("*.nbi")}
    assert "steps.ema_run" in cached
    assert not {c for c in cached if c.startswith("steps.") and c != "steps.ema_run"}
    warm = run("b")
    assert warm.returncode == 0, warm.stderr
    assert MESSAGE not in warm.stderr
    assert (tmp_path / "a" / "trades.csv").read_text() == (
        tmp_path / "b" / "trades.csv"
    ).read_text()


def test_collector_paused_during_compiles_and_restored_after() -> None:
    import gc

    from trade.gcpause import gc_paused_while_compiling

    seen: list[bool] = []

    @njit
    def inner(x: float) -> float:
        return x + 1.0

    @njit
    def outer(x: float) -> float:
        return inner(x) * 2.0  # compiling outer compiles inner inside it (nested events)

    class Spy(event.Listener):
        def on_start(self, ev: object) -> None:
            seen.append(gc.isenabled())

        def on_end(self, ev: object) -> None:
            pass

    assert gc.isenabled()
    with gc_paused_while_compiling(), event.install_listener("numba:compile", Spy()):
        assert outer(1.0) == 4.0
    assert len(seen) >= 2 and not any(seen)  # off when each compile starts, the nested one too
    assert gc.isenabled()
    with gc_paused_while_compiling(), pytest.raises(Exception, match="undefined_name"):
        njit(lambda: undefined_name)()  # type: ignore[name-defined]  # noqa: F821
    assert gc.isenabled()
