"""Artefact integrity: what a registered model's bytes are, where they live once sealed, how to check them.

A model that passes the gate is *sealed*: its ``model.tar.gz`` is written once, with a conditional
write, to a content-addressed key (:func:`sealed_key`) that the artifacts bucket's policy makes
write-once and undeletable, and the model package records two digests:

* the **archive digest** (:data:`pipeline_code.core.contract.ARCHIVE_SHA256_PROPERTY`): sha256 of ``model.tar.gz`` as stored in S3.
  The deploy handler compares it with the object's bytes before every deployment; it covers
  everything the archive carries, the serving code included.
* the **model digest** (:data:`pipeline_code.core.contract.MODEL_SHA256_PROPERTY`, :func:`model_digest`): sha256 of ``model.json``
  followed by ``feature_metadata.json``, the files the serving code reads. The deploy handler passes
  it to the serving container (:data:`MODEL_SHA256_ENV`), which refuses to load other bytes.

The two complement each other: the serving code cannot vouch for itself (tampered code could skip
its own check), so the code's integrity rests on the archive digest checked before deploy, and the
model's integrity is checked again where it is used.

The **evidence** the gate judged on is digested too. The evaluate and baseline jobs each write
:data:`DIGESTS_FILE` beside their documents (:func:`write_digests`: ``{"<document stem>": "sha256:<hex>"}``,
the form of a ``MetricsSource.ContentDigest``); the register step passes each as the ContentDigest of the
package's ModelMetrics entry naming that document, which no later call can change (UpdateModelPackage takes no
ModelMetrics). ``evaluation.json``, which ModelMetrics does not name, is digested inside ``bias.json``
(:data:`EVALUATION_DIGEST_KEY`), so it rests on bias.json's ContentDigest. The test set the gate judged on
(``contract.TEST_SET_SHA256_PROPERTY``) and the execution's prepared splits (``contract.SPLIT_PROPERTIES``), each with
its digest as Prepare wrote it (``contract.SPLIT_SHA256_PROPERTIES``, :func:`files_digest`), are recorded in the
package's customer metadata. The audit recomputes each digest from the bytes it reads.

A third digest covers what runs the archive: the **container digest** (:data:`pipeline_code.core.contract.CONTAINER_SHA256_PROPERTY`,
:func:`container_digest`), sha256 of the registered inference container's image and environment. A model
package's inference specification can be replaced after registration (``UpdateModelPackage``
``InferenceSpecification``, which no IAM condition key describes), so the deploy handler compares the
package's container with this digest before every deployment.

A fourth, the **content digest** (:data:`pipeline_code.core.contract.MODEL_CONTENT_SHA256_PROPERTY`,
:func:`model_content_digest`), is for comparing runs, not for checking bytes: ``model.json`` and the metadata without
what only says when, where and how a run went (:data:`RUN_SPECIFIC_TRAINING_FIELDS`: ``trained_at``, the library
versions, the checkpoint it resumed from). Two trainings on the same data, code, configuration and seed have the same content digest, while their model
digests differ by ``trained_at``.

Who decided about a version, when and why is kept in the **approval ledger** (:func:`ledger_key`): the deploy
handler writes one write-once JSON record per approval-state decision it observes, which the audit reads back
(:func:`parse_ledger_record`) long after CloudTrail's 90-day event history and the package's overwritten
ApprovalDescription have lost it.

What a version's pipeline run was - the definition it ran, its parameters, its steps - is kept as its **run record**
(:func:`run_record_key`): SageMaker deletes every execution of a pipeline with the pipeline (DeletePipeline), which
removing or renaming a model, or deleting the training stack, does. The deploy handler writes one write-once JSON
record per approved model package with a digest of its content (:func:`run_record_digest`), and the audit reads it
(:func:`parse_run_record`) once the execution is gone.

Standard library only: the handlers, the jobs and the serving container all import it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
from typing import Any, BinaryIO, Dict, Iterable, Mapping, Optional, Sequence

from pipeline_code.core.contract import package_created
from pipeline_code.core.reproducibility import RESUMED_FROM

# The artefact's layout: what training writes and SageMaker tars to MODEL_ARCHIVE.
MODEL_FILE = "model.json"
METADATA_FILE = "feature_metadata.json"
MODEL_ARCHIVE = "model.tar.gz"

# The customer metadata properties of a sealed model package that hold these digests (64 lower-case hex
# digits each) are named in pipeline_code.core.contract (ARCHIVE_/MODEL_/CONTAINER_SHA256_PROPERTY).
# The serving container's environment variable holding the model digest it must find at load.
MODEL_SHA256_ENV = "MLOPS_LOOP_MODEL_SHA256"

# The evaluation report's block describing the sealed artefact, and the JSON paths the pipeline's
# register step reads from it (JsonGet).
ARTIFACT_KEY = "artifact"
SEALED_URI_PATH = f"{ARTIFACT_KEY}.uri"
ARCHIVE_SHA256_PATH = f"{ARTIFACT_KEY}.sha256"
MODEL_SHA256_PATH = f"{ARTIFACT_KEY}.model_sha256"
MODEL_CONTENT_SHA256_PATH = f"{ARTIFACT_KEY}.model_content_sha256"
# The training summary's fields (``feature_metadata.json`` ``training``) that say when and how one run went, not what
# it trained: the content digest leaves them out. A resumed run's model may differ all the same (docs/training.md's
# "Reproducibility": an XGBoost booster resumed from a checkpoint samples other rows), and its digest then differs.
# ``libraries`` (the versions installed where it trained) says where, not what: a version trained before it was recorded
# and its rebuild under this code compare equal when they trained the same model.
RUN_SPECIFIC_TRAINING_FIELDS = ("trained_at", "libraries", *RESUMED_FROM)

# Evidence digests (see the module docstring): the file each job writes, the ContentDigest form, the key in bias.json.
DIGESTS_FILE = "digests.json"
CONTENT_DIGEST_PREFIX = "sha256:"
EVALUATION_DIGEST_KEY = "evaluation_digest"
# Where the register step reads the test set's sha256 (contract.TEST_SET_SHA256_PROPERTY) in the evaluation report.
TEST_SET_SHA256_PATH = "test_set.sha256"


def split_sha256_path(split: str) -> str:
    """Where the register step reads a prepared split's digest (``contract.SPLIT_SHA256_PROPERTIES``) in Prepare's
    summary (``contract.PREPARE_SUMMARY_FILE``): ``splits.<split>.sha256``."""
    return f"splits.{split}.sha256"


# Sealed artefacts live below <model prefix>SEALED_SEGMENT/<archive sha256>/MODEL_ARCHIVE.
SEALED_SEGMENT = "registered"
# The bucket-policy pattern of every sealed key, for every model: pipelines/<model>/registered/...
SEALED_KEY_PATTERN = f"pipelines/*/{SEALED_SEGMENT}/*"
# A single PutObject carries at most 5 GiB; a sealed archive is written in one request.
MAX_SEALED_BYTES = 5 * 1024**3

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_BLOCK = 1 << 20

# The approval ledger: every approval-state decision the deploy handler observes (a model package state change, and
# what it decided: deploy, hold, refuse ...) is one small JSON record, written once (``If-None-Match: *``) to
# ledger_key(); the artifacts bucket's policy makes LEDGER_KEY_PATTERN write-once and undeletable like sealed
# artefacts. Its own top-level prefix, not one below pipelines/<model>/: the training role writes there and runs model
# code, and only the deploy handler's role may add a record. A package's ApprovalDescription is overwritten by every
# later decision (a rollback re-approves) and CloudTrail's event history holds 90 days: the ledger keeps the rest.
LEDGER_SEGMENT = "approval-ledger"
LEDGER_KEY_PATTERN = f"{LEDGER_SEGMENT}/*"
# The record's format (the ``schema`` field), and the fields every record has. A record also names its model package:
# ``package_arn`` and ``package_created`` (contract.package_created), optional fields (records written before
# package_created existed lack it: ledger_record_package).
LEDGER_SCHEMA = "mlops-loop/approval-ledger/1"
LEDGER_REQUIRED = ("schema", "recorded_at", "group", "model", "version", "trigger", "package", "decision")
# Who records: a state change of the registry, or a reconcile (a retry, a settled stack, by hand) that decided.
LEDGER_STATE_CHANGE, LEDGER_RECONCILE = "state-change", "reconcile"
# A version's run record: the pipeline execution that registered it (DescribePipelineExecution, the definition it ran,
# its parameters and steps), one write-once JSON document per model package at run_record_key(), written by the deploy
# handler when the version is approved; the artifacts bucket's policy makes RUN_RECORD_KEY_PATTERN write-once and
# undeletable like the ledger. Its own top-level prefix for the same reason as the ledger's (the training role writes
# below pipelines/<model>/ and runs model code). ``digest`` is the sha256 of the record without it (run_record_digest).
RUN_RECORD_SEGMENT = "run-records"
RUN_RECORD_KEY_PATTERN = f"{RUN_RECORD_SEGMENT}/*"
RUN_RECORD_FILE = "run-record.json"
RUN_RECORD_SCHEMA = "mlops-loop/run-record/1"
RUN_RECORD_REQUIRED = ("schema", "recorded_at", "group", "model", "version", "package_arn", "package_created",
                       "execution_arn", "execution", "definition", "parameters", "steps", "digest")
_LEDGER_NAME = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)-([a-z0-9-]+)\.json$")
_SLUG = re.compile(r"[^a-z0-9]+")


# A model's pipeline writes its working data - what a run only needs while it runs and for a look back later (the
# prepared train/validation sets, training, tuning and compile outputs, spot checkpoints) - below
# <model prefix>WORK_SEGMENT/, which expires (DataLake); what a registered version points at (evaluation and
# baseline reports, model cards, sealed archives) and the frozen test set stay outside it.
WORK_SEGMENT = "work"
# The frozen test set every run and every champion is scored on: <model prefix>FROZEN_TEST_SEGMENT/.
FROZEN_TEST_SEGMENT = "frozen-test"
# A run's reports, each below <model prefix><execution id>/<segment>/: the evaluation (gate verdict, quality, fairness,
# explanations), the baseline statistics and constraints, the model card's document.
EVALUATE_SEGMENT, BASELINE_SEGMENT, MODEL_CARD_SEGMENT = "evaluate", "baseline", "model-card"
RUN_REPORT_SEGMENTS = (EVALUATE_SEGMENT, BASELINE_SEGMENT, MODEL_CARD_SEGMENT)
# The evidence a registered version rests on that SageMaker's own processing-output upload writes (so no write can be
# made conditional, and Prepare writes the frozen set back unchanged every run): the artifacts bucket keeps every
# version ever written there (no old-version expiry, and no principal may delete a version: DataLake). Bucket-policy
# patterns for every model (``*`` spans ``/``): pipelines/<model>/<execution id>/<report segment>/..., the frozen sets.
RUN_REPORT_KEY_PATTERNS = tuple(f"pipelines/*/*/{segment}/*" for segment in RUN_REPORT_SEGMENTS)
FROZEN_TEST_KEY_PATTERN = f"pipelines/*/{FROZEN_TEST_SEGMENT}/*"


def evaluation_report_pattern(model: str) -> str:
    """The keys of ``model``'s evaluation step reports (evaluation.json, bias.json, ...) of every execution: what the
    deploy handler reads to check a version's promotion gate."""
    return f"{model_prefix(model)}*/{EVALUATE_SEGMENT}/evaluation/*"


