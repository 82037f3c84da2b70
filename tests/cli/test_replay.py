"""The replay command: traffic replayed through a registered local model, as capture the monitor judges."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from mlops_cli.local import replay
from mlops_cli.local.registry import LocalRegistry
from pipeline_code.monitoring import monitor


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
