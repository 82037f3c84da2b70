"""prepare re-freezes a stale frozen test set (``--test-set-refreeze when_stale``, the default), and only a stale one.

The scenario is the leakage trial's: monthly snapshots of the same customers (one row per customer a month). The
test set is frozen on months 1-8; a later run on months 1-12 would otherwise train and validate on months 9-12 - rows
after the frozen window, later snapshots of the very customers it is judged on - so its evaluation would not be
out-of-time (the trial measured the frozen set overstating the real future's AUC twice as much as an honest split).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline_code.core.problem import MULTICLASS, REGRESSION
from pipeline_code.features.compute import compute_features
from pipeline_code.features.ingestion.pandas_engine import write_features_parquet
from pipeline_code.sample_data.generate import generate
from pipeline_code.training import data_io
from pipeline_code.training.prepare import main as prepare_main
from pipeline_code.training.prepare import prepare
from tests.support import datasets as samples
from tests.support.training import UNREAD_SHAP_ROWS

DATASET = samples.get_dataset("customer_churn")
CUSTOMERS = 600


def _months(last: int, *, gender_from: int = 0) -> pd.DataFrame:
    """Months 1..``last`` of 2026: each month a snapshot of the same ``CUSTOMERS`` customers at a time in that month;
    from month ``gender_from`` on (0: never) every customer is 'female'."""
    frames = []
    for month in range(1, last + 1):
        frame = generate(samples.CUSTOMER_CHURN, CUSTOMERS, seed=100 + month, start=f"2026-{month:02d}-01", days=28)
        frame["customer_id"] = [f"C{i:05d}" for i in range(CUSTOMERS)]  # the same customers every month
        if gender_from and month >= gender_from:
            frame["gender"] = "female"
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _inputs(root: Path, curated: pd.DataFrame) -> dict:
    write_features_parquet(compute_features(curated, DATASET), str(root / "features"), DATASET)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    curated.to_parquet(root / "labels" / "part-00000.parquet", index=False)
    return {"features": str(root / "features"), "labels": str(root / "labels")}


def _read(directory) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f) for f in data_io.list_parquet_files(str(directory))], ignore_index=True)


def _times(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["event_time"], utc=True)


def _iso(time: pd.Timestamp) -> str:
    return time.isoformat().replace("+00:00", "Z")


def _after(rows: pd.DataFrame, test: pd.DataFrame) -> int:
    return int((_times(rows) > _times(test).max()).sum())


@pytest.fixture(scope="module")
def frozen(churn_spec, tmp_path_factory):
    """GIVEN months 1-8 prepared with no frozen test set: the latest 15 % (most of month 8) is frozen."""
    root = tmp_path_factory.mktemp("monthly")
    inputs = _inputs(root / "m1_8", _months(8))
    summary = prepare(churn_spec, inputs["features"], inputs["labels"], str(root / "first"))
    assert summary["frozen_test_set_reused"] is False and summary["test_set_refreeze"] is None
    return {"root": root, "test": str(root / "first" / "test"), "summary": summary}


def test_a_stale_frozen_test_set_is_re_frozen_from_the_latest_rows_which_train_and_validation_precede(
    churn_spec, frozen
):
    """GIVEN the set frozen on months 1-8 WHEN months 1-12 are prepared (4 of 12 months after its window: a third of
    the rows, over the 15 % test fraction) THEN the set is re-frozen from the latest 15 %, which lies after the old
    window; train and validation end before it; the manifest and the summary say it was re-frozen, why and what it
    replaced; the old set's files are not touched."""
    root, old_dir = frozen["root"], Path(frozen["test"])
    old_bytes = {name: (old_dir / name).read_bytes() for name in ("test.parquet", "manifest.json")}
    old_manifest, old_test = json.loads(old_bytes["manifest.json"]), _read(old_dir)
    data = _months(12)
    inputs = _inputs(root / "m1_12", data)
    out = root / "second"

    summary = prepare(churn_spec, inputs["features"], inputs["labels"], str(out), frozen_test_dir=str(old_dir))

    train, validation, test = (_read(out / split) for split in ("train", "validation", "test"))
    assert _times(train).max() < _times(validation).min() and _times(validation).max() < _times(test).min()
    assert _times(test).min() > _times(old_test).max()  # the new window is wholly after the old one
    assert len(train) + len(validation) + len(test) == len(data)  # a first freeze's split: no key left out
    assert abs(len(test) / len(data) - 0.15) < 0.01
    assert {name: (old_dir / name).read_bytes() for name in old_bytes} == old_bytes

    after, needed = _after(data, old_test), 1080  # 15 % of 7200 rows
    assert after == 4 * CUSTOMERS
    previous = {k: old_manifest[k] for k in ("sha256", "version", "created_at", "time_range", "rows")}
    reason = (
        f"the frozen test set (version 1, {len(old_test)} rows, {old_manifest['time_range']['min']}–"
        f"{old_manifest['time_range']['max']}, sha256 {old_manifest['sha256'][:12]}) had gone stale: {after} of this "
        f"run's {len(data)} rows have event times after its window, at least the test fraction (15%: {needed} rows), so "
        f"train and validation would learn from the period after it; re-frozen from the latest 15% by event time "
        f"({len(test)} rows, {_iso(_times(test).min())}–{_iso(_times(test).max())}), which train and validation precede, "
        "and the champion is judged on it too")
    assert summary["frozen_test_set_reused"] is False and summary["frozen_test_set_refrozen"] is True
    assert summary["rows_excluded_as_test_keys"] == 0
    assert summary["test_set_refreeze"] == {
        "policy": "when_stale", "stale": True, "refrozen": True, "rows": len(data), "rows_after_test_set": after,
        "stale_at_rows": needed, "reason": reason, "previous_test_set": previous}
    assert not [w for w in summary["warnings"] if "not out-of-time" in w]

    manifest = json.loads((out / "test" / "manifest.json").read_text())
    assert manifest["version"] == "2" and manifest["rows"] == len(test)
    assert manifest["sha256"] == data_io.sha256_file(str(out / "test" / "test.parquet")) == summary["test_set"]["sha256"]
    assert manifest["refrozen"] == {"reason": reason, "rows": len(data), "rows_after_previous": after, "previous": previous}
    assert manifest["replaced_test_sets"] == [previous]


