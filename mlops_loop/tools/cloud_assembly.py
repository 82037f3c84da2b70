"""Read a synthesized cloud assembly (cdk.out): stages, stacks and their templates."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional


@dataclass(frozen=True)
class SynthesizedStack:
    stage: str
    stack_name: str
    artifact_id: str
    template_path: Path
    termination_protection: bool
    region: Optional[str] = None  # where it deploys (None: an environment-agnostic stack)
    # The manifest's deployment target, ``aws://<account>/<region>`` ("" when the manifest names none). With the
    # stack name it is the stack's identity in CloudFormation: what ``cdk deploy`` updates, or creates anew.
    environment: str = ""

    @property
    def template(self) -> dict:
        return json.loads(self.template_path.read_text())

    @property
    def deploys_as(self) -> tuple[str, str]:
        """(target, stack name): the CloudFormation stack ``cdk deploy`` updates; another value is another stack."""
        return self.environment, self.stack_name

    @property
    def construct_id(self) -> str:
        """The stack's construct id in its stage (``Serving``), see :func:`construct_id`."""
        return construct_id(self.stage, self.artifact_id)


def construct_id(stage: str, artifact_id: str) -> str:
    """A stack's construct id (``Serving``): its artifact id less the stage prefix and the hash CDK appends."""
    return re.sub(r"[0-9A-F]{8}$", "", artifact_id.removeprefix(stage)) or artifact_id


def stacks(outdir: str | Path) -> Iterator[SynthesizedStack]:
    """Every stack of every stage in the assembly at ``outdir``, in manifest order."""
    outdir = Path(outdir)
    manifest = json.loads((outdir / "manifest.json").read_text())
    for artifact in manifest["artifacts"].values():
        if artifact["type"] != "cdk:cloud-assembly":
            continue
        stage_dir = outdir / artifact["properties"]["directoryName"]
        stage = artifact["properties"].get("displayName", stage_dir.name)
        stage_manifest = json.loads((stage_dir / "manifest.json").read_text())
        for artifact_id, stack in stage_manifest["artifacts"].items():
            if stack["type"] != "aws:cloudformation:stack":
                continue
            props = stack["properties"]
            yield SynthesizedStack(
                stage=stage,
                stack_name=props.get("stackName", artifact_id),
                artifact_id=artifact_id,
                template_path=stage_dir / props["templateFile"],
                termination_protection=bool(props.get("terminationProtection", False)),
                region=_region(stack.get("environment", "")),
                environment=stack.get("environment", ""),
            )


def _region(environment: str) -> Optional[str]:
    """``eu-west-1`` of a manifest's ``aws://111111111111/eu-west-1`` (None for ``unknown-region``)."""
    region = environment.rsplit("/", 1)[-1] if environment.startswith("aws://") else ""
    return None if region in ("", "unknown-region") else region


def nag_violations(outdir: str | Path) -> list[dict]:
    """Unacknowledged cdk-nag findings recorded in the assembly's validation report (none when clean)."""
    report = Path(outdir) / "validation-report.json"
    if not report.exists():
        return []
    out = []
    for plugin in json.loads(report.read_text()).get("pluginReports", []):
        for violation in plugin.get("violations", []):
            out.append({"pack": plugin.get("pluginName"), **violation})
    return out
