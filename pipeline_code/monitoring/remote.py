"""The monitor's inputs from S3, for the scheduled run (``monitor --from-s3``).

A scheduled SageMaker Processing job mounts no data: the monitor finds it itself, then runs
the same code path as a local run over the directories it filled.

* **Which version serves**: the serving stack's ``<PascalModel>ModelPackageArn`` parameter
  (:func:`resolve_serving_version`); ``DescribeModelPackage`` of that ARN gives the model
  (``InferenceSpecification.Containers[0].ModelDataUrl``), the drift baselines
  (``DriftCheckBaselines.ModelDataQuality`` statistics/constraints, falling back to
  ``ModelMetrics.ModelDataQuality``) and the evaluation report (next to
  ``ModelMetrics.ModelQuality.Statistics``). ``attributions.json`` has no ModelMetrics slot: the
  training pipeline's baseline step writes it next to ``statistics.json``, so it is read from
  there, and its digest is the version's ``attributions_sha256``. An empty parameter means *nothing serves yet*: :func:`write_not_serving_report`.
* **The traffic window** (:func:`download_window`): capture objects (SageMaker data capture and
  serverless self-capture, ``<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``) whose
  ``LastModified`` is in ``[now - window_hours, now)``, relative paths kept. Batch transform
  (``batch/<model>/input/X`` -> ``batch/<model>/output/v<version>/<run>/X.out``): every output the serving
  version wrote in the window together with its input, placed side by side as ``batch/<run>/X`` + ``X.out``, which
  is how :mod:`.capture` pairs them; another version's outputs are left out, with a note. The newest objects are kept first when the window is larger
  than ``max_bytes`` (a batch pair is kept or dropped whole); the report says so.
* **Labels** and **feature snapshots** (:func:`download_recent`): every object under the labels prefix (and,
  for a model scored by id, its dataset's snapshot prefix) modified in ``[now - label_window_hours, now)``.
* **Prediction records** (:func:`download_records`, with ``--label-delay-days``): the ``predictions.parquet`` its
  earlier runs wrote over the look-back (under ``--records-s3-uri``, the tables' layout, and, for runs before it,
  beside their reports under ``--history-s3-uri``), for the labels of requests older than the window
  (:mod:`.late_labels`), the files holding due labels first; and the labels of the rest of the look-back
  (``[now - look-back, now - label_window_hours)``, :func:`download_recent`) into ``--late-labels-dir``.
* **History** (:func:`download_history`): the newest 30 ``report.json`` of the earlier runs (the job's own
  output prefix): the cumulative detector's state and the report's trend.

Failures never raise out of :func:`prepare_inputs`: each becomes an error in the report (so
``MonitorHealthy=0``), and the run goes on with whatever was fetched. boto3 only (the stock
SageMaker images have it); S3 keys that would land outside the target directory are skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import posixpath
import shutil
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from pipeline_code.core import integrity
from pipeline_code.core.contract import ARCHIVE_SHA256_PROPERTY, ATTRIBUTIONS_FILE, ATTRIBUTIONS_SHA256_PROPERTY, BASELINE_FILES, BIAS_FILE, CONSTRAINTS_FILE, EVALUATION_FILE
from pipeline_code.core.contract import MONITOR_METRICS, STATISTICS_FILE, package_parameter_name, region_of_arn, version_of_arn
from pipeline_code.core.contract import BATCH_OUTPUT_SUFFIX, TRAFFIC_INPUT, TRAFFIC_OUTPUT, version_of_batch_dir
from pipeline_code.core.contract import DEFAULT_MONITOR_WINDOW_GIB, monitor_window_bytes, monitor_window_fix, records_lookback_hours
from pipeline_code.core.problem import BINARY, quality_alarm_key
from pipeline_code.handlers.deploy.stack import describe_stack, stack_parameters
from pipeline_code.monitoring import drift, report as report_mod
from pipeline_code.training.data_io import extract_tar_safely

DEFAULT_WINDOW_HOURS = 24.0
DEFAULT_LABEL_WINDOW_HOURS = 168.0
# Each download's cap (the scheduled job's is the model's monitor_max_window_gib): capture is decoded a block at a time,
# so it bounds the volume, not memory; larger windows keep the newest objects.
DEFAULT_MAX_WINDOW_BYTES = monitor_window_bytes(DEFAULT_MONITOR_WINDOW_GIB)
MAX_HISTORY_REPORTS = 30
NOT_SERVING = "NotServing"
STATUS_NOT_SERVING = "not_serving"


class RemoteError(RuntimeError):
    """A remote input could not be resolved; ``kind`` becomes the report error's kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- S3 URIs ----------------------------------------------------------------------------------------------


def parse_s3_uri(uri: str, *, what: str) -> Tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b/")``: the prefix always ends with ``/`` (or is empty),
    so ``capture/churn`` never matches ``capture/churn-v2``. ``what`` names the argument in the error."""
    if not isinstance(uri, str) or not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ValueError(f"{what} must look like s3://<bucket>/<prefix>/, got {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def _object_uri(uri: str) -> Tuple[str, str]:
    bucket, _, key = uri[5:].partition("/") if uri.startswith("s3://") else ("", "", "")
    if not bucket or not key or key.endswith("/"):
        raise RemoteError("baseline_download_failed", f"{uri!r} is not an s3://bucket/key object URI")
    return bucket, key


def _sibling(uri: Optional[str], name: str) -> Optional[str]:
    """The object ``name`` in the same S3 "directory" as ``uri``."""
    return None if not uri else posixpath.join(posixpath.dirname(uri), name)


# --- which version serves ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ServingVersion:
    """The model package version a serving stack serves, with the S3 URIs of what the monitor needs.

    A URI is ``None`` when the package does not register it.
    """

    arn: str
    version: Optional[int]
    approval: str
    status: str
    model_data_url: Optional[str]
    statistics_uri: Optional[str]
    constraints_uri: Optional[str]
    attributions_uri: Optional[str]
    evaluation_uri: Optional[str]
    # What the package registered of those bytes (:func:`_recorded_digests`): file name -> (hex sha256, where it is
    # recorded), for the documents and the archive whose digest it holds; empty for a version registered before that.
    bias_uri: Optional[str] = None
    recorded: Mapping[str, Tuple[str, str]] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _metric_source(description: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    """The ``MetricsSource`` at ``path`` of a package description (``{}`` when there is none)."""
    node: Any = description
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) and node.get("S3Uri") else {}


def _metric_uri(description: Mapping[str, Any], *path: str) -> Optional[str]:
    return _metric_source(description, *path).get("S3Uri") or None


# Where a package registers the drift baselines (the drift check's own first; the pipeline registers both alike) and
# the bias report, which carries evaluation.json's digest.
_DATA_QUALITY_SOURCES = (("DriftCheckBaselines", "ModelDataQuality"), ("ModelMetrics", "ModelDataQuality"))
_BIAS_SOURCE = ("ModelMetrics", "Bias", "Report")


def _data_quality_source(described: Mapping[str, Any], kind: str) -> Tuple[Tuple[str, str], Mapping[str, Any]]:
    """Where the package registers its data-quality ``kind`` (``Statistics`` / ``Constraints``) and that
    ``MetricsSource``: the first of :data:`_DATA_QUALITY_SOURCES` that names one (``{}`` when none does). The URI the
    monitor downloads and the digest it checks it with both come from here, so they are one source's."""
    for where in _DATA_QUALITY_SOURCES:
        source = _metric_source(described, *where, kind)
        if source:
            return where, source
    return _DATA_QUALITY_SOURCES[-1], {}


