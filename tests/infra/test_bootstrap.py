"""``. scripts/bootstrap.sh``, as the README says to run it, leaves the user's shell as it was (issue #13)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_the_main_jobs_set_up_is_part_of_the_full_one_and_a_callers_own_arguments_select_nothing():
    """GIVEN the full set-up done (by the test command) WHEN bootstrap.sh is sourced for the main job
    (``synth``), and by a script whose own positional parameters are pytest options (a sourced script
    sees the caller's) THEN neither installs anything nor refuses."""
    result = _bash(f'. "{BOOTSTRAP}" synth && set -- -k synth && . "{BOOTSTRAP}" && echo done')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert "[bootstrap]" not in result.stderr


def test_the_main_jobs_lock_is_the_closure_of_its_requirements_with_the_full_locks_pins():
    """requirements-synth.lock is what scripts/lock.sh derives: requirements.txt's closure, pins of requirements.lock."""
    derived = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "lock_closure.py"), "requirements.txt", "requirements.lock"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout
    assert derived == (REPO_ROOT / "requirements-synth.lock").read_text()
    full = set((REPO_ROOT / "requirements.lock").read_text().splitlines())
    pins = [line for line in derived.splitlines() if not line.startswith("#")]
    assert pins and set(pins) <= full
    # The main job needs none of the job runtime's engines or the test tools.
    names = {line.split("==")[0].lower() for line in pins}
    assert not names & {"pyspark", "xgboost", "moto", "pytest", "pytest-xdist", "syrupy"}


def test_scripts_write_bytecode_whatever_the_machine_says_and_a_users_shell_keeps_its_setting():
    """GIVEN a machine-wide PYTHONDONTWRITEBYTECODE=1 WHEN a script sources bootstrap.sh THEN its Python may write .pyc
    files, so a module is compiled once instead of in every worker and subprocess; WHEN an interactive shell sources
    it THEN the user's setting stays."""
    probe = f'. "{BOOTSTRAP}" synth && python -c "import sys; print(sys.dont_write_bytecode)"'
    script = _bash(probe, PYTHONDONTWRITEBYTECODE="1")
    assert script.returncode == 0, script.stderr
    assert script.stdout.strip() == "False"
    interactive = subprocess.run(["bash", "--norc", "-i", "-c", probe], capture_output=True, text=True, timeout=300,
                                 env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, cwd="/")
    assert interactive.returncode == 0, interactive.stderr
    assert interactive.stdout.strip() == "True"


