"""Slow drift: a CUSUM of each feature's drift score over consecutive monitor runs.

One window decides drift when a PSI passes its calibrated threshold (:mod:`calibration`). A shift that stays a
little under that threshold day after day never does, yet it is real and it is not going away. Per feature
(and for the predictions) this keeps Page's CUSUM of the window's drift score ``s`` (PSI / threshold):

    S_t = max(0, S_{t-1} + min(s_t, CAP) - ALLOWANCE)        drift when S_t >= DECISION

Scores under :data:`ALLOWANCE` (half the threshold) drain the sum, so the noise of quiet windows does not
accumulate; a persistent shift at 75 % of the threshold alarms after 8 windows, at 90 % after 5. A window
counts at most :data:`CAP` (the threshold): at or above it the window's own drift check has already called it,
and one strongly drifted window (a bad batch, an outage's retries) must not leave a sum that keeps calling
"slow drift" on the quiet windows after it. So a shift at or above the threshold also reaches the decision
level in 4 windows, and what a single spike adds (0.5) quiet windows drain in a run or two. The state is the
previous report: its ``sections.cumulative_drift`` (the monitor's report history, ``--history-dir``), so
nothing but the reports is kept between runs. It restarts at 0 when the baseline changes (a new version serves: drift is measured
against the new training data) and when no earlier report exists (the first run).

A window of several days judged every day (``monitoring.drift_window_days``, N > 1) overlaps the N - 1 windows
before it: consecutive scores share most of their traffic, so N windows in a row are about one independent look,
and one bad day stays in N windows. Each window then moves the sum by ``1/N`` of its step (``weight``): a day of
capture still counts once overall, a persistent shift reaches the decision level after N times as many windows
(the same traffic the one-day rule needs), and one bad day's N windows add what one window used to.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Dict, List, Mapping, Optional

ALLOWANCE = 0.5
CAP = 1.0
DECISION = 2.0
PREDICTION = "__prediction__"


def fingerprint(statistics: Mapping[str, Any]) -> str:
    """A short digest of a baseline's statistics: the cumulative state belongs to the baseline it measured against."""
    canonical = json.dumps(statistics, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def update(previous: Optional[Mapping[str, Any]], scores: Mapping[str, Optional[float]], baseline: str, *,
           window_days: int = 1) -> Dict[str, Any]:
    """The ``cumulative_drift`` section of this run from the previous run's section (or None) and this window's
    drift scores per feature (``PREDICTION`` for the predictions; None or NaN = not scored this window: unchanged).
    ``window_days`` (default 1: windows that do not overlap): the days each daily window spans; each moves the sums
    by ``1 / window_days`` of its step, as the windows overlap."""
    weight = 1.0 / max(1, int(window_days))
    before: Mapping[str, Any] = {}
    reset = None
    if previous is None:
        reset = "no earlier report: the cumulative detector starts"
    elif previous.get("baseline") != baseline:
        reset = "the baseline changed (a new version serves): the cumulative detector restarts"
    elif (previous.get("allowance"), previous.get("cap"), previous.get("decision")) != (ALLOWANCE, CAP, DECISION):
        # Sums kept under another rule (before windows were capped, say) would carry that rule's alarms forward.
        reset = "the cumulative detector's rule changed since the earlier report: it restarts"
    elif int(previous.get("window_days") or 1) != max(1, int(window_days)):
        # Sums of windows of another length weigh their steps otherwise (and judged other traffic).
        reset = "the drift window changed since the earlier report: the cumulative detector restarts"
    else:
        before = previous.get("features") or {}
    features: Dict[str, Any] = {}
    for name, score in scores.items():
        prior = before.get(name) or {}
        statistic = float(prior.get("statistic") or 0.0)
        windows = int(prior.get("windows") or 0)
        if score is not None and math.isfinite(float(score)):  # NaN: not scored, never a reset of the sum
            statistic = max(0.0, statistic + weight * (min(float(score), CAP) - ALLOWANCE))
            windows += 1
        features[name] = {"statistic": statistic, "windows": windows, "drifted": statistic >= DECISION}
    drifted = sorted(name for name, entry in features.items() if entry["drifted"])
    out: Dict[str, Any] = {
        "baseline": baseline,
        "allowance": ALLOWANCE,
        "cap": CAP,
        "decision": DECISION,
        "features": features,
        "drifted": drifted,
        # The alarm's metric: 1 when a sum reaches DECISION.
        "score": max((e["statistic"] for e in features.values()), default=0.0) / DECISION,
    }
    if window_days > 1:  # absent: one-day windows (the reports of before the setting read the same)
        out["window_days"] = int(window_days)
    if reset:
        out["reset"] = reset
    return out


def previous_section(history: List[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The newest earlier report's cumulative section (reports oldest first; unhealthy runs carry their
    predecessor's state forward, so the newest report that has the section is the state)."""
    for report in reversed(history):
        section = (report.get("sections") or {}).get("cumulative_drift")
        if isinstance(section, Mapping) and isinstance(section.get("features"), Mapping):
            return section
    return None