def test_a_re_frozen_set_that_goes_stale_again_records_every_set_it_replaced(churn_spec, frozen, tmp_path):
    """GIVEN a set re-frozen once (months 1-12 over the months 1-8 set) WHEN the data grows stale past it again
    THEN the next one is version 3 and lists both earlier sets, latest first."""
    second = tmp_path / "second"
    inputs = _inputs(tmp_path / "m1_12", _months(12))
    prepare(churn_spec, inputs["features"], inputs["labels"], str(second), frozen_test_dir=frozen["test"])
    later = _months(12)
    extra = generate(samples.CUSTOMER_CHURN, 3 * CUSTOMERS, seed=200, start="2027-01-01", days=80)
    inputs = _inputs(tmp_path / "m1_15", pd.concat([later, extra], ignore_index=True))
    summary = prepare(churn_spec, inputs["features"], inputs["labels"], str(tmp_path / "third"),
                      frozen_test_dir=str(second / "test"))
    manifest = json.loads((tmp_path / "third" / "test" / "manifest.json").read_text())
    first, middle = (json.loads((Path(d) / "manifest.json").read_text()) for d in (frozen["test"], second / "test"))
    assert summary["frozen_test_set_refrozen"] is True and manifest["version"] == "3"
    assert [entry["sha256"] for entry in manifest["replaced_test_sets"]] == [middle["sha256"], first["sha256"]]


