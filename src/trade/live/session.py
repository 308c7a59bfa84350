"""A trading session's record: one SQLite file per session under `~/.trade/sessions/`.

Everything a session saw and did goes here as it happens: the bars it fed the engine, its
decisions, the orders it meant to send (committed before the request leaves, so a crash can never
lose track of an order that might exist), what the exchange answered, every fill (unique by
execution id: a duplicate push is booked once), closed trades and a journal of everything else.
`trade play diff` replays the recorded bars; `trade play sessions` lists the files.

WAL mode lets a reader (`trade play sessions`, `trade play diff`) open the file while the session
writes it; intents are written with `synchronous=FULL` so they are on disk before any request.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

SCHEMA_VERSION = 3
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bars (
    tf TEXT NOT NULL, ts INTEGER NOT NULL, open REAL, high REAL, low REAL, close REAL,
    volume REAL, source TEXT, fed_ms INTEGER, PRIMARY KEY (tf, ts));
CREATE TABLE IF NOT EXISTS marks (ts INTEGER PRIMARY KEY, tf_ms INTEGER, open REAL, high REAL,
    low REAL, close REAL);
CREATE TABLE IF NOT EXISTS funding (ts INTEGER PRIMARY KEY, rate REAL);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, kind TEXT, side TEXT,
    percent REAL, block TEXT, metadata TEXT, decided_ms INTEGER);
CREATE TABLE IF NOT EXISTS orders (
    link_id TEXT PRIMARY KEY, ts INTEGER, status TEXT NOT NULL, body TEXT, exchange_id TEXT,
    reason TEXT, updated_ms INTEGER);
CREATE TABLE IF NOT EXISTS fills (
    exec_id TEXT PRIMARY KEY, ts INTEGER, link_id TEXT, side TEXT, qty REAL, price REAL,
    fee REAL, kind TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS trades (trade_id INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS equity (ts INTEGER PRIMARY KEY, equity REAL);
CREATE TABLE IF NOT EXISTS instants (ts INTEGER PRIMARY KEY, facts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER, wall_ms INTEGER, kind TEXT, message TEXT,
    data TEXT);
CREATE TABLE IF NOT EXISTS checkpoints (ts INTEGER PRIMARY KEY, last_bar_ms INTEGER,
    state TEXT NOT NULL);
"""

# version -> what brings a file of the version before it up to it (SCHEMA is the newest whole)
MIGRATIONS: dict[int, str] = {
    2: "CREATE TABLE IF NOT EXISTS checkpoints (ts INTEGER PRIMARY KEY, last_bar_ms INTEGER, "
    "state TEXT NOT NULL);",
    3: "CREATE TABLE IF NOT EXISTS instants (ts INTEGER PRIMARY KEY, facts TEXT NOT NULL);",
}
CHECKPOINTS_KEPT = 3  # the engine's state after the last few exec closes


def sessions_dir() -> Path:
    """`$TRADE_SESSIONS`, else `~/.trade/sessions`."""
    env = os.environ.get("TRADE_SESSIONS")
    return Path(env) if env else Path.home() / ".trade" / "sessions"


def session_path(name: str) -> Path:
    if not NAME_RE.match(name):
        raise InputError(
            f"session name {name!r}: expected letters, digits, '.', '_' or '-' (at most 64)"
        )
    return sessions_dir() / f"{name}.sqlite"


def _check_version(path: Path, version: str | None, *, older: bool = False) -> None:
    """A file of another schema is refused, never migrated blindly nor replaced; `older` accepts
    a file of an earlier version, which this trade reads as it is or migrates (`MIGRATIONS`)."""
    if version == str(SCHEMA_VERSION):
        return
    if older and version is not None and version.isdigit() and 1 <= int(version) < SCHEMA_VERSION:
        return
    if version is not None and version.isdigit() and int(version) > SCHEMA_VERSION:
        raise InputError(
            f"{path}: session schema version {version} is newer than this trade's "
            f"({SCHEMA_VERSION}); upgrade trade to open it (the file is left as it is)"
        )
    raise InputError(
        f"{path}: session schema version {version}, expected {SCHEMA_VERSION} "
        "(the file is left as it is)"
    )


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class SessionInfo:
    """What `trade play sessions` lists about one session file."""

    name: str
    path: Path
    meta: dict[str, str]
    decisions: int
    trades: int
    last_bar_ms: int | None


