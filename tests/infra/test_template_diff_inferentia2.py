"""The template diff's call-out for a deployed model whose endpoint moves onto ml.inf2: the serving stack keeps the
version approved for the old instances (``cdk deploy`` reuses the package parameter), which has no compiled model, so
the inf2 fleet cannot load it and the update rolls back. The call-out names the migration order that works.

Inputs are one-stack assemblies (``tests.support.assemblies``) whose endpoint config is the only change.
"""

from __future__ import annotations

import pytest

from mlops_loop.tools.template_diff import CATEGORY_UPDATE_FAILS, compare_assemblies, render_text
from tests.support.assemblies import endpoint, instance_config, serverless_config, template, write_assembly

MODEL = "some-net"  # any model name: the call-out names its parameters from the config's metadata


def _config(instance_type: str) -> dict:
    config = serverless_config() if instance_type == "serverless" else instance_config(instance_type, 1)
    config["Metadata"] = {"mlops-loop": {"model": MODEL, "mode": "realtime"}}
    return config


def _diff(tmp_path, before: str, after: str):
    """The diff of prod's Serving stack whose endpoint config moves from ``before`` to ``after``."""
    def assembly(name: str, instance_type: str):
        resources = {"Endpoint": endpoint(f"mlops-loop-prod-{MODEL}", "Config", model=MODEL), "Config": _config(instance_type)}
        return write_assembly(tmp_path / name, {"prod": {"Serving": template(resources)}})

    return compare_assemblies(assembly("base", before), assembly("head", after))


def _failing(diff) -> list[str]:
    return [c.message for c in diff.callouts_for("prod") if c.category == CATEGORY_UPDATE_FAILS]


@pytest.mark.parametrize("before", ["ml.m5.large", "ml.c5.xlarge", "serverless"])
def test_a_deployed_model_moved_onto_inferentia2_is_an_update_that_fails_and_the_callout_names_the_order_that_works(
        tmp_path, before):
    """GIVEN a model's endpoint config moving from a CPU type or serverless (it keeps its uncompiled version the same
    way) to ml.inf2.xlarge WHEN compared THEN an UPDATE FAILS
    call-out says the kept (uncompiled) version cannot load there and gives the migration order, naming the model's
    own package and digest parameters."""
    diff = _diff(tmp_path, before, "ml.inf2.xlarge")
    (message,) = _failing(diff)
    assert message.startswith(f"replaced: instance type {before} -> ml.inf2.xlarge: where the endpoint exists (a version "
                              "approved), this deploy keeps the version serving now (SomeNetModelPackageArn), which was "
                              "not compiled for Inferentia2: the new fleet cannot load it")
    assert message.endswith("deploy the environment's Training and Operations stacks alone (cdk deploy --exclusively) so "
                            "the pipeline compiles and the parity check covers the endpoint; run the pipeline and approve "
                            "the compiled version it registers; then deploy this stack with --parameters "
                            "SomeNetModelPackageArn=<that version's ARN> --parameters SomeNetModelSha256=<its model_sha256>")
    assert "[UPDATE FAILS] Serving/Config (AWS::SageMaker::EndpointConfig): replaced: instance type" in render_text(diff, title="t")


@pytest.mark.parametrize(("before", "after"), [("ml.inf2.xlarge", "ml.inf2.8xlarge"), ("ml.inf2.xlarge", "ml.m5.large"),
                                               ("ml.m5.large", "ml.c5.xlarge")])
def test_a_move_between_inferentia2_types_off_inferentia2_or_between_cpu_types_gets_no_such_callout(tmp_path, before, after):
    """Already on Inferentia2 (its serving version is compiled) or CPU to CPU: no such call-out. Leaving ml.inf2 is not
    this call-out's case."""
    assert _failing(_diff(tmp_path, before, after)) == []
