"""What the code that runs in AWS calls, per role, on which resources -- and a scan that keeps the list complete.

Each :class:`Runtime` names the role a piece of job or handler code runs as, the modules it runs
(their ``pipeline_code`` imports are followed), and for every AWS operation that code makes the IAM
request(s) it needs, with the resources of one environment and model (:class:`Names`). The tests
check each request against the role's synthesized policy, and :func:`operations_in` scans the code
(boto3 client calls, paginators, S3 transfer helpers) so that an operation added to the code without
an entry here fails the suite. The scan reads the operations of :data:`SERVICES` only, so
:func:`client_services` lists the services the code makes clients of, which must all be among them.

The jobs that SageMaker Pipelines and EventBridge Scheduler create from the requests the templates carry are not
code of this kind: ``tests/infra/test_job_tags.py`` decides each such request (create, and tag on create) against
the role that sends it.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Mapping

import botocore.session
from botocore import xform_name

from mlops_loop.app_builder import REPO_ROOT
from pipeline_code.core.contract import pascal
from pipeline_code.core.contract import (DEFAULT_PROJECT, RETRAIN_ALARMS, monitor_namespace, parity_namespace,
                                         retraining_pause_parameter, retraining_reset_parameter)
from pipeline_code.core.integrity import ledger_key, run_record_key

from tests.support.iam_eval import IamModel

# The services the runtime code talks to; an operation of any of them is found by the scan.
SERVICES = ("sagemaker", "s3", "cloudformation", "sns", "cloudwatch", "sagemaker-runtime",
            "sagemaker-featurestore-runtime", "sqs", "sts", "scheduler", "ssm", "logs")
# boto3's S3 transfer helpers: the operations they make, as IAM actions.
TRANSFER_HELPERS = {"download_file", "download_fileobj", "upload_file", "upload_fileobj", "copy"}


@dataclass(frozen=True)
class Names:
    """The physical names of one environment and model as the app derives them, and its template resources."""

    iam: IamModel
    prefix: str
    model: str
    dataset: str
    project: str = DEFAULT_PROJECT
    multi_model_endpoint: str = ""  # the shared endpoint's name when the model is served by one
    self_capture: bool = False  # the serving code writes its own capture (serverless, multi-model)
    by_id: bool = False  # the model is scored by id (serving.by_id.enabled): a front function and a skew check
    compiled: bool = False  # the model is served on ml.inf2 (compiled): its rollouts run the parity check
    online_store: bool = True  # the environment's feature groups have an online store (feature_store.online_store)
    endpoint: bool = True  # the model is served by an endpoint (its own or a multi-model one), not in batch

    @property
    def account(self) -> str:
        return self.iam.account

    @property
    def environment(self) -> str:
        """The environment's name: the prefix is ``<project>-<env>``."""
        return self.prefix.removeprefix(f"{self.project}-")

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.iam.region}:{self.account}:{resource}"

    def bucket(self, kind: str) -> str:
        return f"{self.prefix}-{kind}-{self.account}-{self.iam.region}"

    def object(self, kind: str, key: str) -> str:
        return f"arn:aws:s3:::{self.bucket(kind)}/{key}"

    def bucket_arn(self, kind: str) -> str:
        return f"arn:aws:s3:::{self.bucket(kind)}"

    def resource(self, stack: str, logical_prefix: str, attribute: str = "") -> str:
        """The value a Ref (or GetAtt ``attribute``) of the one resource of ``stack`` whose id starts with
        ``logical_prefix`` resolves to -- what the policies that refer to it resolve to as well."""
        logical_id = self._logical_id(stack, logical_prefix)
        reference = {"Fn::GetAtt": [logical_id, attribute]} if attribute else {"Ref": logical_id}
        return self.iam.resolve(stack, reference)

    @property
    def traffic_uri(self) -> str:
        """Where the model's drift monitor reads traffic: its capture, or a batch model's transform data."""
        try:
            return self.monitor_argument("--capture-s3-uri")
        except ValueError:
            return self.monitor_argument("--batch-s3-uri")

    def monitor_argument(self, flag: str) -> str:
        """The value of ``flag`` in the arguments the model's drift-monitor schedule starts its job with
        (ValueError when the job is not given it)."""
        schedule = self.iam.stacks["Operations"].template["Resources"][self._logical_id("Operations", f"{pascal(self.model)}MonitorSchedule")]
        request = json.loads(self.iam.resolve("Operations", schedule["Properties"]["Target"]["Input"]))
        arguments = request["AppSpecification"]["ContainerArguments"]
        return arguments[arguments.index(flag) + 1]

    def glue_argument(self, job_suffix: str, flag: str) -> str:
        """The value of ``flag`` in the default arguments of the dataset's Glue job ``<prefix>-<dataset>-<job_suffix>``."""
        name = f"{self.prefix}-{self.dataset.replace('_', '-')}-{job_suffix}"
        (job,) = [r for r in self.iam.stacks["DataPipeline"].template["Resources"].values()
                  if r["Type"] == "AWS::Glue::Job" and r["Properties"]["Name"] == name]
        return self.iam.resolve("DataPipeline", job["Properties"]["DefaultArguments"][flag])

    def s3_object(self, uri: str, suffix: str) -> str:
        """The ARN of object ``suffix`` under ``s3://bucket/prefix/``."""
        return f"arn:aws:s3:::{uri.removeprefix('s3://')}{suffix}"

    def s3_listing(self, uri: str) -> Request:
        """ListBucket of the bucket of ``uri``, for keys under its prefix."""
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        return ("s3:ListBucket", {"bucket": f"arn:aws:s3:::{bucket}"}, {"s3:prefix": prefix})

    @property
    def data_key(self) -> str:
        return self.resource("Storage", "DataLakeKey", "Arn")

    def _logical_id(self, stack: str, logical_prefix: str) -> str:
        (logical_id,) = [lid for lid in self.iam.stacks[stack].template["Resources"]
                         if lid.startswith(logical_prefix) and len(lid) - len(logical_prefix) == 8
                         and lid[len(logical_prefix):].isalnum()]
        return logical_id

    @property
    def group(self) -> str:
        return f"{self.prefix}-{self.model}"

    @property
    def version(self) -> str:
        return self.arn("sagemaker", f"model-package/{self.group}/7")

    @property
    def group_arn(self) -> str:
        return self.arn("sagemaker", f"model-package-group/{self.group}")

    @property
    def deployer_role(self) -> str:
        """The serving stack's CloudFormation service role, which the deploy handler names in every UpdateStack."""
        return f"arn:aws:iam::{self.account}:role/{self.prefix}-serving-deployer"

    @property
    def serving_stack(self) -> str:
        return self.arn("cloudformation", f"stack/{self.prefix}-serving/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab")


