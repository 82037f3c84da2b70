"""What the endpoint really serves and answers (``monitor --from-s3 --endpoint-name``), against moto: a real serving
stack, registry, endpoint (SageMaker Model -> EndpointConfig -> Endpoint) and its ``AWS/SageMaker`` metrics.

The two defects these guard (user trial): an endpoint answering with a version the stack does not name was judged as
if the named version served (rescored, healthy); capture that stopped read as a quiet, healthy day.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.exceptions import ClientError

from pipeline_code.core.contract import ANSWERED_BY
from pipeline_code.monitoring import monitor, remote, report as report_mod, serving_truth
from tests.support.printed_commands import parse_printed, quoted_commands
from tests.support.remote_world import (
    CAPTURE_URI, Aws, from_s3_args, published, read_report, register, upload_traffic,
)

ENDPOINT = "mlops-loop-dev-churn"
ROLE = "arn:aws:iam::123456789012:role/serving"


def serve(aws: Aws, package_arn: str, *, name: str = "v", serverless: bool = False, async_: bool = False,
          mode: str | None = None) -> None:
    """The endpoint as the serving stack builds it: a Model naming the package, a config, the endpoint."""
    container = {"ModelPackageName": package_arn, **({"Mode": mode} if mode else {})}
    aws.sagemaker.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE, Containers=[container])
    variant = {"VariantName": "AllTraffic", "ModelName": f"{name}-model"}
    variant.update({"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}} if serverless
                   else {"InitialInstanceCount": 1, "InstanceType": "ml.m5.large"})
    extra = {"AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://b/async/"}}} if async_ else {}
    aws.sagemaker.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[variant], **extra)
    try:
        aws.sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=f"{name}-config")
    except ClientError:
        aws.sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=f"{name}-config")


def requests_served(aws: Aws, count: float, *, metric: str = "Invocations", hours_ago: float = 2.0) -> None:
    aws.cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{
        "MetricName": metric, "Value": count, "Timestamp": dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours_ago),
        "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}]}])


def answered_by_another_version(aws: Aws, seed: int) -> None:
    """Rewrite the uploaded window so every record names version 9 (another artefact) as the one that answered."""
    key = f"capture/churn/{ENDPOINT}/AllTraffic/2026/11/26/08/capture-{seed}.jsonl"
    body = aws.s3.get_object(Bucket="mlops-loop-dev-inference", Key=key)["Body"].read().decode()
    events = [json.loads(line) for line in body.splitlines() if line.strip()]
    for event in events:
        score = float(event["captureData"]["endpointOutput"]["data"])
        body = {"predictions": [{"score": score}], ANSWERED_BY: {"name": "churn", "version": "9", "artefact_sha256": "9" * 64}}
        event["captureData"]["endpointOutput"] = {"observedContentType": "application/json", "mode": "OUTPUT",
                                                  "data": json.dumps(body), "encoding": "JSON"}
    aws.put(f"{CAPTURE_URI}{key[len('capture/churn/'):]}", ("\n".join(json.dumps(e) for e in events) + "\n").encode())


def run(spec, tmp_path, aws: Aws, *extra: str) -> dict:
    code = monitor.main(from_s3_args(spec, tmp_path, "--endpoint-name", ENDPOINT, "--publish-metrics", *extra),
                        cloudwatch_client=aws.cloudwatch)
    assert code == 0
    return read_report(tmp_path)


def kinds(report: dict) -> dict:
    return {e["kind"]: e for e in report["errors"]}


# ---------------------------------------------------------------- the trial's two scenarios
def test_an_endpoint_serving_another_version_than_the_stack_is_unhealthy_and_pages(aws, spec, reference, tmp_path):
    """GIVEN the stack naming v1 while the endpoint (InService) was updated by hand to v2, every record answered by it
    WHEN the scheduled monitor runs THEN the report is unhealthy and untrusted with serving_mismatch naming both versions
    and the fix, MonitorHealthy=0 is published and no drift metric (the numbers describe a model no caller used)."""
    v1, v2 = register(aws, reference, "run-1"), register(aws, reference, "run-2")
    aws.serving_stack(churn_arn=v1)
    serve(aws, v2)
    upload_traffic(aws, spec, reference["model"], rows=400, seed=501)
    answered_by_another_version(aws, 501)
    requests_served(aws, 400)
    report = run(spec, tmp_path, aws, "--cli-config", "projects/risk.yaml")
    assert report["status"] == "unhealthy" and not report["healthy"] and not report["trusted"]
    message = kinds(report)["serving_mismatch"]["message"]
    assert f"version 2 ({v2})" in message and f"version 1 ({v1})" in message and "InService" in message
    assert "rollback" in message and "re-approve" in message
    # The commands run as printed: the monitor's own environment and model, the CLI's syntax.
    versions, rollback = (parse_printed(c, fill={"N": "1"}) for c in quoted_commands(message))
    assert (versions.env, versions.model, versions.command) == ("dev", "churn", "versions")
    assert (rollback.env, rollback.model, rollback.command, rollback.to_version) == ("dev", "churn", "rollback", 1)
    # ... and the config the monitor was deployed from (--cli-config: another project's)
    assert versions.config == rollback.config == "projects/risk.yaml"
    assert report_mod.retrain_alarms(report) == []
    assert "could not trust this window (serving_mismatch" in report_mod.verdict(report)[0]
    metrics = published(aws)
    assert metrics["MonitorHealthy"] == 0.0 and "PredictionPsi" not in metrics and "DataDriftMaxPsi" not in metrics


def test_capture_that_stopped_is_unhealthy_not_a_quiet_day(aws, spec, reference, tmp_path):
    """GIVEN a serverless endpoint serving the stack's version that answered 1500 requests, none of them captured (its
    self-capture could not write) WHEN the monitor runs THEN the window is unhealthy (capture_missing naming both numbers
    and where to look), not quiet, and MonitorHealthy=0 is published."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    serve(aws, aws.sagemaker.list_model_packages(ModelPackageGroupName="mlops-loop-dev-churn")["ModelPackageSummaryList"][0]["ModelPackageArn"],
          serverless=True)
    requests_served(aws, 1500)
    report = run(spec, tmp_path, aws)
    assert report["status"] == "unhealthy" and report["summary"]["records"] == 0
    message = kinds(report)["capture_missing"]["message"]
    assert "1500 requests" in message and "holds 0" in message and "self_capture: could not write capture" in message
    assert "CaptureWriteFailures" in message
    assert published(aws)["MonitorHealthy"] == 0.0


