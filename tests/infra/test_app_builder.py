"""new_app: the App as this project's `cdk synth` builds it; source_version: the code version synth records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_loop.app_builder import DISABLE_ASSET_STAGING, code_version, source_version
from tests.support.paths import REPO_ROOT


@pytest.mark.parametrize("context, kept", [({}, False), ({DISABLE_ASSET_STAGING: True}, True)],
                         ids=["staging", "no-staging"])
def test_an_app_that_stages_no_assets_keeps_the_generated_sources_past_the_process(tmp_path, context, kept):
    """GIVEN the context the CDK CLI hands the app process (``cdk synth --no-staging`` sets the key) WHEN
    new_app builds the App, a file is staged and the process exits THEN the file outlives the process exactly
    when the assembly points at it."""
    program = (
        "from mlops_loop.app_builder import new_app\n"
        "from mlops_loop.packaging import staged_file\n"
        "new_app()\n"
        "print(staged_file('spec.json', '{}'))\n"
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": str(REPO_ROOT), "CDK_CONTEXT_JSON": json.dumps(context)}
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    staged = result.stdout.strip()
    assert staged.startswith(str(scratch))
    assert os.path.exists(staged) == kept
    if not kept:
        assert list(scratch.iterdir()) == []


# ------------------------------------------------------------------ the code version recorded on every model version
def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A committed checkout shaped like this one: job code under pipeline_code/, a config, bytecode git-ignored."""
    root = tmp_path / "repo"
    for path, text in {"pipeline_code/__init__.py": "", "pipeline_code/training/train.py": "ROUNDS = 10\n",
                       "config/app.yaml": "min_auc: 0.70\n", ".gitignore": "__pycache__/\n*.pyc\n*.log\n"}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "initial")
    return root


def test_a_clean_checkout_read_with_its_committed_config_is_its_commit(repo):
    """GIVEN a committed checkout, with bytecode a local run left in the job code (git-ignored, never zipped) and an
    untracked file outside the job code WHEN its version is taken with its committed config THEN it is the commit."""
    (repo / "pipeline_code/training/__pycache__").mkdir()
    (repo / "pipeline_code/training/__pycache__/train.cpython-311.pyc").write_bytes(b"\0")
    (repo / "pipeline_code/train.pyc").write_bytes(b"\0")
    (repo / "notes.txt").write_text("scratch\n")
    version = source_version(repo, config=repo / "config/app.yaml")
    assert (version.version, version.dirty, version.warning()) == (_git(repo, "rev-parse", "HEAD"), (), None)
    assert code_version(repo) == _git(repo, "rev-parse", "HEAD")


def _write(path: str, text: str):
    return lambda repo: (repo / path).write_text(text)


@pytest.mark.parametrize("change, config, reason", [
    (_write("config/app.yaml", "min_auc: 0.55\n"), "config/app.yaml", "config config/app.yaml has uncommitted changes"),
    (_write("config/loose.yaml", "min_auc: 0.55\n"), "config/loose.yaml",
     "config config/loose.yaml is not committed (untracked or git-ignored)"),
    (_write("config/loose.log", "min_auc: 0.55\n"), "config/loose.log",
     "config config/loose.log is not committed (untracked or git-ignored)"),
    (_write("pipeline_code/training/extra.py", "ROUNDS = 1\n"), "config/app.yaml",
     "untracked job code ships in the job-code zip: pipeline_code/training/extra.py"),
    (_write("pipeline_code/training/run.log", "ignored by git, zipped all the same\n"), "config/app.yaml",
     "untracked job code ships in the job-code zip: pipeline_code/training/run.log"),
    (_write("pipeline_code/training/train.py", "ROUNDS = 1\n"), "config/app.yaml",
     "uncommitted changes to pipeline_code/training/train.py"),
], ids=["modified-config", "untracked-config", "ignored-config", "untracked-job-code", "ignored-job-code",
        "modified-job-code"])
