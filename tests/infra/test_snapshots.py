"""Whole-stage snapshots: any template change shows up as a reviewable snapshot diff.

Asset hashes are normalised (they change with every job-code edit, which the asset tests cover),
so a snapshot diff means the infrastructure itself changed. Update with `scripts/test.sh --snapshot-update`.
"""

from __future__ import annotations

import json
import re

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

_HASH = re.compile(r"[0-9a-f]{64}")
# The training pipeline's checkpoint prefix carries a 16-hex digest of the code assets, so a
# resumed spot job never picks up checkpoints written by other code: it changes with the code too.
_CODE_DIGEST = re.compile(r"(?<![0-9a-f])[0-9a-f]{16}(?![0-9a-f])")


def normalised(template: dict) -> dict:
    text = _HASH.sub("<asset-hash>", json.dumps(template))
    return json.loads(_CODE_DIGEST.sub("<code-digest>", text))


@pytest.fixture()
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_stage_snapshot(synthesized, snapshot_json, env):
    stage = {stack: normalised(synthesized.template(env, stack)) for stack in ("Storage", "DataPipeline", "Training", "Operations")}
    assert stage == snapshot_json


def test_normalisation_only_touches_hashes():
    template = {"a": "s3://bucket/" + "ab" * 32 + ".zip", "b": "keep-me", "c": "checkpoints/0123456789abcdef", "d": "Bucket0924EC88"}
    assert normalised(template) == {
        "a": "s3://bucket/<asset-hash>.zip",
        "b": "keep-me",
        "c": "checkpoints/<code-digest>",
        "d": "Bucket0924EC88",
    }
