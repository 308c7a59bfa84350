"""A session compiles its Play's kernels before it takes instants: on a cold numba cache (a fresh
install) the first instant would otherwise spend seconds compiling while its orders wait. Each
session runs in its own process with its own empty NUMBA_CACHE_DIR, so nothing another test
compiled (in this process or in the cache) can hide a compilation."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from fakes.bybit import FakeBybit
from fakes.market_day import MarketDay
from trade.engine.backtest import parse_time
from trade.live.session import SessionRecord

from .cli_run import process_env
from .session_proc import Session, market_day

# `trade play run`, with every numba compilation written down (one JSON line each) with where
# it happened: "set-up" before the first instant, the instant while one is being evaluated,
# "between" after the first instant when none is
COUNTING = """
import json, os, sys
from numba.core import event
from trade.cli.main import run
from trade.live.runner import LiveRunner

log = sys.argv.pop(1)
where = ["set-up"]


class Count(event.Listener):
    def on_start(self, ev):
        name = ev.data["dispatcher"].py_func.__qualname__
        with open(log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "where": where[0], "name": name}) + "\\n")

    def on_end(self, ev):
        pass


evaluate = LiveRunner._evaluate


async def counted(self, t):
    where[0] = str(t)
    try:
        await evaluate(self, t)
    finally:
        where[0] = "between"


LiveRunner._evaluate = counted
event.register("numba:compile", Count())
sys.exit(run(sys.argv[1:]))
"""


def _compiled(log: Path, pid: int) -> dict[str, list[str]]:
    """Where the process `pid` compiled what."""
    out: dict[str, list[str]] = defaultdict(list)
    for line in log.read_text().splitlines() if log.exists() else []:
        e = json.loads(line)
        if e["pid"] == pid:
            out[e["where"]].append(e["name"])
    return dict(out)


def _assert_compiled_before_the_instants(log: Path, pid: int) -> None:
    """The process compiled the Play's EMA kernel (the cache was cold), and only in its set-up."""
    compiled = _compiled(log, pid)
    assert list(compiled) == ["set-up"], compiled
    assert "ema_inc" in compiled["set-up"]


def _session(
    fake: FakeBybit, tmp_path: Path, start: str, end: str, mode: str
) -> tuple[Session, MarketDay, Callable[..., int]]:
    """An ema_cross session over [start, end], each of its starts with an empty numba cache."""
    env = process_env(tmp_path, fake, demo_keys=mode == "demo")
    day = market_day(fake, env, parse_time(start, "s"), parse_time(end, "e"))
    log = tmp_path / "compiled.jsonl"
    session = Session(fake, env, tmp_path, "cold", launcher=["-c", COUNTING, str(log)],
                      streams=2 if mode == "demo" else 1)  # fmt: skip

    def cold_start(*args: str) -> int:
        """Start it with an empty numba cache of its own; its process id."""
        session.env = {**env, "NUMBA_CACHE_DIR": str(tmp_path / f"numba-{session.starts}")}
        session.start(*args)
        return session.pid

    return session, day, cold_start


def test_a_new_demo_session_compiles_before_its_first_instant_and_its_first_order(
    fake: FakeBybit, tmp_path: Path
) -> None:
    """From 07:00 the first instant is 07:15; the first order goes out at 08:00 (the EMAs cross)
    and needs prices rounded to the tick."""
    session, day, cold_start = _session(fake, tmp_path, "2025-06-11T07:00", "2025-06-11T08:15",
                                        "demo")  # fmt: skip
    pid = cold_start("--play", "ema_cross", "--mode", "demo")
    asyncio.run(day.play(wait=session.wait, trades=True))
    session.stop()
    with SessionRecord(session.path, readonly=True) as rec:
        assert {o["ts"] for o in rec.order_rows()} == {parse_time("2025-06-11T08:00", "s")}
        instants = [t for t, *_ in rec.checkpoint_rows()]
    assert instants[-1] == parse_time("2025-06-11T08:15", "s")
    _assert_compiled_before_the_instants(tmp_path / "compiled.jsonl", pid)


def test_a_resumed_paper_session_compiles_before_its_first_instant(
    fake: FakeBybit, tmp_path: Path
) -> None:
    """Stopped before its first instant, a session resumes with its warmup still to feed."""
    session, day, cold_start = _session(fake, tmp_path, "2025-06-11", "2025-06-11T00:30", "paper")
    first = cold_start("--play", "ema_cross", "--mode", "paper")
    session.stop()
    second = cold_start()  # mode, symbol and Play come from the session itself
    asyncio.run(day.play(wait=session.wait))
    session.stop()
    log = tmp_path / "compiled.jsonl"
    _assert_compiled_before_the_instants(log, first)
    _assert_compiled_before_the_instants(log, second)
