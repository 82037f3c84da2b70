"""Job code must run in the SageMaker XGBoost image (Python 3.12, pipeline_code/core/images.py), in the PyTorch training
images (py312) and locally (3.11), and never import CDK: it parses as the oldest of them all ever was (3.9)."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

from pipeline_code.core.images import HANDLER_PYTHON, XGBOOST_IMAGE_PYTHON
from tests.support.import_statements import from_module, import_statements
from tests.support.paths import REPO_ROOT

# The import directions of every home are in tests/test_boundaries.py; this adds the container's Python.
JOB_FILES = sorted([*(REPO_ROOT / "pipeline_code" / "training").glob("*.py"), REPO_ROOT / "pipeline_code" / "sagemaker_entry.py"])


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_job_code_parses_as_python_3_9_and_imports_no_infrastructure(path: Path):
    source = path.read_text()
    tree = ast.parse(source, filename=str(path), feature_version=(3, 9))
    if path.name != "__init__.py":
        assert "from __future__ import annotations" in source  # annotations stay strings on 3.9/3.10
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"aws_cdk", "mlops_loop", "constructs", "cdk_nag"}
    if path.parent.name == "training":
        assert not imported & {"sklearn", "scipy", "pyspark", "yaml"}, "not guaranteed in the container"


def test_the_launcher_uses_only_the_standard_library():
    tree = ast.parse((REPO_ROOT / "pipeline_code" / "sagemaker_entry.py").read_text())
    modules = {n.names[0].name for n in ast.walk(tree) if isinstance(n, ast.Import)}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert modules <= {"__future__", "glob", "hashlib", "importlib.util", "json", "os", "runpy", "sys", "zipfile"}


# Standard-library modules each Python release removed (What's New in Python 3.12 and 3.13, "Removed"): job code
# importing one fails in an image of that Python or later, and the local venv (3.11) would not show it.
REMOVED_FROM_THE_STANDARD_LIBRARY = {
    (3, 12): {"asynchat", "asyncore", "distutils", "imp", "smtpd"},
    (3, 13): {"aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "mailcap", "msilib", "nis", "nntplib",
              "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib", "lib2to3"},
    (3, 14): set(),  # no whole module; names below
}
# Names a release removed from modules it kept (What's New in Python 3.13 and 3.14, "Removed"), as module.name: an
# import or attribute use of one fails on that Python. The Lambda handlers run on 3.14.
REMOVED_NAMES = {
    (3, 13): {"locale.resetlocale", "re.template", "typing.io", "typing.re", "unittest.makeSuite",
              "unittest.findTestCases", "unittest.getTestCaseNames", "configparser.LegacyInterpolation"},
    (3, 14): {"ast.Num", "ast.Str", "ast.Bytes", "ast.NameConstant", "ast.Ellipsis", "pkgutil.find_loader",
              "pkgutil.get_loader", "pty.master_open", "pty.slave_open", "sqlite3.version", "sqlite3.version_info",
              "urllib.request.URLopener", "urllib.request.FancyURLopener", "importlib.abc.ResourceReader",
              "importlib.abc.Traversable", "importlib.abc.TraversableResources", "asyncio.AbstractChildWatcher",
              "asyncio.SafeChildWatcher", "asyncio.FastChildWatcher", "asyncio.MultiLoopChildWatcher",
              "asyncio.set_child_watcher", "asyncio.get_child_watcher"},
}


@functools.lru_cache(maxsize=None)
def _pipeline_code_imports(path: Path) -> frozenset:
    """The files of ``pipeline_code`` that the module at ``path`` imports (absolute ``pipeline_code.x`` imports and
    relative ones), each as the module's own file or its package's ``__init__.py``. Once per file: collection
    follows the image's and the handlers' imports (which share modules) and a test follows the image's again."""
    package = ".".join(path.parent.relative_to(REPO_ROOT).parts)
    found = set()
    for node in import_statements(path.read_text()):
        if isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        else:  # from ... import
            module = from_module(node, package)
            # ``from a import b`` may import the module a.b as well as a name of a.
            dotted = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        for name in dotted:
            parts = name.split(".")
            if parts[0] != "pipeline_code":
                continue
            for end in range(1, len(parts) + 1):
                stem = REPO_ROOT.joinpath(*parts[:end])
                for candidate in (stem.with_suffix(".py"), stem / "__init__.py"):
                    if candidate.is_file():
                        found.add(candidate)
    return frozenset(found)


def _with_what_they_import(roots: list) -> list:
    """``roots`` and every ``pipeline_code`` module they import, directly or not."""
    seen, todo = set(), list(roots)
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_pipeline_code_imports(path))
    return sorted(seen)


# What runs in the image: the homes of its jobs, the monitor and serving, the entry script, and every module of
# pipeline_code they import (job_runtime.py, argtypes.py, the deploy handler's stack readers the monitor uses...).
IMAGE_CODE = _with_what_they_import(
    [p for home in ("training", "serving", "core", "monitoring", "features")
     for p in (REPO_ROOT / "pipeline_code" / home).rglob("*.py")] + [REPO_ROOT / "pipeline_code" / "sagemaker_entry.py"])


