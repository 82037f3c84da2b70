"""Compliance checks: the cdk-nag packs every synth runs, and the one way to acknowledge a finding.

Acknowledgements live next to the resource they concern (the narrowest scope) and always carry a
reason; :func:`acknowledge` refuses an empty one so an unexplained exception cannot be added.
"""

from __future__ import annotations

from typing import Sequence

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks
from constructs import IConstruct

PACKS = ("AwsSolutions", "NIST.800.53.R5")


def add_nag_packs(app: App) -> None:
    """Run AwsSolutions and NIST 800-53 rev 5 on every stack; a finding fails synth unless acknowledged."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))


def acknowledge(scope: IConstruct, reason: str, *rule_ids: str) -> None:
    """Acknowledge ``rule_ids`` (e.g. ``"AwsSolutions-IAM5[Resource::*]"``) on ``scope`` and its children."""
    record(scope, acknowledgments(scope, reason, *rule_ids))


def acknowledgments(scope: IConstruct, reason: str, *rule_ids: str) -> list[Acknowledgment]:
    """The acknowledgements :func:`acknowledge` would record, checked now (a reason, known rule ids), for a
    construct that records them itself later with :func:`record` (``AccessPolicy``, once per policy)."""
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledgement of {rule_ids} on {scope.node.path} needs a real reason")
    unknown = [rule_id for rule_id in rule_ids if not rule_id.startswith(("AwsSolutions-", "NIST.800.53.R5-"))]
    if unknown:
        raise ValueError(f"unknown nag rule id {unknown[0]!r}")
    return [Acknowledgment(id=rule_id, reason=reason) for rule_id in rule_ids]


def record(scope: IConstruct, acknowledged: Sequence[Acknowledgment]) -> None:
    """Record ``acknowledged`` (from :func:`acknowledgments`) on ``scope``, in one call to the CDK.

    The packs read them when they check the templates, after every template is made: a construct may record
    them as late as while its template is made."""
    if acknowledged:
        Validations.of(scope).acknowledge(*acknowledged)
