"""Assemblies record the source tree they were synthesized from, and the review tools refuse stale ones.

Every test works on a small temporary git repository laid out like this one (app.py, cdk.json,
config/, mlops_loop/, pipeline_code/, requirements.lock, tests/, README.md) whose app.py writes a
one-stack cloud assembly with the standard library in a fraction of a second, so the tools run for
real (the template diff even synthesizes the base ref in a git worktree) without a CDK synth.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path
from unittest import mock

import pytest

from mlops_loop.tools import cost_floor, source_stamp, template_diff
from mlops_loop.tools.template_diff.git_synth import defined_in
from mlops_loop.tools.source_stamp import STAMP_FILE, fingerprint, read_stamp, stale_reason, write_stamp

from tests.support.pr_report import PR_REPORT, SECTIONS, run_report
from tests.support.template_diff import record_compared

FIX = "run bash scripts/synth.sh first (or pass --allow-stale to read it anyway)"

TINY_APP = '''
import json, os, pathlib, re
out = pathlib.Path(os.environ.get("CDK_OUTDIR", "cdk.out"))
days = int(re.search(r"retention_days: (\\d+)", pathlib.Path("config/mlops-loop.yaml").read_text()).group(1))
stage = out / "assembly-dev"
stage.mkdir(parents=True, exist_ok=True)
template = {"Resources": {"Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": days}}}}
(stage / "devStorage0A1B2C3D.template.json").write_text(json.dumps(template))
stack = {"type": "aws:cloudformation:stack", "environment": "aws://111111111111/eu-west-1",
         "properties": {"templateFile": "devStorage0A1B2C3D.template.json", "stackName": "mlops-loop-dev-storage"}}
(stage / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": {"devStorage0A1B2C3D": stack}}))
nested = {"type": "cdk:cloud-assembly", "properties": {"directoryName": "assembly-dev", "displayName": "dev"}}
(out / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": {"assembly-dev": nested}}))
(out / "context.json").write_text(os.environ.get("CDK_CONTEXT_JSON", "{}"))  # what the CDK App would read
'''

FILES = {
    "app.py": TINY_APP,
    "cdk.json": '{"app": "python app.py", "context": {}}\n',
    "config/mlops-loop.yaml": "retention_days: 30\n",
    "mlops_loop/__init__.py": "",
    "mlops_loop/stacks.py": "BUCKETS = 1\n",
    "mlops_loop/tools/report.py": "TITLE = 'report'\n",
    "pipeline_code/job.py": "def run():\n    return 1\n",
    "requirements.lock": "aws-cdk-lib==2.0.0\n",
    "tests/test_stacks.py": "def test_nothing():\n    pass\n",
    "README.md": "# tiny\n",
    ".gitignore": "cdk.out/\n__pycache__/\n",
}
INPUTS = {"app.py", "cdk.json", "config/mlops-loop.yaml", "mlops_loop/__init__.py", "mlops_loop/stacks.py",
          "pipeline_code/job.py", "requirements.lock"}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout.strip()


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def _committed(tmp_path_factory) -> Path:
    """The tiny checkout, committed once for the module (never handed out itself: see ``repo``)."""
    root = tmp_path_factory.mktemp("tiny") / "repo"
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    _git(root, "init", "-q")
    _commit(root, "tiny app")
    return root


@pytest.fixture()
def repo(_committed, tmp_path) -> Path:
    """A committed tiny checkout: synth inputs, tests, a README and an ignored cdk.out (a copy of its own, .git
    included, of one made once: the same commit in every test, which each test reads from its copy)."""
    root = tmp_path / "repo"
    shutil.copytree(_committed, root, symlinks=True)
    return root


def synth(repo: Path) -> Path:
    """What ``python app.py`` does here: fingerprint the tree, synthesize into cdk.out, stamp it."""
    source = fingerprint(repo)
    outdir = repo / "cdk.out"
    # The tiny app.py run in this process (a Python start per synth otherwise): from the checkout, as `python app.py`
    # there would run it. The tools under test run it as a process where they synthesize (the diff's base).
    with contextlib.chdir(repo), mock.patch.dict(os.environ, {"CDK_OUTDIR": str(outdir)}):
        runpy.run_path("app.py", run_name="__main__")
    write_stamp(outdir, source)
    return outdir


def short(repo: Path) -> str:
    return _git(repo, "rev-parse", "HEAD")[:7]


def edit(repo: Path, path: str, text: str) -> None:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)


def run_tool(tool: str, repo: Path, assembly: Path, capsys, *extra: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of one tool's CLI reading ``assembly`` as the tree at ``repo``."""
    if tool == "source-stamp":
        code = source_stamp.main(["check", str(assembly), "--repo", str(repo), *extra])
    elif tool == "cost_floor":
        code = cost_floor.main([str(assembly), "--repo", str(repo), *extra])
    else:
        base_out = repo.parent / "base.out"
        code = template_diff.main(
            ["--repo", str(repo), "--base", "HEAD", "--head-assembly", str(assembly), "--base-out", str(base_out), *extra]
        )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# What each tool calls the assembly, and the exit status of a refusal.
