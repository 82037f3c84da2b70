"""Definition generation never reaches AWS: no credentials, no config, no network.

Two independent proofs, besides the guard inside mlops_loop.training.sdk_offline:

* in a fresh interpreter with a scrubbed environment (no credentials, AWS_CONFIG_FILE=
  /nonexistent, a proxy pointing at a closed port) and, where the kernel allows, no network
  at all (``unshare -n``), with botocore's lowest request layer replaced by a recorder;
* in this process, with the same recorder installed (the sdk_offline guard patches other
  layers, so this one is independent of it).

The subprocess also times its cold start (importing the SDK + the first build), printed with -s; a second, warm build
there would prove nothing the first does not (and cost a build), so it makes none.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from mlops_loop.training import generate_pipeline_definition

from tests.support import pipeline_specs as specs
from tests.support.paths import REPO_ROOT

_SCRIPT = r"""
import json, sys, time
started = time.perf_counter()
calls = []
import botocore.endpoint
def record(self, operation_model, request_dict):
    calls.append(operation_model.name)
    raise RuntimeError("blocked by the test: " + operation_model.name)
botocore.endpoint.Endpoint.make_request = record
from tests.support import pipeline_specs as specs
from mlops_loop.training import generate_pipeline_definition
imported = time.perf_counter()
text = generate_pipeline_definition(specs.base_spec())
first = time.perf_counter()
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    handle.write(text)
print(json.dumps({
    "calls": calls,
    "import_module_s": imported - started,
    "first_build_s": first - imported,
    "total_s": first - started,
    "size": len(text),
}))
"""


def _no_network_prefix() -> list[str]:
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n"]
    return []


def _scrubbed_env(tmp_path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO_ROOT),
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }


@pytest.mark.slow
def test_builds_in_a_fresh_process_without_credentials_or_network(tmp_path, built):
    out = tmp_path / "definition.json"
    proc = subprocess.run(
        [*_no_network_prefix(), sys.executable, "-c", _SCRIPT, str(out)],
        cwd=REPO_ROOT,
        env=_scrubbed_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["calls"] == []
    # Byte-identical to the definition generated in this (differently configured) process.
    assert out.read_text(encoding="utf-8") == built.text
    print(
        "\ncold start: import mlops_loop.training {import_module_s:.2f}s, first build incl. SDK import "
        "{first_build_s:.2f}s (total {total_s:.2f}s), size {size}".format(**report)
    )
    assert report["total_s"] < 120


def test_builds_in_process_with_no_credentials_and_a_request_recorder(monkeypatch):
    import botocore.endpoint

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    calls: list[str] = []

    def record(self, operation_model, request_dict):
        calls.append(operation_model.name)
        raise RuntimeError(f"blocked by the test: {operation_model.name}")

    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", record)
    text = generate_pipeline_definition(specs.base_spec(enable_tuning=True, use_spot=False))
    assert json.loads(text)["Steps"]
    assert calls == []
    # The environment is restored: nothing the offline build set leaks into the process.
    assert "AWS_DEFAULT_REGION" not in os.environ
    assert "AWS_ACCESS_KEY_ID" not in os.environ
    assert os.environ["AWS_CONFIG_FILE"] == "/nonexistent"


def test_the_approved_by_default_variant_builds_offline():
    spec = specs.base_spec(default_approval_status="Approved")
    assert json.loads(generate_pipeline_definition(spec))["Steps"]
