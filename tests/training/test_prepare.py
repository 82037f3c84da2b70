"""prepare: point-in-time join, time-ordered split, frozen test set, and bad-input errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline_code.features.compute import compute_features
from pipeline_code.features.ingestion.pandas_engine import write_features_parquet
from pipeline_code.sample_data.generate import generate
from pipeline_code.training import data_io
from pipeline_code.training.data_io import InputError
from pipeline_code.training.prepare import SplitFractions, prepare
from pipeline_code.training.prepare import main as prepare_main
from pipeline_code.training.spec import parse_model_spec
from tests.support.training import write_inputs
from tests.support import datasets as samples

DATASET = samples.get_dataset("customer_churn")


def _read(directory) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f) for f in data_io.list_parquet_files(str(directory))], ignore_index=True)


def _write(frame: pd.DataFrame, directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(directory / "part-00000.parquet", index=False)
    return str(directory)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """3000 generated records: the curated frame and its computed features."""
    curated = generate(samples.CUSTOMER_CHURN, 3000, seed=5)
    return {"curated": curated, "features": compute_features(curated, DATASET), "root": tmp_path_factory.mktemp("prep")}


# --------------------------------------------------------------------------------------
# Point-in-time correctness
# --------------------------------------------------------------------------------------
def test_given_feature_rows_after_the_label_when_joined_then_only_past_rows_are_used(churn_spec, base):
    """GIVEN for every customer a *future* feature row (label time + 1 day, sentinel -1),
    AND for 100 customers only a *past* row (label time - 1 day, sentinel -2) instead of the exact one,
    AND 20 labels without any earlier feature row,
    WHEN prepared THEN no future value appears, the 100 use their past row, the 20 are dropped."""
    root = base["root"] / "pit"
    features = base["features"].copy()
    labels = base["curated"].copy()
    times = pd.to_datetime(features["event_time"], utc=True)

    future = features.copy()
    future["event_time"] = (times + pd.Timedelta(days=1)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    future["monthly_charges"] = -1.0

    past_ids = features["customer_id"].iloc[:100]
    past = features[features["customer_id"].isin(past_ids)].copy()
    past["event_time"] = (pd.to_datetime(past["event_time"], utc=True) - pd.Timedelta(days=1)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    past["monthly_charges"] = -2.0

    orphan_ids = features["customer_id"].iloc[100:120]
    exact = features[~features["customer_id"].isin(pd.concat([past_ids, orphan_ids]))]
    all_features = pd.concat([exact, past, future], ignore_index=True).sample(frac=1.0, random_state=0)
    summary = prepare(
        churn_spec,
        _write(all_features, root / "features"),
        _write(labels, root / "labels"),
        str(root / "out"),
    )

    joined = pd.concat([_read(root / "out" / s) for s in ("train", "validation", "test")], ignore_index=True)
    assert (joined["feature_event_time"] <= joined["event_time"]).all()
    assert not (joined["monthly_charges"] == -1.0).any(), "a feature from the future leaked into the training set"
    used_past = joined[joined["customer_id"].isin(past_ids)]
    assert len(used_past) == 100 and (used_past["monthly_charges"] == -2.0).all()
    assert (used_past["event_time"] - used_past["feature_event_time"] == pd.Timedelta(days=1)).all()
    assert not joined["customer_id"].isin(orphan_ids).any()
    assert summary["join"]["unmatched_labels_dropped"] == 20
    assert len(joined) == len(labels) - 20


def _delete_markers(features: pd.DataFrame, ids: pd.Series, event_time: str, api_invocation_time: str) -> pd.DataFrame:
    """The offline store's rows for a ``DeleteRecord`` of each of ``ids`` (AWS's marker: the record id, ``is_deleted``
    true, the event time the delete was called with, every other feature null)."""
    markers = pd.DataFrame({"customer_id": list(ids)})
    for column in features.columns:
        if column not in ("customer_id",):
            markers[column] = pd.Series([None] * len(markers), dtype=features[column].dtype)
    markers["event_time"] = event_time
    markers["write_time"] = api_invocation_time
    markers["api_invocation_time"] = api_invocation_time
    markers["is_deleted"] = True
    return markers[features.columns]


def test_given_a_feature_store_offline_export_then_latest_writes_win_and_deleted_rows_are_dropped(churn_spec, base):
    """GIVEN an offline-store export: every record written twice (the later write correct) and
    30 records deleted as AWS records it (a marker at the delete's own, later event time, features null)
    WHEN prepared THEN the stale values never appear and the deleted records' labels have no features (dropped)."""
    root = base["root"] / "offline"
    features = base["features"].copy()
    features["write_time"] = "2026-04-02T00:00:00Z"
    features["api_invocation_time"] = "2026-04-02T00:00:00Z"
    features["is_deleted"] = False
    stale = features.copy()
    stale["api_invocation_time"] = "2026-04-01T00:00:00Z"
    stale["tenure_months"] = 999
    deleted_ids = features["customer_id"].iloc[:30]
    # DeleteRecord --event-time <now>: after every event time of the records
    deletes = _delete_markers(features, deleted_ids, "2026-04-03T00:00:00Z", "2026-04-03T00:00:00Z")
    export = pd.concat([stale, features, deletes], ignore_index=True).sample(frac=1.0, random_state=1)
    summary = prepare(churn_spec, _write(export, root / "features"), _write(base["curated"], root / "labels"), str(root / "out"))

    joined = pd.concat([_read(root / "out" / s) for s in ("train", "validation", "test")], ignore_index=True)
    assert not (joined["tenure_months"] == 999).any()
    assert not joined["customer_id"].isin(deleted_ids).any()
    assert summary["features"]["offline_store_export"] is True
    assert summary["features"]["deleted_records"] == 30
    assert summary["features"]["deleted_rows_dropped"] == 30 + 30  # the markers and the records' rows before them
    assert summary["features"]["superseded_writes_dropped"] == len(features)  # the stale copies
    assert summary["join"]["unmatched_labels_dropped"] == 30
    assert "write_time" not in joined.columns and "is_deleted" not in joined.columns


def test_given_a_delete_marker_then_the_records_rows_up_to_it_are_gone_and_a_later_put_is_a_new_life(churn_spec, base, tmp_path):
    """GIVEN per customer rows at days 1, 2 and 3 and, as the SageMaker SDK's DatasetBuilder reads deletes:
    A deleted at day 2 then re-put at day 4 (a new life), B deleted at day 2 then re-put at day 2 by a later call,
    C deleted at day 3, D never deleted WHEN the offline-store export is loaded THEN only the rows after each
    customer's latest marker (later event time, or the same event time written later) and D's remain."""
    from pipeline_code.training.prepare import load_feature_snapshots

    template = base["features"].iloc[:1]
    rows = []

    def put(customer: str, day: int, called: int, value: float) -> None:
        row = template.copy()
        row["customer_id"], row["event_time"] = customer, f"2026-04-0{day}T00:00:00Z"
        row["monthly_charges"] = value
        row["write_time"] = row["api_invocation_time"] = f"2026-05-0{called}T00:00:00Z"
        row["is_deleted"] = False
        rows.append(row)

    def delete(customer: str, day: int, called: int) -> None:
        rows.append(_delete_markers(template.assign(write_time="", api_invocation_time="", is_deleted=False),
                                    pd.Series([customer]), f"2026-04-0{day}T00:00:00Z", f"2026-05-0{called}T00:00:00Z"))

    for customer in "ABCD":
        for day in (1, 2, 3):
            put(customer, day, day, float(day))
    delete("A", 2, 5)
    put("A", 4, 6, 4.0)
    delete("B", 1, 4)  # an earlier delete of B: its latest marker decides
    delete("B", 2, 5)
    put("B", 2, 6, 20.0)
    delete("C", 3, 5)
    directory = _write(pd.concat(rows, ignore_index=True).sample(frac=1.0, random_state=3), tmp_path / "export")

    table = load_feature_snapshots(churn_spec, directory).to_pandas()
    kept = sorted(zip(table["customer_id"], table["event_time"].dt.day, table["monthly_charges"]))
    assert kept == [("A", 3, 3.0), ("A", 4, 4.0), ("B", 2, 20.0), ("B", 3, 3.0),
                    ("D", 1, 1.0), ("D", 2, 2.0), ("D", 3, 3.0)]


@pytest.mark.parametrize("columns", [["write_time"], ["api_invocation_time", "write_time"]])
def test_an_offline_store_export_without_is_deleted_is_refused_since_its_delete_markers_would_train(
        churn_spec, base, tmp_path, columns):
    """GIVEN an offline-store export (write_time / api_invocation_time) whose is_deleted column was left out, holding a
    customer's DeleteRecord marker WHEN loaded THEN it is refused naming the column and the fix: without it the marker
    is a row like any other (features null) and the erased customer's earlier rows would still train."""
    from pipeline_code.training.prepare import load_feature_snapshots

    features = base["features"].copy()
    features["write_time"] = features["api_invocation_time"] = "2026-04-02T00:00:00Z"
    markers = _delete_markers(features, features["customer_id"].iloc[:1], "2026-04-03T00:00:00Z", "2026-04-03T00:00:00Z")
    export = pd.concat([features, markers], ignore_index=True)[[*base["features"].columns, *columns]]
    directory = _write(export, tmp_path / "export")
    with pytest.raises(InputError) as excinfo:
        load_feature_snapshots(churn_spec, directory)
    assert str(excinfo.value) == (
        f"features ({directory}): an export of the offline store (it has {columns}) without its column "
        "'is_deleted': a DeleteRecord marker would read as a record and the rows of an erased record id would be "
        "trained on; export every column of the offline store's table (SELECT *, or add is_deleted)")


# --------------------------------------------------------------------------------------
# Split and outputs
# --------------------------------------------------------------------------------------
def test_a_categorical_whose_test_values_training_never_saw_is_warned_about(churn_spec, base):
    # GIVEN the churn features split in time, and a copy of the test part whose regions are all new (as a date or
    # an identifier written as text would be)
    import pyarrow as pa

    from pipeline_code.training.prepare import unseen_category_warnings

    frame = base["features"].sort_values("event_time", kind="mergesort")
    train, test = frame.iloc[:2000], frame.iloc[2000:]
    renamed = test.assign(region=[f"day-{i}" for i in range(len(test))])
    table = pa.Table.from_pandas
    # WHEN the test values are checked against training's THEN only the new-valued column is warned about
    assert unseen_category_warnings(churn_spec, table(train), table(test)) == []
    assert unseen_category_warnings(churn_spec, table(train), table(renamed)) == [
        f"feature 'region': 100% of the test records have a value training never saw "
        f"({train['region'].nunique()} distinct values in 2000 training rows); a category that changes with every "
        "record (a date, an identifier) cannot generalise: declare the column's allowed values, or leave it out"]


def test_given_generated_data_when_prepared_then_splits_are_time_ordered_and_complete(churn_spec, prepared):
    train, validation, test = (_read(prepared[s]) for s in ("train", "validation", "test"))
    assert train["event_time"].max() < validation["event_time"].min()
    assert validation["event_time"].max() < test["event_time"].min()
    total = len(train) + len(validation) + len(test)
    assert abs(len(train) / total - 0.7) < 0.01 and abs(len(test) / total - 0.15) < 0.01
    expected = [churn_spec.record_identifier, "event_time", "feature_event_time", *churn_spec.frame_features, "churned"]
    for frame in (train, validation, test):
        assert list(frame.columns) == expected
        assert set(frame["churned"].unique()) == {0, 1}
    manifest = json.loads((Path(prepared["test"]) / "manifest.json").read_text())
    assert manifest["rows"] == len(test)
    assert manifest["sha256"] == data_io.sha256_file(str(Path(prepared["test"]) / "test.parquet"))
    assert {"created_at", "version", "time_range"} <= set(manifest)
    assert json.loads((Path(prepared["train"]).parent / "summary" / "prepare.json").read_text())["warnings"] == []
    assert manifest["time_range"]["min"].startswith(str(test["event_time"].min().date()))


def test_the_summary_records_each_registered_splits_digest_recomputed_from_its_files(prepared):
    """GIVEN a prepare run WHEN its summary is read THEN the train and validation splits each carry ``sha256``: the
    sha256 of {relative path: sha256 of the bytes} (canonical JSON) over every file the split's directory holds, as
    recomputed here from the files; the test split's digest is the frozen test set's (``test_set.sha256``)."""
    summary = json.loads((Path(prepared["root"]) / "summary" / "prepare.json").read_text())
    for split in ("train", "validation"):
        directory = Path(prepared[split])
        files = {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                 for p in directory.rglob("*") if p.is_file()}
        assert list(files) == [f"{split}.parquet"]
        recomputed = hashlib.sha256(json.dumps(files, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        assert summary["splits"][split]["sha256"] == recomputed
    assert summary["splits"]["train"]["sha256"] != summary["splits"]["validation"]["sha256"]
    assert "sha256" not in summary["splits"]["test"]
    assert summary["test_set"]["sha256"] == data_io.sha256_file(str(Path(prepared["test"]) / "test.parquet"))


def test_given_a_frozen_test_set_when_prepared_again_then_it_is_reused_byte_identically_and_excluded(
    churn_spec, churn_inputs, prepared, tmp_path
):
    """GIVEN the first run's test set frozen WHEN the same data is prepared again THEN test.parquet
    and manifest.json are byte-identical and none of the test keys is in train/validation."""
    frozen = Path(prepared["test"])
    out = tmp_path / "second"
    summary = prepare(churn_spec, churn_inputs["features"], churn_inputs["labels"], str(out), frozen_test_dir=str(frozen))

    for name in ("test.parquet", "manifest.json"):
        assert (out / "test" / name).read_bytes() == (frozen / name).read_bytes()
    test = _read(frozen)
    rest = pd.concat([_read(out / "train"), _read(out / "validation")], ignore_index=True)
    test_keys = set(zip(test["customer_id"], test["event_time"]))
    assert not any(key in test_keys for key in zip(rest["customer_id"], rest["event_time"]))
    assert summary["frozen_test_set_reused"] is True
    assert summary["rows_excluded_as_test_keys"] == len(test)
    # the same data: what is left of it precedes the frozen window, so the evaluation stays out-of-time
    assert max(pd.to_datetime(rest["event_time"], utc=True)) < min(pd.to_datetime(test["event_time"], utc=True))
    assert not [w for w in summary["warnings"] if "not out-of-time" in w]


def test_given_a_frozen_test_set_and_new_data_then_the_test_rows_stay_identical(churn_spec, prepared, tmp_path):
    # Another generated batch: distinct record ids by design (the seed is in them), so declared generated.
    inputs = write_inputs(tmp_path / "new", "customer_churn", 3000, seed=12)
    out = tmp_path / "out"
    prepare(churn_spec, inputs["features"], inputs["labels"], str(out), frozen_test_dir=prepared["test"],
            data_origin={"kind": "generated"})
    assert (out / "test" / "test.parquet").read_bytes() == (Path(prepared["test"]) / "test.parquet").read_bytes()


def _span(frame: pd.DataFrame, between: str = " .. ") -> str:
    times = pd.to_datetime(frame["event_time"], utc=True)
    return between.join(_iso(t) for t in (times.min(), times.max()))


def _iso(time: pd.Timestamp) -> str:
    return time.isoformat().replace("+00:00", "Z")


def _not_out_of_time(until: str, test: pd.DataFrame, where: str, fresh: "tuple[int, int, int] | None" = None) -> str:
    """The warning; ``fresh``: (rows a re-freeze needs after the window, rows, rows after it) of a set the default
    policy keeps for now, which the warning says it re-freezes once stale."""
    remedy = (f"Prepare re-freezes it from the latest rows once those after its window are at least the test fraction "
              f"(15%: {fresh[0]} of this run's {fresh[1]} rows; now {fresh[2]}), or delete {where}" if fresh else
              f"to judge it on rows after its training data, delete {where}")
    return (f"train and validation reach {until}, the frozen test set covers {_span(test, '–')}: the challenger learns "
            "from the period it is judged on, so its evaluation is not out-of-time (the evaluation report and the model "
            f"card say so); {remedy} so that the next run freezes a new one from the data it has then (the champion is "
            "judged on the new rows too)")


def test_a_later_run_whose_splits_reach_the_frozen_window_is_warned_that_its_evaluation_is_not_out_of_time(
    prepared, later_prepared
):
    """GIVEN a frozen test set and a later batch over the same months WHEN prepared THEN only the set's own keys are
    left out, so train and validation run through its window, and the summary warns that the challenger's evaluation
    is not out-of-time, naming where its data ends, the set's window and how to re-freeze."""
    test, summary = _read(prepared["test"]), later_prepared["summary"]
    splits = summary["splits"]
    validation = _read(later_prepared["validation"])
    until = _iso(pd.to_datetime(validation["event_time"], utc=True).max())
    assert splits["validation"]["time_range"]["max"] == until > splits["test"]["time_range"]["min"]
    # The later batch ends with the frozen window: the set is not stale, so it is kept, and the warning says when not.
    assert summary["test_set_refreeze"]["stale"] is False and summary["frozen_test_set_reused"] is True
    fresh = (summary["test_set_refreeze"]["stale_at_rows"], summary["test_set_refreeze"]["rows"],
             summary["test_set_refreeze"]["rows_after_test_set"])
    assert fresh[:2] == (450, 3000)
    assert [w for w in summary["warnings"] if "not out-of-time" in w] == [
        _not_out_of_time(until, test, prepared["test"], fresh)]


def test_a_frozen_test_set_none_of_whose_keys_is_in_data_over_its_time_is_refused(churn_spec, prepared, tmp_path):
    """GIVEN a frozen test set and other records over the same months (none of its keys), as the pipeline sees them
    (no origin given) WHEN prepared THEN it refuses: the data accumulates, so this set was frozen from other data and
    every evaluation on it would be wrong; nothing is written."""
    inputs = write_inputs(tmp_path / "other", "customer_churn", 3000, seed=12)
    test = _read(prepared["test"])
    data = pd.read_parquet(inputs["labels"])
    with pytest.raises(InputError) as excinfo:
        prepare(churn_spec, inputs["features"], inputs["labels"], str(tmp_path / "out"), frozen_test_dir=prepared["test"])
    assert str(excinfo.value) == (
        f"frozen test set ({prepared['test']}): none of its {len(test)} ('customer_id', 'event_time') keys is in this "
        f"run's data although the times overlap or precede them (this run's {len(data)} labelled rows span "
        f"{_span(data)}, the test set {_span(test)}), so it was frozen from other data and every evaluation on it would "
        f"be wrong: delete {prepared['test']} so that the next run freezes a new one from the data it has then (the "
        "champion is judged on the new rows too)")
    assert not (tmp_path / "out").exists()


def test_a_frozen_test_set_older_than_all_of_the_data_is_re_frozen_by_default(churn_spec, prepared, tmp_path):
    # GIVEN a frozen test set and a newer window of records (none of its keys: they start after it)
    curated = generate(samples.CUSTOMER_CHURN, 3000, seed=13, start="2026-06-01")
    root = tmp_path / "newer"
    labels = _write(curated, root / "labels")
    features = _write(compute_features(curated, DATASET), root / "features")
    # WHEN prepared THEN every row is after the set's window, so it is stale and re-frozen from the newer records
    summary = prepare(churn_spec, features, labels, str(root / "out"), frozen_test_dir=prepared["test"])
    assert summary["frozen_test_set_refrozen"] is True and summary["test_set_refreeze"]["rows_after_test_set"] == 3000
    assert summary["warnings"] == []
    assert min(pd.to_datetime(_read(root / "out" / "test")["event_time"], utc=True)) > max(
        pd.to_datetime(_read(root / "out" / "validation")["event_time"], utc=True))


def test_with_never_a_frozen_test_set_older_than_all_of_the_data_is_kept_with_a_warning(churn_spec, prepared, tmp_path):
    # GIVEN a frozen test set and a newer window of records (none of its keys: they start after it)
    test = _read(prepared["test"])
    curated = generate(samples.CUSTOMER_CHURN, 3000, seed=13, start="2026-06-01")
    root = tmp_path / "newer"
    labels = _write(curated, root / "labels")
    features = _write(compute_features(curated, DATASET), root / "features")
    # WHEN prepared with re-freezing off THEN the frozen set is reused and the summary warns that nothing ties it to
    # this data
    summary = prepare(churn_spec, features, labels, str(root / "out"), frozen_test_dir=prepared["test"],
                      test_set_refreeze="never")
    assert summary["frozen_test_set_reused"] is True
    trained = pd.concat([_read(root / "out" / "train"), _read(root / "out" / "validation")], ignore_index=True)
    assert summary["warnings"] == [
        f"none of the frozen test set's {len(test)} ('customer_id', 'event_time') keys is in this run's data, which starts "
        f"after it (this run's 3000 labelled rows span {_span(curated)}, the test set {_span(test)}): champion and "
        "challenger are still judged on the same rows, but nothing shows they are this data's; if the data was replaced, "
        f"delete {prepared['test']} so that the next run freezes a new one from the data it has then (the champion is "
        "judged on the new rows too)",
        # ... and its splits follow the frozen window: the challenger is judged on rows older than all it learnt from
        _not_out_of_time(_iso(pd.to_datetime(trained["event_time"], utc=True).max()), test, prepared["test"])]


def test_a_frozen_test_set_from_generated_records_is_refused_for_a_run_on_your_files(churn_spec, churn_inputs, tmp_path):
    """GIVEN a test set frozen from generated records (its manifest says so) WHEN a run on your files meets it THEN it
    refuses, naming both origins and the directory to delete; the manifest records the origin it was made from."""
    frozen = tmp_path / "frozen"
    prepare(churn_spec, churn_inputs["features"], churn_inputs["labels"], str(frozen), data_origin={"kind": "generated"})
    assert json.loads((frozen / "test" / "manifest.json").read_text())["data_origin"] == {"kind": "generated"}
    mine = {"kind": "files", "source": "data/churn.csv", "sha256": "0123456789abcdef" * 4}
    with pytest.raises(InputError) as excinfo:
        prepare(churn_spec, churn_inputs["features"], churn_inputs["labels"], str(tmp_path / "out"),
                frozen_test_dir=str(frozen / "test"), data_origin=mine)
    assert str(excinfo.value) == (
        f"frozen test set ({frozen / 'test'}): it was frozen from generated records, but this run prepares your files "
        f"(data/churn.csv, sha256 0123456789ab); its rows are not this data's, so every evaluation on it would be wrong: "
        f"delete {frozen / 'test'} so that the next run freezes a new one from the data it has then (the champion is "
        "judged on the new rows too)")
    assert not (tmp_path / "out").exists()


def test_given_a_modified_frozen_test_set_then_prepare_refuses_it(churn_spec, churn_inputs, prepared, tmp_path):
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    table = pq.read_table(Path(prepared["test"]) / "test.parquet").slice(1)
    pq.write_table(table, frozen / "test.parquet")
    (frozen / "manifest.json").write_bytes((Path(prepared["test"]) / "manifest.json").read_bytes())
    with pytest.raises(InputError, match="sha256"):
        prepare(churn_spec, churn_inputs["features"], churn_inputs["labels"], str(tmp_path / "out"), frozen_test_dir=str(frozen))
    assert not (tmp_path / "out").exists()


def test_a_frozen_test_set_computed_by_other_feature_definitions_is_refused(churn_spec, churn_inputs, prepared, tmp_path):
    """GIVEN a frozen test set and a dataset whose feature expression changed since WHEN prepared again THEN it
    refuses, naming the features and the reset: the frozen rows hold values the changed code would not compute, and
    challenger and champion would be judged on them (the manifest records each feature's definition)."""
    manifest = json.loads((Path(prepared["test"]) / "manifest.json").read_text())
    feature = churn_spec.features[0]
    assert manifest["feature_definitions"][feature].startswith(churn_spec.catalog_dataset.feature(feature).feature_type)
    document = churn_spec.to_dict()
    (entry,) = [f for f in document["dataset"]["features"] if f["name"] == feature]
    entry["expr"] = f"clip({entry['expr']}, 0, 1)"
    changed = parse_model_spec(json.dumps(document))
    with pytest.raises(InputError) as excinfo:
        prepare(changed, churn_inputs["features"], churn_inputs["labels"], str(tmp_path / "out"), frozen_test_dir=prepared["test"])
    assert str(excinfo.value) == (
        f"frozen test set ({prepared['test']}): its [{feature!r}] were computed by other definitions (type or expression) "
        "than the dataset declares now, so its rows are not what the model sees; delete it so that the next run freezes a "
        "new one from the data it has then (the champion is judged on the new rows too)")
    assert not (tmp_path / "out").exists()


def _group_rows(directory, attribute) -> dict:
    return _read(directory)[attribute].dropna().astype(str).value_counts().to_dict()


def _sizes(groups: dict) -> str:
    return ", ".join(f"{g}: {n}" for g, n in sorted(groups.items(), key=lambda item: (-item[1], item[0])))


def test_a_new_test_set_without_two_groups_big_enough_to_compare_is_refused_and_nothing_is_frozen(
    churn_spec, churn_inputs, prepared, tmp_path
):
    """GIVEN the gate's min_group_rows above the second-largest group of the sensitive attribute in the rows the
    new test set would hold WHEN prepared without a frozen test set THEN it refuses, naming the groups, why it
    matters (the set would be frozen for every later run) and the fix, and writes nothing."""
    attribute = churn_spec.sensitive_attribute
    groups = _group_rows(prepared["test"], attribute)  # the rows a new test set of these inputs holds
    minimum = sorted(groups.values())[-2] + 1
    rows = len(_read(prepared["test"]))
    with pytest.raises(InputError) as excinfo:
        prepare(churn_spec, churn_inputs["features"], churn_inputs["labels"], str(tmp_path / "out"), min_group_rows=minimum)
    assert str(excinfo.value) == (
        f"the new test set ({rows} rows: the latest 15% by event time) cannot show fairness across {attribute!r}: "
        f"1 group has >= {minimum} rows ({_sizes(groups)}), and a comparison takes two; it would be frozen for every "
        "later run, so nothing is written: provide more labelled data, or lower gate.min_group_rows")
    assert not (tmp_path / "out").exists()


def test_a_frozen_test_set_the_gate_could_never_judge_fairness_on_is_refused_with_how_to_replace_it(
    churn_spec, churn_inputs, prepared, tmp_path, capsys
):
    """GIVEN a frozen test set and a min_group_rows no group of it reaches WHEN prepared through the job's CLI
    THEN it exits 1 naming where the set is kept, its version and size, and both ways out (training would only
    end in a gate that rejects every challenger)."""
    attribute = churn_spec.sensitive_attribute
    groups = _group_rows(prepared["test"], attribute)
    minimum = max(groups.values()) + 1
    code = prepare_main(["--model-spec", churn_spec.to_json(), "--features-dir", churn_inputs["features"],
                         "--labels-dir", churn_inputs["labels"], "--frozen-test-dir", prepared["test"],
                         "--output-dir", str(tmp_path / "out"), "--min-group-rows", str(minimum)])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        f"ERROR: the frozen test set ({prepared['test']}; version 1, {len(_read(prepared['test']))} rows) cannot show fairness "
        f"across {attribute!r}: 0 groups have >= {minimum} rows ({_sizes(groups)}), and a comparison takes two, so the "
        "gate would reject every challenger: lower gate.min_group_rows, or delete the frozen test set so that the next "
        "run freezes a new one from the data it has then (the champion is judged on the new rows too)")
    assert not (tmp_path / "out").exists()


def test_an_integer_record_identifier_is_read_as_its_decimal_text_and_joins_as_a_string_one_does(churn_spec, base):
    # GIVEN curated records whose identifier is declared an integer, and the feature job's frame (ids as text)
    root = base["root"] / "integer-ids"
    features, labels = base["features"].copy(), base["curated"].copy()
    codes = {v: i + 1 for i, v in enumerate(sorted(set(labels["customer_id"]) | set(features["customer_id"])))}
    labels["customer_id"] = labels["customer_id"].map(codes).astype("int64")
    features["customer_id"] = features["customer_id"].map(codes).astype("int64").astype(str)
    # WHEN prepared, and the same data with text ids
    summary = prepare(churn_spec, _write(features, root / "features"), _write(labels, root / "labels"), str(root / "out"))
    text = prepare(churn_spec, _write(base["features"], root / "text-features"), _write(base["curated"], root / "text-labels"),
                   str(root / "text-out"))
    # THEN every record joins as with text ids (the splits' digests aside: the ids are other text), and the splits
    # carry the ids as text
    def counts(splits):
        return {name: {k: v for k, v in split.items() if k != "sha256"} for name, split in splits.items()}

    assert counts(summary["splits"]) == counts(text["splits"])
    joined = pd.concat([_read(root / "out" / s) for s in ("train", "validation", "test")], ignore_index=True)
    assert joined["customer_id"].map(type).eq(str).all() and set(joined["customer_id"]) <= {str(c) for c in codes.values()}


# --------------------------------------------------------------------------------------
# Bad input: a clear error naming the column, nothing written
# --------------------------------------------------------------------------------------
def _bad_case(name, base):
    features, labels = base["features"].copy(), base["curated"].copy()
    if name == "missing feature column":
        features = features.drop(columns=["region"])
    elif name == "extra label column":
        labels["score"] = 0.5
    elif name == "wrong feature type":
        features["tenure_months"] = features["tenure_months"].astype(str)
    elif name == "wrong label type":
        labels["churned"] = labels["churned"].astype(str)
    elif name == "label not 0/1":
        labels["churned"] = labels["churned"] * 2
    elif name == "single class":
        labels["churned"] = 0
    elif name == "empty split":
        features["event_time"] = "2026-02-01T00:00:00Z"
        labels["event_time"] = pd.Timestamp("2026-02-01", tz="UTC")
    elif name == "duplicate labels":
        labels = pd.concat([labels, labels.iloc[:3]], ignore_index=True)
    return features, labels


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("missing feature column", ["features", "missing columns ['region']"]),
        ("extra label column", ["labels", "unexpected columns ['score']"]),
        ("wrong feature type", ["column 'tenure_months' has type string", "expected a number"]),
        ("wrong label type", ["column 'churned' has type string"]),
        ("label not 0/1", ["'churned' must hold 0/1 labels", "2"]),
        ("single class", ["single class", "'churned'"]),
        ("empty split", ["split is empty"]),
        ("duplicate labels", ["3 duplicate ('customer_id', 'event_time') keys"]),
    ],
)
def test_given_bad_input_then_prepare_raises_naming_the_problem_before_writing(churn_spec, base, case, fragments):
    root = base["root"] / case.replace(" ", "-")
    features, labels = _bad_case(case, base)
    out = root / "out"
    with pytest.raises(InputError) as excinfo:
        prepare(churn_spec, _write(features, root / "features"), _write(labels, root / "labels"), str(out))
    for fragment in fragments:
        assert fragment in str(excinfo.value)
    assert not out.exists(), "outputs were written although the input was rejected"


