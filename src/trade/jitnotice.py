"""Say so when numba compiles: the first run on a machine spends seconds compiling the numeric
kernels (later runs load them from numba's on-disk cache), and silence looks like a hang.

numba reports a `numba:compile` event only for a real compilation, never for a cache hit, so a
warm run says nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from numba.core import event

MESSAGE = "compiling numeric kernels (first run only, cached for later runs)…"


class _FirstCompile(event.Listener):
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.said = False

    def on_start(self, ev: Any) -> None:
        if not self.said:
            self.said = True
            self.say(MESSAGE)

    def on_end(self, ev: Any) -> None:
        pass


@contextmanager
def compile_notice(say: Callable[[str], None]) -> Iterator[None]:
    """Call `say(MESSAGE)` once, when the first compilation inside the block starts."""
    with event.install_listener("numba:compile", _FirstCompile(say)):
        yield
