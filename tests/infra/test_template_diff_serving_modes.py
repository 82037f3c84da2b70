"""The template diff's call-outs for a deployed model switching serving mode (instance-based real-time, serverless,
async): its endpoint keeps its fixed name, so CloudFormation updates it in place to the new endpoint config.

Inputs are one-stack assemblies (``tests.support.assemblies``) whose endpoint config is the only change; the
comparison asks cloudformation-diff, as ``cdk diff`` does, whether the config is replaced.
"""

from __future__ import annotations

import pytest

from mlops_loop.tools.template_diff import (
    CATEGORY_SERVING,
    CATEGORY_UPDATE_FAILS,
    compare_assemblies,
    render_markdown,
    render_text,
)
from tests.support.assemblies import endpoint, instance_config, serverless_config, template, write_assembly


CONFIGS = {
    "real-time": lambda: instance_config("ml.m5.large", 1),
    "async": lambda: instance_config("ml.m5.large", 1, is_async=True),
    "serverless": lambda: serverless_config(2048),
}

TO_SERVERLESS = (
    "replaced: serving mode {before} -> serverless: SageMaker does not update an instance-based endpoint to serverless, "
    "so where the endpoint exists (a version approved), this deploy fails and CloudFormation rolls the stack back (the "
    "endpoint keeps serving {before}). Serve it serverless under a new model name instead (its own endpoint and "
    "registry group: approve a version there, move callers, then drop this name)"
)
TO_ASYNC = (
    "replaced: serving mode {before} -> async: where the endpoint exists (a version approved), the endpoint keeps its "
    "name but then takes only InvokeEndpointAsync with the request in S3 (the answer is written to S3): every "
    "InvokeEndpoint caller gets errors from the moment it updates. To keep callers working, serve the async mode under "
    "a new model name, move callers to its endpoint, then drop this one"
)
FROM_ASYNC = (
    "replaced: serving mode async -> {after}: where the endpoint exists (a version approved), the endpoint keeps its "
    "name but then takes only InvokeEndpoint: every InvokeEndpointAsync caller gets errors from the moment it updates. "
    "To keep callers working, serve the {after} mode under a new model name, move callers to its endpoint, then drop "
    "this one"
)


def _mode_switch(tmp_path, before: dict, after: dict):
    """The diff of prod's Serving stack whose endpoint config changes from ``before`` to ``after``."""
    def assembly(name: str, config: dict):
        resources = {"Endpoint": endpoint("mlops-loop-prod-churn", "Config", model="churn"), "Config": config}
        return write_assembly(tmp_path / name, {"prod": {"Serving": template(resources)}})

    return compare_assemblies(assembly("base", before), assembly("head", after))


def _callouts(diff) -> list[tuple[str, str, str]]:
    return [(c.category, c.logical_id, c.message) for c in diff.callouts_for("prod")]


@pytest.mark.parametrize("before", ["real-time", "async"])
def test_an_instance_based_endpoint_switched_to_serverless_is_an_update_that_fails(tmp_path, before):
    """GIVEN a model's endpoint config switching from instance-based (real-time or async) to serverless WHEN compared
    THEN an UPDATE FAILS call-out says SageMaker refuses the in-place update and to serve it under a new model name
    (async callers also lose their API: see the next test)."""
    diff = _mode_switch(tmp_path, CONFIGS[before](), CONFIGS["serverless"]())

    (failing,) = [c for c in _callouts(diff) if c[0] == CATEGORY_UPDATE_FAILS]
    assert failing == (CATEGORY_UPDATE_FAILS, "Config", TO_SERVERLESS.format(before=before))
    assert [c[0] for c in _callouts(diff)] == (
        [CATEGORY_SERVING, CATEGORY_UPDATE_FAILS] if before == "async" else [CATEGORY_UPDATE_FAILS])
    assert "[UPDATE FAILS] Serving/Config (AWS::SageMaker::EndpointConfig): replaced: serving mode" in render_text(diff, title="t")
    assert "- :warning: **UPDATE FAILS** `Serving/Config`" in render_markdown(diff, title="t")


@pytest.mark.parametrize("before", ["real-time", "serverless"])
def test_a_synchronous_endpoint_switched_to_async_stops_serving_its_callers(tmp_path, before):
    """GIVEN a model's endpoint config switching from real-time or serverless to async WHEN compared THEN a SERVING STOPS
    call-out says every InvokeEndpoint caller gets errors (the name stays, the API changes) and how to move them;
    the update itself is not said to fail."""
    diff = _mode_switch(tmp_path, CONFIGS[before](), CONFIGS["async"]())

    assert _callouts(diff) == [(CATEGORY_SERVING, "Config", TO_ASYNC.format(before=before))]


@pytest.mark.parametrize("after", ["real-time", "serverless"])
def test_an_async_endpoint_switched_to_a_synchronous_mode_stops_serving_its_async_callers(tmp_path, after):
    diff = _mode_switch(tmp_path, CONFIGS["async"](), CONFIGS[after]())

    (serving,) = [c for c in _callouts(diff) if c[0] == CATEGORY_SERVING]
    assert serving == (CATEGORY_SERVING, "Config", FROM_ASYNC.format(after=after))


def test_a_serverless_endpoint_switched_to_real_time_has_no_mode_callout(tmp_path):
    """GIVEN serverless -> real-time (AWS documents only the other direction as refused; callers keep InvokeEndpoint)
    WHEN compared THEN the config is replaced, with no call-out."""
    diff = _mode_switch(tmp_path, CONFIGS["serverless"](), CONFIGS["real-time"]())

    ((_, rc),) = [(s, r) for s in diff.stacks for r in s.resources]
    assert (rc.logical_id, rc.kind) == ("Config", "replaced")
    assert diff.callouts == []


@pytest.mark.parametrize("before,after", [
    (instance_config("ml.m5.large", 1), instance_config("ml.c5.xlarge", 2)),
    (serverless_config(2048), serverless_config(4096, provisioned=2)),
    (instance_config("ml.m5.large", 1, is_async=True), instance_config("ml.c5.xlarge", 1, is_async=True)),
], ids=["real-time", "serverless", "async"])
def test_a_change_within_one_serving_mode_has_no_mode_callout(tmp_path, before, after):
    assert _mode_switch(tmp_path, before, after).callouts == []
