"""The PyTorch lane through the local loop: a network challenger is gated against an XGBoost champion on the
same frozen test set, compiled as for Inferentia2, registered with its parity sample, and served through the same
invocation contract with the scores evaluation judged it by."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("torch")

from mlops_cli.local import run_loop  # noqa: E402
from mlops_cli.local.registry import LocalRegistry  # noqa: E402
from pipeline_code.core import problem  # noqa: E402
from pipeline_code.core.compiled import COMPILED_FILE, CPU_STAND_IN, PARITY_FILE, SERVE_COMPILED_ENV, parity_mismatches  # noqa: E402
from pipeline_code.serving import inference  # noqa: E402
from pipeline_code.training import metrics, model_io  # noqa: E402
from pipeline_code.training.prepare import read_test_set  # noqa: E402
from tests.support.configs import SAMPLE_CONFIG  # noqa: E402
from tests.support.local_run import DAYS, lenient_local_run  # noqa: E402

pytestmark = pytest.mark.spark


def _binary_model(raw: dict) -> str:
    """A binary model the dev environment deploys (whichever the sample config lists first)."""
    loaded = run_loop.load_config(str(SAMPLE_CONFIG), "dev")
    for name in raw["environments"]["dev"]["models"]:
        if loaded["models"][name].get("problem_type", problem.BINARY) == problem.BINARY:
            return name
    pytest.skip("the config's dev environment has no binary model")


@pytest.mark.slow
def test_a_pytorch_challenger_faces_the_xgboost_champion_and_serves_what_evaluation_scored(champion, curations, tmp_path):
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    name = _binary_model(raw)
    xgboost = champion(name)  # the XGBoost model, approved (tests/cli/conftest.py)
    workdir = xgboost.copy_to(tmp_path)
    common = ["--workdir", str(workdir), "--rows", "3000", "--days", DAYS, "--model", name]
    out = io.StringIO()
    (tmp_path / "pytorch").mkdir()
    first = xgboost.record
    raw["models"][name]["framework"] = "pytorch"
    # A few epochs of a small network score below 0.5 throughout; the threshold is chosen on validation instead.
    raw["models"][name]["decision"] = {"policy": "max_f_beta"}
    # Served on Inferentia2: the run compiles it (CPU stand-in of torch-neuronx) and seals the parity sample with it.
    raw["environments"]["dev"].setdefault("serving", {})[name] = {"mode": "realtime", "realtime": {"instance_type": "ml.inf2.xlarge"}}
    with lenient_local_run(tmp_path / "pytorch", raw=raw) as path:
        second = run_loop.run([*common, "--config", path, "--epochs", "8", "--seed", "8", "--no-auto-approve"], out=out,
                              curated=curations)[0]

    # THEN the network was judged against the approved XGBoost model on the same frozen test set
    report = second["report"]
    assert second["champion_version"] == first["version"] == 1
    assert second["test_set_sha256"] == first["test_set_sha256"]
    assert "rounds" in report["champion"]["model_info"]
    assert report["challenger"]["model_info"]["parameters"] > 0 and "rounds" not in report["challenger"]["model_info"]
    assert report["challenger"]["metrics"]["auc"] > 0.6
    assert report["attributions"]["method"].startswith("sampled Shapley values")
    assert second["version"] == 2

    # AND the registered network answers requests through the serving hooks with the scores evaluation used
    registered = Path(LocalRegistry(str(workdir / "registry")).get(name, 2).path) / "model"
    served = inference.load_serving_model(str(registered))
    assert served.trained.framework == "pytorch"
    test, _manifest = read_test_set(str(workdir / "frozen_test" / name))
    records = json.loads(test[served.feature_order].to_json(orient="records"))
    body, content_type = inference.invoke(served, json.dumps({"instances": records}), content_type="application/json")
    scores = np.array([answer["score"] for answer in json.loads(body)["predictions"]])
    assert content_type == "application/json" and len(scores) == len(test)
    np.testing.assert_allclose(scores, model_io.predict(model_io.load_model(str(registered)), test), rtol=0, atol=1e-12)
    target = run_loop.load_config(path, "dev")["models"][name]["target"]
    assert metrics.roc_auc(test[target], scores) == pytest.approx(report["challenger"]["metrics"]["auc"], abs=1e-9)

    # AND, compiled for Inferentia2, the registered version carries the traced module and the sealed parity sample,
    # which the compiled model (served as an inf2 endpoint serves it) answers as the CPU model did
    assert "compile" in second["timings_s"]
    parity = json.loads((registered / PARITY_FILE).read_text())
    assert parity["expected"] == report["parity"]["expected"] and (registered / COMPILED_FILE).is_file()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SERVE_COMPILED_ENV, CPU_STAND_IN)
        compiled = inference.load_serving_model(str(registered))
    body, _ = inference.invoke(compiled, json.dumps(parity["request"]), content_type="application/json")
    assert parity_mismatches(parity["expected"], json.loads(body)["predictions"], parity["tolerance"]) == []
