"""Model cards from real evaluation reports (the project's own evaluate job), and their creation in SageMaker.

Schema check: sagemaker-core (in the venv) ships the model card content as pydantic shapes
(``sagemaker.core.shapes.model_card_shapes``) but not the JSON schema file itself; the card is
validated with those shapes (types, lengths, enums) plus a check that every key is one they
define. ``model_package_details`` is outside those shapes (they model the package-attached
card) and is checked against the documented ModelPackageDetails fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from pipeline_code.core import problem
from pipeline_code.core.frameworks import ALGORITHMS
from pipeline_code.training import evaluate
from pipeline_code.training import model_card as mc
from tests.support import problem_type_reports as reports
from tests.support.moto_clients import keep_model_card_fields
from tests.support.training import UNREAD_SHAP_ROWS

REGION = "eu-west-1"
GROUP = "mlops-loop-dev-churn"
DESCRIPTION = "Will a subscription customer cancel within 30 days? Steady traffic from the CRM."
PACKAGE_DETAIL_FIELDS = {
    "approval_description", "created_by", "domain", "inference_specification", "model_approval_status",
    "model_package_arn", "model_package_description", "model_package_group_name", "model_package_name",
    "model_package_status", "model_package_version", "source_algorithms", "task",
}  # fmt: skip


def run_evaluation(spec, model, prepared, out: Path, gate, champion: str = "") -> dict:
    code = evaluate.main(
        ["--model-spec", spec.to_json(), "--model-dir", model, "--test-dir", prepared["test"],
         "--champion-dir", champion, "--output-dir", str(out), "--shap-sample-rows", str(UNREAD_SHAP_ROWS),
         *gate.to_args()]
    )  # fmt: skip
    assert code == 0
    return json.loads((out / "evaluation.json").read_text())


@pytest.fixture(scope="module")
def passing(churn_spec, dev_gate, strong_model, weak_model, prepared, tmp_path_factory):
    """The strong model evaluated against the weak one as champion, with the dev gate."""
    out = tmp_path_factory.mktemp("card-pass")
    return out, run_evaluation(churn_spec, strong_model, prepared, out, dev_gate, champion=weak_model)


@pytest.fixture(scope="module")
def unfair(churn_spec, dev_gate, strong_model, prepared, tmp_path_factory):
    """The same model under a disparate-impact minimum it cannot meet: the gate fails on fairness."""
    strict = dataclasses.replace(dev_gate, min_disparate_impact=0.99)
    out = tmp_path_factory.mktemp("card-unfair")
    report = run_evaluation(churn_spec, strong_model, prepared, out, strict)
    failed = [c["name"] for c in report["gate"]["checks"] if not c["passed"]]
    assert "disparate_impact" in failed, "precondition: the strict gate must fail on disparate impact"
    return out, report


def assert_schema_valid(card: dict) -> None:
    from sagemaker.core.shapes import model_card_shapes as shapes

    content = {k: v for k, v in card.items() if k != "model_package_details"}
    shapes.ModelCardContent.model_validate(content)  # types, lengths, enums

    def keys(data: dict, model) -> None:
        unknown = set(data) - set(model.model_fields)
        assert not unknown, f"{model.__name__} has no field(s) {sorted(unknown)}"

    keys(content, shapes.ModelCardContent)
    keys(card["model_overview"], shapes.ModelOverview)
    keys(card["intended_uses"], shapes.IntendedUses)
    keys(card["training_details"], shapes.TrainingDetails)
    keys(card["training_details"].get("training_job_details", {}), shapes.TrainingJobDetails)
    keys(card["additional_information"], shapes.AdditionalInformation)
    metric_types = {"number": shapes.SimpleMetric, "boolean": shapes.SimpleMetric, "string": shapes.SimpleMetric,
                    "bar_chart": shapes.BarChartMetric, "linear_graph": shapes.LinearGraphMetric, "matrix": shapes.MatrixMetric}  # fmt: skip
    for evaluation in card["evaluation_details"]:
        keys(evaluation, shapes.EvaluationDetailsItem)
        for group in evaluation["metric_groups"]:
            keys(group, shapes.MetricGroupsItem)
            assert 1 <= len(group["name"]) <= 63
            for metric in group["metric_data"]:
                model = metric_types[metric["type"]]
                keys(metric, model)
                model.model_validate(metric)
                if metric["type"] == "string":
                    assert len(metric["value"]) <= 63
    assert set(card.get("model_package_details", {})) <= PACKAGE_DETAIL_FIELDS
    assert len(json.dumps(card)) <= 100_000  # CreateModelCard Content limit


def group(card: dict, name: str) -> dict:
    (evaluation,) = card["evaluation_details"]
    return next(g for g in evaluation["metric_groups"] if g["name"] == name)


def values(metric_group: dict) -> dict:
    return {m["name"]: m for m in metric_group["metric_data"]}


def test_a_card_carries_intended_use_metrics_vs_champion_and_fairness(passing, churn_spec):
    _, report = passing
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/4"
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec, description=DESCRIPTION, model_package_arn=arn)
    assert_schema_valid(card)
    assert card["intended_uses"]["purpose_of_model"] == DESCRIPTION
    assert card["model_overview"]["algorithm_type"] == ALGORITHMS["xgboost"]
    assert "'gender' is never a model input" in card["intended_uses"]["intended_uses"]
    mine, theirs = values(group(card, "challenger (this version)")), values(group(card, "champion"))
    assert mine["auc"]["value"] == pytest.approx(report["challenger"]["metrics"]["auc"])
    assert theirs["auc"]["value"] == pytest.approx(report["champion"]["metrics"]["auc"])
    deltas = values(group(card, "challenger minus champion"))
    assert deltas["auc_delta"]["value"] == pytest.approx(report["comparison"]["auc_delta"])
    gate = values(group(card, "promotion gate"))
    assert gate["gate passed"]["value"] is report["gate"]["passed"] is True
    fairness = values(group(card, "fairness across gender"))
    di = report["challenger"]["fairness"]["disparate_impact"]
    assert fairness["disparate_impact"]["value"] == pytest.approx(di)
    assert (
        fairness["disparate_impact"]["notes"]
        == f"threshold >= {mc.figure(report['gate']['thresholds']['min_disparate_impact'])}: pass"
    )
    assert fairness["disparate_impact threshold"]["value"] == report["gate"]["thresholds"]["min_disparate_impact"]
    details = card["model_package_details"]
    assert (details["model_package_group_name"], details["model_package_version"]) == (GROUP, 4)
    md = mc.render_markdown(card)
    assert f"| auc | {report['challenger']['metrics']['auc']:.4f} | {report['champion']['metrics']['auc']:.4f} |" in md
    assert "## Limitations" in md and DESCRIPTION.split("?")[0] in md


def test_a_card_names_the_image_the_version_registered_and_the_framework_version_it_was_trained_with(passing, churn_spec):
    """GIVEN a registered version WHEN its card is built THEN it names the inference container the package registered
    (image by tag, and the archive) and the library version that trained the model, as the artefact recorded it: what a
    reviewer needs to rebuild it, or to tell a later patched image from the one it was judged in."""
    import xgboost

    _, report = passing
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/4"
    image = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
    archive = f"s3://mlops-loop-dev-artifacts/pipelines/churn/registered/{'a' * 64}/model.tar.gz"
    package = {"ModelPackageStatus": "Completed", "CreationTime": dt.datetime(2026, 3, 1, 9, 59, 7, tzinfo=dt.timezone.utc),
               "InferenceSpecification": {"Containers": [{"Image": image, "ModelDataUrl": archive}]}}
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec, description=DESCRIPTION,
                               model_package_arn=arn, model_package=package)
    assert_schema_valid(card)
    assert card["model_package_details"]["inference_specification"] == {
        "containers": [{"image": image, "model_data_url": archive}]}
    assert report["challenger"]["model_info"]["framework_version"] == xgboost.__version__
    assert card["additional_information"]["custom_details"]["framework_version"] == f"xgboost {xgboost.__version__}"


def test_a_fairness_failure_is_a_limitation_and_a_high_risk(unfair, churn_spec):
    _, report = unfair
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    assert_schema_valid(card)
    di = report["challenger"]["fairness"]["disparate_impact"]
    expected = f"disparate impact across gender {mc.figure(di)} below 0.99"
    assert expected in mc.limitations(report)
    assert f"- {expected}" in card["additional_information"]["caveats_and_recommendations"]
    assert card["intended_uses"]["risk_rating"] == "High"
    assert values(group(card, "fairness across gender"))["disparate_impact"]["notes"].endswith("FAIL")
    assert values(group(card, "promotion gate"))["gate passed"]["value"] is False
    assert card["evaluation_details"][0]["evaluation_observation"].startswith("Gate FAILED: ")
    assert "no champion comparison" in card["additional_information"]["caveats_and_recommendations"]
    assert expected in mc.render_markdown(card)


def test_a_calibration_failure_is_a_limitation_and_the_card_shows_the_ece(churn_spec, dev_gate, strong_model, prepared,
                                                                         tmp_path):
    """GIVEN the real model evaluated by the job with a calibration limit (--max-calibration-error) below its ECE WHEN
    its card is built THEN the headline shows the ECE, the gate group the failed calibration check, and the
    limitations say in words that its scores are not reliable as probabilities."""
    first = run_evaluation(churn_spec, strong_model, prepared, tmp_path / "first", dev_gate)
    ece = first["challenger"]["metrics"]["ece"]
    strict = dataclasses.replace(dev_gate, max_calibration_error=round(ece / 2, 4))
    report = run_evaluation(churn_spec, strong_model, prepared, tmp_path / "strict", strict)
    assert [c["name"] for c in report["gate"]["checks"] if not c["passed"]] == ["calibration"]
    assert report["gate"]["thresholds"]["max_calibration_error"] == strict.max_calibration_error

    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    assert_schema_valid(card)
    assert values(group(card, "challenger (this version)"))["ece"]["value"] == pytest.approx(ece)
    assert values(group(card, "promotion gate"))["calibration"]["value"] is False
    expected = (f"expected calibration error {mc.figure(ece)} above the maximum {mc.figure(strict.max_calibration_error)}: "
                "its scores are less reliable as probabilities than the gate allows (promotion gate failed)")
    assert expected in mc.limitations(report)
    assert f"- {expected}" in card["additional_information"]["caveats_and_recommendations"]
    assert card["intended_uses"]["risk_rating"] == "High"


def test_small_groups_and_slices_are_limitations(passing, churn_spec):
    _, report = passing
    small = [g for g, e in report["challenger"]["fairness"]["groups"].items() if not e["eligible"]]
    assert small, "precondition: the generated data has groups below min_group_rows"
    notes = mc.limitations(report)
    for name in small:
        assert any(f"gender group {name!r} has" in n and "left out of the fairness metrics" in n for n in notes)


def test_cli_writes_json_and_markdown(passing, churn_spec, tmp_path):
    directory, report = passing
    spec_file = tmp_path / "churn.json"
    spec_file.write_text(json.dumps({**churn_spec.to_dict(), "description": DESCRIPTION}))
    out = tmp_path / "card"
    assert mc.main(["--evaluation-dir", str(directory), "--model-spec", str(spec_file), "--output-dir", str(out)]) == 0
    card = json.loads((out / mc.CARD_JSON).read_text())
    assert card["model_overview"]["model_description"] == DESCRIPTION
    assert "model_package_details" not in card
    assert (out / mc.CARD_MARKDOWN).read_text() == mc.render_markdown(card)


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--model-package-arn", "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/x"],
            "not a versioned model package ARN",
        ),
        (["--evaluation-dir", "/nonexistent"], "holds no evaluation.json"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(passing, churn_spec, tmp_path, capsys, extra, message):
    directory, _ = passing
    argv = ["--evaluation-dir", str(directory), "--model-spec", churn_spec.to_json(), "--output-dir", str(tmp_path), *extra]
    assert mc.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_create_without_an_arn_is_a_usage_error(passing, churn_spec, tmp_path):
    directory, _ = passing
    with pytest.raises(SystemExit) as exc:
        mc.main(
            ["--evaluation-dir", str(directory), "--model-spec", churn_spec.to_json(), "--output-dir", str(tmp_path), "--create"]
        )
    assert exc.value.code == 2


def test_card_names_fit_the_limit_and_name_the_packages_creation():
    created = dt.datetime(2026, 3, 1, 9, 59, 7, tzinfo=dt.timezone.utc)
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/12"
    assert mc.card_name(arn, created) == f"{GROUP}-v12-20260301T095907Z"
    long_group = "g" * 63
    name = mc.card_name(f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{long_group}/12", created)
    assert len(name) <= 63 and name.endswith("-v12-20260301T095907Z")


def card_of(client, arn: str) -> str:
    """The card name of the registered version ``arn`` (named after its CreationTime)."""
    return mc.card_name(arn, client.describe_model_package(ModelPackageName=arn)["CreationTime"])


@pytest.fixture()
def registry(monkeypatch):
    keep_model_card_fields(monkeypatch)
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        arn = client.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [{"Image": "xgboost:3.0-5", "ModelDataUrl": "s3://artifacts/pipelines/churn/train/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            CustomerMetadataProperties={"code_version": "abc1234", "frozen_test": "s3://artifacts/pipelines/churn/frozen-test/",
                                        "job_code_sha256": "c0de" * 16},
        )["ModelPackageArn"]
        yield client, arn


def test_create_then_rerun_then_update(registry, passing, unfair, churn_spec, tmp_path, capsys):
    """GIVEN a registered version WHEN the job runs with --create THEN a Draft card <group>-v<version>-<created>
    exists linked to it; the same content again changes nothing; new content updates it (back to Draft)."""
    client, arn = registry
    name = card_of(client, arn)
    assert name.startswith(f"{GROUP}-v1-")

    def create(directory) -> int:
        return mc.main(
            ["--evaluation-dir", str(directory), "--model-spec", churn_spec.to_json(), "--model-package-arn", arn,
             "--output-dir", str(tmp_path / "out"), "--create", "--description", DESCRIPTION],
            sagemaker_client=client,
        )  # fmt: skip

    assert create(passing[0]) == 0
    card = client.describe_model_card(ModelCardName=name)
    assert card["ModelCardStatus"] == "Draft" and card["ModelCardVersion"] == 1
    content = json.loads(card["Content"])
    assert content == json.loads((tmp_path / "out" / mc.CARD_JSON).read_text())
    assert content["model_package_details"]["model_package_arn"] == arn
    assert content["model_package_details"]["model_approval_status"] == "PendingManualApproval"
    assert content["model_overview"]["model_artifact"] == ["s3://artifacts/pipelines/churn/train/model.tar.gz"]
    assert content["evaluation_details"][0]["datasets"] == ["s3://artifacts/pipelines/churn/frozen-test/"]
    assert content["additional_information"]["custom_details"]["code_version"] == "abc1234"
    # The job code every job of the run verified before running it, by content.
    assert content["additional_information"]["custom_details"]["job_code_sha256"] == "c0de" * 16
    assert content["additional_information"]["custom_details"][mc.PACKAGE_CREATED_DETAIL] == name.rsplit("-", 1)[1]
    assert f"model card {name}: created" in capsys.readouterr().out

    assert create(passing[0]) == 0
    assert client.describe_model_card(ModelCardName=name)["ModelCardVersion"] == 1
    assert f"model card {name}: unchanged" in capsys.readouterr().out

    # a reviewer moves it on
    client.update_model_card(ModelCardName=name, ModelCardStatus="PendingReview")
    assert create(unfair[0]) == 0
    updated = client.describe_model_card(ModelCardName=name)
    assert updated["ModelCardVersion"] == 4 and updated["ModelCardStatus"] == "Draft"
    assert json.loads(updated["Content"])["intended_uses"]["risk_rating"] == "High"
    assert f"model card {name}: updated" in capsys.readouterr().out


def test_new_content_and_the_status_go_in_separate_calls_as_sagemaker_requires():
    """SageMaker refuses an UpdateModelCard that sets both (moto does not): back to Draft first, then the content."""
    import boto3
    from botocore.stub import Stubber

    from pipeline_code.training.model_card import publish

    client = boto3.client("sagemaker", region_name="eu-west-1")
    name = f"{GROUP}-v1"
    arn = f"arn:aws:sagemaker:eu-west-1:111111111111:model-card/{name}"
    with Stubber(client) as stub:
        stub.add_client_error("create_model_card", "ConflictException", "exists", 400)
        stub.add_response("describe_model_card", {
            "ModelCardArn": arn, "ModelCardName": name, "ModelCardVersion": 2, "Content": '{"old": 1}',
            "ModelCardStatus": "Approved", "CreationTime": "2026-12-01T00:00:00Z", "CreatedBy": {}}, {"ModelCardName": name})
        stub.add_response("update_model_card", {"ModelCardArn": arn}, {"ModelCardName": name, "ModelCardStatus": "Draft"})
        stub.add_response("update_model_card", {"ModelCardArn": arn}, {"ModelCardName": name, "Content": '{"new": 1}'})
        assert publish.create_or_update(client, name=name, content={"new": 1}) == ("updated", arn)
        stub.assert_no_pending_responses()


def test_an_archived_card_is_not_overwritten(registry, passing, churn_spec, tmp_path, capsys):
    client, arn = registry
    name = card_of(client, arn)
    created = name.rsplit("-", 1)[1]
    ours = {"model_package_details": {"model_package_arn": arn},
            "additional_information": {"custom_details": {mc.PACKAGE_CREATED_DETAIL: created}}}
    client.create_model_card(ModelCardName=name, Content=json.dumps(ours), ModelCardStatus="Archived")
    code = mc.main(
        ["--evaluation-dir", str(passing[0]), "--model-spec", churn_spec.to_json(), "--model-package-arn", arn,
         "--output-dir", str(tmp_path), "--create"],
        sagemaker_client=client,
    )  # fmt: skip
    assert code == 1
    assert "is Archived and cannot be updated" in capsys.readouterr().err
    assert client.describe_model_card(ModelCardName=name)["ModelCardVersion"] == 1


# --- a group deleted and created again (a dev teardown and redeploy, or a model removed and added back) -------------
# Its new versions restart at 1 under the same ARNs; the cards of the versions before are not CloudFormation resources
# and outlive the group, Approved by a reviewer perhaps, encrypted with a key that may since be pending deletion.


def _old_card(client, name: str, arn: str, created: str) -> None:
    """The card a version of the group's earlier life left behind, moved on to Approved by a reviewer."""
    content = {"model_overview": {"model_description": "OLD LIFE v1"}, "model_package_details": {"model_package_arn": arn},
               "additional_information": {"custom_details": {mc.PACKAGE_CREATED_DETAIL: created}}}
    client.create_model_card(ModelCardName=name, Content=json.dumps(content), ModelCardStatus="Approved")


