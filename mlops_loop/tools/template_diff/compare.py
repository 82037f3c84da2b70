"""Comparing two cloud assemblies: per stack, resources added, removed, modified or replaced; stacks moved or left."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..cloud_assembly import SynthesizedStack, stacks
from .callouts import autoscaled_retype_callouts, callouts_for, image_callouts, left_running_callout, moved_callout
from .running_work import running_work_callouts
from .impact import MAY_REPLACE, NO_CHANGE, WILL_REPLACE, Impact, change_impacts
from .model import (
    CATEGORY_RETENTION,
    KEPT_DELETION_POLICIES,
    MISSING,
    STATEFUL_TYPES,
    AssemblyDiff,
    Callout,
    PropertyChange,
    ResourceChange,
    StackDiff,
    StackLocation,
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


def _value_change(logical_id: str, *, old: dict, new: dict) -> Optional[ResourceChange]:
    """How ``old`` became ``new`` (same logical ID) as values, or None when they deploy the same way.

    Asset hashes are normalised before the property comparison, but a resource whose only difference
    is an asset hash is still reported, as "modified (asset changed)": deploying it really does
    change what runs (new Glue script, Lambda code, pipeline steps), so hiding it would hide a prod
    change from review, while printing raw hash pairs as property changes would drown the real ones.
    Whether the change replaces the resource is decided later, for all resources at once (:func:`_decide`).
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
        before=old,
        after=new,
    )
    if old.get("Type") != new.get("Type"):
        change.kind, change.replacement = "replaced", "yes"
        change.replacement_reasons.append(f"type changed from {old.get('Type')}")
    return change


@dataclass
class _Undecided:
    """A changed resource whose replacement cloudformation-diff has yet to decide."""

    change: ResourceChange
    old: dict
    new: dict

    def fixed_names(self) -> list[str]:
        """The physical-name property (``FeatureGroupName`` of a feature group, ``BucketName``, or ``Name``) when it is
        set to the same value on both sides: a fixed name. Other ``...Name`` properties (a feature group's
        ``EventTimeFeatureName``) name something inside the resource, not the resource."""
        old_props, new_props = self.old.get("Properties", {}), self.new.get("Properties", {})
        own = (self.change.resource_type.rsplit("::", 1)[-1] + "Name", "Name")
        return [k for k, v in old_props.items() if k in own and k in new_props and new_props[k] == v]


def _kept_name(resource: dict) -> str:
    """The fixed physical name (``BucketName``, ``LogGroupName``, ``Name``, ...) of a resource CloudFormation keeps
    when it is removed, else ""."""
    if resource.get("DeletionPolicy") not in KEPT_DELETION_POLICIES:
        return ""
    props = resource.get("Properties") or {}
    own = (str(resource.get("Type", "")).rsplit("::", 1)[-1] + "Name", "Name")
    return next((v for k, v in props.items() if k in own and isinstance(v, str)), "")


def _decide(undecided: Sequence[_Undecided]) -> None:
    """Mark each change replaced (create-only property changed), conditionally replaced, or of unknown impact.

    One cloudformation-diff call answers for all of them, and says which of each resource's fixed
    names are create-only (a replacement then collides with the old resource's name).
    """
    impacts, create_only_names = change_impacts(
        [(strip_commit_stamps(u.old), strip_commit_stamps(u.new)) for u in undecided],
        [(u.change.resource_type, u.fixed_names()) for u in undecided],
    )
    for u, impact, names in zip(undecided, impacts, create_only_names):
        change = u.change
        replaced, conditional = impact.named(WILL_REPLACE), impact.named(MAY_REPLACE)
        if change.renamed_from is not None:
            change.replacement_reasons += [f"create-only {r} changed" for r in replaced]
        elif change.replacement == "no":
            if replaced:
                change.kind, change.replacement = "replaced", "yes"
                change.replacement_reasons = [f"create-only {r} changed" for r in replaced]
            elif conditional:
                change.kind, change.replacement = "replaced", "conditional"
                change.replacement_reasons = [f"conditionally create-only {r} changed" for r in conditional]
            elif _unknown(u, impact):
                change.replacement = "unknown"
        if change.replacement == "yes" and names and not change.notes:
            name = names[0]
            change.notes.append(
                f"{name} is fixed ({shorten(u.old['Properties'][name], 60)}): CloudFormation creates the replacement "
                "before deleting the old resource, so it cannot replace a custom-named resource: this update "
                "fails unless the name changes too"
            )


