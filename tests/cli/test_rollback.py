"""The rollback command against moto (registry, serving stack, STS), end to end with the deploy handler.

A package with ModelPackageStatus Failed is set in moto's backend (moto completes every package). moto answers as
the account MOTO_ACCOUNT_ID names: prod's account in the sample config, unless a test says otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import pytest
from moto import mock_aws
from moto.sagemaker.models import sagemaker_backends

from pipeline_code.core import images
from pipeline_code.core.contract import ARCHIVE_SHA256_PROPERTY, MODEL_SHA256_PROPERTY, lake_bucket
from pipeline_code.handlers import deploy_on_approval as dod
from pipeline_code.handlers.deploy import registry as dod_registry
from mlops_cli import rollback as rb
from tests.support.configs import (SAMPLE_CONFIG, sample_account, sample_with_multi_model_member, sample_with_team_approvers,
                                   sample_without_model)
from tests.support.multi_model import keep_package_metadata, model_archive, seal_archive
from tests.support.credentials import without_credentials
from tests.support.moto_clients import SharedClients
from tests.support.cli_output import after_target_line

REGION = "eu-west-1"
GROUP = "mlops-loop-prod-churn"
STACK = "mlops-loop-prod-serving"
ACCOUNT = sample_account("prod")
# The environment's artifacts bucket, as the app names it (the deploy handler's APPROVAL_LEDGER bucket).
ARTIFACTS = lake_bucket("mlops-loop-prod", "artifacts", ACCOUNT, REGION)
OTHER_ACCOUNT = sample_account("staging")
# A frozen copy of the sample config names the environments: prod is in eu-west-1, like the moto world below.
CONFIG = ["--config", str(SAMPLE_CONFIG)]
BASE = ["--env", "prod", "--model", "churn", *CONFIG]
REASON = ["--reason", "INC-7: v2 answers 5xx"]
XGBOOST_REGISTRY = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost"
SPEC = {
    "Containers": [{"Image": f"{XGBOOST_REGISTRY}:{images.XGBOOST_IMAGE_VERSION}", "ModelDataUrl": "s3://b/m.tar.gz"}],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}


@pytest.fixture(scope="module")
def shared_clients() -> SharedClients:
    """The module's clients (tests/support/moto_clients.py): made once, not three times per test."""
    return SharedClients(REGION)


class Registry:
    def __init__(self, clients: SharedClients, bucket: str = ARTIFACTS) -> None:
        """The group and the artefacts ``bucket`` (bucket names are global: another account's world needs its own)."""
        self.clients = clients
        self.sagemaker = clients("sagemaker")
        self.cloudformation = clients("cloudformation")
        self.s3 = clients("s3")
        self.bucket = bucket
        self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)

    def register(self, approval: str = "PendingManualApproval", *, sealed: bool = True, image: str = "",
                 reports: str = "") -> str:
        """A version with ``approval``; ``sealed`` (default) as the pipeline registers it: its own model.tar.gz at its
        sealed key, both digests recorded; else as registered before artefacts were sealed (no digests). ``image``:
        its inference image (default: the app's XGBoost image). ``reports``: the s3:// folder its ModelMetrics name
        its model quality and bias reports in, with a bias ContentDigest (default: no ModelMetrics)."""
        number = len(self.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]) + 1
        container = {**SPEC["Containers"][0], **({"Image": image} if image else {})}
        spec, recorded = {**SPEC, "Containers": [container]}, {}
        if sealed:
            uri, digests = seal_archive(self.s3, self.bucket, "churn", model_archive(before=[(f"./version-{number}", b"")]),
                                        container=container)
            spec, recorded = {**SPEC, "Containers": [{**container, "ModelDataUrl": uri}]}, {"CustomerMetadataProperties": digests}
        if reports:
            recorded["ModelMetrics"] = {
                "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"{reports}/model_quality.json"}},
                "Bias": {"Report": {"ContentType": "application/json", "S3Uri": f"{reports}/bias.json",
                                    "ContentDigest": "sha256:" + "ab" * 32}},
            }
        arn = self.sagemaker.create_model_package(
            ModelPackageGroupName=GROUP, InferenceSpecification=spec, ModelApprovalStatus="PendingManualApproval", **recorded,
        )["ModelPackageArn"]
        if approval != "PendingManualApproval":
            self.set_approval(arn, approval, f"reviewed: {approval.lower()}")
        return arn

    def set_approval(self, arn: str, status: str, description: str = "") -> None:
        self.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=description)
        # LastModifiedTime travels with millisecond resolution: keep successive approvals distinguishable.
        time.sleep(0.005)

    def serve(self, arn: str) -> None:
        """The serving stack as the deploy handler leaves it (moto needs every parameter given explicitly)."""
        template = {
            "Parameters": {"ChurnModelPackageArn": {"Type": "String", "Default": ""}},
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        }
        self.cloudformation.create_stack(
            StackName=STACK, TemplateBody=json.dumps(template), Parameters=[{"ParameterKey": "ChurnModelPackageArn", "ParameterValue": arn}]
        )

    def desired(self) -> int:
        return dod_registry.select_desired(dod_registry.list_versions(self.sagemaker, GROUP)).version

    def snapshot(self) -> list:
        return [(v.version, v.approval, v.approved_at) for v in dod_registry.list_versions(self.sagemaker, GROUP, describe_all=True)]


