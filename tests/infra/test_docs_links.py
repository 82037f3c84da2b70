"""Every pointer into the documentation resolves.

- A reference in code, tests, scripts, workflows, config or docs that names a page and a heading
  (``(docs/operations.md, Dead-letter queues)``, ``docs/configuration.md: Configuration``,
  ``docs/training.md "Reproducibility"``, ``(README, The two commands)``) names a page that exists and a heading
  (or a paragraph's bold or italic lead) that page has; a bare ``docs/<page>.md`` names a page that exists.
- Every relative Markdown link of README.md and docs/*.md names a file that exists and, with ``#anchor``, a
  heading of that file (GitHub's anchors).
- Every module or script of ours that README.md, docs/*.md or a config file names by its path
  (``mlops_loop/config/model.py``) exists: a module moved or split is named where it now is.

The checks are functions of a text, so the last tests show each one failing on a broken pointer.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support import docs
from tests.support.paths import REPO_ROOT

# Where references are looked for (git's files of these kinds); vendored third-party code is not ours.
REFERENCE_SUFFIXES = (".py", ".sh", ".yml", ".yaml", ".md", ".json", ".toml", ".ini", ".cfg")
NOT_OURS = ("tests/support/vendored/", "node_modules/")
# This file writes broken references on purpose (the checks' own tests).
THIS_FILE = Path(__file__).relative_to(REPO_ROOT).as_posix()

PAGE = r"(?P<page>README|docs/[\w.-]+\.md)"
# A page, then how the heading follows it: ", X" / ": X" / " "X"" / "'s "X"" (a line break or a Python string
# break may sit in between; ``_joined`` takes those out first).
REFERENCE = re.compile(PAGE + r"(?P<sep>'s |, |: | )(?P<rest>[^\n]{0,160})")
BARE_PAGE = re.compile(r"(?<![\w/.-])docs/[\w.-]+\.md\b")
# A path of one of our modules or scripts (no glob: ``metrics*.py`` names a family).
CODE_PATH = re.compile(r"(?<![\w./-])(?:mlops_loop|pipeline_code|mlops_cli|tests|scripts|bench)/[\w./-]*\w\.(?:py|sh)\b(?!\*)")
# Paths the documentation names as examples of a file of yours, not of ours.
EXAMPLE_PATHS = {"pipeline_code/training/extra.py"}  # docs/deploying.md: an untracked file the job-code zip ships
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\((?P<target>[^)\s]+)\)")


def _joined(text: str) -> str:
    """``text`` with a wrapped message's breaks taken out: Python's adjacent strings ("...README, " / "Heading)"),
    comment and docstring line breaks, escaped quotes."""
    text = re.sub(r"[\"']\s*\n\s*(?:\+\s*)?[fr]?[\"']", "", text)
    text = re.sub(r"\n[ \t]*(?:#[ \t]*)?", " ", text)
    return text.replace('\\"', '"')


def _name(rest: str) -> str | None:
    """The heading a reference names: quoted or starred in full, or else up to the first closing mark."""
    quoted = re.match(r"(\"|\*\*|\*)([A-Za-z][^()\n]*?)\1", rest)
    if quoted:
        return quoted.group(2)
    bare = re.match(r"([A-Z][^)\":;*,]*?)(?:[.,]?\)|,|:|;|\"|\*|\. |\.$|$)", rest)
    return bare.group(1).strip() if bare else None


def reference_problems(text: str, where: str, pages: dict[str, str]) -> list[str]:
    """What is wrong with the page-and-heading references in ``text`` (from file ``where``); ``pages`` maps
    ``README``/``docs/x.md`` to that file's text."""
    problems = []
    joined = _joined(text)
    for match in BARE_PAGE.finditer(joined):
        if match.group(0) not in pages:
            problems.append(f"{where}: {match.group(0)} is no page (docs/ has {sorted(p for p in pages if p != 'README')})")
    for match in REFERENCE.finditer(joined):
        page, sep, rest = match.group("page"), match.group("sep"), match.group("rest")
        if page == "README":
            # Only what reads as a heading: (README, Heading) or README, "Heading" / *Heading*.
            before = joined[max(0, match.start() - 1):match.start()]
            if not (sep == ", " and (before == "(" or rest[:1] in "\"*")):
                continue
        name = _name(rest)
        if name is None:
            continue
        if page not in pages:
            continue  # reported above as no page
        if not docs.has_heading(pages[page], name):
            problems.append(f"{where}: {page} has no heading {name!r} (referenced as {match.group(0)[:90]!r})")
    return problems


def link_problems(text: str, path: Path) -> list[str]:
    """What is wrong with the relative links and anchors of the Markdown file ``path`` whose text is ``text``."""
    problems = []
    for number, line in docs._outside_fences(text):
        for match in LINK.finditer(re.sub(r"`[^`]*`", lambda m: " " * len(m.group(0)), line)):
            target = match.group("target")
            if re.match(r"[a-z][\w+.-]*:", target):
                continue  # https:, mailto:
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            here = f"{path.relative_to(REPO_ROOT).as_posix()}:{number}"
            if not resolved.exists():
                problems.append(f"{here}: link to {target}: no file {file}")
            elif anchor and resolved.suffix == ".md" and anchor not in docs.anchors(resolved.read_text(encoding="utf-8")):
                problems.append(f"{here}: link to {target}: {resolved.name} has no heading with anchor #{anchor}")
    return problems


