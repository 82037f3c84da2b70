"""What each AWS service accepts as a physical name, for the names the app writes into its templates.

Each rule is the service's documented limit (length and characters, from the CloudFormation resource
specification and the services' API references); :func:`name_problems` applies them to every literal
name of a synthesized template. Names CloudFormation generates (properties left unset) are not checked:
CloudFormation makes them valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

# SageMaker's names: letters and digits, single or repeated dashes between them.
_SAGEMAKER = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"


@dataclass(frozen=True)
class NameRule:
    service: str
    max_length: int
    pattern: str

    def problem(self, name: str) -> str:
        if not 1 <= len(name) <= self.max_length:
            return f"is {len(name)} characters; {self.service} allows 1-{self.max_length}"
        if not re.match(self.pattern, name):
            return f"does not match {self.service}'s pattern {self.pattern}"
        return ""


# (resource type, property) -> rule.
RULES: dict[tuple[str, str], NameRule] = {
    ("AWS::S3::Bucket", "BucketName"): NameRule("S3", 63, r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"),
    ("AWS::SageMaker::Endpoint", "EndpointName"): NameRule("SageMaker", 63, _SAGEMAKER),
    ("AWS::SageMaker::EndpointConfig", "EndpointConfigName"): NameRule("SageMaker", 63, _SAGEMAKER),
    ("AWS::SageMaker::Model", "ModelName"): NameRule("SageMaker", 63, _SAGEMAKER),
    ("AWS::SageMaker::Pipeline", "PipelineName"): NameRule("SageMaker", 256, _SAGEMAKER),
    ("AWS::SageMaker::ModelPackageGroup", "ModelPackageGroupName"): NameRule("SageMaker", 63, _SAGEMAKER),
    ("AWS::SageMaker::FeatureGroup", "FeatureGroupName"): NameRule("Feature Store", 64, _SAGEMAKER),
    ("AWS::SageMaker::MonitoringSchedule", "MonitoringScheduleName"): NameRule("SageMaker", 63, _SAGEMAKER),
    ("AWS::SageMaker::DataQualityJobDefinition", "JobDefinitionName"): NameRule("SageMaker", 63, _SAGEMAKER),
    ("AWS::SageMaker::ModelQualityJobDefinition", "JobDefinitionName"): NameRule("SageMaker", 63, _SAGEMAKER),
    ("AWS::SageMaker::ModelBiasJobDefinition", "JobDefinitionName"): NameRule("SageMaker", 63, _SAGEMAKER),
    ("AWS::SageMaker::ModelExplainabilityJobDefinition", "JobDefinitionName"): NameRule("SageMaker", 63, _SAGEMAKER),
    ("AWS::Scheduler::Schedule", "Name"): NameRule("EventBridge Scheduler", 64, r"^[0-9a-zA-Z-_.]+$"),
    ("AWS::Scheduler::ScheduleGroup", "Name"): NameRule("EventBridge Scheduler", 64, r"^[0-9a-zA-Z-_.]+$"),
    ("AWS::Events::Rule", "Name"): NameRule("EventBridge", 64, r"^[.\-_A-Za-z0-9]+$"),
    ("AWS::IAM::Role", "RoleName"): NameRule("IAM", 64, r"^[\w+=,.@-]+$"),
    ("AWS::IAM::ManagedPolicy", "ManagedPolicyName"): NameRule("IAM", 128, r"^[\w+=,.@-]+$"),
    ("AWS::Lambda::Function", "FunctionName"): NameRule("Lambda", 64, r"^[a-zA-Z0-9-_]+$"),
    ("AWS::CloudWatch::Alarm", "AlarmName"): NameRule("CloudWatch", 255, r"^[^\x00-\x1f]+$"),
    ("AWS::CloudWatch::Dashboard", "DashboardName"): NameRule("CloudWatch", 255, r"^[a-zA-Z0-9_-]+$"),
    ("AWS::SQS::Queue", "QueueName"): NameRule("SQS", 80, r"^[a-zA-Z0-9_-]+(\.fifo)?$"),
    ("AWS::SNS::Topic", "TopicName"): NameRule("SNS", 256, r"^[a-zA-Z0-9_-]+$"),
    ("AWS::Glue::Job", "Name"): NameRule("Glue", 255, r"^[\w\-.]+$"),
    ("AWS::Glue::Workflow", "Name"): NameRule("Glue", 255, r"^[\w\-.]+$"),
    ("AWS::Glue::Trigger", "Name"): NameRule("Glue", 255, r"^[\w\-.]+$"),
    ("AWS::Glue::Crawler", "Name"): NameRule("Glue", 255, r"^[\w\-.]+$"),
    ("AWS::Glue::SecurityConfiguration", "Name"): NameRule("Glue", 255, r"^[\w\-.]+$"),
    ("AWS::KMS::Alias", "AliasName"): NameRule("KMS", 256, r"^alias/[a-zA-Z0-9/_-]+$"),
    ("AWS::SSM::Parameter", "Name"): NameRule("SSM", 2048, r"^/?[a-zA-Z0-9_.\-/]+$"),
    ("AWS::Logs::LogGroup", "LogGroupName"): NameRule("CloudWatch Logs", 512, r"^[.\-_/#A-Za-z0-9]+$"),
}
STACK_RULE = NameRule("CloudFormation", 128, r"^[A-Za-z][A-Za-z0-9-]*$")


def literal_names(template: dict) -> Iterable[tuple[str, str, str, str]]:
    """``(logical id, type, property, name)`` of every literal name a rule covers (intrinsics skipped)."""
    for logical_id, resource in template.get("Resources", {}).items():
        for (kind, prop), _rule in RULES.items():
            if resource.get("Type") == kind and isinstance(resource.get("Properties", {}).get(prop), str):
                yield logical_id, kind, prop, resource["Properties"][prop]


def name_problems(template: dict, where: str) -> list[str]:
    """One line per literal name of ``template`` its service would refuse."""
    out = []
    for logical_id, kind, prop, name in literal_names(template):
        problem = RULES[(kind, prop)].problem(name)
        if problem:
            out.append(f"{where}/{logical_id} ({kind}) {prop} {name!r} {problem}")
    return out
