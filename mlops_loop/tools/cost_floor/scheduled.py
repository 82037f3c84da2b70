"""Scheduled: what the templates run on a schedule whatever the traffic, an estimate per month.

Glue jobs and crawlers started by Glue triggers (a ``SCHEDULED`` trigger, and the ``CONDITIONAL`` triggers that
follow it in a workflow, each run assumed to succeed) or by a crawler's own schedule; SageMaker processing, batch
transform and training jobs that EventBridge Scheduler starts directly (``aws-sdk:sagemaker:create*Job``
targets, their instances read from the schedule's Input); and SageMaker pipelines a schedule or a scheduled rule starts
(a pipeline target, ``startPipelineExecution``, or an Input naming one of the environment's pipelines, as the
retraining trigger's schedule does), priced by the instances of the steps every execution runs; and native Model
Monitor's schedules (``AWS::SageMaker::MonitoringSchedule``), each run one processing job on the cluster of the job
definition it names (or defines inline). Everything is read from the templates, nothing from the config.

Runs per month come from each schedule expression (:func:`mlops_loop.config.schedules.runs_per_year` x the month's
share of a 365-day year). Each run costs at least its billing minimum where one exists (Glue jobs 1 minute, crawlers
10 minutes at an assumed DPU count, which AWS chooses); SageMaker jobs have none, so they are priced at an assumed
duration (:class:`Assumptions`). Real runs are usually longer: the column is an estimate, not a floor AWS guarantees.
An expression, Input or definition that cannot be read makes its line's price unknown, never an error.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional

from mlops_loop.config.instance_types import INSTANCE_TYPES, JOB_RESOURCES
from mlops_loop.config.schedules import runs_per_year
from pipeline_code.core.contract import LOG_RETENTION_ACTION, LOG_RETENTION_NOT_SET_METRIC, MONITOR_METRICS

from .model import Line
from .prices import (
    GLUE_CRAWLER_MINIMUM_MINUTES,
    GLUE_JOB_MINIMUM_MINUTES,
    GLUE_LEGACY_JOB_MINIMUM_MINUTES,
    GLUE_WORKER_DPUS,
    PRICES,
)
from .template import Template, as_number, format_rate

HOURS_PER_YEAR = 365 * 24


@dataclass(frozen=True)
class Assumptions:
    """What the scheduled column assumes where AWS bills no minimum or picks the capacity itself."""

    # Minutes a SageMaker job (or each step of a pipeline) runs; SageMaker bills per second with no minimum.
    minutes_per_run: float = 10.0
    # DPUs a Glue crawler uses per crawl: AWS decides (ListCrawls shows each crawl's DPUHour).
    crawler_dpus: float = 1.0


DEFAULT_ASSUMPTIONS = Assumptions()


@dataclass(frozen=True)
class _Unit:
    kind: str
    stack: str
    resources: tuple[str, ...]
    runs: Optional[float]  # per month; None: unknown
    usd_per_run: Optional[float]  # None: unknown
    part: str  # what one run costs, for the basis
    problem: str = ""  # why the runs or the price are unknown
    once_deployed: Optional[str] = None


# kind -> (line label, what the basis counts)
_LABELS = {
    "glue_job": ("Glue ETL jobs", "job"),
    "crawler": ("Glue crawlers", "crawler"),
    "processing": ("SageMaker processing jobs", "job"),
    "transform": ("SageMaker batch transform jobs", "job"),
    "training": ("SageMaker training jobs", "job"),
    "pipeline": ("SageMaker pipeline runs", "pipeline"),
    "monitoring": ("SageMaker Model Monitor jobs", "schedule"),
    "custom_metrics": ("CloudWatch custom metrics", "schedule"),
}
# The four monitoring job definitions a MonitoringSchedule may name; each holds its instances in JobResources.
_MONITORING_DEFINITIONS = ("AWS::SageMaker::DataQualityJobDefinition", "AWS::SageMaker::ModelQualityJobDefinition",
                           "AWS::SageMaker::ModelBiasJobDefinition", "AWS::SageMaker::ModelExplainabilityJobDefinition")
_SAGEMAKER_ACTION = re.compile(r"aws-sdk:sagemaker:(?P<action>\w+)$")
_PIPELINE_ARN = re.compile(r":pipeline/(?P<name>[^/\"]+)$")


def _runs(tpl: Template, logical_id: str, expression: Any, hours: float) -> tuple[Optional[float], str]:
    """(runs per month, "" or why unknown) of a schedule expression."""
    value = tpl.value(expression)
    if not isinstance(value, str):
        return None, f"{tpl.name}/{logical_id}: schedule expression {expression!r} is not a literal"
    try:
        return runs_per_year(value) * hours / HOURS_PER_YEAR, ""
    except ValueError as error:
        return None, f"{tpl.name}/{logical_id}: schedule expression not understood ({error})"


def _instances(tpl: Template, resources: Any, *, parameters: Optional[dict] = None) -> tuple[Optional[str], Optional[int]]:
    """(instance type, count) of a job's resources (:func:`_resources`); a pipeline's ``{"Get": "Parameters.X"}``
    reads X's default."""

    def read(value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("Get"), str) and value["Get"].startswith("Parameters."):
            return (parameters or {}).get(value["Get"].removeprefix("Parameters."))
        return tpl.value(value)

    if not isinstance(resources, dict):
        return None, None
    instance_type, count = read(resources.get("InstanceType")), as_number(read(resources.get("InstanceCount")))
    return (instance_type if isinstance(instance_type, str) else None), (None if count is None else int(count))