def code_path_problems(text: str, where: str, root: Path = REPO_ROOT) -> list[str]:
    """The paths of our modules and scripts that ``text`` names and ``root`` does not hold."""
    return [f"{where}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)} does not exist (moved or split? "
            "name the module that holds it now)"
            for match in CODE_PATH.finditer(text)
            if match.group(0) not in EXAMPLE_PATHS and not (root / match.group(0)).exists()]


def _pages() -> dict[str, str]:
    return {("README" if p == docs.README else p.relative_to(REPO_ROOT).as_posix()): p.read_text(encoding="utf-8")
            for p in docs.files()}


def _reference_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT, check=True,
                            capture_output=True, text=True).stdout.splitlines()
    return [REPO_ROOT / name for name in listed
            if name.endswith(REFERENCE_SUFFIXES) and not name.startswith(NOT_OURS) and name != THIS_FILE
            and (REPO_ROOT / name).is_file()]


def test_every_reference_to_a_page_names_a_page_and_a_heading_it_has():
    pages = _pages()
    files = _reference_files()
    assert len(files) > 100 and any(f.name == "operations_stack.py" for f in files)  # the scan sees the code
    problems = [p for f in files
                for p in reference_problems(f.read_text(encoding="utf-8", errors="replace"),
                                            f.relative_to(REPO_ROOT).as_posix(), pages)]
    assert not problems, "\n".join(problems)


def test_every_relative_link_and_anchor_of_the_documentation_resolves():
    problems = [p for f in docs.files() for p in link_problems(f.read_text(encoding="utf-8"), f)]
    assert not problems, "\n".join(problems)


def test_every_module_the_documentation_and_the_config_name_exists():
    named = [*docs.files(), *sorted((REPO_ROOT / "config").glob("*.yaml")),
             *sorted((REPO_ROOT / "tests" / "support" / "configs").glob("*.yaml"))]
    problems = [p for f in named
                for p in code_path_problems(f.read_text(encoding="utf-8"), f.relative_to(REPO_ROOT).as_posix())]
    assert not problems, "\n".join(problems)


def test_the_readme_links_every_page_under_docs():
    readme = docs.README.read_text(encoding="utf-8")
    unlinked = [p.name for p in docs.files()[1:] if f"](docs/{p.name}" not in readme]
    assert not unlinked, f"README.md's table of pages lacks {unlinked}"


# --- the checks fail on a broken pointer --------------------------------------------------------------------

PAGES = {"README": "# x\n\n## The two commands\n", "docs/ops.md": "# Ops\n\n## Alarms\n\n**Dead-letter queues.** Each\n"}


@pytest.mark.parametrize("text", [
    'raise Alarm("see its DLQ (docs/ops.md, Dead-letter queues)")',
    '"see its DLQ (docs/ops.md, "\n    "Dead-letter queues)"',
    "# as docs/ops.md's\n# \"Dead-letter queues\": they keep",
    "(README, The two commands)",
    "(docs/ops.md: *Alarms*)",
])
def test_a_reference_to_a_heading_the_page_has_passes(text):
    assert reference_problems(text, "x.py", PAGES) == []


@pytest.mark.parametrize("text, problem", [
    ("see its DLQ (docs/ops.md, Dead letter queues)", "docs/ops.md has no heading 'Dead letter queues'"),
    ('"see (docs/ops.md, "\n    "Deadletter queues)"', "docs/ops.md has no heading 'Deadletter queues'"),
    ("(docs/operations.md, Dead-letter queues)", "docs/operations.md is no page"),
    ("(README, Dead-letter queues)", "README has no heading 'Dead-letter queues'"),
])
def test_a_reference_to_a_missing_page_or_heading_fails(text, problem):
    found = reference_problems(text, "x.py", PAGES)
    assert len(found) == 1 and problem in found[0], found


def test_a_broken_link_or_anchor_fails(tmp_path):
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "a.md"
    (tmp_path / "docs" / "b.md").write_text("# B\n\n## Some heading\n\n## Some heading\n")
    good = "[ok](b.md#some-heading) [ok](b.md#some-heading-1) [ok](#a) `[code](nowhere.md)`\n"
    broken = "[x](b.md#other) [y](c.md) [z](#missing)\n"
    page.write_text(f"# A\n\n{good}{broken}")
    found = [p.split(": ", 1)[1] for p in _link_problems_outside_repo(page)]
    assert found == ["link to b.md#other: b.md has no heading with anchor #other", "link to c.md: no file c.md",
                     "link to #missing: a.md has no heading with anchor #missing"]


def _link_problems_outside_repo(page: Path) -> list[str]:
    global REPO_ROOT
    saved, REPO_ROOT = REPO_ROOT, page.parents[1]
    try:
        return link_problems(page.read_text(), page)
    finally:
        REPO_ROOT = saved


def test_a_module_named_by_a_path_that_does_not_exist_fails(tmp_path):
    (tmp_path / "mlops_loop" / "config").mkdir(parents=True)
    (tmp_path / "mlops_loop" / "config" / "model.py").write_text("")
    text = ("# Validated at synth (mlops_loop/config/model.py)\n"
            "# and (mlops_loop/config/schema.py); `pipeline_code/training/metrics*.py` is a family\n")
    assert code_path_problems(text, "config/x.yaml", tmp_path) == [
        "config/x.yaml:2: mlops_loop/config/schema.py does not exist (moved or split? name the module that holds it now)"]
