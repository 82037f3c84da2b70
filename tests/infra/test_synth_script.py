"""scripts/synth.sh, the main job, around the CDK CLI: what a failed or a successful synth leaves in cdk.out."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from mlops_loop.app_builder import REPO_ROOT

# A CDK CLI that writes a manifest naming the run into its --output directory, or fails as a config error does.
FAKE_CDK = """#!/bin/sh
out=""
while [ $# -gt 0 ]; do [ "$1" = "--output" ] && out="$2"; shift; done
[ -n "$FAIL" ] && { echo "mlops-loop: environment 'prod': field 'training.instance_type': a config error" >&2; exit 1; }
mkdir -p "$out" && echo "$RUN" > "$out/manifest.json"
"""


def _checkout(root: Path) -> Path:
    """A checkout set up already (so bootstrap installs nothing), whose cdk is :data:`FAKE_CDK` and whose tools
    (python) do nothing."""
    (root / "scripts").mkdir()
    for name in ("synth.sh", "bootstrap.sh"):
        (root / "scripts" / name).write_text((REPO_ROOT / "scripts" / name).read_text())
    for name in ("requirements.lock", "requirements-synth.lock", "package.json", "package-lock.json"):
        (root / name).write_text(f"{name}\n")
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / "node_modules" / ".bin").mkdir(parents=True)
    (root / ".venv" / ".lock-hash").write_text(hashlib.sha256(b"requirements-synth.lock\n").hexdigest() + "\n")
    (root / "node_modules" / ".lock-hash").write_text(
        hashlib.sha256(b"package.json\npackage-lock.json\n").hexdigest() + "\n")
    for path, body in ((root / ".venv" / "bin" / "python", "#!/bin/sh\nexit 0\n"),
                       (root / "node_modules" / ".bin" / "node", "#!/bin/sh\nexit 0\n"),
                       (root / "node_modules" / ".bin" / "cdk", FAKE_CDK)):
        path.write_text(body)
        path.chmod(0o755)
    return root


def _synth(root: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(root / "scripts" / "synth.sh")], cwd=root, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHON": "python3", **env})


def test_a_failed_synth_keeps_the_last_good_assembly_and_a_successful_one_replaces_it(tmp_path):
    # GIVEN a checkout whose last synth succeeded, with a file a removed stack left
    root = _checkout(tmp_path)
    assert _synth(root, RUN="first").returncode == 0
    (root / "cdk.out" / "RemovedStack.template.json").write_text("{}")

    # WHEN synth fails on a config error THEN it says so, and cdk.out is the last good assembly still
    failed = _synth(root, RUN="second", FAIL="1")
    assert failed.returncode == 1 and "a config error" in failed.stderr
    assert (root / "cdk.out" / "manifest.json").read_text() == "first\n"
    assert not (root / "cdk.next.out").exists()

    # WHEN it succeeds again THEN cdk.out is that synth's alone
    assert _synth(root, RUN="third").returncode == 0
    assert sorted(p.name for p in (root / "cdk.out").iterdir()) == ["manifest.json"]
    assert (root / "cdk.out" / "manifest.json").read_text() == "third\n"
