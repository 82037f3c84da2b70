"""Synthesizing a git ref in a temporary worktree (and checking an existing assembly)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Optional, Sequence

import yaml

from ... import content_cache
from ...cdk_json import CDK_JSON, persistent_context
from .. import source_stamp
from ...packaging import REPO_ROOT
from ..cloud_assembly import nag_violations, stacks
from .model import TemplateDiffError



SYNTH_TIMEOUT_SECONDS = 15 * 60
STDERR_TAIL_LINES = 20

def run_git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=120)
    except FileNotFoundError as error:
        raise TemplateDiffError("git is not installed or not on PATH; install git") from error
    if check and proc.returncode != 0:
        raise TemplateDiffError(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def resolve_ref(repo: Path, ref: str) -> str:
    """The commit id of ``ref`` in ``repo``; TemplateDiffError when ``repo`` is no git repository or ``ref`` no commit."""
    if not repo.is_dir() or run_git(repo, "rev-parse", "--is-inside-work-tree", check=False).returncode != 0:
        raise TemplateDiffError(f"--repo {repo}: not a git repository; run inside a git checkout of mlops-loop")
    proc = run_git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise TemplateDiffError(
            f"--base {ref!r}: not a valid git ref in {repo}; give a branch, tag or commit (e.g. origin/main), "
            "and fetch it first in a shallow CI checkout"
        )
    return proc.stdout.strip()


def pinned_config(repo: Path, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The config file (as given: a relative path is from the top of each tree) that both sides of a diff of
    ``repo`` are synthesized with, when this checkout's resolver takes it from outside the tree's own cdk.json:
    ``MLOPS_LOOP_CONFIG`` (``environ``, default this process's), or the ``mlops-loop:config`` key in
    cdk.context.json or ~/.cdk.json. None when the tree's cdk.json or the default chooses it: each side then
    reads its own cdk.json, as its app.py does.

    Without it a base ref whose cdk.json still names a config (from before the variable existed) would be
    synthesized with that one, and the diff would compare two projects."""
    pin = _pin(repo, environ)
    return pin[0] if pin else None


def _pin(repo: Path, environ: Optional[Mapping[str, str]] = None) -> Optional[tuple[str, str]]:
    """(:func:`pinned_config`'s file, what selects it), or None."""
    from ...config.location import CONFIG_ENV, resolve_config

    found = persistent_context(source_stamp.CONFIG_CONTEXT_KEY, repo)
    if found is not None and found[1] == repo / CDK_JSON.name:
        return None
    location = resolve_config(found[0] if found else None, environ)
    if location.chosen_by == "default":
        return None
    by = CONFIG_ENV if location.chosen_by == "environment" else f"context '{source_stamp.CONFIG_CONTEXT_KEY}' in {found[1]}"
    return location.path, by


def _synth_env(outdir: Path, repo: Path, environments: Optional[Sequence[str]] = None) -> dict[str, str]:
    env = dict(os.environ)
    # Read by app.py as if given with `cdk synth -c` (a tree whose app.py predates it synthesizes all); any
    # other context the caller passes stays, but not a selection of its own, which the stamp would not show.
    context = {k: v for k, v in json.loads(env.get("CDK_CONTEXT_JSON") or "{}").items() if k != source_stamp.ENVIRONMENTS_CONTEXT_KEY}
    if environments:
        context[source_stamp.ENVIRONMENTS_CONTEXT_KEY] = ",".join(environments)
    # The same config for the base and the head: this context beats the key an older tree's cdk.json sets.
    config = pinned_config(repo)
    if config is not None:
        context.setdefault(source_stamp.CONFIG_CONTEXT_KEY, config)
    if context:
        env["CDK_CONTEXT_JSON"] = json.dumps(context)
    else:
        env.pop("CDK_CONTEXT_JSON", None)
    # Another checkout on PYTHONPATH would shadow the synthesized tree's own mlops_loop package.
    env.pop("PYTHONPATH", None)
    node_bins = [p for p in (repo / "node_modules" / ".bin", REPO_ROOT / "node_modules" / ".bin") if p.is_dir()]
    env["PATH"] = os.pathsep.join([*map(str, node_bins), env.get("PATH", "")])
    env["CDK_OUTDIR"] = str(outdir)
    # Both sides share this checkout's cache: its keys cover each tree's own generator sources.
    cache = content_cache.configured_directory()
    env[content_cache.CACHE_DIR_ENV] = str(cache) if cache is not None else content_cache.CACHE_OFF
    env["CDK_DISABLE_VERSION_CHECK"] = "1"
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    return env


