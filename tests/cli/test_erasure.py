"""The erasure search against moto S3: every place a record reaches, in each format, without the crawler's table.

The dataset and its models come from the frozen sample config (whichever of its datasets prod trains a model on),
never named here: the tests are about what the search finds.
"""

from __future__ import annotations

import base64
import gzip
import io
import json

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from botocore.exceptions import ClientError
from moto import mock_aws

from mlops_cli import erasure as cli
from mlops_loop.config import load_config
from pipeline_code.core import contract, integrity
from tests.support.cli_output import after_target_line
from tests.support.configs import SAMPLE_CONFIG, sample_account

REGION = "eu-west-1"
ACCOUNT = sample_account("prod")
APP = load_config(SAMPLE_CONFIG)
PREFIX = contract.environment_prefix(APP.project, "prod")
MODEL = APP.models_of(APP.environments["prod"])[0]
DATASET = MODEL.catalog_dataset
ID_COLUMN = DATASET.record_identifier
GROUP = contract.feature_group_name(PREFIX, DATASET.name)
BASE = ["--env", "prod", "--config", str(SAMPLE_CONFIG)]
WANTED, OTHER = "C-1042", "C-9999"


def bucket(kind: str) -> str:
    return contract.lake_bucket(PREFIX, kind, ACCOUNT, REGION)


def csv_bytes(ids, *, extra="x") -> bytes:
    return ("other," + ID_COLUMN + "\n" + "".join(f"{extra},{i}\n" for i in ids)).encode()


def parquet_bytes(columns: dict) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink, row_group_size=2)
    return sink.getvalue()


