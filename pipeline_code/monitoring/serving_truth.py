"""What the endpoint really serves and answers, asked of AWS (the scheduled monitor, ``--from-s3 --endpoint-name``).

The monitor judges the version the serving stack's parameter names (:func:`.remote.resolve_serving_version`) and the
traffic it finds in S3. Neither says what callers actually got: an endpoint updated by hand, or left on another
version by a half-failed rollout, answers with an artefact the stack does not name; capture that stops (a serverless
container that cannot write, data capture switched off) leaves an empty window that reads as a quiet day. Two checks
close that gap:

* **Serving** (:func:`describe_endpoint_serving`, :func:`serving_findings`): DescribeEndpoint -> its current
  ``EndpointConfigName`` (during a blue/green update ``PendingDeploymentSummary.EndpointConfigName`` names the config
  being rolled out; the current one still answers) -> DescribeEndpointConfig -> each production variant's
  ``ModelName`` -> DescribeModel -> each container's ``ModelPackageName`` (or ``ModelDataUrl`` for a model built
  without a package). An ``InService`` endpoint whose containers name another package (or artefact) than the stack is
  a ``serving_mismatch`` error: the window's answers came from a version nobody approved for it, so the window is not
  trusted and ``MonitorHealthy=0`` pages people. While the endpoint is ``Updating`` to a new config
  (``PendingDeploymentSummary``) or ``RollingBack``, a rollout is under way: nothing is an error, records of the other
  version are rescored as before. An endpoint that answers no caller (``Failed``, ``OutOfService``, ``Deleting``) is a
  warning naming its status. A multi-model container (``Mode: MultiModel``) or a variant without a model (inference
  components) cannot be judged this way: reported, skipped.
* **Capture** (:func:`invocations`, :func:`capture_findings`): the endpoint's requests in the window from CloudWatch
  (``AWS/SageMaker``, dimensions ``EndpointName`` + ``VariantName``; real-time and serverless publish ``Invocations``,
  Sum; an async endpoint publishes no ``Invocations``, so its requests are the ``ModelLatency`` SampleCount, one sample
  per request the model processed) against the capture lines the window holds (one line per captured request) and the
  capture percentage the config sets. Fewer than half the expected lines, once at least
  :data:`MIN_INVOCATIONS` requests were served and :data:`MIN_EXPECTED` lines were expected, is ``capture_missing``.

Every AWS call that fails (access denied, throttled past the client's retries, the endpoint missing) becomes a report
error of its own section (``serving_check`` / ``capture_check``): ``MonitorHealthy=0``, the window's other numbers
stand, monitoring goes on. boto3 clients are passed in; stdlib only otherwise.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pipeline_code.core.commands import cli_command
from pipeline_code.core.contract import VARIANT, version_of_arn
from pipeline_code.monitoring import drift

INVOCATION_NAMESPACE = "AWS/SageMaker"
SERVING_CHECK, CAPTURE_CHECK = "serving_check", "capture_check"
# Serving as configured: what answers can be compared. SystemUpdating is AWS maintenance, which "does not change any
# customer-specified values such as ... model"; UpdateRollbackFailed is "in service with a mix of the old and new
# endpoint configurations" and stays so until someone acts (DescribeEndpoint, EndpointStatus); Updating without a
# new endpoint config changes weights or capacities, not the model (see _rolling_out).
SERVING = ("InService", "SystemUpdating", "UpdateRollbackFailed", "Updating")
# Answering nothing (or nothing yet): whatever its config names, no version serves callers.
NOT_ANSWERING = ("Failed", "OutOfService", "Deleting")
# The capture rule. Captured lines of a window of N requests sampled at p are Binomial(N, p): with at least
# MIN_EXPECTED lines expected, fewer than half of them happens by chance with probability below 0.5 % (Poisson(20)
# P(X <= 9) = 0.005; less for larger windows); MIN_INVOCATIONS keeps a trickle of traffic from being judged at all.
MIN_INVOCATIONS = 100
MIN_EXPECTED = 20
MISSING_SHARE = 0.5


def fix(environment: Optional[str], model: Optional[str], config: Optional[str] = None) -> str:
    """What to do about a mismatch, with the rollback CLI's commands for ``model`` in ``environment`` complete (the
    monitor's own; ``<env>`` / ``<model>`` when not known), each between backticks: which version serves and which
    should, and the rollback to a version ``N`` the reader chooses; they name ``config`` (default None: the default
    config, named by none)."""
    versions = cli_command("rollback", "versions", environment=environment, model=model, config=config)
    rollback = cli_command("rollback", 'rollback --to-version N --reason "<why>"', environment=environment, model=model,
                           config=config)
    return (f"see which version serves and which should (`{versions}`), then re-approve the version the stack names (or "
            "the one that should serve) so the deploy handler reconciles the stack, or roll back to version N "
            f"(`{rollback}`); never update the endpoint by hand")


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _containers(model: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    containers = [c for c in model.get("Containers") or [] if isinstance(c, Mapping) and c]
    primary = model.get("PrimaryContainer")
    return containers or ([primary] if isinstance(primary, Mapping) and primary else [])


def describe_endpoint_serving(sagemaker: Any, endpoint: str) -> Dict[str, Any]:
    """What ``endpoint`` serves now: ``status``, ``endpoint_config``, ``pending_config`` (a rollout's target, else
    None), ``kind`` (``async`` / ``serverless`` / ``realtime``), ``variants`` (``[{variant, model, packages,
    data_urls, multi_model}]``) and ``data_capture`` (DescribeEndpoint's summary, None for serverless).

    Raises whatever the SageMaker calls raise (the caller reports it).
    """
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    pending = described.get("PendingDeploymentSummary") or {}
    config_name = described.get("EndpointConfigName")
    out: Dict[str, Any] = {
        "endpoint": endpoint, "status": described.get("EndpointStatus"), "endpoint_config": config_name,
        "pending_config": pending.get("EndpointConfigName"), "data_capture": described.get("DataCaptureConfig") or None,
        "variant_names": [v["VariantName"] for v in described.get("ProductionVariants") or [] if v.get("VariantName")],
        "variants": [],
    }
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    variants = config.get("ProductionVariants") or []
    out["kind"] = ("async" if config.get("AsyncInferenceConfig")
                   else "serverless" if any(v.get("ServerlessConfig") for v in variants) else "realtime")
    for variant in variants:
        entry: Dict[str, Any] = {"variant": variant.get("VariantName"), "model": variant.get("ModelName"),
                                 "packages": [], "data_urls": [], "multi_model": False}
        if entry["model"]:
            containers = _containers(sagemaker.describe_model(ModelName=entry["model"]))
            entry["packages"] = [c["ModelPackageName"] for c in containers if c.get("ModelPackageName")]
            entry["data_urls"] = [c["ModelDataUrl"] for c in containers if c.get("ModelDataUrl")]
            entry["multi_model"] = any(c.get("Mode") == "MultiModel" for c in containers)
        out["variants"].append(entry)
    return out


def _names(what: str) -> str:
    version = version_of_arn(what)
    return f"version {version} ({what})" if version is not None else what


def _rolling_out(served: Mapping[str, Any]) -> bool:
    """A rollout (blue/green, or its rollback) is under way: a window then legitimately holds two versions' answers.
    Updating is one only with a PendingDeploymentSummary (a new endpoint config being deployed): an update of the
    weights and capacities (autoscaling, UpdateEndpointWeightsAndCapacities) is Updating too and changes no model."""
    status = served.get("status")
    return status == "RollingBack" or (status == "Updating" and bool(served.get("pending_config")))


def serving_findings(served: Mapping[str, Any], *, expected_arn: str, expected_data_url: Optional[str],
                     environment: Optional[str] = None, model: Optional[str] = None, cli_config: Optional[str] = None
                     ) -> Tuple[List[Dict[str, str]], List[Dict[str, Any]]]:
    """``(errors, checks)`` for what ``served`` (:func:`describe_endpoint_serving`) says against the version the stack
    names (``expected_arn``; ``expected_data_url``: its model artefact, for a model built without a package); a
    mismatch's fix names ``environment`` and ``model`` in its commands (default: placeholders to fill in), and
    ``cli_config`` as their --config (default None: the default config, named by none)."""
    endpoint, status = served["endpoint"], served.get("status")
    answering: List[str] = []
    unjudged: List[str] = []
    for variant in served.get("variants") or []:
        if variant.get("multi_model") or not variant.get("model"):
            unjudged.append(str(variant.get("variant")))
            continue
        if variant["packages"]:
            answering += [p for p in variant["packages"] if p != expected_arn]
        else:
            answering += [u for u in variant["data_urls"] if u != expected_data_url] or (
                [] if variant["data_urls"] else [f"model {variant['model']} (no package, no artefact)"])
    if unjudged:
        return [], [drift.check("serving_version_on_endpoint", "monitor", None, None, drift.SKIPPED,
                                detail=f"{endpoint}: variants {unjudged} host several models or inference components; "
                                       "which version answers is decided per request, not by the endpoint")]
    if status in NOT_ANSWERING:
        return [], [drift.check("serving_version_on_endpoint", "monitor", None, None, drift.WARN,
                                detail=f"{endpoint} is {status}: it answers no caller (its config names "
                                       f"{', '.join(sorted(set(_names(a) for a in answering))) or _names(expected_arn)}; "
                                       f"the stack names {_names(expected_arn)}). See DescribeEndpoint's FailureReason")]
    if not answering:
        return [], [drift.check("serving_version_on_endpoint", "monitor", None, None, drift.PASS,
                                detail=f"{endpoint} ({status}) serves {_names(expected_arn)}, the version the stack names")]
    others = ", ".join(sorted(set(_names(a) for a in answering)))
    if _rolling_out(served):
        return [], [drift.check("serving_version_on_endpoint", "monitor", None, None, drift.WARN,
                                detail=f"{endpoint} is {status} (a rollout to {served.get('pending_config') or 'a new config'}): "
                                       f"it still serves {others}; the stack names {_names(expected_arn)}. Records the "
                                       "other version answered are rescored by the one the stack names")]
    if status not in SERVING:
        return [], [drift.check("serving_version_on_endpoint", "monitor", None, None, drift.WARN,
                                detail=f"{endpoint} is {status}: its config serves {others}, not {_names(expected_arn)}")]
    message = (f"endpoint {endpoint} is {status} and serves {others}, but the serving stack names {_names(expected_arn)}: "
               "the window's answers came from a version the stack and registry do not name, and this report judged "
               f"another. Fix: {fix(environment, model, cli_config)}")
    return [{"kind": "serving_mismatch", "message": message}], []  # the error is its check (run_monitor's error())


def invocations(cloudwatch: Any, *, endpoint: str, kind: str, variants: Sequence[str], start: dt.datetime,
                end: dt.datetime) -> Dict[str, Any]:
    """The requests ``endpoint`` answered in ``[start, end)``: ``{"requests", "refused", "metric", "statistic"}``
    summed over ``variants`` (default: the one variant every endpoint of ours has) in hourly periods.

    ``Invocations`` counts every request, those the container refused (4xx) or failed (5xx) too, and a refused request
    leaves no capture line (serving captures what it answers), so those are taken off (``refused``): a caller whose
    requests are mostly refused must not read as lost capture. (An async endpoint's ``ModelLatency`` samples are the
    requests its model processed.)"""
    metric, statistic = ("ModelLatency", "SampleCount") if kind == "async" else ("Invocations", "Sum")
    refusals = () if kind == "async" else ("Invocation4XXErrors", "Invocation5XXErrors")

    def total(name: str, stat: str) -> float:
        summed = 0.0
        for variant in variants or [VARIANT]:
            answer = cloudwatch.get_metric_statistics(
                Namespace=INVOCATION_NAMESPACE, MetricName=name, StartTime=start, EndTime=end, Period=3600,
                Statistics=[stat],
                Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}])
            summed += sum(float(p.get(stat) or 0.0) for p in answer.get("Datapoints") or [])
        return summed

    requests = total(metric, statistic)
    refused = sum(total(name, "Sum") for name in refusals)
    return {"requests": max(0.0, requests - refused), "refused": refused,
            "metric": f"{INVOCATION_NAMESPACE} {metric} ({statistic})"
                      + (" less Invocation4XXErrors and Invocation5XXErrors" if refusals else ""),
            "statistic": statistic}


def capture_findings(endpoint_section: Optional[Mapping[str, Any]], *, captured: int, percent: float,
                     truncated: bool) -> Tuple[List[Dict[str, str]], List[Dict[str, Any]]]:
    """``(errors, checks)`` comparing the ``captured`` capture lines of the window with the requests the endpoint
    served (``endpoint_section["invocations"]``) sampled at ``percent`` (see the module docstring for the rule)."""
    section: Mapping[str, Any] = endpoint_section or {}
    served = section.get("invocations")
    if not served or percent <= 0:
        return [], []
    endpoint = section.get("endpoint")
    requests = served["requests"]
    expected = requests * percent / 100.0
    refused = f", {int(served['refused'])} refused or failed not counted" if served.get("refused") else ""
    where = f"{endpoint}: {int(requests)} requests answered ({served['metric']}{refused}) at {percent:g} % capture"
    if truncated:
        return [], [drift.check("capture_complete", "monitor", float(captured), expected, drift.SKIPPED,
                                detail=f"{where}; not compared: the window download was cut at --max-window-bytes")]
    if requests < MIN_INVOCATIONS or expected < MIN_EXPECTED:
        return [], [drift.check("capture_complete", "monitor", float(captured), expected, drift.SKIPPED,
                                detail=f"{where}: too few to judge (needs {MIN_INVOCATIONS} requests and {MIN_EXPECTED} "
                                       "expected lines)")]
    if captured >= MISSING_SHARE * expected:
        return [], [drift.check("capture_complete", "monitor", float(captured), MISSING_SHARE * expected, drift.PASS,
                                op="<", detail=f"{where}: {captured} captured of about {expected:.0f} expected")]
    capture = section.get("data_capture")
    state = (f"; the endpoint's data capture is {'on' if capture.get('EnableCapture') else 'off'} "
             f"({capture.get('CaptureStatus')}, {capture.get('CurrentSamplingPercentage')} %)") if capture else ""
    look = ("the endpoint's data capture (DescribeEndpoint DataCaptureConfig) and the serving role's write access to the "
            "capture prefix and the data key" if section.get("kind") != "serverless" else
            "the container log (/aws/sagemaker/Endpoints/<endpoint>, lines 'self_capture: could not write capture') and "
            "the CaptureWriteFailures metric: the serving role's write access to the capture prefix and the data key")
    message = (f"{where} should have left about {expected:.0f} capture lines in the window; it holds {captured}{state}. "
               f"The traffic was served but not captured, so this window under-reports it. Look at {look}")
    return [{"kind": "capture_missing", "message": message, "section": CAPTURE_CHECK}], []


def check_endpoint(*, sagemaker: Any, cloudwatch: Any, endpoint: str, expected_arn: str,
                   expected_data_url: Optional[str], start: dt.datetime, end: dt.datetime,
                   environment: Optional[str] = None, model: Optional[str] = None, cli_config: Optional[str] = None
                   ) -> Tuple[Dict[str, Any], List[Dict[str, str]], List[Dict[str, Any]]]:
    """``(section, errors, checks)``: what ``endpoint`` serves against the stack's version, and the requests it served
    in ``[start, end)`` (``section["invocations"]``, for :func:`capture_findings`); never raises. ``environment``,
    ``model`` (default: unknown) and ``cli_config`` (default: none) are what a mismatch's commands name
    (:func:`serving_findings`)."""
    errors: List[Dict[str, str]] = []
    checks: List[Dict[str, Any]] = []
    try:
        section: Dict[str, Any] = describe_endpoint_serving(sagemaker, endpoint)
    except Exception as exc:  # noqa: BLE001 - access denied, throttled, no such endpoint: reported, monitoring goes on
        errors.append({"kind": "serving_check_failed", "section": SERVING_CHECK,
                       "message": f"cannot tell what endpoint {endpoint} serves ({_describe(exc)}); check the monitor "
                                  "role's sagemaker:DescribeEndpoint/DescribeEndpointConfig/DescribeModel permissions "
                                  "and that the endpoint exists"})
        return {"endpoint": endpoint, "state": "unknown"}, errors, checks
    found, said = serving_findings(section, expected_arn=expected_arn, expected_data_url=expected_data_url,
                                   environment=environment, model=model, cli_config=cli_config)
    errors += found
    checks += said
    try:
        section["invocations"] = invocations(cloudwatch, endpoint=endpoint, kind=section["kind"],
                                             variants=section["variant_names"], start=start, end=end)
    except Exception as exc:  # noqa: BLE001 - the capture comparison is then not made; said so
        errors.append({"kind": "capture_check_failed", "section": CAPTURE_CHECK,
                       "message": f"cannot read {endpoint}'s requests from CloudWatch ({_describe(exc)}), so lost capture "
                                  "cannot be told from a quiet day; check the monitor role's cloudwatch:GetMetricStatistics"})
    return section, errors, checks


def check_from_s3(args: Any, aws: Mapping[str, Any], serving: Any, now: dt.datetime
                  ) -> Tuple[Dict[str, Any], List[Dict[str, str]], List[Dict[str, Any]]]:
    """:func:`check_endpoint` for the scheduled run: ``args.endpoint_name`` against ``serving`` (a
    :class:`.remote.ServingVersion`) over the traffic window ending at ``now``; ``aws["cloudwatch"]`` (default: a client
    of ``args.region`` with the same retries as the others); the fix of a mismatch names the monitor's own environment
    and model (``args.environment``, ``args.model``) and the config the app was synthesized from (``args.cli_config``)."""
    cloudwatch = aws.get("cloudwatch")
    if cloudwatch is None:
        import boto3
        from botocore.config import Config

        cloudwatch = boto3.client("cloudwatch", region_name=args.region,
                                  config=Config(retries={"mode": "standard", "total_max_attempts": 5}))
    return check_endpoint(sagemaker=aws["sagemaker"], cloudwatch=cloudwatch, endpoint=args.endpoint_name,
                          expected_arn=serving.arn, expected_data_url=serving.model_data_url,
                          start=now - dt.timedelta(hours=args.window_hours), end=now,
                          environment=args.environment, model=args.model, cli_config=args.cli_config)
