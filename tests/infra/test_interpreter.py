"""The interpreter tuning of the processes that build the app (mlops_loop/interpreter.py)."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref

from mlops_loop import interpreter
from tests.support.paths import REPO_ROOT


def test_a_test_process_collects_garbage_at_the_apps_thresholds_and_still_collects():
    """GIVEN a test process (tests/conftest.py, as app.py does) THEN its collector runs at the app's thresholds, on."""
    assert gc.get_threshold() == interpreter.THRESHOLDS
    assert gc.isenabled()


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


def test_a_finished_process_runs_its_exit_handlers_and_flushes_but_skips_the_teardown():
    """GIVEN a process with an exit handler, unflushed output and an object only the interpreter's teardown
    would free WHEN it ends with exit_without_teardown THEN the handler ran, the output arrived, the status
    is 0, and the object was never freed (the teardown, which would print 'torn down', was skipped)."""
    program = (
        "import atexit, sys\n"
        "from mlops_loop.interpreter import exit_without_teardown\n"
        "class Kept:\n"
        "    def __del__(self):\n"
        "        print('torn down', flush=True)\n"
        "kept = Kept()\n"
        "atexit.register(print, 'exit handler ran')\n"
        "sys.stdout.write('no newline, not flushed')\n"
        "sys.stderr.write('on stderr')\n"
        "exit_without_teardown()\n"
        "print('not reached')\n"
    )
    # A pipe, not a terminal: stdout is block-buffered, as under the CDK CLI.
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=60, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "no newline, not flushedexit handler ran\n", "on stderr")


def test_a_process_whose_other_thread_still_runs_exits_the_normal_way_and_waits_for_it():
    """GIVEN a non-daemon thread still working WHEN the main thread calls exit_without_teardown THEN the process
    waits for the thread (its output arrives) and exits 0, as a normal exit does."""
    program = (
        "import threading, time\n"
        "from mlops_loop.interpreter import exit_without_teardown\n"
        "threading.Thread(target=lambda: (time.sleep(0.2), print('thread finished'))).start()\n"
        "exit_without_teardown()\n"
    )
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=60, env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "thread finished\n", "")
