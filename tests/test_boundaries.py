"""Import directions between the homes of the code, enforced.

* ``pipeline_code/core``: the shared contract; standard library only.
* ``pipeline_code/handlers``: Lambda handlers; standard library, boto3/botocore and the core.
* ``pipeline_code`` (all of it): code that runs in AWS jobs; never the infrastructure (``mlops_loop``,
  ``aws_cdk``, ``constructs``, ``cdk_nag``) and never the workstation tools.
* ``mlops_cli``: workstation tools (local run, replay, rollback, audit); they use ``pipeline_code`` as a
  library and read configuration through ``mlops_loop.config``, the one loader synth uses, and nothing
  else of the infrastructure.
* ``mlops_loop``: infrastructure; of ``pipeline_code`` it may import only what it shares by design:
  the core, the feature catalog (one definition drives FeatureGroups and job code) and the job entry
  script's contract; never the workstation tools.

And one rule on what that code may contain: no ``assert`` (nor ``__debug__``) in what ``cdk synth`` runs,
since it runs with ``python -O``, which drops them.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

import pytest

from tests.support.import_statements import from_module, import_statements

REPO_ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
INFRA = {"mlops_loop", "aws_cdk", "constructs", "cdk_nag"}
WORKSTATION = "mlops_cli"
WORKSTATION_MAY_IMPORT_OF_INFRA = ("mlops_loop.config",)
INFRA_MAY_IMPORT = ("pipeline_code.core", "pipeline_code.catalog", "pipeline_code.sagemaker_entry")


def _imports(path: Path) -> frozenset[str]:
    """Every module ``path`` imports, fully qualified (relative imports resolved)."""
    return _imports_of(path.read_text(), package=".".join(path.relative_to(REPO_ROOT).with_suffix("").parts[:-1]))


@functools.lru_cache(maxsize=None)
def _imports_of(source: str, *, package: str) -> frozenset[str]:
    """Once per text and package: collection (:func:`_synth_path`) and up to three tests ask for a module's imports.
    Only the names are kept, not the tree (a worker holding every module's tree would traverse them at each of its
    later garbage collections)."""
    found = set()
    for node in import_statements(source):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = from_module(node, package)
            # ``from pipeline_code.handlers import multi_model`` imports the module pipeline_code.handlers.multi_model.
            found.update(f"{module}.{alias.name}" if _is_module(f"{module}.{alias.name}") else module for alias in node.names)
    return frozenset(found)


def _is_module(name: str) -> bool:
    path = REPO_ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _files(*parts: str) -> list[Path]:
    return sorted(REPO_ROOT.joinpath(*parts).rglob("*.py"))


def _ids(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


@pytest.mark.parametrize("path", _files("pipeline_code", "core"), ids=_ids)
def test_the_core_imports_only_the_standard_library_and_itself(path):
    outside = {m for m in _imports(path) if m.split(".")[0] not in STDLIB and not m.startswith("pipeline_code.core")}
    assert not outside


@pytest.mark.parametrize("path", _files("pipeline_code", "handlers"), ids=_ids)
def test_handlers_import_the_standard_library_boto3_and_the_core(path):
    allowed = ("pipeline_code.core", "pipeline_code.handlers", "boto3", "botocore")
    outside = {m for m in _imports(path) if m.split(".")[0] not in STDLIB and not m.startswith(allowed)}
    assert not outside, "the Lambda code root ships only the handlers and the core"


@pytest.mark.parametrize("path", _files("pipeline_code"), ids=_ids)
def test_code_that_runs_in_aws_never_imports_the_infrastructure_or_the_workstation_tools(path):
    assert not {m for m in _imports(path) if m.split(".")[0] in INFRA | {WORKSTATION}}


@pytest.mark.parametrize("path", _files(WORKSTATION), ids=_ids)
def test_workstation_tools_read_only_the_configuration_of_the_infrastructure(path):
    infra = {m for m in _imports(path) if m.split(".")[0] in INFRA}
    assert all(m.startswith(WORKSTATION_MAY_IMPORT_OF_INFRA) for m in infra), sorted(infra)


@pytest.mark.parametrize("path", [*_files("mlops_loop"), REPO_ROOT / "app.py"], ids=_ids)
def test_the_infrastructure_imports_only_the_shared_parts_of_pipeline_code_and_no_workstation_tool(path):
    imported = _imports(path)
    shared = {m for m in imported if m.split(".")[0] == "pipeline_code"}
    assert all(m.startswith(INFRA_MAY_IMPORT) for m in shared), sorted(shared)
    assert not {m for m in imported if m.split(".")[0] == WORKSTATION}


def test_the_rules_see_a_violation():
    """Non-vacuity: a relative import inside pipeline_code resolves to its full name."""
    found = _imports(REPO_ROOT / "pipeline_code" / "handlers" / "deploy_on_approval.py")
    assert "pipeline_code.core.contract" in found and "pipeline_code.handlers.multi_model" in found
    # A function-level import counts too: the local run reads the configuration inside main().
    assert "mlops_loop.config" in _imports(REPO_ROOT / WORKSTATION / "local" / "run_loop.py")


# An import in every kind of block Python has, and none in a string or comment (module names say where each is).
EVERY_BLOCK = """\
import at_module, at_module_too as alias
from at_module_from import x  # import in_a_comment
text = "import in_a_string"
def function():
    import in_function
    def nested():
        from in_nested_function import y
    return lambda: __import__("in_a_call")
