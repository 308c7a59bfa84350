"""`trade sweep`: a grid or a seeded Optuna search over a Play's variables, on the fast path.

The store is read once per symbol (every combination's warmup included); workers cut each
combination's window from that data, so a row is exactly `trade backtest run --start S --end E
--set …` of its combination. Rows are checkpointed (sweep.csv, curves/, written whole and
renamed), so Ctrl-C keeps what finished and the same command resumes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..engine.backtest import parse_time
from ..engine.market import load_market_data, play_timeframes, warmup_ms, window_bounds
from ..errors import InputError
from ..gcpause import gc_frozen
from ..play import CompiledPlay, find_play, validate_play_text
from ..play.model import Scalar, SweepParam
from ..play.space import Space, as_text, parse_constraint, parse_param, values_of
from ..report.artifacts import iso
from ..report.metrics import MINIMISED, OBJECTIVES
from . import table
from .diagnostics import diagnose_stats, neighbourhood
from .executors import Executor, make_executor
from .jobs import Job, Row, SweepData, bankrupt

OPTUNA_BATCH = 8  # trials asked before any is told: fixed, so results do not depend on --workers
MANIFEST = "sweep.json"
WINNER = "winner.yml"
ProgressFn = Callable[[int, int, "float | None", "dict[str, Scalar] | None"], None]


class Interrupted(Exception):
    """Ctrl-C during a sweep, after the finished rows were saved."""

    def __init__(self, done: int, total: int, out: Path) -> None:
        super().__init__(f"interrupted: {done} of {total} runs kept in {out}")
        self.done, self.total, self.out = done, total, out


@dataclass
class Plan:
    """A sweep ready to run: the Play, its space, the objective and the data, read once."""

    play_path: Path
    play_text: str
    base: CompiledPlay
    space: Space
    objective: str
    symbols: list[str]
    shared: SweepData

    @property
    def names(self) -> list[str]:
        return list(self.space.params)

    @property
    def minimise(self) -> bool:
        return self.objective in MINIMISED


def build_space(
    compiled: CompiledPlay, cli_params: Sequence[str], constraints: Sequence[str] = ()
) -> Space:
    """The Play's `sweep:` block with `--param` items added or replacing its entries."""
    variables = compiled.play.variables
    block = compiled.play.sweep
    params: dict[str, SweepParam] = dict(block.params) if block else {}
    for item in cli_params:
        name, p = parse_param(item)
        if name not in variables:
            from ..features.catalog import did_you_mean

            hint = did_you_mean(name, variables) or (
                f"; the Play declares: {', '.join(variables) or 'no variables'}"
            )
            raise InputError(f"--param {item!r}: unknown variable {name!r}{hint}")
        params[name] = p
    if not params:
        raise InputError(
            f"{compiled.origin}: nothing to sweep; add a sweep: block to the Play or give --param"
        )
    texts = [*(block.constraints if block else []), *constraints]
    return Space(
        params={n: values_of(p) for n, p in params.items()},
        constraints=tuple(parse_constraint(c) for c in texts),
        fixed={k: v for k, v in variables.items() if k not in params},
    )


def check_objective(compiled: CompiledPlay, objective: str | None) -> str:
    name = objective or (compiled.play.sweep.objective if compiled.play.sweep else "sharpe")
    if name not in OBJECTIVES:
        from ..features.catalog import did_you_mean

        raise InputError(
            f"--objective {name!r}: not a metric{did_you_mean(name, OBJECTIVES)}; expected one of "
            f"{', '.join(OBJECTIVES)}"
        )
    return name


