"""Who decided on a version: the approval ledger's records, CloudTrail's UpdateModelPackage calls, and each
``Approved`` decision held to the approver role (and to independence from whoever started the training)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pipeline_code.core import approval, integrity
from pipeline_code.core.contract import (
    REGISTERED_PROPERTIES,
    approver_role_name,
    package_created,
    team_approver_role_name,
)

from .artefacts import sealed_location
from .aws import (
    Clients,
    CLOUDTRAIL_HISTORY_DAYS,
    Gaps,
    Names,
    as_datetime,
    attempt,
    iso_time,
    list_pages,
    read_bytes,
    user_of,
)


def gather_ledger(clients: Clients, names: Names, version: int, model_data: Sequence[str], gaps: Gaps,
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
    sealed = sealed_location(model_data)
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
    # Below one package's prefix a key starts with a UTC time: when recorded, or for a reconcile's once-only refused /
    # held record the approval decision it is about (ledger._once_key); the report orders records by recorded_at.
    for key in sorted(keys):
        uri = f"s3://{bucket}/{key}"
        body = attempt(gaps, f"approval ledger record {uri}", lambda: read_bytes(clients, uri))
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
            "at_registration": never_updated(package_seen),
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


def gather_approvals(clients: Clients, package: Mapping[str, Any], gaps: Gaps, now: dt.datetime,
                     ledger: Optional[Mapping[str, Any]] = None) -> Optional[List[Dict[str, Any]]]:
    """The version's UpdateModelPackage calls in CloudTrail's event history (its last 90 days), oldest first (None when
    it cannot be read: the reason is a gap). A successful call that set a registered property or removed any is a gap.
    ``ledger`` (:func:`gather_ledger`; default none) holds what beyond that the approval ledger keeps, so an older version
    with ledger records is no gap. Whether no call at all is a gap is decided once the decisions are known
    (:func:`cloudtrail_silence`)."""
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


def cloudtrail_silence(package: Mapping[str, Any], ledger: Mapping[str, Any],
                       history: Optional[Sequence[Mapping[str, Any]]], checks: Sequence[Mapping[str, Any]],
                       now: dt.datetime, gaps: Gaps) -> None:
    """A gap when CloudTrail was read (``history`` not None) and holds no UpdateModelPackage call of the version, unless
    none is to be expected: every decision the approval ledger kept is older than CloudTrail's history, or the version
    was never updated and its every ``Approved`` decision (``checks``, :func:`approval_checks`) is the environment's
    auto-approval at registration - registering is CreateModelPackage, so no UpdateModelPackage call can exist."""
    if history is None or history:
        return
    horizon = now - dt.timedelta(days=CLOUDTRAIL_HISTORY_DAYS)
    kept = ledger.get("records") or []
    if kept and not any((as_datetime(r["time"]) or now) >= horizon for r in kept):
        return
    if never_updated(package) and checks and all(c["auto"] for c in checks):
        return
    gaps.add("approval history: CloudTrail has no UpdateModelPackage call for this version")


def never_updated(package: Mapping[str, Any]) -> bool:
    """Whether a DescribeModelPackage answer (or the ledger's copy of one) is of a package no call has updated since it
    was registered: no ``LastModifiedBy``, and no ``LastModifiedTime`` later than its ``CreationTime``."""
    if package.get("LastModifiedBy"):
        return False
    modified, created = as_datetime(package.get("LastModifiedTime")), as_datetime(package.get("CreationTime"))
    return modified is None or (created is not None and modified <= created)


def person_of(principal: Optional[str]) -> Optional[str]:
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


def not_independent(execution: Optional[Mapping[str, Any]], checks: Sequence[Mapping[str, Any]], gaps: Gaps) -> None:
    """A gap for each person's approval by whoever started the execution that trained the version (the same person: a
    session's source identity, else its session or IAM user name): the approval is then no independent challenge of the
    training (SR 11-7)."""
    starter = (execution or {}).get("started_by_person")
    if not starter:
        return
    for check in checks:
        person = check.get("person") if "person" in check else person_of(check.get("principal"))
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


def approval_checks(names: Names, package: Mapping[str, Any], ledger: Mapping[str, Any],
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
                       "person": source_identity or person_of(principal), "source_identity": source_identity})

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
    if not checks and package.get("ModelApprovalStatus") == approval.APPROVED and never_updated(package):
        registered(iso_time(package.get("CreationTime")), user_of(package.get("CreatedBy")),
                   "the model package: Approved since it was registered, never updated")
    return checks
