"""generated_asset / generated_source, in a bare stack: what synth generates becomes an asset of exactly
those bytes, and an app that stages no assets keeps the sources its assembly points at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App, Stack

from mlops_loop.constructs import generated_asset as module
from mlops_loop.constructs.generated_asset import DISABLE_ASSET_STAGING, generated_asset, generated_source
from mlops_loop.packaging import handler_code_root


@pytest.fixture
def kept(monkeypatch):
    """Records the calls that would keep this process's staging directory (kept for real, the test worker
    would leave it behind)."""
    calls = []
    monkeypatch.setattr(module, "keep_staged_files", lambda: calls.append(True))
    return calls


def _asset_sources(assembly_dir: str) -> dict[str, Path]:
    """Each file asset of the assembly's asset manifests: its packaging and the path it is read from."""
    sources = {}
    for manifest in Path(assembly_dir).glob("*.assets.json"):
        for asset_id, entry in json.loads(manifest.read_text()).get("files", {}).items():
            sources[asset_id] = Path(assembly_dir) / entry["source"]["path"]
    return sources


def test_the_asset_holds_exactly_the_generated_bytes(tmp_path, kept):
    # GIVEN an app that stages assets (the default)
    app = App(outdir=str(tmp_path / "cdk.out"))
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
    # AND nothing asked to keep the staging directory
    assert kept == []


def test_an_app_that_stages_no_assets_keeps_the_sources_its_assembly_points_at(tmp_path, kept):
    # GIVEN an app with asset staging off (`cdk synth --no-staging`)
    app = App(outdir=str(tmp_path / "cdk.out"), context={DISABLE_ASSET_STAGING: True})
    stack = Stack(app, "Stack")

    # WHEN a generated file becomes an asset
    asset = generated_asset(stack, "Spec", "spec.json", "{}")
    assembly = app.synth()

    # THEN the assembly reads it where it was staged, and the staging directory is kept
    read_from = _asset_sources(assembly.directory)[asset.asset_hash]
    assert read_from.read_text() == "{}" and not read_from.is_relative_to(assembly.directory)
    assert kept == [True]


def test_a_source_in_an_app_that_stages_assets_asks_for_nothing(kept):
    # GIVEN a stack of an app that stages assets WHEN the handlers' code root becomes a source
    source = generated_source(Stack(App(), "Stack"), handler_code_root())
    # THEN it is that directory, and nothing asked to keep it
    assert (source, kept) == (str(handler_code_root()), [])
