"""The data pipeline's sections of an environment: the data lake (``data_lake``), Glue (``glue``) and the Feature Store
(``feature_store``)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from ._strict import StrictModel
from .schedules import check_cron_or_off


class DataLakeConfig(StrictModel):
    """Retention of the S3 data lake. Defaults: raw data one year (and with it the copies of raw rows: the curate
    job's quarantine and the feature job's failed puts); inference traffic (capture, async, batch) 400 days
    (a year of monitoring windows to re-run or audit); ground-truth labels and monitor reports (with the drift
    monitor's prediction records, which late labels join: label_delay_problems) kept; a
    pipeline run's working data 400 days (an audit year plus slack); old object versions 90 days, except the curated
    data and feature snapshots rewritten each night, whose old versions are kept 3 days (a weekend to roll back a bad
    run; fewer when noncurrent_version_expiration_days is shorter) - null in a ``*_days`` field means never expire (for the noncurrent fields: keep every old version)."""

    raw_expiration_days: Optional[int] = Field(default=365, ge=1, le=3650)
    curated_infrequent_access_days: Optional[int] = Field(default=90, ge=30, le=3650)
    noncurrent_version_expiration_days: Optional[int] = Field(default=90, ge=1, le=3650)
    # The nightly runs rewrite curated dates and feature snapshots under new file names: each night's replaced
    # files become old versions, so the stored bytes are about 1 + this many times the data (null: as long as
    # noncurrent_version_expiration_days, i.e. 91 times by default).
    rewritten_noncurrent_days: Optional[int] = Field(default=3, ge=1, le=3650)
    access_log_expiration_days: int = Field(default=365, ge=1, le=3650)
    inference_expiration_days: Optional[int] = Field(default=400, ge=30, le=3650)
    inference_records_expiration_days: Optional[int] = Field(default=None, ge=30, le=3650)
    # At least a month: a run's later steps read its prepared sets (a training job may run a week).
    pipeline_work_expiration_days: Optional[int] = Field(default=400, ge=30, le=3650)

    @model_validator(mode="before")
    @classmethod
    def _rewritten_default(cls, data: Any) -> Any:
        # The 3-day default never exceeds a shorter noncurrent expiry the config chose (1 or 2 days): it follows it.
        if isinstance(data, dict) and "rewritten_noncurrent_days" not in data:
            noncurrent = data.get("noncurrent_version_expiration_days")
            default = cls.model_fields["rewritten_noncurrent_days"].default
            if type(noncurrent) is int and 1 <= noncurrent < default:
                return {**data, "rewritten_noncurrent_days": noncurrent}
        return data

    @model_validator(mode="after")
    def _rewritten_within_noncurrent(self) -> "DataLakeConfig":
        rewritten, noncurrent = self.rewritten_noncurrent_days, self.noncurrent_version_expiration_days
        if rewritten is not None and noncurrent is not None and rewritten > noncurrent:
            raise ValueError(f"rewritten_noncurrent_days: {rewritten} is longer than noncurrent_version_expiration_days "
                             f"({noncurrent}), which already expires every old version sooner; allowed: at most "
                             f"{noncurrent}, or null for the same")
        return self


class GlueConfig(StrictModel):
    """The Spark ETL and feature jobs. Defaults: 2 G.1X workers, nightly at 02:00 UTC."""

    worker_type: Literal["G.1X", "G.2X", "G.4X", "G.8X"] = "G.1X"
    number_of_workers: int = Field(default=2, ge=2, le=299)
    timeout_minutes: int = Field(default=120, ge=1, le=2880)
    # null: no schedule (the workflow runs when started: aws glue start-workflow-run).
    etl_schedule: Optional[str] = "cron(0 2 * * ? *)"
    max_quarantine_ratio: float = Field(default=0.05, ge=0.0, le=1.0)

    # A Glue trigger takes cron only.
    _cron = field_validator("etl_schedule", mode="before")(check_cron_or_off)


class FeatureStoreConfig(StrictModel):
    """Feature Store settings. Default: online store on, records expire after 30 days."""

    online_store: bool = True
    online_ttl_days: Optional[int] = Field(default=30, ge=1, le=3650)