@pytest.fixture()
def registry(monkeypatch, shared_clients):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    keep_package_metadata(monkeypatch)
    with mock_aws(), shared_clients.fresh() as clients:
        yield Registry(clients)


def marks(output: str) -> dict:
    """``{"v2": "desired", ...}`` from the table: the first column of each version row."""
    found = {}
    for line in output.splitlines():
        cells = line.split()
        if cells and cells[0] in ("serving", "desired", "serving+desired"):
            found[cells[1]] = cells[0]
    return found


def test_versions_marks_the_serving_and_the_desired_version(registry, capsys):
    """GIVEN v1 serving and v2 approved since (its rollout not done) WHEN listing THEN v1 is marked serving,
    v2 desired, v3 (pending) nothing, and the summary says they differ."""
    v1 = registry.register("Approved")
    registry.register("Approved")
    registry.register()
    registry.serve(v1)

    assert rb.main(BASE + ["versions"]) == 0

    out = capsys.readouterr().out
    assert marks(out) == {"v1": "serving", "v2": "desired"}
    assert "reviewed: approved" in out and "PendingManualApproval" in out
    assert out.splitlines()[-1] == (
        "serving: v1; desired: v2 -- they differ: the deploy handler has not updated the stack yet (it does minutes after "
        "an approval), the rollout failed and CloudFormation rolled back (the handler then holds v2 until it is approved "
        "again), or the handler refused v2 on reading its "
        "artefact or its evaluation report (bytes not as recorded, a promotion gate that failed, or a failed multi-model "
        "smoke test; its notice says why) "
        f"(aws cloudformation describe-stack-events --stack-name {STACK} --region {REGION})")


def test_it_first_names_the_project_environment_account_and_region_it_acts_on_and_the_config_read(registry, capsys):
    registry.register("Approved")
    assert rb.main(BASE + ["versions"]) == 0
    assert capsys.readouterr().err == (f"project=mlops-loop environment=prod account={ACCOUNT} region={REGION} "
                                       f"(config {SAMPLE_CONFIG})\n")


def test_with_region_project_and_account_given_the_first_line_says_the_config_was_not_read(registry, capsys):
    registry.register("Approved")
    assert rb.main(["--env", "prod", "--model", "churn", "--config", "/nonexistent.yaml", "--region", REGION,
                    "--project", "mlops-loop", "--account", ACCOUNT, "versions"]) == 0
    assert capsys.readouterr().err == (f"project=mlops-loop environment=prod account={ACCOUNT} region={REGION} "
                                       "(config not read: --region, --project and --account given)\n")


def test_versions_says_when_the_deploy_handler_refuses_the_desired_version(registry, capsys):
    """GIVEN v1 serving and v2 approved since but registered before artefacts were sealed WHEN listing THEN the
    summary gives the handler's reason instead of a rollout that never ran."""
    registry.serve(registry.register("Approved"))
    registry.register("Approved", sealed=False)

    assert rb.main(BASE + ["versions"]) == 0

    out = capsys.readouterr().out
    assert marks(out) == {"v1": "serving", "v2": "desired"}
    unsealed = [f"it records no {name} (registered before artefacts were sealed); re-run its pipeline to register a "
                "sealed version" for name in (ARCHIVE_SHA256_PROPERTY, MODEL_SHA256_PROPERTY)]
    assert out.splitlines()[-1] == (
        f"serving: v1; desired: v2 -- they differ: the deploy handler refuses v2 ({'; '.join(unsealed)}) and leaves the "
        "stack as it is; roll back to a version that can serve, or reject v2")


