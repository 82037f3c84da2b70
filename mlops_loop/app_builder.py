"""Build the whole CDK app from a validated config: one Stage per environment, nag packs on."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from aws_cdk import App

from pipeline_code.core.contract import (
    DIRTY_VERSION_SUFFIX, JOB_CODE_HASH_PROPERTY, MODEL_SPEC_SHA256_PROPERTY, UNKNOWN_VERSION,
)

from . import cdk_json
from .config import AppConfig
from .constructs.job_code import JOB_CODE_ROOT, shipped_in_library
from .nag import add_nag_packs
from .packaging import keep_staged_files
from .stage import MlopsStage


REPO_ROOT = Path(__file__).resolve().parents[1]
# aws-cdk-lib's cx-api DISABLE_ASSET_STAGING_CONTEXT (not exported to Python): set by `cdk synth --no-staging`
# for the SAM CLI, which then reads each asset from its source path.
DISABLE_ASSET_STAGING = "aws:cdk:disable-asset-staging"


def new_app(outdir: Optional[str] = None) -> App:
    """An App configured as this project's ``cdk synth`` builds it: cdk.json's context, and CDK's built-in
    CloudFormation template validator off.

    That validator (``CloudFormationValidatePlugin``, on by default since aws-cdk-lib 2.270) cost 3.9 s of a
    4.5 s ``app.synth()`` here and duplicates cfn-lint, which the main job and the tests run on every
    template: on 69 single-defect mutations of this app's templates (``bench/validator_compare.py``)
    cfn-lint caught 62, the validator 54 and none that cfn-lint missed, and it failed synth on 39 only
    (it reports invalid enum values as warnings).

    With asset staging off (``cdk synth --no-staging``) the assembly points at the generated asset sources
    themselves, so they are kept when the process exits (``mlops_loop.packaging``).
    """
    app = App(outdir=outdir, context=cdk_json.context(), builtin_cloud_formation_validation=False)
    if app.node.try_get_context(DISABLE_ASSET_STAGING):
        keep_staged_files()
    return app


# How many files a reason names before it counts the rest (the warning is one line).
SHOWN_FILES = 5


@dataclass(frozen=True)
class SourceVersion:
    """What synth was built from: the git commit, and why the working tree differs from it (empty when it does not).

    ``commit`` is None when git cannot tell (not a checkout, git missing, or a checkout git refuses to read: "dubious
    ownership" when it belongs to another user, as in CI containers): the version is then ``unknown`` and ``error``
    is git's first line of error.
    """

    commit: Optional[str]
    dirty: tuple[str, ...] = ()
    error: Optional[str] = None

    @property
    def version(self) -> str:
        """``<commit>``, ``<commit>-dirty`` when anything synth used differs from it, or ``unknown``."""
        if self.commit is None:
            return UNKNOWN_VERSION
        return f"{self.commit}{DIRTY_VERSION_SUFFIX}" if self.dirty else self.commit

    def warning(self) -> Optional[str]:
        """One line saying why the version is dirty (naming the files) or unknown (git's error and what it means);
        None for a clean commit."""
        if self.commit is None:
            return (f"code version {UNKNOWN_VERSION}: {self.error or 'git cannot tell the commit'}; model versions "
                    f"registered from this build record no commit (only {JOB_CODE_HASH_PROPERTY} and "
                    f"{MODEL_SPEC_SHA256_PROPERTY} pin what runs) and the audit lists each as a gap")
        if not self.dirty:
            return None
        return f"code version {self.version}: {'; '.join(self.dirty)}"


def source_version(repo: Path = REPO_ROOT, *, config: Optional[Path] = None) -> SourceVersion:
    """The git commit of ``repo``, dirty when what synth reads is not that commit's: a tracked file with uncommitted
    changes, the ``config`` file (when given) untracked, git-ignored, modified or outside the repository, or a file
    under the job code (``pipeline_code/``) that git does not track (ignored ones included) and the job-code zip
    would ship. Reads the local repository only.
    """
    config_path = config.resolve() if config is not None else None
    root = repo.resolve()
    config_relative = (config_path.relative_to(root).as_posix()
                       if config_path is not None and config_path.is_relative_to(root) else None)
    try:
        commit = _git(repo, "rev-parse", "HEAD").strip()
        changed = _changed_tracked_files(_git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=no"))
        # Without --exclude-standard, --others lists git-ignored files too: the zip does not read .gitignore.
        untracked = [p for p in _git(repo, "ls-files", "--others", "-z", "--", JOB_CODE_ROOT,
                                     *([config_relative] if config_relative else [])).split("\0") if p]
    except _GitFailure as failure:
        return SourceVersion(commit=None, error=str(failure))
    reasons = []
    if config_path is not None:
        if config_relative is None:
            reasons.append(f"config {config_path} is outside the repository")
        elif config_relative in untracked:
            reasons.append(f"config {config_relative} is not committed (untracked or git-ignored)")
        elif config_relative in changed:
            reasons.append(f"config {config_relative} has uncommitted changes")
    others = [p for p in changed if p != config_relative]
    if others:
        reasons.append(f"uncommitted changes to {_named(others)}")
    shipped = shipped_in_library(root, [p for p in untracked if p != config_relative])
    if shipped:
        reasons.append(f"untracked job code ships in the job-code zip: {_named(shipped)}")
    return SourceVersion(commit=commit, dirty=tuple(reasons))


def code_version(repo: Path = REPO_ROOT, *, config: Optional[Path] = None) -> str:
    """The version :func:`source_version` gives (``<commit>``, ``<commit>-dirty`` or ``unknown``).

    Recorded as lineage on every registered model version (``MetadataProperties.CommitId`` and ``code_version``).
    """
    return source_version(repo, config=config).version


class _GitFailure(Exception):
    """Why git could not answer, in one line."""


def _git(repo: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
    except FileNotFoundError as error:
        raise _GitFailure("git is not installed") from error
    except (OSError, subprocess.SubprocessError) as error:
        raise _GitFailure(f"git {args[0]} failed: {error}") from error
    if proc.returncode != 0:
        # git's first line says what is wrong ("fatal: detected dubious ownership in repository at '...'"); the
        # lines after it are its advice, which docs/deploying.md gives for CI.
        raise _GitFailure(f"git {args[0]}: " + (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[0])
    return proc.stdout


def _changed_tracked_files(porcelain: str) -> list[str]:
    """The paths ``git status --porcelain=v1 -z`` names (a rename's entry is followed by its old path)."""
    fields, paths = porcelain.split("\0"), []
    index = 0
    while index < len(fields):
        entry = fields[index]
        index += 1
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if entry[0] in "RC":
            paths.append(fields[index])
            index += 1
    return paths


def _named(paths: list[str]) -> str:
    shown = ", ".join(sorted(paths)[:SHOWN_FILES])
    return shown + (f" and {len(paths) - SHOWN_FILES} more" if len(paths) > SHOWN_FILES else "")


def build_app(
    app: App,
    config: AppConfig,
    *,
    environments: Optional[Iterable[str]] = None,
    code_version: str = UNKNOWN_VERSION,
    cli_config: Optional[str] = None,
) -> dict[str, MlopsStage]:
    """Add a stage for each environment (all of them by default) and the compliance checks. ``cli_config`` is the
    config file as the workstation commands the stages print must name it (``--config``; ``ConfigLocation.cli_config``);
    by default None: the default config, which they name by none."""
    names = list(environments) if environments is not None else list(config.environments)
    unknown = [n for n in names if n not in config.environments]
    if unknown:
        raise ValueError(f"unknown environment(s) {unknown}; configured: {', '.join(config.environments)}")
    stages = {
        name: MlopsStage(
            app, app_config=config, environment=config.environments[name], code_version=code_version,
            cli_config=cli_config,
        )
        for name in names
    }
    # Pipeline definitions the SDK helper generated while the stages were built (app.py on a cold cache) are
    # awaited and checked here, so a definition's problem fails here, with its own message, not inside synth.
    for stage in stages.values():
        for pipeline in stage.training.pipelines.values():
            pipeline.wait_for_definition()
    add_nag_packs(app)
    return stages
