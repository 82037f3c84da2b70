"""Naming helpers shared by constructs and stacks."""

from __future__ import annotations

import re


def pascal(name: str) -> str:
    """``customer_churn`` / ``credit-risk`` -> ``CustomerChurn`` / ``CreditRisk`` (construct ids, policy Sids)."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", name))
