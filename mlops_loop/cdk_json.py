"""cdk.json, read as the CDK CLI reads it: the context it hands the app, and the command it runs the app with.

Standard library only, so the tools and the bench that read it load no CDK.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

from pipeline_code.core.contract import BOOTSTRAP_QUALIFIER_CONTEXT, DEFAULT_CDK_QUALIFIER, cdk_qualifier_problem

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"
# The context key naming the app's config file (relative to the repository), and the file when neither it nor the
# MLOPS_LOOP_CONFIG variable names one (mlops_loop.config.location.resolve_config: the precedence).
CONFIG_CONTEXT_KEY = "mlops-loop:config"
DEFAULT_CONFIG = "config/mlops-loop.yaml"
# The other files the CDK CLI takes context from, beside cdk.json: the project's lookups file and the user's defaults.
CDK_CONTEXT_JSON = "cdk.context.json"
USER_CDK_JSON = ".cdk.json"
# Where the CDK CLI hands an app the context of one command (its -c, cdk.json's and the other files'): this variable's
# JSON, and the file the second names when the JSON is too long for the environment (aws-cdk-lib cx-api's CONTEXT_ENV
# and CONTEXT_OVERFLOW_LOCATION_ENV).
CONTEXT_ENV = "CDK_CONTEXT_JSON"
CONTEXT_OVERFLOW_LOCATION_ENV = "CONTEXT_OVERFLOW_LOCATION_ENV"


def context() -> dict[str, Any]:
    """The ``context`` block (feature flags).

    The CDK CLI passes it to the app itself; ``app_builder.new_app`` reads it too, so ``python app.py`` and the
    test suite synthesize exactly what ``cdk synth`` does. Context given by the CLI still wins.
    """
    return _read()["context"]


def app_context(environ: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """The context of an App made by ``app_builder.new_app``, read without the CDK: cdk.json's :func:`context`, over it
    the JSON in CDK_CONTEXT_JSON, over that the JSON file CONTEXT_OVERFLOW_LOCATION_ENV names - the order of
    aws-cdk-lib's ``App.loadContext`` (an empty variable is none). ``environ`` defaults to this process's.

    ``ValueError`` when what the CLI handed over is no JSON object; ``OSError`` when the overflow file cannot be read."""
    env = os.environ if environ is None else environ
    handed = [json.loads(env.get(CONTEXT_ENV) or "{}")]
    location = env.get(CONTEXT_OVERFLOW_LOCATION_ENV)
    if location:
        handed.append(json.loads(Path(location).read_text(encoding="utf-8-sig")))
    if not all(isinstance(part, dict) for part in handed):
        raise ValueError("the context the CDK CLI handed over is no JSON object")
    merged = dict(context())
    for part in handed:
        merged.update(part)
    return merged


def bootstrap_qualifier(directory: Optional[Path] = None, home: Optional[Path] = None, *, user: bool = True) -> str:
    """The CDK bootstrap qualifier `cdk deploy` run in ``directory`` (default: this repository) deploys through: the
    ``@aws-cdk/core:bootstrapQualifier`` context of the first file that sets it (:func:`persistent_context`); the CDK's
    default (``hnb659fds``) when none does. A ``-c`` given to one ``cdk`` command is seen by that command only: a
    qualifier belongs in cdk.json. ``user`` false: without the user's ``~/.cdk.json``, as a CI runner synthesizes.

    Refused (``ValueError``, one line naming the file): a value that is no qualifier the app can deploy through
    (``contract.cdk_qualifier_problem``)."""
    found = persistent_context(BOOTSTRAP_QUALIFIER_CONTEXT, directory, home, user=user)
    if found is None:
        return DEFAULT_CDK_QUALIFIER
    value, path = found
    problem = cdk_qualifier_problem(value)
    if problem:
        raise ValueError(f"{path}: {problem}")
    return value


def persistent_context(key: str, directory: Optional[Path] = None, home: Optional[Path] = None, *,
                       user: bool = True) -> Optional[tuple[Any, Path]]:
    """The value of context ``key`` every ``cdk`` command run in ``directory`` (default: this repository) hands the app
    without a ``-c``, and the file that sets it: the first of cdk.json's context, cdk.context.json, then
    ``~/.cdk.json``'s context (``home``, default: the user's home; not read when ``user`` is false), in the CDK CLI's
    order of precedence (its ``Configuration.loadConfigFiles``); None when none sets it."""
    root = CDK_JSON.parent if directory is None else directory
    files = [(root / CDK_JSON.name, lambda d: d.get("context", {})), (root / CDK_CONTEXT_JSON, lambda d: d)]
    if user:
        files.append(((Path.home() if home is None else home) / USER_CDK_JSON, lambda d: d.get("context", {})))
    for path, context in files:
        if not path.is_file():
            continue
        values = context(json.loads(path.read_text()))
        if key in values:
            return values[key], path
    return None


def app_interpreter() -> list[str]:
    """The interpreter of the ``app`` command as this process runs it: this Python (the venv's, which the command
    names) with the command's flags (``-O``), to which ``app.py`` is added to run the app as ``cdk synth`` does."""
    words = shlex.split(_read()["app"])
    return [sys.executable, *words[1:words.index("app.py")]]


def _read() -> dict[str, Any]:
    return json.loads(CDK_JSON.read_text())
