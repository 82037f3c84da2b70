"""The Lambda code root: handlers import the shared core by its package path, and nothing else ships."""

from __future__ import annotations

import subprocess
import sys

from mlops_loop.packaging import HANDLER_PACKAGES, handler_code_root


def _import(root, module: str) -> subprocess.CompletedProcess:
    # The code root goes first on the path, so pipeline_code resolves there (boto3 still comes from the venv).
    code = f"import sys; sys.path[:0] = [{str(root)!r}]; import {module}; print({module}.__file__)"
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)


def test_given_the_handler_code_root_then_every_handler_imports_from_it_alone():
    root = handler_code_root()
    shipped = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert shipped[0] == "pipeline_code/__init__.py"
    assert {p.rsplit("/", 1)[0] for p in shipped[1:]} == set(HANDLER_PACKAGES)
    for handler in ("deploy_on_approval", "retrain_trigger", "multi_model"):
        result = _import(root, f"pipeline_code.handlers.{handler}")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().startswith(str(root)), "imported from the repository, not the code root"


def test_a_module_outside_the_handler_packages_is_not_shipped():
    result = _import(handler_code_root(), "pipeline_code.catalog")
    assert result.returncode != 0 and "No module named 'pipeline_code.catalog'" in result.stderr
