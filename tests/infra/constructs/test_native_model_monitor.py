"""The native Model Monitor opt-in construct, synthesized in a minimal stack of its own (not the app's stacks).

GIVEN one stack (a KMS key, an imported inference bucket, a CfnParameter + CfnCondition) holding
``NativeModelMonitor`` for the sample churn model, with the project's cdk-nag packs on, WHEN it is
synthesized, THEN the template, the analysis-config assets, the role policy, cdk-nag and cfn-lint
are checked. Construction errors are checked on fresh stacks.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest
from aws_cdk import App, CfnCondition, CfnParameter, CfnWaitConditionHandle, Environment, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from mlops_loop import content_cache
from mlops_loop.app_builder import new_app
from mlops_loop.content_cache import CACHE_DIR_ENV
from mlops_loop.config.instance_types import INSTANCE_TYPES
from mlops_loop.config.schedules import monitoring_schedule
from mlops_loop.constructs import native_model_monitor
from mlops_loop.constructs.native_model_monitor import NativeModelMonitor, notify_native_monitor_failures
from mlops_loop.nag import add_nag_packs
from mlops_loop.tools.lint import lint_cache, lint_templates
from mlops_loop.training import sdk_offline

from mlops_loop.config import parse_config
from tests.support.paths import CONFIG_PATH
from tests.support.built_stack import acknowledged
from tests.support.cdk_outdirs import bare_outdir
from tests.support.construct_configs import (assert_sagemaker_eni_statements, network_config, returns_config,
                                             vpc_config_of_network, vpc_statements_of)

ACCOUNT, REGION = "123456789012", "eu-west-1"
BUCKET = "test-inference-bucket"
ENDPOINT = "mlops-loop-prod-churn"
DEFINITION_TYPES = {
    "DataQuality": "AWS::SageMaker::DataQualityJobDefinition",
    "ModelQuality": "AWS::SageMaker::ModelQualityJobDefinition",
    "ModelBias": "AWS::SageMaker::ModelBiasJobDefinition",
    "ModelExplainability": "AWS::SageMaker::ModelExplainabilityJobDefinition",
}


@pytest.fixture(scope="module")
def model():
    from mlops_loop.config import load_config

    return load_config(CONFIG_PATH).models["churn"]


def build(model, outdir: Optional[Path] = None, *, nag: bool = False, app: Optional[App] = None,
          **overrides: Any) -> tuple[App, Stack, NativeModelMonitor]:
    if app is None:
        app = new_app(str(outdir or bare_outdir()))
        if nag:
            add_nag_packs(app)
    stack = Stack(app, "NativeMonitorTest", env=Environment(account=ACCOUNT, region=REGION))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    bucket = s3.Bucket.from_bucket_name(stack, "Inference", BUCKET)
    parameter = CfnParameter(stack, "PackageArn", type="String", default="")
    condition = CfnCondition(stack, "Deployed", expression=Fn.condition_not(Fn.condition_equals(parameter.value_as_string, "")))
    props = dict(
        name_prefix="mlops-loop-prod",
        model=model,
        endpoint_name=ENDPOINT,
        condition=condition,
        inference_bucket=bucket,
        key=key,
        schedule="cron(0 3 * * ? *)",
        instance_type="ml.m5.xlarge",
    )
    props.update(overrides)
    monitor = NativeModelMonitor(stack, "NativeMonitor", **props)
    return app, stack, monitor


@dataclass
class Synth:
    outdir: Path
    template_path: Path
    template: dict
    monitor: NativeModelMonitor

    def of_type(self, cfn_type: str) -> dict[str, dict]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == cfn_type}

    def definitions(self) -> dict[str, dict]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] in DEFINITION_TYPES.values()}


@pytest.fixture(scope="module")
def synth(model, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir = tmp_path_factory.mktemp("native-monitor-cdk.out")
    app, stack, monitor = build(model, outdir, nag=True)
    app.synth()  # with the nag packs on, an unacknowledged finding raises here
    template_path = outdir / f"{stack.artifact_id}.template.json"
    return Synth(outdir, template_path, json.loads(template_path.read_text()), monitor)


def key_ref(synth: Synth) -> dict:
    (key_id,) = synth.of_type("AWS::KMS::Key")
    return {"Fn::GetAtt": [key_id, "Arn"]}


def spec(resource: dict, part: str) -> dict:
    """A job definition's ``<Kind><part>`` property (e.g. part='JobInput')."""
    (value,) = [v for k, v in resource["Properties"].items() if k.endswith(part) and k != "JobDefinitionName"]
    return value


def asset_json(synth: Synth, config_uri: str) -> dict:
    """The staged file behind an asset's S3 URL, found through the stack's asset manifest."""
    object_key = config_uri.rsplit("/", 1)[1]
    manifest = json.loads(next(synth.outdir.glob("*.assets.json")).read_text())
    for entry in manifest["files"].values():
        if any(d["objectKey"] == object_key for d in entry["destinations"].values()):
            return json.loads((synth.outdir / entry["source"]["path"]).read_text())
    raise AssertionError(f"no asset with object key {object_key}")