def _resources(request: Any, api: str) -> Any:
    """The member of a SageMaker ``api`` create request (or a pipeline step's Arguments) holding its instances."""
    for key in JOB_RESOURCES[api]:
        request = request.get(key) if isinstance(request, dict) else None
    return request


def _job_price(instance_type: Optional[str], count: Optional[int], minutes: float) -> tuple[Optional[float], str, str]:
    """(USD per run or None, the run's basis part, why unknown) of ``count`` instances for ``minutes``."""
    if instance_type is None or count is None:
        return None, "", f"instance type {instance_type!r} or count {count!r} is not a literal"
    known = INSTANCE_TYPES.get(instance_type)
    if known is None:
        return None, "", (f"{instance_type} has no price; add the type to mlops_loop/config/instance_types.py")
    part = f"{count} x {instance_type} x {minutes:g} min (assumed) x {format_rate(known.usd_per_hour)}/h"
    return count * known.usd_per_hour * minutes / 60, part, ""


# --------------------------------------------------------------------------------------------------------------------
# Glue: triggers, workflows and crawler schedules
# --------------------------------------------------------------------------------------------------------------------
class _GlueGraph:
    """Which Glue jobs and crawlers of one template run how often: scheduled triggers start them, conditional
    triggers start what follows (every run assumed to succeed), a crawler may carry its own schedule."""

    def __init__(self, tpl: Template, hours: float) -> None:
        self.tpl, self.hours = tpl, hours
        self.items = {lid: r for lid, r in tpl.resources.items() if r.get("Type") in ("AWS::Glue::Job", "AWS::Glue::Crawler")}
        self.by_name = {tpl.value((r.get("Properties") or {}).get("Name")): lid for lid, r in self.items.items()}
        self.triggers = {lid: r for lid, r in tpl.resources.items() if r.get("Type") == "AWS::Glue::Trigger"}
        self._runs: dict[str, tuple[Optional[float], str, tuple[str, ...]]] = {}
        self._visiting: set[str] = set()

    def target(self, expr: Any) -> Optional[str]:
        """The job or crawler (logical id) a trigger's action or condition names."""
        if isinstance(expr, dict) and isinstance(expr.get("Ref"), str) and expr["Ref"] in self.items:
            return expr["Ref"]
        return self.by_name.get(self.tpl.value(expr))

    def _trigger_runs(self, trigger_id: str) -> tuple[Optional[float], str]:
        props = self.triggers[trigger_id].get("Properties") or {}
        kind = self.tpl.value(props.get("Type"))
        if self.tpl.value(props.get("StartOnCreation")) not in (True, "true"):
            return 0.0, ""  # created deactivated: it fires once someone starts it
        if kind == "SCHEDULED":
            return _runs(self.tpl, trigger_id, props.get("Schedule"), self.hours)
        if kind != "CONDITIONAL":
            return 0.0, ""  # ON_DEMAND, EVENT: no schedule of their own
        predicate = props.get("Predicate") or {}
        upstream = [self.runs(self.target(c.get("JobName") or c.get("CrawlerName")))
                    for c in predicate.get("Conditions") or [] if isinstance(c, dict)]
        if not upstream:
            return 0.0, ""
        problems = [problem for runs, problem, _ in upstream if runs is None]
        if problems:
            return None, problems[0]
        counts = [runs for runs, _, _ in upstream]
        return (sum(counts) if self.tpl.value(predicate.get("Logical")) == "ANY" else min(counts)), ""

    def runs(self, item: Optional[str]) -> tuple[Optional[float], str, tuple[str, ...]]:
        """(runs per month, "" or why unknown, the triggers that start it) of a job or crawler."""
        if item is None or item in self._visiting:
            return 0.0, "", ()
        if item not in self._runs:
            self._visiting.add(item)
            total, problem, via = 0.0, "", []
            schedule = ((self.items[item].get("Properties") or {}).get("Schedule") or {})
            if isinstance(schedule, dict) and schedule.get("ScheduleExpression") is not None:
                runs, problem = _runs(self.tpl, item, schedule["ScheduleExpression"], self.hours)
                total = None if runs is None else total + runs
            for trigger_id, trigger in self.triggers.items():
                actions = (trigger.get("Properties") or {}).get("Actions") or []
                if not any(self.target(a.get("JobName") or a.get("CrawlerName")) == item
                           for a in actions if isinstance(a, dict)):
                    continue
                runs, why = self._trigger_runs(trigger_id)
                if runs:
                    via.append(trigger_id)
                if runs is None:
                    total, problem = None, problem or why
                elif total is not None:
                    total += runs
            self._visiting.discard(item)
            self._runs[item] = (total, problem, tuple(via))
        return self._runs[item]