def test_a_re_created_groups_v1_gets_a_card_of_its_own_and_the_old_lifes_cards_stay_as_they_were(
        registry, passing, churn_spec, tmp_path, capsys):
    """GIVEN the group's earlier life left v1's Approved card, named as cards were before (<group>-v1) and as they are now
    (<group>-v1-<its creation>), WHEN the ModelCard step runs for the new v1 THEN it creates the new v1's own card
    and reads or changes neither old card (trial P, finding 3)."""
    client, arn = registry
    _old_card(client, f"{GROUP}-v1", arn, "20250301T095900Z")
    _old_card(client, f"{GROUP}-v1-20250301T095900Z", arn, "20250301T095900Z")

    assert mc.main(["--evaluation-dir", str(passing[0]), "--model-spec", churn_spec.to_json(), "--model-package-arn", arn,
                    "--output-dir", str(tmp_path), "--create"], sagemaker_client=client) == 0

    name = card_of(client, arn)
    assert f"model card {name}: created" in capsys.readouterr().out
    assert client.describe_model_card(ModelCardName=name)["ModelCardStatus"] == "Draft"
    for old in (f"{GROUP}-v1", f"{GROUP}-v1-20250301T095900Z"):
        card = client.describe_model_card(ModelCardName=old)
        assert (card["ModelCardVersion"], card["ModelCardStatus"]) == (1, "Approved")
        assert json.loads(card["Content"])["model_overview"]["model_description"] == "OLD LIFE v1"


