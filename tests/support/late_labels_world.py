"""A generated look-back for the late-label join: shared by tests/monitoring/test_late_labels.py and bench/.

:func:`write_lookback` writes what a scheduled run finds on disk after its downloads: the earlier runs' records files
(``records/<run>/predictions.parquet``, written by :class:`late_labels.RecordWriter`, each file's modification time when
its run wrote it), the label window's labels (``labels/``) and the rest of the look-back's (``late-labels/``), one file
per day the labels arrived. ``mess=True`` adds what real look-backs hold: a day recorded twice (a run started by hand),
another version's records, an unreadable records file, labels in CSV and JSON Lines besides parquet, relabelled ids
(a later file with a later - or an earlier - ``label_time``), duplicate rows, blank and unusable labels.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pandas as pd

from pipeline_code.monitoring import late_labels

VERSION = late_labels.RecordsVersion("arn:aws:sagemaker:eu-west-1:123456789012:model-package/m/2", 2, "d2")
OTHER = late_labels.RecordsVersion("arn:aws:sagemaker:eu-west-1:123456789012:model-package/m/1", 1, "d1")
NOW = dt.datetime(2026, 11, 30, 9, tzinfo=dt.timezone.utc)


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """UUID-shaped request ids (36 characters, as SageMaker's generated inference ids)."""
    raw = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64)
    return np.array([f"{a:016x}{b:016x}" for a, b in raw], dtype=object)


def _iso(times) -> np.ndarray:
    """UTC times as the ISO-8601 strings the monitor writes (``%Y-%m-%dT%H:%M:%S.%fZ``), formatted by numpy: pandas'
    strftime formats each value in Python (~3 µs a value, a third of a large look-back's generation)."""
    utc = pd.DatetimeIndex(times).tz_convert(None).to_numpy()
    return np.datetime_as_string(utc, unit="us").astype(object) + "Z"


def _uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


def write_records(path: Path, frame: pd.DataFrame, *, written: dt.datetime,
                  version: late_labels.RecordsVersion = VERSION) -> None:
    writer = late_labels.RecordWriter(str(path), version)
    for start in range(0, len(frame), 100_000):  # one row group a chunk, as the monitor writes them
        writer(frame.iloc[start:start + 100_000])
    assert "error" not in writer.close()
    os.utime(path, (written.timestamp(), written.timestamp()))


def _write_labels(path: Path, frame: pd.DataFrame, kind: str) -> None:
    if kind == "parquet":
        if frame["label"].dtype == object:  # a feed of text labels ("1", "0", "maybe")
            frame = frame.astype({"label": str})
        frame.to_parquet(path.with_suffix(".parquet"), index=False)
    elif kind == "csv":
        frame.to_csv(path.with_suffix(".csv"), index=False)
    else:
        frame.to_json(path.with_suffix(".jsonl"), orient="records", lines=True, date_format="iso")


