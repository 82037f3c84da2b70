"""The interpreter tuning of the processes that build the app (mlops_loop/interpreter.py)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref

from mlops_loop import interpreter
from tests.support.paths import REPO_ROOT


def test_a_test_process_collects_garbage_at_the_apps_thresholds_and_still_collects():
    """GIVEN a test process (tests/conftest.py, as app.py does) THEN its collector runs at the app's thresholds, on."""
    assert gc.get_threshold() == interpreter.THRESHOLDS
    assert gc.isenabled()


def test_a_test_process_collects_garbage_once_at_its_end(pytestconfig):
    """GIVEN a test process (tests/conftest.py) THEN pytest's end-of-session collections, which report errors raised
    in __del__, are one, not five (a renamed private key fails this import, not silently the setting)."""
    from _pytest.unraisableexception import gc_collect_iterations_key

    assert pytestconfig.stash[gc_collect_iterations_key] == 1


def test_the_thresholds_keep_collecting_cycles():
    """GIVEN the app's thresholds WHEN more new containers than the youngest generation's threshold form
    cycles THEN the collector runs by itself and frees them."""
    gc.collect()
    before = gc.get_stats()[0]["collections"]

    class Node:
        def __init__(self):
            self.me = self

    first = weakref.ref(Node())
    for _ in range(interpreter.THRESHOLDS[0] * 2):
        Node()

    assert gc.get_stats()[0]["collections"] > before
    assert first() is None


def _outcome(*lines: str) -> tuple[int, str, str]:
    """Status, stdout and stderr of ``lines`` run in a fresh interpreter that has ``exit_without_teardown``; its
    output goes to pipes, not a terminal, so stdout is block-buffered, as under the CDK CLI."""
    program = "\n".join(["from mlops_loop.interpreter import exit_without_teardown", *lines])
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    return result.returncode, result.stdout, result.stderr


def test_a_finished_process_runs_its_exit_handlers_and_flushes_but_skips_the_teardown():
    """GIVEN a process with an exit handler, unflushed output and an object only the interpreter's teardown
    would free WHEN it ends with exit_without_teardown THEN the handler ran, the output arrived, the status
    is 0, and the object was never freed (the teardown, which would print 'torn down', was skipped)."""
    assert _outcome(
        "import atexit, sys",
        "class Kept:",
        "    def __del__(self):",
        "        print('torn down', flush=True)",
        "kept = Kept()",
        "atexit.register(print, 'exit handler ran')",
        "sys.stdout.write('no newline, not flushed')",
        "sys.stderr.write('on stderr')",
        "exit_without_teardown()",
        "print('not reached')",
    ) == (0, "no newline, not flushedexit handler ran\n", "on stderr")


def test_a_process_that_skips_its_teardown_at_exit_runs_the_later_handlers_and_flushes():
    """GIVEN a process that asked to skip its teardown at exit, with exit handlers registered before and after,
    unflushed output and an object only the teardown would free WHEN it ends THEN the later handler ran, the
    output arrived, the status is 0, and neither the earlier handler nor the teardown ran."""
    assert _outcome(
        "import atexit, sys",
        "from mlops_loop.interpreter import skip_teardown_at_exit",
        "class Kept:",
        "    def __del__(self):",
        "        print('torn down', flush=True)",
        "kept = Kept()",
        "atexit.register(print, 'earlier handler ran')",
        "skip_teardown_at_exit()",
        "atexit.register(print, 'later handler ran')",
        "sys.stdout.write('not flushed; ')",
        "sys.exit(3)",
    ) == (0, "not flushed; later handler ran\n", "")


def test_a_pytest_started_inside_a_test_worker_keeps_its_exit_status(tmp_path):
    """GIVEN a pytest run by a test of a pytest-xdist worker (it inherits the worker's environment) WHEN its one
    test fails THEN it exits 1: only xdist's own workers, which report through their channel, skip the teardown."""
    (tmp_path / "test_fails.py").write_text("def test_fails():\n    assert False\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "-p",
                             "tests.conftest", str(tmp_path / "test_fails.py")], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTEST_XDIST_WORKER": "gw9"})
    assert result.returncode == 1, result.stdout[-2000:]


def test_a_process_whose_other_thread_still_runs_exits_the_normal_way_and_waits_for_it():
    """GIVEN a non-daemon thread still working WHEN the main thread calls exit_without_teardown THEN the process
    waits for the thread (its output arrives) and exits 0, as a normal exit does."""
    assert _outcome(
        "import threading, time",
        "threading.Thread(target=lambda: (time.sleep(0.2), print('thread finished'))).start()",
        "exit_without_teardown()",
    ) == (0, "thread finished\n", "")
