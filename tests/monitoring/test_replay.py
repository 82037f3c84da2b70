"""Local replay from a registered model, KS sample mode, and unhealthy metrics in CloudWatch."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import boto3
import pytest
from moto import mock_aws

from pipeline_code.core.contract import MONITOR_NAMESPACE
from pipeline_code.local.registry import LocalRegistry
from pipeline_code.monitoring import monitor, replay
from tests.support.monitoring import check, monitor_args


@pytest.fixture()
def registry(tmp_path, reference):
    # GIVEN a local registry holding the reference model, approved, with its baseline; the
    # evaluation sits next to baseline/ (the registry layout), not inside it
    baseline = tmp_path / "baseline_src"
    shutil.copytree(reference["baseline_dir"], baseline)
    evaluation = json.loads((baseline / "evaluation.json").read_text())
    (baseline / "evaluation.json").unlink()
    reg = LocalRegistry(str(tmp_path / "registry"))
    version = reg.register("churn", reference["model_dir"], evaluation=evaluation, artifacts={"baseline": str(baseline)})
    reg.approve("churn", version.version)
    return reg


def test_replay_cli_writes_capture_that_the_monitor_flags(tmp_path, spec, reference, registry, capsys):
    # WHEN traffic with drift 0.8 is replayed through the champion, labels for 70 % of it
    code = replay.main(["--registry", registry.root, "--model", "churn", "--rows", "2000", "--seed", "300", "--drift", "0.8",
                        "--capture-dir", str(tmp_path / "capture"), "--labels-dir", str(tmp_path / "labels"),
                        "--label-coverage", "0.7"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["labelled"] == 1400 and os.path.exists(result["capture_file"])
    # THEN the monitor, pointed at the registry version, finds the drift and the evaluation baseline
    out = tmp_path / "out"
    args = ["--model-spec", spec.to_json(), "--baseline-dir", result["baseline_dir"], "--model-dir", result["model_dir"],
            "--capture-dir", str(tmp_path / "capture"), "--labels-dir", str(tmp_path / "labels"), "--output-dir", str(out)]
    assert monitor.main(args) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["healthy"] and rep["baseline"]["evaluation_found"]
    assert "monthly_charges" in rep["sections"]["data_drift"]["drifted_features"]
    assert rep["summary"]["label_coverage"] == pytest.approx(0.7) and rep["summary"]["model_auc"] is not None


def test_ks_sample_mode_uses_the_training_rows(tmp_path, spec, reference):
    # GIVEN the training rows as a baseline sample
    sample_dir = tmp_path / "train"
    sample_dir.mkdir()
    reference["train"][list(spec.features)].to_parquet(sample_dir / "part-0.parquet")
    from tests.support.monitoring import write_window

    window = write_window(tmp_path / "w", spec, reference["model"], seed=301, drift=0.8)
    out = tmp_path / "out"
    assert monitor.main(monitor_args(spec, reference, window["capture"], str(out), extra=["--baseline-sample-dir", str(sample_dir)])) == 0
    rep = json.loads((out / "report.json").read_text())
    ks = rep["sections"]["data_drift"]["features"]["monthly_charges"]["ks"]
    assert ks["mode"] == "sample" and ks["n_baseline"] == len(reference["train"]) and ks["p_value"] < 0.01
    assert check(rep, "ks_p_value", "monthly_charges")["status"] == "warn"


def test_unhealthy_run_publishes_health_metrics(tmp_path, spec, reference, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    (tmp_path / "empty").mkdir()
    with mock_aws():
        client = boto3.client("cloudwatch", region_name="eu-west-1")
        # (no traffic in a window the model expects traffic in: unhealthy)
        args = monitor_args(spec, reference, str(tmp_path / "empty"), str(tmp_path / "out"),
                            extra=["--publish-metrics", "--min-requests", "10"])
        assert monitor.main(args, cloudwatch_client=client) == 0
        now = dt.datetime.now(dt.timezone.utc)
        dims = [{"Name": "Environment", "Value": "dev"}, {"Name": "Model", "Value": "churn"}]
        queries = [{"Id": i, "MetricStat": {"Metric": {"Namespace": MONITOR_NAMESPACE, "MetricName": n, "Dimensions": dims},
                                            "Period": 60, "Stat": "Maximum"}}
                   for i, n in (("healthy", "MonitorHealthy"), ("errors", "MonitoringErrors"))]
        data = client.get_metric_data(MetricDataQueries=queries, StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(hours=1))
        values = {r["Id"]: r["Values"] for r in data["MetricDataResults"]}
        assert values["healthy"] == [0.0] and values["errors"][0] >= 1
