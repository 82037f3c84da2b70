"""core.compiled: what a compiled model's parity check compares, and how it words a difference."""

from __future__ import annotations

import math

from pipeline_code.core.compiled import answer_numbers, parity_alarm_name, parity_mismatches


def test_the_numbers_of_an_answer_are_its_score_or_value_then_its_probabilities_by_class_name():
    assert answer_numbers({"score": 0.2, "label": 0, "inference_id": "a"}) == [0.2]
    assert answer_numbers({"value": 12.5}) == [12.5]
    assert answer_numbers({"label": "b", "score": 0.7, "probabilities": {"b": 0.7, "a": 0.3}}) == [0.7, 0.3, 0.7]
    assert math.isnan(answer_numbers({"score": "0.2"})[0]) and math.isnan(answer_numbers({"score": True})[0])


def test_answers_within_the_tolerance_agree_and_labels_are_not_compared():
    expected = [{"score": 0.5, "label": 1}, {"value": 250.0}]
    answered = [{"score": 0.4999, "label": 0}, {"value": 250.2}]  # 0.2 is within 0.001 x 250 for a regression value
    assert parity_mismatches(expected, answered, 1e-3) == []


def test_a_difference_names_the_record_the_numbers_and_the_largest_gap():
    expected = [{"score": 0.1}, {"score": 0.2}, {"label": "a", "score": 0.6, "probabilities": {"a": 0.6, "b": 0.4}}]
    answered = [{"score": 0.1}, {"score": 0.25}, {"label": "a", "score": 0.6, "probabilities": {"a": 0.6, "b": 0.41}}]
    assert parity_mismatches(expected, answered, 1e-3) == [
        "record 1: 0.25, expected 0.2", "record 2: 0.41, expected 0.4", "largest difference 0.05 > tolerance 0.001"]


def test_a_different_count_a_missing_number_or_a_non_number_is_a_mismatch():
    assert parity_mismatches([{"score": 0.1}], [], 1e-3) == ["0 answers for 1 parity records"]
    assert parity_mismatches([{"score": 0.1, "probabilities": {"a": 1.0}}], [{"score": 0.1}], 1e-3) == [
        "record 0: probabilities for classes None, expected ['a']"]
    assert parity_mismatches([{"score": 0.1}], [{"score": 0.1, "value": 3.0}], 1e-3) == ["record 0: 2 numbers, expected 1"]
    assert parity_mismatches([{"score": 0.1}], ["0.1"], 1e-3) == ["record 0: '0.1' is not an answer object"]
    assert parity_mismatches([{"score": 0.1}], [{"score": None}], 1e-3) == [
        "record 0: nan, expected 0.1", "largest difference inf > tolerance 0.001"]


def test_at_most_five_records_are_named():
    problems = parity_mismatches([{"score": 0.0}] * 8, [{"score": 0.5}] * 8, 1e-3)
    assert problems[:5] == [f"record {i}: 0.5, expected 0.0" for i in range(5)]
    assert problems[5:] == ["... 3 more", "largest difference 0.5 > tolerance 0.001"]


def test_the_parity_alarm_is_named_after_the_endpoint():
    assert parity_alarm_name("shop-prod-churn") == "shop-prod-churn-rollout-parity"
