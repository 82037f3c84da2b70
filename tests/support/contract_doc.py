"""The examples of ``docs/invocation-contract.md``: fenced blocks after ``<!-- <marker> id=... kind=... -->``."""

from __future__ import annotations

import re
from typing import Dict

from tests.support.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "invocation-contract.md"


def doc_examples(marker: str) -> Dict[str, Dict[str, Dict[str, str]]]:
    """``{id: {kind: {attribute: value, ..., "body": the block's text}}}`` of every block marked ``marker``
    (``example``: the endpoint's examples; ``by-id``: scoring by id)."""
    block = re.compile(rf"<!-- {re.escape(marker)} (?P<attrs>[^>]*?) -->\n```(?P<lang>\w*)\n(?P<body>.*?)\n```", re.S)
    out: Dict[str, Dict[str, Dict[str, str]]] = {}
    for match in block.finditer(DOC.read_text(encoding="utf-8")):
        attrs = dict(item.split("=", 1) for item in match.group("attrs").split())
        out.setdefault(attrs["id"], {})[attrs["kind"]] = {**attrs, "body": match.group("body")}
    return out
