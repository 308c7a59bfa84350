"""`trade dashboard`: every session in a local web page (127.0.0.1, a token in the URL)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from ..errors import InputError

console = Console(highlight=False)


def dashboard(
    port: Annotated[
        int, typer.Option("--port", help="Port on 127.0.0.1 (0: any free one).")
    ] = 8765,
) -> None:
    """Serve a live page of every session (position, stop and target, orders, equity curve,
    decisions, journal and a price chart with the fills marked) on 127.0.0.1 until Ctrl-C; open
    the printed URL, whose token every request needs."""
    from ..live.dashboard import serve

    if not 0 <= port <= 65535:
        raise InputError(f"--port {port}: expected 0..65535")
    try:
        serve(port, lambda line: console.print(line, markup=False, soft_wrap=True))
    except OSError as exc:
        raise InputError(f"--port {port}: cannot listen on 127.0.0.1 ({exc.strerror})") from None
