"""Who hears of a model: its team's topic when it has an owner, else the environment's (docs/configuration.md, Models
of several teams). The one reading of ``TEAM_TOPICS`` every handler that tells people of a model shares (the deploy
handler, the retrain trigger): ``{<team topic ARN>: [<package group>, ...]}``, each owned model's group under its team's
topic (the Operations stack's ``topic_of``; ``mlops_loop.constructs.handler_function.team_topics_variable`` writes it)."""

from __future__ import annotations

import dataclasses
import json
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


def team_topics_setting(raw: str, groups: Collection[str], *, unknown: str,
                        error: Type[Exception] = ValueError) -> Dict[str, str]:
    """``TEAM_TOPICS`` (see the module docstring) as group -> topic ARN; empty or unset = every notice to the
    environment's topic (no model has an owner). Each group must be one of ``groups`` (the function's models'):
    ``unknown`` ends the error that names one that is not; ``error`` is the handler's configuration error."""
    if not raw.strip():
        return {}
    name = "environment variable TEAM_TOPICS"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(arn, str) and arn.startswith("arn:") and isinstance(names, list) and names
        and all(isinstance(g, str) and g for g in names) for arn, names in value.items()
    ):
        raise error(f"{name} must be a JSON object mapping a team's topic ARN -> its models' group names, "
                    f"got {raw[:200]!r}")
    out: Dict[str, str] = {}
    for arn, names in value.items():
        for group in names:
            if group not in groups:
                raise error(f"{name} names group {group!r}, {unknown}")
            if out.setdefault(group, arn) != arn:
                raise error(f"{name} gives group {group!r} two topics: a model has one team")
    return out
