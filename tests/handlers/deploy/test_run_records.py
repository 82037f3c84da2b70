"""Run records (pipeline_code/handlers/deploy/run_records.py): the pipeline run of an approved version kept write-once,
at its approval, at its execution's end (record-execution) or by hand (record-run), against moto
(tests/support/deploy_handler.py, tests/support/pipeline_runs.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto.core import DEFAULT_ACCOUNT_ID

from pipeline_code.core import integrity
from pipeline_code.core.contract import package_created
from pipeline_code.handlers import deploy_on_approval as dod
from pipeline_code.handlers.deploy import ledger as dod_ledger
from pipeline_code.handlers.deploy import run_records as dod_runs
from pipeline_code.handlers.deploy import settings as dod_settings
from tests.support.deploy_handler import (
    ARTIFACTS,
    GROUP,
    OTHER_GROUP,
    REGION,
    SECOND_EXECUTION,
    decide,
    execution_ended,
    kept,
    register,
    register_run,
    run,
    state_change,
    v1_recorded_at_its_approval,
)
from tests.support.pipeline_runs import DEFINITION, ENDED, EXECUTION, PARAMETERS_RAN, STARTED, STEPS, execution


# --- run records: the pipeline run of an approved version, kept write-once (APPROVAL_LEDGER's bucket) ---------------
# SageMaker deletes a pipeline's executions with the pipeline, so the handler copies the execution that registered an
# approved version (its definition, parameters and steps) to run-records/<model>/. The four execution reads are answered
# by tests.support.pipeline_runs (moto has no ListPipelineExecutionSteps and no execution of a package it did not run).


def test_an_approval_keeps_the_run_of_the_version_once_with_a_digest(runs, ledger):
    """GIVEN v1 registered by an execution that has ended WHEN it is approved and deployed THEN one run record below
    run-records/churn/1/<package creation time>/ holds the execution, the definition it ran (and its sha256), its
    parameters and its steps, with a digest the audit checks; the decision names it."""
    aws = ledger
    v1 = register_run(aws)
    decide(aws, v1, "Approved", why="QA passed")

    decision = run(aws, state_change(v1))

    assert decision["deployed"] is True
    created = package_created(aws.sagemaker.describe_model_package(ModelPackageName=v1)["CreationTime"])
    key = f"run-records/churn/1/{created}/run-record.json"
    ((written, body),) = kept(aws).items()
    assert written == key
    record = integrity.parse_run_record(body)
    (result,) = decision["run_records"]
    assert result == {"version": 1, "package_arn": v1, "execution_arn": EXECUTION, "outcome": "recorded",
                      "reason": "v1's run record written", "key": f"s3://{ARTIFACTS}/{key}", "digest": record["digest"]}
    assert (record["group"], record["model"], record["version"], record["package_arn"], record["package_created"],
            record["execution_arn"]) == (GROUP, "churn", 1, v1, created, EXECUTION)
    assert record["definition"] == {"created": STARTED.isoformat(), "body": DEFINITION,
                                    "sha256": hashlib.sha256(DEFINITION.encode()).hexdigest()}
    assert record["parameters"] == PARAMETERS_RAN
    assert [s["StepName"] for s in record["steps"]] == ["Train"] and record["steps"][0]["EndTime"] == ENDED.isoformat()
    assert record["execution"]["PipelineExecutionStatus"] == "Succeeded"
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)"]


def test_a_retry_or_duplicate_event_leaves_the_first_record_as_written(runs, ledger):
    """GIVEN v1's run record kept WHEN the same approval is delivered again THEN the write is refused (If-None-Match)
    and the first record's bytes stay: the outcome is already-recorded, nobody is told."""
    aws = ledger
    v1, first = v1_recorded_at_its_approval(aws)

    again = run(aws, state_change(v1))

    assert [r["outcome"] for r in again["run_records"]] == ["already-recorded"]
    assert kept(aws) == first
    assert aws.notices() == []