def test_a_frozen_test_set_with_fewer_rows_after_it_than_the_test_fraction_is_reused(churn_spec, frozen):
    """GIVEN the set frozen on months 1-8 WHEN months 1-9 are prepared (one month after its window: 600 of 5400 rows,
    under 15 %) THEN it is reused unchanged, and the not-out-of-time warning says when Prepare will re-freeze it."""
    root, old_dir = frozen["root"], Path(frozen["test"])
    data = _months(9)
    inputs = _inputs(root / "m1_9", data)
    out = root / "fresh"

    summary = prepare(churn_spec, inputs["features"], inputs["labels"], str(out), frozen_test_dir=str(old_dir))

    old_test = _read(old_dir)
    assert (out / "test" / "test.parquet").read_bytes() == (old_dir / "test.parquet").read_bytes()
    assert summary["frozen_test_set_reused"] is True and summary["frozen_test_set_refrozen"] is False
    assert summary["test_set_refreeze"] == {
        "policy": "when_stale", "stale": False, "refrozen": False, "rows": len(data), "rows_after_test_set": CUSTOMERS,
        "stale_at_rows": 810}
    until = _iso(_times(_read(out / "validation")).max())
    assert [w for w in summary["warnings"] if "not out-of-time" in w] == [
        f"train and validation reach {until}, the frozen test set covers {_iso(_times(old_test).min())}–"
        f"{_iso(_times(old_test).max())}: the challenger learns from the period it is judged on, so its evaluation is "
        "not out-of-time (the evaluation report and the model card say so); Prepare re-freezes it from the latest rows "
        f"once those after its window are at least the test fraction (15%: 810 of this run's {len(data)} rows; now "
        f"{CUSTOMERS}), or delete {old_dir} so that the next run freezes a new one from the data it has then (the "
        "champion is judged on the new rows too)"]
    manifest = json.loads((out / "test" / "manifest.json").read_text())
    assert "refrozen" not in manifest and manifest["version"] == "1"


def test_with_never_a_stale_frozen_test_set_is_reused_and_the_warning_says_how_to_replace_it(churn_spec, frozen, capsys):
    """GIVEN the set frozen on months 1-8 WHEN months 1-12 are prepared with --test-set-refreeze never (the CLI) THEN
    it is reused unchanged - the earlier behaviour - the summary says it is stale, and the warning says to delete it."""
    root, old_dir = frozen["root"], Path(frozen["test"])
    data = _months(12)
    inputs = _inputs(root / "m1_12-never", data)
    out = root / "never"
    code = prepare_main(["--model-spec", churn_spec.to_json(), "--features-dir", inputs["features"],
                         "--labels-dir", inputs["labels"], "--frozen-test-dir", str(old_dir), "--output-dir", str(out),
                         "--test-set-refreeze", "never"])
    assert code == 0

    summary = json.loads((out / "summary" / "prepare.json").read_text())
    old_test = _read(old_dir)
    assert (out / "test" / "test.parquet").read_bytes() == (old_dir / "test.parquet").read_bytes()
    assert summary["frozen_test_set_reused"] is True and summary["frozen_test_set_refrozen"] is False
    assert summary["test_set_refreeze"] == {
        "policy": "never", "stale": True, "refrozen": False, "rows": len(data), "rows_after_test_set": 4 * CUSTOMERS,
        "stale_at_rows": 1080}
    until = _iso(_times(_read(out / "validation")).max())
    assert [w for w in summary["warnings"] if "not out-of-time" in w] == [
        f"train and validation reach {until}, the frozen test set covers {_iso(_times(old_test).min())}–"
        f"{_iso(_times(old_test).max())}: the challenger learns from the period it is judged on, so its evaluation is "
        "not out-of-time (the evaluation report and the model card say so); to judge it on rows after its training "
        f"data, delete {old_dir} so that the next run freezes a new one from the data it has then (the champion is "
        "judged on the new rows too)"]
    assert "(frozen test set reused, " in capsys.readouterr().out


def test_an_unknown_refreeze_policy_is_refused(churn_spec, capsys):
    with pytest.raises(SystemExit):
        prepare_main(["--model-spec", churn_spec.to_json(), "--test-set-refreeze", "always"])
    assert "argument --test-set-refreeze/--test_set_refreeze: invalid choice: 'always' (choose from 'when_stale', 'never')" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"^test_set_refreeze must be one of \['when_stale', 'never'\], got 'always'$"):
        prepare(churn_spec, "features", "labels", "out", test_set_refreeze="always")


