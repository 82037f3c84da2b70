"""Fixtures for the job-code tests (the Spark session is the suite's, tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.support import datasets as samples


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