TOOLS = {"source-stamp": ("{a}", 1), "cost_floor": ("{a}", 2), "template-diff": ("--head-assembly {a}", 2)}


# --------------------------------------------------------------------------------------------
# The stamp
# --------------------------------------------------------------------------------------------


def test_the_stamp_covers_exactly_the_synth_inputs_tracked_or_not(repo):
    """GIVEN the tiny checkout with a new untracked source file and an ignored one WHEN fingerprinted
    THEN every synth input counts (the untracked one too) and tests/, README, mlops_loop/tools/ and
    ignored files do not."""
    edit(repo, "pipeline_code/new_job.py", "X = 1\n")
    edit(repo, "mlops_loop/__pycache__/stacks.cpython-311.pyc", "ignored")
    stamp = fingerprint(repo)
    assert set(stamp.files) == INPUTS | {"pipeline_code/new_job.py"}
    assert stamp.commit == _git(repo, "rev-parse", "HEAD") and stamp.uncommitted
    assert stamp.describe() == f"{short(repo)} + uncommitted changes"


def test_synth_writes_the_stamp_into_the_assembly(repo):
    """GIVEN a clean checkout WHEN synthesized THEN cdk.out holds mlops-loop-source.json with the
    commit, no uncommitted changes, the config and one digest per input."""
    data = json.loads((synth(repo) / STAMP_FILE).read_text())
    assert data["schema_version"] == 1 and data["error"] is None
    assert (data["commit"], data["uncommitted_changes"], data["config"]) == (_git(repo, "rev-parse", "HEAD"), False, "config/mlops-loop.yaml")
    assert set(data["files"]) == INPUTS and len(data["inputs_sha256"]) == 64


def test_a_fresh_assembly_is_accepted_by_every_tool(repo, capsys):
    """GIVEN an assembly synthesized from the tree as it is WHEN each tool reads it THEN it does, silently."""
    assembly = synth(repo)
    assert stale_reason(assembly, repo=repo) is None
    code, out, err = run_tool("source-stamp", repo, assembly, capsys)
    assert (code, out, err) == (0, f"{assembly}: synthesized from {short(repo)}, the tree as it is now\n", "")
    code, out, err = run_tool("cost_floor", repo, assembly, capsys)
    assert (code, err) == (0, "") and "dev" in out
    code, out, err = run_tool("template-diff", repo, assembly, capsys)
    assert (code, err) == (0, "") and "no changes" in out


@pytest.mark.parametrize("path", ["tests/test_stacks.py", "README.md", "mlops_loop/tools/report.py", "cdk.out/notes.txt"])
def test_changes_outside_the_synth_inputs_keep_the_assembly_fresh(repo, path):
    """GIVEN a fresh assembly WHEN a test, the README, a review tool or cdk.out itself changes THEN it stays fresh."""
    assembly = synth(repo)
    edit(repo, path, "changed\n")
    assert stale_reason(assembly, repo=repo) is None


# --------------------------------------------------------------------------------------------
# Refusals: one line naming the assembly, what it was built from, what the tree is now, the fix
# --------------------------------------------------------------------------------------------


def _config_edited(repo: Path) -> str:
    edit(repo, "config/mlops-loop.yaml", "retention_days: 7\n")
    c = short(repo)
    return f"was synthesized from {c}, the tree is now {c} + uncommitted changes (synth inputs changed: config/mlops-loop.yaml)"


def _source_edited(repo: Path) -> str:
    edit(repo, "mlops_loop/stacks.py", "BUCKETS = 2\n")
    c = short(repo)
    return f"was synthesized from {c}, the tree is now {c} + uncommitted changes (synth inputs changed: mlops_loop/stacks.py)"


def _source_added(repo: Path) -> str:
    edit(repo, "pipeline_code/new_job.py", "X = 1\n")
    c = short(repo)
    return f"was synthesized from {c}, the tree is now {c} + uncommitted changes (synth inputs changed: pipeline_code/new_job.py)"


