"""Labels that arrive after their request left the traffic window: judged against the prediction that request got.

A run judges drift on the last 24 hours of traffic only, but a model's ground truth can arrive weeks after the
request (churn: "cancelled within 30 days"; credit risk: "defaulted within 12 months"). So each run keeps a compact
record of the requests it saw - inference id, request time, the prediction the version it judged gave (captured, or
rescored as the window pass judges it) and, multiclass, the class probabilities; no features - as
:data:`RECORDS_FILE` in its output directory, which the scheduled job uploads with its report
(``monitor/<model>/<run>/``). The file says which version made those predictions (:class:`RecordsVersion` in its
parquet key-value metadata: the model package ARN and version, the artefact digest, the class list).

A later run reads the records its earlier runs wrote over the look-back
(:func:`pipeline_code.core.contract.records_lookback_hours`: the model's ``label_delay_days`` + the label window +
the day of traffic a run covers; ``remote.download_records``) and every label that arrived over that look-back, and
joins the labels that matched nothing in today's window to them (:func:`join_earlier`):

* only the records of the version being judged count; labels of another version's requests (before a rollback or an
  approval, or with another class list) are counted apart per version (``other_versions``), never judged as this
  version's quality;
* a request day is judged once its labels are due - the day ended ``label_delay_days`` ago - with every label that came
  for it, in each run of the label window after that (``--label-window-hours``, a week: each due day is judged in
  seven daily runs, so a failed run or two still judge it, and the published quality pools about a week of due days
  rather than one). A day whose labels are not all due is not judged: its early labels (a churn's cancellations come
  before its renewals) would be a biased slice of it; they are counted (``pending_days``).

Today's window is judged as before (its labelled requests, a day scored once ``min_label_coverage`` of it is
labelled). The report names the due days judged, the labels that matched no request of the look-back, and due days
whose labels did not come.

Nothing here stops a run: an unreadable records file, a failed write or a failed download is a warning check in
the model-quality section, and the window is judged as before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import json
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from pipeline_code.monitoring import quality
from pipeline_code.monitoring.capture import INFERENCE_ID, INFERENCE_TIME, SCORE, probability_column, request_times
from pipeline_code.monitoring.drift import PASS, WARN, check
from pipeline_code.monitoring.window_stats import concat

RECORDS_FILE = "predictions.parquet"
# The parquet key-value metadata entry naming the version that made a records file's predictions (RecordsVersion).
VERSION_KEY = b"mlops_loop.records_version"
UNRECORDED = "(version not recorded)"
SECTION = "model_quality"
MAX_EXAMPLES = 5
DUE, PENDING, PAST, UNDATED = "due", "pending", "past", "undated"


@dataclasses.dataclass(frozen=True)
class RecordsVersion:
    """The version whose predictions a records file holds: the model package (ARN and version; None in a local run),
    the digest of its artefact (``model.json`` + ``feature_metadata.json``; None without a model) and, multiclass, its
    class list (the order the probability columns and class codes follow)."""

    model_package_arn: Optional[str] = None
    model_package_version: Optional[int] = None
    model_sha256: Optional[str] = None
    classes: Tuple[str, ...] = ()

    def as_dict(self) -> Dict[str, Any]:
        return {**dataclasses.asdict(self), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RecordsVersion":
        version = data.get("model_package_version")
        return cls(data.get("model_package_arn") or None, int(version) if version is not None else None,
                   data.get("model_sha256") or None, tuple(str(c) for c in data.get("classes") or ()))

    @property
    def key(self) -> str:
        """How the report names it: the ARN, else the artefact digest, else (a local run without a model) its classes."""
        if self.model_package_arn:
            return self.model_package_arn
        if self.model_sha256:
            return f"sha256:{self.model_sha256}"
        return "(no model)" + (f" classes {list(self.classes)}" if self.classes else "")

    def same_as(self, other: "RecordsVersion") -> bool:
        """Whether ``other`` made the same predictions: the same class list (in order) and the same package (both
        named), else the same artefact (both digested); two runs that know neither are one version (local runs
        without a model). One that names what the other does not is another version: it cannot be told apart."""
        if self.classes != other.classes:
            return False
        if self.model_package_arn and other.model_package_arn:
            return self.model_package_arn == other.model_package_arn
        if self.model_sha256 and other.model_sha256:
            return self.model_sha256 == other.model_sha256
        return not (self.model_package_arn or self.model_sha256 or other.model_package_arn or other.model_sha256)

    @property
    def probability_columns(self) -> List[str]:
        return [probability_column(c) for c in self.classes]


def chain(*consumers: Callable[[pd.DataFrame], None]) -> Callable[[pd.DataFrame], None]:
    """One ``consume`` for :func:`capture.read_capture` that hands each chunk to ``consumers`` in order (the window pass
    first: it fills the predictions the records keep)."""
    def consume(chunk: pd.DataFrame) -> None:
        for consumer in consumers:
            consumer(chunk)
    return consume


class RecordWriter:
    """Writes the window's scored requests to ``path`` (parquet), one row group per chunk, so memory does not grow
    with the window, with ``version`` (the version judged, whose predictions they are) in the file's key-value
    metadata. Never raises: a failure stops the writing and :meth:`close` reports it. Records without an inference id
    are not kept (no label can name them)."""

    def __init__(self, path: str, version: RecordsVersion) -> None:
        self.path = path
        self.version = version
        self.columns = [INFERENCE_ID, INFERENCE_TIME, SCORE, *version.probability_columns]
        self.rows = 0
        self.error: Optional[str] = None
        self._writer: Any = None

    def __call__(self, chunk: pd.DataFrame) -> None:
        if self.error is not None:
            return
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq

            ids = chunk[INFERENCE_ID]
            keep = ids.notna().to_numpy(dtype=bool) & (ids.astype(str).str.strip() != "").to_numpy(dtype=bool)
            frame = pd.DataFrame({
                INFERENCE_ID: ids[keep].astype(str).to_numpy(),
                INFERENCE_TIME: request_times(chunk.loc[keep, INFERENCE_TIME]).to_numpy(),
                **{c: pd.to_numeric(chunk.loc[keep, c], errors="coerce").to_numpy(dtype=np.float64) for c in self.columns[2:]},
            })
            frame[INFERENCE_TIME] = pd.to_datetime(frame[INFERENCE_TIME], utc=True)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                                   VERSION_KEY: json.dumps(self.version.as_dict()).encode()})
            if self._writer is None:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                self._writer = pq.ParquetWriter(self.path, table.schema)
            self._writer.write_table(table)
            self.rows += len(frame)
        except Exception as exc:  # noqa: BLE001 - reported by close(); the window is judged all the same
            self.error = f"{type(exc).__name__}: {exc}"

    def close(self) -> Dict[str, Any]:
        """What was written: ``{"file", "rows", "version"}`` plus ``error`` when the writing stopped (the file is then
        removed: a part of a window would read as the whole of it)."""
        try:
            if self._writer is not None:
                self._writer.close()
        except Exception as exc:  # noqa: BLE001
            self.error = self.error or f"{type(exc).__name__}: {exc}"
        if self.error is not None:
            if os.path.exists(self.path):
                os.remove(self.path)
            return {"file": self.path, "rows": 0, "error": self.error}
        return {"file": self.path if self.rows else None, "rows": self.rows, "version": self.version.key}


def writer_check(written: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The warning for records that could not be written (None when they were)."""
    if "error" not in written:
        return None
    return check("prediction_records_not_written", SECTION, None, None, WARN,
                 detail=f"this window's requests were not recorded ({written['error']}): labels that arrive for them "
                        "after today cannot be judged")