class SessionRecord:
    """The open record of one session (the writer), or a read-only view (`readonly=True`)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            if not path.exists():
                raise InputError(f"no session file {path}")
            self.con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            _check_version(path, self._meta_value("schema_version"), older=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # called after each journal line and each new fill (notifications listen here)
        self.listeners: list[Callable[[int | None, str, str, dict[str, Any]], None]] = []
        new = not path.exists() or path.stat().st_size == 0
        self.con = sqlite3.connect(path, isolation_level=None)
        if new:
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.executescript(SCHEMA)
            self._set_meta({"schema_version": str(SCHEMA_VERSION)})
        else:
            try:
                version = self._meta_value("schema_version")
                _check_version(path, version, older=True)
            except InputError:
                self.con.close()
                raise
            self.con.execute("PRAGMA journal_mode=WAL")
            self._migrate(int(str(version)))
        self.con.execute("PRAGMA synchronous=NORMAL")

    def _migrate(self, version: int) -> None:
        """Bring a file of an earlier schema up to this one, one version per transaction."""
        for v in range(version + 1, SCHEMA_VERSION + 1):
            with self._tx():
                for statement in MIGRATIONS[v].split(";"):
                    if statement.strip():
                        self.con.execute(statement)
                self.con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(v),)
                )
            self.journal(None, "migrate", f"session file upgraded from schema {v - 1} to {v}")

    @classmethod
    def create(cls, name: str, meta: Mapping[str, Any]) -> SessionRecord:
        """A new session file; an existing one of that name is refused (sessions are not
        overwritten: resuming one is its own operation)."""
        path = session_path(name)
        if path.exists():
            raise InputError(
                f"session {name!r} exists already ({path}); choose another --session name"
            )
        rec = cls(path)
        rec._set_meta({k: str(v) for k, v in meta.items()} | {"name": name})
        return rec

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> SessionRecord:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ meta

    def _meta_value(self, key: str) -> str | None:
        try:
            row = self.con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: not a session file ({exc})") from None
        return row[0] if row else None

    def _set_meta(self, values: Mapping[str, str]) -> None:
        with self._tx():
            self.con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))

    def set_meta(self, **values: Any) -> None:
        self._set_meta({k: str(v) for k, v in values.items()})

    def meta(self) -> dict[str, str]:
        return dict(self.con.execute("SELECT key, value FROM meta").fetchall())

    # ------------------------------------------------------------------ writes

    class _Tx:
        def __init__(self, con: sqlite3.Connection) -> None:
            self.con = con

        def __enter__(self) -> None:
            self.con.execute("BEGIN")

        def __exit__(self, et: object, ev: object, tb: object) -> None:
            self.con.execute("COMMIT" if et is None else "ROLLBACK")

    def _tx(self) -> SessionRecord._Tx:
        return SessionRecord._Tx(self.con)

    def bars(self, rows: list[tuple[str, int, float, float, float, float, float, str]]) -> None:
        """Closed bars fed to the engine: (tf, open time, o, h, l, c, volume, source)."""
        now = _wall_ms()
        with self._tx():
            self.con.executemany(
                "INSERT OR IGNORE INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*r, now) for r in rows],
            )

    def mark(self, ts: int, tf_ms: int, o: float, h: float, lo: float, c: float) -> None:
        with self._tx():
            self.con.execute(
                "INSERT OR IGNORE INTO marks VALUES (?, ?, ?, ?, ?, ?)", (ts, tf_ms, o, h, lo, c)
            )

    def funding(self, ts: int, rate: float) -> None:
        with self._tx():
            self.con.execute("INSERT OR IGNORE INTO funding VALUES (?, ?)", (ts, rate))

    def decisions(
        self,
        t: int,
        decisions: list[tuple[str, str, float, str, Mapping[str, Any]]],
        facts: Mapping[str, Any] | None = None,
    ) -> None:
        """Every decision of instant `t` (kind, side, percent, block, metadata) in one
        transaction, with the position facts the engine decided on (`facts`: what a demo or live
        resume gives the engine again, as the exchange's past cannot be replayed): a crash never
        leaves an instant half recorded."""
        now = _wall_ms()
        with self._tx():
            if facts is not None:
                self.con.execute(
                    "INSERT OR REPLACE INTO instants VALUES (?, ?)",
                    (t, json.dumps(dict(facts), sort_keys=True)),
                )
            self.con.executemany(
                "INSERT INTO decisions (ts, kind, side, percent, block, metadata, decided_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(t, k, s, p, b, json.dumps(dict(m), sort_keys=True), now)
                 for k, s, p, b, m in decisions],
            )  # fmt: skip

    def order_intent(self, link_id: str, ts: int, body: Mapping[str, Any]) -> None:
        """Committed to disk before the request is sent (full sync)."""
        self.con.execute("PRAGMA synchronous=FULL")
        try:
            with self._tx():
                self.con.execute(
                    "INSERT INTO orders VALUES (?, ?, 'intent', ?, NULL, NULL, ?)",
                    (link_id, ts, json.dumps(dict(body), sort_keys=True), _wall_ms()),
                )
        finally:
            self.con.execute("PRAGMA synchronous=NORMAL")

    def order_status(
        self,
        link_id: str,
        status: str,
        *,
        exchange_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        with self._tx():
            self.con.execute(
                "UPDATE orders SET status = ?, exchange_id = COALESCE(?, exchange_id), "
                "reason = COALESCE(?, reason), updated_ms = ? WHERE link_id = ?",
                (status, exchange_id, reason, _wall_ms(), link_id),
            )

    def fill(
        self,
        exec_id: str,
        ts: int,
        link_id: str,
        side: str,
        qty: float,
        price: float,
        fee: float,
        kind: str,
        data: Mapping[str, Any] | None = None,
    ) -> bool:
        """Book one execution; False when it was booked already (a duplicate)."""
        with self._tx():
            cur = self.con.execute(
                "INSERT OR IGNORE INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (exec_id, ts, link_id, side, qty, price, fee, kind,
                 json.dumps(dict(data or {}), sort_keys=True)),
            )  # fmt: skip
        if cur.rowcount == 1:
            self._tell(ts, "fill", f"fill {side} {qty:g} @ {price:g} ({kind})", link_id=link_id)
        return cur.rowcount == 1

    def trade(self, trade: Mapping[str, Any]) -> None:
        with self._tx():
            self.con.execute(
                "INSERT OR REPLACE INTO trades VALUES (?, ?)",
                (int(trade["trade_id"]), json.dumps(dict(trade), sort_keys=True)),
            )

    def equity(self, ts: int, value: float) -> None:
        """The account's equity at an evaluation instant (the dashboard's curve)."""
        with self._tx():
            self.con.execute("INSERT OR REPLACE INTO equity VALUES (?, ?)", (ts, value))

    def checkpoint(self, ts: int, last_bar_ms: int | None, state: Mapping[str, Any]) -> None:
        """The engine's state after exec close `ts` (its features and conditions): a resume
        checks its rebuild against it. Only the last `CHECKPOINTS_KEPT` are kept."""
        with self._tx():
            self.con.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)",
                (ts, last_bar_ms, json.dumps(dict(state), sort_keys=True)),
            )
            self.con.execute(
                "DELETE FROM checkpoints WHERE ts NOT IN "
                "(SELECT ts FROM checkpoints ORDER BY ts DESC LIMIT ?)",
                (CHECKPOINTS_KEPT,),
            )

    def journal(self, ts: int | None, kind: str, message: str, /, **data: Any) -> None:
        with self._tx():
            self.con.execute(
                "INSERT INTO journal (ts, wall_ms, kind, message, data) VALUES (?, ?, ?, ?, ?)",
                (ts, _wall_ms(), kind, message, json.dumps(data, sort_keys=True, default=str)),
            )
        self._tell(ts, kind, message, **data)

    def _tell(self, ts: int | None, kind: str, message: str, /, **data: Any) -> None:
        for listener in self.listeners:
            listener(ts, kind, message, data)

    # ------------------------------------------------------------------ reads

    def bar_rows(self, tf: str | None = None) -> list[tuple[Any, ...]]:
        """(tf, ts, o, h, l, c, volume, source) in close-time order per timeframe."""
        q = "SELECT tf, ts, open, high, low, close, volume, source FROM bars"
        args: tuple[Any, ...] = ()
        if tf is not None:
            q, args = q + " WHERE tf = ?", (tf,)
        return self.con.execute(q + " ORDER BY tf, ts", args).fetchall()

    def mark_rows(self) -> list[tuple[Any, ...]]:
        return self.con.execute(
            "SELECT ts, tf_ms, open, high, low, close FROM marks ORDER BY ts"
        ).fetchall()

    def funding_rows(self) -> list[tuple[int, float]]:
        return self.con.execute("SELECT ts, rate FROM funding ORDER BY ts").fetchall()

    def decision_rows(self) -> list[dict[str, Any]]:
        rows = self.con.execute(
            "SELECT ts, kind, side, percent, block, metadata, decided_ms FROM decisions "
            "ORDER BY seq"
        ).fetchall()
        return [
            {"ts": r[0], "kind": r[1], "side": r[2], "percent": r[3], "block": r[4],
             "metadata": json.loads(r[5]), "decided_ms": r[6]}
            for r in rows
        ]  # fmt: skip

    def order_rows(self) -> list[dict[str, Any]]:
        rows = self.con.execute(
            "SELECT link_id, ts, status, body, exchange_id, reason, updated_ms FROM orders "
            "ORDER BY ts, link_id"
        ).fetchall()
        return [
            {"link_id": r[0], "ts": r[1], "status": r[2], "body": json.loads(r[3] or "{}"),
             "exchange_id": r[4], "reason": r[5], "updated_ms": r[6]}
            for r in rows
        ]  # fmt: skip

    def fill_rows(self) -> list[dict[str, Any]]:
        rows = self.con.execute(
            "SELECT exec_id, ts, link_id, side, qty, price, fee, kind, data FROM fills "
            "ORDER BY ts, exec_id"
        ).fetchall()
        return [
            {"exec_id": r[0], "ts": r[1], "link_id": r[2], "side": r[3], "qty": r[4],
             "price": r[5], "fee": r[6], "kind": r[7], "data": json.loads(r[8] or "{}")}
            for r in rows
        ]  # fmt: skip

    def equity_rows(self) -> list[tuple[int, float]]:
        """(instant, equity); none for a file written before equity was recorded."""
        try:
            return self.con.execute("SELECT ts, equity FROM equity ORDER BY ts").fetchall()
        except sqlite3.OperationalError:
            return []

    def checkpoint_rows(self) -> list[tuple[int, int | None, dict[str, Any]]]:
        """(exec close, last 1m bar fed, engine state), oldest first; none in a schema-1 file."""
        try:
            rows = self.con.execute(
                "SELECT ts, last_bar_ms, state FROM checkpoints ORDER BY ts"
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def instant_facts(self) -> dict[int, dict[str, Any]]:
        """Instant → the position facts the engine decided on (none in files written before
        they were recorded)."""
        try:
            rows = self.con.execute("SELECT ts, facts FROM instants").fetchall()
        except sqlite3.OperationalError:
            return {}
        return {int(r[0]): json.loads(r[1]) for r in rows}

    def trade_rows(self) -> list[dict[str, Any]]:
        rows = self.con.execute("SELECT data FROM trades ORDER BY trade_id").fetchall()
        return [json.loads(r[0]) for r in rows]

    def journal_rows(self) -> list[dict[str, Any]]:
        rows = self.con.execute(
            "SELECT ts, wall_ms, kind, message, data FROM journal ORDER BY seq"
        ).fetchall()
        return [
            {"ts": r[0], "wall_ms": r[1], "kind": r[2], "message": r[3], "data": json.loads(r[4])}
            for r in rows
        ]

    def info(self) -> SessionInfo:
        meta = self.meta()
        one = self.con.execute
        return SessionInfo(
            name=meta.get("name", self.path.stem),
            path=self.path,
            meta=meta,
            decisions=one("SELECT count(*) FROM decisions WHERE kind != 'refused'").fetchone()[0],
            trades=one("SELECT count(*) FROM trades").fetchone()[0],
            last_bar_ms=one("SELECT max(ts) FROM bars WHERE tf = '1m'").fetchone()[0],
        )


def list_sessions() -> Iterator[SessionInfo]:
    """Every readable session file, by name."""
    d = sessions_dir()
    if not d.is_dir():
        return
    for path in sorted(d.glob("*.sqlite")):
        with SessionRecord(path, readonly=True) as rec:
            yield rec.info()
