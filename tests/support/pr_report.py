"""``scripts/pr-report.sh`` with every sub-command replaced by a fake that records its arguments."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.paths import REPO_ROOT


PR_REPORT = REPO_ROOT / "scripts" / "pr-report.sh"


FAKE_DIFF = r"""
printf '%s\n' "$@" > "$CALLS/diff.args"
if [ -n "${FAKE_DIFF_FAIL:-}" ]; then
  for i in $(seq 1 50); do echo "diff progress $i"; done
  echo "error: base ref does not synthesize: boom" >&2
  exit 2
fi
while [ "$#" -gt 0 ]; do
  case "$1" in --output) out="$2"; shift ;; --base-out) base_out="$2"; shift ;; esac
  shift
done
mkdir -p "$base_out" && echo '{}' > "$base_out/manifest.json"
[ -n "${FAKE_DIFF_EMPTY:-}" ] || printf '## Changes\n\n| env | change |\n|---|---|\n| dev | InstanceType modified |\n' > "$out"
"""


FAKE_SUMMARY = r"""
printf '%s\n' "$@" > "$CALLS/summary.args"
echo "cdk-nag (AwsSolutions + NIST 800-53 R5): 0 unacknowledged finding(s)"
if [ -n "${FAKE_SUMMARY_FAIL:-}" ]; then echo "cfn-lint: 1 error(s) E3002 summary-finding" ; exit 1; fi
echo "cfn-lint: 0 error(s), 0 warning(s), 0 informational"
"""


FAKE_COST = r"""
printf '%s\n' "$@" > "$CALLS/cost.args"
if [ -n "${FAKE_COST_FAIL:-}" ]; then echo "cost_floor: --base-assembly: not a cloud assembly" >&2; exit 2; fi
printf '# Cost floor\n\n- **prod**: floor +$146.00/month\n'
"""


FAKE_STAMP = r"""
printf '%s\n' "$@" > "$CALLS/stamp.args"
if [ -n "${FAKE_STALE:-}" ]; then echo "source-stamp: $1 was synthesized from 1a2b3c4, the tree is now 5d6e7f8" >&2; exit 1; fi
"""


FAKE_SYNTH = r"""
echo synth > "$CALLS/synth.called"
if [ -n "${FAKE_SYNTH_FAIL:-}" ]; then echo "synth-error: AwsSolutions-S1 unacknowledged" >&2; exit 1; fi
mkdir -p "$FAKE_ASSEMBLY" && echo '{}' > "$FAKE_ASSEMBLY/manifest.json"
"""


def fake_report_env(tmp_path: Path) -> dict[str, str]:
    """Environment for pr-report.sh with every sub-command replaced by a fake that records its args."""
    calls = tmp_path / "calls"
    calls.mkdir()
    assembly = tmp_path / "cdk.out"
    assembly.mkdir()
    (assembly / "manifest.json").write_text("{}")
    env = {**os.environ, "CALLS": str(calls), "FAKE_ASSEMBLY": str(assembly), "MLOPS_ASSEMBLY": str(assembly)}
    fakes = {"DIFF": FAKE_DIFF, "SUMMARY": FAKE_SUMMARY, "COST": FAKE_COST, "SYNTH": FAKE_SYNTH, "STAMP": FAKE_STAMP}
    for name, body in fakes.items():
        fake = tmp_path / f"fake_{name.lower()}.sh"
        fake.write_text("set -eu\n" + body)
        env[f"MLOPS_{name}_CMD"] = f"bash {fake}"
    return env


def run_report(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, str]:
    out = tmp_path / "report.md"
    argv = list(args) if args else ["HEAD", str(out)]
    proc = subprocess.run(["bash", str(PR_REPORT), *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return proc, (out.read_text() if out.exists() else "")


SECTIONS = ("## Template diff against `HEAD`", "## cdk-nag and cfn-lint", "## Always-on monthly cost floor")