def test_a_card_of_that_name_that_describes_another_package_is_refused_not_overwritten(
        registry, passing, churn_spec, tmp_path, capsys):
    """GIVEN a card under the new v1's own name that describes another package (same ARN, another creation time)
    WHEN the ModelCard step runs THEN it fails (1) saying whose card it is and how to clear it, and the card is as it was."""
    client, arn = registry
    name = card_of(client, arn)
    _old_card(client, name, arn, "20250301T095900Z")

    assert mc.main(["--evaluation-dir", str(passing[0]), "--model-spec", churn_spec.to_json(), "--model-package-arn", arn,
                    "--output-dir", str(tmp_path), "--create"], sagemaker_client=client) == 1

    created = name.rsplit("-", 1)[1]
    assert capsys.readouterr().err == (
        f"{mc.cli.PROG}: error: model card {name!r} exists and describes {arn} created 20250301T095900Z, not {arn} "
        f"created {created}: it is left as it is (it may be another package's reviewed record); delete it if it is not "
        f"(aws sagemaker delete-model-card --model-card-name {name} --region {REGION}) and run the step again\n")
    card = client.describe_model_card(ModelCardName=name)
    assert (card["ModelCardVersion"], card["ModelCardStatus"]) == (1, "Approved")


def test_a_card_that_names_no_package_is_not_taken_over_either():
    from botocore.stub import Stubber

    from pipeline_code.training.model_card import publish

    client = boto3.client("sagemaker", region_name=REGION)
    name = f"{GROUP}-v1-20260301T095907Z"
    arn = f"arn:aws:sagemaker:{REGION}:111111111111:model-package/{GROUP}/1"
    ours = {"model_package_details": {"model_package_arn": arn},
            "additional_information": {"custom_details": {mc.PACKAGE_CREATED_DETAIL: "20260301T095907Z"}}}
    with Stubber(client) as stub:
        stub.add_client_error("create_model_card", "ConflictException", "exists", 400)
        stub.add_response("describe_model_card", {
            "ModelCardArn": f"arn:aws:sagemaker:{REGION}:111111111111:model-card/{name}", "ModelCardName": name,
            "ModelCardVersion": 1, "Content": '{"model_overview": {}}', "ModelCardStatus": "Draft",
            "CreationTime": "2026-03-01T10:00:00Z", "CreatedBy": {}}, {"ModelCardName": name})
        with pytest.raises(mc.ModelCardError, match=rf"^model card '{name}' exists and describes no model package, not {arn} "
                                                    r"created 20260301T095907Z: it is left as it is"):
            publish.create_or_update(client, name=name, content=ours)
        stub.assert_no_pending_responses()