def _new_commit(repo: Path) -> str:
    before = short(repo)
    edit(repo, "config/mlops-loop.yaml", "retention_days: 7\n")
    _commit(repo, "shorter retention")
    return f"was synthesized from {before}, the tree is now {short(repo)} (synth inputs changed: config/mlops-loop.yaml)"


def _commit_of_tests_only(repo: Path) -> str:
    # The templates record the commit (training lineage), so even a commit of tests alone is a new source.
    before = short(repo)
    edit(repo, "tests/test_stacks.py", "def test_more():\n    pass\n")
    _commit(repo, "a test")
    return f"was synthesized from {before}, the tree is now {short(repo)}"


def _no_stamp(repo: Path) -> str:
    (repo / "cdk.out" / STAMP_FILE).unlink()
    return f"was synthesized from an unknown source (no {STAMP_FILE}: an older synth, or not by app.py), the tree is now {short(repo)}"


def _one_environment_only(repo: Path) -> str:
    write_stamp(repo / "cdk.out", dataclasses.replace(read_stamp(repo / "cdk.out"), environments=("dev",)))
    return "holds environment(s) dev only (synthesized with -c mlops-loop:environments=...), not the whole app"


CHANGES = {
    "one environment only": _one_environment_only,
    "config edited": _config_edited,
    "tracked source edited": _source_edited,
    "untracked source added": _source_added,
    "new commit": _new_commit,
    "commit of tests only": _commit_of_tests_only,
    "no stamp": _no_stamp,
}


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("change", CHANGES)
def test_each_tool_refuses_a_stale_assembly_with_one_exact_line(repo, capsys, tool, change):
    """GIVEN an assembly synthesized from the tiny checkout WHEN the tree then changes THEN the tool
    refuses to read it with one line: the assembly, what it was built from, what the tree is now, the fix."""
    assembly = synth(repo)
    expected = CHANGES[change](repo)
    name, status = TOOLS[tool]

    code, out, err = run_tool(tool, repo, assembly, capsys)

    assert code == status and out == ""
    assert err == f"{tool}: {name.format(a=assembly)} {expected}: {FIX}\n"
    if tool == "template-diff":
        assert not (repo.parent / "base.out").exists(), "refused before the base ref was synthesized"


@pytest.mark.parametrize("tool", TOOLS)
def test_each_workstation_tool_refuses_an_assembly_of_another_config_than_the_selected_one(repo, capsys, monkeypatch, tool):
    """GIVEN an assembly synthesized with config/mlops-loop.yaml, fresh for it WHEN MLOPS_LOOP_CONFIG then names
    another (committed) config THEN the workstation tools (the check as pr-report runs it) refuse it with one line
    naming both configs and what selects the new one: it is another project's assembly."""
    edit(repo, "config/other.yaml", "retention_days: 14\n")
    _commit(repo, "another project")
    assembly = synth(repo)
    monkeypatch.setenv("MLOPS_LOOP_CONFIG", "config/other.yaml")
    name, status = TOOLS[tool]
    code, out, err = run_tool(tool, repo, assembly, capsys, *(["--selected-config"] if tool == "source-stamp" else []))
    assert (code, out) == (status, "")
    assert err == (f"{tool}: {name.format(a=assembly)} was synthesized with config config/mlops-loop.yaml, the config "
                   f"selected now is config/other.yaml (MLOPS_LOOP_CONFIG): {FIX}\n")
    if tool == "template-diff":
        assert not (repo.parent / "base.out").exists(), "refused before the base ref was synthesized"


def test_the_deploy_workflows_check_compares_the_stamps_own_config(repo, capsys, monkeypatch):
    """GIVEN the same assembly and variable WHEN checked as the deploy workflow does (no --selected-config) THEN it is
    fresh: that job's MLOPS_LOOP_CONFIG need not be the synth job's, and the stamp's config is the one compared."""
    edit(repo, "config/other.yaml", "retention_days: 14\n")
    _commit(repo, "another project")
    assembly = synth(repo)
    monkeypatch.setenv("MLOPS_LOOP_CONFIG", "config/other.yaml")
    assert run_tool("source-stamp", repo, assembly, capsys)[0] == 0


def test_the_selected_config_named_by_an_absolute_path_is_the_same_config(repo, capsys, monkeypatch):
    assembly = synth(repo)
    monkeypatch.setenv("MLOPS_LOOP_CONFIG", str(repo / "config" / "mlops-loop.yaml"))
    assert stale_reason(assembly, repo=repo, current_config=True) is None
    assert run_tool("source-stamp", repo, assembly, capsys, "--selected-config")[0] == 0