def defined_in(tree: Path, environments: Optional[Sequence[str]], config: Optional[str] = None) -> Optional[list[str]]:
    """Those of ``environments`` that the config of ``tree`` defines, in its order; None (all) when that is
    none of them or all of them, when none was asked for or when the config cannot be read. ``config``: the
    file the synth is given (:func:`pinned_config`; default: the one the tree's app.py chooses).

    An environment that only one side of a diff has (added or removed by the change) is then synthesized on
    that side only, and the comparison shows it added or removed; a name neither side has is refused by it.
    """
    if not environments:
        return None
    from ...config.location import resolve_config

    try:
        if config is None:
            context = json.loads((tree / "cdk.json").read_text(encoding="utf-8"))["context"]
            # As app.py of this checkout chooses it: the tree's context, else MLOPS_LOOP_CONFIG, else the default.
            config = resolve_config(context.get(source_stamp.CONFIG_CONTEXT_KEY)).path
        defined = yaml.safe_load((tree / config).read_text(encoding="utf-8"))["environments"]
        selected = [name for name in defined if name in environments]
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return None
    return selected if selected and len(selected) < len(defined) else None


def synthesize_tree(
    tree: Path, *, outdir: Path, label: str, repo: Optional[Path] = None, environments: Optional[Sequence[str]] = None
) -> Path:
    """Run ``python app.py`` (this interpreter) in ``tree`` with ``CDK_OUTDIR=outdir``; return ``outdir``.

    ``environments``: synthesize only these (as :func:`defined_in` selects them; default: all).

    TemplateDiffError with the last lines of stderr when synthesis fails.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            [sys.executable, "app.py"],
            cwd=tree,
            env=_synth_env(outdir, repo or tree, environments),
            capture_output=True,
            text=True,
            timeout=SYNTH_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as error:
        raise TemplateDiffError(f"{label} did not synthesize within {SYNTH_TIMEOUT_SECONDS} s") from error
    if proc.returncode != 0 or not (outdir / "manifest.json").exists():
        findings = nag_violations(outdir)
        if findings:
            # The packs refused it: name each rule and where, not jsii's traceback and a report path about to be deleted.
            named = "; ".join(f"{v.get('ruleName')} on {_violating(v)}" for v in findings[:5])
            more = f"; and {len(findings) - 5} more" if len(findings) > 5 else ""
            raise TemplateDiffError(
                f"{label} fails the cdk-nag packs ({len(findings)} unacknowledged finding(s)): {named}{more}; fix the "
                "resource, or acknowledge the rule with its reason (mlops_loop/nag.py); `bash scripts/synth.sh` says the same")
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-STDERR_TAIL_LINES:])
        raise TemplateDiffError(f"{label} fails to synthesize (python app.py exit {proc.returncode}); last lines:\n{tail}")
    return outdir


def _violating(violation: dict) -> str:
    """Where a cdk-nag finding is: the construct paths of its resources (their logical ids when no path is given)."""
    places = [c.get("constructPath") or c.get("resourceLogicalId") or "?" for c in violation.get("violatingConstructs")
              or violation.get("violatingResources") or []]
    return ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "") if places else "?"


def synthesize_ref(repo: Path, *, ref: str, outdir: Path, environments: Optional[Sequence[str]] = None) -> Path:
    """Synthesize git ref ``ref`` of ``repo`` (only those of ``environments`` its config defines, see
    :func:`defined_in`; default all) into ``outdir`` from a temporary detached worktree.

    The assembly gets the source stamp of that commit, also when the ref's own app.py predates
    stamps. The worktree is removed afterwards, also when synthesis fails.
    """
    commit = resolve_ref(repo, ref)
    parent = Path(tempfile.mkdtemp(prefix="template-diff-worktree-"))
    tree = parent / "src"
    try:
        run_git(repo, "worktree", "add", "--detach", str(tree), commit)
        pin = _pin(repo)
        config = pin[0] if pin else None
        if pin is not None and not (tree / config).is_file():
            # Said before a synth that would fail on it, with the two ways to compare.
            raise TemplateDiffError(
                f"base ref {ref!r} ({commit[:12]}) has no {config}, the config this checkout selects ({pin[1]}); "
                "commit it to the base, or name it by an absolute path to synthesize both sides with the working "
                "tree's copy")
        stamp = source_stamp.fingerprint(tree, config=config or source_stamp.DEFAULT_CONFIG)
        selected = defined_in(tree, environments, config)
        synthesize_tree(tree, outdir=outdir, label=f"base ref {ref!r} ({commit[:12]})", repo=repo, environments=selected)
        if selected:
            stamp = dataclasses.replace(stamp, environments=tuple(selected))
        source_stamp.write_stamp(outdir, stamp)
        return outdir
    finally:
        if tree.exists():
            run_git(repo, "worktree", "remove", "--force", str(tree), check=False)
        shutil.rmtree(parent, ignore_errors=True)
        run_git(repo, "worktree", "prune", check=False)


# The code behind the job and handler assets; a reviewer of an "asset changed" resource reads what changed in it.
CODE_DIRECTORY = "pipeline_code"
CODE_COMMITS_SHOWN = 15
CODE_SUBJECT_CHARS = 200


@dataclasses.dataclass
class CodeChanges:
    """The commits from the base ref to HEAD that touched :data:`CODE_DIRECTORY`, and uncommitted changes to it."""

    command: str  # the git log that lists them all
    subjects: list[str]  # newest first, at most CODE_COMMITS_SHOWN, each cut to CODE_SUBJECT_CHARS
    more: int  # commits beyond those shown
    uncommitted: int  # files under CODE_DIRECTORY changed in the working tree and not committed


def code_changes(repo: Path, base: str) -> CodeChanges:
    """What changed under ``pipeline_code/`` from ``base`` (a ref of ``repo``) to the working tree: commit subjects
    (``git log --format=%s <base>..HEAD -- pipeline_code``) and the count of uncommitted files there."""
    log = run_git(repo, "log", "--format=%s", f"{base}..HEAD", "--", CODE_DIRECTORY).stdout.splitlines()
    status = run_git(repo, "status", "--porcelain", "--", CODE_DIRECTORY).stdout.splitlines()
    cut = [s if len(s) <= CODE_SUBJECT_CHARS else s[: CODE_SUBJECT_CHARS - 1] + "…" for s in log[:CODE_COMMITS_SHOWN]]
    return CodeChanges(command=f"git log --format=%s {base}..HEAD -- {CODE_DIRECTORY}", subjects=cut,
                       more=max(0, len(log) - CODE_COMMITS_SHOWN), uncommitted=len([line for line in status if line.strip()]))


def check_assembly(path: Path, *, option: str) -> None:
    """TemplateDiffError unless ``path`` is a cloud assembly with at least one stack."""
    if not (path / "manifest.json").is_file():
        raise TemplateDiffError(
            f"{option} {path}: not a cloud assembly (no manifest.json); synthesize one with scripts/synth.sh "
            "(cdk.out) or leave the option out"
        )
    try:
        found = any(True for _ in stacks(path))
    except (OSError, KeyError, ValueError) as error:
        raise TemplateDiffError(f"{option} {path}: unreadable cloud assembly ({error}); synthesize it again") from error
    if not found:
        raise TemplateDiffError(f"{option} {path}: the assembly holds no stack; synthesize the app again")
