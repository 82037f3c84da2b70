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
  for it, and once: by the first run after that whose report stands and whose quality section scored it (its window
  reached ``min_label_coverage``) and judged (:func:`judged_days` reads the days the earlier reports say they judged,
  ``late_labels.judged_days``), so a failed run's day is judged by the next run while it is still due
  (``--label-window-hours``, a week). A due day with too few labels, or some of whose records were not read, is carried
  to the next runs while it is due, with a warning (:meth:`EarlierRequests.annotate`). When the earlier reports cannot
  be read, every due day is judged and a warning says so (``late_labels_history_unknown``). A day whose labels are not all due is not judged: its early
  labels (a churn's cancellations come before its renewals) would be a biased slice of it; they are counted
  (``pending_days``).

Today's window is judged as before (its labelled requests, a day scored once ``min_label_coverage`` of it is
labelled). The report names the due days judged, those an earlier run judged, the labels that matched no request of the
look-back (counted, a few by the pseudonyms of their ids: :func:`pipeline_code.core.contract.record_pseudonym`; the
report is kept for ever, the labels expire), and due days whose labels did not come. The look-back's requests are remembered by 64-bit id hashes and
its older labels streamed (:func:`join_earlier`): memory grows with the look-back's requests at about 140 bytes each
(``bench/results/late_labels_memory.json``), not with its labels.

Nothing here stops a run: an unreadable records file, a failed write or a failed download is a warning check in
the model-quality section, and the window is judged as before.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import json
import os
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from pipeline_code.core.contract import (
    MONITOR_MAX_RUNTIME_SECONDS,
    MONITOR_WINDOW_HOURS,
    monitor_window_fix,
    record_pseudonym,
)
from pipeline_code.monitoring import quality
from pipeline_code.monitoring.capture import (ANSWERED, INFERENCE_ID, INFERENCE_TIME, SCORE, probability_column,
                                              request_times)
from pipeline_code.monitoring.drift import FAIL, PASS, WARN, check
from pipeline_code.monitoring.report import trusted_window
from pipeline_code.monitoring.window_stats import concat

