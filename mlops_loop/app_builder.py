"""Build the whole CDK app from a validated config: one Stage per environment, nag packs on."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterable, Optional

from aws_cdk import App

from . import cdk_json
from .config import AppConfig
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


def code_version(repo: Path = REPO_ROOT) -> str:
    """The git commit of the working tree (``-dirty`` when it has uncommitted changes), or ``unknown``.

    Recorded as lineage on every registered model version. Reads the local repository only.
    """
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def build_app(
    app: App,
    config: AppConfig,
    *,
    environments: Optional[Iterable[str]] = None,
    code_version: str = "unknown",
) -> dict[str, MlopsStage]:
    """Add a stage for each environment (all of them by default) and the compliance checks."""
    names = list(environments) if environments is not None else list(config.environments)
    unknown = [n for n in names if n not in config.environments]
    if unknown:
        raise ValueError(f"unknown environment(s) {unknown}; configured: {', '.join(config.environments)}")
    stages = {
        name: MlopsStage(
            app, app_config=config, environment=config.environments[name], code_version=code_version
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
