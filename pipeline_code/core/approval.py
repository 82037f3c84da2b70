"""Which version of a model package group serves - and so is the champion the next challenger must beat.

One rule (:data:`RULE`) answers it for everything that asks: the deploy handler (which version it rolls out),
the rollback CLI (which version is desired), the evaluation job (which version a challenger is judged against)
and the local run's registry (its champion):

    among the versions that are ``Approved`` and ``Completed``, the one approved last; a tie on the approval
    time goes to the higher version number.

"Approved last" is the time of the version's latest approval decision. In the Model Registry that is the package's
``LastModifiedTime`` (only the approver role may update packages, and IAM lets it make no update that does not set
an approval status, so that time is never a later edit), or its ``CreationTime`` when it was never modified; in the
local registry, the time of the version's last approval-history entry. That is what makes a rollback work: it
re-approves an earlier version, which becomes the one approved last while the newer versions stay ``Approved``.
"The newest Approved by ``CreationTime``" is not the rule - after a rollback it names a version that does not serve.
The rule names the version the handler selects; when the handler then refuses it (its artefact or container does not
verify) or holds it (a failed rollout), the endpoint keeps serving an earlier one until a person decides.

A version whose digest-verified evaluation report says its promotion gate failed (:func:`gate_problems`) never serves:
the handler refuses it, and :func:`serving_package` (the evaluation job's champion) passes over it to the next in
:func:`serving_order`, the version the handler keeps serving. So does a version whose reports are not where the
evaluation step writes its model's reports (:class:`ReportPlace`): the handler's role may read only those, so its gate
cannot be checked - whichever role reads the reports, both judge it the same way. The rollback CLI (the approver
role, which cannot read the reports) and the local registry apply the rule without it.

``ListModelPackages`` can sort only by ``Name`` or ``CreationTime`` and its summaries carry no ``LastModifiedTime``,
so :func:`approved_packages` lists every ``Approved`` version of the group, page by page, and describes each one.

:func:`status_to_register` is the other half of the governance: the status a version that passed the gate is registered
with. The environment asks for ``Approved`` (``training.auto_approve``) or ``PendingManualApproval``; a version whose
callers' contract changes against the serving one (another problem type, other classes, another feature order: the
evaluation job's ``registration.contract_change``) is registered ``PendingManualApproval`` whatever was asked, so a
person sees it before it answers callers in another shape. It never turns a Pending request into ``Approved``.

Standard library only: the Lambda handlers, the training jobs and the workstation tools all import it; the boto3
client is the caller's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import hashlib
import json
from typing import Any, Callable, Iterable, List, Mapping, Optional, Tuple, Type, TypeVar

from pipeline_code.core import integrity
from pipeline_code.core.contract import BIAS_FILE, EVALUATION_FILE, S3_OBJECT_URI

APPROVED = "Approved"
PENDING = "PendingManualApproval"
COMPLETED = "Completed"
# The statuses a version may be registered with: the Model Registry's third, Rejected, is a person's decision.
REGISTRATION_STATUSES = (PENDING, APPROVED)

# The rule's name, as the evaluation report records it (``champion.source.rule``).
RULE = "approved-last"

# What to do about a version whose gate failed: there is no approval that overrides it.
GATE_FIX = ("fix the cause and retrain it (a new pipeline execution registers the version that passes); no approval "
            "deploys a version whose gate failed")

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Standing:
    """What the rule reads of one version: its number, approval status, package status and approval time."""

    version: int
    approval: str
    status: str
    approved_at: dt.datetime

    @property
    def may_serve(self) -> bool:
        """Approved and Completed: a version still being created (or failed, or deleting) never serves."""
        return self.approval == APPROVED and self.status == COMPLETED


def approval_time(last_modified: Optional[dt.datetime], created: dt.datetime) -> dt.datetime:
    """When a package's current approval status was set: ``LastModifiedTime``, or ``CreationTime`` if never modified."""
    return last_modified or created


def serving_order(items: Iterable[T], standing: Callable[[T], Standing]) -> List[T]:
    """The items that may serve, the one approved last first (:data:`RULE`); the others are left out.

    ``standing`` reads an item's :class:`Standing`. A naive approval time is taken as UTC.
    """
    ranked = [(standing(item), item) for item in items]
    ranked = [(s, item) for s, item in ranked if s.may_serve]
    ranked.sort(key=lambda pair: (_aware(pair[0].approved_at), pair[0].version), reverse=True)
    return [item for _, item in ranked]