def _recorded_digests(described: Mapping[str, Any]) -> Dict[str, Tuple[str, str]]:
    """``{file name: (hex sha256, where recorded)}`` of what ``described`` (a DescribeModelPackage answer) registered:
    statistics.json and constraints.json by their ContentDigest, bias.json by its (it carries evaluation.json's, see
    :func:`fetch_baseline_and_model`), attributions.json by ``attributions_sha256`` and model.tar.gz by
    ``model_data_sha256``. None of these can change after
    registration (UpdateModelPackage takes no ModelMetrics; the approver may not set the property)."""
    recorded: Dict[str, Tuple[str, str]] = {}
    for name, kind in ((STATISTICS_FILE, "Statistics"), (CONSTRAINTS_FILE, "Constraints")):
        where, source = _data_quality_source(described, kind)
        digest = integrity.hex_of_content_digest(source.get("ContentDigest"))
        if digest:
            recorded[name] = (digest, f"its {where[0]} {where[1]}.{kind} ContentDigest")
    bias = integrity.hex_of_content_digest(_metric_source(described, *_BIAS_SOURCE).get("ContentDigest"))
    if bias:
        recorded[BIAS_FILE] = (bias, "its ModelMetrics Bias.Report ContentDigest")
    metadata = described.get("CustomerMetadataProperties") or {}
    archive = (metadata.get(ARCHIVE_SHA256_PROPERTY) or "").lower()
    if integrity.SHA256_HEX.match(archive):
        recorded[integrity.MODEL_ARCHIVE] = (archive, f"its {ARCHIVE_SHA256_PROPERTY}")
    # attributions.json has no ModelMetrics slot: its ContentDigest is a property (absent before it was registered).
    attributions = integrity.hex_of_content_digest(metadata.get(ATTRIBUTIONS_SHA256_PROPERTY))
    if attributions:
        recorded[ATTRIBUTIONS_FILE] = (attributions, f"its {ATTRIBUTIONS_SHA256_PROPERTY}")
    return recorded


def resolve_serving_version(*, stack_name: str, model: str, cloudformation: Any, sagemaker: Any) -> Optional[ServingVersion]:
    """The version ``stack_name`` serves for ``model``, or ``None`` when its parameter is empty (nothing approved yet).

    Raises:
        RemoteError: the stack or its ``<PascalModel>ModelPackageArn`` parameter does not exist, or the
            package has no inference container (kind ``serving_lookup_failed``).
        botocore.exceptions.ClientError: an API call failed (access denied, throttled, unknown ARN).
    """
    stack = describe_stack(cloudformation, stack_name)
    if stack is None:
        raise RemoteError("serving_lookup_failed", f"serving stack {stack_name!r} does not exist: check --serving-stack "
                          "(<project>-<env>-serving) and --region")
    key = package_parameter_name(model)
    parameters = stack_parameters(stack)
    if key not in parameters:
        raise RemoteError("serving_lookup_failed", f"serving stack {stack_name!r} has no parameter {key}: check --model "
                          f"(the stack serves {sorted(k for k in parameters if k.endswith('ModelPackageArn'))})")
    arn = (parameters[key] or "").strip()
    if not arn:
        return None
    described = sagemaker.describe_model_package(ModelPackageName=arn)
    containers = (described.get("InferenceSpecification") or {}).get("Containers") or []
    if not containers:
        raise RemoteError("serving_lookup_failed", f"{arn} has no inference container (InferenceSpecification.Containers is empty)")
    statistics = _data_quality_source(described, "Statistics")[1].get("S3Uri") or None
    constraints = _data_quality_source(described, "Constraints")[1].get("S3Uri") or None
    quality = _metric_uri(described, "ModelMetrics", "ModelQuality", "Statistics")
    return ServingVersion(
        arn=arn,
        version=version_of_arn(arn),
        approval=described.get("ModelApprovalStatus", ""),
        status=described.get("ModelPackageStatus", ""),
        model_data_url=containers[0].get("ModelDataUrl"),
        statistics_uri=statistics,
        constraints_uri=constraints,
        attributions_uri=_sibling(statistics, ATTRIBUTIONS_FILE),
        evaluation_uri=_sibling(quality, EVALUATION_FILE),
        bias_uri=_metric_uri(described, *_BIAS_SOURCE),
        recorded=_recorded_digests(described),
    )


# --- baselines and model ----------------------------------------------------------------------------------


def _missing(error: Exception) -> bool:
    code = str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


# The report section an error about the evaluation (evaluation.json, or bias.json that carries its digest) is confined
# to: the evaluation is only the model-quality and bias reference, which the monitor does without when it is missing,
# so the drift measured against the registered baselines still counts (monitor.run_monitor's ``section``).
EVALUATION_SECTION = "model_quality"


def _rewritten(name: str, uri: str, actual: str, arn: str, registered: Tuple[str, str]) -> str:
    """The error for a registered document whose bytes in S3 are no longer the registered ones (``registered``: its
    digest and where the package records it), and how to restore it."""
    recorded, where = registered
    bucket, key = _object_uri(uri)
    # Every AWS command a message gives names its region (a shell's default may be another's): the package's.
    region = region_of_arn(arn)
    at = f" --region {region}" if region else ""
    return (f"{name} at {uri} has sha256 {actual}, not the {recorded} that {arn} registered ({where}): it was "
            f"rewritten after registration, so the monitor does not use it. The registered bytes are kept as an older "
            f"version of the object: list them (aws s3api list-object-versions --bucket {bucket} --prefix {key}{at}), "
            f"find the one whose bytes have that sha256 (aws s3api get-object --bucket {bucket} --key {key} "
            f"--version-id <its id>{at} {name} && sha256sum {name}) and copy it back (aws s3api copy-object --bucket {bucket} "
            f"--key {key} --copy-source '{bucket}/{key}?versionId=<its id>'{at})")


