"""The cost floor's "scheduled" column and its required-VPC-endpoints fixed line (mlops_loop/tools/cost_floor/).

GIVEN small cloud assemblies written by hand (``tests.support.assemblies``) holding Glue triggers, crawlers and jobs,
EventBridge Scheduler schedules starting SageMaker jobs and pipelines, native Model Monitor schedules, or functions in
a VPC WHEN the floor is read
THEN each kind of scheduled work is one "scheduled" line with its exact basis (runs per month from the expression x
the billing minimum or the assumed minutes), kept out of ``total_usd`` and in ``total_with_schedules_usd``; an
expression that cannot be read makes its line unknown, never an error. The last test reads the real app.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_loop.config.instance_types import INSTANCE_TYPES
from mlops_loop.config.vpc_endpoints import INTERFACE_ENDPOINT_SERVICES
from mlops_loop.tools.cost_floor import PRICES, floor_report, main
from mlops_loop.tools.cost_floor.scheduled import Assumptions
from pipeline_code.core.contract import LOG_RETENTION_ACTION, LOG_RETENTION_NOT_SET_METRIC, MONITOR_METRICS
from tests.support.assemblies import (
    condition_step,
    conditional_trigger,
    endpoint,
    function_schedule,
    glue_crawler,
    glue_job,
    instance_config,
    job_schedule,
    monitoring_definition,
    monitoring_schedule,
    pipeline,
    processing_request,
    processing_step,
    scheduled_trigger,
    template,
    training_step,
    transform_request,
    vpc_function,
    write_assembly,
)

DAILY = "cron(0 2 * * ? *)"  # 365 runs a year: 30.42 a month of 730 hours
WEEKLY = "cron(0 4 ? * SUN *)"  # 52 Sundays in the reference year 2027: 4.33 a month
DAILY_RUNS, WEEKLY_RUNS = 365 / 12, 52 / 12
GLUE = PRICES["glue_dpu_hour"].usd
CRAWLER = PRICES["glue_crawler_dpu_hour"].usd


def hourly(instance_type: str) -> float:
    return INSTANCE_TYPES[instance_type].usd_per_hour


def floor_of(tmp_path: Path, resources: dict, **kwargs):
    (env,) = floor_report(write_assembly(tmp_path / "cdk.out", {"prod": {"Operations": template(resources)}}), **kwargs)
    return env


def scheduled(env) -> dict:
    return {line.label: line for line in env.lines if line.category == "scheduled"}


# --------------------------------------------------------------------------------------------------------------------
# Glue
# --------------------------------------------------------------------------------------------------------------------
def test_a_scheduled_crawler_and_the_jobs_its_workflow_starts_cost_their_billing_minimum_every_run(tmp_path):
    """GIVEN a daily trigger starting a crawler, a curate job after the crawl and a feature job after the curate job
    WHEN the floor is read THEN the crawler costs 10 minutes at 1 DPU a run, each job its 1-minute minimum at its DPUs,
    every day; none of it in the always-on total."""
    env = floor_of(tmp_path, {
        "Crawler": glue_crawler("raw"),
        "Curate": glue_job("curate", worker_type="G.2X", workers=10),
        "Features": glue_job("features", worker_type="G.2X", workers=10),
        "Start": scheduled_trigger(DAILY, crawler="Crawler"),
        "AfterCrawl": conditional_trigger(after_crawler="Crawler", job="Curate"),
        "AfterCurate": conditional_trigger(after_job="Curate", job="Features"),
    })
    lines = scheduled(env)
    assert set(lines) == {"Glue ETL jobs", "Glue crawlers"}
    jobs, crawlers = lines["Glue ETL jobs"], lines["Glue crawlers"]
    assert jobs.basis == ("2 jobs x 30.42 runs/month x 20 DPU (10 x G.2X) x 1 min (billing minimum) x $0.44/DPU-h "
                          "(rate unverified)")
    assert jobs.monthly_usd == pytest.approx(2 * DAILY_RUNS * 20 * GLUE / 60)
    assert crawlers.basis == ("1 crawler x 30.42 runs/month x 1 DPU (assumed: AWS chooses) x 10 min (billing minimum) "
                              "x $0.44/DPU-h")
    assert crawlers.monthly_usd == pytest.approx(DAILY_RUNS * 10 / 60 * CRAWLER)
    assert (jobs.mode, jobs.category) == ("scheduled", "scheduled")
    assert set(jobs.resources) == {"AfterCrawl", "Curate", "AfterCurate", "Features"}
    assert env.scheduled_usd == pytest.approx(jobs.monthly_usd + crawlers.monthly_usd)
    assert env.total_usd == 0.0 and env.total_with_schedules_usd == pytest.approx(env.scheduled_usd)


def test_a_crawler_s_own_schedule_and_legacy_glue_versions_and_crawler_dpus(tmp_path):
    """GIVEN a crawler with its own weekly schedule and a Glue 1.0 job on a daily trigger WHEN read with 2 DPUs a
    crawl THEN the crawler runs weekly at 2 DPU, the job bills Glue 0.9/1.0's 10-minute minimum."""
    env = floor_of(tmp_path, {
        "Crawler": glue_crawler("raw", schedule=WEEKLY),
        "Old": glue_job("old", glue_version="1.0"),
        "Start": scheduled_trigger(DAILY, job="Old"),
    }, assumptions=Assumptions(crawler_dpus=2))
    lines = scheduled(env)
    assert lines["Glue crawlers"].basis == ("1 crawler x 4.33 runs/month x 2 DPU (assumed: AWS chooses) x 10 min "
                                            "(billing minimum) x $0.44/DPU-h")
    assert lines["Glue crawlers"].monthly_usd == pytest.approx(WEEKLY_RUNS * 2 * 10 / 60 * CRAWLER)
    assert lines["Glue ETL jobs"].basis == ("1 job x 30.42 runs/month x 2 DPU (2 x G.1X) x 10 min (billing minimum) "
                                            "x $0.44/DPU-h (rate unverified)")


