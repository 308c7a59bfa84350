"""YAML → validated Play: parse with line numbers, substitute variables, validate, report every problem.

Every problem becomes one `file:line: key.path: message` line inside a single PlayError, so a user
fixes a Play in one pass. Nothing here runs a backtest or touches market data.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import PlayError
from ..features.catalog import did_you_mean
from .model import Play

VAR_RE = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")
MAX_BYTES = 1_000_000
# Bounds checked on the YAML event stream, before anything is built or walked recursively.
MAX_DEPTH = 40  # nesting levels of mappings and lists
MAX_VALUES = 100_000  # keys and values, aliases counted at their expanded size
MAX_NUMBER_CHARS = 40
NUMBER_RE = re.compile(r"[-+]?\.?[0-9][0-9a-fA-FxXoO_.:eE+-]*")


class Located:
    """Maps key paths (`features.ema.params.length`, `actions.entry_long[1]`) to YAML line numbers."""

    def __init__(self, lines: dict[str, int]) -> None:
        self.lines = lines

    def line(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.lines.get("")


_PARSED: dict[tuple[str, str], tuple[Any, Located]] = {}  # a few texts parsed before
_PARSED_MAX = 16


def read_yaml(text: str, origin: str) -> tuple[Any, Located]:
    """Parse YAML text into Python data plus a line map; syntax errors become PlayError.

    A text parsed before is not parsed again (a sweep validates one Play text once per
    combination, and PyYAML's pure-Python parser is most of that cost): a copy of its data."""
    hit = _PARSED.get((text, origin))
    if hit is not None:
        return _copy(hit[0]), hit[1]
    data, located = _read_yaml(text, origin)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[(text, origin)] = (_copy(data), located)
    return data, located


def _copy(data: Any) -> Any:
    """A deep copy of parsed YAML: its containers are dicts, lists and sets, the rest immutable
    (several times faster than `copy.deepcopy`, which a sweep pays once per combination)."""
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    if isinstance(data, set):
        return set(data)
    return data


def _read_yaml(text: str, origin: str) -> tuple[Any, Located]:
    try:
        _check_shape(text, origin)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark is not None else "1"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PlayError(f"{origin}:{line}: invalid YAML: {problem}") from None
    lines: dict[str, int] = {}
    problems: list[str] = []
    if node is not None:
        _walk(node, "", lines, problems, origin)
    if problems:
        raise PlayError(problems)
    return data, Located(lines)


def _check_shape(text: str, origin: str) -> None:
    """Refuse, from the event stream alone (no recursion, no alias expansion), YAML nested deeper
    than MAX_DEPTH, holding more than MAX_VALUES values once aliases are expanded (an alias bomb
    is a few hundred bytes), or a number too long to be one."""
    expanded: dict[str, int] = {}  # anchor -> values under it, aliases expanded
    open_sizes: list[tuple[str | None, int]] = []  # (anchor, total when it opened)
    total = 0
    for ev in yaml.parse(text, Loader=yaml.SafeLoader):
        line = ev.start_mark.line + 1 if ev.start_mark is not None else 1
        if isinstance(ev, yaml.CollectionStartEvent):
            if len(open_sizes) >= MAX_DEPTH:
                raise PlayError(f"{origin}:{line}: nested deeper than {MAX_DEPTH} levels")
            open_sizes.append((ev.anchor, total))
            total += 1
        elif isinstance(ev, yaml.CollectionEndEvent):
            anchor, at_open = open_sizes.pop()
            if anchor is not None:
                expanded[anchor] = total - at_open
        elif isinstance(ev, yaml.ScalarEvent):
            if (
                ev.style is None
                and len(ev.value) > MAX_NUMBER_CHARS
                and NUMBER_RE.fullmatch(ev.value)
            ):
                raise PlayError(
                    f"{origin}:{line}: a number of {len(ev.value)} characters; "
                    f"at most {MAX_NUMBER_CHARS}"
                )
            if ev.anchor is not None:
                expanded[ev.anchor] = 1
            total += 1
        elif isinstance(ev, yaml.AliasEvent):
            total += expanded.get(ev.anchor or "", 1)
        if total > MAX_VALUES:
            raise PlayError(
                f"{origin}:{line}: more than {MAX_VALUES:,} values once aliases are expanded"
            )


def _walk(
    node: yaml.Node, path: str, lines: dict[str, int], problems: list[str], origin: str
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            sub = f"{path}.{key}" if path else key
            if key in seen:
                problems.append(
                    f"{origin}:{key_node.start_mark.line + 1}: {sub}: duplicate key {key!r}"
                )
            seen.add(key)
            lines[sub] = key_node.start_mark.line + 1
            _walk(value_node, sub, lines, problems, origin)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, f"{path}[{i}]", lines, problems, origin)


def load_play(path: str | Path, overrides: Mapping[str, str] | None = None) -> tuple[Play, Located]:
    """Read, substitute and validate a Play file. Raises PlayError listing every problem."""
    path = Path(path)
    origin = str(path)
    if not path.is_file():
        raise PlayError(f"{origin}: no such Play file")
    with path.open("rb") as fh:  # never more than the limit in memory, whatever the file is
        raw = fh.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        size = path.stat().st_size
        shown = f"{size:,} bytes" if size > MAX_BYTES else f"over {MAX_BYTES:,} bytes"
        raise PlayError(f"{origin}:1: file is {shown}; a Play is at most {MAX_BYTES:,}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlayError(
            f"{origin}:1: not a UTF-8 text file (byte {exc.start} is invalid)"
        ) from None
    if "\x00" in text:
        raise PlayError(f"{origin}:1: not a text file (contains NUL bytes)")
    return load_play_text(text, origin, overrides)


def load_play_text(
    text: str, origin: str, overrides: Mapping[str, str] | None = None
) -> tuple[Play, Located]:
    data, located = read_yaml(text, origin)
    if data is None:
        raise PlayError(f"{origin}:1: empty Play file")
    if not isinstance(data, dict):
        raise PlayError(
            f"{origin}:1: a Play is a mapping of keys (name, symbol, timeframes, …), got {type(data).__name__}"
        )
    problems: list[str] = []

    def report(p: str, message: str) -> None:
        line = located.line(p) or 1
        problems.append(f"{origin}:{line}: {p}: {message}" if p else f"{origin}:{line}: {message}")

    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        report("variables", "expected a mapping of name: value")
        variables = {}
    variables = dict(variables)
    for name, value in variables.items():
        if isinstance(value, dict | list) or value is None:
            report(f"variables.{name}", f"a variable is a number, string or bool, got {value!r}")
    for name, text_value in (overrides or {}).items():
        if name not in variables:
            hint = (
                did_you_mean(name, variables)
                or f"; the Play declares: {', '.join(variables) or 'no variables'}"
            )
            report("variables", f"--set {name}: unknown variable {name!r}{hint}")
            continue
        if len(text_value) > MAX_NUMBER_CHARS and NUMBER_RE.fullmatch(text_value):
            report(
                "variables",
                f"--set {name}: a number of {len(text_value)} characters; at most {MAX_NUMBER_CHARS}",
            )
            continue
        variables[name] = _parse_scalar(text_value)
    if problems:
        raise PlayError(problems)
    data = {k: v for k, v in data.items()}
    data["variables"] = variables
    substituted = {
        k: (v if k == "variables" else _substitute(v, k, variables, report))
        for k, v in data.items()
    }
    if problems:
        raise PlayError(problems)
    try:
        play = Play.model_validate(substituted)
    except ValidationError as exc:
        for err in _select_errors(exc.errors(), substituted):
            loc = [p for p in err["loc"] if not _is_union_tag(p)]
            p = _format_loc(loc)
            report(p, _message(err, loc))
        raise PlayError(sorted(set(problems), key=problems.index)) from None
    return play, located


@functools.lru_cache(maxsize=4096)  # a sweep parses the same few values again and again
def _parse_scalar(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError):  # ValueError: an integer beyond Python's digit limit
        return text
    return value if isinstance(value, int | float | str | bool) else text


def _substitute(value: Any, path: str, variables: Mapping[str, Any], report: Any) -> Any:
    if isinstance(value, str):
        full = VAR_RE.fullmatch(value.strip())
        if full:
            name = full.group(1)
            if name not in variables:
                report(path, f"unknown variable {{{{{name}}}}}{did_you_mean(name, variables)}")
                return value
            return variables[name]

        def repl(m: re.Match[str]) -> str:
            if m.group(1) not in variables:
                report(
                    path,
                    f"unknown variable {{{{{m.group(1)}}}}}{did_you_mean(m.group(1), variables)}",
                )
                return m.group(0)
            return str(variables[m.group(1)])

        return VAR_RE.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute(v, f"{path}.{k}", variables, report) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{path}[{i}]", variables, report) for i, v in enumerate(value)]
    return value


def _format_loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (
        "[" in part
        or part in ("str", "int", "float", "bool")
        or part[:1].isupper()
        or part.startswith("literal")
    )


def _select_errors(errors: list[Any], data: Any) -> list[Any]:
    """For a union (actions: mapping or list of blocks) keep the errors of the branch the user wrote."""
    kept = []
    for err in errors:
        loc = err["loc"]
        ok = True
        node = data
        for part in loc:
            if _is_union_tag(part):
                branch = str(part)
                if isinstance(node, dict) and not (
                    branch.startswith("dict") or branch[:1].isupper()
                ):
                    ok = False
                if isinstance(node, list) and not branch.startswith("list"):
                    ok = False
                if isinstance(node, str) and branch != "str":
                    ok = False
                continue
            if (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and part < len(node)
            ):
                node = node[part]
            else:
                node = None
        if ok:
            kept.append(err)
    return kept or errors[:1]


def _message(err: Mapping[str, Any], loc: list[Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        return f"unknown key {key!r}{did_you_mean(key, _allowed_keys(loc[:-1]))}"
    if kind == "missing":
        return "required key is missing"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    if kind in ("model_type", "model_attributes_type", "dict_type"):  # names a model class
        keys = _allowed_keys(loc)
        msg = "expected a mapping" + (f" of {', '.join(keys)}" if keys else "")
    if (
        kind not in ("value_error", "assertion_error")
        and "input" in err
        and not isinstance(err["input"], dict | list)
    ):
        msg += f" (got {err['input']!r})"
    return msg


def _allowed_keys(loc: list[Any]) -> list[str]:
    """Field names (and aliases) of the model that sits at `loc`, for 'did you mean' hints."""
    tp: Any = Play
    for part in loc:
        tp = _descend(tp, part)
        if tp is None:
            return []
    model = _model_in(tp)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _descend(tp: Any, part: Any) -> Any:
    model = _model_in(tp)
    if model is not None and isinstance(part, str) and part in model.model_fields:
        return model.model_fields[part].annotation
    for arg in _members(tp):
        origin = get_origin(arg)
        if origin is dict and isinstance(part, str):
            return get_args(arg)[1]
        if origin is list and isinstance(part, int):
            return get_args(arg)[0]
    return None


def _members(tp: Any) -> list[Any]:
    if get_origin(tp) in (Union, types.UnionType):
        return list(get_args(tp))
    return [tp]


def _model_in(tp: Any) -> type[BaseModel] | None:
    for arg in _members(tp):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        if get_origin(arg) is typing.Annotated:
            return _model_in(get_args(arg)[0])
    return None