def test_real_time_capture_switched_off_names_the_endpoints_capture_setting(aws, spec, reference, tmp_path):
    """GIVEN a real-time endpoint that answered 1000 requests at 10 % capture and left 30 lines (capture switched off
    part-way) WHEN the monitor runs THEN capture_missing: about 100 expected, 30 held; the drift of what was captured
    still stands (the error is confined to the capture check)."""
    v1 = register(aws, reference, "run-1")
    aws.serving_stack(churn_arn=v1)
    serve(aws, v1)
    upload_traffic(aws, spec, reference["model"], rows=30, seed=502)
    requests_served(aws, 1000)
    report = run(spec, tmp_path, aws, "--capture-percent", "10")
    error = kinds(report)["capture_missing"]
    assert error["section"] == "capture_check" and report["trusted"] and not report["healthy"]
    assert "about 100 capture lines" in error["message"] and "holds 30" in error["message"]
    assert "DataCaptureConfig" in error["message"]


def test_requests_the_endpoint_refused_are_not_counted_as_lost_capture(aws, spec, reference, tmp_path):
    """GIVEN a real-time endpoint at 10 % capture that got 1000 requests, 650 of them refused (4xx: a caller sending
    records the contract refuses) and 50 failed (5xx), and left 30 capture lines for the 300 it answered WHEN the monitor
    runs THEN the capture check passes: a refused request leaves no capture line (before, about 100 lines were expected
    and the window paged as capture_missing, blaming the capture set-up)."""
    v1 = register(aws, reference, "run-1")
    aws.serving_stack(churn_arn=v1)
    serve(aws, v1)
    upload_traffic(aws, spec, reference["model"], rows=30, seed=503)
    requests_served(aws, 1000)
    requests_served(aws, 650, metric="Invocation4XXErrors")
    requests_served(aws, 50, metric="Invocation5XXErrors")
    report = run(spec, tmp_path, aws, "--capture-percent", "10")
    assert "capture_missing" not in kinds(report), kinds(report)
    check = next(c for c in report["checks"] if c["check"] == "capture_complete")
    assert check["status"] == "pass" and "300 requests answered" in check["detail"]
    assert "700 refused or failed not counted" in check["detail"]


