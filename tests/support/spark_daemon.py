"""The Python daemon of the test session's Spark (``spark.python.daemon.module``, tests/conftest.py): pyspark's own
daemon, run with pyspark imported from the installed package instead of the archives Spark puts first on its Python
workers' path.

Spark starts its Python workers with ``pyspark.zip``, the py4j zip and the spark-core jar ahead of the installed
package on ``sys.path``. Before every task a worker calls ``importlib.invalidate_caches()``, which makes each
``zipimport`` importer of those archives read the archive's whole directory again (spark-core's holds 5,000
entries): about 60 ms of every task, half of what a worker spends on a test's small data. And the zip holds no
byte code, so each daemon compiled pyspark from source. The installed package is the same pyspark (one wheel),
the one the driver runs; no job code is affected (the archives hold no other Python module).
"""

from __future__ import annotations

import os
import sys


def _spark_archive(entry: str) -> bool:
    name = os.path.basename(entry)
    return name.endswith(".jar") or name == "pyspark.zip" or (name.startswith("py4j-") and name.endswith(".zip"))


sys.path[:] = [entry for entry in sys.path if not _spark_archive(entry)]
for cached in [entry for entry in sys.path_importer_cache if _spark_archive(entry)]:
    del sys.path_importer_cache[cached]  # the interpreter's start looked in them already

from pyspark import daemon  # noqa: E402  (after the path is cleaned: the installed package)

if __name__ == "__main__":
    daemon.manager()
