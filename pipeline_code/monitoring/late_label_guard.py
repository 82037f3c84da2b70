"""What keeps the late-label pass from taking the drift report down, and from going quiet (:mod:`.late_labels`).

* **Memory** (:func:`memory_problem`): the pass runs in the monitor's process after the window's drift is judged and
  before the report is written; an out-of-memory kill of the job would lose the whole report - drift, its metrics and
  the retrain alarm - and leave only ``-monitor-no-report``. So before it starts, its peak is estimated from the
  look-back's request count (the records files' parquet footers, read without their data) at
  :data:`BYTES_PER_REQUEST` each plus :data:`BASE_BYTES`, and compared with the memory the instance has left (the
  container's limit less what the process holds, and what the kernel says is available). When it would not fit the
  pass is skipped: ``late_labels_not_judged`` names the estimate and the fix, and the drift report stands.
* **Escalation** (:func:`persistent_error`): a run that judges no due day (``late_labels_not_judged``) only warns - one
  download that failed or one cut look-back is retried by the next run, and its days stay due for a week. When
  :data:`ESCALATE_AFTER_RUNS` runs in a row judged none (this one and the earlier reports of :mod:`.history`, newest
  first), model-quality retraining has gone quiet: the run's report gets an error of its own section
  (:data:`SECTION`), as ``capture_missing`` does - ``MonitorHealthy=0`` pages people through ``-monitor-unhealthy``,
  the window's other numbers stand.
* **A label feed that stopped** (:func:`labels_last_read`, :func:`stopped_error`): a run whose label window (the labels
  written in the last ``--label-window-hours``, a week) holds no label - with late labels, nor the look-back's older
  labels (``older_label_files``: a feed that writes a month's labels at once is not stopped) - has nothing to judge
  model quality on, and
  without labels the quality alarm cannot fire: today's window and every due day are only warned of
  (``label_coverage``, ``labels_overdue``). When an earlier run read labels (its report's ``labels_read``, carried
  forward by the runs that read none as ``labels_last_read``, so a feed stopped for longer than the history holds is
  still known), the feed has stopped: an error of the model-quality section (:data:`STOPPED`), ``MonitorHealthy=0``,
  until a run's label window holds a label again. A model whose labels never came is not paged for them.

stdlib only, besides pyarrow for the footers (the monitor's image has it: records are parquet).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence

NOT_JUDGED = "late_labels_not_judged"
# A label feed that stopped: the label window holds no label, and an earlier run read some.
STOPPED = "labels_stopped"
PERSISTENT = "late_labels_not_judged_persistently"
SECTION = "late_labels"
QUALITY_SECTION = "model_quality"
# Three daily runs: a failed download or a cut look-back is given two more runs to clear by itself, and a due day that
# was not judged still has four of its seven days in the label window (it is judged by the first run within the week
# after it came due) when people hear of it.
ESCALATE_AFTER_RUNS = 3
# The streamed join's peak per request of the look-back, measured with bench/late_labels_memory.py (38 days, 80 %
# labelled, binary, 36-character ids; each join in a fresh process, its own VmHWM above its state after the imports):
# 220.4 MiB at 0.76 M requests (20,000 a day) and 650.8 MiB at 3.8 M (100,000 a day), about 140 bytes a request plus a
# fixed part (the label window's labels, read whole). 144 MiB + 170 bytes a request holds both with a 1.17x-1.21x
# margin and, at 2M requests a day (76 M over the look-back), asks for about 13 GB: what an ml.m5.xlarge's 16 GiB gives.
BYTES_PER_REQUEST = 170
BASE_BYTES = 144 * 1024**2
FIX = ("give the monitor more memory (environments.<env>.training.processing_instance_type, e.g. one size up), or lower "
       "models.<model>.label_delay_days if its labels come sooner")


def lookback_requests(paths: Iterable[str]) -> int:
    """The requests the records files at ``paths`` hold, from their parquet footers (their data is not read); a file
    whose footer cannot be read counts none (the join names it)."""
    import pyarrow.parquet as pq

    total = 0
    for path in paths:
        try:
            total += pq.read_metadata(path).num_rows
        except Exception:  # noqa: BLE001 - reported by the join, which cannot read it either
            continue
    return total


def _number(path: str) -> Optional[int]:
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _meminfo() -> Dict[str, int]:
    out: Dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    out[key] = int(parts[0]) * 1024  # kB
    except OSError:
        pass
    return out


def _resident() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def available_memory() -> Optional[int]:
    """Bytes the process may still use: the container's memory limit (cgroup v2 ``memory.max`` or v1
    ``memory.limit_in_bytes``, else the machine's) less what it holds, and no more than the kernel's ``MemAvailable``;
    None where none of these can be read (the pass then runs)."""
    info = _meminfo()
    limits = [v for v in (_number("/sys/fs/cgroup/memory.max"), _number("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
                          info.get("MemTotal")) if v]
    bounds = []
    if limits:
        bounds.append(min(limits) - _resident())
    if info.get("MemAvailable"):
        bounds.append(info["MemAvailable"])
    return max(0, min(bounds)) if bounds else None


def memory_problem(records: Sequence[str], *, available: Optional[Callable[[], Optional[int]]] = None) -> Optional[str]:
    """Why the late-label pass over the records files ``records`` would not fit the memory left (``available()``:
    bytes, None: unknown; default :func:`available_memory`), else None."""
    requests = lookback_requests(records)
    needed = BASE_BYTES + BYTES_PER_REQUEST * requests
    left = (available or available_memory)()
    if left is None or needed <= left:
        return None
    gib = 1024**3
    return (f"the late-label pass would need about {needed / gib:.1f} GiB ({requests:,} requests of the look-back at "
            f"~{BYTES_PER_REQUEST} bytes each, in {len(records)} records files) and the instance has {left / gib:.1f} GiB "
            f"left: skipped, so that the drift report stands; {FIX}")


def _skipped(report: Mapping[str, Any]) -> Optional[bool]:
    """Whether an earlier report's late-label pass judged no due day (True), ran (False), or never got to it (None: no
    model-quality section - a quiet day, no version serving, a window without records - or a model without late
    labels)."""
    if any(c.get("check") == NOT_JUDGED for c in report.get("checks") or [] if isinstance(c, Mapping)):
        return True
    quality = (report.get("sections") or {}).get(QUALITY_SECTION)
    if isinstance(quality, Mapping) and "late_labels" in quality:
        return False
    return None


def runs_not_judged(reports: Sequence[Mapping[str, Any]]) -> int:
    """How many of the newest earlier ``reports`` (oldest first, as :mod:`.history` reads them) in a row judged no due
    day; reports that never got to the pass are passed over."""
    count = 0
    for report in reversed(reports):
        skipped = _skipped(report)
        if skipped is None:
            continue
        if not skipped:
            break
        count += 1
    return count


def persistent_error(reports: Sequence[Mapping[str, Any]], reason: str) -> Optional[Dict[str, str]]:
    """The error (``kind``, ``message``, ``section``) of a run that judges no due day (``reason``) after
    :data:`ESCALATE_AFTER_RUNS` - 1 earlier runs that judged none either (``reports``), else None."""
    runs = runs_not_judged(reports) + 1
    if runs < ESCALATE_AFTER_RUNS:
        return None
    return {"kind": PERSISTENT, "section": SECTION, "message": (
        f"no due day of the late labels has been judged for {runs} runs in a row (this one: {reason}): AucDrop, "
        "QualityDrop and LabelCoverage of the due days are not published, so model-quality retraining is blind, and a "
        "due day no run judges within the week after it came due is never judged; fix the cause named in "
        f"{NOT_JUDGED} of these reports")}


def labels_last_read(reports: Sequence[Mapping[str, Any]]) -> Optional[str]:
    """When the newest earlier run that read labels in its label window ran (its report's ``generated_at``), from the
    earlier ``reports`` (oldest first); a run that read none carries the time it was given (``labels_last_read``), and
    reports without a model-quality section's ``labels_read`` (a quiet day, a report from before it) are passed over,
    as are runs that read none and carried no time (the feed never came, or the run could not tell: its look-back's
    labels or the earlier reports were not all downloaded), so one such run does not make the later ones forget.
    A report from before ``labels_read`` (a monitor of 19be382 or earlier, still in the history after an upgrade) whose
    window had labelled requests (``labeled_rows``) read labels too, so a feed that stopped across the upgrade pages.
    None: no earlier run read labels (the feed never came)."""
    for report in reversed(reports):
        quality = (report.get("sections") or {}).get(QUALITY_SECTION)
        if not isinstance(quality, Mapping):
            continue
        labelled = quality.get("labeled_rows")
        if "labels_read" not in quality and isinstance(labelled, int) and labelled > 0:
            return str(report.get("generated_at"))
        if not isinstance(quality.get("labels_read"), int):
            continue
        if quality["labels_read"] > 0 or (quality.get("older_label_files") or 0) > 0:
            return str(report.get("generated_at"))
        if quality.get("labels_last_read"):
            return str(quality["labels_last_read"])
    return None


def stopped_error(labels_source: str, label_window_hours: float, last_read: str, *, lookback: bool = False) -> Dict[str, str]:
    """The error (``kind``, ``message``, ``section``) of a run whose label window under ``labels_source`` holds no
    label (``lookback``: nor the late-label look-back before it), after a run at ``last_read`` read some."""
    window = "the label window, nor in the late-label look-back before it" if lookback else "the label window"
    return {"kind": STOPPED, "section": QUALITY_SECTION, "message": (
        f"no ground-truth label was written under {labels_source} in the last {label_window_hours:g} hours ({window}; "
        f"the last run that read labels: {last_read}): model quality is not judged and its retrain alarm cannot "
        "fire; check the label feed (inference_id,label,label_time with the ids the traffic carries). The first run "
        "whose label window holds a label clears this.")}
