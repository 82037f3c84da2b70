"""Same spec, same bytes: the definition can be diffed and snapshot in review (the SDK itself runs here,
never the cache, and the session fixture's definition, cached or not, is what it builds)."""

from __future__ import annotations

from mlops_loop.training import generate_pipeline_definition

from tests.support import pipeline_specs as specs


def test_two_builds_are_byte_identical(built, spec):
    assert generate_pipeline_definition(spec) == built.text


def test_equal_specs_built_separately_are_byte_identical(built):
    assert generate_pipeline_definition(specs.base_spec()) == built.text


def test_a_code_change_changes_the_definition(built, spec):
    new_code = specs.replace(spec, code_library_s3_uri=f"s3://{specs.ASSETS_BUCKET}/{'1' * 64}.zip")
    text = generate_pipeline_definition(new_code)
    assert text != built.text
    assert f"{'1' * 64}.zip" in text and specs.LIBRARY_URI not in text
