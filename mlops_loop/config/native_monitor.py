"""What native Model Monitor (``serving.native_model_monitor``) needs of a model's config, in one place: the
window its model-quality and bias jobs judge, the threshold they decide with, and why a config cannot give them.

The loader refuses what these find (:func:`native_monitor_problems`); the construct
(``mlops_loop.constructs.native_model_monitor``) builds its job definitions from the same functions.
"""

from __future__ import annotations

import math
from typing import Optional

from .environment import EnvironmentConfig
from .model import ModelConfig

# StartTimeOffset / EndTimeOffset are a MonitoringTimeOffsetString: 1-15 characters, pattern ^.?P.* (botocore's
# SageMaker model; the CloudFormation schema of the job definitions says the same), an ISO 8601 duration such as
# "-PT7H" or "-P8D" (the "Schedule model quality monitoring jobs" guide). No longest duration is documented: a
# delay is refused only when its offset would not fit the string (never within label_delay_days' 3,650 days).
OFFSET_MAX_CHARS = 15


def window_offsets(label_delay_hours: int, period_hours: int) -> tuple[str, str]:
    """(StartTimeOffset, EndTimeOffset) of the schedule period that ended ``label_delay_hours`` ago."""
    return f"-PT{label_delay_hours + period_hours}H", f"-PT{label_delay_hours}H"


def fixed_threshold_problem(model: ModelConfig) -> Optional[str]:
    """Why ``model``'s decision threshold cannot be written into a job definition, or None when its policy fixes it.

    Model quality and bias turn the score into a decision with one ``ProbabilityThresholdAttribute`` of their job
    definitions (create-only, made once at deploy). Only policy ``fixed`` states that number in the config; the
    others choose it on validation data each time a version trains (``pipeline_code/core/decision.py``) and store it
    in that version's artefact, so a definition could only hold a guess the next retrain may contradict.
    """
    policy = model.decision_policy
    if policy.policy == "fixed":
        return None
    return (f"decision.policy {policy.policy!r} chooses the decision threshold each time a version trains (stored in "
            "its artefact), but native Model Monitor's model-quality and bias jobs compare the score with one "
            "threshold written into their job definitions at deploy, so they would judge decisions the endpoint "
            "does not make")


def native_monitor_problems(env: EnvironmentConfig, model: ModelConfig, period_seconds: int, where: str) -> list[str]:
    """The reasons ``model``'s native monitor in ``env`` (schedule period ``period_seconds``) would judge the wrong
    thing: a threshold only training knows, or a window older than the captured requests ``env`` keeps.

    ``where`` names the field that opts in, as the loader's messages do.
    """
    problems = []
    threshold = fixed_threshold_problem(model)
    if threshold:
        problems.append(f"{where}: {threshold}; use models.{model.name}.decision policy 'fixed' (with its threshold), "
                        "or turn native_model_monitor off for this model (the drift monitor judges each version at "
                        "its own threshold)")
    kept = env.data_lake.inference_expiration_days
    period_hours = period_seconds // 3600
    # Capture objects live at least ``kept`` days (S3 expires them from the midnight UTC after that): the oldest
    # request a run reads was captured label_delay_days + one period ago.
    needed = math.ceil((model.label_delay_days * 24 + period_hours) / 24)
    if kept is not None and kept < needed:
        problems.append(
            f"{where}: model {model.name!r} has label_delay_days {model.label_delay_days}, so its native model-quality "
            f"and bias jobs read the requests captured {needed} days back (the schedule period that ended "
            f"{model.label_delay_days} days ago), but data_lake.inference_expiration_days {kept} expires captured "
            f"requests after {kept} days, so each run would find that window's requests (partly) deleted; keep them at least {needed} days "
            f"(environment field 'data_lake.inference_expiration_days', or null: never), lower "
            f"models.{model.name}.label_delay_days, or turn native_model_monitor off for this model")
    return problems