# ---------------------------------------------------------------- what stays as it was
def test_a_rollout_in_progress_keeps_rescoring_and_pages_nobody(aws, spec, reference, tmp_path, monkeypatch):
    """GIVEN the stack already naming v2 while the endpoint is Updating (blue/green) and still serves v1, whose answers
    fill the window WHEN the monitor runs THEN the report is healthy: the records are rescored as a rollout's, the
    endpoint check is a warning."""
    v1, v2 = register(aws, reference, "run-1"), register(aws, reference, "run-2")
    aws.serving_stack(churn_arn=v2)
    serve(aws, v1)
    upload_traffic(aws, spec, reference["model"], rows=300, seed=503)
    answered_by_another_version(aws, 503)
    requests_served(aws, 300)
    real = aws.sagemaker.describe_endpoint

    def updating(**kw):
        return {**real(**kw), "EndpointStatus": "Updating", "PendingDeploymentSummary": {"EndpointConfigName": "v2-config"}}

    monkeypatch.setattr(aws.sagemaker, "describe_endpoint", updating)
    monkeypatch.setattr(remote, "clients", lambda region: aws.clients)
    report = run(spec, tmp_path, aws)
    assert report["healthy"] and report["errors"] == [], report["errors"]
    assert report["sections"]["rescoring"]["other_versions"] == {"9" * 64: 300}
    endpoint_check = next(c for c in report["checks"] if c["check"] == "serving_version_on_endpoint")
    assert endpoint_check["status"] == "warn" and "Updating" in endpoint_check["detail"]
    assert any("the window holds a rollout" in s for s in report_mod.verdict(report))


def test_the_right_version_with_its_capture_stays_healthy(aws, spec, reference, tmp_path):
    """GIVEN the endpoint serving the stack's version, 300 requests and 300 captured lines WHEN the monitor runs
    THEN healthy, both checks pass, and the endpoint's description is in the report."""
    v1 = register(aws, reference, "run-1")
    aws.serving_stack(churn_arn=v1)
    serve(aws, v1)
    upload_traffic(aws, spec, reference["model"], rows=300, seed=504)
    requests_served(aws, 300)
    report = run(spec, tmp_path, aws)
    assert report["healthy"] and report["errors"] == [], report["errors"]
    statuses = {c["check"]: c["status"] for c in report["checks"] if c["check"] in ("serving_version_on_endpoint", "capture_complete")}
    assert statuses == {"serving_version_on_endpoint": "pass", "capture_complete": "pass"}
    endpoint = report["sections"]["remote"]["endpoint"]
    assert endpoint["status"] == "InService" and endpoint["invocations"]["requests"] == 300.0
    assert endpoint["variants"][0]["packages"] == [v1]


def test_without_endpoint_name_nothing_is_asked(aws, spec, reference, tmp_path):
    """GIVEN no --endpoint-name (a batch model, a multi-model member) WHEN the monitor runs THEN no endpoint is described
    and no capture comparison is made."""
    aws.serving_stack(churn_arn=register(aws, reference, "run-1"))
    upload_traffic(aws, spec, reference["model"], rows=150, seed=505)
    code = monitor.main(from_s3_args(spec, tmp_path), cloudwatch_client=aws.cloudwatch)
    report = read_report(tmp_path)
    assert code == 0 and report["healthy"] and "endpoint" not in report["sections"]["remote"]


# ---------------------------------------------------------------- failures are reported, not raised
class Refusing:
    """A client whose one operation is refused (access denied), the others passed through."""

    def __init__(self, client, operation: str) -> None:
        self._client, self._operation = client, operation

    def __getattr__(self, name):
        if name == self._operation:
            def refuse(**_):
                raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, name)
            return refuse
        return getattr(self._client, name)


