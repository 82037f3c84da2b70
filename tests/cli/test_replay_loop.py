"""The local replay: drifted traffic -> monitor -> alarm -> the real retrain guard -> run_loop, and the cooldown."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mlops_cli.local import replay_loop
from mlops_cli.local.registry import APPROVED, LocalRegistry
from tests.support.local_run import DAYS, assert_online_holds, lenient_local_run

pytestmark = pytest.mark.spark

ROWS = "3000"


@pytest.fixture(scope="module")
def lenient_config(tmp_path_factory):
    """The sample config with a dev gate every reasonable model passes (fairness on a ~450-row test set is
    too noisy to pin), and no auto-approval: a retrained candidate waits for a human, so the champion - and
    the drift the monitor sees - stays put between replays. Monitoring thresholds stay as configured."""
    with lenient_local_run(tmp_path_factory.mktemp("config"), training={"auto_approve": False}) as path:
        yield path


@pytest.fixture()
def champion_record(champion):
    """The record of the run that trained the approved churn champion (tests/cli/conftest.py)."""
    record = champion("churn").record
    assert record["version"] == 1 and record["status"] == APPROVED
    return record


@pytest.fixture()
def workdir(champion, champion_record, tmp_path):
    """A local run with one approved churn champion, this test's own copy."""
    return champion("churn").copy_to(tmp_path)


def _replay(workdir, config, *, drift, seed="21", extra=()):
    out = io.StringIO()
    result = replay_loop.run(["--workdir", str(workdir), "--model", "churn", "--rows", ROWS, "--seed", seed,
                              "--drift", str(drift), "--num-round", "30", "--config", config, *extra], out=out)
    return result, out.getvalue()


def _runs(workdir):
    return LocalRegistry(str(workdir / "registry")).runs("churn")


