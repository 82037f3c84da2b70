"""The one rule for which version serves (and so is the champion): Approved + Completed, approved last, ties to
the higher version - and its registry reading (every page, each Approved version described; botocore Stubber)."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.stub import Stubber

from pipeline_code.core import approval

GROUP = "mlops-loop-prod-any-model"
ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/{group}/{n}"
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
PLACE = approval.ReportPlace(model="any-model", bucket="mlops-loop-prod-artifacts")


def _standing(version, approved_at, approval_status="Approved", status="Completed"):
    return approval.Standing(version, approval_status, status, approved_at)


def test_the_version_approved_last_serves_not_the_newest():
    """GIVEN v1 approved after v2 (a rollback re-approved it) THEN v1 serves; v2 is next in line."""
    versions = [_standing(1, T0 + dt.timedelta(hours=2)), _standing(2, T0 + dt.timedelta(hours=1)),
                _standing(3, T0 + dt.timedelta(hours=3), approval_status="PendingManualApproval")]
    assert approval.select(versions, lambda s: s).version == 1
    assert [s.version for s in approval.serving_order(versions, lambda s: s)] == [1, 2]


def test_a_tie_on_the_approval_time_goes_to_the_higher_version():
    versions = [_standing(4, T0), _standing(7, T0), _standing(5, T0)]
    assert [s.version for s in approval.serving_order(versions, lambda s: s)] == [7, 5, 4]


def test_only_approved_and_completed_versions_may_serve():
    later = T0 + dt.timedelta(days=1)
    versions = [_standing(1, T0), _standing(2, later, status="InProgress"), _standing(3, later, status="Failed"),
                _standing(4, later, approval_status="Rejected")]
    assert approval.select(versions, lambda s: s).version == 1
    assert approval.select(versions[1:], lambda s: s) is None
    assert approval.select([], lambda s: s) is None


def test_a_naive_approval_time_is_utc():
    """The local registry's records and a stub's answers may carry naive times: they compare as UTC."""
    naive_later = (T0 + dt.timedelta(seconds=1)).replace(tzinfo=None)
    assert approval.select([_standing(2, T0), _standing(1, naive_later)], lambda s: s).version == 1


def test_a_description_is_read_for_its_approval_time_creation_when_never_modified():
    described = {"ModelPackageVersion": 3, "ModelApprovalStatus": "Approved", "ModelPackageStatus": "Completed",
                 "CreationTime": T0}
    assert approval.standing_of(described) == _standing(3, T0)
    assert approval.standing_of({**described, "LastModifiedTime": T0 + dt.timedelta(hours=1)}).approved_at == T0 + dt.timedelta(hours=1)


# --- the registry: every page of Approved versions, each described ------------------------------------------


def _summary(n):
    return {"ModelPackageGroupName": GROUP, "ModelPackageVersion": n, "ModelPackageArn": ARN.format(group=GROUP, n=n),
            "CreationTime": T0 + dt.timedelta(minutes=n), "ModelPackageStatus": "Completed", "ModelApprovalStatus": "Approved"}


def _described(n, approved_at):
    return {**_summary(n), "ModelPackageName": GROUP, "LastModifiedTime": approved_at,
            "ModelPackageStatusDetails": {"ValidationStatuses": []}}


@pytest.fixture
def sagemaker():
    client = boto3.client("sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def s3():
    """An S3 client that answers nothing: these versions record no reports, so the gate check reads none."""
    client = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client):
        yield client


LISTING = {"ModelPackageGroupName": GROUP, "ModelPackageType": "Versioned", "ModelApprovalStatus": "Approved"}


def test_the_serving_package_is_found_on_a_later_page_after_a_rollback(sagemaker, s3):
    """GIVEN v1 re-approved (a rollback) after v2 and v3, listed on two pages
    WHEN the serving package is looked up THEN both pages are read, every Approved version is described, and v1 it is
    - ListModelPackages cannot sort by LastModifiedTime, so no page order could have found it."""
    client, stub = sagemaker
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": [_summary(3), _summary(2)], "NextToken": "page-2"},
                      LISTING)
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": [_summary(1)]}, {**LISTING, "NextToken": "page-2"})
    for n, approved_at in ((3, T0 + dt.timedelta(hours=3)), (2, T0 + dt.timedelta(hours=2)), (1, T0 + dt.timedelta(days=1))):
        stub.add_response("describe_model_package", _described(n, approved_at), {"ModelPackageName": ARN.format(group=GROUP, n=n)})
    found = approval.serving_package(client, GROUP, s3, place=PLACE)
    assert found["ModelPackageVersion"] == 1


def test_the_serving_package_on_a_tie_is_the_higher_version(sagemaker, s3):
    client, stub = sagemaker
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": [_summary(2), _summary(1)]}, LISTING)
    for n in (2, 1):
        stub.add_response("describe_model_package", _described(n, T0), {"ModelPackageName": ARN.format(group=GROUP, n=n)})
    assert approval.serving_package(client, GROUP, s3, place=PLACE)["ModelPackageVersion"] == 2


def test_a_group_without_approved_versions_has_no_serving_package(sagemaker, s3):
    client, stub = sagemaker
    stub.add_response("list_model_packages", {"ModelPackageSummaryList": []}, LISTING)
    assert approval.serving_package(client, GROUP, s3, place=PLACE) is None


# --------------------------------------------------------------------------------------
# The status a passing version is registered with
# --------------------------------------------------------------------------------------
CHANGE = "the champion is a binary_classification model, the challenger a multiclass_classification one"


@pytest.mark.parametrize("requested, change, registered", [
    (approval.APPROVED, None, approval.APPROVED),       # the callers' contract holds: the request passes through
    (approval.APPROVED, CHANGE, approval.PENDING),      # it changes: a person approves, whatever auto-approve asks
    (approval.PENDING, None, approval.PENDING),         # never escalates
    (approval.PENDING, CHANGE, approval.PENDING),
])
def test_a_version_is_registered_as_requested_unless_its_callers_contract_changes(requested, change, registered):
    assert approval.status_to_register(requested, change) == registered


NOT_COMPARED = "the champion's Poisson deviance is undefined on the frozen test set"


@pytest.mark.parametrize("requested, registered", [(approval.APPROVED, approval.PENDING),
                                                   (approval.PENDING, approval.PENDING)])
def test_a_version_the_gate_could_not_compare_with_the_serving_champion_waits_for_a_person(requested, registered):
    """An auto-approving environment replaces the serving version only with one the gate compared it with."""
    assert approval.status_to_register(requested, None, not_compared=NOT_COMPARED) == registered


def test_a_status_no_version_is_registered_with_is_refused_naming_the_choices():
    with pytest.raises(ValueError) as caught:
        approval.status_to_register("Rejected", None)
    assert str(caught.value) == ("approval status 'Rejected' is not one a version is registered with; expected one of: "
                                 "PendingManualApproval, Approved")


def test_the_reviewers_note_says_why_a_requested_approval_was_held():
    """GIVEN a report's registration block THEN the note a reviewer reads (model card, audit, local run) names the
    change and, when auto-approval was asked for, that it was held; nothing when the contract holds."""
    held = {"requested": approval.APPROVED, "approval_status": approval.PENDING, "contract_change": CHANGE}
    assert approval.registration_note(held) == (
        f"the callers' contract changes ({CHANGE}); registered "
        "PendingManualApproval, not the Approved requested: a person approves a version that answers its callers in "
        "another shape")
    pending = {**held, "requested": approval.PENDING}
    assert approval.registration_note(pending) == (
        f"the callers' contract changes ({CHANGE}); registered "
        "PendingManualApproval: a person approves it")
    assert approval.registration_note({"requested": approval.APPROVED, "approval_status": approval.APPROVED}) is None
    assert approval.registration_note(None) is None


def test_the_reviewers_note_says_a_version_not_compared_with_the_champion_was_held():
    held = {"requested": approval.APPROVED, "approval_status": approval.PENDING, "champion_not_compared": NOT_COMPARED}
    assert approval.registration_note(held) == (
        f"not compared with the serving champion ({NOT_COMPARED}); registered PendingManualApproval, not the Approved "
        "requested: a person approves a version the gate could not compare with the one that serves")
    assert approval.registration_note({**held, "requested": approval.PENDING}) == (
        f"not compared with the serving champion ({NOT_COMPARED}); registered PendingManualApproval: a person approves it")
    # Where the reason is printed on its own line (the report's champion_not_compared), the note does not repeat it
    assert approval.registration_note(held, shown=NOT_COMPARED) == (
        "not compared with the serving champion; registered PendingManualApproval, not the Approved requested: a person "
        "approves a version the gate could not compare with the one that serves")
    assert approval.registration_note({**held, "champion_not_compared": None, "contract_change": CHANGE}, shown=CHANGE) \
        == ("the callers' contract changes; registered PendingManualApproval, not the Approved requested: a person "
            "approves a version that answers its callers in another shape")
    both = {**held, "contract_change": CHANGE}
    assert approval.registration_note(both) == (
        f"the callers' contract changes ({CHANGE}); not compared with the serving champion ({NOT_COMPARED}); registered "
        "PendingManualApproval, not the Approved requested: a person approves a version that answers its callers in "
        "another shape")


@pytest.mark.parametrize("report, expected", [
    (None, None),
    ({"metrics": {"auc": 0.8}}, None),
    ({"gate": {"passed": True, "reasons": []}}, None),
    ({"gate": {"passed": False, "reasons": ["auc 0.6100 < minimum 0.7000", "disparate impact 0.29 < 0.8"]}},
     "auc 0.6100 < minimum 0.7000; disparate impact 0.29 < 0.8"),
    ({"gate": {"passed": False}}, "no reason recorded"),
    ({"gate": {"passed": False, "reasons": "not a list"}}, "no reason recorded"),
])
def test_a_failed_gate_is_one_definition_for_the_audit_and_the_deploy_handler(report, expected):
    """GIVEN an evaluation report WHEN asked whether its gate failed THEN the gate's reasons (or that none were recorded)
    for a failed gate, None for a passed one or a report without a gate."""
    assert approval.gate_failure(report) == expected


# --- where a version's reports may be: the deploy handler may read only its model's evaluation step's -------------


def test_a_report_outside_its_models_evaluation_folder_of_the_artifacts_bucket_cannot_be_checked():
    """The handler's role reads pipelines/<model>/*/evaluate/evaluation/* of the artifacts bucket (``*`` spans ``/``,
    as in IAM): a report elsewhere - another bucket, another model's, the model's prefix outside an evaluation step's
    folder - is named with where reports must be and the fix; without a bucket (or model) only the key is checked."""
    place = approval.ReportPlace(model="churn", bucket="artifacts")
    assert place.problem("bias.json", "s3://artifacts/pipelines/churn/run1/evaluate/evaluation/bias.json") is None
    assert place.problem("bias.json", "s3://artifacts/pipelines/churn/a/b/evaluate/evaluation/c/bias.json") is None
    fix = ("the only ones the deploy handler may read, so its promotion gate cannot be checked; re-register it from a "
           "pipeline run, or register it with its reports (ModelMetrics) there")
    for uri in ("s3://other/pipelines/churn/run1/evaluate/evaluation/bias.json",
                "s3://artifacts/pipelines/churn/elsewhere/bias.json",
                "s3://artifacts/pipelines/credit/run1/evaluate/evaluation/bias.json",
                "s3://artifacts/pipelines/churn/run1/evaluate/other/bias.json"):
        assert place.problem("bias.json", uri) == (
            f"its bias.json {uri} is not where the evaluation step writes churn's reports "
            f"(s3://artifacts/pipelines/churn/*/evaluate/evaluation/*), {fix}")
    key_only = approval.ReportPlace(model="churn", bucket=None)
    assert key_only.problem("bias.json", "s3://other/pipelines/churn/run1/evaluate/evaluation/bias.json") is None
    assert key_only.problem("evaluation.json", "s3://other/pipelines/churn/elsewhere/evaluation.json") == (
        "its evaluation.json s3://other/pipelines/churn/elsewhere/evaluation.json is not where the evaluation step writes "
        f"churn's reports (s3://<artifacts bucket>/pipelines/churn/*/evaluate/evaluation/*), {fix}")
    any_model = approval.ReportPlace(model=None, bucket=None)
    assert any_model.problem("bias.json", "s3://other/pipelines/credit/run1/evaluate/evaluation/bias.json") is None
    assert any_model.problem("bias.json", "s3://other/reports/bias.json") == (
        "its bias.json s3://other/reports/bias.json is not where the evaluation step writes a model's reports "
        f"(s3://<artifacts bucket>/pipelines/*/*/evaluate/evaluation/*), {fix}")


def test_a_version_whose_report_is_elsewhere_is_refused_before_anything_is_read(s3):
    """The gate check reads nothing of a report outside its place (the stub answers nothing): S3 would deny the
    deploy handler, so neither caller may judge it by its content."""
    assert approval.gate_problems(
        s3, evaluation_uri="s3://artifacts/pipelines/churn/elsewhere/evaluation.json",
        bias_uri="s3://artifacts/pipelines/churn/elsewhere/bias.json", bias_sha256="0" * 64,
        place=approval.ReportPlace(model="churn", bucket="artifacts"),
    ) == [approval.ReportPlace(model="churn", bucket="artifacts").problem(
        "bias.json", "s3://artifacts/pipelines/churn/elsewhere/bias.json")]


def test_where_the_reports_are_refuses_what_the_gate_check_refuses_before_reading(s3):
    """place_problems (the rollback CLI's check, reading nothing) answers what gate_problems answers before it reads a
    report: the same refusal for a bias or evaluation report elsewhere, nothing for reports in the evaluation folder or
    for a version registered before the reports' digests (which the handler does not judge by its reports)."""
    place = approval.ReportPlace(model="churn", bucket="artifacts")
    good = "s3://artifacts/pipelines/churn/run1/evaluate/evaluation"
    for evaluation, bias in ((f"{good}/evaluation.json", "s3://artifacts/pipelines/churn/elsewhere/bias.json"),
                             ("s3://artifacts/pipelines/churn/elsewhere/evaluation.json", f"{good}/bias.json"),
                             (f"{good}/evaluation.json", "artifacts/pipelines/churn/run1/evaluate/evaluation/bias.json")):
        where = approval.place_problems(evaluation_uri=evaluation, bias_uri=bias, bias_sha256="0" * 64, place=place)
        assert where and where[0].startswith("its bias.json" if "elsewhere/bias" in bias or not bias.startswith("s3://")
                                             else "its evaluation.json")
        if bias.endswith("elsewhere/bias.json") or not bias.startswith("s3://"):  # refused before any read
            assert approval.gate_problems(s3, evaluation_uri=evaluation, bias_uri=bias, bias_sha256="0" * 64,
                                          place=place) == where
    assert approval.place_problems(evaluation_uri=f"{good}/evaluation.json", bias_uri=f"{good}/bias.json",
                                   bias_sha256="0" * 64, place=place) == []
    assert approval.place_problems(evaluation_uri="s3://artifacts/elsewhere/evaluation.json",
                                   bias_uri="s3://artifacts/elsewhere/bias.json", bias_sha256=None, place=place) == []
