"""Each model's metrics can be published only by its own roles: the proof over whole environments, any line-up.

CloudWatch's ``PutMetricData`` has no resource-level permissions and IAM has no condition key on its dimensions; the
``cloudwatch:namespace`` condition is all that keeps a role off a series. So the drift monitor publishes in a
namespace of its own model and environment (``contract.monitor_namespace``) and the rollout parity check in one per
endpoint (``contract.parity_namespace``). Here, for every environment of the user's config and of the ``modes`` and
``pooled`` scenarios, the synthesized policies are evaluated (``tests.support.iam_eval``) against every namespace of
every model of every environment of the config, plus another project's and an environment that does not exist:

* a role that may publish in any of them may publish in exactly one model's monitor namespace of its own environment,
  or only in its own environment's parity namespaces;
* every alarm on a monitor, parity or serving metric reads the namespace of the model (or endpoint) its dimensions
  name, and only that model's own role may publish there (the serving namespace: no role at all; the score-by-id front
  writes it as embedded-metric log lines);
* SageMaker's own namespaces, which IAM can confine only as a whole: ``/aws/sagemaker/Endpoints`` (every endpoint's
  CPU and memory points, which the paging alarms read) may be published in only by the environment's serving roles,
  where SageMaker publishes their endpoint's instance metrics as them; a pipeline's role (job code runs as it) only in
  the training and processing jobs' namespaces; and each role writes at most one endpoint's log group, its own.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from mlops_loop.config import AppConfig
from mlops_loop.constructs.access_policy import ENDPOINT_INSTANCE_NAMESPACE, PROCESSING_JOBS, TRAINING_JOBS, TRANSFORM_JOBS
from pipeline_code.core.contract import (endpoint_name, environment_prefix, monitor_namespace, multi_model_endpoint_name,
                                         parity_namespace, serving_namespace)
from tests.support.deploy_permissions import assembly_model
from tests.support.iam_eval import IamModel, allowed
from tests.support.scenarios import MODES_ENV, POOLED_ENV

PUBLISH = "cloudwatch:PutMetricData"


def _environments(request) -> Iterator[tuple[str, AppConfig, str, Any]]:
    """(label, config, environment, assembly directory) of every environment the proof covers."""
    synthesized = request.getfixturevalue("synthesized")
    for env in synthesized.config.environments:
        yield "user", synthesized.config, env, synthesized.outdir
    for name, env in (("modes", MODES_ENV), ("pooled", POOLED_ENV)):
        scenario = request.getfixturevalue(name)
        yield name, scenario.config, env, scenario.outdir


def _probes(config: AppConfig) -> set[str]:
    """Every namespace a role could be meant to publish in: each model's and endpoint's in each environment of the
    config, and the same for another project and for an environment the config does not have."""
    probes = set()
    for project in (config.project, f"{config.project}-other"):
        for env in (*config.environments, "elsewhere"):
            prefix = environment_prefix(project, env)
            for model in config.models:
                probes |= {monitor_namespace(project, env, model), parity_namespace(endpoint_name(prefix, model))}
        probes.add(serving_namespace(project))
    return probes


def _alarm_metrics(props: dict) -> list[dict]:
    """The metrics an alarm reads: its own, or each of its math expression's."""
    return [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m] or [props]


