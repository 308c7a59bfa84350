"""Crash hooks: the fake SIGKILLs its client process at a named step of the order path, so a test
crashes a session exactly there and the product never knows it is tested.

    fake.kill_on(pid, "received", "/v5/order/create")       # before it is applied
    fake.kill_on(pid, "applied", "/v5/order/create")        # applied, before the answer
    fake.kill_on(pid, "answered", "/v5/position/trading-stop", match=lambda body: ...)
    fake.kill_on(pid, "execution")                          # an execution pushed, then killed
    fake.kill_on(pid, "connect", "private")                 # a (re)connecting socket

A hook fires once, at the `nth` event that matches it after it was armed (`match` sees a REST
request's parameters, an execution's fields, or nothing for a connect). The kill is complete
before the fake goes on: the process is dead (a zombie until its parent reaps it) when the fake
applies, answers or sends anything more. `fired` lists what was killed where.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: step → what the fake has done when the client dies (REST steps name a path, connect a stream)
STEPS = {
    "received": "the request arrived; nothing applied, nothing answered",
    "applied": "the request applied (its private messages queued); nothing answered",
    "answered": "the request applied and answered",
    "execution": "an execution message written to the private socket; what follows it unsent",
    "connect": "a WebSocket upgrade of that stream arrived; refused",
}
REST_STEPS = ("received", "applied", "answered")
Match = Callable[[dict[str, Any]], bool]


@dataclass
class Hook:
    pid: int
    step: str
    where: str | None
    nth: int
    match: Match | None
    seen: int = 0


class Kills:
    """The armed hooks and the kills done (thread-safe: armed by the test, fired on the loop)."""

    def __init__(self, now: Callable[[], int]) -> None:
        self._now = now
        self._hooks: list[Hook] = []
        self._lock = threading.Lock()
        self.fired: list[dict[str, Any]] = []

    def arm(self, pid: int, step: str, where: str | None, nth: int, match: Match | None) -> None:
        if step not in STEPS:
            raise ValueError(f"unknown kill step {step!r}; expected one of {sorted(STEPS)}")
        if step == "connect" and where not in ("public", "private"):
            raise ValueError(f"connect names a stream (public or private), got {where!r}")
        if step in REST_STEPS and not (where or "").startswith("/v5/"):
            raise ValueError(f"{step} names a REST path such as /v5/order/create, got {where!r}")
        if step == "execution" and where is not None:
            raise ValueError(f"execution names no path or stream, got {where!r}")
        if nth < 1:
            raise ValueError(f"nth counts from 1, got {nth}")
        with self._lock:
            self._hooks.append(Hook(pid, step, where, nth, match))

    def disarm(self) -> None:
        with self._lock:
            self._hooks.clear()

    @property
    def armed(self) -> int:
        return len(self._hooks)

    def due(self, step: str, where: str | None, info: dict[str, Any] | None = None) -> Hook | None:
        """The hook this event fires (removed from the armed ones), if any."""
        with self._lock:
            for hook in self._hooks:
                if hook.step != step or hook.where not in (None, where):
                    continue
                if hook.match is not None and not hook.match(info or {}):
                    continue
                hook.seen += 1
                if hook.seen == hook.nth:
                    self._hooks.remove(hook)
                    return hook
        return None

    def kill(self, hook: Hook, where: str | None) -> None:
        """SIGKILL the hook's process and wait until it is dead."""
        self.fired.append({"pid": hook.pid, "step": hook.step, "where": where, "at": self._now()})
        try:
            os.kill(hook.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while _running(hook.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"pid {hook.pid} still runs 5 s after SIGKILL")
            time.sleep(0.001)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed child stays a zombie until its parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


__all__ = ["STEPS", "Kills"]
