"""Labels that arrive after their request left the traffic window: judged against the prediction that request got.

A run judges drift on the last 24 hours of traffic only, but a model's ground truth can arrive weeks after the
request (churn: "cancelled within 30 days"; credit risk: "defaulted within 12 months"). So each run keeps a compact
record of the requests it saw - inference id, request time, the prediction the serving version gave (captured, or
rescored as the window pass judges it) and, multiclass, the class probabilities; no features - as
:data:`RECORDS_FILE` in its output directory, which the scheduled job uploads with its report
(``monitor/<model>/<run>/``). A later run reads the records its earlier runs wrote over the look-back
(:func:`pipeline_code.core.contract.records_lookback_hours`: the model's ``label_delay_days`` + the label window +
the day of traffic a run covers; ``remote.download_records``) and joins to them the labels that matched nothing in
today's window (:func:`join_earlier`). Model quality is then judged over the labelled requests of today's window
and of the earlier days whose labels came; the report names those days, the labels that matched no request of the
look-back, and a look-back whose labels were due but none came.

Nothing here stops a run: an unreadable records file, a failed write or a failed download is a warning check in
the model-quality section, and the window is judged as before.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from pipeline_code.monitoring import quality
from pipeline_code.monitoring.capture import INFERENCE_ID, INFERENCE_TIME, SCORE, request_times
from pipeline_code.monitoring.drift import PASS, WARN, check
from pipeline_code.monitoring.window_stats import concat

RECORDS_FILE = "predictions.parquet"
SECTION = "model_quality"
MAX_EXAMPLES = 5


def chain(*consumers: Callable[[pd.DataFrame], None]) -> Callable[[pd.DataFrame], None]:
    """One ``consume`` for :func:`capture.read_capture` that hands each chunk to ``consumers`` in order (the window pass
    first: it fills the predictions the records keep)."""
    def consume(chunk: pd.DataFrame) -> None:
        for consumer in consumers:
            consumer(chunk)
    return consume


class RecordWriter:
    """Writes the window's scored requests to ``path`` (parquet), one row group per chunk, so memory does not grow
    with the window. Never raises: a failure stops the writing and :meth:`close` reports it. Records without an
    inference id are not kept (no label can name them)."""

    def __init__(self, path: str, probability_columns: Sequence[str] = ()) -> None:
        self.path = path
        self.columns = [INFERENCE_ID, INFERENCE_TIME, SCORE, *probability_columns]
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
            if self._writer is None:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                self._writer = pq.ParquetWriter(self.path, table.schema)
            self._writer.write_table(table)
            self.rows += len(frame)
        except Exception as exc:  # noqa: BLE001 - reported by close(); the window is judged all the same
            self.error = f"{type(exc).__name__}: {exc}"

    def close(self) -> Dict[str, Any]:
        """What was written: ``{"file", "rows"}`` plus ``error`` when the writing stopped (the file is then removed:
        a part of a window would read as the whole of it)."""
        try:
            if self._writer is not None:
                self._writer.close()
        except Exception as exc:  # noqa: BLE001
            self.error = self.error or f"{type(exc).__name__}: {exc}"
        if self.error is not None:
            if os.path.exists(self.path):
                os.remove(self.path)
            return {"file": self.path, "rows": 0, "error": self.error}
        return {"file": self.path if self.rows else None, "rows": self.rows}


def writer_check(written: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The warning for records that could not be written (None when they were)."""
    if "error" not in written:
        return None
    return check("prediction_records_not_written", SECTION, None, None, WARN,
                 detail=f"this window's requests were not recorded ({written['error']}): labels that arrive for them "
                        "after today cannot be judged")


class EarlierRequests:
    """The labelled requests of the earlier runs' records (:func:`join_earlier`) and what the report says of them."""

    def __init__(self, labelled: Optional[pd.DataFrame], rows_per_day: Dict[str, int], summary: Dict[str, Any],
                 checks: List[Dict[str, Any]]) -> None:
        self.labelled = labelled
        self.rows_per_day = rows_per_day
        self.summary = summary
        self.checks = checks

    def combined(self, today: Optional[pd.DataFrame], today_rows_per_day: Mapping[str, int]):
        """Today's labelled records and rows per day with the earlier requests' added (the earlier days count only
        the requests of the days a label came for: a day whose labels are not due would read as missing labels)."""
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


