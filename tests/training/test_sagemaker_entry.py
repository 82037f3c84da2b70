"""sagemaker_entry.py: runs job modules from the shipped pipeline_code zip, as in the containers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT


@pytest.fixture(scope="module")
def container(tmp_path_factory):
    """A fake container layout: code/sagemaker_entry.py and lib/pipeline_code.zip (root holds pipeline_code/)."""
    root = tmp_path_factory.mktemp("container")
    (root / "code").mkdir()
    shutil.copy(REPO_ROOT / "pipeline_code" / "sagemaker_entry.py", root / "code" / "sagemaker_entry.py")
    (root / "lib").mkdir()
    with zipfile.ZipFile(root / "lib" / "pipeline_code.zip", "w") as archive:
        for path in sorted((REPO_ROOT / "pipeline_code").rglob("*.py")):
            archive.write(path, path.relative_to(REPO_ROOT).as_posix())
    return root


def run_entry(container: Path, *args: str, lib_dirs=None, module_env=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLOPS_LOOP_MODULE")}
    env["MLOPS_LOOP_LIB_DIRS"] = lib_dirs if lib_dirs is not None else f"/nonexistent:{container / 'lib'}"
    if module_env:
        env["MLOPS_LOOP_MODULE"] = module_env
    return subprocess.run(
        [sys.executable, str(container / "code" / "sagemaker_entry.py"), *args],
        cwd=container,  # the repository is not importable from here: only the zip is
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_given_the_zip_when_a_job_module_is_launched_then_it_runs_from_the_zip(container, churn_spec, churn_inputs, tmp_path):
    out = tmp_path / "out"
    result = run_entry(
        container, "pipeline_code.training.prepare", "--model-spec", churn_spec.to_json(),
        "--features-dir", churn_inputs["features"], "--labels-dir", churn_inputs["labels"], "--output-dir", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "pipeline_code.zip" in result.stdout
    assert (out / "test" / "manifest.json").exists() and (out / "train" / "train.parquet").exists()


def test_given_training_script_mode_then_the_module_comes_from_mlops_loop_module(container):
    """SageMaker training passes only --hyperparameters to the entry point."""
    result = run_entry(container, "--help", module_env="pipeline_code.training.train")
    assert result.returncode == 0, result.stderr
    assert "--early-stopping-rounds" in result.stdout


@pytest.mark.parametrize(
    "args, lib_dirs, message",
    [
        (["pipeline_code.training.prepare"], "/nonexistent", "no *.zip found"),
        (["pipeline_code.training.nope"], None, "unknown module 'pipeline_code.training.nope'"),
        (["os"], None, "not an mlops-loop module"),
        ([], None, "usage: sagemaker_entry.py <module>"),
    ],
)
def test_launcher_errors_are_clear(container, args, lib_dirs, message):
    result = run_entry(container, *args, lib_dirs=lib_dirs)
    assert result.returncode == 2
    assert message in result.stderr
