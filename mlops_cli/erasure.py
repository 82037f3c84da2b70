"""Find every object of an environment that holds a customer's record id: the search step of a by-hand erasure.

    python -m mlops_cli.erasure --env prod find --dataset customer_churn --id C-1042 [--id C-2077 ...]

Unlike an Athena query on the crawler's ``raw_<dataset>`` table, this reads the objects themselves: the crawler
crawls new folders only and changes no schema after its first run, so a table that never got created, or a
partition it ignored after a column change, would hide rows (docs/personal-data.md). It lists every prefix
docs/personal-data.md names for the dataset and each model the environment trains on it:

* raw ``<dataset>/``; curated ``<dataset>/``, ``_quarantine/<dataset>/``, ``_curate-recovery/<dataset>/``;
* features ``snapshots/<dataset>/``, ``_ingest-failures/<dataset>/``, the offline store's data files
  (``offline-store/``, keys naming the dataset's feature group; Iceberg ``metadata/`` files are listed as not
  searched: their column statistics may hold an id);
* artifacts ``pipelines/<model>/work/`` and ``pipelines/<model>/frozen-test/``;
* inference ``capture/``, ``async/``, ``batch/``, ``labels/``, ``monitor/`` (reports, and the prediction records of
  runs before the Glue tables) and ``predictions/`` (the prediction records since) of each model; not
  ``monitor-results/``, whose rows are aggregates (no id, no value of a request).

Each object is streamed (gzip by its ``.gz`` suffix or magic bytes): JSON lines (``.json``, ``.jsonl``, ``.out``,
or a first line opening a JSON object: capture files), CSV with a header (``.csv``, and any other name: raw exports
land under any name), Parquet (``.parquet`` and Spark's part files: spooled to a temporary file,
read one row group and only the id columns at a time), HTML reports as text. A row matches when a column named
as the dataset's record identifier holds an id given; in the inference places also ``inference_id`` and
``entity_id`` (by-id requests, prediction records, labels), anywhere in a JSON record (a capture's request body
included). stdout lists each object with its matching rows, then the total and every object that could not be read
(never skipped in silence); exit 0 when all were read, 1 when some could not be (the search is then incomplete), 2 on
an error.

Read-only: it lists and reads the current objects, and deletes or rewrites nothing; old versions are not searched
(the erasure procedure deletes every old version of each object it rewrites). Run it as the role that erases (an
administrator of the environment's account): it needs ``s3:ListBucket`` and ``s3:GetObject`` on the five buckets and
``kms:Decrypt`` on the environment's data key (the buckets are SSE-KMS).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import gzip
import io
import json
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli import target as deploy_target
from pipeline_code.catalog import header_key
from pipeline_code.core import contract, integrity

PROG = "python -m mlops_cli.erasure"
# Columns that carry a customer's id in serving's traffic and the monitor's records besides the record identifier
# (docs/personal-data.md: for by-id models the id is the entity id, and the inference id unless the caller sends one).
INFERENCE_ID_COLUMNS = ("inference_id", "entity_id")
# Bytes read from S3 at a time: an object of any size is searched in bounded memory.
CHUNK_BYTES = 8 * 1024 * 1024
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"


class CliError(Exception):
    """A problem the operator can fix; printed as one line, exit code 2."""


class Unreadable(Exception):
    """An object the search could not read: why, one line."""


@dataclass(frozen=True)
class Place:
    """One prefix of one bucket to search, and the columns that hold the id there."""

    bucket: str
    prefix: str
    columns: Tuple[str, ...]
    # Keys under ``prefix`` holding rows (default: all); the others are reported as not searched, with ``skip_reason``.
    keep: Callable[[str], bool] = lambda key: True
    # Keys left out that the report still names as not searched, and why (default: none named).
    mention: Callable[[str], bool] = lambda key: False
    skip_reason: str = ""


@dataclass
class Findings:
    matches: List[Tuple[str, int]] = field(default_factory=list)  # (s3 uri, matching rows)
    unreadable: List[Tuple[str, str]] = field(default_factory=list)  # (s3 uri, why)
    not_searched: List[Tuple[str, str]] = field(default_factory=list)  # (s3 uri, why): no rows by design
    searched: int = 0

    @property
    def total(self) -> int:
        return sum(n for _, n in self.matches)


def places(*, prefix: str, account: str, region: str, dataset: str, record_identifier: str,
           models: Sequence[str], raw_header: Optional[str] = None) -> List[Place]:
    """Every place docs/personal-data.md says one of ``dataset``'s records reaches, for it and ``models``.

    ``raw_header``: the header the raw files give the record identifier when it is not its name (its declared
    ``source``); the raw files are searched by it and by the declared name (a file landed before the source was
    declared gives that), every other place by the declared name."""
    def bucket(kind: str) -> str:
        return contract.lake_bucket(prefix, kind, account, region)

    ids = (record_identifier,)
    group = contract.feature_group_name(prefix, dataset)
    out = [
        # By the source and the name: a file landed before the source was declared gives the declared name.
        Place(bucket("raw"), f"{dataset}/", (raw_header, *ids) if raw_header else ids),
        Place(bucket("curated"), f"{dataset}/", ids),
        Place(bucket("curated"), f"{contract.QUARANTINE_PREFIX}/{dataset}/", ids),
        Place(bucket("curated"), f"{contract.CURATE_RECOVERY_PREFIX}/{dataset}/", ids),
        Place(bucket("features"), f"{contract.FEATURE_SNAPSHOTS_ROOT}/{dataset}/", ids),
        Place(bucket("features"), f"{contract.INGEST_FAILURES_PREFIX}/{dataset}/", ids),
        # SageMaker names each offline-store table's folder after the group (plus a creation time): other groups' files
        # are no concern; an Iceberg metadata file holds no rows but may hold an id in its column bounds.
        Place(bucket("features"), f"{contract.OFFLINE_STORE_PREFIX}/", ids,
              keep=lambda key: group in key and "/metadata/" not in key,
              mention=lambda key: group in key,
              skip_reason="Iceberg metadata, no rows (its column statistics may hold an id: OPTIMIZE and VACUUM "
                          "replace it, docs/personal-data.md step 6)"),
    ]
    traffic = ids + INFERENCE_ID_COLUMNS
    for model in models:
        out += [Place(bucket("artifacts"), f"{integrity.model_prefix(model)}{segment}/", ids)
                for segment in (integrity.WORK_SEGMENT, integrity.FROZEN_TEST_SEGMENT)]
        out += [Place(bucket("inference"), contract.inference_prefix(model, what), traffic)
                for what in (*contract.INFERENCE_TRAFFIC, "labels", contract.DRIFT_MONITOR_REPORTS,
                             contract.PREDICTION_RECORDS)]
    return out


def find(s3: Any, where: Iterable[Place], ids: Sequence[str], *, chunk_bytes: int = CHUNK_BYTES) -> Findings:
    """Search every object under ``where`` for rows whose id columns hold one of ``ids``."""
    wanted = set(ids)
    found = Findings()
    for place in where:
        for key in _keys(s3, place.bucket, place.prefix):
            uri = f"s3://{place.bucket}/{key}"
            if key.endswith("/") or _is_marker(key):
                continue
            if not place.keep(key):
                if place.skip_reason and place.mention(key):
                    found.not_searched.append((uri, place.skip_reason))
                continue
            found.searched += 1
            try:
                count = count_matches(s3, place.bucket, key, place.columns, wanted, chunk_bytes=chunk_bytes)
            except Unreadable as why:
                found.unreadable.append((uri, str(why)))
                continue
            except (ClientError, BotoCoreError) as error:
                found.unreadable.append((uri, deploy_target.describe_error(error) + _access_hint(error)))
                continue
            if count:
                found.matches.append((uri, count))
    return found


def count_matches(s3: Any, bucket: str, key: str, columns: Sequence[str], ids: Set[str], *,
                  chunk_bytes: int = CHUNK_BYTES) -> int:
    """The rows of object ``key`` whose ``columns`` hold one of ``ids`` (compared as text, trimmed)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    head = body.read(4)
    chunks = _chunks(head, body, chunk_bytes)
    name = key.lower()
    if head.startswith(_GZIP_MAGIC) or name.endswith(".gz"):
        stream: Any = gzip.GzipFile(fileobj=_ChunkReader(chunks))
        name = name[:-3] if name.endswith(".gz") else name
        try:
            head = stream.peek(4)[:4]
        except (OSError, EOFError) as error:
            raise Unreadable(f"not gzip: {error}") from None
    else:
        stream = io.BufferedReader(_ChunkReader(chunks), buffer_size=chunk_bytes)
    try:
        if head.startswith(_PARQUET_MAGIC) or name.endswith(".parquet"):
            return _parquet(stream, columns, ids, chunk_bytes)
        if name.endswith(".csv"):
            return _csv(stream, columns, ids)
        if name.endswith((".html", ".htm")):
            return _text(stream, ids)
        if name.endswith((".json", ".jsonl", ".out")) or stream.peek(1)[:1024].lstrip()[:1] == b"{":
            return _json_lines(stream, columns, ids)
        # Raw exports land under any name (the curate job reads every raw file as CSV with a header).
        return _csv(stream, columns, ids)
    except Unreadable:
        raise
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, ValueError) as error:
        raise Unreadable(f"{type(error).__name__}: {error}") from None


