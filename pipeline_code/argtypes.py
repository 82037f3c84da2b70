"""argparse value types shared by every job CLI, so a bad argument reads the same everywhere.

Integers accept an integral float spelling (``"300.0"``) because SageMaker passes
hyperparameters that way; NaN is never a number.
"""

from __future__ import annotations

import argparse
import math


def number(value: str) -> float:
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    if math.isnan(parsed):
        raise argparse.ArgumentTypeError("must be a number, got NaN")
    return parsed


def non_negative_int(value: str) -> int:
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value!r}") from None
    if math.isnan(parsed) or parsed < 0 or parsed != int(parsed):
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value!r}")
    return int(parsed)


def positive_int(value: str) -> int:
    try:
        parsed = non_negative_int(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value!r}") from None
    if parsed < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value!r}")
    return parsed


def unit_interval(value: str) -> float:
    """A number in [0, 1] (a rate, a ratio, a drift magnitude)."""
    try:
        parsed = number(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= parsed <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value!r}")
    return parsed


def unit_open(value: str) -> float:
    """A number in (0, 1] (a sampling fraction)."""
    parsed = number(value)
    if not 0.0 < parsed <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value!r}")
    return parsed


def positive_float(value: str) -> float:
    parsed = number(value)
    if not parsed > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value!r}")
    return parsed


def non_negative_float(value: str) -> float:
    parsed = number(value)
    if not parsed >= 0.0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value!r}")
    return parsed


def true_or_false(value: str) -> bool:
    """``true`` or ``false`` (any case): a job's switch, spelled with a value since Glue passes every argument as
    ``--name value``."""
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"must be true or false, got {value!r}")
    return value.lower() == "true"