def _load_warm_bytecode():
    spec = importlib.util.spec_from_file_location("warm_bytecode", REPO_ROOT / "scripts" / "warm_bytecode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_suite(root: Path) -> Path:
    """A test directory of three parts, each test module importing a module of its own part."""
    tests = root / "tests"
    for part, lines in (("big", 40), ("small", 2), ("middle", 20)):
        (tests / part).mkdir(parents=True)
        (tests / part / f"{part}_helper.py").write_text("VALUE = 1\n" * lines)
        (tests / part / f"test_{part}.py").write_text(f"import {part}_helper\n\n\ndef test_it():\n    assert {part}_helper.VALUE\n")
    (tests / "support").mkdir()
    (tests / "test_top.py").write_text("def test_top():\n    pass\n")
    return tests


def test_the_suite_is_split_into_one_part_per_core_of_about_equal_size(tmp_path):
    """GIVEN test directories of different sizes, a top-level test file and a helpers directory WHEN split for
    two cores THEN each directory and test file is in exactly one part, helpers in none, the largest alone."""
    warm = _load_warm_bytecode()
    tests = _fake_suite(tmp_path)

    parts = warm.parts(tests, 2)

    assert [[entry.name for entry in part] for part in parts] == [["big"], ["middle", "small", "test_top.py"]]
    assert [[e.name for e in p] for p in warm.parts(tests, 8)] == [["big"], ["middle"], ["small"], ["test_top.py"]]


def test_collecting_the_parts_compiles_what_each_test_module_imports_and_one_core_compiles_nothing(tmp_path):
    """GIVEN a test directory whose modules import helpers never compiled WHEN warm_bytecode runs for one core
    THEN nothing is compiled (nothing to split); WHEN it runs for two THEN every helper has its .pyc."""
    tests = _fake_suite(tmp_path)
    helpers = [tests / part / f"{part}_helper.py" for part in ("big", "small", "middle")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, str(REPO_ROOT / "scripts" / "warm_bytecode.py"), "--tests", str(tests), "--cores"]

    subprocess.run([*command, "1"], check=True, env=env, timeout=120)
    assert not any(Path(importlib.util.cache_from_source(str(helper))).exists() for helper in helpers)

    subprocess.run([*command, "2"], check=True, env=env, timeout=120)
    assert all(Path(importlib.util.cache_from_source(str(helper))).exists() for helper in helpers)


# What a fake npm does to install Node and the CDK CLI: the two files the set-up checks for.
NPM_INSTALLS = ("mkdir -p node_modules/.bin && printf '#!/bin/sh\\n' > node_modules/.bin/node "
                "&& cp node_modules/.bin/node node_modules/.bin/cdk && chmod +x node_modules/.bin/*\n")


def _fake_checkout(root: Path, *, compile_status: int = 0, uv_status: int = 0, npm_installs: bool = False,
                   compile_seconds: int = 1) -> Path:
    """A checkout whose set-up must install: bootstrap.sh, a lock the venv does not have, and a venv whose Python and
    uv only pretend (uv exits ``uv_status``; the byte-compiling step sleeps ``compile_seconds``, then leaves
    ``compiled`` and exits ``compile_status``); returns the directory of an npm that fails (or, with ``npm_installs``,
    installs)."""
    (root / "scripts").mkdir()
    (root / "scripts" / "bootstrap.sh").write_text(BOOTSTRAP.read_text())
    (root / "requirements.lock").write_text("uv==0.0.1\n")
    (root / "package.json").write_text("{}\n")
    (root / "package-lock.json").write_text("{}\n")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    scripts = {
        # Stopped, it stops its sleep too: a sleep left behind would hold the caller's output open until it ends.
        bin_dir / "python": (f'case "$*" in *warm_bytecode*) trap \'kill $pause; exit 143\' TERM; '
                             f'sleep {compile_seconds} > /dev/null 2>&1 & pause=$!; wait $pause; echo yes > "{root}/compiled"; '
                             f'exit {compile_status};; esac\n'),
        bin_dir / "uv": f'echo "uv: cannot reach the index" >&2; exit {uv_status}\n' if uv_status else "exit 0\n",
        root / "tools" / "npm": NPM_INSTALLS if npm_installs else 'echo "npm: no registry" >&2; exit 1\n',
    }
    for path, body in scripts.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    return root / "tools"


def test_a_failed_npm_install_fails_the_set_up_and_stops_the_byte_compiling_it_ran_beside(tmp_path):
    """GIVEN a set-up that byte-compiles in the background while npm installs Node WHEN npm fails THEN the set-up
    fails and stops the compiling: nothing is left running, to write after the caller has its answer."""
    tools = _fake_checkout(tmp_path, compile_seconds=60)  # however slow the machine, it is still compiling
    # As soon as the set-up has its answer: any process still compiling in the checkout (found in /proc: a slim
    # machine may have no ps) is reported, then stopped.
    still_compiling = ('for p in /proc/[0-9]*; do '
                       'if grep -qa warm_bytecode "$p/cmdline" 2>/dev/null '
                       f'&& [ "$(readlink "$p/cwd")" = "{os.path.realpath(tmp_path)}" ]; then echo "still compiling"; '
                       'kill -9 "${p#/proc/}"; fi; '
                       'done')
    result = _bash(f'bash "{tmp_path}/scripts/bootstrap.sh"; echo "rc=$?"; {still_compiling}; ls "{tmp_path}"',
                   PATH=f"{tools}{os.pathsep}{os.environ['PATH']}", PYTHON=sys.executable)
    lines = result.stdout.splitlines()
    assert "rc=1" in lines and "[bootstrap] byte-compiling what the tests import" in lines, result.stderr
    after = lines[lines.index("rc=1"):]
    assert "still compiling" not in after and "compiled" not in after, "the compiling went on after the set-up failed"
    assert "npm: no registry" in result.stderr and "[bootstrap] set-up failed (see above)" in result.stderr


def test_a_failed_byte_compiling_only_costs_its_speed_up_and_is_reported_with_its_status(tmp_path):
    """GIVEN the background byte-compiling exits 3 WHEN npm installs Node THEN the set-up succeeds, and says once,
    with the status, that the tests will compile what they import."""
    tools = _fake_checkout(tmp_path, compile_status=3, npm_installs=True)
    result = _bash(f'bash "{tmp_path}/scripts/bootstrap.sh"; echo "rc=$?"',
                   PATH=f"{tools}{os.pathsep}{os.environ['PATH']}", PYTHON=sys.executable)
    assert result.stdout.splitlines()[-1] == "rc=0", result.stderr
    assert result.stderr.count("[bootstrap] byte-compiling failed (exit 3, its output is above); the tests compile "
                               "what they import") == 1


def test_a_failed_install_fails_the_set_up_at_once_and_is_not_recorded_as_installed(tmp_path):
    """GIVEN uv failing to install the lock WHEN the set-up runs (sourced, as the scripts do, or executed) THEN it
    stops there, fails, and leaves the venv unmarked, so the next run installs again (errexit holds although the
    set-up's status is tested by its caller)."""
    tools = _fake_checkout(tmp_path, uv_status=2)
    env = {"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", "PYTHON": sys.executable}
    sourced = _bash(f'. "{tmp_path}/scripts/bootstrap.sh"; echo "rc=$?"', **env)
    executed = _bash(f'bash "{tmp_path}/scripts/bootstrap.sh"; echo "rc=$?"', **env)
    for result in (sourced, executed):
        assert result.stdout.splitlines()[-1] == "rc=1", result.stderr
        assert "uv: cannot reach the index" in result.stderr and "npm" not in result.stderr
        assert "byte-compiling" not in result.stdout
    assert not (tmp_path / ".venv" / ".lock-hash").exists()


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock (util-linux) is not installed: set-ups do not take turns")
def test_two_set_ups_of_one_checkout_take_turns_and_the_second_finds_the_first_ones_install(tmp_path):
    """GIVEN a fresh checkout WHEN two set-ups start at once (test.sh and synth.sh in two terminals) THEN one installs
    while the other waits, which then finds everything installed: the lock is installed once, Node once."""
    tools = _fake_checkout(tmp_path)
    log = tmp_path / "installs.log"
    (tmp_path / ".venv" / "bin" / "uv").write_text(f'#!/bin/sh\necho "uv start" >> "{log}"; sleep 1; echo "uv end" >> "{log}"\n')
    (tools / "npm").write_text(f'#!/bin/sh\necho npm >> "{log}"\n{NPM_INSTALLS}')
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", "PYTHON": sys.executable}
    runs = [subprocess.Popen(["bash", str(tmp_path / "scripts" / "bootstrap.sh")], env=env, cwd="/",
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    assert [run.wait(timeout=120) for run in runs] == [0, 0], [run.stderr.read() for run in runs]
    assert log.read_text().splitlines() == ["uv start", "uv end", "npm"]


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock (util-linux) is not installed: set-ups do not take turns")
def test_a_set_up_with_nothing_to_install_takes_no_lock(tmp_path):
    """GIVEN this checkout set up, and another set-up holding its lock (an install under way) WHEN a script sources
    bootstrap.sh THEN it goes on at once, saying nothing: only set-ups that install take turns (so test workers
    sourcing it side by side never wait for each other)."""
    import fcntl

    lock = REPO_ROOT / ".cache" / "bootstrap.lock"
    lock.parent.mkdir(exist_ok=True)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        # A set-up that waited for the lock would never return while it is held here.
        result = subprocess.run(["bash", "-c", f'. "{BOOTSTRAP}" synth && echo done'], capture_output=True, text=True,
                                timeout=60, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done" and "[bootstrap]" not in result.stderr


# A uv that installs nothing and logs each call: its arguments, then the requirements of its -r file.
LOGGING_UV = ('echo "call $*" >> "$UV_LOG"; prev=; for a in "$@"; do '
              'if [ "$prev" = "-r" ]; then echo "requirements $(tr "\\n" " " < "$a")" >> "$UV_LOG"; fi; prev=$a; done\n')


def _uv_calls(log: Path) -> list:
    """``[(arguments, [requirements])]`` of each logged uv call."""
    calls, lines = [], log.read_text().splitlines()
    for line, following in zip(lines, lines[1:] + [""]):
        if line.startswith("call "):
            calls.append((line[5:], following[len("requirements "):].split() if following.startswith("requirements ") else []))
    return calls


def test_torch_alone_comes_from_pytorchs_index_and_every_other_pin_from_the_default_index_only(tmp_path):
    """GIVEN a lock pinning torch's CPU build, with no wheel of it on the machine WHEN the set-up installs THEN torch is
    installed on its own from PyTorch's CPU index, and the rest of the lock from the default index with no other:
    an extra index that every package may come from (uv's ``unsafe-best-match``) lets a package of the same name and
    version published there replace the one the lock was checked with (dependency confusion), and the lock pins
    versions, not hashes."""
    tools = _fake_checkout(tmp_path, npm_installs=True)
    (tmp_path / "requirements.lock").write_text("numpy==2.4.6\ntorch==2.13.0+cpu\nuv==0.0.1\n")
    uv = tmp_path / ".venv" / "bin" / "uv"
    uv.write_text("#!/bin/sh\n" + LOGGING_UV)
    (tmp_path / "no-wheels").mkdir()
    log = tmp_path / "uv.log"
    result = _bash(f'bash "{tmp_path}/scripts/bootstrap.sh"; echo "rc=$?"', PATH=f"{tools}{os.pathsep}{os.environ['PATH']}",
                   PYTHON=sys.executable, MLOPS_LOOP_WHEELS=str(tmp_path / "no-wheels"), UV_LOG=str(log))
    assert result.stdout.splitlines()[-1] == "rc=0", result.stderr
    calls = _uv_calls(log)
    assert not any("unsafe-best-match" in arguments or "--extra-index-url" in arguments for arguments, _ in calls), calls
    torch = [(arguments, pins) for arguments, pins in calls if "torch==2.13.0+cpu" in pins]
    rest = [(arguments, pins) for arguments, pins in calls if "numpy==2.4.6" in pins]
    assert [pins for _, pins in torch] == [["torch==2.13.0+cpu"]], calls
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch[0][0]
    assert [pins for _, pins in rest] == [["numpy==2.4.6", "uv==0.0.1"]] and "--index-url" not in rest[0][0], calls


def test_a_torch_wheel_on_the_machine_is_installed_with_the_lock_and_no_other_index(tmp_path):
    """GIVEN the lock's torch wheel in the machine's wheel directory WHEN the set-up installs THEN one call installs the
    whole lock, finding torch there and nothing on any index but the default one."""
    tools = _fake_checkout(tmp_path, npm_installs=True)
    (tmp_path / "requirements.lock").write_text("numpy==2.4.6\ntorch==2.13.0+cpu\nuv==0.0.1\n")
    (tmp_path / ".venv" / "bin" / "uv").write_text("#!/bin/sh\n" + LOGGING_UV)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    log = tmp_path / "uv.log"
    result = _bash(f'bash "{tmp_path}/scripts/bootstrap.sh"; echo "rc=$?"', PATH=f"{tools}{os.pathsep}{os.environ['PATH']}",
                   PYTHON=sys.executable, MLOPS_LOOP_WHEELS=str(wheels), UV_LOG=str(log))
    assert result.stdout.splitlines()[-1] == "rc=0", result.stderr
    [(arguments, pins)] = _uv_calls(log)
    assert pins == ["numpy==2.4.6", "torch==2.13.0+cpu", "uv==0.0.1"] and f"--find-links {wheels}" in arguments
    assert "index" not in arguments
