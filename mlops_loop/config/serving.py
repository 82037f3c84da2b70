"""How each model is served: the four modes and their knobs, validated at synth.

A model's ``serving`` block in the config sets its mode and defaults; an environment may override
any key per model (``environments.<env>.serving.<model>``), e.g. to serve serverless in dev so it
idles at $0 and real-time with more instances in prod. Only the active mode's block is used.
Ranges are the service limits (or tighter, where a larger value is almost certainly a mistake), so
a misconfiguration fails ``cdk synth`` with the model, the field and the allowed range instead of
failing a CloudFormation deployment.
"""

from __future__ import annotations

import re
from typing import Iterable, Literal, Optional

from pydantic import ConfigDict, Field, field_validator, model_validator

from pipeline_code.core.online_features import DEFAULT_MAX_SKEW_RATE, MAX_IDS, POLICIES

from .schedules import check_at_most_hourly
from ._strict import StrictModel
from .instance_types import ACCELERATOR_LABELS, INSTANCE_TYPES, unknown_problem, unsupported_problem

Mode = Literal["realtime", "serverless", "async", "batch", "multi_model"]


class _Frozen(StrictModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _instance_type(value: str) -> str:
    if value not in INSTANCE_TYPES:
        raise ValueError(unknown_problem(value))
    return value


def _endpoint_instance_type(value: str) -> str:
    problem = unsupported_problem(_instance_type(value), "endpoints")
    if problem:
        raise ValueError(problem)
    return value


def _transform_instance_type(value: str) -> str:
    problem = unsupported_problem(_instance_type(value), "batch transform")
    if problem:
        raise ValueError(problem)
    return value


# The longest a blue/green rollout may take (its MaximumExecutionTimeoutInSeconds; SageMaker accepts up to 8 h):
# 4 h, so that the deploy job that waits on it in CloudFormation (.github/workflows/deploy.yml, whose timeout and
# credentials outlast it) stays within GitHub's 6-hour limit for a job. Of it, FLEET_START_SECONDS go to creating
# and starting the new fleet; the rest is for the rollout's waits.
MAX_ROLLOUT_SECONDS = 14_400
# The longest p99 latency an alarm may allow: an async invocation's limit (an hour).
MAX_LATENCY_MS = 3_600_000
FLEET_START_SECONDS = 1_800


class Rollout(_Frozen):
    """Blue/green rollout of a newly approved version, with automatic rollback.

    Default: shift 10% of capacity (canary) to the new fleet, bake 10 minutes, then shift the rest;
    keep the old fleet 5 more minutes; roll back if the new version's 5xx rate exceeds 1% or its p99
    model latency exceeds 1 s, or its 4xx rate exceeds the endpoint's ``alarms.max_client_error_rate_percent``
    (:class:`ServingAlarms`; busy minutes only, see ``endpoint_fleet.rollback_alarms``). ``linear`` shifts ``linear_step_percent`` per step instead;
    ``all_at_once`` shifts everything, then bakes ``termination_wait_minutes`` before tearing down.
    Its waits together may take 210 minutes: a rollout gets :data:`MAX_ROLLOUT_SECONDS` (4 h), 30 minutes of them
    to start the new fleet.
    """

    strategy: Literal["all_at_once", "canary", "linear"] = "canary"
    canary_percent: int = Field(default=10, ge=1, le=50)
    linear_step_percent: int = Field(default=20, ge=10, le=50)  # SageMaker: LinearStepSize 10-50 % of the fleet
    wait_minutes: int = Field(default=10, ge=0, le=60)
    termination_wait_minutes: int = Field(default=5, ge=0, le=60)
    max_error_rate_percent: float = Field(default=1.0, gt=0.0, le=100.0)
    # Up to an hour, as an async endpoint's invocations may run (and as alarms.max_latency_p99_ms allows).
    max_latency_p99_ms: int = Field(default=1000, ge=1, le=MAX_LATENCY_MS)

    @property
    def steps(self) -> int:
        """How many times traffic shifts, each followed by ``wait_minutes``."""
        return {"all_at_once": 1, "canary": 2, "linear": -(-100 // self.linear_step_percent)}[self.strategy]

    @property
    def timeout_seconds(self) -> int:
        """MaximumExecutionTimeoutInSeconds: every wait plus FLEET_START_SECONDS (at least SageMaker's 600)."""
        return max(600, (self.steps * self.wait_minutes + self.termination_wait_minutes) * 60 + FLEET_START_SECONDS)

    @model_validator(mode="after")
    def _fits(self) -> "Rollout":
        waits = self.steps * self.wait_minutes + self.termination_wait_minutes
        allowed = (MAX_ROLLOUT_SECONDS - FLEET_START_SECONDS) // 60
        if waits > allowed:
            larger_steps = ", or raise linear_step_percent" if self.strategy == "linear" else ""
            raise ValueError(
                f"wait_minutes: a {self.strategy} rollout waits {waits} min ({self.steps} x wait_minutes {self.wait_minutes} "
                f"+ termination_wait_minutes {self.termination_wait_minutes}), over the {allowed} min it may take "
                f"({MAX_ROLLOUT_SECONDS // 60} min in all, {FLEET_START_SECONDS // 60} of them to start the new fleet); "
                f"lower wait_minutes or termination_wait_minutes{larger_steps}"
            )
        return self


class RealtimeAutoscaling(_Frozen):
    """Target tracking on invocations per instance per minute. Default: 1–4 instances at 200
    invocations/instance/minute, scale out after 1 minute, in after 5."""

    min_instances: int = Field(default=1, ge=1, le=100)
    max_instances: int = Field(default=4, ge=1, le=100)
    target_invocations_per_instance: int = Field(default=200, ge=1, le=100_000)
    scale_out_cooldown_seconds: int = Field(default=60, ge=0, le=3600)
    scale_in_cooldown_seconds: int = Field(default=300, ge=0, le=3600)

    @model_validator(mode="after")
    def _bounds(self) -> "RealtimeAutoscaling":
        if self.max_instances < self.min_instances:
            raise ValueError(
                f"max_instances: {self.max_instances} is below min_instances {self.min_instances}; "
                "allowed: min_instances <= max_instances"
            )
        return self


class RealtimeServing(_Frozen):
    """A real-time endpoint. Default: ml.m5.large starting at ``autoscaling.min_instances``,
    autoscaling 1–4, data capture of every request, canary rollout with alarm rollback."""

    instance_type: str = "ml.m5.large"
    autoscaling: Optional[RealtimeAutoscaling] = RealtimeAutoscaling()
    instance_count: int = Field(default=1, ge=1, le=100, description="Instances without autoscaling / at start.")
    rollout: Rollout = Rollout()

    _types = field_validator("instance_type")(_endpoint_instance_type)

    @model_validator(mode="before")
    @classmethod
    def _count_defaults_to_the_minimum(cls, data: object) -> object:
        # Without an explicit instance_count the endpoint starts at the autoscaling minimum.
        if isinstance(data, dict) and "instance_count" not in data:
            scaling = data.get("autoscaling", RealtimeAutoscaling())
            if isinstance(scaling, dict):
                minimum = scaling.get("min_instances", RealtimeAutoscaling().min_instances)
                # An invalid minimum is reported on its own field, not a second time as instance_count.
                if isinstance(minimum, int) and not isinstance(minimum, bool) and 1 <= minimum <= 100:
                    return {**data, "instance_count": minimum}
            if isinstance(scaling, RealtimeAutoscaling):
                return {**data, "instance_count": scaling.min_instances}
        return data

    @model_validator(mode="after")
    def _count_within_scaling(self) -> "RealtimeServing":
        a = self.autoscaling
        if a is not None and not a.min_instances <= self.instance_count <= a.max_instances:
            raise ValueError(
                f"instance_count: {self.instance_count} is outside autoscaling {a.min_instances}-{a.max_instances}; "
                "allowed: autoscaling.min_instances <= instance_count <= autoscaling.max_instances"
            )
        return self


class ServerlessServing(_Frozen):
    """A serverless endpoint. Default: 2 GB memory, at most 10 concurrent invocations, no
    provisioned concurrency (so it costs nothing while idle), all-at-once blue/green rollout with
    alarm rollback (canary and linear steps are sized in instances, which serverless endpoints do
    not have).

    SageMaker data capture is not available for serverless endpoints; the model's own serving
    code writes the same capture records when ``data_capture_percent`` > 0.
    """

    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 2048
    max_concurrency: int = Field(default=10, ge=1, le=200)
    provisioned_concurrency: Optional[int] = Field(default=None, ge=1, le=200)
    rollout: Rollout = Rollout(strategy="all_at_once")

    @field_validator("rollout", mode="before")
    @classmethod
    def _all_at_once_by_default(cls, value: object) -> object:
        # A partial block (e.g. only wait_minutes) keeps the only strategy serverless supports.
        if isinstance(value, dict) and "strategy" not in value:
            return {**value, "strategy": "all_at_once"}
        return value

    @model_validator(mode="after")
    def _limits(self) -> "ServerlessServing":
        if self.provisioned_concurrency is not None and self.provisioned_concurrency > self.max_concurrency:
            raise ValueError(
                f"provisioned_concurrency: {self.provisioned_concurrency} exceeds max_concurrency "
                f"{self.max_concurrency}; allowed: 1-{self.max_concurrency}"
            )
        if self.rollout.strategy != "all_at_once":
            raise ValueError(
                f"rollout.strategy: {self.rollout.strategy!r} shifts traffic in instance steps, which a "
                "serverless endpoint does not have; allowed: 'all_at_once'"
            )
        return self


class AsyncServing(_Frozen):
    """An asynchronous endpoint that scales to zero. Default: ml.m5.large, 0–2 instances, scale
    out from zero as soon as a request waits, target 5 queued requests per instance, 4 concurrent
    invocations per instance, scale in after 10 idle minutes."""

    instance_type: str = "ml.m5.large"
    max_instances: int = Field(default=2, ge=1, le=100)
    target_backlog_per_instance: float = Field(default=5.0, gt=0.0, le=10_000.0)
    max_concurrent_invocations_per_instance: int = Field(default=4, ge=1, le=1000)
    scale_in_cooldown_seconds: int = Field(default=600, ge=0, le=3600)
    scale_out_cooldown_seconds: int = Field(default=60, ge=0, le=3600)
    rollout: Rollout = Rollout()

    _types = field_validator("instance_type")(_endpoint_instance_type)


# How long the serving container lets one request run unless the model's container environment says otherwise
# (SAGEMAKER_MODEL_SERVER_TIMEOUT): 60 s in both images the app serves with - the XGBoost image's gunicorn
# --timeout and nginx proxy_read_timeout (sagemaker-containers 2.8.6.post2, _server.start) and the Neuron inference
# image's TorchServe default_response_timeout (sagemaker-pytorch-inference 2.0.25, torchserve.py).
CONTAINER_TIMEOUT_ENV = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
CONTAINER_DEFAULT_TIMEOUT_SECONDS = 60
# The longest a request may run per mode: InvokeEndpoint answers within 60 s (real-time, serverless); an async
# invocation and a transform job's request (ModelClientConfig.InvocationsTimeoutInSeconds) may take an hour.
INFERENCE_TIMEOUT_LIMITS = {"realtime": 60, "serverless": 60, "async": 3600, "batch": 3600}


class BatchServing(_Frozen):
    """Scheduled batch transform over ``s3://<inference bucket>/batch/<model>/input/``. Default:
    one ml.m5.xlarge, nightly at 01:00 UTC, JSON Lines records split by line, 6 MB payloads; inputs
    stay in place and each run writes ``X.out`` per input file ``X`` under its own output prefix,
    which the monitor pairs line by line with the input."""

    instance_type: str = "ml.m5.xlarge"
    instance_count: int = Field(default=1, ge=1, le=100)
    schedule: str = "cron(0 1 * * ? *)"
    content_type: Literal["application/jsonlines", "text/csv"] = "application/jsonlines"
    # SageMaker's limit (100 MB; with the concurrency, below) is the only one: the serving container sets none of its
    # own (the XGBoost image serving one model by SAGEMAKER_PROGRAM runs nginx with client_max_body_size 0 before a
    # Flask app without MAX_CONTENT_LENGTH; its 6 MB default belongs to its algorithm mode and multi-model server).
    max_payload_mb: int = Field(default=6, ge=1, le=100)
    max_concurrent_transforms: int = Field(default=0, ge=0, le=64, description="0 lets SageMaker choose.")
    # No timeout_minutes: CreateTransformJob has no job-level time limit (each request is limited to
    # serving.inference_timeout_seconds by the job's ModelClientConfig), so such a setting could only be ignored.

    _types = field_validator("instance_type")(_transform_instance_type)

    # At most hourly: every run scores every input file, and nothing stops a run while the previous one still runs.
    _schedule = field_validator("schedule")(check_at_most_hourly)

    @model_validator(mode="after")
    def _payload_in_flight(self) -> "BatchServing":
        # CreateTransformJob: MaxConcurrentTransforms x MaxPayloadInMB cannot exceed 100 MB.
        in_flight = self.max_concurrent_transforms * self.max_payload_mb
        if in_flight > 100:
            raise ValueError(
                f"max_concurrent_transforms: {self.max_concurrent_transforms} x max_payload_mb {self.max_payload_mb} "
                f"is {in_flight} MB; SageMaker allows at most 100 MB per instance; allowed: "
                f"0-{100 // self.max_payload_mb} at max_payload_mb {self.max_payload_mb} (0 lets SageMaker choose)"
            )
        return self


class MultiModelServing(_Frozen):
    """Membership of a shared multi-model endpoint. Default: the endpoint named ``shared``, which the
    environment (or ``defaults``) must declare under ``multi_model_endpoints``."""

    endpoint: str = "shared"

    @field_validator("endpoint")
    @classmethod
    def _endpoint_name(cls, value: str) -> str:
        return check_endpoint_name(value)


def check_endpoint_name(value: str) -> str:
    # Part of the endpoint, alarm and S3 prefix names (<prefix>-mme-<name> stays within 63 characters).
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,29}", value):
        raise ValueError(
            f"{value!r} is not a valid multi-model endpoint name; allowed: 1-30 characters, lower-case letters, "
            "digits and '-', starting with a letter"
        )
    return value


class ServingAlarms(_Frozen):
    """Operational alarms on the endpoint; they notify people (they never roll back or retrain).

    Default: p99 model latency above 1 s, 5xx above 1% or 4xx above 5% of requests, for 5 of 5
    minutes; CPU (averaged per vCPU) or memory above 90% for 15 minutes (instance-based modes);
    more than 100 queued async requests for 15 minutes; no low-traffic alarm
    (``min_invocations_per_hour`` sets one: fewer invocations than that for 3 hours, an hour without any counting
    as fewer, quiet until the endpoint has served in more than 3 hours of the last week; not for async endpoints,
    which publish no Invocations metric); no overhead-latency alarm (``max_overhead_latency_p99_ms`` sets one: p99
    OverheadLatency above it for 5 of 5 minutes; not for async endpoints). Error rates are the share of requests per
    minute.
    """

    max_latency_p99_ms: int = Field(default=1000, ge=1, le=MAX_LATENCY_MS)
    max_error_rate_percent: float = Field(default=1.0, gt=0.0, le=100.0)
    max_client_error_rate_percent: float = Field(default=5.0, gt=0.0, le=100.0)
    max_cpu_percent: float = Field(default=90.0, gt=0.0, le=100.0)
    max_memory_percent: float = Field(default=90.0, gt=0.0, le=100.0)
    max_async_backlog: int = Field(default=100, ge=1, le=1_000_000)
    min_invocations_per_hour: Optional[int] = Field(default=None, ge=1, le=100_000_000)
    # SageMaker's own share of a caller's wait (OverheadLatency: the time SageMaker holds a request besides the model's;
    # serverless: cold starts too). Default: no alarm. Not for async endpoints, which publish no OverheadLatency.
    max_overhead_latency_p99_ms: Optional[int] = Field(default=None, ge=1, le=3_600_000)


class ById(_Frozen):
    """Score by entity id: a front function looks the model's features up in the online Feature Store.

    Default: off. On (real-time or serverless models, in an environment with the online store), a caller
    with only an id (``{"ids": [...]}``) is answered through an IAM-authenticated (SigV4) function URL;
    see ``docs/invocation-contract.md``. ``missing`` says what an id without a fresh record gets:
    ``reject`` (the request is refused naming the ids), ``missing`` (scored with every feature missing),
    or ``compute`` (scored from raw fields sent with the id). ``max_age_hours`` treats older records as
    missing (none: only the store's TTL expires them; it must be below the TTL, ``feature_store.online_ttl_days``); ``max_ids`` per request (``BatchGetRecord``'s
    limit is 100); ``max_concurrency`` reserves that many concurrent requests, the front's throttle.
    The drift monitor compares the features served by id with the feature snapshots training reads; more
    than ``max_skew_rate`` of them differing for one feature fails its skew check and alarms people.
    """

    enabled: bool = False
    missing: Literal[POLICIES] = "reject"  # type: ignore[valid-type]
    max_age_hours: Optional[int] = Field(default=None, ge=1, le=8760)
    max_ids: int = Field(default=MAX_IDS, ge=1, le=MAX_IDS)
    # Lambda keeps 100 of an account's default 1,000 concurrent executions unreserved.
    max_concurrency: int = Field(default=10, ge=1, le=900)
    max_skew_rate: float = Field(default=DEFAULT_MAX_SKEW_RATE, gt=0.0, le=1.0)


class ServingConfig(_Frozen):
    """How a model is served. Default: a real-time endpoint (see :class:`RealtimeServing`) capturing
    every request and response for the drift monitor."""

    mode: Mode = "realtime"
    data_capture_percent: int = Field(default=100, ge=0, le=100)
    realtime: RealtimeServing = RealtimeServing()
    serverless: ServerlessServing = ServerlessServing()
    async_: AsyncServing = Field(default=AsyncServing(), alias="async")
    batch: BatchServing = BatchServing()
    multi_model: MultiModelServing = MultiModelServing()
    alarms: ServingAlarms = ServingAlarms()
    by_id: ById = ById()
    # How long one request may run in the serving container (the model's inference time, with its margin): written
    # on the SageMaker Model as SAGEMAKER_MODEL_SERVER_TIMEOUT when not the containers' own 60 s, and as a transform
    # job's InvocationsTimeoutInSeconds. Per mode at most INFERENCE_TIMEOUT_LIMITS.
    inference_timeout_seconds: int = Field(default=CONTAINER_DEFAULT_TIMEOUT_SECONDS, ge=1,
                                           le=max(INFERENCE_TIMEOUT_LIMITS.values()))
    # Opt-in for accounts that still have SageMaker Model Monitor and Clarify (closed to new
    # customers): the four native job definitions and schedules next to our own monitor.
    native_model_monitor: bool = False

    @model_validator(mode="after")
    def _native_monitor_needs_capture(self) -> "ServingConfig":
        if self.native_model_monitor and (self.mode not in ("realtime", "async") or self.data_capture_percent == 0):
            raise ValueError(
                "native_model_monitor: needs SageMaker data capture, i.e. mode 'realtime' or 'async' with "
                f"data_capture_percent > 0 (got mode {self.mode!r}, {self.data_capture_percent}%); allowed: false here"
            )
        return self

    @model_validator(mode="after")
    def _members_are_alarmed_by_their_endpoint(self) -> "ServingConfig":
        if self.mode == "multi_model" and "alarms" in self.model_fields_set:
            raise ValueError(
                "alarms: a model on a multi-model endpoint is alarmed by its endpoint, so these would not apply; set "
                f"them under multi_model_endpoints.{self.multi_model.endpoint}.alarms (or remove them here)"
            )
        return self

    @model_validator(mode="after")
    def _batch_captures_all_or_nothing(self) -> "ServingConfig":
        if self.mode == "batch" and 0 < self.data_capture_percent < 100:
            raise ValueError(
                "data_capture_percent: a batch model writes no capture (its drift monitor reads every transform input "
                f"beside its output), so {self.data_capture_percent} would sample nothing; set 100 (the default) or 0"
            )
        return self

    @model_validator(mode="after")
    def _low_traffic_needs_invocations(self) -> "ServingConfig":
        # Async endpoints publish no Invocations metric (SageMaker, async-inference-monitor), so the
        # low-traffic alarm would have nothing to count and could never fire.
        if self.mode == "async" and self.alarms.min_invocations_per_hour is not None:
            raise ValueError(
                "alarms.min_invocations_per_hour: async endpoints publish no Invocations metric, so a low-traffic "
                "alarm could never fire; remove it here (alarms.max_async_backlog watches an async endpoint's queue)"
            )
        if self.mode == "async" and self.alarms.max_overhead_latency_p99_ms is not None:
            raise ValueError(
                "alarms.max_overhead_latency_p99_ms: async endpoints publish no OverheadLatency metric, so the alarm "
                "could never fire; remove it here (alarms.max_async_backlog watches an async endpoint's queue)"
            )
        return self

    @model_validator(mode="after")
    def _inference_time_within_the_mode(self) -> "ServingConfig":
        if self.mode == "multi_model":
            if "inference_timeout_seconds" in self.model_fields_set:
                raise ValueError(
                    "inference_timeout_seconds: a model on a multi-model endpoint runs in that endpoint's model server, "
                    "which this setting does not reach; remove it here")
            return self
        limit = INFERENCE_TIMEOUT_LIMITS[self.mode]
        if self.inference_timeout_seconds > limit:
            raise ValueError(
                f"inference_timeout_seconds: {self.inference_timeout_seconds} s is over the {limit} s a {self.mode} "
                "endpoint waits for an answer (InvokeEndpoint's limit), so a request running longer fails whatever the "
                f"container allows; allowed: 1-{limit} here (a model that needs longer: mode 'async' or 'batch', up to "
                f"{INFERENCE_TIMEOUT_LIMITS['async']})"
            )
        return self

    @model_validator(mode="after")
    def _latency_alarms_within_the_inference_time(self) -> "ServingConfig":
        # A request that runs past the container's timeout fails (5xx): no latency above it is ever measured, so an
        # alarm or rollback threshold above it could never fire - and a model that slow fails every such request.
        if self.mode in ("multi_model", "batch"):
            return self
        timeout_ms = self.inference_timeout_seconds * 1000
        rollout = self.rollout
        fields = [("alarms.max_latency_p99_ms", self.alarms.max_latency_p99_ms)]
        if rollout is not None and "max_latency_p99_ms" in rollout.model_fields_set:
            fields.append((f"{self.mode}.rollout.max_latency_p99_ms", rollout.max_latency_p99_ms))
        for field, value in fields:
            if value <= timeout_ms:
                continue
            limit = INFERENCE_TIMEOUT_LIMITS[self.mode]
            needed = -(-value // 1000)
            fix = (f"set inference_timeout_seconds to at least {needed} (at most {limit} for mode {self.mode!r}), or "
                   "lower the alarm") if needed <= limit else (
                f"lower it to at most {limit * 1000} (a {self.mode} endpoint answers within {limit} s; a slower model: "
                "mode 'async')")
            raise ValueError(
                f"{field}: {value} ms is above inference_timeout_seconds {self.inference_timeout_seconds} s, after which "
                f"the serving container stops a request (it fails: a latency above it is never measured); {fix}"
            )
        return self

    @model_validator(mode="after")
    def _rollout_latency_not_left_below_the_alarm(self) -> "ServingConfig":
        # The rollback alarm's latency left at its default while the endpoint's own latency alarm was raised (a model
        # that answers in minutes, as async ones may): every version as slow as the serving one would roll back
        # whenever it served during its bake. A rollout latency the config sets is kept as given. Checked after the
        # inference time (below), so the alarm it asks the rollout to follow is one that rule accepts, and the bound it
        # names is the inference time's: a value set as asked is never refused next.
        rollout = self.rollout
        if (rollout is not None and "max_latency_p99_ms" not in rollout.model_fields_set
                and rollout.max_latency_p99_ms < self.alarms.max_latency_p99_ms):
            raise ValueError(
                f"{self.mode}.rollout.max_latency_p99_ms: {rollout.max_latency_p99_ms} ms "
                f"(the default) is below alarms.max_latency_p99_ms {self.alarms.max_latency_p99_ms} ms, so a new version "
                "as slow as the endpoint is allowed to be rolls back whenever it serves during its rollout; set it to at "
                f"least {self.alarms.max_latency_p99_ms} (at most {self.inference_timeout_seconds * 1000}: "
                f"inference_timeout_seconds {self.inference_timeout_seconds} s)"
            )
        return self

    @model_validator(mode="after")
    def _by_id_needs_an_online_endpoint(self) -> "ServingConfig":
        # Async requests travel through S3 and batch/multi-model have no endpoint of this model's own
        # that answers a caller while it waits.
        if self.by_id.enabled and self.mode not in ("realtime", "serverless"):
            raise ValueError(
                f"by_id.enabled: scoring by id answers callers synchronously, so it needs mode 'realtime' or "
                f"'serverless' (got {self.mode!r}); allowed: false here"
            )
        return self

    @property
    def instance_types(self) -> tuple[str, ...]:
        """The instance types the active mode runs on (none for serverless)."""
        return {
            "realtime": (self.realtime.instance_type,),
            "async": (self.async_.instance_type,),
            "batch": (self.batch.instance_type,),
            "serverless": (),
            # The shared endpoint's type is the endpoint's setting (MultiModelEndpointConfig).
            "multi_model": (),
        }[self.mode]

    def instance_type_field(self) -> str:
        return f"serving.{'async' if self.mode == 'async' else self.mode}.instance_type"

    @property
    def rollout(self) -> Optional[Rollout]:
        """The blue/green rollout of the active mode; None for batch (no endpoint) and multi-model members
        (their endpoint's own rollout applies)."""
        return {"realtime": self.realtime.rollout, "serverless": self.serverless.rollout,
                "async": self.async_.rollout}.get(self.mode)


def inferentia2_types(serving: ServingConfig) -> tuple[str, ...]:
    """The Inferentia2 (ml.inf2.*) instance types the active mode runs on."""
    return tuple(t for t in serving.instance_types if t in INSTANCE_TYPES and INSTANCE_TYPES[t].accelerator == "inferentia2")


def compiled_for_inferentia2(serving: ServingConfig) -> bool:
    """Whether the model is served on a real-time ml.inf2 endpoint: its pipeline then compiles it, the endpoint
    serves the compiled form, and each rollout runs the parity check."""
    return serving.mode == "realtime" and bool(inferentia2_types(serving))


def first_bake_share(rollout: Rollout) -> float:
    """The share of traffic on the new fleet during a rollout's first baking window (``wait_minutes`` long in every
    strategy: SageMaker bakes for the traffic-routing wait after the canary, each linear step, or the one shift)."""
    if rollout.strategy == "canary":
        return rollout.canary_percent / 100
    if rollout.strategy == "linear":
        return rollout.linear_step_percent / 100
    return 1.0


class MultiModelEndpointConfig(RealtimeServing):
    """A multi-model endpoint: one fleet shared by every model whose ``serving.mode`` is
    ``multi_model`` and whose ``serving.multi_model.endpoint`` names it (declared per environment under
    ``multi_model_endpoints``, or for all of them under ``defaults``).

    Default: as a real-time endpoint (ml.m5.large, autoscaling 1-4 at 200 invocations/instance/minute,
    canary rollout with alarm rollback for changes of the endpoint itself), with SageMaker's model
    cache on (models stay loaded between requests until memory is needed) and an alarm when the p99
    wait for a model to load stays above 10 s for 15 minutes (the cache is thrashing). A new model *version* does
    not touch the fleet: it is staged under its own key and switched to after a smoke test (see
    ``MultiModelEndpoint``). Only CPU instance types: the stock framework images serve multi-model
    endpoints on CPU (GPUs need Triton; Inferentia2 is not supported).
    """

    model_cache: bool = True
    alarms: ServingAlarms = ServingAlarms()
    # p99 time a request waits for its model to be downloaded and loaded. Persistently high means the
    # fleet's memory cannot hold the models in use (they keep being evicted): size up or split.
    max_model_loading_wait_p99_ms: int = Field(default=10_000, ge=1, le=3_600_000)

    @field_validator("instance_type")
    @classmethod
    def _cpu_only(cls, value: str) -> str:
        accelerator = INSTANCE_TYPES[value].accelerator if value in INSTANCE_TYPES else "none"
        if accelerator != "none":
            raise ValueError(
                f"{value} is {ACCELERATOR_LABELS[accelerator]} instance; multi-model endpoints with the stock framework images run on "
                "CPU instances only (GPU models need a Triton image, Inferentia2 is not supported); allowed: a CPU type, "
                "e.g. ml.m5.large or ml.c5.xlarge"
            )
        return value

    @model_validator(mode="after")
    def _latencies_within_a_minute(self) -> "MultiModelEndpointConfig":
        # Its model server stops a request after 60 s (nothing sets its timeout; InvokeEndpoint answers within 60 s
        # anyway): a latency alarm or rollback threshold above it could never fire. Then, as for a model's own endpoint,
        # a rollout latency left at its default below a raised alarm would roll back every update of the endpoint.
        limit_ms = INFERENCE_TIMEOUT_LIMITS["realtime"] * 1000
        rollout_set = "max_latency_p99_ms" in self.rollout.model_fields_set
        fields = [("alarms.max_latency_p99_ms", self.alarms.max_latency_p99_ms)]
        if rollout_set:
            fields.append(("rollout.max_latency_p99_ms", self.rollout.max_latency_p99_ms))
        for field, value in fields:
            if value > limit_ms:
                raise ValueError(
                    f"{field}: {value} ms is above the {limit_ms // 1000} s after which a multi-model endpoint's model "
                    f"server stops a request (it fails: a latency above it is never measured); lower it to at most {limit_ms}")
        if not rollout_set and self.rollout.max_latency_p99_ms < self.alarms.max_latency_p99_ms:
            raise ValueError(
                f"rollout.max_latency_p99_ms: {self.rollout.max_latency_p99_ms} ms (the default) is below "
                f"alarms.max_latency_p99_ms {self.alarms.max_latency_p99_ms} ms, so an update of the endpoint as slow as "
                "it is allowed to be rolls back whenever it serves during its rollout; set it to at least "
                f"{self.alarms.max_latency_p99_ms} (at most {limit_ms})")
        return self


def longest_rollout_seconds(servings: Iterable[ServingConfig], endpoints: Iterable[MultiModelEndpointConfig] = ()) -> int:
    """The longest blue/green rollout (MaximumExecutionTimeoutInSeconds) of the models served as ``servings``
    and of the multi-model ``endpoints``; 600 s (SageMaker's minimum) when none has one."""
    rollouts = [s.rollout for s in servings if s.rollout is not None] + [e.rollout for e in endpoints]
    return max((r.timeout_seconds for r in rollouts), default=600)