# One IAM request: (action, {resource type: ARN} or {"*": "*"}, condition context).
Request = tuple[str, Mapping[str, str], Mapping[str, str]]
Calls = Mapping[str, Callable[[Names], list[Request]]]


def _one(action: str, resource_type: str, arn_of: Callable[[Names], str], **context: str) -> Callable[[Names], list[Request]]:
    return lambda n: [(action, {resource_type: arn_of(n)}, context)]


@dataclass(frozen=True)
class Runtime:
    """Code that runs in AWS as one role, and what each AWS operation it makes needs."""

    name: str
    modules: tuple[str, ...]  # entry modules, relative to the repository
    calls: Calls  # snake_case operation -> the IAM requests it makes
    # Calls in imported modules that this role's code never reaches: (module, operations) -> why.
    unreached: Mapping[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)


def _when_shared(n: Names, requests: Callable[[], list[Request]]) -> list[Request]:
    """The requests of a multi-model code path, for a model served by a multi-model endpoint (else none)."""
    return requests() if n.multi_model_endpoint else []


def _when_compiled(n: Names, requests: Callable[[], list[Request]]) -> list[Request]:
    """The requests of the rollout parity check, for a model compiled for Inferentia2 (else none)."""
    return requests() if n.compiled else []


def _when_endpoint_checked(n: Names, requests: Callable[[str], list[Request]]) -> list[Request]:
    """The requests of the drift monitor's endpoint checks, for a model whose monitor is given its endpoint (else none)."""
    try:
        endpoint = n.monitor_argument("--endpoint-name")
    except ValueError:
        return []
    return requests(endpoint)


def _sealed(n: Names) -> str:
    """A sealed artefact's key (pipeline_code.core.integrity.sealed_key)."""
    return f"pipelines/{n.model}/registered/{'ab' * 32}/model.tar.gz"


def _execution(n: Names) -> str:
    """An execution of the model's training pipeline (what a registered version's GeneratedBy names)."""
    return n.arn("sagemaker", f"pipeline/{n.prefix}-{n.model}-training/execution/abc123")


def _model_versions(n: Names) -> list[Request]:
    return [("sagemaker:ListModelPackages", {"model-package-group": n.group_arn}, {})]


