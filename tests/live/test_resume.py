"""Durable paper sessions: `trade play run` in a subprocess is killed with SIGKILL at random moments
of a replayed day and restarted with the same `--session` each time; at the end the session holds
exactly the backtest's orders, fills and trades on the same bars. Instants that closed while it
was down are decided but journaled as missed, never traded late. Bad resumes are refused."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.bybit import FakeBybit
from trade.engine.backtest import parse_time
from trade.live.session import SessionRecord

from .cli_run import process_env, trade
from .session_proc import Session, market_day

PLAY_ARGS = ["--play", "ema_cross", "--mode", "paper"]


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, fake: FakeBybit) -> dict[str, str]:
    return process_env(tmp_path, fake)


def test_an_instant_that_closed_while_the_session_was_down_is_missed_not_traded(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    start, end = parse_time("2025-06-11T06:00", "s"), parse_time("2025-06-11T09:00", "e")
    entry = parse_time("2025-06-11T08:00", "s")  # the backtest goes short here
    day = market_day(fake, env, start, end)
    session = Session(fake, env, tmp_path, "down")
    session.start(*PLAY_ARGS)

    async def nobody(close: int) -> None:
        pass

    async def play() -> None:
        for m in day.minutes():
            close = m + 60_000
            if close == entry - 5 * 60_000:
                session.kill()  # down from 07:55 to 08:02: 08:00 closes while it is away
            if entry - 5 * 60_000 <= close <= entry + 2 * 60_000:
                await day.play_minute(m, nobody)
                if close == entry + 2 * 60_000:
                    session.start()
                    day.push_closed(close)
                    await session.wait(close)
                continue
            await day.play_minute(m, session.wait)

    asyncio.run(play())
    session.stop()
    with SessionRecord(session.path, readonly=True) as rec:
        missed = [j for j in rec.journal_rows() if j["kind"] == "missed"]
        decisions = [(d["ts"], d["kind"], d["side"]) for d in rec.decision_rows()]
        orders, fills = rec.order_rows(), rec.fill_rows()
    assert [(j["ts"], j["data"]["decisions"]) for j in missed] == [
        (entry, ["entry short 100% (entry_short)"])
    ]
    # 120 s by the fake's frozen clock, plus the real seconds the client's clock ran since it synced
    assert re.search(r"evaluated 1[2-9]\d s late$", missed[0]["message"]), missed[0]["message"]
    assert decisions == [(entry, "entry", "short")]  # decided, recorded, never traded
    assert orders == [] and fills == []


def make_record(path: Path, play: Path, **meta: str) -> None:
    from trade.engine.provenance import sha256_text

    text = play.read_text()
    with SessionRecord(path) as rec:
        values = {"mode": "paper", "symbol": "BTCUSDT", "environment": "live",
                  "play_text": text, "play_path": str(play), "play_sha256": sha256_text(text)}  # fmt: skip
        rec.set_meta(**(values | meta))


@pytest.fixture
def play_copy(tmp_path: Path) -> Path:
    from trade.play import find_play

    copy = tmp_path / "mine.yml"
    copy.write_text(Path(find_play("ema_cross")).read_text())
    return copy


@pytest.mark.parametrize(
    ("meta", "args", "edit", "message"),
    [
        ({}, ["--mode", "demo"], False,
         "session 's1' is paper (--mode); it resumes as it began: drop --mode"),
        ({}, ["--symbol", "ethusdt"], False,
         "session 's1' is BTCUSDT (--symbol); it resumes as it began: drop --symbol"),
        ({}, [], True, "the Play changed since session 's1' began; add --accept-play-change"),
        ({"mode": "demo", "environment": "demo"}, [], False, "error: no demo API keys"),
        ({"mode": "live", "environment": "live"}, [], False,
         "session 's1' trades real money: add --confirm to resume it"),
        ({}, ["--on-foreign", "adopt"], False,
         "--on-foreign is for demo and live sessions (paper has no exchange)"),
        ({"mode": "demo", "environment": "demo"}, ["--on-foreign", "keep"], False,
         "--on-foreign 'keep': expected halt or adopt"),
        ({"schema_version": "4"}, [], False,
         "session schema version 4 is newer than this trade's (3); upgrade trade to open it"),
    ],
)  # fmt: skip
def test_a_resume_that_does_not_fit_the_session_is_refused_and_the_file_kept(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path, play_copy: Path,
    meta: dict[str, str], args: list[str], edit: bool, message: str,
) -> None:  # fmt: skip
    path = tmp_path / ".trade" / "sessions" / "s1.sqlite"
    make_record(path, play_copy, **meta)
    if edit:
        play_copy.write_text(play_copy.read_text() + "\n# tuned\n")
    before = path.read_bytes()
    done = trade("play", "run", "--session", "s1", *args, env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert path.read_bytes() == before
    assert fake.requests == [] and sum(fake.connects.values()) == 0


def test_a_corrupt_session_file_is_refused_never_replaced(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / ".trade" / "sessions" / "s1.sqlite"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database, it was torn by a bad disk" * 100)
    done = trade("play", "run", "--session", "s1", env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"{path}: not a session file" in done.stderr
    assert path.read_bytes() == b"this is not a database, it was torn by a bad disk" * 100
    assert fake.requests == []


def test_a_changed_play_is_accepted_with_the_flag_and_journaled(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path, play_copy: Path
) -> None:
    start, end = parse_time("2025-06-11T06:00", "s"), parse_time("2025-06-11T08:30", "e")
    day = market_day(fake, env, start, end)
    session = Session(fake, env, tmp_path, "tuned")
    session.start("--play", str(play_copy))
    half = list(day.minutes())[: len(day.minutes()) // 2]
    rest = list(day.minutes())[len(half) :]

    async def play(minutes: list[int]) -> None:
        for m in minutes:
            await day.play_minute(m, session.wait)

    asyncio.run(play(half))
    session.stop()
    play_copy.write_text(play_copy.read_text() + "\n# same rules, a comment added\n")
    refused = trade("play", "run", "--session", "tuned", env=env)
    assert refused.returncode == 2 and "--accept-play-change" in refused.stderr
    session.start("--accept-play-change")
    asyncio.run(play(rest))
    session.stop()
    with SessionRecord(session.path, readonly=True) as rec:
        journal = rec.journal_rows()
        meta = rec.meta()
        decisions = [(d["ts"], d["kind"], d["side"]) for d in rec.decision_rows()]
    assert [j["message"][:60] for j in journal if j["kind"] == "play"] == [
        "the Play changed since the session began; accepted (--accept"
    ]
    assert meta["play_text"] == play_copy.read_text()
    assert [j for j in journal if j["kind"] == "rebuild"] == []  # a comment changes nothing
    assert decisions == [(parse_time("2025-06-11T08:00", "s"), "entry", "short")]


def test_a_second_process_on_the_same_session_is_refused_with_the_holder(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    day = market_day(
        fake, env, parse_time("2025-06-11T06:00", "s"), parse_time("2025-06-11T07:00", "e")
    )
    session = Session(fake, env, tmp_path, "one")
    session.start(*PLAY_ARGS)
    assert session.proc is not None
    second = trade("play", "run", "--session", "one", env=env)
    assert second.returncode == 2
    assert second.stderr == (
        f"error: session 'one' is held by pid {session.proc.pid} (session 'one'): one process "
        "per session and per environment, account and symbol\n"
    )
    session.alive()
    session.kill()  # the kernel drops a dead holder's lock: the restart is not blocked
    session.start()
    session.stop()
    del day


def test_a_second_demo_session_on_the_same_account_and_symbol_is_refused(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    import hashlib

    env = env | {"BYBIT_DEMO_API_KEY": fake.api_key, "BYBIT_DEMO_API_SECRET": fake.api_secret}
    start, end = parse_time("2025-06-11T06:00", "s"), parse_time("2025-06-11T07:00", "e")
    market_day(fake, env, start, end)
    first = Session(fake, env, tmp_path, "d1")
    first.start("--play", "ema_cross", "--mode", "demo")
    assert first.proc is not None
    second = trade("play", "run", "--play", "ema_cross", "--mode", "demo", "--session", "d2",
                   env=env)  # fmt: skip
    account = hashlib.sha256(fake.api_key.encode()).hexdigest()[:12]
    assert second.returncode == 2
    assert second.stderr == (
        f"error: BTCUSDT on demo account {account} is held by pid {first.proc.pid} (session "
        "'d1'): one process per session and per environment, account and symbol\n"
    )
    assert fake.api_key not in second.stderr
    # another symbol on the same account is another key
    other = Session(fake, env, tmp_path, "d3")
    other.start("--play", "ema_cross", "--mode", "demo", "--symbol", "ETHUSDT")
    other.stop()
    first.alive()
    first.stop()
