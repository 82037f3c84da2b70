"""Script-mode entry of a *multi-model* endpoint (MME) on the stock SageMaker XGBoost container.

Standard library only, and importable alone: the infrastructure ships this file by itself at the
root of the endpoint's source tarball (built by ``mlops_loop.packaging``) and sets on the
container ``SAGEMAKER_PROGRAM=mme_entry.py`` and ``SAGEMAKER_SUBMIT_DIRECTORY=s3://.../bootstrap.tar.gz``.

How the container runs it: at start it pip-installs this module; Multi Model Server then starts one
worker *process per loaded model*, which imports ``mme_entry`` and calls ``model_fn(model_dir)``
with that model's extracted ``model.tar.gz`` (``/opt/ml/models/<hash>/model``), then
``input_fn`` / ``predict_fn`` / ``output_fn`` per request.

Why a bootstrap rather than the serving code itself: this one module is shared by every model of
the endpoint and cannot be versioned per model, while the code that reads requests and encodes
features must match the model it serves. Every model artefact carries its own serving code
(``code/pipeline_code/``, written by :func:`pipeline_code.serving.package.write_serving_code`), so
:func:`model_fn` imports ``pipeline_code.serving.inference`` from ``<model_dir>/code`` and delegates
to it. A model version thus serves with the code it was trained with, on a single-model endpoint as
on an MME, and rolling a model back rolls its serving code back too.

Since a worker process serves exactly one model, one ``pipeline_code`` per process is enough; a
``pipeline_code`` already imported from elsewhere means a broken set-up and fails loudly. And why
loudly on stderr: the container's transformer turns an exception in ``model_fn`` into a terse load
failure, so the log line is what tells an operator which artefact lacks what.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any, Optional

CODE_DIR = "code"
PACKAGE = "pipeline_code"
INFERENCE_MODULE = "pipeline_code.serving.inference"

_INFERENCE: Optional[ModuleType] = None

__all__ = ["model_fn", "input_fn", "predict_fn", "output_fn"]


def _complain(model_dir: str, problem: str) -> None:
    print(
        f"mme_entry: cannot load the model in {model_dir!r}: {problem}. The model artefact (model.tar.gz) must "
        f"hold model.json, feature_metadata.json and {CODE_DIR}/{PACKAGE}/ (the serving code, written by "
        f"pipeline_code.serving.package.write_serving_code at training time)",
        file=sys.stderr,
        flush=True,
    )


def _inside(path: Optional[str], directory: str) -> bool:
    if not path:
        return False
    real, root = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([real, root]) == root


def _import_inference(model_dir: str) -> ModuleType:
    code = os.path.join(os.path.abspath(model_dir), CODE_DIR)
    if not os.path.isdir(os.path.join(code, PACKAGE)):
        _complain(model_dir, f"no serving code directory {os.path.join(code, PACKAGE)!r}")
        raise FileNotFoundError(f"mme_entry: {os.path.join(code, PACKAGE)!r} does not exist (model_dir {model_dir!r})")
    loaded = sys.modules.get(PACKAGE)
    if loaded is not None and not _inside(getattr(loaded, "__file__", None), code):
        message = (
            f"mme_entry: a {PACKAGE} from {getattr(loaded, '__file__', None)!r} is already imported in this process, "
            f"so the serving code of {model_dir!r} (in {code!r}) cannot be; each worker process must serve exactly "
            f"one model and {PACKAGE} must not be installed in the container"
        )
        print(message, file=sys.stderr, flush=True)
        raise RuntimeError(message)
    if not sys.path or sys.path[0] != code:
        sys.path.insert(0, code)
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(INFERENCE_MODULE)
    except Exception as exc:
        _complain(model_dir, f"importing {INFERENCE_MODULE} from {code!r} failed ({type(exc).__name__}: {exc})")
        raise
    # A pipeline_code installed in site-packages as a namespace or shadowed path would import
    # without error from the wrong place; refuse it rather than serve with other code.
    if not _inside(getattr(module, "__file__", None), code):
        message = f"mme_entry: {INFERENCE_MODULE} was imported from {module.__file__!r}, not from {code!r}"
        _complain(model_dir, message)
        raise RuntimeError(message)
    return module


def model_fn(model_dir: str) -> Any:
    """Import the serving code shipped in ``<model_dir>/code`` and load the model with its ``model_fn``.

    Raises:
        FileNotFoundError: ``<model_dir>/code/pipeline_code`` is missing.
        RuntimeError: another ``pipeline_code`` is already imported in this process.
        Exception: whatever importing the serving code or loading the model raises.
    """
    global _INFERENCE
    module = _import_inference(model_dir)
    model = module.model_fn(model_dir)
    _INFERENCE = module
    return model


def _loaded() -> ModuleType:
    if _INFERENCE is None:
        raise RuntimeError("mme_entry: model_fn(model_dir) must load a model before requests are served")
    return _INFERENCE


def input_fn(request_body: Any, request_content_type: Optional[str]) -> Any:
    return _loaded().input_fn(request_body, request_content_type)


def predict_fn(input_data: Any, model: Any) -> Any:
    return _loaded().predict_fn(input_data, model)


def output_fn(prediction: Any, accept: Optional[str]) -> Any:
    return _loaded().output_fn(prediction, accept)
