"""`trade play …`: validate Plays and show them normalised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from ..errors import InputError, PlayError
from ..play import play_files, validate_play
from . import sessions
from .options import parse_sets

app = typer.Typer(
    help="Validate and inspect Plays; trade them (paper, demo, live) and review sessions.",
    no_args_is_help=True,
)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a variable: name=value.")]


@app.command("validate")
def validate(
    paths: Annotated[
        list[Path], typer.Argument(help="Play files, directories or names (ema_cross).")
    ],
    set_: SetOpt = None,
) -> None:
    """Validate Plays; print one line per problem (file:line: key.path: message)."""
    overrides = parse_sets(set_)
    files = play_files(paths)
    if not files:
        raise InputError(f"no Play files (*.yml, *.yaml) under {', '.join(map(str, paths))}")
    problems: list[str] = []
    for f in files:
        try:
            compiled = validate_play(f, overrides)
            console.print(f"ok  {f}", markup=False)
            for w in compiled.warnings:
                err.print(f"warning: {w}", markup=False)
        except PlayError as exc:
            problems += exc.problems
    if problems:
        raise PlayError(problems)
    console.print(f"{len(files)} Play(s) valid", markup=False)


@app.command("show")
def show(
    path: Annotated[Path, typer.Argument(help="Play file or name (ema_cross).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    set_: SetOpt = None,
) -> None:
    """Print the normalised Play: defaults filled in, variables substituted."""
    compiled = validate_play(play_files([path])[0], parse_sets(set_))
    data = compiled.play.model_dump(mode="json", by_alias=True)
    data["features"] = {
        f.key: {
            "indicator" if f.kind == "indicator" else "type": f.type,
            "tf": f.tf,
            "params": dict(f.params),
        }
        | ({"source": f.source} if f.source else {})
        | ({"uses": dict(f.deps)} if f.deps else {})
        | {"warmup": f.warmup}
        for f in compiled.features
    }
    data["warmup_exec_bars"] = compiled.warmup_exec_bars()
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False), end="")


app.command("run")(sessions.run)
app.command("sessions")(sessions.sessions)
app.command("diff")(sessions.diff)
app.command("status")(sessions.status)
app.command("stop")(sessions.stop)
