"""Gathering one model version's record: package, pipeline execution, evaluation, approvals, lineage, deployment.

Every gatherer reports what it could not read as a gap instead of failing the audit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pipeline_code.core import approval, integrity
from pipeline_code.core.contract import (
    ARCHIVE_SHA256_PROPERTY,
    CODE_VERSION_PROPERTY,
    CONTAINER_SHA256_PROPERTY,
    COMMIT_VERSION,
    DIRTY_VERSION_SUFFIX,
    MODEL_SHA256_PROPERTY,
    EVALUATION_FILE,
    FROZEN_TEST_PROPERTY,
    GATE_PARAMETERS,
    INPUT_FEATURES_PROPERTY,
    INPUT_LABELS_PROPERTY,
    JOB_CODE_HASH_PROPERTY,
    MANIFEST_FILE,
    MODEL_SPEC_SHA256_PROPERTY,
    PACKAGE_ARN,
    PIPELINE_EXECUTION_ID_PROPERTY,
    PIPELINE_NAME_PROPERTY,
    REGISTERED_PROPERTIES,
    SPLIT_PROPERTIES,
    SPLIT_SHA256_PROPERTIES,
    TEST_FILE,
    TEST_SET_SHA256_PROPERTY,
    TRIGGER_REASON_PROPERTY,
    UNKNOWN_VERSION,
    approver_role_name,
    team_approver_role_name,
    legacy_model_card_name,
    model_card_name,
    package_created,
)
from pipeline_code.training.model_card.content import card_package

from .aws import (
    AuditError,
    Clients,
    Names,
    Gaps,
    as_datetime,
    attempt,
    aws_errors,
    describe_error,
    error_code,
    is_credentials_error,
    list_pages,
    s3_parts,
    iso_time,
)


CLOUDTRAIL_HISTORY_DAYS = 90

_EXECUTION_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:pipeline/[^/\s]+/execution/[^/\s]+")

_SUCCESS = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
_STACK_TERMINAL = (
    "CREATE_COMPLETE", "UPDATE_COMPLETE", "CREATE_FAILED", "UPDATE_FAILED", "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "DELETE_COMPLETE", "IMPORT_COMPLETE",
)  # fmt: skip


def check_credentials(clients: Clients) -> Dict[str, str]:
    """The caller identity; raises AuditError when there are no usable credentials."""
    try:
        identity = clients.sts.get_caller_identity()
    except aws_errors() as exc:
        if is_credentials_error(exc):
            raise AuditError(
                f"no usable AWS credentials ({describe_error(exc)}): configure a profile or role for the environment's account"
            ) from None
        raise
    return {"account": identity.get("Account", ""), "arn": identity.get("Arn", "")}


def find_package(clients: Clients, names: Names, version: int, *, account: Optional[str] = None) -> str:
    """The ARN of ``version`` of the model's group; AuditError when the group or version is unknown (naming
    ``account``, the credentials' account, when given; default: not named)."""
    sm = clients.sagemaker
    try:
        sm.describe_model_package_group(ModelPackageGroupName=names.group)
    except aws_errors() as exc:
        if is_credentials_error(exc):
            raise  # the command words it, with the account to log in to
        if error_code(exc) in ("ValidationException", "ResourceNotFound", "ValidationError"):
            where = f" in account {account}, {clients.sagemaker.meta.region_name}" if account else ""
            raise AuditError(
                f"unknown model {names.model!r} in environment {names.env!r}: model package group {names.group!r} "
                f"does not exist{where} (is it deployed there? check --model, --env, --project, --region and --account)"
            ) from None
        raise
    packages = list_pages(sm.list_model_packages, "ModelPackageSummaryList", ModelPackageGroupName=names.group)
    for package in packages:
        if package.get("ModelPackageVersion") == version:
            return package["ModelPackageArn"]
    known = sorted(p.get("ModelPackageVersion") for p in packages if p.get("ModelPackageVersion") is not None)
    listing = f"versions {known[0]}..{known[-1]}" if known else "no versions"
    raise AuditError(f"unknown --version {version} of {names.group!r}: the group has {listing}")


def serving_package(clients: Clients, names: Names, gaps: Gaps) -> Tuple[str, str]:
    """(package ARN, how it was found) of what serves now; AuditError when nothing can be found."""
    from botocore.exceptions import ClientError

    try:
        stacks = clients.cloudformation.describe_stacks(StackName=names.serving_stack)["Stacks"]
        parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in stacks[0].get("Parameters") or []}
        value = parameters.get(names.parameter)
        if value and PACKAGE_ARN.match(value):
            return value, f"parameter {names.parameter} of stack {names.serving_stack}"
        gaps.add(
            f"stack {names.serving_stack} has no model package ARN in parameter {names.parameter}; resolved through the endpoint"
        )
    except ClientError as exc:
        gaps.add(f"serving stack {names.serving_stack}: {describe_error(exc)}; resolved through the endpoint")
    try:
        endpoint = clients.sagemaker.describe_endpoint(EndpointName=names.endpoint)
        config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        for variant in config.get("ProductionVariants") or []:
            model = clients.sagemaker.describe_model(ModelName=variant["ModelName"])
            containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
            for container in containers:
                arn = container.get("ModelPackageName") or ""
                if PACKAGE_ARN.match(arn):
                    return arn, f"model {variant['ModelName']} of endpoint {names.endpoint} (stack parameter unavailable)"
    except ClientError as exc:
        raise AuditError(
            f"nothing serves model {names.model!r} in {names.env!r}: no {names.parameter} in stack {names.serving_stack} "
            f"and endpoint {names.endpoint!r} cannot be read ({describe_error(exc)})"
        ) from None
    raise AuditError(f"endpoint {names.endpoint!r} serves no versioned model package: use --version")


def _execution(clients: Clients, package: Mapping[str, Any], gaps: Gaps) -> Optional[Dict[str, Any]]:
    sm = clients.sagemaker
    metadata = package.get("CustomerMetadataProperties") or {}
    arn = (package.get("MetadataProperties") or {}).get("GeneratedBy") or ""
    how = "MetadataProperties.GeneratedBy"
    pipeline, execution_id = metadata.get(PIPELINE_NAME_PROPERTY), metadata.get(PIPELINE_EXECUTION_ID_PROPERTY)
    if _EXECUTION_ARN.fullmatch(arn):
        # GeneratedBy is set at registration and no API changes it; the customer metadata can be edited.
        named_pipeline, named_execution = arn.split(":", 5)[5].split("/")[1::2]
        if (execution_id and execution_id != named_execution) or (pipeline and pipeline.lower() != named_pipeline.lower()):
            gaps.add(
                f"pipeline execution: the customer metadata names execution {execution_id or '(none)'} of pipeline "
                f"{pipeline or '(none)'}, but MetadataProperties.GeneratedBy, recorded at registration, names {arn}; the "
                "report follows GeneratedBy (the customer metadata was changed after registration)"
            )
    else:
        arn, how = "", "customer metadata pipeline_execution_id"
        if not (pipeline and execution_id):
            gaps.add("pipeline execution: the package records neither GeneratedBy nor pipeline_name + pipeline_execution_id")
            return None
        summaries = attempt(
            gaps,
            f"pipeline executions of {pipeline}",
            lambda: list_pages(sm.list_pipeline_executions, "PipelineExecutionSummaries", PipelineName=pipeline),
        )
        for summary in summaries or []:
            if summary["PipelineExecutionArn"].endswith(f"/execution/{execution_id}"):
                arn = summary["PipelineExecutionArn"]
        if not arn:
            if summaries is not None:
                gaps.add(f"pipeline execution {execution_id} of {pipeline} is no longer listed (deleted or expired)")
            return None
    described = attempt(gaps, f"pipeline execution {arn}", lambda: sm.describe_pipeline_execution(PipelineExecutionArn=arn))
    if described is None:
        return None
    parameters = attempt(
        gaps,
        "pipeline execution parameters",
        lambda: list_pages(sm.list_pipeline_parameters_for_execution, "PipelineParameters", PipelineExecutionArn=arn),
    )
    steps = attempt(
        gaps,
        "pipeline execution steps",
        lambda: list_pages(
            sm.list_pipeline_execution_steps, "PipelineExecutionSteps", PipelineExecutionArn=arn, SortOrder="Ascending"
        ),
    )
    out = {
        "arn": arn,
        "found_by": how,
        "status": described.get("PipelineExecutionStatus"),
        "display_name": described.get("PipelineExecutionDisplayName"),
        "started": iso_time(described.get("CreationTime")),
        "last_modified": iso_time(described.get("LastModifiedTime")),
        "parameters": {p["Name"]: p.get("Value") for p in parameters or []},
        "steps": [],
        "registered_this_package": None,
        **_started_by(described.get("CreatedBy")),
    }
    _add_steps(out, steps or [], package)
    if steps is not None and out["registered_this_package"] is None:
        gaps.add(f"pipeline execution {arn} has no Register step naming a model package: the link to this version is unconfirmed")
    elif out["registered_this_package"] is False:
        gaps.add(f"pipeline execution {arn} registered a different model package than this one: the lineage link is inconsistent")
    return out


