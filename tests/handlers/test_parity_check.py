"""parity_check: during a rollout's bake, the new version on an Inferentia2 endpoint must answer the artefact's parity
request as its CPU model did, or the rollback alarm's metric is raised and people are told why.

Every AWS call goes through botocore's Stubber, which checks each request against the service model.
"""

from __future__ import annotations

import io
import json
import shlex
import tarfile

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from pipeline_code.core.compiled import DEPLOYMENT_EVENT, ENDPOINT_EVENT, PARITY_FILE, PARITY_FORMAT, PARITY_METRIC
from pipeline_code.handlers import parity_check

ENDPOINT = "mlops-loop-prod-churn-net"
CONFIG = "churn-net-config-v3"
PACKAGE = "arn:aws:sagemaker:us-east-1:111122223333:model-package/mlops-loop-prod-churn-net/3"
BUCKET, KEY = "artifacts", "pipelines/churn-net/registered/ab/model.tar.gz"
TOPIC = "arn:aws:sns:us-east-1:111122223333:mlops-loop-prod-alerts"
EXPECTED = [{"score": 0.25, "label": 0, "inference_id": "mlops-loop-parity-0"},
            {"score": 0.75, "label": 1, "inference_id": "mlops-loop-parity-1"}]
REQUEST = {"instances": [{"tenure_months": 3, "inference_id": "mlops-loop-parity-0"},
                         {"tenure_months": None, "inference_id": "mlops-loop-parity-1"}]}


def _event(endpoint: str = ENDPOINT, status: str = "Baking") -> dict:
    return {"detail-type": DEPLOYMENT_EVENT, "source": "aws.sagemaker", "detail": {
        "EndpointName": endpoint, "EndpointStatus": "UPDATING",
        "PendingDeploymentSummary": {"EndpointConfigName": CONFIG, "ProductionVariants": [
            {"VariantName": "AllTraffic", "VariantStatus": [{"Status": status, "StatusMessage": "Baking for 600 seconds"}]}]}}}


