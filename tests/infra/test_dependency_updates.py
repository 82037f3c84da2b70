"""Dependency update PRs (.github/dependabot.yml) for everything the repository pins.

- every file a Dependabot ecosystem reads (a manifest or a lock) has that ecosystem configured for its directory, and
  nothing else is configured; a manifest or lock of a kind this test does not know fails it, so a new one (a
  Dockerfile, a pyproject.toml, a uv.lock) cannot arrive without its update PRs;
- each update runs on a schedule, grouped, and Node stays on the major line package.json pins;
- the Python locks, which Dependabot cannot read (pip freeze files, written by scripts/lock.sh), pin what the
  requirements files pin: a Dependabot PR that bumps requirements*.txt fails here until the locks are written again,
  instead of passing CI on the old versions the locks still install.

(That every ``uses:`` in a workflow is pinned to a commit SHA, which Dependabot keeps pinned, is
tests/infra/test_workflows.py's test_actions_are_pinned_to_commit_shas.)
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.paths import REPO_ROOT

DEPENDABOT = REPO_ROOT / ".github" / "dependabot.yml"
# Third-party code kept as it came (its own manifests are not ours to update).
NOT_OURS = ("tests/support/vendored/", "node_modules/")

# The files each Dependabot ecosystem reads, by name (https://docs.github.com/en/code-security/dependabot/
# ecosystems-supported-by-dependabot/supported-ecosystems-and-repositories).
ECOSYSTEMS = (
    ("npm", re.compile(r"package\.json|package-lock\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml")),
    ("pip", re.compile(r"requirements[\w.-]*\.(txt|in)|pyproject\.toml|setup\.py|setup\.cfg|Pipfile(\.lock)?|poetry\.lock")),
    ("uv", re.compile(r"uv\.lock")),
    ("docker", re.compile(r"Dockerfile[\w.-]*|[\w.-]+\.Dockerfile|Containerfile")),
    ("docker-compose", re.compile(r"(docker-)?compose[\w.-]*\.ya?ml")),
    ("gomod", re.compile(r"go\.(mod|sum)")),
    ("cargo", re.compile(r"Cargo\.(toml|lock)")),
    ("bundler", re.compile(r"Gemfile(\.lock)?|[\w.-]+\.gemspec")),
    ("maven", re.compile(r"pom\.xml")),
    ("gradle", re.compile(r"(build|settings)\.gradle(\.kts)?|gradle\.lockfile")),
    ("composer", re.compile(r"composer\.(json|lock)")),
    ("terraform", re.compile(r"[\w.-]+\.tf|\.terraform\.lock\.hcl")),
    ("pre-commit", re.compile(r"\.pre-commit-config\.ya?ml")),
    ("github-actions", re.compile(r"action\.ya?ml")),
)
# Locks Dependabot cannot read, each written from files an ecosystem it runs does update (scripts/lock.sh writes
# the Python locks from requirements*.txt, see test_the_locks_pin_what_the_requirements_pin).
GENERATED_LOCKS = {"requirements.lock": "pip", "requirements-synth.lock": "pip"}
# What looks like a lock or a manifest: a file of this name that no ecosystem above reads is refused.
LOOKS_LIKE_A_LOCK = re.compile(r"[\w.-]*(\.lock|[.-]lock\.(json|ya?ml|hcl)|\.lockfile)")


def needed_updates(paths: list[str]) -> tuple[set[tuple[str, str]], list[str]]:
    """``(ecosystem, directory)`` pairs the repository's files ``paths`` need, and a problem for each file that looks
    like a lock but no ecosystem reads."""
    needed: set[tuple[str, str]] = set()
    problems: list[str] = []
    for path in paths:
        if path.startswith(NOT_OURS) or "/node_modules/" in path:
            continue
        pure = PurePosixPath(path)
        directory = "/" if str(pure.parent) == "." else f"/{pure.parent}"
        if re.fullmatch(r"\.github/workflows/[^/]+\.ya?ml", path):
            needed.add(("github-actions", "/"))
            continue
        if pure.name in GENERATED_LOCKS:
            needed.add((GENERATED_LOCKS[pure.name], directory))
            continue
        ecosystem = next((name for name, files in ECOSYSTEMS if files.fullmatch(pure.name)), None)
        if ecosystem:
            needed.add((ecosystem, directory))
        elif LOOKS_LIKE_A_LOCK.fullmatch(pure.name):
            problems.append(f"{path}: a lock no Dependabot ecosystem of this test reads: add its ecosystem to "
                            ".github/dependabot.yml and to ECOSYSTEMS (or to GENERATED_LOCKS with what writes it)")
    return needed, problems


def configured_updates(config: dict) -> set[tuple[str, str]]:
    return {(update["package-ecosystem"], directory) for update in config["updates"]
            for directory in update.get("directories") or [update["directory"]]}


@pytest.fixture(scope="module")
def config() -> dict:
    assert DEPENDABOT.is_file(), "no .github/dependabot.yml: the pinned actions, npm and Python locks never get update PRs"
    return yaml.safe_load(DEPENDABOT.read_text())


def _repository_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT, check=True,
                            capture_output=True, text=True).stdout.splitlines()
    return [path for path in listed if (REPO_ROOT / path).is_file()]


def test_every_ecosystem_with_a_manifest_or_lock_in_the_repository_gets_update_prs(config):
    needed, problems = needed_updates(_repository_files())
    assert problems == []
    configured = configured_updates(config)
    assert needed - configured == set(), "add these (ecosystem, directory) to .github/dependabot.yml"
    # Dependabot fails an update whose directory holds nothing it reads.
    assert configured - needed == set(), "nothing in the repository for these: remove them from .github/dependabot.yml"


@pytest.mark.parametrize("paths, needed, problems", [
    (["pyproject.toml", "poetry.lock"], {("pip", "/")}, 0),
    (["services/api/Dockerfile"], {("docker", "/services/api")}, 0),
    ([".github/workflows/new.yml", ".github/actions/setup/action.yml"],
     {("github-actions", "/"), ("github-actions", "/.github/actions/setup")}, 0),
    (["tools/uv.lock"], {("uv", "/tools")}, 0),
    (["web/bun.lock"], set(), 1),
    (["tests/support/vendored/x/package.json", "README.md"], set(), 0),
])
def test_a_new_manifest_or_lock_is_required_in_the_config_or_refused(paths, needed, problems):
    found, refused = needed_updates(paths)
    assert found == needed and len(refused) == problems


def test_every_update_is_scheduled_and_grouped(config):
    assert config["version"] == 2
    for update in config["updates"]:
        name = update["package-ecosystem"]
        assert update["schedule"]["interval"] in {"daily", "weekly", "monthly"}, name
        # One PR per group and schedule, not one per package: the CI run of each costs a full test and synth.
        assert update.get("groups"), f"{name}: group its updates"
        for group in update["groups"].values():
            assert group.get("patterns"), name
        assert update.get("open-pull-requests-limit", 5) >= 1, name


def test_node_stays_on_the_major_line_package_json_pins(config):
    """Node 22 is what jsii and the CDK CLI run on here (scripts/bootstrap.sh): a new Node major is a decision, not a
    weekly update."""
    major = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["node"].split(".")[0]
    (npm,) = [u for u in config["updates"] if u["package-ecosystem"] == "npm"]
    ignored = {i["dependency-name"]: i for i in npm.get("ignore") or []}
    assert major.isdigit() and ignored["node"]["update-types"] == ["version-update:semver-major"]


def _pins(path: Path, seen: set[Path] | None = None) -> dict[str, str]:
    """``{canonical name: version}`` of a requirements file's exact pins, its ``-r`` includes followed."""
    seen = seen if seen is not None else set()
    if path in seen:
        return {}
    seen.add(path)
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            pins.update(_pins(path.parent / line[2:].strip(), seen))
        elif line and not line.startswith("-"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"{path.name}: {line}: pin exactly (the locks are frozen from these)"
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def lock_disagreements(requirements: dict[str, str], lock: dict[str, str], lock_name: str) -> list[str]:
    return [f"{name}=={version} is pinned, {lock_name} has "
            + (f"{name}=={lock[name]}" if name in lock else "none")
            for name, version in sorted(requirements.items()) if lock.get(name) != version]


FIX = ("write the locks again on this branch: .venv/bin/pip install -r requirements-dev.txt && bash scripts/lock.sh, "
       "then commit requirements.lock and requirements-synth.lock")


@pytest.mark.parametrize("requirements, lock", [("requirements-dev.txt", "requirements.lock"),
                                                ("requirements.txt", "requirements-synth.lock")])
def test_the_locks_pin_what_the_requirements_pin(requirements, lock):
    """GIVEN a Dependabot PR (or a person) changing a pin in requirements*.txt THEN this fails, naming each pin and
    the fix, until scripts/lock.sh wrote the locks again: scripts/bootstrap.sh installs the locks, so CI would
    otherwise test the old versions and pass."""
    assert lock_disagreements(_pins(REPO_ROOT / requirements), _pins(REPO_ROOT / lock), lock) == [], FIX


def test_a_pin_the_lock_does_not_have_is_named():
    assert lock_disagreements({"aws-cdk-lib": "2.276.0", "pytest": "9.0.3"}, {"aws-cdk-lib": "2.275.0",
                              "pytest": "9.0.3"}, "requirements.lock") == [
        "aws-cdk-lib==2.276.0 is pinned, requirements.lock has aws-cdk-lib==2.275.0"]


def test_xgboost_moves_with_the_container_image_not_with_update_prs(config):
    """The local XGBoost is the one in the SageMaker XGBoost image (tests/core/test_images.py): a weekly update PR
    moving it alone would fail that test, and with it the whole grouped Python PR, every week."""
    (pip,) = [u for u in config["updates"] if u["package-ecosystem"] == "pip"]
    ignored = {i["dependency-name"]: i for i in pip.get("ignore") or []}
    assert "xgboost" in ignored and "update-types" not in ignored["xgboost"], "ignore every xgboost update"
