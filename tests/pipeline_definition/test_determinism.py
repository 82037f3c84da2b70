"""Same spec, same bytes: the definition can be diffed and snapshot in review (the SDK itself runs here,
never the cache, and the session fixture's definition, cached or not, is what it builds)."""

from __future__ import annotations

from mlops_loop.training import generate_pipeline_definition, sdk_offline

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


def test_a_build_on_the_processs_session_is_the_build_on_a_new_one(spec, monkeypatch):
    """The offline SDK hands one PipelineSession per region and bucket to every build of a process.
    GIVEN a build on a new session WHEN a different pipeline (another name and model group, tuning, auto-approval, on-demand) is
    built on that session, then the first spec again THEN the two builds of the first spec are
    byte-identical: nothing of one build carries over into the next."""
    monkeypatch.setattr(sdk_offline, "_SESSIONS", {})
    on_a_new_session = generate_pipeline_definition(spec)
    session = sdk_offline._SESSIONS[(spec.region, spec.artifacts_bucket)]
    other = specs.replace(spec, pipeline_name="mlops-loop-staging-churn", model_package_group_name="mlops-loop-staging-churn",
                          enable_tuning=True, default_approval_status="Approved", use_spot=False)
    generate_pipeline_definition(other)

    again = generate_pipeline_definition(spec)

    assert sdk_offline._SESSIONS[(spec.region, spec.artifacts_bucket)] is session  # all three on that session
    assert again == on_a_new_session


def test_a_capture_left_on_the_session_by_a_failed_build_is_gone_from_the_next():
    """GIVEN a build that stopped with a step's argument capture still on the process's session (the SDK
    clears it only after a step completes) WHEN the next build gets that session THEN the capture is gone."""
    with sdk_offline.offline_sdk(specs.REGION, specs.ARTIFACTS_BUCKET) as first:
        first.context = object()

    with sdk_offline.offline_sdk(specs.REGION, specs.ARTIFACTS_BUCKET) as second:
        assert second is first and second.context is None