@pytest.fixture()
def s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        for kind in ("raw", "curated", "features", "artifacts", "inference"):
            client.create_bucket(Bucket=bucket(kind), CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def put(s3, kind: str, key: str, body: bytes) -> str:
    s3.put_object(Bucket=bucket(kind), Key=key, Body=body)
    return f"s3://{bucket(kind)}/{key}"


def run(capsys, *ids, dataset=DATASET.name):
    code = cli.main([*BASE, "find", "--dataset", dataset, *[a for i in ids for a in ("--id", i)]])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def matches(out: str) -> dict:
    return {line.split("\t")[0]: int(line.split("\t")[1].split()[0]) for line in out.splitlines() if "\t" in line}


def test_finds_the_id_in_every_place_and_format_without_the_crawler(s3, capsys):
    m = MODEL.name
    capture = {"captureData": {"endpointInput": {"encoding": "BASE64", "mode": "INPUT",
                                                 "data": base64.b64encode(json.dumps({"entity_id": WANTED}).encode()).decode()}},
               "eventMetadata": {"eventId": "e1", "inferenceId": "i-1"}}
    expected = {
        put(s3, "raw", f"{DATASET.name}/ingest_date=2026-01-01/a.csv", csv_bytes([WANTED, OTHER, WANTED])): 2,
        put(s3, "raw", f"{DATASET.name}/ingest_date=2026-01-02/b.csv.gz", gzip.compress(csv_bytes([WANTED]))): 1,
        put(s3, "raw", f"{DATASET.name}/ingest_date=2026-01-02/export-no-suffix", csv_bytes([OTHER, WANTED])): 1,
        put(s3, "curated", f"{DATASET.name}/event_date=2026-01-01/part-0.snappy.parquet",
            parquet_bytes({ID_COLUMN: [OTHER, WANTED, OTHER, WANTED, WANTED]})): 3,
        put(s3, "curated", f"{contract.QUARANTINE_PREFIX}/{DATASET.name}/run_id=r1/part-0.parquet",
            parquet_bytes({ID_COLUMN: [WANTED]})): 1,
        put(s3, "features", f"{contract.INGEST_FAILURES_PREFIX}/{DATASET.name}/run_id=r1/failures.jsonl",
            (json.dumps({ID_COLUMN: WANTED}) + "\n" + json.dumps({ID_COLUMN: OTHER}) + "\n").encode()): 1,
        put(s3, "features", f"{contract.OFFLINE_STORE_PREFIX}/{GROUP}-1700000000/data/f.parquet",
            parquet_bytes({ID_COLUMN: [WANTED, WANTED]})): 2,
        put(s3, "artifacts", f"{integrity.model_prefix(m)}{integrity.FROZEN_TEST_SEGMENT}/test.parquet",
            parquet_bytes({ID_COLUMN: [WANTED]})): 1,
        put(s3, "inference", f"capture/{m}/AllTraffic/2026/01/01/00/c.jsonl",
            (json.dumps(capture) + "\n").encode()): 1,
        put(s3, "inference", f"monitor/{m}/run1/predictions.parquet",
            parquet_bytes({"inference_id": [WANTED, OTHER], "prediction": [0.1, 0.2]})): 1,
        # the monitor's prediction records in the tables' layout (runs since the Glue tables)
        put(s3, "inference", f"{contract.PREDICTION_RECORDS}/{m}/date=2026-01-01/run=r2/predictions.parquet",
            parquet_bytes({"inference_id": [OTHER, WANTED, WANTED], "score": [0.1, 0.2, 0.3]})): 2,
        put(s3, "inference", f"labels/{m}/labels.csv", b"inference_id,label\nC-1042,1\nC-9999,0\n"): 1,
        put(s3, "inference", f"monitor/{m}/run0/report.json",
            json.dumps({"skew": {"examples": [{"entity_id": WANTED}]}}).encode()): 1,
    }
    # Files of the same places without the id, another dataset's files, Spark's marker and Iceberg's metadata.
    put(s3, "raw", f"{DATASET.name}/ingest_date=2026-01-03/c.csv", csv_bytes([OTHER]))
    put(s3, "raw", f"not-{DATASET.name}/a.csv", csv_bytes([WANTED]))
    put(s3, "curated", f"{DATASET.name}/_SUCCESS", b"")
    metadata = put(s3, "features", f"{contract.OFFLINE_STORE_PREFIX}/{GROUP}-1700000000/metadata/v1.metadata.json", b"{}")
    # the monitor's results hold aggregates only (no id column): not a place of the search
    put(s3, "inference", f"{contract.MONITOR_RESULTS}/{m}/date=2026-01-01/run=r2/monitor_results.parquet",
        parquet_bytes({"metric": ["psi"], "value": [0.1]}))

    code, out, err = run(capsys, WANTED)

    assert code == 0, out
    assert matches(out) == expected
    assert f"total: {sum(expected.values())} matching row(s) in {len(expected)} object(s)" in out
    assert f"not searched: {metadata}: Iceberg metadata" in out
    assert after_target_line(err) == ""


def test_an_absent_id_finds_nothing_and_says_so(s3, capsys):
    put(s3, "raw", f"{DATASET.name}/a.csv", csv_bytes([OTHER]))

    code, out, _ = run(capsys, "C-0000")

    assert code == 0
    assert matches(out) == {}
    assert "total: 0 matching row(s) in 0 object(s) of 1 searched for 1 id(s)" in out


def test_an_unreadable_object_is_named_and_fails_the_search(s3, capsys):
    broken = put(s3, "curated", f"{DATASET.name}/event_date=2026-01-01/part-0.parquet", b"PAR1 not really parquet")
    no_id = put(s3, "raw", f"{DATASET.name}/a.csv", b"a,b\n1,2\n")
    found = put(s3, "raw", f"{DATASET.name}/b.csv", csv_bytes([WANTED]))

    code, out, _ = run(capsys, WANTED)

    assert code == 1
    assert matches(out) == {found: 1}
    assert f"NOT READ: {broken}: not parquet" in out
    assert f"NOT READ: {no_id}: no id column ({ID_COLUMN}) in its header" in out
    assert "2 object(s) could not be read: the search is INCOMPLETE" in out


def test_a_large_object_is_streamed_in_chunks(s3):
    rows = 200_000
    # Distinct ids so the gzip stays large: many chunks of the S3 body.
    body = gzip.compress(csv_bytes([WANTED if i % 1000 == 0 else f"C-{i * 7919 % 1_000_003}" for i in range(rows)]))
    assert len(body) > 10 * 64 * 1024
    put(s3, "raw", f"{DATASET.name}/big.csv.gz", body)
    reads = []
    original = s3.get_object

    def spying(**kwargs):
        response = original(**kwargs)
        stream = response["Body"]
        read = stream.read

        def counted(amount=None):
            reads.append(amount)
            return read(amount)

        stream.read = counted
        return response

    s3.get_object = spying
    places = cli.places(prefix=PREFIX, account=ACCOUNT, region=REGION, dataset=DATASET.name,
                        record_identifier=ID_COLUMN, models=[])

    found = cli.find(s3, places, [WANTED], chunk_bytes=64 * 1024)

    assert found.matches == [(f"s3://{bucket('raw')}/{DATASET.name}/big.csv.gz", rows // 1000)]
    assert None not in reads and len(reads) > len(body) // (64 * 1024)  # never the whole object at once


def test_several_ids_are_searched_at_once(s3, capsys):
    uri = put(s3, "raw", f"{DATASET.name}/a.csv", csv_bytes([WANTED, OTHER, "C-1"]))

    code, out, _ = run(capsys, WANTED, OTHER)

    assert code == 0 and matches(out) == {uri: 2}


def test_an_unknown_dataset_is_refused_naming_the_choices(s3, capsys):
    code, _, err = run(capsys, WANTED, dataset="nope")

    assert code == 2
    assert err == (f"erasure: error: --dataset nope: not a dataset of {SAMPLE_CONFIG}; choose from "
                   f"{', '.join(sorted(APP.datasets))}\n")


def test_it_deletes_nothing(s3, capsys):
    put(s3, "raw", f"{DATASET.name}/a.csv", csv_bytes([WANTED]))

    run(capsys, WANTED)

    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket("raw"))["Contents"]] == [f"{DATASET.name}/a.csv"]


def test_a_read_the_key_refuses_is_named_with_the_permissions_it_needs(s3):
    put(s3, "raw", f"{DATASET.name}/a.csv", csv_bytes([WANTED]))
    refused = put(s3, "raw", f"{DATASET.name}/b.csv", csv_bytes([WANTED]))
    original = s3.get_object

    def refusing(**kwargs):
        if kwargs["Key"].endswith("b.csv"):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform kms:Decrypt"}},
                              "GetObject")
        return original(**kwargs)

    s3.get_object = refusing
    places = cli.places(prefix=PREFIX, account=ACCOUNT, region=REGION, dataset=DATASET.name,
                        record_identifier=ID_COLUMN, models=[])

    found = cli.find(s3, places, [WANTED])

    assert found.matches == [(f"s3://{bucket('raw')}/{DATASET.name}/a.csv", 1)]
    assert found.unreadable == [(refused, "AccessDenied: not authorized to perform kms:Decrypt (run as the environment's "
                                          "administrator: reading it needs s3:GetObject on the bucket and kms:Decrypt on "
                                          "the environment's data key)")]


