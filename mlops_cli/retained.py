"""What a deleted stack left behind, and how a new stack of the same name adopts it.

Outside dev the stacks keep their stateful resources when they are deleted (``DeletionPolicy`` ``Retain`` /
``RetainExceptOnCreate``): buckets and their policies, the Glue database, feature groups and the role they write their
offline store as, model package groups, log groups with fixed names, dead-letter queues (one with a fixed name: the
Serving stack's batch schedules'), and the KMS keys, which have no name. A ``cdk
deploy`` of the deleted stack would fail "already exists" on every fixed name, and would create new keys: the other
stacks' weak references (``Fn::GetStackOutput``) would then name the new data key, and every role would lose
``kms:Decrypt`` on what the old one encrypted. So before such a stack is created again, what it left is adopted.

The retained resources and their logical ids come from the synthesized templates (``cdk.out``, what ``cdk deploy``
would create: the one definition of every name); each is looked up in the account with read-only calls (the keys by
the description and tags the app gives them; their aliases are deleted with the stack; the offline-store role, whose
name is generated, by the name in the retained feature groups' ``RoleArn``). A key of the environment that
is pending deletion is not adopted but named, with when it goes and how to cancel that (then adopt again): it may be
the key that encrypted the data. :func:`plan` splits what exists in two:

* the resource mapping of ``cdk import`` (``{logical id: {identifier property: value}}``, the file
  ``--resource-mapping`` reads): what CloudFormation can import on its own, i.e. every resource found whose
  references (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``DependsOn``) all point at other resources of the mapping - the
  import creates a stack of those alone, and a reference to anything else would be unresolved;
* what the following ``cdk deploy --import-existing-resources`` adopts by name (CloudFormation's auto-import: a static
  name in the template and a retaining DeletionPolicy), e.g. a feature group, which depends on its role's managed
  policy: that policy was deleted with the stack and is created, attached to the imported role, by the same deploy.

A feature group's ``RoleArn`` cannot change (create-only), so the role it names must be the one adopted: when that role
is gone (a stack deleted before the app kept it), or the template does not keep it, adoption cannot repair the group's
offline store, and the line says what to do (re-create the role under exactly that name, then adopt again). Anything
found that fits neither list (none in the app's templates today) is named, to be handled by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

# The DeletionPolicy values under which CloudFormation keeps a resource when its stack is deleted.
RETAINED = ("Retain", "RetainExceptOnCreate")

# The property CloudFormation identifies an existing resource of each type by in an import (the primaryIdentifier of
# the type's registry schema, which GetTemplateSummary hands `cdk import`): the keys of a resource mapping.
IMPORT_IDENTIFIER = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::S3::BucketPolicy": "Bucket",
    "AWS::KMS::Key": "KeyId",
    "AWS::SageMaker::FeatureGroup": "FeatureGroupName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupArn",
    "AWS::Glue::Database": "DatabaseName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::IAM::Role": "RoleName",
    "AWS::SQS::Queue": "QueueUrl",
}

# The properties of an AWS::IAM::Role `aws iam create-role` takes, by its option (what a role re-created by hand needs
# to match the template: an import takes the resource as it is, and the deploy after it changes nothing the import
# template already said).
CREATE_ROLE_OPTIONS = {"AssumeRolePolicyDocument": "--assume-role-policy-document", "Description": "--description",
                       "Path": "--path", "MaxSessionDuration": "--max-session-duration",
                       "PermissionsBoundary": "--permissions-boundary", "Tags": "--tags"}

# Where scripts/synth.sh (and `cdk synth`) write the app: cdk.out next to cdk.json.
DEFAULT_ASSEMBLY = Path(__file__).resolve().parents[1] / "cdk.out"

# Key states of a key scheduled for deletion: not adopted as it is (an import of it would hand the stack a key that is
# about to go), but reported, since it may be the key that encrypted the data - cancelled in time, it can be adopted.
_PENDING_DELETION_STATES = ("PendingDeletion", "PendingReplicaDeletion")


class AssemblyProblem(Exception):
    """The synthesized app cannot say what the stacks retain (missing, or synthesized for another target); one line."""


@dataclass(frozen=True)
class SynthesizedStack:
    name: str  # the CloudFormation stack name
    selector: str  # what the CDK CLI selects it by: '<environment>/<Stack>'
    template: Dict[str, Any]


@dataclass
class Leftovers:
    """What of ``stack``'s retained resources exists in the account."""

    stack: SynthesizedStack
    found: Dict[str, Dict[str, str]] = field(default_factory=dict)  # logical id -> import identifier
    labels: Dict[str, str] = field(default_factory=dict)  # logical id -> "<type> <physical id>"
    ambiguous: Dict[str, List[str]] = field(default_factory=dict)  # logical id (a key) -> the key ids that match it
    # What adoption cannot repair, one line each with what to do first (a feature group's role that is gone).
    problems: List[str] = field(default_factory=list)
    # logical id (a key) -> (key id, until when), for each matching key scheduled for deletion
    pending: Dict[str, List[Tuple[str, str]]] = field(default_factory=dict)

    # "<type> <name>" of what the template does not keep yet is there under its fixed name (a monitor table kept by an
    # earlier version): not adopted, deleted first (its line is in ``problems``).
    in_the_way: List[str] = field(default_factory=list)

    @property
    def exist(self) -> bool:
        return bool(self.found or self.ambiguous or self.pending)

    @property
    def blocks(self) -> bool:
        """Whether `cdk deploy` cannot create the stack yet: something to adopt, or something in the way."""
        return self.exist or bool(self.in_the_way)

    def describe(self) -> List[str]:
        return [self.labels[lid] for lid in self.found] + self.in_the_way + [
            f"AWS::KMS::Key {' or '.join(ids)} (several match {lid})" for lid, ids in self.ambiguous.items()] + [
            pending_key_line(key_id, until) for keys in self.pending.values() for key_id, until in keys]


