"""`trade play run`: everything checked before a connection opens, then one session run to its end.

The checks come first and fail with one line each (exit 2): the mode, the Play, `--confirm` for
live money, the mode's own keys (a live session never runs on demo keys, a demo session never on
live keys), the session name. Only then does the runner connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import config, logs
from ..engine.guards import effective_guards
from ..engine.provenance import sha256_text
from ..errors import InputError
from ..exchange.bybit import BybitRest, Credentials, endpoints, load_credentials
from ..instruments import InstrumentSpec
from ..play import find_play, validate_play
from ..play.compile import CompiledPlay, validate_play_text
from ..play.model import Guards
from .broker import Broker
from .bybit_broker import FOREIGN_POLICIES
from .notify import Notifier, notify_urls
from .panic import check_kill_switch
from .paper import MarketExtras, PaperBroker
from .runner import LiveRunner, Snapshot
from .session import SessionRecord, session_path

MODES = ("paper", "demo", "live")


@dataclass(frozen=True)
class SessionPlan:
    """A session ready to start: every input checked."""

    mode: str
    name: str
    play_path: Path
    play_text: str
    compiled: CompiledPlay
    symbol: str
    credentials: Credentials | None
    environment: str  # whose hosts: paper reads mainnet's public market data, with no keys
    guards: Guards = field(
        default_factory=Guards
    )  # the Play's guards tightened by the account's (guards.py)
    resume: bool = False  # the session exists: continue it (resume.py)
    play_changed: bool = False  # resumed with --accept-play-change on a changed Play file
    on_foreign: str = "halt"  # demo/live: a foreign position or orders halt, or are adopted


def plan_session(
    play: str | None,
    mode: str | None,
    *,
    symbol: str | None = None,
    session: str | None = None,
    confirm: bool = False,
    accept_play_change: bool = False,
    on_foreign: str | None = None,
    now: dt.datetime | None = None,
) -> SessionPlan:
    """A new session, or (`session` names an existing one) the resume of that session."""
    if on_foreign is not None and on_foreign not in FOREIGN_POLICIES:
        raise InputError(f"--on-foreign {on_foreign!r}: expected halt or adopt")
    if session is not None and session_path(session).exists():
        return _plan_resume(session, play, mode, symbol, confirm, accept_play_change, on_foreign)
    mode = mode or "paper"
    if mode not in MODES:
        raise InputError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    if on_foreign is not None and mode == "paper":
        raise InputError("--on-foreign is for demo and live sessions (paper has no exchange)")
    check_kill_switch()
    notify_urls()  # a bad [notify] table is refused before anything connects
    if mode == "live" and not confirm:
        raise InputError(
            "--mode live trades real money: add --confirm to start (try --mode demo first)"
        )
    if play is None:
        raise InputError("--play is required to start a new session")
    path = Path(find_play(play))
    compiled = validate_play(path)
    if mode != "paper":
        from .bybit_broker import check_play

        check_play(compiled, mode)
    guards = effective_guards(compiled.play, str(path))
    sym = (symbol or compiled.play.symbol).upper()
    creds = _credentials(compiled, mode)
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")
    name = session or f"{compiled.play.name}-{sym}-{mode}-{stamp}"
    if session_path(name).exists():
        raise InputError(
            f"session {name!r} exists already ({session_path(name)}); choose another --session"
        )
    return SessionPlan(
        mode=mode,
        name=name,
        play_path=path,
        play_text=path.read_text(encoding="utf-8"),
        compiled=compiled,
        symbol=sym,
        credentials=creds,
        environment="demo" if mode == "demo" else "live",
        guards=guards,
        on_foreign=on_foreign or "halt",
    )


def _credentials(compiled: CompiledPlay, mode: str) -> Credentials | None:
    if mode == "paper":
        return None
    try:
        creds = load_credentials(mode)
    except InputError as exc:
        hint = ""
        if mode == "live":
            with contextlib.suppress(InputError):
                load_credentials("demo")
                hint = " (only demo keys are set; a live session never uses them)"
        raise InputError(f"{exc}{hint}") from None
    logs.register_secret(creds.api_key, creds.api_secret)
    return creds


def _plan_resume(
    name: str,
    play: str | None,
    mode: str | None,
    symbol: str | None,
    confirm: bool,
    accept_play_change: bool,
    on_foreign: str | None,
) -> SessionPlan:
    """The recorded session's mode, symbol and Play; whatever is given must agree with them.
    The file is only read here (a corrupt or newer file is refused, never replaced)."""
    path = session_path(name)
    with SessionRecord(path, readonly=True) as rec:
        meta = rec.meta()
    for key in ("mode", "symbol", "play_text", "play_path", "play_sha256"):
        if key not in meta:
            raise InputError(f"{path}: not a session record (no {key})")
    given = {
        "--mode": (mode, meta["mode"]),
        "--symbol": (symbol and symbol.upper(), meta["symbol"]),
    }
    for opt, (value, recorded) in given.items():
        if value is not None and value != recorded:
            raise InputError(
                f"session {name!r} is {recorded} ({opt}); it resumes as it began: drop {opt} "
                "or choose another --session"
            )
    check_kill_switch()
    notify_urls()
    if meta["mode"] == "live" and not confirm:
        raise InputError(f"session {name!r} trades real money: add --confirm to resume it")
    if on_foreign is not None and meta["mode"] == "paper":
        raise InputError("--on-foreign is for demo and live sessions (paper has no exchange)")
    play_path = Path(find_play(play)) if play is not None else Path(meta["play_path"])
    text = meta["play_text"]
    changed = False
    if play_path.exists():
        current = play_path.read_text(encoding="utf-8")
        if sha256_text(current) != meta["play_sha256"]:
            if not accept_play_change:
                raise InputError(
                    f"{play_path}: the Play changed since session {name!r} began; add "
                    "--accept-play-change to resume it with the new text"
                )
            text, changed = current, True
    elif play is not None:
        raise InputError(f"{play_path}: no such Play file")
    compiled = validate_play_text(text, str(play_path))
    guards = effective_guards(compiled.play, str(play_path))
    return SessionPlan(
        mode=meta["mode"],
        name=name,
        play_path=play_path,
        play_text=text,
        compiled=compiled,
        symbol=meta["symbol"],
        credentials=_credentials(compiled, meta["mode"]),
        environment=meta.get("environment", "live"),
        guards=guards,
        resume=True,
        play_changed=changed,
        on_foreign=on_foreign or meta.get("on_foreign", "halt"),
    )


def open_record(plan: SessionPlan, intrabar: str = "pessimistic") -> SessionRecord:
    """The new session's record, or the resumed one's (a Play change accepted is journaled)."""
    if plan.resume:
        record = SessionRecord(session_path(plan.name))
        if plan.mode != "paper" and record.meta().get("on_foreign", "halt") != plan.on_foreign:
            record.set_meta(on_foreign=plan.on_foreign)
            record.journal(None, "foreign", f"--on-foreign {plan.on_foreign} from this resume on")
        if plan.play_changed:
            old = record.meta()["play_sha256"]
            record.set_meta(
                play_text=plan.play_text, play_sha256=sha256_text(plan.play_text),
                play_change_accepted=1,
            )  # fmt: skip
            record.journal(
                None, "play", f"the Play changed since the session began; accepted "
                f"(--accept-play-change): sha256 {old[:12]} -> {sha256_text(plan.play_text)[:12]}",
                previous_sha256=old,
            )  # fmt: skip
        return record
    return SessionRecord.create(
        plan.name,
        {
            "mode": plan.mode,
            "play": plan.compiled.play.name,
            "play_path": str(plan.play_path),
            "play_text": plan.play_text,
            "play_sha256": sha256_text(plan.play_text),
            "symbol": plan.symbol,
            "environment": plan.environment,
            "intrabar": intrabar,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        | ({} if plan.mode == "paper" else {"on_foreign": plan.on_foreign}),
    )


def broker_factory(
    plan: SessionPlan, record: SessionRecord, rest: BybitRest, intrabar: str = "pessimistic"
) -> Callable[[InstrumentSpec, MarketExtras], Broker]:
    """The broker of the plan's mode, built once the runner knows the instrument."""
    if plan.mode == "paper":
        return lambda spec, extras: PaperBroker(
            plan.compiled, spec, record, extras, intrabar_policy=intrabar
        )
    from .bybit_broker import make_bybit_broker

    return make_bybit_broker(plan, record, rest)