def test_versions_says_the_deploy_handler_refuses_a_desired_version_whose_reports_it_may_not_read(registry, capsys):
    """GIVEN v1 serving and v2 approved since, registered by hand with its reports outside churn's evaluation folder
    WHEN listing THEN the summary gives the handler's reason (it refuses v2: promotion gate not checked)."""
    registry.serve(registry.register("Approved"))
    folder = f"s3://{ARTIFACTS}/pipelines/churn/manual"
    registry.register("Approved", reports=folder)

    assert rb.main(BASE + ["versions"]) == 0

    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"serving: v1; desired: v2 -- they differ: the deploy handler refuses v2 (its bias.json "
                           f"{folder}/bias.json is not where the evaluation step writes churn's reports"), last


def test_versions_says_when_the_stack_is_mid_update():
    at = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
    v1, v2 = (dod_registry.Version(group=GROUP, version=n, arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/{n}",
                                   approval="Approved", status="Completed", created=at, last_modified=at + dt.timedelta(hours=n),
                          containers=1, model_data_url=f"s3://{ARTIFACTS}/pipelines/churn/registered/{'a' * 64}/model.tar.gz",
                          archive_sha256="a" * 64, model_sha256="b" * 64, container_sha256="c" * 64) for n in (1, 2))
    state = rb.State(group=GROUP, stack=STACK, parameter="ChurnModelPackageArn", versions=[v1, v2], stack_found=True,
                     serving_arn=v1.arn, stack_status="UPDATE_ROLLBACK_IN_PROGRESS")
    assert rb.render(state).splitlines()[-1] == (
        f"serving: v1; desired: v2 -- they differ: stack {STACK} is UPDATE_ROLLBACK_IN_PROGRESS (an update or its "
        "rollback is running; list again when it ends)")


def test_versions_marks_one_version_that_both_serves_and_is_desired(registry, capsys):
    registry.register("Approved")
    v2 = registry.register("Approved")
    registry.serve(v2)
    assert rb.main(BASE + ["versions"]) == 0
    out = capsys.readouterr().out
    assert marks(out) == {"v2": "serving+desired"}
    assert "they differ" not in out


def test_versions_without_a_serving_stack_still_lists_the_registry(registry, capsys):
    registry.register("Approved")
    assert rb.main(BASE + ["versions"]) == 0
    out = capsys.readouterr().out
    assert marks(out) == {"v1": "desired"} and f"stack {STACK} not found" in out


def test_rollback_makes_the_earlier_version_the_desired_one_and_the_handler_deploys_it(registry, capsys, monkeypatch):
    v1 = registry.register("Approved")
    v2 = registry.register("Approved")
    registry.serve(v2)

    assert rb.main(BASE + ["rollback", *REASON, "--to-version", "1", "--yes"]) == 0

    assert registry.desired() == 1
    described = registry.sagemaker.describe_model_package(ModelPackageName=v1)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"].startswith(f"rollback to v1 by arn:aws:sts::{ACCOUNT}:user/moto at 20")
    assert described["ApprovalDescription"].endswith("Z: INC-7: v2 answers 5xx")
    out = capsys.readouterr().out
    assert f"{STACK}: ChurnModelPackageArn v2 -> v1" in out
    assert f"python -m mlops_cli.rollback --env prod --model churn --config {SAMPLE_CONFIG} versions" in out
    assert f"aws cloudformation describe-stack-events --stack-name {STACK} --region {REGION} --max-items 10" in out

    # The approval event then reaches the deploy handler, which rolls the stack back to v1.
    monkeypatch.setenv("SERVING_STACK_NAME", STACK)
    monkeypatch.setenv("MODEL_PARAMETERS", json.dumps({GROUP: "ChurnModelPackageArn"}))
    monkeypatch.setenv("DEPLOYER_ROLE_ARN", f"arn:aws:iam::{ACCOUNT}:role/deployer")
    monkeypatch.delenv("NOTIFY_TOPIC_ARN", raising=False)
    decision = dod.handler(
        {"action": "reconcile", "group": GROUP}, sagemaker=registry.sagemaker, cloudformation=registry.cloudformation, s3=registry.s3
    )
    assert decision["deployed"] is True and decision["reason"] == "v2 -> v1"
    assert rb.main(BASE + ["versions"]) == 0
    assert marks(capsys.readouterr().out) == {"v1": "serving+desired"}


