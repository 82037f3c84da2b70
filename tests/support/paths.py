"""Where the repository and the user's configuration are."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The user's own configuration (what synth reads); scenario configs are in tests.support.configs.
CONFIG_PATH = REPO_ROOT / "config" / "mlops-loop.yaml"
