"""Offline template diff for pull-request review: base git ref vs the working tree, per environment and stack.

Usage::

    python -m mlops_loop.tools.template_diff --base REF [--head-assembly DIR] [--base-out DIR]
        [--format text|markdown] [--output FILE] [--env ENV ...] [--max-chars N] [--repo DIR] [--allow-stale]

The base ref is checked out into a temporary ``git worktree`` and synthesized there with
``python app.py`` (``CDK_OUTDIR`` set, Node 22 from ``node_modules/.bin`` first on PATH); the head side
is the working tree, synthesized the same way unless ``--head-assembly`` names an existing cloud
assembly (e.g. ``cdk.out`` from ``scripts/synth.sh``), which must have been synthesized from the
working tree as it is now (its source stamp, see ``mlops_loop.tools.source_stamp``; ``--allow-stale``
reads a stale one with a warning). The base assembly is stamped with the base commit. Nothing talks to AWS.

Per environment and stack it reports resources added / removed / modified / replaced (a modified
resource whose changed properties include a create-only property of its CloudFormation resource
schema, as bundled with cfn-lint), and calls out first: stateful resources whose data is at risk,
IAM, security-group, KMS and data-retention changes. Exit 0 when the diff was produced (with or
without changes), 2 with one message when it could not be (bad ref, not a git repository, base
that fails to synthesize, head directory that is not an assembly or not synthesized from the working tree).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

from . import source_stamp
from .cloud_assembly import SynthesizedStack, construct_id, stacks

REPO_ROOT = Path(__file__).resolve().parents[2]
GITHUB_COMMENT_LIMIT = 65_536
SYNTH_TIMEOUT_SECONDS = 15 * 60
STDERR_TAIL_LINES = 20

# Resource types that hold data (or whose identity others depend on, like a key): deleting or
# replacing one loses what it holds unless the old physical resource is retained.
STATEFUL_TYPES = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
        "AWS::Glue::Database",
        "AWS::Glue::Table",
        "AWS::SageMaker::FeatureGroup",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::SageMaker::ModelPackage",
        "AWS::SageMaker::Domain",
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::SQS::Queue",
        "AWS::Kinesis::Stream",
        "AWS::KinesisFirehose::DeliveryStream",
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBCluster",
        "AWS::EFS::FileSystem",
        "AWS::ECR::Repository",
        "AWS::SecretsManager::Secret",
        "AWS::Backup::BackupVault",
        "AWS::OpenSearchService::Domain",
        "AWS::Timestream::Table",
        "AWS::Cognito::UserPool",
    }
)

# Lineage stamps: the git commit (``-dirty`` for a modified working tree) is written into the
# training pipeline definitions. It differs between ANY two refs by construction, so it carries no
# review information (the pull request is the commit) and is dropped from the comparison entirely.
_COMMIT = re.compile(r"(?<![0-9a-f])[0-9a-f]{40}(?:-dirty)?(?![0-9a-f])")
# Asset hashes (64 hex: S3 keys of job code, Lambda code, model specs) and the 16-hex code digest of
# the training checkpoint prefix: the same patterns the snapshot tests normalise.
_ASSET_HASH = re.compile(r"[0-9a-f]{64}")
_CODE_DIGEST = re.compile(r"(?<![0-9a-f])[0-9a-f]{16}(?![0-9a-f])")

# Resource attributes compared besides Properties. Metadata (aws:cdk:path, asset paths) and
# DependsOn (deployment order) change nothing in the deployed resource, so they are not compared.
_ATTRIBUTES = ("DeletionPolicy", "UpdateReplacePolicy", "UpdatePolicy", "CreationPolicy", "Condition")

# Identifying fields of list items: lists of such dicts are matched by that field, so one inserted
# statement or pipeline step does not show up as a change of every later item.
_LIST_ITEM_KEYS = ("Sid", "Name", "Id", "Key", "VariantName", "PolicyName", "AttributeName", "FeatureName", "ParameterKey")

JSON_SEGMENT = "<json>"

CATEGORY_DATA_AT_RISK = "DATA AT RISK"
CATEGORY_IAM = "IAM"
CATEGORY_SECURITY_GROUPS = "Security groups"
CATEGORY_KMS = "KMS"
CATEGORY_RETENTION = "Data retention"
CATEGORIES = (CATEGORY_DATA_AT_RISK, CATEGORY_IAM, CATEGORY_SECURITY_GROUPS, CATEGORY_KMS, CATEGORY_RETENTION)

# Property names (any depth) whose change belongs to a call-out category.
_IAM_KEY = re.compile(
    r"PolicyDocument|^Policies$|^Policy$|^PolicyText$|KeyPolicy|ManagedPolicyArns|PermissionsBoundary|"
    r"RoleArn$|^Role$|^Roles$|^Principal$|^Users$|^Groups$"
)
_IAM_POLICY_TYPES = frozenset(
    {
        "AWS::S3::BucketPolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::Lambda::Permission",
        "AWS::Events::EventBusPolicy",
        "AWS::SecretsManager::ResourcePolicy",
    }
)
_SG_KEY = re.compile(r"SecurityGroup")
_KMS_KEY = re.compile(
    r"(?i)kms|EncryptionKey|^KeyArn$|^KeyId$|SSESpecification|BucketEncryption|EncryptionConfiguration|ServerSideEncryption"
)
_RETENTION_KEY = re.compile(
    r"(?i)lifecycle|retention|^ttl$|timetolive|expir|versioning|objectlock|deletionprotection|^DeletionPolicy$|^UpdateReplacePolicy$"
)


class TemplateDiffError(Exception):
    """The diff could not be produced; the message says what to fix."""


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


# --------------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------------


@dataclass
class PropertyChange:
    """One changed value at ``path`` (property names, ``[Key=value]``/``[i]`` list items, ``<json>``)."""

    path: tuple[str, ...]
    old: Any
    new: Any
    asset_only: bool = False  # differs only by an asset hash / code digest

    @property
    def dotted(self) -> str:
        return format_path(self.path)


@dataclass
class ResourceChange:
    logical_id: str
    resource_type: str
    kind: str  # "added" | "removed" | "modified" | "replaced"
    changes: list[PropertyChange] = field(default_factory=list)
    replacement: str = "no"  # "no" | "yes" | "conditional" | "unknown"
    replacement_reasons: list[str] = field(default_factory=list)
    renamed_from: Optional[str] = None
    deletion_policy: str = "Delete"
    update_replace_policy: str = "Delete"
    notes: list[str] = field(default_factory=list)

    @property
    def stateful(self) -> bool:
        return self.resource_type in STATEFUL_TYPES

    @property
    def asset_only(self) -> bool:
        return self.kind == "modified" and bool(self.changes) and all(c.asset_only for c in self.changes)

    @property
    def label(self) -> str:
        if self.kind == "replaced" and self.renamed_from:
            return f"replaced (renamed from {self.renamed_from})"
        if self.kind == "replaced" and self.replacement == "conditional":
            return "replaced (if the conditional create-only property requires it)"
        if self.kind == "modified" and self.replacement == "unknown":
            return "modified (replacement unknown)"
        if self.asset_only:
            return "modified (asset changed)"
        return self.kind


@dataclass
class StackDiff:
    stage: str
    artifact_id: str
    stack_name: str
    status: str  # "added" | "removed" | "changed" | "unchanged"
    resources: list[ResourceChange] = field(default_factory=list)
    stack_changes: list[PropertyChange] = field(default_factory=list)  # outputs, termination protection

    @property
    def short_name(self) -> str:
        # The construct id (Storage, Training, ...) reads better than the artifact id with its hash.
        return construct_id(self.stage, self.artifact_id)


@dataclass
class Callout:
    stage: str
    category: str
    stack: str
    logical_id: str
    resource_type: str
    message: str


@dataclass
class AssemblyDiff:
    environments: list[str]
    stacks: list[StackDiff]
    callouts: list[Callout]

    def for_stage(self, stage: str) -> list[StackDiff]:
        return [s for s in self.stacks if s.stage == stage]

    def callouts_for(self, stage: str) -> list[Callout]:
        order = {c: i for i, c in enumerate(CATEGORIES)}
        return sorted((c for c in self.callouts if c.stage == stage), key=lambda c: order[c.category])

    def counts(self, stage: str) -> dict[str, int]:
        out = {"stacks added": 0, "stacks removed": 0, "added": 0, "removed": 0, "modified": 0, "replaced": 0}
        for s in self.for_stage(stage):
            if s.status in ("added", "removed"):
                out[f"stacks {s.status}"] += 1
            for r in s.resources:
                out[r.kind] += 1
        out["call-outs"] = len(self.callouts_for(stage))
        return out

    @property
    def is_empty(self) -> bool:
        return not self.callouts and all(s.status == "unchanged" for s in self.stacks)


# --------------------------------------------------------------------------------------------
# Normalisation and structural diff
# --------------------------------------------------------------------------------------------


def _map_strings(value: Any, fn) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    return value


def strip_commit_stamps(value: Any) -> Any:
    """``value`` with every git commit stamp replaced by ``<git-commit>`` (see _COMMIT)."""
    return _map_strings(value, lambda s: _COMMIT.sub("<git-commit>", s))


def normalise_assets(value: Any) -> Any:
    """``value`` with asset hashes and code digests replaced by placeholders (as the snapshot tests do)."""
    return _map_strings(value, lambda s: _CODE_DIGEST.sub("<code-digest>", _ASSET_HASH.sub("<asset-hash>", s)))


def _token(value: Any) -> str:
    """A quote-free placeholder for an intrinsic inside a joined string, so the result can still parse as JSON."""
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return "${" + str(arg) + "}"
        if fn == "Fn::GetAtt" and isinstance(arg, list):
            return "${" + ".".join(map(str, arg)) + "}"
    return "${" + json.dumps(value, sort_keys=True, separators=(",", ":")).replace('"', "'") + "}"


def _parse_json_document(text: str) -> Any:
    stripped = text.strip()
    if len(stripped) < 2 or stripped[0] not in "{[":
        return MISSING
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return MISSING
    return parsed if isinstance(parsed, (dict, list)) else MISSING


def expand_json_documents(value: Any) -> Any:
    """Replace embedded JSON documents by their parsed form under a ``<json>`` key, recursively.

    SageMaker pipeline definitions (and other JSON-in-a-string properties) are one long string, or an
    ``Fn::Join`` of string pieces and intrinsics. Diffing them structurally turns "the definition
    changed" into "Parameters[Name=TrainingInstanceType].DefaultValue: ml.m5.xlarge -> ml.m5.2xlarge".
    """
    if isinstance(value, str):
        parsed = _parse_json_document(value)
        return value if parsed is MISSING else {JSON_SEGMENT: expand_json_documents(parsed)}
    if isinstance(value, dict):
        join = value.get("Fn::Join") if len(value) == 1 else None
        if isinstance(join, list) and len(join) == 2 and join[0] == "" and isinstance(join[1], list):
            text = "".join(p if isinstance(p, str) else _token(p) for p in join[1])
            parsed = _parse_json_document(text)
            if parsed is not MISSING:
                return {JSON_SEGMENT: expand_json_documents(parsed)}
        return {k: expand_json_documents(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_json_documents(v) for v in value]
    return value


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _list_item_key(old: list, new: list) -> Optional[str]:
    items = old + new
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in _LIST_ITEM_KEYS:
        if all(_is_scalar(i.get(key, MISSING)) and key in i for i in items):
            if len({i[key] for i in old}) == len(old) and len({i[key] for i in new}) == len(new):
                return key
    return None


def diff_values(old: Any, new: Any, path: tuple[str, ...] = ()) -> list[PropertyChange]:
    """Every leaf-level difference between ``old`` and ``new`` (MISSING marks an absent side)."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[PropertyChange] = []
        for key in list(old) + [k for k in new if k not in old]:
            out.extend(diff_values(old.get(key, MISSING), new.get(key, MISSING), path + (key,)))
        return out
    if isinstance(old, list) and isinstance(new, list):
        return _diff_lists(old, new, path)
    return [PropertyChange(path, old, new)]