def join_earlier(records_dir: Optional[str], labels: Optional[pd.DataFrame], *, matched_today: Sequence[str],
                 label_delay_days: int, label_window_hours: float, probability_columns: Sequence[str] = (),
                 now: Optional[dt.datetime] = None, labels_source: Optional[str] = None) -> EarlierRequests:
    """Join the labels that matched no request of today's window (``matched_today``: the ids that did) to the earlier
    runs' records under ``records_dir``.

    A request is taken from the newest file that holds it (a window read twice); each file is read for the columns
    the quality section needs and only its labelled rows are kept, so memory follows the labels, not the look-back.
    Reported (``summary``): the files read, the labelled rows per request day, the labels that matched no request of
    the look-back (count and a few ids: their requests are older than it, were never captured, or carry other ids)
    and unreadable files (a warning each, never an error). ``labels_overdue`` (a warning, kept by :meth:`annotate`
    only when no label at all was joined): the records of runs more than ``label_delay_days`` ago but within the
    label window of that, whose labels were due by now.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    checks: List[Dict[str, Any]] = []
    columns = [INFERENCE_ID, INFERENCE_TIME, SCORE, *probability_columns]
    pending = labels if labels is not None else pd.DataFrame({INFERENCE_ID: pd.Series([], dtype=object)})
    pending = pending[~pending[INFERENCE_ID].isin(set(map(str, matched_today)))]
    wanted = pd.Index(pending[INFERENCE_ID])
    seen: set = set()
    parts: List[pd.DataFrame] = []
    rows_per_day: Dict[str, int] = {}
    day_rows: List[Dict[str, int]] = []
    files: List[Dict[str, Any]] = []
    unreadable: List[Dict[str, str]] = []
    due_start = now - dt.timedelta(days=label_delay_days, hours=label_window_hours)
    due_end = now - dt.timedelta(days=label_delay_days)
    due_rows = 0
    base = os.path.abspath(records_dir) if records_dir else ""
    for path in records_files(records_dir):
        name = os.path.relpath(path, base)
        written = dt.datetime.fromtimestamp(os.path.getmtime(path), dt.timezone.utc)
        try:
            frame = pd.read_parquet(path, columns=columns)
            frame[INFERENCE_ID] = frame[INFERENCE_ID].astype(str)
        except Exception as exc:  # noqa: BLE001 - one unreadable file costs its own requests, reported
            unreadable.append({"file": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        if due_start <= written < due_end:
            due_rows += len(frame)
        hit = frame[frame[INFERENCE_ID].isin(wanted) & ~frame[INFERENCE_ID].isin(seen)].drop_duplicates(INFERENCE_ID)
        files.append({"file": name, "written": written.isoformat(), "rows": int(len(frame)), "labelled": int(len(hit))})
        if not len(hit):
            day_rows.append({})
            continue
        seen.update(hit[INFERENCE_ID])
        parts.append(quality.join_labels(hit, pending[pending[INFERENCE_ID].isin(hit[INFERENCE_ID])]))
        day_rows.append(quality.day_counts(frame))
    labelled = concat(parts) if parts else None
    labelled_days = quality.day_counts(labelled) if labelled is not None else {}
    for counts in day_rows:  # a day's requests, of the days a label came for
        for day, count in counts.items():
            if day in labelled_days:
                rows_per_day[day] = rows_per_day.get(day, 0) + count
    unmatched = sorted(set(wanted) - seen)
    summary: Dict[str, Any] = {
        "label_delay_days": label_delay_days,
        "records_files": len(files),
        "records_rows": sum(f["rows"] for f in files),
        "labelled_rows": len(seen),
        "request_days": dict(sorted(labelled_days.items())),
        "files": files,
        "unmatched_labels": {"rows": len(unmatched), "examples": unmatched[:MAX_EXAMPLES]},
    }
    fix = f"raise models.<model>.label_delay_days (now {label_delay_days}) if labels come later than that"
    if unmatched:
        checks.append(check(
            "unmatched_labels", SECTION, float(len(unmatched)), 0.0, WARN, op=">",
            detail=f"{len(unmatched)} labels of the last {label_window_hours:g} h match no request of today's window nor of "
                   f"the {len(files)} earlier runs' records (requests of the last {label_delay_days} days + the label "
                   f"window): their requests are older than that, were never captured, or carry other ids, e.g. "
                   f"{', '.join(repr(i) for i in unmatched[:MAX_EXAMPLES])}; {fix}"))
    if unreadable:
        summary["unreadable"] = unreadable
        checks.append(check(
            "prediction_records_unreadable", SECTION, float(len(unreadable)), 0.0, WARN, op=">",
            detail=f"{len(unreadable)} earlier runs' records could not be read, so labels of their requests are not judged: "
                   + "; ".join(f"{u['file']}: {u['error']}" for u in unreadable[:3])))
    if due_rows:
        checks.append(check(
            "labels_overdue", SECTION, 0.0, None, WARN,
            detail=f"{due_rows} requests recorded {label_delay_days} to {label_delay_days + label_window_hours / 24:g} days "
                   f"ago should have their labels by now (label_delay_days {label_delay_days}), but no label "
                   f"{'under ' + labels_source + ' ' if labels_source else ''}matches any request: check that the label "
                   f"feed writes inference_id,label,label_time with the ids the traffic carries, or {fix}"))
    if files:
        checks.append(check("late_labels", SECTION, float(len(seen)), None, PASS,
                            detail=f"{len(seen)} labels joined to requests of earlier days "
                                   f"({', '.join(summary['request_days']) or 'none'})"))
    return EarlierRequests(labelled, rows_per_day, summary, checks)


def matched_ids(today: Optional[pd.DataFrame]) -> List[str]:
    """The ids of today's labelled records (None or empty: none)."""
    if today is None or not len(today):
        return []
    return today[INFERENCE_ID].astype(str).tolist()
