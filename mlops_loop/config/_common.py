"""Validators the configuration's sections share: names that become parts of AWS resource names, and instance types."""

from __future__ import annotations

import re

from pydantic import ValidationInfo

from pipeline_code.core.contract import NAME_PATTERN, NAME_RULE

from .instance_types import INSTANCE_TYPES, unknown_problem, unsupported_problem, volume_key_problem


_NAME = re.compile(NAME_PATTERN)


def check_name(value: str) -> str:
    """Environment and model names become parts of AWS resource names."""
    if not _NAME.match(value):
        raise ValueError(f"must be {NAME_RULE}")
    return value


def check_instance_type(value: str, info: ValidationInfo) -> str:
    if value not in INSTANCE_TYPES:
        raise ValueError(unknown_problem(value))
    purpose = "processing jobs" if info.field_name == "processing_instance_type" else "training jobs"
    # Accelerators a framework cannot train on are reported by accelerator_problems, naming the model.
    if purpose == "processing jobs" or INSTANCE_TYPES[value].accelerator == "none":
        problem = unsupported_problem(value, purpose)
        if problem:
            raise ValueError(problem)
    if purpose == "processing jobs":
        problem = volume_key_problem(value)
        if problem:
            raise ValueError(problem)
    return value
