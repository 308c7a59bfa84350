"""The engine checkpoint and the session file's schema migrations.

After every exec close a session writes its engine's state (features, conditions, instant values)
to the record; a resume rebuilds the engine from the recorded bars and must arrive at that very
state, so a record whose checkpoint disagrees with its own bars is refused, not trusted. A file of
the previous schema is upgraded in place by the writer (and read as it is by readers)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from fakes.bybit import FakeBybit
from trade.engine.backtest import parse_time
from trade.live.session import SCHEMA_VERSION, SessionRecord

from .cli_run import trade
from .session_proc import EXEC_MS, Session, market_day
from .test_resume import PLAY_ARGS, env, fake

__all__ = ["env", "fake"]  # the fixtures, shared with the resume tests


def test_a_checkpoint_follows_every_exec_close_and_a_resume_must_rebuild_it(
    fake: FakeBybit, env: dict[str, str], tmp_path: Path
) -> None:
    start, end = parse_time("2025-06-11T06:00", "s"), parse_time("2025-06-11T07:15", "e")
    day = market_day(fake, env, start, end)
    session = Session(fake, env, tmp_path, "ck")
    session.start(*PLAY_ARGS)

    async def play() -> None:
        for m in day.minutes():
            await day.play_minute(m, session.wait)

    asyncio.run(play())
    session.stop()
    with SessionRecord(session.path, readonly=True) as rec:
        kept = rec.checkpoint_rows()
        last_instant = int(rec.meta()["last_instant"])
    # the last three exec closes are kept, each with the last bar fed before it was decided
    assert [ts for ts, _, _ in kept] == [last_instant - k * EXEC_MS for k in (2, 1, 0)]
    assert all(bar == ts for ts, bar, _ in kept)
    assert all(state["last_instant"] == ts for ts, _, state in kept)
    assert kept[-1][2]["play"] == "ema_cross"

    # an honest record resumes (its rebuild reaches the checkpoint) ...
    session.start()
    session.stop()
    # ... one whose checkpoint was altered is refused, and left as it is
    con = sqlite3.connect(session.path)
    state = kept[-1][2]
    state["conditions"] = [[None] * len(c) for c in state["conditions"]]
    con.execute("UPDATE checkpoints SET state = ? WHERE ts = ?", (json.dumps(state), last_instant))
    con.commit()
    con.close()
    before = tables(session.path)
    refused = trade("play", "run", "--session", "ck", env=env)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "engine state at 2025-06-11T07:15:00Z differs from its checkpoint" in refused.stderr
    assert "refusing to resume" in refused.stderr
    after = tables(session.path)
    added = after.pop("journal")[len(before.pop("journal")) :]
    assert after == before  # nothing but the refusal's journal line was written
    assert [j[3:5] for j in added] == [
        ("error", "session failed: " + refused.stderr.strip().removeprefix("error: "))
    ]


def tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the record but its meta (where a resume notes its pid before rebuilding)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            n: con.execute(f"SELECT * FROM {n}").fetchall()
            for n in names
            if n not in ("meta", "sqlite_sequence")
        }
    finally:
        con.close()


def test_a_file_of_the_previous_schema_is_upgraded_by_the_writer_and_read_by_readers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    with SessionRecord(path) as rec:
        rec.set_meta(name="old", mode="paper")
        rec.journal(1, "note", "written by schema 1")
    con = sqlite3.connect(path)  # what a file of schema 1 is: no checkpoints table
    con.execute("DROP TABLE checkpoints")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    before = path.read_bytes()

    with SessionRecord(path, readonly=True) as rec:  # `trade play sessions` / `status` read it
        assert rec.meta()["schema_version"] == "1"
        assert rec.checkpoint_rows() == []
    assert path.read_bytes() == before

    with SessionRecord(path) as rec:  # a resume opens it for writing: upgraded in place
        rec.checkpoint(900_000, 900_000, {"n": 1})
        meta, journal = rec.meta(), rec.journal_rows()
        assert rec.checkpoint_rows() == [(900_000, 900_000, {"n": 1})]
    assert SCHEMA_VERSION == 3 and meta["schema_version"] == "3"
    assert [(j["kind"], j["message"]) for j in journal] == [
        ("note", "written by schema 1"),
        ("migrate", "session file upgraded from schema 1 to 2"),
        ("migrate", "session file upgraded from schema 2 to 3"),
    ]
