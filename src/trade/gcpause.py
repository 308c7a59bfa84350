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


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
