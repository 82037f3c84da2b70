"""THE local run, twice: the second run is scored against the first run's model as champion."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import pytest
import yaml

from mlops_cli.local import run_loop
from mlops_cli.local.registry import APPROVED, PENDING, LocalRegistry
from pipeline_code.core import hyperparameters, integrity
from tests.support.configs import SAMPLE_CONFIG
from tests.support.local_run import DAYS, assert_online_holds, lenient_local_run

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def lenient_config(tmp_path_factory):
    """The sample config with a gate every reasonable model passes (the loop's mechanics are under test here, not the data)."""
    with lenient_local_run(tmp_path_factory.mktemp("config")) as path:
        yield path


@pytest.mark.slow
def test_given_two_consecutive_runs_then_the_second_is_evaluated_against_the_first(champion, lenient_config, tmp_path):
    first_run = champion("churn")  # the first run: CHAMPION_ARGS (seed 7)
    workdir = first_run.copy_to(tmp_path)
    common = ["--workdir", str(workdir), "--rows", "3000", "--days", DAYS, "--model", "churn", "--num-round", "30",
              "--config", lenient_config]
    out = io.StringIO()

    first = first_run.record
    assert first["champion_version"] is None and first["report"]["champion"] is None
    assert first["frozen_test_set_created"] is True
    assert first["version"] == 1 and first["status"] == APPROVED  # dev auto-approves a passing model
    assert first["data"]["quarantined_rows"] == 30  # 1 % bad records went through the real Spark ETL
    # Its records' event times span the --days window from 2026-01-01, landed as ingested the day after it.
    days = int(DAYS)
    assert first["parameters"]["days"] == days
    lake = Path(first["run_dir"]) / "lake"
    window = [(dt.date(2026, 1, 1) + dt.timedelta(days=d)).isoformat() for d in range(days)]
    assert sorted(p.name for p in (lake / "curated" / "customer_churn").iterdir()) == [f"event_date={d}" for d in window]
    assert [p.name for p in (lake / "raw" / "customer_churn").iterdir()] == [
        f"ingest_date={dt.date(2026, 1, 1) + dt.timedelta(days=days)}"]

    # The champion as the audit would find it after tampering: a report rewritten, its judged-on test set another.
    v1 = Path(LocalRegistry(str(workdir / "registry")).get("churn", 1).path)
    (v1 / "evaluation" / "bias.json").write_text("{}")
    record = json.loads((v1 / "version.json").read_text())
    record["lineage"]["data"]["test_set_sha256"] = "0" * 64
    # ... and the split it was trained with (in this test's copy of the first run) overwritten.
    train = workdir / Path(record["lineage"]["data"]["train_data"]).relative_to(first_run.workdir)
    assert integrity.directory_digest(str(train)) == record["lineage"]["data"]["train_data_sha256"]
    record["lineage"]["data"]["train_data"] = str(train)
    (train / "train.parquet").write_bytes(b"PAR1 other rows PAR1")
    (v1 / "version.json").write_text(json.dumps(record))

    second = run_loop.run([*common, "--seed", "8", "--drift", "0.3", "--no-auto-approve"], out=out)[0]
    assert [w for w in second["warnings"] if w.startswith("champion v1")] == [
        f"champion v1: evidence: {v1 / 'evaluation' / 'bias.json'} has sha256 {hashlib.sha256(b'{}').hexdigest()}, not "
        f"the {record['evidence']['evaluation/bias.json']} recorded at registration: it was rewritten since",
        f"champion v1: train split: {train} now has digest {integrity.directory_digest(str(train))}, not the "
        f"{record['lineage']['data']['train_data_sha256']} recorded at registration: its data was rewritten since",
        f"champion v1 was judged on test set {'0' * 64}, this run on {first['test_set_sha256']}: the frozen test set "
        "was replaced since",
    ]
    assert f"WARNING: champion v1 was judged on test set {'0' * 64}" in out.getvalue()
    assert second["champion_version"] == 1
    assert second["report"]["champion"] is not None
    assert second["test_set_sha256"] == first["test_set_sha256"]
    assert second["report"]["champion"]["metrics"]["rows"] == second["report"]["test_set"]["rows"]
    assert second["frozen_test_set_created"] is False
    assert second["version"] == 2 and second["status"] == PENDING

    registry = LocalRegistry(str(workdir / "registry"))
    assert registry.latest_approved("churn").version == 1  # v2 awaits a human
    lineage = registry.get("churn", 2).record["lineage"]
    assert lineage["champion_version"] == 1 and lineage["parameters"]["drift"] == 0.3
    assert lineage["parameters"]["days"] == int(DAYS)
    assert lineage["data"]["test_set_sha256"] == first["test_set_sha256"]
    assert "git_commit" in lineage["code_version"]
    assert (Path(registry.get("churn", 2).path) / "baseline" / "statistics.json").exists()
    # Each version keeps its jobs' outputs with their digests (and they hold for the version just registered).
    assert {"evaluation/evaluation.json", "evaluation/bias.json", "baseline/statistics.json"} <= set(
        registry.get("churn", 2).record["evidence"])
    assert registry.get("churn", 2).evidence_problems() == []
    # And the splits it was trained with, with the digests Prepare wrote (which still hold).
    summary = json.loads((Path(second["run_dir"]) / "prepared" / "summary" / "prepare.json").read_text())
    assert {k: lineage["data"][k] for k in ("train_data", "train_data_sha256", "validation_data_sha256")} == {
        "train_data": str(Path(second["run_dir"]) / "prepared" / "train"),
        "train_data_sha256": summary["splits"]["train"]["sha256"],
        "validation_data_sha256": summary["splits"]["validation"]["sha256"]}
    assert registry.get("churn", 2).split_problems() == []
    runs = [json.loads(line) for line in (workdir / "registry" / "runs.jsonl").read_text().splitlines()]
    assert [r["run_id"] for r in runs] == [first["run_id"], second["run_id"]]
    # Each run says what it ran on, so runs compare: the data, the inputs, the trainer's settings and the gate.
    config = run_loop.load_config(lenient_config, "dev")
    parameters = runs[1]["parameters"]
    assert parameters["features"] == config["models"]["churn"]["features"] and parameters["seed"] == 8
    assert parameters["gate"]["min_auc"] == config["gates"]["churn"]["min_auc"]
    assert parameters["hyperparameters"] == second["report"]["challenger"]["model_info"]["hyperparameters"]
    # The data seed (8) seeds the generated records only: the trainer ran with the pipeline's seed.
    configured = dict(zip(config["hyperparameters"]["churn"][::2], config["hyperparameters"]["churn"][1::2]))
    default = hyperparameters.defaults(config["frameworks"]["churn"])["seed"]
    assert parameters["hyperparameters"]["seed"] == int(configured.get("--seed", default))
    assert runs[1]["model_content_sha256"] == second["report"]["artifact"]["model_content_sha256"]
    assert runs[1]["data"]["source"] == "generated"
    assert "champion:   none (first model)" in first_run.printed
    assert "decision: registered churn v2 -> PendingManualApproval" in out.getvalue()

    # The feature jobs also filled the online store's twin: one current record per entity of both runs.
    import pandas as pd
    from mlops_cli.local.online_store import STORE_FILE, LocalOnlineStore, local_feature_group
    from pipeline_code.training.spec import parse_model_spec

    spec = parse_model_spec(run_loop.load_config(lenient_config, "dev")["models"]["churn"])
    ds = spec.catalog_dataset
    features = pd.concat([pd.read_parquet(Path(r["run_dir"]) / "features" / ds.name) for r in (first, second)])
    latest = features.sort_values(ds.event_time).drop_duplicates(ds.record_identifier, keep="last")
    store = LocalOnlineStore(str(workdir / STORE_FILE))
    group = local_feature_group(run_loop.load_config(lenient_config, "dev")["project"], "dev", ds.name)
    ids = latest[ds.record_identifier].tolist()
    got = store.batch_get_record(Identifiers=[{"FeatureGroupName": group, "RecordIdentifiersValueAsString": ids}])
    assert len(got["Records"]) == len(ids)
    one = latest.iloc[0]
    (record,) = [r for r in got["Records"] if r["RecordIdentifierValueAsString"] == one[ds.record_identifier]]
    stored = {f["FeatureName"]: f["ValueAsString"] for f in record["Record"]}
    assert float(stored["monthly_charges"]) == pytest.approx(float(one["monthly_charges"]))


@pytest.mark.slow
def test_a_champion_whose_model_changed_since_registration_stops_the_run(champion, curations, lenient_config, tmp_path,
                                                                         capsys):
    """GIVEN the local registry's champion v1 WHEN its model.json is changed after registration
    THEN the next run stops at evaluate, naming v1 and both digests, and registers nothing."""
    from pipeline_code.core import integrity

    workdir = champion("churn").copy_to(tmp_path)
    registry = LocalRegistry(str(workdir / "registry"))
    v1 = registry.latest_approved("churn")
    assert v1.version == 1 and v1.model_sha256 == integrity.model_digest(v1.model_dir)
    model = Path(v1.model_dir) / "model.json"
    model.write_text(model.read_text() + " ")
    common = ["--workdir", str(workdir), "--rows", "3000", "--days", DAYS, "--model", "churn", "--num-round", "30",
              "--config", lenient_config]
    with pytest.raises(run_loop.StageFailed, match="stage evaluate failed with exit code 1"):
        run_loop.run([*common, "--seed", "8"], out=io.StringIO(), curated=curations)
    assert (f"ERROR: champion v1 at {v1.model_dir}: its model has sha256 {integrity.model_digest(v1.model_dir)}, but "
            f"{v1.model_sha256} was recorded at registration (model_sha256)") in capsys.readouterr().err
    assert [v.version for v in registry.versions("churn")] == [1]


def test_data_and_labels_arguments_must_name_datasets_the_models_read(lenient_config, tmp_path):
    common = ["--workdir", str(tmp_path), "--model", "churn", "--config", lenient_config]
    with pytest.raises(ValueError, match=r"--data: dataset\(s\) \['credit_risk'\] are not read by the selected models; "
                                         r"they read: \['customer_churn'\]"):
        run_loop.run([*common, "--data", "credit_risk=x.csv"])
    with pytest.raises(ValueError, match=r"--labels: dataset\(s\) \['customer_churn'\] have no --data"):
        run_loop.run([*common, "--labels", "customer_churn=labels.csv"])


def test_an_unknown_model_is_rejected(lenient_config, tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        run_loop.run(["--workdir", str(tmp_path), "--model", "fraud", "--config", lenient_config])


def test_generated_records_span_90_days_unless_days_says_otherwise_and_a_window_of_no_whole_days_is_refused(
        lenient_config, tmp_path, capsys):
    """--days sizes the event window of generated records (the config plays no part: 90 by default); anything but a
    whole number of days of at least one is refused before any work, naming the flag and the value."""
    assert run_loop.build_parser().parse_args([]).days == 90
    assert run_loop.build_parser().parse_args(["--days", "7"]).days == 7
    for bad in ("0", "-3", "2.5", "a week"):
        with pytest.raises(SystemExit) as refused:
            run_loop.run(["--workdir", str(tmp_path / "w"), "--model", "churn", "--days", bad, "--config", lenient_config])
        assert refused.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"{run_loop.PROG}: error: argument --days: must be an integer >= 1, got {bad!r}")
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_a_run_on_your_files_refuses_a_test_set_frozen_from_generated_records(champion, lenient_config, tmp_path, capsys,
                                                                              monkeypatch):
    """GIVEN a workdir whose frozen test set came from generated records WHEN a run brings the user's file THEN
    prepare's check refuses it, naming both origins and the directory to delete (evaluating the user's model on
    generated rows would judge every later run wrongly), before the curate job runs, and the run is neither frozen nor
    logged."""
    import shutil

    from pipeline_code.etl import glue_curate_job

    workdir = champion("churn").copy_to(tmp_path)
    curate_runs = []  # the curate job's runs from here on
    curate = glue_curate_job.main
    monkeypatch.setattr(glue_curate_job, "main", lambda argv: curate_runs.append(argv) or curate(argv))
    frozen = workdir / "frozen_test" / "churn"
    before = (frozen / "manifest.json").read_text()
    assert json.loads(before)["data_origin"] == {"kind": "generated"}
    from pipeline_code.sample_data.generate import generate
    from pipeline_code.training.spec import parse_model_spec

    dataset = parse_model_spec(run_loop.load_config(lenient_config, "dev")["models"]["churn"]).catalog_dataset
    mine = tmp_path / "churn.csv"
    generate(dataset, 1500, seed=3, as_text=True, days=int(DAYS)).to_csv(mine, index=False)
    from mlops_cli.local.user_data import source_sha256

    argv = ["--workdir", str(workdir), "--model", "churn", "--num-round", "30", "--config", lenient_config,
            "--data", f"{dataset.name}={mine}"]
    assert run_loop.main(argv) == 1
    err = capsys.readouterr().err
    assert (f"ERROR: frozen test set ({frozen}): it was frozen from generated records, but this run prepares your files "
            f"({mine}, sha256 {source_sha256([str(mine)])[:12]}); its rows are not this data's, so every evaluation on "
            f"it would be wrong: delete {frozen} so that the next run freezes a new one from the data it has then (the "
            "champion is judged on the new rows too)") in err.splitlines()
    assert (frozen / "manifest.json").read_text() == before
    assert len((workdir / "registry" / "runs.jsonl").read_text().splitlines()) == 1
    assert curate_runs == []  # refused before the Spark jobs

    # WHEN the frozen set is deleted, as the message says THEN the next run freezes one from the user's file
    shutil.rmtree(frozen)
    (record,) = run_loop.run(argv, out=io.StringIO())
    assert record["frozen_test_set_created"] is True and len(curate_runs) == 1
    assert json.loads((frozen / "manifest.json").read_text())["data_origin"] == {
        "kind": "files", "source": str(mine), "sha256": source_sha256([str(mine)])}
    assert record["data"]["sha256"] == source_sha256([str(mine)])


@pytest.mark.slow
def test_a_run_whose_data_reaches_past_the_frozen_window_re_freezes_it_and_judges_the_champion_on_the_new_set(
        champion, curations, lenient_config, tmp_path):
    """GIVEN the champion's workdir (its test set frozen from a DAYS-day window) WHEN the next run's records span twice
    as many days (half of them after the frozen window: over the 15 % test fraction) THEN Prepare re-freezes the set,
    as the pipeline does: the workdir's frozen set is the new one (version 2, saying what it replaced), the replaced
    one is kept under frozen_test_replaced/, the champion is scored on the new rows and the run says so; with the
    environment's training.test_set_refreeze never, the same run keeps the old set."""
    first = champion("churn")
    days = str(2 * int(DAYS))
    old = json.loads((first.workdir / "frozen_test" / "churn" / "manifest.json").read_text())

    workdir = first.copy_to(tmp_path / "never")
    with lenient_local_run(tmp_path / "never", training={"test_set_refreeze": "never"}) as never:
        (kept,) = run_loop.run(["--workdir", str(workdir), "--rows", "3000", "--days", days, "--model", "churn",
                                "--num-round", "30", "--seed", "8", "--config", never], out=io.StringIO(),
                               curated=curations)
    assert kept["frozen_test_set_refrozen"] is False and kept["test_set_sha256"] == old["sha256"]
    assert any("not out-of-time" in w for w in kept["warnings"])

    workdir = first.copy_to(tmp_path / "default")
    out = io.StringIO()
    (record,) = run_loop.run(["--workdir", str(workdir), "--rows", "3000", "--days", days, "--model", "churn",
                              "--num-round", "30", "--seed", "8", "--config", lenient_config], out=out,
                             curated=curations)
    frozen = json.loads((workdir / "frozen_test" / "churn" / "manifest.json").read_text())
    assert record["frozen_test_set_refrozen"] is True and record["frozen_test_set_created"] is False
    assert frozen["version"] == "2" and frozen["sha256"] == record["test_set_sha256"] != old["sha256"]
    assert frozen["refrozen"]["previous"]["sha256"] == old["sha256"]
    assert frozen["time_range"]["min"] > old["time_range"]["max"]
    replaced = workdir / "frozen_test_replaced" / "churn" / f"1-{old['sha256'][:12]}"
    assert json.loads((replaced / "manifest.json").read_text()) == old
    assert record["report"]["champion"]["metrics"]["rows"] == frozen["rows"]
    assert record["report"]["out_of_time"]["challenger"] is True and record["report"]["out_of_time"]["champion"] is True
    assert not [w for w in record["warnings"] if "test set" in w]  # the champion was judged on the set replaced
    printed = out.getvalue()
    assert "frozen test set re-frozen" in printed
    assert f"note: re-froze the test set: {record['test_set_refreeze_reason']}" in printed
    # AND the second run, landing the first's raw records, read its curated records and features (run_loop.run's
    # curated) and put them in its own workdir's online store, as its feature job would have
    assert f"the same raw records of customer_churn as run {kept['run_id']}: its curated records" in printed
    assert_online_holds(workdir, lenient_config, Path(kept["run_dir"]) / "features" / "customer_churn")


def test_the_local_runs_tuning_note_says_the_models_ranges_and_the_environments_budget(tmp_path):
    """GIVEN an environment tuning with 50 jobs, 5 at once, random search, and a model searching max_depth 7 to 9 WHEN
    the local run loads it THEN its note names that search, and that the default it trains with lies outside it."""
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    dev = raw["environments"]["dev"]
    name = next(m for m in dev["models"] if raw["models"][m].get("framework", "xgboost") == "xgboost")
    dev.setdefault("training", {}).update(hyperparameter_tuning=True,
                                         tuning={"max_jobs": 50, "max_parallel_jobs": 5, "strategy": "Random"})
    for key in ("eta", "max_depth", "min_child_weight"):
        (raw["models"][name].get("hyperparameters") or {}).pop(key, None)
    raw["models"][name]["tuning_ranges"] = {"max_depth": [7, 9]}
    path = tmp_path / "mlops-loop.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = run_loop.load_config(str(path), "dev")
    env = {**config["environment"], "tuning_ranges": config["tuning_ranges"][name]}
    from pipeline_code.training.spec import parse_model_spec

    spec = parse_model_spec(config["models"][name])
    note = run_loop.tuning_warning("dev", env, "xgboost", spec)
    assert note.startswith(f"dev tunes {name} (training.hyperparameter_tuning: its pipeline searches eta 0.01 to 0.3, "
                           "max_depth 7 to 9, min_child_weight 1 to 10 (Random, 50 training jobs, 5 at a time) and "
                           "registers the job best on validation ")
    assert note.endswith("this local run does not tune: it trained once with eta=0.1, max_depth=5, min_child_weight=1 "
                         "(max_depth=5 outside the range searched), so its metrics are not the tuned model's")


def test_a_run_for_an_environment_that_tunes_says_it_did_not_tune(champion, curations, tmp_path):
    """GIVEN an environment whose pipeline tunes its XGBoost models (training.hyperparameter_tuning) WHEN the local run
    trains one THEN it says that it trained once with the trainer's defaults of the searched hyperparameters, not the
    tuned model the pipeline would register: printed, and in runs.jsonl with the run's other warnings."""
    workdir = champion("churn").copy_to(tmp_path / "tuning")
    out = io.StringIO()
    with lenient_local_run(tmp_path, training={"hyperparameter_tuning": True}) as tuning:
        (record,) = run_loop.run(["--workdir", str(workdir), "--rows", "3000", "--days", DAYS, "--model", "churn",
                                  "--num-round", "30", "--seed", "8", "--config", tuning], out=out,
                                 curated=curations)
    expected = ("dev tunes churn (training.hyperparameter_tuning: its pipeline searches eta 0.01 to 0.3, max_depth 3 to 10, "
                "min_child_weight 1 to 10 (Bayesian, 12 training jobs, 3 at a time) and registers the job best on "
                "validation AUC); this local run does not tune: it "
                "trained once with eta=0.1, max_depth=5, min_child_weight=1, so its metrics are not the tuned model's")
    assert expected in record["warnings"]
    assert f"WARNING: {expected}" in out.getvalue()
    logged = [json.loads(line) for line in (workdir / "registry" / "runs.jsonl").read_text().splitlines()]
    assert expected in logged[-1]["warnings"]


class _Declared:
    """A dataset as run_loop.shared_curation reads it: its name and its declaration."""

    def __init__(self, name: str, declaration: dict) -> None:
        self.name, self._declaration = name, declaration

    def to_declaration(self) -> dict:
        return self._declaration


def test_an_earlier_runs_curation_is_shared_only_for_the_same_declaration_and_the_same_raw_bytes(tmp_path):
    """The Glue and feature jobs read the declaration and the landed raw files alone: a run whose raw bytes or whose
    declaration differ (another model's generated records, a column declared otherwise) curates its own."""
    def landed(run: str, content: str) -> dict:
        paths = run_loop.lake_paths(str(tmp_path / run), "orders")
        batch = Path(paths["raw"]) / "orders" / "ingest_date=2026-01-01"
        batch.mkdir(parents=True)
        (batch / "part-0.csv").write_text(content)
        return paths

    declared = _Declared("orders", {"name": "orders", "columns": [{"name": "id", "type": "string"}]})
    first = landed("first", "id\n1\n")
    curated = {run_loop._curation_key(declared, first): {"run_id": "first"}}
    assert run_loop.shared_curation(None, declared, first) is None  # the default: every run curates its own
    # the same bytes under the same declaration: the first run's curation
    assert run_loop.shared_curation(curated, declared, landed("same", "id\n1\n")) == {"run_id": "first"}
    # other bytes, or the same bytes in another batch folder, or declared otherwise: none
    assert run_loop.shared_curation(curated, declared, landed("other", "id\n2\n")) is None
    moved = run_loop.lake_paths(str(tmp_path / "moved"), "orders")
    (Path(moved["raw"]) / "orders" / "ingest_date=2026-01-02").mkdir(parents=True)
    (Path(moved["raw"]) / "orders" / "ingest_date=2026-01-02" / "part-0.csv").write_text("id\n1\n")
    assert run_loop.shared_curation(curated, declared, moved) is None
    retyped = _Declared("orders", {"name": "orders", "columns": [{"name": "id", "type": "int"}]})
    assert run_loop.shared_curation(curated, retyped, landed("retyped", "id\n1\n")) is None
