"""cfn-lint over synthesized templates, with the project's justified exceptions in one place (.cfnlintrc).

cfn-lint runs with .cfnlintrc as its only configuration and its bundled resource schemas (a user's
``~/.cfnlintrc`` or schemas fetched with ``cfn-lint --update-specs`` are not read), for a region always
given, so what it finds in a template depends only on the template's bytes, the region, .cfnlintrc and
the installed cfn-lint. The findings of each template can then be kept in the content cache
(:mod:`mlops_loop.content_cache`, whose key covers all of these) and a template linted before is not
linted again; the main job and the tests pass :func:`lint_cache`. Not covered by the key, because this
app has neither: a nested stack whose template cfn-lint reads from a local file, and .cfnlintrc settings
that name other files (``override_spec``, ``append_rules``, ``custom_rules``, ``registry_schemas``); either
would need those files added to :data:`LINT_SOURCES`.

The templates to lint are shared out by size between one cfn-lint process per core (at least one per
region), all running at once; each process spends about a second starting.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from ..content_cache import ContentCache, cache_of
from .cloud_assembly import SynthesizedStack

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILE = REPO_ROOT / ".cfnlintrc"
DEFAULT_REGION = "us-east-1"  # cfn-lint's own default (when AWS_REGION and AWS_DEFAULT_REGION are unset)

# What a template's findings depend on in this repository (beside the installed packages).
LINT_SOURCES = ("mlops_loop/tools/lint.py", ".cfnlintrc")
_CACHE_KIND = "cfn-lint"
# cfn-lint's exit code is a bit mask of the levels it found (2 error, 4 warning, 8 informational).
_FINDINGS_EXIT_CODES = frozenset(range(0, 16, 2))


@dataclass
class LintResult:
    errors: int = 0
    warnings: int = 0
    informational: int = 0
    lines: list[str] = field(default_factory=list)

    def add(self, path: Path, findings: Iterable[dict]) -> None:
        """Count ``findings`` (level, rule, line, message) of the template at ``path``, one line each."""
        for finding in findings:
            level = finding["level"]
            if level == "Error":
                self.errors += 1
            elif level == "Warning":
                self.warnings += 1
            else:
                self.informational += 1
            self.lines.append(f"{level} {finding['rule']} {path.name}:{finding['line']} {finding['message']}")


def lint_cache() -> ContentCache:
    """The content cache of templates' findings in the directory configured now."""
    return cache_of(LINT_SOURCES)


def lint_stacks(stacks: Iterable[SynthesizedStack], *, cache: Optional[ContentCache] = None) -> LintResult:
    """:func:`lint_templates` over the stacks' templates, each against the region it deploys to (us-east-1 for
    an environment-agnostic stack), each answered from ``cache`` when it holds it (none by default: every
    template is linted).

    cfn-lint checks resource types, properties and values against the region it is given (us-east-1 by
    default), and regions differ: eu-west-1 lacks about 220 of us-east-1's resource types.
    """
    by_region: dict[Optional[str], list[Path]] = {}
    for stack in stacks:
        by_region.setdefault(stack.region, []).append(stack.template_path)
    return _lint(by_region, cache)


def lint_templates(
    paths: Sequence[Path], *, region: Optional[str] = None, cache: Optional[ContentCache] = None
) -> LintResult:
    """Run cfn-lint (config: .cfnlintrc at the repo root) over ``paths`` for ``region`` (default: us-east-1) and
    count findings by level, template by template in the order given; a template ``cache`` holds (none by
    default) is answered from it.

    In processes of their own, on purpose: run through its API in the caller's process, what cfn-lint leaves
    behind made every later test of that pytest worker 3-4x slower (the deploy-permission tests after a
    lint of the whole app: 48 s instead of 11 s), far more than the 1.4 s a process start costs.
    """
    return _lint({region: list(paths)}, cache)


