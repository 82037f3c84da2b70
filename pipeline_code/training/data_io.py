"""Small I/O helpers shared by the training jobs: parquet directories, hashes, archives.

SageMaker mounts each input under ``/opt/ml/processing/input/<name>`` (processing) or
``/opt/ml/input/data/<channel>`` (training) as plain files, so everything here works on
local paths. Directories are read recursively; files and folders starting with ``_`` or
``.`` (Spark's ``_SUCCESS``, CRC files) and non-parquet files (manifests, summaries) are
skipped, and no hive partition columns are added (``event_date=...`` folders add nothing).

pyarrow is imported by the functions that read parquet, not by the module: the serving hooks import this module
(for :class:`InputError` and the archive helpers) in images without pyarrow, such as AWS's Neuron inference image.
"""

from __future__ import annotations

import json
import os
import tarfile
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds

from pipeline_code.core.integrity import METADATA_FILE, MODEL_ARCHIVE, MODEL_FILE
from pipeline_code.core.integrity import sha256_concatenated as sha256_files, sha256_file  # noqa: F401 - re-exported for the jobs


class InputError(ValueError):
    """An input of a job is unusable; the message names the column or file and the problem."""


def list_parquet_files(path: str, *, what: str = "input") -> List[str]:
    """Every ``*.parquet`` file under ``path`` (recursively), sorted.

    Raises:
        InputError: ``path`` does not exist or holds no parquet file.
    """
    if not os.path.exists(path):
        raise InputError(f"{what}: {path!r} does not exist")
    if os.path.isfile(path):
        return [path]
    files: List[str] = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        files.extend(
            os.path.join(root, n) for n in sorted(names) if n.endswith(".parquet") and not n.startswith(("_", "."))
        )
    if not files:
        raise InputError(f"{what}: no parquet file under {path!r}")
    return sorted(files)


def parquet_dataset(path: str, *, what: str = "input", dictionary_columns: Sequence[str] = ()) -> ds.Dataset:
    """A pyarrow dataset over the parquet files of ``path`` (schema of the first file).

    ``dictionary_columns`` are read dictionary-encoded: string columns with few distinct
    values then cost an index per row instead of a Python string per row.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    files = list_parquet_files(path, what=what)
    fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=list(dictionary_columns)))
    try:
        return ds.dataset(files, format=fmt)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{what}: cannot read parquet under {path!r}: {exc}") from None


def read_columns(dataset: ds.Dataset, columns: Sequence[str], *, what: str) -> pa.Table:
    """Only ``columns`` of ``dataset`` (column projection: other columns are never decoded)."""
    import pyarrow as pa

    try:
        return dataset.to_table(columns=list(columns))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{what}: files disagree on the schema or cannot be decoded: {exc}") from None


def iso_time(value: Any) -> Optional[str]:
    """A timestamp (a pyarrow scalar or a ``datetime``) as the reports write times: ISO 8601 in UTC with ``Z``;
    None for a null."""
    import datetime as dt

    value = value.as_py() if hasattr(value, "as_py") else value
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def time_range(times: Any) -> Dict[str, Optional[str]]:
    """``{"min", "max"}`` of a timestamp column (:func:`iso_time`; None for a column without a value): the span a
    split's summary, a frozen test set's manifest and a model's training data period record."""
    import pyarrow.compute as pc

    return {"min": iso_time(pc.min(times)), "max": iso_time(pc.max(times))}


def parse_time(text: str) -> Any:
    """The UTC ``datetime`` of a time :func:`iso_time` wrote (compared as instants, not as text: a fraction of a
    second changes the text's length)."""
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def is_empty_dir(path: Optional[str]) -> bool:
    """True when ``path`` is unset, missing, or a directory without any regular file."""
    if not path or not os.path.exists(path):
        return True
    if os.path.isfile(path):
        return False
    for _root, _dirs, names in os.walk(path):
        if any(not n.startswith(".") for n in names):
            return False
    return True


def write_json(path: str, payload: Any) -> None:
    """Indented, key-sorted JSON, written atomically (tmp file + rename); NaN becomes null."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(json_safe(payload), handle, indent=2, sort_keys=True, allow_nan=False)
        handle.write("\n")
    os.replace(tmp, path)


def read_json(path: str, *, what: str = "file") -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise InputError(f"{what}: {path!r} does not exist") from None
    except ValueError as exc:
        raise InputError(f"{what}: {path!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{what}: {path!r} must hold a JSON object")
    return data


def json_safe(value: Any) -> Any:
    """numpy scalars -> Python numbers, NaN/inf -> None, tuples -> lists (recursively)."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else number
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    return value


