"""Type-check a validated Play against the feature catalog and compile it for the engine.

Resolves every reference (built-in series, feature outputs, structure fields, enum literals, setups),
checks operand types per DESIGN §6, orders features so dependencies come first, and computes each
feature's warmup. The result, a CompiledPlay, is all the engine needs; the YAML is not read again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import PlayError
from ..features.catalog import FeatureCatalog, FeatureSpec, OutputSpec, did_you_mean
from ..features.registry import default_catalog
from ..timeframes import TIMEFRAMES
from . import ast as A
from .loader import Located, load_play, load_play_text
from .model import MAX_BARS, ROLES, Intent, Play
from .parser import ConditionError, parse_condition

PRICE_BUILTINS = ("open", "high", "low", "close", "volume", "hl2", "hlc3", "ohlc4")
INSTANT_BUILTINS = ("last_price", "mark_price", "funding_rate")
POSITION_SIDES = ("flat", "long", "short")
POSITION_BUILTINS: dict[str, tuple[A.Kind, tuple[str, ...]]] = {
    "position.side": (A.Kind.ENUM, POSITION_SIDES),
    "position.entry_price": (A.Kind.FLOAT, ()),
    "position.bars_held": (A.Kind.INT, ()),
    "position.unrealized_pnl_pct": (A.Kind.FLOAT, ()),
}
BUILTINS = (*PRICE_BUILTINS, *INSTANT_BUILTINS, *POSITION_BUILTINS)
NUMERIC = (A.Kind.FLOAT, A.Kind.INT)


MAX_SETUP_DEPTH = 32  # setups using setups: deeper is a generated or runaway Play


def _offset(digits: str | None, path: str) -> int:
    """A `[n]` history offset, bounded before it is converted (a 5,000-digit one is not an int)."""
    if digits is None:
        return 0
    if len(digits) > 7 or int(digits) > MAX_BARS:
        shown = digits if len(digits) <= 12 else f"{digits[:12]}… ({len(digits)} digits)"
        raise ConditionError(path, f"offset [{shown}] exceeds {MAX_BARS:,} bars")
    return int(digits)


@dataclass(frozen=True)
class FeatureNode:
    """One indicator or structure instance of the Play, with resolved params and timeframe."""

    key: str
    kind: str  # indicator | structure
    type: str  # indicator or structure type name
    params: Mapping[str, Any]
    tf: str  # concrete timeframe
    source: str | None
    deps: Mapping[str, str]  # structure dependency slot → feature key
    outputs: tuple[OutputSpec, ...]
    warmup: int  # bars of its own timeframe

    @cached_property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)


@dataclass(frozen=True)
class CompiledBlock:
    id: str
    cases: tuple[tuple[A.Cond, tuple[Intent, ...]], ...]
    else_: tuple[Intent, ...] | None


@dataclass(frozen=True)
class CompiledPlay:
    play: Play
    origin: str
    features: tuple[FeatureNode, ...]  # dependencies first
    blocks: tuple[CompiledBlock, ...]
    setups: Mapping[str, A.Cond]
    exec_tf: str
    series: frozenset[A.Series] = field(default=frozenset())
    warnings: tuple[
        str, ...
    ] = ()  # `file:line: key.path: message`, e.g. a condition that is constant

    def feature(self, key: str) -> FeatureNode:
        return next(f for f in self.features if f.key == key)

    @cached_property
    def uses_position(self) -> bool:
        return any(s.id.startswith("position.") for s in self.series)

    def warmup_exec_bars(self) -> int:
        """Exec bars of history needed before the first evaluated bar (features' need, or more)."""
        exec_ms = TIMEFRAMES[self.exec_tf]
        need = 0
        for f in self.features:
            need = max(need, -(-(f.warmup * TIMEFRAMES[f.tf]) // exec_ms))
        return max(need, self.play.warmup_bars)


def validate_play(
    path: str | Path,
    overrides: Mapping[str, str] | None = None,
    catalog: FeatureCatalog | None = None,
) -> CompiledPlay:
    """Load, validate and type-check a Play file. Raises PlayError listing every problem."""
    play, located = load_play(path, overrides)
    return compile_play(play, located, str(path), catalog)


def validate_play_text(
    text: str,
    origin: str = "<play>",
    overrides: Mapping[str, str] | None = None,
    catalog: FeatureCatalog | None = None,
) -> CompiledPlay:
    play, located = load_play_text(text, origin, overrides)
    return compile_play(play, located, origin, catalog)


def compile_play(
    play: Play, located: Located, origin: str, catalog: FeatureCatalog | None = None
) -> CompiledPlay:
    return _Compiler(play, located, origin, catalog or default_catalog()).run()


class _Compiler:
    def __init__(self, play: Play, located: Located, origin: str, catalog: FeatureCatalog) -> None:
        self.play = play
        self.located = located
        self.origin = origin
        self.catalog = catalog
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.nodes: dict[str, FeatureNode] = {}
        self.setups: dict[str, A.Cond | None] = {}
        self.setup_stack: list[str] = []
        self.too_deep = False  # setups nested past MAX_SETUP_DEPTH, reported once
        self.series: set[A.Series] = set()
        self.failed: set[str] = set()  # declared features whose own declaration was invalid
        self.exec_ms = TIMEFRAMES[play.timeframes.exec_tf]

    def report(self, path: str, message: str) -> None:
        self.problems.append(self._located(path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(self._located(path, message))

    def _located(self, path: str, message: str) -> str:
        line = self.located.line(path) or 1
        return f"{self.origin}:{line}: {path}: {message}"

    # ------------------------------------------------------------------ features and structures

    def run(self) -> CompiledPlay:
        self._features()
        order = self._structures()
        self._risk()
        blocks = self._actions()
        for name in self.play.setups:
            self._setup(name, f"setups.{name}")
        self._policy(blocks)
        if self.play.sweep is not None:
            from ..report.metrics import OBJECTIVES
            from .space import check_sweep

            check_sweep(self.play.sweep, self.play.variables, self.report, OBJECTIVES)
        if self.problems:
            raise PlayError(self.problems)
        features = [n for k, n in self.nodes.items() if n.kind == "indicator"] + [
            self.nodes[k] for k in order
        ]
        return CompiledPlay(
            play=self.play,
            origin=self.origin,
            features=tuple(features),
            blocks=tuple(blocks),
            setups={k: v for k, v in self.setups.items() if v is not None},
            exec_tf=self.play.timeframes.exec_tf,
            series=frozenset(self.series),
            warnings=tuple(dict.fromkeys(self.warnings)),  # a setup used twice warns once
        )

    def _features(self) -> None:
        tfs = self.play.timeframes
        for key, decl in self.play.features.items():
            path = f"features.{key}"
            if key in BUILTINS or key == "position":
                self.report(path, f"{key!r} is a built-in series name; choose another key")
                continue
            spec = self.catalog.get(decl.indicator)
            if spec is None or spec.kind != "indicator":
                hint = did_you_mean(decl.indicator, self.catalog.names("indicator"))
                self.report(f"{path}.indicator", f"unknown indicator {decl.indicator!r}{hint}")
                self.failed.add(key)
                continue
            tf = self._tf(decl.tf, f"{path}.tf")
            if tf is None:
                self.failed.add(key)
                continue
            if decl.source is not None and not spec.has_source:
                self.report(
                    f"{path}.source",
                    f"{decl.indicator} does not take a source (it reads its own inputs)",
                )
            params = self._params(spec, decl.params, f"{path}.params")
            if params is None:
                self.failed.add(key)
                continue
            self.nodes[key] = FeatureNode(
                key=key,
                kind="indicator",
                type=spec.name,
                params=params,
                tf=tf,
                source=(decl.source or "close") if spec.has_source else None,
                deps={},
                outputs=spec.outputs_for(params),
                warmup=int(spec.warmup(params)),
            )
        del tfs

    def _tf(self, tf: str, path: str) -> str | None:
        tfs = self.play.timeframes
        if tf == "exec" or tf in ROLES:
            return tfs.resolve(tf)
        concrete = {tfs.low_tf, tfs.med_tf, tfs.high_tf}
        if tf in TIMEFRAMES or tf in ("1d", "1w"):
            canon = tfs.resolve(tf)
            if canon in concrete:
                return canon
        self.report(
            path,
            f"tf must be exec, a role (low_tf, med_tf, high_tf) or one of the Play's timeframes ({', '.join(sorted(concrete, key=TIMEFRAMES.get))}), got {tf!r}",
        )
        return None

    def _params(
        self, spec: FeatureSpec, raw: Mapping[str, Any], path: str
    ) -> dict[str, Any] | None:
        try:
            return spec.resolve_params(raw)
        except ValueError as exc:
            self.report(path, str(exc))
            return None

    def _structures(self) -> list[str]:
        """Register structure nodes; return their keys in dependency order (cycles reported)."""
        decls: dict[str, tuple[Any, str, str]] = {}
        for role, items in self.play.structures.items():
            for i, decl in enumerate(items):
                path = f"structures.{role}[{i}]"
                if decl.key in self.nodes or decl.key in decls or decl.key in BUILTINS:
                    self.report(
                        f"{path}.key",
                        f"key {decl.key!r} is already used by another feature or structure",
                    )
                    continue
                decls[decl.key] = (decl, role, path)
        deps_of: dict[str, dict[str, str]] = {}
        for key, (decl, _role, path) in decls.items():
            spec = self.catalog.get(decl.type)
            if spec is None or spec.kind != "structure":
                hint = did_you_mean(decl.type, self.catalog.names("structure"))
                self.report(f"{path}.type", f"unknown structure type {decl.type!r}{hint}")
                self.failed.add(key)
                continue
            deps = self._uses(spec, decl.uses, f"{path}.uses")
            if deps is None:
                self.failed.add(key)
                continue
            deps_of[key] = deps
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(key: str, chain: list[str]) -> bool:
            if state.get(key) == 2:
                return True
            if state.get(key) == 1:
                cyc = " -> ".join([*chain[chain.index(key) :], key])
                self.report(f"{decls[key][2]}.uses", f"structure dependency cycle: {cyc}")
                return False
            state[key] = 1
            for dep in deps_of.get(key, {}).values():
                if dep in decls and dep in deps_of and not visit(dep, [*chain, key]):
                    return False
            state[key] = 2
            order.append(key)
            return True

        for key in deps_of:
            if state.get(key) != 2 and not visit(key, []):
                return []
        for key in list(order):
            decl, role, path = decls[key]
            if not self._structure_node(key, decl, role, path, deps_of[key], decls):
                order.remove(key)
        return order

    def _uses(self, spec: FeatureSpec, uses: Any, path: str) -> dict[str, str] | None:
        slots = spec.uses
        if uses is None:
            given: dict[str, str] = {}
        elif isinstance(uses, str):
            given = {slots[0]: uses} if slots else {"": uses}
        elif isinstance(uses, list):
            given = dict(zip(slots, uses, strict=False))
            if len(uses) != len(slots):
                self.report(
                    path,
                    f"{spec.name} uses {len(slots)} dependencies ({', '.join(slots) or 'none'}), got {len(uses)}",
                )
                return None
        else:
            given = dict(uses)
        for slot in given:
            if slot not in slots:
                self.report(
                    path,
                    f"{spec.name} has no dependency slot {slot!r}; it uses: {', '.join(slots) or 'nothing'}",
                )
                return None
        missing = [s for s in slots if s not in given]
        if missing:
            self.report(path, f"{spec.name} needs 'uses' for: {', '.join(missing)}")
            return None
        return given

    def _structure_node(
        self,
        key: str,
        decl: Any,
        role: str,
        path: str,
        deps: dict[str, str],
        decls: Mapping[str, Any],
    ) -> bool:
        spec = self.catalog.get(decl.type)
        assert spec is not None
        tf = self.play.timeframes.resolve(role)
        for slot, dep in deps.items():
            node = self.nodes.get(dep)
            if node is None:
                known = [*self.nodes, *decls]
                self.report(f"{path}.uses", f"unknown dependency {dep!r}{did_you_mean(dep, known)}")
                return False
            if node.type != slot:
                self.report(
                    f"{path}.uses", f"slot {slot!r} needs a {slot}, but {dep!r} is a {node.type}"
                )
                return False
            if node.tf != tf:
                self.report(
                    f"{path}.uses",
                    f"{dep!r} is on {node.tf} but this structure is on {tf}; dependencies share the timeframe",
                )
                return False
        params = self._params(spec, decl.params, f"{path}.params")
        if params is None:
            return False
        self.nodes[key] = FeatureNode(
            key=key,
            kind="structure",
            type=spec.name,
            params=params,
            tf=tf,
            source=None,
            deps=deps,
            outputs=spec.outputs_for(params),
            warmup=int(spec.warmup(params))
            + max([self.nodes[d].warmup for d in deps.values()], default=0),
        )
        return True

    def _risk(self) -> None:
        risk = self.play.risk
        for name, dist in (
            ("stop_loss", risk.stop_loss),
            ("take_profit", risk.take_profit),
            ("trailing", risk.trailing),
            ("break_even.trigger", risk.break_even.trigger if risk.break_even else None),
        ):
            if dist is not None and dist.type == "atr_multiple":
                path = f"risk.{name}.atr"
                if not dist.atr:
                    self.report(path, "atr_multiple needs 'atr': the key of an atr feature")
                    continue
                node = self.nodes.get(dist.atr)
                if node is None:
                    self.report(
                        path, f"unknown feature {dist.atr!r}{did_you_mean(dist.atr, self.nodes)}"
                    )
                elif node.type not in ("atr", "natr") or node.kind != "indicator":
                    self.report(
                        path, f"{dist.atr!r} is a {node.type}; atr_multiple needs an atr feature"
                    )
                elif node.tf != self.play.timeframes.exec_tf:
                    self.report(
                        path,
                        f"{dist.atr!r} is on {node.tf}; the ATR for risk must be on the exec "
                        f"timeframe ({self.play.timeframes.exec_tf}, where stops are placed): "
                        f"declare it without tf, e.g. atr: {{indicator: atr, params: {{length: 14}}}}",
                    )

    # ------------------------------------------------------------------ conditions

    def _actions(self) -> list[CompiledBlock]:
        blocks = []
        shorthand = not isinstance(self.play.actions, list)
        for bi, block in enumerate(self.play.blocks()):
            cases = []
            for ci, case in enumerate(block.cases):
                path = f"actions.{block.id}" if shorthand else f"actions[{bi}].cases[{ci}].when"
                cond = self._condition(case.when, path)
                if cond is not None:
                    cases.append((cond, tuple(case.emit)))
            else_ = tuple(block.else_.emit) if block.else_ else None
            blocks.append(CompiledBlock(block.id, tuple(cases), else_))
        return blocks

    def _policy(self, blocks: list[CompiledBlock]) -> None:
        pol = self.play.position_policy
        del blocks  # judge the declared actions, even those whose condition failed to compile
        declared = self.play.blocks()
        intents = {i.action for b in declared for case in b.cases for i in case.emit}
        intents |= {i.action for b in declared if b.else_ for i in b.else_.emit}
        if not intents & {"entry_long", "entry_short"}:
            self.report("actions", "no entry_long or entry_short action: this Play can never trade")
        if pol.mode == "long_only" and "entry_short" in intents:
            self.report("position_policy.mode", "long_only Play declares an entry_short action")
        if pol.mode == "short_only" and "entry_long" in intents:
            self.report("position_policy.mode", "short_only Play declares an entry_long action")
        risk = self.play.risk
        if pol.exit_mode == "signal" and (risk.stop_loss or risk.take_profit or risk.trailing):
            self.report(
                "position_policy.exit_mode",
                "exit_mode signal exits only on signals; remove risk stop_loss/take_profit/trailing or use first_hit",
            )
        if pol.exit_mode == "tp_sl":
            if intents & {"exit_long", "exit_short", "exit_all"}:
                self.report(
                    "position_policy.exit_mode",
                    "exit_mode tp_sl exits only at stop/take-profit; remove exit actions or use first_hit",
                )
            if not (risk.stop_loss or risk.take_profit or risk.trailing):
                self.report(
                    "position_policy.exit_mode",
                    "exit_mode tp_sl needs risk.stop_loss, take_profit or trailing",
                )
        if self.play.entry.order_type == "limit" and pol.allow_flip:
            self.report(
                "entry.order_type",
                "allow_flip needs market entries (a flip closes and opens at the same open)",
            )

    def _setup(self, name: str, path: str) -> A.Cond | None:
        if name in self.setups:
            return self.setups[name]
        if name in self.setup_stack:
            cyc = " -> ".join([*self.setup_stack[self.setup_stack.index(name) :], name])
            self.report(path, f"setup cycle: {cyc}")
            return None
        if name not in self.play.setups:
            self.report(path, f"unknown setup {name!r}{did_you_mean(name, self.play.setups)}")
            return None
        if len(self.setup_stack) >= MAX_SETUP_DEPTH:
            if not self.too_deep:  # once: every setup above this one would say the same
                self.report(path, f"setups nested deeper than {MAX_SETUP_DEPTH} levels")
            self.too_deep = True
            return None
        self.setup_stack.append(name)
        cond = self._condition(self.play.setups[name], f"setups.{name}")
        self.setup_stack.pop()
        self.setups[name] = cond
        return cond

    def _condition(self, raw: Any, path: str) -> A.Cond | None:
        try:
            syntax = parse_condition(raw, path)
            return self._cond(syntax)
        except _Reported:
            return None
        except ConditionError as exc:
            self.report(exc.path, exc.message)
            return None

    def _cond(self, node: A.CondSyntax) -> A.Cond:
        if isinstance(node, A.LogicSyntax):
            return A.Logic(node.op, tuple(self._cond(i) for i in node.items))
        if isinstance(node, A.NotSyntax):
            return A.Not(self._cond(node.item))
        if isinstance(node, A.SetupSyntax):
            cond = self._setup(node.name, node.path)
            if cond is None:  # unknown, cyclic or itself invalid: already reported
                raise _Reported()
            return cond
        if isinstance(node, A.WindowSyntax):
            bars = node.bars
            if bars is None:
                assert node.duration_ms is not None
                if node.duration_ms % self.exec_ms:
                    raise ConditionError(
                        f"{node.path}.duration",
                        f"duration must be a multiple of the exec timeframe ({self.play.timeframes.exec_tf})",
                    )
                bars = node.duration_ms // self.exec_ms
                if bars > MAX_BARS:
                    raise ConditionError(
                        f"{node.path}.duration", f"a window of {bars:,} bars; at most {MAX_BARS:,}"
                    )
            min_true = node.min_true if node.min_true is not None else 1
            if min_true > bars:
                raise ConditionError(
                    f"{node.path}.min_true",
                    f"min_true {min_true} exceeds the window of {bars} bars",
                )
            return A.Window(node.kind, bars, min_true, self._cond(node.expr))
        if isinstance(node, A.BoolSyntax):
            ref = self._ref(node.ref)
            if ref.kind != A.Kind.BOOL:
                raise ConditionError(
                    node.path,
                    f"{node.ref.text!r} is {ref.kind.value}, not bool; a bare reference as a condition must be a bool field (else compare it)",
                )
            return A.Cmp("==", ref, (A.Const(1.0, A.Kind.BOOL),))
        assert isinstance(node, A.CmpSyntax)
        return self._cmp(node)

    def _cmp(self, node: A.CmpSyntax) -> A.Cmp:
        op = node.op
        rhs_syntax = node.rhs if isinstance(node.rhs, tuple) else (node.rhs,)
        lhs, rhs = self._pair(node.lhs, rhs_syntax[0])
        rest = [self._operand(r, like=lhs) for r in rhs_syntax[1:]]
        operands = (rhs, *rest)
        where = node.path
        if op in (
            ">",
            ">=",
            "<",
            "<=",
            "between",
            "near_pct",
            "near_abs",
            "cross_above",
            "cross_below",
        ):
            for side, e in (("left", lhs), *(("right", r) for r in operands)):
                if e.kind not in NUMERIC:
                    raise ConditionError(
                        where, f"'{op}' needs numbers, but the {side} operand is {_describe(e)}"
                    )
        elif op in ("==", "!=", "in"):
            if lhs.kind == A.Kind.FLOAT or any(r.kind == A.Kind.FLOAT for r in operands):
                raise ConditionError(
                    where,
                    f"'{op}' on float values is not allowed (exact float equality is fragile); use near_abs with a tolerance",
                )
            for r in operands:
                if r.kind != lhs.kind or (lhs.kind == A.Kind.ENUM and r.members != lhs.members):
                    raise ConditionError(
                        where,
                        f"'{op}' compares {_describe(lhs)} with {_describe(r)}; both sides must have the same type",
                    )
            if op == "in" and any(not isinstance(r, A.Const) for r in operands):
                raise ConditionError(where, "'in' takes a list of literal values")
        if op == "between" and all(isinstance(r, A.Const) for r in operands):
            lo, hi = (r.value for r in operands)  # type: ignore[union-attr]
            if lo > hi:
                raise ConditionError(
                    f"{where}[2]",
                    f"'between' bounds [{lo:g}, {hi:g}] are reversed (low > high), so it is never true; write [{hi:g}, {lo:g}]",
                )
        cmp = A.Cmp(op, lhs, tuple(operands), node.tol)
        constant = _constant_truth(cmp)
        if constant is not None:
            self.warn(where, constant)
        return cmp

    def _pair(self, lhs_s: A.ExprSyntax, rhs_s: A.ExprSyntax) -> tuple[A.Expr, A.Expr]:
        """Resolve both operands; a bare name is an enum literal when the other side is an enum."""
        lhs_lit = isinstance(lhs_s, A.Name) and not self._is_ref(lhs_s.text)
        if lhs_lit and isinstance(rhs_s, A.Name | A.ArithSyntax | A.Num):
            rhs = self._operand(rhs_s)
            return self._operand(lhs_s, like=rhs), rhs
        lhs = self._operand(lhs_s)
        return lhs, self._operand(rhs_s, like=lhs)

    def _is_ref(self, text: str) -> bool:
        head = re.split(r"[.\[]", text, maxsplit=1)[0]
        return head in self.nodes or text in BUILTINS or text.split("[")[0] in BUILTINS

    def _operand(self, node: A.ExprSyntax, like: A.Expr | None = None) -> A.Expr:
        if isinstance(node, A.Num):
            if isinstance(node.value, bool):
                return A.Const(1.0 if node.value else 0.0, A.Kind.BOOL)
            kind = A.Kind.INT if isinstance(node.value, int) else A.Kind.FLOAT
            return A.Const(float(node.value), kind)
        if isinstance(node, A.ArithSyntax):
            left, right = self._operand(node.left), self._operand(node.right)
            for e in (left, right):
                if e.kind not in NUMERIC:
                    raise ConditionError(
                        node.path, f"arithmetic '{node.op}' needs numbers, got {_describe(e)}"
                    )
            kind = (
                A.Kind.INT
                if left.kind == right.kind == A.Kind.INT and node.op != "/"
                else A.Kind.FLOAT
            )
            return A.Arith(node.op, left, right, kind)
        if like is not None and like.kind == A.Kind.ENUM and node.text in like.members:
            # a member name wins over a series of the same name (`[piv.last_pivot_type, "==", low]`)
            return A.Const(float(like.members.index(node.text)), A.Kind.ENUM, like.members)
        if like is not None and like.kind == A.Kind.ENUM and not self._is_ref(node.text):
            hint = did_you_mean(node.text, like.members)
            raise ConditionError(
                node.path,
                f"{node.text!r} is not a member of {_describe(like)} (members: {', '.join(like.members)}){hint}",
            )
        return self._ref(node)

    def _ref(self, name: A.Name) -> A.Series:
        text = name.text
        m = re.fullmatch(r"(.*?)(?:\[(\d+)\])?", text)
        assert m is not None
        base, off = m.group(1), m.group(2)
        if base in POSITION_BUILTINS:
            if off is not None:
                raise ConditionError(
                    name.path,
                    f"{base} has no history; offsets apply to series, not to position fields",
                )
            kind, members = POSITION_BUILTINS[base]
            return self._use(A.Series(base, 0, kind, members))
        if base in PRICE_BUILTINS or base in INSTANT_BUILTINS:
            if off is not None and base in INSTANT_BUILTINS:
                raise ConditionError(name.path, f"{base} is an instant value; it has no offsets")
            return self._use(A.Series(base, _offset(off, name.path), A.Kind.FLOAT))
        head, _, rest = text.partition(".")
        if "[" in head:
            head, bracket = head.split("[", 1)
            rest = "[" + bracket + ("." + rest if rest else "")
        node = self.nodes.get(head)
        if node is None and head in self.failed:
            raise _Reported()
        if node is None:
            known = [*self.nodes, *BUILTINS]
            raise ConditionError(
                name.path,
                f"unknown reference {text!r}{did_you_mean(head, known) or did_you_mean(text, known)}; declare it under features or structures",
            )
        outputs = {o.name: o for o in node.outputs}
        rest_n = _normalise_brackets(rest)
        for out_name in sorted(outputs, key=len, reverse=True):
            if rest_n.startswith(out_name):
                tail = rest_n[len(out_name) :]
                mo = re.fullmatch(r"(?:\[(\d+)\])?", tail)
                if mo:
                    return self._series(node, outputs[out_name], _offset(mo.group(1), name.path))
        mo = re.fullmatch(r"(?:\[(\d+)\])?", rest_n)
        if mo and rest_n == rest_n.lstrip("."):
            if len(outputs) == 1:
                return self._series(
                    node, next(iter(outputs.values())), _offset(mo.group(1), name.path)
                )
            raise ConditionError(
                name.path,
                f"{head!r} ({node.type}) has several outputs ({', '.join(outputs)}); name one, e.g. {head}.{next(iter(outputs))}",
            )
        field_name = re.split(r"\[\d+\]$", rest_n)[0]
        raise ConditionError(
            name.path,
            f"unknown output {field_name!r} of {head!r} ({node.type}); expected one of {', '.join(outputs)}{did_you_mean(field_name, outputs)}",
        )

    def _series(self, node: FeatureNode, out: OutputSpec, offset: int) -> A.Series:
        return self._use(
            A.Series(f"{node.key}.{out.name}", offset, A.kind_of(out.kind), out.members)
        )

    def _use(self, s: A.Series) -> A.Series:
        self.series.add(s)
        return s


class _Reported(ConditionError):
    """A problem already reported elsewhere (e.g. a setup cycle); do not report it twice."""

    def __init__(self) -> None:
        super().__init__("", "")


def _normalise_brackets(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        inner = m.group(1)
        try:
            return f"[{float(inner):g}]"
        except ValueError:
            return m.group(0)

    return re.sub(r"\[([^\[\]]+)\]", fix, text)


def _constant_truth(c: A.Cmp) -> str | None:
    """Why a comparison has the same truth at every instant (None when it can vary).

    Provable cases: every operand a literal, or one series compared with itself (same offset)."""
    operands = (c.lhs, *c.rhs)
    if all(isinstance(e, A.Const) for e in operands):
        return f"'{c.op}' compares only literals, so it has the same truth at every bar"
    if any(e != c.lhs for e in c.rhs) or c.op == "in":
        return None
    truth = {
        ">": "false",
        "<": "false",
        "!=": "false",
        "cross_above": "false",
        "cross_below": "false",
        ">=": "true",
        "<=": "true",
        "==": "true",
        "between": "true",
        "near_abs": "true",
        "near_pct": "true",
    }[c.op]
    return f"'{c.op}' compares {_describe(c.lhs)} with itself, so it is always {truth} once the value exists"


def _describe(e: A.Expr) -> str:
    if isinstance(e, A.Series):
        return f"{e.id} ({e.kind.value})"
    if isinstance(e, A.Const):
        return f"the {e.kind.value} literal {e.value:g}"
    return f"an arithmetic expression ({e.kind.value})"