def test_what_synth_reads_that_is_not_the_commit_makes_the_version_dirty_and_says_why(repo, change, config, reason):
    """GIVEN a committed checkout WHEN the config synth reads or the job code it zips is not the commit's THEN the
    version is ``<commit>-dirty`` and its one warning line says why, naming the file."""
    change(repo)
    version = source_version(repo, config=repo / config)
    commit = _git(repo, "rev-parse", "HEAD")
    assert (version.version, version.dirty) == (f"{commit}-dirty", (reason,))
    assert version.warning() == f"code version {commit}-dirty: {reason}"


def test_a_config_outside_the_repository_makes_the_version_dirty(repo, tmp_path):
    """GIVEN the committed config copied outside the checkout, unchanged WHEN the version is taken with the copy THEN it
    is dirty: nothing in git pins what the copy holds."""
    outside = tmp_path / "elsewhere" / "app.yaml"
    outside.parent.mkdir()
    outside.write_text((repo / "config/app.yaml").read_text())
    version = source_version(repo, config=outside)
    assert version.dirty == (f"config {outside} is outside the repository",)
    assert version.version == f"{_git(repo, 'rev-parse', 'HEAD')}-dirty"


def test_every_reason_is_given_and_a_long_list_of_files_is_counted(repo, tmp_path):
    """GIVEN a config outside the checkout, a modified tracked file and seven untracked job files WHEN the version is
    taken THEN the warning gives each reason, the first five files of a list by name and counts the rest."""
    outside = tmp_path / "app.yaml"
    outside.write_text("min_auc: 0.55\n")
    (repo / ".gitignore").write_text("")
    for n in range(7):
        (repo / f"pipeline_code/training/extra_{n}.py").write_text("")
    version = source_version(repo, config=outside)
    assert version.dirty == (
        f"config {outside} is outside the repository",
        "uncommitted changes to .gitignore",
        "untracked job code ships in the job-code zip: pipeline_code/training/extra_0.py, pipeline_code/training/extra_1.py, "
        "pipeline_code/training/extra_2.py, pipeline_code/training/extra_3.py, pipeline_code/training/extra_4.py and 2 more",
    )


UNKNOWN_MEANS = ("model versions registered from this build record no commit (only job_code_asset_hash and "
                 "model_spec_sha256 pin what runs) and the audit lists each as a gap")


def test_outside_a_checkout_the_version_is_unknown_and_the_warning_gives_gits_error(tmp_path, monkeypatch):
    """GIVEN a directory that is no git checkout (a source archive) WHEN its version is taken THEN it is ``unknown``,
    and the one warning line carries git's first line of error and what an unknown version means."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # a checkout above tmp_path is not this one's
    (tmp_path / "config.yaml").write_text("")
    version = source_version(tmp_path, config=tmp_path / "config.yaml")
    assert version.version == "unknown"
    assert version.warning() == ("code version unknown: git rev-parse: fatal: not a git repository (or any of the "
                                 f"parent directories): .git; {UNKNOWN_MEANS}")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root can give the checkout away")
def test_a_checkout_owned_by_another_user_is_unknown_and_the_warning_gives_gits_refusal(repo, tmp_path, monkeypatch):
    """GIVEN a checkout owned by another user, as in a CI container whose checkout another user made, and no
    ``safe.directory`` exception WHEN its version is taken THEN it is ``unknown`` and the warning gives git's first line
    ("detected dubious ownership"), not its advice (docs/deploying.md gives the fix)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for path in [repo, *repo.rglob("*")]:
        os.chown(path, 65534, 65534, follow_symlinks=False)
    version = source_version(repo, config=repo / "config/app.yaml")
    assert version.version == "unknown"
    assert version.warning() == (f"code version unknown: git rev-parse: fatal: detected dubious ownership in repository "
                                 f"at '{repo}'; {UNKNOWN_MEANS}")


def test_without_git_installed_the_version_is_unknown_and_the_warning_says_so(repo, monkeypatch):
    """GIVEN no git on PATH WHEN the version is taken THEN it is ``unknown`` and the warning says git is not installed."""
    monkeypatch.setenv("PATH", str(repo / "empty-bin"))
    version = source_version(repo, config=repo / "config/app.yaml")
    assert (version.version, version.warning()) == ("unknown", f"code version unknown: git is not installed; {UNKNOWN_MEANS}")
