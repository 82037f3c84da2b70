"""ScoreById, built in a bare stack: one model's front function behind an IAM-authenticated URL, its throttle,
its read-only access (one feature group, one key, one endpoint) and the alarms that notify people."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.support.alarm_eval import DAY, HOUR, MINUTE, MetricAlarm, Series, replay

from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match

from mlops_loop.app_builder import new_app
from mlops_loop.config.serving import ById
from mlops_loop.constructs.score_by_id import ScoreById
from mlops_loop.constructs.handler_function import MAX_ENVIRONMENT_BYTES, environment_size
from mlops_loop.packaging import handler_code_root
from pipeline_code.core import online_features
from pipeline_code.core.online_features import SERVER_ERRORS_METRIC, LookupSpec
from pipeline_code.core.value_rules import ValueRule
from tests.support.built_stack import BuiltStack, acknowledged
from tests.support.cdk_outdirs import bare_outdir

ACCOUNT, REGION = "123456789012", "eu-west-1"
FUNCTION = "shop-dev-returns-by-id"
MODEL = "returns"
# Mixed case on purpose: SageMaker endpoint ARNs are lower case whatever the name's case.
ENDPOINT = "Shop-Dev-Returns"
FEATURE_GROUP = "shop-dev-web-orders"
SPEC = LookupSpec(
    record_identifier="order_id",
    event_time="ordered_at",
    features=(("log_items", "Fractional"), ("channel", "String"), ("items", "Integral")),
    policy="compute",
    max_age_seconds=6 * 3600,
    max_ids=25,
)
SETTINGS = ById(enabled=True, missing="compute", max_age_hours=6, max_ids=25, max_concurrency=7)
MAX_LATENCY_MS = 1500
MAX_ERROR_RATE = 2.5
ALARMS = ("Errors", "ServerErrors", "Throttles", "Latency", "Skew")
ENVIRONMENT = "qa"
PROJECT = "shop"
NAMESPACE = "shop/serving"


def _built(spec: LookupSpec = SPEC, settings: ById = SETTINGS) -> tuple[BuiltStack, ScoreById, dict[str, str]]:
    """GIVEN a bare stack with a key and a topic WHEN ScoreById is built for one model THEN the synthesized
    stack, the construct and the logical ids of the function, its URL, the key and the topic."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account=ACCOUNT, region=REGION))
    key = kms.Key(stack, "Key")
    topic = sns.Topic(stack, "Topic")
    score = ScoreById(
        stack,
        "ById",
        function_name=FUNCTION,
        model=MODEL,
        environment=ENVIRONMENT,
        endpoint_name=ENDPOINT,
        feature_group_name=FEATURE_GROUP,
        spec=spec,
        max_concurrency=settings.max_concurrency,
        max_skew_rate=settings.max_skew_rate,
        key=key,
        topic=topic,
        max_latency_ms=MAX_LATENCY_MS,
        max_error_rate_percent=MAX_ERROR_RATE,
        log_retention=logs.RetentionDays.ONE_WEEK,
        removal_policy=RemovalPolicy.DESTROY,
        project=PROJECT,
    )
    built = BuiltStack(stack)
    ids = {"function": built.id_of(score.function), "url": built.id_of(score.url), "key": built.id_of(key),
           "topic": built.id_of(topic)}
    return built, score, ids


def _function(built: BuiltStack) -> dict:
    return built.one("AWS::Lambda::Function")["Properties"]


def _statements(built: BuiltStack, score: ScoreById) -> dict[str, dict]:
    return built.statements_of(score.node.find_child("Access"))