# ------------------------------------------------------------------ resources
def test_four_job_definitions_and_four_schedules_all_conditional(synth: Synth) -> None:
    definitions = synth.definitions()
    schedules = synth.of_type("AWS::SageMaker::MonitoringSchedule")
    assert sorted(v["Type"] for v in definitions.values()) == sorted(DEFINITION_TYPES.values())
    assert len(schedules) == 4
    for logical_id, resource in {**definitions, **schedules}.items():
        assert resource.get("Condition") == "Deployed", logical_id


def test_each_schedule_runs_its_own_definition_against_the_endpoint(synth: Synth) -> None:
    definitions = synth.definitions()
    by_name = {v["Properties"]["JobDefinitionName"]: (k, v["Type"]) for k, v in definitions.items()}
    seen = set()
    for logical_id, schedule in synth.of_type("AWS::SageMaker::MonitoringSchedule").items():
        config = schedule["Properties"]["MonitoringScheduleConfig"]
        definition_id, definition_type = by_name[config["MonitoringJobDefinitionName"]]
        assert DEFINITION_TYPES[config["MonitoringType"]] == definition_type, logical_id
        assert definition_id in schedule["DependsOn"], "the name is not a Ref: the order must be explicit"
        assert schedule["Properties"]["EndpointName"] == ENDPOINT
        assert config["ScheduleConfig"]["ScheduleExpression"] == "cron(0 3 ? * * *)"
        seen.add(definition_id)
    assert seen == set(definitions)
    for resource in definitions.values():
        assert spec(resource, "JobInput")["EndpointInput"]["EndpointName"] == ENDPOINT