def records_version(path: str) -> Optional[RecordsVersion]:
    """The version a records file names (None: it names none - written before records said so - or names it
    unreadably)."""
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(VERSION_KEY)
    if raw is None:
        return None
    try:
        return RecordsVersion.from_dict(json.loads(raw))
    except (ValueError, TypeError, AttributeError):
        return None


def day_state(day: str, *, now: dt.datetime, label_delay_days: int, label_window_hours: float) -> str:
    """Where a request day (``YYYY-MM-DD``, UTC) stands: :data:`PENDING` until it ended ``label_delay_days`` ago (not
    all its labels can have come), then :data:`DUE` for ``label_window_hours`` (judged), then :data:`PAST`;
    :data:`UNDATED` for requests without a time."""
    try:
        start = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return UNDATED
    due_at = start + dt.timedelta(days=1 + label_delay_days)
    if due_at > now:
        return PENDING
    return DUE if due_at > now - dt.timedelta(hours=label_window_hours) else PAST


def all_labels(recent: Optional[pd.DataFrame], older: Optional[pd.DataFrame]) -> pd.DataFrame:
    """The labels of the label window (``recent``) and of the rest of the look-back (``older``) as one frame of
    ``inference_id``, ``label``: the latest label per id wins, by ``label_time`` when both have the column (as
    :func:`quality.read_labels` orders one directory's), else the recent one."""
    parts = [p for p in (older, recent) if p is not None and len(p)]
    if not parts:
        return pd.DataFrame({INFERENCE_ID: pd.Series([], dtype=object), quality.LABEL: pd.Series([], dtype=float)})
    keep = [INFERENCE_ID, quality.LABEL, quality.LABEL_TIME]
    frame = pd.concat([p[[c for c in keep if c in p.columns]] for p in parts], ignore_index=True)
    if all(quality.LABEL_TIME in p.columns for p in parts):
        order = request_times(frame[quality.LABEL_TIME])
        frame = frame.loc[order.sort_values(kind="mergesort", na_position="first").index]
    return frame.drop_duplicates(INFERENCE_ID, keep="last")[[INFERENCE_ID, quality.LABEL]].reset_index(drop=True)


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


