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

from pathlib import Path

import pytest
import yaml
from aws_cdk import App
from syrupy.extensions.json import JSONSnapshotExtension

from mlops_loop.app_builder import build_app, cdk_json_context
from mlops_loop.config import load_config
from mlops_loop.tools.cloud_assembly import stacks
from mlops_loop.tools.template_diff import expand_json_documents, normalise_assets, strip_commit_stamps
from tests.support.configs import SAMPLE_CONFIG

ENVIRONMENTS = tuple(yaml.safe_load(SAMPLE_CONFIG.read_text())["environments"])
STACKS = ("Storage", "DataPipeline", "Training", "Serving", "Operations")


def reviewable(template: dict) -> dict:
    """``template`` as it is snapshotted: embedded JSON expanded, hashes, digests and commit stamps normalised."""
    return strip_commit_stamps(normalise_assets(expand_json_documents(template)))


@pytest.fixture(scope="module")
def sample_templates(request, tmp_path_factory) -> dict[tuple[str, str], dict]:
    """GIVEN the frozen sample config WHEN every environment is synthesized (nag packs on).

    When the user's config is the sample (a fresh clone, CI) the session synth is reused: same input,
    same assembly, no second synth."""
    config = load_config(SAMPLE_CONFIG)
    if config == request.getfixturevalue("config"):
        synthesized = request.getfixturevalue("synthesized")
        return {key: stack.template for key, stack in synthesized.stacks.items()}
    outdir: Path = tmp_path_factory.mktemp("sample.cdk.out")
    app = App(outdir=str(outdir), context=cdk_json_context())
    build_app(app, config)
    app.synth()
    return {(stack.stage, stack.construct_id): stack.template for stack in stacks(outdir)}


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