def _unknown(u: _Undecided, impact: Impact) -> bool:
    # cloudformation-diff answers NO_CHANGE for a property its specification does not know (every
    # property of Custom::* or of a type newer than the CLI), even when the value changed.
    # As cloudformation-diff saw them: commit stamps are not changes.
    old_props = strip_commit_stamps(u.old).get("Properties", {})
    new_props = strip_commit_stamps(u.new).get("Properties", {})
    changed = [k for k in dict.fromkeys([*old_props, *new_props]) if old_props.get(k, MISSING) != new_props.get(k, MISSING)]
    return any(impact.properties.get(k, NO_CHANGE) == NO_CHANGE for k in changed)


def diff_resource(logical_id: str, *, old: dict, new: dict) -> Optional[ResourceChange]:
    """How ``old`` became ``new`` (same logical ID), or None when they deploy the same way.

    A changed create-only property (cloudformation-diff's "causes replacement: yes") makes it
    "replaced"; see :func:`_value_change` for how values are compared.
    """
    change = _value_change(logical_id, old=old, new=new)
    if change is not None:
        _decide([_Undecided(change, old, new)])
    return change


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
    undecided: list[_Undecided] = []
    result = _diff_stack(stage=stage, artifact_id=artifact_id, old=old, new=new, undecided=undecided)
    _decide(undecided)
    return result


def _diff_stack(
    *, stage: str, artifact_id: str, old: Optional[SynthesizedStack], new: Optional[SynthesizedStack],
    undecided: list[_Undecided],
) -> StackDiff:
    old_t = old.template if old else {}
    new_t = new.template if new else {}
    old_res, new_res = old_t.get("Resources", {}), new_t.get("Resources", {})
    status = "added" if old is None else "removed" if new is None else "changed"
    result = StackDiff(stage=stage, artifact_id=artifact_id, stack_name=(new or old).stack_name, status=status)

    removed = {k: v for k, v in old_res.items() if k not in new_res}
    added = {k: v for k, v in new_res.items() if k not in old_res}
    for old_id, new_id in _pair_renames(removed, added) if old and new else []:
        old_resource, new_resource = removed.pop(old_id), added.pop(new_id)
        rc = _value_change(new_id, old=old_resource, new=new_resource)
        deletion, update_replace = _policies(old_resource)
        rc = rc or ResourceChange(new_id, new_resource["Type"], "replaced", before=old_resource, after=new_resource)
        rc.kind, rc.replacement, rc.renamed_from = "replaced", "yes", old_id
        rc.deletion_policy, rc.update_replace_policy = deletion, update_replace
        rc.replacement_reasons.insert(0, f"logical ID changed from {old_id}: CloudFormation deletes {old_id} and creates {new_id}")
        undecided.append(_Undecided(rc, old_resource, new_resource))
        result.resources.append(rc)
    for lid, res in old_res.items():
        if lid in new_res:
            rc = _value_change(lid, old=res, new=new_res[lid])
            if rc:
                undecided.append(_Undecided(rc, res, new_res[lid]))
                result.resources.append(rc)
        elif lid in removed:
            deletion, update_replace = _policies(res)
            rc = ResourceChange(lid, res.get("Type", "?"), "removed", deletion_policy=deletion, update_replace_policy=update_replace,
                                before=res)
            name = _kept_name(res)
            if name:
                rc.notes.append(f"Its name {shorten(name, 60)} stays taken while the kept resource exists: adding a "
                                "resource of that name back later (turning the option on again, re-adding the model) "
                                "fails until the kept one is deleted by hand")
            result.resources.append(rc)
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


