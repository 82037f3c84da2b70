"""Scoring by entity id: the front function, its IAM-authenticated URL, its throttle and its alarms."""

from __future__ import annotations

from typing import Optional

from aws_cdk import CfnOutput, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipeline_code.core.contract import DEFAULT_PROJECT, monitor_metric, monitor_namespace, serving_namespace
from pipeline_code.core.online_features import (
    METRIC_DIMENSIONS,
    RULES_FILE,
    SPEC_FILE,
    SERVER_ERRORS_METRIC,
    LookupSpec,
    front_environment,
)

from ..nag import acknowledge
from ..naming import feature_group_arn
from .arns import format_arn
from ..config.network import NetworkConfig
from .cdk_reads import days, minutes, stack_of
from .endpoint_metrics import guarded_rate
from .handler_function import MAX_ENVIRONMENT_BYTES, environment_size, handler_function

# The latency and 5xx alarms judge 5-minute periods and need this many in a row: one cold start of a serverless
# endpoint (a p99 of one request, in a quiet period) or one burst of 503s while it scales (throttled, not ready) is
# normal serverless behaviour, not an incident; a store or an endpoint that stays down is.
BAD_PERIODS = 3
# The fewest requests a 5-minute period must hold for its 5xx rate to count: one 503 in three requests is noise.
MIN_REQUESTS = 10
# Where every page of a by-id front's alarm sends on-call for what to do (a row per alarm).
RUNBOOK = "(docs/monitoring.md, Score-by-id alarms)"


def first_look(function_name: str, region: str) -> str:
    """The end of every page a by-id front's alarm sends: the front's log (each answer's status and reason, its
    tracebacks), in ``region``, and the runbook."""
    return (f" First look: the front's log, aws logs tail /aws/lambda/{function_name} --since 1h --region {region}. "
            f"What to do: {RUNBOOK}.")