def test_rollback_to_a_version_of_an_older_image_says_it_serves_in_that_image_and_whether_it_is_patched(registry, capsys):
    """GIVEN v1 registered when the app ran the 3.0-5 image (past its end of patch) and v2 in the app's image WHEN
    rolling back to v1 THEN the command says v1 comes back in its own image, unpatched; rolling forward to v2 says
    nothing of images."""
    v1 = registry.register("Approved", image=f"{XGBOOST_REGISTRY}:3.0-5")
    registry.register("Approved")
    v3 = registry.register("Approved")
    registry.serve(v3)
    when = dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc)
    state = rb.load_state(sagemaker=registry.sagemaker, cloudformation=registry.cloudformation, project="mlops-loop",
                          env="prod", model="churn", account=ACCOUNT)

    assert rb.rollback(state, sagemaker=registry.sagemaker, caller="arn:aws:iam::1:user/a", to_version=1, reason="INC-7", assume_yes=True,
                       now=when) == 0

    out = capsys.readouterr().out
    assert (f"Note: v1 serves in the image it was registered with, sagemaker-xgboost:3.0-5, not the app's "
            f"{images.XGBOOST_IMAGE_VERSION}; that image passed its end of patch on 2026-11-17 and gets no security "
            "patches (docs/training.md, The XGBoost image and its end of patch)\n") in out
    assert registry.sagemaker.describe_model_package(ModelPackageName=v1)["ModelApprovalStatus"] == "Approved"
    state = rb.load_state(sagemaker=registry.sagemaker, cloudformation=registry.cloudformation, project="mlops-loop",
                          env="prod", model="churn", account=ACCOUNT)
    assert rb.rollback(state, sagemaker=registry.sagemaker, caller="arn:aws:iam::1:user/a", to_version=2, reason="INC-7", assume_yes=True,
                       now=when) == 0
    assert "Note:" not in capsys.readouterr().out


@pytest.mark.parametrize("multi_model", [False, True], ids=["own endpoint", "multi-model member"])
def test_rollback_names_the_registered_image_only_where_it_serves(registry, capsys, tmp_path, multi_model):
    """GIVEN v1 registered with the 3.0-5 image WHEN rolling back to it THEN a model on its own endpoint is told it comes
    back in 3.0-5; a member of a multi-model endpoint is not: it runs in the endpoint's image, the app's, whatever
    image its package names (docs/serving.md), so that note would be false."""
    registry.register("Approved", image=f"{XGBOOST_REGISTRY}:3.0-5")
    v2 = registry.register("Approved")
    registry.serve(v2)
    config = str(sample_with_multi_model_member(tmp_path, "prod", "churn") if multi_model else SAMPLE_CONFIG)

    assert rb.main(["--env", "prod", "--model", "churn", "--config", config, "rollback", *REASON, "--to-version", "1", "--yes"]) == 0

    out = capsys.readouterr().out
    assert "v1 is Approved" in out
    note = "Note: v1 serves in the image it was registered with, sagemaker-xgboost:3.0-5, not the app's"
    assert (note in out) is not multi_model and ("Note:" in out) is not multi_model


def test_rollback_to_a_rejected_version_approves_it(registry):
    v1 = registry.register("Approved")
    registry.set_approval(v1, "Rejected", "superseded")
    registry.serve(registry.register("Approved"))
    assert rb.main(BASE + ["rollback", *REASON, "--to-version", "1", "--yes"]) == 0
    assert registry.desired() == 1


@pytest.mark.parametrize(
    ("to_version", "message"),
    [
        ("9", "has no version 9 (versions: v1, v2, v3)"),
        ("2", "v2 is already serving"),
        ("3", "v3 has package status Failed"),
    ],
)
def test_rollback_refuses_unknown_failed_and_serving_versions_and_changes_nothing(registry, capsys, to_version, message):
    registry.register("Approved")
    v2 = registry.register("Approved")
    failed = registry.register("Rejected")
    sagemaker_backends[ACCOUNT][REGION].model_packages[failed].model_package_status = "Failed"
    registry.serve(v2)
    before = registry.snapshot()

    assert rb.main(BASE + ["rollback", *REASON, "--to-version", to_version, "--yes"]) == 2

    err = after_target_line(capsys.readouterr().err).strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rollback: error: --to-version") and message in err[0]
    assert registry.snapshot() == before


