"""`trade exchange check` against the fake exchange, and a planted key pair that must never appear
in anything the program produces, on every path that can fail."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from fakes.bybit import FakeBybit
from trade.cli.main import run as cli
from trade.exchange.bybit import BybitError, BybitStream, Credentials, Rejected

from .conftest import buy, client, run


@pytest.fixture
def demo_keys(fake: FakeBybit, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("BYBIT_DEMO_API_KEY", fake.api_key)
    monkeypatch.setenv("BYBIT_DEMO_API_SECRET", fake.api_secret)
    monkeypatch.delenv("BYBIT_LIVE_API_KEY", raising=False)
    monkeypatch.delenv("BYBIT_LIVE_API_SECRET", raising=False)


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli(["exchange", "check", "--mode", "demo", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_passes_with_good_keys(
    fake: FakeBybit, demo_keys: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.trade("BTCUSDT", 100_000)
    code, out, err = check(capsys, "--json", "--play", "ema_cross")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert report["ok"] is True and report["problems"] == []
    names = [c["name"] for c in report["checks"]]
    assert names == [
        "clock",
        "keys",
        "permissions",
        "account",
        "position mode",
        "balance",
        "symbol",
    ]
    by = {c["name"]: c["detail"] for c in report["checks"]}
    assert by["position mode"] == "one-way"
    assert by["symbol"].startswith("BTCUSDT: tick 0.1, qty step 0.001")
    code, out, _ = check(capsys)
    assert code == 0 and "Bybit demo account" in out and "FIX" not in out


def test_wrong_secret_is_one_line_exit_2(
    fake: FakeBybit,
    demo_keys: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BYBIT_DEMO_API_SECRET", "definitely-wrong-secret")
    code, _, err = check(capsys)
    assert code == 2
    assert err.splitlines() == [
        "error: keys: Bybit demo refused the signature (10004): the API secret does not match "
        "the key"
    ]


def test_keys_of_the_other_environment_are_named(
    fake: FakeBybit,
    demo_keys: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BYBIT_DEMO_API_KEY", "LIVEKEY123")
    monkeypatch.setenv("BYBIT_DEMO_API_SECRET", "LIVESECRET123")
    monkeypatch.setenv("BYBIT_LIVE_API_KEY", "LIVEKEY123")
    monkeypatch.setenv("BYBIT_LIVE_API_SECRET", "LIVESECRET123")
    code, _, err = check(capsys)
    assert code == 2
    assert err.splitlines() == [
        "error: keys: key is the live key, mode is demo: use the demo account's key"
    ]
    assert fake.requests == []  # refused before any connection
    monkeypatch.delenv("BYBIT_LIVE_API_KEY")
    monkeypatch.delenv("BYBIT_LIVE_API_SECRET")
    code, _, err = check(capsys)  # a key the demo exchange does not know
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(
        "error: keys: Bybit demo refused the key (10003): invalid, expired, or a "
        "key of another environment"
    )


def test_a_clock_three_seconds_ahead_recovers_by_resync_and_says_so(
    fake: FakeBybit, demo_keys: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.clock_skew_ms = -3_000  # Bybit's clock is 3 s behind ours
    fake.trade("BTCUSDT", 100_000)
    code, out, err = check(capsys, "--json")
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith(
        "error: clock: local clock is 3.0 s ahead of Bybit's; signing uses the "
        "re-synced offset, but set the system clock (NTP)"
    )
    assert "refused with 10002 until the offset was re-synced" in line
    report = json.loads(out)
    assert [c["name"] for c in report["checks"] if not c["ok"]] == ["clock"]
    assert all(c["ok"] for c in report["checks"] if c["name"] != "clock")  # everything else ran


def test_missing_keys_or_bad_mode_open_no_connection(
    fake: FakeBybit,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("BYBIT_DEMO_API_KEY", raising=False)
    monkeypatch.delenv("BYBIT_DEMO_API_SECRET", raising=False)
    code, _, err = check(capsys)
    assert code == 2 and err.startswith("error: no demo API keys: set BYBIT_DEMO_API_KEY")
    code = cli(["exchange", "check", "--mode", "paper"])
    assert code == 2 and "expected demo or live" in capsys.readouterr().err
    assert fake.requests == []


PLANTED_KEY = "PLANTEDKEY7Q9Z"
PLANTED_SECRET = "PLANTED-SECRET-do-not-print-4471"


def test_a_planted_secret_appears_nowhere(
    fake: FakeBybit,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every failing path, with debug logging on, and everything produced is searched."""
    caplog.set_level(logging.DEBUG)
    fake.keys[PLANTED_KEY] = PLANTED_SECRET  # Bybit's 10004 text quotes the signed string
    good = Credentials("demo", PLANTED_KEY, PLANTED_SECRET)
    bad = Credentials("demo", PLANTED_KEY, PLANTED_SECRET + "x")
    texts: list[str] = []

    async def paths() -> None:
        async with client(fake, bad, retries=1) as c:
            try:
                await c.wallet()
            except BybitError as exc:
                texts.extend([str(exc), repr(exc), repr(c.credentials)])
        fake.trade("BTCUSDT", 100_000)
        fake.reject_next_order(110007)
        async with client(fake, good, retries=1) as c:
            try:
                await c.place_order(buy("leak-1"))
            except Rejected as exc:
                texts.extend([str(exc), repr(exc)])
        async with client(fake, good, retries=1) as c:
            c.client.base_url = "http://127.0.0.1:9"  # nothing listens: a network error
            try:
                await c.wallet()
            except BybitError as exc:
                texts.extend([str(exc), repr(exc)])
        async with BybitStream(fake.ws_private_url, ["order"], credentials=bad, backoff=0.01) as s:
            while (e := await s.next(3.0)).kind != "error":
                pass
            texts.append(repr(e))

    run(paths())
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("BYBIT_DEMO_API_KEY", PLANTED_KEY)
    monkeypatch.setenv("BYBIT_DEMO_API_SECRET", PLANTED_SECRET + "x")
    for args in (["--json"], []):
        cli(["exchange", "check", "--mode", "demo", *args])
    out, err = capsys.readouterr()
    texts += [out, err, caplog.text]
    produced = "\n".join(texts)
    assert "10004" in produced and "110007" in produced  # the paths did fail
    assert PLANTED_SECRET not in produced
    assert PLANTED_KEY not in produced


def test_live_check_reads_the_key_permissions(
    fake: FakeBybit,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("BYBIT_LIVE_API_KEY", fake.api_key)
    monkeypatch.setenv("BYBIT_LIVE_API_SECRET", fake.api_secret)
    monkeypatch.delenv("BYBIT_DEMO_API_KEY", raising=False)
    monkeypatch.delenv("BYBIT_DEMO_API_SECRET", raising=False)
    fake.trade("BTCUSDT", 100_000)
    assert cli(["exchange", "check", "--mode", "live", "--json"]) == 0
    by = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert by["permissions"] == {"name": "permissions", "ok": True,
                                 "detail": "Contract: Order, Position"}  # fmt: skip
    assert any(r.path == "/v5/user/query-api" for r in fake.requests)
    fake.permissions = fake.permissions | {"ContractTrade": ["Order"]}
    assert cli(["exchange", "check", "--mode", "live"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: permissions: the key lacks Contract → Position: enable them for the key"
    ]
