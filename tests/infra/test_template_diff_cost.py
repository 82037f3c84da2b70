"""The template diff's COST call-out: a cap on what serving may cost raised (a scalable target's MaxCapacity, a
serverless variant's MaxConcurrency or ProvisionedConcurrency, a function's reserved concurrency). The floor does not
move for a raised maximum and IAM cannot cap counts, so the reviewer is told here, next to DATA AT RISK and RUNNING WORK.

Inputs are one-stack assemblies (``tests.support.assemblies``) whose only change is the value under test."""

from __future__ import annotations

from mlops_loop.tools.template_diff import CATEGORY_COST, compare_assemblies, render_markdown, render_text
from tests.support.assemblies import HANDLER_RUNTIME_NAME, endpoint, serverless_config, template, write_assembly

TAIL = ("and with it the most this can cost a month (the cost section's ceiling). IAM cannot cap instance counts or "
        "concurrency: this value is the only cap")


def _target(maximum: int, dimension: str = "sagemaker:variant:DesiredInstanceCount") -> dict:
    return {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {
        "ServiceNamespace": "sagemaker", "ScalableDimension": dimension, "MinCapacity": 2, "MaxCapacity": maximum,
        "ResourceId": "endpoint/mlops-loop-prod-churn/variant/AllTraffic"}}


def _function(reserved: int) -> dict:
    return {"Type": "AWS::Lambda::Function", "Properties": {
        "FunctionName": "mlops-loop-prod-churn-by-id", "Code": {"ZipFile": "x"}, "Handler": "a.b",
        "Runtime": HANDLER_RUNTIME_NAME, "Role": "arn:aws:iam::111111111111:role/by-id", "ReservedConcurrentExecutions": reserved}}


def _serverless(max_concurrency: int, provisioned: int | None) -> dict:
    return {"Endpoint": endpoint("mlops-loop-prod-credit-risk", "Config", model="credit-risk"),
            "Config": serverless_config(2048, provisioned=provisioned, max_concurrency=max_concurrency)}


def _cost(tmp_path, before: dict, after: dict, stack: str = "Serving"):
    base = write_assembly(tmp_path / "base", {"prod": {stack: template(before)}})
    head = write_assembly(tmp_path / "head", {"prod": {stack: template(after)}})
    diff = compare_assemblies(base, head)
    return diff, [(c.logical_id, c.message) for c in diff.callouts if c.category == CATEGORY_COST]


def test_a_raised_max_capacity_is_a_cost_callout(tmp_path):
    """GIVEN prod churn's autoscaling maximum 6 -> 100 (the FinOps trial) WHEN diffed THEN one COST call-out names
    the value and why it matters, first among the non-blocking categories and marked in the PR comment."""
    diff, cost = _cost(tmp_path, {"Target": _target(6)}, {"Target": _target(100)})
    assert cost == [("Target", f"modified: MaxCapacity 6 -> 100: raises the most instances autoscaling may run, {TAIL}")]
    assert ("    [COST] Serving/Target (AWS::ApplicationAutoScaling::ScalableTarget): modified: MaxCapacity 6 -> 100: "
            "raises the most instances autoscaling may run,") in render_text(diff, title="t")
    assert ":warning: **COST**" in render_markdown(diff, title="t")


def test_a_raised_provisioned_concurrency_maximum_says_provisioned_concurrency(tmp_path):
    dimension = "sagemaker:variant:DesiredProvisionedConcurrency"
    _, cost = _cost(tmp_path, {"Target": _target(4, dimension)}, {"Target": _target(8, dimension)})
    assert cost == [("Target", "modified: MaxCapacity 4 -> 8: raises the most provisioned concurrency autoscaling may "
                               f"run, {TAIL}")]


def test_a_raised_serverless_max_concurrency_and_new_provisioned_concurrency_are_cost_callouts(tmp_path):
    """GIVEN credit-risk's max_concurrency 10 -> 200 and provisioned concurrency added WHEN diffed THEN two COST
    call-outs on the (replaced) endpoint config."""
    _, cost = _cost(tmp_path, _serverless(10, None), _serverless(200, 2))
    assert cost == [
        ("Config", "replaced: ProductionVariants[VariantName=AllTraffic].ServerlessConfig.MaxConcurrency 10 -> 200: "
                   "raises the most concurrent requests this serverless endpoint runs (each billed per GB-second of its "
                   f"memory), {TAIL}"),
        ("Config", "replaced: ProductionVariants[VariantName=AllTraffic].ServerlessConfig.ProvisionedConcurrency "
                   "(absent) -> 2: raises the serverless endpoint's provisioned concurrency, billed every second whether "
                   f"requests arrive or not, {TAIL}"),
    ]


def test_more_serverless_memory_is_a_cost_callout(tmp_path):
    before, after = _serverless(10, None), _serverless(10, None)
    after["Config"]["Properties"]["ProductionVariants"][0]["ServerlessConfig"]["MemorySizeInMB"] = 4096
    _, cost = _cost(tmp_path, before, after)
    assert cost == [("Config", "replaced: ProductionVariants[VariantName=AllTraffic].ServerlessConfig.MemorySizeInMB "
                               "2048 -> 4096: raises the memory every request of this serverless endpoint is billed for "
                               f"(per GB-second), {TAIL}")]


def test_a_raised_function_reserved_concurrency_is_a_cost_callout(tmp_path):
    _, cost = _cost(tmp_path, {"ById": _function(10)}, {"ById": _function(50)}, stack="Operations")
    assert cost == [("ById", "modified: ReservedConcurrentExecutions 10 -> 50: raises the most concurrent executions of "
                             "this function (its throttle: more requests, and endpoint calls, get through), " + TAIL)]


def test_a_lowered_or_unchanged_cap_is_no_cost_callout(tmp_path):
    _, lowered = _cost(tmp_path / "a", {"Target": _target(6), **_serverless(200, 2), "ById": _function(50)},
                       {"Target": _target(4), **_serverless(10, None), "ById": _function(10)})
    assert lowered == []
    _, unchanged = _cost(tmp_path / "b", {"Target": _target(6)}, {"Target": _target(6)})
    assert unchanged == []
