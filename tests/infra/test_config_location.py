"""Which config file app.py and every tool read: one resolution (``mlops_loop.config.location``) - the
``mlops-loop:config`` context when given, else ``MLOPS_LOOP_CONFIG``, else config/mlops-loop.yaml - so that a second
project's operator who exports the variable once acts on their own project with ``cdk synth``, ``cdk deploy`` and
every ``mlops_cli`` tool alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_loop.config import load_config
from mlops_loop.config.location import CONFIG_ENV, configured, configured_path, resolve_config
from tests.support.configs import SAMPLE_CONFIG
from tests.support.paths import REPO_ROOT


def test_without_context_or_variable_it_is_the_repositorys_config_mlops_loop_yaml():
    location = resolve_config(None, {})
    assert (location.path, location.chosen_by, location.warning()) == ("config/mlops-loop.yaml", "default", None)
    assert location.absolute == REPO_ROOT / "config" / "mlops-loop.yaml"


def test_the_variable_names_it_when_no_context_does_and_an_empty_one_counts_as_unset():
    assert resolve_config(None, {CONFIG_ENV: "config/risk-ml.yaml"}).path == "config/risk-ml.yaml"
    assert resolve_config("", {CONFIG_ENV: "config/risk-ml.yaml"}).chosen_by == "environment"
    assert resolve_config(None, {CONFIG_ENV: "  "}).chosen_by == "default"


def test_a_given_context_wins_over_the_variable_and_says_so_when_they_name_different_files():
    # GIVEN the variable exported for project B WHEN one command is given -c naming project A's file
    location = resolve_config("config/mlops-loop.yaml", {CONFIG_ENV: "config/risk-ml.yaml"})
    # THEN the command's explicit word wins, with one line naming both
    assert (location.path, location.chosen_by) == ("config/mlops-loop.yaml", "context")
    assert location.warning() == (
        "context 'mlops-loop:config' names config/mlops-loop.yaml, which wins over MLOPS_LOOP_CONFIG=config/risk-ml.yaml; "
        "drop the one you did not mean, so that synth, deploy and the tools read the same config")
    # The same file, written relative or absolute, is no conflict.
    assert resolve_config("config/risk-ml.yaml", {CONFIG_ENV: str(REPO_ROOT / "config" / "risk-ml.yaml")}).warning() is None


def test_the_repositorys_cdk_json_names_no_config_so_the_variable_decides_for_cdk_synth_and_the_tools():
    """A cdk.json entry would reach app.py as context on every `cdk` command and beat the variable."""
    assert "mlops-loop:config" not in json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    assert configured_path({CONFIG_ENV: "/teams/risk/risk-ml.yaml"}) == Path("/teams/risk/risk-ml.yaml")
    assert configured_path({}) == REPO_ROOT / "config" / "mlops-loop.yaml"


@pytest.mark.parametrize("where", ["cdk.json", "cdk.context.json", "home"])
def test_the_tools_default_honours_a_context_the_cdk_clis_files_set_as_synth_does(tmp_path, where):
    """GIVEN mlops-loop:config set in one of the files the CDK CLI takes context from WHEN a tool takes its default
    THEN it is that file, as `cdk synth` would read, over the variable (with the warning)."""
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    (project / "cdk.json").write_text(json.dumps({"app": "python app.py", "context": {}}))
    key = {"mlops-loop:config": "config/team-a.yaml"}
    if where == "cdk.json":
        (project / "cdk.json").write_text(json.dumps({"app": "python app.py", "context": key}))
    elif where == "cdk.context.json":
        (project / "cdk.context.json").write_text(json.dumps(key))
    else:
        (home / ".cdk.json").write_text(json.dumps({"context": key}))
    location = configured({CONFIG_ENV: "config/team-b.yaml"}, directory=project, home=home)
    assert (location.path, location.chosen_by, location.overridden) == ("config/team-a.yaml", "context", "config/team-b.yaml")


def test_a_config_that_does_not_exist_is_one_line_naming_the_ways_to_name_another(tmp_path):
    with pytest.raises(Exception) as raised:
        load_config(tmp_path / "nope.yaml")
    assert raised.value.problems == [
        "file not found; name an existing file with MLOPS_LOOP_CONFIG=<file> (or give it: -c mlops-loop:config=<file> to "
        "cdk, --config <file> to a tool)"]


def _broken(tmp_path: Path, name: str, instance_type: str) -> Path:
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["environments"]["prod"]["training"] = {**raw["environments"]["prod"].get("training", {}), "instance_type": instance_type}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _app(tmp_path: Path, *, context: dict, variable: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path / "out"),
           CONFIG_ENV: str(variable)}
    return subprocess.run([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_app_py_reads_the_variables_config_and_a_given_context_over_it(tmp_path):
    """GIVEN two configs each with a distinct mistake WHEN app.py runs (as `cdk synth` runs it) with MLOPS_LOOP_CONFIG
    naming one THEN it reads that one (its mistake fails synth), saying where the config came from; with the context
    naming the other too THEN the context's is read, with the warning. A mistake is the quickest proof of the file
    read: synth stops there, before any stack is built."""
    team_b = _broken(tmp_path, "team-b.yaml", "ml.from-the-variable")
    team_a = _broken(tmp_path, "team-a.yaml", "ml.from-the-context")
    by_variable = _app(tmp_path, context={}, variable=team_b)
    assert by_variable.returncode == 2
    assert by_variable.stderr.splitlines()[0] == f"mlops-loop: config {team_b} (MLOPS_LOOP_CONFIG)"
    assert f"mlops-loop: invalid configuration in {team_b}:" in by_variable.stderr
    assert "unknown instance type 'ml.from-the-variable'" in by_variable.stderr
    by_context = _app(tmp_path, context={"mlops-loop:config": str(team_a)}, variable=team_b)
    assert by_context.returncode == 2
    assert by_context.stderr.splitlines()[0] == (
        f"mlops-loop: warning: context 'mlops-loop:config' names {team_a}, which wins over MLOPS_LOOP_CONFIG={team_b}; "
        "drop the one you did not mean, so that synth, deploy and the tools read the same config")
    assert "environment 'prod': field 'training.instance_type': unknown instance type 'ml.from-the-context'" in (
        by_context.stderr)
    assert "Traceback" not in by_variable.stderr + by_context.stderr  # one clear message, not a stack trace


def test_app_py_refuses_a_config_it_cannot_read_before_it_imports_the_cdk(tmp_path):
    """GIVEN a config with a mistake, named by the context the CLI hands over WHEN app.py runs THEN it exits 2 on the
    config's message without having imported the CDK (seconds of CPU, spent only on a config that can be synthesized)."""
    broken = _broken(tmp_path, "broken.yaml", "ml.from-the-context")
    probe = ("import runpy, sys\n"
             "try:\n"
             "    runpy.run_path('app.py', run_name='__main__')\n"
             "except SystemExit as exit:\n"
             "    print(exit.code, 'aws_cdk' in sys.modules)\n")
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"mlops-loop:config": str(broken)}),
           "CDK_OUTDIR": str(tmp_path / "out"), "PYTHONPATH": str(REPO_ROOT)}
    env.pop(CONFIG_ENV, None)
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout == "2 False\n", result.stderr[-2000:]
    assert "unknown instance type 'ml.from-the-context'" in result.stderr


def test_the_commands_the_app_prints_name_its_config_unless_it_is_the_default():
    """GIVEN the config the app is synthesized from WHEN the --config its printed commands name is taken THEN none for
    the default file (however it was named), the repository-relative path for a file in the repository (as the tools,
    run at its top level, read it), else the absolute path."""
    assert resolve_config(None, {}).cli_config is None
    assert resolve_config(None, {CONFIG_ENV: str(REPO_ROOT / "config" / "mlops-loop.yaml")}).cli_config is None
    assert resolve_config("config/risk-ml.yaml", {}).cli_config == "config/risk-ml.yaml"
    assert resolve_config(None, {CONFIG_ENV: str(REPO_ROOT / "teams" / "risk.yaml")}).cli_config == "teams/risk.yaml"
    assert resolve_config(None, {CONFIG_ENV: "/teams/risk/risk-ml.yaml"}).cli_config == "/teams/risk/risk-ml.yaml"
