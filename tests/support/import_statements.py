"""The import statements of Python source, for the tests that follow the repository's imports when pytest collects them
(tests/test_boundaries.py, tests/training/test_compat.py: their parameters are the modules a root imports, directly or
not), so every test worker pays for this at its start."""

from __future__ import annotations

import ast
import gc
from typing import Iterator, Union

# The fields of a node that hold statements: a module's, function's, class's and compound statement's blocks, a
# try's except clauses and a match's cases (each holding a block). Every other field holds expressions (or names),
# which never contain a statement.
_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")


def import_statements(source: str) -> Iterator[Union[ast.Import, ast.ImportFrom]]:
    """Every ``import`` and ``from ... import`` statement of ``source`` (a module's text), at module level or nested
    in any function, class or compound statement, in no particular order.

    The same statements as ``ast.walk`` finds, which also visits every expression (most of a module's nodes): only
    the blocks are followed. The source is parsed with the cyclic garbage collector paused: a syntax tree holds no
    reference cycle, and its hundreds of thousands of new nodes would otherwise set off collections that traverse
    the whole heap of a test worker (pandas, the CDK, moto) while they find nothing to free.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        tree = ast.parse(source)
    finally:
        if enabled:
            gc.enable()
    todo: list = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        for field in _BLOCKS:
            block = getattr(node, field, None)
            if type(block) is list:  # a lambda's or conditional expression's body is an expression, never followed
                todo.extend(block)


def from_module(node: ast.ImportFrom, package: str) -> str:
    """The module a ``from ... import`` statement of a module of ``package`` (dotted) names, relative levels resolved:
    ``from .x import y`` in ``pipeline_code.serving`` is ``pipeline_code.serving.x``, ``from .. import y`` there is
    ``pipeline_code``."""
    base = package.rsplit(".", node.level - 1)[0] if node.level else ""
    return ".".join(part for part in (base, node.module or "") if part)
