"""The approval ledger (pipeline_code/handlers/deploy/ledger.py): every decision of the deploy handler about a
version, recorded write-once, against moto (tests/support/deploy_handler.py)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re

import boto3
from botocore.stub import Stubber

from pipeline_code.core import integrity
from pipeline_code.core.contract import package_created
from pipeline_code.handlers import deploy_on_approval as dod
from pipeline_code.handlers.deploy import ledger as dod_ledger
from pipeline_code.handlers.deploy import notices as dod_notices
from pipeline_code.handlers.deploy import settings as dod_settings
from tests.support.deploy_handler import (
    APPROVER,
    ARTIFACTS,
    GROUP,
    PARAMETERS,
    REGION,
    STACK,
    decide,
    deploy_and_fail,
    digests,
    evaluation_reports,
    records,
    register,
    run,
    set_approval,
    state_change,
)


# --- the approval ledger (APPROVAL_LEDGER) ---------------------------------------------------------------
# moto's DescribeModelPackage names a made-up Studio user as LastModifiedBy; the approver's IAM identity, which
# SageMaker records for model packages (UserContext.IamIdentity), is set in moto's backend.


def test_an_approval_is_recorded_once_with_who_why_and_what_the_handler_set(ledger):
    """GIVEN the ledger WHEN alice approves v1 with a reason and the handler deploys it THEN one record below
    approval-ledger/churn/1/ holds the approval, her identity, the reason, the event and what the handler set on
    which stack - in a format the audit reads back - and the decision names it."""
    aws = ledger
    v1 = register(aws)
    decide(aws, v1, "Approved", why="QA passed; CHG-1234")

    decision = run(aws, state_change(v1))

    (key,) = records(aws)
    assert decision["ledger"] == {"key": f"s3://{ARTIFACTS}/{key}"}
    # filed below the package's creation time: a group created again restarts at v1 under the same ARN
    created = package_created(aws.sagemaker.describe_model_package(ModelPackageName=v1)["CreationTime"])
    assert re.fullmatch(rf"approval-ledger/churn/1/{created}/\d{{8}}T\d{{6}}\.\d{{6}}Z-approved-[0-9a-f]{{8}}\.json", key)
    record = integrity.parse_ledger_record(records(aws)[key])
    assert (record["group"], record["model"], record["version"], record["package_arn"], record["package_created"],
            record["trigger"]) == (GROUP, "churn", 1, v1, created, "state-change")
    assert integrity.ledger_record_package(record) == (v1, created)
    assert record["package"]["ModelApprovalStatus"] == "Approved"
    assert record["package"]["ApprovalDescription"] == "QA passed; CHG-1234"
    assert record["package"]["principal"] == APPROVER
    assert record["event"]["id"] == "event-1-Approved" and record["event"]["detail"]["ModelApprovalStatus"] == "Approved"
    assert record["decision"]["outcome"] == "deploying" and record["decision"]["stack"] == STACK
    assert record["decision"]["set"] == {"ChurnModelPackageArn": v1, "ChurnModelSha256": digests(aws, v1)["model_sha256"]}


def test_a_second_identical_event_gets_its_own_record_and_the_first_is_kept_as_written(ledger):
    """GIVEN v1's approval recorded WHEN SageMaker delivers the same event again THEN a second record is added
    (that delivery's decision: unchanged) and the first record's bytes are as they were."""
    aws = ledger
    v1 = register(aws)
    decide(aws, v1, "Approved", why="first look")
    event = state_change(v1)
    run(aws, event)
    (first_key, first), = records(aws).items()

    again = run(aws, dict(event))

    assert again["outcome"] == "unchanged"
    written = records(aws, 1)
    assert len(written) == 2 and written[first_key] == first
    (second,) = [body for key, body in written.items() if key != first_key]
    assert integrity.parse_ledger_record(second)["decision"]["outcome"] == "unchanged"


def test_a_record_is_never_written_over_another(ledger, monkeypatch):
    """GIVEN a record at the key a new record would take (same time, same nonce) WHEN the handler records THEN the
    conditional write is refused (412) and the record goes under a new nonce; the existing one is untouched."""
    aws = ledger
    v1 = register(aws)
    decide(aws, v1, "Approved", why="why")
    at = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
    created = package_created(aws.sagemaker.describe_model_package(ModelPackageName=v1)["CreationTime"])
    taken = integrity.ledger_key("churn", 1, at, "Approved", "aaaaaaaa", created)
    aws.s3.put_object(Bucket=ARTIFACTS, Key=taken, Body=b"an earlier record")
    nonces = iter(["aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr(dod_ledger.secrets, "token_hex", lambda _n: next(nonces))
    decision = {"group": GROUP, "event": {"id": "e", "version": 1, "approval": "Approved"}, "outcome": "unchanged"}

    entry = dod_ledger.record_decision(dod_settings.ledger_setting(os.environ["APPROVAL_LEDGER"], PARAMETERS), state_change(v1), decision,
                                       sagemaker=aws.sagemaker, s3=aws.s3, notify=dod_notices.Notifier(None, None, GROUP), now=at)

    assert entry == {"key": f"s3://{ARTIFACTS}/{taken.replace('aaaaaaaa', 'bbbbbbbb')}"}
    assert records(aws, 1)[taken] == b"an earlier record"


def test_a_re_created_groups_v1_is_recorded_beside_the_old_lifes_v1_records_never_over_them(ledger, monkeypatch):
    """GIVEN records of the v1 of the group's earlier life (one naming its package's 2025 creation, one from before
    records named it) at the very key names today's v1 would take (same time, same nonce) WHEN today's v1 is approved
    THEN its record goes below its own package's prefix on the first attempt, and the old records are as they were."""
    aws = ledger
    v1 = register(aws)
    decide(aws, v1, "Approved", why="today's v1")
    at = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
    old_lives = [integrity.ledger_key("churn", 1, at, "Approved", "aaaaaaaa", "20250301T095900Z"),
                 integrity.ledger_key("churn", 1, at, "Approved", "aaaaaaaa")]
    for key in old_lives:
        aws.s3.put_object(Bucket=ARTIFACTS, Key=key, Body=b"the old life's record")
    monkeypatch.setattr(dod_ledger.secrets, "token_hex", lambda _n: "aaaaaaaa")
    decision = {"group": GROUP, "event": {"id": "e", "version": 1, "approval": "Approved"}, "outcome": "unchanged"}

    entry = dod_ledger.record_decision(dod_settings.ledger_setting(os.environ["APPROVAL_LEDGER"], PARAMETERS), state_change(v1), decision,
                                       sagemaker=aws.sagemaker, s3=aws.s3, notify=dod_notices.Notifier(None, None, GROUP), now=at)

    created = package_created(aws.sagemaker.describe_model_package(ModelPackageName=v1)["CreationTime"])
    assert created != "20250301T095900Z"
    assert entry == {"key": f"s3://{ARTIFACTS}/{integrity.ledger_key('churn', 1, at, 'Approved', 'aaaaaaaa', created)}"}
    written = records(aws, 1)
    assert len(written) == 3 and all(written[key] == b"the old life's record" for key in old_lives)


