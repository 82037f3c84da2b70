"""The synth summary (``python -m mlops_loop.tools.summary``), as a pipeline runs it after synth: its exit status tells
findings (1) from a summary that could not be made (2), and ``--format json`` gives the counts a pipeline gates on.

The assemblies are small ones written in tmp_path (tests/support/assemblies.py); cfn-lint runs on them for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.assemblies import write_assembly
from tests.support.paths import REPO_ROOT

QUEUE = {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1209600}}
# E3002: a property SQS queues do not have.
BAD_QUEUE = {"Type": "AWS::SQS::Queue", "Properties": {"RetentionDays": 14}}


def _summary(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlops_loop.tools.summary", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MLOPS_LOOP_CACHE_DIR": "off"})


def _assembly(root: Path, queue: dict) -> Path:
    return write_assembly(root, {"dev": {"Storage": {"Resources": {"Queue": queue}}}})


@pytest.mark.parametrize("make, shown", [
    (lambda tmp: tmp / "nope", "{dir}"),  # no such directory
    (lambda tmp: tmp, "{dir}"),  # a directory without manifest.json
])
def test_a_directory_that_is_no_assembly_exits_2_with_one_line(tmp_path, make, shown):
    """GIVEN a path that holds no cloud assembly WHEN the summary is asked for THEN exit 2 (not the findings' 1) with
    one line naming the directory and the fix, no traceback."""
    directory = make(tmp_path)
    result = _summary(str(directory), tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr == (f"summary: {shown.format(dir=directory)} is not a cloud assembly (no manifest.json); "
                             "run bash scripts/synth.sh\n")


def test_an_assembly_without_stacks_exits_2(tmp_path):
    assembly = write_assembly(tmp_path / "cdk.out", {})
    result = _summary(str(assembly), tmp_path=tmp_path)
    assert (result.returncode, result.stderr) == (2, f"summary: no stacks found in {assembly}; run bash scripts/synth.sh\n")


def test_bad_arguments_exit_2_and_help_exits_0(tmp_path):
    bad = _summary("--bogus", tmp_path=tmp_path)
    assert bad.returncode == 2 and "unrecognized arguments: --bogus" in bad.stderr
    helped = _summary("--help", tmp_path=tmp_path)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m mlops_loop.tools.summary")


@pytest.mark.parametrize("queue, status, errors", [(QUEUE, 0, 0), (BAD_QUEUE, 1, 1)])
def test_json_gives_the_counts_a_pipeline_gates_on_and_the_status_says_findings(tmp_path, queue, status, errors):
    """GIVEN an assembly that is clean, or whose template has a cfn-lint error WHEN ``--format json`` THEN stdout is
    one JSON document with the stacks, the unacknowledged nag findings and cfn-lint's counts and lines, and the
    status is 0 when clean, 1 on a finding."""
    assembly = _assembly(tmp_path / "cdk.out", queue)
    result = _summary(str(assembly), "--format", "json", tmp_path=tmp_path)
    assert result.returncode == status, result.stderr
    report = json.loads(result.stdout)
    assert report["assembly"] == str(assembly)
    assert report["stacks"] == [{"environment": "dev", "stack": "mlops-loop-dev-storage", "resources": 1,
                                 "protected": False, "resource_types": {"AWS::SQS::Queue": 1}}]
    assert report["cdk_nag"] == []
    assert report["cfn_lint"]["errors"] == errors
    assert len(report["cfn_lint"]["findings"]) == errors + report["cfn_lint"]["warnings"] + report["cfn_lint"]["informational"]
    if errors:
        assert report["cfn_lint"]["findings"][0].startswith("Error E3002 ")
    assert report["ok"] is (status == 0)
