"""Multi-model endpoint bootstrap: each model serves with the code its own artefact carries.

The workers are run as MMS runs them: a fresh process per model, the bootstrap module (extracted from
the deterministic tarball) alone on sys.path - not the repository - and the model directory laid out
as SageMaker extracts ``model.tar.gz``.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

from mlops_loop.packaging import MME_BOOTSTRAP, single_file_tarball
from pipeline_code.serving import mme_entry
from pipeline_code.serving import inference as inf
from pipeline_code.serving.package import write_serving_code
from pipeline_code.training.train import METADATA_FILE, MODEL_FILE

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "pipeline_code" / "serving" / "mme_entry.py"

# One MMS worker: import the bootstrap by name, load one model, serve the requests given as JSON.
WORKER = r"""
import importlib.util, json, sys
requests = json.loads(sys.stdin.read())
assert importlib.util.find_spec("pipeline_code") is None, "pipeline_code must not be importable before model_fn"
import mme_entry
try:
    mme_entry.input_fn(b"{}", "application/json")
    raise SystemExit("input_fn before model_fn did not fail")
except RuntimeError:
    pass
model = mme_entry.model_fn(sys.argv[1])
responses = []
for request in requests:
    data = mme_entry.input_fn(request["body"].encode(), request["content_type"])
    body, kind = mme_entry.output_fn(mme_entry.predict_fn(data, model), request["accept"])
    responses.append({"body": body.decode(), "content_type": kind})
inference = sys.modules["pipeline_code.serving.inference"]
print(json.dumps({"entry": mme_entry.__file__, "package": sys.modules["pipeline_code"].__file__,
                  "mark": getattr(inference, "SERVING_CODE_MARK", None), "responses": responses}))