def test_a_record_of_a_package_that_cannot_be_described_names_no_creation_time_and_files_below_the_version(ledger):
    """The audit cannot tell which package such a record is about, and says so (tests/cli/test_audit.py)."""
    aws = ledger
    v1 = register(aws)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    decision = {"group": GROUP, "event": {"id": "e", "version": 1, "approval": "Approved"}, "outcome": "unchanged"}
    at = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
    with Stubber(sagemaker) as stub:
        stub.add_client_error("describe_model_package", "ThrottlingException", "Rate exceeded", 400)
        entry = dod_ledger.record_decision(dod_settings.ledger_setting(os.environ["APPROVAL_LEDGER"], PARAMETERS), state_change(v1),
                                           decision, sagemaker=sagemaker, s3=aws.s3, notify=dod_notices.Notifier(None, None, GROUP), now=at)
    (key, body), = records(aws, 1).items()
    assert entry == {"key": f"s3://{ARTIFACTS}/{key}"}
    assert re.fullmatch(r"approval-ledger/churn/1/20270101T000000\.000000Z-approved-[0-9a-f]{8}\.json", key)
    record = integrity.parse_ledger_record(body)
    assert record["package_created"] is None and "Rate exceeded" in record["package"]["error"]
    assert integrity.ledger_record_package(record) == (v1, None)