def _evaluation_digest(version: ServingVersion, s3: Any, scratch: str, result: Dict[str, Any]) -> Optional[Tuple[str, str]]:
    """evaluation.json's registered digest and where it is recorded, read from the version's bias report once that
    report's own ContentDigest holds (:mod:`pipeline_code.core.integrity`: ModelMetrics does not name evaluation.json);
    None when the version registered no bias digest (registered before digests). A bias report that cannot be read,
    or no longer holds its digest, is an error, and the evaluation is then not used (``("", ...)`` is returned)."""
    if BIAS_FILE not in version.recorded or not version.bias_uri:
        return None
    unusable = ("", "")
    path = os.path.join(scratch, BIAS_FILE)
    try:
        bucket, key = _object_uri(version.bias_uri)
        s3.download_file(bucket, key, path)
    except Exception as exc:  # noqa: BLE001 - reported; the evaluation cannot be verified without it
        result["errors"].append({"kind": "baseline_download_failed", "section": EVALUATION_SECTION,
                                 "message": f"{BIAS_FILE} from {version.bias_uri}: {_describe(exc)}; {EVALUATION_FILE}, "
                                            "whose digest it carries, is not used either"})
        return unusable
    actual = integrity.sha256_file(path)
    if actual != version.recorded[BIAS_FILE][0]:
        message = _rewritten(BIAS_FILE, version.bias_uri, actual, version.arn, version.recorded[BIAS_FILE])
        result["errors"].append({"kind": "baseline_digest_mismatch", "section": EVALUATION_SECTION,
                                 "message": f"{message}; {EVALUATION_FILE}, whose digest it carries, is not used either"})
        return unusable
    try:
        with open(path, encoding="utf-8") as handle:
            carried = json.load(handle).get(integrity.EVALUATION_DIGEST_KEY)
    except (ValueError, AttributeError):
        carried = None
    digest = integrity.hex_of_content_digest(carried)
    if digest is None:
        result["notes"].append(f"{EVALUATION_FILE}: not verified ({BIAS_FILE} of {version.arn} carries no "
                               f"{integrity.EVALUATION_DIGEST_KEY})")
        return None
    return digest, f"the {integrity.EVALUATION_DIGEST_KEY} in its bias report, whose ContentDigest holds"


def fetch_baseline_and_model(version: ServingVersion, *, s3: Any, baseline_dir: str, model_dir: str) -> Dict[str, Any]:
    """Download the version's baseline files into ``baseline_dir`` and extract its ``model.tar.gz`` into ``model_dir``.

    Every file is tried even when another fails. Returns ``{"files": {name: uri}, "model": uri | None,
    "verified": [names], "errors": [{"kind", "message"}], "notes": [...]}``: a missing or unreadable baseline file or
    model is an error (``baseline_download_failed`` / ``model_download_failed``); a missing ``evaluation.json`` is only
    a note, since the evaluation is optional to the monitor. Archive members that are links or would
    land outside ``model_dir`` make the model an error (nothing is extracted).

    What the version registered a digest of is used only if its bytes still have it (``verified``): statistics.json,
    constraints.json, evaluation.json (through its bias report) and model.tar.gz. The reports are not write-once (the
    artifacts bucket keeps every version written, see docs/environment.md), so one rewritten since registration - a
    baseline that no drift would fail - is not compared with: it is left out, as an error (``baseline_digest_mismatch``
    / ``model_digest_mismatch``) naming both digests and how to restore the registered bytes. attributions.json is
    verified by the version's ``attributions_sha256``; a version registered before digests (or before that one) has
    none: what it has no digest of is used unverified, as before. An error about the evaluation (evaluation.json or
    the bias report that carries its digest) names :data:`EVALUATION_SECTION` as its ``section``: the run is
    unhealthy, but the window's drift still counts.
    """
    result: Dict[str, Any] = {"files": {}, "model": None, "verified": [], "errors": [], "notes": []}

    def confined(name: str) -> Dict[str, str]:
        return {"section": EVALUATION_SECTION} if name == EVALUATION_FILE else {}

    os.makedirs(baseline_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="mlops-loop-model-")
    try:
        recorded = dict(version.recorded)
        evaluation_digest = _evaluation_digest(version, s3, scratch, result) if version.evaluation_uri else None
        wanted = dict(zip(BASELINE_FILES, (version.statistics_uri, version.constraints_uri, version.attributions_uri)))
        wanted[EVALUATION_FILE] = version.evaluation_uri
        for name, uri in wanted.items():
            if not uri:
                message = f"{name}: {version.arn} registers no URI for it"
                if name == EVALUATION_FILE:
                    result["notes"].append(message)
                else:
                    result["errors"].append({"kind": "baseline_download_failed", "message": message})
                continue
            if name == EVALUATION_FILE and evaluation_digest is not None:
                if not evaluation_digest[0]:
                    continue  # its bias report failed: said above
                recorded[EVALUATION_FILE] = evaluation_digest
            path = os.path.join(baseline_dir, name)
            try:
                bucket, key = _object_uri(uri)
                s3.download_file(bucket, key, path)
            except Exception as exc:  # noqa: BLE001 - reported; the monitor then says which baseline is missing
                message = f"{name} from {uri}: {_describe(exc)}"
                if name == EVALUATION_FILE and _missing(exc):
                    result["notes"].append(message)
                else:
                    result["errors"].append({"kind": "baseline_download_failed", "message": message, **confined(name)})
                continue
            if name in recorded:
                actual = integrity.sha256_file(path)
                if actual != recorded[name][0]:
                    os.remove(path)
                    result["errors"].append({"kind": "baseline_digest_mismatch", **confined(name),
                                             "message": _rewritten(name, uri, actual, version.arn, recorded[name])})
                    continue
                result["verified"].append(name)
            result["files"][name] = uri

        if not version.model_data_url:
            result["errors"].append({"kind": "model_download_failed", "message": f"{version.arn} has no ModelDataUrl"})
            return result
        try:
            bucket, key = _object_uri(version.model_data_url)
            archive = os.path.join(scratch, integrity.MODEL_ARCHIVE)
            s3.download_file(bucket, key, archive)
            if integrity.MODEL_ARCHIVE in recorded:
                actual, (registered, where) = integrity.sha256_file(archive), recorded[integrity.MODEL_ARCHIVE]
                if actual != registered:
                    result["errors"].append({"kind": "model_digest_mismatch", "message": (
                        f"{integrity.MODEL_ARCHIVE} at {version.model_data_url} has sha256 {actual}, not the {registered} "
                        f"that {version.arn} registered ({where}): the monitor does not load it. The deploy handler "
                        "refuses this version for the same reason: re-approve a version whose archive holds (rollback), "
                        "or re-run the pipeline")})
                    return result
                result["verified"].append(integrity.MODEL_ARCHIVE)
            extract_tar_safely(archive, model_dir)
            result["model"] = version.model_data_url
        except Exception as exc:  # noqa: BLE001 - reported; the monitor then runs without the model
            result["errors"].append({"kind": "model_download_failed", "message": f"{version.model_data_url}: {_describe(exc)}"})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