"""


def _worker(bootstrap_dir: Path, model_dir: Path, requests: List[Dict[str, str]]) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(bootstrap_dir), "PATH": "/usr/bin:/bin", "OMP_WAIT_POLICY": "PASSIVE",
           "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-s", "-c", WORKER, str(model_dir)], input=json.dumps(requests),
                          cwd=bootstrap_dir, env=env, capture_output=True, text=True, timeout=300)


def _model_dir(trained, root: Path, *, code: bool = True) -> Path:
    """The model as SageMaker extracts model.tar.gz: the model files and (normally) code/."""
    model_dir = root / "opt-ml-models" / trained.name / "model"
    model_dir.mkdir(parents=True)
    for name in (MODEL_FILE, METADATA_FILE):
        shutil.copy2(Path(trained.model_dir) / name, model_dir / name)
    if code:
        write_serving_code(str(model_dir))
        # Tag this model's copy of the serving code, to see which copy a worker ran.
        inference = model_dir / "code" / "pipeline_code" / "serving" / "inference.py"
        inference.write_text(inference.read_text() + f"\nSERVING_CODE_MARK = {trained.name!r}\n")
    return model_dir


@pytest.fixture(scope="module")
def bootstrap_dir(tmp_path_factory) -> Path:
    """The bootstrap tarball, extracted as the container does before installing it."""
    root = tmp_path_factory.mktemp("mme-bootstrap")
    tarball = root / "bootstrap.tar.gz"
    # The exact bytes the infrastructure publishes as the endpoint's SAGEMAKER_SUBMIT_DIRECTORY.
    tarball.write_bytes(single_file_tarball(MME_BOOTSTRAP))
    target = root / "sourcedir"
    target.mkdir()
    with tarfile.open(tarball) as archive:
        archive.extractall(target, filter="data")
    return target


def _requests(trained) -> List[Dict[str, Any]]:
    raw = trained.raw_records(6)
    features = trained.feature_records(6)
    return [
        {"body": json.dumps({"instances": raw}), "content_type": inf.JSON, "accept": inf.JSON},
        {"body": "\n".join(json.dumps(r) for r in features), "content_type": inf.JSONLINES, "accept": inf.JSONLINES},
        {"body": json.dumps(raw[:2]), "content_type": inf.JSON, "accept": inf.CSV},
    ]


def _scores(body: str, content_type: str) -> np.ndarray:
    if content_type == inf.JSON:
        return np.array([p["score"] for p in json.loads(body)["predictions"]])
    if content_type == inf.JSONLINES:
        return np.array([json.loads(line)["score"] for line in body.splitlines()])
    return np.array([float(line) for line in body.splitlines()])


def test_each_model_serves_with_its_own_code_in_a_fresh_worker(trained, bootstrap_dir, tmp_path):
    """GIVEN a model dir as SageMaker extracts it and only the bootstrap on sys.path WHEN a worker process
    runs model_fn/input_fn/predict_fn/output_fn THEN it imports the model's own code and scores exactly as the
    single-model path does."""
    assert sorted(p.name for p in bootstrap_dir.iterdir()) == ["mme_entry.py"]
    model_dir = _model_dir(trained, tmp_path)
    requests = _requests(trained)
    proc = _worker(bootstrap_dir, model_dir, requests)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(out["entry"]).parent == bootstrap_dir
    assert Path(out["package"]).resolve().is_relative_to((model_dir / "code").resolve())
    assert out["mark"] == trained.name

    single = inf.model_fn(trained.model_dir)
    assert len(out["responses"]) == len(requests)
    for request, response in zip(requests, out["responses"]):
        expected_body, expected_type = inf.invoke(single, request["body"].encode(), content_type=request["content_type"],
                                                  accept=request["accept"])
        assert response["content_type"] == expected_type
        got, expected = _scores(response["body"], expected_type), _scores(expected_body.decode(), expected_type)
        assert got.shape == expected.shape and len(got) > 0
        assert np.allclose(got, expected, rtol=0, atol=1e-6)
        if expected_type == inf.JSON:
            assert json.loads(response["body"])["model"]["name"] == trained.spec.name


def test_missing_code_dir_fails_the_worker_naming_the_dir(trained_models, bootstrap_dir, tmp_path):
    """GIVEN an artefact without code/ WHEN a worker loads it THEN it exits non-zero naming the model dir."""
    model_dir = _model_dir(trained_models["churn"], tmp_path, code=False)
    proc = _worker(bootstrap_dir, model_dir, [])
    assert proc.returncode != 0
    assert "mme_entry: cannot load the model in" in proc.stderr
    assert str(model_dir) in proc.stderr and "code/pipeline_code/" in proc.stderr


def test_a_pipeline_code_from_elsewhere_fails_loudly(trained_models, tmp_path, capsys):
    """GIVEN pipeline_code already imported from the repository (this process) WHEN model_fn loads a model dir
    THEN it refuses rather than serve the model with other code than its own."""
    model_dir = _model_dir(trained_models["churn"], tmp_path)
    with pytest.raises(RuntimeError, match="already imported"):
        mme_entry.model_fn(str(model_dir))
    assert str(model_dir) in capsys.readouterr().err


def test_hooks_before_model_fn_raise_a_clear_error():
    for call in (lambda: mme_entry.input_fn(b"{}", inf.JSON), lambda: mme_entry.predict_fn(None, None),
                 lambda: mme_entry.output_fn(None, inf.JSON)):
        with pytest.raises(RuntimeError, match="model_fn"):
            call()


def test_bootstrap_tarball_is_deterministic(tmp_path):
    """GIVEN the tarball built here and in another process (another umask and time zone) THEN the bytes are
    identical, hold only mme_entry.py at the root with fixed metadata, and change when the module does."""
    data = single_file_tarball(MME_BOOTSTRAP)
    script = (
        "import os, sys; os.umask(0o077); sys.path.insert(0, sys.argv[1]); "
        "from mlops_loop.packaging import MME_BOOTSTRAP, single_file_tarball; "
        "sys.stdout.write(single_file_tarball(MME_BOOTSTRAP).hex())"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(REPO)], cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "TZ": "Pacific/Kiritimati"}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert bytes.fromhex(proc.stdout) == data
    assert data[4:8] == b"\0\0\0\0"  # gzip header mtime
    assert data[9] == 0xFF  # gzip header OS byte: "unknown", the same everywhere
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
        assert [(m.name, m.type, m.mode, m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members] == [
            ("mme_entry.py", tarfile.REGTYPE, 0o644, 0, 0, 0, "", "")
        ]
        assert archive.extractfile(members[0]).read() == SOURCE.read_bytes()
    assert gzip.decompress(data)  # a plain gzip stream, as the container's extraction expects
    # A changed module changes the tarball (the asset hash follows the code).
    assert single_file_tarball(MME_BOOTSTRAP, SOURCE.read_bytes() + b"\n") != data


def test_bootstrap_module_needs_only_the_standard_library():
    """The bootstrap imports nothing beyond the standard library."""
    for path in (SOURCE,):
        script = (
            "import runpy, sys; before = set(sys.modules); runpy.run_path(sys.argv[1]); "
            "print(sorted(m.split('.')[0] for m in set(sys.modules) - before))"
        )
        proc = subprocess.run([sys.executable, "-S", "-c", script, str(path)], cwd="/", env={"PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        imported = set(eval(proc.stdout.strip()))  # noqa: S307 - our own subprocess' repr of a list of names
        third_party = {m for m in imported if m not in sys.stdlib_module_names and not m.startswith("_")}
        assert third_party == set(), (path.name, third_party)
