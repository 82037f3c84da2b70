"""Script-mode entry of the SageMaker XGBoost serving container (standard library only here).

Ship it at the *root* of the source tarball, next to the ``pipeline_code`` package::

    sourcedir.tar.gz
    ├── serve_entry.py          (a copy of pipeline_code/serving/serve_entry.py)
    └── pipeline_code/          (the package, with pipeline_code/serving/inference.py)

and set on the model container ``SAGEMAKER_PROGRAM=serve_entry.py`` and
``SAGEMAKER_SUBMIT_DIRECTORY=s3://.../sourcedir.tar.gz``. The container imports this module
by the name ``serve_entry`` and calls the hooks re-exported below.

Why a separate root file: the container derives the module name from ``SAGEMAKER_PROGRAM``
by dropping ``.py``, so a nested path (``pipeline_code/serving/inference.py``) cannot be
imported. And why the import must not fail quietly: the XGBoost container's transformer
swallows an import error of the user module and falls back to its defaults, whose
``model_fn`` only says "Please provide a model_fn implementation" - so a missing
``pipeline_code`` is reported here, loudly, on stderr before re-raising.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # the container already adds /opt/ml/code; local runs may not
    sys.path.insert(0, _HERE)

try:
    from pipeline_code.serving.inference import input_fn, model_fn, output_fn, predict_fn
except ImportError as exc:  # pragma: no cover - exercised only with a broken tarball
    print(
        f"serve_entry: cannot import pipeline_code.serving.inference ({exc}); the source tarball must hold "
        f"serve_entry.py and the pipeline_code/ package at its root (sys.path: {sys.path[:4]})",
        file=sys.stderr,
        flush=True,
    )
    raise

__all__ = ["model_fn", "input_fn", "predict_fn", "output_fn"]