def test_given_bad_input_when_run_as_cli_then_exit_code_is_1_with_the_message(churn_spec, base, capsys):
    from pipeline_code.training import prepare as prepare_module

    root = base["root"] / "cli-bad"
    features, labels = _bad_case("missing feature column", base)
    code = prepare_module.main(
        [
            "--model-spec", churn_spec.to_json(),
            "--features-dir", _write(features, root / "features"),
            "--labels-dir", _write(labels, root / "labels"),
            "--output-dir", str(root / "out"),
        ]
    )  # fmt: skip
    assert code == 1
    assert "missing columns ['region']" in capsys.readouterr().err


def test_split_fractions_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        SplitFractions(0.8, 0.15, 0.15)
    assert np.isclose(sum(SplitFractions().__dict__.values()), 1.0)


def test_given_spark_style_part_files_and_success_markers_then_they_are_read(churn_spec, base):
    """Spark writes part-*.snappy.parquet plus _SUCCESS and .crc files: only parquet is read."""
    root = base["root"] / "spark-style"
    features_dir = root / "features"
    write_features_parquet(base["features"], str(features_dir), DATASET)
    (features_dir / "part-00000.parquet").rename(features_dir / "part-00000-abc.snappy.parquet")
    (features_dir / "_SUCCESS").write_text("")
    (features_dir / ".part-00000-abc.snappy.parquet.crc").write_text("x")
    labels_dir = root / "labels" / "event_date=2026-01-01"  # hive partition folder adds no column
    summary = prepare(churn_spec, str(features_dir), _write(base["curated"], labels_dir), str(root / "out"))
    assert summary["join"]["matched"] == len(base["curated"])