def _location(stack: SynthesizedStack) -> StackLocation:
    return StackLocation(stack.stage, stack.artifact_id, stack.stack_name, stack.environment, stack.termination_protection)


def _pair_stacks(
    old: Sequence[SynthesizedStack], new: Sequence[SynthesizedStack]
) -> list[tuple[Optional[SynthesizedStack], Optional[SynthesizedStack]]]:
    """(base, head) stacks as ``cdk deploy`` treats them, in base order then the head's new stacks.

    A stack is its target and name (``aws://<account>/<region>`` + stack name): a head stack deploying as a base
    stack updates it, whatever its environment or artifact is called. A base stack whose target or name changed
    pairs with the head stack of the same environment and artifact id (a region, account or project change), or,
    when an environment is gone and another is new, with the stack of the same construct id in it (a renamed
    environment): such a pair is a move, a new stack beside the old one. Whatever else is left is a stack added
    to, or removed from, the app.
    """
    heads_by_identity = {s.deploys_as: s for s in new}
    partner: dict[int, SynthesizedStack] = {}
    used: set[int] = set()
    for i, stack in enumerate(old):
        match = heads_by_identity.get(stack.deploys_as)
        if match is not None and id(match) not in used:
            partner[i] = match
            used.add(id(match))
    heads_by_artifact = {(s.stage, s.artifact_id): s for s in new if id(s) not in used}
    for i, stack in enumerate(old):
        match = heads_by_artifact.get((stack.stage, stack.artifact_id))
        if i not in partner and match is not None:
            partner[i] = match
            used.add(id(match))
    for gone, new_stage in _renamed_environments(old, new).items():
        candidates = {s.construct_id: s for s in new if s.stage == new_stage and id(s) not in used}
        for i, stack in enumerate(old):
            match = candidates.get(stack.construct_id)
            if stack.stage == gone and i not in partner and match is not None:
                partner[i] = match
                used.add(id(match))
    pairs: list[tuple[Optional[SynthesizedStack], Optional[SynthesizedStack]]] = [
        (stack, partner.get(i)) for i, stack in enumerate(old)
    ]
    return pairs + [(None, stack) for stack in new if id(stack) not in used]


def _renamed_environments(old: Sequence[SynthesizedStack], new: Sequence[SynthesizedStack]) -> dict[str, str]:
    """Base environment -> the head environment it was renamed to: an environment only the base has, paired with
    one only the head has and made of the same stacks (construct ids). With several on each side, a pair must
    also deploy to the same targets; an ambiguous one is left unpaired (its stacks: removed and added)."""
    def stages(stacks: Sequence[SynthesizedStack]) -> dict[str, tuple[frozenset, frozenset]]:
        out: dict[str, tuple[set, set]] = {}
        for s in stacks:
            ids, targets = out.setdefault(s.stage, (set(), set()))
            ids.add(s.construct_id)
            targets.add(s.environment)
        return {k: (frozenset(ids), frozenset(targets)) for k, (ids, targets) in out.items()}

    old_stages, new_stages = stages(old), stages(new)
    gone = {k: v for k, v in old_stages.items() if k not in new_stages}
    fresh = {k: v for k, v in new_stages.items() if k not in old_stages}
    renamed: dict[str, str] = {}
    for name, (ids, targets) in gone.items():
        same = [k for k, (new_ids, _) in fresh.items() if new_ids == ids and k not in renamed.values()]
        if len(gone) == 1 and len(same) == 1:
            renamed[name] = same[0]
            continue
        same = [k for k in same if fresh[k][1] == targets]
        if len(same) == 1:
            renamed[name] = same[0]
    return renamed


