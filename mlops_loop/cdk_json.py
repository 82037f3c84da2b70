"""cdk.json, read as the CDK CLI reads it: the context it hands the app, and the command it runs the app with.

Standard library only, so the tools and the bench that read it load no CDK.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"
# The context key naming the app's config file, relative to the repository, and the file when nothing names one.
CONFIG_CONTEXT_KEY = "mlops-loop:config"
DEFAULT_CONFIG = "config/mlops-loop.yaml"


def context() -> dict[str, Any]:
    """The ``context`` block (feature flags, config path).

    The CDK CLI passes it to the app itself; ``app_builder.new_app`` reads it too, so ``python app.py`` and the
    test suite synthesize exactly what ``cdk synth`` does. Context given by the CLI still wins.
    """
    return _read()["context"]


def configured_path() -> Path:
    """The config file cdk.json names (what ``cdk synth`` reads without ``-c``), as an absolute path."""
    return CDK_JSON.parent / context().get(CONFIG_CONTEXT_KEY, DEFAULT_CONFIG)


def app_interpreter() -> list[str]:
    """The interpreter of the ``app`` command as this process runs it: this Python (the venv's, which the command
    names) with the command's flags (``-O``), to which ``app.py`` is added to run the app as ``cdk synth`` does."""
    words = shlex.split(_read()["app"])
    return [sys.executable, *words[1:words.index("app.py")]]


def _read() -> dict[str, Any]:
    return json.loads(CDK_JSON.read_text())