def _parquet(stream: Any, columns: Sequence[str], ids: Set[str], chunk_bytes: int) -> int:
    import pyarrow.parquet as pq

    # Parquet's index is at the end of the file: spool the object to disk (not memory), then read it a row group and
    # only the id columns at a time.
    with tempfile.TemporaryFile() as spool:
        while True:
            chunk = stream.read(chunk_bytes)
            if not chunk:
                break
            spool.write(chunk)
        spool.seek(0)
        try:
            parquet = pq.ParquetFile(spool)
        except Exception as error:  # pyarrow raises its own kinds for a damaged file
            raise Unreadable(f"not parquet: {error}") from None
        present = [c for c in columns if c in parquet.schema_arrow.names]
        if not present:
            raise Unreadable(f"no id column ({', '.join(columns)}) among its columns")
        count = 0
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group, columns=present)
            hits = [False] * table.num_rows
            for name in present:
                for i, value in enumerate(table.column(name).to_pylist()):
                    hits[i] = hits[i] or _is_id(value, ids)
            count += sum(hits)
        return count


def _csv(stream: Any, columns: Sequence[str], ids: Set[str]) -> int:
    reader = csv.reader(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))
    header = next(reader, None)
    if header is None:
        return 0
    # A header cell compared as the curate job reads it (catalog.header_key: trimmed, any case).
    wanted = {header_key(column) for column in columns}
    positions = [i for i, name in enumerate(header) if header_key(name) in wanted]
    if not positions:
        raise Unreadable(f"no id column ({', '.join(columns)}) in its header")
    return sum(1 for row in reader if any(i < len(row) and _is_id(row[i], ids) for i in positions))


