"""The monitor with a baseline sample (KS sample mode), and an unhealthy run's metrics in CloudWatch."""

from __future__ import annotations

import datetime as dt
import json

import boto3
from moto import mock_aws

from pipeline_code.core.contract import DEFAULT_PROJECT, monitor_namespace
from pipeline_code.monitoring import monitor
from tests.support.monitoring import check, monitor_args
from tests.support.credentials import moto_credentials

# Where the monitor publishes by default (no --metric-namespace): the default project's namespace of the
# model ("churn") in its environment ("dev").
NAMESPACE = monitor_namespace(DEFAULT_PROJECT, "dev", "churn")


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
    moto_credentials(monkeypatch)
    (tmp_path / "empty").mkdir()
    with mock_aws():
        client = boto3.client("cloudwatch", region_name="eu-west-1")
        # (no traffic in a window the model expects traffic in: unhealthy)
        args = monitor_args(spec, reference, str(tmp_path / "empty"), str(tmp_path / "out"),
                            extra=["--publish-metrics", "--min-requests", "10"])
        assert monitor.main(args, cloudwatch_client=client) == 0
        now = dt.datetime.now(dt.timezone.utc)
        dims = [{"Name": "Environment", "Value": "dev"}, {"Name": "Model", "Value": "churn"}]
        queries = [{"Id": i, "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": n, "Dimensions": dims},
                                            "Period": 60, "Stat": "Maximum"}}
                   for i, n in (("healthy", "MonitorHealthy"), ("errors", "MonitoringErrors"))]
        data = client.get_metric_data(MetricDataQueries=queries, StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(hours=1))
        values = {r["Id"]: r["Values"] for r in data["MetricDataResults"]}
        assert values["healthy"] == [0.0] and values["errors"][0] >= 1
