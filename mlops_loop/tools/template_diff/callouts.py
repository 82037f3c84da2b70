"""The reviewer's call-outs: stacks moved or left running, data at risk, serving that stops, updates that fail,
governance (a loosened gate, approval no longer asked, network isolation off), container images that move, a tuning
search that changes, IAM, security groups, KMS and data retention, one rule per category."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional, Sequence

from .model import (
    CATEGORY_CONTRACT,
    CATEGORY_COST,
    CATEGORY_DATA_AT_RISK,
    CATEGORY_GOVERNANCE,
    CATEGORY_IMAGE,
    CATEGORY_IAM,
    CATEGORY_KMS,
    CATEGORY_LEFT_RUNNING,
    CATEGORY_MOVED,
    CATEGORY_RETENTION,
    CATEGORY_SECURITY_GROUPS,
    CATEGORY_SERVING,
    CATEGORY_TUNING,
    CATEGORY_UPDATE_FAILS,
    JSON_SEGMENT,
    KEPT_DELETION_POLICIES,
    MISSING,
    SERVING_TYPES,
    STATEFUL_TYPES,
    Callout,
    PropertyChange,
    ResourceChange,
    StackDiff,
    StackLocation,
    refers_to,
)
from .normalise import expand_json_documents
from .values import describe_change
from ...naming import RESOURCE_METADATA_KEY
from ...training.names import GATE_PARAMETERS, PARAM_APPROVAL_STATUS
from ...config.instance_types import INSTANCE_TYPES
from pipeline_code.core.contract import model_sha256_parameter_name, package_parameter_name, pipeline_group
from pipeline_code.core.online_features import (
    FEATURES_ENV as BY_ID_FEATURES_ENV,
    MODEL_ENV as BY_ID_MODEL_ENV,
    SPEC_FILE_ENV as BY_ID_SPEC_FILE_ENV,
)
from pipeline_code.core.thresholds import THRESHOLDS
from pipeline_code import catalog
from pipeline_code.core import problem

# Gate parameter name (the pipeline's) -> its threshold, for which way is looser.
_GATE_THRESHOLDS = {GATE_PARAMETERS[t.field]: t for t in THRESHOLDS}


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


def _matches(path: Sequence[str], pattern: re.Pattern) -> bool:
    return any(pattern.search(p) for p in path if not p.startswith("[") and p != JSON_SEGMENT)


def _delete_by_hand(old: StackLocation) -> str:
    """How to delete a stack ``cdk deploy`` leaves behind: with the assembly that still has it, or in CloudFormation.

    After the config change ``cdk destroy '<env>/*'`` selects the head's stacks, so it must be the old commit's
    assembly (``--app`` takes a synthesized cloud assembly directory)."""
    protected = "turn its termination protection off first, then " if old.termination_protection else ""
    where = f" in {old.environment}" if old.environment else ""
    return (f"{protected}`npx cdk destroy --app <the old commit's cdk.out> '{old.pattern}'`, or delete it in "
            f"CloudFormation{where}")


# Resource types whose name property is unique in the account, whatever the region (IAM).
_ACCOUNT_WIDE_NAMES = {"AWS::IAM::Role": "RoleName", "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
                       "AWS::IAM::User": "UserName", "AWS::IAM::Group": "GroupName",
                       "AWS::IAM::InstanceProfile": "InstanceProfileName"}


def _account_wide_names(resources: dict[str, dict]) -> list[str]:
    """The fixed IAM names a template creates (``role <name>``), sorted."""
    found = []
    for resource in resources.values():
        prop = _ACCOUNT_WIDE_NAMES.get(resource.get("Type"))
        name = (resource.get("Properties") or {}).get(prop) if prop else None
        if isinstance(name, str):
            found.append(f"{resource['Type'].rsplit('::', 1)[1].lower()} {name}")
    return sorted(found)


def _other_region_same_account(new: StackLocation, old: StackLocation) -> bool:
    """Both targets known (``aws://<account>/<region>``), one account, two regions."""
    targets = [loc.environment.removeprefix("aws://").split("/") for loc in (new, old)]
    if not all(len(t) == 2 and all(t) for t in targets):
        return False
    (new_account, new_region), (old_account, old_region) = targets
    return new_account == old_account and new_region != old_region


def moved_callout(stack: StackDiff, *, new: StackLocation, old: StackLocation, resources: dict[str, dict]) -> Callout:
    """The MOVED call-out of a stack whose target or name changed from ``old`` to ``new``: ``resources`` are the new
    template's.

    ``cdk deploy`` creates the new stack; it never deletes the old one (nor anything in it), so the replacement
    and deletion call-outs a resource-by-resource comparison would make are all false here. What a move does
    mean for a reviewer: the old stack runs and costs on, and the new one starts from nothing.
    """
    types = {r.get("Type") for r in resources.values()}
    count = f"{len(resources)} resource{'' if len(resources) == 1 else 's'}"
    message = (f"moved to a new stack {new.where} ({count}, all created new); `cdk deploy` leaves "
               f"the old stack {old.where} as it is (running, costing, its retained data kept). Once the new one "
               f"serves, delete the old one by hand: {_delete_by_hand(old)}")
    if types & STATEFUL_TYPES:
        message += ". Its stateful resources start empty: nothing is copied from the old stack"
    if "AWS::SageMaker::ModelPackageGroup" in types:
        message += (". Its model registry starts empty: no model is approved in the new environment until its "
                    "pipeline runs and a version is approved")
    if types & (SERVING_TYPES | {"AWS::SageMaker::EndpointConfig"}):
        message += (". It serves nothing until a version is approved there (no endpoint before that): move callers "
                    "to it then; the old stack answers them until it is deleted")
    clashes = _account_wide_names(resources) if _other_region_same_account(new, old) else []
    if clashes:
        message += (f". IAM names are account-wide, not regional: {', '.join(clashes)} cannot be created while the old "
                    "stack holds them, so this deploy fails and rolls back. Delete the old environment's stacks first "
                    "(it stops serving), or rename the environment in the same change (new names)")
    return Callout(stack.stage, CATEGORY_MOVED, stack.short_name, "(stack)", "AWS::CloudFormation::Stack", message)


def left_running_callout(stack: StackDiff, *, old: StackLocation, resources: dict[str, dict]) -> Callout:
    """The LEFT RUNNING call-out of a stack only the base has, at ``old``: ``resources`` are its (base) template's."""
    message = (f"removed from the app, but `cdk deploy` never deletes a stack: {old.where} keeps running and "
               f"costing, its data kept, until deleted by hand: {_delete_by_hand(old)}")
    if {r.get("Type") for r in resources.values()} & SERVING_TYPES:
        message += ". Its endpoints keep answering until then"
    return Callout(stack.stage, CATEGORY_LEFT_RUNNING, stack.short_name, "(stack)", "AWS::CloudFormation::Stack",
                   message)


def _serving_mode(endpoint_config: Optional[dict]) -> Optional[str]:
    """``real-time``, ``serverless`` or ``async`` of an endpoint config as declared (None: not one)."""
    if not endpoint_config or endpoint_config.get("Type") != "AWS::SageMaker::EndpointConfig":
        return None
    props = endpoint_config.get("Properties") or {}
    variants = props.get("ProductionVariants") or []
    if any(isinstance(v, dict) and "ServerlessConfig" in v for v in variants):
        return "serverless"
    return "async" if "AsyncInferenceConfig" in props else "real-time"


def _code_asset(resource: dict, template_dir: Optional[Path]) -> Optional[Path]:
    """The directory of a Lambda function's code asset in the cloud assembly its template is in (the template's
    ``aws:asset:path`` metadata, relative to the template's directory; else ``asset.<hash>`` of its S3 key beside the
    template or in the assembly's root), None when the assembly does not hold it."""
    if template_dir is None:
        return None
    candidates = []
    path = (resource.get("Metadata") or {}).get("aws:asset:path")
    if isinstance(path, str) and path:
        candidates.append(template_dir / path)
    key = ((resource.get("Properties") or {}).get("Code") or {}).get("S3Key")
    if isinstance(key, str) and key.endswith(".zip"):
        candidates += [where / f"asset.{key.removesuffix('.zip')}" for where in (template_dir, template_dir.parent)]
    return next((c for c in candidates if c.is_dir()), None)


def _by_id_features(resource: Optional[dict], template_dir: Optional[Path] = None) -> Optional[list[str]]:
    """The feature names a score-by-id front reads from the online store and sends to the endpoint (its
    ``FEATURES`` variable, :meth:`pipeline_code.core.online_features.LookupSpec.encode`; for a wide model, the
    ``features`` of the file of its code ``FEATURE_SPEC_FILE`` names, read from the code asset in the assembly whose
    template is in ``template_dir``), else None (not a front, or its spec file not in the assembly)."""
    variables = (((resource or {}).get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
    if BY_ID_MODEL_ENV not in variables:
        return None
    spec_file = variables.get(BY_ID_SPEC_FILE_ENV)
    if isinstance(spec_file, str) and spec_file:
        asset = _code_asset(resource, template_dir)
        try:
            features = json.loads((asset / spec_file).read_text(encoding="utf-8"))["features"] if asset else None
            return [str(pair[0]) for pair in features] if isinstance(features, list) else None
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None
    value = variables.get(BY_ID_FEATURES_ENV)
    if not isinstance(value, str):
        return None
    return [item.split(":", 1)[0] for item in value.split(",") if item]


# Feature names a call-out lists at most (a wide model may change hundreds at once).
_LISTED = 10


def _listed(names: Sequence[str]) -> str:
    """``names`` comma-separated, the first :data:`_LISTED` of a longer list and how many more."""
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _by_id_feature_callouts(rc: ResourceChange, add, *, before_dir: Optional[Path] = None,
                            after_dir: Optional[Path] = None) -> None:
    """A score-by-id front that drops a feature: it follows the config at deploy, the endpoint the version approved
    before, which reads the front's records by serving's rule (:meth:`pipeline_code.catalog.Dataset.record_source`):
    one holding a feature named like no column (or another list's) lacks the dropped feature and is refused (serving's
    400: that id unscored, the front's 422 when no id is left); one of columns as they are is raw fields, scored with the dropped feature computed from them
    (missing when they lack a column it reads; refused when that column is nullable: false). The front's template does
    not say which its records are, so the call-out names both. Features only added
    or reordered stop nothing: the front sends named fields, and serving leaves out those its version does not read.
    ``before_dir``/``after_dir``: the directories of each side's template, where a wide model's spec file is found
    (in the function's code asset of that side's assembly)."""
    if rc.resource_type != "AWS::Lambda::Function":
        return
    before, after = _by_id_features(rc.before, before_dir), _by_id_features(rc.after, after_dir)
    if before is None or after is None:
        return
    gone, new = [f for f in before if f not in after], [f for f in after if f not in before]
    if not gone:
        return
    what = f"drops {_listed(gone)}" + (f"; adds {_listed(new)}" if new else "")
    add(CATEGORY_SERVING,
        f"{rc.label}: the score-by-id front {what} from the deploy on, while the endpoint serves the version approved "
        f"before, which reads {_listed(gone)}: a by-id record holding a feature named like no column (or another "
        f"feature list's) lacks {_listed(gone)} and is refused (serving's 400: the front answers that id unscored, in "
        "serving's words, and 422 when no id of the request is left to score); one whose features are all columns as "
        "they are is read as raw fields, "
        f"{_listed(gone)} computed from the columns it holds: scored (a 200) with {_listed(gone)} missing when they "
        "lack a column it reads, refused when that column is nullable: false. This lasts "
        "until a version trained on the new features is approved (PendingManualApproval: its callers' contract "
        "changes). Deploy the change with its pipeline run right behind it and approve that version promptly, or "
        "keep the features the serving version reads until then")


# The model-spec asset a training pipeline's steps read (``--model-spec /opt/ml/processing/input/model_spec/<hash>.json``).
_MODEL_SPEC_ASSET = re.compile(r"model_spec/([0-9a-f]{64})\.json")


def _model_contract(resource: Optional[dict], template_dir: Optional[Path]) -> Optional[dict]:
    """What a training pipeline's model answers: ``{name, target, problem_type, classes, features}`` of the model spec
    its steps read (the ``asset.<hash>.json`` beside its template or in the assembly's root), else None (not a
    pipeline, or its spec not in the assembly or unreadable)."""
    if template_dir is None or (resource or {}).get("Type") != "AWS::SageMaker::Pipeline":
        return None
    found = _MODEL_SPEC_ASSET.search(json.dumps(resource.get("Properties") or {}))
    if not found:
        return None
    files = [where / f"asset.{found.group(1)}.json" for where in (template_dir, template_dir.parent)]
    try:
        spec = json.loads(next(f for f in files if f.is_file()).read_text(encoding="utf-8"))
        declaration = spec["dataset"]
        dataset = catalog.parse_dataset(str(declaration["name"]), declaration)
        kind = str(spec.get("problem_type") or problem.BINARY)
        classes = catalog.target_classes(dataset.column(str(spec["target"])), kind)
        features = [str(f) for f in spec["features"]]
        extras = [str(e) for e in (spec.get("sensitive_attribute"), *(spec.get("slices") or ())) if e]
        return {"name": str(spec["name"]), "target": str(spec["target"]), "problem_type": kind,
                "classes": [str(c) for c in classes], "features": features,
                "raw_fields": dataset.raw_source_columns(features), "required": list(dataset.required_raw_fields(features)),
                "dataset": dataset, "extras": extras}
    except (StopIteration, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _model_contract_callouts(rc: ResourceChange, add, *, before_dir: Optional[Path] = None,
                             after_dir: Optional[Path] = None) -> None:
    """A deployed model whose next version answers otherwise: another target, problem type or classes (the frozen test
    set is refused, the champion not compared, the version registered pending), or another feature list (positional
    and precomputed requests change at approval). Only the pipeline's model-spec asset changes in the templates."""
    before, after = _model_contract(rc.before, before_dir), _model_contract(rc.after, after_dir)
    if before is None or after is None or before["name"] != after["name"]:
        return
    model = after["name"]
    frozen = (f"delete it after this deploy, before the next run (aws s3 rm --recursive "
              f"s3://<artifacts bucket>/pipelines/{model}/frozen-test/)")
    changed = []
    if before["target"] != after["target"]:
        changed.append(f"target {before['target']} -> {after['target']}")
    if before["problem_type"] != after["problem_type"]:
        changed.append(f"problem type {before['problem_type']} -> {after['problem_type']}")
    elif before["classes"] != after["classes"]:
        changed.append(f"classes {_listed(before['classes'])} -> {_listed(after['classes'])}")
    if changed:
        what = ("predicts another target, in another shape" if len(changed) > 1 and before["target"] != after["target"]
                else "predicts another target" if before["target"] != after["target"]
                else "answers in another shape" if before["problem_type"] != after["problem_type"]
                else "answers with other classes")
        add(CATEGORY_CONTRACT,
            f"{rc.label}: model {model}: {'; '.join(changed)}: its next version {what}. Prepare refuses the frozen test "
            f"set made for the old declaration: {frozen}. The serving champion is not compared and the version is "
            "registered PendingManualApproval; until it serves, the drift monitor reads the serving version's traffic "
            "with the new declaration. Approve it once its callers can read it, or serve the change under a new model "
            "name (docs/add-your-own-model.md, Changing a deployed model)"
            + (f". The label files the drift monitor joins (s3://<inference bucket>/labels/{model}/: inference_id, "
               f"label, label_time) do not name the target: for requests the new version answers, send labels of {after['target']}, "
               f"or its quality is judged against {before['target']}" if before["target"] != after["target"] else ""))
    if before["features"] != after["features"]:
        gone = [f for f in before["features"] if f not in after["features"]]
        new = [f for f in after["features"] if f not in before["features"]]
        what = "; ".join(part for part in (f"drops {_listed(gone)}" if gone else "", f"adds {_listed(new)}" if new else "")
                         if part) or "reordered"
        add(CATEGORY_CONTRACT,
            f"{rc.label}: model {model}: features: {what}."
            # The frozen test set holds the old frame features (inputs, sensitive attribute, slices): only an added
            # feature it lacks makes Prepare refuse it.
            + (f" Prepare refuses the frozen test set while it lacks an added feature: {frozen}."
               if set(new) - {*before["features"], *before["extras"]} else "")
            + " The next version is registered PendingManualApproval: once approved, CSV and list requests are read in "
            "the new feature order" + _old_list_read(before, after))


def _old_list_read(before: dict, after: dict) -> str:
    """What the next version does with a precomputed record of the old list, by serving's own rule
    (:meth:`pipeline_code.catalog.Dataset.record_source`), and which callers to move before approving it."""
    dataset = after["dataset"]
    extras = [name for name in after["extras"] if name in dataset.feature_names and name not in after["features"]]
    source, missing = dataset.record_source(after["features"], extras, {name: 0 for name in before["features"]})
    if source == "features" and not missing:
        return ("; a precomputed record of the old list is still scored (it holds every feature of the new list). Move "
                "CSV and list callers to the new order, or to JSON records, before approving it")
    read = (", and a precomputed record of the old list is refused (400)." if source == "features"
            else ", and a precomputed record of the old list is read as raw fields (its features are columns as they are).")
    return (read + _new_raw_fields(before, after)
            + " Move those callers to raw records" + (" with the new fields" if set(after["raw_fields"]) - set(before["raw_fields"])
                                                      else "")
            + ", or to records holding the features of both lists, before approving it")


def _new_raw_fields(before: dict, after: dict) -> str:
    """What the raw fields a model's added features read, which its raw callers did not send before, do to them: an
    optional one left out is scored as missing (serving cannot tell it from a value left out) unless the old raw fields
    compute the feature without it (``coalesce``), a required one is a 400."""
    new = [c for c in after["raw_fields"] if c not in before["raw_fields"]]
    # An added feature the old raw fields still compute (coalesce(new, old)) is not missing without the new column.
    dataset, sent = after["dataset"], set(before["raw_fields"])
    unfed = [f for f in after["features"] if f not in before["features"] and dataset.feature(f).expr.missing_without(sent)]
    feeding = set(dataset.raw_source_columns(unfed))
    optional = [c for c in new if c not in after["required"] and c in feeding]
    required = [c for c in new if c in after["required"]]
    parts = []
    if optional:
        parts.append(f"Raw records without {_listed(optional)} are scored with the features "
                     f"{'it feeds' if len(optional) == 1 else 'they feed'} missing (200: serving cannot tell a field "
                     "not sent from one left out)")
    if required:
        parts.append(f"raw records without {_listed(required)} are refused (400)")
    if len(parts) == 2:
        return " " + parts[0] + ", and " + parts[1] + "."
    return (" " + parts[0][0].upper() + parts[0][1:] + ".") if parts else ""


def _serving_mode_callouts(rc: ResourceChange, add) -> None:
    """An endpoint config switching between instance-based (real-time), serverless and async. The endpoint keeps its
    name (a fixed one here), so CloudFormation updates it in place (UpdateEndpoint) to the new config."""
    before, after = _serving_mode(rc.before), _serving_mode(rc.after)
    if before is None or after is None or before == after:
        return
    where = "where the endpoint exists (a version approved), "
    if "async" in (before, after):
        # InvokeEndpoint is refused by an async endpoint, InvokeEndpointAsync (input in S3) by the others.
        lost = "InvokeEndpointAsync" if before == "async" else "InvokeEndpoint"
        calls = ("InvokeEndpoint" if before == "async"
                 else "InvokeEndpointAsync with the request in S3 (the answer is written to S3)")
        add(CATEGORY_SERVING,
            f"{rc.label}: serving mode {before} -> {after}: {where}the endpoint keeps its name but then takes only "
            f"{calls}: every {lost} caller gets errors from the moment it updates. To keep callers working, serve "
            f"the {after} mode under a new model name, move callers to its endpoint, then drop this one")
    if after == "serverless" and before != "serverless":
        # "Updating a real-time inference endpoint to an on-demand serverless endpoint or a serverless endpoint
        # with Provisioned Concurrency is currently not supported": Amazon SageMaker AI Developer Guide, "Update a
        # serverless endpoint" (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-update.html);
        # an async endpoint runs on instances the same way. Only this direction is documented as refused, so
        # serverless -> instances gets no call-out (it is one way: going back later is this direction).
        add(CATEGORY_UPDATE_FAILS,
            f"{rc.label}: serving mode {before} -> serverless: SageMaker does not update an instance-based endpoint "
            f"to serverless, so {where}this deploy fails and CloudFormation rolls the stack back (the endpoint "
            f"keeps serving {before}). Serve it serverless under a new model name instead (its own endpoint and "
            "registry group: approve a version there, move callers, then drop this name)")


_SCALABLE_TARGET = "AWS::ApplicationAutoScaling::ScalableTarget"
_VARIANT_COUNT = "sagemaker:variant:DesiredInstanceCount"


def _config_id(endpoint: dict) -> Optional[str]:
    """The logical ID of the endpoint config an endpoint names (``Fn::GetAtt`` or ``Ref``), else None."""
    name = (endpoint.get("Properties") or {}).get("EndpointConfigName")
    if isinstance(name, dict):
        if isinstance(name.get("Ref"), str):
            return name["Ref"]
        target = name.get("Fn::GetAtt")
        if isinstance(target, list) and target and isinstance(target[0], str):
            return target[0]
    return None


def _instance_types(config: Optional[dict]) -> dict[str, str]:
    """Variant name -> instance type of an endpoint config's instance-based variants."""
    if not config or config.get("Type") != "AWS::SageMaker::EndpointConfig":
        return {}
    variants = (config.get("Properties") or {}).get("ProductionVariants") or []
    return {v["VariantName"]: v["InstanceType"] for v in variants
            if isinstance(v, dict) and isinstance(v.get("VariantName"), str) and isinstance(v.get("InstanceType"), str)}


def _targets(resources: dict[str, dict], resource_id: str) -> list[tuple[str, dict]]:
    """The scalable targets on a variant's instance count, ``endpoint/<name>/variant/<variant>``."""
    return [(lid, r) for lid, r in resources.items() if r.get("Type") == _SCALABLE_TARGET
            and (r.get("Properties") or {}).get("ResourceId") == resource_id
            and (r.get("Properties") or {}).get("ScalableDimension") == _VARIANT_COUNT]


def _registered_during_update(resource_id: str, endpoint_id: str, *, old: dict[str, dict],
                              new: dict[str, dict]) -> bool:
    """Whether a scalable target is registered on the variant while CloudFormation updates the endpoint.

    The base template's target is: an unchanged or updated one stays registered, and a removed one is deregistered
    only in the cleanup phase, after every update. A target only the head has is registered after the endpoint's
    update when it depends on the endpoint (DependsOn, Ref or GetAtt: the app's always do), before it otherwise."""
    if _targets(old, resource_id):
        return True
    for _, target in _targets(new, resource_id):
        depends = target.get("DependsOn") or []
        depends = [depends] if isinstance(depends, str) else depends
        if endpoint_id not in depends and not refers_to(target, endpoint_id):
            return True
    return False


def _autoscaling_field(stage: str, config: dict) -> Optional[str]:
    """The config field that turns off the autoscaling of the endpoint ``config`` (the base's) belongs to, from the
    labels the serving constructs put on it; None for an async endpoint (it always scales) or without a label."""
    if "AsyncInferenceConfig" in (config.get("Properties") or {}):
        return None
    label = (config.get("Metadata") or {}).get(RESOURCE_METADATA_KEY) or {}
    model = label.get("model")
    if not isinstance(model, str) or not model:
        return None
    if label.get("mode") == "multi_model":
        # A shared fleet's label is "<endpoint> (<member>, ...)".
        return f"environments.{stage}.multi_model_endpoints.{model.split(' (', 1)[0]}.autoscaling: null"
    if label.get("mode") == "realtime":
        return f"environments.{stage}.serving.{model}.realtime.autoscaling: null"
    return None


def autoscaled_retype_callouts(stack: StackDiff, *, old: dict[str, dict], new: dict[str, dict]) -> list[Callout]:
    """UPDATE FAILS for an endpoint whose variant changes instance type while a scalable target is registered on it.

    "If the update would change the instance type for any model that is a target for auto scaling, the update
    fails": the variant must be deregistered first (Amazon SageMaker AI Developer Guide, "Update endpoints that use
    auto scaling", https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html). CloudFormation
    cannot do that in one deploy: the endpoint keeps its fixed name, so the target keeps its ResourceId and stays
    registered through the update (a removed one is deregistered only in the cleanup phase). ``old`` and ``new`` are
    the base's and the head's resources of one stack that both sides have. Endpoints are paired by their fixed name,
    whatever their or their configs' logical IDs.
    """
    out = []
    old_endpoints = {(r.get("Properties") or {}).get("EndpointName"): r for r in old.values()
                     if r.get("Type") == "AWS::SageMaker::Endpoint"}
    changes = {rc.logical_id: rc for rc in stack.resources}
    for endpoint_id, endpoint in new.items():
        name = (endpoint.get("Properties") or {}).get("EndpointName")
        if endpoint.get("Type") != "AWS::SageMaker::Endpoint" or not isinstance(name, str) or name not in old_endpoints:
            continue
        old_config_id, new_config_id = _config_id(old_endpoints[name]), _config_id(endpoint)
        old_config, new_config = old.get(old_config_id or ""), new.get(new_config_id or "")
        before, after = _instance_types(old_config), _instance_types(new_config)
        for variant, old_type in before.items():
            new_type = after.get(variant)
            resource_id = f"endpoint/{name}/variant/{variant}"
            if new_type is None or new_type == old_type or not _registered_during_update(
                    resource_id, endpoint_id, old=old, new=new):
                continue
            rc = changes.get(new_config_id or "")
            field = _autoscaling_field(stack.stage, old_config)
            if field is not None:
                fix = (f"Change it in two deploys: first with its autoscaling off, still on {old_type} (`{field}`, "
                       f"and `instance_count` at the instances it needs meanwhile), then {new_type} with the "
                       "autoscaling back on (CloudFormation registers the target again after the endpoint has updated)")
            elif "AsyncInferenceConfig" in ((old_config or {}).get("Properties") or {}):
                fix = ("An async endpoint always scales (no config field turns it off): serve the new type under a new "
                       "model name instead (its own endpoint and registry group: approve a version there, move "
                       "callers, then drop this name)")
            else:
                fix = (f"Change it in two deploys: first with the endpoint's autoscaling off, still on {old_type}, then "
                       f"{new_type} with the autoscaling back on")
            message = (f"{rc.label if rc else 'replaced'}: instance type {old_type} -> {new_type} of endpoint {name} "
                       f"(variant {variant}), an Application Auto Scaling target: SageMaker refuses to change the "
                       "instance type of a variant registered for autoscaling, so where the endpoint exists (a version "
                       "approved), this deploy fails and CloudFormation rolls the stack back (the endpoint keeps serving "
                       f"on {old_type}). {fix}")
            out.append(Callout(stack.stage, CATEGORY_UPDATE_FAILS, stack.short_name, new_config_id or endpoint_id,
                               "AWS::SageMaker::EndpointConfig", message))
    return out

def _is_endpoint_config(resource: Optional[dict]) -> bool:
    return bool(resource) and resource.get("Type") == "AWS::SageMaker::EndpointConfig"


def _inferentia2(instance_type: str) -> bool:
    known = INSTANCE_TYPES.get(instance_type)
    return known is not None and known.accelerator == "inferentia2"


def _inferentia2_callouts(rc: ResourceChange, add) -> None:
    """A deployed model's endpoint config moving onto ml.inf2 from another instance type or from serverless. The serving stack keeps its
    package parameter (``cdk deploy`` reuses it), so the inf2 fleet gets the version approved for the old instances:
    without a compiled model in it the container refuses to load, the update fails and the whole stack rolls back."""
    before, after = list(_instance_types(rc.before).values()), list(_instance_types(rc.after).values())
    # From any other config, serverless ones too (no instance type): only a config that is new has no version to keep.
    if not _is_endpoint_config(rc.before) or any(_inferentia2(t) for t in before) or not any(_inferentia2(t) for t in after):
        return
    model = (((rc.after or {}).get("Metadata") or {}).get("mlops-loop") or {}).get("model")
    package = package_parameter_name(model) if isinstance(model, str) and model else "<Model>ModelPackageArn"
    digest = model_sha256_parameter_name(package)
    add(CATEGORY_UPDATE_FAILS,
        f"{rc.label}: instance type {', '.join(before) or 'serverless'} -> {', '.join(after)}: where the endpoint exists (a version "
        f"approved), this deploy keeps the version serving now ({package}), which was not compiled for Inferentia2: the "
        "new fleet cannot load it, the update fails and CloudFormation rolls back every change of the stack. Migrate in "
        "this order (docs/add-your-own-model.md, \"Serving a network on Inferentia2\"): deploy the environment's Training and Operations "
        "stacks alone (cdk deploy --exclusively) so the pipeline compiles and the parity check covers the endpoint; run "
        "the pipeline and approve the compiled version it registers; then deploy this stack with "
        f"--parameters {package}=<that version's ARN> --parameters {digest}=<its model_sha256>")


def _governance_callouts(rc: ResourceChange, add) -> None:
    """The promotion gate loosened (a gate parameter's default), registration no longer pending a human approval,
    network isolation turned off: changes that weaken a control without touching IAM."""
    for c in rc.changes:
        if c.asset_only or not c.path or c.path[-1] not in ("DefaultValue", "EnableNetworkIsolation"):
            continue
        if c.path[-1] == "EnableNetworkIsolation":
            if c.old is True and c.new is not True:
                add(CATEGORY_GOVERNANCE, f"{rc.label}: {c.dotted}: network isolation turned off: its container may "
                                         "now reach the network")
            continue
        name = c.path[-2].removeprefix("[Name=").removesuffix("]") if len(c.path) >= 2 else ""
        if name == PARAM_APPROVAL_STATUS and c.old == "PendingManualApproval" and c.new != c.old:
            add(CATEGORY_GOVERNANCE, f"{rc.label}: versions are now registered {c.new} ({c.dotted}): no human approves "
                                     "them before they serve")
        threshold = _GATE_THRESHOLDS.get(name)
        if threshold is not None and isinstance(c.old, (int, float)) and isinstance(c.new, (int, float)) and \
                threshold.looser(float(c.new), float(c.old)):
            add(CATEGORY_GOVERNANCE, f"{rc.label}: promotion gate loosened: {name} {c.old:g} -> {c.new:g} "
                                     f"({threshold.help}); more challengers pass")


def _pipeline_runs(rc: ResourceChange) -> str:
    """What deleting a SageMaker pipeline takes with it, and what to do first ("" for another resource type).

    SageMaker's DeletePipeline: "When you delete a pipeline, all instances of the pipeline are deleted" - every
    execution, which is the audit's record of what each version it registered ran with."""
    if rc.resource_type != "AWS::SageMaker::Pipeline":
        return ""
    name = ((rc.before or {}).get("Properties") or {}).get("PipelineName")
    name = name if isinstance(name, str) else rc.renamed_from or rc.logical_id
    group = (pipeline_group(name) if isinstance(name, str) else None) or "<its model package group>"
    return (f" Deleting pipeline {name} deletes all its executions (SageMaker DeletePipeline): the run record of every "
            "version it registered - the definition each run ran, its parameters (gate thresholds, hyperparameters) and "
            "steps - which the audit reads; the registry group keeps the versions, not their runs. First, before this "
            "deploy: every version of it that must stay auditable needs its run record in the artifacts bucket's evidence "
            "(run-records/<model>/<version>/, write-once: the deploy handler keeps one when a version is approved and its "
            f'run has ended); for any other, invoke the deploy handler with {{"action": "record-run", "group": "{group}", '
            '"version": N} while the model is still deployed (docs/reviewing-deploying-auditing.md, "Changing what is deployed").')


# (resource type, last path segment) -> what a higher value lets serving run, for the COST call-out.
_CEILINGS = {
    ("AWS::SageMaker::EndpointConfig", "MaxConcurrency"):
        "the most concurrent requests this serverless endpoint runs (each billed per GB-second of its memory)",
    ("AWS::SageMaker::EndpointConfig", "MemorySizeInMB"):
        "the memory every request of this serverless endpoint is billed for (per GB-second)",
    ("AWS::SageMaker::EndpointConfig", "ProvisionedConcurrency"):
        "the serverless endpoint's provisioned concurrency, billed every second whether requests arrive or not",
    ("AWS::Lambda::Function", "ReservedConcurrentExecutions"):
        "the most concurrent executions of this function (its throttle: more requests, and endpoint calls, get through)",
}
_TARGET_DIMENSIONS = {"sagemaker:variant:DesiredInstanceCount": "instances",
                      "sagemaker:variant:DesiredProvisionedConcurrency": "provisioned concurrency"}


def _number(value: object) -> Optional[float]:
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _cost_callouts(rc: ResourceChange, add) -> None:
    """COST: a value that caps what serving may cost goes up (or is set where it was absent): a scalable target's
    MaxCapacity, a serverless variant's MaxConcurrency, MemorySizeInMB or ProvisionedConcurrency, a function's reserved
    concurrency.
    The floor does not move for a raised maximum, so without this only the template diff would show it; IAM cannot
    cap instance counts or concurrency (docs/serving.md, "Instance types, capped by IAM"), so the config line is the only cap."""
    for c in rc.changes:
        if c.asset_only or not c.path:
            continue
        field = c.path[-1]
        if rc.resource_type == _SCALABLE_TARGET and c.path == ("Properties", "MaxCapacity"):
            dimension = ((rc.after or {}).get("Properties") or {}).get("ScalableDimension")
            what = f"the most {_TARGET_DIMENSIONS.get(dimension, 'capacity')} autoscaling may run"
        else:
            what = _CEILINGS.get((rc.resource_type, field))
        if what is None:
            continue
        old, new = (None, _number(c.new)) if c.old is MISSING else (_number(c.old), _number(c.new))
        if new is None or (old is not None and new <= old):
            continue
        before = "(absent)" if c.old is MISSING else f"{old:g}"
        add(CATEGORY_COST, f"{rc.label}: {c.dotted} {before} -> {new:g}: raises {what}, and with it the most this can "
                           "cost a month (the cost section's ceiling). IAM cannot cap instance counts or concurrency: "
                           "this value is the only cap")


# The resource types whose container images a change moves, and the property names that hold an image: a pipeline
# step's AppSpecification.ImageUri / AlgorithmSpecification.TrainingImage / Register's InferenceSpecification
# Containers[i].Image, a Scheduler-started job's AppSpecification.ImageUri, a SageMaker Model's container Image.
_IMAGE_TYPES = ("AWS::SageMaker::Pipeline", "AWS::Scheduler::Schedule", "AWS::SageMaker::Model")
_IMAGE_FIELDS = frozenset({"ImageUri", "TrainingImage", "Image"})


def _image_move(old: str, new: str) -> str:
    """``<repository:tag> -> <repository:tag> (<registry>)`` when both are in one registry, else both URIs whole."""
    old_registry, _, old_name = old.partition("/")
    new_registry, _, new_name = new.partition("/")
    if old_registry == new_registry and old_name and new_name:
        return f"{old_name} -> {new_name} ({old_registry})"
    return f"{old} -> {new}"


def image_callouts(stage: str, stacks: Sequence[StackDiff]) -> list[Callout]:
    """IMAGE: the container images an environment's templates run that move, once per environment (a tag bump shows
    on every step of every pipeline and every monitor schedule): which image from what to what, in which resources,
    and that deployed endpoints keep the image their model version was registered with until the next approval."""
    moves: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for sd in stacks:
        for rc in sd.resources:
            if rc.kind not in ("modified", "replaced") or rc.resource_type not in _IMAGE_TYPES:
                continue
            for c in rc.changes:
                if c.asset_only or not c.path or c.path[-1] not in _IMAGE_FIELDS:
                    continue
                if isinstance(c.old, str) and isinstance(c.new, str) and c.old != c.new:
                    where = moves.setdefault((c.old, c.new), [])
                    if (f"{sd.short_name}/{rc.logical_id}", rc.resource_type) not in where:
                        where.append((f"{sd.short_name}/{rc.logical_id}", rc.resource_type))
    if not moves:
        return []
    parts = []
    for (old, new), where in moves.items():
        count = f"{len(where)} resource{'' if len(where) == 1 else 's'}"
        parts.append(f"{_image_move(old, new)} in {count}: {_listed([name for name, _ in where])}")
    types = list(dict.fromkeys(t for where in moves.values() for _, t in where))
    message = ("; ".join(parts) + ": pipeline runs and scheduled jobs started after this deploy run the new image; "
               "deployed endpoints keep the image their model version was registered with until the next approval "
               "(docs/training.md, \"The XGBoost image and its end of patch\")")
    if "AWS::SageMaker::Model" in types:
        message += (". A SageMaker Model the template declares with the image (a multi-model endpoint's) serves the "
                    "new one once this deploy updates it")
    return [Callout(stage, CATEGORY_IMAGE, "(environment)", "(container images)", ", ".join(types), message)]


def _tuning_config(pipeline: Optional[dict]) -> Optional[dict]:
    """The HyperParameterTuningJobConfig of a SageMaker pipeline's tuning step (any depth of condition steps), {} for a
    pipeline without one, None when ``pipeline`` is no pipeline or its definition cannot be read."""
    if not pipeline or pipeline.get("Type") != "AWS::SageMaker::Pipeline":
        return None
    body = ((pipeline.get("Properties") or {}).get("PipelineDefinition") or {}).get("PipelineDefinitionBody")
    document = expand_json_documents(body)
    if not isinstance(document, dict) or not isinstance(document.get(JSON_SEGMENT), dict):
        return None

    def walk(steps: object) -> Optional[dict]:
        for step in steps if isinstance(steps, list) else []:
            arguments = step.get("Arguments") if isinstance(step, dict) else None
            if not isinstance(arguments, dict):
                continue
            if step.get("Type") == "Tuning" and isinstance(arguments.get("HyperParameterTuningJobConfig"), dict):
                return arguments["HyperParameterTuningJobConfig"]
            found = walk(arguments.get("IfSteps")) or walk(arguments.get("ElseSteps"))
            if found:
                return found
        return None

    return walk(document[JSON_SEGMENT].get("Steps")) or {}


def _tuning_summary(config: dict) -> dict[str, object]:
    """What decides a tuning job's search, as a reviewer reads it: objective, ranges, budget, strategy, early stopping."""
    objective = config.get("HyperParameterTuningJobObjective") or {}
    limits = config.get("ResourceLimits") or {}
    ranges = {}
    for kind in ("IntegerParameterRanges", "ContinuousParameterRanges"):
        for r in (config.get("ParameterRanges") or {}).get(kind) or []:
            ranges[str(r.get("Name"))] = f"{r.get('MinValue')} to {r.get('MaxValue')}"
    for r in (config.get("ParameterRanges") or {}).get("CategoricalParameterRanges") or []:
        ranges[str(r.get("Name"))] = "one of " + ", ".join(map(str, r.get("Values") or []))
    return {
        "objective": f"{objective.get('MetricName')} ({objective.get('Type')})",
        "ranges": dict(sorted(ranges.items())),
        "budget": f"{limits.get('MaxNumberOfTrainingJobs')} training jobs, {limits.get('MaxParallelTrainingJobs')} at a time",
        "strategy": str(config.get("Strategy")),
        "early stopping": str(config.get("TrainingJobEarlyStoppingType", "Off")),
        "scaling": {r.get("Name"): r.get("ScalingType") for kind in ("IntegerParameterRanges", "ContinuousParameterRanges")
                    for r in (config.get("ParameterRanges") or {}).get(kind) or []},
    }


_NEXT_RUNS = ("pipeline executions started after this deploy search this way and register the trial it keeps; versions "
              "registered before were chosen by the old search")


def _tuning_callouts(rc: ResourceChange, add) -> None:
    """TUNING: a pipeline whose tuning job searches another way - its objective (which trial is kept, so which model
    the run registers), ranges, budget, strategy or early stopping - or that starts or stops tuning."""
    before, after = _tuning_config(rc.before), _tuning_config(rc.after)
    if before is None or after is None or before == after:
        return
    if not before:
        new = _tuning_summary(after)
        ranges = ", ".join(f"{name} {span}" for name, span in new["ranges"].items())
        add(CATEGORY_TUNING, f"{rc.label}: tuning turned on: the next run trains {new['budget']} ({new['strategy']}, over "
                             f"{ranges}) and keeps the trial best on {new['objective']} instead of training once")
        return
    old = _tuning_summary(before)
    if not after:
        add(CATEGORY_TUNING, f"{rc.label}: tuning turned off: the next run trains once with the configured hyperparameters "
                             f"instead of keeping the best of {old['budget'].split(',')[0]} on {old['objective']}")
        return
    new = _tuning_summary(after)
    changes = []
    # final-validation-<m> -> validation-<m>: the same metric, the kept model's (printed last), now also every round.
    renamed = old["objective"] == f"final-{new['objective']}"
    if renamed:
        changes.append(f"objective {old['objective']} -> {new['objective']}, the same metric, now printed every round too "
                       "(a trial's objective is still the kept model's)")
    elif old["objective"] != new["objective"]:
        changes.append(f"objective {old['objective']} -> {new['objective']}")
    for name in dict.fromkeys([*old["ranges"], *new["ranges"]]):
        was, now = old["ranges"].get(name), new["ranges"].get(name)
        scaled, scales = old["scaling"].get(name), new["scaling"].get(name)
        if was != now:
            # A new scaling spreads the trials over the range otherwise: said with the new bounds, not dropped.
            rescaled = f" (scaling {scaled} -> {scales})" if was and now and scaled != scales else ""
            changes.append(f"{name} {was} -> {now}{rescaled}" if was and now else
                           f"{name} {now} searched" if now else f"{name} ({was}) no longer searched")
        elif scaled != scales:
            changes.append(f"{name} scaling {scaled} -> {scales}")
    for key in ("budget", "strategy", "early stopping"):
        if old[key] != new[key]:
            changes.append(f"{key} {old[key]} -> {new[key]}")
    if not changes:
        return
    what = "; ".join(changes)
    if old["objective"] != new["objective"] and not renamed:
        objective = new["objective"].rsplit(" (", 1)[0]
        add(CATEGORY_TUNING, f"{rc.label}: the tuning job changes: {what}: the next run keeps the trial best on "
                             f"{objective}, which may be another model than the old objective would keep. "
                             f"{_NEXT_RUNS[0].upper()}{_NEXT_RUNS[1:]}")
    else:
        add(CATEGORY_TUNING, f"{rc.label}: the tuning job changes: {what}. It still keeps the trial best on "
                             f"{new['objective']}: {_NEXT_RUNS}")


def callouts_for(stage: str, stack: StackDiff, rc: ResourceChange, *, before_dir: Optional[Path] = None,
                 after_dir: Optional[Path] = None) -> list[Callout]:
    """The call-outs of one resource change; ``before_dir``/``after_dir``: the directories of the base's and the
    head's template of the stack (their assemblies hold the code assets some call-outs read)."""
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
        if policy in KEPT_DELETION_POLICIES:
            fate = f"{name} is {policy}: the old resource and its data are kept but orphaned" + (
                "" if rc.kind == "removed" else "; the new one starts empty")
        else:
            fate = f"{name} is {policy}, not Retain: CloudFormation DELETES {old} and its data"
        runs = _pipeline_runs(rc) if policy not in KEPT_DELETION_POLICIES else ""
        add(CATEGORY_DATA_AT_RISK, f"{what}. {fate}." + runs + ("".join(" " + n + "." for n in rc.notes)))

    if rc.resource_type == "AWS::SageMaker::FeatureGroup" and rc.kind == "modified":
        # UpdateFeatureGroup takes FeatureAdditions only: "Features cannot be removed from a feature group".
        def feature(c: PropertyChange) -> str:
            return c.path[2].removeprefix("[FeatureName=").removesuffix("]")

        gone = [feature(c) for c in rc.changes if len(c.path) == 3 and c.path[1] == "FeatureDefinitions" and c.new is MISSING]
        retyped = [feature(c) for c in rc.changes if c.path[1:2] == ("FeatureDefinitions",) and c.path[-1] == "FeatureType"]
        if gone or retyped:
            what = "; ".join(part for part in (f"removes {', '.join(gone)}" if gone else "",
                                               f"retypes {', '.join(retyped)}" if retyped else "") if part)
            # Filed where its message is: CloudFormation refuses the update (and rolls back), no data is lost.
            add(CATEGORY_UPDATE_FAILS, f"{rc.label}: {what}. A feature group only takes added features, so this update "
                                       "fails: keep the feature declared (models may stop using it), or declare the "
                                       "changed dataset under a new name (a new feature group: copy the dataset's raw files "
                                       "under the new name's prefix, s3://<raw bucket>/<new name>/, in the same change, "
                                       "or its ETL finds no file and fails; its history starts at the oldest raw file "
                                       "still kept)")

    if rc.kind in ("modified", "replaced"):
        _by_id_feature_callouts(rc, add, before_dir=before_dir, after_dir=after_dir)
        _model_contract_callouts(rc, add, before_dir=before_dir, after_dir=after_dir)
        _serving_mode_callouts(rc, add)
        _inferentia2_callouts(rc, add)
        _governance_callouts(rc, add)
        _cost_callouts(rc, add)
        _tuning_callouts(rc, add)

    if rc.resource_type in SERVING_TYPES and rc.kind == "removed":
        add(CATEGORY_SERVING, f"{rc.label}: removed; its callers get errors from the moment the stack updates (a model "
                              "moved to another name or environment is served there only once a version is approved)")

    def changes(pattern: Optional[re.Pattern]) -> list[PropertyChange]:
        # A statement moved to another policy of the same role is its own call-out (.running_work), not a change here.
        return [c for c in rc.changes if not c.asset_only and not c.moved and (pattern is None or _matches(c.path, pattern))]

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