def write_lookback(root: Path, *, days: int = 40, per_day: int = 200, delay: int = 30, window_hours: float = 168.0,
                   coverage: float = 0.8, seed: int = 0, mess: bool = False, now: dt.datetime = NOW) -> Dict[str, Any]:
    """``days`` days of ``per_day`` requests (the newest yesterday) and their labels, arriving uniformly over the
    ``delay`` days after their request (``coverage`` of the requests labelled). Returns the directories, ``now``
    and ``matched_today`` (a few ids today's window took)."""
    rng = np.random.default_rng(seed)
    records, recent_dir, older_dir = root / "records", root / "labels", root / "late-labels"
    for directory in (records, recent_dir, older_dir):
        directory.mkdir(parents=True, exist_ok=True)
    window_start = now - dt.timedelta(hours=window_hours)
    arrivals = []
    for ago in range(days, 0, -1):
        start = (now - dt.timedelta(days=ago)).replace(hour=0, minute=0, second=0, microsecond=0)
        ids = np.array([_uuid(i) for i in _ids(rng, per_day)], dtype=object)
        times = start + pd.to_timedelta(rng.uniform(0, 86_399, per_day), unit="s")
        frame = pd.DataFrame({"inference_id": ids, "inference_time": _iso(times),
                              "score": rng.uniform(0, 1, per_day)})
        (records / f"run-{ago:03d}").mkdir()
        write_records(records / f"run-{ago:03d}" / late_labels.RECORDS_FILE, frame, written=start + dt.timedelta(days=1, hours=1))
        labelled = rng.random(per_day) < coverage
        came = times[labelled] + pd.to_timedelta(rng.uniform(0, delay, labelled.sum()), unit="D")
        y = (rng.random(per_day) < frame["score"].to_numpy()).astype(int)[labelled]
        arrivals.append(pd.DataFrame({"inference_id": ids[labelled], "label": y, "label_time": came}))
        if mess and ago in (33, 12):  # a run started by hand recorded a third of that day again, an hour later
            (records / f"by-hand-{ago:03d}").mkdir()
            write_records(records / f"by-hand-{ago:03d}" / late_labels.RECORDS_FILE, frame.iloc[::3],
                          written=start + dt.timedelta(days=1, hours=2))
        if mess and ago == 34:  # the day a rollback served another version for a few hours
            (records / f"other-{ago:03d}").mkdir()
            other = frame.iloc[: per_day // 4].assign(score=lambda f: 1 - f["score"])
            write_records(records / f"other-{ago:03d}" / late_labels.RECORDS_FILE, other,
                          written=start + dt.timedelta(days=1, hours=3), version=OTHER)
    labels = pd.concat(arrivals, ignore_index=True)
    if mess:
        relabel = labels.sample(frac=0.1, random_state=seed)  # corrected labels: later, or stamped earlier
        shift = pd.to_timedelta(np.where(rng.random(len(relabel)) < 0.7, 2.0, -0.5), unit="D")
        relabel = relabel.assign(label=1 - relabel["label"], label_time=relabel["label_time"] + shift)
        duplicates = labels.sample(frac=0.02, random_state=seed + 1)
        odd = labels.sample(n=min(20, len(labels)), random_state=seed + 2).astype({"label": object})
        odd["label"] = ["", "maybe"] * (len(odd) // 2) + [""] * (len(odd) % 2)
        odd["label_time"] = odd["label_time"] + pd.Timedelta(days=1)
        unmatched = pd.DataFrame({"inference_id": [f"gone-{i}" for i in range(5)], "label": 1,
                                  "label_time": now - dt.timedelta(hours=3)})
        labels = pd.concat([labels, relabel, duplicates, unmatched], ignore_index=True)
        labels = pd.concat([labels.astype({"label": object}), odd], ignore_index=True)
        (records / "broken").mkdir()
        (records / "broken" / late_labels.RECORDS_FILE).write_bytes(b"not parquet")
    labels = labels[labels["label_time"] <= now]
    day = labels["label_time"].dt.floor("D")
    kinds = ("parquet", "csv", "jsonl") if mess else ("parquet",)
    for i, (when, part) in enumerate(labels.groupby(day, sort=True)):
        target = recent_dir if when + pd.Timedelta(days=1) > window_start else older_dir
        part = part.assign(label_time=_iso(part["label_time"]))
        kind = kinds[i % len(kinds)]
        if mess and kind == "jsonl":
            part = part.drop(columns="label_time")  # a feed that stamps no time: the later file wins
        _write_labels(target / f"labels-{when:%Y-%m-%d}", part, kind)
    matched = labels["inference_id"].drop_duplicates().sample(n=min(10, len(labels)), random_state=seed + 3).tolist()
    return {"records_dir": str(records), "labels_dir": str(recent_dir), "late_labels_dir": str(older_dir), "now": now,
            "matched_today": matched, "delay": delay, "window_hours": window_hours}
