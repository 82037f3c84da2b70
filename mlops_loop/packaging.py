"""Files the infrastructure builds at synth time, byte-for-byte reproducible (no CDK imports here).

Assets are addressed by content hash: a file that differs from one machine to the next (timestamps,
owners, compressor headers) would show up as a change in every review and redeploy for nothing.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The multi-model endpoint's bootstrap (SAGEMAKER_PROGRAM): standard library only, read as a file.
MME_BOOTSTRAP = REPO_ROOT / "pipeline_code" / "serving" / "mme_entry.py"


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