def _actions(statement: dict) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_the_url_takes_only_sigv4_signed_requests_and_nothing_makes_the_function_public():
    built, score, ids = _built()
    built.template.resource_count_is("AWS::Lambda::Url", 1)
    built.template.has_resource_properties(
        "AWS::Lambda::Url", {"AuthType": "AWS_IAM", "TargetFunctionArn": {"Fn::GetAtt": [ids["function"], "Arn"]}})
    # The account grants lambda:InvokeFunctionUrl to its callers; the construct grants nobody anything.
    assert built.template.find_resources(
        "AWS::Lambda::Permission", {"Properties": Match.object_like({"Principal": "*"})}) == {}
    assert built.of_type("AWS::Lambda::Permission") == {}
    assert built.template.find_resources("AWS::Lambda::Url", {"Properties": {"AuthType": "NONE"}}) == {}
    assert built.id_of(score.url) == ids["url"]


def test_the_function_is_named_runs_the_score_by_id_handler_and_is_throttled_at_max_concurrency():
    built, _, _ = _built()
    function = _function(built)
    assert function["FunctionName"] == FUNCTION
    assert function["Handler"] == "pipeline_code.handlers.score_by_id.handler"
    assert function["Timeout"] == 65  # a real-time endpoint may take 60 s, plus the lookup
    assert function["ReservedConcurrentExecutions"] == SETTINGS.max_concurrency == 7


def test_the_reserved_concurrency_follows_the_settings():
    built, _, _ = _built(settings=ById(enabled=True, max_concurrency=250))
    assert _function(built)["ReservedConcurrentExecutions"] == 250


def test_the_environment_names_the_model_endpoint_feature_group_and_namespace_and_carries_exactly_the_encoded_spec():
    built, _, _ = _built()
    variables = _function(built)["Environment"]["Variables"]
    assert variables == {"ENVIRONMENT_NAME": ENVIRONMENT, "MODEL_NAME": MODEL, "ENDPOINT_NAME": ENDPOINT, "FEATURE_GROUP": FEATURE_GROUP,
                         "METRIC_NAMESPACE": NAMESPACE, **SPEC.encode()}
    assert variables["FEATURES"] == "log_items:Fractional,channel:String,items:Integral"
    assert (variables["MISSING_POLICY"], variables["MAX_AGE_SECONDS"], variables["MAX_IDS"]) == ("compute", "21600", "25")
    # What the handler reads back is the spec the construct was given.
    assert LookupSpec.decode(variables) == SPEC


def test_a_spec_without_a_max_age_is_carried_as_an_empty_max_age():
    spec = LookupSpec(record_identifier="order_id", event_time="ordered_at", features=(("channel", "String"),))
    built, _, _ = _built(spec=spec, settings=ById(enabled=True))
    variables = _function(built)["Environment"]["Variables"]
    assert variables == {"ENVIRONMENT_NAME": ENVIRONMENT, "MODEL_NAME": MODEL, "ENDPOINT_NAME": ENDPOINT, "FEATURE_GROUP": FEATURE_GROUP,
                         "METRIC_NAMESPACE": NAMESPACE, **spec.encode()}
    assert (variables["MAX_AGE_SECONDS"], variables["MISSING_POLICY"], variables["MAX_IDS"]) == ("", "reject", "100")


# The rules a stored value must keep (serving's, Dataset.feature_rules): a small set, and one feature of 200 allowed
# values of 16 characters, which Lambda's 4 KB of environment variables cannot hold with the rest.
RULED = dataclasses.replace(SPEC, rules=(("channel", ValueRule(allowed=("web", "app"))), ("items", ValueRule(minimum=0, maximum=50))))
LARGE = dataclasses.replace(SPEC, rules=(("channel", ValueRule(allowed=tuple(f"channel-{i:07d}" for i in range(200)))),))


def _code_key(built: BuiltStack) -> str:
    return json.dumps(_function(built)["Code"], sort_keys=True)


def test_rules_that_fit_travel_inline_in_the_environment_and_the_code_is_every_handlers():
    # GIVEN a spec with rules WHEN built THEN the environment carries them as FEATURE_RULES, the code is the shared asset
    built, _, _ = _built(spec=RULED)
    variables = _function(built)["Environment"]["Variables"]
    assert variables["FEATURE_RULES"] == '{"channel":{"allowed":["web","app"]},"items":{"min":0,"max":50}}'
    assert "FEATURE_RULES_FILE" not in variables
    assert LookupSpec.decode(variables) == RULED
    assert _code_key(built) == _code_key(_built()[0])