class EarlierRequests:
    """The labelled requests of the earlier runs' records (:func:`join_earlier`) and what the report says of them."""

    def __init__(self, labelled: Optional[pd.DataFrame], rows_per_day: Dict[str, int], summary: Dict[str, Any],
                 checks: List[Dict[str, Any]]) -> None:
        self.labelled = labelled
        self.rows_per_day = rows_per_day
        self.summary = summary
        self.checks = checks

    def combined(self, today: Optional[pd.DataFrame], today_rows_per_day: Mapping[str, int]):
        """Today's labelled records and rows per day with the due days' added (every request of a due day of the
        version judged counts, labelled or not: a due day's missing labels lower its coverage)."""
        rows = dict(today_rows_per_day)
        for day, count in self.rows_per_day.items():
            rows[day] = rows.get(day, 0) + count
        parts = [p for p in (today, self.labelled) if p is not None and len(p)]
        if not parts:
            return today, rows
        columns = list(dict.fromkeys(c for p in parts for c in p.columns))
        return concat([p.reindex(columns=columns) for p in parts]), rows

    def annotate(self, section: Dict[str, Any], *, labelled_today: int) -> Dict[str, Any]:
        """``section`` (model quality) with ``late_labels`` and these checks; the labels-overdue warning only when no
        label at all was joined (``labelled_today``: today's window's labelled records)."""
        section["late_labels"] = self.summary
        overdue = labelled_today == 0 and not self.summary["labelled_rows"]
        section.setdefault("checks", []).extend(c for c in self.checks if c["check"] != "labels_overdue" or overdue)
        return section


def records_files(records_dir: Optional[str]) -> List[str]:
    """Every :data:`RECORDS_FILE` under ``records_dir`` (any depth), the newest first (by modification time: the
    download sets it to when the run that saw the requests wrote them)."""
    if not records_dir or not os.path.isdir(records_dir):
        return []
    paths = glob.glob(os.path.join(records_dir, "**", RECORDS_FILE), recursive=True)
    return sorted(paths, key=lambda p: (-os.path.getmtime(p), p))


def _hashed(ids: pd.Series) -> np.ndarray:
    """64-bit hashes of ids: what a due day's counted requests are remembered by (8 bytes a request, not the id)."""
    return pd.util.hash_pandas_object(ids.astype(str), index=False).to_numpy(dtype=np.uint64)


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
        "unmatched_labels": {"rows": len(unmatched), "examples": unmatched[:MAX_EXAMPLES]},
    }
    fix = f"raise models.<model>.label_delay_days (now {label_delay_days}) if labels come later than that"
    if unmatched:
        left_out = (f"; {records_left_out} records files of the look-back were not downloaded (--max-window-bytes), "
                    "their requests' labels among these" if records_left_out else "")
        checks.append(check(
            "unmatched_labels", SECTION, float(len(unmatched)), 0.0, WARN, op=">",
            detail=f"{len(unmatched)} labels of the last {label_window_hours:g} h match no request of today's window nor of "
                   f"the {len(files)} earlier runs' records (requests of the last {label_delay_days} days + the label "
                   f"window): their requests are older than that, were never captured, or carry other ids, e.g. "
                   f"{', '.join(repr(i) for i in unmatched[:MAX_EXAMPLES])}{left_out}; {fix}"))
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


def matched_ids(today: Optional[pd.DataFrame]) -> List[str]:
    """The ids of today's labelled records (None or empty: none)."""
    if today is None or not len(today):
        return []
    return today[INFERENCE_ID].astype(str).tolist()
