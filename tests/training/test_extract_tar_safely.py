"""``data_io.extract_tar_safely``: every model archive the jobs, the serving hooks' fixtures and the local runner unpack
(model.tar.gz from S3, written by training but read back by jobs that trust nothing they download).

GIVEN an archive with one hostile member WHEN it is extracted THEN it is refused, naming the archive and the member,
and nothing is written outside the destination; GIVEN an archive whose members carry owner ids and set-id or
world-writable modes THEN the files land owned by whoever extracts them, without those bits (tarfile's ``data``
filter, Python 3.11.4+ and 3.12, which the XGBoost 3.2-0 image runs, in addition to the function's own checks).
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import warnings

import pytest

from pipeline_code.training.data_io import InputError, extract_tar_safely


def _archive(tmp_path, *members: tarfile.TarInfo) -> str:
    path = tmp_path / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(_file("model.json", b"{}"), io.BytesIO(b"{}"))
        for member in members:
            data = io.BytesIO(b"x" * member.size) if member.isreg() else None  # a file's bytes: its size in x
            tar.addfile(member, data)
    return str(path)


def _file(name: str, data: bytes = b"x", mode: int = 0o644, uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid = len(data), mode, uid, gid
    return info


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


HOSTILE = {
    "a parent path": (_file("../escaped.txt"), "would be extracted outside"),
    "a parent path inside a folder": (_file("sub/../../escaped.txt"), "would be extracted outside"),
    "an absolute name": (_file("/tmp/extract-tar-safely-absolute.txt"), "would be extracted outside"),
    "a symbolic link": (_special("link", tarfile.SYMTYPE, "/etc/passwd"), "is a link or device"),
    "a symbolic link inside the destination": (_special("link", tarfile.SYMTYPE, "model.json"), "is a link or device"),
    "a hard link": (_special("hard", tarfile.LNKTYPE, "model.json"), "is a link or device"),
    "a character device": (_special("null", tarfile.CHRTYPE), "is a link or device"),
    "a block device": (_special("disk", tarfile.BLKTYPE), "is a link or device"),
    "a named pipe": (_special("fifo", tarfile.FIFOTYPE), "is a link or device"),
}


@pytest.mark.parametrize(("member", "problem"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_member_is_refused_and_nothing_is_extracted(tmp_path, member, problem):
    archive = _archive(tmp_path, member)
    destination = tmp_path / "out"
    with pytest.raises(InputError) as refused:
        extract_tar_safely(archive, str(destination))
    assert str(refused.value).startswith(f"{archive}: member {member.name!r} ")
    assert problem in str(refused.value)
    assert list(destination.iterdir()) == []  # refused before the first member is written
    assert not (tmp_path / "escaped.txt").exists()
    assert not os.path.exists("/tmp/extract-tar-safely-absolute.txt")


def test_members_land_owned_by_the_extractor_without_set_id_or_world_writable_bits(tmp_path):
    archive = _archive(tmp_path, _file("setuid.bin", mode=0o4777, uid=4321, gid=4321),
                       _file("sub/setgid.bin", mode=0o2775, uid=4321, gid=4321))
    destination = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Python 3.12-3.13 warn when extraction names no filter
        extract_tar_safely(archive, str(destination))
    for name in ("setuid.bin", "sub/setgid.bin"):
        st = os.stat(destination / name)
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), name
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID | stat.S_IWOTH), (name, oct(st.st_mode))
    assert (destination / "model.json").read_bytes() == b"{}"


def test_an_ordinary_archive_is_extracted_whole(tmp_path):
    archive = _archive(tmp_path, _file("sub/a.txt", b"xxx"), _file("b.txt", b"xx", mode=0o600))
    extract_tar_safely(archive, str(tmp_path / "out"))
    assert (tmp_path / "out" / "sub" / "a.txt").read_bytes() == b"xxx"
    assert (tmp_path / "out" / "b.txt").read_bytes() == b"xx"
    assert stat.S_IMODE(os.stat(tmp_path / "out" / "b.txt").st_mode) == 0o600


def test_without_tarfiles_data_filter_the_same_owner_and_modes_are_given(tmp_path, monkeypatch):
    """Python before 3.11.4 has no extraction filter: the function gives the same result by itself."""
    from pipeline_code.training import data_io

    monkeypatch.setattr(data_io, "_DATA_FILTER", None)
    archive = _archive(tmp_path, _file("setuid.bin", mode=0o4777, uid=4321, gid=4321))
    extract_tar_safely(archive, str(tmp_path / "out"))
    st = os.stat(tmp_path / "out" / "setuid.bin")
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert stat.S_IMODE(st.st_mode) == 0o755


def _dir(name: str, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info


@pytest.mark.skipif(not hasattr(tarfile, "data_filter"), reason="compares with tarfile's data filter (3.11.4+)")
def test_without_tarfiles_data_filter_every_mode_is_what_the_filter_gives(tmp_path, monkeypatch):
    """The by-hand path (Python before 3.11.4) against tarfile's own data filter, one archive: a read-only file
    becomes owner-writable, one its owner cannot execute loses every execute bit, and a folder's mode is not
    applied (a read-only folder would refuse the files inside it)."""
    from pipeline_code.training import data_io

    archive = _archive(tmp_path, _file("read-only.bin", mode=0o444), _file("not-owner-exec.bin", mode=0o051),
                       _file("exec.bin", mode=0o775), _dir("locked", 0o555), _file("locked/inside.bin"))
    extract_tar_safely(archive, str(tmp_path / "filtered"))
    monkeypatch.setattr(data_io, "_DATA_FILTER", None)
    extract_tar_safely(archive, str(tmp_path / "by-hand"))
    for name in ("read-only.bin", "not-owner-exec.bin", "exec.bin", "locked", "locked/inside.bin"):
        modes = [oct(stat.S_IMODE(os.stat(tmp_path / where / name).st_mode)) for where in ("filtered", "by-hand")]
        assert modes[0] == modes[1], name