def test_a_stale_set_whose_replacement_could_not_be_frozen_is_reused_with_a_warning_saying_why(churn_spec, frozen):
    """GIVEN the set frozen on months 1-8 WHEN months 1-12 are prepared but months 9-12 hold one gender only THEN the
    latest rows cannot show fairness, so the stale set is reused (not refused: it still can), with a warning saying
    it is stale, why it was not replaced and that the challenger is not judged out-of-time."""
    root, old_dir = frozen["root"], Path(frozen["test"])
    data = _months(12, gender_from=9)
    inputs = _inputs(root / "m1_12-one-gender", data)
    out = root / "unfit"

    summary = prepare(churn_spec, inputs["features"], inputs["labels"], str(out), frozen_test_dir=str(old_dir))

    assert (out / "test" / "test.parquet").read_bytes() == (old_dir / "test.parquet").read_bytes()
    assert summary["frozen_test_set_reused"] is True and summary["frozen_test_set_refrozen"] is False
    new_rows = len(data) - int(0.85 * len(data))
    reason = (f"the frozen test set is stale ({4 * CUSTOMERS} of this run's {len(data)} rows have event times after its "
              f"window, at least the test fraction (15%: 1080 rows)) but was not re-frozen: the latest 15% by event time "
              f"({new_rows} rows) cannot show fairness across 'gender': 1 group has >= 100 rows (female: {new_rows}), "
              "and a comparison takes two; it is reused, so a challenger is not judged out-of-time")
    assert summary["test_set_refreeze"]["reason"] == reason and summary["test_set_refreeze"]["stale"] is True
    assert summary["warnings"][0] == reason
    assert len([w for w in summary["warnings"] if "not out-of-time" in w]) == 1


def test_the_champion_is_scored_on_the_re_frozen_set_and_both_are_judged_out_of_time(churn_spec, dev_gate, frozen,
                                                                                      tmp_path):
    """GIVEN a champion trained on months 1-8 (before the set frozen then) WHEN months 1-12 re-freeze the set and a
    challenger is trained on them THEN Evaluate scores both on the new set, and both evaluations are out-of-time:
    neither model's training data reaches it (the not-out-of-time note stays away)."""
    from pipeline_code.training import evaluate
    from tests.support.training import train_model

    first = {s: str(Path(frozen["test"]).parent / s) for s in ("train", "validation", "test")}
    champion = train_model(churn_spec, first, tmp_path / "champion")
    inputs = _inputs(tmp_path / "m1_12", _months(12))
    out = tmp_path / "second"
    prepare(churn_spec, inputs["features"], inputs["labels"], str(out), frozen_test_dir=frozen["test"])
    second = {s: str(out / s) for s in ("train", "validation", "test")}
    challenger = train_model(churn_spec, second, tmp_path / "challenger")

    report = evaluate.evaluate(churn_spec, challenger, second["test"], str(tmp_path / "evaluation"), dev_gate,
                               champion_dir=champion, log=lambda *_: None, shap_sample_rows=UNREAD_SHAP_ROWS)

    rows = len(_read(out / "test"))
    assert report["test_set"]["sha256"] == json.loads((out / "test" / "manifest.json").read_text())["sha256"]
    assert report["challenger"]["metrics"]["rows"] == report["champion"]["metrics"]["rows"] == rows
    assert report["out_of_time"]["challenger"] is True and report["out_of_time"]["champion"] is True
    assert "note" not in report["out_of_time"]


def _one_label_from(data: pd.DataFrame, target: str, value) -> pd.DataFrame:
    """``data`` whose latest 15 % of rows (by event time; the rows a re-freeze would take) all have ``value`` as
    ``target``: a rare event not seen lately, or labels that have not matured yet."""
    data = data.copy()
    times = _times(data)
    data.loc[times >= times.sort_values().iloc[int(len(data) * 0.85)], target] = value
    return data


