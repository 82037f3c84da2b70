"""Whether a name someone wrote is a typo of a declared one.

Where a misspelt name would otherwise be dropped without a word (a user's file whose header has ``genders``
for the nullable ``gender``; a request with ``support_calls`` for the optional ``support_calls_90d``), the
value would be read as missing and the result would silently change. Standard library only.
"""

from __future__ import annotations

import difflib
import re
from typing import Iterable, List, Sequence, Tuple

_DIGITS = re.compile(r"[0-9]")


def misspellings(absent: Iterable[str], present: Sequence[str]) -> List[Tuple[str, str]]:
    """``(written, declared)`` for each ``absent`` declared name that a ``present`` undeclared one is one typo from
    (difflib ratio >= 0.8, the closest first); names that differ only in their digits (``q1_sales``/``q2_sales``)
    are different names."""
    pairs = []
    for declared in absent:
        close = [written for written in difflib.get_close_matches(declared, present, n=3, cutoff=0.8)
                 if _DIGITS.sub("", written) != _DIGITS.sub("", declared)]
        if close:
            pairs.append((close[0], declared))
    return pairs