def test_glue_work_no_schedule_starts_is_not_counted(tmp_path):
    """GIVEN a job only started on demand and a scheduled trigger created deactivated (StartOnCreation false) WHEN
    read THEN there is no scheduled line."""
    on_demand = {"Type": "AWS::Glue::Trigger", "Properties": {"Type": "ON_DEMAND", "Actions": [{"JobName": {"Ref": "A"}}]}}
    env = floor_of(tmp_path, {
        "A": glue_job("a"), "B": glue_job("b"),
        "OnDemand": on_demand,
        "Off": scheduled_trigger(DAILY, job="B", start=False),
    })
    assert scheduled(env) == {} and env.scheduled_usd == 0.0


# --------------------------------------------------------------------------------------------------------------------
# SageMaker jobs and pipelines started by schedules
# --------------------------------------------------------------------------------------------------------------------
def test_scheduled_processing_and_transform_jobs_cost_their_instances_for_the_assumed_minutes(tmp_path):
    """GIVEN a daily drift-monitor processing job (its Input an Fn::Join with a role token) and a daily batch
    transform job that exists once a model is approved WHEN read THEN each costs instances x 10 minutes x runs, and
    the transform line is marked once deployed; --minutes-per-run scales them."""
    resources = {
        "Monitor": job_schedule(DAILY, "createProcessingJob", processing_request("ml.m5.xlarge", 1)),
        "Batch": job_schedule(DAILY, "createTransformJob", transform_request("ml.m5.large", 2), condition="Served"),
    }
    out = write_assembly(tmp_path / "cdk.out", {"prod": {"Operations": template(
        resources, parameters={"PackageArn": {"Type": "String", "Default": ""}},
        conditions={"Served": {"Fn::Not": [{"Fn::Equals": [{"Ref": "PackageArn"}, ""]}]}})}})
    (env,) = floor_report(out)
    lines = scheduled(env)
    assert lines["SageMaker processing jobs"].basis == "1 job x 30.42 runs/month x 1 x ml.m5.xlarge x 10 min (assumed) x $0.23/h"
    assert lines["SageMaker processing jobs"].monthly_usd == pytest.approx(DAILY_RUNS * hourly("ml.m5.xlarge") * 10 / 60)
    transform = lines["SageMaker batch transform jobs"]
    assert transform.basis == "1 job x 30.42 runs/month x 2 x ml.m5.large x 10 min (assumed) x $0.115/h"
    assert transform.once_deployed == "Served"

    (longer,) = floor_report(out, assumptions=Assumptions(minutes_per_run=30))
    assert longer.scheduled_usd == pytest.approx(3 * env.scheduled_usd)


