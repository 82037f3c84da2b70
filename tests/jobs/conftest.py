"""Fixtures for the job-code tests: one local Spark session for the whole run.

Spark tests are marked ``@pytest.mark.spark`` (``-m "not spark"`` runs the fast
pandas-only subset). The session is ``local[1]`` with two shuffle partitions and
no UI: test data is tiny, and Spark's defaults (200 partitions) only add overhead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from tests.support import datasets as samples

REPO_ROOT = Path(__file__).resolve().parents[2]

# `pipeline_code` must import from the repo root however pytest was started, in this
# process and in Spark's Python workers (which run mapInPandas functions).
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spark: test needs the local Spark session (JVM); slower")


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """A session-wide local[1] SparkSession pinned to UTC."""
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("mlops-loop-job-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={warehouse}")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def curated_churn(spark, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """GIVEN a raw lake of generated customer_churn CSV (with bad and duplicate rows)
    WHEN the Glue curate job runs locally on it
    THEN its outputs are shared by the job and ingestion tests (one Spark run)."""
    from pipeline_code.etl import glue_curate_job
    from pipeline_code.sample_data.generate import generate_batch, write_raw

    root = tmp_path_factory.mktemp("lake")
    batch = generate_batch(samples.CUSTOMER_CHURN, 1200, seed=11, days=10, bad_record_rate=0.02, duplicate_rate=0.01)
    write_raw(batch.frame, str(root / "raw"), samples.CUSTOMER_CHURN, "2026-01-11")
    paths = {
        "raw_path": str(root / "raw" / "customer_churn"),
        "curated_path": str(root / "curated" / "customer_churn"),
        "quarantine_path": str(root / "quarantine" / "customer_churn"),
        "summary_path": str(root / "summaries" / "curate.json"),
    }
    argv = ["--dataset", samples.declaration_file(root, samples.CUSTOMER_CHURN), "--run_id", "run-1"]
    for name, value in paths.items():
        argv += [f"--{name}", value]
    exit_code = glue_curate_job.main(argv)
    return {"exit_code": exit_code, "batch": batch, "root": root, **paths}
