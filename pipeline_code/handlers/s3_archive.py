"""Read one small member of a gzipped tar archive in S3 without downloading the rest: the handlers' way into
model artefacts (the deploy handler's smoke request reads ``feature_metadata.json``, the rollout parity check
``parity.json``).

Runs on the stock Lambda Python runtime: standard library and boto3 only.
"""

from __future__ import annotations

import posixpath
import tarfile
from typing import Any, Optional

from botocore.exceptions import BotoCoreError, ClientError

# Compressed bytes read from S3 (and decompressed bytes walked) looking for a member.
DEFAULT_READ_CAP = 512 * 1024 * 1024
# How much of an error message is kept.
ERROR_PREVIEW = 300


class ArchiveReadError(RuntimeError):
    """The archive could not be read, or the member is not in it (or too large)."""


def read_archive_member(s3: Any, bucket: str, key: str, name: str, *, max_bytes: int = DEFAULT_READ_CAP,
                        max_member_bytes: int, what: str) -> bytes:
    """The bytes of ``name`` (at the archive's root, ``./`` or not) in the gzipped tar ``s3://bucket/key``.

    The archive is streamed (``tarfile`` mode ``r|gz``) until the member is found; reading stops there, and
    after ``max_bytes`` (compressed or decompressed) without it. A member larger than ``max_member_bytes`` is
    refused as not being ``what`` it should be.

    Raises:
        ArchiveReadError: unreadable object, not a gzipped tar, no such member within ``max_bytes``, or one too large.
    """
    where = f"s3://{bucket}/{key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except (ClientError, BotoCoreError) as error:
        raise ArchiveReadError(f"cannot read {where}: {cause(error)}") from error
    reader = _CappedReader(body, max_bytes)
    limit = f"{name} not found in the first {max_bytes // (1024 * 1024)} MiB of {where}"
    raw: Optional[bytes] = None
    try:
        with tarfile.open(fileobj=reader, mode="r|gz") as archive:
            for member in archive:
                if member.offset > max_bytes:
                    raise ArchiveReadError(limit)
                if member.isfile() and posixpath.normpath(member.name) == name:
                    if member.size > max_member_bytes:
                        raise ArchiveReadError(f"{name} in {where} is {member.size} bytes: not {what}")
                    handle = archive.extractfile(member)
                    raw = handle.read() if handle is not None else None
                    break
    except _CapReached:
        raise ArchiveReadError(limit) from None
    except (tarfile.TarError, EOFError, OSError, ClientError, BotoCoreError) as error:
        raise ArchiveReadError(f"cannot read {where} as a gzipped tar archive: {cause(error)}") from error
    finally:
        # Stop the download: the rest of the archive is not needed.
        close = getattr(body, "close", None)
        if close is not None:
            close()
    if raw is None:
        raise ArchiveReadError(f"{name} not found in {where}")
    return raw


class _CapReached(Exception):
    pass


class _CappedReader:
    """A read-only file object over ``body`` that raises :class:`_CapReached` past ``cap`` bytes."""

    def __init__(self, body: Any, cap: int) -> None:
        self.body, self.cap, self.count = body, cap, 0

    def read(self, size: int = -1) -> bytes:
        if self.count >= self.cap:
            raise _CapReached()
        want = self.cap - self.count if size is None or size < 0 else min(size, self.cap - self.count)
        data = self.body.read(want)
        self.count += len(data)
        return data


def cause(error: BaseException) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        original = error.response.get("OriginalMessage")
        text = f"{details.get('Code', 'error')}: {details.get('Message') or error}"
        if original:
            text += f" (model answered {error.response.get('OriginalStatusCode', '?')}: {original})"
        return text[:ERROR_PREVIEW]
    return f"{type(error).__name__}: {error}"[:ERROR_PREVIEW]
