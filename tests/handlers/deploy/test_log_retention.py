"""The deploy handler sets the retention of the environment's endpoint log groups (which SageMaker creates and which
never expire): after a reconcile, for that group's endpoint, and on the hourly ``log-retention`` sweep, for every
endpoint the serving stack names. Against moto (CloudFormation, CloudWatch Logs, the registry); a failing CloudWatch
Logs is a botocore Stubber."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries.standard import ExponentialBackoff, RetryContext
from botocore.stub import Stubber

from pipeline_code.handlers import deploy_on_approval as dod
from pipeline_code.handlers.deploy import log_retention as retention
from pipeline_code.handlers.deploy import settings as dod_settings
from tests.support.deploy_handler import (
    GROUP,
    REGION,
    STACK,
    TEMPLATE,
    register,
    set_approval,
)

CHURN = "mlops-loop-prod-churn"
CREDIT_RISK = "mlops-loop-prod-credit-risk"


def group(endpoint: str) -> str:
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def retentions(logs) -> dict:
    """Every endpoint log group -> its retention (None: never expires)."""
    return {g["logGroupName"]: g.get("retentionInDays")
            for g in logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/Endpoints/")["logGroups"]}


def puts(logs) -> list:
    """The PutRetentionPolicy requests ``logs`` makes from now on."""
    made: list = []
    logs.meta.events.register("provide-client-params.logs.PutRetentionPolicy", lambda params, **_: made.append(dict(params)))
    return made


@pytest.fixture()
def world(aws, monkeypatch):
    """The serving stack naming its two endpoints (outputs, as the serving stack's), and log groups: the churn
    endpoint's at another retention, the credit-risk endpoint's at the environment's, and groups of other names that
    start with the churn endpoint's (another environment ``prod-eu``, another endpoint ``churn2``), never expiring."""
    template = {**TEMPLATE, "Outputs": {"ChurnEndpointName": {"Value": CHURN}, "CreditRiskEndpointName": {"Value": CREDIT_RISK}}}
    stack = aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    aws.cloudformation.update_stack(StackName=STACK, TemplateBody=json.dumps(template),
                                    Parameters=[{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in stack["Parameters"]])
    aws.updates.clear()
    aws.logs = aws.client("logs")
    for name, days in ((CHURN, 90), (CREDIT_RISK, 14), ("mlops-loop-prod-eu-churn", None), (f"{CHURN}2", None)):
        aws.logs.create_log_group(logGroupName=group(name))
        if days:
            aws.logs.put_retention_policy(logGroupName=group(name), retentionInDays=days)
    monkeypatch.setenv("LOG_RETENTION_DAYS", "14")
    return aws


def test_a_group_at_another_retention_is_set_one_already_set_is_left_and_one_not_created_yet_is_skipped(world):
    """GIVEN the churn endpoint's group at 90 days, credit-risk's at 14, and no group yet for a multi-model endpoint
    WHEN the environment's retention (14) is set on the three
    THEN only churn's is set (one PutRetentionPolicy), credit-risk's is unchanged, the missing one is skipped, and the
    groups whose names only start with churn's endpoint (prod-eu's, churn2) still never expire."""
    made = puts(world.logs)
    summary = retention.set_retention(world.logs, [CHURN, CREDIT_RISK, "mlops-loop-prod-mme-pool"], 14)
    assert summary == {"days": 14, "set": [group(CHURN)], "unchanged": [group(CREDIT_RISK)],
                       "missing": [group("mlops-loop-prod-mme-pool")], "errors": []}
    assert made == [{"logGroupName": group(CHURN), "retentionInDays": 14}]
    assert retentions(world.logs) == {group(CHURN): 14, group(CREDIT_RISK): 14,
                                      group("mlops-loop-prod-eu-churn"): None, group(f"{CHURN}2"): None}


def test_a_group_at_the_retention_already_gets_no_call(world):
    made = puts(world.logs)
    assert retention.set_retention(world.logs, [CREDIT_RISK], 14)["unchanged"] == [group(CREDIT_RISK)]
    assert made == []


def test_the_sweep_sets_every_endpoint_the_serving_stack_names_and_no_other_group(world):
    """GIVEN the serving stack naming the churn and credit-risk endpoints WHEN the hourly sweep runs THEN churn's group
    is set, credit-risk's left, and prod-eu's and churn2's groups are untouched."""
    decision = dod.handler({"action": "log-retention"}, sagemaker=world.sagemaker, cloudformation=world.cloudformation,
                           sns=world.sns, s3=world.s3, logs=world.logs)
    assert decision["log_retention"]["set"] == [group(CHURN)]
    assert decision["log_retention"]["unchanged"] == [group(CREDIT_RISK)]
    assert retentions(world.logs) == {group(CHURN): 14, group(CREDIT_RISK): 14,
                                      group("mlops-loop-prod-eu-churn"): None, group(f"{CHURN}2"): None}
    assert world.updates == []


class _Ending:
    """A Lambda context with ``ms`` milliseconds left."""

    invoked_function_arn = None

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def get_remaining_time_in_millis(self) -> int:
        return self.ms


def test_a_sweep_near_the_functions_timeout_defers_the_groups_left_instead_of_timing_out(world):
    """GIVEN the hourly sweep invoked with less time left than a group's calls may take (many endpoints, a slow or
    throttling CloudWatch Logs: the function has 30 s) WHEN it runs THEN it stops before the timeout - a timed-out
    sweep is a failed invocation, retried twice and then a message in the dead-letter queue, whose alarm pages - and
    names the groups it left for the next sweep; with time left it sets them."""
    made = puts(world.logs)
    decision = dod.handler({"action": "log-retention"}, _Ending(1_000), sagemaker=world.sagemaker,
                           cloudformation=world.cloudformation, sns=world.sns, s3=world.s3, logs=world.logs)
    assert decision["log_retention"]["deferred"] == [group(CHURN), group(CREDIT_RISK)]
    assert (decision["log_retention"]["set"], decision["log_retention"]["errors"], made) == ([], [], [])

    decision = dod.handler({"action": "log-retention"}, _Ending(30_000), sagemaker=world.sagemaker,
                           cloudformation=world.cloudformation, sns=world.sns, s3=world.s3, logs=world.logs)
    assert decision["log_retention"]["set"] == [group(CHURN)] and "deferred" not in decision["log_retention"]


def failing_logs(code: str = "ThrottlingException"):
    """A CloudWatch Logs client whose every DescribeLogGroups fails with ``code``."""
    logs = boto3.client("logs", region_name=REGION)
    stub = Stubber(logs)
    for _ in range(5):
        stub.add_client_error("describe_log_groups", service_error_code=code, http_status_code=400)
    stub.activate()
    return logs


def test_a_logs_error_is_counted_not_raised(world):
    summary = retention.set_retention(failing_logs("AccessDeniedException"), [CHURN], 14)
    assert (summary["set"], summary["missing"], len(summary["errors"])) == ([], [], 1)
    assert "AccessDeniedException" in summary["errors"][0]["error"] and summary["errors"][0]["log_group"] == group(CHURN)


@pytest.mark.parametrize("logs", ["moto", "failing"])
def test_a_reconcile_sets_its_endpoints_group_after_the_decision_which_a_logs_error_does_not_change(world, logs):
    """GIVEN an approved churn version WHEN the serving stack's settle event reconciles the churn group, with CloudWatch
    Logs answering or failing THEN the version is deployed either way (same outcome, one UpdateStack); its endpoint's
    group is set (and only churn's: the reconcile is of that group), or the failure is counted in the decision."""
    arn = register(world)
    set_approval(world, arn, "Approved")
    client = world.logs if logs == "moto" else failing_logs()
    decision = dod.handler({"action": "reconcile", "group": GROUP}, sagemaker=world.sagemaker,
                           cloudformation=world.cloudformation, sns=world.sns, s3=world.s3, logs=client)
    assert (decision["deployed"], decision["outcome"], len(world.updates)) == (True, "deploying", 1)
    if logs == "moto":
        assert decision["log_retention"]["set"] == [group(CHURN)]
        assert retentions(world.logs)[group(CHURN)] == 14
    else:
        assert decision["log_retention"]["set"] == [] and len(decision["log_retention"]["errors"]) == 1


def test_after_a_reconcile_the_stack_is_read_for_its_endpoints_with_the_bounded_client(world, monkeypatch):
    """GIVEN the deploy function reconciling with the CloudFormation clients it makes itself WHEN it sets its endpoint's
    log group after the decision THEN it reads the serving stack with the sweep's bounded client (sweep_stack_client,
    at most 7 s a call), not a default one (60 s to connect and 60 s to read, up to 5 attempts): a CloudFormation that
    stops answering after the update would otherwise time the function out, and Lambda would run again a decision
    already taken. The update itself keeps its default client (it waits as long as an update needs)."""
    arn = register(world)
    set_approval(world, arn, "Approved")
    made = []

    def client(service, *args, **kwargs):
        made.append(("default", service))
        assert service == "cloudformation", service
        return world.cloudformation

    def bounded():
        made.append(("bounded", "cloudformation"))
        return world.cloudformation

    monkeypatch.setattr(dod.boto3, "client", client)
    monkeypatch.setattr(dod, "sweep_stack_client", bounded)
    decision = dod.handler({"action": "reconcile", "group": GROUP}, sagemaker=world.sagemaker, sns=world.sns,
                           s3=world.s3, logs=world.logs)
    assert (decision["deployed"], decision["log_retention"]["set"]) == (True, [group(CHURN)])
    assert made == [("default", "cloudformation"), ("bounded", "cloudformation")]


def test_without_the_setting_no_group_is_touched(world, monkeypatch):
    monkeypatch.delenv("LOG_RETENTION_DAYS")
    made = puts(world.logs)
    decision = dod.handler({"action": "log-retention"}, sagemaker=world.sagemaker, cloudformation=world.cloudformation,
                           sns=world.sns, s3=world.s3, logs=world.logs)
    assert decision["log_retention"] is None and made == []


def test_a_retention_that_is_not_a_number_of_days_names_the_variable(monkeypatch):
    with pytest.raises(dod_settings.ConfigurationError) as raised:
        dod_settings.log_retention_setting("two weeks")
    assert str(raised.value) == ("environment variable LOG_RETENTION_DAYS must be a number of days (the environment's "
                                 "log_retention_days), or unset, got 'two weeks'")


class _Clock:
    """A Lambda context whose remaining time runs down with the wall clock from ``ms``."""

    def __init__(self, ms: int) -> None:
        import time

        self.ms, self.started, self._now = ms, time.monotonic(), time.monotonic

    def get_remaining_time_in_millis(self) -> int:
        return self.ms - int((self._now() - self.started) * 1000)


SILENT_SERVICES = ("CLOUDWATCH_LOGS", "CLOUDFORMATION")
# The bounds the silent sweeps' clients get (connect, read, attempts): the function's own, scaled down, so each sweep
# waits about a second instead of five; test_the_functions_clients_are_bounded_by_the_time_a_group_is_given holds the
# function's clients to the same bounded_config with its own bounds.
SCALED_BOUNDS = (0.1, 0.25, retention.LOGS_ATTEMPTS)


@pytest.fixture(scope="module")
def silent_sweeps() -> dict:
    """The hourly sweep of the deploy function (its timeout: 30 s), with the clients it makes itself, once per service
    of SILENT_SERVICES whose endpoint (its AWS_ENDPOINT_URL_<service> variable) accepts connections and never answers:
    against a silent CloudWatch Logs with a CloudFormation (a Stubber) naming the churn endpoint, and against a silent
    CloudFormation. The function's clients are bounded by SCALED_BOUNDS instead of its own (which
    test_the_functions_clients_are_bounded_by_the_time_a_group_is_given checks). Both sweeps run at once, each on its
    own thread with its own silent socket and clock (the tests read each one's outcome; they only wait, so together
    they take as long as one). Returns service -> (whether it ended within the timeout, its decision, the seconds it
    took)."""
    import socket
    import threading
    import time

    timeout_s = 30
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    stub = Stubber(cloudformation)
    stub.add_response("describe_stacks", {"Stacks": [{
        "StackName": STACK, "CreationTime": "2026-12-01T00:00:00Z", "StackStatus": "UPDATE_COMPLETE",
        "Outputs": [{"OutputKey": "ChurnEndpointName", "OutputValue": CHURN}]}]})
    stub.activate()
    given = {"CLOUDWATCH_LOGS": cloudformation, "CLOUDFORMATION": None}  # the CloudFormation client each sweep is given
    silent = {service: socket.socket() for service in SILENT_SERVICES}
    answers: dict = {service: {} for service in SILENT_SERVICES}
    outcomes: dict = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for service, sock in silent.items():
            sock.bind(("127.0.0.1", 0))
            sock.listen(8)  # connections are accepted by the kernel and never answered
            monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", f"http://127.0.0.1:{sock.getsockname()[1]}")
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                            ("AWS_DEFAULT_REGION", REGION), ("SERVING_STACK_NAME", STACK),
                            ("MODEL_PARAMETERS", json.dumps({GROUP: "ChurnModelPackageArn"})),
                            ("DEPLOYER_ROLE_ARN", "arn:aws:iam::123456789012:role/deployer"), ("LOG_RETENTION_DAYS", "14")):
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("NOTIFY_TOPIC_ARN", raising=False)
        monkeypatch.setattr(retention, "LOGS_CONFIG", retention.bounded_config(*SCALED_BOUNDS))
        # boto3's default session builds its shared parts (credentials, endpoint data) on its first client; built here,
        # the two threads' clients only read them. The suite's default session is given back afterwards.
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        boto3.client("logs")

        def sweep(service: str) -> None:
            answers[service]["decision"] = dod.handler({"action": "log-retention"}, _Clock(timeout_s * 1000),
                                                       sagemaker=object(), s3=object(), cloudformation=given[service])

        def timed(service: str) -> None:
            started = time.monotonic()
            worker = threading.Thread(target=sweep, args=(service,), daemon=True)
            worker.start()
            worker.join(timeout_s)
            outcomes[service] = (not worker.is_alive(), answers[service].get("decision"), time.monotonic() - started)

        watchers = [threading.Thread(target=timed, args=(service,)) for service in SILENT_SERVICES]
        for watcher in watchers:
            watcher.start()
        for watcher in watchers:
            watcher.join()
    for sock in silent.values():
        sock.close()
    return outcomes


@pytest.mark.xdist_group("silent_sweeps")  # one worker runs both sweeps, at once
def test_a_sweep_against_a_cloudwatch_logs_that_does_not_answer_ends_within_the_functions_timeout(silent_sweeps):
    """GIVEN the deploy function swept with its own CloudWatch Logs client (not a test's) against a CloudWatch Logs that
    accepts connections and never answers (slow or unreachable) WHEN the sweep runs THEN it ends before the function's
    timeout, each group's calls bounded by the time the sweep keeps for them (TIME_PER_GROUP_MS): a timed-out sweep is
    retried twice and then pages through the dead-letter queue. Before, the default client waited 60 s for each of up
    to 5 attempts of one DescribeLogGroups."""
    ended, decision, took = silent_sweeps["CLOUDWATCH_LOGS"]
    assert ended, "the sweep was still waiting for CloudWatch Logs after the function's 30 s"
    assert [e["log_group"] for e in decision["log_retention"]["errors"]] == [group(CHURN)]
    assert "127.0.0.1" in decision["log_retention"]["errors"][0]["error"]  # the silent endpoint's timeout, no other
    # TIME_PER_GROUP_MS of these bounds, for a service that never answers (so never asks for a longer wait)
    assert took * 1000 <= 2 * retention.longest_call_ms(*SCALED_BOUNDS, answered=False)


@pytest.mark.xdist_group("silent_sweeps")
def test_a_sweep_against_a_cloudformation_that_does_not_answer_ends_within_the_functions_timeout(silent_sweeps):
    """GIVEN the deploy function swept with its own clients against a CloudFormation that never answers WHEN the sweep
    reads the serving stack's endpoints THEN it ends before the function's timeout, the stack counted as its one error
    (the next sweep tries again). Before, the default client's DescribeStacks waited 60 s for each of up to 5 attempts."""
    ended, decision, took = silent_sweeps["CLOUDFORMATION"]
    assert ended, "the sweep was still waiting for CloudFormation after the function's 30 s"
    assert [e["log_group"] for e in decision["log_retention"]["errors"]] == [STACK]
    assert "127.0.0.1" in decision["log_retention"]["errors"][0]["error"]
    # TIME_PER_GROUP_MS of these bounds, for a service that never answers (so never asks for a longer wait)
    assert took * 1000 <= 2 * retention.longest_call_ms(*SCALED_BOUNDS, answered=False)


def test_the_functions_clients_are_bounded_by_the_time_a_group_is_given(monkeypatch):
    """GIVEN the clients the function sets retention and reads the serving stack with WHEN their config is read THEN it
    is bounded_config of the function's bounds (1 s to connect, 2 s to read, 2 attempts in all: one retry) - the config
    the silent sweeps above prove botocore holds to, with smaller bounds - and the time a group is given
    (TIME_PER_GROUP_MS) is two such calls at their longest. Before, the config said max_attempts: 2, which botocore
    reads as two retries (3 attempts): a call could take 12 s, not the 7 s the sweep kept for it."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    expected = retention.bounded_config(retention.LOGS_CONNECT_TIMEOUT_S, retention.LOGS_READ_TIMEOUT_S,
                                        retention.LOGS_ATTEMPTS)
    for client in (retention.logs_client(), retention.sweep_stack_client()):
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout, config.retries) == (
            expected.connect_timeout, expected.read_timeout, expected.retries) == (1, 2, {"mode": "standard", "total_max_attempts": 2})
    assert retention.TIME_PER_GROUP_MS == 2 * retention.longest_call_ms(1, 2, 2) == 24_000


def test_the_longest_wait_before_a_retry_is_botocores_longest_even_when_the_answer_asks_to_wait_longer():
    """GIVEN botocore's standard-mode backoff at its longest (the jitter at 1), a throttle, and an answer asking to
    wait a minute (x-amz-retry-after) WHEN it computes the wait before the one retry THEN longest_call_ms of a client
    without timeouts allows exactly that wait (1 s of backoff + 5 s: before, it allowed 1 s, and a silent, throttling
    CloudWatch Logs outlasted the time a group is given by 5 s a call)."""
    backoff = ExponentialBackoff(random=lambda: 1.0, throttling_detector=_Always())
    answer = AWSResponse("https://logs.eu-west-1.amazonaws.com", 400, {"x-amz-retry-after": "60000"}, None)
    wait_s = backoff.delay_amount(RetryContext(attempt_number=1, http_response=answer))
    assert wait_s * 1000 == retention.longest_call_ms(0, 0, 2) == 6_000


class _Always:
    """A throttling detector that takes every error for a throttle (the longest backoff)."""

    def is_throttling_error_from_context(self, context):
        return True


class _Function(_Ending):
    """A Lambda context of the deploy function, with ``ms`` milliseconds left."""

    function_name = "mlops-loop-prod-deploy-on-approval"


def _metric_lines(capsys) -> list:
    """The embedded-metric log lines the handler printed since the last call, checked to be ones CloudWatch reads:
    every metric and dimension the ``_aws`` block names is a field of the line."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{") and '"_aws"' in line]
    for line in lines:
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        assert isinstance(line["_aws"]["Timestamp"], int)
        assert all(name in line for dims in directive["Dimensions"] for name in dims)
        assert all(isinstance(line[m["Name"]], int) for m in directive["Metrics"])
    return lines


