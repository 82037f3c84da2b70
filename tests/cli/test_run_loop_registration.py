"""The local run's registration decision: the pipeline's rule (pipeline_code.core.approval.status_to_register) on the
evaluate job's report, with the run's own request - no Spark, the decision alone (test_run_loop.py runs the loop)."""

from __future__ import annotations

import pytest

from mlops_cli.local import run_loop
from mlops_cli.local.registry import APPROVED, PENDING

CHANGE = "the champion is a binary_classification model, the challenger a multiclass_classification one"


def report(requested: str, status: str, change: str = "") -> dict:
    """An evaluation report's registration block, as the evaluate job writes it."""
    return {"registration": {"requested": requested, "approval_status": status, **({"contract_change": change} if change else {})}}


def test_an_auto_approving_run_approves_a_version_whose_callers_contract_holds():
    assert run_loop.registration_status(report(APPROVED, APPROVED), auto_approve=True) == APPROVED


def test_an_auto_approving_run_leaves_a_version_that_answers_in_another_shape_pending():
    """GIVEN the evaluation found the callers' contract changes WHEN the environment auto-approves THEN the version
    stays PendingManualApproval, as the pipeline registers it."""
    assert run_loop.registration_status(report(APPROVED, PENDING, CHANGE), auto_approve=True) == PENDING


@pytest.mark.parametrize("evaluated", [report(APPROVED, APPROVED), report(PENDING, PENDING), report(PENDING, PENDING, CHANGE),
                                       {}])
def test_a_run_that_does_not_auto_approve_never_approves_whatever_the_report_says(evaluated):
    """GIVEN --no-auto-approve (or an environment without auto_approve) THEN PendingManualApproval: a report - even one
    that says Approved - never turns the run's Pending request into Approved."""
    assert run_loop.registration_status(evaluated, auto_approve=False) == PENDING


def test_an_auto_approving_run_leaves_a_version_the_gate_could_not_compare_with_its_champion_pending():
    """GIVEN the evaluation could not compare the challenger with the serving champion (its deviance undefined on the
    frozen test set), so the pipeline registers it PendingManualApproval WHEN the local run auto-approves THEN it stays
    PendingManualApproval too: only the floors judged it."""
    evaluated = {"registration": {"requested": APPROVED, "approval_status": PENDING,
                                  "champion_not_compared": "the champion's poisson deviance is undefined on the frozen test set"}}
    assert run_loop.registration_status(evaluated, auto_approve=True) == PENDING
