"""quality.read_labels: which label of an inference id wins when the feed sends more than one."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline_code.monitoring import quality


def _parquet(path, rows) -> None:
    pd.DataFrame(rows, columns=["inference_id", "label", "label_time"]).to_parquet(path, index=False)


def _jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(dict(zip(("inference_id", "label", "label_time"), row))) + "\n" for row in rows))


def _labels(directory) -> dict[str, int]:
    labels = quality.read_labels(str(directory))
    return dict(zip(labels["inference_id"], labels["label"].astype(int)))


@pytest.mark.parametrize("later_in", ["parquet", "jsonl"])
def test_the_latest_label_wins_across_parquet_and_json_lines_files(tmp_path, later_in):
    # GIVEN a correction of each id's label in the other format (JSON Lines reads label_time as datetimes, parquet as
    # text): the earlier label in one file, the later in the other
    early, late = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
    first, second = (("jsonl", early, 0), ("parquet", late, 1)) if later_in == "parquet" else (("parquet", early, 0), ("jsonl", late, 1))
    for kind, time, label in (first, second):
        (_parquet if kind == "parquet" else _jsonl)(tmp_path / f"labels.{kind}", [("a", label, time), ("b", label, time)])
    # WHEN the monitor reads them THEN the later label is each id's, whichever file holds it (it failed with
    # "'<' not supported between instances of 'str' and 'Timestamp'" and the window had no quality section)
    assert _labels(tmp_path) == {"a": 1, "b": 1}


def test_label_times_are_compared_as_times_not_as_text(tmp_path):
    # GIVEN two labels of one id whose times are written with different offsets: 01:00+02:00 is 23:00 UTC the day
    # before, earlier than 23:30Z, though its text sorts later
    _parquet(tmp_path / "labels.parquet", [("a", 1, "2026-01-02T01:00:00+02:00"), ("a", 0, "2026-01-01T23:30:00Z")])
    # THEN the label given at 23:30 UTC wins
    assert _labels(tmp_path) == {"a": 0}


def test_a_label_time_that_cannot_be_read_is_never_the_latest(tmp_path):
    # GIVEN a label with a readable time and, read after it, one whose time is not a time
    _parquet(tmp_path / "1.parquet", [("a", 1, "2026-01-01T00:00:00Z")])
    _parquet(tmp_path / "2.parquet", [("a", 0, "yesterday")])
    # THEN the label with a time wins; without label_time at all the file read last does
    assert _labels(tmp_path) == {"a": 1}
    pd.DataFrame({"inference_id": ["b"], "label": [1]}).to_parquet(tmp_path / "3.parquet", index=False)
    pd.DataFrame({"inference_id": ["b"], "label": [0]}).to_parquet(tmp_path / "4.parquet", index=False)
    assert _labels(tmp_path)["b"] == 0


# --- a count or amount model's labels: those its loss's deviance is undefined on -------------------------------------


@pytest.mark.parametrize("power, outside, kept", [
    (2.0, ["0", "-1"], {"a": 2.5, "c": 4.0}),              # gamma: a label must be above 0
    (1.5, ["-1"], {"a": 2.5, "b": 0.0, "c": 4.0}),         # tweedie (and poisson, 1): 0 or more
    (1.0, ["-1"], {"a": 2.5, "b": 0.0, "c": 4.0}),
])
def test_a_label_the_models_deviance_is_undefined_on_is_left_out_and_counted_not_the_windows_deviance(
        tmp_path, power, outside, kept):
    """GIVEN a count or amount model's label feed with one label outside its loss's domain (a gamma model's 0, any
    model's -1: the ETL quarantines such a training label, the feed does not) WHEN the monitor reads the labels THEN
    that label is left out and counted as unusable, so the window's deviance is measured on the others - before, the
    one label made the whole window's deviance undefined and the quality check was skipped for as long as it stayed
    in the label window (a week)."""
    from pipeline_code.core.problem import REGRESSION
    from pipeline_code.monitoring import late_labels
    from pipeline_code.training import metrics_regression

    rows = [("a", 2.5, "2026-01-01T00:00:00Z"), ("b", 0.0, "2026-01-01T00:00:00Z"), ("c", 4.0, "2026-01-01T00:00:00Z"),
            ("d", -1.0, "2026-01-01T00:00:00Z")]
    _parquet(tmp_path / "labels.parquet", rows)
    labels = quality.read_labels(str(tmp_path), REGRESSION, (), deviance_power=power)
    assert dict(zip(labels["inference_id"], labels["label"])) == kept
    assert labels.attrs["unusable_labels"] == {"rows": len(outside), "examples": sorted(f"{float(v)}" for v in outside)}
    assert metrics_regression.mean_tweedie_deviance(labels["label"], labels["label"] + 0.5, power) is not None
    # The look-back's older labels are read the same way.
    older = late_labels.LookbackLabels(str(tmp_path), REGRESSION, [], deviance_power=power)
    streamed = pd.concat(list(older.chunks()))
    assert dict(zip(streamed["inference_id"], streamed["label"])) == kept
    # A squared-error model takes every finite number.
    assert len(quality.read_labels(str(tmp_path), REGRESSION, ())) == 4


def test_a_feed_whose_every_label_is_outside_the_deviances_domain_is_refused_naming_what_the_model_takes(tmp_path):
    from pipeline_code.core.problem import REGRESSION

    _parquet(tmp_path / "labels.parquet", [("a", 0.0, "2026-01-01T00:00:00Z")])
    with pytest.raises(quality.LabelError) as raised:
        quality.read_labels(str(tmp_path), REGRESSION, (), deviance_power=2.0)
    assert str(raised.value) == (f"none of the 1 label rows under {str(tmp_path)!r} is a label this model takes "
                                 "(e.g. '0.0'); it takes a finite number above 0 (its loss's deviance is undefined "
                                 "on others)")
