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
