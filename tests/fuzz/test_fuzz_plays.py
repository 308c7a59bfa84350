"""Fuzzing the Play path: valid example Plays mutated (keys, types, values, nesting, YAML features,
raw bytes) and run through `trade play validate` in-process, some also through a synthetic
`trade backtest run`. The property: exit code 0 or 2 and never a traceback, each case in under 5 s
of CPU (numba's compiling left out) and 500 MB. Four shards of 500 cases, so pytest-xdist spreads
them over its workers."""

from __future__ import annotations

import copy
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from numba.core import event

from trade.cli.main import run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [
    yaml.safe_load(p.read_text()) for p in sorted((ROOT / "plays" / "examples").glob("*.yml"))
]
SHARDS, PER_SHARD = 4, 500
BACKTESTS_PER_SHARD = 6  # valid mutants also backtested (a synthetic run costs ~0.5 s)
LIMIT_S, LIMIT_BYTES = 5.0, 500 * 2**20
WORDS = [
    "ema", "sma", "rsi", "atr", "close", "open", "volume", "cross_above", "cross_below", ">",
    "<=", "==", "between", "near_pct", "all", "any", "not", "holds_for", "count_true", "setup",
    "15m", "1h", "4h", "low_tf", "exec", "percent", "atr_multiple", "{{fast}}", "{{nope}}",
    "ema_fast[1]", "ema_fast[99999999]", "macd.signal", "long_only", "first_hit", "1e400", "-0",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(WORDS), inner, max_size=3)
    ),
    max_leaves=12,
)
TEXT_EDITS = [
    lambda t, k: t[: k % (len(t) + 1)],  # truncated
    lambda t, k: t[: k % (len(t) + 1)] + "\t" + t[k % (len(t) + 1) :],
    lambda t, k: t[: k % (len(t) + 1)] + chr(k % 0x2FFF + 1) + t[k % (len(t) + 1) :],
    lambda t, k: "\ufeff" + t,
    lambda t, k: t + "\n---\nsecond: document\n",
    lambda t, k: t + "\nextra: !!python/object/apply:os.system ['true']\n",
    lambda t, k: t + "\nbomb: &a [x, x, x]\nb2: &b [*a, *a, *a, *a]\nb3: [*b, *b, *b, *b]\n",
    lambda t, k: t + "\n" + "x" * (k % 50) + ": " + "[" * (k % 80) + "]" * (k % 80) + "\n",
    lambda t, k: t.replace(":", ": &k" + str(k % 7), 1),
    lambda t, k: t.replace("  ", " ", k % 3 + 1),
]


def paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a Play tree."""
    out = [at] if at else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*at, i))
    return out


def mutate(tree: Any, path: tuple[Any, ...], op: int, value: Any) -> Any:
    """Apply one edit at `path`: replace, delete, rename the key, wrap deeper, or add a sibling."""
    parent = tree
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if op == 0:
        parent[last] = value
    elif op == 1:
        del parent[last]
    elif op == 2 and isinstance(parent, dict):
        parent[f"{last}_" if isinstance(value, bool) else str(value)[:10]] = parent.pop(last)
    elif op == 3:
        parent[last] = [parent[last]] if isinstance(value, bool) else {"all": [parent[last]]}
    elif isinstance(parent, dict):
        parent[str(value)[:10]] = value
    else:
        parent.insert(0, value)
    return tree


@st.composite
def play_bytes(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    tree = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(0, 4))):
        where = paths(tree)
        if not where:
            break
        tree = mutate(tree, draw(st.sampled_from(where)), draw(st.integers(0, 4)), draw(VALUES))
    text = yaml.safe_dump(tree, sort_keys=False, allow_unicode=True)
    if draw(st.integers(0, 3)) == 0:
        text = draw(st.sampled_from(TEXT_EDITS))(text, draw(st.integers(0, 10**6)))
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 30)) == 0:
        raw = raw[:40] + draw(st.binary(min_size=1, max_size=20)) + raw[40:]
    sets = [] if draw(st.integers(0, 5)) else [f"{draw(st.sampled_from(WORDS))}={draw(SCALARS)}"]
    return raw, sets


class Tally:
    def __init__(self) -> None:
        self.cases = self.backtests = 0
        self.longest = (0.0, "")
        self.base_rss = peak_rss()


def peak_rss() -> int:
    """Peak resident memory of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _Compiling(event.Listener):
    """CPU seconds spent in numba compilations (a compilation may start others inside it)."""

    def __init__(self) -> None:
        self.seconds, self.depth, self.t0 = 0.0, 0, 0.0

    def on_start(self, ev: object) -> None:
        if self.depth == 0:
            self.t0 = time.process_time()
        self.depth += 1

    def on_end(self, ev: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.seconds += time.process_time() - self.t0


def case_seconds(case: Callable[[], int]) -> tuple[int, float]:
    """`case()`'s result and the CPU seconds it took, numba's compilations left out: a process
    compiles a kernel (or a new signature of one) once, seconds on a cold cache, and a loaded
    machine stretches wall time; neither is the case's own cost, which is what the limit is on."""
    compiling = _Compiling()
    t0 = time.process_time()
    with event.install_listener("numba:compile", compiling):
        out = case()
    return out, time.process_time() - t0 - compiling.seconds


def timed(tally: Tally, args: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    # any exception other than the CLI's own fails the test here
    code, took = case_seconds(lambda: run(args))
    peak = peak_rss() - tally.base_rss  # the process's peak bounds every case's
    err = capsys.readouterr().err
    assert code in (0, 2), (args, code, err)
    assert "Traceback" not in err, err
    assert took < LIMIT_S, (args, took)
    assert peak < LIMIT_BYTES, (args, peak)
    if took > tally.longest[0]:
        tally.longest = (took, " ".join(args[:2]))
    return code


@pytest.mark.parametrize("shard", range(SHARDS))
def test_mutated_plays_exit_0_or_2_without_a_traceback(
    shard: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tally = Tally()

    @seed(20_000 + shard)  # reproducible, and a different stream per shard
    @settings(
        max_examples=PER_SHARD,
        deadline=None,  # timed by hand above, with the backtest included
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=play_bytes())
    def one(case: tuple[bytes, list[str]]) -> None:
        raw, sets = case
        play = tmp_path / "fuzz.yml"
        play.write_bytes(raw)
        overrides = [a for s in sets for a in ("--set", s)]
        tally.cases += 1
        code = timed(tally, ["play", "validate", str(play), *overrides], capsys)
        if code == 0 and tally.backtests < BACKTESTS_PER_SHARD and tally.cases % (shard + 2) == 0:
            tally.backtests += 1
            args = ["backtest", "run", "--play", str(play), *overrides, "--synthetic"]
            out = tmp_path / f"run{tally.backtests}"
            timed(tally, [*args, "--bars", "20000", "--no-report", "--out", str(out)], capsys)

    one()
    print(
        f"\nfuzz plays shard {shard}: {tally.cases} cases, {tally.backtests} backtests, "
        f"longest {tally.longest[0]:.2f} s ({tally.longest[1]})"
    )
    assert tally.cases >= PER_SHARD
