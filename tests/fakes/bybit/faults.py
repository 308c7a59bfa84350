"""REST faults: each queued fault is consumed by one request (to its path, if it names one)."""

from __future__ import annotations

import threading

HTTP_STATUS = {"http403": 403, "http429": 429, "http500": 500, "http502": 502}
REST_FAULTS = frozenset(
    {
        "ok",  # answer normally (a placeholder in a sequence of faults)
        "ratelimit",  # retCode 10006, X-Bapi-Limit-Reset-Timestamp rate_limit_reset_ms ahead
        "clock",  # retCode 10002
        "unknown",  # retCode 10016, nothing applied
        "unknown_after_apply",  # applied, then retCode 10016
        "timeout",  # sleeps timeout_seconds, nothing applied
        "timeout_after_apply",  # applied, then sleeps timeout_seconds
        "slow",  # sleeps slow_seconds, then answers normally
        "partial",  # a list answer keeps only its newest half
        "drop",  # the connection is closed unanswered
        "maintenance",  # retCode 10016 "under maintenance", nothing applied
        *HTTP_STATUS,
    }
)


class Faults:
    """A queue of `(fault, path or None)`; a request takes the first entry that matches it."""

    def __init__(self) -> None:
        self._queue: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()

    def add(self, fault: str, path: str | None, times: int) -> None:
        if fault not in REST_FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(REST_FAULTS)}")
        with self._lock:
            self._queue.extend([(fault, path)] * times)

    def take(self, path: str) -> str:
        with self._lock:
            for i, (fault, only) in enumerate(self._queue):
                if only is None or only == path:
                    del self._queue[i]
                    return fault
        return "ok"

    def __len__(self) -> int:
        return len(self._queue)
