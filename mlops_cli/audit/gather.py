"""Gathering one model version's record: which version (by number, or what serves now), its package and code commit,
then each part of the report from the module that gathers it: :mod:`.artefacts` (artefact, container, test set and
splits against their registered digests), :mod:`.execution` (pipeline execution or run record, lineage),
:mod:`.evaluation` (reports, evidence digests, gate thresholds), :mod:`.approvals` (ledger, CloudTrail, approver
checks), :mod:`.model_card` and :mod:`.deployment`.

Every gatherer reports what it could not read as a gap instead of failing the audit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Mapping, Optional, Tuple

from pipeline_code.core import approval
from pipeline_code.core.contract import (
    CODE_VERSION_PROPERTY,
    COMMIT_VERSION,
    DIRTY_VERSION_SUFFIX,
    FROZEN_TEST_PROPERTY,
    INPUT_FEATURES_PROPERTY,
    INPUT_LABELS_PROPERTY,
    JOB_CODE_HASH_PROPERTY,
    MODEL_SPEC_SHA256_PROPERTY,
    PACKAGE_ARN,
    TRIGGER_REASON_PROPERTY,
    UNKNOWN_VERSION,
)

from .approvals import approval_checks, gather_approvals, cloudtrail_silence, gather_ledger, not_independent
from .artefacts import gather_integrity, gather_splits, gather_test_set
from .aws import (
    AuditError,
    Clients,
    Gaps,
    Names,
    aws_errors,
    describe_error,
    error_code,
    is_credentials_error,
    iso_time,
    list_pages,
    user_of,
)
from .deployment import gather_deployment
from .evaluation import gather_evaluation, gather_gate_parameters
from .execution import gather_execution, gather_lineage, gather_run_record
from .model_card import gather_model_card


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
            "created_by": user_of(package.get("CreatedBy")),
            "modified_by": user_of(package.get("LastModifiedBy")),
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
    audit["ledger"] = gather_ledger(clients, names, int(version), audit["data"]["model_data"], gaps, package)
    history = gather_approvals(clients, package, gaps, now, audit["ledger"])
    gaps.section = "data_and_code"
    audit["integrity"] = gather_integrity(clients, package, metadata, audit["data"]["model_data"], history, gaps, now)
    gaps.section = "pipeline_execution"
    before = len(gaps)
    audit["execution"] = gather_execution(clients, package, gaps)
    if audit["execution"] is None:
        # Gone with its pipeline (or unreadable): the run record kept at approval stands in, and says so in found_by.
        audit["execution"] = gather_run_record(clients, names, int(version), package, audit["data"]["model_data"], gaps)
        if audit["execution"] is not None:
            del gaps[before:]
    gaps.section = "evaluation"
    audit["evaluation"] = gather_evaluation(clients, package, gaps)
    report = audit["evaluation"]["report"]
    audit["evaluation"]["gate_parameters"] = gather_gate_parameters(clients, audit["execution"], report, gaps)
    reasons = approval.gate_failure(report)
    if status == "Approved" and reasons is not None:
        # The pipeline's condition step registers only a version whose gate passed: this one came another way.
        gaps.add(f"gate: version {version} is Approved, but its evaluation report says the promotion gate failed "
                 f"({reasons}); the pipeline registers only a version that passed, so this one was registered outside "
                 "it; its approval is the only record of why the failed check was accepted")
    evaluation_verified = (audit["evaluation"]["evidence"].get("evaluation") or {}).get("verified")
    gaps.section = "data_and_code"
    audit["test_set"] = gather_test_set(clients, metadata, report, evaluation_verified, gaps)
    audit["splits"] = gather_splits(clients, names, metadata, gaps)
    gaps.section = "approval"
    audit["approvals"] = history or []
    audit["approval_checks"] = approval_checks(names, package, audit["ledger"], history, auto_approve, gaps,
                                               approver_team=approver_team)
    not_independent(audit["execution"], audit["approval_checks"], gaps)
    cloudtrail_silence(package, audit["ledger"], history, audit["approval_checks"], now, gaps)
    if status == "Approved" and not audit["approval_checks"]:
        gaps.add(
            "approval: the version is Approved but neither the approval ledger nor CloudTrail has its approval; it may have "
            "been approved more than 90 days ago, before the ledger"
        )
    # Only ever approved by the environment's auto-approval at registration: no reviewer was asked for the card either.
    auto_approved = (status == "Approved" and bool(audit["approval_checks"])
                     and all(c["auto"] for c in audit["approval_checks"]))
    gaps.section = "model_card"
    audit["model_card"] = gather_model_card(clients, names, int(version), package, auto_approved, gaps)
    gaps.section = "lineage"
    audit["lineage"] = gather_lineage(clients, package, gaps)
    gaps.section = "deployment"
    audit["deployment"] = gather_deployment(clients, names, arn, serving_arn, gaps)
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
