"""The template diff's IMAGE call-out: a container image the templates run moves (a pipeline step's ImageUri or
TrainingImage, Register's inference image, a scheduled job's AppSpecification.ImageUri, a SageMaker Model's image).
Said once per environment, with what deployed endpoints keep meanwhile.

Inputs are small assemblies (``tests.support.assemblies``) whose only change is the image tag."""

from __future__ import annotations

from mlops_loop.tools.template_diff import CATEGORY_IMAGE, compare_assemblies, render_markdown, render_text
from tests.support.assemblies import (
    condition_step,
    job_schedule,
    pipeline,
    processing_request,
    processing_step,
    template,
    training_step,
    write_assembly,
)

REGISTRY = "141502667606.dkr.ecr.eu-west-1.amazonaws.com"
OLD, NEW = f"{REGISTRY}/sagemaker-xgboost:3.0-5", f"{REGISTRY}/sagemaker-xgboost:3.2-0"
TAIL = ("pipeline runs and scheduled jobs started after this deploy run the new image; deployed endpoints keep the "
        "image their model version was registered with until the next approval "
        "(docs/training.md, \"The XGBoost image and its end of patch\")")


MODEL = ("A SageMaker Model the template declares with the image (a multi-model endpoint's) serves the new one once "
         "this deploy updates it")


def _training(image: str) -> dict:
    prepare, train = processing_step("Prepare"), training_step("Train")
    prepare["Arguments"]["AppSpecification"] = {"ImageUri": image}
    train["Arguments"]["AlgorithmSpecification"] = {"TrainingImage": image, "TrainingInputMode": "File"}
    register = {"Name": "Register", "Type": "RegisterModel", "Arguments": {
        "InferenceSpecification": {"Containers": [{"Image": image}]}}}
    return {"Pipeline": pipeline("mlops-loop-prod-churn", [prepare, train, condition_step("CheckGate", [register])])}


def _operations(image: str) -> dict:
    request = {**processing_request(), "AppSpecification": {"ImageUri": image}}
    return {"MonitorSchedule": job_schedule("rate(1 day)", "createProcessingJob", request)}


def _serving(image: str) -> dict:
    return {"Model": {"Type": "AWS::SageMaker::Model", "Properties": {
        "ExecutionRoleArn": "arn:aws:iam::111111111111:role/serving", "PrimaryContainer": {"Image": image}}}}


def _assembly(root, image: str, stages=("staging", "prod")):
    return write_assembly(root, {stage: {"Training": template(_training(image)), "Operations": template(_operations(image)),
                                         "Serving": template(_serving(image))} for stage in stages})


def test_an_image_move_is_one_callout_per_environment(tmp_path):
    """GIVEN the XGBoost image 3.0-5 -> 3.2-0 in every step, the monitor's schedule and a model, in two environments
    WHEN compared THEN one IMAGE call-out per environment names the move, where it is, and what endpoints keep."""
    diff = compare_assemblies(_assembly(tmp_path / "base", OLD), _assembly(tmp_path / "head", NEW))
    images = [(c.stage, c.stack, c.logical_id, c.message) for c in diff.callouts if c.category == CATEGORY_IMAGE]
    message = (f"sagemaker-xgboost:3.0-5 -> sagemaker-xgboost:3.2-0 ({REGISTRY}) in 3 resources: "
               f"Training/Pipeline, Operations/MonitorSchedule, Serving/Model: {TAIL}. {MODEL}")
    assert images == [(stage, "(environment)", "(container images)", message) for stage in ("staging", "prod")]
    assert (f"    [IMAGE] (environment)/(container images) (AWS::SageMaker::Pipeline, AWS::Scheduler::Schedule, "
            f"AWS::SageMaker::Model): {message}") in render_text(diff, title="t")
    assert "**IMAGE** `(environment)/(container images)`" in render_markdown(diff, title="t")


def test_an_image_from_another_registry_is_named_whole(tmp_path):
    """GIVEN only the schedule's image moving to another account's registry WHEN compared THEN both URIs in full."""
    other = "683313688378.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0"
    base = write_assembly(tmp_path / "base", {"prod": {"Operations": template(_operations(OLD))}})
    head = write_assembly(tmp_path / "head", {"prod": {"Operations": template(_operations(other))}})
    images = [c.message for c in compare_assemblies(base, head).callouts if c.category == CATEGORY_IMAGE]
    assert images == [f"{OLD} -> {other} in 1 resource: Operations/MonitorSchedule: {TAIL}"]


def test_no_image_callout_without_an_image_change(tmp_path):
    """GIVEN the same image on both sides, the schedule changed WHEN compared THEN no IMAGE call-out."""
    base = write_assembly(tmp_path / "base", {"prod": {"Operations": template(_operations(OLD))}})
    changed = _operations(OLD)
    changed["MonitorSchedule"]["Properties"]["ScheduleExpression"] = "rate(2 days)"
    head = write_assembly(tmp_path / "head", {"prod": {"Operations": template(changed)}})
    diff = compare_assemblies(base, head)
    assert diff.stacks and not [c for c in diff.callouts if c.category == CATEGORY_IMAGE]
