"""Multi-model endpoints: the shared fleet, its per-model TargetModel switch, deploy wiring, alarms, cost.

Session fixture ``pooled`` (conftest): a config whose ``pooled`` environment serves ``churn`` on its own real-time
endpoint, ``credit-risk`` and ``small-churn`` on the multi-model endpoint ``shared`` (c5, autoscaling
2-5) and ``solo-churn`` alone on ``solo`` (m5d with local NVMe, fixed size, no model cache, no
capture). It declares a third endpoint no model uses. Only that environment is synthesized, with the
nag packs on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlops_loop.packaging import MME_BOOTSTRAP, single_file_tarball
from pipeline_code.core.images import XGBOOST_IMAGE_VERSION
from pipeline_code.core.integrity import ledger_model_prefix, run_record_model_prefix
from mlops_loop.tools.cloud_assembly import nag_violations, stacks
from mlops_loop.tools.cost_floor import floor_report
from mlops_loop.tools.lint import lint_cache, lint_stacks
from tests.support.templates import flatten, join_string, listify, of_type, role_statements, statement_actions, writable_prefixes

from tests.support.scenarios import POOLED_ACCOUNT as ACCOUNT
from tests.support.scenarios import POOLED_ENV as ENV
from tests.support.scenarios import POOLED_MODELS as MODELS

PREFIX = f"mlops-loop-{ENV}"
SHARED, SOLO = f"{PREFIX}-mme-shared", f"{PREFIX}-mme-solo"
ARTIFACTS = f"{PREFIX}-artifacts-{ACCOUNT}-eu-west-1"
INFERENCE = f"{PREFIX}-inference-{ACCOUNT}-eu-west-1"


def _one(template: dict, cfn_type: str, pattern: str) -> tuple[str, dict]:
    (found,) = [(k, v) for k, v in of_type(template, cfn_type).items() if re.match(pattern, k)]
    return found


def _evaluate(value, parameters: dict[str, str]):
    """Resolve Ref / Fn::Split / Fn::Select / Fn::Join over literal parameter values (enough for the TargetModel)."""
    if isinstance(value, str):
        return value
    (fn, arg), = value.items()
    if fn == "Ref":
        return parameters[arg]
    if fn == "Fn::Split":
        return _evaluate(arg[1], parameters).split(arg[0])
    if fn == "Fn::Select":
        return _evaluate(arg[1], parameters)[arg[0]]
    if fn == "Fn::Join":
        return arg[0].join(_evaluate(part, parameters) for part in arg[1])
    raise AssertionError(f"unexpected intrinsic {fn}")


# --------------------------------------------------------------------------------------------
# Checkers and the shape of the stack
# --------------------------------------------------------------------------------------------
def test_pooled_environment_passes_cfn_lint_and_the_nag_packs(pooled):
    assert nag_violations(pooled.outdir) == []
    result = lint_stacks(stacks(pooled.outdir), cache=lint_cache())
    assert (result.errors, result.warnings) == (0, 0), "\n".join(result.lines)


def test_one_endpoint_per_used_multi_model_endpoint_and_none_per_member(pooled):
    endpoints = {v["Properties"]["EndpointName"] for v in of_type(pooled.serving, "AWS::SageMaker::Endpoint").values()}
    # churn keeps its own endpoint; the declared-but-unused endpoint costs nothing and does not exist.
    assert endpoints == {f"{PREFIX}-churn", SHARED, SOLO}
    packaged = [v for v in of_type(pooled.serving, "AWS::SageMaker::Model").values()
                if "ModelPackageName" in json.dumps(v["Properties"])]
    assert len(packaged) == 1, "only churn's single-model endpoint runs a model package directly"
    # Every model, whatever its mode, still has its version parameter.
    assert {f"{p}ModelPackageArn" for p in ("Churn", "CreditRisk", "SmallChurn", "SoloChurn")} <= set(pooled.serving["Parameters"])


def test_shared_fleet_exists_once_any_member_is_approved(pooled):
    conditions = pooled.serving["Conditions"]
    (any_member,) = [k for k in conditions if k.startswith("SharedMultiModelAnyMemberDeployed")]
    assert conditions[any_member] == {"Fn::Or": [{"Condition": "CreditRiskDeployed"}, {"Condition": "SmallChurnDeployed"}]}
    shared = {k: v for k, v in pooled.serving["Resources"].items() if k.startswith("SharedMultiModel")}
    gated = {k: v for k, v in shared.items() if v["Type"] in ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig",
             "AWS::SageMaker::Endpoint", "AWS::ApplicationAutoScaling::ScalableTarget",
             "AWS::ApplicationAutoScaling::ScalingPolicy", "AWS::CloudWatch::Alarm")}
    # Model, config, endpoint, scalable target, its two scaling policies (target tracking, idle scale-in), the three
    # rollback alarms and the idle scale-in alarm.
    assert len(gated) == 10
    assert {v.get("Condition") for v in gated.values()} == {any_member}
    # A single-member endpoint uses that member's own condition (Fn::Or needs two or more).
    solo = [v for k, v in pooled.serving["Resources"].items() if k.startswith("SoloMultiModel") and v["Type"].startswith("AWS::SageMaker::")]
    assert {v.get("Condition") for v in solo} == {"SoloChurnDeployed"}


def test_multi_model_container_loads_staged_versions_with_the_bootstrap(pooled):
    _, model = _one(pooled.serving, "AWS::SageMaker::Model", r"^SharedMultiModel[0-9A-F]{8}$")
    container = model["Properties"]["PrimaryContainer"]
    assert container["Mode"] == "MultiModel"
    assert container["ModelDataUrl"] == f"s3://{ARTIFACTS}/mme/{SHARED}/"
    assert re.fullmatch(rf"\d+\.dkr\.ecr\.eu-west-1\.amazonaws\.com/sagemaker-xgboost:{re.escape(XGBOOST_IMAGE_VERSION)}",
                        container["Image"])
    assert container["MultiModelConfig"] == {"ModelCacheSetting": "Enabled"}
    env = container["Environment"]
    assert env["SAGEMAKER_PROGRAM"] == "mme_entry.py" and env["SAGEMAKER_MULTI_MODEL"] == "true"
    # The bootstrap is the reproducible tarball, published by the Storage stack as a file asset.
    (asset,) = _bootstrap_assets(pooled)
    assert Path(asset["source"]["path"]).read_bytes() == single_file_tarball(MME_BOOTSTRAP)
    (destination,) = asset["destinations"].values()
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == f"s3://cdk-hnb659fds-assets-{ACCOUNT}-eu-west-1/{destination['objectKey']}"
    # Per-model self-capture: the serving code fills {model}; percentages per member.
    assert env["MLOPS_CAPTURE_S3_URI"] == f"s3://{INFERENCE}/capture/{{model}}/"
    assert json.loads(env["MLOPS_CAPTURE_PERCENT"]) == {"credit-risk": 100, "small-churn": 20}
    assert env["MLOPS_ENDPOINT_NAME"] == SHARED
    assert "DataLakeKey" in json.dumps(env["MLOPS_CAPTURE_KMS_KEY_ID"])
    assert model["Properties"]["EnableNetworkIsolation"] is False
    # solo: no capture (0%), cache disabled.
    _, solo = _one(pooled.serving, "AWS::SageMaker::Model", r"^SoloMultiModel[0-9A-F]{8}$")
    assert solo["Properties"]["PrimaryContainer"]["MultiModelConfig"] == {"ModelCacheSetting": "Disabled"}
    assert not [k for k in solo["Properties"]["PrimaryContainer"]["Environment"] if k.startswith("MLOPS_CAPTURE")]


def _asset_manifests(pooled) -> dict[str, dict]:
    """Each stack's asset manifest, with source paths made absolute (they are relative to the stage's assembly)."""
    out = {}
    for s in stacks(pooled.outdir):
        path = Path(s.template_path)
        manifest = json.loads(path.with_name(path.name.replace(".template.json", ".assets.json")).read_text())
        for entry in manifest["files"].values():
            entry["source"]["path"] = str(path.parent / entry["source"]["path"])
        out[s.artifact_id.removeprefix(ENV)] = manifest
    return out


def _bootstrap_assets(pooled) -> list[dict]:
    (storage,) = [v for k, v in _asset_manifests(pooled).items() if k.startswith("Storage")]
    return [f for f in storage["files"].values() if f["source"]["path"].endswith(".gz")]


def test_serving_stack_still_publishes_no_assets(pooled):
    """The bootstrap asset belongs to Storage, so template-only updates of Serving need no asset publishing."""
    (serving,) = [v for k, v in _asset_manifests(pooled).items() if k.startswith("Serving")]
    assert [f for f in serving["files"].values() if not f["source"]["path"].endswith(".template.json")] == []
    assert len(_bootstrap_assets(pooled)) == 1, "one bootstrap asset however many endpoints use it"


def test_fleet_size_scaling_encryption_and_rollout(pooled):
    _, config = _one(pooled.serving, "AWS::SageMaker::EndpointConfig", r"^SharedMultiModelConfig")
    (variant,) = config["Properties"]["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.xlarge", 2)
    assert "DataLakeKey" in json.dumps(config["Properties"]["KmsKeyId"])
    assert "DataCaptureConfig" not in config["Properties"], "SageMaker capture cannot tell models apart here"
    _, target = _one(pooled.serving, "AWS::ApplicationAutoScaling::ScalableTarget", r"^SharedMultiModel")
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (2, 5)
    assert target["Properties"]["ResourceId"] == f"endpoint/{SHARED}/variant/AllTraffic"
    _, endpoint = _one(pooled.serving, "AWS::SageMaker::Endpoint", r"^SharedMultiModelEndpoint")
    deployment = endpoint["Properties"]["DeploymentConfig"]
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    alarms = {k: v["Properties"]["AlarmName"] for k, v in of_type(pooled.serving, "AWS::CloudWatch::Alarm").items()
              if k.startswith("SharedMultiModel")}
    assert sorted(alarms.values()) == [f"{SHARED}-idle-scale-in", f"{SHARED}-rollout-client-errors",
                                       f"{SHARED}-rollout-errors", f"{SHARED}-rollout-latency"]
    # The idle scale-in alarm scales the fleet in; it is no rollback alarm.
    assert sorted(a["AlarmName"]["Ref"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]) == sorted(
        k for k, n in alarms.items() if "-rollout-" in n)
    # solo: fixed size, local NVMe -> no volume key, no scaling.
    _, solo_config = _one(pooled.serving, "AWS::SageMaker::EndpointConfig", r"^SoloMultiModelConfig")
    assert "KmsKeyId" not in solo_config["Properties"]
    assert not [k for k in of_type(pooled.serving, "AWS::ApplicationAutoScaling::ScalableTarget") if k.startswith("SoloMultiModel")]


@pytest.mark.parametrize("model,endpoint", [("credit-risk", SHARED), ("small-churn", SHARED), ("solo-churn", SOLO)])
def test_approved_version_becomes_the_members_target_model(pooled, model, endpoint):
    """The TargetModel parameter is derived from the approved ARN, exists only once approved and after the endpoint."""
    pascal = "".join(p.capitalize() for p in model.split("-"))
    (param_id, param), = [(k, v) for k, v in of_type(pooled.serving, "AWS::SSM::Parameter").items()
                          if v["Properties"]["Name"] == f"/{PREFIX}/serving/{model}/target-model"]
    assert param["Condition"] == f"{pascal}Deployed"
    arn = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/{PREFIX}-{model}/17"
    assert _evaluate(param["Properties"]["Value"], {f"{pascal}ModelPackageArn": arn}) == f"{model}/v17.tar.gz"
    (endpoint_id,) = [k for k, v in of_type(pooled.serving, "AWS::SageMaker::Endpoint").items()
                      if v["Properties"]["EndpointName"] == endpoint]
    assert param["DependsOn"] == [endpoint_id]
    outputs = pooled.serving["Outputs"]
    assert outputs[f"{pascal}Mode"]["Value"] == "multi_model"
    assert outputs[f"{pascal}EndpointName"]["Value"] == endpoint
    assert outputs[f"{pascal}TargetModelParameter"]["Value"] == f"/{PREFIX}/serving/{model}/target-model"
    assert outputs[f"{pascal}CaptureUri"]["Value"] == f"s3://{INFERENCE}/capture/{model}/"


def test_endpoint_role_reads_staged_models_and_the_bootstrap_and_writes_only_member_capture(pooled):
    role_id, _ = _one(pooled.serving, "AWS::IAM::Role", r"^SharedMultiModelRole")
    statements = role_statements(pooled.serving, role_id)
    reads = {flatten(r) for s in statements if "s3:GetObject" in statement_actions(s) for r in listify(s["Resource"])}
    assert f"arn:aws:s3:::{ARTIFACTS}/mme/{SHARED}/*" in reads
    assert any(r.startswith(f"arn:aws:s3:::cdk-hnb659fds-assets-{ACCOUNT}-eu-west-1/") and r.endswith(".gz") for r in reads)
    assert sorted(writable_prefixes(statements, INFERENCE)) == [f"s3://{INFERENCE}/capture/credit-risk/",
                                                                 f"s3://{INFERENCE}/capture/small-churn/"]
    assert writable_prefixes(statements, ARTIFACTS) == [], "the endpoint never writes models"


def test_deployer_may_manage_the_shared_endpoints_and_member_parameters_only(pooled):
    statements = role_statements(pooled.serving, _one(pooled.serving, "AWS::IAM::Role", r"^Deployer")[0])
    by_sid = {s["Sid"]: s for s in statements}
    assert listify(by_sid["EndpointMmeShared"]["Resource"]) == [f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/{SHARED}"]
    assert sorted(listify(by_sid["TargetModelsMmeShared"]["Resource"])) == [
        f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/{PREFIX}/serving/{m}/target-model" for m in ("credit-risk", "small-churn")
    ]
    assert "ssm:PutParameter" in statement_actions(by_sid["TargetModelsMmeShared"])
    assert listify(by_sid["EndpointMmeSolo"]["Resource"]) == [f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/{SOLO}"]


# --------------------------------------------------------------------------------------------
# Operations: deploy handler, monitors, alarms
# --------------------------------------------------------------------------------------------
def _deploy_function(pooled) -> dict:
    (fn,) = [v for k, v in of_type(pooled.operations, "AWS::Lambda::Function").items() if k.startswith("DeployOnApproval")]
    return fn


def test_deploy_handler_knows_where_to_stage_each_member(pooled):
    variables = _deploy_function(pooled)["Properties"]["Environment"]["Variables"]
    # What the handler reads: each member with the bucket and key all members share (MULTI_MODEL_SHARED) filled in.
    shared = json.loads(flatten(variables["MULTI_MODEL_SHARED"]))
    staged = {group: {**shared, **member} for group, member in json.loads(flatten(variables["MULTI_MODEL"])).items()}
    assert set(staged) == {f"{PREFIX}-{m}" for m in ("credit-risk", "small-churn", "solo-churn")}
    assert staged[f"{PREFIX}-small-churn"] == {
        "model": "small-churn", "endpoint": SHARED, "bucket": ARTIFACTS, "prefix": f"mme/{SHARED}/",
        "kms_key_id": staged[f"{PREFIX}-small-churn"]["kms_key_id"],
    }
    assert "DataLakeKey" in staged[f"{PREFIX}-solo-churn"]["kms_key_id"]
    assert staged[f"{PREFIX}-solo-churn"]["endpoint"] == SOLO


def test_deploy_handler_may_stage_without_deleting_and_invoke_only_the_shared_endpoints(pooled):
    role_ref = _deploy_function(pooled)["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = role_statements(pooled.operations, role_ref)
    writes = writable_prefixes(statements, ARTIFACTS)
    # Staging prefixes of the members, and every model's approval ledger and run records (records only: write-once by
    # bucket policy).
    assert sorted(writes) == sorted([f"s3://{ARTIFACTS}/mme/{SHARED}/credit-risk/", f"s3://{ARTIFACTS}/mme/{SHARED}/small-churn/",
                                     f"s3://{ARTIFACTS}/mme/{SOLO}/solo-churn/",
                                     *(f"s3://{ARTIFACTS}/{ledger_model_prefix(m)}" for m in MODELS),
                                     *(f"s3://{ARTIFACTS}/{run_record_model_prefix(m)}" for m in MODELS)])
    assert not [s for s in statements if "s3:DeleteObject" in statement_actions(s)]
    (invoke,) = [s for s in statements if "sagemaker:InvokeEndpoint" in statement_actions(s)]
    assert sorted(listify(invoke["Resource"])) == [f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/{e}" for e in (SHARED, SOLO)]


def test_every_member_is_monitored_from_its_own_capture_prefix(pooled):
    schedules = [json.loads(join_string(v["Properties"]["Target"]["Input"])) for k, v in of_type(pooled.operations, "AWS::Scheduler::Schedule").items()
                 if "Monitor" in k]
    arguments = [s["AppSpecification"]["ContainerArguments"] for s in schedules]
    captured = sorted(a[a.index("--capture-s3-uri") + 1] for a in arguments if "--capture-s3-uri" in a)
    assert captured == [f"s3://{INFERENCE}/capture/{m}/" for m in sorted(MODELS)]


def test_shared_endpoint_has_operational_and_model_cache_alarms(pooled):
    alarms = {v["Properties"]["AlarmName"]: v["Properties"] for v in of_type(pooled.operations, "AWS::CloudWatch::Alarm").values()}
    for name in (SHARED, SOLO):
        assert {f"{name}-{s}" for s in ("latency", "server-errors", "client-errors", "cpu", "memory", "model-loading-wait")} <= set(alarms)
    loading = alarms[f"{SHARED}-model-loading-wait"]
    assert (loading["MetricName"], loading["ExtendedStatistic"], loading["Threshold"]) == ("ModelLoadingWaitTime", "p99", 10_000_000)
    assert alarms[f"{SHARED}-cpu"]["Threshold"] == 90.0 * 4  # per vCPU on ml.c5.xlarge
    assert "mlops-loop-pooled-churn-model-loading-wait" not in alarms, "single-model endpoints have no model cache"
    assert not [n for n in alarms if "credit-risk-latency" in n], "members have no endpoint of their own"


def test_cost_floor_counts_each_shared_fleet_once(pooled):
    (env,) = floor_report(pooled.outdir)
    lines = {(line.label, line.mode): line for line in env.lines if line.category == "compute"}
    shared = lines[("shared (credit-risk, small-churn)", "multi_model")]
    assert shared.monthly_usd == pytest.approx(2 * 0.204 * 730)
    assert shared.once_deployed
    solo = lines[("solo (solo-churn)", "multi_model")]
    assert solo.monthly_usd == pytest.approx(0.271 * 730)
    assert not [label for label, _ in lines if "credit-risk" in label and label != "shared (credit-risk, small-churn)"]
