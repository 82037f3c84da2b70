"""The promotion gate's thresholds (``gate``, an environment's and a model's own), and which of them fit which problem type."""

from __future__ import annotations

from pydantic import Field

from pipeline_code.core.problem import in_own_units
from pipeline_code.core.thresholds import DEFAULT_GATE, GateThresholds

from ._strict import StrictModel


class GateConfig(StrictModel):
    """The evaluation gate. Defaults: AUC >= 0.70, beat the champion by 0.005 AUC, no slice worse by
    more than 0.02 AUC, demographic-parity difference <= 0.10 and disparate impact >= 0.80 (regression: bias gap
    <= 0.10 and error parity >= 0.80, both relative to each group's mean |target|); slices are gated
    with at least 50 test rows, 10 positives and 10 negatives; fairness compares groups of at least 100 test rows
    and is judged only on at least 10 predicted positives.

    The fields are :data:`~pipeline_code.core.thresholds.THRESHOLDS` with policy bounds, which may be
    tighter than what the gate code accepts (an AUC gate below 0.5 passes models worse than chance).
    """

    min_auc: float = Field(default=DEFAULT_GATE.min_auc, ge=0.5, le=1.0)
    challenger_margin: float = Field(default=DEFAULT_GATE.challenger_margin, ge=0.0, le=0.5)
    max_slice_regression: float = Field(default=DEFAULT_GATE.max_slice_regression, ge=0.0, le=1.0)
    max_demographic_parity_difference: float = Field(default=DEFAULT_GATE.max_demographic_parity_difference, ge=0.0, le=1.0)
    min_disparate_impact: float = Field(default=DEFAULT_GATE.min_disparate_impact, ge=0.0, le=1.0)
    # Classifiers: the largest expected calibration error of the challenger's probabilities on the frozen test set
    # (1, the default: no limit, no check). Above 0: no model's probabilities are perfectly calibrated on a sample.
    max_calibration_error: float = Field(default=DEFAULT_GATE.max_calibration_error, gt=0.0, le=1.0)
    # Multiclass: how much a class's recall may fall below the champion's beyond its noise (a share of the class's
    # test rows, whatever the primary metric); max_slice_regression does not move it.
    max_class_recall_drop: float = Field(default=DEFAULT_GATE.max_class_recall_drop, ge=0.0, le=1.0)
    # Evidence: a slice is gated with this many test rows and this many positives and negatives; fairness
    # compares the groups of the sensitive attribute with min_group_rows test rows (a test set needs two: prepare
    # refuses to freeze one with fewer); fewer predicted positives than min_predicted_positives fail the fairness
    # gate (a model that flags nothing is not fair, it is silent).
    min_slice_rows: int = Field(default=DEFAULT_GATE.min_slice_rows, ge=1, le=100_000)
    min_group_rows: int = Field(default=DEFAULT_GATE.min_group_rows, ge=1, le=100_000)
    min_slice_positives: int = Field(default=DEFAULT_GATE.min_slice_positives, ge=1, le=100_000)
    min_predicted_positives: int = Field(default=DEFAULT_GATE.min_predicted_positives, ge=0, le=100_000)

    def thresholds(self) -> GateThresholds:
        """These values as the type the pipeline and the jobs take."""
        return GateThresholds(**self.model_dump())


class OwnUnitsGateConfig(GateConfig):
    """The gate of a model judged on a metric in its own units (RMSE and MAE in the target's, log loss): its margin
    and slice regression are that metric's, as large as its scale, so only non-negative."""

    challenger_margin: float = Field(default=DEFAULT_GATE.challenger_margin, ge=0.0, allow_inf_nan=False)
    max_slice_regression: float = Field(default=DEFAULT_GATE.max_slice_regression, ge=0.0, allow_inf_nan=False)


def gate_config(metric: str) -> type[GateConfig]:
    """The gate's config type for a model judged on ``metric``."""
    return OwnUnitsGateConfig if in_own_units(metric) else GateConfig


# A leakage acknowledgement is a reason a reviewer reads, not a switch: "yes" or "ok" says nothing.
LEAKAGE_REASON_MIN_CHARS = 20


# A regression model's gate has no AUC floor (its floor is min_quality) and no positives; its fairness takes
# max_demographic_parity_difference (the bias gap's maximum) and min_disparate_impact (error parity's minimum).
CLASSIFIER_GATE_KEYS = ("min_auc", "min_predicted_positives", "max_calibration_error")


# Why a classifier's gate key does not apply to a regression model (the fix is the same: remove it).
NOT_FOR_REGRESSION = {
    "max_calibration_error": "it limits a classifier's expected calibration error: how far its probabilities are from "
                             "the rates observed",
}


# A gate key of multiclass models alone (a model's own gate of another type is refused with the reason).
MULTICLASS_GATE_KEYS = {
    "max_class_recall_drop": "it limits how far a class's recall may fall below the champion's: multiclass models only",
}


REGRESSION_GATE = ("its floor is min_quality, its fairness is error parity against min_disparate_impact and the bias gap "
                    "against max_demographic_parity_difference")
