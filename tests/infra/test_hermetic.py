"""Synth is hermetic: no AWS credentials, no AWS config, and (where the kernel allows) no network at all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_loop.app_builder import code_version
from mlops_loop.cdk_json import app_interpreter
from mlops_loop.tools.cloud_assembly import stacks
from mlops_loop.tools.source_stamp import read_stamp

from tests.support.paths import REPO_ROOT


def _no_network_prefix() -> list[str]:
    """`unshare -n` runs the command in a fresh network namespace with no usable interface."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


def _jsii_package_cache() -> str:
    """Where this user's jsii runtime keeps the CDK's unpacked npm packages (jsii's default for the platform).

    Kept across the scrubbed HOME: it holds no AWS configuration, and unpacking aws-cdk-lib afresh costs
    a synth 3-4 s. (Named explicitly, jsii skips its check that the directory is private to the user; the
    test only reads what this user's own runs unpacked there.)"""
    if os.environ.get("JSII_RUNTIME_PACKAGE_CACHE_ROOT"):
        return os.environ["JSII_RUNTIME_PACKAGE_CACHE_ROOT"]
    if sys.platform == "darwin":
        return str(Path.home() / "Library" / "Caches" / "com.amazonaws.jsii" / "package-cache")
    return str(Path.home() / ".cache" / "aws" / "jsii" / "package-cache")


@pytest.mark.slow
def test_app_synthesizes_without_credentials_or_network(tmp_path, synthesized):
    """GIVEN no credentials, no AWS config and no network WHEN the app runs with cdk.json's interpreter flags
    (``python -O app.py``) THEN it writes every template the in-process synth does, byte for byte but for the
    commit it records (the in-process synth, with the CDK's Python-side type checks on, records none), and
    leaves nothing in its temporary directory (the jsii runtime, the generated asset sources): its exit
    handlers run although it skips the interpreter's teardown.

    It shares the SDK cache of the run (filled or not): the SDK's own offline build is proven in a fresh,
    network-less process by tests/pipeline_definition/test_hermetic.py, and every cold build runs inside
    sdk_offline's guard, which fails synth on any attempt to reach AWS or the network.
    """
    outdir = tmp_path / "cdk.out"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "TMPDIR": str(scratch),
        "JSII_RUNTIME_PACKAGE_CACHE_ROOT": _jsii_package_cache(),
        "CDK_OUTDIR": str(outdir),
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        # Anything that still tried HTTP would hit a closed local port.
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    proc = subprocess.run(
        [*_no_network_prefix(), *app_interpreter(), "app.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(scratch.iterdir()) == []
    found = {(s.stage, s.stack_name): s for s in stacks(outdir)}
    assert set(found) == {(s.stage, s.stack_name) for s in synthesized.stacks.values()}
    version = code_version()
    for expected in synthesized.stacks.values():
        text = found[(expected.stage, expected.stack_name)].template_path.read_text()
        assert text.replace(version, "unknown") == expected.template_path.read_text(), expected.stack_name
    # The source stamp is written offline too, and covers the synth inputs only.
    stamp = read_stamp(outdir)
    assert stamp.known, stamp.error
    assert {"app.py", "cdk.json", "config/mlops-loop.yaml", "requirements.lock", "mlops_loop/app_builder.py"} <= set(stamp.files)
    assert not [p for p in stamp.files if p.startswith(("tests/", "cdk.out/", "mlops_loop/tools/", "scripts/"))]
