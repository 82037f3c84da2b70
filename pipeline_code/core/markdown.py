"""Untrusted values as inert Markdown: the audit report and the model card render config and report strings."""

from __future__ import annotations

import re
from typing import Any

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_text(value: Any) -> str:
    """``value`` as one line of Markdown text with every Markdown/HTML character escaped; ``—`` when empty."""
    if value is None or value == "":
        return "—"
    return _MD_SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", str(value)).strip())
