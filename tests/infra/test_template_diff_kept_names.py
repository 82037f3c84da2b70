"""The template diff on a removed resource CloudFormation keeps under a fixed name: the name stays taken, so adding
it back later fails at deploy, which neither that later diff (its base lacks the resource) nor synth can see.

Inputs are one-stack assemblies (``tests.support.assemblies``)."""

from __future__ import annotations

from mlops_loop.tools.template_diff import CATEGORY_DATA_AT_RISK, compare_assemblies
from tests.support.assemblies import template, write_assembly

LOGS = "/aws/lambda/mlops-loop-prod-churn-by-id"


def _log_group(policy: str, **props) -> dict:
    return {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 365, **props},
            "DeletionPolicy": policy, "UpdateReplacePolicy": policy if policy != "RetainExceptOnCreate" else "Retain"}


def _removed(tmp_path, resource: dict) -> str:
    """GIVEN a base whose Operations stack has ``resource`` and a head without it WHEN compared THEN its call-out."""
    base = write_assembly(tmp_path / "base", {"prod": {"Operations": template({"Keep": {"Type": "AWS::SNS::Topic"}, "Logs": resource})}})
    head = write_assembly(tmp_path / "head", {"prod": {"Operations": template({"Keep": {"Type": "AWS::SNS::Topic"}})}})
    (callout,) = [c for c in compare_assemblies(base, head).callouts_for("prod") if c.category == CATEGORY_DATA_AT_RISK]
    return callout.message


def test_a_kept_resource_with_a_fixed_name_says_its_name_stays_taken(tmp_path):
    message = _removed(tmp_path, _log_group("RetainExceptOnCreate", LogGroupName=LOGS))
    assert message == (
        "removed. DeletionPolicy is RetainExceptOnCreate: the old resource and its data are kept but orphaned. "
        f"Its name {LOGS} stays taken while the kept resource exists: adding a resource of that name back later "
        "(turning the option on again, re-adding the model) fails until the kept one is deleted by hand.")


def test_a_kept_resource_with_a_generated_name_or_one_deleted_says_nothing_of_its_name(tmp_path):
    assert "stays taken" not in _removed(tmp_path / "generated", _log_group("Retain"))
    assert "stays taken" not in _removed(tmp_path / "deleted", _log_group("Delete", LogGroupName=LOGS))
