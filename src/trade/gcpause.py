"""Pause the cyclic garbage collector while building many small acyclic objects.

Turning a run's records into dicts allocates tens of thousands of objects; with the collector on,
every few hundred allocations trigger a pass over all tracked objects (numba's compiler state alone
is over 100,000 of them), which costs several times the work itself. The dicts built here hold no
reference cycles, so nothing is left for the collector to find.
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