def test_a_rollback_is_recorded_under_the_version_it_re_approves_with_the_rollback_description(ledger):
    """GIVEN v2 serving WHEN the rollback CLI re-approves v1 (the approver role cannot write the ledger: its two
    state changes are recorded by the handler) THEN v1's records hold both steps, its description naming who rolled
    back, and the second the redeployment of v1."""
    aws = ledger
    v1, v2 = register(aws), register(aws)
    decide(aws, v1, "Approved", why="first approval")
    run(aws, state_change(v1))
    decide(aws, v2, "Approved", why="second approval")
    run(aws, state_change(v2))

    decide(aws, v1, "PendingManualApproval", why=f"rollback to v1 by {APPROVER} at 2027-01-01T00:00:00Z (step 1 of 2)")
    run(aws, state_change(v1, approval="PendingManualApproval"))
    decide(aws, v1, "Approved", why=f"rollback to v1 by {APPROVER} at 2027-01-01T00:00:00Z")
    run(aws, state_change(v1))

    history = [integrity.parse_ledger_record(body) for body in records(aws, 1).values()]
    assert [(r["package"]["ModelApprovalStatus"], r["package"]["ApprovalDescription"], r["decision"]["outcome"]) for r in history] == [
        ("Approved", "first approval", "deploying"),
        ("PendingManualApproval", f"rollback to v1 by {APPROVER} at 2027-01-01T00:00:00Z (step 1 of 2)", "unchanged"),
        ("Approved", f"rollback to v1 by {APPROVER} at 2027-01-01T00:00:00Z", "deploying"),
    ]
    assert aws.parameters()["ChurnModelPackageArn"] == v1


def test_a_reconcile_that_changes_nothing_is_not_recorded_one_that_deploys_is(ledger):
    aws = ledger
    v1 = register(aws)
    decide(aws, v1, "Approved", why="why")

    deployed = run(aws, {"action": "reconcile", "group": GROUP})
    unchanged = run(aws, {"action": "reconcile", "group": GROUP})

    assert deployed["outcome"] == "deploying" and "key" in deployed["ledger"]
    assert unchanged["outcome"] == "unchanged" and "ledger" not in unchanged
    (body,) = records(aws, 1).values()
    assert integrity.parse_ledger_record(body)["trigger"] == "reconcile"


def test_a_fallback_past_a_refused_version_records_the_version_it_passed_over_and_why(ledger):
    """GIVEN v1 approved, v2 approved but refused (its gate failed) and v3 serving WHEN v3 is rejected and the handler
    deploys v1, passing over v2 THEN the rejection's record says so: v1 set, and v2 passed over with its reason (the
    ledger outlives the notice and the log)."""
    aws = ledger
    v1 = register(aws, metrics=evaluation_reports(aws))
    decide(aws, v1, "Approved")
    run(aws, state_change(v1))
    v2 = register(aws, metrics=evaluation_reports(aws, reasons=["auc 0.6100 < minimum 0.7000"], execution="run0002"))
    decide(aws, v2, "Approved")
    run(aws, state_change(v2))
    v3 = register(aws, metrics=evaluation_reports(aws, execution="run0003"))
    decide(aws, v3, "Approved")
    run(aws, state_change(v3))
    set_approval(aws, v3, "Rejected")

    decision = run(aws, state_change(v3, approval="Rejected"))

    assert decision["reason"] == "v3 -> v1"
    record = integrity.parse_ledger_record(records(aws)[decision["ledger"]["key"].removeprefix(f"s3://{ARTIFACTS}/")])
    assert record["decision"]["set"]["ChurnModelPackageArn"] == v1
    assert [(p["version"], p["reason"].split(":")[0]) for p in record["decision"]["passed_over"]] == [
        (2, "v2 refused")]
    assert "promotion gate failed (auc 0.6100 < minimum 0.7000)" in record["decision"]["passed_over"][0]["reason"]


def test_a_ledger_that_cannot_be_written_neither_stops_nor_hides_the_deployment(ledger, monkeypatch, caplog):
    """GIVEN a ledger bucket that refuses the write WHEN v1 is approved THEN v1 is deployed all the same, the
    decision names the error, the record is logged as an error and people are told, the record in the notice."""
    aws = ledger
    monkeypatch.setenv("APPROVAL_LEDGER", json.dumps({"bucket": "no-such-ledger-bucket", "group_prefix": "mlops-loop-prod-"}))
    v1 = register(aws)
    decide(aws, v1, "Approved", why="why")
    caplog.set_level(logging.INFO, logger=dod.__name__)

    decision = run(aws, state_change(v1))

    assert decision["deployed"] is True and aws.parameters()["ChurnModelPackageArn"] == v1
    assert "NoSuchBucket" in decision["ledger"]["error"]
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)", f"{GROUP}: v1: approval ledger not written"]
    (failed,) = [json.loads(r.getMessage()) for r in caplog.records if r.levelno == logging.ERROR]
    assert failed["record"]["package"]["ApprovalDescription"] == "why"