async def coroutine():
    import in_coroutine
    async for item in things:
        import in_async_for
    else:
        import in_async_for_else
    async with context:
        import in_async_with
class Class:
    import in_class
    def method(self):
        import in_method
if condition:
    import in_if
elif other:
    import in_elif
else:
    import in_else
for item in things:
    import in_for
else:
    import in_for_else
while condition:
    import in_while
else:
    import in_while_else
try:
    import in_try
except ImportError:
    import in_except
else:
    import in_try_else
finally:
    import in_finally
try:
    pass
except* ValueError:
    import in_except_star
with context:
    import in_with
match value:
    case 1:
        import in_case
    case _:
        from . import in_default_case
"""


def test_the_import_statements_of_every_kind_of_block_are_found():
    """:func:`import_statements` follows blocks only (what collection reads with it: :func:`_synth_path` and
    tests/training/test_compat.py; and the rules above): it finds the imports ``ast.walk`` finds in the whole tree,
    in every kind of block."""
    everywhere = [node for node in ast.walk(ast.parse(EVERY_BLOCK)) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert sorted(map(ast.dump, import_statements(EVERY_BLOCK))) == sorted(map(ast.dump, everywhere))
    modules = {node.module or node.names[0].name if isinstance(node, ast.ImportFrom) else node.names[0].name
               for node in everywhere}
    assert modules == {"at_module", "at_module_from", "in_function", "in_nested_function", "in_coroutine",
                       "in_async_for", "in_async_for_else", "in_async_with", "in_class", "in_method", "in_if",
                       "in_elif", "in_else", "in_for", "in_for_else", "in_while", "in_while_else", "in_try",
                       "in_except", "in_try_else", "in_finally", "in_except_star", "in_with", "in_case",
                       "in_default_case"}


def _synth_path() -> list[Path]:
    """The repository's code ``cdk synth`` may run: ``app.py`` and every module of ours it imports, directly or
    not (at module level or inside a function), with the ``__init__`` of each package on the way."""
    found: set[Path] = set()
    todo = [REPO_ROOT / "app.py"]
    while todo:
        path = todo.pop()
        if path in found:
            continue
        found.add(path)
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] not in ("mlops_loop", "pipeline_code"):
                continue
            for depth in range(1, len(parts) + 1):
                package = REPO_ROOT.joinpath(*parts[:depth])
                todo.extend(f for f in (package / "__init__.py", package.with_suffix(".py")) if f.is_file())
    return sorted(found)


def _optimized_away(source: str) -> list[int]:
    """The lines of ``source`` whose meaning ``python -O`` changes: ``assert`` statements, ``__debug__`` and
    ``sys.flags.optimize``."""
    return sorted({
        node.lineno for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assert)
        or (isinstance(node, ast.Name) and node.id == "__debug__")
        or (isinstance(node, ast.Attribute) and node.attr == "optimize")
    })


@pytest.mark.parametrize("path", _synth_path(), ids=_ids)
def test_the_code_synth_runs_means_the_same_under_python_o(path):
    """The CDK CLI runs the app as ``python -O app.py`` (cdk.json), which drops every ``assert`` and sets
    ``__debug__`` false: a check synth relies on raises instead (the tests, which run without -O, would not
    notice the difference)."""
    lines = _optimized_away(path.read_text())
    assert not lines, f"{_ids(path)}:{lines}: raise instead of assert (cdk synth runs with python -O)"


def test_the_optimized_mode_rule_sees_a_violation_and_follows_the_apps_imports():
    assert _optimized_away("x = 1\nif x:\n    assert x > 0, 'positive'\nif __debug__:\n    pass\n"
                           "import sys\nlevel = sys.flags.optimize\n") == [3, 4, 7]
    covered = {_ids(p) for p in _synth_path()}
    assert {"app.py", "mlops_loop/__init__.py", "mlops_loop/app_builder.py", "mlops_loop/training/sdk_helper.py",
            "pipeline_code/__init__.py", "pipeline_code/catalog.py", "pipeline_code/core/contract.py"} <= covered
    # Job code synth never imports stays out (it may assert: it never runs under -O).
    assert "pipeline_code/training/prepare.py" not in covered


def _defined_after_the_main_guard(source: str) -> list[int]:
    """Lines of the statements that follow a module's ``if __name__ == "__main__":`` block: run as a script (a job's
    ``python -m``, a CLI), the guard calls ``main()`` before they exist, while an import in the tests sees them all."""
    body = ast.parse(source).body
    for index, node in enumerate(body):
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and isinstance(node.test.left, ast.Name)
                and node.test.left.id == "__name__"):
            return [later.lineno for later in body[index + 1:]]
    return []


@pytest.mark.parametrize("path", _files("pipeline_code") + _files("mlops_cli") + _files("mlops_loop"), ids=_ids)
def test_a_modules_main_guard_is_its_last_statement(path):
    lines = _defined_after_the_main_guard(path.read_text())
    assert not lines, f"{_ids(path)}:{lines}: defined after the __main__ guard, so missing when run as a script"


def test_the_main_guard_rule_sees_a_violation():
    assert _defined_after_the_main_guard("def main():\n    pass\n\nif __name__ == '__main__':\n    main()\n\n"
                                         "def late():\n    pass\n") == [7]


TESTS = REPO_ROOT / "tests"


def _test_imports(path: Path) -> set[str]:
    """The modules of the test tree that ``path`` imports (relative imports resolved)."""
    return {m for m in _imports(path) if m.startswith("tests.") or m == "tests"}


@pytest.mark.parametrize("path", sorted(TESTS.rglob("*.py")), ids=_ids)
def test_tests_share_helpers_only_through_tests_support(path):
    """No test module imports another test module, a conftest or a helper outside ``tests/support``."""
    outside = {m for m in _test_imports(path) if not (m == "tests.support" or m.startswith("tests.support."))}
    assert not outside, sorted(outside)


def test_the_test_import_rule_sees_a_violation():
    """Non-vacuity: a sibling test module, a conftest and a relative helper are all resolved to their names."""
    source = ("from .test_serving_stack import helper\nfrom tests.training.conftest import write_inputs\n"
              "from ..pipeline_definition import specs\nfrom tests.support import capture\n")
    found = _imports_of(source, package="tests.infra")
    assert found == {"tests.infra.test_serving_stack", "tests.training.conftest", "tests.pipeline_definition",
                     "tests.support.capture"}
