"""Comparing two cloud assemblies: per stack, resources added, removed, modified or replaced."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional, Sequence

from ..cloud_assembly import SynthesizedStack, stacks
from .callouts import callouts_for
from .create_only import changed_create_only, create_only_properties
from .model import (
    CATEGORY_RETENTION,
    STATEFUL_TYPES,
    AssemblyDiff,
    Callout,
    PropertyChange,
    ResourceChange,
    StackDiff,
    TemplateDiffError,
)
from .normalise import expand_json_documents, normalise_assets, strip_commit_stamps
from .values import diff_values, shorten


# Resource attributes compared besides Properties. Metadata (aws:cdk:path, asset paths) and
# DependsOn (deployment order) change nothing in the deployed resource, so they are not compared.
_ATTRIBUTES = ("DeletionPolicy", "UpdateReplacePolicy", "UpdatePolicy", "CreationPolicy", "Condition")

def _resource_view(resource: dict) -> dict:
    view = {"Properties": resource.get("Properties", {})}
    for attribute in _ATTRIBUTES:
        if attribute in resource:
            view[attribute] = resource[attribute]
    return view


def _policies(resource: dict) -> tuple[str, str]:
    return resource.get("DeletionPolicy", "Delete"), resource.get("UpdateReplacePolicy", "Delete")


def diff_resource(logical_id: str, *, old: dict, new: dict, region: str = "us-east-1") -> Optional[ResourceChange]:
    """How ``old`` became ``new`` (same logical ID), or None when they deploy the same way.

    Asset hashes are normalised before the property comparison, but a resource whose only difference
    is an asset hash is still reported, as "modified (asset changed)": deploying it really does
    change what runs (new Glue script, Lambda code, pipeline steps), so hiding it would hide a prod
    change from review, while printing raw hash pairs as property changes would drown the real ones.
    """
    old, new = strip_commit_stamps(old), strip_commit_stamps(new)
    raw_old, raw_new = expand_json_documents(_resource_view(old)), expand_json_documents(_resource_view(new))
    if raw_old == raw_new and old.get("Type") == new.get("Type"):
        return None
    changes = diff_values(normalise_assets(raw_old), normalise_assets(raw_new))
    seen = {c.path for c in changes}
    changes += [
        PropertyChange(c.path, c.old, c.new, asset_only=True) for c in diff_values(raw_old, raw_new) if c.path not in seen
    ]
    deletion, update_replace = _policies(old)
    change = ResourceChange(
        logical_id=logical_id,
        resource_type=new.get("Type", "?"),
        kind="modified",
        changes=changes,
        deletion_policy=deletion,
        update_replace_policy=update_replace,
    )
    if old.get("Type") != new.get("Type"):
        change.kind, change.replacement = "replaced", "yes"
        change.replacement_reasons.append(f"type changed from {old.get('Type')}")
        return change
    pointers = create_only_properties(change.resource_type, region=region)
    if pointers is None:
        change.replacement = "unknown"
        return change
    create_only, conditional = pointers
    old_props, new_props = old.get("Properties", {}), new.get("Properties", {})
    reasons = changed_create_only(old_props, new_props, pointers=create_only)
    conditional_reasons = changed_create_only(old_props, new_props, pointers=conditional)
    if reasons:
        change.kind, change.replacement = "replaced", "yes"
        change.replacement_reasons = [f"create-only {r} changed" for r in reasons]
        _note_custom_name(change, old_props=old_props, new_props=new_props, create_only=create_only)
    elif conditional_reasons:
        change.kind, change.replacement = "replaced", "conditional"
        change.replacement_reasons = [f"conditionally create-only {r} changed" for r in conditional_reasons]
    return change


def _note_custom_name(change: ResourceChange, *, old_props: dict, new_props: dict, create_only: Sequence[str]) -> None:
    # CloudFormation creates the replacement before deleting the old one, so a fixed physical name
    # that stays the same collides with itself and the update fails.
    for pointer in create_only:
        parts = pointer.split("/")[2:]
        if len(parts) == 1 and parts[0].endswith("Name") and parts[0] in old_props and old_props.get(parts[0]) == new_props.get(parts[0]):
            change.notes.append(
                f"{parts[0]} is fixed ({shorten(old_props[parts[0]], 60)}): CloudFormation creates the replacement "
                "before deleting the old resource, so it cannot replace a custom-named resource: this update "
                "fails unless the name changes too"
            )
            return


def _pair_renames(removed: dict[str, dict], added: dict[str, dict]) -> list[tuple[str, str]]:
    """(old id, new id) pairs that look like one resource under a new logical ID.

    Same construct path (aws:cdk:path) first; for stateful types, a single removed + single added
    resource of one type also pairs (conservative: it is flagged, not hidden).
    """
    pairs = []
    path = lambda r: (r.get("Metadata") or {}).get("aws:cdk:path")  # noqa: E731
    left_added = dict(added)
    for old_id, old in removed.items():
        match = next(
            (nid for nid, n in left_added.items() if n.get("Type") == old.get("Type") and path(n) and path(n) == path(old)),
            None,
        )
        if match:
            pairs.append((old_id, match))
            del left_added[match]
    paired_old = {p[0] for p in pairs}
    for cfn_type in sorted({r.get("Type") for r in removed.values()} & STATEFUL_TYPES):
        olds = [i for i, r in removed.items() if r.get("Type") == cfn_type and i not in paired_old]
        news = [i for i, r in left_added.items() if r.get("Type") == cfn_type]
        if len(olds) == 1 and len(news) == 1:
            pairs.append((olds[0], news[0]))
    return pairs


def diff_stack(
    *, stage: str, artifact_id: str, old: Optional[SynthesizedStack], new: Optional[SynthesizedStack]
) -> StackDiff:
    """Resource and stack-level differences of one stack (``old`` None: added; ``new`` None: removed)."""
    old_t = old.template if old else {}
    new_t = new.template if new else {}
    region = _stack_region(new or old)
    old_res, new_res = old_t.get("Resources", {}), new_t.get("Resources", {})
    status = "added" if old is None else "removed" if new is None else "changed"
    result = StackDiff(stage=stage, artifact_id=artifact_id, stack_name=(new or old).stack_name, status=status)

    removed = {k: v for k, v in old_res.items() if k not in new_res}
    added = {k: v for k, v in new_res.items() if k not in old_res}
    for old_id, new_id in _pair_renames(removed, added) if old and new else []:
        rc = diff_resource(new_id, old=removed.pop(old_id), new=added.pop(new_id), region=region)
        deletion, update_replace = _policies(old_res[old_id])
        rc = rc or ResourceChange(new_id, new_res[new_id]["Type"], "replaced")
        rc.kind, rc.replacement, rc.renamed_from = "replaced", "yes", old_id
        rc.deletion_policy, rc.update_replace_policy = deletion, update_replace
        rc.replacement_reasons.insert(0, f"logical ID changed from {old_id}: CloudFormation deletes {old_id} and creates {new_id}")
        pointers = create_only_properties(rc.resource_type, region=region)
        if pointers and not rc.notes:
            _note_custom_name(
                rc,
                old_props=old_res[old_id].get("Properties", {}),
                new_props=new_res[new_id].get("Properties", {}),
                create_only=pointers[0],
            )
        result.resources.append(rc)
    for lid, res in old_res.items():
        if lid in new_res:
            rc = diff_resource(lid, old=res, new=new_res[lid], region=region)
            if rc:
                result.resources.append(rc)
        elif lid in removed:
            deletion, update_replace = _policies(res)
            result.resources.append(ResourceChange(lid, res.get("Type", "?"), "removed", deletion_policy=deletion, update_replace_policy=update_replace))
    for lid, res in added.items():
        deletion, update_replace = _policies(res)
        result.resources.append(ResourceChange(lid, res.get("Type", "?"), "added", deletion_policy=deletion, update_replace_policy=update_replace))

    if old and new:
        # Parameters (what a deploy or the approval handler may set, and what it admits) and conditions
        # (which resources exist) change what a stack does as much as its resources.
        for section in ("Parameters", "Conditions", "Outputs"):
            section_old = strip_commit_stamps(old_t.get(section, {}))
            section_new = strip_commit_stamps(new_t.get(section, {}))
            result.stack_changes += diff_values(normalise_assets(section_old), normalise_assets(section_new), (section,))
        if old.termination_protection != new.termination_protection:
            result.stack_changes.append(
                PropertyChange(("TerminationProtection",), old.termination_protection, new.termination_protection)
            )
        if not result.resources and not result.stack_changes:
            result.status = "unchanged"
    return result


def _stack_region(stack: SynthesizedStack) -> str:
    """The stack's region from its stage manifest (``aws://account/region``); us-east-1 when unresolved."""
    try:
        manifest = json.loads((stack.template_path.parent / "manifest.json").read_text())
        env = manifest["artifacts"][stack.artifact_id].get("environment", "")
    except (OSError, KeyError, ValueError):
        return "us-east-1"
    region = env.rsplit("/", 1)[-1]
    return region if re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region) else "us-east-1"



