"""The tests leave no CDK assembly in the system temp directory: an App they build without an outdir (or a Stack
without a scope) fails the test that builds it, and ``bare_outdir()`` gives each App a directory under the test
run's base temp (tests/support/cdk_outdirs.py, installed by tests/conftest.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs

from mlops_loop.app_builder import new_app
from tests.support.cdk_outdirs import bare_outdir


def _cdk_outs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("cdk.out*")}


@pytest.mark.parametrize("build", [App, new_app, lambda: Stack(None, "Bare"), lambda: Stack()],
                         ids=["App", "new_app", "Stack-None", "Stack"])
def test_an_app_built_without_an_outdir_fails_the_test_and_writes_nothing(build):
    # GIVEN the system temp directory's assemblies
    before = _cdk_outs()
    # WHEN a test builds an App without an outdir (or a Stack without a scope, which makes one)
    with pytest.raises(AssertionError) as raised:
        build()
    # THEN the test fails saying why and what to pass instead, and no assembly directory was made
    what = "App() without outdir" if build in (App, new_app) else "Stack() without a scope (it makes an App without outdir)"
    assert str(raised.value) == (
        f"{what} writes its cloud assembly to a new cdk.outXXXXXX directory in the system temp directory, which "
        "nothing removes: pass an outdir under the test run's base temp (outdir=bare_outdir(), "
        "tests/support/cdk_outdirs.py)")
    assert _cdk_outs() <= before


def test_a_bare_outdir_is_a_new_empty_directory_of_the_run_where_the_app_writes_its_assembly(tmp_path_factory):
    # GIVEN two outdirs WHEN a stack's app is synthesized into the first
    first, second = bare_outdir(), bare_outdir()
    stack = Stack(new_app(first), "Bare")
    sqs.Queue(stack, "Queue")
    assembly = stack.node.root.synth()
    # THEN each is a directory of its own under the run's base temp, and the assembly is written there
    assert first != second
    base = tmp_path_factory.getbasetemp()
    assert Path(first).parent == base and Path(second).parent == base
    assert Path(assembly.directory) == Path(first)
    assert (Path(first) / "Bare.template.json").is_file()
    assert list(Path(second).iterdir()) == []
