"""How long an environment keeps what it deploys: its log retention and what happens to its stateful resources."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs

from ..config import EnvironmentConfig


def removal_policy(environment: EnvironmentConfig) -> RemovalPolicy:
    """What CloudFormation does with the environment's stateful and named resources when their stack deletes or
    replaces them: keep them (``retain``, the default) or delete them (``destroy``, dev tiers only).

    Kept resources are kept on update and delete, not when the stack's own create fails and rolls back
    (``RetainExceptOnCreate``): a first deploy that fails halfway (a quota, a bucket name taken) leaves nothing
    behind, so its retry does not fail on the fixed-name buckets, groups and keys the failed attempt created.
    """
    return RemovalPolicy.DESTROY if environment.removal_policy == "destroy" else RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE


# Every day count the config allows (EnvironmentConfig.log_retention_days) -> CloudWatch's enum.
RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
