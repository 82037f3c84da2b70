"""Where the tests' CDK apps write their cloud assemblies: a fresh directory under the test run's base temp
(pytest's: kept for the last three runs, like ``tmp_path``, then removed), never the system temp directory.

An ``App`` without an ``outdir`` (and a ``Stack`` without a scope, which makes such an App) has the CDK's Node
process write its assembly to a new ``cdk.outXXXXXX`` directory in the system temp directory, which nothing
removes: about 430 of them after every run of the suite. ``guard_bare_apps`` makes building one fail the test that
does it; the construct tests build their bare stacks in ``new_app(bare_outdir())`` instead.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

import pytest

LEAK = (
    "{what} writes its cloud assembly to a new cdk.outXXXXXX directory in the system temp directory, which nothing "
    "removes: pass an outdir under the test run's base temp (outdir=bare_outdir(), tests/support/cdk_outdirs.py)"
)

_factory: Optional[pytest.TempPathFactory] = None
_guarded = False


def use_base_temp(factory: pytest.TempPathFactory) -> None:
    """Make ``bare_outdir`` hand out directories of ``factory`` (the session's: tests/conftest.py)."""
    global _factory
    _factory = factory


def bare_outdir() -> str:
    """A new, empty directory for one App's assembly, under the test run's base temp."""
    assert _factory is not None, "tests/conftest.py registers the session's TempPathFactory"
    return str(_factory.mktemp("cdk.out"))


def guard_bare_apps() -> None:
    """Once the CDK is imported in this process, an ``App`` built without ``outdir`` and a ``Stack`` built without a
    scope raise ``LEAK`` instead of leaving an assembly directory in the system temp directory. Called before each
    test (tests/conftest.py): the CDK is imported by the test modules that use it, never by the suite itself, so a
    run of tests without it starts no Node process."""
    global _guarded
    if _guarded or "aws_cdk" not in sys.modules:
        return
    import aws_cdk

    app_init, stack_init = aws_cdk.App.__init__, aws_cdk.Stack.__init__

    def app_with_outdir(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("outdir") is None:
            raise AssertionError(LEAK.format(what="App() without outdir"))
        app_init(self, *args, **kwargs)

    def stack_with_scope(self: Any, *args: Any, **kwargs: Any) -> None:
        if (args[0] if args else kwargs.get("scope")) is None:
            raise AssertionError(LEAK.format(what="Stack() without a scope (it makes an App without outdir)"))
        stack_init(self, *args, **kwargs)

    aws_cdk.App.__init__ = app_with_outdir
    aws_cdk.Stack.__init__ = stack_with_scope
    _guarded = True