def test_a_rollback_says_why_or_the_parser_refuses_it(registry, capsys):
    registry.register("Approved")
    registry.serve(registry.register("Approved"))
    before = registry.snapshot()
    with pytest.raises(SystemExit) as exit_:
        rb.main(BASE + ["rollback", "--to-version", "1", "--yes"])
    assert exit_.value.code == 2
    assert "the following arguments are required: --reason" in capsys.readouterr().err
    assert registry.snapshot() == before


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_blank_reason_is_refused_and_changes_nothing(registry, capsys, reason):
    registry.register("Approved")
    registry.serve(registry.register("Approved"))
    before = registry.snapshot()

    assert rb.main(BASE + ["rollback", "--reason", reason, "--to-version", "1", "--yes"]) == 2

    err = after_target_line(capsys.readouterr().err).strip().splitlines()
    assert err == ["rollback: error: --reason is empty: say why you roll back (an incident, what the serving version "
                   "does wrong); it is recorded in the version's ApprovalDescription, which the audit reads"]
    assert registry.snapshot() == before


def test_a_reason_too_long_for_the_registry_is_refused_before_anything_changes(registry, capsys):
    registry.register("Approved")
    registry.serve(registry.register("Approved"))
    before = registry.snapshot()

    assert rb.main(BASE + ["rollback", "--reason", "x" * 1000, "--to-version", "1", "--yes"]) == 2

    err = after_target_line(capsys.readouterr().err).strip().splitlines()
    assert len(err) == 1
    assert re.fullmatch(r"rollback: error: --reason is 1000 characters; the approval description it goes in holds 1024 "
                        r"with who and when \(\d+ here\): shorten it to \d+ or fewer, e.g. a ticket and a line", err[0]), err[0]
    limit = int(re.search(r"to (\d+) or fewer", err[0]).group(1))
    assert registry.snapshot() == before
    assert rb.main(BASE + ["rollback", "--reason", "x" * limit, "--to-version", "1", "--yes"]) == 0
    assert registry.desired() == 1


def test_without_yes_it_asks_and_a_no_changes_nothing(registry, capsys):
    registry.register("Approved")
    registry.serve(registry.register("Approved"))
    before = registry.snapshot()
    questions = []

    def answer(prompt):
        questions.append(prompt)
        return "n"

    assert rb.main(BASE + ["rollback", *REASON, "--to-version", "1"], ask=answer) == 1
    assert questions == ["Proceed? [y/N] "]
    assert registry.snapshot() == before
    assert "aborted" in capsys.readouterr().err


def test_without_yes_a_y_rolls_back(registry):
    registry.register("Approved")
    registry.serve(registry.register("Approved"))
    assert rb.main(BASE + ["rollback", *REASON, "--to-version", "1"], ask=lambda _: "y") == 0
    assert registry.desired() == 1


def test_closed_stdin_counts_as_no(registry):
    registry.register("Approved")
    registry.serve(registry.register("Approved"))

    def closed(_):
        raise EOFError

    assert rb.main(BASE + ["rollback", *REASON, "--to-version", "1"], ask=closed) == 1
    assert registry.desired() == 2


@pytest.mark.parametrize("folder", [f"s3://{ARTIFACTS}/pipelines/churn/manual", f"s3://{ARTIFACTS}/pipelines/other/run-1/evaluate/evaluation",
                                    "s3://someone-elses-bucket/pipelines/churn/run-1/evaluate/evaluation"],
                         ids=["outside-the-evaluation-folder", "another-models-folder", "another-bucket"])
