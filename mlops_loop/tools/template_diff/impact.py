"""Which changes replace a resource: asked of ``@aws-cdk/cloudformation-diff``, the comparison ``cdk diff`` runs.

One Node process (``impact.js`` beside this module), started at the first question and kept until the
Python process exits, answers each comparison for every changed resource of the assembly at once, with
the resource specification bundled in the pinned CDK CLI (``node_modules/aws-cdk``), so the answer is the
one ``cdk diff`` of the deploying CLI would give.
The rest of the template diff (leaf-level value changes inside embedded JSON documents, renamed
logical IDs, the review call-outs) is this package's own.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
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
    answer = _ask(json.dumps(request))
    impacts = [Impact(r["impact"], r["properties"]) for r in answer["resources"]]
    return impacts, answer["replacing"]


class _Worker:
    """``node impact.js``: one JSON request per line in, one answer per line out; its stderr to a temp file."""

    def __init__(self, node: str):
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [node, str(_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            # Node's compile cache (ignored by git, safe to delete) saves a fifth of loading the 16 MB CLI bundle.
            env={**os.environ, "NODE_NO_WARNINGS": "1", "NODE_COMPILE_CACHE": str(_REPO / ".cache" / "node-compile")},
        )

    def ask(self, line: str) -> dict:
        """The answer to one request; ValueError when the process fails on it (it has then exited)."""
        try:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
            answer = self.process.stdout.readline()
        except BrokenPipeError:
            answer = ""
        if not answer:
            raise ValueError(self._stderr_tail())
        return json.loads(answer)

    def _stderr_tail(self) -> str:
        self._end()
        self.stderr.seek(0)
        return self.stderr.read().strip()[-2000:]

    def _end(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def stop(self) -> None:
        self._end()
        self.stderr.close()


_workers: list[_Worker] = []  # at most one: the process answering this Python process's comparisons


@atexit.register
def _stop_worker() -> None:
    while _workers:
        _workers.pop().stop()


def _ask(line: str) -> dict:
    node = _node()
    if not _workers:
        _workers.append(_Worker(node))
    try:
        return _workers[0].ask(line)
    except BaseException as error:
        # Whatever went wrong (a failed request, an answer that is not JSON, an interrupt), that process may
        # still owe an answer: the next comparison starts a fresh one rather than read a stale line.
        _stop_worker()
        if isinstance(error, ValueError):
            raise TemplateDiffError(f"cloudformation-diff failed (node {_SCRIPT.name}): {error}") from None
        raise
