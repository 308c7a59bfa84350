"""The README says only what works: every command it shows exists, every file it names is in the
tree, every `--mode` it names is a mode, and trading modes that do not exist are said not to."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from trade.cli.main import app
from trade.engine.backtest import MODES
from trade.live.launch import MODES as LIVE_MODES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _commands() -> set[str]:
    def walk(cmd, path):  # type: ignore[no-untyped-def]
        subs = getattr(cmd, "commands", None)
        if not subs:
            return {" ".join(path)}
        out = {" ".join(path)} if path else set()
        for name, sub in subs.items():
            out |= walk(sub, (*path, name))
        return out

    return walk(typer.main.get_command(app), ())


def test_every_command_shown_exists() -> None:
    known = _commands()
    shown = re.findall(r"`trade ([a-z][a-z\- |]*)", README)
    assert shown
    for text in shown:
        words = [w for w in re.split(r"[ |]", text) if w and not w.startswith("-")]
        first = words[0]
        options = [" ".join(words[:2]), first]
        assert any(o in known for o in options), text


def test_every_path_named_exists() -> None:
    paths = re.findall(r"`((?:src|docs|plays|benchmarks|tests)/[^`*<]+?)`", README)
    paths += re.findall(r"\((?:`)?(docs/[a-z_]+\.md)", README)
    assert len(paths) >= 10
    missing = [p for p in paths if not (ROOT / p.split(" ")[0]).exists()]
    assert missing == []


def test_modes_named_are_modes() -> None:
    assert set(re.findall(r"--mode (\w+)", README)) <= set(MODES) | set(LIVE_MODES)
    for word in LIVE_MODES:
        assert f"--mode {word}" in README, word