def _glue_job_run(tpl: Template, props: dict) -> tuple[Optional[float], str, str]:
    """(USD per run or None, basis part, why unknown) of a Glue job run at its billing minimum."""
    command = tpl.value((props.get("Command") or {}).get("Name"))
    if command != "glueetl":
        return None, "", f"a {command} job: only Spark (glueetl) jobs are priced"
    if str(tpl.value(props.get("ExecutionClass")) or "STANDARD").upper() != "STANDARD":
        return None, "", "the Flex execution class is not priced"
    worker, workers = tpl.value(props.get("WorkerType")), as_number(tpl.value(props.get("NumberOfWorkers")))
    if worker is not None or workers is not None:
        per_worker = GLUE_WORKER_DPUS.get(worker) if isinstance(worker, str) else None
        if per_worker is None or workers is None:
            return None, "", f"worker type {worker!r} x {workers!r} workers has no DPU count"
        dpus, sizing = per_worker * workers, f"{workers:g} x {worker}"
    else:
        dpus = as_number(tpl.value(props.get("MaxCapacity") or props.get("AllocatedCapacity")))
        if dpus is None:
            return None, "", "neither WorkerType nor MaxCapacity is a literal"
        sizing = "MaxCapacity"
    version = as_number(tpl.value(props.get("GlueVersion")))
    if version is None:
        return None, "", f"GlueVersion {props.get('GlueVersion')!r} is not a literal (its billing minimum depends on it)"
    minimum = GLUE_JOB_MINIMUM_MINUTES if version >= 2 else GLUE_LEGACY_JOB_MINIMUM_MINUTES
    price = PRICES["glue_dpu_hour"]
    part = (f"{dpus:g} DPU ({sizing}) x {minimum:g} min (billing minimum) x "
            f"{format_rate(price.usd)}/{price.unit.replace('hour', 'h')}{price.caveat}")
    return dpus * minimum / 60 * price.usd, part, ""