@pytest.mark.slow
def test_drifted_window_triggers_exactly_one_guarded_retraining_then_the_cooldown_refuses(workdir, lenient_config,
                                                                                           champion_record):
    assert len(_runs(workdir)) == 1

    # WHEN a strongly drifted window is replayed through the champion, its retraining's records spanning twice the
    # champion's DAYS days (--train-days; run_loop's 90 by default)
    train_days = 2 * int(DAYS)
    result, printed = _replay(workdir, lenient_config, drift=0.8, extra=("--train-days", str(train_days)))

    # THEN the monitor alerts on drifted features
    report = result["report"]
    assert report["status"] == "alert" and report["healthy"]
    assert report["summary"]["drifted_feature_count"] >= 1 and report["summary"]["data_drift_max_psi"] >= 0.2
    assert "data-drift" in result["breaches"]
    assert "report.html" in printed
    # AND the real guard started exactly one execution, with a drift reason
    decision = result["decision"]
    assert decision["started"] is True and decision["reason"].startswith("drift:")
    assert decision["pipeline"] == "local-churn-training"
    executions = [json.loads(line) for line in (workdir / "replay" / "executions.jsonl").read_text().splitlines()]
    assert len({e["arn"] for e in executions}) == 1
    assert [e["status"] for e in executions] == ["Executing", "Succeeded"]
    assert executions[-1]["parameters"]["TriggerReason"] == decision["reason"]
    assert "TriggerReason=drift:local-churn-retrain-data-drift" in printed and "guard: STARTED" in printed
    # AND the retraining is a new run scored against the champion on one test set: its records span --train-days, half
    # of them past the champion's DAYS-day frozen window, so Prepare re-froze the set from the latest (drifted) rows
    runs = _runs(workdir)
    assert len(runs) == 2
    new = runs[-1]
    assert new["run_id"] == executions[-1]["run_id"] == result["retraining"]["run_id"]
    assert new["champion_version"] == 1 and new["champion_metrics"] is not None
    assert new["frozen_test_set_refrozen"] is True and new["frozen_test_set_created"] is False
    assert new["test_set_sha256"] != champion_record["test_set_sha256"]
    assert result["retraining"]["report"]["champion"]["metrics"]["rows"] == result["retraining"]["report"]["test_set"]["rows"]
    assert new["parameters"]["drift"] == 0.8 and new["parameters"]["seed"] != 21
    assert new["parameters"]["days"] == train_days
    assert new["version"] == 2 and new["status"] == "PendingManualApproval"  # the lenient gate passed it

    # WHEN the replay runs again right away
    again, printed = _replay(workdir, lenient_config, drift=0.8, seed="22")

    # THEN the alarm fires again but the guard refuses: cooldown, nothing new started or recorded
    assert again["breaches"] and again["decision"]["started"] is False
    assert again["decision"]["reason"].startswith("cooldown")
    assert "guard: REFUSED - cooldown" in printed
    assert len(_runs(workdir)) == 2
    lines = (workdir / "replay" / "executions.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_a_stable_window_does_not_trigger_retraining(workdir, lenient_config):
    result, printed = _replay(workdir, lenient_config, drift=0.0, seed="31")
    assert result["report"]["healthy"]
    assert result["report"]["summary"]["data_drift_max_psi"] < 0.2
    assert result["breaches"] == [] and result["decision"] is None
    assert "no retraining" in printed
    assert not (workdir / "replay" / "executions.jsonl").exists()
    assert len(_runs(workdir)) == 1


def test_a_drift_window_of_two_days_judges_this_replay_with_the_one_before_it(workdir, lenient_config):
    """GIVEN a replay of a stable day WHEN the next replay judges a drift window of 2 days THEN its monitor reads the
    capture of both (each replay a day) and weighs its slow-drift sums as a 2-day window's; the first replay, with no
    earlier day, judges its own."""
    first = replay_loop.run(["--workdir", str(workdir), "--model", "churn", "--rows", ROWS, "--seed", "31",
                             "--drift-window-days", "2", "--config", lenient_config], out=io.StringIO())
    out = io.StringIO()
    second = replay_loop.run(["--workdir", str(workdir), "--model", "churn", "--rows", ROWS, "--seed", "32",
                              "--drift-window-days", "2", "--config", lenient_config], out=out)
    assert first["report"]["summary"]["records"] == int(ROWS)
    assert second["report"]["summary"]["records"] == 2 * int(ROWS)
    assert "drift window: 2 days -> the capture of 2 replayed windows" in out.getvalue()
    assert second["report"]["sections"]["cumulative_drift"]["window_days"] == 2
    assert second["breaches"] == []


def _trained_on_files(workdir, source: str) -> None:
    """GIVEN-helper: the champion's registry entry and its frozen test set say they were made from the user's files,
    as ``run_loop --data`` records them (the manifest's digest covers the parquet, not the manifest)."""
    path = workdir / "registry" / "groups" / "churn" / "versions" / "1" / "version.json"
    version = json.loads(path.read_text())
    version["lineage"]["data"]["source"] = source
    path.write_text(json.dumps(version))
    manifest = workdir / "frozen_test" / "churn" / "manifest.json"
    frozen = json.loads(manifest.read_text())
    frozen["data_origin"] = {"kind": "files", "source": source, "sha256": "0" * 64}
    manifest.write_text(json.dumps(frozen))


def _records_file(config, directory, *, rows: int, seed: int, drift: float = 0.0):
    """A CSV of the churn model's dataset as a user exports it: (dataset name, file). Its records are newer than the
    champion's (which the generator dates from 2026-01-01, over the --days of CHAMPION_ARGS), as a window after
    training is."""
    from mlops_cli.local.run_loop import load_config
    from pipeline_code.sample_data.generate import generate
    from pipeline_code.training.spec import parse_model_spec

    dataset = parse_model_spec(load_config(config, "dev")["models"]["churn"]).catalog_dataset
    path = directory / f"window-{seed}.csv"
    # Ten days, not the generator's ninety: the curate job writes one partition per event date, a Spark task's
    # worth of work each (about half of each window's curate run), and no assertion reads the dates. They start after
    # the champion's data, as a newer window does.
    generate(dataset, rows, seed=seed, drift=drift, as_text=True, start="2026-04-01", days=10).to_csv(path, index=False)
    return dataset.name, path


@pytest.mark.slow
def test_a_champion_trained_on_your_records_is_replayed_a_window_of_them(workdir, lenient_config, tmp_path, monkeypatch):
    # GIVEN a champion trained on the user's records, and a newer window of them from the same population
    from pipeline_code.etl import glue_curate_job

    curations = []
    curate = glue_curate_job.main
    monkeypatch.setattr(glue_curate_job, "main", lambda argv: curations.append(argv) or curate(argv))
    _trained_on_files(workdir, "data/churn/*.csv")
    dataset, window = _records_file(lenient_config, tmp_path, rows=800, seed=77)

    # WHEN that window is replayed
    out = io.StringIO()
    result = replay_loop.run(["--workdir", str(workdir), "--model", "churn", "--data", f"{dataset}={window}",
                              "--config", lenient_config], out=out)

    # THEN the requests are those records, through the local run's curate and feature jobs, each with its label
    printed = out.getvalue()
    assert f"traffic: 800 requests (your records from {window}), 800 labelled" in printed
    capture = (result["window_dir"] + "/capture/churn/AllTraffic/capture.jsonl")
    with open(capture, encoding="utf-8") as handle:
        assert sum(1 for _ in handle) == 800
    # AND the monitor, comparing them with the champion's baseline, finds no drift: nothing to retrain
    assert result["report"]["healthy"] and result["report"]["summary"]["data_drift_max_psi"] < 0.2
    assert result["breaches"] == [] and result["decision"] is None

    # WHEN a drifted window of records arrives
    _, drifted = _records_file(lenient_config, tmp_path, rows=800, seed=78, drift=0.8)
    result = replay_loop.run(["--workdir", str(workdir), "--model", "churn", "--data", f"{dataset}={drifted}",
                              "--num-round", "30", "--config", lenient_config], out=io.StringIO())
    # THEN the alarm starts one retraining, and it trains on those records
    assert "data-drift" in result["breaches"] and result["decision"]["started"] is True
    assert result["retraining"]["data"]["source"] == f"1 file(s) from {drifted}"
    assert result["retraining"]["data"]["rows_in"] == 800
    # AND it read those records as the replay curated them: the curate job ran once per window, not again for the
    # retraining, whose features still reached the online store, as its feature job would have put them
    assert len(curations) == 2
    assert result["retraining"]["data"]["notes"] == [
        f"the same raw records of {dataset} as replay window {result['window_dir']}: its curated "
        "records and features are this run's (curated once)"]
    assert result["retraining"]["data"]["curated_rows"] + result["retraining"]["data"]["quarantined_rows"] == 800
    assert_online_holds(workdir, lenient_config, Path(result["window_dir"]) / "features" / dataset)


def test_generated_traffic_is_refused_for_a_champion_trained_on_your_records(workdir, lenient_config, tmp_path):
    _trained_on_files(workdir, "data/churn/*.csv")
    with pytest.raises(ValueError) as refused:
        _replay(workdir, lenient_config, drift=0.0)
    assert str(refused.value) == (
        "champion v1 of 'churn' was trained on your records (data/churn/*.csv); generated traffic is not drawn from "
        "them, so every feature would look drifted. Add --data customer_churn=<file, directory or glob> to replay a "
        "window of your records (and --labels customer_churn=<label files> if their labels come apart)")
    assert not (workdir / "replay").exists()


def test_your_records_are_refused_for_a_champion_trained_on_generated_ones(workdir, lenient_config, tmp_path):
    # GIVEN the champion as run_loop registered it from generated records
    dataset, window = _records_file(lenient_config, tmp_path, rows=10, seed=1)
    with pytest.raises(ValueError) as refused:
        replay_loop.run(["--workdir", str(workdir), "--model", "churn", "--data", f"{dataset}={window}",
                         "--config", lenient_config], out=io.StringIO())
    assert str(refused.value) == (
        "champion v1 of 'churn' was trained on generated records; your records would be compared with a baseline and "
        "a frozen test set that are not theirs. Train a champion on your files first: bash scripts/local-run.sh "
        "--model churn --data customer_churn=<your files>")


def test_drift_is_refused_for_your_records_which_are_the_traffic(workdir, lenient_config, tmp_path):
    dataset, window = _records_file(lenient_config, tmp_path, rows=10, seed=1)
    with pytest.raises(ValueError) as refused:
        replay_loop.run(["--workdir", str(workdir), "--model", "churn", "--data", f"{dataset}={window}",
                         "--drift", "0.5", "--config", lenient_config], out=io.StringIO())
    assert str(refused.value) == ("--drift/--concept-drift shape generated traffic; with --data your records are the "
                                  "traffic (replay a newer window of them to see drift)")


def test_train_days_is_refused_for_your_records_which_the_retraining_reads(workdir, lenient_config, tmp_path):
    _trained_on_files(workdir, "data/churn/*.csv")
    dataset, window = _records_file(lenient_config, tmp_path, rows=10, seed=1)
    with pytest.raises(ValueError) as refused:
        replay_loop.run(["--workdir", str(workdir), "--model", "churn", "--data", f"{dataset}={window}",
                         "--train-days", "20", "--config", lenient_config], out=io.StringIO())
    assert str(refused.value) == ("--train-days sizes the records generated for a retraining; with --data the "
                                  "retraining reads your records (their event times are theirs): drop --train-days")
    assert not (workdir / "replay").exists()


def test_without_a_champion_the_replay_exits_2_and_says_what_to_run(tmp_path, lenient_config, capsys):
    code = replay_loop.main(["--workdir", str(tmp_path / "empty"), "--model", "churn", "--config", lenient_config])
    assert code == 2
    err = capsys.readouterr().err
    assert "no champion" in err and "bash scripts/local-run.sh" in err
    assert not (tmp_path / "empty" / "replay").exists()


def test_the_local_client_speaks_the_guards_boto3_shape(tmp_path):
    import datetime as dt

    from pipeline_code.handlers.retrain_trigger import decide_and_start

    started = []
    now = dt.datetime(2026, 5, 1, 12, tzinfo=dt.timezone.utc)
    client = replay_loop.LocalPipelineClient(str(tmp_path / "executions.jsonl"), {"local-churn-training": "churn"},
                                             lambda model, reason: started.append((model, reason)) or {"run_id": "r1"},
                                             clock=lambda: now)
    event = {"pipeline": "local-churn-training", "reason": "drift", "alarm": "local-churn-retrain-quality",
             "source_event_id": "e-1"}
    first = decide_and_start(event, client=client, allowed_pipelines=frozenset({"local-churn-training"}),
                             cooldown=dt.timedelta(hours=24), now=now, paused=lambda pipeline: None)
    assert first["started"] and started == [("churn", "drift:local-churn-retrain-quality")]
    summaries = client.list_pipeline_executions(PipelineName="local-churn-training", SortBy="CreationTime",
                                                SortOrder="Descending", MaxResults=10)["PipelineExecutionSummaries"]
    assert summaries[0]["PipelineExecutionStatus"] == "Succeeded" and summaries[0]["StartTime"].tzinfo is not None
    # the same event delivered twice maps to the same execution (ClientRequestToken), even past the cooldown
    later = now + dt.timedelta(hours=25)
    client.clock = lambda: later
    second = decide_and_start(event, client=client, allowed_pipelines=frozenset({"local-churn-training"}),
                              cooldown=dt.timedelta(hours=24), now=later, paused=lambda pipeline: None)
    assert second["started"] and second["execution"] == first["execution"] and len(started) == 1
    # a pipeline not allowed is refused before the client is asked
    refused = decide_and_start({**event, "pipeline": "other"}, client=client, allowed_pipelines=frozenset({"local-churn-training"}),
                               cooldown=dt.timedelta(hours=24), now=later, paused=lambda pipeline: None)
    assert refused["started"] is False and "not one this trigger may start" in refused["reason"]


def test_the_models_monitoring_settings_reach_the_replayed_monitor(workdir, tmp_path):
    """GIVEN a config whose churn model exempts a feature from drift, gives another its own PSI threshold and reports
    its prediction drift only (models.churn.monitoring) WHEN a window is replayed THEN its monitor judged it so, as the
    scheduled job's arguments say (config/mlops-loop.yaml's models set none: the replay of the others is unchanged)."""
    import yaml

    from tests.support.configs import SAMPLE_CONFIG

    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["models"]["churn"]["monitoring"] = {"feature_thresholds": {"monthly_charges": 0.5},
                                            "drift_exempt_features": ["tenure_months"], "prediction_drift": "report_only"}
    (tmp_path / "config").mkdir()
    with lenient_local_run(tmp_path / "config", training={"auto_approve": False}, raw=raw) as config:
        result, _ = _replay(workdir, config, drift=0.0, seed="31")
    report = result["report"]
    assert report["thresholds"]["feature_thresholds"] == {"monthly_charges": 0.5}
    assert report["thresholds"]["drift_exempt_features"] == ["tenure_months"]
    assert report["sections"]["data_drift"]["features"]["tenure_months"]["status"] == "exempt"
    assert report["sections"]["prediction_drift"]["status"] == "exempt"
    assert report["summary"]["prediction_drift_score"] is None
