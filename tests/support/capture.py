"""Reading captured traffic back as the drift monitor does, for the serving tests."""

from __future__ import annotations

from pathlib import Path

from pipeline_code.monitoring.capture import read_capture


def decode_capture(trained, capture_dir: Path):
    """The captured requests under ``capture_dir`` as the monitor reads them for ``trained``'s model."""
    spec = trained.spec
    categorical = [f for f in spec.frame_features if spec.is_categorical(f)]
    extra = [f for f in spec.frame_features if f not in spec.features]
    return read_capture(str(capture_dir), spec.features, categorical=categorical, extra_columns=extra,
                        dataset=spec.catalog_dataset, problem_type=spec.problem_type, classes=spec.classes)