def _retraining_pipeline() -> dict:
    parameters = [{"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"}]
    steps = [
        processing_step("Prepare", {"Get": "Parameters.ProcessingInstanceType"}),
        training_step("Train", "ml.m5.2xlarge"),
        condition_step("CheckGate", [processing_step("Baseline"), processing_step("ModelCard"),
                                     {"Name": "Register", "Type": "RegisterModel", "Arguments": {}}]),
    ]
    return pipeline("mlops-loop-prod-churn-training", steps, parameters=parameters)


@pytest.mark.parametrize("start", ["retrain-trigger", "universal-target"])
def test_a_scheduled_pipeline_costs_the_steps_every_execution_runs(tmp_path, start):
    """GIVEN a weekly schedule starting a training pipeline (through a function whose Input names it, as the retraining
    trigger's schedule does, or through Scheduler's startPipelineExecution target) WHEN read THEN each execution costs
    its unconditional steps' instances (a pipeline parameter read at its default) for 10 minutes each; the steps under
    the gate's condition are named as not counted."""
    if start == "retrain-trigger":
        schedule = function_schedule(WEEKLY, {"pipeline": "mlops-loop-prod-churn-training", "reason": "schedule"})
    else:
        schedule = job_schedule(WEEKLY, "startPipelineExecution", {"PipelineName": "mlops-loop-prod-churn-training"},
                                role_token=False)
    stages = {"prod": {"Training": template({"Pipeline": _retraining_pipeline()}),
                       "Operations": template({"Retraining": schedule,
                                               "Sweep": function_schedule("rate(1 hour)", {"reason": "sweep"})})}}
    (env,) = floor_report(write_assembly(tmp_path / "cdk.out", stages))
    (line,) = scheduled(env).values()
    assert (line.label, line.basis) == (
        "SageMaker pipeline runs",
        "1 pipeline x 4.33 runs/month x steps Prepare, Train (1 x ml.m5.2xlarge + 1 x ml.m5.xlarge: $0.691/h) x 10 min "
        "per step (assumed) (2 more under a condition, not counted)",
    )
    assert line.monthly_usd == pytest.approx(WEEKLY_RUNS * (hourly("ml.m5.2xlarge") + hourly("ml.m5.xlarge")) * 10 / 60)
    assert line.resources == ("Retraining", "Pipeline") and line.stack == "mlops-loop-prod-operations"


def test_a_function_schedule_naming_no_pipeline_of_the_environment_is_not_counted(tmp_path):
    env = floor_of(tmp_path, {"Sweep": function_schedule("rate(1 hour)", {"reason": "sweep"}),
                              "Other": function_schedule(WEEKLY, {"pipeline": "someone-elses"})})
    assert scheduled(env) == {}


# --------------------------------------------------------------------------------------------------------------------
# Native Model Monitor schedules
# --------------------------------------------------------------------------------------------------------------------
MODEL_MONITOR = "SageMaker Model Monitor jobs"
MONITOR_DAILY = "cron(0 3 ? * * *)"  # Model Monitor's own form of a daily cron


def _served(resources: dict) -> dict:
    """Stages whose Serving template holds ``resources`` behind a condition false until a version is approved."""
    return {"prod": {"Serving": template(
        resources, parameters={"PackageArn": {"Type": "String", "Default": ""}},
        conditions={"Served": {"Fn::Not": [{"Fn::Equals": [{"Ref": "PackageArn"}, ""]}]}})}}


def test_native_model_monitor_schedules_cost_their_definitions_instances_for_the_assumed_minutes(tmp_path):
    """GIVEN the four daily schedules of a native monitor (once deployed), each naming its job definition, one on two
    larger instances WHEN read THEN each schedule is a processing run of its definition's cluster x 10 minutes x its
    runs, on a line of its own marked once deployed; --minutes-per-run scales it.
    Was: '+$0.00/month [unchanged]' for four daily ml.m5.xlarge jobs."""
    resources = {}
    for kind, instance_type, count in (("DataQuality", "ml.m5.xlarge", 1), ("ModelQuality", "ml.m5.xlarge", 1),
                                       ("ModelBias", "ml.m5.xlarge", 1), ("ModelExplainability", "ml.m5.2xlarge", 2)):
        name = f"mlops-loop-prod-churn-{kind.lower()}-0123abcd"
        resources[f"{kind}Definition"] = monitoring_definition(name, instance_type, count, kind=kind, condition="Served")
        resources[f"{kind}Schedule"] = monitoring_schedule(MONITOR_DAILY, name, kind=kind, condition="Served")
    out = write_assembly(tmp_path / "cdk.out", _served(resources))
    (env,) = floor_report(out)
    line = scheduled(env)[MODEL_MONITOR]
    assert line.basis == ("3 schedules x 30.42 runs/month x 1 x ml.m5.xlarge x 10 min (assumed) x $0.23/h + "
                          "1 schedule x 30.42 runs/month x 2 x ml.m5.2xlarge x 10 min (assumed) x $0.461/h")
    assert line.monthly_usd == pytest.approx(DAILY_RUNS * (3 * hourly("ml.m5.xlarge") + 2 * hourly("ml.m5.2xlarge")) * 10 / 60)
    assert line.once_deployed == "Served" and line.stack == "mlops-loop-prod-serving"
    assert set(line.resources) == {f"{k}Schedule" for k in ("DataQuality", "ModelQuality", "ModelBias", "ModelExplainability")}
    assert env.scheduled_usd == pytest.approx(line.monthly_usd) and env.total_usd == env.compute_usd + env.fixed_usd

    (longer,) = floor_report(out, assumptions=Assumptions(minutes_per_run=30))
    assert longer.scheduled_usd == pytest.approx(3 * env.scheduled_usd)


