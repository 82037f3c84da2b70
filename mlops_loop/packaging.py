"""Files the infrastructure builds at synth time, byte-for-byte reproducible (no CDK imports here).

Assets are addressed by content hash: a file that differs from one machine to the next (timestamps,
owners, compressor headers) would show up as a change in every review and redeploy for nothing.

What synth generates for the CDK to stage (JSON documents, tarballs, the handlers' code root) is written
under one directory per process, which is removed when the process exits: the CDK copies each asset into
the cloud assembly as it is defined, so nothing reads these files afterwards (unless the app stages no
assets: :func:`keep_staged_files`). Each synth used to leave some thirty directories behind in the
system's temporary directory.
"""

from __future__ import annotations

import atexit
import functools
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[1]
# The multi-model endpoint's bootstrap (SAGEMAKER_PROGRAM): standard library only, read as a file.
MME_BOOTSTRAP = REPO_ROOT / "pipeline_code" / "serving" / "mme_entry.py"
# What a Lambda handler may import: the handlers (with the deploy handler's parts) and the shared core (standard library
# only; the function's own runtime supplies boto3). Each package's own *.py files ship, not its subpackages: a new
# subpackage of the handlers is listed here.
HANDLER_PACKAGES = ("pipeline_code/handlers", "pipeline_code/handlers/deploy", "pipeline_code/core")


class _Staging:
    """This process's directory of generated asset sources: made on first use, removed at exit unless kept."""

    def __init__(self) -> None:
        self._path: Optional[Path] = None
        self.keep = False

    def path(self) -> Path:
        if self._path is None:
            self._path = Path(tempfile.mkdtemp(prefix="mlops-loop-staging-"))
            atexit.register(self._remove)
        return self._path

    def _remove(self) -> None:
        if not self.keep and self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)


_STAGING = _Staging()


def staged_file(file_name: str, data: bytes | str) -> Path:
    """A file named ``file_name`` holding ``data`` (text as UTF-8), for an asset to stage.

    Written once per process and content: equal data under an equal name is one file, however many
    environments or tests ask for it. Removed with the process's staging directory at exit.
    """
    payload = data.encode() if isinstance(data, str) else data
    target = _STAGING.path() / hashlib.sha256(payload).hexdigest()[:32] / file_name
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        # Whole or not at all: a write cut short must not be taken for the file next time.
        partial = target.with_name(f"{file_name}.partial")
        partial.write_bytes(payload)
        os.replace(partial, target)
    return target


def keep_staged_files() -> None:
    """Leave this process's generated asset sources in place at exit.

    For an app that stages no assets (context ``aws:cdk:disable-asset-staging``, as ``cdk synth
    --no-staging`` sets for the SAM CLI): its assembly points at these files instead of copies.
    ``app_builder.new_app`` calls it for such an app.
    """
    _STAGING.keep = True


@functools.lru_cache(maxsize=None)
def handler_code_root(files: tuple[tuple[str, str], ...] = ()) -> Path:
    """A directory holding ``pipeline_code`` with only :data:`HANDLER_PACKAGES` (``*.py`` files), the
    code root of every handler function: handlers import ``pipeline_code.handlers.<x>`` and
    ``pipeline_code.core.<x>`` as the tests and tools do, with no sibling-import fallback.

    ``files``: (name, text) of data files one function reads beside that code, at the root (the score-by-id front's
    rules when they outgrow its environment); by default none, the one code root every handler shares.

    Built once per process (and ``files``) in the staging directory; the asset is addressed by content, so the path
    does not matter.
    """
    name = "handler-code"
    if files:
        name += "-" + hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]
    root = _STAGING.path() / name
    shutil.rmtree(root, ignore_errors=True)  # only there if the cache was cleared: built afresh
    (root / "pipeline_code").mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "pipeline_code" / "__init__.py", root / "pipeline_code" / "__init__.py")
    for package in HANDLER_PACKAGES:
        target = root / package
        target.mkdir(parents=True)
        for source in sorted((REPO_ROOT / package).glob("*.py")):
            shutil.copyfile(source, target / source.name)
    for file_name, text in files:
        (root / file_name).write_text(text, encoding="utf-8")
    return root


def single_file_tarball(source: Path, data: bytes | None = None) -> bytes:
    """``source`` (or ``data`` under its name) alone at the root of a gzip tarball, with fixed times,
    owners and mode, so equal contents give equal bytes on every machine and Python version."""
    content = source.read_bytes() if data is None else data
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo(source.name)
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        archive.addfile(info, io.BytesIO(content))
    # GzipFile, not gzip.compress: the latter (3.11+) takes the header's OS byte from zlib (3 on
    # Linux, other values elsewhere), which would change the hash from one machine to the next.
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as compressed:
        compressed.write(raw.getvalue())
    return out.getvalue()
