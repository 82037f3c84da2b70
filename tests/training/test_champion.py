"""Champion lookup in the SageMaker Model Registry (moto): the version that serves (the deploy handler's rule),
downloaded."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.sagemaker import models as moto_sagemaker

from pipeline_code.core import approval
from pipeline_code.handlers.deploy.registry import list_versions, select_desired
from pipeline_code.training import champion, evaluate, train
from tests.support.training import UNREAD_SHAP_ROWS

REGION = "eu-west-1"
BUCKET = "mlops-loop-dev-artifacts-111111111111-eu-west-1"
GROUP = "mlops-loop-dev-churn"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
# Where the evaluation job of churn's pipeline in this environment reads reports as the deploy handler may.
PLACE = approval.ReportPlace(model="churn", bucket=BUCKET)


# How far moto's registry clock is moved on where a test needs a later approval time: the 1.1 s the tests slept before
# (moto's LastModifiedTime: a later approval must be a later time), without the wait.
LATER = datetime.timedelta(seconds=1.1)


@pytest.fixture
def aws(monkeypatch):
    """moto's S3 and SageMaker, the model package group created; ``aws["later"]()`` moves the registry's clock (the
    times moto gives model packages) on by LATER, as sleeping that long did."""
    ahead = [datetime.timedelta(0)]
    monkeypatch.setattr(moto_sagemaker, "utcnow", lambda now=moto_sagemaker.utcnow: now() + ahead[0])
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        sm = boto3.client("sagemaker", region_name=REGION)
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        yield {"s3": s3, "sagemaker": sm, "later": lambda: ahead.__setitem__(0, ahead[0] + LATER)}


# model directory -> its archive's bytes: the session's models (strong_model, weak_model) are archived once, not once per
# registration (gzip at tarfile's level 9 was most of this module's CPU); the tests only upload and read the copies.
_ARCHIVES: dict = {}


def _archive(model_dir: str, path: Path) -> Path:
    """``model_dir``'s files as a model.tar.gz at ``path`` (what SageMaker stores)."""
    if model_dir not in _ARCHIVES:
        made = io.BytesIO()
        with tarfile.open(fileobj=made, mode="w:gz") as tar:
            for item in Path(model_dir).iterdir():
                tar.add(item, arcname=item.name)
        _ARCHIVES[model_dir] = made.getvalue()
    path.write_bytes(_ARCHIVES[model_dir])
    return path


def _register(aws, model_dir: str, key: str, status: str, tmp_path: Path, metadata: dict | None = None,
              metrics: dict | None = None) -> str:
    archive = _archive(model_dir, tmp_path / key.replace("/", "_"))
    aws["s3"].upload_file(str(archive), BUCKET, key)
    arn = aws["sagemaker"].create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus=status,
        **({"CustomerMetadataProperties": metadata} if metadata else {}),
        **({"ModelMetrics": metrics} if metrics else {}),
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    time.sleep(0.01)  # distinct CreationTime
    return arn


def test_given_approved_and_pending_packages_then_the_newest_approved_is_the_champion(aws, weak_model, strong_model, tmp_path, test_frame):
    """GIVEN v1 Approved (weak), v2 Approved (strong), v3 PendingManualApproval (weak)
    WHEN the champion is fetched THEN it is v2, downloaded and loadable."""
    _register(aws, weak_model, "models/v1/model.tar.gz", "Approved", tmp_path)
    v2 = _register(aws, strong_model, "models/v2/model.tar.gz", "Approved", tmp_path)
    _register(aws, weak_model, "models/v3/model.tar.gz", "PendingManualApproval", tmp_path)

    found = champion.fetch_champion(GROUP, str(tmp_path / "champion"), place=PLACE, sagemaker_client=aws["sagemaker"], s3_client=aws["s3"])
    assert found is not None
    assert found.model_package_arn == v2
    assert found.model_data_url == f"s3://{BUCKET}/models/v2/model.tar.gz"
    loaded = train.load_model(found.local_path)
    expected = train.predict(train.load_model(strong_model), test_frame)
    assert (train.predict(loaded, test_frame) == expected).all()


def test_given_no_approved_package_then_there_is_no_champion(aws, weak_model, tmp_path):
    _register(aws, weak_model, "models/v1/model.tar.gz", "PendingManualApproval", tmp_path)
    _register(aws, weak_model, "models/v2/model.tar.gz", "Rejected", tmp_path)
    assert champion.fetch_champion(GROUP, str(tmp_path / "c"), place=PLACE, sagemaker_client=aws["sagemaker"], s3_client=aws["s3"]) is None