def glue_units(tpl: Template, hours: float, assumptions: Assumptions) -> list[_Unit]:
    graph, units = _GlueGraph(tpl, hours), []
    for logical_id, resource in graph.items.items():
        runs, problem, via = graph.runs(logical_id)
        if runs == 0 and not problem:
            continue  # never started by a schedule
        props = resource.get("Properties") or {}
        once = tpl.once_deployed(resource)
        if resource["Type"] == "AWS::Glue::Job":
            usd, part, why = _glue_job_run(tpl, props)
            kind = "glue_job"
        else:
            price = PRICES["glue_crawler_dpu_hour"]
            minutes = GLUE_CRAWLER_MINIMUM_MINUTES
            usd = assumptions.crawler_dpus * minutes / 60 * price.usd
            part = (f"{assumptions.crawler_dpus:g} DPU (assumed: AWS chooses) x {minutes:g} min (billing minimum) x "
                    f"{format_rate(price.usd)}/{price.unit.replace('hour', 'h')}{price.caveat}")
            kind, why = "crawler", ""
        units.append(_Unit(kind, tpl.name, (*via, logical_id), runs, usd, part,
                           problem or (f"{tpl.name}/{logical_id}: {why}" if why else ""), once))
    return units


# --------------------------------------------------------------------------------------------------------------------
# EventBridge Scheduler schedules and scheduled rules: SageMaker jobs and pipelines
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Pipeline:
    tpl: Template
    logical_id: str
    resource: dict


def pipelines(templates: list[Template]) -> dict[str, _Pipeline]:
    """The environment's SageMaker pipelines by name (those whose name is a literal)."""
    found = {}
    for tpl in templates:
        for logical_id, resource in tpl.resources.items():
            if resource.get("Type") == "AWS::SageMaker::Pipeline":
                name = tpl.value((resource.get("Properties") or {}).get("PipelineName"))
                if isinstance(name, str):
                    found[name] = _Pipeline(tpl, logical_id, resource)
    return found


def _steps_with_instances(steps: list, parameters: dict, tpl: Template) -> tuple[list, int]:
    """([(step name, instance type, count)] of the steps every execution runs, how many steps with instances sit
    under a condition (run only when it holds: not counted))."""
    counted, conditional = [], 0

    def resources(step: dict) -> tuple[Any, int]:
        args = step.get("Arguments") if isinstance(step.get("Arguments"), dict) else {}
        for api, path in JOB_RESOURCES.items():  # a step's Arguments are its job's create request
            if not isinstance(args.get(path[0]), dict):
                continue
            jobs: Optional[float] = 1
            if api == "CreateHyperParameterTuningJob":  # tuning: every training job it may start
                limits = ((args.get("HyperParameterTuningJobConfig") or {}).get("ResourceLimits") or {})
                jobs = as_number(limits.get("MaxNumberOfTrainingJobs"))
            return _resources(args, api), int(jobs) if jobs else 0
        return None, 0

    def nested(step: dict) -> int:
        args = step.get("Arguments") if isinstance(step.get("Arguments"), dict) else {}
        inner = [s for key in ("IfSteps", "ElseSteps") for s in args.get(key) or [] if isinstance(s, dict)]
        return sum(1 for s in inner if resources(s)[0] is not None) + sum(nested(s) for s in inner)

    for step in steps:
        if not isinstance(step, dict):
            continue
        if step.get("Type") == "Condition":
            conditional += nested(step)
            continue
        config, jobs = resources(step)
        if config is None:
            continue
        instance_type, count = _instances(tpl, config, parameters=parameters)
        counted.append((str(step.get("Name")), instance_type, None if count is None or not jobs else count * jobs))
    return counted, conditional