RUNTIMES: tuple[Runtime, ...] = (
    Runtime(
        "deploy-on-approval handler",
        ("pipeline_code/handlers/deploy_on_approval.py",),
        {
            # The registry (the serving rule), and at an execution's end the versions created since it started, each
            # described to find the one its GeneratedBy names (record-execution).
            "list_model_packages": _model_versions,
            "describe_model_package": _one("sagemaker:DescribeModelPackage", "model-package", lambda n: n.version),
            "describe_stacks": _one("cloudformation:DescribeStacks", "stack", lambda n: n.serving_stack),
            # Whether an approval's rollout was rolled back (a failed version is held, not retried).
            "describe_stack_events": _one("cloudformation:DescribeStackEvents", "stack", lambda n: n.serving_stack),
            # UpdateStack names the deployer role (RoleARN, so cloudformation:RoleArn) and passes it to CloudFormation:
            # iam:PassRole on it, too.
            "update_stack": lambda n: [
                ("cloudformation:UpdateStack", {"stack": n.serving_stack}, {"cloudformation:RoleArn": n.deployer_role}),
                ("iam:PassRole", {"role": n.deployer_role}, {"iam:PassedToService": "cloudformation.amazonaws.com"}),
            ],
            # A busy stack: a one-time schedule in the handler's own group invokes it again, as the retry role.
            "create_schedule": lambda n: [
                ("scheduler:CreateSchedule", {"schedule": n.arn("scheduler", f"schedule/{n.prefix}-deploy-retries/deploy-retry-1")}, {}),
                ("iam:PassRole", {"role": n.resource("Operations", "DeployOnApprovalRetryRole", "Arn")},
                 {"iam:PassedToService": "scheduler.amazonaws.com"}),
            ],
            # The approval ledger: one write-once record per observed decision (If-None-Match, which the artifacts
            # bucket's policy requires there), SSE-KMS with the data key.
            "put_object": lambda n: [
                # (below the package's creation time: integrity.ledger_package_prefix)
                ("s3:PutObject",
                 {"object": n.object("artifacts", ledger_key(n.model, 7, dt.datetime(2027, 1, 1), "Approved", "ab12cd34",
                                                             "20261201T000000Z"))},
                 {"s3:if-none-match": "*"}),
                # An approved version's run record: one write-once document per package (If-None-Match, required there).
                ("s3:PutObject", {"object": n.object("artifacts", run_record_key(n.model, 7, "20261201T000000Z"))},
                 {"s3:if-none-match": "*"}),
                ("kms:GenerateDataKey", {"key": n.data_key}, {}),
            ],
            # The run record reads the execution that registered the version (its GeneratedBy): the execution (also its
            # start, at its end: record-execution), the definition it ran, its parameters and its steps.
            **{operation: _one(f"sagemaker:{action}", "pipeline-execution", _execution)
               for operation, action in (("describe_pipeline_execution", "DescribePipelineExecution"),
                                         ("describe_pipeline_definition_for_execution", "DescribePipelineDefinitionForExecution"),
                                         ("list_pipeline_parameters_for_execution", "ListPipelineParametersForExecution"),
                                         ("list_pipeline_execution_steps", "ListPipelineExecutionSteps"))},
            # Notifications go to the encrypted operations topic.
            "publish": lambda n: [
                ("sns:Publish", {"topic": n.resource("Operations", "Notifications")}, {}),
                ("kms:GenerateDataKey", {"key": n.resource("Storage", "OpsKey", "Arn")}, {}),
            ],
            # Multi-model members only: stage the version's sealed artefact under its own key, then smoke-test it.
            "copy": lambda n: _when_shared(n, lambda: [
                ("s3:GetObject", {"object": n.object("artifacts", _sealed(n))}, {}),
                ("s3:PutObject", {"object": n.object("artifacts", f"mme/{n.multi_model_endpoint}/{n.model}/v7.tar.gz")}, {}),
                ("kms:GenerateDataKey", {"key": n.data_key}, {}),
            ]),
            # Every deployment verifies the sealed artefact (its stored checksum, else its bytes); a multi-model
            # member also checks and reads its staged copy.
            "get_object": lambda n: [
                ("s3:GetObject", {"object": n.object("artifacts", _sealed(n))}, {}),
                ("kms:Decrypt", {"key": n.data_key}, {}),
                # ... and checks its promotion gate: the bias report (its ContentDigest) and the evaluation report (the
                # digest bias.json carries), where the evaluation step of the execution that registered it wrote them.
                *[("s3:GetObject", {"object": n.object("artifacts", f"pipelines/{n.model}/abc123/evaluate/evaluation/{name}")}, {})
                  for name in ("bias.json", "evaluation.json")],
                *_when_shared(n, lambda: [
                    ("s3:GetObject", {"object": n.object("artifacts", f"mme/{n.multi_model_endpoint}/{n.model}/v7.tar.gz")}, {}),
                ]),
            ],
            "head_object": lambda n: [
                ("s3:GetObject", {"object": n.object("artifacts", _sealed(n))}, {}),
                *_when_shared(n, lambda: [
                    ("s3:GetObject", {"object": n.object("artifacts", f"mme/{n.multi_model_endpoint}/{n.model}/v7.tar.gz")}, {}),
                ]),
            ],
            "list_objects_v2": lambda n: _when_shared(n, lambda: [
                ("s3:ListBucket", {"bucket": n.bucket_arn("artifacts")}, {"s3:prefix": f"mme/{n.multi_model_endpoint}/{n.model}/v7.tar.gz"}),
            ]),
            "invoke_endpoint": lambda n: _when_shared(n, lambda: [
                ("sagemaker:InvokeEndpoint", {"endpoint": n.arn("sagemaker", f"endpoint/{n.multi_model_endpoint}")}, {}),
            ]),
            # The retention of the endpoint's log group (SageMaker creates it): read by name (no resource-level
            # permission), set on that group only; a batch model has none.
            "describe_log_groups": lambda n: [("logs:DescribeLogGroups", {"*": "*"}, {})] if n.endpoint else [],
            "put_retention_policy": lambda n: [
                ("logs:PutRetentionPolicy",
                 {"log-group": n.arn("logs", f"log-group:/aws/sagemaker/Endpoints/{n.multi_model_endpoint or f'{n.prefix}-{n.model}'}")},
                 {}),
            ] if n.endpoint else [],
            # A reconcile checks the endpoint serving the model still exists (a multi-model member's: the shared one,
            # which its smoke test describes too); a batch model has none.
            "describe_endpoint": lambda n: [
                ("sagemaker:DescribeEndpoint",
                 {"endpoint": n.arn("sagemaker", f"endpoint/{(n.multi_model_endpoint or f'{n.prefix}-{n.model}').lower()}")}, {}),
            ] if n.endpoint else [],
        },
    ),
    Runtime(
        "retrain trigger",
        ("pipeline_code/handlers/retrain_trigger.py",),
        {
            "list_pipeline_executions": _one("sagemaker:ListPipelineExecutions", "pipeline",
                                             lambda n: n.arn("sagemaker", f"pipeline/{n.prefix}-{n.model}-training")),
            "start_pipeline_execution": _one("sagemaker:StartPipelineExecution", "pipeline",
                                             lambda n: n.arn("sagemaker", f"pipeline/{n.prefix}-{n.model}-training")),
            # A recent failed run: did the gate reject it?
            "list_pipeline_execution_steps": _one(
                "sagemaker:ListPipelineExecutionSteps", "pipeline-execution",
                lambda n: n.arn("sagemaker", f"pipeline/{n.prefix}-{n.model}-training/execution/abc123")),
            # The hourly sweep: every retrain alarm of the model, by name.
            "describe_alarms": lambda n: [
                ("cloudwatch:DescribeAlarms", {"alarm": n.arn("cloudwatch", f"alarm:{n.prefix}-{n.model}-retrain-{name}")}, {})
                for name in RETRAIN_ALARMS],
            # Before every start: is retraining paused, for the environment or for this model? (One request names both;
            # IAM authorizes each name.)
            "get_parameters": lambda n: [
                ("ssm:GetParameters", {"parameter": n.arn("ssm", "parameter" + retraining_pause_parameter(n.prefix, model))}, {})
                for model in (None, n.model)] + [
                # The circuit breaker: when was the model last resumed (it counts failures after that)?
                ("ssm:GetParameters", {"parameter": n.arn("ssm", "parameter" + retraining_reset_parameter(n.prefix, model))}, {})
                for model in (None, n.model)],
            # The circuit breaker pauses the model (creates its pause; lifts it after a success) and pages once.
            "put_parameter": _one("ssm:PutParameter", "parameter",
                                  lambda n: n.arn("ssm", "parameter" + retraining_pause_parameter(n.prefix, n.model))),
            "delete_parameter": _one("ssm:DeleteParameter", "parameter",
                                     lambda n: n.arn("ssm", "parameter" + retraining_pause_parameter(n.prefix, n.model))),
            "publish": lambda n: [
                ("sns:Publish", {"topic": n.resource("Operations", "Notifications")}, {}),
                ("kms:GenerateDataKey", {"key": n.resource("Storage", "OpsKey", "Arn")}, {}),
            ],
        },
    ),
    Runtime(
        "rollout parity check",
        ("pipeline_code/handlers/parity_check.py",),
        {
            # Is the endpoint still deploying? Then the version being rolled out: the pending endpoint config's model,
            # its package, its sealed archive.
            "describe_endpoint": lambda n: _when_compiled(n, lambda: [
                ("sagemaker:DescribeEndpoint", {"endpoint": n.arn("sagemaker", f"endpoint/{n.prefix}-{n.model}")}, {}),
            ]),
            "describe_endpoint_config": lambda n: _when_compiled(n, lambda: [
                ("sagemaker:DescribeEndpointConfig", {"endpoint-config": n.arn("sagemaker", f"endpoint-config/{n.model}-config-1a2b3c")}, {}),
            ]),
            "describe_model": lambda n: _when_compiled(n, lambda: [
                ("sagemaker:DescribeModel", {"model": n.arn("sagemaker", f"model/{n.model}-model-1a2b3c")}, {}),
            ]),
            "describe_model_package": lambda n: _when_compiled(n, lambda: [
                ("sagemaker:DescribeModelPackage", {"model-package": n.version}, {}),
            ]),
            "get_object": lambda n: _when_compiled(n, lambda: [
                ("s3:GetObject", {"object": n.object("artifacts", _sealed(n))}, {}),
                ("kms:Decrypt", {"key": n.data_key}, {}),
            ]),
            "invoke_endpoint": lambda n: _when_compiled(n, lambda: [
                ("sagemaker:InvokeEndpoint", {"endpoint": n.arn("sagemaker", f"endpoint/{n.prefix}-{n.model}")}, {}),
            ]),
            "put_metric_data": lambda n: _when_compiled(n, lambda: [
                ("cloudwatch:PutMetricData", {"*": "*"}, {"cloudwatch:namespace": parity_namespace(f"{n.prefix}-{n.model}")}),
            ]),
            "publish": lambda n: _when_compiled(n, lambda: [
                ("sns:Publish", {"topic": n.resource("Operations", "Notifications")}, {}),
                ("kms:GenerateDataKey", {"key": n.resource("Storage", "OpsKey", "Arn")}, {}),
            ]),
        },
        unreached={("pipeline_code/core/approval.py", ("list_model_packages", "get_object")):
                   "the check reads the approval time of the one package an endpoint serves (approval_time), never "
                   "a group's versions nor their reports",
                   ("pipeline_code/core/integrity.py", ("head_object",)):
                   "stored_sha256 (imported with the serving rule) verifies artefacts in the deploy handler; the check "
                   "reads the archive it checks with get_object (s3_archive)"},
    ),
    Runtime(
        "score-by-id front",
        ("pipeline_code/handlers/score_by_id.py",),
        {
            # One lookup per request: the model's own feature group, its online store encrypted with the data key.
            "batch_get_record": lambda n: [
                ("sagemaker:BatchGetRecord", {"feature-group": n.arn("sagemaker", f"feature-group/{n.prefix}-{n.dataset.replace('_', '-')}")}, {}),
                ("kms:Decrypt", {"key": n.data_key}, {}),
            ] if n.by_id else [],
            "invoke_endpoint": lambda n: [
                ("sagemaker:InvokeEndpoint", {"endpoint": n.arn("sagemaker", f"endpoint/{n.prefix}-{n.model}")}, {}),
            ] if n.by_id else [],
        },
    ),
    Runtime(
        "drift monitor job",
        ("pipeline_code/monitoring/monitor.py",),
        {
            "describe_stacks": _one("cloudformation:DescribeStacks", "stack", lambda n: n.serving_stack),
            "describe_model_package": _one("sagemaker:DescribeModelPackage", "model-package", lambda n: n.version),
            # The version's baseline and model (training output) and the window's capture and labels.
            "download_file": lambda n: [
                ("s3:GetObject", {"object": n.object("artifacts", f"pipelines/{n.model}/run-1/baseline/statistics.json")}, {}),
                ("s3:GetObject", {"object": n.object("artifacts", f"pipelines/{n.model}/run-1/model/model.tar.gz")}, {}),
                ("s3:GetObject", {"object": n.s3_object(n.traffic_uri, "AllTraffic/2026/12/02/10/x.jsonl")}, {}),
                ("s3:GetObject", {"object": n.s3_object(n.monitor_argument("--labels-s3-uri"), "2026/12/02/labels.csv")}, {}),
                # The earlier runs' reports: the slow-drift state.
                ("s3:GetObject", {"object": n.s3_object(n.monitor_argument("--history-s3-uri"), "run-1/report.json")}, {}),
                # The earlier runs' prediction records (late labels join them): in the tables' layout, and beside the
                # reports of runs before it.
                ("s3:GetObject", {"object": n.s3_object(n.monitor_argument("--records-s3-uri"),
                                                        "date=2026-12-01/run=r1/predictions.parquet")}, {}),
                ("s3:GetObject", {"object": n.s3_object(n.monitor_argument("--history-s3-uri"), "run-1/predictions.parquet")}, {}),
                ("kms:Decrypt", {"key": n.data_key}, {}),
                *([("s3:GetObject", {"object": n.s3_object(n.monitor_argument("--feature-snapshots-s3-uri"),
                                                           "run-1/part-0.parquet")}, {})] if n.by_id else []),
            ],
            "list_objects_v2": lambda n: [n.s3_listing(n.traffic_uri),
                                          n.s3_listing(n.monitor_argument("--labels-s3-uri")),
                                          n.s3_listing(n.monitor_argument("--history-s3-uri")),
                                          n.s3_listing(n.monitor_argument("--records-s3-uri")),
                                          # A model scored by id: the feature snapshots its skew check joins.
                                          *([n.s3_listing(n.monitor_argument("--feature-snapshots-s3-uri"))] if n.by_id else [])],
            "put_metric_data": lambda n: [("cloudwatch:PutMetricData", {"*": "*"},
                                           {"cloudwatch:namespace": monitor_namespace(n.project, n.environment, n.model)})],
            # A model with an endpoint of its own: what it really serves (endpoint -> its config -> the model that
            # names the package; config and model named by CloudFormation) and the requests it answered.
            "describe_endpoint": lambda n: _when_endpoint_checked(n, lambda e: [
                ("sagemaker:DescribeEndpoint", {"endpoint": n.arn("sagemaker", f"endpoint/{e.lower()}")}, {})]),
            "describe_endpoint_config": lambda n: _when_endpoint_checked(n, lambda e: [
                ("sagemaker:DescribeEndpointConfig", {"endpoint-config": n.arn("sagemaker", f"endpoint-config/{n.model}-config-1a2b3c")}, {})]),
            "describe_model": lambda n: _when_endpoint_checked(n, lambda e: [
                ("sagemaker:DescribeModel", {"model": n.arn("sagemaker", f"model/{n.model}-model-1a2b3c")}, {})]),
            "get_metric_statistics": lambda n: _when_endpoint_checked(n, lambda e: [
                ("cloudwatch:GetMetricStatistics", {"*": "*"}, {})]),
        },
        {
            ("pipeline_code/handlers/deploy/stack.py", ("describe_stack_events",)):
                "remote.py uses only describe_stack and stack_parameters of the deploy handler's stack reads",
            ("pipeline_code/core/approval.py", ("list_model_packages", "get_object")):
                "the serving rule's registry listing and gate check (a version's reports), imported with the handler; "
                "the monitor reads the version the serving stack names instead of choosing one",
            ("pipeline_code/handlers/multi_model.py", ("copy", "head_object", "list_objects_v2",
                                                       "invoke_endpoint", "describe_endpoint")):
                "imported with the deploy handler's registry and stack reads; the monitor calls none of its operations",
            ("pipeline_code/handlers/s3_archive.py", ("get_object",)):
                "the smoke request of multi-model staging reads archives with it; the monitor never calls it",
            ("pipeline_code/core/integrity.py", ("head_object", "get_object")):
                "stored_sha256 verifies artefacts in the deploy handler; the monitor only imports the handler's helpers",
            ("pipeline_code/training/seal.py", ("put_object",)):
                "the monitor reads a local model's digests with seal.digests; sealing (PutObject) is evaluate's",
            ("pipeline_code/job_runtime.py", ("get_object", "put_object")):
                "seal's S3 helpers, imported with it; the monitor's own reads go through remote.py's download calls",
        },
    ),
    Runtime(
        "training pipeline jobs",
        tuple(f"pipeline_code/training/{m}.py" for m in ("prepare", "train", "evaluate", "baseline", "model_card/cli", "model_card/publish")),
        {
            # The champion is the version that serves (core.approval): every page of the group's Approved
            # versions, each described for its approval time (ListModelPackages cannot sort by it).
            "list_model_packages": _model_versions,
            "describe_model_package": _one("sagemaker:DescribeModelPackage", "model-package", lambda n: n.version),
            # The champion's evaluation report and model, and the frozen test set.
            "download_file": lambda n: [
                ("s3:GetObject", {"object": n.object("artifacts", f"pipelines/{n.model}/run-1/evaluation/evaluation.json")}, {}),
                ("s3:GetObject", {"object": n.object("artifacts", f"pipelines/{n.model}/frozen-test/test.parquet")}, {}),
            ],
            "list_objects_v2": lambda n: [n.s3_listing(f"s3://{n.bucket('artifacts')}/pipelines/{n.model}/frozen-test/")],
            # Evaluate seals a passed challenger: a conditional write to its sealed key (SSE-KMS with the data
            # key); when the key exists, its stored checksum or bytes are compared.
            "put_object": lambda n: [
                ("s3:PutObject", {"object": n.object("artifacts", _sealed(n))}, {"s3:if-none-match": "*"}),
                ("kms:GenerateDataKey", {"key": n.data_key}, {}),
            ],
            "head_object": lambda n: [("s3:GetObject", {"object": n.object("artifacts", _sealed(n))}, {})],
            "get_object": lambda n: [
                ("s3:GetObject", {"object": n.object("artifacts", _sealed(n))}, {}),
                ("kms:Decrypt", {"key": n.data_key}, {}),
                # The champion passes over an Approved version whose promotion gate failed (core.approval.gate_problems):
                # each candidate's bias report (its ContentDigest) and evaluation report, where its execution wrote them.
                *[("s3:GetObject", {"object": n.object("artifacts", f"pipelines/{n.model}/abc123/evaluate/evaluation/{name}")}, {})
                  for name in ("bias.json", "evaluation.json")],
            ],
            "create_model_card": _one("sagemaker:CreateModelCard", "model-card",
                                      lambda n: n.arn("sagemaker", f"model-card/{n.group}-v7")),
            "update_model_card": _one("sagemaker:UpdateModelCard", "model-card",
                                      lambda n: n.arn("sagemaker", f"model-card/{n.group}-v7")),
            "describe_model_card": _one("sagemaker:DescribeModelCard", "model-card",
                                        lambda n: n.arn("sagemaker", f"model-card/{n.group}-v7")),
        },
        {
            ("pipeline_code/job_runtime.py", ("put_object", "get_object")):
                "champion.py imports only split_s3_uri; training jobs write their outputs to local paths SageMaker uploads "
                "and read their dataset's declaration inside the model spec file, never from S3",
        },
    ),
    Runtime(
        "serving container",
        ("pipeline_code/serving/serve_entry.py",),
        {
            # Self-capture of serverless and multi-model serving (SSE-KMS with the data key).
            "put_object": lambda n: [
                ("s3:PutObject", {"object": n.object("inference", f"capture/{n.model}/AllTraffic/2026/12/02/10/x.jsonl")}, {}),
                ("kms:GenerateDataKey", {"key": n.data_key}, {}),
            ] if n.self_capture else [],
        },
        {
            ("pipeline_code/core/integrity.py", ("head_object", "get_object")):
                "serving checks the model digest on local files (model_digest); stored_sha256 is the deploy handler's",
        },
    ),
    Runtime(
        "feature ingestion job",
        ("pipeline_code/features/ingest.py",),
        {
            "put_record": _one("sagemaker:PutRecord", "feature-group",
                               lambda n: n.arn("sagemaker", f"feature-group/{n.prefix}-{n.dataset.replace('_', '-')}")),
            # With an online store: the online copies of the ids put, read back (the online store is encrypted
            # with the data key), and those a same-event-time correction did not replace, deleted and put again.
            "batch_get_record": lambda n: [
                ("sagemaker:BatchGetRecord", {"feature-group": n.arn("sagemaker", f"feature-group/{n.prefix}-{n.dataset.replace('_', '-')}")}, {}),
                ("kms:Decrypt", {"key": n.data_key}, {}),
            ] if n.online_store else [],
            "delete_record": lambda n: [
                ("sagemaker:DeleteRecord", {"feature-group": n.arn("sagemaker", f"feature-group/{n.prefix}-{n.dataset.replace('_', '-')}")}, {}),
            ] if n.online_store else [],
            # Its creation time keys the ingestion state (a group created again is empty).
            "describe_feature_group": _one("sagemaker:DescribeFeatureGroup", "feature-group",
                                           lambda n: n.arn("sagemaker", f"feature-group/{n.prefix}-{n.dataset.replace('_', '-')}")),
            "put_object": lambda n: [
                ("s3:PutObject", {"object": n.object("features", f"_ingest-failures/{n.dataset}/run-1/failures.json")}, {}),
                ("s3:PutObject", {"object": n.s3_object(n.glue_argument("features", "--state_path"), "")}, {}),
                ("kms:GenerateDataKey", {"key": n.data_key}, {}),
            ],
            # The dataset's declaration, uploaded by the app next to the job code (--dataset s3://...), and the
            # ingestion state (SSE-KMS with the data key).
            "get_object": lambda n: [("s3:GetObject", {"object": n.s3_object(n.glue_argument("features", "--dataset"), "")}, {}),
                                     ("s3:GetObject", {"object": n.s3_object(n.glue_argument("features", "--state_path"), "")}, {}),
                                     ("kms:Decrypt", {"key": n.data_key}, {})],
            # The ingestion state's key, listed before GetObject: without list rights on the key, S3 answers a
            # GetObject of a missing key 403, not 404.
            "list_objects_v2": lambda n: [n.s3_listing(n.glue_argument("features", "--state_path"))],
        },
    ),
    Runtime(
        "curate job",
        ("pipeline_code/etl/glue_curate_job.py",),
        {
            # Spark reads and writes the lake itself; boto3 only reads the declaration, reads and writes the curate
            # state (the raw files curated so far) and writes the run summary.
            "get_object": lambda n: [("s3:GetObject", {"object": n.s3_object(n.glue_argument("curate", "--dataset"), "")}, {}),
                                     ("s3:GetObject", {"object": n.s3_object(n.glue_argument("curate", "--state_path"), "")}, {})],
            "put_object": lambda n: [("s3:PutObject", {"object": n.s3_object(n.glue_argument("curate", "--summary_path"),
                                                                               "run_id=jr_1/summary.json")}, {}),
                                     ("s3:PutObject", {"object": n.s3_object(n.glue_argument("curate", "--state_path"), "")}, {})],
            # The curate state's key, listed before GetObject: without list rights on the key, S3 answers a GetObject
            # of a missing key 403, not 404.
            "list_objects_v2": lambda n: [n.s3_listing(n.glue_argument("curate", "--state_path"))],
        },
        {
            ("pipeline_code/etl/glue_curate_job.py", ("search",)):
                "_HEADER_MISMATCH.search is a compiled regular expression's, not SageMaker's Search API",
        },
    ),
)