def _archive(parity: object | None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in (("model.json", b"{}"), (PARITY_FILE, None if parity is None else json.dumps(parity).encode())):
            if content is not None:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _parity() -> dict:
    return {"format": PARITY_FORMAT, "request": REQUEST, "expected": EXPECTED, "tolerance": 1e-3}


def _answer(version: str, scores=(0.25, 0.75), *, raw: object = None) -> dict:
    answer = raw if raw is not None else {"predictions": [{"score": s, "label": int(s >= 0.5)} for s in scores],
                                          "model": {"name": "churn-net", "version": version}}
    body = json.dumps(answer).encode()
    return {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"}


class Clients:
    def __init__(self) -> None:
        self.sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        self.runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        self.sns = boto3.client("sns", region_name="us-east-1")
        self.stubs = {name: Stubber(getattr(self, name)) for name in ("sagemaker", "runtime", "s3", "cloudwatch", "sns")}

    def deploying(self, config: str = CONFIG, status: str = "Updating") -> None:
        self.stubs["sagemaker"].add_response("describe_endpoint", {
            "EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:us-east-1:111122223333:endpoint/{ENDPOINT}",
            "EndpointConfigName": "churn-net-config-v2", "EndpointStatus": status, "CreationTime": "2026-12-03T00:00:00Z",
            "LastModifiedTime": "2026-12-03T00:00:00Z",
            **({"PendingDeploymentSummary": {"EndpointConfigName": config}} if status == "Updating" else {})},
            {"EndpointName": ENDPOINT})

    def package(self, parity: object | None) -> None:
        self.deploying()
        sm = self.stubs["sagemaker"]
        sm.add_response("describe_endpoint_config", {
            "EndpointConfigName": CONFIG, "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:111122223333:endpoint-config/{CONFIG}",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "churn-net-model-3"}],
            "CreationTime": "2026-12-03T00:00:00Z"}, {"EndpointConfigName": CONFIG})
        sm.add_response("describe_model", {
            "ModelName": "churn-net-model-3", "ModelArn": "arn:aws:sagemaker:us-east-1:111122223333:model/churn-net-model-3",
            "Containers": [{"ModelPackageName": PACKAGE}], "CreationTime": "2026-12-03T00:00:00Z"},
            {"ModelName": "churn-net-model-3"})
        sm.add_response("describe_model_package", {
            "ModelPackageName": "mlops-loop-prod-churn-net", "ModelPackageArn": PACKAGE, "CreationTime": "2026-12-03T00:00:00Z",
            "ModelPackageStatus": "Completed", "ModelPackageStatusDetails": {"ValidationStatuses": []}, "InferenceSpecification": {
                "Containers": [{"Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference-neuronx:2.9.0",
                                "ModelDataUrl": f"s3://{BUCKET}/{KEY}"}],
                "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]}},
            {"ModelPackageName": PACKAGE})
        body = _archive(parity)
        self.stubs["s3"].add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))}, {"Bucket": BUCKET, "Key": KEY})

    def answers(self, *responses: dict) -> None:
        body = json.dumps(REQUEST, separators=(",", ":")).encode()
        for response in responses:
            self.stubs["runtime"].add_response("invoke_endpoint", response, {
                "EndpointName": ENDPOINT, "ContentType": "application/json", "Accept": "application/json", "Body": body})

    def metric(self, value: float) -> None:
        self.stubs["cloudwatch"].add_response("put_metric_data", {}, {"Namespace": f"{ENDPOINT}/rollout", "MetricData": [
            {"MetricName": PARITY_METRIC, "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}], "Value": value, "Unit": "Count"}]})

    def notified(self, subject: str) -> None:
        self.stubs["sns"].add_response("publish", {"MessageId": "1"}, {"TopicArn": TOPIC, "Subject": subject, "Message": _ANY})

    def run(self, event: dict, **kwargs) -> dict:
        for stub in self.stubs.values():
            stub.activate()
        decision = parity_check.handler(event, sagemaker=self.sagemaker, runtime=self.runtime, s3=self.s3,
                                        cloudwatch=self.cloudwatch, sns=self.sns, **kwargs)
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()
        return decision


class _Any:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


_ANY = _Any()


@pytest.fixture
def clients(monkeypatch) -> Clients:
    monkeypatch.setenv("PARITY_ENDPOINTS", json.dumps({ENDPOINT: {"share": 0.1}}))
    monkeypatch.setenv("TOPIC_ARN", TOPIC)
    return Clients()


def test_given_a_baking_rollout_when_the_new_version_answers_as_its_cpu_model_then_the_check_passes(clients):
    """The old fleet answers the first two calls (a canary bake); the third, from v3, matches: metric 0, nobody paged."""
    clients.package(_parity())
    clients.answers(_answer("2", (0.9, 0.1)), _answer("2", (0.9, 0.1)), _answer("3", (0.2500004, 0.7499996)))
    clients.metric(0.0)
    decision = clients.run(_event())
    assert decision == {"endpoint": ENDPOINT, "endpoint_config": CONFIG, "model_package": PACKAGE, "version": "3", "calls": 3,
                        "records": 2, "tolerance": 1e-3, "outcome": "passed"}


def test_given_a_new_version_that_scores_differently_then_the_rollback_metric_is_raised_and_people_are_told_what_differed(clients):
    clients.package(_parity())
    clients.answers(_answer("3", (0.25, 0.79)))
    clients.metric(1.0)
    clients.notified(f"{ENDPOINT}: v3 does not match its CPU model; the rollout rolls back")
    decision = clients.run(_event())
    assert decision["outcome"] == "mismatch"
    assert decision["reason"] == "record 1: 0.79, expected 0.75; largest difference 0.04 > tolerance 0.001"


def test_a_check_that_cannot_reach_the_new_version_fails_closed(clients, monkeypatch):
    monkeypatch.setenv("PARITY_ENDPOINTS", json.dumps({ENDPOINT: {"share": 1.0}}))
    clients.package(_parity())
    clients.answers(_answer("2"), _answer("2"), _answer("2"))
    clients.metric(1.0)
    clients.notified(f"{ENDPOINT}: v3 could not be checked; the rollout rolls back")
    decision = clients.run(_event())
    assert decision["outcome"] == "unverified"
    assert decision["reason"] == f"version 3 answered none of 3 calls to {ENDPOINT} (answers: v2 x3)"


def test_an_artefact_without_a_parity_sample_fails_closed_naming_the_file(clients):
    clients.package(None)
    clients.metric(1.0)
    clients.notified(f"{ENDPOINT}: v3 could not be checked; the rollout rolls back")
    decision = clients.run(_event())
    assert decision["outcome"] == "unverified"
    assert decision["reason"] == f"{PACKAGE}: parity.json not found in s3://{BUCKET}/{KEY}"


@pytest.mark.parametrize("event", [_event(endpoint="mlops-loop-prod-other"), _event(status="ActivatingTraffic"),
                                   {"detail-type": DEPLOYMENT_EVENT, "detail": None}, {"detail": _event()["detail"]}])
def test_events_of_other_endpoints_or_states_are_ignored_without_any_call(clients, event):
    assert clients.run(event)["outcome"] == "ignored"


@pytest.mark.parametrize("share,attempts", [(1.0, 3), (0.5, 14), (0.1, 88), (0.01, 917), (0.0001, 2000)])
def test_the_attempts_miss_a_new_fleet_with_probability_below_one_in_ten_thousand(share, attempts):
    assert parity_check.attempts_for(share) == attempts
    if share < 1.0 and attempts < parity_check.MAX_ATTEMPTS:
        assert (1 - share) ** attempts < 1e-4 <= (1 - share) ** (attempts - 1)


def test_a_late_event_of_a_deployment_that_is_over_is_ignored_without_a_verdict(clients):
    """SageMaker may send an event more than once, and EventBridge retries: once the endpoint no longer deploys this
    config (it finished or rolled back), the old version answering must not page anyone or trip the next rollout."""
    clients.deploying(status="InService")
    decision = clients.run(_event())
    assert decision == {"endpoint": ENDPOINT, "endpoint_config": CONFIG, "outcome": "ignored",
                        "reason": f"{ENDPOINT} is no longer deploying {CONFIG}"}


@pytest.mark.parametrize(("raw", "reason"), [
    ({"predictions": "none", "model": {"version": "3"}}, "version 3 answered without a list of predictions: "),
    ({"predictions": ["x", "y"], "model": {"version": "3"}}, "record 0: 'x' is not an answer object"),
])
def test_a_new_version_that_answers_outside_the_contract_fails_the_rollout(clients, raw, reason):
    clients.package(_parity())
    clients.answers(_answer("3", raw=raw))
    clients.metric(1.0)
    outcome = "unverified" if "without" in reason else "mismatch"
    clients.notified(f"{ENDPOINT}: v3 {'could not be checked' if outcome == 'unverified' else 'does not match its CPU model'}; "
                     "the rollout rolls back")
    decision = clients.run(_event())
    assert decision["outcome"] == outcome and decision["reason"].startswith(reason)


def test_answers_of_unexpected_shape_from_the_old_fleet_are_counted_not_fatal(clients, monkeypatch):
    monkeypatch.setenv("PARITY_ENDPOINTS", json.dumps({ENDPOINT: {"share": 1.0}}))
    clients.package(_parity())
    clients.answers(_answer("2", raw={"model": "v2"}), _answer("2", raw=["x"]), _answer("3"))
    clients.metric(0.0)
    assert clients.run(_event())["outcome"] == "passed"


def test_the_check_stops_calling_before_the_function_times_out_and_still_publishes_a_failing_verdict(clients):
    """GIVEN 40 s left in the function WHEN each call takes 10 s and only the old version answers THEN after the budget
    (40 s less the 20 s margin) the check is unverified, and the metric and notification still go out."""
    clients.package(_parity())
    clients.answers(_answer("2"), _answer("2"))
    clients.metric(1.0)
    clients.notified(f"{ENDPOINT}: v3 could not be checked; the rollout rolls back")
    ticks = iter(range(0, 1000, 10))
    context = type("Context", (), {"get_remaining_time_in_millis": lambda self: 40_000})()
    decision = clients.run(_event(), context=context, clock=lambda: float(next(ticks)))
    assert decision["outcome"] == "unverified"
    assert decision["reason"] == f"out of time after 2 calls to {ENDPOINT}: version 3 had not answered (answers: v2 x2)"


@pytest.mark.parametrize("tolerance", [float("nan"), -1, 0, True, 0.5])
def test_a_parity_sample_whose_tolerance_could_not_hold_anything_fails_the_rollout(clients, tolerance):
    clients.package({**_parity(), "tolerance": tolerance})
    clients.metric(1.0)
    clients.notified(f"{ENDPOINT}: v3 could not be checked; the rollout rolls back")
    decision = clients.run(_event())
    assert decision["reason"] == f"{PACKAGE}: parity.json tolerance must be a number in (0, 0.1], got {tolerance!r}"


def test_any_error_of_the_check_itself_fails_the_rollout_instead_of_leaving_no_verdict(clients, monkeypatch):
    def broken(*_args, **_kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(parity_check, "parity_mismatches", broken)
    clients.package(_parity())
    clients.answers(_answer("3"))
    clients.metric(1.0)
    clients.notified(f"{ENDPOINT}: v3 could not be checked; the rollout rolls back")
    decision = clients.run(_event())
    assert decision["outcome"] == "unverified" and decision["reason"] == "the check failed: KeyError: 'surprise'"


# -- the first version: an endpoint's creation runs no rollout, so its first version is checked once it is in service --

CREATED = "2026-12-03T10:00:00Z"


def _in_service(endpoint: str = ENDPOINT, status: str = "IN_SERVICE") -> dict:
    """SageMaker's endpoint state change event (Developer Guide example: EndpointStatus IN_SERVICE)."""
    return {"detail-type": ENDPOINT_EVENT, "source": "aws.sagemaker", "detail": {
        "EndpointName": endpoint, "EndpointArn": f"arn:aws:sagemaker:us-east-1:111122223333:endpoint/{endpoint}",
        "EndpointConfigName": CONFIG, "EndpointStatus": status, "CreationTime": 1796292000000.0,
        "LastModifiedTime": 1796292600000.0, "Tags": {}}}


class FirstVersion(Clients):
    def serving(self, *, status: str = "InService", config_created: str = "2026-12-03T09:59:00Z",
                approval: str = "Approved", approved: str = "2026-12-03T09:50:00Z", parity: object = None,
                last_modified: str = "2026-12-03T10:10:00Z") -> None:
        """The endpoint created at CREATED serving CONFIG (made at ``config_created``) with v3, ``approval`` since
        ``approved``; with ``parity`` its archive holds that sample."""
        sm = self.stubs["sagemaker"]
        sm.add_response("describe_endpoint", {
            "EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:us-east-1:111122223333:endpoint/{ENDPOINT}",
            "EndpointConfigName": CONFIG, "EndpointStatus": status, "CreationTime": CREATED,
            "LastModifiedTime": last_modified}, {"EndpointName": ENDPOINT})
        if status != "InService":
            return
        sm.add_response("describe_endpoint_config", {
            "EndpointConfigName": CONFIG, "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:111122223333:endpoint-config/{CONFIG}",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "churn-net-model-3"}],
            "CreationTime": config_created}, {"EndpointConfigName": CONFIG})
        if config_created > CREATED:
            return
        sm.add_response("describe_model", {
            "ModelName": "churn-net-model-3", "ModelArn": "arn:aws:sagemaker:us-east-1:111122223333:model/churn-net-model-3",
            "Containers": [{"ModelPackageName": PACKAGE}], "CreationTime": "2026-12-03T09:58:00Z"},
            {"ModelName": "churn-net-model-3"})
        sm.add_response("describe_model_package", {
            "ModelPackageName": "mlops-loop-prod-churn-net", "ModelPackageArn": PACKAGE, "CreationTime": "2026-12-03T09:00:00Z",
            "LastModifiedTime": approved, "ModelApprovalStatus": approval,
            "ModelPackageStatus": "Completed", "ModelPackageStatusDetails": {"ValidationStatuses": []}, "InferenceSpecification": {
                "Containers": [{"Image": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference-neuronx:2.9.0",
                                "ModelDataUrl": f"s3://{BUCKET}/{KEY}"}],
                "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]}},
            {"ModelPackageName": PACKAGE})
        if parity is not None:
            body = _archive(parity)
            self.stubs["s3"].add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))},
                                          {"Bucket": BUCKET, "Key": KEY})

    def run(self, event: dict, **kwargs) -> dict:
        """As Clients.run, recording the pauses instead of sleeping; any registry write would find no stubbed response."""
        self.pauses: list[float] = []
        return super().run(event, **{"sleep": self.pauses.append, **kwargs})


@pytest.fixture
def first(monkeypatch) -> FirstVersion:
    monkeypatch.setenv("PARITY_ENDPOINTS", json.dumps({ENDPOINT: {"share": 0.1}}))
    monkeypatch.setenv("TOPIC_ARN", TOPIC)
    return FirstVersion()


def _no_registry_write(first: FirstVersion) -> list:
    """The UpdateModelPackage calls the check makes (the Stubber would refuse one anyway: none is queued)."""
    calls: list = []
    first.sagemaker.meta.events.register("provide-client-params.sagemaker.UpdateModelPackage",
                                         lambda params, **_: calls.append(dict(params)))
    return calls


REJECT = (f"aws sagemaker update-model-package --model-package-arn {PACKAGE} --model-approval-status Rejected "
          "--approval-description ")


def _command(decision: dict) -> str:
    """The approver's command that rejects the version, as the notice gives it."""
    return decision["decide"].split("To stop it serving, as the approver role: ", 1)[1].split(" - the deploy handler", 1)[0]


def test_given_a_new_endpoint_in_service_when_its_first_version_answers_as_its_cpu_model_then_it_passes_quietly(first):
    """GIVEN the endpoint just created with v3 (no rollout, no bake) WHEN it says IN_SERVICE and v3 answers as the CPU
    model did THEN the check passes with the whole traffic on v3 (one call), no rollback metric, nobody paged."""
    first.serving(parity=_parity())
    first.answers(_answer("3", (0.2500004, 0.7499996)))
    decision = first.run(_in_service())
    assert decision == {"check": "first-version", "endpoint": ENDPOINT, "endpoint_config": CONFIG, "model_package": PACKAGE,
                        "version": "3", "calls": 1, "records": 2, "tolerance": 1e-3, "outcome": "passed"}
    assert first.pauses == []


def test_given_a_first_version_that_scores_differently_then_people_are_paged_with_the_approvers_command_and_nothing_changes(first):
    """GIVEN the endpoint's first version v3 WHEN it answers differently from its CPU model THEN there is nothing to roll
    back to and the check changes nothing (no registry call: only the approver decides); people are paged with what
    differed and the approver's command that rejects v3 (its region named), told that the deploy handler then rolls
    back to the version approved before it, if any; no rollback metric is published (the next rollout's alarm must
    not see it)."""
    calls = _no_registry_write(first)
    first.serving(parity=_parity())
    first.answers(_answer("3", (0.25, 0.79)))
    first.notified(f"{ENDPOINT}: first version v3 does not match its CPU model; still serving")
    decision = first.run(_in_service())
    assert calls == [] and "held" not in decision
    assert decision["outcome"] == "mismatch"
    assert decision["reason"] == "record 1: 0.79, expected 0.75; largest difference 0.04 > tolerance 0.001"
    assert shlex.split(_command(decision)) == REJECT.split() + [
        f"parity check of {ENDPOINT}'s first version: it does not match its CPU model (record 1: 0.79, expected 0.75; "
        "largest difference 0.04 > tolerance 0.001)", "--region", "us-east-1"]
    assert "- the deploy handler then rolls back to the version approved before it, if any (its bake checked), else the " \
           "endpoint keeps serving it and people are told nothing is left to serve." in decision["decide"]
    assert decision["decide"].startswith(f"v3 keeps serving on {ENDPOINT} (nothing earlier on it to roll back to) and the "
                                         "check changed nothing")


def test_the_proposed_command_is_one_shell_word_per_argument_whatever_the_reason_says(first):
    """A reason quoting an answer (quotes, $, backticks) stays one argument of the approver's command."""
    first.serving(parity=_parity())
    first.answers(_answer("3", raw={"predictions": "it's $(rm -rf ~) `x`", "model": {"version": "3"}}))
    first.notified(f"{ENDPOINT}: first version v3 could not be checked; still serving")
    decision = first.run(_in_service())
    words = shlex.split(_command(decision))
    assert words[:8] == ["aws", "sagemaker", "update-model-package", "--model-package-arn", PACKAGE,
                         "--model-approval-status", "Rejected", "--approval-description"]
    assert words[8].startswith(f"parity check of {ENDPOINT}'s first version: it could not be checked (version 3 answered")
    assert words[9:] == ["--region", "us-east-1"] and len(words[8]) <= 1024


def test_a_first_version_that_cannot_be_checked_pages_and_changes_nothing_after_pausing_between_attempts(first):
    """v3 never answering is unverified: people are paged (it went unchecked), nothing is rejected, and the three
    attempts were spread by the pauses (a scale-out may still be loading the fleet)."""
    calls = _no_registry_write(first)
    first.serving(parity=_parity())
    first.answers(_answer("2"), _answer("2"), _answer("2"))
    first.notified(f"{ENDPOINT}: first version v3 could not be checked; still serving")
    decision = first.run(_in_service())
    assert calls == [] and decision["outcome"] == "unverified"
    assert decision["reason"] == f"version 3 answered none of 3 calls to {ENDPOINT} (answers: v2 x3)"
    assert first.pauses == [5.0, 20.0]  # the README states them
    assert REJECT in decision["decide"]


def test_the_pauses_never_run_past_the_checks_deadline(first):
    """With 12 s left, the first pause (5 s) is taken; the second (20 s) would reach the deadline, so the check ends
    there, unverified (out of time), and the verdict is still published."""
    now = [0.0]

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        first.pauses.append(seconds)
        now[0] += seconds

    first.serving(parity=_parity())
    first.stubs["runtime"].add_client_error("invoke_endpoint", "ModelError", "loading", http_status_code=424)
    first.stubs["runtime"].add_client_error("invoke_endpoint", "ModelError", "loading", http_status_code=424)
    first.notified(f"{ENDPOINT}: first version v3 could not be checked; still serving")
    context = type("Context", (), {"get_remaining_time_in_millis": lambda self: 32_000})()
    for stub in first.stubs.values():
        stub.activate()
    first.pauses = []
    decision = parity_check.handler(_in_service(), context, sagemaker=first.sagemaker, runtime=first.runtime, s3=first.s3,
                                    cloudwatch=first.cloudwatch, sns=first.sns, clock=clock, sleep=sleep)
    assert first.pauses == [5.0]
    assert decision["outcome"] == "unverified" and decision["reason"].startswith(f"out of time after 2 calls to {ENDPOINT}")


def test_an_autoscaling_update_days_later_checks_the_first_version_again_read_only(first):
    """GIVEN the endpoint created on 3 December with CONFIG, still serving v3 approved before it, WHEN Application Auto
    Scaling changes its instance count three days later (UpdateEndpointWeightsAndCapacities: same config, Updating
    then InService, LastModifiedTime moved) THEN the check runs again - no signal tells this event from the end of
    the creation - and, the scale-out throttling every attempt, pages that v3 could not be checked and changes
    nothing in the registry."""
    calls = _no_registry_write(first)
    first.serving(parity=_parity(), last_modified="2026-12-06T10:00:00Z")
    for _ in range(3):
        first.stubs["runtime"].add_client_error("invoke_endpoint", "ThrottlingException", "Rate exceeded", http_status_code=400)
    first.notified(f"{ENDPOINT}: first version v3 could not be checked; still serving")
    event = _in_service()
    event["detail"]["LastModifiedTime"] = 1796551200000.0  # 2026-12-06T10:00Z, three days after the creation
    decision = first.run(event)
    assert calls == [] and decision["outcome"] == "unverified"
    assert decision["reason"].startswith(f"version 3 answered none of 3 calls to {ENDPOINT} (answers: none; last error:")
    assert first.pauses == [5.0, 20.0]  # the README states them


def test_an_autoscaling_update_of_a_first_version_that_matches_stays_quiet(first):
    first.serving(parity=_parity(), last_modified="2026-12-06T10:00:00Z")
    first.answers(_answer("3"))
    event = _in_service()
    event["detail"]["LastModifiedTime"] = 1796551200000.0
    assert first.run(event)["outcome"] == "passed"


def test_a_check_that_fails_before_it_knows_the_version_pages_without_a_command(first):
    """DescribeEndpoint failing: the version is unknown, so the notice proposes no command; nothing is changed."""
    first.stubs["sagemaker"].add_client_error("describe_endpoint", "ThrottlingException", "slow down",
                                              expected_params={"EndpointName": ENDPOINT})
    first.notified(f"{ENDPOINT}: first version v? could not be checked; still serving")
    decision = first.run(_in_service())
    assert decision["outcome"] == "unverified"
    assert decision["decide"].startswith(f"{ENDPOINT} keeps serving and nothing was changed: the check failed before")


@pytest.mark.parametrize(("setup", "reason"), [
    ({"status": "Updating"}, f"{ENDPOINT} is Updating now: an update has its own bake"),
    ({"config_created": "2026-12-04T08:00:00Z"},
     f"{ENDPOINT} serves {CONFIG}, made after the endpoint: its rollout's bake was checked"),
    ({"approval": "Rejected"}, "v3 is Rejected: that decision stands"),
    ({"approved": "2026-12-03T11:00:00Z"}, f"v3 was approved again after {ENDPOINT} was created: that decision stands"),
])
def test_an_endpoint_in_service_with_no_unchecked_first_version_is_ignored_without_a_verdict(first, setup, reason):
    """A finished rollout (a config younger than the endpoint), an update under way, a version rejected since (by the
    approver) or approved again after the endpoint was created (a person accepting it): nothing is invoked, published
    or told. An autoscaling update keeps the config, so it is not among these: see the autoscaling tests above."""
    first.serving(**setup)
    decision = first.run(_in_service())
    assert decision["outcome"] == "ignored" and decision["reason"] == reason


@pytest.mark.parametrize("event", [_in_service(endpoint="mlops-loop-prod-other"), _in_service(status="CREATING"),
                                   _in_service(status="UPDATING"), {"detail-type": ENDPOINT_EVENT, "detail": None}])
def test_state_changes_of_other_endpoints_or_to_other_states_are_ignored_without_any_call(first, event):
    assert first.run(event)["outcome"] == "ignored"


def test_the_api_spelling_of_in_service_is_taken_too(first):
    first.serving(approval="Rejected")
    assert first.run(_in_service(status="InService"))["reason"] == "v3 is Rejected: that decision stands"