def _pipeline_run(pipeline: _Pipeline, minutes: float) -> tuple[Optional[float], str, str]:
    """(USD per execution or None, basis part, why unknown): every unconditional step's instances for ``minutes``."""
    tpl, props = pipeline.tpl, pipeline.resource.get("Properties") or {}
    where = f"pipeline {tpl.name}/{pipeline.logical_id}"
    body = tpl.text((props.get("PipelineDefinition") or {}).get("PipelineDefinitionBody"))
    try:
        definition = json.loads(body) if body is not None else None
    except json.JSONDecodeError:
        definition = None
    if not isinstance(definition, dict):
        return None, "", f"{where}: the pipeline definition is not readable from the template"
    parameters = {p.get("Name"): p.get("DefaultValue") for p in definition.get("Parameters") or [] if isinstance(p, dict)}
    steps, conditional = _steps_with_instances(definition.get("Steps") or [], parameters, tpl)
    total, instances = 0.0, Counter()
    for name, instance_type, count in steps:
        known = INSTANCE_TYPES.get(instance_type) if isinstance(instance_type, str) else None
        if known is None or count is None:
            return None, "", f"{where}: step {name}: instance type {instance_type!r} x {count!r} has no price"
        total += count * known.usd_per_hour
        instances[instance_type] += count
    if not steps:
        return 0.0, "no step with instances", ""
    part = (f"steps {', '.join(name for name, _, _ in steps)} "
            f"({' + '.join(f'{n} x {t}' for t, n in sorted(instances.items()))}: {format_rate(round(total, 6))}/h) "
            f"x {minutes:g} min per step (assumed)")
    if conditional:
        part += f" ({conditional} more under a condition, not counted)"
    return total * minutes / 60, part, ""


def _target_unit(tpl: Template, logical_id: str, arn: Any, payload: Any, runs: Optional[float], problem: str,
                 found: dict[str, _Pipeline], assumptions: Assumptions, once: Optional[str]) -> Optional[_Unit]:
    """What one scheduled target starts, priced per run; None when it starts nothing priced here (a function with
    no pipeline named in its input, an SQS queue, ...)."""
    arn_text = tpl.text(arn) or ""
    input_text = tpl.text(payload)
    try:
        request = json.loads(input_text) if input_text else {}
    except json.JSONDecodeError:
        request = None
    minutes = assumptions.minutes_per_run

    def unit(kind: str, usd: Optional[float], part: str, why: str, *extra: str) -> _Unit:
        return _Unit(kind, tpl.name, (logical_id, *extra), runs, usd, part,
                     problem or (f"{tpl.name}/{logical_id}: {why}" if why else ""), once)

    action = _SAGEMAKER_ACTION.search(arn_text)
    if action:
        name = action["action"]
        if name == "startPipelineExecution":
            pipeline = found.get((request or {}).get("PipelineName")) if isinstance(request, dict) else None
            if pipeline is None:
                return unit("pipeline", None, "", "the pipeline its Input starts is not in this environment's templates")
            return unit("pipeline", *_pipeline_run(pipeline, minutes), pipeline.logical_id)
        api = name[:1].upper() + name[1:]  # Scheduler's action: the API's name in camel case
        kind = {"CreateProcessingJob": "processing", "CreateTransformJob": "transform",
                "CreateTrainingJob": "training"}.get(api)
        if kind is None:
            return None
        if not isinstance(request, dict):
            return unit(kind, None, "", "its Input is not readable JSON")
        usd, part, why = _job_price(*_instances(tpl, _resources(request, api)), minutes)
        return unit(kind, usd, part, why)
    # A pipeline target (Scheduler's templated SageMaker target, an EventBridge rule's SageMakerPipelineParameters)
    # or a function whose Input names the pipeline it starts (the retraining trigger's schedule).
    target = None
    ref = arn.get("Ref") if isinstance(arn, dict) else None
    getatt = arn.get("Fn::GetAtt") if isinstance(arn, dict) else None
    referenced = ref or (getatt[0] if isinstance(getatt, list) and getatt else None)
    if isinstance(referenced, str) and tpl.resources.get(referenced, {}).get("Type") == "AWS::SageMaker::Pipeline":
        target = next((p for p in found.values() if p.tpl is tpl and p.logical_id == referenced), None)
    elif _PIPELINE_ARN.search(arn_text):
        target = found.get(_PIPELINE_ARN.search(arn_text)["name"])
    elif isinstance(request, dict) and isinstance(request.get("pipeline"), str):
        target = found.get(request["pipeline"])
    if target is None:
        return None
    return unit("pipeline", *_pipeline_run(target, minutes), target.logical_id)