def test_a_failed_snapshot_is_told_with_how_to_retry_and_the_deploy_goes_ahead(runs, ledger, caplog):
    """GIVEN the definition read is throttled WHEN v1 is approved THEN v1 is deployed all the same, nothing is
    written, the failure is logged and told to people with the command that retries it; the command then keeps it."""
    aws = ledger
    v1 = register_run(aws)
    decide(aws, v1, "Approved")
    runs.fail["DescribePipelineDefinitionForExecution"] = "ThrottlingException"
    caplog.set_level(logging.INFO, logger=dod.__name__)

    decision = run(aws, state_change(v1))

    assert decision["deployed"] is True and aws.parameters()["ChurnModelPackageArn"] == v1
    (result,) = decision["run_records"]
    assert result["outcome"] == "failed"
    assert result["reason"].startswith("v1's run record could not be read (DescribePipelineDefinitionForExecution): ")
    assert kept(aws) == {}
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)", f"{GROUP}: v1: run record not written"]
    (failed,) = [json.loads(r.getMessage()) for r in caplog.records if r.levelno == logging.ERROR]
    assert failed["run_record_failed"]["version"] == 1
    notice = dod_runs._run_record_notice(GROUP, result, "deploying")
    assert notice.endswith(f'to try now, invoke this function with {{"action": "record-run", "group": "{GROUP}", "version": 1}}.')

    del runs.fail["DescribePipelineDefinitionForExecution"]
    by_hand = run(aws, {"action": "record-run", "group": GROUP, "version": 1})

    assert by_hand["outcome"] == "recorded" and len(kept(aws)) == 1


def test_a_run_still_going_is_recorded_at_a_later_event_not_half_way(runs, ledger):
    """GIVEN an auto-approved v1 whose execution is still Executing WHEN its approval arrives THEN nothing is written
    (pending); once the run has ended, the settled stack's reconcile records it."""
    aws = ledger
    v1 = register_run(aws)
    decide(aws, v1, "Approved")
    runs.status = "Executing"

    decision = run(aws, state_change(v1))

    assert [r["outcome"] for r in decision["run_records"]] == ["pending"] and kept(aws) == {}
    runs.status = "Succeeded"
    settled = run(aws, {"action": "reconcile", "group": GROUP})
    assert [r["outcome"] for r in settled["run_records"]] == ["recorded"] and len(kept(aws)) == 1


def test_a_version_whose_execution_is_gone_is_said_to_be_lost(runs, ledger):
    """GIVEN v1's pipeline deleted (its executions with it) WHEN v1 is approved THEN the record is lost and people are
    told this version cannot be recorded any more; the deploy goes ahead."""
    aws = ledger
    v1 = register_run(aws)
    decide(aws, v1, "Approved")
    runs.fail["DescribePipelineExecution"] = "ResourceNotFound"

    decision = run(aws, state_change(v1))

    (result,) = decision["run_records"]
    assert result["outcome"] == "lost" and decision["deployed"] is True
    assert result["reason"].startswith(f"v1's run record cannot be written: its pipeline execution {EXECUTION} no longer "
                                       "exists (DescribePipelineExecution: ")
    assert dod_runs._run_record_notice(GROUP, result, "deploying").endswith(
        "This one cannot be recorded any more: the audit will say so for this version.")
    assert f"{GROUP}: v1: run record not written" in aws.notices()


def test_a_version_registered_outside_the_pipeline_has_no_run_to_record_and_nobody_is_told(ledger):
    """GIVEN v1 without GeneratedBy WHEN it is approved THEN no execution is read and nothing written, quietly."""
    aws = ledger
    v1 = register(aws)
    decide(aws, v1, "Approved")

    decision = run(aws, state_change(v1))

    (result,) = decision["run_records"]
    assert result["outcome"] == "no-execution" and kept(aws) == {}
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)"]


@pytest.mark.parametrize(("event", "reason"), [
    ({"action": "record-run", "group": "nope", "version": 1},
     "field 'group' must name a model package group of this function (mlops-loop-prod-churn, mlops-loop-prod-credit-risk), got 'nope'"),
    ({"action": "record-run", "group": GROUP, "version": "1"}, "field 'version' must be a version number, got '1'"),
    ({"action": "record-run", "group": GROUP, "version": 9}, f"{GROUP} has no version 9"),
])
def test_a_malformed_record_run_request_is_returned_not_raised(ledger, event, reason):
    assert run(ledger, event)["reason"] == reason