def pending_key_line(key_id: str, until: str) -> str:
    """What to do about a key of the environment that is scheduled for deletion (a cancelled deletion leaves the key
    disabled, hence the enable)."""
    return (f"key {key_id} of this environment is pending deletion {until}: aws kms cancel-key-deletion --key-id "
            f"{key_id}, then aws kms enable-key --key-id {key_id}, then adopt")


@dataclass(frozen=True)
class Adoption:
    mapping: Dict[str, Dict[str, str]]  # for cdk import --resource-mapping
    by_name: List[str]  # logical ids `cdk deploy --import-existing-resources` adopts
    by_hand: List[str]  # what neither adopts (one line each)


def synthesized_stacks(assembly: Path, environment: str, account: str, region: str) -> Dict[str, SynthesizedStack]:
    """The stacks of ``environment`` in the assembly at ``assembly``, by stack name; refused (AssemblyProblem) when
    there is none, or when it was synthesized for another account or region than ``account`` / ``region``."""
    manifest = assembly / "manifest.json"
    if not manifest.is_file():
        raise AssemblyProblem(f"no synthesized app at {assembly}: run bash scripts/synth.sh (or pass --assembly <cdk.out>)")
    stage_dir = None
    for artifact in json.loads(manifest.read_text()).get("artifacts", {}).values():
        props = artifact.get("properties", {})
        if artifact.get("type") == "cdk:cloud-assembly" and props.get("displayName") == environment:
            stage_dir = assembly / props["directoryName"]
    if stage_dir is None:
        raise AssemblyProblem(f"the synthesized app at {assembly} has no environment '{environment}': synthesize it "
                              "again (bash scripts/synth.sh) with the config that names it")
    stacks = {}
    target = f"aws://{account}/{region}"
    for artifact_id, artifact in json.loads((stage_dir / "manifest.json").read_text()).get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        if artifact.get("environment") != target:
            raise AssemblyProblem(f"the synthesized app at {assembly} deploys '{environment}' to "
                                  f"{artifact.get('environment')}, not {target}: synthesize it again (bash scripts/synth.sh)")
        props = artifact["properties"]
        name = props.get("stackName", artifact_id)
        stacks[name] = SynthesizedStack(name, artifact.get("displayName", f"{environment}/{artifact_id}"),
                                        json.loads((stage_dir / props["templateFile"]).read_text()))
    return stacks