@lru_cache(maxsize=None)
def _operation_names() -> frozenset[str]:
    session = botocore.session.get_session()
    return frozenset(xform_name(op) for svc in SERVICES for op in session.get_service_model(svc).operation_names)


def _module_path(name: str) -> Path | None:
    path = REPO_ROOT / Path(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


@lru_cache(maxsize=None)
def _imported(path: Path, source: str) -> tuple[Path, ...]:
    """Once per module and text (a module changed or written anew is read again): the runtimes share most of their
    modules, and each runtime's two scan tests followed each module's imports again. Only the paths are kept, not the
    tree (a worker holding every module's tree would traverse them at each of its later garbage collections)."""
    return tuple(_scan_imports(path, ast.walk(ast.parse(source))))


def _imports(path: Path) -> Iterable[Path]:
    """The ``pipeline_code`` modules ``path`` imports (absolute and relative imports)."""
    return _imported(path, path.read_text())


def _scan_imports(path: Path, nodes: Iterable[ast.AST]) -> Iterable[Path]:
    package = path.relative_to(REPO_ROOT).with_suffix("").parts[:-1]
    for node in nodes:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ((base,) if base else ()))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            if name.startswith("pipeline_code") and (found := _module_path(name)) is not None:
                yield found


def closure(modules: Iterable[str]) -> list[Path]:
    """The given modules and every ``pipeline_code`` module they import, transitively."""
    todo = [REPO_ROOT / m for m in modules]
    seen: dict[Path, None] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen[path] = None
        todo.extend(_imports(path))
    return sorted(seen)


