"""sagemaker_entry.py: runs job modules from the shipped pipeline_code zip, as in the containers."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pipeline_code import sagemaker_entry
from pipeline_code.core.integrity import files_digest
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


def run_entry(container: Path, *args: str, lib_dirs=None, module_env=None, code_digest=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLOPS_LOOP_MODULE", "MLOPS_LOOP_CODE_SHA256")}
    env["MLOPS_LOOP_LIB_DIRS"] = lib_dirs if lib_dirs is not None else f"/nonexistent:{container / 'lib'}"
    if module_env:
        env["MLOPS_LOOP_MODULE"] = module_env
    if code_digest:
        env["MLOPS_LOOP_CODE_SHA256"] = code_digest
    return subprocess.run(
        [sys.executable, str(container / "code" / "sagemaker_entry.py"), *args],
        cwd=container,  # the repository is not importable from here: only the zip is
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# A job module whose --help the launcher tests run when the module itself is not the point: prepare imports pandas only,
# where train's import of xgboost (and scikit-learn) costs each python start ~1.5 CPU-s more.
LIGHT_MODULE, LIGHT_MODULE_OPTION = "pipeline_code.training.prepare", "--frozen-test-dir"


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
    result = run_entry(container, "--help", module_env=LIGHT_MODULE)
    assert result.returncode == 0, result.stderr
    assert LIGHT_MODULE_OPTION in result.stdout  # the module the environment names ran: its own help


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


def zip_files_digest(path: Path) -> str:
    """The digest synth records for a zip's files (pipeline_code.core.integrity.files_digest), computed here."""
    with zipfile.ZipFile(path) as archive:
        files = {i.filename: hashlib.sha256(archive.read(i)).hexdigest() for i in archive.infolist() if not i.is_dir()}
    return files_digest(files)


