"""Put the serving code into the model artefact, so every model version carries the code that serves it.

The training job calls :func:`write_serving_code` on its model directory; SageMaker tars that
directory into ``model.tar.gz``, and the serving container (``SAGEMAKER_SUBMIT_DIRECTORY=
/opt/ml/model/code``, ``SAGEMAKER_PROGRAM=serve_entry.py``) imports it from there. Nothing is
downloaded when an endpoint starts, so the model can run with network isolation, and a rollback to
an earlier version also rolls back its serving code.
"""

from __future__ import annotations

import pkgutil
import shutil
import zipfile
import zipimport
from pathlib import Path

import pipeline_code

CODE_DIR = "code"
ENTRY = "serve_entry.py"
_SKIP = ("__pycache__", ".pyc")


def write_serving_code(model_dir: str) -> Path:
    """Write ``<model_dir>/code/serve_entry.py`` and ``<model_dir>/code/pipeline_code/``; return the code dir.

    Works whether ``pipeline_code`` was imported from a directory (local runs) or from the zip the
    infrastructure ships to SageMaker jobs.
    """
    code = Path(model_dir) / CODE_DIR
    target = code / "pipeline_code"
    if target.exists():
        shutil.rmtree(target)
    code.mkdir(parents=True, exist_ok=True)
    loader = pipeline_code.__spec__.loader
    if isinstance(loader, zipimport.zipimporter):
        with zipfile.ZipFile(loader.archive) as archive:
            for name in archive.namelist():
                if name.startswith("pipeline_code/") and not name.endswith("/") and not any(s in name for s in _SKIP):
                    destination = code / name
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    destination.write_bytes(archive.read(name))
    else:
        source = Path(pipeline_code.__file__).resolve().parent
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    entry = pkgutil.get_data("pipeline_code.serving", ENTRY)
    if entry is None:  # pragma: no cover - the package always ships it
        raise FileNotFoundError(f"pipeline_code/serving/{ENTRY} is missing from the package")
    (code / ENTRY).write_bytes(entry)
    return code