def compare_assemblies(base: str | Path, head: str | Path, *, environments: Optional[Sequence[str]] = None) -> AssemblyDiff:
    """Compare two cloud assemblies per environment (stage) and stack (matched by stage + artifact id).

    ``environments`` limits the comparison to those stages (default: every stage of either side);
    a name in neither assembly raises TemplateDiffError.
    """
    old_stacks = {(s.stage, s.artifact_id): s for s in stacks(base)}
    new_stacks = {(s.stage, s.artifact_id): s for s in stacks(head)}
    stages = list(dict.fromkeys([k[0] for k in old_stacks] + [k[0] for k in new_stacks]))
    if environments:
        unknown = [e for e in environments if e not in stages]
        if unknown:
            raise TemplateDiffError(
                f"--env {' '.join(unknown)}: not an environment of either assembly; choose from {', '.join(stages)}"
            )
        stages = [s for s in stages if s in environments]
    result = AssemblyDiff(environments=stages, stacks=[], callouts=[])
    keys = list(dict.fromkeys(list(old_stacks) + list(new_stacks)))
    for key in keys:
        if key[0] not in stages:
            continue
        sd = diff_stack(stage=key[0], artifact_id=key[1], old=old_stacks.get(key), new=new_stacks.get(key))
        result.stacks.append(sd)
        for rc in sd.resources:
            result.callouts.extend(callouts_for(key[0], sd, rc))
        for change in sd.stack_changes:
            if change.path == ("TerminationProtection",):
                result.callouts.append(
                    Callout(key[0], CATEGORY_RETENTION, sd.short_name, "(stack)", "AWS::CloudFormation::Stack",
                            f"termination protection turned {'on' if change.new else 'OFF: the stack can be deleted'}")
                )
    return result