def test_a_package_without_model_data_is_an_error():
    with pytest.raises(champion.ChampionError, match="no ModelDataUrl"):
        champion.model_data_url({"ModelPackageArn": "arn:x", "InferenceSpecification": {"Containers": [{"Image": IMAGE}]}})
    source = {"InferenceSpecification": {"Containers": [{"ModelDataSource": {"S3DataSource": {"S3Uri": "s3://b/k.tar.gz"}}}]}}
    assert champion.model_data_url(source) == "s3://b/k.tar.gz"



def _evaluate_from_registry(churn_spec, dev_gate, challenger: str, prepared, tmp_path, *extra: str) -> dict:
    """The evaluation report of ``challenger`` run as SageMaker runs it: an empty --champion-dir, so the champion
    comes from the registry (--model-package-group); ``extra`` arguments after the others; the command must exit 0."""
    out = tmp_path / "evaluation"
    code = evaluate.main(
        ["--model-spec", churn_spec.to_json(), "--model-dir", challenger, "--test-dir", prepared["test"],
         "--champion-dir", str(tmp_path / "empty"), "--model-package-group", GROUP, "--region", REGION,
         "--output-dir", str(out), "--shap-sample-rows", str(UNREAD_SHAP_ROWS), *dev_gate.to_args(), *extra]
    )  # fmt: skip
    assert code == 0
    return json.loads((out / "evaluation.json").read_text())

def test_given_a_model_package_group_when_the_evaluate_cli_runs_then_the_registry_champion_is_used(
    aws, churn_spec, dev_gate, weak_model, strong_model, prepared, tmp_path
):
    """The CLI path SageMaker runs: empty --champion-dir + --model-package-group -> registry lookup."""
    v1 = _register(aws, strong_model, "models/v1/model.tar.gz", "Approved", tmp_path)
    report = _evaluate_from_registry(churn_spec, dev_gate, weak_model, prepared, tmp_path)
    assert report["champion"]["source"]["kind"] == "model_package"
    assert report["champion"]["source"]["model_package_arn"] == v1
    assert report["gate"]["passed"] is False  # the weak challenger loses to the registry's champion


def test_a_champion_whose_artefact_differs_from_its_recorded_digest_is_refused(aws, strong_model, tmp_path):
    """GIVEN an Approved sealed package WHEN its object no longer holds the registered bytes THEN fetching it as
    the champion fails naming both digests, instead of judging the challenger against a changed model."""
    recorded = "0" * 64
    arn = _register(aws, strong_model, "pipelines/churn/registered/x/model.tar.gz", "Approved", tmp_path,
                    metadata={"model_data_sha256": recorded})
    with pytest.raises(champion.ChampionError) as raised:
        champion.fetch_champion(GROUP, str(tmp_path / "c"), place=PLACE, sagemaker_client=aws["sagemaker"], s3_client=aws["s3"])
    assert str(raised.value).startswith(f"champion {arn}: s3://{BUCKET}/pipelines/churn/registered/x/model.tar.gz has sha256 ")
    assert str(raised.value).endswith(f"but the package recorded {recorded} at registration (model_data_sha256); its artefact was changed")


def test_a_sealed_champion_with_matching_bytes_is_fetched(aws, strong_model, tmp_path):
    import hashlib

    archive = _archive(strong_model, tmp_path / "a.tar.gz")
    key = "pipelines/churn/registered/y/model.tar.gz"
    aws["s3"].upload_file(str(archive), BUCKET, key)
    aws["sagemaker"].create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"model_data_sha256": hashlib.sha256(archive.read_bytes()).hexdigest()},
        InferenceSpecification={"Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}"}],
                                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
    )
    found = champion.fetch_champion(GROUP, str(tmp_path / "c"), place=PLACE, sagemaker_client=aws["sagemaker"], s3_client=aws["s3"])
    assert found is not None and Path(found.local_path).read_bytes() == archive.read_bytes()


def _roll_back(aws, arn: str) -> None:
    """What ``mlops_cli.rollback --to-version N`` does: re-approve N (via Pending), leaving the newer versions Approved."""
    aws["later"]()  # moto's LastModifiedTime: a later approval must be a later time
    aws["sagemaker"].update_model_package(ModelPackageArn=arn, ModelApprovalStatus="PendingManualApproval")
    aws["sagemaker"].update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="rollback to v1")


