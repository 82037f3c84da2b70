"""The diff's data model: property, resource, stack and assembly changes, and the call-out categories."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from ..cloud_assembly import construct_id


# The path segment under which an embedded JSON document's parsed form appears.
JSON_SEGMENT = "<json>"

# Resource types that hold data (or whose identity others depend on, like a key): deleting or
# replacing one loses what it holds unless the old physical resource is retained.
STATEFUL_TYPES = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
        "AWS::Glue::Database",
        "AWS::Glue::Table",
        "AWS::SageMaker::FeatureGroup",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::SageMaker::ModelPackage",
        # Deleting a pipeline deletes all its executions: the run records of every version it registered.
        "AWS::SageMaker::Pipeline",
        "AWS::SageMaker::Domain",
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::SQS::Queue",
        "AWS::Kinesis::Stream",
        "AWS::KinesisFirehose::DeliveryStream",
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBCluster",
        "AWS::EFS::FileSystem",
        "AWS::ECR::Repository",
        "AWS::SecretsManager::Secret",
        "AWS::Backup::BackupVault",
        "AWS::OpenSearchService::Domain",
        "AWS::Timestream::Table",
        "AWS::Cognito::UserPool",
    }
)


def format_path(path: Sequence[str]) -> str:
    parts = list(path[1:]) if path and path[0] == "Properties" else list(path)
    out = ""
    for part in parts:
        if part.startswith("[") or part == JSON_SEGMENT:
            out += part
        else:
            out += ("." if out else "") + part
    return out or "(resource)"


CATEGORY_MOVED = "MOVED"
CATEGORY_LEFT_RUNNING = "LEFT RUNNING"
CATEGORY_DATA_AT_RISK = "DATA AT RISK"
CATEGORY_UPDATE_FAILS = "UPDATE FAILS"
# A role, or statements of a role, taken away from jobs, pipelines, schedules or functions that ran as it in the base:
# a run in progress during the deploy is denied from then on, partway (see .running_work).
CATEGORY_RUNNING_WORK = "RUNNING WORK"
CATEGORY_IAM = "IAM"
CATEGORY_SECURITY_GROUPS = "Security groups"
CATEGORY_KMS = "KMS"
# The deletion policies under which CloudFormation keeps a resource it removes from a stack (RetainExceptOnCreate:
# except when the create that made it rolls back).
KEPT_DELETION_POLICIES = ("Retain", "RetainExceptOnCreate")
CATEGORY_RETENTION = "Data retention"
CATEGORY_SERVING = "SERVING STOPS"
# What a deployed model's next version answers changes (its target, problem type, classes or features): in the templates
# only its training pipeline's model-spec asset, read from each side's assembly.
CATEGORY_CONTRACT = "MODEL CONTRACT"
# The promotion gate loosened, approval no longer asked for, a model's network isolation turned off.
CATEGORY_GOVERNANCE = "GOVERNANCE"
# A cap on what serving may cost raised (autoscaling MaxCapacity, serverless MaxConcurrency or ProvisionedConcurrency,
# a function's reserved concurrency): IAM cannot cap counts, so the template's value is the only cap.
CATEGORY_COST = "COST"
# A container image the templates run moves (pipeline steps, scheduled jobs, a SageMaker Model): said once per
# environment, with what deployed endpoints keep meanwhile.
CATEGORY_IMAGE = "IMAGE"
# A pipeline's tuning job searching another way (objective, ranges, budget, strategy; tuning on or off): which trial the
# next run keeps and registers.
CATEGORY_TUNING = "TUNING"
CATEGORIES = (
    CATEGORY_MOVED, CATEGORY_LEFT_RUNNING, CATEGORY_DATA_AT_RISK, CATEGORY_SERVING, CATEGORY_UPDATE_FAILS,
    CATEGORY_CONTRACT, CATEGORY_RUNNING_WORK, CATEGORY_GOVERNANCE, CATEGORY_COST, CATEGORY_IMAGE, CATEGORY_TUNING, CATEGORY_IAM, CATEGORY_SECURITY_GROUPS, CATEGORY_KMS,
    CATEGORY_RETENTION,
)
# The categories a reviewer must not miss: marked with a warning sign in the pull-request comment.
WARNING_CATEGORIES = frozenset(
    {CATEGORY_MOVED, CATEGORY_LEFT_RUNNING, CATEGORY_DATA_AT_RISK, CATEGORY_SERVING, CATEGORY_UPDATE_FAILS,
     CATEGORY_CONTRACT, CATEGORY_RUNNING_WORK, CATEGORY_GOVERNANCE, CATEGORY_COST}
)

# Resources callers reach the models through: removing one stops answering them.
SERVING_TYPES = frozenset({"AWS::SageMaker::Endpoint", "AWS::Lambda::Url", "AWS::SageMaker::InferenceComponent"})

class TemplateDiffError(Exception):
    """The diff could not be produced; the message says what to fix."""


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()



@dataclass
class PropertyChange:
    """One changed value at ``path`` (property names, ``[Key=value]``/``[i]`` list items, ``<json>``)."""

    path: tuple[str, ...]
    old: Any
    new: Any
    asset_only: bool = False  # differs only by an asset hash / code digest
    # A statement that leaves one policy of a role for another of the same role: "moved to <policy> (same role)" on
    # its removal, "moved from <policy> (same role)" on its addition (shown instead of the statement).
    moved: str = ""

    @property
    def dotted(self) -> str:
        return format_path(self.path)


@dataclass
class ResourceChange:
    logical_id: str
    resource_type: str
    kind: str  # "added" | "removed" | "modified" | "replaced"
    changes: list[PropertyChange] = field(default_factory=list)
    replacement: str = "no"  # "no" | "yes" | "conditional" | "unknown"
    replacement_reasons: list[str] = field(default_factory=list)
    renamed_from: Optional[str] = None
    deletion_policy: str = "Delete"
    update_replace_policy: str = "Delete"
    notes: list[str] = field(default_factory=list)
    # The resource as the base and the head template declare it (a modified or replaced one): for rules that
    # judge a property as a whole rather than the values that changed in it (an endpoint config's serving mode).
    before: Optional[dict] = field(default=None, repr=False, compare=False)
    after: Optional[dict] = field(default=None, repr=False, compare=False)

    @property
    def stateful(self) -> bool:
        return self.resource_type in STATEFUL_TYPES

    @property
    def asset_only(self) -> bool:
        return self.kind == "modified" and bool(self.changes) and all(c.asset_only for c in self.changes)

    @property
    def label(self) -> str:
        if self.kind == "replaced" and self.renamed_from:
            return f"replaced (renamed from {self.renamed_from})"
        if self.kind == "replaced" and self.replacement == "conditional":
            return "replaced (if the conditional create-only property requires it)"
        if self.kind == "modified" and self.replacement == "unknown":
            return "modified (replacement unknown)"
        if self.asset_only:
            return "modified (asset changed)"
        return self.kind


@dataclass(frozen=True)
class StackLocation:
    """Where one side's stack deploys: its environment (stage) and artifact in the app, its CloudFormation name
    and target (``aws://<account>/<region>``)."""

    stage: str
    artifact_id: str
    stack_name: str
    environment: str
    termination_protection: bool = False

    @property
    def where(self) -> str:
        """``<stack name> in aws://<account>/<region>`` (the name alone when the manifest names no target)."""
        return f"{self.stack_name} in {self.environment}" if self.environment else self.stack_name

    @property
    def pattern(self) -> str:
        """The stack's ``cdk`` selector in its assembly: ``<environment>/<construct id>`` (``prod/Storage``)."""
        return f"{self.stage}/{construct_id(self.stage, self.artifact_id)}"


@dataclass
class StackDiff:
    stage: str
    artifact_id: str
    stack_name: str
    # "added" | "removed" (from the app: left deployed) | "moved" (a new stack elsewhere) | "changed" | "unchanged"
    status: str
    resources: list[ResourceChange] = field(default_factory=list)
    stack_changes: list[PropertyChange] = field(default_factory=list)  # parameters, conditions, outputs, termination protection
    # A moved stack's new location and the old one ``cdk deploy`` leaves as it is; a removed stack's old location.
    location: Optional[StackLocation] = None
    moved_from: Optional[StackLocation] = None

    @property
    def short_name(self) -> str:
        # The construct id (Storage, Training, ...) reads better than the artifact id with its hash.
        return construct_id(self.stage, self.artifact_id)

    @property
    def status_label(self) -> str:
        """The status as the listing prints it: a moved or removed stack also says where it is left running."""
        if self.status == "moved" and self.location and self.moved_from:
            return (f"moved: a new stack in {self.location.environment or 'its target'}; the old one, "
                    f"{self.moved_from.where}, is left as it is")
        if self.status == "removed" and self.location:
            return f"removed from the app; the stack, {self.location.where}, is left as it is"
        return self.status


@dataclass
class Callout:
    stage: str
    category: str
    stack: str
    logical_id: str
    resource_type: str
    message: str


@dataclass
class AssemblyDiff:
    environments: list[str]
    stacks: list[StackDiff]
    callouts: list[Callout]
    # What changed in the code behind "asset changed" resources (a ``git_synth.CodeChanges``), set by the CLI when a
    # resource's asset changed; None: not looked up.
    code_changes: Optional[Any] = None

    @property
    def assets_changed(self) -> bool:
        """Whether a resource changes only or also by an asset hash (new job code, handler, pipeline steps)."""
        return any(c.asset_only for s in self.stacks for r in s.resources for c in r.changes)

    def for_stage(self, stage: str) -> list[StackDiff]:
        return [s for s in self.stacks if s.stage == stage]

    def callouts_for(self, stage: str) -> list[Callout]:
        order = {c: i for i, c in enumerate(CATEGORIES)}
        return sorted((c for c in self.callouts if c.stage == stage), key=lambda c: order[c.category])

    def counts(self, stage: str) -> dict[str, int]:
        out = {"stacks added": 0, "stacks removed": 0, "stacks moved": 0, "added": 0, "removed": 0, "modified": 0,
               "replaced": 0}
        for s in self.for_stage(stage):
            if s.status in ("added", "removed", "moved"):
                out[f"stacks {s.status}"] += 1
            for r in s.resources:
                out[r.kind] += 1
        out["call-outs"] = len(self.callouts_for(stage))
        return out

    @property
    def is_empty(self) -> bool:
        return not self.callouts and all(s.status == "unchanged" for s in self.stacks)


def refers_to(value: object, logical_id: str) -> bool:
    """Whether ``value`` (a resource or a part of one) holds a Ref or Fn::GetAtt to ``logical_id``."""
    if isinstance(value, dict):
        if value.get("Ref") == logical_id:
            return True
        target = value.get("Fn::GetAtt")
        if isinstance(target, list) and target and target[0] == logical_id:
            return True
        return any(refers_to(v, logical_id) for v in value.values())
    if isinstance(value, list):
        return any(refers_to(v, logical_id) for v in value)
    return False