def _is_pattern(value: ast.expr) -> bool:
    """``re.compile(...)``: a regular expression, whose methods (``search``, ``match``) are not AWS calls."""
    return (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "compile"
            and isinstance(value.func.value, ast.Name) and value.func.value.id == "re")


def operations_in(paths: Iterable[Path], unreached: Iterable[tuple[str, tuple[str, ...]]] = ()) -> dict[str, list[str]]:
    """AWS operations (snake_case) the code calls -> where: client method calls, paginators, S3 transfers.

    A call on an imported module (``re.search``, ``catalog.load_dataset``) or on a module-level compiled pattern
    (``_BUSY = re.compile(...)``, then ``_BUSY.search``) is not an AWS call, nor is a ``copy`` without S3's arguments
    (``frame.copy()``); ``unreached`` (module, operations) pairs are left out.
    """
    skip = {(module, op) for module, ops in unreached for op in ops}
    found: dict[str, list[str]] = {}
    for path in paths:
        where = str(path.relative_to(REPO_ROOT))
        for name, line in _calls_in(path.read_text()):
            if (where, name) not in skip:
                found.setdefault(name, []).append(f"{where}:{line}")
    return found


@lru_cache(maxsize=None)
def _calls_in(source: str) -> tuple[tuple[str, int], ...]:
    """(operation, line) of each AWS call :func:`operations_in` finds in a module of this text, in :func:`ast.walk`'s
    order, once per text (only the pairs are kept, see :func:`_imported`)."""
    operations = _operation_names() | TRANSFER_HELPERS
    tree = ast.parse(source)
    nodes = list(ast.walk(tree))
    modules = {a.asname or a.name.split(".")[0] for n in nodes if isinstance(n, (ast.Import, ast.ImportFrom))
               for a in n.names}
    modules |= {target.id for n in tree.body if isinstance(n, ast.Assign) and _is_pattern(n.value)
                for target in n.targets if isinstance(target, ast.Name)}
    calls = []
    for node in nodes:
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value
        if isinstance(receiver, ast.Name) and receiver.id in modules:
            continue
        name = node.func.attr
        if name == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
            name = node.args[0].value
        if name == "copy" and len(node.args) < 3 and not any(k.arg == "CopySource" for k in node.keywords):
            continue
        if name in operations:
            calls.append((name, node.lineno))
    return tuple(calls)