def test_rollback_refuses_a_version_whose_reports_the_deploy_handler_may_not_read_and_changes_nothing(registry, capsys, folder):
    """GIVEN v1 registered by hand with its ModelMetrics naming reports outside churn's evaluation folder, and v2
    serving WHEN rolling back to v1 THEN it is refused with the handler's reason before anything is re-approved: the
    handler refuses it (promotion gate not checked) and v2 keeps serving, so the rollback would change nothing. So is a
    version whose reports are under churn's evaluation folder of another bucket than the environment's artifacts bucket
    (the only one the handler may read): the rollback once checked the key alone and re-approved it."""
    registry.register("Approved", reports=folder)
    registry.serve(registry.register("Approved"))
    before = registry.snapshot()

    assert rb.main(BASE + ["rollback", *REASON, "--to-version", "1", "--yes"]) == 2

    assert after_target_line(capsys.readouterr().err) == (
        f"rollback: error: --to-version 1: v1 cannot serve, the deploy handler would refuse it: its bias.json "
        f"{folder}/bias.json is not where the evaluation step writes churn's reports "
        f"(s3://{ARTIFACTS}/pipelines/churn/*/evaluate/evaluation/*), the only ones the deploy handler may read, so "
        "its promotion gate cannot be checked; re-register it from a pipeline run, or register it with its reports "
        "(ModelMetrics) there\n")
    assert registry.snapshot() == before


def test_rollback_to_a_version_whose_reports_are_in_its_evaluation_folder_goes_ahead(registry):
    """GIVEN v1 with its reports where the pipeline's evaluation step writes them and v2 serving WHEN rolling back to
    v1 THEN it is re-approved (the deploy handler reads its reports: the rollback does not judge them)."""
    registry.register("Approved", reports=f"s3://{ARTIFACTS}/pipelines/churn/run-1/evaluate/evaluation")
    registry.serve(registry.register("Approved"))

    assert rb.main(BASE + ["rollback", *REASON, "--to-version", "1", "--yes"]) == 0
    assert registry.desired() == 1


def test_rollback_refuses_a_version_the_deploy_handler_would_refuse_and_changes_nothing(registry, capsys):
    """GIVEN v1 registered before artefacts were sealed and v2 serving WHEN rolling back to v1 THEN it is refused
    with the handler's reason, before anything is re-approved (it would be approved and never deployed)."""
    registry.register("Approved", sealed=False)
    registry.serve(registry.register("Approved"))
    before = registry.snapshot()

    assert rb.main(BASE + ["rollback", *REASON, "--to-version", "1", "--yes"]) == 2

    unsealed = [f"it records no {name} (registered before artefacts were sealed); re-run its pipeline to register a "
                "sealed version" for name in (ARCHIVE_SHA256_PROPERTY, MODEL_SHA256_PROPERTY)]
    assert after_target_line(capsys.readouterr().err) == (
        f"rollback: error: --to-version 1: v1 cannot serve, the deploy handler would refuse it: {'; '.join(unsealed)}\n")
    assert registry.snapshot() == before


def test_a_model_of_the_environment_without_a_group_is_one_clear_line_naming_the_account(registry, capsys):
    # GIVEN prod deploys credit-risk in the config, but its account has no group for it (not deployed yet)
    assert rb.main(["--env", "prod", "--model", "credit-risk", *CONFIG, "versions"]) == 2
    assert after_target_line(capsys.readouterr().err) == (
        "rollback: error: unknown model 'credit-risk' in environment 'prod': there is no model package group "
        f"mlops-loop-prod-credit-risk in account {ACCOUNT}, {REGION} (is it deployed there? check --model, --env, "
        "--project, --region and --account)\n")


def test_a_model_the_environment_does_not_deploy_is_refused_from_the_config(registry, capsys, tmp_path):
    # GIVEN prod no longer deploys credit-risk, whose group is still in prod's account (retained)
    config = sample_without_model(tmp_path, "prod", "credit-risk")
    registry.sagemaker.create_model_package_group(ModelPackageGroupName="mlops-loop-prod-credit-risk")
    # WHEN its versions are asked for THEN the config refuses it, naming what prod deploys
    assert rb.main(["--env", "prod", "--model", "credit-risk", "--config", str(config), "versions"]) == 2
    assert capsys.readouterr().err == (
        f"rollback: error: --model credit-risk: environment 'prod' of {config} does not deploy it; choose from churn (or "
        "pass --region, --project and --account to reach a model the config no longer lists)\n")
    # and the way out it names reaches the group
    assert rb.main(["--env", "prod", "--model", "credit-risk", "--config", str(config), "--region", REGION,
                    "--project", "mlops-loop", "--account", ACCOUNT, "versions"]) == 0
    assert "model package group mlops-loop-prod-credit-risk" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["versions"], ["rollback", *REASON, "--to-version", "1", "--yes"]])