def make_runner(
    plan: SessionPlan,
    record: SessionRecord,
    rest: BybitRest,
    *,
    on_update: Callable[[Snapshot], None] | None = None,
    **options: Any,
) -> LiveRunner:
    """The runner of a planned session (`options`: LiveRunner's keyword options)."""
    options.setdefault("store_path", config.db_path())
    if "notifier" not in options:
        options["notifier"] = Notifier.from_config(plan.name)
    return LiveRunner(
        plan.compiled, plan.symbol, rest, endpoints(plan.environment).ws_public, record,
        broker_factory(plan, record, rest, record.meta().get("intrabar", "pessimistic")),
        on_update=on_update, guards=plan.guards, resume=plan.resume, **options,
    )  # fmt: skip


async def run_session(
    plan: SessionPlan,
    record: SessionRecord,
    *,
    on_update: Callable[[Snapshot], None] | None = None,
) -> LiveRunner:
    """Run until Ctrl-C or SIGTERM (`trade play stop`): resting entries are cancelled, a position
    keeps its stop; SIGUSR1 (`trade play stop --flatten`) closes the position first."""
    logs.setup()
    record.listeners.append(logs.journal_listener(plan.name))
    async with BybitRest(environment=plan.environment, credentials=plan.credentials) as rest:
        record.set_meta(rest_url=rest.base_url, pid=os.getpid())
        runner = make_runner(plan, record, rest, on_update=on_update)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runner.request_stop)
        loop.add_signal_handler(signal.SIGUSR1, lambda: runner.request_stop(flatten=True))
        try:
            await runner.run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
                loop.remove_signal_handler(sig)
    return runner