def _alarms(iam: IamModel) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(alarm name, namespace, dimensions) of every metric every alarm of the environment reads."""
    for label, stack in iam.stacks.items():
        for logical_id, resource in stack.template.get("Resources", {}).items():
            if resource["Type"] != "AWS::CloudWatch::Alarm":
                continue
            props = resource["Properties"]
            for metric in _alarm_metrics(props):
                if "Namespace" in metric:
                    dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                    yield props.get("AlarmName", f"{label}/{logical_id}"), metric["Namespace"], dimensions


def _writable(iam: IamModel, probes: set[str]) -> dict[str, set[str]]:
    """Role -> the probed namespaces it may publish in (roles that may publish in none are left out)."""
    out = {}
    for key, role in iam.roles.items():
        may = {ns for ns in probes if allowed(role, PUBLISH, "*", {"cloudwatch:namespace": ns})}
        if may:
            out[key] = may
    return out


def test_every_role_may_publish_only_its_own_models_metrics_and_every_alarm_reads_only_those(request):
    checked = {"monitor": 0, "parity": 0, "serving": 0}
    for label, config, env, outdir in _environments(request):
        where = f"{label}/{env}"
        iam = assembly_model(outdir, config, env)
        prefix = environment_prefix(config.project, env)
        models = config.environments[env].models
        own_monitor = {monitor_namespace(config.project, env, m): m for m in models}
        own_parity = {parity_namespace(endpoint_name(prefix, m)) for m in models}
        writable = _writable(iam, _probes(config))
        # GIVEN every role of the environment THEN one that may publish any model's metric may publish exactly one
        # model's monitor namespace of this environment, or only this environment's parity namespaces
        for role, namespaces in writable.items():
            assert (len(namespaces) == 1 and namespaces <= set(own_monitor)) or namespaces <= own_parity, (where, role, namespaces)
        writers = lambda ns: {role for role, namespaces in writable.items() if ns in namespaces}  # noqa: E731
        # AND every alarm on those metrics reads its own model's namespace, which only that model's role may write
        for alarm, namespace, dimensions in _alarms(iam):
            if namespace.endswith("/monitoring"):
                assert namespace == monitor_namespace(config.project, env, dimensions["Model"]), (where, alarm)
                (writer,) = writers(namespace)  # its model's monitor role, and no other
                assert writable[writer] == {namespace}, (where, alarm)
                checked["monitor"] += 1
            elif namespace.endswith("/rollout"):
                assert namespace == parity_namespace(dimensions["EndpointName"]) and namespace in own_parity, (where, alarm)
                (writer,) = writers(namespace)  # the environment's parity check, which checks that endpoint
                assert writable[writer] <= own_parity, (where, alarm)
                checked["parity"] += 1
            elif namespace == serving_namespace(config.project):
                assert writers(namespace) == set(), (where, alarm)
                checked["serving"] += 1
    # Not vacuous: the user's config and the scenarios have monitors, a parity-checked endpoint and a by-id front.
    assert all(checked.values()), checked


def test_the_check_sees_a_role_that_may_publish_in_another_models_namespace():
    """Non-vacuity of the role check: a policy conditioned on the project's whole tree (as the old per-project
    namespace was) may publish in every model's namespace and is caught."""
    from tests.support.iam_eval import Statement

    statement = Statement.from_json({"Effect": "Allow", "Action": PUBLISH, "Resource": "*",
                                     "Condition": {"StringLike": {"cloudwatch:namespace": "acme/*"}}})
    may = {ns for ns in (monitor_namespace("acme", "dev", "a"), monitor_namespace("acme", "prod", "a"))
           if allowed([statement], PUBLISH, "*", {"cloudwatch:namespace": ns})}
    assert len(may) == 2


@pytest.mark.parametrize("props, expected", [
    ({"Namespace": "n", "MetricName": "m"}, [{"Namespace": "n", "MetricName": "m"}]),
    ({"Metrics": [{"Id": "e", "Expression": "FILL(m, 0)"}, {"Id": "m", "MetricStat": {"Metric": {"Namespace": "n"}}}]},
     [{"Namespace": "n"}]),
])
def test_an_alarms_metrics_are_its_own_or_its_expressions(props, expected):
    assert _alarm_metrics(props) == expected


# SageMaker's namespaces a role could be given, and one it names nowhere (a pattern such as /aws/sagemaker/* reaches it).
SAGEMAKER_NAMESPACES = (TRAINING_JOBS, PROCESSING_JOBS, TRANSFORM_JOBS, ENDPOINT_INSTANCE_NAMESPACE,
                        "/aws/sagemaker/InferenceComponents", "/aws/sagemaker/Unlisted")


def _endpoint_probes(config: AppConfig) -> set[str]:
    """Every endpoint name a role could be meant to log for: each model's and each multi-model endpoint's, in each
    environment of the config, of another project and of an environment the config does not have."""
    shared = {s.multi_model.endpoint for e in config.environments.values() for m in config.models_of(e)
              if (s := config.serving_of(e, m)).mode == "multi_model"}
    return {name for project in (config.project, f"{config.project}-other") for env in (*config.environments, "elsewhere")
            for prefix in [environment_prefix(project, env)]
            for name in ({endpoint_name(prefix, m) for m in config.models} | {multi_model_endpoint_name(prefix, e) for e in shared}
                         | {endpoint_name(prefix, f"{m}-vip") for m in config.models})}


