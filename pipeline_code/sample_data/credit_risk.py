"""The hand-written simulator of the ``credit_risk`` sample: loan applications whose default follows
loan-to-income, credit history and employment."""

from __future__ import annotations

from typing import Dict

import numpy as np

from pipeline_code.sample_data.streams import Streams, categorical, category_index, interpolate_weights, labels, mix, null_mask, with_nulls

# Record ids of this dataset read ``APP-<seed>-<n>``.
ID_PREFIX = "APP"


_EMPLOYMENT = ("salaried", "self-employed", "unemployed", "retired")
_PURPOSES = ("home", "car", "education", "business", "other")
_LOAN_BASE = np.array([150_000.0, 20_000.0, 15_000.0, 40_000.0, 8_000.0])  # median loan by purpose


def simulate(s: Streams, n: int, drift: float, concept_drift: float) -> Dict[str, np.ndarray]:
    """Loan applications; default driven by loan-to-income, credit history and employment."""
    # Age: 18 + long tail, mean ~39; drift brings younger applicants.
    age = np.clip(18 + np.floor(s.get("age").standard_gamma(2.2, n) * 9.5 * (1.0 - 0.25 * drift)), 18, 90)

    # Employment depends on age (retirement) and drift (more unemployed / self-employed).
    working = mix([0.68, 0.18, 0.09, 0.05], [0.55, 0.25, 0.15, 0.05], drift)
    senior = mix([0.25, 0.15, 0.05, 0.55], [0.20, 0.20, 0.08, 0.52], drift)
    probs = np.where((age >= 62)[:, None], senior[None, :], working[None, :])
    employment = categorical(s.get("employment"), n, _EMPLOYMENT, probs)
    unemployed = employment == "unemployed"

    # Income: log-normal around 48k, by employment and age; drift lowers incomes ~15 %.
    log_income = (
        np.log(48_000.0)
        + 0.45 * s.get("income").standard_normal(n)
        + np.select([employment == "self-employed", unemployed, employment == "retired"], [0.1, -1.3, -0.4], 0.0)
        + 0.015 * (np.minimum(age, 55) - 35)
        - 0.15 * drift
    )
    income = np.round(np.exp(log_income), -2)
    income[unemployed & (s.get("zero_income").random(n) < 0.05)] = 0.0  # no declared income

    purpose_idx = category_index(s.get("purpose"), n, mix([0.20, 0.30, 0.15, 0.10, 0.25], [0.15, 0.25, 0.15, 0.20, 0.25], drift))
    purpose = np.asarray(_PURPOSES, dtype=object)[purpose_idx]
    # Loan size: log-normal around the purpose's median; drift raises amounts ~28 %.
    loan = _LOAN_BASE[purpose_idx] * np.exp(0.6 * s.get("loan").standard_normal(n) + 0.25 * drift)
    loan = np.round(np.clip(loan, 100.0, 5_000_000.0) / 50.0) * 50.0
    loan = np.maximum(loan, 100.0)

    # Credit history: a fraction of the adult life, in months.
    history = np.floor((age - 18) * 12 * s.get("history").beta(2.5, 1.5, n))
    accounts = s.get("accounts").poisson(1.5 + history / 48.0).astype(float)
    outliers = s.get("accounts_outlier").random(n) < 0.005  # a few heavy users, above the feature cap
    accounts[outliers] = 51 + np.floor(s.get("accounts_outlier_size").random(outliers.sum()) * 70)

    loan_to_income = loan / (income + 2_000.0)  # +2000 keeps zero incomes finite in the model
    w = interpolate_weights(_CREDIT_WEIGHTS, _CREDIT_WEIGHTS_DRIFTED, concept_drift)
    logit = (
        w["intercept"]
        + w["loan_to_income"] * np.log1p(loan_to_income)
        + w["history"] * np.minimum(history, 240)
        + w["unemployed"] * unemployed
        + w["self_employed"] * (employment == "self-employed")
        + w["accounts"] * np.minimum(accounts, 50)
        + w["young"] * (age < 25)  # mild effect of the sensitive attribute
        + w["senior"] * (age >= 60)
    )
    defaulted = labels(s.get("label"), logit)

    return {
        "applicant_age": age,
        "annual_income": income,
        "loan_amount": loan,
        "credit_history_months": with_nulls(history, null_mask(s.get("history_null"), n, 0.03)),
        "num_open_accounts": with_nulls(accounts, null_mask(s.get("accounts_null"), n, 0.01)),
        "employment_type": with_nulls(employment, null_mask(s.get("employment_null"), n, 0.02)),
        "purpose": purpose,
        "defaulted": defaulted,
    }


_CREDIT_WEIGHTS = {
    "intercept": -2.2,
    "loan_to_income": 1.1,
    "history": -0.006,
    "unemployed": 1.0,
    "self_employed": 0.3,
    "accounts": 0.06,
    "young": 0.2,
    "senior": -0.2,
}
_CREDIT_WEIGHTS_DRIFTED = {
    "intercept": -2.6,
    "loan_to_income": 0.2,
    "history": -0.001,
    "unemployed": 0.2,
    "self_employed": 1.0,
    "accounts": 0.2,
    "young": 0.2,
    "senior": -0.2,
}