def test_raw_exports_whose_header_gives_the_id_column_its_source_are_searched_by_that_header(s3, capsys, tmp_path):
    """GIVEN the record identifier declared with the export's header text (``source: 'Cust ID'``): the raw files give
    that header (in any case, padded: the curate job reads it so), the curated data the declared name."""
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["datasets"][DATASET.name]["columns"][ID_COLUMN]["source"] = "Cust ID"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    expected = {
        put(s3, "raw", f"{DATASET.name}/ingest_date=2026-01-01/a.csv", f"other, CUST ID \nx,{WANTED}\n".encode()): 1,
        put(s3, "curated", f"{DATASET.name}/event_date=2026-01-01/part-0.parquet",
            parquet_bytes({ID_COLUMN: [WANTED, OTHER]})): 1,
    }
    # WHEN the search runs on that config THEN it finds the id in both, each by its own column
    code = cli.main(["--env", "prod", "--config", str(config), "find", "--dataset", DATASET.name, "--id", WANTED])
    out = capsys.readouterr().out
    assert code == 0, out
    assert matches(out) == expected


def test_raw_files_landed_under_the_declared_name_before_a_source_was_declared_are_still_searched(s3, capsys, tmp_path):
    """GIVEN the record identifier declared with ``source:`` now, and a raw file landed before that (its header the
    declared name, as the curate job required then) WHEN searched THEN that file is read by the declared name, the new
    export by its source: neither is left unread (an erasure must reach both)."""
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["datasets"][DATASET.name]["columns"][ID_COLUMN]["source"] = "Cust ID"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    expected = {
        put(s3, "raw", f"{DATASET.name}/ingest_date=2025-12-01/a.csv", f"other,{ID_COLUMN}\nx,{WANTED}\n".encode()): 1,
        put(s3, "raw", f"{DATASET.name}/ingest_date=2026-01-01/a.csv", f"other,Cust ID\nx,{WANTED}\n".encode()): 1,
    }
    code = cli.main(["--env", "prod", "--config", str(config), "find", "--dataset", DATASET.name, "--id", WANTED])
    out = capsys.readouterr().out
    assert code == 0, out
    assert matches(out) == expected