def test_the_new_card_is_created_with_the_current_key_and_the_old_lifes_card_is_never_read(passing, churn_spec, tmp_path):
    """The old life's card is encrypted with its key, in dev pending deletion once the environment was destroyed
    (reading that card may then fail; UpdateModelCard takes no SecurityConfig). The step's only card call is the new
    card's CreateModelCard, with the key it is given (Stubber: any other call fails the test)."""
    from botocore.stub import ANY, Stubber

    client = boto3.client("sagemaker", region_name=REGION)
    arn = f"arn:aws:sagemaker:{REGION}:111111111111:model-package/{GROUP}/1"
    key = f"arn:aws:kms:{REGION}:111111111111:key/new-key"
    created = dt.datetime(2026, 3, 1, 9, 59, 7, tzinfo=dt.timezone.utc)
    name = f"{GROUP}-v1-20260301T095907Z"
    with Stubber(client) as stub:
        stub.add_response("describe_model_package", {
            "ModelPackageName": GROUP, "ModelPackageArn": arn, "CreationTime": created, "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []}, "ModelApprovalStatus": "PendingManualApproval"},
            {"ModelPackageName": arn})
        stub.add_response("create_model_card", {"ModelCardArn": f"arn:aws:sagemaker:{REGION}:111111111111:model-card/{name}"},
                          {"ModelCardName": name, "Content": ANY, "ModelCardStatus": "Draft",
                           "SecurityConfig": {"KmsKeyId": key}})
        assert mc.main(["--evaluation-dir", str(passing[0]), "--model-spec", churn_spec.to_json(), "--model-package-arn",
                        arn, "--output-dir", str(tmp_path), "--create", "--kms-key-id", key], sagemaker_client=client) == 0
        stub.assert_no_pending_responses()


def test_a_package_without_a_creation_time_gets_no_card(passing, churn_spec, tmp_path, capsys):
    """DescribeModelPackage always gives CreationTime (botocore's model: a member of its output); a response without one
    (a fake client here: the Stubber validates responses) names no card, rather than a name another package may hold."""
    arn = f"arn:aws:sagemaker:{REGION}:111111111111:model-package/{GROUP}/1"

    class Registry:
        def describe_model_package(self, ModelPackageName):
            return {"ModelPackageArn": arn, "ModelPackageStatus": "Completed"}

    assert mc.main(["--evaluation-dir", str(passing[0]), "--model-spec", churn_spec.to_json(), "--model-package-arn",
                    arn, "--output-dir", str(tmp_path), "--create"], sagemaker_client=Registry()) == 1
    assert capsys.readouterr().err == (
        f"{mc.cli.PROG}: error: {arn}: DescribeModelPackage gave no usable CreationTime (package creation time None is "
        "not a time), which the card's name carries\n")


# Multiclass and regression cards, from real evaluation reports (tests/support/problem_type_reports.py). Every card
# is validated as above plus the limits of SageMaker's model card JSON schema those shapes do not enforce: a matrix
# has at most 20 rows of at most 20 numbers, axis names at most 63 characters, a bar chart one name per value, at
# most 50 training metrics.

def assert_card_schema_valid(card: dict) -> None:
    """:func:`assert_schema_valid` and the JSON schema's array limits."""
    assert_schema_valid(card)
    assert len(card["training_details"].get("training_job_details", {}).get("training_metrics", [])) <= 50
    for evaluation in card["evaluation_details"]:
        for metric_group in evaluation["metric_groups"]:
            for metric in metric_group["metric_data"]:
                if metric["type"] == "matrix":
                    assert 1 <= len(metric["value"]) <= 20, metric["name"]
                    assert all(1 <= len(row) <= 20 for row in metric["value"]), metric["name"]
                    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for row in metric["value"] for v in row)
                    assert len(metric["x_axis_name"]) == len(metric["value"][0])
                    assert len(metric["y_axis_name"]) == len(metric["value"])
                if metric["type"] == "bar_chart":
                    assert metric["value"] and len(metric["x_axis_name"]) == len(metric["value"]), metric["name"]
                    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in metric["value"])
                axes = metric.get("x_axis_name"), metric.get("y_axis_name")
                for axis in axes:
                    for name in axis if isinstance(axis, list) else [axis] if axis else []:
                        assert 1 <= len(name) <= 63, name


def group_names(card: dict) -> list:
    (evaluation,) = card["evaluation_details"]
    return [g["name"] for g in evaluation["metric_groups"]]


def charts(metric_group: dict) -> dict:
    """{chart name: {x label: value}} of a group's bar charts."""
    return {m["name"]: dict(zip(m["x_axis_name"], m["value"])) for m in metric_group["metric_data"] if m["type"] == "bar_chart"}


def checks(report: dict) -> dict:
    return {c["name"] + (f" {c['slice']}" if c.get("slice") else ""): c for c in report["gate"]["checks"]}


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory) -> reports.Trained:
    return reports.shared(problem.MULTICLASS, tmp_path_factory)


@pytest.fixture(scope="module")
def regression(tmp_path_factory) -> reports.Trained:
    return reports.shared(problem.REGRESSION, tmp_path_factory)


@pytest.fixture(scope="module")
def multiclass_report(multiclass, tmp_path_factory) -> tuple:
    """The realistic multiclass model evaluated against the weak one as champion (the gate passes)."""
    out = tmp_path_factory.mktemp("multiclass-eval")
    report = multiclass.evaluate(out, shap_rows=UNREAD_SHAP_ROWS)
    assert report["gate"]["passed"], "precondition: the permissive gate passes the realistic model"
    return out, report


@pytest.fixture(scope="module")
def regression_report(regression, tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("regression-eval")
    report = regression.evaluate(out, shap_rows=UNREAD_SHAP_ROWS)
    assert report["gate"]["passed"], "precondition: the permissive gate passes the realistic model"
    return out, report


def test_a_multiclass_card_names_its_classes_and_reports_per_class(multiclass, multiclass_report):
    """GIVEN a multiclass report with a champion WHEN its card is built THEN the problem type, the intended use
    (the most probable of the classes), the multiclass headline metrics, the metrics and confusion per class, and
    no threshold, binary confusion or ROC curve."""
    _, report = multiclass_report
    card = mc.build_model_card(evaluation_report=report, model_spec=multiclass.spec)
    assert_card_schema_valid(card)
    assert card["model_overview"]["problem_type"] == problem.DISPLAY_NAME[problem.MULTICLASS] == "Multiclass Classification"
    uses = card["intended_uses"]["intended_uses"]
    assert "which class of 'segment' among the 3 classes bronze, silver, gold" in uses
    assert "the prediction is the most probable class" in uses
    assert "'age_band' is never a model input" in uses
    assert "threshold" not in uses.replace("no decision threshold", "") and "probability that" not in uses
    assert "class mix of 'segment'" in card["intended_uses"]["factors_affecting_model_efficiency"]

    mine, theirs = values(group(card, "challenger (this version)")), values(group(card, "champion"))
    assert list(mine) == list(problem.HEADLINE_METRICS[problem.MULTICLASS])
    for name in problem.HEADLINE_METRICS[problem.MULTICLASS]:
        assert mine[name]["value"] == pytest.approx(report["challenger"]["metrics"][name])
        assert theirs[name]["value"] == pytest.approx(report["champion"]["metrics"][name])
    deltas = values(group(card, "challenger minus champion"))
    assert deltas["macro_f1_delta"]["value"] == pytest.approx(report["comparison"]["macro_f1_delta"])
    names = group_names(card)
    assert "confusion matrix" not in names and "ROC curve" not in names
    assert not any(n.startswith("positive rate by") for n in names)

    (matrix,) = group(card, "confusion matrix by class")["metric_data"]
    assert matrix["type"] == "matrix"
    assert matrix["value"] == report["challenger"]["metrics"]["confusion"]["matrix"]
    assert matrix["y_axis_name"] == [f"actual {c}" for c in reports.CLASSES]
    assert matrix["x_axis_name"] == [f"predicted {c}" for c in reports.CLASSES]
    per_class = charts(group(card, "metrics by class"))
    for name in reports.CLASSES:
        entry = report["challenger"]["metrics"]["per_class"][name]
        assert per_class["test rows by class"][name] == entry["rows"]
        assert per_class["F1 by class"][name] == pytest.approx(entry["f1"])
        assert per_class["recall by class"][name] == pytest.approx(entry["recall"])
        assert per_class["predicted share by class"][name] == pytest.approx(entry["predicted_share"])

    slices = charts(group(card, "AUC by channel"))["AUC by channel"]
    assert slices["web"] == pytest.approx(report["challenger"]["slices"]["channel"]["values"]["web"]["auc"])
    gate = values(group(card, "promotion gate"))
    assert {"min_auc", "challenger_margin", "fairness_evidence", "demographic_parity", "disparate_impact"} <= set(gate)
    assert gate["slice_regression channel=web"]["value"] is True
    assert card["additional_information"]["custom_details"]["problem_type"] == problem.MULTICLASS
    assert card["additional_information"]["custom_details"]["classes"] == "bronze, silver, gold"
    assert not any("no champion comparison" in n for n in mc.limitations(report))

    md = mc.render_markdown(card)
    assert "- Problem: Multiclass Classification," in md
    f1 = report["challenger"]["metrics"]["macro_f1"]
    assert f"| macro\\_f1 | {f1:.4f} | {report['champion']['metrics']['macro_f1']:.4f} |" in md
    assert "| Class | test rows | precision | recall | F1 | predicted share | actual share |" in md
    gold = report["challenger"]["metrics"]["per_class"]["gold"]
    assert f"| gold | {gold['rows']} | {gold['precision']:.4f} | {gold['recall']:.4f} | {gold['f1']:.4f} |" in md
    row = report["challenger"]["metrics"]["confusion"]["matrix"][0]
    assert "| actual bronze | " + " | ".join(str(n) for n in row) + " |" in md
    assert "| min\\_auc | yes |" in md


def test_a_multiclass_card_shows_parity_per_class(multiclass, multiclass_report):
    """THEN fairness is the worst class's parity against the gate, every class's parity, each group's shares."""
    _, report = multiclass_report
    fairness = report["challenger"]["fairness"]
    card = mc.build_model_card(evaluation_report=report, model_spec=multiclass.spec)
    main = values(group(card, "fairness across age_band"))
    assert main["disparate_impact"]["value"] == pytest.approx(fairness["disparate_impact"])
    assert main["disparate_impact"]["notes"] == (
        f"worst class {fairness['disparate_impact_class']}; threshold >= {mc.figure(reports.GATE.min_disparate_impact)}: pass"
    )
    assert main["demographic_parity_difference"]["notes"].startswith(f"worst class {fairness['demographic_parity_class']}; ")
    assert main["disparate_impact threshold"]["value"] == reports.GATE.min_disparate_impact
    parity = charts(group(card, "parity by class across age_band"))
    for name in reports.CLASSES:
        assert parity["disparate impact by class"][name] == pytest.approx(fairness["per_class"][name]["disparate_impact"])
        assert parity["demographic parity difference by class"][name] == pytest.approx(
            fairness["per_class"][name]["demographic_parity_difference"]
        )
    (shares,) = group(card, "predicted class share by age_band")["metric_data"]
    assert shares["x_axis_name"] == reports.CLASSES
    young = shares["value"][shares["y_axis_name"].index("young")]
    assert young == pytest.approx([fairness["groups"]["young"]["predicted_shares"][c] for c in reports.CLASSES])
    ethics = card["additional_information"]["ethical_considerations"]
    assert "per class of 'segment'" in ethics and f"class {fairness['disparate_impact_class']}" in ethics
    md = mc.render_markdown(card)
    assert "### Parity by class across age\\_band" in md and "### Predicted class share by age\\_band" in md


def test_a_version_that_answers_in_another_shape_says_on_its_card_why_a_person_approves_it(multiclass, tmp_path):
    """GIVEN the multiclass challenger evaluated against a binary champion, auto-approval requested WHEN its card is
    built THEN the caveats say the callers' contract changes and that it was registered PendingManualApproval."""
    from pipeline_code.core import approval
    from pipeline_code.training import model_io

    champion = model_io.load_model(multiclass.weak)
    champion.metadata["problem_type"] = problem.BINARY
    model_io.save_model(champion, str(tmp_path / "champion"))
    out = tmp_path / "evaluation"
    code = evaluate.main(
        ["--model-spec", multiclass.spec.to_json(), "--model-dir", multiclass.strong, "--test-dir",
         multiclass.prepared["test"], "--champion-dir", str(tmp_path / "champion"), "--output-dir", str(out),
         "--approval-status", approval.APPROVED, "--shap-sample-rows", str(UNREAD_SHAP_ROWS), *reports.GATE.to_args()]
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "evaluation.json").read_text())
    change = f"the champion is a {problem.BINARY} model, the challenger a {problem.MULTICLASS} one"
    # the change once, on the not-compared line; the registration note says what it means without repeating it
    note = ("the callers' contract changes; registered PendingManualApproval, not the Approved requested: a person "
            "approves a version that answers its callers in another shape")
    caveats = mc.limitations(report)
    assert note in caveats and f"the champion was not compared ({change}): judged as the first model of its group" in caveats
    assert "\n".join(caveats).count(change) == 1
    card = mc.build_model_card(evaluation_report=report, model_spec=multiclass.spec)
    assert_card_schema_valid(card)
    assert f"- {note}" in card["additional_information"]["caveats_and_recommendations"]
    assert card["intended_uses"]["risk_rating"] != "Low"


