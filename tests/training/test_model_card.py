"""Model cards from real evaluation reports (the project's own evaluate job), and their creation in SageMaker.

Schema check: sagemaker-core (in the venv) ships the model card content as pydantic shapes
(``sagemaker.core.shapes.model_card_shapes``) but not the JSON schema file itself; the card is
validated with those shapes (types, lengths, enums) plus a check that every key is one they
define. ``model_package_details`` is outside those shapes (they model the package-attached
card) and is checked against the documented ModelPackageDetails fields.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from pipeline_code.training import evaluate
from pipeline_code.training import model_card as mc

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
         "--champion-dir", champion, "--output-dir", str(out), *gate.to_args()]
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
        == f"threshold >= {mc._f(report['gate']['thresholds']['min_disparate_impact'])}: pass"
    )
    assert fairness["disparate_impact threshold"]["value"] == report["gate"]["thresholds"]["min_disparate_impact"]
    details = card["model_package_details"]
    assert (details["model_package_group_name"], details["model_package_version"]) == (GROUP, 4)
    md = mc.render_markdown(card)
    assert f"| auc | {report['challenger']['metrics']['auc']:.4f} | {report['champion']['metrics']['auc']:.4f} |" in md
    assert "## Limitations" in md and DESCRIPTION.split("?")[0] in md


def test_a_fairness_failure_is_a_limitation_and_a_high_risk(unfair, churn_spec):
    _, report = unfair
    card = mc.build_model_card(evaluation_report=report, model_spec=churn_spec)
    assert_schema_valid(card)
    di = report["challenger"]["fairness"]["disparate_impact"]
    expected = f"disparate impact across gender {mc._f(di)} below 0.99"
    assert expected in mc.limitations(report)
    assert f"- {expected}" in card["additional_information"]["caveats_and_recommendations"]
    assert card["intended_uses"]["risk_rating"] == "High"
    assert values(group(card, "fairness across gender"))["disparate_impact"]["notes"].endswith("FAIL")
    assert values(group(card, "promotion gate"))["gate passed"]["value"] is False
    assert card["evaluation_details"][0]["evaluation_observation"].startswith("Gate FAILED: ")
    assert "no champion comparison" in card["additional_information"]["caveats_and_recommendations"]
    assert expected in mc.render_markdown(card)


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


def test_card_names_fit_the_limit():
    assert mc.card_name(f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/12") == f"{GROUP}-v12"
    long_group = "g" * 63
    name = mc.card_name(f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{long_group}/12")
    assert len(name) <= 63 and name.endswith("-v12")


@pytest.fixture()
def registry():
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
            CustomerMetadataProperties={"code_version": "abc1234", "frozen_test": "s3://artifacts/pipelines/churn/frozen-test/"},
        )["ModelPackageArn"]
        yield client, arn


def test_create_then_rerun_then_update(registry, passing, unfair, churn_spec, tmp_path, capsys):
    """GIVEN a registered version WHEN the job runs with --create THEN a Draft card <group>-v<version>
    exists linked to it; the same content again changes nothing; new content updates it (back to Draft)."""
    client, arn = registry
    name = f"{GROUP}-v1"

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
    assert f"model card {name}: created" in capsys.readouterr().out

    assert create(passing[0]) == 0
    assert client.describe_model_card(ModelCardName=name)["ModelCardVersion"] == 1
    assert f"model card {name}: unchanged" in capsys.readouterr().out

    # a reviewer moves it on (moto's UpdateModelCard drops omitted content, AWS keeps it: resend it)
    client.update_model_card(ModelCardName=name, Content=card["Content"], ModelCardStatus="PendingReview")
    assert create(unfair[0]) == 0
    updated = client.describe_model_card(ModelCardName=name)
    assert updated["ModelCardVersion"] == 3 and updated["ModelCardStatus"] == "Draft"
    assert json.loads(updated["Content"])["intended_uses"]["risk_rating"] == "High"
    assert f"model card {name}: updated" in capsys.readouterr().out


def test_an_archived_card_is_not_overwritten(registry, passing, churn_spec, tmp_path, capsys):
    client, arn = registry
    client.create_model_card(ModelCardName=f"{GROUP}-v1", Content=json.dumps({"model_overview": {}}), ModelCardStatus="Archived")
    code = mc.main(
        ["--evaluation-dir", str(passing[0]), "--model-spec", churn_spec.to_json(), "--model-package-arn", arn,
         "--output-dir", str(tmp_path), "--create"],
        sagemaker_client=client,
    )  # fmt: skip
    assert code == 1
    assert "is Archived and cannot be updated" in capsys.readouterr().err
    assert client.describe_model_card(ModelCardName=f"{GROUP}-v1")["ModelCardVersion"] == 1