def _add_steps(out: Dict[str, Any], steps: Sequence[Mapping[str, Any]], package: Mapping[str, Any]) -> None:
    """``out["steps"]`` from ``ListPipelineExecutionSteps`` items, and whether their Register step created ``package``."""
    for step in steps:
        meta = step.get("Metadata") or {}
        job = next((v.get("Arn") for v in meta.values() if isinstance(v, Mapping) and v.get("Arn")), None)
        out["steps"].append(
            {
                "name": step.get("StepName"),
                "status": step.get("StepStatus"),
                "started": iso_time(step.get("StartTime")),
                "ended": iso_time(step.get("EndTime")),
                "resource": job,
                "cached_from": (step.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn"),
            }
        )
        registered = (meta.get("RegisterModel") or {}).get("Arn")
        if registered:
            out["registered_this_package"] = registered.lower() == package["ModelPackageArn"].lower()


RUN_RECORD_SOURCE = "run record from the evidence copy written at approval"


def _run_record(clients: Clients, names: Names, version: int, package: Mapping[str, Any], model_data: Sequence[str],
                gaps: Gaps) -> Optional[Dict[str, Any]]:
    """The execution as the deploy handler's run record keeps it (``integrity.run_record_key`` in the artifacts bucket
    the version's sealed ModelDataUrl names, its digest checked by ``integrity.parse_run_record``), in
    :func:`_execution`'s shape plus the ``definition`` it ran; None, with a gap, when there is none to read."""
    sealed, created = _sealed_location(model_data), as_datetime(package.get("CreationTime"))
    if sealed is None or created is None:
        return None  # registered before sealing (a gap of its own), so before run records
    uri = f"s3://{sealed[0]}/{integrity.run_record_key(names.model, version, package_created(created))}"
    try:
        body = _read_bytes(clients, uri)
    except aws_errors() as exc:
        if is_credentials_error(exc):
            raise
        gaps.add(f"run record: no evidence copy at {uri} (the deploy handler keeps one when a version is approved): "
                 "what the execution ran is not on record" if error_code(exc) in ("NoSuchKey", "404") else
                 f"run record {uri}: {describe_error(exc)}")
        return None
    try:
        record = integrity.parse_run_record(body)
        if record["package_arn"] != package.get("ModelPackageArn") or record["version"] != version:
            raise ValueError(f"it records v{record['version']} ({record['package_arn']}), not this version's package")
    except ValueError as exc:
        gaps.add(f"run record {uri} does not parse as this version's run record: {exc}")
        return None
    execution = record["execution"] if isinstance(record["execution"], Mapping) else {}
    out: Dict[str, Any] = {
        "arn": record["execution_arn"],
        "found_by": f"{RUN_RECORD_SOURCE} ({uri}, recorded {iso_time(record['recorded_at'])}, digest verified)",
        "status": execution.get("PipelineExecutionStatus"),
        "display_name": execution.get("PipelineExecutionDisplayName"),
        "started": iso_time(execution.get("CreationTime")),
        "last_modified": iso_time(execution.get("LastModifiedTime")),
        "parameters": {p["Name"]: p.get("Value") for p in record["parameters"] or [] if isinstance(p, Mapping)},
        "steps": [],
        "registered_this_package": None,
        "definition": {"PipelineDefinition": (record["definition"] or {}).get("body")},
        **_started_by(execution.get("CreatedBy")),
    }
    _add_steps(out, record["steps"] or [], package)
    return out


def _read_bytes(clients: Clients, uri: str) -> bytes:
    bucket, key = s3_parts(uri)
    return clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _read_json(clients: Clients, uri: str) -> Dict[str, Any]:
    return json.loads(_read_bytes(clients, uri))


# The digests without which the deploy handler refuses a version (a version sealed before container digests were
# recorded still serves, its container unverified).
_DIGESTS = (ARCHIVE_SHA256_PROPERTY, MODEL_SHA256_PROPERTY)


def _integrity(clients: Clients, package: Mapping[str, Any], metadata: Mapping[str, Any], model_data: List[str],
               history: Optional[List[Dict[str, Any]]], gaps: Gaps, now: dt.datetime) -> Dict[str, Any]:
    """The digests recorded at registration, whether the artefact in S3 still holds those bytes (``verified``: True /
    False, or None when it could not be checked - the reason is a gap) and whether the inference container is the one
    registered (``container_verified``, alike). ``history`` is the version's UpdateModelPackage calls (None when
    CloudTrail could not be read): it tells a digest removed after registration from one never recorded."""
    out: Dict[str, Any] = {
        "sha256": metadata.get(ARCHIVE_SHA256_PROPERTY),
        "model_sha256": metadata.get(MODEL_SHA256_PROPERTY),
        "container_sha256": metadata.get(CONTAINER_SHA256_PROPERTY),
        "verified": None,
        "container_verified": None,
    }
    absent = [name for name in _DIGESTS if not metadata.get(name)]
    if absent:
        gaps.add(f"integrity: {', '.join(absent)} {'is' if len(absent) == 1 else 'are'} absent "
                 f"({_why_absent(absent, package, model_data, history, now)}); the deploy handler refuses to deploy the version")
    if not out["container_sha256"] and not absent:
        # Sealed, so the handler deploys it: its container is unverified. (Unsealed, it is refused anyway.)
        why = _removed_by([CONTAINER_SHA256_PROPERTY], history) or (
            "registered before container digests were recorded, or removed without a record in CloudTrail's history")
        gaps.add(f"integrity: {CONTAINER_SHA256_PROPERTY} is absent ({why}); the version's inference container (image and "
                 "environment) is not verified, and the deploy handler deploys it unverified")
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    if out["container_sha256"]:
        if len(containers) != 1:
            out["container_verified"] = False
            gaps.add(f"integrity: the version has {len(containers)} inference containers, the pipeline registers one: its "
                     "inference specification was changed after registration")
        else:
            now_digest = integrity.container_digest(containers[0].get("Image") or "", containers[0].get("Environment"))
            out["container_verified"] = now_digest == out["container_sha256"]
            if not out["container_verified"]:
                gaps.add(f"integrity: the inference container (image {containers[0].get('Image')}) is not the one registered: "
                         f"its image and environment hash to {now_digest}, {out['container_sha256']} was recorded at "
                         f"registration ({CONTAINER_SHA256_PROPERTY})")
    if not out["sha256"] or not model_data:
        return out
    try:
        bucket, key = s3_parts(model_data[0])
    except ValueError as exc:
        gaps.add(f"integrity: {exc}")
        return out
    actual = attempt(gaps, f"artefact {model_data[0]}", lambda: integrity.stored_sha256(clients.s3, bucket, key))
    if actual is not None:
        out["verified"] = actual == out["sha256"]
        if not out["verified"]:
            gaps.add(f"integrity: {model_data[0]} has sha256 {actual}, not the {out['sha256']} recorded at registration")
    return out


# The package's ModelMetrics documents: (name in the report, ModelMetrics section, entry).
_METRICS = (
    ("model_quality", "ModelQuality", "Statistics"),
    ("data_statistics", "ModelDataQuality", "Statistics"),
    ("data_constraints", "ModelDataQuality", "Constraints"),
    ("bias", "Bias", "Report"),
    ("explainability", "Explainability", "Report"),
)


def _removed_by(names: Sequence[str], history: Optional[List[Dict[str, Any]]]) -> Optional[str]:
    """"removed after registration: by <who> at <when>, ..." for the successful calls on record that removed any of
    ``names``; None when none did."""
    removals = [h for h in history or [] if not h["error"] and set(names) & set(h["removed"])]
    if not removals:
        return None
    return "removed after registration: " + ", ".join(f"by {h['identity']} at {h['time']}" for h in removals)


def _sealed_location(model_data: Sequence[str]) -> Optional[Tuple[str, str]]:
    """(bucket, key) of the first artefact at a sealed key (only a sealed registration uses one); None without one."""
    for uri in model_data:
        try:
            bucket, key = s3_parts(uri)
        except ValueError:
            continue
        if integrity.digest_of_sealed_key(key):
            return bucket, key
    return None


def _why_absent(names: Sequence[str], package: Mapping[str, Any], model_data: List[str],
                history: Optional[List[Dict[str, Any]]], now: dt.datetime) -> str:
    """Why registered digests are missing: removed after registration, never recorded, or either when nothing tells."""
    removed = _removed_by(names, history)
    if removed:
        return removed
    if _sealed_location(model_data[:1]):
        return ("removed after registration: the artefact sits at a sealed key "
                f"(.../{integrity.SEALED_SEGMENT}/<sha256>/{integrity.MODEL_ARCHIVE}), which only a sealed registration uses")
    created = as_datetime(package.get("CreationTime"))
    if history is not None and created is not None and created >= now - dt.timedelta(days=CLOUDTRAIL_HISTORY_DAYS):
        return "registered before artefacts were sealed: CloudTrail shows no update of the version removing them"
    return (f"removed, or registered before artefacts were sealed: the version is older than CloudTrail's "
            f"{CLOUDTRAIL_HISTORY_DAYS}-day event history" if history is not None else
            "removed, or registered before artefacts were sealed: CloudTrail could not be read to tell")


def _evaluation(clients: Clients, package: Mapping[str, Any], gaps: Gaps) -> Dict[str, Any]:
    """The evaluation and bias reports, and each evidence document checked against the digest recorded at
    registration (``evidence``: name -> uri, recorded and actual sha256, ``verified`` True / False / None).

    A ModelMetrics document's digest is its ContentDigest (SageMaker keeps it as registered); ``evaluation.json``'s
    is in ``bias.json`` (``integrity.EVALUATION_DIGEST_KEY``), trusted once bias.json's own digest holds. Every
    digest is recomputed from the bytes read, the very bytes the report then shows."""
    metrics = package.get("ModelMetrics") or {}
    out: Dict[str, Any] = {"uris": {}, "report": None, "bias": None, "evidence": {}, "evidence_recorded": False}
    sources: Dict[str, Mapping[str, Any]] = {}
    for name, section, kind in _METRICS:
        source = (metrics.get(section) or {}).get(kind) or {}
        if source.get("S3Uri"):
            out["uris"][name] = source["S3Uri"]
            sources[name] = {**source, "where": f"ModelMetrics {section}.{kind}"}
    quality, bias = out["uris"].get("model_quality"), out["uris"].get("bias")
    if not quality and not bias:
        gaps.add("evaluation: the package carries no ModelMetrics (no evaluation or bias report to read)")
        return out
    digested = [name for name, source in sources.items() if source.get("ContentDigest")]
    out["evidence_recorded"] = bool(digested)
    if not digested:
        gaps.add("evidence: not recorded: the version was registered before its reports' digests were (no ContentDigest "
                 "in its ModelMetrics), so the reports below are what S3 holds now, unverified")
    bodies: Dict[str, bytes] = {}
    for name, source in sources.items():
        if not source.get("ContentDigest"):
            if digested:
                gaps.add(f"evidence: {source['S3Uri']}: no digest recorded at registration (not verified)")
            continue
        body = attempt(gaps, f"evidence {source['S3Uri']}", lambda: _read_bytes(clients, source["S3Uri"]))
        if body is not None:
            bodies[name] = body
            _verify(out, gaps, name, source["S3Uri"], body, integrity.hex_of_content_digest(source["ContentDigest"]),
                    f"its {source['where']} ContentDigest")
    bias_report = _parse(gaps, f"bias report {bias}", bodies.get("bias"))
    if quality:
        uri = quality.rsplit("/", 1)[0] + "/" + EVALUATION_FILE
        out["uris"]["evaluation"] = uri
        body = attempt(gaps, f"evaluation report {uri}", lambda: _read_bytes(clients, uri))
        if body is not None:
            if digested:
                _verify_evaluation(out, gaps, uri, body, bias_report)
            out["report"] = _parse(gaps, f"evaluation report {uri}", body)
    if out["report"] is None and bias:
        if "bias" not in bodies and "bias" not in out["evidence"]:  # not read above: no digest recorded for it
            bias_report = _parse(gaps, f"bias report {bias}",
                                 attempt(gaps, f"bias report {bias}", lambda: _read_bytes(clients, bias)))
        out["bias"] = bias_report
    return out


def _parse(gaps: Gaps, what: str, body: Optional[bytes]) -> Optional[Dict[str, Any]]:
    if body is None:
        return None
    try:
        return json.loads(body)
    except ValueError as exc:
        gaps.add(f"{what}: not JSON ({exc})")
        return None


def _verify(out: Dict[str, Any], gaps: Gaps, name: str, uri: str, body: bytes, recorded: Optional[str], where: str) -> None:
    actual = hashlib.sha256(body).hexdigest()
    verified = None if recorded is None else actual == recorded
    out["evidence"][name] = {"uri": uri, "recorded": recorded, "actual": actual, "verified": verified, "recorded_in": where}
    if verified is False:
        gaps.add(f"evidence: {uri} has sha256 {actual}, not the {recorded} recorded at registration ({where}): it was "
                 "rewritten since")
    elif recorded is None:
        gaps.add(f"evidence: {uri}: the digest recorded at registration is not a sha256 ({where}; not verified)")


def _verify_evaluation(out: Dict[str, Any], gaps: Gaps, uri: str, body: bytes, bias: Optional[Mapping[str, Any]]) -> None:
    """evaluation.json against the digest bias.json carries, once bias.json is the document registered."""
    checked = out["evidence"].get("bias") or {}
    recorded = integrity.hex_of_content_digest((bias or {}).get(integrity.EVALUATION_DIGEST_KEY))
    if checked.get("verified") is True and recorded is not None:
        _verify(out, gaps, "evaluation", uri, body, recorded, f"{integrity.EVALUATION_DIGEST_KEY} in the verified bias report")
        return
    why = ("the bias report that records its digest does not hold the registered bytes" if checked.get("verified") is False
           else "the bias report that records its digest could not be verified" if checked
           else "the bias report records no digest of it")
    out["evidence"]["evaluation"] = {"uri": uri, "recorded": None, "actual": hashlib.sha256(body).hexdigest(),
                                     "verified": None, "recorded_in": None}
    gaps.add(f"evidence: {uri}: not verified ({why})")


def _gate_parameters(clients: Clients, execution: Optional[Mapping[str, Any]], report: Optional[Mapping[str, Any]],
                     gaps: Gaps) -> Dict[str, Any]:
    """The evaluation report's gate thresholds against the values the pipeline execution ran with (its parameters;
    a parameter it does not list took the default of the definition it ran: ``DescribePipelineDefinitionForExecution``).
    ``{field: {"report", "execution", "parameter", "matches"}}``; each difference is a gap."""
    thresholds = ((report or {}).get("gate") or {}).get("thresholds") or {}
    if not execution or not thresholds:
        return {}
    given = dict(execution.get("parameters") or {})
    if any(name not in given for name in GATE_PARAMETERS.values()):
        # A run record holds the definition the execution ran.
        described = execution.get("definition") or attempt(
            gaps, f"pipeline definition of execution {execution['arn']}",
            lambda: clients.sagemaker.describe_pipeline_definition_for_execution(PipelineExecutionArn=execution["arn"]))
        try:
            declared = json.loads((described or {}).get("PipelineDefinition") or "{}").get("Parameters") or []
        except ValueError:
            declared = []
        for p in declared:
            if isinstance(p, Mapping) and p.get("Name") not in given and "DefaultValue" in p:
                given[p["Name"]] = p["DefaultValue"]
    out: Dict[str, Any] = {}
    for field, name in GATE_PARAMETERS.items():
        reported, ran = _number(thresholds.get(field)), _number(given.get(name))
        matches = None if reported is None or ran is None else math.isclose(reported, ran, rel_tol=1e-9, abs_tol=1e-12)
        out[field] = {"parameter": name, "report": reported, "execution": ran, "matches": matches}
        if matches is False:
            gaps.add(f"gate thresholds: the evaluation report judged with {field} {reported:g}, but the pipeline "
                     f"execution ran with {name} {ran:g}")
        elif ran is None and reported is not None:
            # Neither holds it: the version was judged before the threshold existed (its gate had no such check).
            gaps.add(f"gate thresholds: the pipeline execution records no {name}; the report's {field} is not checked")
    return out


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _what_pins_the_build(metadata: Mapping[str, Any]) -> str:
    """What the version records of its build without git, worded by what is there: a version registered before
    ``JOB_CODE_HASH_PROPERTY`` and ``MODEL_SPEC_SHA256_PROPERTY`` were has neither."""
    pins = {JOB_CODE_HASH_PROPERTY: "the job code", MODEL_SPEC_SHA256_PROPERTY: "the model spec"}
    present = [key for key in pins if metadata.get(key)]
    if len(present) == len(pins):
        return f"{JOB_CODE_HASH_PROPERTY} and {MODEL_SPEC_SHA256_PROPERTY} record the job code and model spec"
    if not present:
        return (f"neither {JOB_CODE_HASH_PROPERTY} nor {MODEL_SPEC_SHA256_PROPERTY} is recorded (registered before they "
                "were, or removed), so what ran cannot be pinned")
    (there,), (missing,) = present, [key for key in pins if key not in present]
    return (f"{there} records {pins[there]}, but {missing} is not recorded, so {pins[missing]} that ran cannot be "
            "pinned")


def _test_set(clients: Clients, metadata: Mapping[str, Any], report: Optional[Mapping[str, Any]],
              verified: Optional[bool], gaps: Gaps) -> Dict[str, Any]:
    """Whether the frozen test set now under the package's ``FROZEN_TEST_PROPERTY`` prefix is the one the version was judged
    on: the sha256 of its data file now against the one recorded at registration (``TEST_SET_SHA256_PROPERTY``;
    the evaluation report's, when ``verified``, must agree). Another set now is information (``earlier``, no gap) when
    Prepare re-froze it since (:func:`_earlier_test_set`), a gap when the current manifest does not name the recorded
    set among those it replaced."""
    uri = metadata.get(FROZEN_TEST_PROPERTY)
    recorded = metadata.get(TEST_SET_SHA256_PROPERTY)
    out: Dict[str, Any] = {"uri": uri, "recorded": recorded, "now": None, "same": None, "earlier": None}
    judged = ((report or {}).get("test_set") or {}).get("sha256")
    if not recorded:
        gaps.add(f"frozen test set: not recorded: the version records no digest of the test set it was judged on "
                 f"(registered before {TEST_SET_SHA256_PROPERTY} was), so whether {uri or 'its prefix'} still "
                 "holds it is not known")
        return out
    if verified and judged and judged != recorded:
        gaps.add(f"frozen test set: the package's {TEST_SET_SHA256_PROPERTY} {recorded} is not the "
                 f"{judged} of the verified evaluation report")
    if not uri:
        gaps.add(f"frozen test set: not recorded in the package's CustomerMetadataProperties ({FROZEN_TEST_PROPERTY})")
        return out
    prefix = uri if uri.endswith("/") else uri + "/"
    manifest = attempt(gaps, f"frozen test set {prefix}{MANIFEST_FILE}", lambda: _read_json(clients, prefix + MANIFEST_FILE))
    if manifest is None:
        return out
    data = prefix + str(manifest.get("file") or TEST_FILE)
    try:
        bucket, key = s3_parts(data)
    except ValueError as exc:
        gaps.add(f"frozen test set: {exc}")
        return out
    out["now"] = attempt(gaps, f"frozen test set {data}", lambda: integrity.stored_sha256(clients.s3, bucket, key))
    if out["now"] is not None:
        out["same"] = out["now"] == recorded
        if not out["same"]:
            out["earlier"] = _earlier_test_set(manifest, recorded, prefix + MANIFEST_FILE)
        if not out["same"] and out["earlier"] is None:
            gaps.add(f"frozen test set: {data} now has sha256 {out['now']}, not the {recorded} this version was judged "
                     "on: the set was replaced since")
    return out


def _earlier_test_set(manifest: Mapping[str, Any], recorded: str, manifest_uri: str) -> Optional[Dict[str, Any]]:
    """The set a version was judged on when Prepare has re-frozen it since (None when ``recorded`` is not one the
    current manifest says it replaced): ``{"version", "replaced_at", "reason", "text"}``.

    Prepare's re-freeze (``--test-set-refreeze when_stale``, the default) is routine, not a gap: it writes the new set's
    manifest with ``replaced_test_sets`` (every set replaced, latest first) and ``refrozen`` (why the latest went), and
    the replaced bytes stay old object versions under the same keys (the bucket's KeepEveryVersion). A set replaced
    by hand (the prefix deleted) is in no such list: that stays a gap."""
    chain = [entry for entry in manifest.get("replaced_test_sets") or [] if isinstance(entry, Mapping)]
    index = next((i for i, entry in enumerate(chain) if entry.get("sha256") == recorded), None)
    if index is None:
        return None
    # Each set was replaced by the one before it in the list (the current set for the latest).
    successor = manifest if index == 0 else chain[index - 1]
    reason = ((manifest.get("refrozen") or {}).get("reason") if index == 0 else None) or (
        f"it had gone stale (Prepare's reason is in the manifest of version {successor.get('version')}, an old object "
        f"version of {manifest_uri})")
    replaced_at = _day(successor.get("created_at"))
    version = chain[index].get("version")
    return {"version": version, "replaced_at": replaced_at, "reason": reason,
            "text": f"judged on an earlier frozen set (version {version}, replaced on {replaced_at} because {reason})"}


def _day(value: Any) -> str:
    """The date of an ISO time (``2026-11-20``); the text itself when it is none."""
    try:
        return dt.datetime.fromisoformat(str(value)).date().isoformat()
    except ValueError:
        return str(value)


def _splits(clients: Clients, names: Names, metadata: Mapping[str, Any], gaps: Gaps) -> Dict[str, Dict[str, Any]]:
    """Whether each prepared split now under the package's ``SPLIT_PROPERTIES`` location is the data the version was
    trained with: :func:`~pipeline_code.core.integrity.files_digest` of the objects now below it (each object's
    sha256, its key relative to the location) against the digest recorded at registration (``SPLIT_SHA256_PROPERTIES``).

    ``{split: {"uri", "recorded", "now", "objects", "same", "gone"}}``; a split changed, gone (the run's working data
    expires) or registered before its digest was is a gap naming it."""
    out: Dict[str, Dict[str, Any]] = {}
    for split, location_key in SPLIT_PROPERTIES.items():
        uri, recorded = metadata.get(location_key), metadata.get(SPLIT_SHA256_PROPERTIES[split])
        result: Dict[str, Any] = {"uri": uri, "recorded": recorded, "now": None, "objects": None, "same": None,
                                  "gone": None}
        out[split] = result
        if not recorded:
            gaps.add(f"{split} split: not recorded: the version records no digest of the {split} data it was trained "
                     f"with (registered before {SPLIT_SHA256_PROPERTIES[split]} was), so whether {uri or 'its location'} "
                     "still holds it is not known")
            continue
        if not uri:
            gaps.add(f"{split} split: not recorded in the package's CustomerMetadataProperties ({location_key})")
            continue
        prefix = uri if uri.endswith("/") else uri + "/"
        try:
            bucket, key_prefix = s3_parts(prefix)
        except ValueError as exc:
            gaps.add(f"{split} split: {exc}")
            continue
        keys = attempt(gaps, f"{split} split {prefix} (ListObjectsV2)", lambda: [o["Key"] for o in list_pages(
            clients.s3.list_objects_v2, "Contents", "ContinuationToken", next_token_key="NextContinuationToken",
            Bucket=bucket, Prefix=key_prefix)])
        if keys is None:
            continue
        keys = sorted(k for k in keys if not k.endswith("/"))  # a folder marker holds no data
        result["objects"], result["gone"] = len(keys), not keys
        if not keys:
            expiring = key_prefix.startswith(integrity.work_prefix(names.model))
            why = ("a run's working data expires data_lake.pipeline_work_expiration_days after it was written, or it "
                   "was deleted" if expiring else "it was deleted: no lifecycle rule expires it there")
            gaps.add(f"{split} split: {prefix} holds nothing now: the data this version was trained with is gone, so "
                     f"its digest {recorded} cannot be checked ({why})")
            continue
        digests = {}
        for key in keys:
            digest = attempt(gaps, f"{split} split s3://{bucket}/{key}",
                             lambda: integrity.stored_sha256(clients.s3, bucket, key))
            if digest is None:
                break
            digests[key[len(key_prefix):]] = digest
        else:
            result["now"] = integrity.files_digest(digests)
            result["same"] = result["now"] == recorded
            if not result["same"]:
                gaps.add(f"{split} split: {prefix} now holds {len(keys)} object(s) with digest {result['now']}, not the "
                         f"{recorded} this version was trained with: its data was rewritten since")
    return out


def _ledger(clients: Clients, names: Names, version: int, model_data: Sequence[str], gaps: Gaps,
            package: Mapping[str, Any]) -> Dict[str, Any]:
    """The version's approval-ledger records (``integrity.ledger_prefix`` in the artifacts bucket, which the version's
    sealed ModelDataUrl names): each decision the deploy handler observed on this model package, oldest first, as
    written once.

    ``records``: time, principal, approval status, description, the handler's outcome and what it set, the record's
    URI. A record that does not parse, or is filed under another version or model than it names, is listed under
    ``unreadable`` and is a gap naming it.

    A group deleted and created again restarts at version 1 under the same ARNs, and its old records stay (write-once,
    undeletable), so only records of ``package`` (the DescribeModelPackage response: ARN and ``CreationTime``;
    ``integrity.ledger_record_package``) are this version's. Records of another package of that version are left out,
    listed under ``other_packages`` and are one gap per package naming both. A record that does not say which package
    it is about (the handler could not describe the package) is left out too, under ``unattributed``, a gap: recorded
    before this package was created, it is another's; after, the audit cannot tell."""
    out: Dict[str, Any] = {"location": None, "records": [], "unreadable": [], "other_packages": [], "unattributed": []}
    sealed = _sealed_location(model_data)
    if sealed is None:
        # Registered before artefacts were sealed (itself a gap), so before the ledger: nothing to look for.
        return out
    bucket = sealed[0]
    ours_arn = package.get("ModelPackageArn")
    created_at = as_datetime(package.get("CreationTime"))
    ours_created = package_created(created_at) if created_at else None
    prefix = integrity.ledger_prefix(names.model, version)
    out["location"] = f"s3://{bucket}/{prefix}"
    keys = attempt(gaps, f"approval ledger {out['location']} (ListObjectsV2)", lambda: [o["Key"] for o in list_pages(
        clients.s3.list_objects_v2, "Contents", "ContinuationToken", next_token_key="NextContinuationToken",
        Bucket=bucket, Prefix=prefix)])
    if keys is None:
        return out
    others: Dict[Any, List[str]] = {}
    for key in sorted(keys):  # below one package's prefix the key starts with the UTC time recorded: time order
        uri = f"s3://{bucket}/{key}"
        body = attempt(gaps, f"approval ledger record {uri}", lambda: _read_bytes(clients, uri))
        if body is None:
            continue
        try:
            record = integrity.parse_ledger_record(body)
            if record["model"] != names.model or record["version"] != version:
                raise ValueError(f"it records v{record['version']} of {record['model']!r}, but is filed under v{version} "
                                 f"of {names.model!r}")
        except ValueError as exc:
            gaps.add(f"approval ledger: {uri} does not parse as a ledger record: {exc}")
            out["unreadable"].append({"uri": uri, "time": integrity.ledger_key_time(key), "problem": str(exc)})
            continue
        theirs_arn, theirs_created = integrity.ledger_record_package(record)
        recorded = iso_time(record["recorded_at"])
        if theirs_created is None:
            recorded_at = as_datetime(record["recorded_at"])
            before = recorded_at is not None and created_at is not None and recorded_at < created_at
            problem = ("recorded before this version's model package was created, so of an earlier package of that "
                       "version (its group deleted and created again)" if before else
                       "the record does not say which model package it is about (its creation time is missing: the "
                       "handler could not describe the package), so the audit cannot tell it is this version's")
            gaps.add(f"approval ledger: {uri} (recorded {recorded}) left out of this version's history: {problem}")
            out["unattributed"].append({"uri": uri, "time": recorded, "problem": problem})
            continue
        if theirs_created != ours_created or (theirs_arn and theirs_arn != ours_arn):
            others.setdefault((theirs_arn or ours_arn, theirs_created), []).append(uri)
            continue
        package_seen, decision, event = record["package"], record["decision"], record.get("event") or {}
        out["records"].append({
            # The package as the handler saw it had never been updated: its status is the one it was registered with,
            # and its principal the one that registered it (CreatedBy), not an approver.
            "at_registration": _never_updated(package_seen),
            "time": iso_time(package_seen.get("LastModifiedTime") or record["recorded_at"]),
            "recorded_at": recorded,
            "principal": package_seen.get("principal"),
            "status": package_seen.get("ModelApprovalStatus") or event.get("approval"),
            "description": package_seen.get("ApprovalDescription"),
            "trigger": record["trigger"],
            "outcome": decision.get("outcome"),
            "reason": decision.get("reason"),
            "set": decision.get("set"),
            "uri": uri,
        })
    for (arn, created), uris in sorted(others.items(), key=lambda item: str(item[0])):
        gaps.add(f"approval ledger: {len(uris)} record(s) below {out['location']} are of {arn} created {created}, not of "
                 f"this version's model package ({ours_arn} created {ours_created}): an earlier package of that version "
                 "(its group deleted and created again); left out of this version's history")
        out["other_packages"].append({"arn": arn, "created": created, "records": uris})
    out["records"].sort(key=lambda r: r["recorded_at"] or "")
    # No record at all is no gap by itself (a version decided on before the ledger existed): the approval is then
    # looked for in CloudTrail, and a version approved in neither is a gap (gather).
    return out


def _approvals(clients: Clients, package: Mapping[str, Any], gaps: Gaps, now: dt.datetime,
               ledger: Optional[Mapping[str, Any]] = None) -> Optional[List[Dict[str, Any]]]:
    """The version's UpdateModelPackage calls in CloudTrail's event history (its last 90 days), oldest first (None when
    it cannot be read: the reason is a gap). A successful call that set a registered property or removed any is a gap.
    ``ledger`` (:func:`_ledger`; default none) holds what beyond that the approval ledger keeps, so an older version
    with ledger records is no gap. Whether no call at all is a gap is decided once the decisions are known
    (:func:`_cloudtrail_silence`)."""
    arn = package["ModelPackageArn"]
    horizon = now - dt.timedelta(days=CLOUDTRAIL_HISTORY_DAYS)
    created = as_datetime(package.get("CreationTime")) or horizon
    start = max(created - dt.timedelta(minutes=5), horizon)
    kept = (ledger or {}).get("records") or []
    if created < horizon and not kept:
        gaps.add(
            f"approval history: the version is older than CloudTrail's {CLOUDTRAIL_HISTORY_DAYS}-day event history and "
            "the approval ledger holds no record of it; earlier approvals are only in the trail's S3 logs or CloudTrail Lake"
        )
    events = attempt(
        gaps,
        "approval history (CloudTrail LookupEvents)",
        lambda: list_pages(
            clients.cloudtrail.lookup_events,
            "Events",
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "UpdateModelPackage"}],
            StartTime=start,
            EndTime=now,
        ),
    )
    history = []
    for event in events or []:
        try:
            record = json.loads(event.get("CloudTrailEvent") or "{}")
        except ValueError:
            continue
        request = record.get("requestParameters") or {}
        if str(request.get("modelPackageArn", "")).lower() != arn.lower():
            continue
        identity = record.get("userIdentity") or {}
        session = identity.get("sessionContext") or {}
        history.append(
            {
                "time": iso_time(record.get("eventTime") or event.get("EventTime")),
                "identity": identity.get("arn") or event.get("Username") or "unknown",
                "identity_type": identity.get("type"),
                "role": (session.get("sessionIssuer") or {}).get("arn"),
                "mfa": (session.get("attributes") or {}).get("mfaAuthenticated"),
                "source_identity": session.get("sourceIdentity"),
                "source_ip": record.get("sourceIPAddress"),
                "requested_status": request.get("modelApprovalStatus"),
                "description": request.get("approvalDescription"),
                "set": sorted(str(k) for k in (request.get("customerMetadataProperties") or {})),
                "removed": sorted(str(k) for k in (request.get("customerMetadataPropertiesToRemove") or [])),
                "error": " ".join(x for x in (record.get("errorCode"), record.get("errorMessage")) if x) or None,
                "event_id": record.get("eventID") or event.get("EventId"),
            }
        )
    history.sort(key=lambda h: h["time"] or "")
    for h in history:
        changed = [f"set {k}" for k in h["set"] if k in REGISTERED_PROPERTIES] + [f"removed {k}" for k in h["removed"]]
        if changed and not h["error"]:
            # A registered property (data locations, digests, commit) changed: the record of what was built.
            gaps.add(f"lineage: the UpdateModelPackage call by {h['identity']} at {h['time']} {', '.join(changed)} after "
                     "registration", section="data_and_code")
    return None if events is None else history