def test_a_multiclass_fairness_failure_names_the_class(multiclass, tmp_path):
    """GIVEN a model that predicts one class for nearly every record of one age band, a disparate-impact minimum that
    class misses THEN the limitation names the class the gate failed on; risk High."""
    import numpy as np
    import pandas as pd

    from pipeline_code.training import metrics_multiclass, train
    from pipeline_code.training.gate import decide

    strict = dataclasses.replace(reports.GATE, min_disparate_impact=0.99)
    report = multiclass.evaluate(tmp_path, gate=strict, champion=None, shap_rows=UNREAD_SHAP_ROWS)
    frame = pd.read_parquet(Path(multiclass.prepared["test"]) / "test.parquet")
    spec = multiclass.spec
    biased = train.predict(train.load_model(multiclass.strong), frame)
    biased[(frame["age_band"] == "senior").to_numpy()] = np.eye(len(spec.classes))[-1]
    report["challenger"]["fairness"] = metrics_multiclass.fairness(
        frame["age_band"], frame[spec.target].to_numpy(dtype=np.float64), biased, spec.classes, attribute="age_band",
        min_group_rows=100)
    report["gate"] = {**decide(report, strict).to_dict(), "thresholds": strict.to_dict()}
    check = checks(report)["disparate_impact"]
    assert not check["passed"], "precondition: the strict gate fails on disparate impact"
    card = mc.build_model_card(evaluation_report=report, model_spec=multiclass.spec)
    assert_card_schema_valid(card)
    expected = f"disparate impact across age_band (class {check['class']}) {mc.figure(check['value'])} below {mc.figure(check['threshold'])}"
    assert expected in mc.limitations(report)
    assert f"- {expected}" in card["additional_information"]["caveats_and_recommendations"]
    assert "no champion comparison: this was the first model of its group" in mc.limitations(report)
    assert card["intended_uses"]["risk_rating"] == "High"
    assert values(group(card, "fairness across age_band"))["disparate_impact"]["notes"].endswith("FAIL")
    assert "champion" not in group_names(card)


def test_a_regression_card_reports_errors_and_error_parity(regression, regression_report):
    """GIVEN a regression report with a champion WHEN its card is built THEN the predicted value as intended use,
    the regression headline metrics, the error quantiles, error parity per group, R² per slice and the
    min_quality and error_parity gate checks; nothing binary."""
    _, report = regression_report
    card = mc.build_model_card(evaluation_report=report, model_spec=regression.spec)
    assert_card_schema_valid(card)
    assert card["model_overview"]["problem_type"] == "Regression"
    uses = card["intended_uses"]["intended_uses"]
    assert "returns the predicted value of 'basket_value'" in uses
    assert f"mean absolute error is {mc.figure(report['challenger']['metrics']['mae'])}" in uses
    assert "threshold" not in uses and "probability" not in uses
    mine = values(group(card, "challenger (this version)"))
    assert list(mine) == list(problem.HEADLINE_METRICS[problem.REGRESSION]) == ["r2", "rmse", "mae", "bias"]
    for name in mine:
        assert mine[name]["value"] == pytest.approx(report["challenger"]["metrics"][name])
    names = group_names(card)
    assert "confusion matrix" not in names and "ROC curve" not in names and "confusion matrix by class" not in names
    errors = values(group(card, "error distribution"))
    quantiles = report["challenger"]["metrics"]["abs_error_quantiles"]
    for q in ("p50", "p90", "p99"):
        assert errors[f"abs_error_{q}"]["value"] == pytest.approx(quantiles[q])
    assert errors["mean_target"]["value"] == pytest.approx(report["challenger"]["metrics"]["mean_target"])

    fairness = report["challenger"]["fairness"]
    main = values(group(card, "fairness across age_band"))
    assert set(main) == {"error_parity_ratio", "error_parity_ratio threshold", "bias_gap", "bias_gap threshold",
                         "mae_difference"}
    assert main["error_parity_ratio"]["value"] == pytest.approx(fairness["error_parity_ratio"])
    assert main["error_parity_ratio"]["notes"] == (f"lowest / highest group MAE over its mean |target|; threshold >= "
                                                   f"{mc.figure(reports.GATE.min_disparate_impact)}: pass")
    assert main["bias_gap"]["value"] == pytest.approx(fairness["bias_gap"])
    assert main["bias_gap"]["notes"] == (f"{fairness['most_over_estimated_group']} over- vs "
                                         f"{fairness['most_under_estimated_group']} under-estimated, mean error over its "
                                         f"mean |target|; threshold <= {mc.figure(reports.GATE.max_demographic_parity_difference)}"
                                         ": pass")
    assert main["bias_gap threshold"]["value"] == reports.GATE.max_demographic_parity_difference
    assert main["mae_difference"]["notes"] == "reported, not gated"
    by_group = charts(group(card, "error by age_band"))
    for name in fairness["eligible_groups"]:
        assert by_group["MAE by age_band"][name] == pytest.approx(fairness["groups"][name]["mae"])
        assert by_group["bias by age_band"][name] == pytest.approx(fairness["groups"][name]["bias"])
    slices = charts(group(card, "R² by channel"))["R² by channel"]
    assert slices["app"] == pytest.approx(report["challenger"]["slices"]["channel"]["values"]["app"]["r2"])
    gate = values(group(card, "promotion gate"))
    assert gate["min_quality"]["value"] is True and gate["error_parity"]["value"] is True
    assert gate["bias_parity"]["value"] is True and gate["bias_parity"]["notes"] == checks(report)["bias_parity"]["message"]
    assert gate["min_quality"]["notes"] == checks(report)["min_quality"]["message"]
    assert "min_auc" not in gate and "disparate_impact" not in gate
    ethics = card["additional_information"]["ethical_considerations"]
    assert "as error parity" in ethics and mc.figure(fairness["error_parity_ratio"]) in ethics
    assert (f"the gap between the most over- and most under-estimated group's mean error over its mean |target| "
            f"{mc.figure(fairness['bias_gap'])} (maximum {mc.figure(reports.GATE.max_demographic_parity_difference)}; over: "
            f"{fairness['most_over_estimated_group']}, under: {fairness['most_under_estimated_group']})") in ethics
    training = {m["name"] for m in card["training_details"]["training_job_details"]["training_metrics"]}
    assert {"validation_r2", "validation_rmse", "validation_mae"} <= training and "validation_auc" not in training

    md = mc.render_markdown(card)
    assert "- Problem: Regression," in md
    assert f"| abs\\_error\\_p90 | {quantiles['p90']:.4f} |" in md
    assert f"| error\\_parity\\_ratio | {fairness['error_parity_ratio']:.4f} |" in md
    assert "| Group | mean absolute error | mean prediction - target | test rows |" in md
    assert "| min\\_quality | yes |" in md and "| error\\_parity | yes |" in md


