"""Pause the cyclic garbage collector while building many small acyclic objects.

Turning a run's records into dicts, or stepping a replay through a million instants, allocates
objects by the hundred thousand; with the collector on, every few hundred allocations start a pass,
and the full passes walk every tracked object (numba's compiler state alone is over 100,000 of
them), which can cost several times the work itself. What is built in these stretches holds no
reference cycles (plain dicts, lists, floats freed by reference counting), so nothing is left for
the collector; it runs again as soon as the stretch ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from numba.core import event


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def gc_frozen() -> Iterator[None]:
    """The collector's passes skip every object that exists on entry (`gc.freeze`) until the
    exit: a sweep runs hundreds of combinations, each leaving a few reference cycles, and the
    full pass they trigger walked every object of the process (numba's, numpy's, pandas' when
    loaded: over 300,000) for a fifth of a second, to free a few hundred. Worker processes forked
    inside inherit the frozen state, so their passes do not touch the parent's objects (nor copy
    the pages they live on). Nested: only the outermost freezes and unfreezes."""
    outer = gc.get_freeze_count() > 0
    if not outer:
        gc.freeze()
    try:
        yield
    finally:
        if not outer:
            gc.unfreeze()


class _PausedWhileCompiling(event.Listener):
    """The collector is off from the first numba compilation's start to the last one's end (they
    nest): the compiler allocates objects by the hundred thousand, and collector passes over them
    cost a first run about a tenth of its compile time. numba ends an event even on an error."""

    def __init__(self) -> None:
        self.depth = 0
        self.was_enabled = False

    def on_start(self, ev: Any) -> None:
        if self.depth == 0:
            self.was_enabled = gc.isenabled()
            gc.disable()
        self.depth += 1

    def on_end(self, ev: Any) -> None:
        self.depth -= 1
        if self.depth == 0 and self.was_enabled:
            gc.enable()


@contextmanager
def gc_paused_while_compiling() -> Iterator[None]:
    with event.install_listener("numba:compile", _PausedWhileCompiling()):
        yield