# --------------------------------------------------------------------------------------------------------------------
# CloudWatch custom metrics the scheduled runs publish
# --------------------------------------------------------------------------------------------------------------------
def _model_spec(tpl: Template, request: dict) -> tuple[Optional[dict], str]:
    """(the model spec a drift-monitor request reads, "" or why not): its ``model_spec`` input is an asset of the
    assembly (``asset.<key>`` beside the stage's directory, or in it)."""
    uri = next((((i.get("S3Input") or {}).get("S3Uri")) for i in request.get("ProcessingInputs") or []
                if isinstance(i, dict) and i.get("InputName") == "model_spec"), None)
    key = tpl.text(uri).rsplit("/", 1)[-1] if isinstance(tpl.text(uri), str) else None
    if not key:
        return None, "its model spec input is not named in its Input"
    folder = tpl.stack.template_path.parent
    for candidate in (folder / f"asset.{key}", folder.parent / f"asset.{key}"):
        if candidate.is_file():
            try:
                spec = json.loads(candidate.read_text())
            except (OSError, ValueError):
                spec = None
            if isinstance(spec, dict) and isinstance(spec.get("features"), list):
                return spec, ""
            return None, f"its model spec {key} has no readable feature list"
    return None, f"its model spec {key} (how many features it publishes a series for) is not an asset of the assembly"


def _metric_unit(tpl: Template, logical_id: str, payload: Any, runs: Optional[float], problem: str, hours: float,
                 once: Optional[str]) -> Optional[_Unit]:
    """The custom metrics a drift-monitor schedule's runs publish (``--publish-metrics``; None when they publish none):
    at most every headline metric (``MONITOR_METRICS``), a ``FeaturePsi`` per feature and, for a model scored by id
    (``--feature-snapshots-s3-uri``), a ``FeatureSkewRate`` per feature (pipeline_code.monitoring.report.metric_data),
    each a metric of its own (name and dimensions). Each run writes each once, so each is billed one hour per run (the
    hourly proration of ``custom_metric``), at most the whole month."""
    text = tpl.text(payload)
    try:
        request = json.loads(text) if text else None
    except json.JSONDecodeError:
        request = None
    arguments = ((request or {}).get("AppSpecification") or {}).get("ContainerArguments") if isinstance(request, dict) else None
    if not isinstance(arguments, list) or "--publish-metrics" not in arguments:
        return None
    spec, why = _model_spec(tpl, request)
    if spec is None:
        return _Unit("custom_metrics", tpl.name, (logical_id,), runs, None, "", problem or f"{tpl.name}/{logical_id}: {why}",
                     once)
    features = len(spec["features"])
    skew = features if "--feature-snapshots-s3-uri" in arguments else 0
    metrics = len(MONITOR_METRICS) + features + skew
    counts = f"{len(MONITOR_METRICS)} headline, {features} FeaturePsi" + (f", {skew} FeatureSkewRate" if skew else "")
    part = f"{metrics} metrics at most ({counts})"
    return _Unit("custom_metrics", tpl.name, (logical_id,), runs, _metrics_usd_per_run(metrics, runs, hours), part,
                 problem, once)


