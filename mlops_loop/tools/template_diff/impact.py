"""Which changes replace a resource: asked of ``@aws-cdk/cloudformation-diff``, the comparison ``cdk diff`` runs.

One Node process per comparison (``impact.js`` beside this module) answers for every changed resource
of the assembly at once, with the resource specification bundled in the pinned CDK CLI
(``node_modules/aws-cdk``), so the answer is the one ``cdk diff`` of the deploying CLI would give.
The rest of the template diff (leaf-level value changes inside embedded JSON documents, renamed
logical IDs, the review call-outs) is this package's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .model import TemplateDiffError


_SCRIPT = Path(__file__).with_name("impact.js")
_REPO = Path(__file__).resolve().parents[3]
_CLI = _REPO / "node_modules" / "aws-cdk" / "lib" / "index.js"

WILL_REPLACE = "WILL_REPLACE"
MAY_REPLACE = "MAY_REPLACE"
NO_CHANGE = "NO_CHANGE"


@dataclass
class Impact:
    """cloudformation-diff's verdict on one resource: its overall impact and each changed property's."""

    impact: str
    properties: dict[str, str] = field(default_factory=dict)

    def named(self, impact: str) -> list[str]:
        """The changed top-level properties with ``impact``, in template order."""
        return [name for name, value in self.properties.items() if value == impact]


def _node() -> str:
    local = _REPO / "node_modules" / ".bin" / "node"
    found = str(local) if local.exists() else shutil.which("node")
    if not found or not _CLI.exists():
        raise TemplateDiffError(
            "the template diff needs Node and the pinned CDK CLI (node_modules/aws-cdk): "
            "run '. scripts/bootstrap.sh' in the repository first"
        )
    return found


def change_impacts(
    pairs: Sequence[tuple[dict, dict]], replacing: Sequence[tuple[str, Sequence[str]]] = ()
) -> tuple[list[Impact], list[list[str]]]:
    """(per (old, new) resource pair its Impact, per (type, property names) the names whose change replaces).

    No Node process is started when there is nothing to ask.
    """
    if not pairs and not replacing:
        return [], []
    request = {
        "cli": str(_CLI),
        "resources": [{"old": old, "new": new} for old, new in pairs],
        "replacing": [{"type": cfn_type, "properties": list(names)} for cfn_type, names in replacing],
    }
    result = subprocess.run(
        [_node(), str(_SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        # Node's compile cache (ignored by git, safe to delete) saves a fifth of loading the 16 MB CLI bundle.
        env={**os.environ, "NODE_NO_WARNINGS": "1", "NODE_COMPILE_CACHE": str(_REPO / ".cache" / "node-compile")},
    )
    if result.returncode != 0:
        raise TemplateDiffError(f"cloudformation-diff failed (node {_SCRIPT.name}): {result.stderr.strip()[-2000:]}")
    answer = json.loads(result.stdout)
    impacts = [Impact(r["impact"], r["properties"]) for r in answer["resources"]]
    return impacts, answer["replacing"]
