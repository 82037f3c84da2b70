"""``. scripts/bootstrap.sh``, as the README says to run it, leaves the user's shell as it was (issue #13)."""

from __future__ import annotations

import os
import subprocess

from mlops_loop.app_builder import REPO_ROOT

BOOTSTRAP = REPO_ROOT / "scripts" / "bootstrap.sh"


def _bash(script: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env}, cwd="/")


def test_sourcing_keeps_the_shell_options_and_directory_and_puts_the_toolchain_first():
    """GIVEN a shell with default options in another directory WHEN it sources bootstrap.sh (set-up already done
    by the test command) THEN errexit/pipefail stay off, a failing command does not close it, the directory is
    unchanged and the venv and Node 22 come first on PATH."""
    result = _bash(f'. "{BOOTSTRAP}"; echo "opts=$-"; set -o | grep pipefail; false; echo "alive cwd=$PWD"; '
                   'command -v python; command -v node')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "e" not in lines[0].removeprefix("opts=")
    assert lines[1].split() == ["pipefail", "off"]
    assert lines[2] == "alive cwd=/"
    assert lines[3] == str(REPO_ROOT / ".venv" / "bin" / "python")
    assert lines[4] == str(REPO_ROOT / "node_modules" / ".bin" / "node")


def test_a_failed_set_up_returns_an_error_instead_of_closing_the_shell():
    """GIVEN a Python that cannot run (PYTHON=false) WHEN bootstrap.sh is sourced THEN it says what failed and
    returns 1, and the shell goes on; executed directly it exits 1."""
    sourced = _bash(f'. "{BOOTSTRAP}"; echo "rc=$? alive"', PYTHON="false")
    assert sourced.stdout.strip() == "rc=1 alive"
    assert "[bootstrap] set-up failed (see above)" in sourced.stderr
    executed = _bash(f'bash "{BOOTSTRAP}"', PYTHON="false")
    assert executed.returncode == 1
