"""The hand-written simulator of the ``customer_churn`` sample: subscription customers whose churn
follows contract, tenure, support calls and price."""

from __future__ import annotations

from typing import Dict

import numpy as np

from pipeline_code.sample_data.streams import Streams, categorical, interpolate_weights, labels, mix, null_mask, with_nulls

# Record ids of this dataset read ``CUS-<seed>-<n>``.
ID_PREFIX = "CUS"


_CONTRACTS = ("month-to-month", "one-year", "two-year")
_PAYMENTS = ("card", "bank-transfer", "invoice", "wallet")
_REGIONS = ("north", "south", "east", "west")
_GENDERS = ("female", "male", "other")


def simulate(s: Streams, n: int, drift: float, concept_drift: float) -> Dict[str, np.ndarray]:
    """Subscription customers; churn driven by contract, tenure, support calls and price."""
    contract = categorical(s.get("contract"), n, _CONTRACTS, mix([0.55, 0.25, 0.20], [0.75, 0.15, 0.10], drift))
    m2m = contract == "month-to-month"
    two_year = contract == "two-year"

    # Tenure: long-tailed, longer on longer contracts; drift brings in newer customers.
    scale = np.select([m2m, two_year], [14.0, 46.0], 30.0) * (1.0 - 0.2 * drift)
    tenure = np.clip(np.floor(s.get("tenure").standard_gamma(1.3, n) * scale), 0, 120)

    # Monthly bill: drift raises prices (mean shift of +20 at drift 1).
    monthly = 65.0 + 20.0 * drift - 6.0 * two_year + 25.0 * s.get("monthly").standard_normal(n)
    monthly = np.round(np.clip(monthly, 18.0, 150.0), 2)

    # Lifetime billing ~ monthly x tenure with noise; unknown (null) before the first bill.
    noise = 1.0 + 0.05 * s.get("total_noise").standard_normal(n)
    total = np.round(np.clip(monthly * tenure * noise, 0.0, None), 2)
    total[tenure == 0] = np.nan

    payment = categorical(s.get("payment"), n, _PAYMENTS, mix([0.40, 0.30, 0.15, 0.15], [0.30, 0.20, 0.15, 0.35], drift))
    support_mean = 0.8 + 0.8 * m2m + 0.8 * drift
    support = s.get("support").poisson(support_mean).astype(float)
    region = categorical(s.get("region"), n, _REGIONS, mix([0.30, 0.25, 0.25, 0.20], [0.20, 0.25, 0.25, 0.30], drift))
    gender = categorical(s.get("gender"), n, _GENDERS, np.array([0.49, 0.49, 0.02]))

    # Label model. The reference weights give a ~20 % churn rate; concept drift moves
    # towards price-driven churn where contracts and tenure matter much less.
    w = interpolate_weights(_CHURN_WEIGHTS, _CHURN_WEIGHTS_DRIFTED, concept_drift)
    logit = (
        w["intercept"]
        + w["month_to_month"] * m2m
        + w["two_year"] * two_year
        + w["tenure"] * tenure
        + w["support_calls"] * support
        + w["monthly_charges"] * (monthly - 65.0)
        + w["invoice"] * (payment == "invoice")
        + w["female"] * (gender == "female")  # mild effect of the sensitive attribute
    )
    churned = labels(s.get("label"), logit)

    return {
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "total_charges": total,
        "contract_type": contract,
        "payment_method": with_nulls(payment, null_mask(s.get("payment_null"), n, 0.02)),
        "support_calls_90d": with_nulls(support, null_mask(s.get("support_null"), n, 0.01)),
        "region": region,
        "gender": with_nulls(gender, null_mask(s.get("gender_null"), n, 0.03)),
        "churned": churned,
    }


_CHURN_WEIGHTS = {
    "intercept": -2.05,
    "month_to_month": 1.3,
    "two_year": -0.9,
    "tenure": -0.035,
    "support_calls": 0.35,
    "monthly_charges": 0.012,
    "invoice": 0.3,
    "female": 0.25,
}
_CHURN_WEIGHTS_DRIFTED = {
    "intercept": -1.75,
    "month_to_month": 0.2,
    "two_year": -0.1,
    "tenure": -0.005,
    "support_calls": 0.05,
    "monthly_charges": 0.045,
    "invoice": 0.0,
    "female": 0.25,
}
