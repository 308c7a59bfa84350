"""report.html in a real headless Chromium: no console errors, one marker per trade entry and exit,
and a screenshot. Needs Debian's `chromium` (installed by .ci/run); marked `browser`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from trade.cli.main import run

pytestmark = pytest.mark.browser
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    return exe


def load(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and every console message the page produced."""
    r = subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    return r.stdout, console


def test_console_check_catches_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>missingFunction();</script></body></html>")
    _, console = load(bad, tmp_path / "p0")
    assert any("Uncaught ReferenceError" in line for line in console)


def test_report_renders_with_every_trade_marker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert (
        run(
            [
                "backtest",
                "run",
                "--play",
                "ema_cross",
                "--db",
                str(tmp_path / "m.duckdb"),
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    import json

    trades = json.loads(capsys.readouterr().out)["trades"]
    assert trades > 0
    dom, console = load(out / "report.html", tmp_path / "p1")
    assert console == []
    assert len(re.findall(r'class="marker entry"', dom)) == trades
    assert len(re.findall(r'class="marker exit"', dom)) == trades
    assert dom.count("<tr>") >= trades + 1
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium(),
            *FLAGS,
            f"--user-data-dir={tmp_path / 'p2'}",
            f"--screenshot={shot}",
            "--window-size=1300,1400",
            (out / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
