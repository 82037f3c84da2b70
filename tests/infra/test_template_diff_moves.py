"""The template diff matches stacks as ``cdk deploy`` does, by target (account, region) and stack name.

A stack whose target or name changes (region, account or project change, renamed environment) is created anew
beside the old one, which ``cdk deploy`` leaves running; a stack the app no longer has is never deleted. The
inputs are small assemblies laid out as ``cdk synth`` writes them (``tests.support.assemblies``); a move creates
only new resources, so these comparisons ask cloudformation-diff nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlops_loop.tools.template_diff import (
    CATEGORY_DATA_AT_RISK,
    CATEGORY_KMS,
    CATEGORY_LEFT_RUNNING,
    CATEGORY_MOVED,
    CATEGORY_SERVING,
    compare_assemblies,
    render_markdown,
    render_text,
)
from tests.support.assemblies import endpoint, instance_config, template, write_assembly


def _environment(stage: str = "prod", *, account: str = "111111111111", region: str = "eu-west-1",
                 project: str = "mlops-loop") -> dict[str, dict]:
    """A Storage stack (a retained bucket named after its account and region, a model registry, a key) and a
    Serving stack (one endpoint), named as the app names them."""
    prefix = f"{project}-{stage}"
    storage = template({
        "Key": {"Type": "AWS::KMS::Key", "Properties": {}, "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"},
        "RawBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": f"{prefix}-raw-{account}-{region}"},
                      "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"},
        "Registry": {"Type": "AWS::SageMaker::ModelPackageGroup", "Properties": {"ModelPackageGroupName": f"{prefix}-churn"},
                     "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"},
    })
    serving = template({
        "Endpoint": endpoint(f"{prefix}-churn", "Config", model="churn", mode="realtime"),
        "Config": instance_config("ml.m5.large", 1),
    })
    return {"Storage": storage, "Serving": serving}


def _assembly(root: Path, stages: dict[str, dict[str, dict]], **target) -> Path:
    return write_assembly(root, stages, protected=("Storage",), **target)


def _retarget(root: Path, stage: str, environment: str) -> None:
    """Point every stack of ``stage`` at ``environment`` (``aws://<account>/<region>``)."""
    path = root / f"assembly-{stage}" / "manifest.json"
    manifest = json.loads(path.read_text())
    for artifact in manifest["artifacts"].values():
        if artifact["type"] == "aws:cloudformation:stack":
            artifact["environment"] = environment
    path.write_text(json.dumps(manifest))


OLD = "aws://111111111111/eu-west-1"
SERVING_SENTENCE = (". It serves nothing until a version is approved there (no endpoint before that): move callers to it "
                    "then; the old stack answers them until it is deleted")
STORAGE_SENTENCES = (". Its stateful resources start empty: nothing is copied from the old stack. Its model registry "
                     "starts empty: no model is approved in the new environment until its pipeline runs and a version "
                     "is approved")


def test_a_region_change_is_a_move_to_new_stacks_not_a_replacement_of_the_old_ones(tmp_path):
    """GIVEN prod's stacks in eu-west-1 in the base and in eu-central-1 in the head (its bucket named after its region)
    WHEN compared THEN each stack is moved: a MOVED call-out says the new stack is created there, the old one is left
    running until deleted by hand with the old assembly, and the new one starts empty with no approved model and no
    endpoint; no DATA AT RISK or SERVING STOPS call-out claims the old resources are replaced or removed."""
    base = _assembly(tmp_path / "base", {"prod": _environment()})
    head = _assembly(tmp_path / "head", {"prod": _environment(region="eu-central-1")}, region="eu-central-1")

    diff = compare_assemblies(base, head)

    assert [(s.short_name, s.status) for s in diff.stacks] == [("Storage", "moved"), ("Serving", "moved")]
    assert [(c.category, c.stack, c.logical_id) for c in diff.callouts_for("prod")] == [
        (CATEGORY_MOVED, "Storage", "(stack)"), (CATEGORY_MOVED, "Serving", "(stack)"), (CATEGORY_KMS, "Storage", "Key")]
    storage, serving = (c.message for c in diff.callouts_for("prod")[:2])
    assert storage == (
        "moved to a new stack mlops-loop-prod-storage in aws://111111111111/eu-central-1 (3 resources, all created new); "
        "`cdk deploy` leaves the old stack mlops-loop-prod-storage in aws://111111111111/eu-west-1 as it is (running, "
        "costing, its retained data kept). Once the new one serves, delete the old one by hand: turn its termination "
        "protection off first, then `npx cdk destroy --app <the old commit's cdk.out> 'prod/Storage'`, or delete it in "
        "CloudFormation in aws://111111111111/eu-west-1" + STORAGE_SENTENCES
    )
    assert serving == (
        "moved to a new stack mlops-loop-prod-serving in aws://111111111111/eu-central-1 (2 resources, all created new); "
        "`cdk deploy` leaves the old stack mlops-loop-prod-serving in aws://111111111111/eu-west-1 as it is (running, "
        "costing, its retained data kept). Once the new one serves, delete the old one by hand: `npx cdk destroy --app "
        "<the old commit's cdk.out> 'prod/Serving'`, or delete it in CloudFormation in aws://111111111111/eu-west-1"
        + SERVING_SENTENCE
    )
    assert {r.kind for s in diff.stacks for r in s.resources} == {"added"}
    text = render_text(diff, title="t")
    assert "  2 stacks moved, 5 added, 0 removed, 0 modified, 0 replaced, 3 call-outs\n" in text
    assert ("  Stack mlops-loop-prod-storage (prodStorage0A1B2C3D): moved: a new stack in aws://111111111111/eu-central-1; "
            "the old one, mlops-loop-prod-storage in aws://111111111111/eu-west-1, is left as it is\n") in text
    assert "DATA AT RISK" not in text and "SERVING STOPS" not in text and "replaced (" not in text
    markdown = render_markdown(diff, title="t")
    assert "| Environment | Stacks added | Stacks removed | Stacks moved | Added |" in markdown
    assert "| `prod` | 0 | 0 | 2 | 5 | 0 | 0 | 0 | 3 |" in markdown
    assert "- :warning: **MOVED** `Storage/(stack)` (AWS::CloudFormation::Stack): moved to a new stack" in markdown


def test_an_account_change_is_a_move_naming_both_accounts(tmp_path):
    """GIVEN prod moved from account 111111111111 to 333333333333 (same region) WHEN compared THEN its stacks move,
    and nothing is said to be deleted."""
    base = _assembly(tmp_path / "base", {"prod": _environment()})
    head = _assembly(tmp_path / "head", {"prod": _environment(account="333333333333")}, account="333333333333")

    diff = compare_assemblies(base, head)

    (serving,) = [c for c in diff.callouts if c.category == CATEGORY_MOVED and c.stack == "Serving"]
    assert serving.message.startswith(
        "moved to a new stack mlops-loop-prod-serving in aws://333333333333/eu-west-1 (2 resources, all created new); "
        "`cdk deploy` leaves the old stack mlops-loop-prod-serving in aws://111111111111/eu-west-1 as it is")
    assert {c.category for c in diff.callouts} == {CATEGORY_MOVED, CATEGORY_KMS}


def test_a_project_rename_is_a_move_to_stacks_of_the_new_names_in_the_same_account(tmp_path):
    """GIVEN the project renamed (every stack name changes, the target does not) WHEN compared THEN each stack moves
    to its new name and the old one, by its old name, is left as it is."""
    base = _assembly(tmp_path / "base", {"prod": _environment()})
    head = _assembly(tmp_path / "head", {"prod": _environment(project="churn-loop")}, project="churn-loop")

    diff = compare_assemblies(base, head)

    assert [(s.stack_name, s.status, s.moved_from.stack_name) for s in diff.stacks] == [
        ("churn-loop-prod-storage", "moved", "mlops-loop-prod-storage"),
        ("churn-loop-prod-serving", "moved", "mlops-loop-prod-serving"),
    ]
    (serving,) = [c for c in diff.callouts if c.category == CATEGORY_MOVED and c.stack == "Serving"]
    assert serving.message.startswith(
        f"moved to a new stack churn-loop-prod-serving in {OLD} (2 resources, all created new); `cdk deploy` leaves the "
        f"old stack mlops-loop-prod-serving in {OLD} as it is")


def test_a_renamed_environment_is_a_move_reported_under_its_new_name(tmp_path):
    """GIVEN prod renamed production (its stacks named after it) WHEN compared THEN the diff has one environment,
    production, whose stacks moved from prod's, deleted by hand with the old assembly's 'prod/...' selectors; no
    SERVING STOPS for prod's endpoint, no DATA AT RISK for its registry."""
    base = _assembly(tmp_path / "base", {"dev": _environment("dev"), "prod": _environment()})
    head = _assembly(tmp_path / "head", {"dev": _environment("dev"), "production": _environment("production")})

    diff = compare_assemblies(base, head)

    assert diff.environments == ["dev", "production"]
    assert [(s.stage, s.status) for s in diff.for_stage("production")] == [("production", "moved")] * 2
    assert [s.moved_from.pattern for s in diff.for_stage("production")] == ["prod/Storage", "prod/Serving"]
    (serving,) = [c for c in diff.callouts if c.category == CATEGORY_MOVED and c.stack == "Serving"]
    assert serving.message == (
        f"moved to a new stack mlops-loop-production-serving in {OLD} (2 resources, all created new); `cdk deploy` leaves "
        f"the old stack mlops-loop-prod-serving in {OLD} as it is (running, costing, its retained data kept). Once the "
        "new one serves, delete the old one by hand: `npx cdk destroy --app <the old commit's cdk.out> 'prod/Serving'`, "
        f"or delete it in CloudFormation in {OLD}" + SERVING_SENTENCE
    )
    assert not [c for c in diff.callouts if c.category in (CATEGORY_DATA_AT_RISK, CATEGORY_SERVING)]
    assert render_text(diff, title="t").count("no changes") == 1  # dev


def test_two_renamed_environments_pair_by_where_they_deploy(tmp_path):
    """GIVEN dev and prod (different accounts) renamed development and production WHEN compared THEN each moves to the
    one deploying to its own account."""
    base = _assembly(tmp_path / "base", {"dev": _environment("dev"), "prod": _environment()})
    _retarget(base, "prod", "aws://333333333333/eu-west-1")
    head = _assembly(tmp_path / "head", {"production": _environment("production"), "development": _environment("development")})
    _retarget(head, "production", "aws://333333333333/eu-west-1")

    diff = compare_assemblies(base, head)

    assert sorted({(s.moved_from.stage, s.stage) for s in diff.stacks}) == [("dev", "development"), ("prod", "production")]


def test_a_renamed_environment_whose_stacks_keep_their_names_and_target_is_updated_in_place(tmp_path):
    """GIVEN an environment renamed in the app while its stacks keep their names and target WHEN compared THEN they are
    the same CloudFormation stacks, updated in place: no move, and no change when the templates are the same."""
    base = _assembly(tmp_path / "base", {"prod": _environment()})
    head = _assembly(tmp_path / "head", {"production": _environment()})
    path = head / "assembly-production" / "manifest.json"
    path.write_text(path.read_text().replace("mlops-loop-production-", "mlops-loop-prod-"))

    diff = compare_assemblies(base, head)

    assert [(s.stage, s.status) for s in diff.stacks] == [("production", "unchanged")] * 2
    assert diff.is_empty and diff.environments == ["production"]


def test_an_environment_removed_from_the_app_is_left_running_not_deleted(tmp_path):
    """GIVEN prod gone from the app (and no other environment new) WHEN compared THEN its stacks are removed from the
    app but LEFT RUNNING (`cdk deploy` never deletes a stack), with how to delete them; no resource is listed as
    removed, no DATA AT RISK or SERVING STOPS call-out."""
    base = _assembly(tmp_path / "base", {"dev": _environment("dev"), "prod": _environment()})
    head = _assembly(tmp_path / "head", {"dev": _environment("dev")})

    diff = compare_assemblies(base, head)

    assert [(s.short_name, s.status, s.resources) for s in diff.for_stage("prod")] == [
        ("Storage", "removed", []), ("Serving", "removed", [])]
    assert [(c.category, c.stack, c.message) for c in diff.callouts_for("prod")] == [
        (CATEGORY_LEFT_RUNNING, "Storage",
         f"removed from the app, but `cdk deploy` never deletes a stack: mlops-loop-prod-storage in {OLD} keeps running "
         "and costing, its data kept, until deleted by hand: turn its termination protection off first, then `npx cdk "
         f"destroy --app <the old commit's cdk.out> 'prod/Storage'`, or delete it in CloudFormation in {OLD}"),
        (CATEGORY_LEFT_RUNNING, "Serving",
         f"removed from the app, but `cdk deploy` never deletes a stack: mlops-loop-prod-serving in {OLD} keeps running "
         "and costing, its data kept, until deleted by hand: `npx cdk destroy --app <the old commit's cdk.out> "
         f"'prod/Serving'`, or delete it in CloudFormation in {OLD}. Its endpoints keep answering until then"),
    ]
    assert diff.counts("prod") == {"stacks added": 0, "stacks removed": 2, "stacks moved": 0, "added": 0, "removed": 0,
                                   "modified": 0, "replaced": 0, "call-outs": 2}
    assert (f"  Stack mlops-loop-prod-serving (prodServing0A1B2C3D): removed from the app; the stack, "
            f"mlops-loop-prod-serving in {OLD}, is left as it is\n") in render_text(diff, title="t")


def test_without_a_move_the_markdown_table_keeps_its_columns(tmp_path):
    """GIVEN a change in place (an instance count) WHEN rendered as markdown THEN the table has no 'Stacks moved' column."""
    base = _assembly(tmp_path / "base", {"prod": _environment()})
    changed = _environment()
    changed["Serving"]["Resources"]["Config"]["Properties"]["ProductionVariants"][0]["InitialInstanceCount"] = 2
    head = _assembly(tmp_path / "head", {"prod": changed})

    markdown = render_markdown(compare_assemblies(base, head), title="t")

    assert ("| Environment | Stacks added | Stacks removed | Added | Removed | Modified | Replaced | Call-outs |\n"
            "|---|---|---|---|---|---|---|---|\n| `prod` | 0 | 0 | 0 | 0 | 0 | 1 | 0 |\n") in markdown


def test_a_region_change_in_one_account_names_the_iam_names_the_old_stack_still_holds(tmp_path):
    """GIVEN prod's Storage stack creating a role with a fixed name, moved from eu-west-1 to eu-central-1 in the same
    account WHEN compared THEN its MOVED call-out says the deploy fails on that name (IAM names are account-wide) and
    what to do; moved to another account, the same role is no clash."""
    def with_role(**target) -> dict[str, dict]:
        stages = _environment(**target)
        stages["Storage"]["Resources"]["Approver"] = {
            "Type": "AWS::IAM::Role", "Properties": {"RoleName": "mlops-loop-prod-model-approver"}}
        stages["Storage"]["Resources"]["Generated"] = {"Type": "AWS::IAM::Role", "Properties": {}}
        return stages

    base = _assembly(tmp_path / "base", {"prod": with_role()})
    head = _assembly(tmp_path / "head", {"prod": with_role(region="eu-central-1")}, region="eu-central-1")
    other = _assembly(tmp_path / "other", {"prod": with_role(account="333333333333")}, account="333333333333")

    (storage,) = [c for c in compare_assemblies(base, head).callouts if c.category == CATEGORY_MOVED and c.stack == "Storage"]
    assert storage.message.endswith(
        ". IAM names are account-wide, not regional: role mlops-loop-prod-model-approver cannot be created while the old "
        "stack holds them, so this deploy fails and rolls back. Delete the old environment's stacks first (it stops "
        "serving), or rename the environment in the same change (new names)")
    (moved,) = [c for c in compare_assemblies(base, other).callouts if c.category == CATEGORY_MOVED and c.stack == "Storage"]
    assert "IAM names" not in moved.message
