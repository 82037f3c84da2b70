"""Small cloud assemblies written in a test's tmp_path, laid out as ``cdk synth`` writes them (a top-level
manifest.json naming one nested assembly per stage, each with its own manifest.json and templates), and the
serving resources the tests put in them. They carry no source stamp: a CLI reads them with ``--allow-stale``."""

from __future__ import annotations

import json
from pathlib import Path


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


def serverless_config(memory_mb: int = 2048, *, provisioned: int | None = None) -> dict:
    serverless = {"MemorySizeInMB": memory_mb, "MaxConcurrency": 10}
    if provisioned is not None:
        serverless["ProvisionedConcurrency"] = provisioned
    return {
        "Type": "AWS::SageMaker::EndpointConfig",
        "Properties": {
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m", "ServerlessConfig": serverless}]
        },
    }
