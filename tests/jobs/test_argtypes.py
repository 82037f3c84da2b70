"""The shared argparse value types: one wording for a bad argument in every job CLI."""

from __future__ import annotations

import argparse

import pytest

from pipeline_code import argtypes


@pytest.mark.parametrize(
    ("func", "value", "expected"),
    [
        (argtypes.non_negative_int, "300", 300),
        (argtypes.non_negative_int, "300.0", 300),  # SageMaker's spelling of hyperparameters
        (argtypes.positive_int, "1", 1),
        (argtypes.unit_interval, "0", 0.0),
        (argtypes.unit_interval, "1", 1.0),
        (argtypes.unit_open, "0.5", 0.5),
        (argtypes.positive_float, "0.01", 0.01),
        (argtypes.non_negative_float, "0", 0.0),
        (argtypes.number, "-2.5", -2.5),
    ],
)
def test_valid_values_parse(func, value, expected):
    assert func(value) == expected


@pytest.mark.parametrize(
    ("func", "value", "message"),
    [
        (argtypes.non_negative_int, "-1", "must be a non-negative integer, got '-1'"),
        (argtypes.non_negative_int, "1.5", "must be a non-negative integer, got '1.5'"),
        (argtypes.non_negative_int, "ten", "must be a non-negative integer, got 'ten'"),
        (argtypes.positive_int, "0", "must be an integer >= 1, got '0'"),
        (argtypes.positive_int, "x", "must be an integer >= 1, got 'x'"),
        (argtypes.unit_interval, "1.5", "must be in [0, 1], got '1.5'"),
        (argtypes.unit_interval, "nan", "must be a number in [0, 1], got 'nan'"),
        (argtypes.unit_open, "0", "must be in (0, 1], got '0'"),
        (argtypes.positive_float, "0", "must be > 0, got '0'"),
        (argtypes.non_negative_float, "-0.1", "must be >= 0, got '-0.1'"),
        (argtypes.number, "nan", "must be a number, got NaN"),
    ],
)
def test_invalid_values_name_the_rule_and_the_value(func, value, message):
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        func(value)
    assert str(caught.value) == message


@pytest.mark.parametrize("value,expected", [("true", True), ("TRUE", True), ("False", False), ("false", False)])
def test_a_switch_is_true_or_false_in_any_case(value, expected):
    assert argtypes.true_or_false(value) is expected


@pytest.mark.parametrize("value", ["yes", "1", "", "t"])
def test_any_other_switch_value_is_refused_naming_it(value):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        argtypes.true_or_false(value)
    assert str(refused.value) == f"must be true or false, got {value!r}"
