"""How a process that builds the app tunes the Python interpreter: the garbage collector runs less often.

Used by ``app.py`` (what ``cdk synth`` runs) and by every test process. Standard library only.
"""

from __future__ import annotations

import gc

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