def _gate_failed_v2_behind_serving_v1(aws) -> str:
    """GIVEN v1 serving and v2, approved last, refused by its gate at its approval (the state change recorded): v2's ARN."""
    v1 = register(aws, metrics=evaluation_reports(aws))
    decide(aws, v1, "Approved")
    run(aws, state_change(v1))
    v2 = register(aws, metrics=evaluation_reports(aws, reasons=["auc 0.6100 < minimum 0.7000"], execution="run0002"))
    decide(aws, v2, "Approved", why="first approval")
    assert run(aws, state_change(v2))["outcome"] == "refused"
    return v2


def _reconcile_records(aws, version: int) -> list:
    return [(key, integrity.parse_ledger_record(body)) for key, body in records(aws, version).items()
            if integrity.parse_ledger_record(body)["trigger"] == "reconcile"]


def test_a_refusal_met_again_by_every_reconcile_is_recorded_once_saying_when_it_was_first_refused(ledger):
    """GIVEN v2, approved last, refused by its gate WHEN the serving stack settles again and again (every rollout of any
    model, the hourly reconcile: each reconciles the group and meets the same refusal) THEN v2 has one reconcile record of
    that refusal, saying when it was first refused, and each later decision names that record instead of adding a
    copy. Before, every reconcile appended one more copy."""
    aws = ledger
    v2 = _gate_failed_v2_behind_serving_v1(aws)
    decisions = [run(aws, {"action": "reconcile", "group": GROUP}) for _ in range(3)]

    assert [d["outcome"] for d in decisions] == ["refused"] * 3
    ((key, record),) = _reconcile_records(aws, 2)
    assert record["decision"]["outcome"] == "refused" and record["package_arn"] == v2
    assert record["decision"]["first_refused_at"] == record["recorded_at"]
    assert [d["ledger"]["key"] for d in decisions] == [f"s3://{ARTIFACTS}/{key}"] * 3
    assert [d["ledger"].get("recorded_before") for d in decisions] == [None, True, True]
    # the approval's own state change is recorded as ever: one state-change record beside it
    assert [integrity.parse_ledger_record(b)["trigger"] for b in records(aws, 2).values()].count("state-change") == 1


def test_a_new_decision_about_a_refused_version_is_recorded_again(ledger):
    """GIVEN v2's refusal recorded once WHEN someone approves v2 again (a new decision, still refused by its gate) and the
    stack settles again THEN the re-approval's state change and the refusal of that new approval are both recorded: the
    once-only record is per approval decision and reason, not per version."""
    aws = ledger
    v2 = _gate_failed_v2_behind_serving_v1(aws)
    run(aws, {"action": "reconcile", "group": GROUP})
    decide(aws, v2, "Approved", why="second approval")
    run(aws, state_change(v2))
    run(aws, {"action": "reconcile", "group": GROUP})
    run(aws, {"action": "reconcile", "group": GROUP})

    refusals = _reconcile_records(aws, 2)
    assert [r["package"]["ApprovalDescription"] for _, r in refusals] == ["first approval", "second approval"]
    assert [integrity.parse_ledger_record(b)["trigger"] for b in records(aws, 2).values()].count("state-change") == 2


