"""The scheduled drift monitor and the endpoints' operational alarms (Operations stack)."""

from __future__ import annotations

import json

import pytest
from tests.support.templates import join_string, policy_statements

ENVS = ["dev", "staging", "prod"]


def _monitor_requests(sample, env: str) -> dict[str, dict]:
    out = {}
    for logical_id, schedule in sample.resources(env, "Operations", "AWS::Scheduler::Schedule").items():
        target = schedule["Properties"]["Target"]
        if join_string(target["Arn"]).endswith(":aws-sdk:sagemaker:createProcessingJob"):
            out[logical_id] = {"props": schedule["Properties"], "request": json.loads(join_string(target["Input"]))}
    return out


@pytest.mark.parametrize("env", ENVS)
def test_one_scheduled_monitor_per_model_reading_s3_itself(sample, env):
    """GIVEN an environment WHEN sample THEN each model has a daily Processing job started by
    EventBridge Scheduler that runs our monitor in --from-s3 mode against this environment's serving stack."""
    config = sample.config.environments[env]
    requests = _monitor_requests(sample, env)
    assert len(requests) == len(config.models)
    models = set()
    for found in requests.values():
        assert found["props"]["ScheduleExpression"] == config.monitoring.schedule
        request = found["request"]
        assert request["ProcessingJobName"].endswith("-<aws.scheduler.execution-id>")
        assert len(request["ProcessingJobName"].replace("<aws.scheduler.execution-id>", "x" * 36)) <= 63
        args = request["AppSpecification"]["ContainerArguments"]
        assert args[0] == "pipeline_code.monitoring.monitor" and "--from-s3" in args and "--publish-metrics" in args
        value = dict(zip(args[1::1], args[2::1]))
        models.add(value["--model"])
        assert value["--serving-stack"] == f"mlops-loop-{env}-serving"
        assert value["--environment"] == env
        assert float(value["--psi-threshold"]) == config.monitoring.psi_threshold
        assert float(value["--false-alarm-rate"]) == config.monitoring.false_alarm_rate
        # The sensitive groups are judged as the model's gate in this environment judges them.
        gate = sample.config.models[value["--model"]].gate_in(config.gate)
        assert float(value["--max-dpd"]) == gate.max_demographic_parity_difference
        assert int(value["--min-group-rows"]) == gate.min_group_rows
        if sample.config.models[value["--model"]].problem_type == "regression":
            assert float(value["--min-di"]) == gate.min_disparate_impact
        else:
            assert "--min-di" not in value
        # The earlier reports are read from where the job writes its own (the processing output's prefix).
        output = request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
        assert output.startswith(value["--history-s3-uri"]) and value["--history-s3-uri"].endswith(f"/monitor/{value['--model']}/")
        assert value["--capture-s3-uri"].endswith(f"-inference-{config.account}-{config.region}/capture/{value['--model']}/")
        assert all(len(a) <= 256 for a in args)
        # The code and the spec are downloaded under their content-hashed names: the paths must match.
        inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
        entry = request["AppSpecification"]["ContainerEntrypoint"][3]
        assert entry == f"{inputs['entry']['LocalPath']}/{inputs['entry']['S3Uri'].rsplit('/', 1)[1]}"
        assert value["--model-spec"] == f"{inputs['model_spec']['LocalPath']}/{inputs['model_spec']['S3Uri'].rsplit('/', 1)[1]}"
        assert request["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "TOKEN"
        assert request["ProcessingOutputConfig"]["KmsKeyId"] == "TOKEN"
        assert request["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
    assert models == set(config.models)


def test_a_model_that_expects_traffic_makes_a_quiet_window_unhealthy(modes):
    """GIVEN fixed-churn declaring min_daily_requests: 500 WHEN its environment is synthesized THEN its monitor
    alone is told to expect them (the others report a quiet day as quiet)."""
    expected = {}
    for schedule in (r for r in modes.operations["Resources"].values() if r["Type"] == "AWS::Scheduler::Schedule"):
        if join_string(schedule["Properties"]["Target"]["Arn"]).endswith(":aws-sdk:sagemaker:createProcessingJob"):
            args = json.loads(join_string(schedule["Properties"]["Target"]["Input"]))["AppSpecification"]["ContainerArguments"]
            model = args[args.index("--model") + 1]
            expected[model] = args[args.index("--min-requests") + 1] if "--min-requests" in args else None
    assert expected.pop("fixed-churn") == "500"
    assert set(expected.values()) == {None} and expected


def test_monitor_role_reads_only_its_models_data_and_publishes_only_monitor_metrics(sample):
    policies = sample.resources("prod", "Operations", "AWS::IAM::ManagedPolicy")
    statements = policy_statements(policies, [k for k in policies if k.startswith("ChurnMonitorAccess")])
    assert statements["ReadTraffic"]["Resource"].endswith("-inference-333333333333-eu-west-1/capture/churn/*")
    assert statements["Reports"]["Resource"].endswith("/monitor/churn/*")
    assert "s3:PutObject" not in statements["ReadTraffic"]["Action"]
    assert statements["PublishMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "mlops-loop/prod/churn/monitoring"}}
    assert statements["ReadVersion"]["Resource"].endswith(":model-package/mlops-loop-prod-churn/*")
    assert statements["FindServingVersion"]["Resource"].endswith(":stack/mlops-loop-prod-serving/*")
    actions = json.dumps([s["Action"] for s in statements.values()])
    assert "UpdateModelPackage" not in actions and "UpdateStack" not in actions


def test_the_health_alarms_page_on_an_unhealthy_report_and_when_the_monitor_stops_reporting(sample):
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in sample.resources("prod", "Operations", "AWS::CloudWatch::Alarm").values()}
    # A report judges itself; hours without one are counted by the no-report alarm (constructs/test_loop_alarms.py).
    assert alarms["mlops-loop-prod-churn-monitor-unhealthy"]["TreatMissingData"] == "ignore"
    silent = alarms["mlops-loop-prod-churn-monitor-no-report"]
    assert (silent["TreatMissingData"], silent["Period"], silent["EvaluationPeriods"]) == ("breaching", 3600, 28)
    assert alarms["mlops-loop-prod-churn-retrain-data-drift"]["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(("env", "model"), [("prod", "churn"), ("prod", "credit-risk"), ("dev", "churn")])
def test_every_endpoint_has_operational_alarms_for_people(sample, env, model):
    """GIVEN an endpoint WHEN sample THEN latency, 5xx and 4xx alarms (plus CPU/memory for instance-based
    modes) on its fixed name notify the topic, and stay quiet while no endpoint exists (missing = not breaching)."""
    serving = sample.config.serving_of(sample.config.environments[env], sample.config.models[model])
    name = f"mlops-loop-{env}-{model}"
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in sample.resources(env, "Operations", "AWS::CloudWatch::Alarm").values()}
    expected = ({"latency", "server-errors", "client-errors"} | ({"cpu", "memory"} if serving.mode == "realtime" else set())
                # The serving code's own capture (serverless) publishes the writes it could not make.
                | ({"capture-write-failures"} if serving.mode == "serverless" and serving.data_capture_percent > 0 else set()))
    found = {n.removeprefix(f"{name}-") for n in alarms if n.startswith(f"{name}-") and "retrain" not in n and "monitor" not in n}
    assert found == expected
    for suffix in expected:
        alarm = alarms[f"{name}-{suffix}"]
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"], "people are told"
    latency = alarms[f"{name}-latency"]
    assert latency["Threshold"] == serving.alarms.max_latency_p99_ms * 1000 and latency["ExtendedStatistic"] == "p99"
    if serving.mode == "realtime":
        from mlops_loop.config.instance_types import INSTANCE_TYPES

        vcpus = INSTANCE_TYPES[serving.realtime.instance_type].vcpu
        assert alarms[f"{name}-cpu"]["Threshold"] == serving.alarms.max_cpu_percent * vcpus
        assert alarms[f"{name}-cpu"]["Namespace"] == "/aws/sagemaker/Endpoints"


def test_deploy_handler_failures_page_people_once_through_its_dead_letters(sample):
    """Its errors (attempts Lambda retries) are on the dashboard; an event that fails every attempt pages once."""
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in sample.resources("staging", "Operations", "AWS::CloudWatch::Alarm").values()}
    assert {"mlops-loop-staging-deploy-errors", "mlops-loop-staging-deploy-dead-letters"} <= set(alarms)
    assert not alarms["mlops-loop-staging-deploy-errors"].get("AlarmActions")
    assert alarms["mlops-loop-staging-deploy-dead-letters"]["AlarmActions"]


@pytest.mark.parametrize("env", ENVS)
def test_each_monitor_writes_its_tables_to_their_own_prefixes_and_reads_the_records_back_from_there(sample, env):
    """GIVEN an environment WHEN sample THEN each model's monitor job writes its prediction records and results below
    --tables-dir, uploaded to predictions/<model>/ and monitor-results/<model>/ (the Glue tables' locations, which hold
    no report), in run=<the schedule's execution id>/ folders, and reads the earlier records back from predictions/."""
    from pipeline_code.core.contract import MONITOR_RESULTS, PREDICTION_RECORDS

    config = sample.config.environments[env]
    bucket = f"s3://mlops-loop-{env}-inference-{config.account}-{config.region}/"
    for found in _monitor_requests(sample, env).values():
        args = found["request"]["AppSpecification"]["ContainerArguments"]
        value = dict(zip(args[1::1], args[2::1]))
        model = value["--model"]
        outputs = {o["OutputName"]: o["S3Output"] for o in found["request"]["ProcessingOutputConfig"]["Outputs"]}
        for what in (PREDICTION_RECORDS, MONITOR_RESULTS):
            assert outputs[what] == {"S3Uri": f"{bucket}{what}/{model}/", "LocalPath": f"{value['--tables-dir']}/{what}",
                                     "S3UploadMode": "EndOfJob"}
        assert value["--run-id"] == "<aws.scheduler.execution-id>"
        assert value["--records-s3-uri"] == outputs[PREDICTION_RECORDS]["S3Uri"]
        assert not value["--tables-dir"].startswith(outputs["monitor"]["LocalPath"])  # not uploaded with the reports


def test_the_monitor_role_adds_to_its_tables_and_deletes_nothing_there(sample):
    from pipeline_code.core.contract import pascal
    from tests.support.iam_eval import IamModel, StackTemplate, authorize

    config = sample.config.environments["prod"]
    model = IamModel([StackTemplate("Operations", sample.stacks[("prod", "Operations")].stack_name,
                                    sample.template("prod", "Operations"))], account=config.account, region=config.region)
    for name in config.models:
        (role,) = [r for r in model.roles.values() if r.logical_id.startswith(f"{pascal(name)}MonitorRole")]
        bucket = f"mlops-loop-prod-inference-{config.account}-{config.region}"
        for what, other in (("predictions", "monitor-results"), ("monitor-results", "predictions")):
            key = f"arn:aws:s3:::{bucket}/{what}/{name}/date=2026-03-02/run=x/f.parquet"
            assert authorize(role, "s3:PutObject", {"object": key}).allowed, key
            assert authorize(role, "s3:GetObject", {"object": key}).allowed, key
            assert not authorize(role, "s3:DeleteObject", {"object": key}).allowed, key
        others = [m for m in config.models if m != name]
        for m in others[:1]:
            key = f"arn:aws:s3:::{bucket}/predictions/{m}/date=2026-03-02/run=x/f.parquet"
            assert not authorize(role, "s3:PutObject", {"object": key}).allowed, key