def test_regression_gate_failures_are_limitations(regression, tmp_path):
    """GIVEN an R² floor above the model's, and an error-parity minimum and a bias-gap maximum it cannot meet THEN
    each is a limitation."""
    spec = reports.make_spec(problem.REGRESSION, min_quality=0.95)
    strict = dataclasses.replace(reports.GATE, min_disparate_impact=0.99, max_demographic_parity_difference=0.01)
    report = regression.evaluate(tmp_path, gate=strict, spec=spec, champion=None, shap_rows=UNREAD_SHAP_ROWS)
    failed = {name for name, c in checks(report).items() if not c["passed"]}
    assert failed == {"min_quality", "bias_parity", "error_parity"}, "precondition"
    card = mc.build_model_card(evaluation_report=report, model_spec=spec)
    assert_card_schema_valid(card)
    r2, ratio = report["challenger"]["metrics"]["r2"], report["challenger"]["fairness"]["error_parity_ratio"]
    notes = mc.limitations(report)
    assert f"R² {mc.figure(r2)} below the floor 0.95 (promotion gate failed)" in notes
    assert f"error parity across age_band (lowest / highest group MAE) {mc.figure(ratio)} below 0.99" in notes
    fairness = report["challenger"]["fairness"]
    assert (f"bias gap across age_band ({fairness['most_over_estimated_group']} over- vs "
            f"{fairness['most_under_estimated_group']} under-estimated) {mc.figure(fairness['bias_gap'])} above the "
            "maximum 0.01") in notes
    assert card["intended_uses"]["risk_rating"] == "High"
    gate = values(group(card, "promotion gate"))
    assert gate["min_quality"]["value"] is False and gate["error_parity"]["value"] is False
    assert values(group(card, "fairness across age_band"))["error_parity_ratio"]["notes"].endswith("FAIL")
    assert gate["bias_parity"]["value"] is False
    assert values(group(card, "fairness across age_band"))["bias_gap"]["notes"].endswith("FAIL")
    md = mc.render_markdown(card)
    assert "| min\\_quality | **no** |" in md and "| error\\_parity | **no** |" in md
    assert "| bias\\_parity | **no** |" in md


def test_a_lower_is_better_primary_metric_reads_the_right_way(regression, tmp_path):
    """GIVEN RMSE as the primary metric and the weak model challenging the realistic one THEN the margin
    limitation names RMSE, and the slices are gated and shown on RMSE."""
    spec = reports.make_spec(problem.REGRESSION, primary_metric="rmse")
    report = regression.evaluate(tmp_path, spec=spec, challenger="weak", champion="strong", shap_rows=UNREAD_SHAP_ROWS)
    margin = checks(report)["challenger_margin"]
    assert not margin["passed"], "precondition: the weak model does not beat the realistic one"
    card = mc.build_model_card(evaluation_report=report, model_spec=spec)
    assert_card_schema_valid(card)
    notes = mc.limitations(report)
    assert (
        f"RMSE {mc.figure(margin['value'])} does not beat the champion's {mc.figure(margin['champion_value'])} by the required "
        f"margin (needs {mc.figure(margin['threshold'])})"
    ) in notes
    worse = [c for name, c in checks(report).items() if name.startswith("slice_regression") and not c["passed"]]
    assert worse, "precondition: the weak model's RMSE is worse by more than allowed in some slice"
    for check in worse:
        assert (
            f"slice {check['slice']}: RMSE {mc.figure(check['value'])} rose above the champion's "
            f"{mc.figure(check['champion_value'])} by more than allowed (ceiling {mc.figure(check['threshold'])})"
        ) in notes
    assert "RMSE by channel" in group_names(card)
    assert card["additional_information"]["custom_details"]["primary_metric"] == "rmse"


def test_more_classes_than_a_card_matrix_holds(tmp_path):
    """GIVEN a 24-class model THEN no matrix over 20 x 20 in the card: the per-class charts carry every class."""
    spec, report = reports.many_classes_report(tmp_path, shap_rows=UNREAD_SHAP_ROWS)
    card = mc.build_model_card(evaluation_report=report, model_spec=spec)
    assert_card_schema_valid(card)
    names = group_names(card)
    assert "confusion matrix by class" not in names and "predicted class share by age_band" not in names
    rows = next(m for m in group(card, "metrics by class")["metric_data"] if m["name"] == "test rows by class")
    assert rows["x_axis_name"] == [str(c) for c in range(1, reports.MANY_CLASSES + 1)]
    assert "exceeds the card's 20 x 20 limit" in rows["notes"]
    assert len(json.dumps(card)) <= 100_000
    mc.render_markdown(card)


@pytest.mark.parametrize("kind", [problem.MULTICLASS, problem.REGRESSION])
def test_cli_writes_a_card_of_each_type(kind, multiclass_report, regression_report, tmp_path):
    """WHEN the job runs on the Evaluate step's output THEN the card JSON is schema-valid and the Markdown its rendering."""
    directory, report = multiclass_report if kind == problem.MULTICLASS else regression_report
    spec = reports.make_spec(kind)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({**spec.to_dict(), "description": "Orders of the web shop."}))
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-loop-dev-{spec.name}/2"
    out = tmp_path / "card"
    argv = ["--evaluation-dir", str(directory), "--model-spec", str(spec_file), "--model-package-arn", arn, "--output-dir", str(out)]
    assert mc.main(argv) == 0
    card = json.loads((out / mc.CARD_JSON).read_text())
    assert_card_schema_valid(card)
    assert card["model_overview"]["problem_type"] == problem.DISPLAY_NAME[kind]
    assert card["model_package_details"]["model_package_version"] == 2
    assert (out / mc.CARD_MARKDOWN).read_text() == mc.render_markdown(card)


