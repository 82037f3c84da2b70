"""The assembly digest (``python -m mlops_loop.tools.source_stamp digest``): one sha256 over every file of a cloud
assembly, which the deploy build records once and every environment's deploy job checks (``check --digest``) and
writes in its summary, so a run shows that prod deployed the bytes staging deployed and the build tested."""

from __future__ import annotations

import io
import os
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from mlops_loop.tools import source_stamp
from tests.support.assemblies import write_assembly
from tests.support.paths import REPO_ROOT

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _assembly(root: Path) -> Path:
    assembly = write_assembly(root, {"dev": {"Storage": {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}}})
    asset = assembly / "asset.0123abcd"
    asset.mkdir()
    (asset / "index.py").write_text("def handler(event, context):\n    return 1\n")
    (asset / ".hidden").write_text("a dotfile the asset hash covers\n")
    return assembly


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = source_stamp.main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_the_digest_names_the_bytes_not_the_order_or_the_times(tmp_path):
    """GIVEN two copies of one assembly, written in another order and with other modification times THEN their digests
    are equal; a byte changed in a template, a dotfile of an asset, a file added, or a file renamed each changes it."""
    first = _assembly(tmp_path / "a")
    second = _assembly(tmp_path / "b")
    for path in second.rglob("*"):
        if path.is_file():
            os.utime(path, (1, 1))
    digest = source_stamp.assembly_digest(first)
    assert DIGEST.fullmatch(digest)
    assert source_stamp.assembly_digest(second) == digest

    template = next((second / "assembly-dev").glob("*.template.json"))
    template.write_text(template.read_text().replace("SQS::Queue", "SNS::Topic"))
    changed = {"template": source_stamp.assembly_digest(second)}
    third = _assembly(tmp_path / "c")
    (third / "asset.0123abcd" / ".hidden").write_text("another\n")
    changed["dotfile"] = source_stamp.assembly_digest(third)
    fourth = _assembly(tmp_path / "d")
    (fourth / "extra.json").write_text("{}")
    changed["added"] = source_stamp.assembly_digest(fourth)
    fifth = _assembly(tmp_path / "e")
    (fifth / "asset.0123abcd" / "index.py").rename(fifth / "asset.0123abcd" / "main.py")
    changed["renamed"] = source_stamp.assembly_digest(fifth)
    assert len({digest, *changed.values()}) == 1 + len(changed), changed


def test_the_digest_command_prints_it_and_refuses_a_directory_that_is_no_assembly(tmp_path):
    assembly = _assembly(tmp_path / "cdk.out")
    assert _run("digest", str(assembly)) == (0, source_stamp.assembly_digest(assembly) + "\n", "")
    status, out, err = _run("digest", str(tmp_path / "nope"))
    assert (status, out) == (2, "")
    assert err == f"source-stamp: {tmp_path / 'nope'} is not a cloud assembly (no manifest.json); run bash scripts/synth.sh\n"


@pytest.mark.parametrize("tamper, accepted", [(False, True), (True, False)])
def test_check_with_a_digest_refuses_other_bytes_and_names_both_digests(tmp_path, tamper, accepted):
    """GIVEN an assembly synthesized from this checkout and the digest the build recorded WHEN the deploy job checks it
    with ``--digest`` THEN the assembly as uploaded is accepted and its line names its commit and digest; one with any
    other byte is refused with one line naming both digests, though its source stamp is right."""
    assembly = _assembly(tmp_path / "cdk.out")
    source_stamp.write_stamp(assembly, source_stamp.fingerprint(REPO_ROOT))
    recorded = source_stamp.assembly_digest(assembly)
    if tamper:
        (assembly / "asset.0123abcd" / "index.py").write_text("def handler(event, context):\n    return 2\n")
    status, out, err = _run("check", str(assembly), "--digest", recorded)
    if accepted:
        assert (status, err) == (0, "")
        stamp = source_stamp.read_stamp(assembly)
        assert out == f"{assembly}: synthesized from {stamp.describe()}, the tree as it is now; digest {recorded}\n"
    else:
        now = source_stamp.assembly_digest(assembly)
        assert (status, out) == (1, "")
        assert err == (f"source-stamp: {assembly} is not the assembly the build recorded: its digest is {now}, the "
                       f"build's {recorded}; deploy the build's own artifact (re-run the whole workflow)\n")


def test_check_refuses_a_digest_that_is_no_digest(tmp_path):
    assembly = _assembly(tmp_path / "cdk.out")
    source_stamp.write_stamp(assembly, source_stamp.fingerprint(REPO_ROOT))
    status, out, err = _run("check", str(assembly), "--digest", "")
    assert (status, out) == (2, "")
    assert err == ("source-stamp: --digest '': not an assembly digest (sha256:<64 hex digits>, what `python -m "
                   "mlops_loop.tools.source_stamp digest` prints); is the build job's output assembly-digest passed?\n")
