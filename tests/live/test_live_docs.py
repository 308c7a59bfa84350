"""docs/live.md says only what the program does: every command line it shows parses against the
real CLI with options that exist, and the facts it states match the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer

from trade.cli.main import app
from trade.live import runner
from trade.live.launch import MODES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "live.md").read_text()
FLAT = " ".join(DOC.split())
ROOT = typer.main.get_command(app)


def _lines() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC, re.S)
    out = []
    for block in blocks:
        for line in block.splitlines():
            words = shlex.split(line.split("#", 1)[0])
            if words and words[0] == "trade":
                out.append(words[1:])
    return out


def test_every_command_shown_parses_with_options_that_exist() -> None:
    lines = _lines()
    assert len(lines) >= 6
    for words in lines:
        cmd, path = ROOT, []
        while getattr(cmd, "commands", None) and words and words[0] in cmd.commands:
            path.append(words[0])
            cmd = cmd.commands[words.pop(0)]
        assert not getattr(cmd, "commands", None), words
        names = {o for p in cmd.params for o in p.opts}
        for w in words:
            if w.startswith("--"):
                assert w in names, (cmd.name, w)
        ctx = cmd.make_context(cmd.name, list(words), resilient_parsing=True)
        if path == ["play", "run"]:
            assert ctx.params["mode"] in (*MODES, None)  # None: a resume takes the session's


def test_the_facts_stated_match_the_code() -> None:
    assert "~/.trade/sessions/NAME.sqlite" in FLAT and "$TRADE_SESSIONS" in FLAT
    assert f"the {runner.MARK_TF} mark-price bars" in FLAT
    assert "grace period (3 s)" in FLAT
    assert f"more than {runner.LATE_MS // 1000} s (exchange time) after it closed" in FLAT
    assert "~/.trade/locks/session-NAME.lock" in FLAT
    assert set(re.findall(r"\| `(paper|demo|live)` \|", DOC)) == set(MODES)


def test_the_demo_and_live_facts_match_the_broker() -> None:
    from trade.live.bybit_broker import EXTERNAL, ROLE_REASONS
    from trade.live.positions import FORCED, STOP_REASONS

    reasons = {*FORCED.values(), *ROLE_REASONS.values(), EXTERNAL, *STOP_REASONS}
    assert reasons == {"liquidation", "adl", "signal", "unprotected", "external", "take_profit",
                       "stop_loss", "trailing_stop"}  # fmt: skip
    for reason in reasons:
        assert f"`{reason}`" in FLAT, reason
    assert "A Play without `risk.stop_loss` is refused for demo and live" in FLAT
