"""Small cloud assemblies written in a test's tmp_path, laid out as ``cdk synth`` writes them (a top-level
manifest.json naming one nested assembly per stage, each with its own manifest.json and templates), and the
serving resources the tests put in them. They carry no source stamp: a CLI reads them with ``--allow-stale``."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline_code.core.images import HANDLER_PYTHON

# The runtime of the functions these templates hold: the handlers' (mlops_loop/constructs/handler_function.py).
HANDLER_RUNTIME_NAME = "python{}.{}".format(*HANDLER_PYTHON)


def write_assembly(
    root: Path,
    stages: dict[str, dict[str, dict]],
    *,
    region: str = "eu-west-1",
    account: str = "111111111111",
    project: str = "mlops-loop",
    protected: tuple[str, ...] = (),
) -> Path:
    """``stages``: stage -> stack construct id -> template. Every stack deploys to ``aws://<account>/<region>`` as
    ``<project>-<stage>-<construct id, lower case>``, as the app names them; the construct ids in ``protected``
    have termination protection."""
    root.mkdir(parents=True, exist_ok=True)
    artifacts: dict[str, dict] = {}
    for stage, templates in stages.items():
        directory = f"assembly-{stage}"
        artifacts[directory] = {
            "type": "cdk:cloud-assembly",
            "properties": {"directoryName": directory, "displayName": stage},
        }
        stage_dir = root / directory
        stage_dir.mkdir()
        stage_artifacts: dict[str, dict] = {}
        for construct_id, template in templates.items():
            artifact_id = f"{stage}{construct_id}0A1B2C3D"
            (stage_dir / f"{artifact_id}.template.json").write_text(json.dumps(template))
            stage_artifacts[f"{artifact_id}.assets"] = {
                "type": "cdk:asset-manifest",
                "properties": {"file": f"{artifact_id}.assets.json"},
            }
            stage_artifacts[artifact_id] = {
                "type": "aws:cloudformation:stack",
                "environment": f"aws://{account}/{region}",
                "properties": {
                    "templateFile": f"{artifact_id}.template.json",
                    "terminationProtection": construct_id in protected,
                    "stackName": f"{project}-{stage}-{construct_id.lower()}",
                },
                "displayName": f"{stage}/{construct_id}",
            }
        (stage_dir / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": stage_artifacts}))
    artifacts["Tree"] = {"type": "cdk:tree", "properties": {"file": "tree.json"}}
    (root / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": artifacts}))
    return root


def template(resources: dict, *, parameters: dict | None = None, conditions: dict | None = None) -> dict:
    bootstrap = {"BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>"}}
    out: dict = {"Resources": resources, "Parameters": {**bootstrap, **(parameters or {})}}
    if conditions:
        out["Conditions"] = conditions
    return out


def endpoint(name: str, config_id: str, *, model: str | None = None, mode: str | None = None,
             condition: str | None = None, by_ref: bool = False) -> dict:
    config_name = {"Ref": config_id} if by_ref else {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
    resource: dict = {
        "Type": "AWS::SageMaker::Endpoint",
        "Properties": {"EndpointName": name, "EndpointConfigName": config_name},
    }
    if model:
        resource["Metadata"] = {"mlops-loop": {"model": model, **({"mode": mode} if mode else {})}}
    if condition:
        resource["Condition"] = condition
    return resource


def instance_config(instance_type: str = "ml.m5.large", count: int = 1, *, is_async: bool = False,
                    condition: str | None = None) -> dict:
    props: dict = {
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                "InstanceType": instance_type,
                "InitialInstanceCount": count,
                "InitialVariantWeight": 1,
            }
        ]
    }
    if is_async:
        props["AsyncInferenceConfig"] = {"OutputConfig": {"S3OutputPath": "s3://bucket/async/"}}
    resource = {"Type": "AWS::SageMaker::EndpointConfig", "Properties": props}
    if condition:
        resource["Condition"] = condition
    return resource


def serverless_config(memory_mb: int = 2048, *, provisioned: int | None = None, max_concurrency: int = 10) -> dict:
    serverless = {"MemorySizeInMB": memory_mb, "MaxConcurrency": max_concurrency}
    if provisioned is not None:
        serverless["ProvisionedConcurrency"] = provisioned
    return {
        "Type": "AWS::SageMaker::EndpointConfig",
        "Properties": {
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m", "ServerlessConfig": serverless}]
        },
    }


# --------------------------------------------------------------------------------------------------------------------
# Scheduled work (the cost floor's "scheduled" column) and VPC configuration
# --------------------------------------------------------------------------------------------------------------------
def glue_job(name: str, *, worker_type: str = "G.1X", workers: int = 2, glue_version: str = "5.0") -> dict:
    return {
        "Type": "AWS::Glue::Job",
        "Properties": {"Name": name, "Command": {"Name": "glueetl", "ScriptLocation": "s3://code/job.py"},
                       "Role": "arn:aws:iam::111111111111:role/glue", "GlueVersion": glue_version,
                       "WorkerType": worker_type, "NumberOfWorkers": workers},
    }


def glue_crawler(name: str, *, schedule: str | None = None) -> dict:
    props: dict = {"Name": name, "Role": "arn:aws:iam::111111111111:role/crawler", "DatabaseName": "db",
                   "Targets": {"S3Targets": [{"Path": "s3://raw/data/"}]}}
    if schedule is not None:
        props["Schedule"] = {"ScheduleExpression": schedule}
    return {"Type": "AWS::Glue::Crawler", "Properties": props}


def scheduled_trigger(schedule: str, *, job: str | None = None, crawler: str | None = None,
                      start: bool = True) -> dict:
    """A SCHEDULED Glue trigger starting the job or crawler of that logical id."""
    action = {"JobName": {"Ref": job}} if job else {"CrawlerName": {"Ref": crawler}}
    return {"Type": "AWS::Glue::Trigger",
            "Properties": {"Type": "SCHEDULED", "Schedule": schedule, "StartOnCreation": start, "Actions": [action]}}


def conditional_trigger(*, after_crawler: str | None = None, after_job: str | None = None, job: str) -> dict:
    """A CONDITIONAL Glue trigger starting ``job`` once the crawler or job of that logical id succeeded."""
    condition = ({"CrawlerName": {"Ref": after_crawler}, "CrawlState": "SUCCEEDED", "LogicalOperator": "EQUALS"}
                 if after_crawler else {"JobName": {"Ref": after_job}, "State": "SUCCEEDED", "LogicalOperator": "EQUALS"})
    return {"Type": "AWS::Glue::Trigger",
            "Properties": {"Type": "CONDITIONAL", "StartOnCreation": True, "Predicate": {"Conditions": [condition]},
                           "Actions": [{"JobName": {"Ref": job}}]}}


def job_schedule(expression: str, action: str, request: dict, *, role_token: bool = True,
                 condition: str | None = None) -> dict:
    """An EventBridge Scheduler schedule whose universal target ``aws-sdk:sagemaker:<action>`` sends ``request``; with
    ``role_token`` the Input is an Fn::Join holding a role ARN known only at deploy time, as CDK writes it."""
    text = json.dumps(request)
    payload: object = text
    if role_token:
        head, tail = json.dumps({"RoleArn": "ROLE", **request}).split("ROLE", 1)
        payload = {"Fn::Join": ["", [head, {"Fn::GetAtt": ["JobRole", "Arn"]}, tail]]}
    resource: dict = {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {"ScheduleExpression": expression, "FlexibleTimeWindow": {"Mode": "OFF"},
                       "Target": {"Arn": f"arn:aws:scheduler:::aws-sdk:sagemaker:{action}",
                                  "RoleArn": "arn:aws:iam::111111111111:role/scheduler", "Input": payload}},
    }
    if condition:
        resource["Condition"] = condition
    return resource


def processing_request(instance_type: str = "ml.m5.xlarge", count: int = 1) -> dict:
    return {"ProcessingJobName": "mon-0123456789-<aws.scheduler.execution-id>",
            "ProcessingResources": {"ClusterConfig": {"InstanceType": instance_type, "InstanceCount": count,
                                                      "VolumeSizeInGB": 30}}}


def transform_request(instance_type: str = "ml.m5.large", count: int = 1) -> dict:
    return {"TransformJobName": "bt-0123456789-<aws.scheduler.execution-id>",
            "TransformResources": {"InstanceType": instance_type, "InstanceCount": count}}


def function_schedule(expression: str, payload: dict) -> dict:
    """A schedule invoking a Lambda function (in the same template, ``Function``) with ``payload``."""
    return {"Type": "AWS::Scheduler::Schedule",
            "Properties": {"ScheduleExpression": expression, "FlexibleTimeWindow": {"Mode": "OFF"},
                           "Target": {"Arn": {"Fn::GetAtt": ["Function", "Arn"]},
                                      "RoleArn": "arn:aws:iam::111111111111:role/scheduler",
                                      "Input": json.dumps(payload)}}}


def pipeline(name: str, steps: list[dict], *, parameters: list[dict] | None = None) -> dict:
    """An AWS::SageMaker::Pipeline whose definition (an Fn::Join with a bucket token, as CDK writes it) has ``steps``."""
    definition = json.dumps({"Version": "2020-12-01", "Parameters": parameters or [], "Steps": steps,
                             "Metadata": {"Bucket": "BUCKET"}})
    head, tail = definition.split("BUCKET", 1)
    return {"Type": "AWS::SageMaker::Pipeline",
            "Properties": {"PipelineName": name, "RoleArn": "arn:aws:iam::111111111111:role/pipeline",
                           "PipelineDefinition": {"PipelineDefinitionBody": {
                               "Fn::Join": ["", [head, {"Ref": "Bucket"}, tail]]}}}}


def processing_step(name: str, instance_type: object = "ml.m5.xlarge", count: object = 1) -> dict:
    return {"Name": name, "Type": "Processing", "Arguments": {"ProcessingResources": {"ClusterConfig": {
        "InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 30}}}}


def training_step(name: str, instance_type: object = "ml.m5.2xlarge", count: object = 1) -> dict:
    return {"Name": name, "Type": "Training", "Arguments": {"ResourceConfig": {
        "InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 30}}}


def condition_step(name: str, if_steps: list[dict], else_steps: list[dict] = ()) -> dict:
    return {"Name": name, "Type": "Condition", "Arguments": {"Conditions": [], "IfSteps": list(if_steps),
                                                              "ElseSteps": list(else_steps)}}


def vpc_function(subnets: list[str]) -> dict:
    """A Lambda function running in the given subnets."""
    return {"Type": "AWS::Lambda::Function",
            "Properties": {"Role": "arn:aws:iam::111111111111:role/fn", "Runtime": HANDLER_RUNTIME_NAME,
                           "VpcConfig": {"SubnetIds": subnets, "SecurityGroupIds": ["sg-0123456789abcdef0"]}}}


def monitoring_definition(name: str, instance_type: str = "ml.m5.xlarge", count: int = 1, *,
                          kind: str = "ModelQuality", condition: str | None = None) -> dict:
    """A native Model Monitor job definition (``AWS::SageMaker::<kind>JobDefinition``) named ``name``."""
    resource: dict = {"Type": f"AWS::SageMaker::{kind}JobDefinition",
                      "Properties": {"JobDefinitionName": name, "RoleArn": "arn:aws:iam::111111111111:role/monitor",
                                     "JobResources": {"ClusterConfig": {"InstanceType": instance_type,
                                                                        "InstanceCount": count, "VolumeSizeInGB": 20}}}}
    if condition:
        resource["Condition"] = condition
    return resource


def monitoring_schedule(expression: str, definition: object = None, *, inline: dict | None = None,
                        kind: str = "ModelQuality", condition: str | None = None) -> dict:
    """An ``AWS::SageMaker::MonitoringSchedule`` running the definition named (or referenced) by ``definition``, or
    the ``inline`` MonitoringJobDefinition."""
    config: dict = {"MonitoringType": kind, "ScheduleConfig": {"ScheduleExpression": expression}}
    if inline is not None:
        config["MonitoringJobDefinition"] = inline
    else:
        config["MonitoringJobDefinitionName"] = definition
    resource: dict = {"Type": "AWS::SageMaker::MonitoringSchedule",
                      "Properties": {"MonitoringScheduleName": "mlops-loop-prod-churn-mq", "EndpointName": "churn",
                                     "MonitoringScheduleConfig": config}}
    if condition:
        resource["Condition"] = condition
    return resource
