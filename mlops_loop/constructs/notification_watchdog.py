"""The notification watchdog: a second topic, under a key of its own, for the alarms that say people were not told."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from .rule_notifications import allow_alarms


class NotificationWatchdog(Construct):
    """A TLS-only topic encrypted with ``key`` that only the environment's alarms (``<name_prefix>-...`` of this
    account) may publish to; no rule publishes here and nobody is subscribed (subscribe the people of the environment's
    topic: the Operations stack's output ``WatchdogTopicArn``).

    An alarm about the notification path itself (a notice EventBridge could not deliver to the environment's topic)
    must not need that topic, its policy or its key to arrive: the topic deleted, its policy edited or the ops key
    disabled stop the notice and an alarm on that topic alike. This topic shares none of them when ``key`` is not the
    ops key (the Storage stack's ``WatchdogKey``, which the same alarms alone may use). A customer-managed key, not the
    AWS-managed ``alias/aws/sns``: CloudWatch cannot use that one for alarm actions and its policy cannot be edited
    (AWS Knowledge Center, cloudwatch-configure-alarm-sns), so every alarm action to such a topic would fail.
    """

    def __init__(self, scope: Construct, construct_id: str, *, name_prefix: str, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"{name_prefix} ML loop notification watchdog",
            master_key=key,
            enforce_ssl=True,
        )
        allow_alarms(self.topic, alarm_name_prefix=name_prefix)
