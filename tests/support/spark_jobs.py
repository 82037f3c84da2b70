"""The Spark jobs a block of test code runs: each is one scheduling round in Glue (issue #16), so tests pin them."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, List


@contextlib.contextmanager
def spark_jobs(spark: Any, group: str) -> Iterator[List[int]]:
    """The ids of the Spark jobs run within the block (a list filled when it ends), under job group ``group``."""
    context, jobs = spark.sparkContext, []
    context.setJobGroup(group, group)
    try:
        yield jobs
    finally:
        jobs.extend(context.statusTracker().getJobIdsForGroup(group))
        context.setLocalProperty("spark.jobGroup.id", None)
        context.setLocalProperty("spark.job.description", None)