# --- windows of objects -----------------------------------------------------------------------------------


@dataclasses.dataclass
class _Group:
    """Objects kept or dropped together (one capture file, or a batch input with its output)."""

    modified: dt.datetime
    items: List[Tuple[str, str, str]]  # (bucket, key, local relative path)
    size: int


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _list(s3: Any, bucket: str, prefix: str) -> Iterable[Mapping[str, Any]]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):  # "folder" placeholder objects
                yield item


def _in_window(item: Mapping[str, Any], start: dt.datetime, end: dt.datetime) -> bool:
    return start <= _aware(item["LastModified"]) < end


def _safe_path(root: str, relative: str) -> Optional[str]:
    """``root/relative`` unless that would leave ``root`` (keys such as ``a/../../x``)."""
    base = os.path.realpath(root)
    target = os.path.realpath(os.path.join(base, *[p for p in relative.split("/") if p not in ("", ".")]))
    if not target.startswith(base + os.sep):
        return None
    return target


def _download_groups(s3: Any, groups: List[_Group], dest_dir: str, *, max_bytes: int, summary: Dict[str, Any]) -> None:
    """Newest groups first until ``max_bytes``; fills the download counters of ``summary``."""
    os.makedirs(dest_dir, exist_ok=True)
    used = 0
    kept: List[_Group] = []
    dropped: List[_Group] = []
    for group in sorted(groups, key=lambda g: g.modified, reverse=True):
        if dropped or used + group.size > max_bytes:
            dropped.append(group)  # once one is dropped every older one is too: the window stays contiguous
        else:
            kept.append(group)
            used += group.size
    for group in kept:
        for bucket, key, relative in group.items:
            path = _safe_path(dest_dir, relative)
            if path is None:
                summary["unsafe_keys"].append(key)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            s3.download_file(bucket, key, path)
            summary["downloaded_objects"] += 1
    summary["downloaded_bytes"] = used
    summary["truncated"] = bool(dropped)
    # Nothing read although the window holds traffic: its newest object (a batch pair) alone is over the cap.
    summary["unread_newest_bytes"] = dropped[0].size if dropped and not kept else 0
    summary["unread_newest_is_batch_pair"] = bool(dropped and not kept and len(dropped[0].items) > 1)
    summary["skipped_objects"] = sum(len(g.items) for g in dropped)
    summary["skipped_bytes"] = sum(g.size for g in dropped)
    if kept:
        summary["oldest_downloaded"] = min(g.modified for g in kept).isoformat()


def _window_summary(source: Optional[str], start: dt.datetime, end: dt.datetime, max_bytes: int) -> Dict[str, Any]:
    return {"source": source, "window_start": start.isoformat(), "window_end": end.isoformat(), "max_bytes": max_bytes,
            "listed_objects": 0, "in_window_objects": 0, "downloaded_objects": 0, "downloaded_bytes": 0,
            "truncated": False, "skipped_objects": 0, "skipped_bytes": 0, "oldest_downloaded": None, "unsafe_keys": [],
            "unread_newest_bytes": 0, "unread_newest_is_batch_pair": False}


def _window_bounds(hours: float, now: Optional[dt.datetime]) -> Tuple[dt.datetime, dt.datetime]:
    if not hours > 0:
        raise ValueError(f"window hours must be > 0, got {hours!r}")
    end = _aware(now) if now is not None else dt.datetime.now(dt.timezone.utc)
    return end - dt.timedelta(hours=hours), end


def download_window(
    *,
    s3: Any,
    dest_dir: str,
    capture_s3_uri: Optional[str] = None,
    batch_s3_uri: Optional[str] = None,
    window_hours: float = DEFAULT_WINDOW_HOURS,
    max_bytes: int = DEFAULT_MAX_WINDOW_BYTES,
    now: Optional[dt.datetime] = None,
    serving_version: Optional[int] = None,
) -> Dict[str, Any]:
    """Download the traffic of ``[now - window_hours, now)`` (by ``LastModified``) into ``dest_dir``.

    ``capture_s3_uri`` (e.g. ``s3://<inference bucket>/capture/<model>/``): every object in the
    window, at its path relative to the prefix. ``batch_s3_uri`` (``s3://<inference bucket>/batch/<model>/``):
    every ``output/v<version>/<run>/X.out`` in the window with its ``input/X`` as ``batch/<run>/X.out`` and
    ``batch/<run>/X`` (an output whose input is gone is counted in ``unpaired_batch_outputs``, not
    downloaded). With ``serving_version``, an output another version scored is left out (counted per version in
    ``other_version_batch_outputs``): its scores are not the judged model's. One under ``output/<run>/`` (the layout
    before outputs named their version) is judged, counted in ``unversioned_batch_outputs``. ``now`` defaults to the current UTC time; ``max_bytes`` caps the download, newest
    objects first (``truncated`` in the summary). Returns the summary for the report.

    Raises:
        ValueError: a URI is not ``s3://...`` or neither URI is given.
        botocore.exceptions.ClientError: listing or downloading failed.
    """
    if not capture_s3_uri and not batch_s3_uri:
        raise ValueError("download_window needs capture_s3_uri or batch_s3_uri")
    start, end = _window_bounds(window_hours, now)
    summary = _window_summary(capture_s3_uri, start, end, max_bytes)
    summary["batch_source"] = batch_s3_uri
    groups: List[_Group] = []
    if capture_s3_uri:
        bucket, prefix = parse_s3_uri(capture_s3_uri, what="--capture-s3-uri")
        for item in _list(s3, bucket, prefix):
            summary["listed_objects"] += 1
            if _in_window(item, start, end):
                groups.append(_Group(_aware(item["LastModified"]), [(bucket, item["Key"], item["Key"][len(prefix):])], int(item["Size"])))
    if batch_s3_uri:
        bucket, prefix = parse_s3_uri(batch_s3_uri, what="--batch-s3-uri")
        inputs = {item["Key"][len(prefix) + len(TRAFFIC_INPUT):]: item for item in _list(s3, bucket, prefix + TRAFFIC_INPUT)}
        summary["unpaired_batch_outputs"] = 0
        summary["unversioned_batch_outputs"] = 0
        other_versions: Dict[str, int] = {}
        for item in _list(s3, bucket, prefix + TRAFFIC_OUTPUT):
            summary["listed_objects"] += 1
            relative = item["Key"][len(prefix) + len(TRAFFIC_OUTPUT):]
            version, run, name = _batch_output_parts(relative)
            if not name.endswith(BATCH_OUTPUT_SUFFIX) or not _in_window(item, start, end):
                continue
            if version is not None and serving_version is not None and version != serving_version:
                other_versions[str(version)] = other_versions.get(str(version), 0) + 1
                continue
            source = inputs.get(name[: -len(BATCH_OUTPUT_SUFFIX)])
            if source is None:
                summary["unpaired_batch_outputs"] += 1
                continue
            if version is None:  # judged as the serving version's (counted once paired: an unpaired one is not read)
                summary["unversioned_batch_outputs"] += 1
            local = f"batch/{run}/{name[: -len(BATCH_OUTPUT_SUFFIX)]}"
            groups.append(_Group(_aware(item["LastModified"]),
                                 [(bucket, source["Key"], local), (bucket, item["Key"], local + BATCH_OUTPUT_SUFFIX)],
                                 int(source["Size"]) + int(item["Size"])))
        summary["other_version_batch_outputs"] = dict(sorted(other_versions.items(), key=lambda kv: int(kv[0])))
    summary["in_window_objects"] = sum(len(g.items) for g in groups)
    _download_groups(s3, groups, dest_dir, max_bytes=max_bytes, summary=summary)
    return summary


