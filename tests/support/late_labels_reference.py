"""The late-label join as it was before it streamed the look-back's labels: every label in memory with its id.

The oracle the streaming :func:`pipeline_code.monitoring.late_labels.join_earlier` is held to
(``tests/monitoring/test_late_labels.py``: the same judged rows, summary and checks) and the "before" of
``bench/late_labels_memory.py``. Kept as the monitor had it before the change (its id hash and latest-label rule, unchanged, are imported); not used
by the monitor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from pipeline_code.monitoring import quality
from pipeline_code.monitoring.capture import INFERENCE_ID, INFERENCE_TIME, SCORE, request_times
from pipeline_code.monitoring.drift import PASS, WARN, check
# The id hash and the latest-label rule are the monitor's own, unchanged (bound at import: a test that makes the
# monitor's hashes collide leaves the oracle's alone).
from pipeline_code.monitoring.late_labels import (
    DUE, MAX_EXAMPLES, PAST, PENDING, SECTION, UNDATED, UNRECORDED, EarlierRequests, RecordsVersion, _hashed, all_labels,
    day_state, records_files, records_version,
)
from pipeline_code.monitoring.window_stats import concat


def read_older_labels(labels_dir: Optional[str], problem_type: str, classes: Sequence[str]):
    """The labels of the look-back before the label window (``--late-labels-dir``), as :func:`quality.read_labels`
    reads them, kept to ``inference_id``, ``label`` and ``label_time``; ``(labels, problem)``: labels that cannot be
    read are a reason (the caller then judges no due day: the last week's labels alone are a skewed subset), not a
    failed section - it would fail every run until the file left the look-back."""
    if not labels_dir:
        return None, None
    try:
        labels = quality.read_labels(labels_dir, problem_type, classes)
    except Exception as exc:  # noqa: BLE001 - reported by the caller, today's window is still judged
        return None, f"the look-back's labels under {labels_dir!r} could not be read ({type(exc).__name__}: {exc})"
    return labels[[c for c in (INFERENCE_ID, quality.LABEL, quality.LABEL_TIME) if c in labels.columns]], None


def join_earlier(records_dir: Optional[str], labels: Optional[pd.DataFrame], *, matched_today: Sequence[str],
                 version: RecordsVersion, label_delay_days: int, label_window_hours: float,
                 older_labels: Optional[pd.DataFrame] = None, today_start: Optional[dt.datetime] = None,
                 now: Optional[dt.datetime] = None, labels_source: Optional[str] = None,
                 records_left_out: int = 0) -> EarlierRequests:
    """Join the labels that matched no request of today's window (``matched_today``: the ids that did) to the records
    of ``version`` under ``records_dir``, and judge the request days whose labels are due (:func:`day_state`).

    ``labels``: the labels of the label window; ``older_labels``: those of the rest of the look-back (default none);
    the latest per id wins (:func:`all_labels`). ``today_start``: the first request time of today's window - an
    earlier run's records from then on (a run started by hand over the same traffic) are today's window's, not
    counted twice. A request is taken from the newest file that holds it; each file is read for the columns the
    quality section needs, only its due days' labelled rows are kept and its due days' requests counted, so memory
    follows the labels and the due days, not the look-back.

    Reported (``summary``): the version judged; the files read and the version each names; per due day its requests
    and labels (``due_days``; ``request_days``: the labelled ones), labels of days not due yet (``pending_days``) or
    due before the label window (``past_due_labels``); labels of another version's requests (``other_versions``:
    labels, records and files per version - a file that names no version is another's, ``(version not recorded)``);
    the labels of the label window that matched no request of the look-back (count and a few ids: their requests are
    older than it, were never captured, or carry other ids; ``records_left_out`` files of the look-back not
    downloaded are named as a cause) and unreadable files (a warning each, never an error). ``labels_overdue`` (a
    warning, kept by :meth:`annotate` only when no label at all was joined): due days' requests with no label.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    checks: List[Dict[str, Any]] = []
    recent = labels if labels is not None else pd.DataFrame({INFERENCE_ID: pd.Series([], dtype=object)})
    matched = set(map(str, matched_today))
    pending_labels = all_labels(recent, older_labels)
    pending_labels = pending_labels[~pending_labels[INFERENCE_ID].isin(matched)]
    wanted = pd.Index(pending_labels[INFERENCE_ID])
    recent_wanted = set(recent[INFERENCE_ID].astype(str)) - matched
    seen: set = set()
    parts: List[pd.DataFrame] = []
    due_rows: Dict[str, int] = {}
    counted = np.empty(0, dtype=np.uint64)
    labels_by_state: Dict[str, Dict[str, int]] = {PENDING: {}, PAST: {}, UNDATED: {}}
    other: Dict[str, Dict[str, int]] = {}
    files: List[Dict[str, Any]] = []
    unreadable: List[Dict[str, str]] = []
    base = os.path.abspath(records_dir) if records_dir else ""
    states: Dict[str, str] = {}

    def state(day: str) -> str:
        if day not in states:
            states[day] = day_state(day, now=now, label_delay_days=label_delay_days, label_window_hours=label_window_hours)
        return states[day]

    for path in records_files(records_dir):
        name = os.path.relpath(path, base)
        written = dt.datetime.fromtimestamp(os.path.getmtime(path), dt.timezone.utc)
        try:
            made_by = records_version(path)
            judged = made_by is not None and version.same_as(made_by)
            # Another version's file is read for its ids and times only: its columns (classes) may differ.
            columns = [INFERENCE_ID, INFERENCE_TIME, SCORE, *version.probability_columns] if judged else [INFERENCE_ID, INFERENCE_TIME]
            frame = pd.read_parquet(path, columns=columns)
            frame[INFERENCE_ID] = frame[INFERENCE_ID].astype(str)
        except Exception as exc:  # noqa: BLE001 - one unreadable file costs its own requests, reported
            unreadable.append({"file": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        if today_start is not None:
            frame = frame[~(request_times(frame[INFERENCE_TIME]) >= today_start).to_numpy(dtype=bool)]
        key = made_by.key if made_by is not None else UNRECORDED
        hit = frame[frame[INFERENCE_ID].isin(wanted) & ~frame[INFERENCE_ID].isin(seen)].drop_duplicates(INFERENCE_ID)
        seen.update(hit[INFERENCE_ID])
        files.append({"file": name, "written": written.isoformat(), "version": key, "rows": int(len(frame)),
                      "labelled": int(len(hit))})
        if not judged:
            counts = other.setdefault(key, {"labels": 0, "records": 0, "files": 0})
            counts["labels"] += int(len(hit))
            counts["records"] += int(len(frame))
            counts["files"] += 1
            continue
        days = quality.inference_days(frame)
        day_is_due = days.map(state).to_numpy() == DUE
        due = frame[day_is_due]
        if len(due):  # every request of a due day counts once (the newest file that holds it)
            hashes = _hashed(due[INFERENCE_ID])
            fresh = ~np.isin(hashes, counted)
            counted = np.concatenate([counted, np.unique(hashes[fresh])])
            for day, count in quality.day_counts(due[fresh]).items():
                due_rows[day] = due_rows.get(day, 0) + count
        hit_days = quality.inference_days(hit)
        for day, count in hit_days.value_counts().items():
            if state(str(day)) != DUE:
                bucket = labels_by_state[state(str(day))]
                bucket[str(day)] = bucket.get(str(day), 0) + int(count)
        hit = hit[(hit_days.map(state) == DUE).to_numpy(dtype=bool)]
        if len(hit):
            parts.append(quality.join_labels(hit, pending_labels[pending_labels[INFERENCE_ID].isin(hit[INFERENCE_ID])]))
    labelled = concat(parts) if parts else None
    labelled_days = quality.day_counts(labelled) if labelled is not None else {}
    unmatched = sorted(recent_wanted - seen)
    pseudonyms = [hashlib.sha256(str(i).encode("utf-8")).hexdigest()[:12] for i in unmatched[:MAX_EXAMPLES]]
    summary: Dict[str, Any] = {
        "label_delay_days": label_delay_days,
        "version": version.key,
        "records_files": len(files),
        "records_rows": sum(f["rows"] for f in files),
        "labelled_rows": int(sum(labelled_days.values())),
        "request_days": dict(sorted(labelled_days.items())),
        "due_days": {day: {"rows": due_rows[day], "labelled": labelled_days.get(day, 0)} for day in sorted(due_rows)},
        "pending_days": dict(sorted(labels_by_state[PENDING].items())),
        "past_due_labels": sum(labels_by_state[PAST].values()) + sum(labels_by_state[UNDATED].values()),
        "other_versions": other,
        "files": files,
        # The report names ids by pseudonym (sha256 of the id, 12 hex digits), computed here on its own.
        "unmatched_labels": {"rows": len(unmatched), "example_pseudonyms": pseudonyms},
    }
    fix = f"raise models.<model>.label_delay_days (now {label_delay_days}) if labels come later than that"
    if unmatched:
        left_out = (f"; {records_left_out} records files of the look-back were not downloaded (--max-window-bytes), "
                    "their requests' labels among these" if records_left_out else "")
        checks.append(check(
            "unmatched_labels", SECTION, float(len(unmatched)), 0.0, WARN, op=">",
            detail=f"{len(unmatched)} labels of the last {label_window_hours:g} h match no request of today's window nor of "
                   f"the {len(files)} earlier runs' records (requests of the last {label_delay_days} days + the label "
                   f"window): their requests are older than that, were never captured, or carry other ids, e.g. the "
                   f"ids whose sha256 starts {', '.join(pseudonyms)}{left_out}; {fix}"))
    if unreadable:
        summary["unreadable"] = unreadable
        checks.append(check(
            "prediction_records_unreadable", SECTION, float(len(unreadable)), 0.0, WARN, op=">",
            detail=f"{len(unreadable)} earlier runs' records could not be read, so labels of their requests are not judged: "
                   + "; ".join(f"{u['file']}: {u['error']}" for u in unreadable[:3])))
    if due_rows:
        days = sorted(due_rows)
        checks.append(check(
            "labels_overdue", SECTION, 0.0, None, WARN,
            detail=f"{sum(due_rows.values())} requests of {days[0]} to {days[-1]} should have their labels by now (the "
                   f"day ended more than label_delay_days {label_delay_days} ago), but no label "
                   f"{'under ' + labels_source + ' ' if labels_source else ''}matches any request: check that the label "
                   f"feed writes inference_id,label,label_time with the ids the traffic carries, or {fix}"))
    if files:
        others = "; ".join(f"{v['labels']} of {k}" for k, v in other.items() if v["labels"])
        checks.append(check(
            "late_labels", SECTION, float(summary["labelled_rows"]), None, PASS,
            detail=f"{summary['labelled_rows']} labels of {version.key} joined to requests of due days "
                   f"({', '.join(summary['request_days']) or 'none'}); "
                   f"{sum(summary['pending_days'].values())} of days not due yet (not judged)"
                   + (f"; labels of other versions' requests, not judged: {others}" if others else "")))
    return EarlierRequests(labelled, due_rows, summary, checks)
