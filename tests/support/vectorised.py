"""Whether code is vectorised, checked by what it does rather than by how long it takes on this machine."""

from __future__ import annotations

import sys
from typing import Any, Callable


def python_calls(function: Callable[[], Any]) -> int:
    """How many Python functions ``function()`` calls (calls into C are not counted).

    Vectorised code makes about the same number of Python calls for 2,000 rows as for 20,000; a loop over
    rows in Python adds at least one call per row. Unlike a timing, the count does not depend on the
    machine or on what else runs on it.
    """
    calls = 0

    def count(_frame: Any, event: str, _arg: Any) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    previous = sys.getprofile()
    sys.setprofile(count)
    try:
        function()
    finally:
        sys.setprofile(previous)
    return calls