def _batch_output_parts(relative: str) -> Tuple[Optional[int], str, str]:
    """``(version, run, name)`` of an output key relative to ``output/``: ``v<version>/<run>/<name>`` as the transform
    job writes since outputs name the version that scored them, ``<run>/<name>`` (version None) before."""
    first, _, rest = relative.partition("/")
    version = version_of_batch_dir(first)
    if version is not None and "/" in rest:
        run, _, name = rest.partition("/")
        return version, run, name
    return None, first, rest


def download_recent(
    *,
    s3: Any,
    s3_uri: str,
    flag: str,
    dest_dir: str,
    window_hours: float = DEFAULT_LABEL_WINDOW_HOURS,
    max_bytes: int = DEFAULT_MAX_WINDOW_BYTES,
    now: Optional[dt.datetime] = None,
) -> Dict[str, Any]:
    """Download every object under ``s3_uri`` (given as ``flag``) modified in ``[now - window_hours, now)``.

    For inputs that reach further back than the traffic: labels arrive late (the monitor joins them by inference id
    to the window's traffic and, with ``--label-delay-days``, to its earlier runs' records: :func:`download_records`),
    and the skew check needs the
    feature snapshots a window's requests were scored against. Same summary, cap and path handling as
    :func:`download_window`.
    """
    start, end = _window_bounds(window_hours, now)
    summary = _window_summary(s3_uri, start, end, max_bytes)
    bucket, prefix = parse_s3_uri(s3_uri, what=flag)
    groups = []
    for item in _list(s3, bucket, prefix):
        summary["listed_objects"] += 1
        if _in_window(item, start, end):
            groups.append(_Group(_aware(item["LastModified"]), [(bucket, item["Key"], item["Key"][len(prefix):])], int(item["Size"])))
    summary["in_window_objects"] = len(groups)
    _download_groups(s3, groups, dest_dir, max_bytes=max_bytes, summary=summary)
    return summary


# --- the monitor's remote mode ------------------------------------------------------------------------------


@dataclasses.dataclass
class Preflight:
    """What ``--from-s3`` fetched: ``section`` goes into the report as ``sections.remote``; ``errors``
    make the report unhealthy; ``checks`` are warnings (a truncated window, skipped keys)."""

    serving: Optional[ServingVersion]
    section: Dict[str, Any]
    errors: List[Dict[str, str]]
    checks: List[Dict[str, Any]]

    @property
    def not_serving(self) -> bool:
        """The stack's parameter is empty: no version was ever approved (not an error)."""
        return self.section.get("serving", {}).get("state") == STATUS_NOT_SERVING


def check_arguments(args: argparse.Namespace) -> Optional[str]:
    """The first problem with the ``--from-s3`` arguments (a one-line message naming the flag), else ``None``.

    Fills the default of ``args.model`` (the model spec's name) and ``args.labels_dir`` (``labels``
    next to ``--capture-dir``, when ``--labels-s3-uri`` is given).
    """
    if not args.serving_stack:
        return "--from-s3 needs --serving-stack (the serving CloudFormation stack, <project>-<env>-serving)"
    if not args.capture_s3_uri and not args.batch_s3_uri:
        return "--from-s3 needs --capture-s3-uri (s3://<inference bucket>/capture/<model>/) and/or --batch-s3-uri"
    for flag in ("capture_s3_uri", "batch_s3_uri", "labels_s3_uri", "history_s3_uri", "feature_snapshots_s3_uri",
                 "records_s3_uri"):
        value = getattr(args, flag, None)
        if value:
            try:
                parse_s3_uri(value, what="--" + flag.replace("_", "-"))
            except ValueError as exc:
                return str(exc)
    args.model = args.model or args.model_spec.name
    if args.labels_s3_uri and not args.labels_dir:
        args.labels_dir = os.path.join(os.path.dirname(os.path.abspath(args.capture_dir)), "labels")
    if args.history_s3_uri and not args.history_dir:
        args.history_dir = os.path.join(os.path.dirname(os.path.abspath(args.capture_dir)), "history")
    if getattr(args, "label_delay_days", None) is not None and args.history_s3_uri and not args.records_dir:
        args.records_dir = os.path.join(os.path.dirname(os.path.abspath(args.capture_dir)), "records")
    if (getattr(args, "label_delay_days", None) is not None and args.history_s3_uri and args.labels_s3_uri
            and not args.late_labels_dir):
        args.late_labels_dir = os.path.join(os.path.dirname(os.path.abspath(args.capture_dir)), "late-labels")
    if args.feature_snapshots_s3_uri and not args.feature_snapshots_dir:
        args.feature_snapshots_dir = os.path.join(os.path.dirname(os.path.abspath(args.capture_dir)), "snapshots")
    targets = [("--baseline-dir", args.baseline_dir), ("--model-dir", args.model_dir), ("--capture-dir", args.capture_dir)]
    if args.labels_s3_uri:
        targets.append(("--labels-dir", args.labels_dir))
    if args.history_s3_uri:
        targets.append(("--history-dir", args.history_dir))
    if args.feature_snapshots_s3_uri:
        targets.append(("--feature-snapshots-dir", args.feature_snapshots_dir))
    if getattr(args, "label_delay_days", None) is not None and args.history_s3_uri:
        targets.append(("--records-dir", args.records_dir))
        if args.labels_s3_uri:
            targets.append(("--late-labels-dir", args.late_labels_dir))
    for flag, path in targets:
        if not path:
            return f"--from-s3 downloads into {flag}: give it a directory"
        if os.path.isdir(path) and os.listdir(path):
            # Files left from another window would be monitored as if they were this window's.
            return f"{flag} {path!r} is not empty: --from-s3 downloads into it; give an empty or new directory"
    return None