def _cloudtrail_silence(package: Mapping[str, Any], ledger: Mapping[str, Any],
                        history: Optional[Sequence[Mapping[str, Any]]], checks: Sequence[Mapping[str, Any]],
                        now: dt.datetime, gaps: Gaps) -> None:
    """A gap when CloudTrail was read (``history`` not None) and holds no UpdateModelPackage call of the version, unless
    none is to be expected: every decision the approval ledger kept is older than CloudTrail's history, or the version
    was never updated and its every ``Approved`` decision (``checks``, :func:`_approval_checks`) is the environment's
    auto-approval at registration - registering is CreateModelPackage, so no UpdateModelPackage call can exist."""
    if history is None or history:
        return
    horizon = now - dt.timedelta(days=CLOUDTRAIL_HISTORY_DAYS)
    kept = ledger.get("records") or []
    if kept and not any((as_datetime(r["time"]) or now) >= horizon for r in kept):
        return
    if _never_updated(package) and checks and all(c["auto"] for c in checks):
        return
    gaps.add("approval history: CloudTrail has no UpdateModelPackage call for this version")


def _never_updated(package: Mapping[str, Any]) -> bool:
    """Whether a DescribeModelPackage answer (or the ledger's copy of one) is of a package no call has updated since it
    was registered: no ``LastModifiedBy``, and no ``LastModifiedTime`` later than its ``CreationTime``."""
    if package.get("LastModifiedBy"):
        return False
    modified, created = as_datetime(package.get("LastModifiedTime")), as_datetime(package.get("CreationTime"))
    return modified is None or (created is not None and modified <= created)