def copy_with(source: Path, target: Path, changed: dict) -> None:
    """``source`` rewritten as ``target`` with each ``changed`` name's bytes replaced (or added)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info.filename, changed.pop(info.filename, old.read(info)))
        for name, data in changed.items():
            new.writestr(name, data)


def test_given_the_expected_digest_when_the_zip_matches_then_the_module_runs_and_says_what_it_verified(container):
    expected = zip_files_digest(container / "lib" / "pipeline_code.zip")
    result = run_entry(container, LIGHT_MODULE, "--help", code_digest=expected)
    assert result.returncode == 0, result.stderr
    count = len(zipfile.ZipFile(container / "lib" / "pipeline_code.zip").namelist())
    assert f"sagemaker_entry: job code verified: files digest {expected} ({count} files in pipeline_code.zip)" in result.stdout
    assert LIGHT_MODULE_OPTION in result.stdout  # the module ran: its own help


@pytest.mark.parametrize("change", ["edited", "added"])
def test_given_a_tampered_zip_then_nothing_of_it_runs_and_the_error_gives_both_digests_and_the_fix(container, tmp_path, change):
    expected = zip_files_digest(container / "lib" / "pipeline_code.zip")
    tampered = tmp_path / "lib"
    tampered.mkdir()
    marker = tmp_path / "ran"
    # Code that would prove it ran: the module the job names, or a module it imports.
    payload = f"open({str(marker)!r}, 'w').write('ran')\n".encode()
    name = "pipeline_code/training/train.py" if change == "edited" else "pipeline_code/sitecustomize.py"
    copy_with(container / "lib" / "pipeline_code.zip", tampered / "abc.zip", {name: payload})
    found = zip_files_digest(tampered / "abc.zip")
    count = len(zipfile.ZipFile(tampered / "abc.zip").namelist())
    result = run_entry(container, "pipeline_code.training.train", "--help", lib_dirs=str(tampered), code_digest=expected)
    assert result.returncode == 2
    assert not marker.exists()
    assert result.stderr.strip() == (
        f"sagemaker_entry: error: the job code {tampered / 'abc.zip'} is not the code this pipeline was deployed with: "
        f"its {count} files digest to {found}, the job expects {expected} (MLOPS_LOOP_CODE_SHA256, set at synth). The "
        "zip was changed or replaced after cdk deploy uploaded it. Nothing ran. Delete that object from the CDK assets "
        "bucket (its key is the zip's name) and run cdk deploy again, which uploads the synthesized zip when its object "
        "is missing; CloudTrail's S3 data events tell who wrote it (docs/training.md, Job code verification)."
    )


def test_given_the_expected_digest_then_a_second_zip_or_a_broken_one_is_refused(container, tmp_path):
    expected = zip_files_digest(container / "lib" / "pipeline_code.zip")
    (tmp_path / "extra.zip").write_bytes((container / "lib" / "pipeline_code.zip").read_bytes())
    result = run_entry(container, "pipeline_code.training.train", lib_dirs=f"{container / 'lib'}:{tmp_path}", code_digest=expected)
    assert result.returncode == 2 and "expected the one job-code zip, found 2" in result.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.zip").write_bytes(b"not a zip")
    result = run_entry(container, "pipeline_code.training.train", lib_dirs=str(broken), code_digest=expected)
    assert result.returncode == 2
    assert f"the job code {broken / 'x.zip'} is not a readable zip (File is not a zip file); expected the files digest {expected}" in result.stderr


def test_without_an_expected_digest_the_zip_runs_unchecked_and_says_so(container):
    result = run_entry(container, LIGHT_MODULE, "--help")
    assert result.returncode == 0, result.stderr
    assert "sagemaker_entry: job code not verified (MLOPS_LOOP_CODE_SHA256 is not set)" in result.stdout
    assert LIGHT_MODULE_OPTION in result.stdout


def test_the_launcher_digest_is_the_projects_files_digest():
    """The entry repeats integrity.files_digest (it runs before the zip is importable): the two must agree."""
    files = {"pipeline_code/b.py": "b" * 64, "pipeline_code/a.py": "a" * 64, "pipeline_code/ü.py": "0" * 64}
    assert sagemaker_entry.files_digest(files) == files_digest(files)


def run_as_container(container: Path, entry: Path, entry_sha256: str, *args: str, marker=None) -> subprocess.CompletedProcess:
    """The command a job's ContainerEntrypoint runs (python3 -c <check> <entry> <sha256>) with its arguments."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLOPS_LOOP_MODULE", "MLOPS_LOOP_CODE_SHA256")}
    env["MLOPS_LOOP_LIB_DIRS"] = str(container / "lib")
    command = sagemaker_entry.container_entrypoint(str(entry), entry_sha256)
    return subprocess.run([sys.executable, *command[1:], *args], cwd=container, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_container_command_runs_the_entry_script_only_when_its_bytes_are_the_synthesized_ones(container, tmp_path):
    """GIVEN the entry script and the sha256 synth computed of it WHEN the job's command runs THEN the entry runs the
    module; the entry script rewritten (say, to skip the zip check) and the command refuses it before running it."""
    entry = container / "code" / "sagemaker_entry.py"
    expected = hashlib.sha256(entry.read_bytes()).hexdigest()
    assert sagemaker_entry.container_entrypoint(str(entry), expected)[:2] == ["python3", "-c"]
    result = run_as_container(container, entry, expected, LIGHT_MODULE, "--help")
    assert result.returncode == 0, result.stderr
    assert LIGHT_MODULE_OPTION in result.stdout
    marker = tmp_path / "ran"
    rewritten = tmp_path / "sagemaker_entry.py"
    rewritten.write_bytes(f"open({str(marker)!r}, 'w').write('ran')\n".encode() + entry.read_bytes())
    result = run_as_container(container, rewritten, expected, "pipeline_code.training.train", "--help")
    found = hashlib.sha256(rewritten.read_bytes()).hexdigest()
    assert result.returncode == 1 and not marker.exists()
    assert result.stderr.strip() == (f"entry script {rewritten} has sha256 {found}, the job expects {expected}: see "
                                     "docs/training.md")


def test_the_container_command_fits_the_api_limit():
    """SageMaker takes at most 256 characters per ContainerEntrypoint item (processing and training alike)."""
    assert all(len(item) <= 256 for item in sagemaker_entry.container_entrypoint("/opt/ml/processing/input/entry/" + "a" * 64 + ".py", "b" * 64))