def test_an_assembly_from_an_unknown_source_is_refused(repo, tmp_path, capsys, monkeypatch):
    """GIVEN an assembly synthesized where git could not tell the source (no repository) WHEN the cost
    floor reads it for the tiny checkout THEN it is refused, naming why the source is unknown."""
    # git's own words, whatever the machine's language, and no repository above the temporary directory
    monkeypatch.setenv("LC_ALL", "C")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    not_a_repo = tmp_path / "export"
    not_a_repo.mkdir()
    assembly = synth(repo)
    write_stamp(assembly, fingerprint(not_a_repo))
    code, _, err = run_tool("cost_floor", repo, assembly, capsys)
    assert code == 2
    assert err.startswith(f"cost_floor: {assembly} was synthesized from an unknown source (git rev-parse: fatal: not a git repository")
    assert err.endswith(f"), the tree is now {short(repo)}: {FIX}\n") and err.count("\n") == 1


def test_a_long_list_of_changed_inputs_is_cut_to_three_names(repo):
    assembly = synth(repo)
    for i in range(5):
        edit(repo, f"pipeline_code/job_{i}.py", "X = 1\n")
    assert stale_reason(assembly, repo=repo).endswith(
        "(synth inputs changed: pipeline_code/job_0.py, pipeline_code/job_1.py, pipeline_code/job_2.py and 2 more)"
    )


# --------------------------------------------------------------------------------------------
# --allow-stale
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["cost_floor", "template-diff"])
def test_allow_stale_reads_it_anyway_with_a_warning(repo, capsys, tool):
    """GIVEN a stale assembly WHEN the tool runs with --allow-stale THEN it reports, after one warning line."""
    assembly = synth(repo)
    expected = _config_edited(repo)
    name, _ = TOOLS[tool]
    code, out, err = run_tool(tool, repo, assembly, capsys, "--allow-stale")
    assert code == 0 and "dev" in out
    assert err == f"{tool}: warning: {name.format(a=assembly)} {expected}; reading it anyway (--allow-stale)\n"


# --------------------------------------------------------------------------------------------
# The base assembly the template diff synthesizes itself
# --------------------------------------------------------------------------------------------


def test_the_template_diff_stamps_the_base_it_synthesizes_with_the_base_commit(repo, capsys):
    """GIVEN a base ref whose app.py writes no stamp WHEN the diff synthesizes it in a worktree THEN the
    base assembly is kept in --base-out with that commit's stamp, fresh for a tree at that commit."""
    base_commit = _git(repo, "rev-parse", "HEAD")
    edit(repo, "config/mlops-loop.yaml", "retention_days: 7\n")
    code, out, _ = run_tool("template-diff", repo, synth(repo), capsys)
    assert code == 0 and "RetentionInDays: 30 -> 7" in out
    assert (repo.parent / "base.out" / "manifest.json").is_file()  # kept for the cost-floor tool
    base = read_stamp(repo.parent / "base.out")
    assert (base.commit, base.uncommitted) == (base_commit, False)
    _git(repo, "checkout", "-q", "--", "config/mlops-loop.yaml")
    assert stale_reason(repo.parent / "base.out", repo=repo) is None


@pytest.mark.parametrize("kept", [False, True], ids=["temporary base", "kept base"])
def test_env_synthesizes_only_those_environments_except_a_kept_base(repo, tmp_path, monkeypatch, kept):
    """GIVEN --env dev and a config defining dev and prod WHEN the diff synthesizes both sides THEN each app.py
    is asked for dev only (the CDK context, recorded in the stamp of the base), except into --base-out,
    which the cost floor reads whole."""
    edit(repo, "config/mlops-loop.yaml", "retention_days: 30\nenvironments: {dev: {}, prod: {}}\n")
    _commit(repo, "two environments")
    seen = record_compared(monkeypatch, lambda side: (json.loads((side / "context.json").read_text()), read_stamp(side).environments))
    kept_base = ["--base-out", str(tmp_path / "base.out")] if kept else []
    assert template_diff.main(["--repo", str(repo), "--base", "HEAD", "--env", "dev", *kept_base, "--output", str(tmp_path / "d")]) == 0
    only_dev = {source_stamp.ENVIRONMENTS_CONTEXT_KEY: "dev"}
    base, head = seen
    assert base == (({}, None) if kept else (only_dev, ("dev",)))
    assert head[0] == only_dev  # (the tiny app writes no stamp of its own)