def model_prefix(model: str) -> str:
    """Key prefix (artifacts bucket) of everything one model's pipeline writes: ``pipelines/<model>/``."""
    return f"pipelines/{model}/"


def work_prefix(model: str) -> str:
    """Key prefix of one model's pipeline working data: ``pipelines/<model>/work/``."""
    return f"{model_prefix(model)}{WORK_SEGMENT}/"


def frozen_test_prefix(model: str) -> str:
    """Key prefix of one model's frozen test set: ``pipelines/<model>/frozen-test/``."""
    return f"{model_prefix(model)}{FROZEN_TEST_SEGMENT}/"


def sealed_prefix(model: str) -> str:
    """Key prefix of one model's sealed artefacts: ``pipelines/<model>/registered/``."""
    return f"{model_prefix(model)}{SEALED_SEGMENT}/"


def ledger_model_prefix(model: str) -> str:
    """Key prefix (artifacts bucket) of one model's approval ledger: ``approval-ledger/<model>/``."""
    return f"{LEDGER_SEGMENT}/{model}/"


def ledger_prefix(model: str, version: int) -> str:
    """Key prefix of one version's ledger records: ``approval-ledger/<model>/<version>/``."""
    return f"{ledger_model_prefix(model)}{int(version)}/"


def ledger_package_prefix(model: str, version: int, package_created: Optional[str]) -> str:
    """Key prefix of the ledger records of one model package: ``approval-ledger/<model>/<version>/<created>/``,
    ``created`` the package's creation time (``contract.package_created``); a group deleted and created again restarts
    at version 1 under the same ARNs, and its new v1's records go below a prefix of their own. Without a creation time
    (the package could not be described when the record was written), the version's prefix, where records were
    written before they named their package."""
    return f"{ledger_prefix(model, version)}{package_created}/" if package_created else ledger_prefix(model, version)


