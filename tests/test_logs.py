"""Structured logs: JSON lines with secrets redacted wherever they appear, rotated by size, and a
live session's journal followed line by line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from trade import logs
from trade.live.session import SessionRecord


@pytest.fixture
def logdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TRADE_LOGS", str(tmp_path / "logs"))
    monkeypatch.setenv("TRADE_SESSIONS", str(tmp_path / "sessions"))
    monkeypatch.setenv("BYBIT_DEMO_API_SECRET", "sEcReTvAlUe123")
    yield tmp_path / "logs"
    logger = logging.getLogger(logs.LOGGER)
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    logs._secrets.clear()


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_secrets_never_reach_the_log(logdir: Path) -> None:
    logs.setup()
    logs.register_secret("KeYfRoMfIlE99")
    logs.log(
        logging.ERROR, "signed request failed: sign=abcdef0123 with key KeYfRoMfIlE99",
        api_key="KeYfRoMfIlE99", body={"note": "secret sEcReTvAlUe123", "qty": 0.5},
        headers={"X-BAPI-SIGN": "f00d", "X-BAPI-TIMESTAMP": "1"}, text="api_secret: hunter22",
    )  # fmt: skip
    (rec,) = lines(logdir / "trade.jsonl")
    assert rec["level"] == "error" and rec["logger"] == "trade"
    assert rec["message"] == "signed request failed: sign=<redacted> with key <redacted>"
    assert rec["api_key"] == "<redacted>"
    assert rec["body"] == {"note": "secret <redacted>", "qty": 0.5}
    assert rec["headers"] == {"X-BAPI-SIGN": "<redacted>", "X-BAPI-TIMESTAMP": "1"}
    assert rec["text"] == "api_secret: <redacted>"
    raw = (logdir / "trade.jsonl").read_text()
    for secret in ("KeYfRoMfIlE99", "sEcReTvAlUe123", "abcdef0123", "f00d", "hunter22"):
        assert secret not in raw


def test_the_file_rotates_by_size_and_keeps_a_few(logdir: Path) -> None:
    logs.setup(max_bytes=2000, backups=2)
    for i in range(100):
        logs.log(logging.INFO, f"line {i:03d}", n=i)
    names = sorted(p.name for p in logdir.iterdir())
    assert names == ["trade.jsonl", "trade.jsonl.1", "trade.jsonl.2"]
    assert all(p.stat().st_size <= 2000 for p in logdir.iterdir())
    assert lines(logdir / "trade.jsonl")[-1]["message"] == "line 099"
    kept = [r["n"] for name in names[::-1] for r in lines(logdir / name)]
    assert kept == list(range(100 - len(kept), 100))  # the newest, in order, none twice


def test_a_session_journal_is_logged(logdir: Path) -> None:
    logs.setup()
    rec = SessionRecord.create("s1", {"mode": "paper"})
    rec.listeners.append(logs.journal_listener("s1"))
    rec.journal(1_000, "guard", "max_leverage: long entry shrunk", guard="max_leverage")
    rec.journal(2_000, "rejected", "entry rejected by Bybit (retCode 110007)", code=110007)
    rec.close()
    got = [(r["level"], r["session"], r["kind"], r["ts"], r["message"], r["data"])
           for r in lines(logdir / "trade.jsonl")]  # fmt: skip
    assert got == [
        ("info", "s1", "guard", 1000, "max_leverage: long entry shrunk",
         {"guard": "max_leverage"}),
        ("warning", "s1", "rejected", 2000, "entry rejected by Bybit (retCode 110007)",
         {"code": 110007}),
    ]  # fmt: skip


def test_ordinary_fields_and_words_are_kept(logdir: Path) -> None:
    logs.setup()
    logs.log(logging.INFO, "design: signals=3 tokens left", signals=3, design="a", qty=0.1)
    (rec,) = lines(logdir / "trade.jsonl")
    assert rec["message"] == "design: signals=3 tokens left"
    assert (rec["signals"], rec["design"], rec["qty"]) == (3, "a", 0.1)