def test_given_the_frozen_set_is_the_test_output_itself_then_it_is_kept_in_place(churn_spec, churn_inputs, prepared, tmp_path):
    """Both pointed at one directory (a run re-using its own output): nothing is deleted."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(prepared["test"], out / "test")
    before = (out / "test" / "test.parquet").read_bytes()
    prepare(churn_spec, churn_inputs["features"], churn_inputs["labels"], str(out), frozen_test_dir=str(out / "test"))
    assert (out / "test" / "test.parquet").read_bytes() == before


def test_all_records_at_one_event_time_are_refused_naming_the_time_and_what_the_split_needs(churn_spec, base):
    # GIVEN every record (and its features) at one event time, as an export stamped with its own date would be
    root = base["root"] / "one-time"
    features, labels = base["features"].copy(), base["curated"].copy()
    features["event_time"] = "2026-02-01T00:00:00Z"
    labels["event_time"] = pd.Timestamp("2026-02-01", tz="UTC")
    # WHEN prepared THEN the error says so and asks for the records' real times (no setting the user cannot reach)
    with pytest.raises(InputError) as excinfo:
        prepare(churn_spec, _write(features, root / "features"), _write(labels, root / "labels"), str(root / "out"))
    assert str(excinfo.value) == (
        f"the train split is empty: all {len(labels)} rows share event_time 2026-02-01T00:00:00Z; the time split needs "
        "several distinct event times (train, validation and test are the earliest, middle and latest ones, and rows of "
        "one time are never split): give each record the time it was observed in 'event_time'")
    assert not (root / "out").exists()


def test_a_model_input_null_in_every_row_of_a_new_test_set_is_refused_and_nothing_is_frozen(churn_spec, base):
    # GIVEN records whose monthly_charges column is empty (an export that left it out)
    root = base["root"] / "all-null"
    features = base["features"].copy()
    features["monthly_charges"] = np.nan
    # WHEN prepared without a frozen test set THEN it refuses to freeze a set without that input
    with pytest.raises(InputError) as excinfo:
        prepare(churn_spec, _write(features, root / "features"), _write(base["curated"], root / "labels"), str(root / "out"))
    assert str(excinfo.value) == (
        "the new test set (450 rows: the latest 15% by event time): feature(s) ['monthly_charges'] are null in every "
        "row; it would be frozen for every later run, so nothing is written: fix the data (a column empty or absent in "
        "the records, or an expression null for every row), or leave them out of the model's features")
    assert not (root / "out").exists()


def test_a_model_input_null_or_constant_in_training_is_warned_about_in_the_summary(churn_spec, base):
    # GIVEN records whose support calls are missing before the test period and whose region is one value throughout
    root = base["root"] / "uninformative"
    features = base["features"].copy()
    cut = features["event_time"].sort_values().iloc[int(len(features) * 0.8)]
    features.loc[features["event_time"] < cut, "log_support_calls_90d"] = np.nan
    features["region"] = "north"
    # WHEN prepared THEN prepare.json warns about each (and the CLI prints them)
    summary = prepare(churn_spec, _write(features, root / "features"), _write(base["curated"], root / "labels"),
                      str(root / "out"))
    train = summary["splits"]["train"]["rows"]
    test = summary["splits"]["test"]["rows"]
    assert summary["warnings"] == [
        f"feature 'log_support_calls_90d' is null in all {train} training rows: the model cannot learn from it or be "
        "judged on it; fix the data (a column empty or absent in the records, or an expression null for every row), or "
        "leave it out of the model's features",
        f"feature 'region' has the single value 'north' in all {train} training rows: it tells the records apart in no "
        "way there; check the data, or leave it out of the model's features",
        f"feature 'region' has the single value 'north' in all {test} new test set rows: it tells the records apart in "
        "no way there; check the data, or leave it out of the model's features"]
    assert json.loads((root / "out" / "summary" / "prepare.json").read_text())["warnings"] == summary["warnings"]


def test_features_too_many_for_the_instances_memory_are_refused_before_reading_naming_the_size_and_the_fix(
        churn_spec, churn_inputs, tmp_path, monkeypatch):
    # GIVEN the churn features (6,000 records) and an instance with 64 MiB left (a day of 50M records of 300 features
    # needs some 280 GiB at Prepare's peak: the job was killed for memory, its log saying nothing of why)
    from pipeline_code.training import prepare as prepare_module

    monkeypatch.setattr(prepare_module, "_available_memory", lambda: 64 * 1024**2)
    rows = pq.ParquetDataset(churn_inputs["features"]).read().num_rows
    columns = 2 + len(churn_spec.frame_features)
    needed = (prepare_module.PEAK_BASE_BYTES + prepare_module.PEAK_BYTES_PER_VALUE * rows * columns) / 1024**3
    # WHEN Prepare runs THEN it is refused before reading them, naming the count, the estimate, what is left and the fix
    with pytest.raises(InputError) as caught:
        prepare(churn_spec, churn_inputs["features"], churn_inputs["labels"], str(tmp_path / "out"))
    assert str(caught.value) == (
        f"features ({churn_inputs['features']}): {rows:,} records x {columns} columns need about {needed:.1f} GiB at "
        f"Prepare's peak (~{prepare_module.PEAK_BYTES_PER_VALUE} bytes a value) and this machine has 0.1 GiB left: it "
        "would be killed for memory; give the training pipeline a larger training.processing_instance_type "
        "(ml.m5.24xlarge: 384 GiB), or in a local run free memory on your machine, or train on fewer records "
        "(docs/training.md, Scale limits)")
    assert not (tmp_path / "out").exists()
