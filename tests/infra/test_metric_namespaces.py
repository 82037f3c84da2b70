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
  writes it as embedded-metric log lines).
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from mlops_loop.config import AppConfig
from pipeline_code.core.contract import endpoint_name, environment_prefix, monitor_namespace, parity_namespace, serving_namespace
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