def select(items: Iterable[T], standing: Callable[[T], Standing]) -> Optional[T]:
    """The item that serves by :data:`RULE` (the first of :func:`serving_order`), or None when none may."""
    return next(iter(serving_order(items, standing)), None)


def standing_of(description: Mapping[str, Any]) -> Standing:
    """The :class:`Standing` of a ``DescribeModelPackage`` answer."""
    return Standing(
        version=int(description.get("ModelPackageVersion") or 0),
        approval=str(description.get("ModelApprovalStatus") or ""),
        status=str(description.get("ModelPackageStatus") or ""),
        approved_at=approval_time(description.get("LastModifiedTime"), description["CreationTime"]),
    )


def summaries(sagemaker: Any, group: str, *, approval: Optional[str] = None) -> List[Mapping[str, Any]]:
    """Every version's ``ListModelPackages`` summary in ``group`` (all pages), only those of ``approval`` when given."""
    filters = {"ModelApprovalStatus": approval} if approval else {}
    found: List[Mapping[str, Any]] = []
    for page in sagemaker.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, ModelPackageType="Versioned", **filters
    ):
        found.extend(page.get("ModelPackageSummaryList", []))
    return found


def approved_packages(sagemaker: Any, group: str) -> List[Mapping[str, Any]]:
    """``DescribeModelPackage`` of every ``Approved`` version of ``group``: the rule needs their ``LastModifiedTime``."""
    return [sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"])
            for s in summaries(sagemaker, group, approval=APPROVED)]


def serving_package(sagemaker: Any, group: str, s3: Any, passed_over: Optional[List[str]] = None, *,
                    place: "ReportPlace") -> Optional[Mapping[str, Any]]:
    """``DescribeModelPackage`` of the version of ``group`` that serves: the first of :func:`serving_order` whose
    evaluation report does not say its promotion gate failed, nor lies outside ``place`` (:func:`gate_problems`, the
    deploy handler's check: it refuses such a version, and the one before it keeps serving), or None when none may.

    ``s3`` reads the reports (``s3:GetObject`` on the artifacts bucket); its errors propagate. Each version passed over
    is appended to ``passed_over`` (``"v<n>: <why>"``) when given."""
    for description in serving_order(approved_packages(sagemaker, group), standing_of):
        problems = gate_problems(s3, **report_locations(description), place=place)
        if not problems:
            return description
        if passed_over is not None:
            passed_over.append(f"v{standing_of(description).version}: " + "; ".join(problems))
    return None


def status_to_register(requested: str, contract_change: Optional[str], not_compared: Optional[str] = None) -> str:
    """The approval status a version that passed the gate is registered with: ``requested`` (the environment's), or
    :data:`PENDING` when ``contract_change`` says how the version would answer its callers differently from the one
    that serves, or ``not_compared`` why the gate could not compare it with the serving champion (only the floors
    judged it): a person approves such a version; an auto-approving environment does not. Never more than
    ``requested``: a :data:`PENDING` request is :data:`PENDING` whatever else.

    Raises:
        ValueError: ``requested`` is not one of :data:`REGISTRATION_STATUSES`.
    """
    if requested not in REGISTRATION_STATUSES:
        raise ValueError(f"approval status {requested!r} is not one a version is registered with; "
                         f"expected one of: {', '.join(REGISTRATION_STATUSES)}")
    return PENDING if contract_change or not_compared else requested


def registration_note(registration: Optional[Mapping[str, Any]], *, shown: Optional[str] = None) -> Optional[str]:
    """What a reviewer reads of an evaluation report's ``registration`` block (None when there is nothing to say:
    no block, or neither a contract change nor a champion set aside): the callers' contract change, the reason the
    serving champion was not compared, and that either holds the version for a person.

    ``shown``: the reason the champion was not compared (the report's ``champion_not_compared``) when the caller prints
    it on its own line: the note then names the change or the set-aside champion without repeating it."""
    change = (registration or {}).get("contract_change")
    not_compared = (registration or {}).get("champion_not_compared")
    if not change and not not_compared:
        return None
    status, requested = registration.get("approval_status"), registration.get("requested")
    why = ("that answers its callers in another shape" if change
           else "the gate could not compare with the one that serves")
    held = (f"registered {status}, not the {requested} requested: a person approves a version {why}"
            if requested == APPROVED and status == PENDING else f"registered {status}: a person approves it")
    def why(reason: str) -> str:
        return "" if shown and reason == shown else f" ({reason})"
    said = ([f"the callers' contract changes{why(change)}"] if change else []) + (
        [f"not compared with the serving champion{why(not_compared)}"] if not_compared else [])
    return "; ".join([*said, held])


