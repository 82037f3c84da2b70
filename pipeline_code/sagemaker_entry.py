"""Launcher for mlops-loop job modules inside stock SageMaker containers (standard library only).

Usage::

    python3 sagemaker_entry.py <module> [args...]
    python3 sagemaker_entry.py pipeline_code.training.prepare --model-spec '{...}' --output-dir ...

The infrastructure ships the ``pipeline_code`` package as a zip whose root contains
``pipeline_code/``. This script puts every ``*.zip`` found in the directories listed in
``MLOPS_LOOP_LIB_DIRS`` (``:``-separated; default
``/opt/ml/processing/input/lib:/opt/ml/input/data/lib`` - a processing input named
``lib`` or a training channel named ``lib``) at the front of ``sys.path`` and runs
``<module>`` as ``__main__`` (like ``python -m``) with the remaining arguments.

In SageMaker *training* script mode the container passes only ``--hyperparameter value``
pairs to the entry point; there the module comes from the environment variable
``MLOPS_LOOP_MODULE`` (set it in the training job's ``Environment``) when the first
argument is an option.

Exit status: the module's; 2 when no zip is found or the module is unknown or not an
mlops-loop module.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import runpy
import sys

DEFAULT_LIB_DIRS = "/opt/ml/processing/input/lib:/opt/ml/input/data/lib"
# The environment variable naming the module to run when no argument does (training jobs set it).
# Defined here, not in pipeline_code.core: this script runs before the code zip is importable.
ENTRY_MODULE_ENV = "MLOPS_LOOP_MODULE"
ALLOWED_PREFIX = "pipeline_code."


def _fail(message: str) -> "SystemExit":
    print(f"sagemaker_entry: error: {message}", file=sys.stderr)
    return SystemExit(2)


def find_zips(lib_dirs: str) -> list:
    """Every ``*.zip`` in the listed directories, in directory order then name order."""
    found = []
    for directory in (d for d in lib_dirs.split(os.pathsep) if d):
        found.extend(sorted(glob.glob(os.path.join(directory, "*.zip"))))
    return found


def main(argv: list) -> None:
    args = list(argv)
    if args and not args[0].startswith("-"):
        module = args.pop(0)
    else:
        module = os.environ.get(ENTRY_MODULE_ENV, "")
        if not module:
            raise _fail(f"usage: sagemaker_entry.py <module> [args...] (or set {ENTRY_MODULE_ENV})")
    if not module.startswith(ALLOWED_PREFIX):
        raise _fail(f"module {module!r} is not an mlops-loop module (expected {ALLOWED_PREFIX}<...>)")

    lib_dirs = os.environ.get("MLOPS_LOOP_LIB_DIRS", DEFAULT_LIB_DIRS)
    zips = find_zips(lib_dirs)
    if not zips:
        raise _fail(f"no *.zip found in MLOPS_LOOP_LIB_DIRS={lib_dirs!r} (mount the pipeline_code zip as input 'lib')")
    sys.path[:0] = zips
    os.environ["PYTHONPATH"] = os.pathsep.join(zips + [p for p in [os.environ.get("PYTHONPATH")] if p])

    try:
        spec = importlib.util.find_spec(module)
    except ImportError:  # a parent package is missing
        spec = None
    if spec is None:
        raise _fail(f"unknown module {module!r}: not found in {zips}")
    print(f"sagemaker_entry: running {module} from {', '.join(zips)}", flush=True)
    sys.argv = [module] + args
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
