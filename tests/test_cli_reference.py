"""docs/cli.md lists every command of `trade` with every option it takes, so the reference cannot
fall behind the program."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from trade.cli.main import app

DOC = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), cmd


COMMANDS = dict(_commands(typer.main.get_command(app)))
ROWS = {
    m.group(1): line
    for line in DOC.splitlines()
    if (m := re.match(r"^\| `trade ([a-z][a-z\- ]*?)(?= [\[\-A-Z]|`)", line))
}


def test_every_command_has_a_row_and_every_row_a_command() -> None:
    assert len(COMMANDS) >= 17
    assert sorted(set(COMMANDS) - set(ROWS)) == []
    assert sorted(set(ROWS) - set(COMMANDS)) == []


def test_every_option_is_in_its_command_row() -> None:
    missing = []
    for path, cmd in COMMANDS.items():
        for p in cmd.params:
            if getattr(p, "param_type_name", "") != "option":
                continue
            name = max(p.opts, key=len)
            if name != "--help" and not re.search(re.escape(name) + r"(?![\w-])", ROWS[path]):
                missing.append(f"{path} {name}")
    assert missing == []


def test_the_global_options_are_documented() -> None:
    root = typer.main.get_command(app)
    names = {
        max(p.opts, key=len) for p in root.params if getattr(p, "param_type_name", "") == "option"
    }
    assert names == {"--version", "--db", "--smoke"}
    intro = DOC.split("\n## ", 1)[0]
    assert all(f"`{n}" in intro for n in names)
