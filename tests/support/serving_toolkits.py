"""The two toolkits that run ``serve_entry.py``, in-process, so tests see what an endpoint's caller sees.

**XGBoost image** (pipeline_code/core/images.py; XGBoost models, networks scored with numpy). In the image,
``sagemaker_xgboost_container.serving:main`` imports the module ``SAGEMAKER_PROGRAM`` names, builds a
sagemaker-containers ``Transformer`` from its hooks (``_user_module_transformer``), loads the model once
(``Transformer.initialize``: ``model_fn(/opt/ml/model)``) and serves ``Transformer.transform`` from a Flask
``Worker`` (gunicorn in front). :func:`xgboost_single_model` builds the same app from the *real* Transformer and
Worker of sagemaker-containers 2.8.6.post2, the version the image pins (vendored, see
``tests/support/vendored/sagemaker_containers_2_8_6_post2/VENDORED.md``), and yields its test client: what it
answers - status, body, Content-Type - is what an endpoint's caller gets (InvokeEndpoint's ``ModelError`` carries a
non-2xx as ``OriginalStatusCode`` and the body as ``OriginalMessage``).

**Neuron inference image** (networks compiled for ml.inf2): sagemaker-pytorch-inference's TorchServe handler calls
``sagemaker_inference.transformer.Transformer.transform(data, context)``; :class:`TorchServeContext` is the request
context it reads and sets (the status and phrase of an error), for the ``sagemaker_inference`` the venv installs.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Iterator
from unittest import mock

VENDORED = Path(__file__).resolve().parent / "vendored" / "sagemaker_containers_2_8_6_post2"
PACKAGE = "sagemaker_containers"


class UserError(Exception):
    """Stand-in for ``sagemaker_algorithm_toolkit.exceptions.UserError``, which the image raises for a bad module."""


def _user_module_transformer(transformer: ModuleType, user_module: ModuleType):
    """``sagemaker_xgboost_container.serving._user_module_transformer`` (aws/sagemaker-xgboost-container at
    cb8df91cd44c7b01c53ccf321fd3fdf3eb78adae, unchanged since f2dc574), with the image's own defaults for hooks the
    module leaves out replaced by None: our modules define every hook they use."""
    model_fn = getattr(user_module, "model_fn", transformer.default_model_fn)
    input_fn = getattr(user_module, "input_fn", None)
    predict_fn = getattr(user_module, "predict_fn", None)
    output_fn = getattr(user_module, "output_fn", None)
    transform_fn = getattr(user_module, "transform_fn", None)

    if transform_fn and (input_fn or predict_fn or output_fn):
        raise UserError("Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn")

    if transform_fn is not None:
        return transformer.Transformer(model_fn=model_fn, transform_fn=transform_fn)
    return transformer.Transformer(model_fn=model_fn, input_fn=input_fn, predict_fn=predict_fn, output_fn=output_fn)


@contextmanager
def _isolated(program: str) -> Iterator[None]:
    """Leave sys.path, os.environ and the root logger as they were (the Worker configures logging, the user module
    puts its directory on sys.path), and forget the library and the user module: the next app imports them afresh.
    Other modules stay imported (a second copy of pipeline_code would raise exception classes the tests do not
    catch)."""
    path = list(sys.path)
    forget = {PACKAGE, Path(program).stem}

    def drop() -> None:
        for name in [m for m in sys.modules if m.split(".")[0] in forget]:
            del sys.modules[name]

    drop()  # a user module of the same name imported earlier, from elsewhere
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with mock.patch.dict(os.environ):
            yield
    finally:
        sys.path[:] = path
        drop()
        root.handlers[:] = handlers
        root.setLevel(level)


@contextmanager
def xgboost_single_model(code_dir: str, model_dir: str, program: str = "serve_entry.py"):
    """The test client of the Flask app the XGBoost image serves ``code_dir/program`` with, the model in
    ``model_dir`` loaded as the container loads /opt/ml/model.

    Raises:
        UserError: the module defines ``transform_fn`` and one of the separate hooks (the image refuses it).
    """
    with _isolated(program):
        os.environ["SAGEMAKER_PROGRAM"] = program
        os.environ["SAGEMAKER_SUBMIT_DIRECTORY"] = code_dir
        sys.path[:0] = [str(VENDORED), code_dir]  # the image has the library installed and the code dir on sys.path
        transformer = importlib.import_module(f"{PACKAGE}._transformer")
        worker = importlib.import_module(f"{PACKAGE}._worker")
        env = importlib.import_module(f"{PACKAGE}._env")
        serving_env = env.ServingEnv()
        user_module = importlib.import_module(serving_env.module_name)
        user_module_transformer = _user_module_transformer(transformer, user_module)
        with mock.patch.object(env, "model_dir", model_dir):  # SageMaker mounts the model at /opt/ml/model
            user_module_transformer.initialize()
        app = worker.Worker(transform_fn=user_module_transformer.transform, module_name=serving_env.module_name)
        yield app.test_client()


class TorchServeContext:
    """The model server's request context as ``sagemaker_inference``'s Transformer uses it: the model directory,
    the request headers, and what it sets on the response (status and phrase, content type)."""

    def __init__(self, model_dir: str, headers: dict) -> None:
        self.system_properties = {"model_dir": model_dir}
        self.request_processor = [SimpleNamespace(get_request_properties=lambda: headers)]
        self.model_name = Path(model_dir).name
        self.status = None
        self.content_types: dict = {}

    def set_response_content_type(self, idx, value):
        self.content_types[idx] = value

    def set_response_status(self, code, phrase, idx=0):
        self.status = (code, phrase)