def _lint(by_region: dict[Optional[str], list[Path]], cache: Optional[ContentCache]) -> LintResult:
    findings: dict[tuple[str, Path], list[dict]] = {}
    requests: dict[tuple[str, Path], dict] = {}
    order = [(region or DEFAULT_REGION, path) for region, paths in by_region.items() for path in paths]
    for region, path in order:
        request = _request(path, region)
        kept = cache.get(_CACHE_KIND, request) if cache is not None else None
        if kept is None:
            requests[(region, path)] = request
        else:
            findings[(region, path)] = json.loads(kept)
    missing: dict[str, list[Path]] = {}
    for region, path in requests:
        missing.setdefault(region, []).append(path)
    per_region = max(1, _cores() // max(1, len(missing)))
    running: list[tuple[str, list[Path], subprocess.Popen]] = []
    with tempfile.TemporaryDirectory(prefix="cfn-lint-home-") as home:
        try:
            for region, paths in missing.items():
                for share in _shares(paths, per_region):
                    running.append((region, share, _start(share, region, home)))
            for region, paths, process in running:
                found = _findings(process, paths)
                for path in paths:
                    findings[(region, path)] = found[path]
                    # Kept only if cfn-lint read the bytes the key names (a synth may rewrite a template).
                    if cache is not None and _request(path, region) == requests[(region, path)]:
                        cache.put(_CACHE_KIND, requests[(region, path)], json.dumps(found[path]))
        finally:
            for _, _, process in running:  # the others, when one failed
                if process.poll() is None:
                    process.kill()
                    process.communicate()
    result = LintResult()
    for region, path in order:
        result.add(path, findings[(region, path)])
    return result


def _request(path: Path, region: str) -> dict:
    return {"template_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "region": region}


def _cores() -> int:
    """The cores this process may run on (fewer than the machine's in a container or under taskset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _shares(paths: Sequence[Path], count: int) -> list[list[Path]]:
    """``paths`` in at most ``count`` non-empty shares of about equal template size (cfn-lint's time follows it),
    each in the given order."""
    shares: list[list[Path]] = [[] for _ in range(min(count, len(paths)))]
    sizes = [0] * len(shares)
    for path in sorted(paths, key=lambda p: -p.stat().st_size):
        smallest = sizes.index(min(sizes))
        shares[smallest].append(path)
        sizes[smallest] += path.stat().st_size
    order = {path: n for n, path in enumerate(paths)}
    return [sorted(share, key=order.__getitem__) for share in shares]


def _start(paths: Sequence[Path], region: str, home: str) -> subprocess.Popen:
    """cfn-lint over ``paths`` for ``region`` (:func:`command`), run in :data:`REPO_ROOT` with
    :func:`isolated_from_the_user`'s variables."""
    return subprocess.Popen(
        command(paths, region),
        cwd=REPO_ROOT,
        env={**os.environ, **isolated_from_the_user(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def command(paths: Sequence[Path], region: str) -> list[str]:
    """The cfn-lint command line over ``paths`` for ``region``: JSON findings, .cfnlintrc as its only configuration."""
    return [str(Path(sys.executable).with_name("cfn-lint")), "--format", "json", "--config-file", str(CONFIG_FILE),
            "--regions", region, "--", *(str(path.resolve()) for path in paths)]


def isolated_from_the_user(home: str) -> dict[str, str]:
    """Environment variables under which cfn-lint reads no user configuration and only its bundled schemas:
    ``home`` (an empty directory) stands for the user's home and cache directories, where it would find others."""
    return {"HOME": home, "XDG_CACHE_HOME": home}


def _findings(process: subprocess.Popen, paths: Sequence[Path]) -> dict[Path, list[dict]]:
    """The findings of each of ``paths`` that ``process`` reports, in its order (an empty list: clean)."""
    stdout, stderr = process.communicate()
    if process.returncode not in _FINDINGS_EXIT_CODES or not stdout.strip().startswith("["):
        raise RuntimeError(f"cfn-lint failed to run: {stderr or stdout}")
    found: dict[Path, list[dict]] = {path.resolve(): [] for path in paths}
    for match in json.loads(stdout):
        name = Path(match["Filename"]).resolve()
        if name not in found:
            raise RuntimeError(f"cfn-lint reported {match['Rule']['Id']} in {name}, which it was not given")
        found[name].append({
            "level": match["Level"],
            "rule": match["Rule"]["Id"],
            "line": match["Location"]["Start"]["LineNumber"],
            "message": match["Message"],
        })
    return {path: found[path.resolve()] for path in paths}