# The tiny app choosing its config as app.py does: the context (cdk.json's, which CDK_CONTEXT_JSON overrides, as the
# CDK App loads them: aws-cdk-lib core/lib/app.js loadContext), else MLOPS_LOOP_CONFIG, else the default.
CHOOSING_APP = """
import json, os, pathlib
context = {**json.loads(pathlib.Path("cdk.json").read_text())["context"], **json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}")}
CONFIG = context.get("mlops-loop:config") or os.environ.get("MLOPS_LOOP_CONFIG") or "config/mlops-loop.yaml"
""" + TINY_APP.replace('pathlib.Path("config/mlops-loop.yaml")', "pathlib.Path(CONFIG)")


def _two_projects_and_a_base_naming_the_first(repo: Path) -> str:
    """Commit a base whose cdk.json names config/mlops-loop.yaml (retention 30) as the tree did before
    MLOPS_LOOP_CONFIG, then a head whose cdk.json names none; config/other.yaml (retention 14) is the other project's.
    Returns the base commit."""
    edit(repo, "app.py", CHOOSING_APP)
    edit(repo, "config/other.yaml", "retention_days: 14\n")
    edit(repo, "cdk.json", json.dumps({"app": "python app.py", "context": {source_stamp.CONFIG_CONTEXT_KEY: "config/mlops-loop.yaml"}}))
    base = _commit(repo, "cdk.json names the config")
    edit(repo, "cdk.json", json.dumps({"app": "python app.py", "context": {}}))
    _commit(repo, "the config from MLOPS_LOOP_CONFIG")
    return base


@pytest.mark.parametrize("config", ["config/other.yaml", "absolute"])
def test_with_mlops_loop_config_both_sides_synthesize_the_project_it_names(repo, tmp_path, monkeypatch, config):
    """GIVEN MLOPS_LOOP_CONFIG naming another project's config and a base ref whose cdk.json names the first one
    WHEN the diff synthesizes both sides THEN each is given the variable's file as its mlops-loop:config context, by
    the same path, so both build the other project: no changes (not a diff between two projects), and the base's
    stamp names that config."""
    base = _two_projects_and_a_base_naming_the_first(repo)
    config = str(repo / "config/other.yaml") if config == "absolute" else config
    monkeypatch.setenv("MLOPS_LOOP_CONFIG", config)
    seen = record_compared(monkeypatch, lambda side: json.loads((side / "context.json").read_text()))
    output = tmp_path / "diff.txt"
    assert template_diff.main(["--repo", str(repo), "--base", base, "--base-out", str(tmp_path / "base.out"),
                               "--output", str(output)]) == 0
    assert seen == [{source_stamp.CONFIG_CONTEXT_KEY: config}] * 2
    assert "no changes" in output.read_text() and "RetentionInDays" not in output.read_text()
    assert read_stamp(tmp_path / "base.out").config == ("config/other.yaml" if not config.startswith("/") else config)


def test_without_mlops_loop_config_each_side_reads_its_own_cdk_json(repo, tmp_path, monkeypatch):
    """GIVEN no MLOPS_LOOP_CONFIG WHEN the diff synthesizes a base whose cdk.json names a config THEN no config
    context is given: each side's app.py chooses its own, as `cdk synth` of that commit did."""
    base = _two_projects_and_a_base_naming_the_first(repo)
    seen = record_compared(monkeypatch, lambda side: json.loads((side / "context.json").read_text()))
    assert template_diff.main(["--repo", str(repo), "--base", base, "--output", str(tmp_path / "d")]) == 0
    assert seen == [{}, {}]