def clients(region: Optional[str]) -> Dict[str, Any]:
    """boto3 clients of ``region`` (default: the job's region) with standard retries (5 attempts)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 5})
    return {name: boto3.client(name, region_name=region, config=config) for name in ("s3", "sagemaker", "cloudformation")}


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def prepare_inputs(args: argparse.Namespace, *, aws: Optional[Mapping[str, Any]] = None,
                   now: Optional[dt.datetime] = None) -> Preflight:
    """Resolve the serving version and fill the local directories named in ``args``; never raises.

    ``aws``: ``{"s3", "sagemaker", "cloudformation"}`` clients (default: :func:`clients` of ``args.region``);
    ``now``: the end of both windows (default: the current UTC time). Nothing is downloaded when no
    version serves. A failed serving lookup still downloads the traffic, so the report shows it.
    """
    errors: List[Dict[str, str]] = []
    checks: List[Dict[str, Any]] = []
    section: Dict[str, Any] = {"serving_stack": args.serving_stack, "model": args.model}
    now = _aware(now) if now is not None else dt.datetime.now(dt.timezone.utc)

    def error(kind: str, message: str, section: Optional[str] = None) -> None:
        """``section``: the one report section a missing download leaves out (the window's other numbers stand)."""
        errors.append({"kind": kind, "message": message, **({"section": section} if section else {})})

    try:
        aws = aws or clients(args.region)
    except Exception as exc:  # noqa: BLE001 - e.g. no region configured: reported, not raised
        error("serving_lookup_failed", f"cannot create AWS clients: {_describe(exc)}")
        return Preflight(None, section, errors, checks)

    serving: Optional[ServingVersion] = None
    try:
        serving = resolve_serving_version(stack_name=args.serving_stack, model=args.model,
                                          cloudformation=aws["cloudformation"], sagemaker=aws["sagemaker"])
    except RemoteError as exc:
        error(exc.kind, str(exc))
        section["serving"] = {"state": "unknown"}
    except Exception as exc:  # noqa: BLE001 - access denied, throttling, unknown package ...
        error("serving_lookup_failed", f"{args.serving_stack} / {package_parameter_name(args.model)}: {_describe(exc)}")
        section["serving"] = {"state": "unknown"}
    else:
        if serving is None:
            section["serving"] = {"state": STATUS_NOT_SERVING, "parameter": package_parameter_name(args.model),
                                  "detail": f"{package_parameter_name(args.model)} of {args.serving_stack} is empty: no version serves yet"}
            return Preflight(None, section, errors, checks)
        section["serving"] = {"state": "serving", **serving.as_dict()}

    if serving is not None:
        fetched = fetch_baseline_and_model(serving, s3=aws["s3"], baseline_dir=args.baseline_dir, model_dir=args.model_dir)
        section["baseline"] = fetched
        errors.extend(fetched["errors"])
        if getattr(args, "endpoint_name", None):
            # What the endpoint really serves, and the requests it answered in the window (for the capture check).
            from pipeline_code.monitoring import serving_truth

            section["endpoint"], found, said = serving_truth.check_from_s3(args, aws, serving, now)
            errors.extend(found)
            checks.extend(said)

    try:
        capture = download_window(s3=aws["s3"], dest_dir=args.capture_dir, capture_s3_uri=args.capture_s3_uri,
                                  batch_s3_uri=args.batch_s3_uri, window_hours=args.window_hours,
                                  max_bytes=args.max_window_bytes, now=now,
                                  serving_version=serving.version if serving is not None else None)
    except Exception as exc:  # noqa: BLE001 - the monitor then reports the (partial) window it has
        error("capture_download_failed", f"{args.capture_s3_uri or args.batch_s3_uri}: {_describe(exc)}")
    else:
        section["capture"] = capture
        checks.extend(_window_checks("capture", capture))
        unread = _unread_window(capture, args.model)
        if unread:
            # Not a quiet day: traffic was there and none of it was judged (e.g. a nightly batch input in one file).
            error("capture_window_unread", f"{args.capture_s3_uri or args.batch_s3_uri}: {unread}")

    if args.labels_s3_uri:
        try:
            labels = download_recent(s3=aws["s3"], s3_uri=args.labels_s3_uri, flag="--labels-s3-uri", dest_dir=args.labels_dir,
                                     window_hours=args.label_window_hours, max_bytes=args.max_window_bytes, now=now)
        except Exception as exc:  # noqa: BLE001
            error("labels_download_failed", f"{args.labels_s3_uri}: {_describe(exc)}", "model_quality")
        else:
            section["labels"] = labels
            checks.extend(_window_checks("labels", labels))

    if args.feature_snapshots_s3_uri:
        try:
            snapshots = download_recent(s3=aws["s3"], s3_uri=args.feature_snapshots_s3_uri, flag="--feature-snapshots-s3-uri",
                                        dest_dir=args.feature_snapshots_dir, window_hours=args.label_window_hours,
                                        max_bytes=args.max_window_bytes, now=now)
        except Exception as exc:  # noqa: BLE001 - the skew check then reports what it lacks
            error("snapshots_download_failed", f"{args.feature_snapshots_s3_uri}: {_describe(exc)}", "feature_skew")
        else:
            section["feature_snapshots"] = snapshots
            checks.extend(_window_checks("feature_snapshots", snapshots))

    if getattr(args, "label_delay_days", None) is not None and args.history_s3_uri:
        # The requests earlier runs recorded, for the labels that arrive after their request left the window: the due
        # part of the look-back first (.late_labels judges a request day once its labels are due).
        lookback = records_lookback_hours(args.label_delay_days, label_window_hours=args.label_window_hours,
                                          window_hours=args.window_hours)
        due_before = now - dt.timedelta(days=args.label_delay_days) + dt.timedelta(hours=args.window_hours)
        try:
            records = download_records(s3=aws["s3"], history_s3_uri=args.history_s3_uri, dest_dir=args.records_dir,
                                       lookback_hours=lookback, max_bytes=args.max_window_bytes, now=now,
                                       due_before=due_before, records_s3_uri=getattr(args, "records_s3_uri", None))
        except Exception as exc:  # noqa: BLE001 - model quality then says which labels went unmatched
            error("records_download_failed", f"{args.history_s3_uri}: {_describe(exc)}", "model_quality")
        else:
            section["prediction_records"] = records
            checks.extend(records_checks(records))
        if args.labels_s3_uri:
            # Every label of the look-back, not only the label window's: a due day is judged with all that came for it.
            try:
                older = download_recent(s3=aws["s3"], s3_uri=args.labels_s3_uri, flag="--labels-s3-uri",
                                        dest_dir=args.late_labels_dir, window_hours=lookback - args.label_window_hours,
                                        max_bytes=args.max_window_bytes,
                                        now=now - dt.timedelta(hours=args.label_window_hours))
            except Exception as exc:  # noqa: BLE001
                error("labels_download_failed", f"{args.labels_s3_uri} (the look-back): {_describe(exc)}", "model_quality")
            else:
                section["late_labels"] = older
                checks.extend(_window_checks("late_labels", older))

    if args.history_s3_uri:
        try:
            section["history"] = download_history(s3=aws["s3"], history_s3_uri=args.history_s3_uri, dest_dir=args.history_dir)
        except Exception as exc:  # noqa: BLE001 - the detector's state is then unknown: unhealthy, reported
            error("history_download_failed", f"{args.history_s3_uri}: {_describe(exc)}", "cumulative_drift")
    return Preflight(serving, section, errors, checks)


def download_history(*, s3: Any, history_s3_uri: str, dest_dir: str, max_reports: int = MAX_HISTORY_REPORTS) -> Dict[str, Any]:
    """The newest ``max_reports`` ``report.json`` objects under ``history_s3_uri`` (the earlier runs' reports), relative
    paths kept; a run that wrote no report (it failed) is simply absent."""
    bucket, prefix = parse_s3_uri(history_s3_uri, what="--history-s3-uri")
    reports = [item for item in _list(s3, bucket, prefix) if item["Key"].endswith("/report.json")]
    reports.sort(key=lambda item: _aware(item["LastModified"]), reverse=True)
    kept, unsafe = 0, []
    for item in reports[:max_reports]:
        target = _safe_path(dest_dir, item["Key"][len(prefix):])
        if target is None:
            unsafe.append(item["Key"])
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        s3.download_file(bucket, item["Key"], target)
        kept += 1
    return {"uri": history_s3_uri, "reports_listed": len(reports), "reports_downloaded": kept, "unsafe_keys": unsafe}


def download_records(*, s3: Any, history_s3_uri: str, dest_dir: str, lookback_hours: float,
                     max_bytes: int = DEFAULT_MAX_WINDOW_BYTES, now: Optional[dt.datetime] = None,
                     due_before: Optional[dt.datetime] = None, records_s3_uri: Optional[str] = None) -> Dict[str, Any]:
    """The earlier runs' prediction records (``date=<day>/run=<run>/predictions.parquet`` under ``records_s3_uri``, the
    tables' layout, and ``<run>/predictions.parquet`` under ``history_s3_uri``, where runs before it wrote them beside
    their reports) written in ``[now - lookback_hours, now)``, relative paths kept, each file's modification time set to its
    ``LastModified`` (when the run that saw those requests wrote them: :mod:`.late_labels` reads it).

    ``due_before``: files written before it hold the requests whose labels are due (judged this run); past
    ``max_bytes`` those come first, the oldest first (their days leave the look-back soonest), then the newer files
    (whose labels are not all due: read to tell their labels from unmatched ones) newest first; default none (every
    file newest first). What was left out is counted (``skipped_objects``, ``skipped_due_objects``) and listed
    (``skipped``: a few keys with when they were written and whether their labels are due). A file that fails to
    download is listed in ``failed`` (its labels then go unmatched, named), never raised; a failed listing is raised
    (the caller reports it). ``not_read``: every file of the look-back left out, failed or at an unsafe key, with when
    it was written (``LastModified``) and why - :func:`late_labels.join_earlier` does not judge the due days they may
    hold."""
    from pipeline_code.monitoring.late_labels import RECORDS_FILE

    start, end = _window_bounds(lookback_hours, now)
    summary = _window_summary(history_s3_uri, start, end, max_bytes)
    summary.update({"failed": [], "due_before": due_before.isoformat() if due_before else None, "skipped": [],
                    "skipped_due_objects": 0, "not_read": []})
    groups = []
    places = [(records_s3_uri, "--records-s3-uri")] if records_s3_uri else []
    for uri, flag in places + [(history_s3_uri, "--history-s3-uri")]:
        bucket, prefix = parse_s3_uri(uri, what=flag)
        for item in _list(s3, bucket, prefix):
            if item["Key"].endswith("/" + RECORDS_FILE):
                summary["listed_objects"] += 1
                if _in_window(item, start, end):
                    groups.append(_Group(_aware(item["LastModified"]),
                                         [(bucket, item["Key"], item["Key"][len(prefix):])], int(item["Size"])))
    summary["in_window_objects"] = len(groups)
    os.makedirs(dest_dir, exist_ok=True)

    def is_due(group: _Group) -> bool:
        return due_before is not None and group.modified < due_before

    due = sorted((g for g in groups if is_due(g)), key=lambda g: g.modified)
    rest = sorted((g for g in groups if not is_due(g)), key=lambda g: g.modified, reverse=True)
    used = 0
    for group in due + rest:
        bucket, key, relative = group.items[0]
        path = _safe_path(dest_dir, relative)

        def not_read(why: str) -> None:
            summary["not_read"].append({"key": key, "written": group.modified.isoformat(), "why": why})

        if path is None:
            summary["unsafe_keys"].append(key)
            not_read("unsafe key")
            continue
        if used + group.size > max_bytes:  # left out, named: their due days carried, their other labels unmatched
            summary["truncated"] = True
            summary["skipped_objects"] += 1
            summary["skipped_bytes"] += group.size
            summary["skipped_due_objects"] += int(is_due(group))
            if len(summary["skipped"]) < 10:
                summary["skipped"].append({"key": key, "written": group.modified.isoformat(), "due": is_due(group)})
            not_read("left out")
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            s3.download_file(bucket, key, path)
        except Exception as exc:  # noqa: BLE001 - one file that fails costs its own requests, not the others'
            summary["failed"].append({"key": key, "error": _describe(exc)[:300]})
            not_read("failed")
            continue
        stamp = group.modified.timestamp()
        os.utime(path, (stamp, stamp))
        used += group.size
        summary["downloaded_objects"] += 1
        oldest = summary["oldest_downloaded"]
        summary["oldest_downloaded"] = min(oldest, group.modified.isoformat()) if oldest else group.modified.isoformat()
    summary["downloaded_bytes"] = used
    return summary


def records_checks(summary: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The warnings of a records download: files left out past ``--max-window-bytes`` (naming how many hold due
    labels) or that failed, and unsafe keys."""
    out = _window_checks("prediction_records", {**summary, "truncated": False})
    if summary["truncated"]:
        out.append(drift.check(
            "prediction_records_truncated", "monitor", summary["downloaded_bytes"], summary["max_bytes"], drift.WARN, op=">=",
            detail=f"{summary['skipped_objects']} of the {summary['in_window_objects']} earlier runs' records files of the "
                   f"look-back ({summary['skipped_bytes']} bytes) were not read past --max-window-bytes "
                   f"{summary['max_bytes']}: {summary['skipped_due_objects']} of them hold requests whose labels are due "
                   "(those are read first, the oldest first; the due days a file left out may hold are not judged this "
                   "run but carried to the next while they are due, late_labels_records_missing names them), the "
                   "others' labels count as unmatched, e.g. "
                   + ", ".join(f"{s['key']} ({s['written']})" for s in summary["skipped"][:3])
                   + f"; {monitor_window_fix()}"))
    if summary["failed"]:
        out.append(drift.check("prediction_records_download_failed", "monitor", len(summary["failed"]), 0,
                               drift.WARN, detail="earlier runs' records not read (the due days they may hold are "
                               "carried to the next run, their other labels go unmatched): "
                               + "; ".join(f"{f['key']}: {f['error']}" for f in summary["failed"][:3])))
    return out


def _unread_window(summary: Mapping[str, Any], model: Optional[str]) -> Optional[str]:
    """Why none of a window that holds objects was read (its newest alone is over the cap), else None."""
    if not summary.get("unread_newest_bytes"):
        return None
    pair = summary.get("unread_newest_is_batch_pair")
    return (f"none of the window's traffic was read: its newest object ({'a batch input with its output, ' if pair else ''}"
            f"{summary['unread_newest_bytes']} bytes) alone is over the download cap of {summary['max_bytes']} bytes; "
            f"{monitor_window_fix(model)} above it" + (", or split the transform input into smaller files" if pair else ""))


def _window_checks(what: str, summary: Mapping[str, Any]) -> List[Dict[str, Any]]:
    out = []
    if summary["truncated"]:
        covered = (f"none of the window's {summary['skipped_objects']} objects ({summary['skipped_bytes']} bytes) was read"
                   if summary["oldest_downloaded"] is None else
                   f"{summary['skipped_objects']} older objects ({summary['skipped_bytes']} bytes) in the window were not read: "
                   f"the window covers only {summary['oldest_downloaded']} .. {summary['window_end']}")
        out.append(drift.check(
            f"{what}_window_truncated", "monitor", summary["downloaded_bytes"], summary["max_bytes"], drift.WARN, op=">=",
            detail=f"{covered}; {monitor_window_fix()}"))
    if summary["unsafe_keys"]:
        out.append(drift.check(f"{what}_unsafe_keys", "monitor", len(summary["unsafe_keys"]), 0, drift.WARN,
                               detail=f"skipped keys that would leave the download directory: {summary['unsafe_keys'][:5]}"))
    others = summary.get("other_version_batch_outputs") or {}
    if others:
        count = sum(others.values())
        listed = ", ".join(f"version {v}: {n}" for v, n in others.items())
        out.append(drift.check(f"{what}_other_version_batch_outputs", "monitor", count, 0, drift.WARN,
                               detail=f"{count} batch outputs scored by another version than the serving one ({listed}) "
                               "were left out: their scores are not this version's (a version approved while or after "
                               "they ran)"))
    if summary.get("unversioned_batch_outputs"):
        out.append(drift.check(f"{what}_unversioned_batch_outputs", "monitor", summary["unversioned_batch_outputs"], 0,
                               drift.WARN, detail=f"{summary['unversioned_batch_outputs']} batch outputs under "
                               "output/<run>/ (written before outputs named their version, output/v<version>/<run>/) "
                               "were judged as the serving version's"))
    if summary.get("unpaired_batch_outputs"):
        out.append(drift.check(f"{what}_unpaired_batch_outputs", "monitor", summary["unpaired_batch_outputs"], 0, drift.WARN,
                               detail="batch outputs whose input object no longer exists were not read"))
    return out


def write_not_serving_report(spec: Any, args: argparse.Namespace, preflight: Preflight, *,
                             cloudwatch_client: Any = None) -> Dict[str, Any]:
    """The report of a run where no version serves: healthy, no drift sections, ``note: NotServing``.

    Not serving is not a monitoring failure (the first approval has not happened): ``MonitorHealthy=1``
    and ``MonitoringErrors=0`` are published (so the health alarm has data and stays OK) and no drift
    or quality metric is.
    """
    detail = preflight.section["serving"]["detail"]
    summary: Dict[str, Any] = {metric.key: None for metric in MONITOR_METRICS}
    if quality_alarm_key(spec.problem_type, spec.primary_metric) == "auc_drop" and spec.problem_type == BINARY:
        summary.pop("quality_drop")  # a binary report judged on AUC has none (its quality is the AUC drop)
    if not getattr(args, "feature_snapshots_s3_uri", None):
        summary.pop("feature_skew_rate")  # only a model scored by id has a skew check
    summary.update({"monitoring_errors": 0, "monitor_healthy": 1, "note": NOT_SERVING})
    report: Dict[str, Any] = {
        "format": report_mod.REPORT_FORMAT,
        "model": spec.name,
        "dataset": spec.dataset,
        "environment": args.environment,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "status": STATUS_NOT_SERVING,
        "healthy": True,
        "note": NOT_SERVING,
        "window": {},
        "summary": summary,
        "errors": [],
        "checks": [drift.check("serving_version", "monitor", None, None, drift.SKIPPED, detail=f"no version serving: {detail}")],
        "sections": {"remote": preflight.section},
    }
    os.makedirs(args.output_dir, exist_ok=True)
    if args.publish_metrics:
        try:
            report["metrics_published"] = report_mod.publish_metrics(report, args.environment, spec.name, region=args.region,
                                                                     client=cloudwatch_client, namespace=args.metric_namespace)
        except Exception as exc:  # noqa: BLE001 - the report still gets written
            report["errors"].append({"kind": "publish_failed", "message": _describe(exc)})
    from pipeline_code.monitoring.monitor import write_results

    write_results(report, args, None)
    report_mod.write_json(report, os.path.join(args.output_dir, "report.json"))
    with open(os.path.join(args.output_dir, "report.html"), "w", encoding="utf-8") as handle:
        handle.write(report_mod.render_html(report))
    return report