def _single_label_reason(rows: int, after: int, test_rows: int, needed: int, text: str) -> str:
    return (f"the frozen test set is stale ({after} of this run's {rows} rows have event times after its window, at "
            f"least the test fraction (15%: {needed} rows)) but was not re-frozen: the splits a re-freeze from the latest "
            f"15% by event time ({test_rows} rows) would make fail a first freeze's check (the test split has a single "
            f"{text}); it is reused, so a challenger is not judged out-of-time")


def test_a_stale_set_whose_latest_rows_hold_one_class_is_reused_with_a_warning_not_refused(churn_spec, frozen):
    """GIVEN the set frozen on months 1-8 WHEN months 1-12 are prepared and the latest 15 % of rows are all churned=0
    (labels not matured yet) THEN the re-freeze, whose test split would hold one class, is not made: the stale set is
    reused with a warning naming the split check - Prepare does not fail on every run until the labels come in."""
    root, old_dir = frozen["root"], Path(frozen["test"])
    data = _one_label_from(_months(12), churn_spec.target, 0)
    inputs = _inputs(root / "m1_12-one-class", data)
    out = root / "one-class"

    summary = prepare(churn_spec, inputs["features"], inputs["labels"], str(out), frozen_test_dir=str(old_dir))

    assert (out / "test" / "test.parquet").read_bytes() == (old_dir / "test.parquet").read_bytes()
    assert summary["frozen_test_set_reused"] is True and summary["frozen_test_set_refrozen"] is False
    new_rows = len(data) - int(0.85 * len(data))
    reason = _single_label_reason(len(data), 4 * CUSTOMERS, new_rows, 1080,
                                  f"class: every {churn_spec.target!r} value of its {new_rows} rows is 0")
    assert summary["test_set_refreeze"]["reason"] == reason and summary["test_set_refreeze"]["refrozen"] is False
    assert summary["warnings"][0] == reason


@pytest.mark.parametrize("kind", [MULTICLASS, REGRESSION])
def test_a_stale_set_whose_latest_rows_hold_one_class_or_value_is_reused_for_every_problem_type(kind, tmp_path):
    """GIVEN a multiclass (or regression) model's set frozen on its first 240 days WHEN a later run adds 120 days whose
    latest 15 % of rows hold one class (one value) THEN the set is reused with the warning naming the split check,
    not refused."""
    from tests.support.problem_types import dataset, make_spec

    spec, shop = make_spec(kind), dataset()

    def orders(rows: int, seed: int, start: str, days: int, prefix: str) -> pd.DataFrame:
        frame = generate(shop, rows, seed=seed, start=start, days=days)
        frame["order_id"] = [f"{prefix}{i:05d}" for i in range(rows)]
        return frame

    def inputs(root: Path, curated: pd.DataFrame) -> dict:
        write_features_parquet(compute_features(curated, shop), str(root / "features"), shop)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        curated.to_parquet(root / "labels" / "part-00000.parquet", index=False)
        return {"features": str(root / "features"), "labels": str(root / "labels")}

    early = orders(4000, 1, "2026-01-01", 240, "A")
    first = inputs(tmp_path / "early", early)
    prepare(spec, first["features"], first["labels"], str(tmp_path / "first"))
    value = "gold" if kind == MULTICLASS else 120.0
    data = _one_label_from(pd.concat([early, orders(3000, 2, "2026-09-01", 120, "B")], ignore_index=True), spec.target,
                           value)
    later = inputs(tmp_path / "later", data)

    summary = prepare(spec, later["features"], later["labels"], str(tmp_path / "second"),
                      frozen_test_dir=str(tmp_path / "first" / "test"))

    assert summary["frozen_test_set_reused"] is True and summary["frozen_test_set_refrozen"] is False
    new_rows, refreeze = len(data) - int(0.85 * len(data)), summary["test_set_refreeze"]
    assert refreeze["stale"] is True and refreeze["rows_after_test_set"] >= refreeze["stale_at_rows"]
    text = (f"class: every {spec.target!r} value of its {new_rows} rows is gold" if kind == MULTICLASS else
            f"value: every {spec.target!r} value of its {new_rows} rows is 120.0")
    reason = _single_label_reason(len(data), refreeze["rows_after_test_set"], new_rows, refreeze["stale_at_rows"], text)
    assert refreeze["reason"] == reason and summary["warnings"][0] == reason