def test_rules_too_large_for_the_environment_ship_as_a_file_of_the_functions_own_code():
    # GIVEN a feature of 200 allowed values: inline, the environment would be over Lambda's 4 KB
    inline = {"ENVIRONMENT_NAME": ENVIRONMENT, "MODEL_NAME": MODEL, "ENDPOINT_NAME": ENDPOINT, "FEATURE_GROUP": FEATURE_GROUP,
              "METRIC_NAMESPACE": NAMESPACE, **LARGE.encode()}
    assert environment_size(inline) > MAX_ENVIRONMENT_BYTES
    # WHEN built
    built, _, _ = _built(spec=LARGE)
    variables = _function(built)["Environment"]["Variables"]
    # THEN the environment names the file instead (and fits), and the function's code is an asset of its own
    assert variables == {**{k: v for k, v in inline.items() if k != "FEATURE_RULES"}, "FEATURE_RULES_FILE": "feature_rules.json"}
    assert environment_size(variables) < 1024
    assert _code_key(built) != _code_key(_built()[0])
    # AND that code holds the rules beside the handlers, which the front reads back as the spec it was given
    root = handler_code_root((("feature_rules.json", LARGE.rules_document()),))
    assert (root / "pipeline_code" / "handlers" / "score_by_id.py").is_file()
    assert json.loads((root / "feature_rules.json").read_text()) == {
        "channel": {"allowed": [f"channel-{i:07d}" for i in range(200)]}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(online_features, "CODE_ROOT", root)
        online_features._code_file.cache_clear()
        assert LookupSpec.decode(variables) == LARGE
    online_features._code_file.cache_clear()


# A wide model (an insurer's 250 columns, say): its feature list alone, name:type, is over Lambda's 4 KB.
WIDE = dataclasses.replace(
    SPEC,
    features=tuple((f"claims_history_feature_{i:03d}", "Fractional") for i in range(250)) + (("channel", "String"),),
    required=("channel",),
    rules=(("channel", ValueRule(allowed=("web", "app"))), ("claims_history_feature_000", ValueRule(minimum=0))),
)


def test_a_feature_list_too_large_for_the_environment_ships_the_whole_spec_as_a_file_of_the_functions_own_code():
    # GIVEN 251 features: their names alone take the environment over Lambda's 4 KB, with the rules moved out or not
    moved = {"ENVIRONMENT_NAME": ENVIRONMENT, "MODEL_NAME": MODEL, "ENDPOINT_NAME": ENDPOINT, "FEATURE_GROUP": FEATURE_GROUP,
             "METRIC_NAMESPACE": NAMESPACE, **WIDE.encode(rules_file="feature_rules.json")}
    assert environment_size(moved) > MAX_ENVIRONMENT_BYTES
    # WHEN built (it was refused: "its environment variables take ... over Lambda's 4 KB")
    built, _, _ = _built(spec=WIDE)
    variables = _function(built)["Environment"]["Variables"]
    # THEN the environment names the spec's file instead of carrying the features, required features and rules
    assert variables["FEATURE_SPEC_FILE"] == "feature_spec.json"
    assert not {"FEATURES", "REQUIRED_FEATURES", "FEATURE_RULES", "FEATURE_RULES_FILE"} & set(variables)
    assert environment_size(variables) < 1024
    # AND the function's own code holds that file, which the front reads back as the spec it was given
    root = handler_code_root((("feature_spec.json", WIDE.spec_document()),))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(online_features, "CODE_ROOT", root)
        online_features._code_file.cache_clear()
        assert LookupSpec.decode(variables) == WIDE
    online_features._code_file.cache_clear()
    assert _code_key(built) != _code_key(_built()[0])


def test_the_role_may_read_this_feature_group_decrypt_with_the_key_and_invoke_this_endpoint_only():
    built, score, ids = _built()
    statements = _statements(built, score)
    assert list(statements) == ["WriteLogs", "ReadFeatures", "FeatureKey", "Score"]
    assert statements["WriteLogs"]["Resource"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{FUNCTION}:*"
    assert _actions(statements["ReadFeatures"]) == ["sagemaker:BatchGetRecord"]
    assert statements["ReadFeatures"]["Resource"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/{FEATURE_GROUP}"
    assert _actions(statements["FeatureKey"]) == ["kms:Decrypt", "kms:DescribeKey"]
    assert statements["FeatureKey"]["Resource"] == {"Fn::GetAtt": [ids["key"], "Arn"]}
    assert _actions(statements["Score"]) == ["sagemaker:InvokeEndpoint"]
    assert statements["Score"]["Resource"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT.lower()}"
    for sid, statement in statements.items():
        assert statement["Effect"] == "Allow" and "Condition" not in statement, sid


def test_the_role_writes_nothing_but_its_own_log_stream():
    """No Put*/Delete*/Create*/Update* beyond the log stream, and the key only decrypts (no Encrypt, no data keys)."""
    built, score, _ = _built()
    statements = _statements(built, score)
    assert _actions(statements["WriteLogs"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    others = [a for sid, s in statements.items() if sid != "WriteLogs" for a in _actions(s)]
    assert sorted(others) == ["kms:Decrypt", "kms:DescribeKey", "sagemaker:BatchGetRecord", "sagemaker:InvokeEndpoint"]
    writes = [a for a in others if a.split(":", 1)[1].startswith(("Put", "Delete", "Create", "Update", "Encrypt",
                                                                  "GenerateDataKey", "ReEncrypt"))]
    assert writes == []
    assert not any("*" in a for s in statements.values() for a in _actions(s))
    # The managed policy is the role's only permission: no inline policy, no AWS-managed policy.
    assert built.of_type("AWS::IAM::Policy") == {}
    assert "ManagedPolicyArns" not in built.one("AWS::IAM::Role")["Properties"]


def test_there_are_no_dead_letters_because_a_caller_is_answered_synchronously():
    built, score, _ = _built()
    assert "DeadLetterConfig" not in _function(built)
    assert built.of_type("AWS::SQS::Queue") == {}
    assert not any(a.startswith("sqs:") for s in _statements(built, score).values() for a in _actions(s))
    assert "NIST.800.53.R5-LambdaDLQ" in acknowledged(score.function)
    assert "NIST.800.53.R5-LambdaInsideVPC" in acknowledged(score.function)


def _alarms(built: BuiltStack, score: ScoreById) -> dict[str, dict]:
    return {alarm.node.id: built.of_type("AWS::CloudWatch::Alarm")[built.id_of(alarm)]["Properties"] for alarm in score.alarms}


def test_five_alarms_notify_the_topic_failures_and_throttles_on_the_first_bad_five_minutes_5xx_and_latency_on_three():
    """One cold start of a serverless endpoint (the p99 of a quiet period is its one request) or one burst of 503s
    while the endpoint scales is normal; the function failing or throttling is not."""
    built, score, ids = _built()
    alarms = _alarms(built, score)
    assert tuple(alarms) == ALARMS
    assert len(built.of_type("AWS::CloudWatch::Alarm")) == 5
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": ids["topic"]}], name
        periods = 3 if name in ("ServerErrors", "Latency") else 1
        assert (alarm["EvaluationPeriods"], alarm.get("DatapointsToAlarm", 1)) == (periods, periods), name
        assert alarm["TreatMissingData"] == "notBreaching", name
        if name in ("Errors", "Throttles", "Latency"):
            assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", name
            assert alarm["Period"] == 300, name
        assert MODEL in alarm["AlarmDescription"], name
        # Named under the environment's prefix: the Operations key lets CloudWatch publish only for those.
        assert alarm["AlarmName"] == f"{FUNCTION}-{name.lower()}", name


def test_every_page_a_by_id_front_sends_says_where_to_look_and_points_to_its_runbook():
    """GIVEN a model's by-id front WHEN one of its alarms pages (the function failing, a 5xx rate, throttles, a slow p99,
    served features that differ from training's) THEN its text names the model and the front, gives on-call the front's
    log in the environment's region and the runbook section that says what to do for that alarm (docs/monitoring.md,
    Score-by-id alarms), within CloudWatch's 1,024 characters (before: "The returns score-by-id function failed; check
    its logs", no log group, no region, no runbook)."""
    built, score, _ = _built()
    for name, alarm in _alarms(built, score).items():
        description = alarm["AlarmDescription"]
        assert alarm["AlarmActions"] and MODEL in description and FUNCTION in description, name
        assert f"aws logs tail /aws/lambda/{FUNCTION} --since 1h --region {REGION}" in description, name
        assert description.endswith("What to do: (docs/monitoring.md, Score-by-id alarms)."), name
        assert len(description) <= 1024, (name, "CloudWatch's limit on AlarmDescription")


def test_the_score_by_id_runbook_covers_every_alarm_of_a_front():
    """The runbook section names every alarm of a by-id front (as ``<front>-<suffix>``, the front being
    ``<project>-<env>-<model>-by-id``) and the setting each one's line comes from."""
    from tests.support import docs

    runbook = docs.section("### Score-by-id alarms: what to do").text
    built, score, _ = _built()
    for alarm in _alarms(built, score).values():
        assert f"`<front>-{alarm['AlarmName'].removeprefix(f'{FUNCTION}-')}`" in runbook, alarm["AlarmName"]
    for setting in ("max_error_rate_percent", "max_latency_p99_ms", "by_id.max_concurrency", "by_id.max_skew_rate"):
        assert setting in runbook, setting


def test_the_functions_errors_and_throttles_alarm_from_the_first_one():
    built, score, ids = _built()
    alarms = _alarms(built, score)
    for name, metric in (("Errors", "Errors"), ("Throttles", "Throttles")):
        alarm = alarms[name]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Threshold"]) == (
            "AWS/Lambda", metric, "Sum", 1), name
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": ids["function"]}}], name


def test_answers_with_5xx_alarm_on_their_rate_over_busy_periods_of_the_fronts_own_metric_in_the_projects_namespace():
    """The front sends ByIdServerErrors 1 for a 5xx answer and 0 for any other (one EMF point per request): its Sum
    over its SampleCount is the rate, as SageMaker's Invocation5XXErrors is for the endpoint's own 5xx alarm, and a
    quieter period is 100 when every request in it was answered 5xx, else 0 (a quiet caller of a front that stays down
    is still seen: the review's low-traffic outage paged nobody)."""
    built, score, _ = _built()
    alarm = _alarms(built, score)["ServerErrors"]
    assert SERVER_ERRORS_METRIC == "ByIdServerErrors"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (MAX_ERROR_RATE, "GreaterThanThreshold")
    expression, *stats = alarm["Metrics"]
    assert expression == {"Id": "expr_1", "Expression": "IF(requests >= 10, 100 * errors / requests, IF(errors == requests, 100, 0))",
                          "Label": "5xx rate (%)",
                          "ReturnData": True}
    # The namespace the function publishes in (its METRIC_NAMESPACE) is the one the alarm watches
    metric = {"Namespace": NAMESPACE, "MetricName": "ByIdServerErrors",
              "Dimensions": [{"Name": "Environment", "Value": ENVIRONMENT}, {"Name": "Model", "Value": MODEL}]}
    assert sorted(stats, key=lambda q: q["Id"]) == [
        {"Id": "errors", "MetricStat": {"Metric": metric, "Period": 300, "Stat": "Sum"}, "ReturnData": False},
        {"Id": "requests", "MetricStat": {"Metric": metric, "Period": 300, "Stat": "SampleCount"}, "ReturnData": False},
    ]
    assert alarm["AlarmDescription"] == (
        f"{MODEL}'s by-id front {FUNCTION} answered 5xx to more than 2.5% of requests in 3 5-minute periods in a row "
        f"(in a period of fewer than 10 requests, to all of them): the online store or the endpoint {ENDPOINT} "
        f"unavailable, or refusing the records. First look: the front's log, aws logs tail /aws/lambda/{FUNCTION} "
        f"--since 1h --region {REGION}. What to do: (docs/monitoring.md, Score-by-id alarms).")


def test_latency_alarms_when_the_p99_duration_reaches_the_limit():
    built, score, ids = _built()
    alarm = _alarms(built, score)["Latency"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["ExtendedStatistic"], alarm["Threshold"]) == (
        "AWS/Lambda", "Duration", "p99", MAX_LATENCY_MS)
    assert "Statistic" not in alarm
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": ids["function"]}}]
    assert alarm["AlarmDescription"].startswith(
        f"{MODEL}'s by-id front {FUNCTION}: p99 duration at {MAX_LATENCY_MS} ms or more in 3 5-minute periods in a row "
        f"(the store lookup plus the endpoint {ENDPOINT}'s answer). First look: ")


def test_the_url_is_an_output():
    built, _, ids = _built()
    outputs = built.template.find_outputs("*", {"Value": {"Fn::GetAtt": [ids["url"], "FunctionUrl"]}})
    assert len(outputs) == 1
    (output,) = outputs.values()
    assert output["Description"] == f"Score {MODEL} by id (SigV4, service 'lambda')"
    assert len(built.template.find_outputs("*")) == 1


def test_skew_alarms_on_the_monitors_daily_skew_rate_above_the_configured_limit():
    # GIVEN the drift monitor's skew check publishes FeatureSkewRate once a day, in its model's own namespace
    built, score, _ = _built()
    alarm = _alarms(built, score)["Skew"]
    # THEN the alarm takes the day's maximum and fires only above the limit, as the check fails only above it
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == (
        f"{PROJECT}/{ENVIRONMENT}/{MODEL}/monitoring", "FeatureSkewRate", "Maximum", 86400)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (SETTINGS.max_skew_rate, "GreaterThanThreshold")
    assert alarm["Dimensions"] == [{"Name": "Environment", "Value": ENVIRONMENT}, {"Name": "Model", "Value": MODEL}]


@pytest.mark.parametrize("extra", (0, 2, 6))
def test_replayed_the_latency_alarm_ignores_lone_cold_starts_and_pages_once_on_answers_slow_for_three_periods(extra):
    """Replayed with tests/support/alarm_eval.py (which does not model percentiles: the replayed series is one
    request's duration per minute, so each 5-minute p99 is that period's slowest, as Maximum gives it)."""
    built, score, _ = _built()
    props = _alarms(built, score)["Latency"]
    alarm = MetricAlarm.from_properties({**{k: v for k, v in props.items() if k != "ExtendedStatistic"}, "Statistic": "Maximum"})
    # A quiet front: one request an hour, each after the endpoint went cold (1.6 s, above the limit).
    cold = Series((h * HOUR + 30, 1600.0) for h in range(24))
    assert replay(alarm, cold, 0, DAY, extra=extra, initial="OK").pages() == []
    # A busy front whose answers are slow for 20 minutes: one page, once three sliding 5-minute periods hold them.
    slow = Series((t * MINUTE + 30, 1600.0 if 60 <= t < 80 else 200.0) for t in range(3 * 60))
    (page,) = replay(alarm, slow, 0, 3 * HOUR, extra=extra, initial="OK").pages()
    assert HOUR + 10 * MINUTE < page <= HOUR + 16 * MINUTE