def test_only_serving_roles_may_publish_sagemakers_endpoint_metrics_and_each_writes_only_its_own_endpoints_logs(request):
    """GIVEN every role of every environment of the user's config and of the ``modes`` and ``pooled`` scenarios WHEN
    PutMetricData in each SageMaker namespace and PutLogEvents in each endpoint's log group are decided THEN
    ``/aws/sagemaker/Endpoints`` (the namespace prod's ``-cpu`` and ``-memory`` alarms read) is open only to the
    execution roles of the environment's SageMaker models, each of which publishes in exactly one SageMaker namespace
    (its endpoint's, or its transform jobs'); every other role (a pipeline's, which runs job code; a monitor's; a
    handler's) may publish in none but the training and processing jobs'; and a role writes the log group of one
    endpoint at most, an endpoint of its own environment, and only if it serves there (trialM finding 1)."""
    checked = {"serving": 0, "pipeline": 0, "endpoint logs": 0}
    for label, config, env, outdir in _environments(request):
        where = f"{label}/{env}"
        iam = assembly_model(outdir, config, env)
        serving = {iam.resolve(stack, props["ExecutionRoleArn"]) for stack, _, props in iam.resources("AWS::SageMaker::Model")}
        pipelines = {iam.resolve(stack, props["RoleArn"]) for stack, _, props in iam.resources("AWS::SageMaker::Pipeline")}
        own_endpoints = {iam.resolve(stack, props["EndpointName"]) for stack, _, props in iam.resources("AWS::SageMaker::Endpoint")}
        probes = _endpoint_probes(config) | own_endpoints
        logs = f"arn:aws:logs:{iam.region}:{iam.account}:log-group:/aws/sagemaker/Endpoints"
        for key, role in iam.roles.items():
            publishes = {ns for ns in SAGEMAKER_NAMESPACES if allowed(role, PUBLISH, "*", {"cloudwatch:namespace": ns})}
            logs_for = {name for name in probes if allowed(role, "logs:PutLogEvents", f"{logs}/{name}:log-stream:AllTraffic/i-0abc")}
            if role.arn in serving:
                assert publishes in ({ENDPOINT_INSTANCE_NAMESPACE}, {TRANSFORM_JOBS}), (where, role, publishes)
                assert logs_for == set() if publishes == {TRANSFORM_JOBS} else (len(logs_for) == 1 and logs_for <= own_endpoints), (
                    where, role, logs_for)
                checked["serving"] += 1
                checked["endpoint logs"] += len(logs_for)
            else:
                assert publishes <= {TRAINING_JOBS, PROCESSING_JOBS}, (where, role, publishes)
                assert logs_for == set(), (where, role, logs_for)
            if role.arn in pipelines:
                assert publishes == {TRAINING_JOBS, PROCESSING_JOBS}, (where, role, publishes)
                checked["pipeline"] += 1
        # AND every alarm on SageMaker's endpoint instance metrics reads a namespace only serving roles may publish in
        writers = {role.arn for role in iam.roles.values() if allowed(role, PUBLISH, "*", {"cloudwatch:namespace": ENDPOINT_INSTANCE_NAMESPACE})}
        assert writers <= serving, where
    # Not vacuous: every scenario serves from endpoints and trains in pipelines.
    assert all(checked.values()), checked


def test_the_sagemaker_check_sees_a_role_that_may_publish_in_sagemakers_whole_tree():
    """Non-vacuity: the statement pipeline and serving roles had (StringLike /aws/sagemaker/*) reaches the endpoint
    namespace, so a role holding it is caught."""
    from tests.support.iam_eval import Statement

    statement = Statement.from_json({"Effect": "Allow", "Action": PUBLISH, "Resource": "*",
                                     "Condition": {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}})
    assert {ns for ns in SAGEMAKER_NAMESPACES if allowed([statement], PUBLISH, "*", {"cloudwatch:namespace": ns})} == set(SAGEMAKER_NAMESPACES)