def compare_assemblies(base: str | Path, head: str | Path, *, environments: Optional[Sequence[str]] = None) -> AssemblyDiff:
    """Compare two cloud assemblies per environment (stage) and stack, as ``cdk deploy`` would change them.

    Stacks are matched by where they deploy (target and stack name, see :func:`_pair_stacks`). A stack whose
    target or name changed, or that moved to a renamed environment, is "moved": every resource is created anew
    in the new stack and the old one is left as it is (a MOVED call-out, none of the replacement call-outs). A
    stack only the base has is "removed" from the app, which ``cdk deploy`` never deletes (a LEFT RUNNING
    call-out). ``environments`` limits the comparison to those stages (default: every stage of either side); a
    name in neither assembly raises TemplateDiffError.
    """
    old_stacks, new_stacks = list(stacks(base)), list(stacks(head))
    stages = list(dict.fromkeys([s.stage for s in old_stacks] + [s.stage for s in new_stacks]))
    if environments:
        unknown = [e for e in environments if e not in stages]
        if unknown:
            raise TemplateDiffError(
                f"--env {' '.join(unknown)}: not an environment of either assembly; choose from {', '.join(stages)}"
            )
        stages = [s for s in stages if s in environments]
    pairs = _pair_stacks([s for s in old_stacks if s.stage in stages], [s for s in new_stacks if s.stage in stages])
    result = AssemblyDiff(environments=stages, stacks=[], callouts=[])
    undecided: list[_Undecided] = []
    for old, new in pairs:
        if old is not None and new is not None and old.deploys_as != new.deploys_as:
            # A new stack beside the old one: everything in it is created, nothing of the old one changes.
            sd = _diff_stack(stage=new.stage, artifact_id=new.artifact_id, old=None, new=new, undecided=undecided)
            sd.status, sd.location, sd.moved_from = "moved", _location(new), _location(old)
        elif new is None:
            # cdk deploy never deletes a stack the app no longer has: nothing in it changes.
            sd = StackDiff(stage=old.stage, artifact_id=old.artifact_id, stack_name=old.stack_name, status="removed",
                           location=_location(old))
        else:
            sd = _diff_stack(stage=new.stage, artifact_id=new.artifact_id, old=old, new=new, undecided=undecided)
        result.stacks.append(sd)
    # An environment whose stacks all moved to a renamed one is reported under its new name only.
    result.environments = [s for s in stages if any(sd.stage == s for sd in result.stacks)]
    # One request to cloudformation-diff for the whole comparison (its process answers one request at a time).
    _decide(undecided)
    # The base resources of each environment's stacks: what starts a job may sit in another stack than the job.
    environments_before: dict[str, list[dict[str, dict]]] = {}
    for old, _ in pairs:
        if old is not None:
            environments_before.setdefault(old.stage, []).append(old.template.get("Resources", {}))
    for (old, new), sd in zip(pairs, result.stacks):
        if sd.status == "changed":
            # First: it marks statements moved between policies of a role, which the per-resource call-outs then skip.
            result.callouts.extend(running_work_callouts(
                sd, old=old.template.get("Resources", {}), new=new.template.get("Resources", {}),
                environment=environments_before.get(old.stage, []), region=new.region or "<region>"))
        if sd.status == "moved":
            result.callouts.append(moved_callout(sd, new=_location(new), old=_location(old),
                                                 resources=new.template.get("Resources", {})))
        elif sd.status == "removed":
            result.callouts.append(left_running_callout(sd, old=_location(old), resources=old.template.get("Resources", {})))
        for rc in sd.resources:
            result.callouts.extend(callouts_for(sd.stage, sd, rc,
                                                before_dir=old.template_path.parent if old is not None else None,
                                                after_dir=new.template_path.parent if new is not None else None))
        if sd.status == "changed":
            # Judged across resources (endpoint, its configs, scalable targets), not per changed resource.
            result.callouts.extend(autoscaled_retype_callouts(sd, old=old.template.get("Resources", {}),
                                                              new=new.template.get("Resources", {})))
        for change in sd.stack_changes:
            if change.path == ("TerminationProtection",):
                result.callouts.append(
                    Callout(sd.stage, CATEGORY_RETENTION, sd.short_name, "(stack)", "AWS::CloudFormation::Stack",
                            f"termination protection turned {'on' if change.new else 'OFF: the stack can be deleted'}")
                )
    for stage in result.environments:
        # Once per environment: an image bump shows on every pipeline step and monitor schedule of every model.
        result.callouts.extend(image_callouts(stage, result.for_stage(stage)))
    return result
