"""Splitting JSON Lines and CSV text into records: at line feeds only.

``str.splitlines`` also breaks at U+2028/U+2029, form feeds, vertical tabs, U+0085 and the
file/group/record separators - characters a JSON string or a CSV field may legally hold - so a valid
record holding one would be cut in two and refused (or, in captured traffic, counted malformed).
Serving and the monitor's capture decoder both split here. Standard library only.
"""

from __future__ import annotations

from typing import List


def record_lines(text: str) -> List[str]:
    """The lines of ``text`` split at ``\\n`` (a ``\\r`` before it dropped), blank lines kept in place."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
