"""Plumbing shared by the job entry points: arguments, Spark/Glue start-up, small file I/O.

Every job script runs in two modes with the *same* argument names:

* **Glue** (``awsglue`` importable): arguments come from
  ``awsglue.utils.getResolvedOptions(sys.argv, ...)`` - Glue passes each job
  argument as ``--name value`` and adds its own (``--JOB_NAME``, ``--JOB_RUN_ID`` ...);
* **local** (``python -m pipeline_code...``): the same names are parsed with argparse,
  so a job can be run and tested on a laptop without Glue libraries.

Glue-specific objects (GlueContext, Job) are created only in Glue mode.
Nothing in here imports AWS CDK; boto3 is imported lazily and only for ``s3://`` paths.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from pipeline_code.argtypes import positive_int, unit_interval  # noqa: F401  (re-exported)

LOG = logging.getLogger("pipeline_code")


@dataclass(frozen=True)
class Arg:
    """One job argument, passed as ``--<name> <value>`` in both modes.

    ``convert`` turns the string value into its Python value and raises
    ValueError with a readable message for a bad one. An optional argument
    (``required=False``) takes ``default`` when absent.
    """

    name: str
    help: str
    required: bool = True
    default: Any = None
    convert: Callable[[str], Any] = str


def glue_available() -> bool:
    """True when running inside AWS Glue (the ``awsglue`` library is importable)."""
    try:
        import awsglue.utils  # noqa: F401  (probe only)
    except ImportError:
        return False
    return True


def parse_job_args(
    specs: Sequence[Arg], argv: Optional[Sequence[str]] = None, *, prog: str, glue: Optional[bool] = None
) -> Dict[str, Any]:
    """Parse job arguments in Glue or local mode; return ``{name: converted value}``.

    Args:
        specs: the job's arguments.
        argv: arguments without the program name (default ``sys.argv[1:]``).
        prog: program name shown in local-mode usage messages.
        glue: force the mode (default: :func:`glue_available`).

    In Glue mode ``JOB_NAME`` is resolved too, and ``JOB_RUN_ID`` when Glue passed it.
    Bad values raise ``SystemExit(2)`` with an argparse-style message in local
    mode and ValueError in Glue mode (where it becomes the job run's error).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    glue = glue_available() if glue is None else glue
    if glue:
        raw = _glue_resolve(specs, argv)
        return _convert(specs, raw, fail=_raise_value_error)
    parser = build_arg_parser(specs, prog)
    namespace = parser.parse_args(argv)
    return _convert(specs, vars(namespace), fail=parser.error)


def build_arg_parser(specs: Sequence[Arg], prog: str) -> argparse.ArgumentParser:
    """An argparse parser accepting exactly the Glue argument names (``--raw_path`` ...)."""
    parser = argparse.ArgumentParser(prog=prog)
    for spec in specs:
        default_note = "" if spec.required else f" (default: {spec.default})"
        parser.add_argument(f"--{spec.name}", required=spec.required, default=None, help=spec.help + default_note)
    return parser


def _glue_resolve(specs: Sequence[Arg], argv: List[str]) -> Dict[str, Optional[str]]:
    from awsglue.utils import getResolvedOptions  # only importable inside Glue

    # getResolvedOptions fails on an absent name, so ask for optional ones only when given.
    present = {a[2:].split("=", 1)[0] for a in argv if a.startswith("--")}
    names = ["JOB_NAME"] + [s.name for s in specs if s.required or s.name in present]
    if "JOB_RUN_ID" in present:
        names.append("JOB_RUN_ID")
    resolved = getResolvedOptions([sys.argv[0] if sys.argv else "job"] + argv, names)
    return {**{s.name: None for s in specs}, **resolved}


def _convert(specs: Sequence[Arg], raw: Dict[str, Optional[str]], fail: Callable[[str], Any]) -> Dict[str, Any]:
    values: Dict[str, Any] = {k: v for k, v in raw.items() if k in ("JOB_NAME", "JOB_RUN_ID")}
    for spec in specs:
        value = raw.get(spec.name)
        if value is None or value == "":
            if spec.required:
                fail(f"argument --{spec.name} is required")
            values[spec.name] = spec.default
            continue
        try:
            values[spec.name] = spec.convert(value)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            fail(f"argument --{spec.name}: {exc}")
    return values


def _raise_value_error(message: str) -> None:
    raise ValueError(message)


# --------------------------------------------------------------------------------------
# Argument converters
# --------------------------------------------------------------------------------------
def dataset_declaration(value: str) -> Any:
    """The :class:`catalog.Dataset` declared by ``value``: a JSON file (local or ``s3://``) or JSON text.

    The CDK app uploads each dataset's declaration next to the job code, so a job reads exactly
    the dataset the deployed configuration declares.
    """
    from pipeline_code import catalog

    if value.startswith("s3://"):
        value = read_text(value)
    try:
        return catalog.load_dataset(value)
    except catalog.DeclarationError as exc:
        raise ValueError("invalid dataset declaration: " + "; ".join(exc.problems)) from None


# The value types come from the one shared module: a bad argument reads the same in every job.
unit_fraction = unit_interval


# --------------------------------------------------------------------------------------
# Spark / Glue start-up
# --------------------------------------------------------------------------------------
@dataclass
class SparkRuntime:
    """The Spark session of a job run, plus the Glue Job when running in Glue.

    ``owns_session`` is true when this runtime created a local session (and so
    should stop it); a session that already existed (a test's) is left running.
    """

    spark: Any
    glue_job: Any = None
    owns_session: bool = False

    def commit(self) -> None:
        """Commit the Glue job (bookmark state); a no-op locally."""
        if self.glue_job is not None:
            self.glue_job.commit()

    def stop(self) -> None:
        if self.owns_session:
            self.spark.stop()


def start_spark(app_name: str, args: Dict[str, Any], *, glue: bool) -> SparkRuntime:
    """A Glue-backed Spark session in Glue, else a ``local[*]`` session (or the active one).

    Both are pinned to UTC and to parquet ``TIMESTAMP_MICROS`` so timestamps mean
    the same thing in Spark, pandas/pyarrow and Athena.
    """
    if glue:
        from awsglue.context import GlueContext  # only importable inside Glue
        from awsglue.job import Job
        from pyspark.context import SparkContext

        glue_context = GlueContext(SparkContext.getOrCreate())
        runtime = SparkRuntime(spark=glue_context.spark_session)
        runtime.glue_job = Job(glue_context)
        runtime.glue_job.init(args["JOB_NAME"], {k: str(v) for k, v in args.items() if v is not None})
    else:
        from pyspark.sql import SparkSession

        # Python workers must run the driver's interpreter (same pandas/pyarrow/pipeline_code).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        existing = SparkSession.getActiveSession()
        spark = existing or (
            SparkSession.builder.master("local[*]")
            .appName(app_name)
            # Laptop-sized defaults: 200 shuffle partitions of a few rows each only add overhead.
            .config("spark.sql.shuffle.partitions", str(os.cpu_count() or 2))
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
        runtime = SparkRuntime(spark=spark, owns_session=existing is None)
    runtime.spark.conf.set("spark.sql.session.timeZone", "UTC")
    runtime.spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    # Times as they are (proleptic Gregorian, what pandas, pyarrow and Spark 3+ read): Spark 3's default (EXCEPTION)
    # refuses to write a timestamp before 1900-01-01T00:00:00Z or a date before 1582-10-15 (SparkUpgradeException
    # WRITE_ANCIENT_DATETIME, the whole run failing), though the rules accept them (core.contract.EARLIEST_TIMESTAMP,
    # a date from 0001-01-01). No file here was written by Spark 2's hybrid calendar, so nothing needs rebasing.
    for mode in ("datetimeRebaseModeInWrite", "datetimeRebaseModeInRead", "int96RebaseModeInWrite",
                 "int96RebaseModeInRead"):
        runtime.spark.conf.set(f"spark.sql.parquet.{mode}", "CORRECTED")
    return runtime


def default_run_id(args: Dict[str, Any]) -> str:
    """Glue's ``JOB_RUN_ID`` when present, else ``local-<UTC timestamp>``."""
    if args.get("JOB_RUN_ID"):
        return str(args["JOB_RUN_ID"])
    return "local-" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


# --------------------------------------------------------------------------------------
# Paths and small files (local or s3://)
# --------------------------------------------------------------------------------------
def join_path(base: str, *parts: str) -> str:
    """Join path segments with ``/`` for both local paths and ``s3://`` URIs."""
    out = base.rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out


def split_s3_uri(uri: str) -> Tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ValueError(f"s3 URI needs a bucket and a key: {uri!r}")
    return bucket, key


def read_text(path: str, *, s3_client: Any = None) -> str:
    """The UTF-8 text of a local file or an ``s3://`` object."""
    if path.startswith("s3://"):
        bucket, key = split_s3_uri(path)
        if s3_client is None:
            import boto3  # lazily: local runs don't need it

            s3_client = boto3.client("s3")
        return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def read_state(state_path: str, *, what: str, version: int, valid: Callable[[Dict[str, Any]], bool],
               s3_client: Any = None) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """A job's state object (``what``: "curate state", "ingestion state"): ``(state, None)``, or ``(None, why there is
    none usable)`` when it is missing, not UTF-8 JSON, not of ``version`` (``state_version``) or not ``valid``.

    On S3 the key is first looked for with ``ListObjectsV2`` (prefix: the key): a ``GetObject`` of a missing key is
    answered 403 AccessDenied, not 404, unless the caller may list the bucket, and a job role may list only its own
    prefixes. Other errors (access denied on an existing state, throttling) are raised: a full run is not how to
    answer them."""
    missing = f"no {what} at {state_path} (first run, or the state was deleted)"
    try:
        if state_path.startswith("s3://"):
            if s3_client is None:
                import boto3

                s3_client = boto3.client("s3")
            bucket, key = split_s3_uri(state_path)
            # A key sorts before every longer key it prefixes: the first result is the key itself when it exists.
            listed = s3_client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
            if not (listed and listed[0]["Key"] == key):
                return None, missing
        text = read_text(state_path, s3_client=s3_client)
    except FileNotFoundError:
        return None, missing
    except UnicodeDecodeError:
        return None, f"the {what} at {state_path} is unreadable (not UTF-8 text)"
    except Exception as exc:  # noqa: BLE001 - only "no such key" (deleted since listed) means missing
        if (getattr(exc, "response", None) or {}).get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None, missing
        raise
    try:
        state = json.loads(text)
        usable = isinstance(state, dict) and state.get("state_version") == version and valid(state)
    except ValueError:
        usable = False
    if not usable:
        return None, f"the {what} at {state_path} is unreadable (not a version-{version} {what})"
    return state, None


def write_text(path: str, text: str, *, s3_client: Any = None) -> None:
    """Write ``text`` (UTF-8) to a local path or an ``s3://`` object, replacing it."""
    if path.startswith("s3://"):
        bucket, key = split_s3_uri(path)
        if s3_client is None:
            import boto3  # lazily: local runs don't need it

            s3_client = boto3.client("s3")
        s3_client.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)  # readers never see a half-written file


def write_json(path: str, payload: Dict[str, Any], **kwargs: Any) -> None:
    """Write ``payload`` as indented, key-sorted JSON (see :func:`write_text`)."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", **kwargs)


def configure_logging() -> None:
    """INFO logs to stdout (CloudWatch in Glue), once."""
    if not LOG.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        LOG.addHandler(handler)
        LOG.setLevel(logging.INFO)
