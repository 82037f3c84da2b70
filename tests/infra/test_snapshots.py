"""Per-stack snapshots of every stack of every environment: a template change is a reviewable diff.

The scenario is the frozen sample config (``tests/support/configs/sample.yaml``), not the user's, so
adding a model to ``config/mlops-loop.yaml`` changes no snapshot. Each stack is one file under
``__snapshots__/test_snapshots/``; embedded JSON documents (pipeline definitions, scheduler requests,
policies given as strings) are expanded into structure, so a change to one pipeline parameter is a
one-line diff instead of a changed 4,000-character line. Asset hashes, code digests and git commit
stamps are normalised (they change with every edit of job code; the asset tests cover them).
Update with ``scripts/test.sh --snapshot-update`` and review the diff like code.
"""

from __future__ import annotations

import pytest
import yaml
from syrupy.extensions.json import JSONSnapshotExtension

from mlops_loop.tools.template_diff import expand_json_documents, normalise_assets, strip_commit_stamps
from tests.support.configs import SAMPLE_CONFIG

ENVIRONMENTS = tuple(yaml.safe_load(SAMPLE_CONFIG.read_text())["environments"])
STACKS = ("Storage", "DataPipeline", "Training", "Serving", "Operations")


def reviewable(template: dict) -> dict:
    """``template`` as it is snapshotted: embedded JSON expanded, hashes, digests and commit stamps normalised."""
    return strip_commit_stamps(normalise_assets(expand_json_documents(template)))


@pytest.fixture(scope="module")
def sample_templates(sample) -> dict[tuple[str, str], dict]:
    return {key: stack.template for key, stack in sample.stacks.items()}


@pytest.fixture()
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


def test_every_stack_has_a_snapshot(sample_templates):
    """A new stack (or environment) must be added to the snapshot matrix, not silently left out."""
    assert sorted(sample_templates) == sorted((env, stack) for env in ENVIRONMENTS for stack in STACKS)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stack_snapshot(sample_templates, snapshot_json, env, stack):
    assert reviewable(sample_templates[(env, stack)]) == snapshot_json


def test_reviewable_expands_embedded_json_and_normalises_only_volatile_values():
    template = {
        "a": "s3://bucket/" + "ab" * 32 + ".zip",
        "b": "keep-me",
        "c": "checkpoints/0123456789abcdef",
        "d": "Bucket0924EC88",
        "e": {"Fn::Join": ["", ['{"Version":"2020-12-01","Parameters":[{"Name":"', {"Ref": "Model"}, '"}]}']]},
        "f": "commit " + "0f" * 20 + "-dirty",
    }
    assert reviewable(template) == {
        "a": "s3://bucket/<asset-hash>.zip",
        "b": "keep-me",
        "c": "checkpoints/<code-digest>",
        "d": "Bucket0924EC88",
        "e": {"<json>": {"Version": "2020-12-01", "Parameters": [{"Name": "${Model}"}]}},
        "f": "commit <git-commit>",
    }
