"""The deployed environment a workstation tool acts on, read from the app's config.

``--env`` must name one of the config's environments, and the tool works in that environment's region and
project unless ``--region`` / ``--project`` say otherwise: an operator's shell default region (or a typo'd
environment name) would otherwise point it at resources that do not exist, or at another region's. With both
given, the config is not read at all, so a config being edited cannot block, say, a rollback.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_CONTEXT_KEY = "mlops-loop:config"  # where cdk.json names the config app.py reads (mlops_loop.tools.source_stamp)
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{1,19}$")  # the config's own rule for a project name


class TargetError(ValueError):
    """The config cannot be read, or lacks the environment; the message names the fix."""


@dataclass(frozen=True)
class Target:
    environment: str
    region: str
    project: str


def default_config() -> Path:
    """The config app.py synthesizes from: cdk.json's ``mlops-loop:config`` (else config/mlops-loop.yaml)."""
    try:
        named = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"][CONFIG_CONTEXT_KEY]
    except (OSError, ValueError, KeyError, TypeError):
        named = "config/mlops-loop.yaml"
    return REPO_ROOT / named


def _project(value: str) -> str:
    if not _PROJECT.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a project name (2-20 lower-case letters, digits and '-', "
                                         "starting with a letter)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, and ``--region`` / ``--project`` defaulting to the environment's."""
    parser.add_argument("--config", default=str(default_config()),
                        help="the app's config, which names the environments (default: the one cdk.json names)")
    parser.add_argument("--region", default=None, help="AWS region (default: the environment's, from the config)")
    parser.add_argument("--project", default=None, type=_project, help="project name prefix (default: the config's)")


def resolve(args: argparse.Namespace) -> Target:
    """The environment ``args.env`` of ``args.config``, with ``args.region`` / ``args.project`` when given."""
    if args.region and args.project:
        return Target(args.env, args.region, args.project)
    from mlops_loop.config import ConfigError, load_config

    try:
        app = load_config(args.config)
    except ConfigError as error:
        more = f" (and {len(error.problems) - 1} more)" if len(error.problems) > 1 else ""
        raise TargetError(f"--config {args.config}: {error.problems[0]}{more}; fix it, pass --config <file>, or pass "
                          "both --region and --project") from None
    if args.env not in app.environments:
        raise TargetError(f"--env {args.env}: not an environment of {args.config}; choose from "
                          f"{', '.join(app.environments)}")
    environment = app.environments[args.env]
    return Target(args.env, args.region or environment.region, args.project or app.project)
