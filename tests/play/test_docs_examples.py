"""Every ```yaml block in docs/*.md is checked: full Plays validate, action/condition fragments parse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from trade.play import validate_play_text
from trade.play.parser import parse_condition

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCKS = [
    (f"{md.name}#{i}", text)
    for md in sorted(DOCS.glob("*.md"))
    for i, text in enumerate(re.findall(r"```yaml\n(.*?)```", md.read_text(), re.S))
]


def test_docs_have_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize(("where", "text"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_yaml_block(where: str, text: str) -> None:
    data = yaml.safe_load(text)
    if isinstance(data, dict) and "name" in data:
        validate_play_text(text, where)
    elif isinstance(data, dict) and "actions" in data:
        acts = data["actions"]
        conds = (
            acts.values()
            if isinstance(acts, dict)
            else [c["when"] for b in acts for c in b["cases"]]
        )
        for c in conds:
            parse_condition(c, where)
    elif isinstance(data, dict) and "variables" in data:
        assert isinstance(data["variables"], dict)
    elif isinstance(data, dict) and "structures" in data:
        assert isinstance(data["structures"], dict)
    else:
        for value in data.values():
            parse_condition(value, where)
