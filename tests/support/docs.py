"""The documentation: README.md and the pages under docs/. Tests that check what the documentation says find it here,
by heading or by a phrase, wherever it lives, instead of each opening a path (a section that moves to another page
moves with no test to edit)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS_DIR = REPO_ROOT / "docs"


@dataclass(frozen=True)
class Passage:
    """Text of one documentation file: ``path``; ``text``; ``line``, the file's line number of the text's first line."""

    path: Path
    text: str
    line: int = 1

    @property
    def name(self) -> str:
        """The file as messages name it (``README.md``, ``docs/serving.md``)."""
        return self.path.relative_to(REPO_ROOT).as_posix()


def files() -> list[Path]:
    """README.md, then every page under docs/, in name order."""
    return [README, *sorted(DOCS_DIR.glob("*.md"))]


def documents() -> list[Passage]:
    return [Passage(path, path.read_text(encoding="utf-8")) for path in files()]


def all_text() -> str:
    """Every documentation file's text, one after the other."""
    return "\n".join(doc.text for doc in documents())


def containing(needle: str) -> Passage:
    """The one documentation file whose text contains ``needle`` (an error names none or several)."""
    found = [doc for doc in documents() if needle in doc.text]
    if len(found) != 1:
        raise AssertionError(f"{needle!r} is in {len(found)} documentation files ({[d.name for d in found]}), "
                             f"expected exactly one of {[str(p.relative_to(REPO_ROOT)) for p in files()]}")
    return found[0]


def _level(line: str) -> int:
    """A heading's level (``## X``: 2); a bold paragraph lead (``**X**``) counts as below every heading."""
    match = re.match(r"(#{1,6}) ", line)
    return len(match.group(1)) if match else 7


def section(heading: str) -> Passage:
    """The section that starts with the line ``heading`` (a whole heading line, ``## Serving...``, or the start of a
    paragraph, ``**Cost floor**``), up to the next heading of its level or above (a lead: the next heading), in
    whichever documentation file holds it. Fenced code blocks are never read as headings."""
    level = _level(heading)
    for doc in documents():
        lines = doc.text.splitlines(keepends=True)
        fenced, start = False, None
        for number, line in enumerate(lines):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if fenced:
                continue
            if start is None:
                if line.rstrip("\n") == heading or (level == 7 and line.startswith(heading)):
                    start = number
            elif re.match(r"#{1,6} ", line) and _level(line) <= min(level, 6):
                return Passage(doc.path, "".join(lines[start:number]), start + 1)
        if start is not None:
            return Passage(doc.path, "".join(lines[start:]), start + 1)
    raise AssertionError(f"no documentation file has the heading {heading!r} "
                         f"(README.md and docs/*.md; see the README's table of pages)")


def _outside_fences(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            out.append((number, line))
    return out


def anchor_of(heading: str) -> str:
    """GitHub's anchor of a heading: its rendered text in lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (a repeated one gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in _outside_fences(text):
        match = re.match(r"#{1,6} (.*)", line)
        if match:
            base = anchor_of(match.group(1))
            out.add(base if base not in seen else f"{base}-{seen[base]}")
            seen[base] = seen.get(base, 0) + 1
    return out


def headings(text: str) -> list[str]:
    """What a reference may name in a file: its `#` headings and the bold or italic lead of a paragraph
    (``**Dead-letter queues.**``, ``*Incremental runs.*``), markup dropped."""
    out, previous = [], ""
    for _, line in _outside_fences(text):
        match = re.match(r"#{1,6} (.*)", line)
        lead = re.match(r"(\*\*|\*)([^*]+?)\1", line) if not previous.strip() else None
        if match:
            out.append(re.sub(r"[`*]", "", match.group(1)).strip())
        elif lead:
            out.append(re.sub(r"`", "", lead.group(2)).strip())
        previous = line
    return out


def has_heading(text: str, name: str) -> bool:
    """Whether ``name`` is one of the file's headings or leads, or the start of one up to a word's end
    (``Recovering an environment`` names ``### Recovering an environment``, ``Partitions`` the lead
    ``**Partitions: only the commercial ...**``). Case is not compared."""
    want = re.sub(r"[`*]", "", name).strip().rstrip(".").lower()
    for heading in headings(text):
        have = heading.lower()
        if have.startswith(want) and (len(have) == len(want) or not have[len(want)].isalnum()):
            return True
    return False