def _diff_lists(old: list, new: list, path: tuple[str, ...]) -> list[PropertyChange]:
    if all(_is_scalar(v) for v in old + new):
        # One change for the whole list; rendered as "+added, -removed" (or "reordered").
        return [PropertyChange(path, old, new)]
    key = _list_item_key(old, new)
    if key is not None:
        old_by = {i[key]: i for i in old}
        new_by = {i[key]: i for i in new}
        out = []
        for k in list(old_by) + [k for k in new_by if k not in old_by]:
            out.extend(diff_values(old_by.get(k, MISSING), new_by.get(k, MISSING), path + (f"[{key}={k}]",)))
        return out
    # No identifying field: identical items match first; what is left pairs up in order.
    new_left = list(enumerate(new))
    old_left = []
    for oi, item in enumerate(old):
        match = next((n for n in new_left if _canonical(n[1]) == _canonical(item)), None)
        if match is None:
            old_left.append((oi, item))
        else:
            new_left.remove(match)
    out = []
    for (oi, o), (ni, n) in zip(old_left, new_left):
        out.extend(diff_values(o, n, path + (f"[{ni}]",)))
    for oi, o in old_left[len(new_left):]:
        out.append(PropertyChange(path + (f"[{oi}]",), o, MISSING))
    for ni, n in new_left[len(old_left):]:
        out.append(PropertyChange(path + (f"[{ni}]",), MISSING, n))
    return out


