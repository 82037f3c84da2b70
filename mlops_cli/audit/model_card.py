"""The version's SageMaker model card: whether it describes this package, was approved, and was changed after the
version's approval."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Dict, Mapping, Optional

from pipeline_code.core import approval
from pipeline_code.core.contract import legacy_model_card_name, model_card_name, package_created
from pipeline_code.training.model_card.content import card_package

from .approvals import never_updated
from .aws import (
    Clients,
    Gaps,
    Names,
    as_datetime,
    attempt,
    aws_errors,
    describe_error,
    error_code,
    is_credentials_error,
    iso_time,
    list_pages,
    user_of,
)


# The status of a model card its reviewers approved (ModelCardStatus: Draft | PendingReview | Approved | Archived).
CARD_APPROVED = "Approved"


def gather_model_card(clients: Clients, names: Names, version: int, package: Mapping[str, Any], auto_approved: bool,
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
               modified_by=user_of(card.get("LastModifiedBy")))
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
    if approved_at is not None and not auto_approved and not never_updated(package):
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
