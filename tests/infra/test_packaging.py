"""The Lambda code root: handlers import the shared core by its package path, and nothing else ships;
generated asset sources live in one staging directory per process, gone when the process exits."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mlops_loop.packaging import HANDLER_PACKAGES, handler_code_root, staged_file
from tests.support.paths import REPO_ROOT


def _import(root, module: str) -> subprocess.CompletedProcess:
    # The code root goes first on the path, so pipeline_code resolves there (boto3 still comes from the venv).
    code = f"import sys; sys.path[:0] = [{str(root)!r}]; import {module}; print({module}.__file__)"
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)


def test_given_the_handler_code_root_then_every_handler_imports_from_it_alone():
    root = handler_code_root()
    shipped = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert shipped[0] == "pipeline_code/__init__.py"
    assert {p.rsplit("/", 1)[0] for p in shipped[1:]} == set(HANDLER_PACKAGES)
    # Every module of the handlers (each function's entry point and the deploy handler's parts, a new subpackage's
    # too: one HANDLER_PACKAGES lacks is not shipped and fails here), imported from the code root alone.
    handlers = sorted(".".join(p.relative_to(REPO_ROOT).with_suffix("").parts)
                      for p in (REPO_ROOT / "pipeline_code" / "handlers").rglob("*.py") if "__pycache__" not in p.parts)
    assert {"pipeline_code.handlers.deploy_on_approval", "pipeline_code.handlers.deploy.ledger"} <= set(handlers)
    for handler in handlers:
        result = _import(root, handler.removesuffix(".__init__"))
        assert result.returncode == 0, f"{handler}: {result.stderr}"
        assert result.stdout.strip().startswith(str(root)), f"{handler} imported from the repository, not the code root"


def test_a_module_outside_the_handler_packages_is_not_shipped():
    result = _import(handler_code_root(), "pipeline_code.catalog")
    assert result.returncode != 0 and "No module named 'pipeline_code.catalog'" in result.stderr


def test_a_staged_file_is_written_once_per_content_and_name():
    # GIVEN a staged text
    first = staged_file("spec.json", '{"a": 1}')
    written = first.stat().st_mtime_ns, first.stat().st_ino
    # WHEN the same content is staged again, as bytes, under the same name
    again = staged_file("spec.json", b'{"a": 1}')
    # THEN it is the same file, not written again; another content or name is another file
    assert again == first and first.read_text() == '{"a": 1}'
    assert (again.stat().st_mtime_ns, again.stat().st_ino) == written
    assert staged_file("spec.json", '{"a": 2}') != first
    assert staged_file("other.json", '{"a": 1}') not in (first, staged_file("spec.json", '{"a": 2}'))
    # AND the handlers' code root is in the same per-process staging directory
    assert handler_code_root().parent == first.parent.parent


@pytest.mark.parametrize("keep", [False, True], ids=["removed", "kept"])
def test_a_process_leaves_its_staged_files_behind_only_when_told_to(tmp_path, keep):
    """GIVEN a process with its own temporary directory that stages a file and the handlers' code root WHEN
    it exits THEN nothing of it is left there, unless it was told to keep them (an app that stages no assets)."""
    program = (
        "from mlops_loop.packaging import handler_code_root, keep_staged_files, staged_file\n"
        "print(staged_file('spec.json', '{}'), handler_code_root())\n"
        + ("keep_staged_files()\n" if keep else "")
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=60, env={**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr
    spec, root = (os.path.relpath(p, tmp) for p in result.stdout.split())
    assert not spec.startswith("..") and not root.startswith("..")
    if keep:
        assert (tmp / spec).read_text() == "{}" and (tmp / root / "pipeline_code" / "handlers").is_dir()
    else:
        assert list(tmp.iterdir()) == []
