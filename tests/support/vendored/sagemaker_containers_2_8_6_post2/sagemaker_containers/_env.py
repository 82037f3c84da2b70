# STAND-IN written for mlops-loop's tests, NOT the sagemaker-containers 2.8.6.post2 file (see ../VENDORED.md).
#
# The original _env.py (Apache-2.0, Amazon.com, Inc.) also describes training: at import it sets
# SAGEMAKER_BASE_DIR in os.environ when /opt/ml is absent, and every Env runs nvidia-smi. Neither belongs in a
# test process. This keeps, with the original's code and defaults, only what _transformer.py and _worker.py read:
# ``model_dir`` and ServingEnv's ``module_name``, ``log_level`` and ``default_accept``.
"""Serving environment: the subset of sagemaker_containers._env that the Transformer and the Worker read."""
from __future__ import absolute_import

import logging
import os

from sagemaker_containers import _content_types, _params

SAGEMAKER_BASE_PATH = os.path.join("/opt", "ml")  # type: str
BASE_PATH_ENV = "SAGEMAKER_BASE_DIR"  # type: str

base_dir = os.environ.get(BASE_PATH_ENV, SAGEMAKER_BASE_PATH)  # type: str

model_dir = os.path.join(base_dir, "model")  # type: str
"""str: the directory the model is read from, e.g., /opt/ml/model/ (Transformer.initialize passes it to model_fn)"""


class ServingEnv(object):
    """The original's ServingEnv properties the serving path reads, from the same environment variables."""

    def __init__(self):
        self._module_name = os.environ.get(_params.USER_PROGRAM_ENV, None)
        self._log_level = int(os.environ.get(_params.LOG_LEVEL_ENV, logging.INFO))
        self._default_accept = os.environ.get(_params.DEFAULT_INVOCATIONS_ACCEPT_ENV, _content_types.JSON)

    @property
    def module_name(self):  # type: () -> str
        """SAGEMAKER_PROGRAM without its ``.py`` (the original's _Env._parse_module_name)."""
        program_param = self._module_name
        if program_param and program_param.endswith(".py"):
            return program_param[:-3]
        return program_param

    @property
    def log_level(self):  # type: () -> int
        return self._log_level

    @property
    def default_accept(self):  # type: () -> str
        """SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, else application/json: the Accept of a request without one (or */*)."""
        return self._default_accept
