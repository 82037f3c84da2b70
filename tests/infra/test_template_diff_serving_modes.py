"""The template diff's call-outs for a deployed model switching serving mode (instance-based real-time, serverless,
async), or moving an autoscaled variant to another instance type: its endpoint keeps its fixed name, so
CloudFormation updates it in place to the new endpoint config (and a scalable target on it keeps its ResourceId).

Inputs are one-stack assemblies (``tests.support.assemblies``) whose endpoint config (and scalable target) are the
only changes; the comparison asks cloudformation-diff, as ``cdk diff`` does, whether the config is replaced. The
last test reads the Serving stacks the app synthesizes for the ``modes`` and ``pooled`` scenarios.
"""

from __future__ import annotations

import copy

import pytest

from mlops_loop.tools.template_diff import (
    CATEGORY_COST,
    CATEGORY_SERVING,
    CATEGORY_UPDATE_FAILS,
    compare_assemblies,
    render_markdown,
    render_text,
)
from mlops_loop.config import AppConfig
from mlops_loop.tools.template_diff.callouts import autoscaled_retype_callouts
from mlops_loop.tools.template_diff.model import StackDiff
from tests.support.assemblies import endpoint, instance_config, serverless_config, template, write_assembly
from tests.support.scenarios import POOLED_ENV


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
    # A raised memory or provisioned concurrency is a COST call-out (test_template_diff_cost.py), not a mode one.
    assert [c for c in _mode_switch(tmp_path, before, after).callouts if c.category != CATEGORY_COST] == []


# --------------------------------------------------------------------------------------------------------------------
# An autoscaled variant changing instance type: SageMaker refuses the update while the variant is a scalable target
# --------------------------------------------------------------------------------------------------------------------
RESOURCE_ID = "endpoint/mlops-loop-prod-churn/variant/AllTraffic"
RETYPE = (
    "replaced: instance type {old} -> {new} of endpoint mlops-loop-prod-churn (variant AllTraffic), an Application "
    "Auto Scaling target: SageMaker refuses to change the instance type of a variant registered for autoscaling, so "
    "where the endpoint exists (a version approved), this deploy fails and CloudFormation rolls the stack back (the "
    "endpoint keeps serving on {old}). "
)
TWO_DEPLOYS = (
    "Change it in two deploys: first with its autoscaling off, still on {old} (`{field}`, and `instance_count` at the "
    "instances it needs meanwhile), then {new} with the autoscaling back on (CloudFormation registers the target again "
    "after the endpoint has updated)"
)
ASYNC_NEW_NAME = (
    "An async endpoint always scales (no config field turns it off): serve the new type under a new model name instead "
    "(its own endpoint and registry group: approve a version there, move callers, then drop this name)"
)