def test_a_held_version_met_again_by_every_reconcile_is_recorded_once(ledger):
    """GIVEN v2's rollout rolled back (v2 held, v1 serving again) WHEN the stack settles again and again THEN one
    reconcile record of the hold, saying when it was first held, which every later decision names."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    aws = ledger
    v1, v2 = register(aws), register(aws)
    deploy_and_fail(aws, v1, v2)
    cloudformation_backends[DEFAULT_ACCOUNT_ID][REGION].get_stack(STACK).status = "UPDATE_COMPLETE"
    decisions = [run(aws, {"action": "reconcile", "group": GROUP}) for _ in range(3)]

    assert [d["outcome"] for d in decisions] == ["held"] * 3
    held = [(k, r) for k, r in _reconcile_records(aws, 2) if r["decision"]["outcome"] == "held"]
    ((key, record),) = held
    assert record["decision"]["first_held_at"] == record["recorded_at"]
    assert {d["ledger"]["key"] for d in decisions} == {f"s3://{ARTIFACTS}/{key}"}


def _conflicting_once(aws, monkeypatch, conflicts: int) -> list:
    """S3 answers the first ``conflicts`` writes of a reconcile's once-only record with 409 ConditionalRequestConflict (a
    conflicting operation on that key was under way: S3 says retry, the object is not written), then writes as usual.
    Returns the keys of the writes it refused."""
    from botocore.exceptions import ClientError

    real, refused = aws.s3.put_object, []

    def put_object(**kwargs):
        if "-reconcile-refused-" in kwargs["Key"] and len(refused) < conflicts:
            refused.append(kwargs["Key"])
            raise ClientError({"Error": {"Code": "ConditionalRequestConflict", "Message": "A conflicting conditional "
                               "operation is currently in progress against this resource. Please try again."},
                               "ResponseMetadata": {"HTTPStatusCode": 409}}, "PutObject")
        return real(**kwargs)

    monkeypatch.setattr(aws.s3, "put_object", put_object)
    monkeypatch.setattr(dod_ledger, "LEDGER_CONFLICT_WAIT_SECONDS", 0.0, raising=False)
    return refused


def test_a_refusal_whose_once_only_write_meets_a_conflict_is_retried_and_recorded(ledger, monkeypatch):
    """GIVEN v2 refused WHEN the first reconcile's write of its once-only record gets 409 ConditionalRequestConflict (S3:
    a conflicting operation was under way, retry; nothing was written) THEN the handler writes it again and the refusal
    is recorded: a 409 is not a 412, it does not mean an earlier reconcile recorded it. Before, the 409 was taken for
    'recorded before' and the refusal was recorded nowhere."""
    aws = ledger
    _gate_failed_v2_behind_serving_v1(aws)
    refused = _conflicting_once(aws, monkeypatch, conflicts=1)

    decision = run(aws, {"action": "reconcile", "group": GROUP})

    ((key, record),) = _reconcile_records(aws, 2)
    assert refused == [key]
    assert decision["ledger"] == {"key": f"s3://{ARTIFACTS}/{key}"}
    assert record["decision"]["outcome"] == "refused"


def test_a_once_only_write_that_keeps_conflicting_is_told_with_the_record(ledger, monkeypatch):
    """GIVEN v2 refused WHEN every write of its once-only record gets 409 THEN the decision names the error and people are
    told, the record in the notice (as for any ledger write that fails), not 'recorded before'."""
    aws = ledger
    _gate_failed_v2_behind_serving_v1(aws)
    aws.notices()
    _conflicting_once(aws, monkeypatch, conflicts=dod_ledger.LEDGER_ATTEMPTS)

    decision = run(aws, {"action": "reconcile", "group": GROUP})

    assert _reconcile_records(aws, 2) == []
    assert "ConditionalRequestConflict" in decision["ledger"]["error"] and "recorded_before" not in decision["ledger"]
    assert aws.notices() == [f"{GROUP}: v2: approval ledger not written"]


def test_a_refusal_of_a_version_no_call_updated_is_recorded_once_too(ledger, monkeypatch):
    """GIVEN v2, refused, described without LastModifiedTime (a version approved at registration, training.auto_approve,
    that no call updated since: the registry then takes its CreationTime as the approval's time,
    approval.approval_time) WHEN the stack settles again and again THEN one reconcile record of that refusal, as for a
    version approved by hand. Before, such a version got no once-only key and every reconcile appended a copy."""
    aws = ledger
    v2 = _gate_failed_v2_behind_serving_v1(aws)
    described = dod_ledger._package_record

    def never_updated(sagemaker, arn):
        package = described(sagemaker, arn)
        if arn == v2:
            package.pop("LastModifiedTime", None)
            package.pop("LastModifiedBy", None)
        return package

    monkeypatch.setattr(dod_ledger, "_package_record", never_updated)
    decisions = [run(aws, {"action": "reconcile", "group": GROUP}) for _ in range(3)]

    assert [d["outcome"] for d in decisions] == ["refused"] * 3
    ((key, record),) = _reconcile_records(aws, 2)
    assert "LastModifiedTime" not in record["package"]
    assert [d["ledger"].get("recorded_before") for d in decisions] == [None, True, True]
    # filed at the approval's time, which for a version never updated is its registration
    created = aws.sagemaker.describe_model_package(ModelPackageName=v2)["CreationTime"].astimezone(dt.timezone.utc)
    assert integrity.ledger_key_time(key) == created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
