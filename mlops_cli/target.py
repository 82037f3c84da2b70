"""The deployed environment a workstation tool acts on, read from the app's config.

``--env`` must name one of the config's environments, and the tool works in that environment's region and
project unless ``--region`` / ``--project`` say otherwise: an operator's shell default region (or a typo'd
environment name) would otherwise point it at resources that do not exist, or at another region's.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "mlops-loop.yaml"


class TargetError(ValueError):
    """The config cannot be read, or lacks the environment; the message names the fix."""


@dataclass(frozen=True)
class Target:
    environment: str
    region: str
    project: str
    account: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, and ``--region`` / ``--project`` defaulting to the environment's."""
    parser.add_argument("--config", default=str(DEFAULT_CONFIG),
                        help="the app's config, which names the environments (default: the repository's)")
    parser.add_argument("--region", default=None, help="AWS region (default: the environment's, from the config)")
    parser.add_argument("--project", default=None, help="project name prefix (default: the config's)")


def resolve(args: argparse.Namespace) -> Target:
    """The environment ``args.env`` of ``args.config``, with ``args.region`` / ``args.project`` when given."""
    from mlops_loop.config import ConfigError, load_config

    try:
        app = load_config(args.config)
    except (ConfigError, OSError) as error:
        raise TargetError(f"--config {args.config}: {error}") from None
    if args.env not in app.environments:
        raise TargetError(f"--env {args.env}: not an environment of {args.config}; choose from "
                          f"{', '.join(app.environments)}")
    environment = app.environments[args.env]
    return Target(args.env, args.region or environment.region, args.project or app.project, environment.account)