def format_path(path: Sequence[str]) -> str:
    parts = list(path[1:]) if path and path[0] == "Properties" else list(path)
    out = ""
    for part in parts:
        if part.startswith("[") or part == JSON_SEGMENT:
            out += part
        else:
            out += ("." if out else "") + part
    return out or "(resource)"


def shorten(value: Any, limit: int = 80) -> str:
    """A one-line rendering of ``value``, cut to ``limit`` characters with an ellipsis."""
    if value is MISSING:
        return "(absent)"
    if isinstance(value, dict) and set(value) == {JSON_SEGMENT}:
        value = value[JSON_SEGMENT]
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_change(change: PropertyChange, limit: int = 80) -> str:
    """``old -> new`` for values, ``+a, -b`` for lists of plain values, with both sides shortened."""
    old, new = change.old, change.new
    prefix = ""
    if change.asset_only:
        # The hashes are what changed: show their heads rather than cutting them off at the end.
        old, new = (_map_strings(v, lambda s: _ASSET_HASH.sub(lambda m: m.group(0)[:12] + "…", s)) for v in (old, new))
        prefix = "asset changed: "
    if isinstance(old, list) and isinstance(new, list) and all(_is_scalar(v) for v in old + new):
        added = [v for v in new if v not in old]
        removed = [v for v in old if v not in new]
        if not added and not removed:
            return prefix + "reordered"
        text = ", ".join([f"+{shorten(v, 60)}" for v in added] + [f"-{shorten(v, 60)}" for v in removed])
        return prefix + shorten(text, limit * 2)
    return f"{prefix}{shorten(old, limit)} -> {shorten(new, limit)}"