@pytest.mark.parametrize("service, operation, kind", [
    ("sagemaker", "describe_endpoint", "serving_check_failed"),
    ("sagemaker", "describe_endpoint_config", "serving_check_failed"),
    ("sagemaker", "describe_model", "serving_check_failed"),
    ("cloudwatch", "get_metric_statistics", "capture_check_failed"),
])
def test_each_new_call_that_fails_is_a_report_error_of_its_own_check(aws, spec, reference, tmp_path, monkeypatch,
                                                                     service, operation, kind):
    """GIVEN the monitor role refused one of the new calls WHEN the scheduled monitor runs THEN it writes its report:
    unhealthy with an error of that check naming the call's error, the window still judged and trusted."""
    v1 = register(aws, reference, "run-1")
    aws.serving_stack(churn_arn=v1)
    serve(aws, v1)
    upload_traffic(aws, spec, reference["model"], rows=150, seed=506)
    requests_served(aws, 150)
    clients = {**aws.clients, "cloudwatch": aws.cloudwatch}
    clients[service] = Refusing(clients[service], operation)
    monkeypatch.setattr(remote, "clients", lambda region: clients)
    report = run(spec, tmp_path, aws)
    assert set(kinds(report)) == {kind} and "AccessDeniedException" in kinds(report)[kind]["message"]
    assert report["trusted"] and not report["healthy"] and "data_drift" in report["sections"]


# ---------------------------------------------------------------- the pieces
def test_an_async_endpoints_requests_are_its_model_latency_samples(aws):
    """GIVEN an async endpoint (no Invocations metric) whose model processed 40 + 60 requests WHEN its requests are read
    THEN 100, from ModelLatency's SampleCount."""
    for count in (40, 60):
        aws.cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{
            "MetricName": "ModelLatency", "Values": [1000.0], "Counts": [count],
            "Timestamp": dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3),
            "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}]}])
    now = dt.datetime.now(dt.timezone.utc)
    read = serving_truth.invocations(aws.cloudwatch, endpoint=ENDPOINT, kind="async", variants=["AllTraffic"],
                                     start=now - dt.timedelta(hours=24), end=now)
    assert read["requests"] == 100.0 and "ModelLatency (SampleCount)" in read["metric"]


def test_the_endpoint_kind_and_a_multi_model_container_are_recognised(aws):
    """GIVEN an async endpoint, then a multi-model container WHEN described and judged THEN the kind is async, and a
    multi-model endpoint is skipped (the version answering is chosen per request), never a mismatch."""
    serve(aws, "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-loop-dev-churn/1", async_=True)
    served = serving_truth.describe_endpoint_serving(aws.sagemaker, ENDPOINT)
    assert served["kind"] == "async" and served["variants"][0]["packages"][0].endswith("/1")
    served["variants"][0]["multi_model"] = True
    errors, checks = serving_truth.serving_findings(served, expected_arn="arn:other/7", expected_data_url=None)
    assert errors == [] and checks[0]["status"] == "skipped"


def test_a_model_without_a_package_is_judged_by_its_artefact():
    """GIVEN a hand-made model naming an artefact (no package) WHEN judged THEN the artefact the stack's version registers
    passes and another is a mismatch naming it."""
    served = {"endpoint": "e", "status": "InService",
              "variants": [{"variant": "AllTraffic", "model": "m", "packages": [], "data_urls": ["s3://a/v7/model.tar.gz"],
                            "multi_model": False}]}
    assert serving_truth.serving_findings(served, expected_arn="arn:x/7", expected_data_url="s3://a/v7/model.tar.gz")[0] == []
    errors, _ = serving_truth.serving_findings(served, expected_arn="arn:x/7", expected_data_url="s3://a/v8/model.tar.gz")
    assert errors[0]["kind"] == "serving_mismatch" and "s3://a/v7/model.tar.gz" in errors[0]["message"]