class ScoreById(Construct):
    """A caller with an entity id gets a score: ``pipeline_code.handlers.score_by_id`` behind a function URL.

    Defaults: the URL takes only SigV4-signed requests (``AuthType AWS_IAM``: a caller needs
    ``lambda:InvokeFunctionUrl`` and ``lambda:InvokeFunction`` on this function (both, for URLs created since
    October 2025), granted by the account, never public); reserved concurrency ``max_concurrency`` is the
    throttle (excess requests get 429 from Lambda);
    the role may read exactly this model's feature group (``BatchGetRecord``), decrypt with its key and
    invoke exactly this model's endpoint, nothing else. The spec travels in the function's environment, its value
    rules (``FEATURE_RULES``) too while they fit in Lambda's 4 KB; rules that do not (a feature with hundreds of
    allowed values) ship as a file of this function's own code (``FEATURE_RULES_FILE``), and a feature list that does not
    (a wide model's hundreds of features) ships with the rules as one such file (``FEATURE_SPEC_FILE``). Alarms to ``topic``: the
    function failing, throttled requests (from the first one in 5 minutes), 5xx answers above
    ``max_error_rate_percent`` of requests and a p99 duration at ``max_latency_ms`` or more (each in
    :data:`BAD_PERIODS` 5-minute periods in a row; a period of fewer than :data:`MIN_REQUESTS` requests counts as
    failing only when all of them failed), and the drift monitor's training/serving skew above ``max_skew_rate``. Costs nothing while idle.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_name: str,
        model: str,
        environment: str,
        endpoint_name: str,
        feature_group_name: str,
        spec: LookupSpec,
        max_concurrency: int,
        max_skew_rate: float,
        key: kms.IKey,
        topic: sns.ITopic,
        max_latency_ms: int,
        max_error_rate_percent: float,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        project: str = DEFAULT_PROJECT,
        network: Optional[NetworkConfig] = None,
    ) -> None:
        """``project`` (default: the default project): the front's own metrics go to ``project``'s serving namespace
        (``core.contract.serving_namespace``); the skew alarm reads the model's drift-monitor namespace in
        ``environment`` (``core.contract.monitor_namespace``), which only the model's monitor role may publish in."""
        super().__init__(scope, construct_id)
        stack = stack_of(self, scope)
        names = dict(environment=environment, model=model, endpoint=endpoint_name, feature_group=feature_group_name,
                     spec=spec, namespace=serving_namespace(project))
        function_environment = front_environment(**names)
        code_files = {}
        if environment_size(function_environment) > MAX_ENVIRONMENT_BYTES:
            # Inline, the rules' allowed lists would take the deploy over Lambda's limit: the code carries them
            # instead (an asset of this function's own; every other handler keeps sharing one).
            function_environment = front_environment(**names, rules_file=RULES_FILE)
            code_files = {RULES_FILE: spec.rules_document()}
        if environment_size(function_environment) > MAX_ENVIRONMENT_BYTES:
            # A wide model: its feature list alone is over the limit; the features, required features and rules
            # then travel together as one file of the code.
            function_environment = front_environment(**names, spec_file=SPEC_FILE)
            code_files = {SPEC_FILE: spec.spec_document()}
        built = handler_function(
            self,
            function_name=function_name,
            description=f"Scores {model} by entity id: online Feature Store lookup, then its endpoint",
            role_description=f"{function_name}: read {feature_group_name}, invoke {endpoint_name}",
            access_description=f"{function_name} lookup and scoring",
            handler="score_by_id.handler",
            environment=function_environment,
            code_files=code_files,
            key=key,
            dead_letter_queue=None,
            log_retention=log_retention,
            removal_policy=removal_policy,
            # A real-time endpoint may take up to 60 s to answer (SageMaker's limit), plus the lookup.
            timeout=Duration.seconds(65),
            reserved_concurrency=max_concurrency,
            network=network,
            vpc_reason="The function calls only the Feature Store runtime and SageMaker runtime APIs.",
        )
        acknowledge(
            built.function,
            "Only ever invoked synchronously through its function URL: a failed request is answered to the caller "
            "(and counted by the 5xx alarm), so there is no event a dead-letter queue could keep.",
            "NIST.800.53.R5-LambdaDLQ",
        )
        built.access.allow("ReadFeatures", ["sagemaker:BatchGetRecord"], [feature_group_arn(stack, feature_group_name)])
        built.access.allow_key("FeatureKey", key, encrypt=False)
        built.access.allow(
            "Score",
            ["sagemaker:InvokeEndpoint"],
            [format_arn(stack, service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower())],
        )
        self.function = built.function
        self.url = built.function.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)

        notify = cw_actions.SnsAction(topic)
        served_errors = cloudwatch.Metric(
            namespace=serving_namespace(project), metric_name=SERVER_ERRORS_METRIC,
            dimensions_map=dict(zip(METRIC_DIMENSIONS, (environment, model))),
            statistic="Sum", period=minutes(5),
        )
        # Published by the drift monitor once a day (its skew check); the day's maximum.
        skew_rate = cloudwatch.Metric(
            namespace=monitor_namespace(project, environment, model), metric_name=monitor_metric("feature_skew_rate"),
            dimensions_map={"Environment": environment, "Model": model}, statistic="Maximum", period=days(1),
        )
        self.alarms: list[cloudwatch.Alarm] = []
        at_least, above = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        sustained = f"in {BAD_PERIODS} 5-minute periods in a row"
        front = f"{model}'s by-id front {function_name}"
        for suffix, metric, threshold, comparison, periods, description in (
            ("Errors", built.function.metric_errors(period=minutes(5)), 1, at_least, 1,
             f"{front}: the function itself failed in the last 5 minutes (an error it did not answer, a timeout, out "
             "of memory): its callers got Lambda's error, not the front's answer."),
            # A rate, as the endpoint's own 5xx alarm: answers 503 while the endpoint is throttled or not ready, or no
            # version is deployed yet, so one such answer is no incident.
            # A quieter period counts as failing only when every one of its requests failed: a caller sending a few
            # requests a minute to a store or endpoint that stays down is still seen (the front answers those failures
            # itself, so the function's own error alarm never sees them).
            ("ServerErrors", guarded_rate(served_errors, "5xx rate (%)", min_requests=MIN_REQUESTS, period=minutes(5),
                                          quiet_all_marked=True),
             max_error_rate_percent, above, BAD_PERIODS,
             f"{front} answered 5xx to more than {max_error_rate_percent:g}% of requests {sustained} "
             f"(in a period of fewer than {MIN_REQUESTS} requests, to all of them): the online store or the endpoint "
             f"{endpoint_name} unavailable, or refusing the records."),
            ("Throttles", built.function.metric_throttles(period=minutes(5)), 1, at_least, 1,
             f"{front}: requests were throttled in the last 5 minutes (429: more than its {max_concurrency} concurrent "
             "requests, serving.by_id.max_concurrency)."),
            # The duration includes the endpoint's answer, and so a serverless endpoint's cold start.
            ("Latency", built.function.metric_duration(period=minutes(5), statistic="p99"), max_latency_ms, at_least,
             BAD_PERIODS, f"{front}: p99 duration at {max_latency_ms} ms or more {sustained} (the store lookup plus "
                          f"the endpoint {endpoint_name}'s answer)."),
            # As the monitor's check: a rate above the limit fails it.
            ("Skew", skew_rate, max_skew_rate, above, 1,
             f"{front}: in the drift monitor's daily run, more than {max_skew_rate:g} of a feature's values served by "
             "id differ from the training snapshot (its report lists the largest differences; no retrain starts)."),
        ):
            alarm = cloudwatch.Alarm(
                self,
                suffix,
                alarm_name=f"{function_name}-{suffix.lower()}",
                alarm_description=description + first_look(function_name, stack.region),
                metric=metric,
                threshold=threshold,
                comparison_operator=comparison,
                evaluation_periods=periods,
                # Every one of the periods: given only when there are several (one needs no M of N).
                datapoints_to_alarm=periods if periods > 1 else None,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(notify)
            self.alarms.append(alarm)
        CfnOutput(self, "Url", value=self.url.url, description=f"Score {model} by id (SigV4, service 'lambda')")
