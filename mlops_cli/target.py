"""The deployed environment a workstation tool acts on, read from the app's config.

``--env`` must name one of the config's environments, and the tool works in that environment's region and
project unless ``--region`` / ``--project`` say otherwise: an operator's shell default region (or a typo'd
environment name) would otherwise point it at resources that do not exist, or at another region's. With both
given, the config is not read at all, so a config being edited cannot block, say, a rollback.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_code.core.contract import NAME_PATTERN

_PROJECT = re.compile(NAME_PATTERN)


class TargetError(ValueError):
    """The config cannot be read, or lacks the environment; the message names the fix."""


@dataclass(frozen=True)
class Target:
    environment: str
    region: str
    project: str


def default_config() -> Path:
    """The config app.py synthesizes from: the one cdk.json names."""
    from mlops_loop.config.location import configured_path

    return configured_path()


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
    environment = environment_of(app, args.env, args.config)
    return Target(args.env, args.region or environment.region, args.project or app.project)


def environment_of(app: Any, name: str, config: str) -> Any:
    """The environment ``name`` of the loaded ``app`` (read from ``config``); one line listing them when it has none."""
    if name not in app.environments:
        raise TargetError(f"--env {name}: not an environment of {config}; choose from {', '.join(app.environments)}")
    return app.environments[name]
