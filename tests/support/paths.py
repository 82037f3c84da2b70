"""Where the repository and the user's configuration are."""

from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The user's own configuration (what synth reads); scenario configs are in tests.support.configs.
CONFIG_PATH = REPO_ROOT / "config" / "mlops-loop.yaml"


@lru_cache(maxsize=None)
def live_project() -> str:
    """The ``project`` of the user's configuration: every physical name the app synthesizes from it starts
    with it, so tests of that configuration name resources through it, never through the sample's."""
    from mlops_loop.config import load_config

    return load_config(CONFIG_PATH).project