def removed_imports(source: str, python: tuple) -> set:
    """The modules ``source`` imports, and the names it imports or reads of a module (``module.name``), that the
    standard library of ``python`` no longer has."""
    gone = set().union(*(names for version, names in REMOVED_FROM_THE_STANDARD_LIBRARY.items() if version <= python))
    gone_names = set().union(*(names for version, names in REMOVED_NAMES.items() if version <= python))
    imported, used = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
            used.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])
            used.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Attribute):
            used.add(ast.unparse(node))
    return (imported & gone) | (used & gone_names)


@pytest.mark.parametrize("path", IMAGE_CODE, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_code_that_runs_in_the_xgboost_image_imports_nothing_its_python_removed(path: Path):
    assert not removed_imports(path.read_text(), XGBOOST_IMAGE_PYTHON), f"not in Python {XGBOOST_IMAGE_PYTHON}"


# What runs in Lambda: the handlers and every module of pipeline_code they import.
HANDLER_CODE = _with_what_they_import(sorted((REPO_ROOT / "pipeline_code" / "handlers").rglob("*.py")))


@pytest.mark.parametrize("path", HANDLER_CODE, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_code_that_runs_in_lambda_imports_nothing_its_python_removed(path: Path):
    assert not removed_imports(path.read_text(), HANDLER_PYTHON), f"not in Python {HANDLER_PYTHON}"


def test_a_name_its_python_removed_is_found():
    source = "import ast\nfrom pkgutil import find_loader\nnode = ast.Num(1)\nimport json\n"
    assert removed_imports(source, (3, 14)) == {"pkgutil.find_loader", "ast.Num"}
    assert removed_imports(source, (3, 12)) == set()


# A line naming the Python of Lambda or the handlers: the version in group 1 or 2. "Python 3.9-safe" (pipeline_code/core)
# is the oldest Python code must import on, not the one it runs on.
HANDLER_PYTHON_MENTION = re.compile(r"(?i)(?:lambda|handler)[^\n]{0,80}?python ?(3\.\d+)(?!\d|-safe)|python ?(3\.\d+)(?!\d|-safe)"
                                    r"[^\n]{0,80}?(?:lambda|handler)")


@pytest.mark.parametrize("line, version", [("Lambda functions run Python 3.13", "3.13"),
                                           ("runtime: python3.12 (the handlers)", "3.12"),
                                           ("the handlers are Python 3.10-safe", None),
                                           ("Python 3.13-safe code, as the handlers need", None)])
def test_a_line_naming_the_handlers_python_is_read_for_its_version(line, version):
    found = [m.group(1) or m.group(2) for m in HANDLER_PYTHON_MENTION.finditer(line)]
    assert found == ([version] if version else [])


def test_the_lambda_runtime_is_the_one_definition_of_the_handlers_python():
    """The runtime every handler function runs on, and every line of the docs, workflows and code that names the
    Python of Lambda or the handlers, are ``HANDLER_PYTHON``."""
    from mlops_loop.constructs.handler_function import HANDLER_RUNTIME

    assert HANDLER_RUNTIME.name == "python{}.{}".format(*HANDLER_PYTHON)
    mention = HANDLER_PYTHON_MENTION
    wrong = []
    files = [REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md"), *(REPO_ROOT / ".github").rglob("*.yml"),
             *(REPO_ROOT / "mlops_loop").rglob("*.py"), *(REPO_ROOT / "pipeline_code").rglob("*.py")]
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in mention.finditer(line):
                if (match.group(1) or match.group(2)) != "{}.{}".format(*HANDLER_PYTHON):
                    wrong.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert wrong == []


def test_a_module_its_python_removed_is_found():
    assert removed_imports("import imp\nfrom distutils.util import strtobool\nimport json\n", (3, 12)) == {"imp", "distutils"}
    assert removed_imports("import imp\n", (3, 11)) == set()


def test_every_module_the_image_code_imports_is_checked_for_the_images_python():
    """GIVEN a module outside the checked homes that code running in the image imports (pipeline_code/job_runtime.py
    through the feature ingest, pipeline_code/argtypes.py through the monitor, the deploy handler's stack readers
    through the monitor's S3 reader) THEN it runs in the image too, and an import its Python removed fails the job
    there: it is checked like the rest."""
    imported = {i for path in IMAGE_CODE for i in _pipeline_code_imports(path)}
    assert sorted(p.relative_to(REPO_ROOT).as_posix() for p in imported - set(IMAGE_CODE)) == []


def test_the_imports_of_a_module_are_found_absolute_and_relative():
    root = REPO_ROOT / "pipeline_code"
    assert {root / "job_runtime.py", root / "__init__.py"} <= _pipeline_code_imports(root / "features" / "ingest.py")
    card = root / "training" / "model_card"
    assert {card / "content.py", card / "publish.py"} <= _pipeline_code_imports(card / "cli.py")