def ledger_key(model: str, version: int, at: dt.datetime, event: str, nonce: str,
               package_created: Optional[str] = None) -> str:
    """``approval-ledger/<model>/<version>/<created>/<UTC time>-<event>-<nonce>.json``: one record of the package
    created at ``package_created`` (:func:`ledger_package_prefix`; default unknown: no ``<created>/``), listed in time
    order. (The deploy handler files a reconcile's once-only refused / held record under the time of the approval
    decision it is about, not the time it writes it; its ``recorded_at`` says when.)

    ``at`` (made UTC; naive is taken as UTC) to the microsecond, ``event`` a word for what happened (``approved``,
    ``rejected``, ``reconcile``; lower-cased, other characters become ``-``), ``nonce`` what tells two records of
    one microsecond apart (the handler: random hex), so two deliveries of one event are two records.
    """
    stamp = (at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
    kebab = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", event).lower()  # PendingManualApproval -> pending-manual-approval
    words = "-".join(w for w in (_SLUG.sub("-", kebab).strip("-"), _SLUG.sub("", nonce.lower())) if w)
    return f"{ledger_package_prefix(model, version, package_created)}{stamp:%Y%m%dT%H%M%S.%fZ}-{words}.json"


def run_record_model_prefix(model: str) -> str:
    """Key prefix (artifacts bucket) of one model's run records: ``run-records/<model>/``."""
    return f"{RUN_RECORD_SEGMENT}/{model}/"


def run_record_key(model: str, version: int, package_created: str) -> str:
    """``run-records/<model>/<version>/<created>/run-record.json``: the one run record of the model package created at
    ``package_created`` (``contract.package_created``: a group created again restarts at version 1, and its new v1 gets a
    key of its own). One key per package, so a second write of it is refused (``If-None-Match``): written once."""
    if not package_created:
        raise ValueError("a run record is keyed by its package's creation time, and none was given")
    return f"{run_record_model_prefix(model)}{int(version)}/{package_created}/{RUN_RECORD_FILE}"


def run_record_digest(record: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of ``record`` without its ``digest`` field, as canonical JSON (sorted keys, no spaces, UTF-8)."""
    body = {k: v for k, v in record.items() if k != "digest"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return content_digest(hashlib.sha256(canonical).hexdigest())


def _parse_record(body: bytes, schema: str, required: Sequence[str]) -> Dict[str, Any]:
    """An evidence record (ledger or run record) read back: a JSON object of ``schema`` with every ``required`` field and
    a number as its ``version``; ValueError saying which of these it is not."""
    try:
        record = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"not UTF-8 JSON ({error})") from None
    if not isinstance(record, dict):
        raise ValueError(f"not a JSON object but {type(record).__name__}")
    if record.get("schema") != schema:
        raise ValueError(f"schema {record.get('schema')!r}, not {schema!r}")
    missing = [name for name in required if name not in record]
    if missing:
        raise ValueError(f"field(s) {', '.join(missing)} missing")
    if isinstance(record["version"], bool) or not isinstance(record["version"], int):
        raise ValueError(f"version {record['version']!r} is not a number")
    return record


def parse_run_record(body: bytes) -> Dict[str, Any]:
    """One run record read back; ValueError saying what is wrong when it is not one (not UTF-8 JSON, not an object,
    another ``schema``, a required field missing, a version that is not a number, a ``digest`` its content does not
    have)."""
    record = _parse_record(body, RUN_RECORD_SCHEMA, RUN_RECORD_REQUIRED)
    actual = run_record_digest(record)
    if record["digest"] != actual:
        raise ValueError(f"its content hashes to {actual}, not the digest {record['digest']!r} it records: it was "
                         "altered after it was written")
    return record


def ledger_record_package(record: Mapping[str, Any]) -> tuple[Optional[str], Optional[str]]:
    """(ARN, creation time as ``contract.package_created``) of the model package a ledger record is about; None for what
    it does not say. The time is the record's ``package_created``, else the ``CreationTime`` of the package as the
    handler described it (records have held it from the first), so records written before ``package_created``
    existed name their package too; a record whose package could not be described names none."""
    package = record.get("package") if isinstance(record.get("package"), Mapping) else {}
    detail = ((record.get("event") or {}).get("detail") or {}) if isinstance(record.get("event"), Mapping) else {}
    arn = record.get("package_arn") or detail.get("ModelPackageArn")
    created = record.get("package_created") or package.get("CreationTime")
    try:
        stamp = package_created(created) if created else None
    except ValueError:
        stamp = None
    return (arn if isinstance(arn, str) and arn else None), stamp


def ledger_key_time(key: str) -> Optional[str]:
    """The ISO time a ledger key names (``...-20270101T000000.000000Z-approved-ab12.json`` -> ``2027-01-01T00:00:00.000000Z``),
    else None."""
    match = _LEDGER_NAME.match(key.rsplit("/", 1)[-1])
    if not match:
        return None
    try:
        return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S.%fZ").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None


def parse_ledger_record(body: bytes) -> Dict[str, Any]:
    """One ledger record read back; ValueError saying what is wrong when it is not one (not UTF-8 JSON, not an
    object, another ``schema``, a required field missing, a version that is not a number)."""
    record = _parse_record(body, LEDGER_SCHEMA, LEDGER_REQUIRED)
    for name in ("package", "decision"):
        if not isinstance(record[name], dict):
            raise ValueError(f"field {name} is not an object")
    return record


def sealed_key(prefix: str, archive_sha256: str) -> str:
    """``<prefix><archive sha256>/model.tar.gz``: the key names its content, so it is written once."""
    if not SHA256_HEX.match(archive_sha256):
        raise ValueError(f"archive digest must be 64 lower-case hex digits, got {archive_sha256!r}")
    return f"{prefix}{archive_sha256}/{MODEL_ARCHIVE}"


def digest_of_sealed_key(key: str) -> Optional[str]:
    """The archive digest a sealed key names (``.../registered/<sha256>/model.tar.gz``), else None."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[-1] == MODEL_ARCHIVE and parts[-3] == SEALED_SEGMENT and SHA256_HEX.match(parts[-2]):
        return parts[-2]
    return None


def container_digest(image: str, environment: Optional[Mapping[str, str]]) -> str:
    """Hex sha256 of an inference container's image and environment, as canonical JSON.

    ``{"Environment": {...}, "Image": "..."}`` with sorted keys and no spaces; no environment is ``{}``. The
    pipeline computes it from what it registers, the deploy handler from what the package holds.
    """
    document = {"Environment": dict(environment or {}), "Image": image}
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sha256_stream(stream: BinaryIO, *, limit: Optional[int] = None) -> str:
    """Hex sha256 of a binary stream read to its end (at most ``limit`` bytes, else ValueError)."""
    digest, seen = hashlib.sha256(), 0
    for block in iter(lambda: stream.read(_BLOCK), b""):
        seen += len(block)
        if limit is not None and seen > limit:
            raise ValueError(f"stream is larger than {limit} bytes")
        digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as handle:
        return sha256_stream(handle)


def sha256_concatenated(paths: Iterable[str], *, length_prefixed: bool = False) -> str:
    """Hex sha256 of the files' bytes, one after the other; ``length_prefixed``: each file's size and ``:`` first, so
    moving bytes from one file to the next changes it."""
    digest = hashlib.sha256()
    for path in paths:
        if length_prefixed:
            digest.update(f"{os.path.getsize(path)}:".encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(_BLOCK), b""):
                digest.update(block)
    return digest.hexdigest()


def files_digest(file_sha256: Mapping[str, str]) -> str:
    """Hex sha256 of a set of files given as ``{relative path: hex sha256 of its bytes}``: of that mapping as
    canonical JSON (keys sorted, no spaces; paths with ``/``).

    It depends on the files' names and bytes alone, not on the order they are listed or were written in; a changed
    byte, or a file renamed, added or removed, changes it. Prepare computes it over each split it writes
    (:func:`directory_digest`), the audit over the objects now under the split's S3 location (each object's
    :func:`stored_sha256`, its key relative to the location), so neither needs the other's listing.

    Raises:
        ValueError: a digest that is not 64 lower-case hex digits.
    """
    for path, digest in file_sha256.items():
        if not SHA256_HEX.match(digest):
            raise ValueError(f"{path}: digest must be 64 lower-case hex digits, got {digest!r}")
    return hashlib.sha256(json.dumps(dict(file_sha256), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def directory_digest(directory: str) -> str:
    """:func:`files_digest` of every file below ``directory`` (recursively, hidden ones too: what a SageMaker
    ProcessingOutput uploads), each by its path relative to ``directory``."""
    found = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            found[os.path.relpath(path, directory).replace(os.sep, "/")] = sha256_file(path)
    return files_digest(found)


def model_digest(model_dir: str) -> Optional[str]:
    """sha256 of ``model.json`` followed by ``feature_metadata.json`` in ``model_dir``; None when either is missing."""
    paths = [os.path.join(model_dir, MODEL_FILE), os.path.join(model_dir, METADATA_FILE)]
    if not all(os.path.isfile(p) for p in paths):
        return None
    return sha256_concatenated(paths)


def model_content_digest(model_dir: str) -> Optional[str]:
    """sha256 of what a model is, for comparing two runs: ``<size>:`` and the bytes of ``model.json``, then the
    canonical JSON (keys sorted, no spaces) of ``feature_metadata.json`` without :data:`RUN_SPECIFIC_TRAINING_FIELDS`
    in its ``training`` block. None when either file is missing; ValueError when the metadata is not a JSON object."""
    model_path, metadata_path = os.path.join(model_dir, MODEL_FILE), os.path.join(model_dir, METADATA_FILE)
    if not (os.path.isfile(model_path) and os.path.isfile(metadata_path)):
        return None
    with open(metadata_path, encoding="utf-8") as handle:
        metadata = json.load(handle)
    if not isinstance(metadata, dict):
        raise ValueError(f"{metadata_path}: not a JSON object")
    training = metadata.get("training")
    if isinstance(training, dict):
        metadata = {**metadata, "training": {k: v for k, v in training.items() if k not in RUN_SPECIFIC_TRAINING_FIELDS}}
    digest = hashlib.sha256(f"{os.path.getsize(model_path)}:".encode())
    with open(model_path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    digest.update(json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    return digest.hexdigest()


def digest_key(filename: str) -> str:
    """The key of a document in :data:`DIGESTS_FILE`: its name without the extension (``bias.json`` -> ``bias``),
    a plain JSON path for the register step's JsonGet."""
    return filename.rsplit(".", 1)[0]


def content_digest(hex_digest: str) -> str:
    """``sha256:<hex>``: the form SageMaker takes as a ``MetricsSource.ContentDigest``."""
    return f"{CONTENT_DIGEST_PREFIX}{hex_digest}"


def hex_of_content_digest(value: Any) -> Optional[str]:
    """The lower-case hex digest of a ``sha256:<hex>`` ContentDigest (any case, as SageMaker admits); None otherwise."""
    if not isinstance(value, str) or value[: len(CONTENT_DIGEST_PREFIX)].lower() != CONTENT_DIGEST_PREFIX:
        return None
    digest = value[len(CONTENT_DIGEST_PREFIX):].lower()
    return digest if SHA256_HEX.match(digest) else None


def write_digests(directory: str, filenames: Iterable[str]) -> Dict[str, str]:
    """Write :data:`DIGESTS_FILE` in ``directory``: each of ``filenames`` (in that directory) by :func:`digest_key`
    as a ContentDigest; return that mapping. Call it once the documents are final."""
    digests = {digest_key(name): content_digest(sha256_file(os.path.join(directory, name))) for name in filenames}
    with open(os.path.join(directory, DIGESTS_FILE), "w", encoding="utf-8") as handle:
        json.dump(digests, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return digests


def read_digests(directory: str) -> Dict[str, str]:
    """``{file name: hex sha256}`` of the documents in ``directory`` that its :data:`DIGESTS_FILE` names (empty
    without one); a named document that is gone maps to its recorded digest all the same."""
    path = os.path.join(directory, DIGESTS_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        recorded = json.load(handle)
    names = {digest_key(name): name for name in sorted(os.listdir(directory)) if name != DIGESTS_FILE}
    return {names.get(key, f"{key}.json"): hex_of_content_digest(value) or "" for key, value in recorded.items()}


def hex_to_base64(hex_digest: str) -> str:
    """S3's form of a sha256 checksum (``x-amz-checksum-sha256``): the 32 bytes, base64-encoded."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def base64_to_hex(checksum: str) -> Optional[str]:
    """The hex digest of an S3 full-object sha256 checksum; None for a composite one (``...-<parts>``) or garbage."""
    if not checksum or "-" in checksum:
        return None
    try:
        raw = base64.b64decode(checksum, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


def stored_sha256(s3_client: Any, bucket: str, key: str) -> str:
    """Hex sha256 of an S3 object: its stored full-object checksum when it has one, else its bytes read and hashed.

    ``s3_client`` is a boto3 S3 client (``HeadObject`` with ``ChecksumMode``, and ``GetObject`` for the
    fallback); its errors propagate.
    """
    head = s3_client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    stored = base64_to_hex(head.get("ChecksumSHA256") or "")
    if stored is not None and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
        return stored
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        return sha256_stream(body)
    finally:
        body.close()
