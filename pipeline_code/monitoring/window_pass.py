"""One pass over a traffic window, chunk by chunk, that gathers what every section of the monitor's report needs.

The capture decoder hands each chunk of decoded records to a :class:`WindowPass` (``read_capture(consume=...)``)
instead of building one frame of the whole window, so the monitor's memory holds a chunk, counts and two bounded
sets of records, whatever the window's size:

1. **rescoring** - records the capture has no prediction for are scored with the model first (every record), and so
   are records another model version answered (``serving_digest``; a window that holds a rollout): every section
   judges the serving version's predictions, never the previous version's under the new version's name;
2. **counts** (:class:`window_stats.WindowStats`) - everything data drift, prediction drift and data quality decide
   on (every record);
3. **labelled records** - with labels, the records that have one, with it, and the records per day: model quality
   uses every labelled record (bounded by the labels, not the traffic);
4. **a row sample** (:class:`window_stats.RowSample`, ``sample_rows``, default :data:`DEFAULT_SAMPLE_ROWS`) - the
   records, their labels joined, for what needs records rather than counts: bias, attributions, and the exact KS
   test against a baseline sample. A window of up to ``sample_rows`` records is sampled whole, so its report is
   exactly the whole window's; a larger one is a seeded uniform sample (the report says so).

A step that fails stops for the rest of the window and its section reports the error (:meth:`failure`); the
other steps go on, as the sections of the report do.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from pipeline_code.core.problem import MULTICLASS
from pipeline_code.monitoring import quality
from pipeline_code.monitoring.capture import ANSWERED, INFERENCE_ID, INFERENCE_TIME, SCORE
from pipeline_code.monitoring.window_stats import RowSample, WindowStats, concat

DEFAULT_SAMPLE_ROWS = 200_000
RESCORING, COUNTS, LABELS, SAMPLE = "rescoring", "counts", "labels", "sample"


class WindowPass:
    """The consumer of a window's chunks (see the module docstring).

    ``statistics`` / ``constraints``: the baselines to count against (None: not counted); ``model``: scores the
    records whose prediction the capture lacks (None: none scored); ``labels``: :func:`quality.read_labels` (None: no
    labels); ``inputs``: the model's input columns (kept in the sample as the traffic sent them, whatever the
    labels hold); ``extra_columns``: the non-input columns whose presence in the traffic :meth:`absent` states;
    ``serving_digest``: the artefact digest of the version judged (None: every captured prediction is taken as its).
    """

    def __init__(self, *, problem_type: str, probability_columns: Sequence[str] = (),
                 statistics: Optional[Mapping[str, Any]] = None, constraints: Optional[Mapping[str, Any]] = None,
                 model: Any = None, labels: Optional[pd.DataFrame] = None, inputs: Sequence[str] = (),
                 extra_columns: Sequence[str] = (), sample_rows: int = DEFAULT_SAMPLE_ROWS, seed: int = 0,
                 serving_digest: Optional[str] = None) -> None:
        self.problem_type = problem_type
        self.inputs = list(inputs)
        self.probability_columns = list(probability_columns)
        self.model = model
        self.stats = WindowStats(statistics, constraints, problem_type=problem_type if statistics else None,
                                 probability_columns=self.probability_columns)
        self.labels = labels
        self.label_ids = pd.Index(labels[INFERENCE_ID]) if labels is not None else None
        self.labelled: List[pd.DataFrame] = []
        self.no_labels: Optional[pd.DataFrame] = None
        self.rows_per_day: Dict[str, int] = {}
        self.present = {c: 0 for c in extra_columns}
        # The sections that read the sample need no request ids or times (model quality reads the labelled records).
        self.sample = RowSample(sample_rows, seed, skip=(INFERENCE_ID, INFERENCE_TIME, ANSWERED))
        self.rescored: Optional[Dict[str, int]] = None
        self.failures: Dict[str, Exception] = {}
        self.serving_digest = serving_digest
        self.other_versions: Dict[str, int] = {}

    def _drop_other_versions(self, chunk: pd.DataFrame) -> None:
        """Forget the predictions of records another version answered, so rescoring gives them the serving version's."""
        answered = chunk[ANSWERED]
        named = answered.notna().to_numpy(dtype=bool)
        if not named.any():  # no record names the version that answered it: no comparison of every text
            return
        other = named & (answered != self.serving_digest).to_numpy(dtype=bool, na_value=False)
        if other.any():
            for digest, count in chunk.loc[other, ANSWERED].value_counts().items():
                self.other_versions[str(digest)] = self.other_versions.get(str(digest), 0) + int(count)
            chunk.loc[other, [SCORE, *self.probability_columns]] = np.nan

    def __call__(self, chunk: pd.DataFrame) -> None:
        if self.serving_digest and ANSWERED in chunk.columns:
            self._drop_other_versions(chunk)
        if self.model is not None and RESCORING not in self.failures and self._needs_scores(chunk):
            self._step(RESCORING, self._rescore, chunk)
        self._step(COUNTS, self.stats.add, chunk)
        for c in self.present:  # what the traffic itself carried (labels may fill such a column later)
            if c in chunk.columns:
                self.present[c] += int(chunk[c].notna().sum())
        sampled = chunk
        if self.labels is not None:
            joined = self._step(LABELS, self._join, chunk)
            sampled = joined if joined is not None else self._unjoined(chunk)
            # The model's inputs stay as the traffic sent them (attributions and the KS test read the sample); the
            # other columns (the sensitive attribute for bias) may be filled from the labels.
            keep = [c for c in self.inputs if c in chunk.columns and c in sampled.columns]
            if keep:
                sampled = sampled.assign(**{c: chunk[c].array for c in keep})
        self._step(SAMPLE, self.sample.add, sampled)

    def _step(self, name: str, func: Any, chunk: Optional[pd.DataFrame]) -> Any:
        if name in self.failures:
            return None
        try:
            return func(chunk)
        except Exception as exc:  # noqa: BLE001 - reported by the section that needs this step, the pass goes on
            self.failures[name] = exc
            return None

    def failure(self, name: str) -> None:
        """Raise the error step ``name`` stopped on, if it did (within a section, the report says why it failed)."""
        if name in self.failures:
            raise self.failures[name]

    def _unjoined(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """A chunk whose join failed, with the columns the joined chunks have (labels missing), so the sample's
        parts stay alike."""
        if self.no_labels is not None:
            return chunk.reindex(columns=self.no_labels.columns)
        return chunk.assign(**{quality.LABEL: np.nan})

    def _needs_scores(self, chunk: pd.DataFrame) -> bool:
        return bool(chunk[SCORE].isna().any() or (
            self.probability_columns and chunk[self.probability_columns].isna().to_numpy().any()))

    def _rescore(self, chunk: pd.DataFrame) -> None:
        """Fill the predictions the capture lacks with the model's: scores (every type) and, multiclass, the class
        probabilities of records whose response named only the class (the captured class is kept)."""
        from pipeline_code.training.model_io import predict

        missing = chunk[SCORE].isna()
        columns = self.probability_columns
        incomplete = chunk[columns].isna().any(axis=1) if columns else missing & False
        rows = missing | incomplete
        out = predict(self.model, chunk.loc[rows])
        counts = self.rescored or {"rescored_rows": 0}
        counts["rescored_rows"] += int(missing.sum())
        if self.problem_type == MULTICLASS:
            P = np.asarray(out, dtype=np.float64).reshape(int(rows.sum()), len(columns))
            predicted = P.argmax(axis=1).astype(np.float64) if len(P) else np.zeros(0)
            chunk.loc[rows, SCORE] = np.where(missing[rows].to_numpy(), predicted, chunk.loc[rows, SCORE].to_numpy(dtype=np.float64))
            chunk.loc[rows, columns] = P
            counts["rescored_probability_rows"] = counts.get("rescored_probability_rows", 0) + int(incomplete.sum())
        else:
            chunk.loc[missing, SCORE] = out
        self.rescored = counts

    def _join(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """The chunk with its labels (:func:`quality.join_labels`); keeps the labelled records and counts the days."""
        positions = self.label_ids.get_indexer(chunk[INFERENCE_ID].astype(str))
        # A left join only meets the labels of these records (each once: a record id can repeat, a retried request)
        matched = self.labels.iloc[np.unique(positions[positions >= 0])]
        joined = quality.join_labels(chunk, matched)
        labelled = joined[joined[quality.LABEL].notna()]
        self.no_labels = labelled.iloc[:0]
        if len(labelled):
            self.labelled.append(labelled)
        for day, count in quality.day_counts(joined).items():  # as the labelled records' days: labels may fill a time
            self.rows_per_day[day] = self.rows_per_day.get(day, 0) + count
        return joined

    def labelled_records(self) -> Optional[pd.DataFrame]:
        """Every record of the window that has a label, with it (None: no chunk was joined)."""
        if self.labelled:
            return concat(self.labelled)
        return self.no_labels

    def sample_frame(self) -> Optional[pd.DataFrame]:
        """The row sample (None: no record, or the sampling failed - :meth:`failure` says why)."""
        return self._step(SAMPLE, lambda _: self.sample.frame(), None)

    def rescoring_section(self) -> Dict[str, Any]:
        self.failure(RESCORING)
        out = {**(self.rescored or {"rescored_rows": 0}), "checks": []}
        if self.other_versions:
            out["other_versions"] = dict(sorted(self.other_versions.items()))
        return out

    def absent(self) -> List[str]:
        """The extra columns no record of the window carried."""
        return [c for c, n in self.present.items() if n == 0]

    def sample_section(self, records: int) -> Dict[str, Any]:
        """What the report says about the row sample of a window of ``records`` records."""
        if SAMPLE in self.failures:
            exc = self.failures[SAMPLE]
            return {"status": "error", "error": f"{type(exc).__name__}: {exc}", "of": records, "size": self.sample.size}
        return {"rows": min(records, self.sample.size), "of": records, "size": self.sample.size,
                "whole_window": records <= self.sample.size}