def _scalable_target(*, depends_on: bool = True, resource_id: str = RESOURCE_ID) -> dict:
    """A scalable target on the variant's instance count; the app's always depend on their endpoint."""
    target: dict = {
        "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
        "Properties": {"ServiceNamespace": "sagemaker", "ResourceId": resource_id,
                       "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "MinCapacity": 1, "MaxCapacity": 4},
    }
    if depends_on:
        target["DependsOn"] = ["Endpoint"]
    return target


def _labelled(config: dict, model: str, mode: str) -> dict:
    """``config`` with the label the serving constructs put on it (a multi-model fleet's: ``<endpoint> (<members>)``)."""
    return {**config, "Metadata": {"mlops-loop": {"model": model, "mode": mode}}}


def _serving_side(config: dict, target: dict | None) -> dict:
    resources = {"Endpoint": endpoint("mlops-loop-prod-churn", "Config", model="churn"), "Config": config}
    if target is not None:
        resources["ScalableTarget"] = target
    return template(resources)


def _retype(tmp_path, before: tuple[dict, dict | None], after: tuple[dict, dict | None]):
    """The diff of prod's Serving stack whose endpoint config (and scalable target) change from ``before`` to
    ``after``, each ``(config, scalable target or None)``."""
    base = write_assembly(tmp_path / "base", {"prod": {"Serving": _serving_side(*before)}})
    head = write_assembly(tmp_path / "head", {"prod": {"Serving": _serving_side(*after)}})
    return compare_assemblies(base, head)


def _update_fails(diff) -> list[tuple[str, str, str]]:
    return [c for c in _callouts(diff) if c[0] == CATEGORY_UPDATE_FAILS]


def test_an_autoscaled_real_time_endpoint_changing_instance_type_is_an_update_that_fails(tmp_path):
    """GIVEN churn's autoscaled real-time endpoint moving from ml.m5.xlarge to ml.c5.xlarge (its scalable target kept,
    as the app keeps it: same ResourceId, the endpoint keeps its name) WHEN compared THEN an UPDATE FAILS call-out on
    the replaced config says the deploy fails and rolls back, and names the two deploys with the exact config field."""
    realtime = lambda t, n: _labelled(instance_config(t, n), "churn", "realtime")  # noqa: E731
    diff = _retype(tmp_path, (realtime("ml.m5.xlarge", 2), _scalable_target()),
                   (realtime("ml.c5.xlarge", 3), _scalable_target()))

    field = "environments.prod.serving.churn.realtime.autoscaling: null"
    message = RETYPE.format(old="ml.m5.xlarge", new="ml.c5.xlarge") + TWO_DEPLOYS.format(
        old="ml.m5.xlarge", new="ml.c5.xlarge", field=field)
    assert _callouts(diff) == [(CATEGORY_UPDATE_FAILS, "Config", message)]
    assert f"[UPDATE FAILS] Serving/Config (AWS::SageMaker::EndpointConfig): {message}" in render_text(diff, title="t")
    assert "- :warning: **UPDATE FAILS** `Serving/Config` (AWS::SageMaker::EndpointConfig): replaced: instance type " \
           "ml.m5.xlarge -&gt; ml.c5.xlarge" in render_markdown(diff, title="t")


def test_an_async_endpoint_changing_instance_type_is_an_update_that_fails_served_under_a_new_name(tmp_path):
    """GIVEN an async endpoint (always a scalable target, scaling from zero) moving to another instance type WHEN
    compared THEN UPDATE FAILS: no config field turns an async endpoint's scaling off, so the way is a new model name."""
    async_ = lambda t: _labelled(instance_config(t, 1, is_async=True), "churn", "async")  # noqa: E731
    diff = _retype(tmp_path, (async_("ml.m5.large"), _scalable_target()), (async_("ml.g5.xlarge"), _scalable_target()))

    assert _callouts(diff) == [(CATEGORY_UPDATE_FAILS, "Config",
                                RETYPE.format(old="ml.m5.large", new="ml.g5.xlarge") + ASYNC_NEW_NAME)]


def test_an_autoscaled_multi_model_fleet_changing_instance_type_names_the_fleets_autoscaling_field(tmp_path):
    """GIVEN a shared multi-model fleet (labelled ``<endpoint> (<members>)``) moving to another type while autoscaled
    WHEN compared THEN the two deploys name the fleet's own field under multi_model_endpoints."""
    fleet = lambda t: _labelled(instance_config(t, 1), "shared (churn, credit-risk)", "multi_model")  # noqa: E731
    diff = _retype(tmp_path, (fleet("ml.m5.large"), _scalable_target()), (fleet("ml.c5.xlarge"), _scalable_target()))

    field = "environments.prod.multi_model_endpoints.shared.autoscaling: null"
    assert _update_fails(diff) == [(CATEGORY_UPDATE_FAILS, "Config", RETYPE.format(old="ml.m5.large", new="ml.c5.xlarge")
                                    + TWO_DEPLOYS.format(old="ml.m5.large", new="ml.c5.xlarge", field=field))]


def test_an_autoscaled_real_time_endpoint_switched_to_async_on_another_type_fails_too(tmp_path):
    """GIVEN an autoscaled real-time endpoint switched to async on another instance type WHEN compared THEN besides
    SERVING STOPS (the callers' API) the update fails: the real-time target is still registered when the endpoint
    updates (a target CloudFormation removes is deregistered only in the cleanup phase)."""
    before = (_labelled(instance_config("ml.m5.large", 1), "churn", "realtime"), _scalable_target())
    after = (_labelled(instance_config("ml.c5.xlarge", 1, is_async=True), "churn", "async"), _scalable_target())
    diff = _retype(tmp_path, before, after)

    field = "environments.prod.serving.churn.realtime.autoscaling: null"
    assert [c[0] for c in _callouts(diff)] == [CATEGORY_SERVING, CATEGORY_UPDATE_FAILS]
    assert _update_fails(diff) == [(CATEGORY_UPDATE_FAILS, "Config", RETYPE.format(old="ml.m5.large", new="ml.c5.xlarge")
                                    + TWO_DEPLOYS.format(old="ml.m5.large", new="ml.c5.xlarge", field=field))]


def test_a_target_added_with_the_new_type_is_registered_after_the_update(tmp_path):
    """GIVEN a real-time endpoint without autoscaling switched to another type with autoscaling on (step two of the
    procedure; or to async, whose target is new) WHEN compared THEN no UPDATE FAILS: the new target depends on the
    endpoint, so CloudFormation registers it after the endpoint has updated. A new target that does not depend on it
    may be registered first: that one is called out (without a label, generically)."""
    before = (instance_config("ml.m5.large", 1), None)

    assert _update_fails(_retype(tmp_path / "a", before, (instance_config("ml.c5.xlarge", 1), _scalable_target()))) == []
    assert _update_fails(_retype(tmp_path / "b", before,
                                 (instance_config("ml.c5.xlarge", 1, is_async=True), _scalable_target()))) == []
    unordered = _retype(tmp_path / "c", before, (instance_config("ml.c5.xlarge", 1), _scalable_target(depends_on=False)))
    assert _update_fails(unordered) == [(CATEGORY_UPDATE_FAILS, "Config", RETYPE.format(old="ml.m5.large", new="ml.c5.xlarge")
                                         + "Change it in two deploys: first with the endpoint's autoscaling off, still on "
                                         "ml.m5.large, then ml.c5.xlarge with the autoscaling back on")]


@pytest.mark.parametrize("before,after", [
    ((instance_config("ml.m5.xlarge", 2), _scalable_target()), (instance_config("ml.m5.xlarge", 3), _scalable_target())),
    ((instance_config("ml.m5.large", 1), None), (instance_config("ml.c5.xlarge", 1), None)),
    ((instance_config("ml.m5.large", 1), _scalable_target(resource_id="endpoint/mlops-loop-prod-other/variant/AllTraffic")),
     (instance_config("ml.c5.xlarge", 1), _scalable_target(resource_id="endpoint/mlops-loop-prod-other/variant/AllTraffic"))),
    ((instance_config("ml.m5.large", 1), _scalable_target()), (instance_config("ml.m5.large", 1), None)),
], ids=["only-the-count-autoscaled", "no-autoscaling", "target-on-another-endpoint", "autoscaling-turned-off"])
def test_no_instance_type_change_of_a_registered_variant_has_no_retype_callout(tmp_path, before, after):
    """GIVEN the count changing under autoscaling (SageMaker allows it), a type change without autoscaling, a target
    on another endpoint, or step one of the procedure (autoscaling off, same type) WHEN compared THEN no call-out."""
    assert _retype(tmp_path, before, after).callouts == []


def _retyped(resources: dict, config_id: str) -> dict:
    """``resources`` with the endpoint config ``config_id``'s variants moved to another instance type."""
    config = copy.deepcopy(resources[config_id])
    for variant in config["Properties"]["ProductionVariants"]:
        variant["InstanceType"] = "ml.c5.9xlarge" if variant["InstanceType"] != "ml.c5.9xlarge" else "ml.m5.4xlarge"
    return {**resources, config_id: config}


def _field_scales(config: AppConfig, env: str, field: str) -> bool:
    """Whether ``field`` (``environments.<env>.serving.<model>.realtime.autoscaling: null`` or
    ``environments.<env>.multi_model_endpoints.<name>.autoscaling: null``) names an autoscaling the config has."""
    environment = config.environments[env]
    path = field.removesuffix(": null").split(".")
    assert path[:2] == ["environments", env] and path[-1] == "autoscaling", field
    if path[2] == "multi_model_endpoints":
        return environment.multi_model_endpoints[path[3]].autoscaling is not None
    assert path[2] == "serving" and path[4] == "realtime", field
    return config.serving_of(environment, config.models[path[3]]).realtime.autoscaling is not None


@pytest.mark.parametrize("scenario", ["modes", "pooled"])
def test_every_autoscaled_endpoint_the_app_makes_names_the_field_that_scales_it(request, scenario):
    """GIVEN the Serving stack the app synthesizes for every serving mode (``modes``) and for shared multi-model
    fleets (``pooled``) WHEN each endpoint's config is moved to another instance type in turn THEN an endpoint the app
    autoscales gets one UPDATE FAILS call-out whose field, read back in the config, is the autoscaling that made its
    target (async: a new model name), and one it does not autoscale gets none. Every endpoint, whatever the models."""
    built = request.getfixturevalue(scenario)
    resources = built.serving["Resources"]
    endpoints = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::SageMaker::Endpoint"}
    judged = {"autoscaled": 0, "fixed": 0}
    for lid, resource in endpoints.items():
        config_id = resource["Properties"]["EndpointConfigName"]["Fn::GetAtt"][0]
        if not any("InstanceType" in v for v in resources[config_id]["Properties"]["ProductionVariants"]):
            continue  # serverless
        name = resource["Properties"]["EndpointName"]
        stack = StackDiff(stage=built.env if scenario == "modes" else POOLED_ENV, artifact_id=f"{scenario}Serving",
                          stack_name="serving", status="changed")
        callouts = autoscaled_retype_callouts(stack, old=resources, new=_retyped(resources, config_id))
        targets = [t for t in resources.values() if t["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
                   and t["Properties"]["ResourceId"] == f"endpoint/{name}/variant/AllTraffic"]
        judged["autoscaled" if targets else "fixed"] += 1
        if not targets:
            assert callouts == [], name
            continue
        (callout,) = callouts
        assert (callout.category, callout.logical_id) == (CATEGORY_UPDATE_FAILS, config_id)
        if "AsyncInferenceConfig" in resources[config_id]["Properties"]:
            assert callout.message.endswith(ASYNC_NEW_NAME), name
            continue
        field = callout.message.split("`")[1]
        assert _field_scales(built.config, stack.stage, field), (name, field)
    # The scenarios cover both kinds (a scenario change that drops one must not pass silently).
    assert judged["autoscaled"] and judged["fixed"], judged
