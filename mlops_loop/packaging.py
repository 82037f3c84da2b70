"""Files the infrastructure builds at synth time, byte-for-byte reproducible (no CDK imports here).

Assets are addressed by content hash: a file that differs from one machine to the next (timestamps,
owners, compressor headers) would show up as a change in every review and redeploy for nothing.
"""

from __future__ import annotations

import functools
import gzip
import io
import shutil
import tarfile
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The multi-model endpoint's bootstrap (SAGEMAKER_PROGRAM): standard library only, read as a file.
MME_BOOTSTRAP = REPO_ROOT / "pipeline_code" / "serving" / "mme_entry.py"
# What a Lambda handler may import: the handlers and the shared core (standard library only; the
# function's own runtime supplies boto3).
HANDLER_PACKAGES = ("pipeline_code/handlers", "pipeline_code/core")


@functools.lru_cache(maxsize=None)
def handler_code_root() -> Path:
    """A directory holding ``pipeline_code`` with only :data:`HANDLER_PACKAGES` (``*.py`` files), the
    code root of every handler function: handlers import ``pipeline_code.handlers.<x>`` and
    ``pipeline_code.core.<x>`` as the tests and tools do, with no sibling-import fallback.

    Built once per process; the asset is addressed by content, so the temporary path does not matter.
    """
    root = Path(tempfile.mkdtemp(prefix="mlops-loop-handlers-"))
    (root / "pipeline_code").mkdir()
    shutil.copyfile(REPO_ROOT / "pipeline_code" / "__init__.py", root / "pipeline_code" / "__init__.py")
    for package in HANDLER_PACKAGES:
        target = root / package
        target.mkdir(parents=True)
        for source in sorted((REPO_ROOT / package).glob("*.py")):
            shutil.copyfile(source, target / source.name)
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