def gate_failure(report: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The reasons an evaluation report says its promotion gate failed, joined ("; "), or ``"no reason recorded"``;
    None when the report passed its gate or records none (no report, no ``gate`` block).

    One definition of "the gate failed" for the audit (an Approved version of it is a gap) and the deploy handler (which
    refuses to deploy it): the pipeline's condition step registers only a version whose gate passed, so such a version
    was registered outside it."""
    gate = (report or {}).get("gate") if isinstance(report, Mapping) else None
    if not isinstance(gate, Mapping) or not gate or gate.get("passed"):
        return None
    reasons = gate.get("reasons")
    reasons = reasons if isinstance(reasons, list) else []
    return "; ".join(str(r) for r in reasons) or "no reason recorded"


@dataclasses.dataclass(frozen=True)
class ReportPlace:
    """Where a version's evaluation and bias reports must be for its promotion gate to be checked: where the evaluation
    step of ``model``'s pipeline writes them in the environment's artifacts ``bucket``
    (:func:`integrity.evaluation_report_pattern`). The deploy handler's role may read reports only there (IAM
    ``ReadEvaluationReports``), so a report elsewhere - under the model's prefix but outside an evaluation step's
    folder, another model's, another bucket - cannot be checked by it, and the evaluation job, whose role reads more,
    must not judge it otherwise: the champion would be a version that never serves.

    ``model`` None: any model's folder (``pipelines/*/...``); ``bucket`` None: any bucket (the key alone is checked) -
    for a caller that does not know them."""

    model: Optional[str]
    bucket: Optional[str]

    @property
    def pattern(self) -> str:
        """The keys allowed, as IAM matches them (``*`` spans ``/``)."""
        return integrity.evaluation_report_pattern(self.model or "*")

    def problem(self, name: str, uri: str) -> Optional[str]:
        """Why report ``name`` at ``uri`` (an s3:// object URI) cannot be checked here, or None when it can."""
        match = S3_OBJECT_URI.match(uri)
        in_bucket = match is not None and (self.bucket is None or match.group(1) == self.bucket)
        if in_bucket and fnmatch.fnmatchcase(match.group(2), self.pattern):
            return None
        where = f"s3://{self.bucket or '<artifacts bucket>'}/{self.pattern}"
        whose = f"{self.model}'s" if self.model else "a model's"
        return (f"its {name} {uri} is not where the evaluation step writes {whose} reports ({where}), the only ones the "
                "deploy handler may read, so its promotion gate cannot be checked; re-register it from a pipeline run, or "
                "register it with its reports (ModelMetrics) there")


def report_locations(description: Mapping[str, Any]) -> dict:
    """Where a ``DescribeModelPackage`` answer's reports are, as :func:`gate_problems` reads them: ``evaluation_uri``
    (evaluation.json, beside the ModelMetrics ModelQuality statistics: the evaluation job writes both, ModelMetrics
    names only the latter), ``bias_uri`` and the ``bias_sha256`` its ContentDigest records (None when absent)."""
    def metric(section: str, entry: str) -> Mapping[str, Any]:
        value = ((description.get("ModelMetrics") or {}).get(section) or {}).get(entry)
        return value if isinstance(value, Mapping) else {}

    quality = metric("ModelQuality", "Statistics").get("S3Uri")
    return {
        "evaluation_uri": quality.rsplit("/", 1)[0] + "/" + EVALUATION_FILE if isinstance(quality, str) and "/" in quality else None,
        "bias_uri": metric("Bias", "Report").get("S3Uri") or None,
        "bias_sha256": integrity.hex_of_content_digest(metric("Bias", "Report").get("ContentDigest")),
    }


def gate_problems(s3: Any, *, evaluation_uri: Optional[str], bias_uri: Optional[str], bias_sha256: Optional[str],
                  place: ReportPlace, read_errors: Tuple[Type[BaseException], ...] = ()) -> List[str]:
    """Why a version must not serve by its evaluation report (empty when it may): the report, verified as registered,
    says the promotion gate failed (:func:`gate_failure`, the audit's definition too). One check for the deploy handler
    (which refuses such a version) and :func:`serving_package` (which passes over it: the evaluation job's champion).

    A report outside ``place`` (:class:`ReportPlace`: where the evaluation step writes the model's reports, the only
    ones the deploy handler may read) refuses the version before anything is read: its gate cannot be checked.

    evaluation.json rests on bias.json's ContentDigest (:data:`integrity.EVALUATION_DIGEST_KEY`): both are read
    (``s3.get_object``) and checked. A report whose bytes are not the registered ones, or that cannot be read with an
    error of ``read_errors`` (the deploy handler's botocore ``ClientError``; other errors propagate), refuses the
    version too (its gate cannot be checked). A version that records no bias report digest (registered before the
    reports' digests) or whose bias report carries no evaluation digest is not judged here (nothing vouches for its
    report; the audit says so)."""
    if bias_sha256 is None or not bias_uri or not evaluation_uri:
        return []
    documents = {}
    for name, uri in ((BIAS_FILE, bias_uri), (EVALUATION_FILE, evaluation_uri)):
        unplaced = _unplaced(name, uri, place)
        if unplaced:
            return [unplaced]
        match = S3_OBJECT_URI.match(uri)
        try:
            documents[name] = s3.get_object(Bucket=match.group(1), Key=match.group(2))["Body"].read()
        except read_errors as error:
            return [f"its {name} {uri} cannot be read to check its promotion gate: {error}"]
        recorded = bias_sha256 if name == BIAS_FILE else _carried_evaluation_digest(documents[BIAS_FILE])
        if recorded is None:
            return []
        actual = hashlib.sha256(documents[name]).hexdigest()
        if actual != recorded:
            return [f"its {name} {uri} has sha256 {actual}, but {recorded} was recorded at registration: the report "
                    "was rewritten after registration, so its promotion gate cannot be checked"]
    try:
        report = json.loads(documents[EVALUATION_FILE])
    except ValueError:
        report = None
    reasons = gate_failure(report)
    if reasons is None:
        return []
    return [f"its evaluation report {evaluation_uri} says the promotion gate failed ({reasons}): the pipeline "
            f"registers only a version that passed, so this one was registered outside it; {GATE_FIX}"]


def place_problems(*, evaluation_uri: Optional[str], bias_uri: Optional[str], bias_sha256: Optional[str],
                   place: ReportPlace) -> List[str]:
    """What :func:`gate_problems` refuses by where the reports are alone, reading nothing (empty when they are where
    ``place`` says, or when it does not judge the version's reports at all: registered before the reports' digests):
    for a caller that may not read the reports, such as the rollback CLI (the approver role), so it does not re-approve
    a version the deploy handler then refuses. A report whose bias report vouches for no evaluation digest is not
    judged by the handler beyond its bias report; every report the evaluation step writes vouches for it."""
    if bias_sha256 is None or not bias_uri or not evaluation_uri:
        return []
    problems = (_unplaced(name, uri, place) for name, uri in ((BIAS_FILE, bias_uri), (EVALUATION_FILE, evaluation_uri)))
    return [problem for problem in problems if problem][:1]


def _unplaced(name: str, uri: str, place: ReportPlace) -> Optional[str]:
    """Why report ``name`` at ``uri`` cannot be checked by where it is (not an s3:// object URI, or outside
    ``place``), or None: the check :func:`gate_problems` makes before reading it and :func:`place_problems` instead."""
    if not S3_OBJECT_URI.match(uri):
        return f"its {name} {uri!r} is not an s3:// object URI, so its promotion gate cannot be checked"
    return place.problem(name, uri)


def says_gate_failed(problems: Iterable[str]) -> bool:
    """Whether :func:`gate_problems`' answer is that the report says the gate failed; otherwise (a non-empty answer)
    the gate could not be checked: the report is elsewhere, unreadable or not the registered one."""
    return any(GATE_FIX in problem for problem in problems)


def _carried_evaluation_digest(bias: bytes) -> Optional[str]:
    try:
        carried = json.loads(bias)
    except ValueError:
        return None
    return integrity.hex_of_content_digest(carried.get(integrity.EVALUATION_DIGEST_KEY)) if isinstance(carried, dict) else None


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