def test_a_report_of_another_problem_type_than_the_spec_is_refused(multiclass_report, tmp_path, capsys):
    """GIVEN the multiclass report and a spec of the same name declaring a regression model THEN exit 2, one line."""
    directory, report = multiclass_report
    wrong = reports.make_spec(problem.REGRESSION)
    wrong = dataclasses.replace(wrong, name=report["model"])
    with pytest.raises(mc.ModelCardError, match="multiclass_classification model, the --model-spec declares a regression model"):
        mc.build_model_card(evaluation_report=report, model_spec=wrong)
    code = mc.main(["--evaluation-dir", str(directory), "--model-spec", wrong.to_json(), "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "declares a regression model" in err and len(err.strip().splitlines()) == 1


def test_an_acknowledged_suspected_leak_is_a_limitation_on_the_card(passing, churn_spec):
    # GIVEN a passing report whose gate accepted a suspected leak because the model's config says why
    import copy

    _, report = passing
    report = copy.deepcopy(report)
    message = ("suspected target leakage (test AUC 0.9990 >= 0.995) acknowledged by the model's config: the contract "
               "type is fixed at signup")
    report["gate"]["checks"].append({"name": "suspected_leakage", "passed": True, "value": 1.0, "threshold": 0.0,
                                     "message": message})
    # WHEN carded THEN the caveats say so, and the risk is not Low
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    assert message in mc.limitations(report)
    assert f"- {message}" in card["additional_information"]["caveats_and_recommendations"]
    assert card["intended_uses"]["risk_rating"] != "Low"


def _period(model: str) -> dict:
    return json.loads((Path(model) / "feature_metadata.json").read_text())["training"]["data_period"]


def test_a_card_states_the_training_data_period_and_an_out_of_time_test_set(passing, churn_spec, strong_model):
    """GIVEN a model trained on the run that froze the test set THEN the card's training section states the period of
    its train and validation records, and the intended uses call the test set out-of-time."""
    _, report = passing
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    train, validation = _period(strong_model)["train"], _period(strong_model)["validation"]
    assert card["training_details"]["training_observations"].endswith(
        f" on records from {train['min']} to {train['max']} (validation records from {validation['min']} to "
        f"{validation['max']}).")
    window = report["test_set"]["time_range"]
    assert card["intended_uses"]["factors_affecting_model_efficiency"].startswith(
        f"Performance was measured on a frozen, out-of-time test set ({window['min']} to {window['max']}; the training "
        f"data ends {validation['max']}); ")
    assert not [n for n in mc.limitations(report) if "out-of-time" in n]


def test_a_card_states_how_many_rows_the_model_learnt_from_and_their_class_balance(passing, churn_spec, strong_model):
    """GIVEN a binary model whose artefact records its split sizes and training base rate WHEN carded THEN the evaluation
    report's model_info carries them and the card's training section states them (what a validator needs to describe
    the training data: EU AI Act Annex IV 2(d)); GIVEN a report from before they were carried THEN the card says so."""
    import copy

    _, report = passing
    training = json.loads((Path(strong_model) / "feature_metadata.json").read_text())["training"]
    info = report["challenger"]["model_info"]
    assert (info["train_rows"], info["validation_rows"]) == (training["train_rows"], training["validation_rows"])
    assert info["train_positive_rate"] == training["train_positive_rate"]
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    observations = card["training_details"]["training_observations"]
    assert (f" on {len(churn_spec.features)} features, learnt from {training['train_rows']} training rows "
            f"({100 * training['train_positive_rate']:.2f} % positive) and {training['validation_rows']} validation rows; "
            "trained at ") in observations
    older = copy.deepcopy(report)
    for key in ("train_rows", "validation_rows", "train_positive_rate"):
        older["challenger"]["model_info"].pop(key)
    observations = mc.build_model_card(evaluation_report=older, model_spec=churn_spec)["training_details"][
        "training_observations"]
    assert f" on {len(churn_spec.features)} features (how many rows it learnt from is not recorded); trained at " in observations


def test_a_multiclass_card_states_the_class_balance_it_learnt_from(multiclass, multiclass_report):
    """GIVEN a multiclass model whose artefact records its training rows' class shares (``train_class_shares``) WHEN
    carded THEN the evaluation report's model_info carries them and the card's training section states each class's
    share, as a binary card states its positive rate: the class balance of the training data (Annex IV 2(d))."""
    _, report = multiclass_report
    training = json.loads((Path(multiclass.strong) / "feature_metadata.json").read_text())["training"]
    assert report["challenger"]["model_info"]["train_class_shares"] == training["train_class_shares"]
    observations = mc.build_model_card(evaluation_report=report, model_spec=multiclass.spec)["training_details"][
        "training_observations"]
    shares = ", ".join(f"{name} {100 * share:.2f} %"
                       for name, share in zip(multiclass.spec.classes, training["train_class_shares"]))
    assert (f", learnt from {training['train_rows']} training rows (classes: {shares}) and "
            f"{training['validation_rows']} validation rows; trained at ") in observations


def test_a_binary_card_gives_its_auc_with_a_confidence_interval(passing, churn_spec):
    """GIVEN a binary report whose test set holds 100 positives of 500 rows and AUC 0.80 (the champion 0.78) WHEN carded
    THEN the evaluation observation gives each AUC's 95 % confidence interval (Hanley & McNeil 1982: standard error
    0.0279 for AUC 0.80 with 100 positives and 400 negatives), so a reader sees how much the test set can tell apart,
    and the Markdown shows it; the metric's note carries it too."""
    import copy

    _, report = passing
    report = copy.deepcopy(report)
    report["challenger"]["metrics"].update(auc=0.80, positives=100, rows=500)
    report["champion"]["metrics"].update(auc=0.78, positives=100, rows=500)
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    assert_schema_valid(card)
    observation = card["evaluation_details"][0]["evaluation_observation"]
    assert ("AUC 0.80, 95 % confidence interval 0.7453 to 0.8547 (100 positives, 400 negatives; Hanley & McNeil); "
            "the champion's 0.78, 0.7235 to 0.8365 on the same rows") in observation
    (auc,) = [m for m in group(card, "challenger (this version)")["metric_data"] if m["name"] == "auc"]
    assert auc["notes"] == "95 % confidence interval 0.7453 to 0.8547 (Hanley & McNeil)"
    assert "95 % confidence interval 0.7453 to 0.8547" in mc.render_markdown(card)


def test_a_card_names_the_library_versions_that_trained_it(passing, churn_spec, strong_model):
    """GIVEN a model trained here WHEN evaluated and carded THEN its artefact's training summary records the versions of
    Python and the libraries that trained it (the image tag alone does not pin them: a patched image keeps its tag),
    the evaluation report's model_info carries them and the card's custom details name them, for a rebuild to install."""
    import importlib.metadata
    import platform

    _, report = passing
    expected = {"python": platform.python_version(),
                **{name: importlib.metadata.version(name) for name in ("numpy", "pandas", "pyarrow", "xgboost")}}
    training = json.loads((Path(strong_model) / "feature_metadata.json").read_text())["training"]
    assert {k: training["libraries"].get(k) for k in expected} == expected
    assert report["challenger"]["model_info"]["libraries"] == training["libraries"]
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    libraries = card["additional_information"]["custom_details"]["libraries"]
    assert all(f"{name} {version}" in libraries.split(", ") for name, version in expected.items()), libraries


def test_a_challenger_trained_into_the_frozen_window_says_so_on_its_card(churn_spec, dev_gate, strong_model, later_model,
                                                                       prepared, tmp_path):
    """GIVEN a later challenger whose training data reaches the frozen test set's window, the champion trained before
    it WHEN carded THEN the caveats carry the report's note, the intended uses no longer call the evaluation
    out-of-time (nor merely time-split), and the risk is not Low."""
    report = run_evaluation(churn_spec, later_model, prepared, tmp_path, dev_gate, champion=strong_model)
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    assert_schema_valid(card)
    note = report["out_of_time"]["note"]
    assert note.startswith("evaluation is not out-of-time for this challenger: its training data reaches ")
    assert note in mc.limitations(report)
    assert f"- {note}" in card["additional_information"]["caveats_and_recommendations"].splitlines()
    window, until = report["test_set"]["time_range"], _period(later_model)["validation"]["max"]
    assert card["intended_uses"]["factors_affecting_model_efficiency"].startswith(
        f"Performance was measured on a frozen test set ({window['min']} to {window['max']}) that the training data "
        f"reaches (to {until}): not an out-of-time evaluation, see the caveats; ")
    assert card["intended_uses"]["risk_rating"] != "Low"


def test_a_card_says_on_which_rows_the_champion_was_compared_when_a_models_data_reaches_the_test_set(passing,
                                                                                                     churn_spec):
    """GIVEN a report whose champion's training data reaches the test set, the comparison made on the 321 test rows
    after it (where the challenger failed the margin) THEN the caveats carry the out-of-time note and say on which
    rows the margin failed, and the challenger-minus-champion group names its rows; GIVEN a comparison on the whole
    set (too few rows after both models' data) THEN the margin's caveat and the group say the whole set and which
    model it favours; GIVEN a report written before then (basis advisory) THEN its group still says advisory."""
    import copy

    _, report = passing
    after = "2026-03-25T00:00:00Z"
    report = copy.deepcopy(report)
    note = (f"the champion's training data reaches {after}: it is scored in-sample on 40 of 361 test rows; the "
            "challenger is compared with the champion (margin, slices) on the 321 of 361 test rows after it")
    report["out_of_time"].update(champion=False, champion_data_until=after, note=note, comparison={
        "basis": "out_of_time_rows", "after": after, "rows": 321, "test_rows": 361, "reason": "why"})
    report["gate"]["checks"].append({"name": "challenger_margin", "passed": False, "value": 0.81, "threshold": 0.83,
                                     "champion_value": 0.825, "rows": 321, "after": after, "message": "m"})

    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)

    assert_schema_valid(card)
    limits = mc.limitations(report)
    assert note in limits
    assert (f"AUC 0.81 does not beat the champion's 0.825 by the required margin (needs 0.83) on the 321 test rows "
            f"after {after}") in limits
    assert group(card, "challenger minus champion, 321 out-of-time rows")
    for favoured in ("champion", "challenger"):
        whole = copy.deepcopy(report)
        whole["out_of_time"]["comparison"].update(basis=f"whole_set_favours_{favoured}", rows=12)
        margin = whole["gate"]["checks"][-1]
        del margin["rows"], margin["after"]
        margin["basis"] = f"whole_set_favours_{favoured}"
        card = mc.build_model_card(evaluation_report=whole, model_spec=churn_spec)
        assert_schema_valid(card)
        assert (f"AUC 0.81 does not beat the champion's 0.825 by the required margin (needs 0.83) on the whole test set, "
                f"which favours the {favoured}") in mc.limitations(whole)
        assert group(card, f"challenger minus champion, whole set (favours {favoured})")
    report["out_of_time"]["comparison"]["basis"] = "advisory"
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    assert group(card, "challenger minus champion (advisory, not gated)")


def test_a_card_of_a_model_without_a_recorded_period_does_not_claim_out_of_time(passing, churn_spec):
    """GIVEN a report of a model trained before its artefact recorded its data period THEN the card says the period is
    not recorded and does not call the test set out-of-time."""
    import copy

    _, report = passing
    report = copy.deepcopy(report)
    report["challenger"]["model_info"]["data_period"] = None
    report["out_of_time"] = evaluate.out_of_time(report["challenger"]["model_info"], None, report["test_set"]["time_range"])
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    assert card["training_details"]["training_observations"].endswith(" (its training data period is not recorded).")
    window = report["test_set"]["time_range"]
    assert card["intended_uses"]["factors_affecting_model_efficiency"].startswith(
        f"Performance was measured on a frozen, time-split test set ({window['min']} to {window['max']}); the training "
        "data period is not recorded, so whether it precedes the test set is unknown; ")


def test_pr_auc_is_in_the_cards_metric_tables_and_the_challenger_minus_champion_block(passing, churn_spec):
    """GIVEN a binary report with a champion THEN PR-AUC (the rare-event metric, a binary model's possible primary
    metric) is in the challenger's and the champion's tables and in the challenger-minus-champion block."""
    _, report = passing
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    mine, theirs = values(group(card, "challenger (this version)")), values(group(card, "champion"))
    assert mine["pr_auc"]["value"] == pytest.approx(report["challenger"]["metrics"]["pr_auc"])
    assert theirs["pr_auc"]["value"] == pytest.approx(report["champion"]["metrics"]["pr_auc"])
    deltas = values(group(card, "challenger minus champion"))
    assert deltas["pr_auc_delta"]["value"] == pytest.approx(mine["pr_auc"]["value"] - theirs["pr_auc"]["value"])


def test_a_training_resumed_from_a_spot_checkpoint_says_so_in_the_report_and_on_the_card(
    churn_spec, dev_gate, prepared, tmp_path, capsys
):
    """GIVEN an XGBoost training interrupted after round 15 and restarted from its round-10 checkpoint (a spot
    interruption) WHEN evaluated and carded THEN the report's model_info, its summary and the card name the round it
    resumed from and say a resumed run is not bit-reproducible; the card carries the content digest to compare."""
    from pipeline_code.training import train

    hp = train.Hyperparameters(num_round=20, early_stopping_rounds=0, checkpoint_interval=10)
    model, checkpoints = tmp_path / "model", tmp_path / "checkpoints"
    with pytest.raises(train.TrainingInterrupted):
        train.train(churn_spec, prepared["train"], prepared["validation"], str(model), hyperparameters=hp,
                    checkpoint_dir=str(checkpoints), interrupt_after=15, log=lambda line: None)  # fmt: skip
    train.train(churn_spec, prepared["train"], prepared["validation"], str(model), hyperparameters=hp,
                checkpoint_dir=str(checkpoints), log=lambda line: None)  # fmt: skip

    report = run_evaluation(churn_spec, str(model), prepared, tmp_path / "evaluation", dev_gate)

    info = report["challenger"]["model_info"]
    assert (info["resumed_from_round"], info["rounds_trained"]) == (10, 20)
    assert "  training:   resumed from a spot checkpoint after round 10: a resumed XGBoost training is not bit-reproducible" \
        in capsys.readouterr().out
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    assert_schema_valid(card)
    observations = card["training_details"]["training_observations"]
    assert "resumed from a spot checkpoint after round 10: a resumed XGBoost training is not bit-reproducible" in observations
    custom = card["additional_information"]["custom_details"]
    assert custom["resumed_from_round"] == "10"
    assert custom["model_content_sha256"] == report["artifact"]["model_content_sha256"]
    assert "not bit-reproducible" in mc.render_markdown(card)


def test_an_uninterrupted_training_says_nothing_of_a_resume(passing, churn_spec):
    _, report = passing
    assert report["challenger"]["model_info"]["resumed_from_round"] is None
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    assert "resumed" not in card["training_details"]["training_observations"]
    assert "resumed_from_round" not in card["additional_information"]["custom_details"]
    assert card["additional_information"]["custom_details"]["model_content_sha256"] == report["artifact"]["model_content_sha256"]


def test_the_card_names_the_data_and_model_spec_a_rebuild_needs(monkeypatch, passing, churn_spec, tmp_path):
    """GIVEN a version registered with its prepared splits' locations and digests and its model spec's digest
    WHEN its card is created THEN the card lists the splits as its training datasets and carries the digests: the card
    outlives the package group (a dev teardown), and retraining the version bit for bit needs exactly these splits, the
    model spec, the code (``job_code_sha256``) and the hyperparameters the card already shows."""
    keep_model_card_fields(monkeypatch)
    lineage = {"train_data": "s3://artifacts/pipelines/churn/work/exec-1/prepare/train/",
               "validation_data": "s3://artifacts/pipelines/churn/work/exec-1/prepare/validation/",
               "train_data_sha256": "7a" * 32, "validation_data_sha256": "7b" * 32, "model_spec_sha256": "5e" * 32}
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        arn = client.create_model_package(
            ModelPackageGroupName=GROUP, ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={"Containers": [{"Image": "xgboost:3.0-5", "ModelDataUrl": "s3://a/model.tar.gz"}],
                                    "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
            CustomerMetadataProperties={"code_version": "abc1234", "job_code_sha256": "c0de" * 16, **lineage},
        )["ModelPackageArn"]
        assert mc.main(["--evaluation-dir", str(passing[0]), "--model-spec", churn_spec.to_json(), "--model-package-arn",
                        arn, "--output-dir", str(tmp_path / "out"), "--create", "--description", DESCRIPTION],
                       sagemaker_client=client) == 0
        content = json.loads(client.describe_model_card(ModelCardName=card_of(client, arn))["Content"])
    assert f"- trained on: {lineage['train_data']}, {lineage['validation_data']}" in (tmp_path / "out" / mc.CARD_MARKDOWN).read_text()
    job = content["training_details"]["training_job_details"]
    assert job["training_datasets"] == [lineage["train_data"], lineage["validation_data"]]
    assert {h["name"] for h in job["hyper_parameters"]} >= {"seed", "eta", "max_depth", "num_round"}
    custom = content["additional_information"]["custom_details"]
    for key in ("train_data_sha256", "validation_data_sha256", "model_spec_sha256", "job_code_sha256", "code_version"):
        assert custom[key] == ({**lineage, "code_version": "abc1234", "job_code_sha256": "c0de" * 16})[key]