# --------------------------------------------------------------------------------------------
# Create-only properties (CloudFormation resource provider schemas bundled with cfn-lint)
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def create_only_properties(resource_type: str, *, region: str = "us-east-1") -> Optional[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(createOnlyProperties, conditionalCreateOnlyProperties) JSON pointers for ``resource_type``.

    None when cfn-lint has no schema for the type (the caller reports "replacement unknown").
    """
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
    from cfnlint.schema._exceptions import ResourceNotFoundError

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except ResourceNotFoundError:
        return None
    return tuple(schema.get("createOnlyProperties", [])), tuple(schema.get("conditionalCreateOnlyProperties", []))


def _values_at(value: Any, parts: Sequence[str]) -> Iterator[Any]:
    """Values at a schema pointer below ``/properties`` (``*`` = every list item)."""
    if not parts:
        yield value
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        if isinstance(value, list):
            for item in value:
                yield from _values_at(item, rest)
        else:
            yield value if value is MISSING else MISSING
        return
    if isinstance(value, dict):
        yield from _values_at(value.get(head, MISSING), rest)
    elif isinstance(value, list):
        # A pointer through an array without "*": CloudFormation means every item.
        for item in value:
            yield from _values_at(item, parts)
    else:
        yield MISSING


def changed_create_only(old_props: dict, new_props: dict, *, pointers: Iterable[str]) -> list[str]:
    """The create-only pointers (as ``A/B`` paths) whose values differ between the two property sets."""
    changed = []
    for pointer in pointers:
        parts = pointer.split("/")[2:]  # "/properties/A/B" -> ["A", "B"]
        if list(_values_at(old_props, parts)) != list(_values_at(new_props, parts)):
            changed.append("/".join(parts))
    return changed


# --------------------------------------------------------------------------------------------
# Comparing assemblies
# --------------------------------------------------------------------------------------------


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
        outputs_old = strip_commit_stamps(old_t.get("Outputs", {}))
        outputs_new = strip_commit_stamps(new_t.get("Outputs", {}))
        result.stack_changes += diff_values(normalise_assets(outputs_old), normalise_assets(outputs_new), ("Outputs",))
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


def _matches(path: Sequence[str], pattern: re.Pattern) -> bool:
    return any(pattern.search(p) for p in path if not p.startswith("[") and p != JSON_SEGMENT)


def _callouts_for(stage: str, stack: StackDiff, rc: ResourceChange) -> list[Callout]:
    out = []

    def add(category: str, message: str) -> None:
        out.append(Callout(stage, category, stack.short_name, rc.logical_id, rc.resource_type, message))

    if rc.stateful and rc.kind in ("replaced", "removed"):
        if rc.kind == "removed" or rc.renamed_from:
            policy, name = rc.deletion_policy, "DeletionPolicy"
            old = rc.renamed_from or rc.logical_id
            what = f"renamed from {rc.renamed_from} (delete + create)" if rc.renamed_from else "removed"
        else:
            policy, name, old = rc.update_replace_policy, "UpdateReplacePolicy", rc.logical_id
            what = "replaced (" + "; ".join(rc.replacement_reasons) + ")"
        if policy == "Retain" or policy == "RetainExceptOnCreate":
            fate = f"{name} is {policy}: the old resource and its data are kept but orphaned; the new one starts empty"
        else:
            fate = f"{name} is {policy}, not Retain: CloudFormation DELETES {old} and its data"
        add(CATEGORY_DATA_AT_RISK, f"{what}. {fate}." + ("".join(" " + n + "." for n in rc.notes)))

    def changes(pattern: Optional[re.Pattern]) -> list[PropertyChange]:
        return [c for c in rc.changes if not c.asset_only and (pattern is None or _matches(c.path, pattern))]

    def summary(items: list[PropertyChange]) -> str:
        shown = "; ".join(f"{c.dotted}: {describe_change(c, 60)}" for c in items[:5])
        return shown + (f"; and {len(items) - 5} more" if len(items) > 5 else "")

    for category, type_prefixes, pattern in (
        (CATEGORY_IAM, ("AWS::IAM::",), _IAM_KEY),
        (CATEGORY_SECURITY_GROUPS, ("AWS::EC2::SecurityGroup",), _SG_KEY),
        (CATEGORY_KMS, ("AWS::KMS::",), _KMS_KEY),
    ):
        whole_type = rc.resource_type.startswith(type_prefixes) or (
            category == CATEGORY_IAM and rc.resource_type in _IAM_POLICY_TYPES
        )
        if rc.kind in ("added", "removed"):
            if whole_type:
                add(category, rc.label)
            continue
        hits = changes(None) if whole_type else changes(pattern)
        if hits:
            add(category, f"{rc.label}: {summary(hits)}")
        elif whole_type and rc.kind == "replaced":
            add(category, f"{rc.label}: " + "; ".join(rc.replacement_reasons))

    if rc.kind not in ("added", "removed"):
        hits = changes(_RETENTION_KEY)
        if hits:
            add(CATEGORY_RETENTION, f"{rc.label}: {summary(hits)}")
    return out


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
            result.callouts.extend(_callouts_for(key[0], sd, rc))
        for change in sd.stack_changes:
            if change.path == ("TerminationProtection",):
                result.callouts.append(
                    Callout(key[0], CATEGORY_RETENTION, sd.short_name, "(stack)", "AWS::CloudFormation::Stack",
                            f"termination protection turned {'on' if change.new else 'OFF: the stack can be deleted'}")
                )
    return result


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

_KIND_MARK = {"added": "+", "removed": "-", "modified": "~", "replaced": "!"}
_COUNT_COLUMNS = ("stacks added", "stacks removed", "added", "removed", "modified", "replaced", "call-outs")


def _resource_lines(rc: ResourceChange, *, max_changes: int = 40) -> list[str]:
    lines = []
    for reason in rc.replacement_reasons:
        lines.append(f"replacement: {reason}")
    for note in rc.notes:
        lines.append(f"note: {note}")
    for c in rc.changes[:max_changes]:
        lines.append(f"{c.dotted}: {describe_change(c)}")
    if len(rc.changes) > max_changes:
        lines.append(f"... and {len(rc.changes) - max_changes} more changed values")
    return lines


def render_text(diff: AssemblyDiff, *, title: str) -> str:
    """The diff for a terminal: call-outs first, then per stack every changed resource and value."""
    out = [title, ""]
    for stage in diff.environments:
        counts = diff.counts(stage)
        changed = [s for s in diff.for_stage(stage) if s.status != "unchanged"]
        out.append(f"== {stage} ==")
        if not changed:
            out += ["  no changes", ""]
            continue
        out.append("  " + ", ".join(f"{n} {k}" for k, n in counts.items() if n or k in ("added", "removed", "modified", "replaced")))
        callouts = diff.callouts_for(stage)
        if callouts:
            out.append("  Call-outs:")
            for c in callouts:
                out.append(f"    [{c.category}] {c.stack}/{c.logical_id} ({c.resource_type}): {c.message}")
        for sd in changed:
            out.append(f"  Stack {sd.stack_name} ({sd.artifact_id}): {sd.status}")
            for rc in sd.resources:
                out.append(f"    {_KIND_MARK[rc.kind]} {rc.logical_id} ({rc.resource_type}) {rc.label}")
                out += [f"        {line}" for line in _resource_lines(rc)]
            for c in sd.stack_changes:
                out.append(f"    ~ {c.dotted}: {describe_change(c)}")
        out.append("")
    out.append(_NORMALISATION_NOTE)
    return "\n".join(out) + "\n"


_NORMALISATION_NOTE = (
    "Asset hashes and code digests are compared but shown as 'asset changed'; git commit stamps "
    "(code_version) always differ between refs and are ignored; Metadata and DependsOn are not compared."
)


def _md(text: str) -> str:
    """Text safe inside a markdown code span."""
    return text.replace("`", "'").replace("\n", " ")


def _html(text: str) -> str:
    """Plain markdown text with ``<json>`` and friends kept visible (GitHub drops unknown tags)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def render_markdown(diff: AssemblyDiff, *, title: str, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """A pull-request comment: summary table, call-outs per environment, details in <details> blocks.

    Stays under ``limit`` characters (GitHub's comment cap by default): details are cut first, then
    call-outs, each with a note saying how much was left out.
    """
    head = [f"## {title}", ""]
    if diff.is_empty:
        head += ["**No changes** in " + ", ".join(f"`{e}`" for e in diff.environments) + ".", "", f"<sub>{_NORMALISATION_NOTE}</sub>"]
        return "\n".join(head) + "\n"
    head += ["| Environment | " + " | ".join(c.capitalize() for c in _COUNT_COLUMNS) + " |"]
    head += ["|---" * (len(_COUNT_COLUMNS) + 1) + "|"]
    for stage in diff.environments:
        counts = diff.counts(stage)
        head.append(f"| `{stage}` | " + " | ".join(str(counts[c]) for c in _COUNT_COLUMNS) + " |")
    head.append("")
    footer = f"\n<sub>{_NORMALISATION_NOTE}</sub>\n"
    reserve = 600  # room for truncation notes and closing tags
    budget = limit - len(footer) - reserve
    parts: list[str] = ["\n".join(head)]
    used = len(parts[0])

    def fits(text: str) -> bool:
        return used + len(text) + 1 <= budget

    # Call-outs of every environment come before any details.
    sections: dict[str, list[str]] = {}
    omitted_callouts = 0
    for stage in diff.environments:
        lines = [f"### `{stage}`", ""]
        callouts = diff.callouts_for(stage)
        if not [s for s in diff.for_stage(stage) if s.status != "unchanged"]:
            lines.append("No changes.")
        elif callouts:
            lines.append("**Call-outs**")
            lines.append("")
            for c in callouts:
                mark = ":warning: " if c.category == CATEGORY_DATA_AT_RISK else ""
                line = f"- {mark}**{c.category}** `{c.stack}/{c.logical_id}` ({c.resource_type}): {_html(c.message)}"
                if fits("\n".join(lines) + line) and used + len(line) < budget * 0.6:
                    lines.append(line)
                    used += len(line) + 1
                else:
                    omitted_callouts += 1
        else:
            lines.append("No IAM, security-group, KMS or data-retention changes.")
        lines.append("")
        sections[stage] = lines
        used += len(lines[0]) + 4
    omitted_details = 0
    for stage in diff.environments:
        lines = sections[stage]
        changed = [s for s in diff.for_stage(stage) if s.status != "unchanged"]
        if changed:
            n = sum(len(s.resources) for s in changed)
            opener = [f"<details><summary>{stage}: {n} changed resource(s) in {len(changed)} stack(s)</summary>", ""]
            lines += opener
            used += sum(len(x) + 1 for x in opener)
            for sd in changed:
                block = [f"**{sd.stack_name}** (`{sd.artifact_id}`): {sd.status}", ""]
                entries = []
                for rc in sd.resources:
                    entry = [f"- `{_KIND_MARK[rc.kind]}` `{rc.logical_id}` {rc.resource_type}: **{rc.label}**"]
                    entry += [f"  - `{_md(line)}`" for line in _resource_lines(rc, max_changes=25)]
                    entries.append("\n".join(entry))
                entries += [f"- `~` `{_md(c.dotted)}`: `{_md(describe_change(c))}`" for c in sd.stack_changes]
                header = "\n".join(block)
                if not fits(header):
                    omitted_details += len(entries)
                    continue
                lines.append(header)
                used += len(header) + 1
                for entry in entries:
                    if fits(entry):
                        lines.append(entry)
                        used += len(entry) + 1
                    else:
                        omitted_details += 1
                lines.append("")
                used += 1
            lines += ["</details>", ""]
            used += 12
        parts.append("\n".join(lines))
    notes = []
    if omitted_callouts:
        notes.append(f"**{omitted_callouts} call-out(s) left out** to stay under GitHub's comment limit.")
    if omitted_details:
        notes.append(
            f"**{omitted_details} detail entr{'y' if omitted_details == 1 else 'ies'} left out** to stay under "
            "GitHub's comment limit; run `scripts/template-diff.sh --base <ref>` for the full diff."
        )
    text = "\n".join(parts) + ("\n> " + "\n> ".join(notes) + "\n" if notes else "") + footer
    if len(text) > limit:  # a safety net; the budget above should never let this happen
        cut = "\n\n> Output truncated to GitHub's comment limit.\n"
        text = text[: limit - len(cut)] + cut
    return text


# --------------------------------------------------------------------------------------------
# Synthesis (git worktree + python app.py)
# --------------------------------------------------------------------------------------------


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=120)
    except FileNotFoundError as error:
        raise TemplateDiffError("git is not installed or not on PATH; install git") from error
    if check and proc.returncode != 0:
        raise TemplateDiffError(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def resolve_ref(repo: Path, ref: str) -> str:
    """The commit id of ``ref`` in ``repo``; TemplateDiffError when ``repo`` is no git repository or ``ref`` no commit."""
    if not repo.is_dir() or _git(repo, "rev-parse", "--is-inside-work-tree", check=False).returncode != 0:
        raise TemplateDiffError(f"--repo {repo}: not a git repository; run inside a git checkout of mlops-loop")
    proc = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise TemplateDiffError(
            f"--base {ref!r}: not a valid git ref in {repo}; give a branch, tag or commit (e.g. origin/main), "
            "and fetch it first in a shallow CI checkout"
        )
    return proc.stdout.strip()


def _synth_env(outdir: Path, repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Another checkout on PYTHONPATH would shadow the synthesized tree's own mlops_loop package.
    env.pop("PYTHONPATH", None)
    node_bins = [p for p in (repo / "node_modules" / ".bin", REPO_ROOT / "node_modules" / ".bin") if p.is_dir()]
    env["PATH"] = os.pathsep.join([*map(str, node_bins), env.get("PATH", "")])
    env["CDK_OUTDIR"] = str(outdir)
    env["CDK_DISABLE_VERSION_CHECK"] = "1"
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    return env


def synthesize_tree(tree: Path, *, outdir: Path, label: str, repo: Optional[Path] = None) -> Path:
    """Run ``python app.py`` (this interpreter) in ``tree`` with ``CDK_OUTDIR=outdir``; return ``outdir``.

    TemplateDiffError with the last lines of stderr when synthesis fails.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            [sys.executable, "app.py"],
            cwd=tree,
            env=_synth_env(outdir, repo or tree),
            capture_output=True,
            text=True,
            timeout=SYNTH_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as error:
        raise TemplateDiffError(f"{label} did not synthesize within {SYNTH_TIMEOUT_SECONDS} s") from error
    if proc.returncode != 0 or not (outdir / "manifest.json").exists():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-STDERR_TAIL_LINES:])
        raise TemplateDiffError(f"{label} fails to synthesize (python app.py exit {proc.returncode}); last lines:\n{tail}")
    return outdir


def synthesize_ref(repo: Path, *, ref: str, outdir: Path) -> Path:
    """Synthesize git ref ``ref`` of ``repo`` into ``outdir`` from a temporary detached worktree.

    The assembly gets the source stamp of that commit, also when the ref's own app.py predates
    stamps. The worktree is removed afterwards, also when synthesis fails.
    """
    commit = resolve_ref(repo, ref)
    parent = Path(tempfile.mkdtemp(prefix="template-diff-worktree-"))
    tree = parent / "src"
    try:
        _git(repo, "worktree", "add", "--detach", str(tree), commit)
        stamp = source_stamp.fingerprint(tree)
        synthesize_tree(tree, outdir=outdir, label=f"base ref {ref!r} ({commit[:12]})", repo=repo)
        source_stamp.write_stamp(outdir, stamp)
        return outdir
    finally:
        if tree.exists():
            _git(repo, "worktree", "remove", "--force", str(tree), check=False)
        shutil.rmtree(parent, ignore_errors=True)
        _git(repo, "worktree", "prune", check=False)


def check_assembly(path: Path, *, option: str) -> None:
    """TemplateDiffError unless ``path`` is a cloud assembly with at least one stack."""
    if not (path / "manifest.json").is_file():
        raise TemplateDiffError(
            f"{option} {path}: not a cloud assembly (no manifest.json); synthesize one with scripts/synth.sh "
            "(cdk.out) or leave the option out"
        )
    try:
        found = any(True for _ in stacks(path))
    except (OSError, KeyError, ValueError) as error:
        raise TemplateDiffError(f"{option} {path}: unreadable cloud assembly ({error}); synthesize it again") from error
    if not found:
        raise TemplateDiffError(f"{option} {path}: the assembly holds no stack; synthesize the app again")


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 2000")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="template-diff",
        description="Offline CloudFormation diff of a base git ref against the working tree, per environment and stack.",
    )
    parser.add_argument("--base", required=True, help="git ref to compare against (branch, tag or commit)")
    parser.add_argument(
        "--head-assembly", type=Path, help="existing cloud assembly for the head side (default: synthesize the working tree)"
    )
    parser.add_argument("--base-out", type=Path, help="keep the base assembly in this new or empty directory (default: a temp dir)")
    parser.add_argument("--format", choices=("text", "markdown"), default="text", help="output format (default: text)")
    parser.add_argument("--output", type=Path, help="write the diff to this file (default: stdout)")
    parser.add_argument("--env", nargs="+", metavar="ENV", help="only these environments (default: all)")
    parser.add_argument(
        "--max-chars",
        type=_positive_int,
        default=GITHUB_COMMENT_LIMIT,
        help=f"markdown size cap; details are cut first (default: {GITHUB_COMMENT_LIMIT}, GitHub's comment limit)",
    )
    parser.add_argument("--repo", type=Path, default=REPO_ROOT, help="git checkout to diff (default: the one holding this tool)")
    parser.add_argument(
        "--allow-stale",
        action="store_true",
        help="read a --head-assembly not synthesized from the working tree as it is now, with a warning (default: refuse it)",
    )
    return parser


def _check_head_assembly(path: Path, *, repo: Path, allow_stale: bool) -> None:
    """TemplateDiffError unless ``path`` was synthesized from ``repo`` as it is now (a warning with ``allow_stale``)."""
    try:
        warning = source_stamp.require_fresh(path, repo=repo, allow_stale=allow_stale, name=f"--head-assembly {path}")
    except source_stamp.StaleAssembly as error:
        raise TemplateDiffError(str(error)) from error
    if warning:
        print(f"template-diff: {warning}", file=sys.stderr)


def run(args: argparse.Namespace) -> str:
    """Produce the rendered diff for parsed CLI ``args``; TemplateDiffError on bad input."""
    repo = args.repo.resolve()
    if args.head_assembly is not None:
        check_assembly(args.head_assembly, option="--head-assembly")
    if args.base_out is not None and args.base_out.exists() and (not args.base_out.is_dir() or any(args.base_out.iterdir())):
        raise TemplateDiffError(f"--base-out {args.base_out}: exists and is not an empty directory; give a new or empty one")
    resolve_ref(repo, args.base)  # fail fast, before any synthesis
    # A sub-directory of the checkout works too: synthesize from its top level, where app.py is.
    repo = Path(_git(repo, "rev-parse", "--show-toplevel").stdout.strip())
    if args.head_assembly is not None:
        # Before the base synth: a stale head is refused in a second, not after a minute of synth.
        _check_head_assembly(args.head_assembly, repo=repo, allow_stale=args.allow_stale)
    with tempfile.TemporaryDirectory(prefix="template-diff-") as scratch:
        base_out = args.base_out or Path(scratch) / "base.out"
        synthesize_ref(repo, ref=args.base, outdir=base_out)
        if args.head_assembly is not None:
            head_out, head_label = args.head_assembly, str(args.head_assembly)
        else:
            head_out = synthesize_tree(repo, outdir=Path(scratch) / "head.out", label="the working tree")
            head_label = "working tree"
        diff = compare_assemblies(base_out, head_out, environments=args.env)
        title = f"Template diff: `{args.base}` → {head_label}"
        if args.format == "markdown":
            return render_markdown(diff, title=title, limit=args.max_chars)
        return render_text(diff, title=title.replace("`", "").replace("→", "->"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        text = run(args)
    except TemplateDiffError as error:
        print(f"template-diff: {error}", file=sys.stderr)
        return 2
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
