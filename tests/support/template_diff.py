"""Watching what the template diff compares, without changing what it does."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from mlops_loop.tools.template_diff import cli


def record_compared(monkeypatch: pytest.MonkeyPatch, read: Callable[[Path], Any]) -> list:
    """A list that gets ``[read(base), read(head)]`` of each pair of assemblies the diff compares (while they
    still exist: a synthesized side lives in a temporary directory until the diff is rendered)."""
    seen: list = []
    compare = cli.compare_assemblies

    def recording(base: Path, head: Path, **kwargs: Any) -> Any:
        seen.extend(read(side) for side in (base, head))
        return compare(base, head, **kwargs)

    monkeypatch.setattr(cli, "compare_assemblies", recording)
    return seen