def test_outputs_and_volumes_use_the_key_and_traffic_is_encrypted(synth: Synth) -> None:
    for logical_id, resource in synth.definitions().items():
        props = resource["Properties"]
        output = spec(resource, "JobOutputConfig")
        assert output["KmsKeyId"] == key_ref(synth), logical_id
        assert props["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"] == key_ref(synth), logical_id
        assert props["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True, logical_id
        # Only the SHAP job calls the endpoint; every other job runs without network access.
        isolated = resource["Type"] != DEFINITION_TYPES["ModelExplainability"]
        assert props["NetworkConfig"]["EnableNetworkIsolation"] is isolated, logical_id
        (destination,) = output["MonitoringOutputs"]
        kind = re.sub(r"(?<!^)(?=[A-Z])", "-", resource["Type"].split("::")[-1].removesuffix("JobDefinition")).lower()
        assert destination["S3Output"]["S3Uri"] == f"s3://{BUCKET}/monitor-native/churn/{kind}/"
        assert props["StoppingCondition"]["MaxRuntimeInSeconds"] <= 86_400


def test_model_quality_is_binary_classification_on_the_served_score(synth: Synth, model) -> None:
    (quality,) = synth.of_type("AWS::SageMaker::ModelQualityJobDefinition").values()
    props = quality["Properties"]
    assert props["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    endpoint_input = props["ModelQualityJobInput"]["EndpointInput"]
    assert endpoint_input["ProbabilityAttribute"] == "predictions[0].score"
    assert endpoint_input["ProbabilityThresholdAttribute"] == model.decision_policy.fixed_threshold
    assert props["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"] == f"s3://{BUCKET}/labels/churn/"
    # Daily schedule: the window is the day that ended the model's label delay ago.
    delay = model.label_delay_days * 24
    assert (endpoint_input["StartTimeOffset"], endpoint_input["EndTimeOffset"]) == (f"-PT{delay + 24}H", f"-PT{delay}H")


def test_images_come_from_the_sdk_tables_for_the_region(synth: Synth) -> None:
    images = {r["Type"]: spec(r, "AppSpecification")["ImageUri"] for r in synth.definitions().values()}
    for cfn_type, image in images.items():
        expected = "sagemaker-clarify-processing" if "Bias" in cfn_type or "Explainability" in cfn_type else "sagemaker-model-monitor-analyzer"
        assert re.fullmatch(rf"\d{{12}}\.dkr\.ecr\.{REGION}\.amazonaws\.com/{expected}(:[\w.]+)?", image), image


# ------------------------------------------------------------------ analysis configs
def test_bias_analysis_config_asset_names_facet_label_and_headers(synth: Synth, model) -> None:
    (bias,) = synth.of_type("AWS::SageMaker::ModelBiasJobDefinition").values()
    config = asset_json(synth, bias["Properties"]["ModelBiasAppSpecification"]["ConfigUri"])
    assert config["label"] == model.target == "churned"
    assert config["label_values_or_threshold"] == [1]
    assert config["facet"] == [{"name_or_index": model.sensitive_attribute}]
    assert config["headers"] == [*model.features, model.sensitive_attribute, model.target]
    features = bias["Properties"]["ModelBiasJobInput"]["EndpointInput"]["FeaturesAttribute"]
    assert features == f"instances[0].[{', '.join([*model.features, model.sensitive_attribute])}]"


def test_explainability_analysis_config_asset_calls_the_endpoint_with_csv_features(synth: Synth, model) -> None:
    (explain,) = synth.of_type("AWS::SageMaker::ModelExplainabilityJobDefinition").values()
    config = asset_json(synth, explain["Properties"]["ModelExplainabilityAppSpecification"]["ConfigUri"])
    assert config["headers"] == list(model.features)
    assert config["predictor"] == {"endpoint_name": ENDPOINT, "content_type": "text/csv", "accept_type": "text/csv"}
    assert config["methods"]["shap"]["agg_method"] == "mean_abs"


def test_analysis_configs_are_kept_in_the_sdk_cache_and_a_warm_lookup_runs_no_sdk(model, tmp_path, monkeypatch) -> None:
    """GIVEN an empty SDK cache WHEN a model's analysis configs are asked for twice, the second time as a new process
    asks (nothing in memory) with the SDK unavailable THEN one cache entry answers both alike: a synth with a warm cache
    does not import the SDK for them (about 3 CPU-s)."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(content_cache, "_CACHES", {})
    cold = native_model_monitor.analysis_configs(model, ENDPOINT, REGION)
    assert len(list((tmp_path / "cache").glob("clarify-analysis-configs-*.json"))) == 1
    monkeypatch.setattr(content_cache, "_CACHES", {})

    def no_sdk(*args, **kwargs):
        raise AssertionError("the SDK ran on a warm cache")

    monkeypatch.setattr(sdk_offline, "offline_sdk", no_sdk)
    assert native_model_monitor.analysis_configs(model, ENDPOINT, REGION) == cold
    other = native_model_monitor.analysis_configs  # another endpoint is another entry: the SDK is asked
    with pytest.raises(AssertionError, match="the SDK ran on a warm cache"):
        other(model, "mlops-loop-dev-churn", REGION)


# ------------------------------------------------------------------ IAM
def role_statements(synth: Synth) -> list[dict]:
    (policy,) = synth.of_type("AWS::IAM::ManagedPolicy").values()
    (role_id,) = synth.of_type("AWS::IAM::Role")
    assert policy["Properties"]["Roles"] == [{"Ref": role_id}]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def test_the_role_trusts_sagemaker_without_a_source_condition_sagemaker_documents_none_for_model_monitor(synth: Synth) -> None:
    """GIVEN the native monitor WHEN its role's trust is read THEN it names SageMaker and no aws:SourceArn: the
    SageMaker Developer Guide documents none for the jobs a monitoring schedule starts, and a wrong one stops them."""
    (role,) = synth.of_type("AWS::IAM::Role").values()
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}]


def test_role_policy_has_no_action_wildcards_and_only_concrete_prefixes(synth: Synth) -> None:
    statements = role_statements(synth)
    object_arns = []
    for statement in statements:
        assert not [a for a in as_list(statement["Action"]) if "*" in a], statement["Sid"]
        for resource in as_list(statement["Resource"]):
            if isinstance(resource, str) and resource.startswith("arn:aws:s3:::") and "/" in resource:
                object_arns.append(resource)
    prefixes = sorted(a.removeprefix(f"arn:aws:s3:::{BUCKET}/") for a in object_arns if BUCKET in a)
    assert prefixes == ["capture/churn/*", "labels/churn/*", "monitor-native/churn/*"]
    writes = {s["Sid"]: s for s in statements if "s3:PutObject" in as_list(s["Action"])}
    assert [s["Resource"] for s in writes.values()] == [f"arn:aws:s3:::{BUCKET}/monitor-native/churn/*"]
    configs = [a for a in object_arns if BUCKET not in a]
    assert len(configs) == 2 and not [a for a in configs if "*" in a], "analysis configs are read by exact key"


def test_role_wildcard_resources_are_only_where_iam_has_no_resource_arns(synth: Synth) -> None:
    statements = {s["Sid"]: s for s in role_statements(synth)}
    star = {sid for sid, s in statements.items() if "*" in as_list(s["Resource"])}
    assert star == {"PullImageToken", "Metrics"}
    patterns = statements["Metrics"]["Condition"]["StringLike"]["cloudwatch:namespace"]
    documented = ["/aws/sagemaker/Endpoints/data-metrics", "/aws/sagemaker/Endpoint/data-metrics",
                  "/aws/sagemaker/Endpoints/model-metrics", "aws/sagemaker/Endpoints/bias-metrics",
                  "aws/sagemaker/Endpoints/explainability-metrics"]
    assert all(any(fnmatch.fnmatchcase(n, p) for p in patterns) for n in documented), patterns
    assert not any(fnmatch.fnmatchcase(n, p) for p in patterns for n in ("AWS/SageMaker", "mlops-loop/monitor"))
    assert statements["ExplainWithEndpoint"]["Resource"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
    repositories = sorted(r.rsplit("/", 1)[1] for r in statements["PullMonitorImages"]["Resource"])
    assert repositories == ["sagemaker-clarify-processing", "sagemaker-model-monitor-analyzer"]


# ------------------------------------------------------------------ checkers
def test_cdk_nag_passes_and_every_acknowledgement_has_a_reason(synth: Synth) -> None:
    # The fixture's app.synth() ran both packs; a clean report has no plugin findings.
    assert json.loads((synth.outdir / "validation-report.json").read_text())["pluginReports"] == []
    found = {rule: reason for construct in synth.monitor.node.find_all() for rule, reason in acknowledged(construct).items()}
    assert any("AwsSolutions-IAM5[Resource::*]" in rule for rule in found), found
    assert all(len(reason.strip()) >= 20 for reason in found.values())


def test_cdk_nag_fails_the_synth_on_an_unacknowledged_wildcard(model, tmp_path: Path) -> None:
    app, _, monitor = build(model, tmp_path, nag=True)
    # Inside the monitor's Access, where [Resource::*] is acknowledged, past AccessPolicy's refusal of an
    # unexplained wildcard: an acknowledgement covers its exact finding, not everything under its scope.
    iam.ManagedPolicy(monitor.node.find_child("Access"), "Rogue", roles=[monitor.role],
                      statements=[iam.PolicyStatement(actions=["s3:Get*"], resources=["*"])])
    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed.*AwsSolutions-IAM5\[Action::s3:Get\*\]"):
        app.synth()


def test_cfn_lint_reports_no_errors_or_warnings(synth: Synth) -> None:
    result = lint_templates([synth.template_path], cache=lint_cache())
    assert (result.errors, result.warnings) == (0, 0), "\n".join(result.lines)


# ------------------------------------------------------------------ schedules and bad input
@pytest.mark.parametrize(
    ("eventbridge", "expression", "period"),
    [
        ("cron(0 3 * * ? *)", "cron(0 3 ? * * *)", 86_400),
        ("cron(0 * * * ? *)", "cron(0 * ? * * *)", 3600),
        ("cron(0 2/6 ? * * *)", "cron(0 2/6 ? * * *)", 6 * 3600),
        ("cron(0 00 ? * * *)", "cron(0 0 ? * * *)", 86_400),
    ],
)
def test_eventbridge_cron_becomes_a_model_monitor_schedule(eventbridge: str, expression: str, period: int) -> None:
    schedule = monitoring_schedule(eventbridge)
    assert (schedule.expression, schedule.period_seconds) == (expression, period)


@pytest.mark.parametrize(
    "bad",
    ["rate(1 day)", "cron(30 3 * * ? *)", "cron(0 4 ? * SUN *)", "cron(0 3 1 * ? *)", "cron(0 3 * 1 ? *)",
     "cron(0 3 * * ? 2027)", "cron(0 25 * * ? *)", "cron(0 */2 * * ? *)", "cron(0 1,13 * * ? *)", ""],
)
def test_a_schedule_model_monitor_cannot_run_is_refused_saying_what_is_allowed(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^'.*'.*allowed: "):
        monitoring_schedule(bad)


def test_bad_schedule_fails_at_construction(model) -> None:
    with pytest.raises(ValueError, match="schedule"):
        build(model, schedule="cron(15 3 * * ? *)")


def _windows(stack: Stack) -> dict[str, tuple[str, str, float]]:
    """(StartTimeOffset, EndTimeOffset, ProbabilityThresholdAttribute) of the model-quality and bias definitions."""
    found = {}
    for resource in template_of(stack)["Resources"].values():
        for kind, key in (("ModelQuality", "ModelQualityJobInput"), ("ModelBias", "ModelBiasJobInput")):
            if resource["Type"] == DEFINITION_TYPES[kind]:
                e = resource["Properties"][key]["EndpointInput"]
                found[kind] = (e["StartTimeOffset"], e["EndTimeOffset"], e["ProbabilityThresholdAttribute"])
    return found


@pytest.mark.parametrize("delay_days,schedule,start,end", [
    (30, "cron(0 3 * * ? *)", "-PT744H", "-PT720H"),      # a daily run judges the day that ended 30 days ago
    (365, "cron(0 3 * * ? *)", "-PT8784H", "-PT8760H"),   # a year: past the 720 hours once allowed
    (3650, "cron(0 3 * * ? *)", "-PT87624H", "-PT87600H"),  # the config's longest delay still fits 15 characters
    (0, "cron(0 * * * ? *)", "-PT1H", "-PT0H"),           # labels at once, hourly runs: the hour just ended
    (2, "cron(0 0/6 * * ? *)", "-PT54H", "-PT48H"),       # every 6 hours: the 6 hours that ended 2 days ago
])
def test_model_quality_and_bias_judge_the_period_that_ended_the_model_s_label_delay_ago(
        model, delay_days: int, schedule: str, start: str, end: str) -> None:
    """GIVEN a model whose labels come ``label_delay_days`` after the request WHEN its native monitor is built with
    no explicit delay THEN model quality and bias read the schedule period that ended that many days ago."""
    delayed = model.model_copy(update={"label_delay_days": delay_days})
    _, stack, monitor = build(delayed, schedule=schedule)
    assert monitor.window == (start, end)
    assert {kind: window[:2] for kind, window in _windows(stack).items()} == {"ModelQuality": (start, end),
                                                                              "ModelBias": (start, end)}


def test_an_explicit_label_delay_in_hours_overrides_the_model_s(model) -> None:
    _, stack, _ = build(model.model_copy(update={"label_delay_days": 30}), label_delay_hours=36)
    assert {window[:2] for window in _windows(stack).values()} == {("-PT60H", "-PT36H")}


@pytest.mark.parametrize("decision,threshold", [(None, 0.5), ({"policy": "fixed"}, 0.5),
                                                ({"policy": "fixed", "threshold": 0.3}, 0.3)])
def test_model_quality_and_bias_decide_at_the_model_s_fixed_threshold(model, decision, threshold: float) -> None:
    _, stack, monitor = build(model.model_copy(update={"decision": decision}))
    assert monitor.probability_threshold == threshold
    assert {window[2] for window in _windows(stack).values()} == {threshold}


@pytest.mark.parametrize("decision", [{"policy": "max_f_beta", "beta": 2}, {"policy": "target_recall", "target": 0.8},
                                      {"policy": "min_expected_cost"}])
def test_a_threshold_only_training_chooses_is_refused(model, decision) -> None:
    """The threshold is chosen per trained version and stored in its artefact; a job definition is made once."""
    with pytest.raises(ValueError) as refused:
        build(model.model_copy(update={"decision": decision}))
    assert str(refused.value) == (
        f"model {model.name!r}: decision.policy {decision['policy']!r} chooses the decision threshold each time a version "
        "trains (stored in its artefact), but native Model Monitor's model-quality and bias jobs compare the score "
        "with one threshold written into their job definitions at deploy, so they would judge decisions the endpoint "
        "does not make; use decision policy 'fixed' or leave this model out of native monitoring")


@pytest.mark.parametrize("hours,offset", [(-1, "-PT23H"), (10**12, "-PT1000000000024H")])
def test_a_delay_whose_offset_model_monitor_cannot_take_is_refused(model, hours: int, offset: str) -> None:
    with pytest.raises(ValueError) as refused:
        build(model, label_delay_hours=hours)
    assert str(refused.value) == (f"label_delay_hours: {hours}; allowed: 0 up to the delay whose StartTimeOffset "
                                  f"'{offset}' fits Model Monitor's 15 characters")


def test_a_changed_label_delay_replaces_only_the_model_quality_and_bias_definitions(model) -> None:
    """Every definition property is create-only: a new window gives those two definitions a new name (CloudFormation
    replaces them and updates their schedules), and the template diff shows the change."""
    _, _, month = build(model.model_copy(update={"label_delay_days": 30}))
    _, _, two_months = build(model.model_copy(update={"label_delay_days": 60}))
    changed = {k for k, d in month.job_definitions.items()
               if d.job_definition_name != two_months.job_definitions[k].job_definition_name}
    assert changed == {"model-quality", "model-bias"}


def template_of(stack: Stack) -> dict:
    return Template.from_stack(stack).to_json()


def definitions_of(template: dict) -> list[dict]:
    return [r["Properties"] | {"Type": r["Type"], "Metadata": r.get("Metadata", {})}
            for r in template["Resources"].values() if r["Type"] in DEFINITION_TYPES.values()]


def processing_types(region: str) -> set[str]:
    import cfnlint.data.schemas.extensions.aws_sagemaker_processing as tables

    return set(json.loads((Path(tables.__file__).parent / "instancetype_enum.json").read_text())[region]["enum"])


def test_hourly_schedule_stops_each_run_within_the_hour(model) -> None:
    _, stack, monitor = build(model, schedule="cron(0 * * * ? *)")
    assert monitor.schedule.expression == "cron(0 * ? * * *)"
    template = template_of(stack)
    schedules = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::MonitoringSchedule"]
    assert {s["Properties"]["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] for s in schedules} == {
        "cron(0 * ? * * *)"
    }
    assert {d["StoppingCondition"]["MaxRuntimeInSeconds"] for d in definitions_of(template)} == {3600}
    with pytest.raises(ValueError, match="^max_runtime_seconds: 7200 must be 60-3600"):
        build(model, schedule="cron(0 * * * ? *)", max_runtime_seconds=7200)


def test_local_nvme_instance_type_omits_the_volume_key_and_says_why(model) -> None:
    # A local-NVMe type that runs processing jobs in the region (cfn-lint's table, from the pricing API).
    nvme = next(n for n, t in sorted(INSTANCE_TYPES.items()) if t.local_nvme and n in processing_types(REGION))
    _, stack, _ = build(model, instance_type=nvme)
    definitions = definitions_of(template_of(stack))
    assert len(definitions) == 4
    for definition in definitions:
        cluster = definition["JobResources"]["ClusterConfig"]
        assert cluster["InstanceType"] == nvme
        assert "VolumeKmsKeyId" not in cluster
        output = next(v for k, v in definition.items() if k.endswith("JobOutputConfig"))
        assert "Fn::GetAtt" in output["KmsKeyId"], "outputs stay encrypted with the key"
        (skip,) = definition["Metadata"]["checkov"]["skip"]
        assert skip["id"] == "CKV_AWS_368" and "NVMe" in skip["comment"]


@pytest.mark.parametrize("instance_type", ["ml.inf2.xlarge", "ml.p9.huge"])
def test_instance_types_that_cannot_run_processing_are_rejected(model, instance_type: str) -> None:
    with pytest.raises(ValueError, match=rf"^instance_type: '{re.escape(instance_type)}' .*allowed: "):
        build(model, instance_type=instance_type)


def test_endpoint_name_must_be_a_plain_string(model) -> None:
    with pytest.raises(ValueError, match="^endpoint_name: "):
        build(model, endpoint_name=Fn.ref("SomeEndpointName"))


def test_a_changed_definition_gets_a_new_name_and_schedules_keep_theirs(model) -> None:
    _, _, daily = build(model)
    _, _, larger = build(model, instance_type="ml.m5.2xlarge")
    names = lambda m: {k: d.job_definition_name for k, d in m.job_definitions.items()}  # noqa: E731
    assert all(a != b for a, b in zip(names(daily).values(), names(larger).values()))
    assert {k: s.monitoring_schedule_name for k, s in daily.schedules.items()} == {
        k: s.monitoring_schedule_name for k, s in larger.schedules.items()
    }
    for name in [*names(daily).values(), *(s.monitoring_schedule_name for s in daily.schedules.values())]:
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", name) and len(name) <= 63, name


def test_an_environment_agnostic_stack_is_rejected(model) -> None:
    app = new_app(bare_outdir())
    stack = Stack(app, "NoRegion")
    condition = CfnCondition(stack, "Deployed", expression=Fn.condition_equals("a", "a"))
    with pytest.raises(ValueError, match="no concrete region"):
        NativeModelMonitor(
            stack, "NativeMonitor", name_prefix="p", model=model, endpoint_name=ENDPOINT,
            condition=condition, inference_bucket=s3.Bucket.from_bucket_name(stack, "B", BUCKET),
            key=kms.Key(stack, "Key", enable_key_rotation=True), schedule="cron(0 3 * * ? *)",
            instance_type="ml.m5.xlarge",
        )


def test_wait_for_makes_only_the_conditional_resources_depend_on_the_endpoint(model) -> None:
    from aws_cdk import aws_sagemaker as sagemaker

    _, stack, monitor = build(model)
    endpoint = sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_config_name="config", endpoint_name=ENDPOINT)
    endpoint.cfn_options.condition = monitor.schedules["data-quality"].cfn_options.condition
    monitor.wait_for(endpoint)
    resources = template_of(stack)["Resources"]
    (endpoint_id,) = [k for k, v in resources.items() if v["Type"] == "AWS::SageMaker::Endpoint"]
    waiting = {k for k, v in resources.items() if endpoint_id in v.get("DependsOn", [])}
    assert waiting == {k for k, v in resources.items() if v["Type"].startswith("AWS::SageMaker::") and v.get("Condition")
                       and k != endpoint_id}
    assert len(waiting) == 8


def test_long_prefixes_still_give_valid_distinct_names(model) -> None:
    long_model = model.model_copy(update={"name": "a-twenty-char-modelx"})
    _, _, monitor = build(long_model, name_prefix="a-twenty-char-projec-a-twenty-char-envirn")
    names = [s.monitoring_schedule_name for s in monitor.schedules.values()]
    names += [d.job_definition_name for d in monitor.job_definitions.values()]
    assert len(set(names)) == 8
    for name in names:
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", name) and len(name) <= 63, name


def test_assets_can_live_in_another_stack_so_the_monitor_stack_publishes_none(model, tmp_path: Path) -> None:
    app = new_app(str(tmp_path))
    env = Environment(account=ACCOUNT, region=REGION)
    storage = Stack(app, "Storage", env=env)
    CfnWaitConditionHandle(storage, "Placeholder")  # a stack needs one resource
    _, stack, monitor = build(model, app=app, asset_scope=storage)
    stack.add_stack_dependency(storage)
    app.synth()
    manifest = lambda s: json.loads((tmp_path / f"{s.artifact_id}.assets.json").read_text())["files"]  # noqa: E731
    assert [f["source"]["path"] for f in manifest(stack).values()] == [f"{stack.artifact_id}.template.json"]
    staged = [f["source"]["path"] for f in manifest(storage).values() if f["source"]["path"].startswith("asset.")]
    assert len(staged) == 2
    template = json.loads((tmp_path / f"{stack.artifact_id}.template.json").read_text())
    assert "Outputs" not in json.loads((tmp_path / f"{storage.artifact_id}.template.json").read_text()), "no exports"
    (bias,) = [r for r in template["Resources"].values() if r["Type"] == DEFINITION_TYPES["ModelBias"]]
    uri = bias["Properties"]["ModelBiasAppSpecification"]["ConfigUri"]
    assert uri.endswith(".json") and any(uri.endswith(p.removeprefix("asset.")) for p in staged)
    assert lint_templates([tmp_path / f"{stack.artifact_id}.template.json"], cache=lint_cache()).errors == 0


# ------------------------------------------------------------------ the environment's VPC
def _own_model():
    """A binary model declared here (tests.support.construct_configs), not one of the sample's."""
    return parse_config(returns_config(), source="native monitor network test").models["returns"]


def _template_and_statements(stack: Stack) -> tuple[dict, dict[str, dict]]:
    template = Template.from_stack(stack).to_json()
    (policy,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::ManagedPolicy"]
    return template, {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_with_a_network_every_monitoring_job_runs_in_the_vpc_and_the_role_may_manage_the_interfaces():
    _, stack, _ = build(_own_model(), network=network_config())
    template, statements = _template_and_statements(stack)
    definitions = {k: v for k, v in template["Resources"].items() if v["Type"] in DEFINITION_TYPES.values()}
    assert len(definitions) == 4
    assert {k: d["Properties"]["NetworkConfig"]["VpcConfig"] for k, d in definitions.items()} == {
        k: vpc_config_of_network() for k in definitions}
    assert_sagemaker_eni_statements(statements, ACCOUNT, REGION)


def test_without_a_network_no_monitoring_job_has_a_vpc_and_the_role_no_interface_permissions():
    _, stack, _ = build(_own_model())
    template, statements = _template_and_statements(stack)
    assert not [k for k, v in template["Resources"].items()
                if v["Type"] in DEFINITION_TYPES.values() and "VpcConfig" in v["Properties"]["NetworkConfig"]]
    assert not vpc_statements_of(statements)


# ------------------------------------------------------------------ failed jobs tell people
def _failures(tmp_path: Path, **overrides: Any) -> tuple[dict, dict, NativeModelMonitor, Stack]:
    """GIVEN a bare monitor stack and a second stack (as the Operations stack is) with a topic and a notification queue
    WHEN the monitor's failed jobs notify people from the second stack; returns both templates, the monitor and the
    second stack."""
    app = new_app(str(tmp_path))
    _, stack, monitor = build(_own_model(), app=app, **overrides)
    ops = Stack(app, "Ops", env=Environment(account=ACCOUNT, region=REGION))
    ops.add_stack_dependency(stack)
    topic, queue = sns.Topic(ops, "Topic"), sqs.Queue(ops, "Notices")
    notify_native_monitor_failures(ops, "ReturnsNativeMonitorFailures", monitor=monitor,
                                   what="mlops-loop-prod native Model Monitor", topic=topic, dead_letter_queue=queue)
    app.synth()
    read = lambda s: json.loads((tmp_path / f"{s.artifact_id}.template.json").read_text())  # noqa: E731
    return read(stack), read(ops), monitor, ops


def test_the_four_jobs_run_as_one_role_of_fixed_name(tmp_path: Path) -> None:
    """GIVEN the native monitor WHEN synthesized THEN its role has the fixed name <prefix>-<model>-native-monitor and
    every job definition runs as it (a failure rule in another stack can name the role without an export)."""
    monitor_template, _, monitor, _ = _failures(tmp_path)
    ((role_id, role),) = [(k, v) for k, v in monitor_template["Resources"].items() if v["Type"] == "AWS::IAM::Role"]
    assert monitor.role_name == role["Properties"]["RoleName"] == "mlops-loop-prod-returns-native-monitor"
    definitions = [v for v in monitor_template["Resources"].values() if v["Type"] in DEFINITION_TYPES.values()]
    assert [d["Properties"]["RoleArn"] for d in definitions] == [{"Fn::GetAtt": [role_id, "Arn"]}] * 4
    assert list(monitor.schedule_names.values()) == [
        f"mlops-loop-prod-returns-{short}" for short in ("dq", "mq", "bias", "expl")]


def test_a_failed_or_stopped_job_run_as_the_monitor_role_tells_people_naming_model_endpoint_and_schedules(
        tmp_path: Path) -> None:
    """GIVEN the monitor and a rule in another stack WHEN synthesized THEN the rule matches SageMaker's processing job
    event of jobs run as the monitor's role (RoleArn: only its four schedules use it), Failed or Stopped, publishes to
    the topic with the notification queue as dead-letter queue, and sends one message naming the job, its status, the
    failure reason, the model, the endpoint and the four schedules, with the commands that show the job's schedule,
    its logs and the endpoint's failed runs; the second stack imports nothing from the monitor's."""
    _, ops_template, monitor, ops = _failures(tmp_path)
    ((rule_id, rule),) = [(k, v) for k, v in ops_template["Resources"].items() if v["Type"] == "AWS::Events::Rule"]
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Processing Job State Change"],
        "detail": {"RoleArn": [f"arn:aws:iam::{ACCOUNT}:role/mlops-loop-prod-returns-native-monitor"],
                   "ProcessingJobStatus": ["Failed", "Stopped"]},
    }
    (target,) = rule["Properties"]["Targets"]
    ids = {v["Type"]: k for k, v in ops_template["Resources"].items()}
    assert target["Arn"] == {"Ref": ids["AWS::SNS::Topic"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [ids["AWS::SQS::Queue"], "Arn"]}}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail-ProcessingJobName": "$.detail.ProcessingJobName",
                                            "detail-ProcessingJobStatus": "$.detail.ProcessingJobStatus",
                                            "detail-FailureReason": "$.detail.FailureReason"}
    assert transformer["InputTemplate"] == (
        '"mlops-loop-prod native Model Monitor job <detail-ProcessingJobName> ended <detail-ProcessingJobStatus>: '
        f"<detail-FailureReason>. Model returns, endpoint {ENDPOINT}, schedules mlops-loop-prod-returns-dq, "
        "mlops-loop-prod-returns-mq, mlops-loop-prod-returns-bias, mlops-loop-prod-returns-expl. Schedule of this job: "
        "aws sagemaker describe-processing-job --processing-job-name <detail-ProcessingJobName> --query "
        "MonitoringScheduleArn --region eu-west-1. Logs: aws logs tail /aws/sagemaker/ProcessingJobs "
        "--log-stream-name-prefix <detail-ProcessingJobName>/ --since 2d --region eu-west-1. Failed runs: aws sagemaker "
        f'list-monitoring-executions --endpoint-name {ENDPOINT} --status-equals Failed --region eu-west-1"'
    )
    (publish,) = [s for r in ops_template["Resources"].values() if r["Type"] == "AWS::SNS::TopicPolicy"
                  for s in r["Properties"]["PolicyDocument"]["Statement"]]
    assert publish["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}
    assert "Fn::ImportValue" not in json.dumps(ops_template)
    assert lint_templates([tmp_path / f"{ops.artifact_id}.template.json"], cache=lint_cache()).errors == 0


def test_a_long_name_gives_a_bounded_role_name_the_rule_matches(tmp_path: Path) -> None:
    """GIVEN a prefix and model that make <prefix>-<model>-native-monitor longer than 63 characters WHEN synthesized
    THEN the role name is cut and ends in a hash (IAM allows 64), and the rule names that same role."""
    prefix = "a-twenty-char-projec-a-twenty-char-envirn"
    monitor_template, ops_template, monitor, _ = _failures(tmp_path, name_prefix=prefix)
    (role,) = [v for v in monitor_template["Resources"].values() if v["Type"] == "AWS::IAM::Role"]
    assert role["Properties"]["RoleName"] == monitor.role_name
    assert len(monitor.role_name) == 63
    assert re.fullmatch(rf"{prefix}-returns-nati-[0-9a-f]{{8}}", monitor.role_name)
    (rule,) = [v for v in ops_template["Resources"].values() if v["Type"] == "AWS::Events::Rule"]
    assert rule["Properties"]["EventPattern"]["detail"]["RoleArn"] == [f"arn:aws:iam::{ACCOUNT}:role/{monitor.role_name}"]


def test_a_renamed_role_gives_every_definition_a_new_name_and_the_schedules_keep_theirs(monkeypatch) -> None:
    """GIVEN the monitor built twice, the second time with its role under another name (as when the role became
    fixed-name: CloudFormation replaces it) WHEN the definitions are read THEN each has a new name (their RoleArn is
    create-only, and a replacement under the same name would fail) and the schedules keep theirs."""
    model = _own_model()
    _, _, before = build(model)
    monkeypatch.setattr(native_model_monitor, "monitor_role_name", lambda prefix, name: f"{prefix}-{name}-renamed")
    _, _, after = build(model)
    assert after.role_name == "mlops-loop-prod-returns-renamed"
    names = lambda m: [d.job_definition_name for d in m.job_definitions.values()]  # noqa: E731
    assert not set(names(before)) & set(names(after))
    assert after.schedule_names == before.schedule_names