def test_record_run_makes_exactly_the_four_reads_and_one_conditional_write():
    """GIVEN botocore Stubbers WHEN one version is recorded THEN the calls are the package, the execution, its
    definition, its parameters (every page) and steps, and one PutObject with If-None-Match to the package's key."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    arn = f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:model-package/{GROUP}/3"
    created = dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.timezone.utc)
    by_execution = {"PipelineExecutionArn": EXECUTION}
    with Stubber(sagemaker) as sm, Stubber(s3) as bucket:
        sm.add_response("describe_model_package", {"ModelPackageName": GROUP, "ModelPackageArn": arn, "CreationTime": created,
                                                   "ModelPackageStatus": "Completed",
                                                   "ModelPackageStatusDetails": {"ValidationStatuses": []},
                                                   "MetadataProperties": {"GeneratedBy": EXECUTION}},
                        {"ModelPackageName": arn})
        sm.add_response("describe_pipeline_execution", execution(), by_execution)
        sm.add_response("describe_pipeline_definition_for_execution", {"PipelineDefinition": DEFINITION}, by_execution)
        sm.add_response("list_pipeline_parameters_for_execution",
                        {"PipelineParameters": PARAMETERS_RAN[:1], "NextToken": "p2"}, by_execution)
        sm.add_response("list_pipeline_parameters_for_execution", {"PipelineParameters": PARAMETERS_RAN[1:]},
                        {**by_execution, "NextToken": "p2"})
        sm.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": STEPS},
                        {**by_execution, "SortOrder": "Ascending"})
        bucket.add_response("put_object", {}, {"Bucket": ARTIFACTS, "Key": "run-records/churn/3/20261120T060000Z/run-record.json",
                                               "Body": ANY, "IfNoneMatch": "*", "ContentType": "application/json"})
        result = dod_runs.record_run(dod_ledger.Ledger(bucket=ARTIFACTS, models={GROUP: "churn"}), GROUP, 3, arn,
                                     sagemaker=sagemaker, s3=s3)
        sm.assert_no_pending_responses()
        bucket.assert_no_pending_responses()
    assert result["outcome"] == "recorded"


# --- the end of a pipeline execution records the version it registered (record-execution) ---------------------------
# A version approved at registration (auto-approval) has an execution still running - the model card step runs after
# Register - so its approval event is pending; when its serving update settles before the run ends (a multi-model switch,
# batch, a quick serverless update) so is the reconcile, and no later event names it. The rule on the execution's end
# sends {"action": "record-execution", ...} (the construct's input transformer).


def test_a_version_approved_while_its_run_went_on_is_recorded_when_the_run_ends(runs, ledger, caplog):
    """GIVEN v1 auto-approved at registration while its execution is Executing, its approval event and the settled
    stack's reconcile both pending, and v2 (another execution) approved the next day WHEN v1's execution-end event
    arrives THEN v1's run record is kept, under v1's key, naming v1's execution; pending was logged, nobody was told of
    it; v2 is recorded as before (the reviewer's scenario, which left v1 with no record)."""
    aws = ledger
    caplog.set_level(logging.INFO, logger=dod.__name__)
    v1 = register_run(aws)
    decide(aws, v1, "Approved")
    runs.status = "Executing"
    approval = run(aws, state_change(v1))
    settled = run(aws, {"action": "reconcile", "group": GROUP})
    assert [r["outcome"] for r in approval["run_records"] + settled["run_records"]] == ["pending", "pending"]
    pending = [json.loads(r.getMessage())["run_record_pending"] for r in caplog.records
               if r.getMessage().startswith('{"run_record_pending"')]
    assert [p["version"] for p in pending] == [1, 1]
    assert pending[0]["reason"] == ("its pipeline execution is Executing: the run record is written once it has ended "
                                    "(at the execution's end event)")
    assert aws.notices() == [f"{GROUP}: deploying v1 (was no endpoint)"]
    runs.status = "Succeeded"

    ended = run(aws, execution_ended())

    created = package_created(aws.sagemaker.describe_model_package(ModelPackageName=v1)["CreationTime"])
    key = f"run-records/churn/1/{created}/run-record.json"
    assert ended["outcome"] == "recorded" and ended["key"] == f"s3://{ARTIFACTS}/{key}"
    assert (ended["group"], ended["version"], ended["package_arn"], ended["execution_arn"]) == (GROUP, 1, v1, EXECUTION)
    assert integrity.parse_run_record(kept(aws)[key])["execution_arn"] == EXECUTION
    assert aws.notices() == []
    v2 = register_run(aws, SECOND_EXECUTION)
    decide(aws, v2, "Approved")
    assert [r["outcome"] for r in run(aws, state_change(v2))["run_records"]] == ["recorded"]
    assert sorted(k.split("/")[2] for k in kept(aws)) == ["1", "2"]


def test_the_end_of_a_run_whose_version_awaits_a_person_records_nothing(runs, ledger):
    """GIVEN v1 registered PendingManualApproval by the execution WHEN the execution ends THEN nothing is written and
    nobody told (not-approved): its approval event records it once a person approves it."""
    aws = ledger
    v1 = register_run(aws)

    ended = run(aws, execution_ended())

    assert (ended["outcome"], ended["version"], ended["package_arn"]) == ("not-approved", 1, v1)
    assert ended["reason"] == "v1 is PendingManualApproval: its run record is written when it is approved (its approval event)"
    assert kept(aws) == {} and aws.notices() == []
    decide(aws, v1, "Approved")
    assert [r["outcome"] for r in run(aws, state_change(v1))["run_records"]] == ["recorded"]


def test_the_end_of_a_run_already_recorded_leaves_its_record_as_written(runs, ledger):
    """GIVEN v1 approved after its run ended (recorded at its approval event) WHEN the execution-end event arrives (or
    arrives twice) THEN the write is refused and the first record's bytes stay: already-recorded, nobody told."""
    aws = ledger
    v1, first = v1_recorded_at_its_approval(aws)

    outcomes = [run(aws, execution_ended())["outcome"] for _ in range(2)]

    assert outcomes == ["already-recorded", "already-recorded"]
    assert kept(aws) == first and aws.notices() == []


def test_the_end_of_a_run_that_registered_no_version_records_nothing_quietly(runs, ledger):
    """GIVEN the group's only version registered by another execution WHEN an execution that registered none (its gate
    refused the candidate) ends THEN no package is taken for its own, nothing is written, nobody is told."""
    aws = ledger
    v1 = register_run(aws, SECOND_EXECUTION)
    decide(aws, v1, "Approved")

    ended = run(aws, execution_ended(status="Failed"))

    assert ended["outcome"] == "no-version" and "version" not in ended
    assert kept(aws) == {} and aws.notices() == []


def test_the_end_of_a_run_whose_record_cannot_be_read_is_told_with_how_to_retry(runs, ledger, caplog):
    """GIVEN v1 approved at registration and its definition read throttled at the execution's end WHEN the end event
    arrives THEN nothing is written, the failure is logged and told with the record-run command (no later event may name
    v1); the command then keeps it."""
    aws = ledger
    v1 = register_run(aws)
    decide(aws, v1, "Approved")
    runs.fail["DescribePipelineDefinitionForExecution"] = "ThrottlingException"
    caplog.set_level(logging.INFO, logger=dod.__name__)

    ended = run(aws, execution_ended())

    assert ended["outcome"] == "failed" and kept(aws) == {}
    assert aws.notices() == [f"{GROUP}: v1: run record not written"]
    (failed,) = [json.loads(r.getMessage()) for r in caplog.records if r.levelno == logging.ERROR]
    assert failed["run_record_failed"]["version"] == 1
    notice = dod_runs._run_record_notice(GROUP, ended)
    assert "The decision itself went ahead" not in notice
    assert notice.endswith(f'to try now, invoke this function with {{"action": "record-run", "group": "{GROUP}", "version": 1}}.')
    del runs.fail["DescribePipelineDefinitionForExecution"]
    assert run(aws, {"action": "record-run", "group": GROUP, "version": 1})["outcome"] == "recorded"


def test_the_end_of_a_run_whose_execution_is_already_gone_is_told_with_how_to_find_and_record_the_version(runs, ledger):
    """GIVEN the execution deleted before its end event is handled (its pipeline removed) WHEN the event arrives THEN no
    version can be found: the outcome is lost, and people are told how to find the version and record it by hand."""
    aws = ledger
    runs.fail["DescribePipelineExecution"] = "ResourceNotFound"

    ended = run(aws, execution_ended())

    assert (ended["outcome"], ended["version"], ended["group"]) == ("lost", None, GROUP)
    assert ended["reason"].startswith(f"the version execution {EXECUTION} registered in {GROUP} could not be found "
                                      "(DescribePipelineExecution): ")
    assert aws.notices() == [f"{GROUP}: run record not written"]


@pytest.mark.parametrize(("event", "outcome", "reason"), [
    ({"action": "record-execution", "execution": "run0001"}, "malformed",
     "field 'execution' must be a pipeline execution ARN, got 'run0001'"),
    ({"action": "record-execution"}, "malformed", "field 'execution' must be a pipeline execution ARN, got None"),
    # A pasted ARN with its newline, or a space in it: malformed before any AWS call, not a failed
    # DescribePipelineExecution.
    *[({"action": "record-execution", "execution": arn}, "malformed",
       f"field 'execution' must be a pipeline execution ARN, got {arn!r}")
      for arn in (f"{EXECUTION}\n", EXECUTION.replace("/execution/", "/execution/ "),
                  EXECUTION.replace("/execution/", " /execution/"))],
    (execution_ended(f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:pipeline/someone-elses/execution/x1"), "ignored",
     "pipeline someone-elses does not train a model of this function (mlops-loop-prod-churn, mlops-loop-prod-credit-risk)"),
])
def test_a_record_execution_request_not_for_this_function_is_returned_not_raised(runs, ledger, event, outcome, reason):
    decision = run(ledger, event)
    assert (decision["outcome"], decision["reason"]) == (outcome, reason)
    assert runs.calls == [] and ledger.notices() == []


def test_record_execution_finds_the_version_among_those_created_after_the_run_started():
    """GIVEN botocore Stubbers and an execution ARN in lower case WHEN its end is recorded THEN the calls are the
    execution (its start), the group's versions created after it (newest first), each described until the one whose
    GeneratedBy is the execution (case aside), then that version's record (record_run's reads and one conditional write)."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    package = lambda n: f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:model-package/{GROUP}/{n}"  # noqa: E731
    created = dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.timezone.utc)
    lower = EXECUTION.lower()
    by_execution = {"PipelineExecutionArn": EXECUTION}

    def described(n: int, generated_by: str) -> dict:
        return {"ModelPackageName": GROUP, "ModelPackageGroupName": GROUP, "ModelPackageVersion": n,
                "ModelPackageArn": package(n), "CreationTime": created, "ModelPackageStatus": "Completed",
                "ModelApprovalStatus": "Approved", "ModelPackageStatusDetails": {"ValidationStatuses": []},
                "MetadataProperties": {"GeneratedBy": generated_by}}

    with Stubber(sagemaker) as sm, Stubber(s3) as bucket:
        sm.add_response("describe_pipeline_execution", execution(), {"PipelineExecutionArn": lower})
        sm.add_response("list_model_packages", {"ModelPackageSummaryList": [
            {"ModelPackageGroupName": GROUP, "ModelPackageVersion": n, "ModelPackageArn": package(n),
             "CreationTime": created, "ModelPackageStatus": "Completed"} for n in (4, 3)]},
            {"ModelPackageGroupName": GROUP, "ModelPackageType": "Versioned", "CreationTimeAfter": STARTED,
             "SortBy": "CreationTime", "SortOrder": "Descending"})
        sm.add_response("describe_model_package", described(4, SECOND_EXECUTION), {"ModelPackageName": package(4)})
        sm.add_response("describe_model_package", described(3, EXECUTION), {"ModelPackageName": package(3)})
        sm.add_response("describe_model_package", described(3, EXECUTION), {"ModelPackageName": package(3)})
        sm.add_response("describe_pipeline_execution", execution(), by_execution)
        sm.add_response("describe_pipeline_definition_for_execution", {"PipelineDefinition": DEFINITION}, by_execution)
        sm.add_response("list_pipeline_parameters_for_execution", {"PipelineParameters": PARAMETERS_RAN}, by_execution)
        sm.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": STEPS},
                        {**by_execution, "SortOrder": "Ascending"})
        bucket.add_response("put_object", {}, {"Bucket": ARTIFACTS, "Key": "run-records/churn/3/20261120T060000Z/run-record.json",
                                               "Body": ANY, "IfNoneMatch": "*", "ContentType": "application/json"})
        result = dod_runs.record_execution(dod_ledger.Ledger(bucket=ARTIFACTS, models={GROUP: "churn"}),
                                           execution_ended(lower), sagemaker=sagemaker, s3=s3, notifier=lambda group: None)
        sm.assert_no_pending_responses()
        bucket.assert_no_pending_responses()
    assert (result["outcome"], result["version"], result["group"]) == ("recorded", 3, GROUP)


def test_a_record_changed_after_it_was_written_does_not_parse():
    record = {"schema": integrity.RUN_RECORD_SCHEMA, **{k: None for k in integrity.RUN_RECORD_REQUIRED if k != "schema"},
              "version": 1, "parameters": [{"Name": "MinAuc", "Value": "0.75"}]}
    record["digest"] = integrity.run_record_digest(record)
    assert integrity.parse_run_record(json.dumps(record).encode())["version"] == 1
    record["parameters"][0]["Value"] = "0.5"
    with pytest.raises(ValueError, match=r"^its content hashes to sha256:[0-9a-f]{64}, not the digest 'sha256:"):
        integrity.parse_run_record(json.dumps(record).encode())


@pytest.mark.parametrize(
    ("value", "fix"),
    [
        ("{", "APPROVAL_LEDGER is not JSON"),
        (json.dumps({"bucket": ARTIFACTS}), "exactly the fields bucket and group_prefix"),
        (json.dumps({"bucket": "No_Bucket", "group_prefix": "mlops-loop-prod-"}), "APPROVAL_LEDGER.bucket must be an S3 bucket name"),
        (json.dumps({"bucket": ARTIFACTS, "group_prefix": "mlops-loop-prod-ch"}),
         f"APPROVAL_LEDGER.group_prefix 'mlops-loop-prod-ch' does not name group '{OTHER_GROUP}' of MODEL_PARAMETERS"),
    ],
)
def test_a_misconfigured_ledger_fails_loudly_naming_the_fix(aws, monkeypatch, value, fix):
    monkeypatch.setenv("APPROVAL_LEDGER", value)
    with pytest.raises(dod_settings.ConfigurationError, match=re.escape(fix)):
        run(aws, {"action": "reconcile", "group": GROUP})


def test_every_part_of_the_deploy_handler_logs_at_info_under_lambdas_warning_default():
    """Lambda's Python logging drops INFO (its root logger is at WARNING): the entry point's logger and each part's
    (``run_record_pending``, a run record kept once the execution ends, is INFO) are set to INFO, or the parts' lines
    would be lost since they left the entry point's module for pipeline_code.handlers.deploy.*."""
    import importlib
    import pkgutil

    import pipeline_code.handlers.deploy as parts

    modules = [dod] + [importlib.import_module(f"{parts.__name__}.{m.name}") for m in pkgutil.iter_modules(parts.__path__)]
    loggers = [m.LOG for m in modules if isinstance(getattr(m, "LOG", None), logging.Logger)]
    assert dod_runs.LOG in loggers and len(loggers) >= 4
    assert {lg.name: lg.getEffectiveLevel() for lg in loggers if lg.getEffectiveLevel() > logging.INFO} == {}