def test_credentials_of_another_account_are_refused_before_anything_is_read_or_changed(registry, monkeypatch, capsys,
                                                                                       command):
    """GIVEN the same names in another account (a profile left on staging, where a prod-named group exists) WHEN
    either command runs with its credentials THEN it refuses, naming both accounts, and that account is untouched."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", OTHER_ACCOUNT)
    elsewhere = Registry(registry.clients, bucket=f"{ARTIFACTS}-{OTHER_ACCOUNT}")
    elsewhere.register("Approved")
    elsewhere.serve(elsewhere.register("Approved"))
    before = elsewhere.snapshot()

    assert rb.main(BASE + command) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert after_target_line(captured.err) == (f"rollback: error: the credentials are of account {OTHER_ACCOUNT}, environment 'prod' is "
                            f"account {ACCOUNT}; use that account's credentials (e.g. AWS_PROFILE) and run again\n")
    assert elsewhere.snapshot() == before


def test_the_environments_region_is_used_whatever_the_shells_default(registry, monkeypatch, capsys):
    # GIVEN a shell whose default region is another than prod's
    registry.register("Approved")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # WHEN the versions are listed THEN they are prod's, read in prod's region (eu-west-1, from the config)
    assert rb.main(BASE + ["versions"]) == 0
    assert "mlops-loop-prod-churn" in capsys.readouterr().out


def test_an_environment_the_config_lacks_is_one_clear_line(registry, capsys):
    assert rb.main(["--env", "prdo", "--model", "churn", *CONFIG, "versions"]) == 2
    assert capsys.readouterr().err == (f"rollback: error: --env prdo: not an environment of {SAMPLE_CONFIG}; choose from "
                                       "dev, staging, prod\n")


def test_rollback_without_a_serving_stack_is_refused(registry, capsys):
    registry.register("Approved")
    registry.register("Approved")
    assert rb.main(BASE + ["rollback", *REASON, "--to-version", "1", "--yes"]) == 2
    assert f"serving stack {STACK} does not exist" in capsys.readouterr().err


def test_missing_credentials_are_one_clear_line(monkeypatch, tmp_path, capsys):
    without_credentials(monkeypatch, tmp_path)

    assert rb.main(BASE + ["--region", REGION, "versions"]) == 2

    assert after_target_line(capsys.readouterr().err) == (
        f"rollback: error: no usable AWS credentials (NoCredentialsError: Unable to locate credentials): log in to account "
        f"{ACCOUNT} of environment 'prod' as the approver role mlops-loop-prod-model-approver (e.g. aws sso login, "
        "AWS_PROFILE) and run again\n")


def test_a_model_whose_team_approves_it_names_the_teams_approver_role(monkeypatch, tmp_path, capsys):
    """GIVEN churn owned by team fraud, which approves its own models in prod (``team_approvers``) WHEN run without
    credentials THEN the line names the team's approver role, the one that may decide churn's versions, not the
    environment's."""
    without_credentials(monkeypatch, tmp_path)
    config = sample_with_team_approvers(tmp_path, "prod", "churn", "fraud")

    assert rb.main(["--env", "prod", "--model", "churn", "--config", str(config), "--region", REGION, "versions"]) == 2

    assert after_target_line(capsys.readouterr().err) == (
        f"rollback: error: no usable AWS credentials (NoCredentialsError: Unable to locate credentials): log in to account "
        f"{ACCOUNT} of environment 'prod' as the approver role mlops-loop-prod-fraud-team-approver (e.g. aws sso login, "
        "AWS_PROFILE) and run again\n")


def test_a_profile_that_does_not_exist_is_one_clear_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "nope")

    assert rb.main(BASE + ["versions"]) == 2

    assert after_target_line(capsys.readouterr().err) == (
        "rollback: error: no usable AWS credentials (ProfileNotFound: The config profile (nope) could not be found): log in "
        f"to account {ACCOUNT} of environment 'prod' as the approver role mlops-loop-prod-model-approver (e.g. aws sso "
        "login, AWS_PROFILE) and run again\n")


def test_a_bad_version_number_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        rb.main(BASE + ["rollback", *REASON, "--to-version", "0"])
    assert exit_.value.code == 2
    assert "--to-version: must be an integer >= 1" in capsys.readouterr().err