def test_a_base_without_the_selected_config_is_refused_before_its_synth(repo, tmp_path, monkeypatch, capsys):
    """GIVEN MLOPS_LOOP_CONFIG naming a config the base commit does not hold WHEN diffed THEN one line says so and how
    to compare anyway, and no worktree is left."""
    base = _git(repo, "rev-parse", "HEAD")
    edit(repo, "config/new.yaml", "retention_days: 14\n")
    _commit(repo, "a second project")
    monkeypatch.setenv("MLOPS_LOOP_CONFIG", "config/new.yaml")
    assert template_diff.main(["--repo", str(repo), "--base", base, "--output", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err == (
        f"template-diff: base ref '{base}' ({base[:12]}) has no config/new.yaml, the config this checkout selects "
        "(MLOPS_LOOP_CONFIG); commit it to the base, or name it by an absolute path to synthesize both sides with the "
        "working tree's copy\n")
    assert _git(repo, "worktree", "list").count("\n") == 0  # the temporary worktree is gone


@pytest.mark.parametrize(("asked", "selected"), [
    (["prod", "dev"], ["dev", "prod"]),  # in the config's order, as app.py synthesizes them
    (["dev", "qa"], ["dev"]),  # qa: added or removed by the change, so on the other side only
    (["qa"], None),  # none of them here: everything, and the comparison decides
    (["prod", "staging", "dev"], None),  # all of them: the whole app, stamped whole
    (None, None),
])
def test_each_side_is_asked_only_for_the_environments_its_config_defines(tmp_path, asked, selected):
    tree = tmp_path / "tree"
    edit(tree, "cdk.json", json.dumps({"app": "python app.py", "context": {source_stamp.CONFIG_CONTEXT_KEY: "conf/app.yaml"}}))
    edit(tree, "conf/app.yaml", "environments:\n  dev: {region: eu-west-1}\n  staging: {}\n  prod: {region: eu-west-1}\n")
    assert defined_in(tree, asked) == selected


def test_a_config_that_cannot_be_read_asks_for_everything(tmp_path):
    tree = tmp_path / "tree"
    edit(tree, "cdk.json", json.dumps({"app": "python app.py", "context": {}}))
    assert defined_in(tree, ["dev"]) is None  # no config/mlops-loop.yaml
    edit(tree, "config/mlops-loop.yaml", "environments: [dev\n")
    assert defined_in(tree, ["dev"]) is None  # not YAML


# --------------------------------------------------------------------------------------------
# scripts/pr-report.sh with the real check (synth, diff, summary and cost floor stay fakes)
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def checked_report_env(report_env, repo) -> dict[str, str]:
    """pr-report.sh's fakes, but the stamp check is the real one, against the tiny checkout's cdk.out."""
    assembly = synth(repo)
    report_env.update(
        MLOPS_ASSEMBLY=str(assembly),
        FAKE_ASSEMBLY=str(assembly),
        MLOPS_STAMP_CMD=f"{_default_stamp_cmd()} --repo {repo}",
    )
    return report_env


def _default_stamp_cmd() -> str:
    """The check pr-report.sh runs when MLOPS_STAMP_CMD is not set."""
    return re.search(r'MLOPS_STAMP_CMD:-([^}]*)}', PR_REPORT.read_text()).group(1)


def test_pr_report_uses_a_fresh_assembly_as_it_is(tmp_path, checked_report_env):
    proc, report = run_report(tmp_path, checked_report_env)
    assert proc.returncode == 0, proc.stderr
    assert not (Path(checked_report_env["CALLS"]) / "synth.called").exists()
    assert all(section in report for section in SECTIONS)


def test_pr_report_synthesizes_first_when_the_config_changed_after_synth(tmp_path, checked_report_env, repo):
    """GIVEN cdk.out synthesized before a config edit (the issue's reviewer) WHEN the report is built
    THEN the stale assembly is named in the log and synthesized again before any section is rendered."""
    expected = _config_edited(repo)
    proc, report = run_report(tmp_path, checked_report_env)
    assert proc.returncode == 0, proc.stderr
    assert (Path(checked_report_env["CALLS"]) / "synth.called").exists()
    assembly = checked_report_env["MLOPS_ASSEMBLY"]
    assert f"[pr-report] source-stamp: {assembly} {expected}: {FIX}\n[pr-report] running bash " in proc.stderr
    assert all(section in report for section in SECTIONS)


def test_pr_report_synthesizes_first_when_mlops_loop_config_names_another_config(tmp_path, checked_report_env, repo):
    """GIVEN cdk.out synthesized with config/mlops-loop.yaml WHEN MLOPS_LOOP_CONFIG then names another project's config
    THEN the report synthesizes again (with it) rather than report the first project's assembly."""
    checked_report_env["MLOPS_LOOP_CONFIG"] = "config/other.yaml"
    proc, report = run_report(tmp_path, checked_report_env)
    assert proc.returncode == 0, proc.stderr
    assert (Path(checked_report_env["CALLS"]) / "synth.called").exists()
    assembly = checked_report_env["MLOPS_ASSEMBLY"]
    assert (f"[pr-report] source-stamp: {assembly} was synthesized with config config/mlops-loop.yaml, the config "
            f"selected now is config/other.yaml (MLOPS_LOOP_CONFIG): {FIX}\n[pr-report] running bash ") in proc.stderr