def _is_client_factory(func: ast.expr) -> bool:
    """``boto3.client``, ``session.client``, ``_client``, ``make_featurestore_client``: a call that makes a client."""
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name == "client" or name.endswith("_client")


def _makes_client(func: ast.expr) -> bool:
    """``boto3.client(...)`` or ``<session>.client(...)``, whose first argument is the service (a wrapper's need not be)."""
    return isinstance(func, ast.Attribute) and func.attr == "client"


@lru_cache(maxsize=None)
def _service_names() -> frozenset[str]:
    return frozenset(botocore.session.get_session().get_available_services())


def client_services(paths: Iterable[Path]) -> dict[str, list[str]]:
    """The services the code makes boto3 clients of -> where: the first argument (or ``service_name``) of every call
    of a client factory (:func:`_is_client_factory`), written out or a name a ``for`` or comprehension takes from a
    tuple or list written out (a wrapper's argument counts only when it is a service's name: ``_client(region)``). A
    factory's own parameter is passed over (its callers name the service); any other argument of ``<x>.client`` is
    listed as ``<argument>``, so that a client of a service computed at run time is looked at.

    :func:`operations_in` finds the operations of :data:`SERVICES` only: a client of another service (Glue, Lambda,
    KMS ...) would make calls no inventory entry lists and no role was checked for."""
    found: dict[str, list[str]] = {}
    for path in paths:
        where = str(path.relative_to(REPO_ROOT))
        for name, line in _clients_in(path.read_text()):
            found.setdefault(name, []).append(f"{where}:{line}")
    return found