def test_after_a_rollback_the_champion_is_the_re_approved_version_the_deploy_handler_serves(aws, weak_model, strong_model, tmp_path):
    """GIVEN v1 Approved, v2 Approved (newer), v3 Pending WHEN v1 is re-approved (a rollback)
    THEN the champion is v1 - the version the deploy handler serves - not v2, the newest Approved one."""
    v1 = _register(aws, weak_model, "models/v1/model.tar.gz", "Approved", tmp_path)
    _register(aws, strong_model, "models/v2/model.tar.gz", "Approved", tmp_path)
    _register(aws, strong_model, "models/v3/model.tar.gz", "PendingManualApproval", tmp_path)
    assert champion.fetch_champion(GROUP, str(tmp_path / "before"), place=PLACE, sagemaker_client=aws["sagemaker"], s3_client=aws["s3"]).version == 2

    _roll_back(aws, v1)
    found = champion.fetch_champion(GROUP, str(tmp_path / "after"), place=PLACE, sagemaker_client=aws["sagemaker"], s3_client=aws["s3"])
    serving = select_desired(list_versions(aws["sagemaker"], GROUP))
    assert (found.model_package_arn, found.version, found.rule) == (v1, 1, approval.RULE)
    assert serving.arn == found.model_package_arn
    assert found.model_data_url == f"s3://{BUCKET}/models/v1/model.tar.gz"


def test_after_a_rollback_the_evaluation_judges_against_the_serving_version_and_says_so(
    aws, churn_spec, dev_gate, weak_model, strong_model, prepared, tmp_path
):
    """GIVEN a strong v1 rolled back to after a weak v2 WHEN a weak challenger is evaluated
    THEN it is judged against v1 (and fails), and the report names v1 and the rule that picked it."""
    v1 = _register(aws, strong_model, "models/v1/model.tar.gz", "Approved", tmp_path)
    _register(aws, weak_model, "models/v2/model.tar.gz", "Approved", tmp_path)
    _roll_back(aws, v1)
    report = _evaluate_from_registry(churn_spec, dev_gate, weak_model, prepared, tmp_path)
    source = report["champion"]["source"]
    assert (source["kind"], source["model_package_arn"], source["version"], source["rule"]) == ("model_package", v1, 1, "approved-last")
    assert source["approved_at"] is not None
    assert report["gate"]["passed"] is False


def test_a_champion_is_never_a_version_that_cannot_serve(aws, weak_model, strong_model, tmp_path):
    """An Approved version that is not Completed never serves, so it is never the champion either."""
    v1 = _register(aws, weak_model, "models/v1/model.tar.gz", "Approved", tmp_path)
    v2 = _register(aws, strong_model, "models/v2/model.tar.gz", "Approved", tmp_path)
    real = aws["sagemaker"].describe_model_package

    def describe(**kwargs):
        answer = real(**kwargs)
        return {**answer, "ModelPackageStatus": "InProgress"} if answer["ModelPackageArn"] == v2 else answer

    aws["sagemaker"].describe_model_package = describe
    found = champion.fetch_champion(GROUP, str(tmp_path / "c"), place=PLACE, sagemaker_client=aws["sagemaker"], s3_client=aws["s3"])
    assert found.model_package_arn == v1


def _reports(aws, execution: str, reasons: list | None = None, prefix: str | None = None) -> dict:
    """evaluation.json (gate passed, or failed for ``reasons``) and the bias.json carrying its digest where the
    evaluation job writes them (or below ``prefix``: a version registered by hand); the ModelMetrics the register step
    records for them."""
    prefix = f"pipelines/churn/{execution}/evaluate/evaluation" if prefix is None else prefix
    evaluation = json.dumps({"gate": {"passed": reasons is None, "reasons": reasons or []}}).encode()
    bias = json.dumps({"evaluation_digest": "sha256:" + hashlib.sha256(evaluation).hexdigest()}).encode()
    for name, body in (("evaluation.json", evaluation), ("bias.json", bias), ("model_quality.json", b"{}")):
        aws["s3"].put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=body)
    return {
        "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{prefix}/model_quality.json"}},
        "Bias": {"Report": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{prefix}/bias.json",
                            "ContentDigest": "sha256:" + hashlib.sha256(bias).hexdigest()}},
    }


