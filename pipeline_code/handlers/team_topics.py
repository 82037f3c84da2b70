"""Who hears of a model: its team's topic when it has an owner, else the environment's (docs/configuration.md, Models
of several teams). The one reading of ``TEAM_TOPICS`` every handler that tells people of a model shares (the deploy
handler, the retrain trigger): ``{<team topic NAME>: [<package group>, ...]}``, each owned model's group under its team's
topic (the Operations stack's ``topic_of``; ``mlops_loop.constructs.handler_function.team_topics_variable`` writes it).
A team topic has a fixed name (``contract.team_topic_name``) in the environment topic's partition, region and account, so
its ARN is the environment topic's ARN with the last ``:``-part replaced (:func:`team_topic_arn`): names keep the
variable short (an ARN is a reference synth counts at 256 bytes of Lambda's 4 KB)."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Collection, Dict, Mapping, Optional, Type


@dataclasses.dataclass(frozen=True)
class Topics:
    """Who hears of a key (a group, or what a handler mapped the groups to): its team's topic (``teams``) when its model
    has an owner, else the environment's (``default``), which also hears every notice about no one model."""

    default: Optional[str]
    teams: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def of(self, key: Optional[str]) -> Optional[str]:
        return self.teams.get(key or "", self.default)

    def __bool__(self) -> bool:
        return bool(self.default or self.teams)


# SNS topic names: 1-256 letters, digits, '-' and '_'.
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_TOPIC_ARN = re.compile(r"^arn:[^:]+:sns:[^:]+:[^:]+:[A-Za-z0-9_-]{1,256}$")


def team_topic_arn(name: str, topic_arn: str) -> str:
    """The ARN of topic ``name`` beside ``topic_arn`` (same partition, region and account: its last ``:``-part
    replaced)."""
    return f"{topic_arn.rsplit(':', 1)[0]}:{name}"


def team_topics_setting(raw: str, groups: Collection[str], *, unknown: str, topic_arn: Optional[str],
                        topic_variable: str, error: Type[Exception] = ValueError) -> Dict[str, str]:
    """``TEAM_TOPICS`` (see the module docstring) as group -> topic ARN, built from ``topic_arn`` (the environment's
    topic, the handler's variable ``topic_variable``); empty or unset = every notice to the environment's topic (no
    model has an owner). Each group must be one of ``groups`` (the function's models'): ``unknown`` ends the error that
    names one that is not; ``error`` is the handler's configuration error."""
    if not raw.strip():
        return {}
    name = "environment variable TEAM_TOPICS"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(topic, str) and isinstance(names, list) and names
        and all(isinstance(g, str) and g for g in names) for topic, names in value.items()
    ):
        raise error(f"{name} must be a JSON object mapping a team's topic name -> its models' group names, "
                    f"got {raw[:200]!r}")
    for topic in value:
        if not _TOPIC_NAME.match(topic):
            raise error(f"{name} names topic {topic[:300]!r}, which is no SNS topic name (1-256 letters, digits, '-' "
                        "and '_'; the team's topic name <prefix>-<team>-notifications, not its ARN): deploy the "
                        "Operations stack again (cdk deploy) to restore the variable it sets")
    if not _TOPIC_ARN.match(topic_arn or ""):
        raise error(f"{name} names team topics, whose ARNs are built from environment variable {topic_variable} "
                    f"(the environment's topic: its partition, region and account), which is no SNS topic ARN "
                    f"(got {(topic_arn or '')[:200]!r}): deploy the Operations stack again (cdk deploy) to restore "
                    "the variables it sets")
    out: Dict[str, str] = {}
    for topic, names in value.items():
        arn = team_topic_arn(topic, topic_arn or "")
        for group in names:
            if group not in groups:
                raise error(f"{name} names group {group!r}, {unknown}")
            if out.setdefault(group, arn) != arn:
                raise error(f"{name} gives group {group!r} two topics: a model has one team")
    return out