def _sweep_metric_unit(tpl: Template, logical_id: str, payload: Any, runs: Optional[float], problem: str,
                       hours: float, once: Optional[str]) -> Optional[_Unit]:
    """The custom metric the deploy function's log-retention sweep publishes on every run (``EndpointLogGroupsNotSet``:
    the endpoint log groups it could not set, 0 when all are; its alarm reads it), priced as a drift monitor's are;
    None for a target whose input is not that sweep."""
    text = tpl.text(payload)
    try:
        request = json.loads(text) if text else None
    except json.JSONDecodeError:
        request = None
    if not isinstance(request, dict) or request.get("action") != LOG_RETENTION_ACTION:
        return None
    part = f"1 metric ({LOG_RETENTION_NOT_SET_METRIC}, the deploy handler's {LOG_RETENTION_ACTION} sweep)"
    return _Unit("custom_metrics", tpl.name, (logical_id,), runs, _metrics_usd_per_run(1, runs, hours), part, problem,
                 once)


def _metrics_usd_per_run(metrics: int, runs: Optional[float], hours: float) -> float:
    """What ``metrics`` custom metrics written once a run cost per run: each billed the hour it has data (CloudWatch
    prorates a metric-month by the hour), so 1 h a run unless runs come more often than hourly (then the month's hours
    shared among them)."""
    billed_hours = 1.0 if runs is None or runs <= hours else hours / runs
    return metrics * billed_hours * PRICES["custom_metric"].usd / hours


def schedule_units(tpl: Template, hours: float, found: dict[str, _Pipeline], assumptions: Assumptions) -> list[_Unit]:
    """Every EventBridge Scheduler schedule and scheduled EventBridge rule of ``tpl`` that starts something priced."""
    units = []
    for logical_id, resource in tpl.resources.items():
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        if kind not in ("AWS::Scheduler::Schedule", "AWS::Events::Rule") or props.get("ScheduleExpression") is None:
            continue
        if str(tpl.value(props.get("State")) or "ENABLED").upper() == "DISABLED":
            continue
        runs, problem = _runs(tpl, logical_id, props.get("ScheduleExpression"), hours)
        targets = [props.get("Target")] if kind == "AWS::Scheduler::Schedule" else props.get("Targets") or []
        for target in targets:
            if isinstance(target, dict):
                found_unit = (_target_unit(tpl, logical_id, target.get("Arn"), target.get("Input"), runs, problem,
                                           found, assumptions, tpl.once_deployed(resource))
                              or _sweep_metric_unit(tpl, logical_id, target.get("Input"), runs, problem, hours,
                                                    tpl.once_deployed(resource)))
                if found_unit is not None:
                    units.append(found_unit)
                if found_unit is not None and found_unit.kind == "processing":
                    metrics = _metric_unit(tpl, logical_id, target.get("Input"), runs, problem, hours,
                                           tpl.once_deployed(resource))
                    if metrics is not None:
                        units.append(metrics)
    return units


# --------------------------------------------------------------------------------------------------------------------
# Native Model Monitor: monitoring schedules
# --------------------------------------------------------------------------------------------------------------------
def monitoring_definitions(templates: list[Template]) -> dict[str, tuple[Template, dict]]:
    """The environment's monitoring job definitions by name (those whose name is a literal)."""
    found = {}
    for tpl in templates:
        for resource in tpl.resources.values():
            if resource.get("Type") in _MONITORING_DEFINITIONS:
                name = tpl.value((resource.get("Properties") or {}).get("JobDefinitionName"))
                if isinstance(name, str):
                    found[name] = (tpl, resource)
    return found


def _monitoring_cluster(tpl: Template, config: dict, definitions: dict[str, tuple[Template, dict]]
                        ) -> tuple[Optional[Template], Any, str]:
    """(the template to read it in, the ClusterConfig a schedule's runs use, "" or why not found)."""
    inline = config.get("MonitoringJobDefinition")
    if isinstance(inline, dict):
        return tpl, (inline.get("MonitoringResources") or {}).get("ClusterConfig"), ""
    named = config.get("MonitoringJobDefinitionName")
    ref = named.get("Ref") if isinstance(named, dict) else None
    getatt = named.get("Fn::GetAtt") if isinstance(named, dict) else None
    referenced = ref or (getatt[0] if isinstance(getatt, list) and getatt else None)
    if isinstance(referenced, str) and tpl.resources.get(referenced, {}).get("Type") in _MONITORING_DEFINITIONS:
        definition = (tpl, tpl.resources[referenced])
    else:
        definition = definitions.get(tpl.value(named))
    if definition is None:
        return None, None, f"the job definition {tpl.text(named) or named!r} it runs is not in this environment's templates"
    owner, resource = definition
    return owner, ((resource.get("Properties") or {}).get("JobResources") or {}).get("ClusterConfig"), ""


