"""docs/dsl.md's key table and the Play model describe the same keys: every key a Play may set has
a row (a row may name siblings as `a.b` / `.c`), and every row names a key that exists."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from trade.play.model import Play

DOC = (Path(__file__).resolve().parents[2] / "docs" / "dsl.md").read_text()


def _models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _models(a)]
    return []


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of every key, nested models walked; a mapping of user-chosen names to models
    is walked under a `<>` segment (`features.<>.tf`)."""
    out = []
    for name, f in model.model_fields.items():
        out.append(prefix + name)
        for m in _models(f.annotation):
            out += _keys(m, f"{prefix}{name}.")
        if typing.get_origin(f.annotation) is dict:
            out.append(f"{prefix}{name}.<>")
            for m in _models(typing.get_args(f.annotation)[1]):
                out += _keys(m, f"{prefix}{name}.<>.")
    return out


def _rows() -> set[str]:
    """The keys the table's rows name, placeholders (`<key>`, `<name>`, …) written `<>`."""
    rows = set()
    for first, rest in re.findall(r"^\| `([^`]+)`((?: / `\.[^`]+`)*)", DOC, re.M):
        first = re.sub(r"<[^>]*>", "<>", first)
        rows.add(first)
        parent = first.rsplit(".", 1)[0]
        rows.update(parent + sib for sib in re.findall(r"`(\.[^`]+)`", rest))
    return rows


KEYS, ROWS = _keys(Play), _rows()


def test_every_key_has_a_row() -> None:
    assert len(KEYS) > 50
    undocumented = [
        k
        for k in KEYS
        if not any(r == k or r.startswith(k + ".") or k.startswith(r + ".") for r in ROWS)
    ]
    assert undocumented == []


def test_every_row_names_a_key() -> None:
    assert {"risk.stop_beyond_liquidation", "account.fee_bps.maker", "features.<>.tf"} <= ROWS
    assert sorted(ROWS - set(KEYS)) == []


def test_every_operator_and_form_is_documented() -> None:
    from trade.play.ast import ARITH_OPS, OPERATORS
    from trade.play.parser import FORMS

    # the reference is the prose: fenced examples (and a ``` named in the text) are dropped
    prose = re.sub(r"^```.*?^```", "", DOC, flags=re.S | re.M).replace("```", "")
    spans = re.findall(r"`([^`]+)`", prose)
    quoted = {word for span in spans for word in span.split()}  # `+ - * / %` names five
    forms = {m for span in spans for m in re.findall(r"^\{(\w+):", span)}  # `{not: …}`
    assert sorted(set(OPERATORS + ARITH_OPS) - quoted) == []
    assert sorted(set(FORMS) - forms) == []