def test_a_monitoring_schedule_finds_its_definition_by_reference_in_another_stack_or_inline(tmp_path):
    """GIVEN schedules whose definition is a Ref in the same template, a name defined in another stack, and an inline
    MonitoringJobDefinition WHEN read THEN each is priced from that cluster; an hourly schedule runs 730 times."""
    stages = {"prod": {
        "Serving": template({
            "Definition": monitoring_definition("local-mq", "ml.c5.xlarge"),
            "ByRef": monitoring_schedule(MONITOR_DAILY, {"Ref": "Definition"}),
            "ByName": monitoring_schedule(MONITOR_DAILY, "elsewhere-dq", kind="DataQuality"),
            "Inline": monitoring_schedule("cron(0 * ? * * *)", inline={"MonitoringResources": {"ClusterConfig": {
                "InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 20}}}),
        }),
        "Operations": template({"Other": monitoring_definition("elsewhere-dq", "ml.m5.xlarge", kind="DataQuality")}),
    }}
    (env,) = floor_report(write_assembly(tmp_path / "cdk.out", stages))
    line = scheduled(env)[MODEL_MONITOR]
    assert line.basis == ("1 schedule x 30.42 runs/month x 1 x ml.c5.xlarge x 10 min (assumed) x $0.204/h + "
                          "1 schedule x 30.42 runs/month x 1 x ml.m5.xlarge x 10 min (assumed) x $0.23/h + "
                          "1 schedule x 730 runs/month x 1 x ml.m5.large x 10 min (assumed) x $0.115/h")
    assert line.once_deployed is None


def test_a_monitoring_schedule_whose_definition_or_expression_cannot_be_read_is_unknown(tmp_path):
    env = floor_of(tmp_path, {
        "Missing": monitoring_schedule(MONITOR_DAILY, "not-in-the-app"),
        "Once": monitoring_schedule("NOW", {"Ref": "Definition"}),
        "Definition": monitoring_definition("d", "ml.m5.xlarge"),
    })
    line = scheduled(env)[MODEL_MONITOR]
    assert line.monthly_usd is None and env.unknown_prices == 1
    assert line.basis.startswith(
        "unknown: mlops-loop-prod-operations/Missing: the job definition 'not-in-the-app' it runs is not in this "
        "environment's templates; mlops-loop-prod-operations/Once: schedule expression not understood (")


# --------------------------------------------------------------------------------------------------------------------
# Bad input: the line says unknown
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("expression,why", [
    ("cron(0 2 * * *)", "'cron(0 2 * * *)' is not a cron expression; use cron(Minutes Hours Day-of-month Month "
                        "Day-of-week Year), e.g. 'cron(0 2 * * ? *)'"),
    ("rate(2 fortnights)", "'rate(2 fortnights)': the unit 'fortnights' is not one of minute(s), hour(s), day(s); use "
                           "rate(value unit) with a whole value and minute(s), hour(s) or day(s), e.g. 'rate(6 hours)'"),
    ("cron(0 2 * * ? 2030)", "'cron(0 2 * * ? 2030)': runs only in the years '2030', so it has no yearly rate; use '*' "
                             "for the year"),
])
def test_an_unreadable_schedule_expression_makes_its_line_unknown_not_a_crash(tmp_path, capsys, expression, why):
    """GIVEN a monitor schedule whose expression cannot be read and one that can WHEN the floor is read THEN the
    processing line's price is unknown, its basis names the schedule and why, the known part is kept in the basis,
    and the CLI still prints the report (exit 0) counting the unknown line."""
    env = floor_of(tmp_path, {
        "Good": job_schedule(DAILY, "createProcessingJob", processing_request()),
        "Bad": job_schedule(expression, "createProcessingJob", processing_request()),
    })
    (line,) = scheduled(env).values()
    assert line.monthly_usd is None
    assert line.basis == ("1 job x 30.42 runs/month x 1 x ml.m5.xlarge x 10 min (assumed) x $0.23/h; unknown: "
                          f"mlops-loop-prod-operations/Bad: schedule expression not understood ({why})")
    assert env.unknown_prices == 1 and env.scheduled_usd == 0.0

    assert main([str(tmp_path / "cdk.out"), "--allow-stale"]) == 0
    assert "1 line(s) with unknown price, not in the totals" in capsys.readouterr().out


def test_an_unreadable_input_or_definition_is_unknown_too(tmp_path):
    broken = job_schedule(DAILY, "createProcessingJob", processing_request(), role_token=False)
    broken["Properties"]["Target"]["Input"] = "{not json"
    no_price = job_schedule(DAILY, "createTransformJob", transform_request("ml.x99.huge"))
    env = floor_of(tmp_path, {"Broken": broken, "NoPrice": no_price})
    lines = scheduled(env)
    assert lines["SageMaker processing jobs"].basis == "unknown: mlops-loop-prod-operations/Broken: its Input is not readable JSON"
    assert lines["SageMaker batch transform jobs"].basis == (
        "unknown: mlops-loop-prod-operations/NoPrice: ml.x99.huge has no price; add the type to "
        "mlops_loop/config/instance_types.py")
    assert env.unknown_prices == 2


@pytest.mark.parametrize("flag,value", [("--minutes-per-run", "0"), ("--minutes-per-run", "many"),
                                        ("--crawler-dpus", "-1"), ("--crawler-dpus", "101")])
def test_assumption_flags_out_of_range_exit_2(tmp_path, capsys, flag, value):
    out = write_assembly(tmp_path / "cdk.out", {"prod": {"Operations": template({})}})
    with pytest.raises(SystemExit) as exit_info:
        main([str(out), flag, value])
    assert exit_info.value.code == 2 and flag in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------------
# Renderers and the change against a base
# --------------------------------------------------------------------------------------------------------------------
def test_every_format_shows_the_scheduled_estimate_apart_from_the_floor(tmp_path, capsys):
    out = write_assembly(tmp_path / "cdk.out", {"prod": {"Operations": template({
        "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
        "Monitor": job_schedule(DAILY, "createProcessingJob", processing_request())})}})
    estimate = DAILY_RUNS * hourly("ml.m5.xlarge") * 10 / 60

    assert main([str(out), "--format", "json", "--minutes-per-run", "10", "--allow-stale"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema_version"] == 3
    assert data["scheduled_assumptions"] == {"minutes_per_run": 10.0, "crawler_dpus": 1.0}
    (prod,) = data["environments"]
    assert (prod["total_usd"], prod["scheduled_usd"]) == (1.0, round(estimate, 2))
    assert prod["total_with_schedules_usd"] == round(1.0 + estimate, 2)
    assert any("scheduled: an estimate, not in 'total'" in note for note in data["notes"])

    assert main([str(out), "--format", "markdown", "--allow-stale"]) == 0
    markdown = capsys.readouterr().out
    assert "| ceiling $/month | scheduled $/month (estimate) | with schedules |" in markdown
    assert f"| prod | eu-west-1 | 0.00 | 0.00 | 1.00 | 1.00 | 1.00 | {estimate:,.2f} | {1 + estimate:,.2f} |" in markdown

    assert main([str(out), "--allow-stale"]) == 0
    text = capsys.readouterr().out
    assert "scheduled* $/mo" in text and "* an estimate: see the notes" in text


def test_the_change_against_a_base_names_the_scheduled_estimate_only_when_it_changed(tmp_path, capsys):
    """GIVEN a head whose monitor runs on a bigger instance than the base's WHEN compared THEN the floor's change line
    is as before (floor, compute, fixed) followed by the scheduled change, marked an estimate; with no scheduled change
    nothing is added."""
    def assembly(name: str, instance_type: str) -> Path:
        return write_assembly(tmp_path / name, {"prod": {"Operations": template({
            "Monitor": job_schedule(DAILY, "createProcessingJob", processing_request(instance_type))})}})

    base, head = assembly("base", "ml.m5.large"), assembly("head", "ml.m5.xlarge")
    change = DAILY_RUNS * (hourly("ml.m5.xlarge") - hourly("ml.m5.large")) * 10 / 60
    assert main([str(head), "--base-assembly", str(base), "--format", "markdown", "--allow-stale"]) == 0
    assert (f"- **prod**: floor +$0.00/month (compute +$0.00, fixed +$0.00); ceiling +$0.00/month; "
            f"scheduled +${change:,.2f}/month (estimate)\n") in capsys.readouterr().out
    assert main([str(head), "--base-assembly", str(head), "--allow-stale"]) == 0
    assert ("  prod: floor +$0.00/month (compute +$0.00, fixed +$0.00); ceiling +$0.00/month [unchanged]\n"
            in capsys.readouterr().out)


# --------------------------------------------------------------------------------------------------------------------
# Interface VPC endpoints an environment in a VPC needs
# --------------------------------------------------------------------------------------------------------------------
def test_an_environment_with_a_vpc_config_pays_for_the_required_interface_endpoints_per_subnet(tmp_path):
    """GIVEN functions in two subnets and a model in a third (and the first again) WHEN read THEN one fixed line prices
    every interface endpoint of docs/vpc.md's table (mlops_loop/config/vpc_endpoints.py) in each of the 3 distinct
    subnets, every hour, before any approval too."""
    model = {"Type": "AWS::SageMaker::Model",
             "Properties": {"VpcConfig": {"Subnets": ["subnet-0000000c", "subnet-0000000a"],
                                          "SecurityGroupIds": ["sg-0123456789abcdef0"]}}}
    env = floor_of(tmp_path, {"A": vpc_function(["subnet-0000000a", "subnet-0000000b"]), "Model": model,
                              "Plain": {"Type": "AWS::Lambda::Function", "Properties": {}}}, hours_per_month=700)
    (line,) = [line for line in env.lines if line.category == "fixed"]
    endpoints = len(INTERFACE_ENDPOINT_SERVICES)
    assert line.label == "Interface VPC endpoints (required, not created by this app)"
    assert line.basis == (f"{endpoints} endpoints (docs/vpc.md, Running inside your VPC) x 3 subnet(s) (a stand-in for "
                          "Availability Zones, which the templates do not name) x $0.01/endpoint-AZ-hour x 700 h; the "
                          "VPC's, possibly shared with other workloads")
    assert line.monthly_usd == pytest.approx(endpoints * 3 * PRICES["interface_endpoint"].usd * 700)
    assert line.resources == ("A", "Model")
    assert env.fixed_usd == env.fixed_before_approval_usd == line.monthly_usd


def test_subnets_inside_a_schedule_s_input_count_and_no_vpc_config_means_no_line(tmp_path):
    request = {**processing_request(), "NetworkConfig": {"VpcConfig": {"Subnets": ["subnet-0000000d"],
                                                                       "SecurityGroupIds": ["sg-0123456789abcdef0"]}}}
    env = floor_of(tmp_path, {"Monitor": job_schedule(DAILY, "createProcessingJob", request)})
    (line,) = [line for line in env.lines if line.category == "fixed"]
    assert " x 1 subnet(s) " in line.basis and line.resources == ("Monitor",)

    plain = floor_of(tmp_path / "plain", {"Endpoint": endpoint("e", "Config"), "Config": instance_config()})
    assert [line for line in plain.lines if line.category == "fixed"] == []


# --------------------------------------------------------------------------------------------------------------------
# The drift monitor's CloudWatch custom metrics
# --------------------------------------------------------------------------------------------------------------------
METRIC = PRICES["custom_metric"].usd
HEADLINE = len(MONITOR_METRICS)


def monitor_request(features: list[str], *, publish: bool = True, by_id: bool = False, spec_key: str = "abc123.json"
                    ) -> dict:
    """A drift-monitor processing request as the app writes it: its arguments (publishing or not, scoring by id or not)
    and the model spec it reads, an asset of the assembly (written beside it by :func:`with_spec`)."""
    arguments = ["pipeline_code.monitoring.monitor", "--model-spec", f"/opt/ml/processing/input/model_spec/{spec_key}"]
    arguments += ["--publish-metrics", "--metric-namespace", "mlops-loop/prod/churn/monitoring"] if publish else []
    arguments += ["--feature-snapshots-s3-uri", "s3://features/snapshots/churn/"] if by_id else []
    return {**processing_request(), "AppSpecification": {"ImageUri": "image", "ContainerArguments": arguments},
            "ProcessingInputs": [{"InputName": "model_spec", "S3Input": {
                "S3Uri": f"s3://cdk-hnb659fds-assets-111111111111-eu-west-1/{spec_key}",
                "LocalPath": "/opt/ml/processing/input/model_spec", "S3DataType": "S3Prefix"}}]}


def with_spec(tmp_path: Path, resources: dict, features: list[str], spec_key: str = "abc123.json"):
    out = write_assembly(tmp_path / "cdk.out", {"prod": {"Operations": template(resources)}})
    (out / f"asset.{spec_key}").write_text(json.dumps({"name": "churn", "features": features}))
    (env,) = floor_report(out)
    return env


def test_each_drift_monitor_run_s_custom_metrics_are_a_scheduled_line(tmp_path):
    """GIVEN a daily drift-monitor schedule publishing metrics for a model of 3 features scored by id WHEN priced THEN
    "CloudWatch custom metrics" counts every series one run may publish (each headline metric, a
    FeaturePsi and a FeatureSkewRate per feature: 27), each billed for the hour a run writes it (CloudWatch prorates a
    metric-month by the hour with data): 27 x 30.42 h x $0.30/730 h; the processing job's own line is unchanged."""
    env = with_spec(tmp_path, {"Monitor": job_schedule(DAILY, "createProcessingJob", monitor_request(
        ["a", "b", "c"], by_id=True))}, ["a", "b", "c"])
    lines = scheduled(env)
    line = lines["CloudWatch custom metrics"]
    metrics = HEADLINE + 3 + 3
    assert line.monthly_usd == pytest.approx(metrics * DAILY_RUNS * METRIC / 730)
    assert line.basis == (f"1 schedule x 30.42 runs/month x {metrics} metrics at most ({HEADLINE} headline, 3 FeaturePsi, 3 "
                          "FeatureSkewRate); each metric 1 h per run (at most the month) x $0.30/metric-month / the "
                          "month's hours (prorated by the hour with data; billed by whole months it would be up to 24 "
                          "times a daily run's) (rate unverified)")
    assert line.resources == ("Monitor",)
    assert lines["SageMaker processing jobs"].monthly_usd == pytest.approx(DAILY_RUNS * hourly("ml.m5.xlarge") * 10 / 60)
    assert env.scheduled_usd == pytest.approx(line.monthly_usd + lines["SageMaker processing jobs"].monthly_usd)


def test_a_model_not_scored_by_id_publishes_no_skew_series_and_a_job_that_publishes_nothing_no_line(tmp_path):
    env = with_spec(tmp_path, {
        "Monitor": job_schedule(DAILY, "createProcessingJob", monitor_request(["a", "b"])),
        "Quiet": job_schedule(DAILY, "createProcessingJob", monitor_request(["a", "b"], publish=False)),
    }, ["a", "b"])
    line = scheduled(env)["CloudWatch custom metrics"]
    assert line.resources == ("Monitor",)
    assert line.monthly_usd == pytest.approx((HEADLINE + 2) * DAILY_RUNS * METRIC / 730)


def test_an_hourly_monitor_pays_each_series_the_whole_month_not_more(tmp_path):
    """GIVEN runs every 30 minutes (more than one an hour) THEN each series is billed 730 of 730 hours: a full metric-month."""
    env = with_spec(tmp_path, {"Monitor": job_schedule("rate(30 minutes)", "createProcessingJob",
                                                       monitor_request(["a"]))}, ["a"])
    line = scheduled(env)["CloudWatch custom metrics"]
    assert line.monthly_usd == pytest.approx((HEADLINE + 1) * METRIC)


def test_a_model_spec_missing_from_the_assembly_makes_the_line_unknown(tmp_path):
    env = floor_of(tmp_path, {"Monitor": job_schedule(DAILY, "createProcessingJob", monitor_request(["a"]))})
    line = scheduled(env)["CloudWatch custom metrics"]
    assert line.monthly_usd is None
    assert line.basis == ("unknown: mlops-loop-prod-operations/Monitor: its model spec abc123.json (how many features it "
                          "publishes a series for) is not an asset of the assembly")


def function_rule(expression: str, payload: dict) -> dict:
    """A scheduled EventBridge rule invoking a Lambda function (in the same template, ``Function``) with ``payload``."""
    return {"Type": "AWS::Events::Rule",
            "Properties": {"ScheduleExpression": expression, "State": "ENABLED",
                           "Targets": [{"Arn": {"Fn::GetAtt": ["Function", "Arn"]}, "Id": "Target0",
                                        "Input": json.dumps(payload)}]}}


def test_the_deploy_handler_s_hourly_log_retention_sweep_publishes_one_metric_the_whole_month(tmp_path):
    """GIVEN the deploy function's hourly log-retention sweep (every run publishes EndpointLogGroupsNotSet, 0 when all
    is set, for its alarm) beside a daily drift monitor WHEN priced THEN the custom-metrics line counts that metric a
    whole metric-month (730 runs x 1 h), named, with the monitor's series; another function schedule adds nothing."""
    env = with_spec(tmp_path, {
        "Monitor": job_schedule(DAILY, "createProcessingJob", monitor_request(["a"])),
        "Sweep": function_rule("rate(1 hour)", {"action": LOG_RETENTION_ACTION}),
        "Other": function_rule("rate(1 hour)", {"action": "record-run"}),
    }, ["a"])
    line = scheduled(env)["CloudWatch custom metrics"]
    assert line.resources == ("Monitor", "Sweep")
    assert line.monthly_usd == pytest.approx((HEADLINE + 1) * DAILY_RUNS * METRIC / 730 + METRIC)
    assert line.basis.startswith(f"1 schedule x 30.42 runs/month x {HEADLINE + 1} metrics at most ({HEADLINE} headline, 1 "
                                 f"FeaturePsi) + 1 schedule x 730 runs/month x 1 metric ({LOG_RETENTION_NOT_SET_METRIC}, the "
                                 f"deploy handler's {LOG_RETENTION_ACTION} sweep); each metric 1 h per run")


# --------------------------------------------------------------------------------------------------------------------
# The real app
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.synth
def test_real_app_every_scheduled_job_of_the_templates_is_in_the_scheduled_column(synthesized):
    """GIVEN the app as configured WHEN its floor is read THEN every Glue job and crawler, every scheduled SageMaker
    job and every pipeline a retraining schedule starts is in a scheduled line at a known price, the scheduled
    estimate is positive and kept out of the always-on total, and no environment of the sample runs in a VPC unless its
    config says so."""
    by_stage: dict[str, dict[str, dict]] = {}
    for (stage, _), stack in synthesized.stacks.items():
        by_stage.setdefault(stage, {}).update(stack.template.get("Resources", {}))
    for env in floor_report(synthesized.outdir):
        resources = by_stage[env.environment]
        counted = {r for line in env.lines if line.category == "scheduled" for r in line.resources}
        glue = {k for k, r in resources.items() if r["Type"] in ("AWS::Glue::Job", "AWS::Glue::Crawler")}
        jobs = {k for k, r in resources.items() if r["Type"] == "AWS::Scheduler::Schedule"
                and "aws-sdk:sagemaker:create" in json.dumps(r["Properties"]["Target"]["Arn"])}
        jobs |= {k for k, r in resources.items() if r["Type"] == "AWS::SageMaker::MonitoringSchedule"}
        retraining = {k for k, r in resources.items() if r["Type"] == "AWS::Scheduler::Schedule"
                      and '"reason": "schedule"' in json.dumps(r["Properties"]["Target"].get("Input"))}
        assert glue and jobs and glue | jobs | retraining <= counted
        publishing = {k for k in jobs if "--publish-metrics" in json.dumps(resources[k]["Properties"].get("Target"))}
        sweeps = {k for k, r in resources.items() if r["Type"] == "AWS::Events::Rule"
                  and any(json.loads(t.get("Input") or "{}").get("action") == LOG_RETENTION_ACTION
                          for t in r["Properties"].get("Targets", []))}
        (metrics,) = [line for line in env.lines if line.label == "CloudWatch custom metrics"]
        assert publishing and set(metrics.resources) == publishing | sweeps
        assert all(line.monthly_usd is not None and line.monthly_usd > 0
                   for line in env.lines if line.category == "scheduled")
        assert env.scheduled_usd > 0
        assert env.total_usd == pytest.approx(env.compute_usd + env.fixed_usd)
        assert env.total_with_schedules_usd == pytest.approx(env.total_usd + env.scheduled_usd)
        in_vpc = synthesized.config.environments[env.environment].network is not None
        assert any(line.label.startswith("Interface VPC endpoints (required") for line in env.lines) == in_vpc