def test_a_version_whose_gate_failed_is_not_the_champion_the_serving_version_is(aws, weak_model, strong_model, tmp_path):
    """GIVEN v1 (gate passed) approved and serving, and v2, registered outside the pipeline's condition step with a
    verified evaluation report saying its promotion gate failed, approved after it WHEN the champion is looked up
    THEN it is v1 - the deploy handler refuses v2 and keeps serving v1 - not v2, a model that never served."""
    v1 = _register(aws, strong_model, "models/v1/model.tar.gz", "Approved", tmp_path, metrics=_reports(aws, "run0001"))
    aws["later"]()  # moto's LastModifiedTime: v2 is the one approved last
    v2 = _register(aws, weak_model, "models/v2/model.tar.gz", "PendingManualApproval", tmp_path,
                   metrics=_reports(aws, "run0002", reasons=["auc 0.6100 < minimum 0.7000"]))
    aws["sagemaker"].update_model_package(ModelPackageArn=v2, ModelApprovalStatus="Approved", ApprovalDescription="by hand")
    assert select_desired(list_versions(aws["sagemaker"], GROUP)).arn == v2  # approved last: the handler considers, then refuses it

    found = champion.fetch_champion(GROUP, str(tmp_path / "c"), place=PLACE, sagemaker_client=aws["sagemaker"], s3_client=aws["s3"])

    assert (found.model_package_arn, found.version) == (v1, 1)
    assert found.passed_over == [
        f"v2: its evaluation report s3://{BUCKET}/pipelines/churn/run0002/evaluate/evaluation/evaluation.json says the "
        "promotion gate failed (auc 0.6100 < minimum 0.7000): the pipeline registers only a version that passed, so this "
        "one was registered outside it; fix the cause and retrain it (a new pipeline execution registers the version that "
        "passes); no approval deploys a version whose gate failed"]


# Where the deploy handler's role may read a version's reports (pipelines/<model>/*/evaluate/evaluation/* of the
# artifacts bucket): the champion judges a version whose reports are elsewhere as the handler does.
ELSEWHERE_REASON = (
    f"v2: its bias.json s3://{BUCKET}/pipelines/churn/elsewhere/bias.json is not where the evaluation step writes "
    f"churn's reports (s3://{BUCKET}/pipelines/churn/*/evaluate/evaluation/*), the only ones the deploy handler may read, "
    "so its promotion gate cannot be checked; re-register it from a pipeline run, or register it with its reports "
    "(ModelMetrics) there")


def test_a_version_whose_reports_the_deploy_handler_cannot_read_is_not_the_champion(
    aws, churn_spec, dev_gate, weak_model, strong_model, prepared, tmp_path
):
    """GIVEN v1 (gate passed) approved and serving, and v2, registered by hand with reports saying its gate passed but
    under pipelines/churn/elsewhere/ - not where the evaluation step writes them, so the deploy handler may not read
    them and refuses v2 (tests/handlers/test_deploy_on_approval.py) - approved after it WHEN the evaluation job looks the
    champion up (its --model-spec and --seal-uri say the model and the artifacts bucket) THEN the champion is v1, the
    version that serves, with v2 passed over for that reason - not v2, a model that never served."""
    v1 = _register(aws, strong_model, "models/v1/model.tar.gz", "Approved", tmp_path, metrics=_reports(aws, "run0001"))
    aws["later"]()  # moto's LastModifiedTime: v2 is the one approved last
    v2 = _register(aws, weak_model, "models/v2/model.tar.gz", "PendingManualApproval", tmp_path,
                   metrics=_reports(aws, "run0002", prefix="pipelines/churn/elsewhere"))
    aws["sagemaker"].update_model_package(ModelPackageArn=v2, ModelApprovalStatus="Approved", ApprovalDescription="by hand")
    assert select_desired(list_versions(aws["sagemaker"], GROUP)).arn == v2  # approved last: the handler considers, then refuses it

    report = _evaluate_from_registry(churn_spec, dev_gate, weak_model, prepared, tmp_path,
                                     "--seal-uri", f"s3://{BUCKET}/pipelines/churn/registered/")

    source = report["champion"]["source"]
    assert (source["kind"], source["model_package_arn"], source["version"]) == ("model_package", v1, 1)
    assert source["passed_over"] == [ELSEWHERE_REASON]
