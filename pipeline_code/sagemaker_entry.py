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

Before anything of the zip runs, the zip is checked against the job code the pipeline was synthesized with when
``MLOPS_LOOP_CODE_SHA256`` is set (every SageMaker job of the app sets it): the digest of its files (each file's
path and sha256, as :func:`pipeline_code.core.integrity.files_digest` takes them) must be that value, else nothing
runs. This script is not in what it checks (it arrives as its own input, "entry"), and is itself checked first: a
job's ContainerEntrypoint is :func:`container_entrypoint`, a few lines given inline (in the job's definition, not in
the assets bucket) that run this script only if its bytes have the sha256 synth computed of it. Tuning trials cannot
set an entrypoint (script mode runs this script directly): there only the zip is checked (docs/training.md, Job code
verification).

Exit status: the module's; 2 when no zip is found, the module is unknown or not an mlops-loop module, or the zip
is not the expected job code.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import os
import runpy
import sys
import zipfile

DEFAULT_LIB_DIRS = "/opt/ml/processing/input/lib:/opt/ml/input/data/lib"
# The environment variable naming the module to run when no argument does (training jobs set it).
# Defined here, not in pipeline_code.core: this script runs before the code zip is importable.
ENTRY_MODULE_ENV = "MLOPS_LOOP_MODULE"
ALLOWED_PREFIX = "pipeline_code."
# The environment variable holding the digest of the job-code zip's files the job must run (set at synth in every
# SageMaker job of the app; unset: the zip is run unchecked, as in a local run).
CODE_DIGEST_ENV = "MLOPS_LOOP_CODE_SHA256"


# The inline check a job's command runs first (``python3 -c ENTRY_CHECK <entry script> <its sha256> <module> ...``):
# the entry script runs only if its bytes have the sha256 synth computed (else exit 1, naming both), with the rest of
# the arguments as its own. At most 256 characters: one ContainerEntrypoint item (a test holds it).
ENTRY_CHECK = ("import hashlib,runpy,sys;a=sys.argv;p,d=a[1:3];f=hashlib.sha256(open(p,'rb').read()).hexdigest();"
               "f==d or sys.exit(f'entry script {p} has sha256 {f}, the job expects {d}: see docs/training.md');"
               "sys.argv=[p,*a[3:]];runpy.run_path(p,run_name='__main__')")


def container_entrypoint(entry_path: str, entry_sha256: str) -> list:
    """A job's ContainerEntrypoint: :data:`ENTRY_CHECK`, then this script at ``entry_path`` if it has ``entry_sha256``.
    The job's ContainerArguments (the module and its arguments) follow."""
    return ["python3", "-c", ENTRY_CHECK, entry_path, entry_sha256]


def _fail(message: str) -> "SystemExit":
    print(f"sagemaker_entry: error: {message}", file=sys.stderr)
    return SystemExit(2)


def find_zips(lib_dirs: str) -> list:
    """Every ``*.zip`` in the listed directories, in directory order then name order."""
    found = []
    for directory in (d for d in lib_dirs.split(os.pathsep) if d):
        found.extend(sorted(glob.glob(os.path.join(directory, "*.zip"))))
    return found


def files_digest(files: dict) -> str:
    """Hex sha256 of ``{path: hex sha256 of its bytes}`` as canonical JSON (keys sorted, no spaces): the same
    digest as ``pipeline_code.core.integrity.files_digest``, repeated here because this script runs before the zip
    is importable (a test holds the two equal)."""
    return hashlib.sha256(json.dumps(dict(files), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def zip_digest(path: str) -> tuple:
    """(:func:`files_digest` of the zip's files by their names in it, how many files): directory entries aside."""
    found = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.is_dir():
                digest = hashlib.sha256()
                with archive.open(info) as member:
                    for block in iter(lambda: member.read(1 << 20), b""):
                        digest.update(block)
                found[info.filename] = digest.hexdigest()
    return files_digest(found), len(found)


def verify_code(zips: list, expected: str) -> str:
    """Refuse (SystemExit 2, saying what differs and what to do) unless ``zips`` is one zip whose files digest to
    ``expected``; returns the line saying what was verified."""
    fix = ("Nothing ran. Delete that object from the CDK assets bucket (its key is the zip's name) and run cdk deploy "
           "again, which uploads the synthesized zip when its object is missing; CloudTrail's S3 data events tell who "
           "wrote it (docs/training.md, Job code verification).")
    if len(zips) != 1:
        raise _fail(f"expected the one job-code zip, found {len(zips)}: {zips} (the job's 'lib' input must be the "
                    f"pipeline_code zip alone)")
    try:
        found, count = zip_digest(zips[0])
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail(f"the job code {zips[0]} is not a readable zip ({exc}); expected the files digest {expected} "
                    f"({CODE_DIGEST_ENV}). {fix}")
    if found != expected:
        raise _fail(f"the job code {zips[0]} is not the code this pipeline was deployed with: its {count} files digest "
                    f"to {found}, the job expects {expected} ({CODE_DIGEST_ENV}, set at synth). The zip was changed "
                    f"or replaced after cdk deploy uploaded it. {fix}")
    return f"job code verified: files digest {found} ({count} files in {os.path.basename(zips[0])})"


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
    expected = os.environ.get(CODE_DIGEST_ENV, "")
    if expected:
        verified = verify_code(zips, expected)
    else:
        verified = f"job code not verified ({CODE_DIGEST_ENV} is not set)"
    print(f"sagemaker_entry: {verified}", flush=True)
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