def _corners(space: Space) -> list[dict[str, Scalar]]:
    """Combinations that bound the warmup: each numeric parameter at its ends, every choice."""
    import itertools

    options = []
    for vals in space.params.values():
        nums = [v for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
        options.append(vals if len(nums) < len(vals) else sorted({min(nums), max(nums)}))
    return [dict(zip(space.params, c, strict=True)) for c in itertools.product(*options)]


def plan(
    play: str,
    *,
    symbols: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    params: Sequence[str] = (),
    objective: str | None = None,
    intrabar: str = "pessimistic",
    db: Path | None = None,
) -> Plan:
    """Validate everything, then read each symbol's data once (the widest warmup of the space)."""
    from ..data import open_reader

    path = find_play(play)
    text = Path(path).read_text(encoding="utf-8")
    base = validate_play_text(text, str(path))
    space = build_space(base, params)
    obj = check_objective(base, objective)
    syms = [s.strip().upper() for s in (symbols or [base.play.symbol]) if s.strip()]
    if not syms or len(set(syms)) != len(syms):
        raise InputError(f"--symbol {','.join(syms)}: expected distinct symbols")
    if intrabar not in ("pessimistic", "optimistic"):
        raise InputError(f"--intrabar {intrabar!r}: expected pessimistic or optimistic")
    start_ms = parse_time(start, "--start") if start else None
    end_ms = parse_time(end, "--end") if end else None
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise InputError(f"--end {end} must be after --start {start}")
    need: dict[str, int] = {}
    exec_tf = base.exec_tf
    for values in _corners(space):
        c = validate_play_text(text, str(path), {k: as_text(v) for k, v in values.items()})
        if c.exec_tf != exec_tf:
            raise InputError("the swept variables change the exec timeframe; sweep it apart")
        for tf, ms in warmup_ms(c).items():
            need[tf] = max(need.get(tf, 0), ms)
        for tf in play_timeframes(c):
            need.setdefault(tf, 0)
    data, windows = {}, {}
    with open_reader(db) as store:
        for sym in syms:
            a, b = window_bounds(store, sym, exec_tf, need, start_ms, end_ms)
            data[sym] = load_market_data(store, sym, {tf: a - ms for tf, ms in need.items()}, a, b)
            windows[sym] = (a, b)
    shared = SweepData(text, str(path), intrabar, data, windows)
    return Plan(Path(path), text, base, space, obj, syms, shared)


# ------------------------------------------------------------------------------------ running


@dataclass
class Outcome:
    rows: list[Row]
    winner: dict[str, Scalar] | None
    winner_objective: float | None
    diagnostics: dict[str, Any] = field(default_factory=dict)


def manifest(p: Plan, search: str, trials: int | None, seed: int | None) -> dict[str, Any]:
    """What makes two sweeps the same sweep (resume refuses a directory of another one)."""
    return {
        "play": p.base.play.name,
        "play_file": str(p.play_path),
        "play_sha256": hashlib.sha256(p.play_text.encode()).hexdigest(),
        "symbols": p.symbols,
        "windows": {s: [iso(a), iso(b)] for s, (a, b) in p.shared.windows.items()},
        "space": {n: list(v) for n, v in p.space.params.items()},
        "constraints": [c.text for c in p.space.constraints],
        "objective": p.objective,
        "search": search,
        "trials": trials,
        "seed": seed,
        "intrabar": p.shared.intrabar,
    }


def prepare_out(out: Path, head: dict[str, Any]) -> list[Row]:
    """Create `out`, or resume it: the same sweep's rows come back, another sweep is refused."""
    m = out / MANIFEST
    if out.exists():
        if not out.is_dir():
            raise InputError(f"--out {out}: is a file")
        if m.is_file():
            try:
                old = json.loads(m.read_text())
            except json.JSONDecodeError:
                raise InputError(f"{m}: not valid JSON; remove {out} to start again") from None
            if {k: old.get(k) for k in head} != head:
                diff = [k for k in head if old.get(k) != head[k]]
                raise InputError(
                    f"--out {out}: holds another sweep (differs in {', '.join(diff)}); "
                    "choose another --out"
                )
        elif any(out.iterdir()):
            raise InputError(f"--out {out}: exists, is not empty and holds no sweep")
    out.mkdir(parents=True, exist_ok=True)
    if not m.is_file():
        table.write_atomic(m, (json.dumps(head, indent=2) + "\n").encode())
    return []


def aggregate(
    rows: Iterable[Row], objective: str, symbols: Sequence[str]
) -> dict[int, float | None]:
    """Objective per combination: the mean over symbols (None when any symbol's is None), summed
    in `symbols` order whatever order the rows arrived in (workers finish in any order, and a
    float sum's last bit depends on its order: a tie, or Optuna's next trial, could follow it)."""
    per: dict[int, dict[str, Any]] = {}
    for r in rows:
        per.setdefault(r.index, {})[r.symbol] = row_objective(r, objective)
    return {i: mean_over(got, symbols) for i, got in per.items() if len(got) == len(symbols)}


def mean_over(values: Mapping[str, Any], symbols: Sequence[str]) -> float | None:
    """The mean of `values` (per symbol) taken in `symbols` order; None if any is None."""
    ordered = [values[s] for s in symbols]
    return None if any(v is None for v in ordered) else float(np.mean(ordered))


def row_objective(r: Row, objective: str) -> Any:
    """A row's objective, None when the run went bankrupt (its equity fell to zero or below:
    a drawdown of 100% or more): whatever its metric says, a ruined account is never the winner,
    and a search is told the trial failed."""
    return None if bankrupt(r.metrics.get("max_drawdown_pct")) else r.metrics.get(objective)


def _best(agg: Mapping[int, float | None], minimise: bool) -> int | None:
    scored = [(v, i) for i, v in agg.items() if v is not None]
    if not scored:
        return None
    if minimise:
        return min(scored, key=lambda vi: (vi[0], vi[1]))[1]
    return min(scored, key=lambda vi: (-vi[0], vi[1]))[1]  # ties: the earliest trial


class _Saver:
    """Checkpoints the table at most once a second (and on demand)."""

    def __init__(self, out: Path, names: Sequence[str]) -> None:
        self.checkpoint, self.last = table.Checkpoint(out, names), 0.0

    def __call__(self, rows: Sequence[Row], force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= 1.0:
            self.checkpoint.save(rows)
            self.last = now


def run_sweep(
    p: Plan,
    out: Path,
    *,
    search: str = "grid",
    trials: int | None = None,
    seed: int = 0,
    workers: int = 1,
    ray: str | None = None,
    progress: ProgressFn | None = None,
    window: tuple[int, int] | None = None,
) -> Outcome:
    """Run the plan's sweep into `out` (resuming what it holds of the same sweep). `window`:
    a part of the plan's window (every symbol), else all of it."""
    if search not in ("grid", "optuna"):
        raise InputError(f"--search {search!r}: expected optuna (or --grid)")
    if search == "optuna" and (trials is None or trials < 1):
        raise InputError("--search optuna needs --trials N (1 or more)")
    head = manifest(
        p, search, trials if search == "optuna" else None, seed if search == "optuna" else None
    )
    part: tuple[int, int] | tuple[()] = ()
    if window is not None:
        part = window
        head["windows"] = {s: [iso(window[0]), iso(window[1])] for s in p.symbols}
    with gc_frozen():  # see gcpause: hundreds of runs, each leaving a few cycles
        executor = make_executor(p.shared, workers, ray)  # an unreachable cluster: before any file
        try:
            prepare_out(out, head)
            rows = table.load(out, p.names, p.space.params)
        except BaseException:
            executor.close()
            raise
        saver = _Saver(out, p.names)
        try:
            if search == "grid":
                _grid(p, executor, rows, saver, progress, part)
            else:
                assert trials is not None
                _optuna(p, executor, rows, saver, trials, seed, progress, part)
        except KeyboardInterrupt:
            executor.close()
            saver(rows, force=True)
            total = p.space.size() if search == "grid" else (trials or 0)
            raise Interrupted(len({r.index for r in rows}), total, out) from None
        except BaseException:
            executor.close()
            saver(rows, force=True)
            raise
        # the workers exit (a few hundredths of a second) while the table and diagnostics are
        # written, not before
        closing = threading.Thread(target=executor.close, name="sweep-executor-close")
        closing.start()
        try:
            saver(rows, force=True)
            return finish(p, out, rows, head)
        finally:
            closing.join()


class _Board:
    """The best combination so far for the progress line, kept up as rows arrive (recomputing
    it from every row after each one made a long sweep quadratic). Same choice as `_best`: the
    best mean objective over the symbols, ties to the earliest trial."""

    def __init__(self, p: Plan, total: int, progress: ProgressFn | None) -> None:
        self.p, self.total, self.progress = p, total, progress
        self.parts: dict[int, dict[str, Any]] = {}
        self.done = 0
        self.best: tuple[float, int, dict[str, Scalar]] | None = None

    def add(self, rows: Iterable[Row]) -> None:
        for r in rows:
            got = self.parts.setdefault(r.index, {})
            got[r.symbol] = row_objective(r, self.p.objective)
            if len(got) != len(self.p.symbols):
                continue
            self.done += 1
            v = self.objective(r.index)
            if v is None:
                continue
            if self.best is None or (
                (v < self.best[0] if self.p.minimise else v > self.best[0])
                or (v == self.best[0] and r.index < self.best[1])
            ):
                self.best = (v, r.index, r.values)

    def objective(self, index: int) -> float | None:
        """`aggregate`'s value for one combination (None until every symbol's row is in)."""
        got = self.parts.get(index, {})
        return mean_over(got, self.p.symbols) if len(got) == len(self.p.symbols) else None

    def report(self) -> None:
        if self.progress is not None:
            value, _, values = self.best if self.best is not None else (None, None, None)
            self.progress(self.done, self.total, value, values)


def _grid(
    p: Plan,
    executor: Executor,
    rows: list[Row],
    saver: Callable[..., None],
    progress: ProgressFn | None,
    window: tuple[int, int] | tuple[()] = (),
) -> None:
    combos = list(p.space.grid())
    if not combos:
        raise InputError("no combination of the sweep satisfies its constraints")
    done = {(r.index, r.symbol) for r in rows}
    kept = {r.index: r.values for r in rows}
    for i, values in enumerate(combos):
        if kept.get(i, values) != values:
            raise InputError(f"{table.TABLE}: trial {i} ran other values; choose another --out")
    jobs = [
        Job(i, s, values, *window)
        for i, values in enumerate(combos)
        for s in p.symbols
        if (i, s) not in done
    ]
    board = _Board(p, len(combos), progress)
    board.add(rows)
    board.report()
    for row in executor.run(jobs):
        rows.append(row)
        saver(rows)
        board.add([row])
        board.report()


def _optuna(
    p: Plan,
    executor: Executor,
    rows: list[Row],
    saver: Callable[..., None],
    trials: int,
    seed: int,
    progress: ProgressFn | None,
    window: tuple[int, int] | tuple[()] = (),
) -> None:
    """TPE, seeded; trials asked in fixed batches, a repeated combination reuses its row. A
    resumed search replays the same asks and is told the kept rows' objectives."""
    import optuna
    from optuna.distributions import CategoricalDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize" if p.minimise else "maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    dists: dict[str, Any] = {}
    for name, vals in p.space.params.items():
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in vals)
        steps = {b - a for a, b in itertools.pairwise(vals)} if ints else set()
        if ints and len(vals) > 1 and len(steps) == 1:
            dists[name] = IntDistribution(vals[0], vals[-1], step=steps.pop())
        else:
            dists[name] = CategoricalDistribution(vals)
    index_of: dict[tuple[Any, ...], int] = {}
    for r in rows:
        index_of.setdefault(tuple(r.values[n] for n in p.names), r.index)
    done = {(r.index, r.symbol) for r in rows}
    board = _Board(p, trials, progress)
    board.add(rows)
    told = asks = 0
    while told < trials:
        batch: list[tuple[Any, dict[str, Scalar], int]] = []
        while len(batch) < OPTUNA_BATCH and told + len(batch) < trials:
            asks += 1
            if asks > 100 * trials:
                raise InputError(
                    f"the search found no new combination satisfying the constraints in {asks - 1} asks"
                )
            t = study.ask(dists)
            values = {n: t.params[n] for n in p.names}
            if not p.space.allowed(values):
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
                continue
            key = tuple(values[n] for n in p.names)
            idx = index_of.setdefault(key, told + len(batch))
            batch.append((t, values, idx))
        jobs = []
        for _, values, idx in batch:
            for s in p.symbols:
                if (idx, s) not in done:
                    done.add((idx, s))
                    jobs.append(Job(idx, s, values, *window))
        for row in executor.run(jobs):
            rows.append(row)
            saver(rows)
            board.add([row])
            board.report()
        for t, _, idx in batch:
            value = board.objective(idx)
            if value is None:
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(t, value)
        told += len(batch)
        board.report()


# ------------------------------------------------------------------------------------ results


def finish(p: Plan, out: Path, rows: list[Row], head: dict[str, Any]) -> Outcome:
    """The winner (best mean objective over the symbols), its Play file and the diagnostics."""
    agg = aggregate(rows, p.objective, p.symbols)
    i = _best(agg, p.minimise)
    result = Outcome(table.ordered(rows), None, None)
    summary: dict[str, Any] = dict(head)
    summary["runs"] = len(rows)
    summary["combinations"] = len(agg)
    if i is not None:
        winner = next(r.values for r in rows if r.index == i)
        result.winner, result.winner_objective = dict(winner), agg[i]
        table.write_atomic(out / WINNER, winner_play(p.play_text, winner).encode())
        objective_of = {tuple(r.values[n] for n in p.names): agg.get(r.index) for r in rows}
        result.diagnostics = {
            "neighbourhood": neighbourhood(winner, p.space.params, objective_of, p.minimise),
            "per_symbol": {},
        }
        for s in p.symbols:
            mine = sorted((r for r in rows if r.symbol == s), key=lambda r: r.index)
            at = next(k for k, r in enumerate(mine) if r.index == i)
            result.diagnostics["per_symbol"][s] = diagnose_stats([r.stats for r in mine], at)
        summary["winner"] = {
            "trial": i,
            "values": winner,
            "objective": agg[i],
            "set": " ".join(f"--set {k}={as_text(v)}" for k, v in winner.items()),
        }
        summary["diagnostics"] = result.diagnostics
    table.write_atomic(out / MANIFEST, (json.dumps(summary, indent=2) + "\n").encode())
    return result


def winner_play(play_text: str, values: Mapping[str, Scalar]) -> str:
    """The Play with the winner's values as its variables (and no sweep block): a plain Play."""
    data = yaml.safe_load(play_text)
    data["variables"] = {**(data.get("variables") or {}), **values}
    data.pop("sweep", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