@lru_cache(maxsize=None)
def _clients_in(source: str) -> tuple[tuple[str, int], ...]:
    """(service, line) of each client :func:`client_services` finds in a module of this text, in :func:`ast.walk`'s
    order, once per text (only the pairs are kept, see :func:`_imported`)."""
    clients = []
    nodes = list(ast.walk(ast.parse(source)))
    looped: dict[str, list[str]] = {}
    parameters: set[str] = set()
    for node in nodes:
        if isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.target, ast.Name) \
                and isinstance(node.iter, (ast.Tuple, ast.List)):
            looped.setdefault(node.target.id, []).extend(
                e.value for e in node.iter.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            parameters |= {a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)}
    for node in nodes:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "resource":
            # A boto3 resource's calls (bucket.objects.filter, table.put_item) are no client method: never scanned.
            clients.append((f"<resource {ast.unparse(node.args[0]) if node.args else ''}>", node.lineno))
            continue
        if not (isinstance(node, ast.Call) and _is_client_factory(node.func)):
            continue
        first = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "service_name"), None)
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            names = [first.value]
        elif isinstance(first, ast.Name) and first.id in looped:
            names = looped[first.id]
        elif first is None or (isinstance(first, ast.Name) and first.id in parameters) or not _makes_client(node.func):
            continue  # a factory's own parameter, or a wrapper's argument that names no service (a region)
        else:
            names = [f"<{ast.unparse(first)}>"]
        if not _makes_client(node.func):
            names = [n for n in names if n in _service_names()]
        for name in names:
            clients.append((name, node.lineno))
    return tuple(clients)


