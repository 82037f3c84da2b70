"""The parity sample of a compiled model: what the CPU model answers for a fixed request, kept in its artefact.

For a model compiled for Inferentia2 (its archive holds ``compiled.json``, see
:mod:`pipeline_code.core.compiled`) the evaluation job calls :func:`attach_parity` before sealing: the
first :data:`~pipeline_code.core.compiled.PARITY_RECORDS` records of the frozen test set (in the stored
order, so every evaluation of the same test set picks the same ones) become one ``application/json``
request of precomputed features, and the CPU model answers it through the serving code itself
(:func:`pipeline_code.serving.inference.invoke`). Request and answers go into the archive as ``parity.json``
and into the evaluation report, so the sealed artefact carries what the rollout's parity check will
send to the Inferentia2 endpoint and what it must get back.
"""

from __future__ import annotations

import json
import os
import tarfile
from typing import Any, Callable, Dict, Optional, Tuple

import pandas as pd

from pipeline_code.core.compiled import (
    COMPILED_FILE,
    DEFAULT_PARITY_TOLERANCE,
    PARITY_FILE,
    PARITY_FORMAT,
    PARITY_INFERENCE_ID,
    PARITY_RECORDS,
)
from pipeline_code.core.integrity import MODEL_ARCHIVE
from pipeline_code.training import data_io
from pipeline_code.training.data_io import InputError
from pipeline_code.training.spec import ModelSpec


def parity_request(test: pd.DataFrame, spec: ModelSpec, records: int = PARITY_RECORDS) -> Dict[str, Any]:
    """``{"instances": [...]}``: the first ``records`` test rows as precomputed-feature records (missing = null),
    each with the inference id ``mlops-loop-parity-<i>``."""
    frame = test[list(spec.features)].head(records).astype(object)
    frame = frame.where(frame.notna(), None)
    rows = data_io.json_safe(frame.to_dict("records"))
    return {"instances": [dict(row, inference_id=f"{PARITY_INFERENCE_ID}-{i}") for i, row in enumerate(rows)]}


def _compiled(model_dir: str) -> bool:
    """Whether the model (a directory, or its archive: only the member names are read) holds ``compiled.json``."""
    archive = data_io.model_archive(model_dir)
    if os.path.isfile(archive):
        with tarfile.open(archive, "r:*") as tar:
            return any(os.path.normpath(name) == COMPILED_FILE for name in tar.getnames())
    return os.path.isfile(os.path.join(model_dir, COMPILED_FILE))


def attach_parity(model_dir: str, test: pd.DataFrame, spec: ModelSpec, workdir: str, *,
                  log: Callable[[str], None] = print) -> Optional[Tuple[str, Dict[str, Any]]]:
    """For a compiled model in ``model_dir`` (its archive, or the directory holding it): a directory under
    ``workdir`` holding the same archive plus ``parity.json``, and the report's ``parity`` block. None for a model
    that was not compiled (nothing to attach).

    Raises:
        InputError: the CPU model cannot answer the parity request (it would not serve either).
    """
    from pipeline_code.serving import inference

    if not _compiled(model_dir):
        return None
    content = os.path.join(workdir, "content")
    data_io.unpack_model(model_dir, content)
    request = parity_request(test, spec)
    try:
        # The CPU model, as a CPU endpoint serves it (this job never sets the compiled-serving variable).
        served = inference.load_serving_model(content)
        body, _ = inference.invoke(served, json.dumps(request), content_type=inference.JSON)
    except inference.InvocationError as exc:
        raise InputError(f"the CPU model cannot answer the parity request of {len(request['instances'])} test records "
                         f"(it would not serve them either): {exc}") from None
    expected = json.loads(body)["predictions"]
    if len(expected) != len(request["instances"]):
        raise InputError(f"the CPU model answered {len(expected)} of {len(request['instances'])} parity records")
    compiled = data_io.read_json(os.path.join(content, COMPILED_FILE), what="compiled model")
    parity = {
        "format": PARITY_FORMAT,
        "request": request,
        "expected": expected,
        "tolerance": DEFAULT_PARITY_TOLERANCE,
        "compiler": compiled.get("compiler"),
        "test_rows": len(request["instances"]),
    }
    data_io.write_json(os.path.join(content, PARITY_FILE), parity)
    sealed_dir = os.path.join(workdir, "archive")
    data_io.write_archive(content, os.path.join(sealed_dir, MODEL_ARCHIVE))
    log(f"parity sample: {len(expected)} test records and the CPU model's answers added as {PARITY_FILE}")
    return sealed_dir, {key: parity[key] for key in ("expected", "tolerance", "compiler", "test_rows")}