def monitoring_units(tpl: Template, hours: float, definitions: dict[str, tuple[Template, dict]],
                     assumptions: Assumptions) -> list[_Unit]:
    """Every Model Monitor schedule of ``tpl``: each run is one processing job on its definition's cluster."""
    units = []
    for logical_id, resource in tpl.resources.items():
        if resource.get("Type") != "AWS::SageMaker::MonitoringSchedule":
            continue
        config = (resource.get("Properties") or {}).get("MonitoringScheduleConfig") or {}
        runs, problem = _runs(tpl, logical_id, (config.get("ScheduleConfig") or {}).get("ScheduleExpression"), hours)
        owner, cluster, why = _monitoring_cluster(tpl, config, definitions)
        usd, part = None, ""
        if owner is not None:
            usd, part, why = _job_price(*_instances(owner, cluster), assumptions.minutes_per_run)
        units.append(_Unit("monitoring", tpl.name, (logical_id,), runs, usd, part,
                           problem or (f"{tpl.name}/{logical_id}: {why}" if why else ""), tpl.once_deployed(resource)))
    return units


# --------------------------------------------------------------------------------------------------------------------
# Lines
# --------------------------------------------------------------------------------------------------------------------
def scheduled_units(templates: list[Template], hours: float, assumptions: Assumptions = DEFAULT_ASSUMPTIONS) -> list[_Unit]:
    found, definitions = pipelines(templates), monitoring_definitions(templates)
    units = []
    for tpl in templates:
        units += glue_units(tpl, hours, assumptions)
        units += schedule_units(tpl, hours, found, assumptions)
        units += monitoring_units(tpl, hours, definitions, assumptions)
    return units


def scheduled_lines(units: list[_Unit]) -> list[Line]:
    """One line per kind: the sum over its units of runs per month x cost per run; unknown when any unit's is."""
    lines = []
    for kind, (label, noun) in _LABELS.items():
        of_kind = [u for u in units if u.kind == kind]
        if not of_kind:
            continue
        known = [u for u in of_kind if not u.problem and u.runs is not None and u.usd_per_run is not None]
        groups: Counter = Counter((round(u.runs, 2), u.part) for u in known)
        parts = [f"{n} {noun}{'s' if n != 1 else ''} x {runs:g} runs/month x {part}" for (runs, part), n in groups.items()]
        problems = [u.problem or f"{u.stack}/{u.resources[-1]}: price unknown" for u in of_kind if u not in known]
        basis = " + ".join(parts)
        if kind == "custom_metrics" and known:
            price = PRICES["custom_metric"]
            basis += (f"; each metric 1 h per run (at most the month) x {format_rate(price.usd)}/{price.unit} / the month's "
                      f"hours (prorated by the hour with data; billed by whole months it would be up to 24 times a daily "
                      f"run's){price.caveat}")
        if problems:
            basis = (basis + "; " if basis else "") + "unknown: " + "; ".join(problems)
        later = [u for u in of_kind if u.once_deployed]
        if later and len(later) < len(of_kind):
            basis += f" ({len(later)} only once deployed)"
        monthly = None if problems else sum(u.runs * u.usd_per_run for u in known)
        lines.append(
            Line(
                category="scheduled",
                label=label,
                mode="scheduled",
                basis=basis,
                monthly_usd=monthly,
                stack=", ".join(sorted({u.stack for u in of_kind})),
                resources=tuple(r for u in of_kind for r in u.resources),
                once_deployed=(", ".join(sorted({str(u.once_deployed) for u in later}))
                               if later and len(later) == len(of_kind) else None),
            )
        )
    return lines