def _started_by(created_by: Any) -> Dict[str, Optional[str]]:
    """Who started a pipeline execution (DescribePipelineExecution ``CreatedBy``): ``started_by`` (the IAM identity's
    ARN, else the Studio user profile) and ``started_by_person`` (its ``SourceIdentity``, else the role session's or IAM
    user's name, else the profile name - a Studio execution role's session is "SageMaker", no person; None for an
    execution EventBridge or a schedule started, which names no one)."""
    created_by = created_by if isinstance(created_by, Mapping) else {}
    iam = created_by.get("IamIdentity") if isinstance(created_by.get("IamIdentity"), Mapping) else {}
    arn, profile = iam.get("Arn"), created_by.get("UserProfileName")
    person = iam.get("SourceIdentity") or _person(arn) or profile
    return {"started_by": arn or profile, "started_by_person": person}


def _person(principal: Optional[str]) -> Optional[str]:
    """The person a principal ARN names: a role session's name (``assumed-role/<role>/<session>``; Identity Center
    and most federations set it to the user's name) or an IAM user's name; None for anything else."""
    match = re.match(r"^arn:aws[a-z-]*:(?:sts::\d{12}:assumed-role/[^/]+|iam::\d{12}:user(?:/[^/]+)*)/([^/]+)$",
                     principal or "")
    if match is None or (match.group(1) in _SHARED_SESSION_NAMES and ":assumed-role/" in (principal or "")):
        return None
    return match.group(1)