@pytest.fixture(scope="module")
def champion_into_refrozen_window(churn_spec, frozen, tmp_path_factory):
    """The reviewer's monthly runs: GIVEN the set frozen on months 1-8; the run on months 1-9 (not stale yet) trains
    the champion, whose train and validation reach into month 9; the run on months 1-10 is stale, re-freezes the set
    from the latest 15 % - which starts inside month 9, inside the champion's training period - and trains the
    challenger."""
    from tests.support.training import train_model

    root = tmp_path_factory.mktemp("champion-in-window")
    runs = {}
    for name, months in (("champion", 9), ("challenger", 10)):
        inputs = _inputs(root / f"m1_{months}", _months(months))
        summary = prepare(churn_spec, inputs["features"], inputs["labels"], str(root / name),
                          frozen_test_dir=frozen["test"])
        splits = {s: str(root / name / s) for s in ("train", "validation", "test")}
        runs[name] = {"summary": summary, "splits": splits, "model": train_model(churn_spec, splits, root / f"{name}-model")}
    assert runs["champion"]["summary"]["frozen_test_set_reused"] is True
    assert runs["challenger"]["summary"]["frozen_test_set_refrozen"] is True
    test_dir = runs["challenger"]["splits"]["test"]
    learnt = pd.concat([_read(runs["champion"]["splits"][s]) for s in ("train", "validation")])
    return {"root": root, "test_dir": test_dir, "test": _read(test_dir), "champion": runs["champion"]["model"],
            "challenger": runs["challenger"]["model"], "champion_until": _iso(_times(learnt).max())}


def test_a_champion_trained_into_a_re_frozen_window_is_compared_only_on_the_rows_after_both_models_data(
    churn_spec, dev_gate, champion_into_refrozen_window, tmp_path
):
    """GIVEN the champion trained on months 1-9 and the set re-frozen on months 1-10 from rows it partly learnt from
    WHEN the challenger is evaluated THEN the note says the champion is scored in-sample on how many test rows, and
    the gate compares the two (margin, slices) only on the test rows after the champion's data - where neither
    learnt - while the challenger's own checks stay on the whole set; the report says which rows, how many and why."""
    from pipeline_code.training import evaluate

    case = champion_into_refrozen_window
    test, until = case["test"], case["champion_until"]
    times = _times(test)
    in_sample, later = int((times <= pd.Timestamp(until)).sum()), int((times > pd.Timestamp(until)).sum())
    assert in_sample > 0 and later >= dev_gate.min_slice_rows  # months 9-10: a third in-sample, the rest after

    printed = []
    report = evaluate.evaluate(churn_spec, case["challenger"], case["test_dir"], str(tmp_path / "evaluation"), dev_gate,
                               champion_dir=case["champion"], log=printed.append, shap_sample_rows=UNREAD_SHAP_ROWS)

    judged = report["out_of_time"]
    assert judged["challenger"] is True and judged["champion"] is False and judged["champion_data_until"] == until
    compared = judged["comparison"]
    reason = (f"the challenger is compared with the champion (margin, slices) on the {later} of {len(test)} test rows "
              f"after {until}, which neither model's training data reaches; its own checks (quality, fairness) are on "
              f"all {len(test)}")
    assert {k: compared[k] for k in ("basis", "after", "rows", "test_rows", "reason")} == {
        "basis": "out_of_time_rows", "after": until, "rows": later, "test_rows": len(test), "reason": reason}
    assert judged["note"] == (f"the champion's training data reaches {until}: it is scored in-sample on {in_sample} of "
                              f"{len(test)} test rows; {reason}")
    # The comparison's metrics are of the later rows; the challenger's own, of the whole set.
    assert compared["challenger"]["metrics"]["rows"] == compared["champion"]["metrics"]["rows"] == later
    assert report["challenger"]["metrics"]["rows"] == report["champion"]["metrics"]["rows"] == len(test)
    mine, theirs = compared["challenger"]["metrics"]["auc"], compared["champion"]["metrics"]["auc"]
    assert report["comparison"]["auc_delta"] == pytest.approx(mine - theirs)
    margin = next(c for c in report["gate"]["checks"] if c["name"] == "challenger_margin")
    assert (margin["value"], margin["champion_value"], margin["rows"], margin["after"]) == (mine, theirs, later, until)
    assert margin["message"].endswith(f" on the {later} test rows after {until}")
    slices = [c for c in report["gate"]["checks"] if c["name"] == "slice_regression"]
    assert slices and all(f"rows after {until}): " in c["message"] and c["rows"] <= later for c in slices)
    assert judged["note"] in report["gate"]["reasons"]
    assert f"  compared:   on the {later} of {len(test)} test rows after {until}: challenger auc={mine:.4f} champion auc={theirs:.4f}" in printed


