"""Scenario configurations the tests synthesize, independent of the user's ``config/mlops-loop.yaml``.

``sample.yaml`` is a frozen copy of the shipped sample config: snapshots and the derived scenarios
(``modes``, ``pooled``) are built from it, so a user who adds, renames or removes a model in their own
config does not break the suite. Update it (and the snapshots) only when the scenario itself should change.
"""

from functools import lru_cache
from pathlib import Path

SAMPLE_CONFIG = Path(__file__).with_name("sample.yaml")


def sample_account(environment: str) -> str:
    """The account id ``environment`` of the sample config names (moto's account in the CLI tests: MOTO_ACCOUNT_ID)."""
    return _sample_accounts()[environment]


@lru_cache(maxsize=None)
def _sample_accounts() -> dict[str, str]:
    """Each environment's account id in the sample config, read once per process: the CLI test modules ask at import,
    so every pytest-xdist worker's collection parsed the sample eleven times (a frozen file: it never changes)."""
    import yaml

    return {name: str(env["account"]) for name, env in yaml.safe_load(SAMPLE_CONFIG.read_text())["environments"].items()}


def sample_without_model(directory: Path, environment: str, model: str) -> Path:
    """A copy of the sample config, written in ``directory``, in which ``environment`` no longer deploys ``model``
    (the config still defines it, and the other environments still deploy it)."""
    import yaml

    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    env = raw["environments"][environment]
    env["models"] = [m for m in env["models"] if m != model]
    env.get("serving", {}).pop(model, None)
    path = directory / f"sample-{environment}-without-{model}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def sample_with_multi_model_member(directory: Path, environment: str, model: str) -> Path:
    """A copy of the sample config, written in ``directory``, in which ``environment`` serves ``model`` on a multi-model
    endpoint ``shared`` that it declares."""
    import yaml

    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    env = raw["environments"][environment]
    env.setdefault("multi_model_endpoints", {})["shared"] = {"instance_type": "ml.c5.xlarge"}
    env.setdefault("serving", {})[model] = {"mode": "multi_model", "multi_model": {"endpoint": "shared"}}
    path = directory / f"sample-{environment}-{model}-multi-model.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def sample_with_team_approvers(directory: Path, environment: str, model: str, team: str) -> Path:
    """A copy of the sample config, written in ``directory``, in which ``model`` belongs to ``team`` and ``team``
    approves its own models in ``environment`` (``team_approvers``: a role of the environment's account)."""
    import yaml

    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["models"][model]["owner"] = {"team": team}
    env = raw["environments"][environment]
    env["team_approvers"] = {team: [f"arn:aws:iam::{env['account']}:role/{team}-approvers"]}
    path = directory / f"sample-{environment}-{team}-approves-{model}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