# Role session names that name no person: SageMaker gives every session of a Studio (or notebook) execution role the
# name "SageMaker", whoever's user profile it runs for (its SourceIdentity or the user profile names the person).
_SHARED_SESSION_NAMES = frozenset({"SageMaker"})


def _not_independent(execution: Optional[Mapping[str, Any]], checks: Sequence[Mapping[str, Any]], gaps: Gaps) -> None:
    """A gap for each person's approval by whoever started the execution that trained the version (the same person: a
    session's source identity, else its session or IAM user name): the approval is then no independent challenge of the
    training (SR 11-7)."""
    starter = (execution or {}).get("started_by_person")
    if not starter:
        return
    for check in checks:
        person = check.get("person") if "person" in check else _person(check.get("principal"))
        if check.get("auto") or (person or "").lower() != str(starter).lower():
            continue
        identity = f" (source identity {check['source_identity']})" if check.get("source_identity") else ""
        gaps.add(f"approval: the version was approved at {check['time']} by {check['principal']}{identity} ({check['source']}), "
                 f"the person ({starter}) who started the pipeline execution that trained it "
                 f"({execution.get('started_by')}): the approval is not independent of the training; have another "
                 "approver decide")


def _issuer(principal: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """(kind, IAM role ARN) of a principal ARN: ``("role", arn:...:iam::<account>:role/<name>)`` for a role session
    (``arn:...:sts::<account>:assumed-role/<name>/<session>``; the session ARN carries no role path), ``("user", None)``
    for an IAM user, ``(None, None)`` for anything else."""
    match = re.match(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+$", principal or "")
    if match:
        return "role", f"arn:{match.group(1)}:iam::{match.group(2)}:role/{match.group(3)}"
    if re.match(r"^arn:aws[a-z-]*:iam::\d{12}:user/.+$", principal or ""):
        return "user", None
    return None, None


def _approval_checks(names: Names, package: Mapping[str, Any], ledger: Mapping[str, Any],
                     history: Optional[Sequence[Mapping[str, Any]]], auto_approve: Optional[bool],
                     gaps: Gaps, *, approver_team: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every ``Approved`` decision on record, held to the environment's approver role (``approver_role_name``; the
    team's, ``team_approver_role_name``, when ``approver_team`` names the model's team that approves its own): the
    approval ledger's records and CloudTrail's successful ``UpdateModelPackage`` calls that set ``Approved``, and - when
    neither has one - the package itself, approved since it was registered.

    A decision by a principal whose session issuer is not the approver role (another role, an IAM user, the root user)
    is a gap naming the principal; one by an IAM user without MFA (CloudTrail's ``mfaAuthenticated``) is another. A
    version registered ``Approved`` (no person decided: the pipeline's register step did) is named as the environment's
    auto-approval when ``auto_approve`` (its ``training.auto_approve``) is true, and is a gap when it is false or not
    known (None: the config was not read). Returns one entry per decision: time, principal, source, verdict."""
    arn = package["ModelPackageArn"]
    partition, account = arn.split(":")[1], arn.split(":")[4]
    role = (team_approver_role_name(names.prefix, approver_team) if approver_team else approver_role_name(names.prefix))
    approver = f"arn:{partition}:iam::{account}:role/{role}"
    checks: List[Dict[str, Any]] = []

    def registered(time: Optional[str], principal: Optional[str], source: str) -> None:
        who = principal or "an unrecorded principal"
        if auto_approve:
            verdict = f"auto-approved at registration (training.auto_approve of environment {names.env})"
        else:
            verdict = "registered Approved: no person approved it"
            why = (f"environment {names.env} does not auto-approve (training.auto_approve is false)" if auto_approve is False
                   else f"whether environment {names.env} auto-approves (training.auto_approve) is not known: the config "
                        "was not read")
            gaps.add(f"approval: the version was registered Approved at {time} by {who} ({source}) and no person approved "
                     f"it: {why}")
        checks.append({"time": time, "principal": principal, "source": source, "verdict": verdict,
                       "flagged": not auto_approve, "auto": bool(auto_approve)})

    def decided(time: Optional[str], principal: Optional[str], source: str, issuer: Optional[str], kind: Optional[str],
                mfa: Optional[str], mfa_known: bool, description: Optional[str],
                source_identity: Optional[str] = None) -> None:
        flagged = []
        reasoned = bool(str(description or "").strip())
        if not reasoned:
            # A person's decision without its why (SR 11-7, EU AI Act Art. 14): the record says who, not on what grounds.
            # A gap, not a flag: "flagged" says the decision was not the approver role's.
            gaps.add(f"approval: the decision that approved the version at {time} by {principal or 'an unrecorded principal'} "
                     f"({source}) records no reason (its ApprovalDescription is empty): say why with "
                     "--approval-description when approving")
        if not principal:
            gaps.add(f"approval: the decision that approved the version at {time} ({source}) names no principal: who "
                     "approved it is not known")
            flagged.append("principal not recorded")
        elif issuer != approver:
            gaps.add(f"approval: the version was approved at {time} by {principal} ({source}), whose session issuer is "
                     f"{issuer or 'none (not a role session)'}, not the approver role {approver}")
            flagged.append("not the approver role")
        if kind == "user" and mfa_known and str(mfa).lower() != "true":
            gaps.add(f"approval: the version was approved at {time} by IAM user {principal} without MFA ({source}: "
                     f"mfaAuthenticated {mfa if mfa is not None else 'absent'})")
            flagged.append("IAM user without MFA")
        checks.append({"time": time, "principal": principal, "source": source, "flagged": bool(flagged), "auto": False,
                       "verdict": "; ".join(flagged + ([] if reasoned else ["no reason recorded"])) or "the approver role",
                       "reason": description if reasoned else None,
                       # The person: the session's source identity (set by Studio, Identity Center or the caller's
                       # federation; it names the user behind a session named "SageMaker"), else the principal's name.
                       "person": source_identity or _person(principal), "source_identity": source_identity})

    for r in ledger.get("records") or []:
        if r["status"] != approval.APPROVED:
            continue
        source = f"approval ledger {r['uri']}"
        if r.get("at_registration"):
            registered(r["time"], r["principal"], source)
        else:
            kind, issuer = _issuer(r["principal"])
            decided(r["time"], r["principal"], source, issuer, kind, None, mfa_known=False, description=r["description"])
    for h in history or []:
        if h["requested_status"] != approval.APPROVED or h["error"]:
            continue
        kind = {"AssumedRole": "role", "IAMUser": "user"}.get(h.get("identity_type") or "") or _issuer(h["identity"])[0]
        decided(h["time"], h["identity"], f"CloudTrail event {h['event_id']}", h["role"], kind, h["mfa"], mfa_known=True,
                description=h["description"], source_identity=h.get("source_identity"))
    if not checks and package.get("ModelApprovalStatus") == approval.APPROVED and _never_updated(package):
        registered(iso_time(package.get("CreationTime")), _user(package.get("CreatedBy")),
                   "the model package: Approved since it was registered, never updated")
    return checks


# The status of a model card its reviewers approved (ModelCardStatus: Draft | PendingReview | Approved | Archived).
CARD_APPROVED = "Approved"


def _model_card(clients: Clients, names: Names, version: int, package: Mapping[str, Any], auto_approved: bool,
                gaps: Gaps) -> Dict[str, Any]:
    """The version's SageMaker model card, found by its name (``contract.model_card_name`` of the group, version and
    package creation time, else ``contract.legacy_model_card_name``, as cards were named before): its status, current
    version, what package its content describes (``card_package``) and every saved version (``ListModelCardVersions``:
    SageMaker keeps each edit as a version of its own).

    Gaps: no card; a card that describes another package (another ARN or creation time, or none, or - a card that
    records no creation time - created before this package); a card not ``Approved``; and a card version saved after
    the version's approval (``core.approval.approval_time``) whose content is not the one the approval saw
    (:func:`_card_after_approval`; a status-only change, such as the card approved after the version, is reported, no
    gap). A version ``auto_approved`` at registration had no reviewer: its card written after registration and left
    Draft is expected and no gap."""
    sm = clients.sagemaker
    arn = package["ModelPackageArn"]
    created_at = as_datetime(package.get("CreationTime"))
    ours_created = package_created(created_at) if created_at else None
    candidates = ([model_card_name(names.group, version, created_at)] if created_at else []) + [
        legacy_model_card_name(names.group, version)]
    out: Dict[str, Any] = {"name": None, "looked_for": candidates, "legacy": False, "arn": None, "status": None,
                           "version": None, "created": None, "modified": None, "modified_by": None, "describes": None,
                           "versions": [], "changed_after_approval": [], "approved_after": None,
                           "auto_approved": auto_approved}
    card = None
    for name in candidates:
        try:
            card = sm.describe_model_card(ModelCardName=name)
        except aws_errors() as exc:
            if is_credentials_error(exc):
                raise
            if error_code(exc) == "ResourceNotFound":
                continue
            gaps.add(f"model card {name}: {describe_error(exc)}")
            return out
        out["name"], out["legacy"] = name, name != candidates[0]
        break
    if card is None:
        gaps.add(f"model card: version {version} has none ({' or '.join(candidates)}): nothing describes it for review")
        return out
    name = out["name"]
    out.update(arn=card.get("ModelCardArn"), status=card.get("ModelCardStatus"), version=card.get("ModelCardVersion"),
               created=iso_time(card.get("CreationTime")), modified=iso_time(card.get("LastModifiedTime")),
               modified_by=_user(card.get("LastModifiedBy")))
    try:
        content = json.loads(card.get("Content") or "null")
    except ValueError:
        content = None
    if not isinstance(content, dict):
        gaps.add(f"model card: {name}'s content is not a JSON object: which model package it describes cannot be read")
    else:
        theirs_arn, theirs_created = card_package(content)
        out["describes"] = {"arn": theirs_arn, "created": theirs_created}
        card_created = as_datetime(card.get("CreationTime"))
        if not theirs_arn or theirs_arn.lower() != arn.lower() or (theirs_created and theirs_created != ours_created):
            said = f"{theirs_arn} created {theirs_created or '(not recorded)'}" if theirs_arn else "no model package"
            gaps.add(f"model card: {name} describes {said}, not this version's model package ({arn} created {ours_created})")
        elif theirs_created is None and card_created and created_at and card_created < created_at:
            gaps.add(f"model card: {name} records no package creation time and was created at {iso_time(card_created)}, "
                     f"before this version's model package ({ours_created}): it describes the package that had this "
                     "version before its group was deleted and created again")
    if out["status"] != CARD_APPROVED and not auto_approved:
        gaps.add(f"model card: {name} is {out['status']}, not {CARD_APPROVED}: no reviewer approved what it says "
                 f"(card version {out['version']})")
    versions = attempt(gaps, f"model card {name} versions (ListModelCardVersions)", lambda: list_pages(
        sm.list_model_card_versions, "ModelCardVersionSummaryList", ModelCardName=name))
    saved_at: Dict[Any, dt.datetime] = {}
    for v in sorted(versions or [], key=lambda v: v.get("ModelCardVersion") or 0):
        # A version's time: when it was saved. The API documents CreationTime as the version's; the later of the two
        # times is taken so that an answer carrying the card's first creation there still dates each edit.
        times = [t for t in (_instant(v.get("CreationTime")), _instant(v.get("LastModifiedTime"))) if t]
        if times:
            saved_at[v.get("ModelCardVersion")] = max(times)
        out["versions"].append({"version": v.get("ModelCardVersion"), "status": v.get("ModelCardStatus"),
                                "saved": iso_time(max(times)) if times else None})
    # Compared at the precision SageMaker gives (an edit in the second of the approval is still after it).
    approved_at = (approval.approval_time(_instant(package.get("LastModifiedTime")), _instant(package.get("CreationTime")))
                   if created_at and package.get("ModelApprovalStatus") == approval.APPROVED else None)
    # A version approved at registration (never updated since) had no card yet - the pipeline writes it afterwards,
    # naming the package - and the approval checks already say whether anyone was to approve it.
    if approved_at is not None and not auto_approved and not _never_updated(package):
        _card_after_approval(sm, name, out, saved_at, approved_at, gaps)
    return out


# Content of a card version that could not be read (the reason is a gap).
_UNREAD = object()


def _card_after_approval(sm: Any, name: str, out: Dict[str, Any], saved_at: Mapping[Any, dt.datetime],
                         approved_at: dt.datetime, gaps: Gaps) -> None:
    """The card versions saved after the version's approval (``out["changed_after_approval"]``), each with ``change``:
    ``content`` (its content differs from the version current at the approval: DescribeModelCard of each version),
    ``status`` (the same content: UpdateModelCard sets content or status, never both, so only the status changed),
    ``unread`` (a content that could not be read) or ``written`` (no card version was saved by the approval).

    A content change is a gap (what was approved is not what the card says), and so are an unread content and a card
    written after the approval; a status-only change is not (``out["approved_after"]``: the card was approved after the
    version, its content the one the approver had): the card's status is a review record, not the gate."""
    later = [v for v in out["versions"] if v["version"] in saved_at and saved_at[v["version"]] > approved_at]
    out["changed_after_approval"] = later
    if not later:
        return
    at = iso_time(approved_at)
    earlier = [v for v in out["versions"] if v["version"] in saved_at and saved_at[v["version"]] <= approved_at]
    if not earlier:
        for v in later:
            v["change"] = "written"
        gaps.add(f"model card: {name} was written after the version's approval at {at} (its first version saved at "
                 f"{later[0]['saved']}): there was no card to review when the version was approved")
        return

    def content(number: Any) -> Any:
        answer = attempt(gaps, f"model card {name} version {number} (DescribeModelCard)",
                         lambda: sm.describe_model_card(ModelCardName=name, ModelCardVersion=number))
        if answer is None:
            return _UNREAD
        try:  # compared as JSON: the same content saved again with other spacing or key order is no change
            return json.loads(answer.get("Content") or "null")
        except ValueError:
            return answer.get("Content")

    approved = content(earlier[-1]["version"])
    now = approved
    for v in later:
        now = content(v["version"])
        v["change"] = "unread" if _UNREAD in (now, approved) else "status" if now == approved else "content"
    edited = [v for v in later if v["change"] == "content"]
    if edited:
        listing = ", ".join(f"version {v['version']} ({v['status']}) at {v['saved']}" for v in edited)
        says = ("the card says what was approved again, but said otherwise in between" if now == approved else
                "what was approved is not what the card says now")
        gaps.add(f"model card: {name} was changed after the version's approval at {at}: {listing}; {says}")
    unread = [v for v in later if v["change"] == "unread"]
    if unread:
        listing = ", ".join(f"version {v['version']} ({v['status']}) at {v['saved']}" for v in unread)
        gaps.add(f"model card: {name} was saved after the version's approval at {at}: {listing}, whose content (or that "
                 f"of version {earlier[-1]['version']}, current at the approval) could not be read: whether the card "
                 "says what was approved is not known")
    if not edited and not unread and earlier[-1]["status"] != CARD_APPROVED and out["status"] == CARD_APPROVED:
        out["approved_after"] = {"approved_at": at, "version": earlier[-1]["version"], "status": earlier[-1]["status"]}


def _instant(value: Any) -> Optional[dt.datetime]:
    """A botocore timestamp as an aware datetime at its full precision (:func:`as_datetime` keeps whole seconds)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return as_datetime(value)


def _lineage(clients: Clients, package: Mapping[str, Any], gaps: Gaps) -> Dict[str, Any]:
    sm = clients.sagemaker
    arn = package["ModelPackageArn"]
    artifacts = attempt(gaps, "lineage (ListArtifacts)", lambda: list_pages(sm.list_artifacts, "ArtifactSummaries", SourceUri=arn))
    out: Dict[str, Any] = {"artifact": None, "upstream": [], "downstream": []}
    if artifacts is None:
        return out
    if not artifacts:
        gaps.add("lineage: SageMaker has no lineage artifact for this model package (link absent)")
        return out
    artifact = artifacts[0]["ArtifactArn"]
    out["artifact"] = artifact
    for direction, key in (("upstream", "DestinationArn"), ("downstream", "SourceArn")):
        found = attempt(
            gaps,
            f"lineage {direction} associations",
            lambda: list_pages(sm.list_associations, "AssociationSummaries", **{key: artifact}),
        )
        for a in found or []:
            other = "Source" if direction == "upstream" else "Destination"
            out[direction].append(
                {
                    "name": a.get(f"{other}Name") or a.get(f"{other}Arn"),
                    "type": a.get(f"{other}Type"),
                    "arn": a.get(f"{other}Arn"),
                    "association": a.get("AssociationType"),
                    "created": iso_time(a.get("CreationTime")),
                }
            )
        if found is not None and not found:
            gaps.add(f"lineage: no {direction} association of artifact {artifact}")
    return out


def _operations(events: Sequence[Mapping[str, Any]], stack: str) -> List[List[Mapping[str, Any]]]:
    """Stack events (any order) grouped into stack operations, oldest first."""
    ordered = sorted(events, key=lambda e: as_datetime(e.get("Timestamp")) or dt.datetime.min.replace(tzinfo=dt.timezone.utc))
    operations: List[List[Mapping[str, Any]]] = []
    current: List[Mapping[str, Any]] = []
    for event in ordered:
        current.append(event)
        is_stack = event.get("ResourceType") == "AWS::CloudFormation::Stack" and event.get("LogicalResourceId") == stack
        if is_stack and event.get("ResourceStatus") in _STACK_TERMINAL:
            operations.append(current)
            current = []
    if current:
        operations.append(current)
    return operations


def _serving_images(clients: Clients, names: Names) -> Dict[str, Any]:
    """What image bytes the endpoint runs: each variant's ``DeployedImages`` (the image it was given, by tag, and the
    digest SageMaker resolved it to when the endpoint was created or updated, with the time). A tag may be republished
    by AWS with patches, so the digest is what tells whether two endpoints (staging's and prod's, or before and after a
    rollback) run the same bytes. Not a gap when unreadable: a batch or multi-model version has no endpoint of its
    model's name, and the version's container is verified against the registry above."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        endpoint = clients.sagemaker.describe_endpoint(EndpointName=names.endpoint)
    except (BotoCoreError, ClientError) as exc:
        if is_credentials_error(exc):
            raise
        return {"images": [], "why": f"not read: endpoint {names.endpoint}: {describe_error(exc)}"}
    images = [
        {"variant": variant.get("VariantName"), "specified": image.get("SpecifiedImage"),
         "resolved": image.get("ResolvedImage"), "resolved_at": iso_time(image.get("ResolutionTime"))}
        for variant in endpoint.get("ProductionVariants") or [] for image in variant.get("DeployedImages") or []
    ]
    why = None if images else f"not reported: endpoint {names.endpoint} names no resolved image (DeployedImages)"
    return {"images": images, "why": why}


def _deployment(clients: Clients, names: Names, arn: str, serving_arn: Optional[str], gaps: Gaps) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "stack": names.serving_stack,
        "parameter": names.parameter,
        "endpoint": names.endpoint,
        "serving_now": None if serving_arn is None else serving_arn.lower() == arn.lower(),
        "serving_arn": serving_arn,
        "deployed_at": None,
        "operation_finished": None,
        "method": None,
        "rolled_back_attempts": [],
    }
    events = attempt(
        gaps,
        f"deployment history (DescribeStackEvents of {names.serving_stack})",
        lambda: list_pages(clients.cloudformation.describe_stack_events, "StackEvents", StackName=names.serving_stack),
    )
    if events is None:
        return out
    for operation in reversed(_operations(events, names.serving_stack)):
        if not any(arn.lower() in str(e.get("ResourceProperties") or "").lower() for e in operation):
            continue
        final = operation[-1]
        status = final.get("ResourceStatus")
        if status not in _SUCCESS:
            out["rolled_back_attempts"].append({"time": iso_time(final.get("Timestamp")), "status": status})
            continue
        if out["deployed_at"] is not None:
            continue  # an earlier deployment of the same version (redeployed since): the newest counts
        endpoint = [
            e for e in operation
            if e.get("ResourceType") == "AWS::SageMaker::Endpoint" and e.get("ResourceStatus") in _SUCCESS
        ]  # fmt: skip
        out["operation_finished"] = iso_time(final.get("Timestamp"))
        if endpoint:
            out["deployed_at"] = iso_time(endpoint[-1].get("Timestamp"))
            out["method"] = (
                f"stack {names.serving_stack}: the newest successful operation whose resource properties name this "
                f"package; endpoint {endpoint[-1].get('PhysicalResourceId') or names.endpoint} "
                f"{endpoint[-1].get('ResourceStatus')} at that time"
            )
        else:
            out["deployed_at"] = out["operation_finished"]
            out["method"] = (
                f"stack {names.serving_stack}: the newest successful operation whose resource properties name this "
                "package (no endpoint event in it: the stack completion time is given)"
            )
    out["rolled_back_attempts"].reverse()
    if out["serving_now"]:
        out["serving_images"] = _serving_images(clients, names)
    if out["deployed_at"] is None:
        if out["serving_now"]:
            stack = attempt(gaps, "serving stack", lambda: clients.cloudformation.describe_stacks(StackName=names.serving_stack))
            if stack:
                s = stack["Stacks"][0]
                out["deployed_at_latest"] = iso_time(s.get("LastUpdatedTime") or s.get("CreationTime"))
            gaps.add(
                "deployment time: no stack event names this package (events expired or not recorded); "
                "it serves now and was deployed no later than the stack's last update"
            )
        else:
            gaps.add(f"deployment: no successful operation of {names.serving_stack} deployed this version")
    return out


def gather(
    *,
    clients: Clients,
    project: str,
    env: str,
    model: str,
    version: Optional[int] = None,
    serving: bool = False,
    now: Optional[dt.datetime] = None,
    caller: Optional[Mapping[str, str]] = None,
    auto_approve: Optional[bool] = None,
    approver_team: Optional[str] = None,
) -> Dict[str, Any]:
    """Everything the report shows, as a dict with a ``gaps`` list.

    Exactly one of ``version`` / ``serving``. ``now`` (default: the current UTC time) bounds
    the CloudTrail look-up. ``caller`` (``account``, ``arn``) is who runs the audit, as the command
    checked it; by default it is asked from STS (:func:`check_credentials`). ``auto_approve`` is the environment's
    ``training.auto_approve`` (default None: not known, so a version registered Approved is a gap). ``approver_team``: the
    model's team when that team approves its own models (``team_approvers``), whose approver role
    (``team_approver_role_name``) the decisions are held to instead of the environment's. Raises AuditError for an
    unknown model or version, nothing serving, or (without ``caller``) no usable credentials; credentials that
    fail later raise botocore's error (:func:`is_credentials_error`), which the command words.
    """
    if (version is None) == (not serving):
        raise AuditError("give exactly one of --version N or --serving")
    names = Names(project, env, model)
    now = now or dt.datetime.now(dt.timezone.utc)
    gaps = Gaps()
    caller = dict(caller) if caller is not None else check_credentials(clients)
    serving_arn: Optional[str] = None
    resolved_by = f"--version {version}"
    gaps.section = "deployment"  # what serves now
    if serving:
        serving_arn, resolved_by = serving_package(clients, names, gaps)
        match = PACKAGE_ARN.match(serving_arn)
        if match.group(1).lower() != names.group.lower():
            raise AuditError(f"the serving stack names a package of group {match.group(1)!r}, not {names.group!r}")
        arn = serving_arn
        version = int(match.group(2))
    else:
        arn = find_package(clients, names, int(version), account=caller["account"])
        serving_arn = _serving_arn_quietly(clients, names)
        if serving_arn is None:
            gaps.add(f"what serves now: stack {names.serving_stack} has no readable {names.parameter} parameter")
    try:
        package = clients.sagemaker.describe_model_package(ModelPackageName=arn)
    except aws_errors() as exc:
        if is_credentials_error(exc):
            raise  # the command words it, with the account to log in to
        raise AuditError(f"model package {arn} cannot be read: {describe_error(exc)}") from None

    metadata = dict(package.get("CustomerMetadataProperties") or {})
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    status = package.get("ModelApprovalStatus")
    if status != "Approved":
        gaps.add(f"approval: version {version} is not approved (status {status})", section="approval")
    gaps.section = "data_and_code"
    for key, label in (
        (CODE_VERSION_PROPERTY, "code commit"),
        (INPUT_FEATURES_PROPERTY, "input features location"),
        (INPUT_LABELS_PROPERTY, "input labels location"),
    ):
        if not metadata.get(key):
            gaps.add(f"{label}: not recorded in the package's CustomerMetadataProperties ({key})")
    # The commit recorded at registration (MetadataProperties: no API changes it) wins over the customer metadata's.
    commit_id, code_version = (package.get("MetadataProperties") or {}).get("CommitId"), metadata.get(CODE_VERSION_PROPERTY)
    if commit_id and code_version and commit_id != code_version:
        gaps.add(f"code commit: the customer metadata's {CODE_VERSION_PROPERTY} {code_version} differs from "
                 f"MetadataProperties.CommitId {commit_id}, recorded at registration; the report shows CommitId (the "
                 "customer metadata was changed after registration)")
    recorded = commit_id or code_version
    if recorded and not COMMIT_VERSION.match(recorded):
        gaps.add(f"code commit: {recorded} names no git commit (40 hex digits, maybe {DIRTY_VERSION_SUFFIX}; synth records "
                 f"{UNKNOWN_VERSION} when git cannot tell it: no checkout, no git, or a checkout git refuses to read, and "
                 f"its warning gave git's error), so nothing records which code this version was built from: "
                 f"{_what_pins_the_build(metadata)}")
    elif recorded and recorded.endswith(DIRTY_VERSION_SUFFIX):
        gaps.add(f"code commit: {recorded} was built from files that commit does not hold (uncommitted changes, untracked "
                 f"job code, or a config not committed; synth's warning said which), so the commit alone does not show "
                 f"what ran: {_what_pins_the_build(metadata)}")

    audit = {
        "generated_at": iso_time(now),
        "caller": caller,
        "region": getattr(getattr(clients.sagemaker, "meta", None), "region_name", None),
        "names": {"project": project, "env": env, "model": model, "group": names.group, "pipeline": names.pipeline},
        "resolved_by": resolved_by,
        "package": {
            "arn": arn,
            "version": version,
            "status": package.get("ModelPackageStatus"),
            "approval_status": status,
            "approval_description": package.get("ApprovalDescription"),
            "description": package.get("ModelPackageDescription"),
            "created": iso_time(package.get("CreationTime")),
            "modified": iso_time(package.get("LastModifiedTime")),
            "created_by": _user(package.get("CreatedBy")),
            "modified_by": _user(package.get("LastModifiedBy")),
            "generated_by": (package.get("MetadataProperties") or {}).get("GeneratedBy"),
        },
        "code": {
            "commit": commit_id or code_version,
            "commit_source": "MetadataProperties.CommitId" if commit_id else (
                f"customer metadata {CODE_VERSION_PROPERTY}" if code_version else None),
            "images": [c.get("Image") for c in containers if c.get("Image")],
            # DescribeModelPackage's container ImageDigest, when SageMaker reports one.
            "image_digests": [c.get("ImageDigest") for c in containers if c.get("ImageDigest")],
        },
        "data": {
            "model_data": [c.get("ModelDataUrl") for c in containers if c.get("ModelDataUrl")],
            "input_features": metadata.get(INPUT_FEATURES_PROPERTY),
            "input_labels": metadata.get(INPUT_LABELS_PROPERTY),
            "frozen_test": metadata.get(FROZEN_TEST_PROPERTY),
        },
        "trigger_reason": metadata.get(TRIGGER_REASON_PROPERTY),
        "metadata": metadata,
    }
    gaps.section = "approval"
    audit["ledger"] = _ledger(clients, names, int(version), audit["data"]["model_data"], gaps, package)
    history = _approvals(clients, package, gaps, now, audit["ledger"])
    gaps.section = "data_and_code"
    audit["integrity"] = _integrity(clients, package, metadata, audit["data"]["model_data"], history, gaps, now)
    gaps.section = "pipeline_execution"
    before = len(gaps)
    audit["execution"] = _execution(clients, package, gaps)
    if audit["execution"] is None:
        # Gone with its pipeline (or unreadable): the run record kept at approval stands in, and says so in found_by.
        audit["execution"] = _run_record(clients, names, int(version), package, audit["data"]["model_data"], gaps)
        if audit["execution"] is not None:
            del gaps[before:]
    gaps.section = "evaluation"
    audit["evaluation"] = _evaluation(clients, package, gaps)
    report = audit["evaluation"]["report"]
    audit["evaluation"]["gate_parameters"] = _gate_parameters(clients, audit["execution"], report, gaps)
    reasons = approval.gate_failure(report)
    if status == "Approved" and reasons is not None:
        # The pipeline's condition step registers only a version whose gate passed: this one came another way.
        gaps.add(f"gate: version {version} is Approved, but its evaluation report says the promotion gate failed "
                 f"({reasons}); the pipeline registers only a version that passed, so this one was registered outside "
                 "it; its approval is the only record of why the failed check was accepted")
    evaluation_verified = (audit["evaluation"]["evidence"].get("evaluation") or {}).get("verified")
    gaps.section = "data_and_code"
    audit["test_set"] = _test_set(clients, metadata, report, evaluation_verified, gaps)
    audit["splits"] = _splits(clients, names, metadata, gaps)
    gaps.section = "approval"
    audit["approvals"] = history or []
    audit["approval_checks"] = _approval_checks(names, package, audit["ledger"], history, auto_approve, gaps,
                                                approver_team=approver_team)
    _not_independent(audit["execution"], audit["approval_checks"], gaps)
    _cloudtrail_silence(package, audit["ledger"], history, audit["approval_checks"], now, gaps)
    if status == "Approved" and not audit["approval_checks"]:
        gaps.add(
            "approval: the version is Approved but neither the approval ledger nor CloudTrail has its approval; it may have "
            "been approved more than 90 days ago, before the ledger"
        )
    # Only ever approved by the environment's auto-approval at registration: no reviewer was asked for the card either.
    auto_approved = (status == "Approved" and bool(audit["approval_checks"])
                     and all(c["auto"] for c in audit["approval_checks"]))
    gaps.section = "model_card"
    audit["model_card"] = _model_card(clients, names, int(version), package, auto_approved, gaps)
    gaps.section = "lineage"
    audit["lineage"] = _lineage(clients, package, gaps)
    gaps.section = "deployment"
    audit["deployment"] = _deployment(clients, names, arn, serving_arn, gaps)
    audit["gaps"] = list(gaps)
    # Each gap's part of the report (SECTIONS), for the JSON output and --fail-on-gaps.
    audit["gap_sections"] = [gaps.sections[g] for g in gaps]
    return audit


def _serving_arn_quietly(clients: Clients, names: Names) -> Optional[str]:
    try:
        stacks = clients.cloudformation.describe_stacks(StackName=names.serving_stack)["Stacks"]
    except aws_errors() as exc:
        if is_credentials_error(exc):
            raise
        return None
    for p in stacks[0].get("Parameters") or []:
        if p["ParameterKey"] == names.parameter and PACKAGE_ARN.match(p.get("ParameterValue") or ""):
            return p["ParameterValue"]
    return None


def _user(context: Any) -> Optional[str]:
    if not isinstance(context, Mapping):
        return None
    parts = [context.get("UserProfileName"), context.get("UserProfileArn")]
    iam = context.get("IamIdentity") or {}
    parts.append(iam.get("Arn") or iam.get("PrincipalId"))
    return " / ".join(str(p) for p in parts if p) or None