RECORDS_FILE = "predictions.parquet"
# The parquet key-value metadata entry naming the version that made a records file's predictions (RecordsVersion).
VERSION_KEY = b"mlops_loop.records_version"
UNRECORDED = "(version not recorded)"
SECTION = "model_quality"
MAX_EXAMPLES = 5
DUE, PENDING, PAST, UNDATED = "due", "pending", "past", "undated"
# A due day an earlier run of the same version already judged (its report says so): not judged again.
JUDGED = "judged"
# A due day a records file that was not read may hold requests of (left out past the byte cap, failed to download,
# unreadable): not judged this run, on part of its requests - the next run judges it whole while it is due.
INCOMPLETE = "incomplete"
# Why a due day is carried to the next run (``carried_why``) instead of counted as judged.
TOO_FEW_LABELS, QUALITY_SKIPPED, RECORDS_NOT_READ = "too_few_labels", "quality_skipped", "records_not_read"
# How far before its write time a records file may hold requests, beyond the window of traffic its run covered: the
# job uploads its output when it ends (at most MONITOR_MAX_RUNTIME_SECONDS after it started, where its window ends),
# and a capture object is written some minutes after its requests (an hour allowed).
RECORDS_SPAN_SLACK = dt.timedelta(seconds=MONITOR_MAX_RUNTIME_SECONDS, hours=1)
# Rows of a label file read at a time (with its three columns: tens of MB at most).
LABEL_CHUNK_ROWS = 250_000
# The columns every records row carries besides its prediction, for a reader that sees columns only (Athena, Glue,
# QuickSight read no parquet key-value metadata): the version whose prediction ``score`` holds (the one judged) and the
# artefact the capture says answered the caller (null: the capture does not say). Typed, so every file has one schema.
MODEL_PACKAGE_ARN, MODEL_PACKAGE_VERSION, MODEL_SHA256 = "model_package_arn", "model_package_version", "model_sha256"
ANSWERED_BY_SHA256 = "answered_by_sha256"
VERSION_COLUMNS = (MODEL_PACKAGE_ARN, MODEL_PACKAGE_VERSION, MODEL_SHA256, ANSWERED_BY_SHA256)


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
    metadata and, for readers that see columns only, in :data:`VERSION_COLUMNS` of every row (with the artefact that
    answered the caller, from the chunk's ``answered_by``: another one's answer was rescored by ``version``). Never
    raises: a failure stops the writing and :meth:`close` reports it. Records without an inference id are not kept (no
    label can name them)."""

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
            # Typed, not inferred: a chunk none of whose requests has an id would otherwise type inference_id null, and
            # every later chunk (and so the window's whole file) would be refused for not matching it.
            schema = pa.schema([(INFERENCE_ID, pa.string()), (INFERENCE_TIME, pa.timestamp("ns", tz="UTC")),
                                *((c, pa.float64()) for c in self.columns[2:])])
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            rows = len(frame)
            answered = (chunk.loc[keep, ANSWERED].to_numpy(dtype=object) if ANSWERED in chunk.columns
                        else np.full(rows, None, dtype=object))
            for name, values, kind in (
                    (MODEL_PACKAGE_ARN, [self.version.model_package_arn] * rows, pa.string()),
                    (MODEL_PACKAGE_VERSION, [self.version.model_package_version] * rows, pa.int64()),
                    (MODEL_SHA256, [self.version.model_sha256] * rows, pa.string()),
                    (ANSWERED_BY_SHA256, [None if pd.isna(v) else str(v) for v in answered], pa.string())):
                table = table.append_column(pa.field(name, kind), pa.array(values, type=kind))
            table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                                   VERSION_KEY: json.dumps(self.version.as_dict()).encode()})
            if self._writer is None:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                # Times in microseconds (INT64 TIMESTAMP(MICROS)): nanoseconds, pyarrow's default for pandas times,
                # are not read by every engine an analyst points at the files (the Glue table predictions).
                self._writer = pq.ParquetWriter(self.path, table.schema, coerce_timestamps="us",
                                                allow_truncated_timestamps=True)
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


def due_until(day: str, *, label_delay_days: int, label_window_hours: float) -> dt.datetime:
    """When a due request day stops being due (:func:`day_state`: then :data:`PAST`, never judged)."""
    start = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    return start + dt.timedelta(days=1 + label_delay_days, hours=label_window_hours)


def records_span_days(written: dt.datetime, *, window_hours: float = MONITOR_WINDOW_HOURS) -> List[str]:
    """The request days (``YYYY-MM-DD``, UTC) a records file written at ``written`` may hold: its run judged the
    ``window_hours`` of traffic before it started, and started at most :data:`RECORDS_SPAN_SLACK` before the file was
    written (less the capture's own lag). A file whose requests carry older times (a backfill) is not foreseen."""
    written = written if written.tzinfo else written.replace(tzinfo=dt.timezone.utc)
    first = (written - dt.timedelta(hours=window_hours) - RECORDS_SPAN_SLACK).date()
    return [(first + dt.timedelta(days=k)).isoformat() for k in range((written.date() - first).days + 1)]


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
        frame = quality.latest_label_order(frame)
    return frame.drop_duplicates(INFERENCE_ID, keep="last")[[INFERENCE_ID, quality.LABEL]].reset_index(drop=True)


class UnreadableLabels(Exception):
    """The look-back's labels cannot all be read: the caller judges no due day (the labels left are a skewed subset)."""


class LookbackLabels:
    """The labels of the look-back before the label window (``--late-labels-dir``), read a file and
    :data:`LABEL_CHUNK_ROWS` rows at a time, only ``inference_id``, ``label`` and ``label_time``: what
    :func:`quality.read_labels` would read of them (the same usable labels, the same latest label per id, the same
    errors), without holding them all - :func:`join_earlier` keeps only those of the requests it judges.

    :meth:`chunks` yields the usable labels in file order (``label`` as the metrics read it, ids as text); at its end
    :attr:`has_time` says whether any file had ``label_time`` (then it decides which label is the latest) and
    :attr:`rows` how many usable labels there were. A file that cannot be read, columns no file has, or rows none of
    which is a label this model takes raise :class:`UnreadableLabels` (the message :func:`quality.read_labels`' error
    would give)."""

    def __init__(self, labels_dir: str, problem_type: str, classes: Sequence[str], *,
                 chunk_rows: Optional[int] = None, deviance_power: Optional[float] = None) -> None:
        self.labels_dir = labels_dir
        self.deviance_power = deviance_power  # a count or amount model's: quality.usable_labels
        self.problem_type = problem_type
        self.classes = list(classes)
        self.chunk_rows = chunk_rows or LABEL_CHUNK_ROWS
        self.has_time = False
        self.rows = 0

    def _unreadable(self, exc: Exception) -> UnreadableLabels:
        return UnreadableLabels(f"the look-back's labels under {self.labels_dir!r} could not be read "
                                f"({type(exc).__name__}: {exc})")

    def chunks(self) -> Iterator[pd.DataFrame]:
        columns = (INFERENCE_ID, quality.LABEL, quality.LABEL_TIME)
        seen_columns: set = set()
        raw_rows = 0
        examples: List[str] = []  # the three smallest unusable values, as read_labels names them
        files = 0
        try:
            for path in quality.label_files(self.labels_dir):
                try:
                    for chunk in quality.read_label_chunks(path, columns, self.chunk_rows):
                        files += 1
                        seen_columns.update(chunk.columns)
                        # A file without an id or label column: its rows as read_labels' concat leaves them (missing).
                        chunk = chunk.reindex(columns=[INFERENCE_ID, quality.LABEL, *(
                            [quality.LABEL_TIME] if quality.LABEL_TIME in chunk.columns else [])])
                        chunk[INFERENCE_ID] = chunk[INFERENCE_ID].astype(str)
                        usable, unusable = quality.usable_labels(chunk, self.problem_type, self.classes,
                                                                      self.deviance_power)
                        raw_rows += len(usable) + len(unusable)
                        if len(unusable):
                            examples = sorted(set(examples) | set(unusable.astype(str)))[:3]
                        self.rows += len(usable)
                        if len(usable):
                            yield usable
                except Exception as exc:  # noqa: BLE001 - as read_labels: any unreadable file is reported
                    raise quality.LabelError(f"{path}: {exc}") from None
            missing = [c for c in (INFERENCE_ID, quality.LABEL) if c not in seen_columns]
            if files and missing:
                raise quality.LabelError(f"label files under {self.labels_dir!r} lack columns {missing}")
            if examples and not self.rows:
                raise quality.no_usable_label(raw_rows, self.labels_dir, examples, self.problem_type,
                                              self.deviance_power)
        except quality.LabelError as exc:
            raise self._unreadable(exc) from None
        self.has_time = quality.LABEL_TIME in seen_columns


class _FrameLabels:
    """Labels already read (a frame as :func:`quality.read_labels` returns it) as :class:`LookbackLabels` yields them."""

    def __init__(self, frame: Optional[pd.DataFrame]) -> None:
        self.frame = frame
        self.has_time = frame is not None and quality.LABEL_TIME in frame.columns
        self.rows = 0 if frame is None else len(frame)

    def chunks(self) -> Iterator[pd.DataFrame]:
        if self.frame is not None and len(self.frame):
            yield self.frame.assign(**{INFERENCE_ID: self.frame[INFERENCE_ID].astype(str)})


class EarlierRequests:
    """The labelled requests of the earlier runs' records (:func:`join_earlier`) and what the report says of them."""

    def __init__(self, labelled: Optional[pd.DataFrame], rows_per_day: Dict[str, int], summary: Dict[str, Any],
                 checks: List[Dict[str, Any]], *, label_window_hours: float = 168.0,
                 labels_source: Optional[str] = None) -> None:
        self.labelled = labelled
        self.rows_per_day = rows_per_day
        self.summary = summary
        self.checks = checks
        self.label_window_hours = label_window_hours
        self.labels_source = labels_source

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

    def annotate(self, section: Dict[str, Any]) -> Dict[str, Any]:
        """``section`` (model quality) with ``late_labels`` and these checks, and which due days it judged.

        A due day counts as judged (``judged_days``, which the next runs read and leave out) only when the section
        scored it - its window reached ``min_label_coverage``, so its rows are in the metrics - and the section's quality
        checks judged (pass or fail). Every other due day is carried (``carried_days``, why in ``carried_why``): the
        next runs judge it again, while it is due, with the labels that have come by then:

        * too few labels (``too_few_labels``: its window not scored, although its labels are due): a
          ``labels_overdue`` warning names the days and the fix (the label feed), whatever today's window holds - the
          feed being a day late must not lock a day as judged on no labels;
        * the quality checks skipped (``quality_skipped``: fewer labelled rows than ``min_labeled_rows``, as a model
          with little traffic has on one day): pooled with the days that come due next, until their labels together are
          enough (a ``late_labels_carried`` note), so a small model's quality is still judged, each day once;
        * a records file that may hold its requests not read (``records_not_read``: :func:`join_earlier` left it out
          and warned ``late_labels_records_missing``)."""
        summary = self.summary
        section["late_labels"] = summary
        section.setdefault("checks", []).extend(self.checks)
        windows = {w.get("day"): w for w in section.get("windows") or []}
        due = summary["judged_days"]
        scored = [day for day in due if (windows.get(day) or {}).get("scored")]
        unscored = [day for day in due if day not in scored]
        judging = section.get("status") in (PASS, FAIL)
        why = {**{day: TOO_FEW_LABELS for day in unscored}, **{day: QUALITY_SKIPPED for day in ([] if judging else scored)},
               **{day: RECORDS_NOT_READ for day in summary.get("incomplete_days") or {}}}
        summary["judged_days"] = scored if judging else []
        if why:
            summary["carried_days"] = sorted(why)
            summary["carried_why"] = dict(sorted(why.items()))
        if scored and not judging:
            section["checks"].append(check(
                "late_labels_carried", SECTION, float(len(scored)), None, PASS,
                detail=f"the quality checks were skipped ({section.get('detail') or 'nothing to compare with'}), so the due "
                       f"days {scored[0]} to {scored[-1]} are not counted as judged: the next run judges them again with "
                       f"the days that come due then, while they are due"))
        if unscored:
            section["checks"].append(self._overdue(unscored, section.get("min_label_coverage")))
        return section

    def _overdue(self, days: List[str], min_label_coverage: Optional[float]) -> Dict[str, Any]:
        """The warning for due days whose labels are too few to judge them (their window not scored)."""
        delay = self.summary["label_delay_days"]
        due_days = self.summary["due_days"]
        named = ", ".join(f"{day} ({due_days[day]['labelled']} of {due_days[day]['rows']} requests labelled)"
                          for day in days[:MAX_EXAMPLES]) + (f" and {len(days) - MAX_EXAMPLES} more" if len(days) > MAX_EXAMPLES else "")
        until = due_until(days[0], label_delay_days=delay, label_window_hours=self.label_window_hours)
        coverage = f"min_label_coverage {min_label_coverage:g}" if min_label_coverage is not None else "min_label_coverage"
        source = f" under {self.labels_source}" if self.labels_source else ""
        return check(
            "labels_overdue", SECTION, float(len(days)), 0.0, WARN, op=">",
            detail=f"{_days(days)} too few labels to be judged, below {coverage}: {named}; their labels "
                   f"should have come by now (each day ended more than label_delay_days {delay} ago), so they are not "
                   f"counted as judged and the next runs judge them again while they are due ({days[0]} until "
                   f"{until.isoformat()}, then never): check that the label feed{source} is on time and writes "
                   f"inference_id,label,label_time with the ids the traffic carries, or raise "
                   f"models.<model>.label_delay_days (now {delay}) if labels come later than that")


def records_files(records_dir: Optional[str]) -> List[str]:
    """Every :data:`RECORDS_FILE` under ``records_dir`` (any depth), the newest first (by modification time: the
    download sets it to when the run that saw the requests wrote them)."""
    if not records_dir or not os.path.isdir(records_dir):
        return []
    paths = glob.glob(os.path.join(records_dir, "**", RECORDS_FILE), recursive=True)
    return sorted(paths, key=lambda p: (-os.path.getmtime(p), p))


def _hashed(ids: pd.Series) -> np.ndarray:
    """64-bit hashes of ids: what a request is remembered by while the look-back is read (8 bytes, not the id)."""
    # hash_array on the values, not hash_pandas_object, and without categorize (factorizing first): the same hashes,
    # a third of the CPU - ids are nearly all distinct, and the join hashes every label chunk and records file.
    return pd.util.hash_array(ids.astype(str).to_numpy(dtype=object), categorize=False)


def _day_codes(frame: pd.DataFrame, days: Dict[str, int]) -> np.ndarray:
    """Each record's request day (:func:`quality.inference_days`) as its index in ``days`` (new days added)."""
    codes, uniques = quality.utc_days(request_times(frame[INFERENCE_TIME]))
    names = [days.setdefault(day, len(days)) for day in uniques]
    unknown = days.setdefault("(unknown)", len(days)) if (codes < 0).any() else -1
    lookup = np.array(names + [unknown], dtype=np.int32)
    return lookup[codes]  # code -1 (no time) takes the last entry


def _read_records(path: str, version: RecordsVersion, today_start: Optional[dt.datetime]):
    """``(frame, made_by, judged)`` of one records file: the columns the quality section needs when it holds the
    version judged, else its ids and times only (another version's columns - classes - may differ); the requests of
    today's window left out. Raises when the file cannot be read."""
    made_by = records_version(path)
    judged = made_by is not None and version.same_as(made_by)
    columns = [INFERENCE_ID, INFERENCE_TIME, SCORE, *version.probability_columns] if judged else [INFERENCE_ID, INFERENCE_TIME]
    frame = pd.read_parquet(path, columns=columns)
    frame[INFERENCE_ID] = frame[INFERENCE_ID].astype(str)
    if today_start is not None:
        frame = frame[~(request_times(frame[INFERENCE_TIME]) >= today_start).to_numpy(dtype=bool)]
    return frame, made_by, judged


def join_earlier(records_dir: Optional[str], labels: Optional[pd.DataFrame], *, matched_today: Sequence[str],
                 version: RecordsVersion, label_delay_days: int, label_window_hours: float,
                 older_labels: Any = None, today_start: Optional[dt.datetime] = None,
                 now: Optional[dt.datetime] = None, labels_source: Optional[str] = None,
                 records_left_out: int = 0, judged_before: Optional[Mapping[str, str]] = None,
                 records_not_read: Sequence[Mapping[str, Any]] = (),
                 window_hours: float = MONITOR_WINDOW_HOURS) -> EarlierRequests:
    """Join the labels that matched no request of today's window (``matched_today``: the ids that did) to the records
    of ``version`` under ``records_dir``, and judge the request days whose labels are due (:func:`day_state`) and that
    no earlier run judged (``judged_before``: day -> when, :func:`judged_days`; default none: every due day).

    ``labels``: the labels of the label window; ``older_labels``: those of the rest of the look-back - a
    :class:`LookbackLabels` (read a chunk at a time) or a frame as :func:`quality.read_labels` returns it (default
    none); the latest per id wins (:func:`all_labels`). ``today_start``: the first request time of today's window - an
    earlier run's records from then on (a run started by hand over the same traffic) are today's window's, not
    counted twice. A request is taken from the newest file that holds it.

    A due day is judged on all its requests or not at all: a records file of the look-back that was not read -
    ``records_not_read`` (``{"key", "written", "why"}``: left out past the byte cap or failed to download,
    ``remote.download_records``' ``not_read``) or unreadable here - may hold requests of the days its run covered
    (:func:`records_span_days`, from when it was written and ``window_hours``); those due days are not judged this run
    (``incomplete_days``: their labels) and a warning names them (``late_labels_records_missing``): the next run, with
    the file, judges them while they are due.

    Memory follows the look-back's requests, not its labels: the records files are read one at a time for their ids
    and times and remembered as 64-bit id hashes with the file and day of each (16 bytes a request held; with the sort
    and ``np.unique`` temporaries, the files and label chunks as read and the label window's labels read whole, the
    join's peak grew by about 140 bytes per request of the look-back: ``bench/results/late_labels_memory.json``);
    the older labels are then read a chunk at a time and only those of the due days' requests kept; the due days'
    files are read again for the rows those labels name. A label joins its request by the id itself, never by the
    hash (a collision cannot attach a wrong label). Raises :class:`UnreadableLabels` when ``older_labels`` cannot all
    be read (the caller judges no due day).

    Reported (``summary``): the version judged; the files read and the version each names; per due day its requests
    and labels (``due_days``; ``request_days``: the labelled ones; ``judged_days``: the days judged, which the next
    runs read from the report), due days judged by an earlier run (``judged_before``: when, and their labels), labels
    of days not due yet (``pending_days``) or due before the label window (``past_due_labels``); labels of another
    version's requests (``other_versions``: labels, records and files per version - a file that names no version is
    another's, ``(version not recorded)``); the labels of the label window that matched no request of the look-back
    (count and a few ids: their requests are older than it, were never captured, or carry other ids;
    ``records_left_out`` files of the look-back not downloaded are named as a cause) and unreadable files (a warning
    each, never an error). Which due days count as judged - those the quality section scores - is
    :meth:`EarlierRequests.annotate`'s (``labels_overdue`` for those with too few labels).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    judged_before = dict(judged_before or {})
    older = older_labels if isinstance(older_labels, (LookbackLabels, _FrameLabels)) else _FrameLabels(older_labels)
    checks: List[Dict[str, Any]] = []
    recent = labels if labels is not None else pd.DataFrame({INFERENCE_ID: pd.Series([], dtype=object)})
    recent = recent.assign(**{INFERENCE_ID: recent[INFERENCE_ID].astype(str)})
    matched = set(map(str, matched_today))
    matched_hashes = np.unique(_hashed(pd.Series(sorted(matched), dtype=object))) if matched else np.empty(0, np.uint64)
    recent = recent[~recent[INFERENCE_ID].isin(matched)]  # pending: the labels today's window did not take
    due_rows: Dict[str, int] = {}
    counted = np.empty(0, dtype=np.uint64)
    files: List[Dict[str, Any]] = []
    judged_files: List[bool] = []
    paths: List[str] = []
    unreadable: List[Dict[str, str]] = []
    base = os.path.abspath(records_dir) if records_dir else ""
    states: Dict[str, str] = {}
    days: Dict[str, int] = {}

    def state(day: str) -> str:
        if day not in states:
            states[day] = day_state(day, now=now, label_delay_days=label_delay_days, label_window_hours=label_window_hours)
            if states[day] == DUE and day in judged_before:
                states[day] = JUDGED
        return states[day]

    # 1. The records, a file at a time: every request's id hash, its file and day (the newest file that holds it wins).
    hash_parts: List[np.ndarray] = []
    file_parts: List[np.ndarray] = []
    day_parts: List[np.ndarray] = []
    for path in records_files(records_dir):
        name = os.path.relpath(path, base)
        written = dt.datetime.fromtimestamp(os.path.getmtime(path), dt.timezone.utc)
        try:
            frame, made_by, judged = _read_records(path, version, today_start)
        except Exception as exc:  # noqa: BLE001 - one unreadable file costs its own requests, reported
            unreadable.append({"file": name, "error": f"{type(exc).__name__}: {exc}"[:300], "written": written.isoformat()})
            continue
        hashes = _hashed(frame[INFERENCE_ID])
        day_of = _day_codes(frame, days)
        index = len(files)
        files.append({"file": name, "written": written.isoformat(), "version": made_by.key if made_by else UNRECORDED,
                      "rows": int(len(frame)), "labelled": 0})
        judged_files.append(judged)
        paths.append(path)
        hash_parts.append(hashes)
        file_parts.append(np.full(len(hashes), index, dtype=np.int32))
        day_parts.append(day_of)
        if judged and len(frame):  # every request of a due day counts once (the newest file that holds it)
            names = np.array(list(days), dtype=object)
            due = np.array([state(str(d)) == DUE for d in names], dtype=bool)[day_of]
            fresh = due & ~np.isin(hashes, counted)
            counted = np.concatenate([counted, np.unique(hashes[fresh])])
            for code, count in zip(*np.unique(day_of[fresh], return_counts=True)):
                due_rows[names[code]] = due_rows.get(names[code], 0) + int(count)
        del frame

    # The due days a records file that was not read may hold: not judged on the part of their requests that was read.
    held: Dict[str, List[str]] = {}

    def hold(name: str, written: Any, why: str) -> None:
        try:
            when = written if isinstance(written, dt.datetime) else dt.datetime.fromisoformat(str(written))
        except ValueError:  # a write time that cannot be read: every due day may be its
            when = None
        spanned = records_span_days(when, window_hours=window_hours) if when is not None else [
            d for d in list(days) + list(due_rows) if state(d) in (DUE, INCOMPLETE)]
        for day in spanned:
            if state(day) in (DUE, INCOMPLETE):
                states[day] = INCOMPLETE
                held.setdefault(day, []).append(f"{name} ({why})")
                due_rows.pop(day, None)

    not_read = [dict(item) for item in records_not_read]
    for item in not_read:
        hold(str(item.get("key")), item.get("written"), str(item.get("why") or "not read"))
    for item in unreadable:
        hold(item["file"], item["written"], "unreadable")
    day_names = list(days)
    day_state_of = np.array([state(d) for d in day_names] or [PAST], dtype=object)
    all_hashes = np.concatenate(hash_parts) if hash_parts else np.empty(0, np.uint64)
    entries, first = np.unique(all_hashes, return_index=True)
    entry_file = np.concatenate(file_parts)[first] if file_parts else np.empty(0, np.int32)
    entry_day = np.concatenate(day_parts)[first] if day_parts else np.empty(0, np.int32)
    del all_hashes, hash_parts, file_parts, day_parts, first
    judged_entry = np.asarray(judged_files, dtype=bool)[entry_file] if len(entry_file) else np.zeros(0, dtype=bool)
    due_entry = judged_entry & (day_state_of[entry_day] == DUE) if len(entry_file) else np.zeros(0, dtype=bool)
    labelled = np.zeros(len(entries), dtype=bool)

    def lookup(hashes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(position, found) of each hash among the records' requests."""
        if not len(entries):
            return np.zeros(len(hashes), dtype=np.int64), np.zeros(len(hashes), dtype=bool)
        position = np.minimum(np.searchsorted(entries, hashes), len(entries) - 1)
        return position, entries[position] == hashes

    def pending(chunk: pd.DataFrame) -> Tuple[pd.DataFrame, np.ndarray]:
        """A chunk of labels without those of today's window's requests, and their id hashes."""
        hashes = _hashed(chunk[INFERENCE_ID])
        maybe = np.isin(hashes, matched_hashes)
        if maybe.any():  # confirmed on the id: a hash collision must not drop a label
            keep = ~(maybe & chunk[INFERENCE_ID].isin(matched).to_numpy(dtype=bool))
            chunk, hashes = chunk[keep], hashes[keep]
        return chunk, hashes

    # 2. The labels: each marks the request it names; only the due days' requests' labels are kept.
    recent, recent_hashes = pending(recent)
    position, found = lookup(recent_hashes)
    labelled[position[found]] = True
    unmatched = sorted(set(recent.loc[~found, INFERENCE_ID]))
    unmatched_pseudonyms = [record_pseudonym(i) for i in unmatched[:MAX_EXAMPLES]]
    kept: List[pd.DataFrame] = []
    for chunk in older.chunks():
        chunk, hashes = pending(chunk)
        position, found = lookup(hashes)
        labelled[position[found]] = True
        keep = found.copy()  # no request recorded (no records file read): nothing found, nothing to index
        keep[found] = due_entry[position[found]]
        if keep.any():
            kept.append(chunk[keep])
    older_kept = None
    if kept:
        older_kept = pd.concat(kept, ignore_index=True)
        if older.has_time and quality.LABEL_TIME not in older_kept.columns:
            older_kept[quality.LABEL_TIME] = None  # the column decides the latest label (all_labels): keep it
        older_kept = quality.latest_label_order(older_kept).drop_duplicates(INFERENCE_ID, keep="last")
    del kept

    # 3. The due days' labelled requests, read again from their files and joined by their ids.
    hit_entries = labelled & due_entry
    wanted_labels = None
    if hit_entries.any():
        hit_hashes = entries[hit_entries]
        recent_hits = recent[np.isin(recent_hashes, hit_hashes)]
        wanted_labels = all_labels(recent_hits, older_kept)
    parts: List[pd.DataFrame] = []
    for index in (np.unique(entry_file[hit_entries]) if hit_entries.any() else []):
        mine = entries[hit_entries & (entry_file == index)]
        try:
            frame, _, _ = _read_records(paths[index], version, today_start)
        except Exception as exc:  # noqa: BLE001 - read a moment ago: gone or changed since, reported as unreadable
            unreadable.append({"file": files[index]["file"], "error": f"{type(exc).__name__}: {exc}"[:300],
                               "written": files[index]["written"]})
            hold(files[index]["file"], files[index]["written"], "unreadable")
            continue
        hit = frame[np.isin(_hashed(frame[INFERENCE_ID]), mine)].drop_duplicates(INFERENCE_ID)
        hit = hit[hit[INFERENCE_ID].isin(wanted_labels[INFERENCE_ID]).to_numpy(dtype=bool)]  # the id, not its hash
        hit = hit[(quality.inference_days(hit).map(state) == DUE).to_numpy(dtype=bool)]
        if len(hit):
            parts.append(quality.join_labels(hit, wanted_labels[wanted_labels[INFERENCE_ID].isin(hit[INFERENCE_ID])]))
    if held:  # a file that could not be read again: the days it may hold are left out of what was joined before it
        parts = [part[(quality.inference_days(part).map(state) == DUE).to_numpy(dtype=bool)] for part in parts]
        parts = [part for part in parts if len(part)]

    # 4. What the labels matched: per file, per version, per day's state.
    labels_by_state: Dict[str, Dict[str, int]] = {PENDING: {}, PAST: {}, UNDATED: {}, JUDGED: {}, INCOMPLETE: {}}
    other: Dict[str, Dict[str, int]] = {}
    per_file = np.bincount(entry_file[labelled], minlength=len(files))
    for index, entry in enumerate(files):
        entry["labelled"] = int(per_file[index])
        if not judged_files[index]:
            counts = other.setdefault(entry["version"], {"labels": 0, "records": 0, "files": 0})
            counts["labels"] += entry["labelled"]
            counts["records"] += entry["rows"]
            counts["files"] += 1
    judged_labelled = labelled & judged_entry
    for code, count in zip(*np.unique(entry_day[judged_labelled], return_counts=True)):
        day = day_names[code]
        if state(day) != DUE:
            bucket = labels_by_state[state(day)]
            bucket[day] = bucket.get(day, 0) + int(count)

    labelled_frame = concat(parts) if parts else None
    labelled_days = quality.day_counts(labelled_frame) if labelled_frame is not None else {}
    already = {day: {"judged_at": judged_before[day], "labels": labels_by_state[JUDGED].get(day, 0)}
               for day in sorted(judged_before) if states.get(day) == JUDGED}
    summary: Dict[str, Any] = {
        "label_delay_days": label_delay_days,
        "version": version.key,
        "records_files": len(files),
        "records_rows": sum(f["rows"] for f in files),
        "labelled_rows": int(sum(labelled_days.values())),
        "request_days": dict(sorted(labelled_days.items())),
        "due_days": {day: {"rows": due_rows[day], "labelled": labelled_days.get(day, 0)} for day in sorted(due_rows)},
        "judged_days": sorted(due_rows),
        "judged_version": version.as_dict(),
        "judged_before": already,
        "incomplete_days": dict(sorted(labels_by_state[INCOMPLETE].items())),
        "pending_days": dict(sorted(labels_by_state[PENDING].items())),
        "past_due_labels": sum(labels_by_state[PAST].values()) + sum(labels_by_state[UNDATED].values()),
        "other_versions": other,
        "files": files,
        # Pseudonyms, not the ids: the report is kept for ever (monitor/ keeps every version); the labels the ids are
        # in expire with the records (inference_records_expiration_days).
        "unmatched_labels": {"rows": len(unmatched), "example_pseudonyms": unmatched_pseudonyms},
    }
    fix = f"raise models.<model>.label_delay_days (now {label_delay_days}) if labels come later than that"
    if unmatched:
        left_out = (f"; {records_left_out} records files of the look-back were not downloaded (past the download cap: "
                    f"{monitor_window_fix()}), their requests' labels among these" if records_left_out else "")
        checks.append(check(
            "unmatched_labels", SECTION, float(len(unmatched)), 0.0, WARN, op=">",
            detail=f"{len(unmatched)} labels of the last {label_window_hours:g} h match no request of today's window nor of "
                   f"the {len(files)} earlier runs' records (requests of the last {label_delay_days} days + the label "
                   f"window): their requests are older than that, were never captured, or carry other ids, e.g. the "
                   f"ids whose sha256 starts {', '.join(unmatched_pseudonyms)}{left_out}; {fix}"))
    if unreadable:
        summary["unreadable"] = [{"file": u["file"], "error": u["error"]} for u in unreadable]
        checks.append(check(
            "prediction_records_unreadable", SECTION, float(len(unreadable)), 0.0, WARN, op=">",
            detail=f"{len(unreadable)} earlier runs' records could not be read, so labels of their requests are not judged: "
                   + "; ".join(f"{u['file']}: {u['error']}" for u in unreadable[:3])))
    if held:
        summary["records_not_read"] = {"files": len(not_read) + len(unreadable),
                                       "examples": sorted({f for names in held.values() for f in names})[:MAX_EXAMPLES]}
        checks.append(records_missing_check(sorted(held), held, not_read, unreadable, label_delay_days=label_delay_days,
                                            label_window_hours=label_window_hours))
    if files:
        others = "; ".join(f"{v['labels']} of {k}" for k, v in other.items() if v["labels"])
        checks.append(check(
            "late_labels", SECTION, float(summary["labelled_rows"]), None, PASS,
            detail=f"{summary['labelled_rows']} labels of {version.key} joined to requests of due days "
                   f"({', '.join(summary['request_days']) or 'none'}); "
                   f"{sum(summary['pending_days'].values())} of days not due yet (not judged)"
                   + (f"; labels of other versions' requests, not judged: {others}" if others else "")))
    return EarlierRequests(labelled_frame, due_rows, summary, checks, label_window_hours=label_window_hours,
                           labels_source=labels_source)


def _days(days: Sequence[str], verb: str = "have") -> str:
    """``1 due day has`` / ``3 due days have`` (``verb``: have or are)."""
    one = {"have": "has", "are": "is"}[verb]
    return f"1 due day {one}" if len(days) == 1 else f"{len(days)} due days {verb}"


def records_missing_check(days: List[str], held: Mapping[str, List[str]], not_read: Sequence[Mapping[str, Any]],
                          unreadable: Sequence[Mapping[str, Any]], *, label_delay_days: int,
                          label_window_hours: float) -> Dict[str, Any]:
    """The warning for due days not judged because a records file that may hold their requests was not read: which,
    until when they can still be judged, and the fix for each cause."""
    left_out = sum(1 for item in not_read if item.get("why") == "left out")
    failed = len(not_read) - left_out
    until = due_until(days[0], label_delay_days=label_delay_days, label_window_hours=label_window_hours)
    fixes = ([f"{left_out} left out past the download cap: {monitor_window_fix()}"] if left_out else []) \
        + ([f"{failed} not downloaded: see prediction_records_download_failed"] if failed else []) \
        + ([f"{len(unreadable)} unreadable: see prediction_records_unreadable"] if unreadable else [])
    named = ", ".join(days[:MAX_EXAMPLES]) + (f" and {len(days) - MAX_EXAMPLES} more" if len(days) > MAX_EXAMPLES else "")
    return check(
        "late_labels_records_missing", SECTION, float(len(days)), 0.0, WARN, op=">",
        detail=f"{_days(days, 'are')} not judged this run ({named}): records files of the look-back that may hold "
               f"their requests were not read (e.g. {held[days[0]][0]}), and a day is judged once, on all its requests; "
               f"the next runs judge them while they are due ({days[0]} until {until.isoformat()}, then never). "
               + "; ".join(fixes))


def judged_days(reports: Sequence[Mapping[str, Any]], version: RecordsVersion, *,
                window: Optional[Mapping[str, Any]] = None) -> Dict[str, str]:
    """The request days earlier runs judged for ``version`` (day -> the judging report's ``generated_at``): the
    ``late_labels.judged_days`` of each earlier report (:mod:`.history`, oldest first) whose numbers stand (trusted: its
    quality was published, or would have been) and whose ``judged_version`` is ``version`` (another version's judging
    says nothing of this one's). Not counted: a report whose metrics failed to publish (the alarm never saw its
    quality), and one over exactly this run's traffic window (``window``: its first and last request time) - a local
    run repeated over the same ``--capture-dir``. The scheduled job's window is the traffic of the 24 h before it
    starts, so a run of it started again by hand covers another window and does not judge again what the run it
    repeats judged: a day is judged by the first report that stands, and a run whose report does not stand (failed,
    untrusted, unpublished) leaves its days to the next."""
    out: Dict[str, str] = {}
    for report in reports:
        if not trusted_window(report) or any(e.get("kind") == "publish_failed" for e in report.get("errors") or []):
            continue
        earlier = report.get("window") or {}
        if window and window.get("start") and (earlier.get("start"), earlier.get("end")) == (window.get("start"), window.get("end")):
            continue
        late = ((report.get("sections") or {}).get(SECTION) or {}).get("late_labels") or {}
        made = late.get("judged_version")
        if not isinstance(made, Mapping) or not version.same_as(RecordsVersion.from_dict(made)):
            continue
        for day in late.get("judged_days") or []:
            out.setdefault(str(day), str(report.get("generated_at")))
    return out


def history_check(reason: str) -> Dict[str, Any]:
    """The warning of a run that cannot tell which due days earlier runs judged (``reason``): it judges them all."""
    return check("late_labels_history_unknown", SECTION, None, None, WARN,
                 detail=f"every due day of the label window is judged this run, those earlier runs judged too: {reason}; "
                        "the quality alarm may see a day again")


def matched_ids(today: Optional[pd.DataFrame]) -> List[str]:
    """The ids of today's labelled records (None or empty: none)."""
    if today is None or not len(today):
        return []
    return today[INFERENCE_ID].astype(str).tolist()