def test_when_too_few_rows_follow_both_models_data_the_champion_comparison_stays_on_the_whole_set(
    churn_spec, dev_gate, champion_into_refrozen_window, tmp_path
):
    """GIVEN the same runs and a gate whose min_slice_rows exceeds the test rows after the champion's data WHEN the
    challenger is evaluated THEN the margin and slice checks are made on the whole set - where the champion, partly
    in-sample, is favoured: a worse challenger is not promoted for want of rows - and the note says so, on how many
    rows the champion is in-sample, and how many more rows a comparison after both models' data needs (naming the
    minimum)."""
    import dataclasses

    from pipeline_code.training import evaluate

    case = champion_into_refrozen_window
    test, until = case["test"], case["champion_until"]
    times = _times(test)
    in_sample, later = int((times <= pd.Timestamp(until)).sum()), int((times > pd.Timestamp(until)).sum())
    gate = dataclasses.replace(dev_gate, min_slice_rows=later + 1)

    printed = []
    report = evaluate.evaluate(churn_spec, case["challenger"], case["test_dir"], str(tmp_path / "evaluation"), gate,
                               champion_dir=case["champion"], log=printed.append, shap_sample_rows=UNREAD_SHAP_ROWS)

    compared = report["out_of_time"]["comparison"]
    assert compared == {"after": until, "rows": later, "test_rows": len(test), "basis": "whole_set_favours_champion",
                        "reason": (
        f"the champion comparison is on the whole test set, where the champion's training data reaches ({in_sample} of "
        f"{len(test)} rows in-sample): it favours the champion; a comparison on rows after both models' training data "
        f"({later} after {until}) needs 1 more row (gate.min_slice_rows: {later + 1}, what a gated slice needs)")}
    assert report["out_of_time"]["note"] == (f"the champion's training data reaches {until}: it is scored in-sample on "
                                             f"{in_sample} of {len(test)} test rows; {compared['reason']}")
    margin = next(c for c in report["gate"]["checks"] if c["name"] == "challenger_margin")
    mine, theirs = report["challenger"]["metrics"]["auc"], report["champion"]["metrics"]["auc"]
    assert report["challenger"]["metrics"]["rows"] == report["champion"]["metrics"]["rows"] == len(test)
    assert (margin["value"], margin["champion_value"]) == (mine, theirs)
    assert margin["message"].endswith(" on the whole test set, which favours the champion")
    assert margin["passed"] == (mine >= theirs + gate.challenger_margin)
    # The slice check ran on the whole set too (this gate's min_slice_rows leaves every slice value reported, not gated).
    assert any(r.endswith(f"slice value(s) with < {later + 1} rows or < {gate.min_slice_positives} positives or "
                          "negatives were reported, not gated") for r in report["gate"]["reasons"])
    assert report["gate"]["reasons"][-1] == report["out_of_time"]["note"]
    assert (f"  compared:   on the whole test set, which favours the champion (the {later} of {len(test)} test rows "
            f"after {until}: too few)") in printed