def _not_set(line: dict) -> tuple:
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    return (directive["Namespace"], directive["Dimensions"], line["FunctionName"], line["EndpointLogGroupsNotSet"],
            line["log_retention_not_set"])


@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException"])
def test_a_sweep_that_cannot_set_groups_publishes_how_many_for_the_alarm(world, capsys, code):
    """GIVEN a CloudWatch Logs that refuses or throttles every call WHEN the hourly sweep runs THEN besides its warnings
    it publishes one embedded-metric line: EndpointLogGroupsNotSet = the two endpoints' groups, per function (what the
    endpoint-log-retention alarm reads: a warning alone went unseen for months)."""
    decision = dod.handler({"action": "log-retention"}, _Function(30_000), sagemaker=world.sagemaker,
                           cloudformation=world.cloudformation, sns=world.sns, s3=world.s3, logs=failing_logs(code))
    assert len(decision["log_retention"]["errors"]) == 2
    (line,) = _metric_lines(capsys)
    assert _not_set(line) == ("mlops-loop/deploy-handler", [["FunctionName"]], "mlops-loop-prod-deploy-on-approval", 2,
                              [group(CHURN), group(CREDIT_RISK)])


def test_a_sweep_that_defers_groups_for_time_counts_them_as_not_set(world, capsys):
    """GIVEN a sweep with less time left than a group's calls WHEN it defers both groups THEN they count as not set: a
    sweep that never has the time for them (too many endpoints) leaves them unexpiring just the same."""
    dod.handler({"action": "log-retention"}, _Function(1_000), sagemaker=world.sagemaker,
                cloudformation=world.cloudformation, sns=world.sns, s3=world.s3, logs=world.logs)
    (line,) = _metric_lines(capsys)
    assert _not_set(line)[2:] == ("mlops-loop-prod-deploy-on-approval", 2, [group(CHURN), group(CREDIT_RISK)])


def test_a_sweep_that_sets_every_group_publishes_zero_and_a_reconcile_publishes_nothing(world, capsys):
    """GIVEN a CloudWatch Logs that answers WHEN the sweep runs THEN it publishes 0 (so the alarm returns to OK on the
    first sweep that sets everything); a reconcile's retention, for one group, publishes nothing (the alarm counts
    sweeps)."""
    dod.handler({"action": "log-retention"}, _Function(30_000), sagemaker=world.sagemaker,
                cloudformation=world.cloudformation, sns=world.sns, s3=world.s3, logs=world.logs)
    (line,) = _metric_lines(capsys)
    assert _not_set(line)[3:] == (0, [])
    arn = register(world)
    set_approval(world, arn, "Approved")
    dod.handler({"action": "reconcile", "group": GROUP}, _Function(30_000), sagemaker=world.sagemaker,
                cloudformation=world.cloudformation, sns=world.sns, s3=world.s3, logs=failing_logs())
    assert _metric_lines(capsys) == []
