"""Script-mode entry of a *single-model* serving container: real-time, serverless and async endpoints, batch transform.

Ship it at the *root* of the source tarball, next to the ``pipeline_code`` package::

    sourcedir.tar.gz
    ├── serve_entry.py          (a copy of pipeline_code/serving/serve_entry.py)
    └── pipeline_code/          (the package, with pipeline_code/serving/inference.py)

and set on the model container ``SAGEMAKER_PROGRAM=serve_entry.py`` and
``SAGEMAKER_SUBMIT_DIRECTORY=s3://.../sourcedir.tar.gz``. The container imports this module
by the name ``serve_entry``, calls :func:`model_fn` once per worker and :func:`transform_fn` per request.

Two toolkits call it, and they answer a refused request differently:

* the XGBoost image (every XGBoost model, and PyTorch networks scored with numpy) runs
  ``sagemaker_xgboost_container.serving:main``: a sagemaker-containers 2.8.6.post2 ``Transformer`` behind a
  Flask ``Worker``. That Transformer re-raises *any* exception of a user hook as its ``ClientError``, which
  Flask answers with a bare HTML 500: the ``status_code`` of the contract's errors is never read. So
  :func:`transform_fn` answers them itself there, with their status and one-line message;
* AWS's ``pytorch-inference-neuronx`` image (networks compiled for ml.inf2) runs sagemaker-pytorch-inference's
  TorchServe handler, whose ``sagemaker_inference`` Transformer answers a ``BaseInferenceToolkitError`` with its
  ``status_code``: there the error is raised on, as before.

(A multi-model endpoint runs ``mme_entry.py`` under ``sagemaker_inference`` instead, see that module.)

Why ``transform_fn`` and not the separate ``input_fn`` / ``predict_fn`` / ``output_fn``: an error response can
only be *returned*, by the one hook whose result goes to the caller unchanged. Both toolkits refuse a module
that defines ``transform_fn`` together with any of the other three, so this module defines only
``model_fn`` and ``transform_fn`` (the separate hooks stay in :mod:`pipeline_code.serving.inference`).

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
from typing import Any, Optional, Tuple, Union

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # the container already adds /opt/ml/code; local runs may not
    sys.path.insert(0, _HERE)

try:
    from pipeline_code.serving import inference as _inference
except ImportError as exc:  # pragma: no cover - exercised only with a broken tarball
    print(
        f"serve_entry: cannot import pipeline_code.serving.inference ({exc}); the source tarball must hold "
        f"serve_entry.py and the pipeline_code/ package at its root (sys.path: {sys.path[:4]})",
        file=sys.stderr,
        flush=True,
    )
    raise

from pipeline_code.core.media_types import REFUSAL as ERROR_MIMETYPE  # noqa: E402 - the drift monitor recognises a captured refusal by it

__all__ = ["model_fn", "transform_fn"]


def model_fn(model_dir: str) -> Any:
    """Load the model in ``model_dir`` (SageMaker: /opt/ml/model): :func:`pipeline_code.serving.inference.model_fn`."""
    return _inference.model_fn(model_dir)


def transform_fn(model: Any, request_body: Union[bytes, str], content_type: Optional[str],
                 accept: Optional[str]) -> Union[Tuple[bytes, str], Any]:
    """Answer one request: ``output_fn(predict_fn(input_fn(body, content_type), model), accept)`` of
    :mod:`pipeline_code.serving.inference` (:func:`~pipeline_code.serving.inference.invoke`), as the
    ``(body, content type)`` those hooks give; both toolkits send such a tuple as the 200 response.

    A refused request (an :class:`~pipeline_code.serving.inference.InvocationError`: 400, 406, 415, or 500 for
    a non-finite model output) is answered with its status and its message when a Flask app is answering this
    request (the XGBoost image's sagemaker-containers ``Worker``), and raised otherwise, for a toolkit that reads
    its ``status_code`` (``sagemaker_inference``). Any other exception propagates (the container's 500).
    """
    try:
        return _inference.invoke(model, request_body, content_type=content_type, accept=accept)
    except _inference.InvocationError as error:
        answer = _flask_answer(error)
        if answer is None:
            raise
        return answer


def _flask_answer(error: Any) -> Optional[Any]:
    """``error`` as the response of the Flask request being answered; None outside one.

    sagemaker-containers' ``Transformer.transform`` returns a non-tuple result to Flask unchanged (a tuple it
    would read as ``(body, mimetype)``), so the status travels in a ``flask.Response``. Flask is looked up, not
    imported: only a process already serving with it can be answering a Flask request (the Neuron image's
    TorchServe never imports it), and this file imports nothing beyond the standard library and pipeline_code.
    """
    flask = sys.modules.get("flask")
    if flask is None or not flask.has_request_context():
        return None
    return flask.Response(str(error), status=error.status_code, mimetype=ERROR_MIMETYPE)
