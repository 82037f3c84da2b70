"""The interpreter tuning of the processes that build the app (mlops_loop/interpreter.py)."""

from __future__ import annotations

import gc
import weakref

from mlops_loop import interpreter


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