def model_archive(model_dir: str) -> str:
    """Where a model's ``model.tar.gz`` is: ``model_dir`` itself when it is a file, else inside the directory (as
    SageMaker mounts a model input)."""
    return model_dir if os.path.isfile(model_dir) else os.path.join(model_dir, MODEL_ARCHIVE)


def unpack_model(model_dir: str, destination: str) -> None:
    """The model at ``model_dir`` (its archive, or a directory with ``model.json``) as files in ``destination``.

    Raises:
        InputError: no model there, or no ``model.json`` + ``feature_metadata.json`` at the archive's root.
    """
    archive = model_archive(model_dir)
    if os.path.isfile(archive):
        extract_tar_safely(archive, destination)
    elif os.path.isfile(os.path.join(model_dir, MODEL_FILE)):
        import shutil

        shutil.copytree(model_dir, destination)
    else:
        raise InputError(f"no model at {model_dir!r}: expected a {MODEL_ARCHIVE} or a directory with {MODEL_FILE}")
    for name in (MODEL_FILE, METADATA_FILE):
        if not os.path.isfile(os.path.join(destination, name)):
            raise InputError(f"the model at {model_dir!r} has no {name} at its root")


def write_archive(directory: str, archive: str) -> None:
    """``directory``'s files as a gzipped tar at ``archive``, paths relative to it, in sorted order with
    zeroed times and owners: the same files always give the same bytes (and so the same sealed key)."""
    import gzip

    os.makedirs(os.path.dirname(os.path.abspath(archive)), exist_ok=True)
    tmp = archive + ".tmp"
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, names in os.walk(directory):
            dirs.sort()
            for name in sorted(names):
                path = os.path.join(root, name)
                info = tar.gettarinfo(path, arcname=os.path.relpath(path, directory))
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
    os.replace(tmp, archive)


# tarfile's extraction filters (PEP 706): Python 3.12+ (the XGBoost 3.2-0 image) and 3.11.4+. 3.12 and 3.13 warn when
# an extraction names none; 3.14 applies "data" by default.
_DATA_FILTER = getattr(tarfile, "data_filter", None)


def extract_tar_safely(archive: str, destination: str) -> None:
    """Extract a (gzipped) tar, refusing links, devices and members that would land outside ``destination``, all
    checked before the first member is written.

    Each member also goes through tarfile's ``data`` filter where Python has it, so the files belong to whoever
    extracts them (as root, tarfile would otherwise give them the archive's owner ids) and lose set-id and
    group/other-write bits; without the filter (Python before 3.11.4) the same is done here."""
    root = os.path.realpath(destination)
    os.makedirs(root, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = []
        for member in tar.getmembers():
            target = os.path.realpath(os.path.join(root, member.name))
            if not (target == root or target.startswith(root + os.sep)):
                raise InputError(f"{archive}: member {member.name!r} would be extracted outside {destination!r}")
            if member.issym() or member.islnk() or member.isdev():
                raise InputError(f"{archive}: member {member.name!r} is a link or device; refusing to extract")
            if _DATA_FILTER is None:
                members.append(_as_data(member))
                continue
            try:
                members.append(_DATA_FILTER(member, root))
            except tarfile.FilterError as exc:
                raise InputError(f"{archive}: member {member.name!r} is refused by tarfile's data filter: {exc}") from None
        for member in members:
            if _DATA_FILTER is None:
                tar.extract(member, root)
            else:
                tar.extract(member, root, filter="fully_trusted")  # filtered above, before any was written


def _as_data(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """What tarfile's ``data`` filter makes of a regular file or folder: no owner (the extractor's), no set-id, sticky
    or group/other-write bit; a file its owner cannot execute loses every execute bit and its owner may read and write
    it; a folder keeps the mode it is created with (the archive's could lock its own files out)."""
    import copy

    plain = copy.copy(member)
    plain.uid, plain.gid, plain.uname, plain.gname = os.getuid(), os.getgid(), "", ""
    if member.isdir():
        plain.mode = 0o777 & ~_umask()
        return plain
    mode = member.mode & 0o755
    if not mode & 0o100:
        mode &= ~0o111
    plain.mode = mode | 0o600
    return plain


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------------------
# Arrow type predicates (for the column-type checks)
# --------------------------------------------------------------------------------------
def value_type(arrow_type: pa.DataType) -> pa.DataType:
    """The value type of a dictionary type, else the type itself."""
    import pyarrow as pa

    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


def is_string(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    t = value_type(arrow_type)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)


def is_number(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    t = value_type(arrow_type)
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t)


def is_timestamp_or_string(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    t = value_type(arrow_type)
    return pa.types.is_timestamp(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
