"""How a process that builds the app tunes the Python interpreter: the garbage collector runs less often,
and a finished synth (or test worker, or SDK helper) exits without tearing the interpreter down.

Used by ``app.py`` (what ``cdk synth`` runs), by its SDK helper process (``mlops_loop.training.sdk_helper``: both)
and by every test process (the collector; pytest-xdist's workers exit without teardown too). Standard library only.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from typing import NoReturn

# CPython collects its youngest generation every 700 new container objects, a default sized for small heaps.
# Building the app makes hundreds of thousands of short-lived containers (jsii's proxies and messages; pandas,
# moto and pytest in the tests) and almost no reference cycles: a synth ran 537 collections (0.16 s of 4.5 s)
# to free 2,400 objects, and the two test workers spent 21 s of CPU collecting. At 50,000 (and a full
# collection every 20 x 20 young ones) a synth takes 6 collections (0.05 s) and the test workers 5 s, with
# the same peak memory: what is garbage is still freed by reference counting at once.
THRESHOLDS = (50_000, 20, 20)


def collect_garbage_less_often() -> None:
    """Set the collector's thresholds to :data:`THRESHOLDS` for this process (it stays on)."""
    gc.set_threshold(*THRESHOLDS)


def exit_without_teardown() -> NoReturn:
    """End a process that has done its work with status 0: run its exit handlers, flush stdout and stderr,
    and skip the interpreter's teardown.

    The exit handlers do what matters at exit: jsii's stops the CDK's Node process and deletes the runtime
    it unpacked, ``mlops_loop.packaging`` deletes the staging directory, logging flushes its handlers. What
    is skipped is a final collection and freeing every module and object one by one (the CDK's generated
    bindings are most of them): 0.2-0.3 s of each synth, for memory the operating system takes back anyway.
    A process with another non-daemon thread still running exits the normal way instead, which waits for it.
    """
    if any(thread.is_alive() and not thread.daemon for thread in threading.enumerate()
           if thread is not threading.main_thread()):
        sys.exit(0)
    # The interpreter itself runs these at exit; the atexit module has no public way to run them earlier.
    atexit._run_exitfuncs()
    _flush_and_exit()


def skip_teardown_at_exit() -> None:
    """When this process exits, once the exit handlers registered after this call have run, flush stdout and
    stderr and end with status 0, skipping the handlers registered before it and the interpreter's teardown.

    For a process whose exit status and last handlers say nothing its parent reads: pytest-xdist's workers,
    which report through their channel and whose teardown (a final collection and freeing every module of a
    heap that holds the CDK, pandas and Spark's bridge) took 2.4 s at the end of every test run. The handlers
    that matter are registered later (jsii's, the staging directory's, the SDK helper's) and still run.
    """

    atexit.register(_flush_and_exit)


def _flush_and_exit() -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os._exit(0)
