"""generated_asset, in a bare stack: what synth generates becomes an asset of exactly those bytes."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Stack

from mlops_loop.app_builder import DISABLE_ASSET_STAGING, new_app
from mlops_loop.constructs.generated_asset import generated_asset


def _asset_sources(assembly_dir: str) -> dict[str, Path]:
    """Each file asset of the assembly's asset manifests (the templates too): the path it is read from."""
    sources = {}
    for manifest in Path(assembly_dir).glob("*.assets.json"):
        for asset_id, entry in json.loads(manifest.read_text()).get("files", {}).items():
            sources[asset_id] = Path(assembly_dir) / entry["source"]["path"]
    return sources


def test_the_asset_holds_exactly_the_generated_bytes(tmp_path):
    # GIVEN an app that stages assets (the default)
    app = new_app(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Stack")

    # WHEN text and bytes become assets
    text = generated_asset(stack, "Spec", "spec.json", '{"model": "m"}')
    raw = generated_asset(stack, "Tarball", "bootstrap.tar.gz", b"\x1f\x8b\x00")
    assembly = app.synth()

    # THEN the assembly carries copies of exactly those bytes, under the names given
    sources = _asset_sources(assembly.directory)
    assert sources[text.asset_hash].read_bytes() == b'{"model": "m"}'
    assert sources[raw.asset_hash].read_bytes() == b"\x1f\x8b\x00"
    assert (sources[text.asset_hash].suffix, sources[raw.asset_hash].name.endswith(".gz")) == (".json", True)
    assert all(path.is_relative_to(assembly.directory) for path in sources.values())


def test_an_app_that_stages_no_assets_reads_the_generated_file_where_it_was_staged(tmp_path):
    # GIVEN an app with asset staging off (`cdk synth --no-staging`)
    app = new_app(outdir=str(tmp_path / "cdk.out"))
    app.node.set_context(DISABLE_ASSET_STAGING, True)

    # WHEN a generated file becomes an asset
    asset = generated_asset(Stack(app, "Stack"), "Spec", "spec.json", "{}")
    assembly = app.synth()

    # THEN the assembly reads it from the staging directory, not from a copy
    read_from = _asset_sources(assembly.directory)[asset.asset_hash]
    assert read_from.read_text() == "{}" and not read_from.is_relative_to(assembly.directory)
