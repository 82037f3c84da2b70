"""Print the lines of a full lock that the packages of a requirements file need: their dependency closure.

    python scripts/lock_closure.py requirements.txt requirements.lock > requirements-synth.lock

The closure is read from the installed distributions' metadata (the venv the full lock was frozen
from), markers evaluated for this interpreter and the extras asked for, so the result is a subset of
the full lock with identical pins. Used by scripts/lock.sh.
"""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def requirements(path: str) -> list[Requirement]:
    """The requirements of a requirements file (comments, blank lines and ``-r`` includes left out)."""
    lines = (line.split("#", 1)[0].strip() for line in open(path, encoding="utf-8"))
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def closure(roots: list[Requirement]) -> set[str]:
    """Canonical names of ``roots`` and of everything they need, transitively, as installed here."""
    needed: set[str] = set()
    todo = [(root, frozenset(root.extras)) for root in roots]
    expanded: set[tuple[str, frozenset]] = set()
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if (name, extras) in expanded:
            continue
        expanded.add((name, extras))
        needed.add(name)
        for line in metadata.distribution(name).requires or []:
            dependency = Requirement(line)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if dependency.marker is None or any(dependency.marker.evaluate(env) for env in environments):
                todo.append((dependency, frozenset(dependency.extras)))
    return needed


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    needed = closure(requirements(argv[0]))
    kept = []
    for line in open(argv[1], encoding="utf-8"):
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if match and canonicalize_name(match.group(1)) in needed:
            kept.append(line.rstrip("\n"))
    missing = needed - {canonicalize_name(re.match(r"^([^=]+)==", k).group(1)) for k in kept}
    if missing:
        print(f"not in {argv[1]}: {', '.join(sorted(missing))}", file=sys.stderr)
        return 1
    names = [os.path.basename(path) for path in argv]
    print(f"# The closure of {names[0]} in {names[1]} (same pins): what scripts/synth.sh installs. Regenerate: scripts/lock.sh")
    print("\n".join(kept))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
