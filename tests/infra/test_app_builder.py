"""new_app: the App as this project's `cdk synth` builds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mlops_loop.app_builder import DISABLE_ASSET_STAGING
from tests.support.paths import REPO_ROOT


@pytest.mark.parametrize("context, kept", [({}, False), ({DISABLE_ASSET_STAGING: True}, True)],
                         ids=["staging", "no-staging"])
def test_an_app_that_stages_no_assets_keeps_the_generated_sources_past_the_process(tmp_path, context, kept):
    """GIVEN the context the CDK CLI hands the app process (``cdk synth --no-staging`` sets the key) WHEN
    new_app builds the App, a file is staged and the process exits THEN the file outlives the process exactly
    when the assembly points at it."""
    program = (
        "from mlops_loop.app_builder import new_app\n"
        "from mlops_loop.packaging import staged_file\n"
        "new_app()\n"
        "print(staged_file('spec.json', '{}'))\n"
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": str(REPO_ROOT), "CDK_CONTEXT_JSON": json.dumps(context)}
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    staged = result.stdout.strip()
    assert staged.startswith(str(scratch))
    assert os.path.exists(staged) == kept
    if not kept:
        assert list(scratch.iterdir()) == []
