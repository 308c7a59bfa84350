"""A session file killed in the middle of writing opens cleanly: a process writing a session
record as fast as it can (bars in batches, order intents with full sync, WAL checkpoints) is
SIGKILLed at random moments, engine checkpoints of a realistic size among them; each time the file
passes SQLite's integrity check, holds only whole transactions (the last checkpoint is whole and
belongs to the last whole batch or the one before), and the next writer carries on where the last
committed one ended."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from trade.live.session import SCHEMA_VERSION, SessionRecord

BATCH = 100
WRITER = """
import sys
from pathlib import Path
from trade.live.session import SessionRecord

rec = SessionRecord(Path(sys.argv[1]))
n = rec.con.execute("SELECT count(*) FROM bars").fetchone()[0]
i = 0
while True:
    rec.bars([("1m", (n + k) * 60_000, 1.0, 2.0, 0.5, 1.5, 10.0, "rest") for k in range(BATCH)])
    n += BATCH
    rec.order_intent(f"o-{n}", n, {"qty": n})
    rec.journal(n, "test", f"batch up to {n}")
    rec.checkpoint(n, n * 60_000, {"n": n, "features": [[k * 0.5] * 50 for k in range(200)]})
    if i == 0:
        print("writing", flush=True)
    if i % 5 == 4:
        rec.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    i += 1
""".replace("BATCH", str(BATCH))


def test_a_kill_during_writes_and_checkpoints_leaves_a_file_that_opens_cleanly(
    tmp_path: Path,
) -> None:
    path = tmp_path / "torn.sqlite"
    rng = random.Random(5)
    counts = []
    for _ in range(20):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            bars = con.execute("SELECT count(*), max(ts) FROM bars").fetchone()
            last_order = con.execute("SELECT max(ts) FROM orders").fetchone()[0]
            kept = con.execute("SELECT ts, state FROM checkpoints ORDER BY ts").fetchall()
        finally:
            con.close()
        assert bars[0] % BATCH == 0 and bars[1] == (bars[0] - 1) * 60_000  # whole batches only
        # a batch's intent is written after it: the last one belongs to the last batch or the one
        # before (a writer killed between the two leaves that batch without one, for good)
        assert last_order in (bars[0], bars[0] - BATCH)
        assert len(kept) <= 3 and kept[-1][0] in (bars[0], bars[0] - BATCH)
        assert [json.loads(state)["n"] for _, state in kept] == [ts for ts, _ in kept]
        counts.append(bars[0])
        with SessionRecord(path, readonly=True) as rec:  # the session reader accepts it too
            assert rec.meta()["schema_version"] == str(SCHEMA_VERSION)
    assert counts == sorted(counts) and counts[-1] > counts[0] > 0
