"""Which file is the app's config: the ``mlops-loop:config`` context value (cdk.json's, unless ``-c`` gives another),
relative to the repository, else :data:`DEFAULT_CONFIG`. One definition for app.py, the source stamp, the template
diff and the workstation tools."""

from __future__ import annotations

from pathlib import Path

from .. import cdk_json

CONFIG_CONTEXT_KEY = "mlops-loop:config"
DEFAULT_CONFIG = "config/mlops-loop.yaml"


def configured_path() -> Path:
    """The config file cdk.json names (what ``cdk synth`` reads without ``-c``), as an absolute path."""
    return cdk_json.CDK_JSON.parent / cdk_json.context().get(CONFIG_CONTEXT_KEY, DEFAULT_CONFIG)