def retained(template: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """The resources of ``template`` its stack's deletion keeps, by logical id."""
    return {lid: r for lid, r in template.get("Resources", {}).items() if r.get("DeletionPolicy") in RETAINED}


def fixed_name(template: Dict[str, Any], resource: Dict[str, Any]) -> str:
    """The physical name ``resource`` gets from the template ("" when it has none there: a generated name, or a key)."""
    props = resource.get("Properties", {})
    kind = resource["Type"]
    if kind == "AWS::S3::BucketPolicy":
        bucket = props.get("Bucket")
        if isinstance(bucket, dict) and set(bucket) == {"Ref"}:
            bucket = template["Resources"].get(bucket["Ref"], {}).get("Properties", {}).get("BucketName")
        value = bucket
    elif kind == "AWS::Glue::Database":
        value = props.get("DatabaseName") or props.get("DatabaseInput", {}).get("Name")
    else:
        value = props.get({"AWS::S3::Bucket": "BucketName", "AWS::SageMaker::FeatureGroup": "FeatureGroupName",
                           "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
                           "AWS::Logs::LogGroup": "LogGroupName", "AWS::SQS::Queue": "QueueName"}.get(kind, ""))
    return value if isinstance(value, str) else ""


def references(resource: Dict[str, Any]) -> Set[str]:
    """The logical ids (and parameters) ``resource`` refers to: Ref, Fn::GetAtt, Fn::Sub and DependsOn; a resource
    under a Condition refers to it (the import template has no Conditions)."""
    found: Set[str] = set()
    depends = resource.get("DependsOn", [])
    found.update([depends] if isinstance(depends, str) else depends)
    if "Condition" in resource:
        found.add(f"Condition:{resource['Condition']}")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Ref" and isinstance(value, str):
                    found.add(value)
                elif key == "Fn::GetAtt":
                    found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
                elif key == "Fn::Sub":
                    text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
                    found.update(v.split(".")[0] for v in re.findall(r"\$\{([^!][^}]*)\}", text) if v not in variables)
                    walk(variables)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(resource.get("Properties", {}))
    return {r for r in found if not r.startswith("AWS::")}


def role_of(template: Dict[str, Any], group: Dict[str, Any]) -> Optional[str]:
    """The logical id of the AWS::IAM::Role of ``template`` the feature group ``group``'s ``RoleArn`` names (None when
    it names none of the template's roles)."""
    arn = group.get("Properties", {}).get("RoleArn")
    target = arn.get("Fn::GetAtt") if isinstance(arn, dict) else None
    lid = target[0] if isinstance(target, list) else str(target).split(".")[0] if isinstance(target, str) else None
    return lid if template["Resources"].get(lid or "", {}).get("Type") == "AWS::IAM::Role" else None


def role_name_of(arn: str) -> str:
    """The name of the role ``arn`` names (its last segment: a role's path comes before its name)."""
    return arn.rsplit("/", 1)[-1]


def missing_role(stack: SynthesizedStack, role: str, name: str, groups: List[str]) -> str:
    """The line for the role ``name`` the retained feature groups ``groups`` write their offline store as, which no
    longer exists, as template role ``role``: what it breaks, and the command that creates it again as the template
    has it (when the template's properties are all `create-role` options without references; else where to copy them
    from), before adopt runs again."""
    resource = stack.template["Resources"][role]
    props = resource.get("Properties", {})
    if set(props) <= set(CREATE_ROLE_OPTIONS) and not references({"Properties": props}) and not _intrinsic(props):
        options = [f"--role-name {shlex.quote(name)}"] + [
            f"{CREATE_ROLE_OPTIONS[key]} {shlex.quote(value if isinstance(value, str) else json.dumps(value, separators=(',', ':')))}"
            for key, value in props.items()]
        create = "aws iam create-role " + " ".join(options)
    else:
        create = (f"create a role named exactly {name} with every property {role} has in the synthesized template of "
                  f"{stack.selector}")
    policies = sorted(lid for lid, r in stack.template["Resources"].items()
                      if r["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy")
                      and {"Ref": role} in r.get("Properties", {}).get("Roles", []))
    attached = f": the deploy after the import attaches its permissions ({', '.join(policies)})" if policies else ""
    return (f"AWS::IAM::Role {name} ({role}) does not exist: {_feature_groups(groups)} "
            f"write{'' if len(groups) > 1 else 's'} {'their' if len(groups) > 1 else 'its'} offline store as that role "
            "(RoleArn, fixed when the group was created), so Feature Store cannot write it until a role of exactly that "
            f"name is back; create it again ({create}), then run adopt again, which imports it{attached}")


def _feature_groups(names: List[str]) -> str:
    return f"feature group{'s' if len(names) > 1 else ''} {', '.join(names)}"


def _intrinsic(node: Any) -> bool:
    """Whether ``node`` holds a CloudFormation function (a value only the deployed stack knows)."""
    if isinstance(node, dict):
        return any(k == "Ref" or k.startswith("Fn::") or _intrinsic(v) for k, v in node.items())
    return isinstance(node, list) and any(_intrinsic(v) for v in node)


def plan(leftovers: Leftovers) -> Adoption:
    """How ``leftovers`` are adopted (see the module's docstring); a key several keys match is left out of the mapping
    and named (``by_hand``) with how to choose, and so is a key pending deletion, with how to cancel that."""
    resources = leftovers.stack.template["Resources"]
    # A key that several match is counted in: the operator adds the right one to the mapping, and what refers to it
    # (its buckets) is then imported with it. So is a key pending deletion: once cancelled, adopt finds it.
    mapped = set(leftovers.found) | set(leftovers.ambiguous) | set(leftovers.pending)
    changed = True
    while changed:
        changed = False
        for lid in sorted(mapped):
            if not references(resources[lid]) <= mapped:
                mapped.discard(lid)
                changed = True
    by_name, by_hand = [], []
    for lid in leftovers.found:
        if lid in mapped:
            continue
        identifier = IMPORT_IDENTIFIER.get(resources[lid]["Type"], "")
        if isinstance(resources[lid].get("Properties", {}).get(identifier), str):
            by_name.append(lid)
        else:
            missing = ", ".join(sorted(references(resources[lid]) - mapped))
            by_hand.append(f"{leftovers.labels[lid]} ({lid}): refers to {missing}, which the import does not hold, and has "
                           "no name the deploy could adopt it by")
    for lid, ids in leftovers.ambiguous.items():
        description = resources[lid]["Properties"].get("Description", "")
        by_hand.append(f"{lid} ({description}): {len(ids)} keys match ({', '.join(ids)}); "
                       f"add the one that encrypted the data to the mapping as \"{lid}\": {{\"KeyId\": \"<key id>\"}} (aws s3api "
                       "get-bucket-encryption on a bucket of the stack names it)")
    by_hand += leftovers.problems
    for lid, keys in leftovers.pending.items():
        by_hand += [f"{lid}: {pending_key_line(key_id, until)}" for key_id, until in keys]
    return Adoption({lid: leftovers.found[lid] for lid in leftovers.found if lid in mapped}, by_name, by_hand)


class Finder:
    """Looks a stack's retained resources up in the account (read-only calls; clients made from ``session``)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._clients: Dict[str, Any] = {}
        self._group_roles: Dict[str, str] = {}  # feature group name -> its RoleArn (DescribeFeatureGroup)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    def leftovers(self, stack: SynthesizedStack) -> Leftovers:
        found = Leftovers(stack)
        keys = {lid: r for lid, r in retained(stack.template).items() if r["Type"] == "AWS::KMS::Key"}
        for lid, resource in retained(stack.template).items():
            name = fixed_name(stack.template, resource)
            identifier = self._look_up(resource["Type"], name) if name else None
            if identifier is not None:
                found.found[lid] = identifier
                found.labels[lid] = f"{resource['Type']} {name}"
        matches, pending = self._keys(keys)
        for lid, ids in matches.items():
            if len(ids) == 1:
                found.found[lid] = {"KeyId": ids[0]}
                found.labels[lid] = f"AWS::KMS::Key {ids[0]}"
            elif ids:
                found.ambiguous[lid] = ids
        self._offline_store_roles(found)
        self._tables_in_the_way(found)
        found.pending = {lid: scheduled for lid, scheduled in pending.items() if scheduled}
        return found

    def _offline_store_roles(self, found: Leftovers) -> None:
        """The role each found feature group writes its offline store as (the name in its RoleArn, which cannot
        change): imported by that name when it exists and the template keeps the role the group names; else a problem
        that says what to do (a role that is gone: deleted with a stack before the app kept it)."""
        template = found.stack.template
        roles: Dict[str, Dict[str, List[str]]] = {}  # template role -> the role names groups write as -> those groups
        for lid in list(found.found):
            group = template["Resources"][lid]
            if group["Type"] != "AWS::SageMaker::FeatureGroup":
                continue
            name = fixed_name(template, group)
            role, arn = role_of(template, group), self._group_roles.get(name)
            if role and arn:
                roles.setdefault(role, {}).setdefault(role_name_of(arn), []).append(name)
        for role, names in roles.items():
            if len(names) > 1:
                # Groups created by different generations of the stack: the template's one role can be only one of them.
                found.problems.append(f"{role}: the feature groups write their offline store as different roles ("
                                      + "; ".join(f"{', '.join(groups)}: {name}" for name, groups in names.items())
                                      + f"), and the template has one role for all: add the one to keep to the mapping "
                                      f"as \"{role}\": {{\"RoleName\": \"<name>\"}}; the groups naming the other "
                                      "keep writing as it, outside the stack (it must stay)")
                continue
            ((name, groups),) = names.items()
            if not self._role_exists(name):
                found.problems.append(missing_role(found.stack, role, name, groups))
            elif template["Resources"][role].get("DeletionPolicy") not in RETAINED:
                found.problems.append(f"AWS::IAM::Role {name} ({role}): the template does not keep it, so it cannot be "
                                      f"imported and the deploy would make a role of another name, which "
                                      f"{_feature_groups(groups)} would not use: synthesize the app with a version that "
                                      "keeps it (outside dev), then adopt again")
            else:
                found.found[role] = {IMPORT_IDENTIFIER["AWS::IAM::Role"]: name}
                found.labels[role] = f"AWS::IAM::Role {name}"

    def _tables_in_the_way(self, found: Leftovers) -> None:
        """Each Glue table of the template it deletes with its stack (not adopted) that is there anyway: the drift
        monitor's, which a Storage stack deleted before they went with it kept under their fixed names. The deploy would
        fail "already exists" on it, so it is a problem to solve first: its delete-table command (a definition: the
        records stay in the bucket, and the deploy defines it again)."""
        for lid, resource in found.stack.template.get("Resources", {}).items():
            if resource["Type"] != "AWS::Glue::Table" or resource.get("DeletionPolicy") in RETAINED:
                continue
            props = resource.get("Properties", {})
            database, table = props.get("DatabaseName"), props.get("TableInput", {}).get("Name")
            if not (isinstance(database, str) and isinstance(table, str)) or not self._table_exists(database, table):
                continue
            region = self.client("glue").meta.region_name
            found.in_the_way.append(f"AWS::Glue::Table {database}.{table}")
            found.problems.append(
                f"AWS::Glue::Table {database}.{table} ({lid}): kept by a Storage stack deleted before the drift "
                "monitor's tables were deleted with it; the template no longer keeps it, so it cannot be adopted and "
                f"the deploy would fail \"already exists\" on it: delete it (a definition: the records stay in the "
                f"bucket, and the deploy defines it again): aws glue delete-table --region {region} --database-name "
                f"{shlex.quote(database)} --name {shlex.quote(table)}")

    def _table_exists(self, database: str, table: str) -> bool:
        from botocore.exceptions import ClientError
        try:
            self.client("glue").get_table(DatabaseName=database, Name=table)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "EntityNotFoundException":
                return False
            raise
        return True

    def _role_exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client("iam").get_role(RoleName=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return False
            raise
        return True

    def _look_up(self, kind: str, name: str) -> Optional[Dict[str, str]]:
        """The import identifier of the ``kind`` resource named ``name``, None when there is none."""
        from botocore.exceptions import ClientError

        try:
            if kind == "AWS::S3::Bucket":
                self.client("s3").head_bucket(Bucket=name)
            elif kind == "AWS::S3::BucketPolicy":
                self.client("s3").get_bucket_policy(Bucket=name)
            elif kind == "AWS::SageMaker::FeatureGroup":
                described = self.client("sagemaker").describe_feature_group(FeatureGroupName=name)
                if described.get("RoleArn"):
                    self._group_roles[name] = described["RoleArn"]
            elif kind == "AWS::SageMaker::ModelPackageGroup":
                arn = self.client("sagemaker").describe_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"]
                return {IMPORT_IDENTIFIER[kind]: arn}
            elif kind == "AWS::Glue::Database":
                self.client("glue").get_database(Name=name)
            elif kind == "AWS::SQS::Queue":
                # A queue is imported by its URL (the template can only name it): the mapping holds it.
                return {IMPORT_IDENTIFIER[kind]: self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]}
            elif kind == "AWS::Logs::LogGroup":
                pages = self.client("logs").get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
                if not any(g["logGroupName"] == name for page in pages for g in page.get("logGroups", [])):
                    return None
            else:
                return None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "403" and kind == "AWS::S3::Bucket":
                # HeadBucket answers 403 for a bucket that exists but these credentials may not read: it is there.
                return {IMPORT_IDENTIFIER[kind]: name}
            if code in ("404", "NoSuchBucket", "NotFound", "NoSuchBucketPolicy", "ResourceNotFound",
                        "ResourceNotFoundException", "EntityNotFoundException", "AWS.SimpleQueueService.NonExistentQueue",
                        "QueueDoesNotExist") or (
                    code == "ValidationException" and "does not exist" in str(error)):
                return None
            raise
        return {IMPORT_IDENTIFIER[kind]: name}

    def _keys(self, keys: Dict[str, Dict[str, Any]]) -> Tuple[Dict[str, List[str]], Dict[str, List[Tuple[str, str]]]]:
        """Per retained key of the template, the customer keys in the account with its description and every tag it
        gives: (the ids of those not pending deletion, (id, until when) of those pending deletion)."""
        from botocore.exceptions import ClientError

        if not keys:
            return {}, {}
        wanted = {lid: (r["Properties"].get("Description"), {t["Key"]: t["Value"] for t in r["Properties"].get("Tags", [])
                                                              if isinstance(t.get("Value"), str)})
                  for lid, r in keys.items()}
        matches: Dict[str, List[str]] = {lid: [] for lid in keys}
        pending: Dict[str, List[Tuple[str, str]]] = {lid: [] for lid in keys}
        kms = self.client("kms")
        for key_id in self._key_ids():
            try:
                meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
            except ClientError as error:
                # A key whose policy does not let this account's principals read it is no key of the app's.
                if error.response.get("Error", {}).get("Code") == "AccessDeniedException":
                    continue
                raise
            if meta.get("KeyManager") != "CUSTOMER":
                continue
            candidates = [lid for lid, (description, _) in wanted.items()
                          if description and meta.get("Description") == description]
            if not candidates:
                continue
            tags = {t["TagKey"]: t["TagValue"] for page in kms.get_paginator("list_resource_tags").paginate(KeyId=key_id)
                    for t in page.get("Tags", [])}
            for lid in candidates:
                if all(tags.get(k) == v for k, v in wanted[lid][1].items()):
                    if meta.get("KeyState") in _PENDING_DELETION_STATES:
                        pending[lid].append((key_id, _until(meta)))
                    else:
                        matches[lid].append(key_id)
        return matches, pending

    def _key_ids(self) -> Iterator[str]:
        for page in self.client("kms").get_paginator("list_keys").paginate():
            for key in page.get("Keys", []):
                yield key["KeyId"]


def _until(meta: Dict[str, Any]) -> str:
    """When a key scheduled for deletion goes: "until <UTC time>", or for a multi-Region primary key whose replicas
    remain (no DeletionDate yet) its waiting period once they are gone."""
    when = meta.get("DeletionDate")
    if isinstance(when, dt.datetime):
        when = when.astimezone(dt.timezone.utc) if when.tzinfo else when  # botocore's are aware; naive taken as UTC
        return f"until {when:%Y-%m-%d %H:%M} UTC"
    days = meta.get("PendingDeletionWindowInDays")
    return f"until {days} days after its replica keys are deleted" if days else "(date not given)"
