"""The model artefact carries its serving code, whether the job imported pipeline_code from a dir or a zip."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _zip_package(path: Path) -> Path:
    """The library zip as the infrastructure ships it: ``pipeline_code/`` at the root."""
    with zipfile.ZipFile(path, "w") as archive:
        for file in (REPO / "pipeline_code").rglob("*"):
            if file.is_file() and "__pycache__" not in file.parts:
                archive.write(file, file.relative_to(REPO))
    return path


@pytest.mark.parametrize("source", ["directory", "zip"])
def test_training_writes_the_serving_code_into_the_model_dir(tmp_path, source):
    """GIVEN pipeline_code imported from a directory or from the shipped zip WHEN write_serving_code runs
    THEN model_dir/code holds serve_entry.py and the package, and serve_entry imports from there alone."""
    model_dir = tmp_path / "model"
    if source == "zip":
        lib = _zip_package(tmp_path / "lib.zip")
        pythonpath = str(lib)
        cwd = tmp_path
    else:
        pythonpath = str(REPO)
        cwd = REPO
    script = (
        "import pipeline_code, sys; from pipeline_code.serving.package import write_serving_code; "
        f"print(pipeline_code.__file__); write_serving_code({str(model_dir)!r})"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=cwd, env={"PYTHONPATH": pythonpath, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert ("lib.zip" in proc.stdout) == (source == "zip")
    code = model_dir / "code"
    assert (code / "serve_entry.py").read_bytes() == (REPO / "pipeline_code/serving/serve_entry.py").read_bytes()
    assert (code / "pipeline_code/serving/inference.py").is_file()
    assert not list(code.rglob("__pycache__"))
    # The container puts the code dir on sys.path and imports SAGEMAKER_PROGRAM without the suffix.
    check = subprocess.run(
        [sys.executable, "-c", "import serve_entry, json; print(json.dumps([callable(getattr(serve_entry, h, None)) for h in "
         "('model_fn', 'transform_fn', 'input_fn', 'predict_fn', 'output_fn')]))"],
        cwd=code, env={"PYTHONPATH": str(code), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120,
    )
    assert check.returncode == 0, check.stderr
    # model_fn and transform_fn only: both toolkits refuse transform_fn next to a separate hook (serve_entry.py).
    assert json.loads(check.stdout.strip().splitlines()[-1]) == [True, True, False, False, False]
    # Writing again (a resumed spot job) replaces, never nests.
    from pipeline_code.serving.package import write_serving_code

    write_serving_code(str(model_dir))
    assert not (code / "pipeline_code" / "pipeline_code").exists()