def _sagemaker_logs_and_metrics(group: str, stream: str, namespace: str) -> Callable[[Names], list[Request]]:
    """What SageMaker does as the role while it runs the role's containers: the log group ``group`` (created where it
    does not exist yet), a stream ``stream`` in it, and the containers' instance metrics in ``namespace``."""
    return lambda n: [
        ("logs:CreateLogGroup", {"log-group": n.arn("logs", f"log-group:{group}")}, {}),
        ("logs:DescribeLogStreams", {"log-group": n.arn("logs", f"log-group:{group}:*")}, {}),
        *((action, {"log-stream": n.arn("logs", f"log-group:{group}:log-stream:{stream}")}, {})
          for action in ("logs:CreateLogStream", "logs:PutLogEvents")),
        ("cloudwatch:PutMetricData", {"*": "*"}, {"cloudwatch:namespace": namespace}),
    ]


def _serving_logs_and_metrics(n: Names) -> list[Request]:
    """A served model's: its endpoint's own log group (a multi-model member's, the shared endpoint's) and SageMaker's
    endpoint namespace; a batch model's transform jobs' log group and namespace."""
    if not n.endpoint:
        return _sagemaker_logs_and_metrics("/aws/sagemaker/TransformJobs", "bt-abc-x/i-0abc", "/aws/sagemaker/TransformJobs")(n)
    endpoint = n.multi_model_endpoint or f"{n.prefix}-{n.model}"
    return _sagemaker_logs_and_metrics(f"/aws/sagemaker/Endpoints/{endpoint}", "AllTraffic/i-0abc", "/aws/sagemaker/Endpoints")(n)


# What SageMaker itself does as the role of each runtime it runs (no code of ours makes these calls, so the scan finds
# none): it sends the containers' stdout and stderr to its log groups and publishes their instance metrics (SageMaker
# Developer Guide: the execution-role policies of CreateTrainingJob, CreateProcessingJob and CreateModel list
# logs:CreateLogGroup, CreateLogStream, PutLogEvents, DescribeLogStreams and cloudwatch:PutMetricData; the log groups
# are those of "Log groups and streams that Amazon SageMaker AI sends to Amazon CloudWatch Logs", the namespaces those
# of "SageMaker AI jobs and endpoint metrics"). The roles are narrowed to exactly these groups and namespaces, so a job
# or endpoint that could not write its logs would be an outage: each request is decided like the code's calls.
SAGEMAKER_AS_ROLE: Mapping[str, Callable[[Names], list[Request]]] = {
    "training pipeline jobs": lambda n: [
        *_sagemaker_logs_and_metrics("/aws/sagemaker/TrainingJobs", "pipelines-abc-Train-x/algo-1-1700000000",
                                     "/aws/sagemaker/TrainingJobs")(n),
        *_sagemaker_logs_and_metrics("/aws/sagemaker/ProcessingJobs", "pipelines-abc-Prepare-x/algo-1-1700000000",
                                     "/aws/sagemaker/ProcessingJobs")(n),
    ],
    "serving container": _serving_logs_and_metrics,
}
