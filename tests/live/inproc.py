"""A session run in the test's own event loop against the fake exchange."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

from fakes.bybit import FakeBybit


async def subscribed(
    fake: FakeBybit,
    sockets: int,
    task: asyncio.Task[None],
    *,
    seen: Collection[str] = (),
    timeout: float = 60.0,
) -> None:
    """Until `sockets` sockets (other than those in `seen`) have subscribed their topics on the
    fake. A stream reports itself connected once it has *sent* its subscriptions: a bar pushed
    before the fake handled them reaches nobody, and the session would wait for it forever.
    Fails with the session's own error if it ended first."""
    deadline = time.monotonic() + timeout
    while sum(1 for c in fake.connections if c["id"] not in seen and c["topics"]) < sockets:
        if task.done():
            task.result()
            raise AssertionError("the session ended before it subscribed")
        assert time.monotonic() < deadline, f"not {sockets} subscribed sockets: {fake.connections}"
        await asyncio.sleep(0.01)
