"""How the template diff writes one changed value: the difference must be visible in the line a reviewer reads."""

from __future__ import annotations

from mlops_loop.tools.template_diff.model import MISSING, PropertyChange
from mlops_loop.tools.template_diff.values import describe_change


def _describe(old, new, limit: int = 80) -> str:
    return describe_change(PropertyChange(("Resource",), old, new), limit)


def test_two_long_values_alike_at_the_start_are_shown_from_where_they_differ():
    # GIVEN two bucket ARNs that differ only after the 60 characters a call-out keeps of each
    base = "arn:aws:s3:::mlops-loop-prod-inference-333333333333-eu-west-1/"
    line = _describe(base + "capture/churn/*", base + "async/churn/*", limit=60)
    # THEN both sides show the segments that differ
    old, new = line.split(" -> ")
    assert old.startswith("…") and old.endswith("capture/churn/*")
    assert new.startswith("…") and new.endswith("async/churn/*")


def test_short_values_and_values_that_differ_early_are_shown_from_their_start():
    assert _describe("ml.m5.large", "ml.m5.xlarge") == "ml.m5.large -> ml.m5.xlarge"
    assert _describe("a" + "x" * 100, "b" + "x" * 100) == f"a{'x' * 78}… -> b{'x' * 78}…"
    assert _describe(MISSING, "x" * 100) == f"(absent) -> {'x' * 79}…"


def test_a_changed_argument_of_a_command_line_names_its_flag():
    old = ["--model-spec", "{}", "--psi-threshold", "0.1", "--false-alarm-rate", "0.01"]
    new = ["--model-spec", "{}", "--psi-threshold", "0.2", "--false-alarm-rate", "0.01"]
    assert _describe(old, new) == "--psi-threshold: 0.1 -> 0.2"


def test_lists_that_are_not_one_flag_value_change_are_additions_and_removals():
    assert _describe(["a", "b"], ["a", "c"]) == "+c, -b"
    assert _describe(["--x", "1"], ["--x", "1", "--y", "2"]) == "+--y, +2"
    assert _describe(["--x", "1", "--y", "2"], ["--y", "2", "--x", "1"]) == "reordered"
