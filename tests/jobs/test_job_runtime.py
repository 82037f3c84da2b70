"""Job plumbing: Glue/local argument parsing, the Glue code path (with fake awsglue modules), S3 output."""

from __future__ import annotations

import argparse
import json
import sys
import types

import boto3
import pytest
from moto import mock_aws

from pipeline_code import job_runtime
from pipeline_code.job_runtime import Arg, join_path, parse_job_args, split_s3_uri, unit_fraction, write_json
from pipeline_code.sample_data.generate import generate_batch, write_raw
from tests.support.datasets import CREDIT_RISK, CUSTOMER_CHURN, declaration_file
from tests.support.credentials import moto_credentials

SPECS = (
    Arg("dataset", "dataset", convert=job_runtime.dataset_declaration),
    Arg("raw_path", "raw"),
    Arg("summary_path", "summary", required=False),
    Arg("max_quarantine_ratio", "ratio", required=False, default=0.05, convert=unit_fraction),
)


@pytest.fixture
def fake_glue(monkeypatch):
    """Installs minimal stand-ins for awsglue.utils/context/job, backed by the active Spark session.

    ``getResolvedOptions`` behaves like Glue's: every requested name is required,
    unknown arguments (Glue adds many) are ignored.
    """
    calls = {"init": [], "commit": 0}

    def get_resolved_options(args, options):
        parser = argparse.ArgumentParser()
        for option in options:
            parser.add_argument(f"--{option}", required=True)
        parsed, _unknown = parser.parse_known_args(args[1:])
        return vars(parsed)

    class GlueContext:
        def __init__(self, spark_context):
            from pyspark.sql import SparkSession

            self.spark_session = SparkSession.getActiveSession()

    class Job:
        def __init__(self, glue_context):
            self.glue_context = glue_context

        def init(self, name, args):
            calls["init"].append((name, dict(args)))

        def commit(self):
            calls["commit"] += 1

    modules = {
        "awsglue": types.ModuleType("awsglue"),
        "awsglue.utils": types.SimpleNamespace(getResolvedOptions=get_resolved_options),
        "awsglue.context": types.SimpleNamespace(GlueContext=GlueContext),
        "awsglue.job": types.SimpleNamespace(Job=Job),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_locally_awsglue_is_not_importable():
    assert job_runtime.glue_available() is False


def test_local_mode_parses_the_glue_argument_names_with_defaults(tmp_path):
    declared = declaration_file(tmp_path, CREDIT_RISK)
    args = parse_job_args(SPECS, ["--dataset", declared, "--raw_path", "/raw"], prog="job", glue=False)
    assert args == {"dataset": CREDIT_RISK, "raw_path": "/raw", "summary_path": None, "max_quarantine_ratio": 0.05}


def test_glue_mode_resolves_required_and_present_optional_arguments(fake_glue, monkeypatch):
    # GIVEN the dataset declaration the CDK app uploads next to the job code
    moto_credentials(monkeypatch, "us-east-1")
    argv = ["--JOB_NAME", "curate", "--JOB_RUN_ID", "jr_1", "--job-bookmark-option", "job-bookmark-disable",
            "--dataset", "s3://code/datasets/customer_churn.json", "--raw_path", "s3://b/raw",
            "--max_quarantine_ratio", "0.2"]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="code")
        s3.put_object(Bucket="code", Key="datasets/customer_churn.json", Body=json.dumps(CUSTOMER_CHURN.to_declaration()))
        # WHEN Glue passes its arguments
        args = parse_job_args(SPECS, argv, prog="job")
    # THEN the job holds the declared dataset itself, read from S3
    assert args == {
        "JOB_NAME": "curate", "JOB_RUN_ID": "jr_1", "dataset": CUSTOMER_CHURN, "raw_path": "s3://b/raw",
        "summary_path": None, "max_quarantine_ratio": 0.2,
    }


def test_a_broken_dataset_declaration_is_refused_with_its_problems(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**CUSTOMER_CHURN.to_declaration(), "event_time": "signup"}))
    with pytest.raises(SystemExit):
        parse_job_args(SPECS, ["--dataset", str(broken), "--raw_path", "/raw"], prog="job", glue=False)
    with pytest.raises(ValueError, match="argument --dataset: invalid dataset declaration: event_time: 'signup' must "
                                         "name a declared column"):
        job_runtime._convert(SPECS, {"dataset": str(broken), "raw_path": "/raw"}, fail=job_runtime._raise_value_error)


def test_glue_mode_reports_bad_values_as_value_errors(fake_glue, tmp_path):
    declared = declaration_file(tmp_path, CUSTOMER_CHURN)
    argv = ["--JOB_NAME", "curate", "--dataset", declared, "--raw_path", "x", "--max_quarantine_ratio", "7"]
    with pytest.raises(ValueError, match="argument --max_quarantine_ratio: must be in \\[0, 1\\], got '7'"):
        parse_job_args(SPECS, argv, prog="job")


@pytest.mark.spark
def test_curate_job_in_glue_mode_inits_and_commits_the_job_only_on_success(spark, fake_glue, tmp_path):
    from pipeline_code.etl import glue_curate_job

    batch = generate_batch(CUSTOMER_CHURN, 100, seed=30, days=2, bad_record_rate=0.1)
    write_raw(batch.frame, str(tmp_path / "raw"), CUSTOMER_CHURN, "2026-01-03")
    argv = ["--JOB_NAME", "curate-churn", "--JOB_RUN_ID", "jr_42", "--dataset", declaration_file(tmp_path, CUSTOMER_CHURN),
            "--raw_path", str(tmp_path / "raw"), "--curated_path", str(tmp_path / "curated"),
            "--quarantine_path", str(tmp_path / "quarantine"), "--max_quarantine_ratio", "0.2"]

    assert glue_curate_job.main(argv) == 0
    assert fake_glue["init"][0][0] == "curate-churn" and fake_glue["commit"] == 1
    assert (tmp_path / "quarantine" / "run_id=jr_42").is_dir()  # Glue's run id names the quarantine run

    strict = [a if a != "0.2" else "0.01" for a in argv]
    with pytest.raises(glue_curate_job.QuarantineThresholdExceeded, match="exceeds max_quarantine_ratio 0.01"):
        glue_curate_job.main(strict)  # in Glue the error propagates: the job run fails with this message
    assert fake_glue["commit"] == 1  # a failed run does not commit


def test_paths_join_and_split_for_local_and_s3():
    assert join_path("s3://bucket/quarantine/", "run_id=1") == "s3://bucket/quarantine/run_id=1"
    assert join_path("/tmp/q", "/a/", "b") == "/tmp/q/a/b"
    assert split_s3_uri("s3://bucket/a/b.json") == ("bucket", "a/b.json")
    with pytest.raises(ValueError, match="needs a bucket and a key"):
        split_s3_uri("s3://bucket")


def test_summary_json_is_written_to_s3(monkeypatch):
    moto_credentials(monkeypatch, "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        write_json("s3://lake/summaries/curate.json", {"dataset": "customer_churn", "input_rows": 3}, s3_client=s3)
        body = s3.get_object(Bucket="lake", Key="summaries/curate.json")["Body"].read()
    assert json.loads(body) == {"dataset": "customer_churn", "input_rows": 3}


def test_summary_json_is_written_locally_creating_directories(tmp_path):
    write_json(str(tmp_path / "a" / "b" / "s.json"), {"x": 1})
    assert json.loads((tmp_path / "a" / "b" / "s.json").read_text()) == {"x": 1}