def _json_lines(stream: Any, columns: Sequence[str], ids: Set[str]) -> int:
    count = 0
    for number, line in enumerate(io.TextIOWrapper(stream, encoding="utf-8"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise Unreadable(f"line {number} is not JSON") from None
        count += _holds(record, columns, ids)
    return count


def _text(stream: Any, ids: Set[str]) -> int:
    return sum(1 for line in io.TextIOWrapper(stream, encoding="utf-8", errors="replace")
               if any(i in line for i in ids))


def _holds(node: Any, columns: Sequence[str], ids: Set[str]) -> bool:
    """Whether a JSON record holds an id under one of ``columns``, at any depth; a capture's ``data`` (the request
    or answer as sent: JSON, CSV, or either base64-encoded) is opened and searched too."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name in columns and _is_id(value, ids):
                return True
            if name == "data" and isinstance(value, str) and _payload_holds(value, node.get("encoding"), columns, ids):
                return True
            if isinstance(value, (dict, list)) and _holds(value, columns, ids):
                return True
    elif isinstance(node, list):
        return any(_holds(item, columns, ids) for item in node)
    return False


def _payload_holds(data: str, encoding: Any, columns: Sequence[str], ids: Set[str]) -> bool:
    text = data
    if str(encoding).upper() == "BASE64":
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return False
    try:
        return _holds(json.loads(text), columns, ids)
    except json.JSONDecodeError:
        # A CSV request carries no column names: an id is matched as one of its fields.
        return any(_is_id(value, ids) for row in csv.reader(io.StringIO(text)) for value in row)


def _access_hint(error: BaseException) -> str:
    """What a refused read needs (the objects are SSE-KMS: S3 answers AccessDenied when the key refuses too)."""
    code = deploy_target.error_code(error)
    if "AccessDenied" in code or code.startswith("KMS"):
        return (" (run as the environment's administrator: reading it needs s3:GetObject on the bucket and kms:Decrypt "
                "on the environment's data key)")
    return ""


def _is_id(value: Any, ids: Set[str]) -> bool:
    return value is not None and str(value).strip() in ids


def _is_marker(key: str) -> bool:
    # Spark's commit marker: no rows.
    return key.rsplit("/", 1)[-1] == "_SUCCESS"


def _keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def _chunks(head: bytes, body: Any, size: int) -> Iterator[bytes]:
    if head:
        yield head
    while True:
        chunk = body.read(size)
        if not chunk:
            return
        yield chunk


class _ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (an S3 body read a chunk at a time)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._left = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            self._left = next(self._chunks, b"")
            if not self._left:
                return 0
        n = min(len(buffer), len(self._left))
        buffer[:n], self._left = self._left[:n], self._left[n:]
        return n


def report(found: Findings, ids: Sequence[str], out: Any) -> int:
    """Print each matching object, the total and the unreadable objects; 0 when every object was read, else 1."""
    for uri, count in found.matches:
        print(f"{uri}\t{count} matching row(s)", file=out)
    print(f"total: {found.total} matching row(s) in {len(found.matches)} object(s) of {found.searched} searched "
          f"for {len(ids)} id(s); current versions only, nothing was changed", file=out)
    for uri, why in found.not_searched:
        print(f"not searched: {uri}: {why}", file=out)
    for uri, why in found.unreadable:
        print(f"NOT READ: {uri}: {why}", file=out)
    if found.unreadable:
        print(f"{len(found.unreadable)} object(s) could not be read: the search is INCOMPLETE; look at them by hand",
              file=out)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="environment name (dev, staging, prod)")
    deploy_target.add_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser("find", help="list every object holding the ids, with its matching rows")
    search.add_argument("--dataset", required=True, help="the dataset the customer's records belong to")
    search.add_argument("--id", dest="ids", action="append", required=True, type=_record_id,
                        help="a record id (the dataset's record identifier); repeat for several")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the exit code (0 every object read, 1 some could not be, 2 error)."""
    args = build_parser().parse_args(argv)
    where = None
    try:
        dataset, models = _dataset_of(args)
        where = deploy_target.resolve(args)
        deploy_target.announce(where)
        session = boto3.session.Session(region_name=where.region)
        deploy_target.check_account(session.client("sts"), where)
        prefix = contract.environment_prefix(where.project, args.env)
        found = find(session.client("s3"), places(prefix=prefix, account=where.account, region=where.region,
                                                  dataset=dataset.name, record_identifier=dataset.record_identifier,
                                                  models=models,
                                                  raw_header=dataset.column(dataset.record_identifier).source),
                     args.ids)
        return report(found, args.ids, sys.stdout)
    except (CliError, deploy_target.TargetError, BotoCoreError, ClientError) as error:
        return _fail(deploy_target.failure_line(error, where, denied_hint=lambda: (
            "; run it as the environment's administrator: it needs s3:ListBucket and s3:GetObject on the "
            "environment's buckets and kms:Decrypt on its data key")))


def _dataset_of(args: argparse.Namespace) -> Tuple[Any, List[str]]:
    """The dataset declaration ``--dataset`` names in ``--config``, and the environment's models trained on it."""
    from mlops_loop.config import ConfigError, load_config

    try:
        app = load_config(args.config)
    except ConfigError as error:
        raise CliError(f"--config {args.config}: {error.problems[0]}; the search needs the dataset's declaration "
                       "(its record identifier) from the config") from None
    if args.dataset not in app.datasets:
        raise CliError(f"--dataset {args.dataset}: not a dataset of {args.config}; choose from "
                       f"{', '.join(sorted(app.datasets))}")
    environment = deploy_target.environment_of(app, args.env, args.config)
    models = [m.name for m in app.models_of(environment) if m.dataset == args.dataset]
    return app.datasets[args.dataset], models


def _record_id(value: str) -> str:
    text = value.strip()
    if not text:
        raise argparse.ArgumentTypeError("an empty id matches nothing: give the customer's record id")
    return text


def _fail(message: str) -> int:
    print(f"erasure: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
