"""Compliance checks: the cdk-nag packs every synth runs, and the one way to acknowledge a finding.

Acknowledgements live next to the resource they concern (the narrowest scope) and always carry a
reason; :func:`acknowledge` refuses an empty one so an unexplained exception cannot be added.
"""

from __future__ import annotations

import weakref

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks, NIST80053R5Checks
from constructs import IConstruct

PACKS = ("AwsSolutions", "NIST.800.53.R5")


def add_nag_packs(app: App) -> None:
    """Run AwsSolutions and NIST 800-53 rev 5 on every stack; a finding fails synth unless acknowledged."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), NIST80053R5Checks(app))


def acknowledge(scope: IConstruct, reason: str, *rule_ids: str) -> None:
    """Acknowledge ``rule_ids`` (e.g. ``"AwsSolutions-IAM5[Resource::*]"``) on ``scope`` and its children."""
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledgement of {rule_ids} on {scope.node.path} needs a real reason")
    unknown = [rule_id for rule_id in rule_ids if not rule_id.startswith(("AwsSolutions-", "NIST.800.53.R5-"))]
    if unknown:
        raise ValueError(f"unknown nag rule id {unknown[0]!r}")
    validations = _VALIDATIONS.get(scope)
    if validations is None:
        validations = _VALIDATIONS[scope] = Validations.of(scope)
    validations.acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in rule_ids))


# Each scope's Validations, looked up once (a round trip to the CDK's Node process): a policy acknowledges
# one finding per wildcard statement, a few hundred per synth.
_VALIDATIONS: weakref.WeakKeyDictionary[IConstruct, Validations] = weakref.WeakKeyDictionary()
