"""Notifications through apprise (Telegram, Discord, Slack, e-mail, a JSON webhook, … by URL).

The URLs come from `~/.trade/config.toml`:

    [notify]
    urls = ["tgram://bottoken/chatid", "json://127.0.0.1:8080/hook"]
    max_per_minute = 20        # optional; more in a minute are counted and reported later

What is sent: fills, stop moves, closed trades, guard actions and halts, stream reconnects that
needed a repair, errors (rejected, failed or unknown orders, a stop that could not be set, a stream
error, the session's failure), the session's start and stop, and a daily summary. The session never
waits for a receiver: `on_event` puts the message on a bounded queue without blocking (a full queue
drops it and counts it) and a background thread delivers; a dead or slow receiver only delays that
thread. Rate limiting keeps a failure loop from flooding a channel: at most `max_per_minute`
messages a minute, an identical message at most once a minute, and what was held back is reported
in one line when the minute is over.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Any

from .. import config
from ..errors import InputError

NOTIFY_KINDS = frozenset(
    {
        "start", "stop", "fill", "trade", "amend_stop", "guard", "halt", "stream", "reconnected",
        "rejected", "failed", "unknown", "stop_failed", "stream_error", "error", "summary",
    }
)  # fmt: skip
QUEUE_SIZE = 1000


def notify_urls() -> tuple[list[str], int]:
    """`[notify] urls` and `max_per_minute` from the account's config."""
    raw = config.user_config().get("notify", {})
    path = config.user_config_path()
    urls = raw.get("urls", []) if isinstance(raw, dict) else None
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise InputError(f"{path}: [notify] urls: expected a list of apprise URLs")
    per_minute = raw.get("max_per_minute", 20)
    if not isinstance(per_minute, int) or per_minute < 1:
        raise InputError(f"{path}: [notify] max_per_minute: expected a whole number >= 1")
    if urls:
        import apprise

        for url in urls:
            if apprise.Apprise.instantiate(url) is None:
                raise InputError(
                    f"{path}: [notify] urls: {url.split('://')[0]}://…: not an apprise URL"
                )
    return urls, per_minute


class Notifier:
    """Messages of one session to apprise URLs, off the trading path."""

    def __init__(self, urls: list[str], session: str, *, max_per_minute: int = 20) -> None:
        import apprise

        self.session = session
        self.apprise = apprise.Apprise()
        for url in urls:
            if not self.apprise.add(url):
                raise InputError(f"notify URL {url.split('://')[0]}://…: not an apprise URL")
        self.max_per_minute = max_per_minute
        self.queue: queue.Queue[tuple[str, str] | None] = queue.Queue(QUEUE_SIZE)
        self.dropped = 0  # the queue was full (the receiver is far behind)
        self.held = 0  # over the rate limit, not sent
        self.sent = 0
        self.failed = 0  # apprise could not deliver
        self._times: deque[float] = deque()
        self._last: dict[str, float] = {}
        self._thread = threading.Thread(target=self._work, name="notifier", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, session: str) -> Notifier | None:
        urls, per_minute = notify_urls()
        return cls(urls, session, max_per_minute=per_minute) if urls else None

    def on_event(self, ts: int | None, kind: str, message: str, data: dict[str, Any]) -> None:
        """A journal entry or a fill; never blocks."""
        if kind not in NOTIFY_KINDS:
            return
        if kind == "stream" and "reconnected" not in message:
            return  # a drop alone repairs itself or is followed by the reconnect
        self.send(f"{self.session}: {kind}", message)

    def send(self, title: str, body: str) -> None:
        try:
            self.queue.put_nowait((title, body))
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued for at most `timeout` seconds, then leave it."""
        try:
            self.queue.put((None), timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the delivery thread

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                self._report_held()
                return
            title, body = item
            now = time.monotonic()
            while self._times and self._times[0] <= now - 60:
                self._times.popleft()
            if not self._times:
                self._report_held()
            key = f"{title}\n{body}"
            if len(self._times) >= self.max_per_minute or now - self._last.get(key, -61) < 60:
                self.held += 1
                continue
            self._last[key] = now
            self._times.append(now)
            self._deliver(title, body)

    def _report_held(self) -> None:
        if self.held:
            n, self.held = self.held, 0
            self._deliver(f"{self.session}: notifications", f"{n} message(s) held back by the "
                          "rate limit; the session journal has them all")  # fmt: skip

    def _deliver(self, title: str, body: str) -> None:
        if self.apprise.notify(title=title, body=body):
            self.sent += 1
        else:
            self.failed += 1