def test_the_mismatch_fix_names_the_config_the_monitor_was_deployed_from():
    """GIVEN a monitor of model risk in prod deployed from another config than the default (--cli-config) WHEN the
    endpoint serves another version than the stack names THEN both commands of the fix name that config, so that on-call
    running them acts on that project's environment; without it (the default config) they name none."""
    served = {"endpoint": "e", "status": "InService", "variants": [
        {"variant": "AllTraffic", "model": "m", "packages": ["arn:x/8"], "data_urls": [], "multi_model": False}]}
    for config, expected in (("projects/risk.yaml", "projects/risk.yaml"), (None, None)):
        errors, _ = serving_truth.serving_findings(served, expected_arn="arn:x/7", expected_data_url=None,
                                                   environment="prod", model="risk", cli_config=config)
        commands = quoted_commands(errors[0]["message"])
        assert len(commands) == 2
        for command in commands:
            parsed = parse_printed(command, fill={"N": "7"})
            assert (parsed.env, parsed.model) == ("prod", "risk")
            assert ("--config" in command) == (config is not None)
            if config is not None:
                assert parsed.config == expected


@pytest.mark.parametrize("requests, percent, captured, outcome", [
    (1000, 100, 501, "pass"),      # half of the expected is enough
    (1000, 100, 499, "error"),
    (1000, 10, 60, "pass"),        # 10 % sampling: about 100 expected
    (1000, 10, 40, "error"),
    (99, 100, 0, "skipped"),       # too few requests to judge
    (150, 10, 0, "skipped"),       # 15 expected lines: sampling noise could leave half of them out
    (1000, 0, 0, None),            # capture off by config: nothing to compare
])
def test_the_capture_rule(requests, percent, captured, outcome):
    section = {"endpoint": ENDPOINT, "invocations": {"requests": float(requests), "metric": "AWS/SageMaker Invocations (Sum)"}}
    errors, checks = serving_truth.capture_findings(section, captured=captured, percent=percent, truncated=False)
    if outcome is None:
        assert errors == [] and checks == []
    elif outcome == "error":
        assert [e["kind"] for e in errors] == ["capture_missing"] and checks == []
    else:
        assert errors == [] and checks[0]["status"] == outcome


def test_a_truncated_window_is_not_compared():
    section = {"endpoint": ENDPOINT, "invocations": {"requests": 5000.0, "metric": "m"}}
    errors, checks = serving_truth.capture_findings(section, captured=10, percent=100, truncated=True)
    assert errors == [] and checks[0]["status"] == "skipped" and "max-window-bytes" in checks[0]["detail"]


def test_capture_percent_must_be_a_percentage(spec, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        monitor.main(from_s3_args(spec, tmp_path, "--endpoint-name", ENDPOINT, "--capture-percent", "150"))
    assert exit_.value.code == 2 and "--capture-percent" in capsys.readouterr().err


V4 = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-loop-dev-churn/4"
V5 = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-loop-dev-churn/5"


@pytest.mark.parametrize("status, pending, packages, expected", [
    # a blue/green rollout: the pending config is the new version's
    ("Updating", "v5-config", [V4], ("warn", None)),
    ("RollingBack", None, [V4], ("warn", None)),
    # autoscaling (UpdateEndpointWeightsAndCapacities) is Updating without a new config: no rollout, a mismatch
    ("Updating", None, [V4], (None, "serving_mismatch")),
    # stuck serving a mix of configs until someone acts
    ("UpdateRollbackFailed", None, [V4], (None, "serving_mismatch")),
    ("InService", None, [V5], ("pass", None)),
    # answering nobody, whatever the config names
    ("Failed", None, [V5], ("warn", None)),
    ("OutOfService", None, [V4], ("warn", None)),
])
def test_the_endpoints_status_decides_between_a_rollout_a_mismatch_and_not_answering(status, pending, packages, expected):
    """GIVEN the stack naming v5 and the endpoint in ``status`` serving ``packages`` WHEN judged THEN a rollout warns,
    a mismatch outside a rollout is an error, an endpoint that answers no caller warns naming its status (it passed)."""
    served = {"endpoint": "e", "status": status, "pending_config": pending,
              "variants": [{"variant": "AllTraffic", "model": "m", "packages": packages, "data_urls": [], "multi_model": False}]}
    errors, checks = serving_truth.serving_findings(served, expected_arn=V5, expected_data_url=None)
    assert ((checks[0]["status"] if checks else None), (errors[0]["kind"] if errors else None)) == expected
    if status in serving_truth.NOT_ANSWERING:
        assert f"e is {status}: it answers no caller" in checks[0]["detail"]
