"""Offline template diff: the comparison core on real synthesized templates with edits, and the CLI.

The core tests copy the session's synthesized assembly (conftest ``synthesized``) and edit the copy's
JSON the way a code change would. The ``synth`` tests run the real tool (git worktree + python app.py).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mlops_loop.tools.cloud_assembly import stacks
from mlops_loop.tools.source_stamp import read_stamp
from mlops_loop.tools.template_diff import impact as impact_module
from mlops_loop.tools.template_diff import (
    CATEGORY_DATA_AT_RISK,
    CATEGORY_IAM,
    CATEGORY_LEFT_RUNNING,
    CATEGORY_RETENTION,
    CATEGORY_SERVING,
    CATEGORY_UPDATE_FAILS,
    AssemblyDiff,
    TemplateDiffError,
    MISSING,
    change_impacts,
    compare_assemblies,
    diff_resource,
    diff_values,
    format_path,
    main,
    render_markdown,
    render_text,
)

from tests.support.configs import SAMPLE_CONFIG
from tests.support.paths import REPO_ROOT
from tests.support.template_diff import record_compared
from tests.support.assemblies import HANDLER_RUNTIME_NAME


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _copy_assembly(src: Path, dst: Path) -> Path:
    # Staged asset files are not read by the diff; leaving them out keeps each copy small.
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("asset.*"))
    return dst


@pytest.fixture()
def assemblies(synthesized, tmp_path) -> tuple[Path, Path]:
    """(base, head): two copies of the session assembly; tests edit ``head``."""
    return _copy_assembly(synthesized.outdir, tmp_path / "base"), _copy_assembly(synthesized.outdir, tmp_path / "head")


def _template_path(outdir: Path, env: str, stack: str) -> Path:
    for s in stacks(outdir):
        if s.stage == env and re.fullmatch(rf"{env}{stack}[0-9A-F]{{8}}", s.artifact_id):
            return s.template_path
    raise AssertionError(f"no stack {stack} in {env}")


def _edit(outdir: Path, env: str, stack: str, edit) -> None:
    path = _template_path(outdir, env, stack)
    template = json.loads(path.read_text())
    edit(template)
    path.write_text(json.dumps(template, indent=1))


def _first(template: dict, cfn_type: str, where=lambda r: True) -> tuple[str, dict]:
    return next((lid, r) for lid, r in template["Resources"].items() if r["Type"] == cfn_type and where(r))


def _changed(diff: AssemblyDiff, env: str):
    return [(s, r) for s in diff.for_stage(env) for r in s.resources]


# ---------------------------------------------------------------------------------------------
# comparison core
# ---------------------------------------------------------------------------------------------


def test_unchanged_assembly_gives_an_empty_diff(assemblies, config):
    diff = compare_assemblies(*assemblies)
    assert diff.is_empty
    assert diff.environments == list(config.environments)
    assert all(s.status == "unchanged" for s in diff.stacks) and diff.stacks
    assert render_text(diff, title="t").count("no changes") == len(config.environments)
    assert "**No changes**" in render_markdown(diff, title="t")


def test_changed_training_instance_type_is_a_modification_of_that_pipeline(assemblies):
    base, head = assemblies
    edited = {}

    def edit(template):
        lid, pipeline = _first(template, "AWS::SageMaker::Pipeline")
        parts = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Join"][1]
        pattern = re.compile(r'("Name": "TrainingInstanceType", "Type": "String", "DefaultValue": ")([^"]+)"')
        for i, part in enumerate(parts):
            if isinstance(part, str) and pattern.search(part):
                edited["old"] = pattern.search(part).group(2)
                parts[i] = pattern.sub(r'\g<1>ml.c5.9xlarge"', part)
                edited["id"] = lid
                return
        raise AssertionError("no TrainingInstanceType parameter in the pipeline definition")

    _edit(head, "dev", "Training", edit)
    diff = compare_assemblies(base, head)

    changed = _changed(diff, "dev")
    assert [r.logical_id for _, r in changed] == [edited["id"]]
    rc = changed[0][1]
    assert (rc.kind, rc.replacement) == ("modified", "no")
    assert [(c.dotted, c.old, c.new) for c in rc.changes] == [
        (
            "PipelineDefinition.PipelineDefinitionBody<json>.Parameters[Name=TrainingInstanceType].DefaultValue",
            edited["old"],
            "ml.c5.9xlarge",
        )
    ]
    assert diff.callouts == []
    assert all(diff.counts(e)["modified"] == 0 for e in ("staging", "prod"))


def test_changed_glue_worker_type_is_a_modification_not_a_replacement(assemblies):
    base, head = assemblies
    ids = []

    def edit(template):
        lid, job = _first(template, "AWS::Glue::Job")
        job["Properties"]["WorkerType"] = "G.8X" if job["Properties"]["WorkerType"] != "G.8X" else "G.1X"
        ids.append(lid)

    _edit(head, "prod", "DataPipeline", edit)
    (_, rc), = _changed(compare_assemblies(base, head), "prod")
    assert (rc.logical_id, rc.kind, rc.label) == (ids[0], "modified", "modified")
    assert [c.dotted for c in rc.changes] == ["WorkerType"]


def test_changed_create_only_property_is_a_replacement(assemblies):
    base, head = assemblies
    ids = []

    def edit(template):
        lid, job = _first(template, "AWS::Glue::Job")
        job["Properties"]["Name"] += "-v2"  # Name is create-only in the AWS::Glue::Job schema
        ids.append(lid)

    _edit(head, "dev", "DataPipeline", edit)
    diff = compare_assemblies(base, head)
    (_, rc), = _changed(diff, "dev")
    assert (rc.logical_id, rc.kind, rc.replacement) == (ids[0], "replaced", "yes")
    assert rc.replacement_reasons == ["create-only Name changed"]
    # A Glue job holds no data: a replacement, but nothing at risk.
    assert not [c for c in diff.callouts if c.category == CATEGORY_DATA_AT_RISK]


def test_conditionally_create_only_property_is_a_conditional_replacement():
    # GIVEN an EC2 instance whose type changes: the specification says it "may" replace (EBS-backed or not)
    old = {"Type": "AWS::EC2::Instance", "Properties": {"ImageId": "ami-1", "InstanceType": "t3.small"}}
    new = {"Type": "AWS::EC2::Instance", "Properties": {"ImageId": "ami-1", "InstanceType": "t3.large"}}
    # WHEN it is compared
    rc = diff_resource("Instance", old=old, new=new)
    # THEN it is a conditional replacement naming the property
    assert (rc.kind, rc.replacement) == ("replaced", "conditional")
    assert rc.replacement_reasons == ["conditionally create-only InstanceType changed"]
    assert rc.label == "replaced (if the conditional create-only property requires it)"


def test_changed_property_of_a_type_the_specification_does_not_know_is_of_unknown_impact():
    # GIVEN a custom resource, which no resource specification describes
    old = {"Type": "Custom::Seed", "Properties": {"ServiceToken": "arn:aws:lambda:x", "Rows": 1}}
    new = {"Type": "Custom::Seed", "Properties": {"ServiceToken": "arn:aws:lambda:x", "Rows": 2}}
    # WHEN it is compared
    rc = diff_resource("Seed", old=old, new=new)
    # THEN the diff does not claim it is updated in place
    assert (rc.kind, rc.replacement, rc.label) == ("modified", "unknown", "modified (replacement unknown)")


def test_update_in_place_of_a_known_type_is_a_plain_modification():
    old = {"Type": "AWS::Glue::Job", "Properties": {"Name": "prep", "WorkerType": "G.1X", "Role": "r"}}
    new = {"Type": "AWS::Glue::Job", "Properties": {"Name": "prep", "WorkerType": "G.2X", "Role": "r"}}
    rc = diff_resource("Job", old=old, new=new)
    assert (rc.kind, rc.replacement, rc.replacement_reasons, rc.notes) == ("modified", "no", [], [])


def test_a_commit_stamp_beside_a_real_change_does_not_make_the_replacement_unknown():
    # GIVEN a function whose memory changes and whose description carries another commit stamp
    old = {"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 256, "Description": "code " + "a" * 40}}
    new = {"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 512, "Description": "code " + "b" * 40}}
    # WHEN compared THEN it is an in-place update: the stamp is no change of any property
    rc = diff_resource("Function", old=old, new=new)
    assert (rc.kind, rc.replacement, [c.dotted for c in rc.changes]) == ("modified", "no", ["MemorySize"])


def test_cloudformation_diff_answers_per_property_and_which_fixed_names_are_create_only():
    # GIVEN a Glue job whose name (create-only) and worker type (updatable) both change
    old = {"Type": "AWS::Glue::Job", "Properties": {"Name": "a", "WorkerType": "G.1X"}}
    new = {"Type": "AWS::Glue::Job", "Properties": {"Name": "b", "WorkerType": "G.2X"}}
    # WHEN cloudformation-diff is asked, with a question about a bucket's names
    (impact,), (names,) = change_impacts([(old, new)], [("AWS::S3::Bucket", ["BucketName", "AnalyticsConfigurations"])])
    # THEN it answers like `cdk diff`
    assert impact.impact == "WILL_REPLACE"
    assert impact.properties == {"Name": "WILL_REPLACE", "WorkerType": "WILL_UPDATE"}
    assert impact.named("WILL_REPLACE") == ["Name"]
    assert names == ["BucketName"]


def test_nothing_to_ask_starts_no_node_process(monkeypatch):
    monkeypatch.setattr(impact_module.subprocess, "Popen", lambda *a, **k: pytest.fail("node was started"))
    monkeypatch.setattr(impact_module, "_workers", [])
    assert change_impacts([], []) == ([], [])


def _glue_name_change() -> list[tuple[dict, dict]]:
    return [({"Type": "AWS::Glue::Job", "Properties": {"Name": "a"}}, {"Type": "AWS::Glue::Job", "Properties": {"Name": "b"}})]


def test_a_failed_comparison_is_a_clear_error_and_the_next_one_starts_afresh_and_answers_every_later_one(
        monkeypatch, tmp_path):
    """GIVEN a CDK CLI bundle that fails to load WHEN a comparison is asked THEN it fails with Node's error,
    and once the bundle loads again the next comparison is answered by a new process, the one process that answers
    every later comparison of this Python process (three asked: one process started).

    One test for both, as each needs a process of its own (about 2 CPU-s to start: the 16 MB CLI bundle): after the
    failure no Node process is left, the "no process yet" the one-process proof starts from."""
    monkeypatch.setattr(impact_module, "_workers", [])
    broken = tmp_path / "index.js"
    broken.write_text("throw new Error('bundle is broken');\n")
    real = impact_module._CLI
    monkeypatch.setattr(impact_module, "_CLI", broken)
    with pytest.raises(TemplateDiffError) as error:
        change_impacts(_glue_name_change())
    assert str(error.value).startswith("cloudformation-diff failed (node impact.js): ") and "bundle is broken" in str(error.value)
    assert impact_module._workers == []
    monkeypatch.setattr(impact_module, "_CLI", real)
    started = []
    popen = impact_module.subprocess.Popen
    monkeypatch.setattr(impact_module.subprocess, "Popen", lambda *a, **k: started.append(a) or popen(*a, **k))
    answers = [change_impacts(_glue_name_change()) for _ in range(3)]
    assert len(started) == 1
    assert [impacts[0].properties for impacts, _ in answers] == [{"Name": "WILL_REPLACE"}] * 3
    impact_module._workers[0].stop()


def test_without_the_cdk_cli_the_diff_is_a_clear_error(monkeypatch, tmp_path):
    # GIVEN a checkout whose Node toolchain was never installed
    monkeypatch.setattr(impact_module, "_CLI", tmp_path / "node_modules" / "aws-cdk" / "lib" / "index.js")
    old = {"Type": "AWS::Glue::Job", "Properties": {"Name": "a"}}
    # WHEN a changed resource is compared THEN the error says how to fix it
    with pytest.raises(TemplateDiffError) as error:
        diff_resource("Job", old=old, new={"Type": "AWS::Glue::Job", "Properties": {"Name": "b"}})
    assert str(error.value) == (
        "the template diff needs Node and the pinned CDK CLI (node_modules/aws-cdk): "
        "run '. scripts/bootstrap.sh' in the repository first"
    )


def test_replaced_stateful_resource_with_a_fixed_name_is_flagged(assemblies):
    base, head = assemblies
    ids = []

    def edit(template):
        lid, group = _first(template, "AWS::SageMaker::ModelPackageGroup")
        group["Properties"]["ModelPackageGroupDescription"] += " (edited)"  # create-only
        ids.append((lid, group.get("UpdateReplacePolicy", "Delete")))

    _edit(head, "prod", "Storage", edit)
    diff = compare_assemblies(base, head)
    (_, rc), = _changed(diff, "prod")
    lid, policy = ids[0]
    assert (rc.logical_id, rc.kind) == (lid, "replaced")
    assert any("cannot replace a custom-named resource" in n for n in rc.notes)
    assert "cannot replace a custom-named resource" in [c for c in diff.callouts if c.category == CATEGORY_DATA_AT_RISK][0].message
    (risk,) = [c for c in diff.callouts if c.category == CATEGORY_DATA_AT_RISK]
    assert risk.logical_id == lid and f"UpdateReplacePolicy is {policy}" in risk.message


def test_the_fixed_name_a_replacement_collides_with_is_the_resources_own_name_not_a_name_inside_it(assemblies):
    """GIVEN a feature group whose create-only description changed WHEN compared THEN the note names its
    FeatureGroupName as the fixed name, not EventTimeFeatureName (a column name inside it, also ending in Name)."""
    base, head = assemblies
    names = []

    def edit(template):
        _, group = _first(template, "AWS::SageMaker::FeatureGroup")
        group["Properties"]["Description"] = group["Properties"].get("Description", "") + " (edited)"
        names.append(group["Properties"]["FeatureGroupName"])

    _edit(head, "prod", "Storage", edit)
    diff = compare_assemblies(base, head)
    (_, rc), = _changed(diff, "prod")
    (note,) = [n for n in rc.notes if "is fixed" in n]
    assert note.startswith(f"FeatureGroupName is fixed ({names[0]})") and "EventTimeFeatureName" not in " ".join(rc.notes)


def test_a_feature_group_losing_or_retyping_a_feature_is_called_out_as_an_update_that_fails(assemblies):
    """GIVEN a feature group whose declaration lost one feature and retyped another WHEN compared THEN a call-out says
    the update fails (SageMaker only adds features to a feature group) and what to do instead."""
    base, head = assemblies
    changed = []

    def edit(template):
        _, group = _first(template, "AWS::SageMaker::FeatureGroup")
        definitions = group["Properties"]["FeatureDefinitions"]
        removed = definitions.pop()
        kept = next(d for d in definitions if d["FeatureType"] == "Integral")
        kept["FeatureType"] = "Fractional"
        changed.extend([removed["FeatureName"], kept["FeatureName"]])

    _edit(head, "prod", "Storage", edit)
    diff = compare_assemblies(base, head)
    (_, rc), = _changed(diff, "prod")
    # THEN it is filed under UPDATE FAILS, as its message says (CloudFormation refuses it; no data is lost), not under
    # DATA AT RISK
    assert not [c for c in diff.callouts if c.category == CATEGORY_DATA_AT_RISK]
    (fails,) = [c for c in diff.callouts if c.category == CATEGORY_UPDATE_FAILS]
    assert fails.message == (
        f"{rc.label}: removes {changed[0]}; retypes {changed[1]}. A feature group only takes added features, so this "
        "update fails: keep the feature declared (models may stop using it), or declare the changed dataset under a new "
        "name (a new feature group: copy the dataset's raw files under the new name's prefix, s3://<raw bucket>/<new "
        "name>/, in the same change, or its ETL finds no file and fails; its history starts at the oldest raw file "
        "still kept)")


def test_a_removed_endpoint_is_called_out_as_serving_that_stops(assemblies):
    """GIVEN an environment that no longer serves a model (its endpoint gone from the template) WHEN compared THEN a
    call-out says its callers get errors, beside the removals a reviewer would otherwise find in the stack listing."""
    base, head = assemblies
    removed = []

    def edit(template):
        lid, _ = _first(template, "AWS::SageMaker::Endpoint")
        del template["Resources"][lid]
        removed.append(lid)

    _edit(head, "prod", "Serving", edit)
    diff = compare_assemblies(base, head)
    (serving,) = [c for c in diff.callouts if c.category == CATEGORY_SERVING]
    assert serving.logical_id == removed[0] and "its callers get errors from the moment the stack updates" in serving.message
    assert "SERVING STOPS" in render_text(diff, title="t")


def test_a_score_by_id_front_whose_features_change_is_called_out_while_the_endpoint_serves_the_old_version(assemblies):
    """GIVEN a model's score-by-id front whose feature list changes with the config (one feature dropped, one added)
    WHEN compared THEN a SERVING call-out says that from the deploy on the endpoint's version, trained on the old
    features, refuses a by-id record holding a feature named like no column (it lacks the dropped one) and reads one of
    columns as they are as raw fields, scoring it with the dropped feature computed from them (missing, or refused when
    it reads a nullable: false column), until a version on the new features is approved - not only a changed
    environment variable among the Lambda modifications."""
    from pipeline_code.core.online_features import FEATURES_ENV, MODEL_ENV

    base, head = assemblies

    def front(features):
        def edit(template):
            template["Resources"]["ByIdFront"] = {"Type": "AWS::Lambda::Function", "Properties": {
                "Handler": "score_by_id.handler", "Runtime": HANDLER_RUNTIME_NAME,
                "Environment": {"Variables": {MODEL_ENV: "m", FEATURES_ENV: features}}}}
        return edit

    _edit(base, "prod", "Operations", front("tenure:Integral,plan:String,region:String"))
    _edit(head, "prod", "Operations", front("tenure:Integral,region:String,devices:Fractional"))
    diff = compare_assemblies(base, head)
    (serving,) = [c for c in diff.callouts if c.category == CATEGORY_SERVING]
    assert serving.logical_id == "ByIdFront"
    assert serving.message.endswith(
        ": the score-by-id front drops plan; adds devices from the deploy on, while the endpoint serves the version "
        "approved before, which reads plan: a by-id record holding a feature named like no column (or another feature "
        "list's) lacks plan and is refused (serving's 400: the front answers that id unscored, in serving's words, and 422 "
        "when no id of the request is left to score); one whose "
        "features are all columns as they are is read as raw fields, plan computed from the columns it holds: scored "
        "(a 200) with plan missing when they lack a column it reads, refused when that column is nullable: false. This lasts "
        "until a version trained on the new features is approved (PendingManualApproval: its callers' contract changes). Deploy the "
        "change with its pipeline run right behind it and approve that version promptly, or keep the features the "
        "serving version reads until then")
    # The same features in another order: the front sends named fields, nothing to call out.
    _edit(head, "prod", "Operations", front("region:String,plan:String,tenure:Integral"))
    assert not [c for c in compare_assemblies(base, head).callouts if c.category == CATEGORY_SERVING]
    # A feature added, none dropped: the version approved before still finds every feature it reads in each record
    # (serving leaves out a precomputed record's other dataset features), so serving does not stop.
    _edit(head, "prod", "Operations", front("tenure:Integral,plan:String,region:String,devices:Fractional"))
    assert not [c for c in compare_assemblies(base, head).callouts if c.category == CATEGORY_SERVING]


def _by_id_assembly(outdir: Path, features: tuple[tuple[str, str], ...]) -> Path:
    """A cloud assembly synthesized from one ``prod`` stage whose Operations stack holds a score-by-id front for a
    model of ``features``, as the app builds it (its code asset staged in the assembly)."""
    from aws_cdk import Environment, RemovalPolicy, Stack, Stage
    from aws_cdk import aws_kms as kms, aws_logs as logs, aws_sns as sns

    from mlops_loop.app_builder import new_app
    from mlops_loop.constructs.score_by_id import ScoreById
    from pipeline_code.core.online_features import LookupSpec

    app = new_app(str(outdir))
    stack = Stack(Stage(app, "prod"), "Operations", stack_name="wide-prod-operations",
                  env=Environment(account="111111111111", region="eu-west-1"))
    ScoreById(stack, "ById", function_name="wide-prod-claims-by-id", model="claims", environment="prod",
              endpoint_name="wide-prod-claims", feature_group_name="wide-prod-claims",
              spec=LookupSpec(record_identifier="policy_id", event_time="updated_at", features=features,
                              policy="reject", max_age_seconds=None, max_ids=25),
              max_concurrency=2, max_skew_rate=0.05, key=kms.Key(stack, "Key"), topic=sns.Topic(stack, "Topic"),
              max_latency_ms=1500, max_error_rate_percent=2.0, log_retention=logs.RetentionDays.ONE_WEEK,
              removal_policy=RemovalPolicy.DESTROY, project="wide")
    app.synth()
    return outdir


def test_a_wide_models_score_by_id_front_dropping_a_feature_is_called_out_from_the_spec_file_in_its_code(tmp_path):
    """GIVEN a wide model (251 features: its by-id front ships them as a file of its code, FEATURE_SPEC_FILE, not in
    its environment) whose config drops one feature WHEN the two synthesized assemblies are compared THEN the SERVING
    call-out names the dropped feature, read from each side's code asset (it saw no FEATURES variable, so nothing)."""
    wide = tuple((f"claims_history_feature_{i:03d}", "Fractional") for i in range(250)) + (("channel", "String"),)
    base = _by_id_assembly(tmp_path / "base", wide)
    head = _by_id_assembly(tmp_path / "head", wide[:7] + wide[8:])
    variables = [r for s in stacks(head) for r in s.template["Resources"].values()
                 if r["Type"] == "AWS::Lambda::Function"][0]["Properties"]["Environment"]["Variables"]
    assert "FEATURES" not in variables and variables["FEATURE_SPEC_FILE"]
    diff = compare_assemblies(base, head)
    (serving,) = [c for c in diff.callouts if c.category == CATEGORY_SERVING]
    assert serving.resource_type == "AWS::Lambda::Function"
    assert ": the score-by-id front drops claims_history_feature_007 from the deploy on, while the endpoint serves " \
           "the version approved before, which reads claims_history_feature_007: a by-id record holding a feature " \
           "named like no column (or another feature list's) lacks claims_history_feature_007 and is refused" \
           in serving.message
    # The same wide features on both sides: nothing to call out.
    assert not [c for c in compare_assemblies(base, _by_id_assembly(tmp_path / "same", wide)).callouts
                if c.category == CATEGORY_SERVING]
    # Thirty features dropped: the call-out names ten and counts the others (a wide model's changes are long lists).
    (many,) = [c for c in compare_assemblies(base, _by_id_assembly(tmp_path / "narrower", wide[30:])).callouts
               if c.category == CATEGORY_SERVING]
    first_ten = ", ".join(name for name, _ in wide[:10])
    assert f"front drops {first_ten} and 20 more from the deploy on" in many.message
    assert f"which reads {first_ten} and 20 more: a by-id record" in many.message
    # An assembly `cdk synth` wrote names the asset in the function's metadata (aws:asset:path, from the template's
    # directory): read from there, wherever the asset is.
    (asset,) = head.glob("asset.*")
    asset.rename(head / "staged-code")

    def with_asset_metadata(template):
        _, function = _first(template, "AWS::Lambda::Function")
        function["Metadata"] = {"aws:asset:path": "../staged-code", "aws:asset:property": "Code"}

    _edit(head, "prod", "Operations", with_asset_metadata)
    assert [c.message for c in compare_assemblies(base, head).callouts if c.category == CATEGORY_SERVING] == [
        serving.message]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_renamed_bucket_is_a_flagged_replacement_with_data_at_risk(assemblies, env):
    base, head = assemblies
    path = _template_path(head, env, "Storage")
    template = json.loads(path.read_text())
    old_id, bucket = _first(template, "AWS::S3::Bucket", lambda r: "LifecycleConfiguration" in r["Properties"])
    new_id = "RenamedBucket0123ABCD"
    # A logical ID change everywhere it is referenced, as a moved or renamed construct produces it.
    path.write_text(path.read_text().replace(f'"{old_id}"', f'"{new_id}"'))

    diff = compare_assemblies(base, head)
    changed = {r.logical_id: r for _, r in _changed(diff, env)}
    rc = changed[new_id]
    assert (rc.kind, rc.renamed_from, rc.resource_type) == ("replaced", old_id, "AWS::S3::Bucket")
    assert rc.replacement_reasons == [f"logical ID changed from {old_id}: CloudFormation deletes {old_id} and creates {new_id}"]
    assert old_id not in changed  # one replacement, not a removal and an unrelated addition
    assert diff.counts(env)["removed"] == diff.counts(env)["added"] == 0
    assert [r.logical_id for r in changed.values() if r.resource_type == "AWS::S3::Bucket" and r.kind != "modified"] == [new_id]
    (risk,) = [c for c in diff.callouts if c.category == CATEGORY_DATA_AT_RISK]
    assert risk.logical_id == new_id and risk.stage == env
    retained = bucket.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")
    assert (f"DeletionPolicy is {bucket.get('DeletionPolicy')}: the old resource and its data are kept" in risk.message) is retained
    assert ("DELETES" in risk.message) is not retained
    # A fixed bucket name moves to the new logical ID: creating it collides with the old bucket.
    assert ("cannot replace a custom-named resource" in risk.message) is ("BucketName" in bucket["Properties"])
    text = render_text(diff, title="t")
    assert text.index("[DATA AT RISK]") < text.index(f"! {new_id}")


def test_iam_action_added_is_in_the_iam_callout(assemblies):
    base, head = assemblies
    ids = []

    def edit(template):
        lid, policy = _first(template, "AWS::IAM::ManagedPolicy")
        statement = policy["Properties"]["PolicyDocument"]["Statement"][0]
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert "iam:PassRole" not in actions
        statement["Action"] = actions + ["iam:PassRole"]
        ids.append((lid, statement.get("Sid")))

    _edit(head, "staging", "Training", edit)
    diff = compare_assemblies(base, head)
    lid, sid = ids[0]
    iam = [c for c in diff.callouts if c.category == CATEGORY_IAM]
    assert [(c.stage, c.stack, c.logical_id) for c in iam] == [("staging", "Training", lid)]
    assert "iam:PassRole" in iam[0].message
    assert sid is None or f"Statement[Sid={sid}].Action" in iam[0].message
    markdown = render_markdown(diff, title="t")
    assert markdown.index("**Call-outs**") < markdown.index("<details>")
    assert "iam:PassRole" in markdown.split("<details>")[0]


def test_deletion_policy_retain_to_delete_is_a_data_retention_callout(assemblies):
    base, head = assemblies
    ids = []

    def edit(template):
        lid, resource = _first(template, "AWS::S3::Bucket", lambda r: r.get("DeletionPolicy") == "RetainExceptOnCreate")
        resource["DeletionPolicy"] = "Delete"
        ids.append(lid)

    _edit(head, "prod", "Storage", edit)
    diff = compare_assemblies(base, head)
    (_, rc), = _changed(diff, "prod")
    assert (rc.logical_id, rc.kind) == (ids[0], "modified")
    (retention,) = [c for c in diff.callouts if c.category == CATEGORY_RETENTION]
    assert retention.logical_id == ids[0]
    assert "DeletionPolicy: RetainExceptOnCreate -> Delete" in retention.message


def test_asset_hash_change_is_reported_as_asset_changed_not_hidden(assemblies):
    base, head = assemblies
    ids = []

    def edit(template):
        lid, function = _first(template, "AWS::Lambda::Function")
        key = function["Properties"]["Code"]["S3Key"]
        assert re.fullmatch(r"[0-9a-f]{64}\.zip", key)
        function["Properties"]["Code"]["S3Key"] = ("0" if key[0] != "0" else "1") + key[1:]
        ids.append(lid)

    _edit(head, "dev", "Operations", edit)
    diff = compare_assemblies(base, head)
    (_, rc), = _changed(diff, "dev")
    assert (rc.logical_id, rc.kind, rc.label) == (ids[0], "modified", "modified (asset changed)")
    assert [c.dotted for c in rc.changes] == ["Code.S3Key"] and rc.changes[0].asset_only
    assert not diff.is_empty and diff.callouts == []


def test_markdown_stays_under_the_comment_limit_with_callouts_first(assemblies):
    base, head = assemblies
    for env in ("dev", "staging", "prod"):
        for stack in ("Storage", "DataPipeline", "Training", "Operations"):

            def edit(template):
                for lid, resource in template["Resources"].items():
                    for n in range(3):
                        resource.setdefault("Properties", {})[f"ReviewNote{n}"] = f"{lid} " + "x" * 300

            _edit(head, env, stack, edit)
    path = _template_path(head, "dev", "Storage")
    old_id, _ = _first(json.loads(path.read_text()), "AWS::S3::Bucket")
    path.write_text(path.read_text().replace(f'"{old_id}"', '"RenamedBucket0123ABCD"'))
    diff = compare_assemblies(base, head)
    assert len(render_markdown(diff, title="t", limit=10**7)) > 65_536  # uncut, it would not fit

    for limit in (65_536, 8_000):
        markdown = render_markdown(diff, title="t", limit=limit)
        assert len(markdown) <= limit
        assert "left out" in markdown and "GitHub's comment limit" in markdown
        assert markdown.count("<details>") == markdown.count("</details>")
        assert "DATA AT RISK" in markdown  # call-outs survive the cut


def _stage_manifest(outdir: Path, env: str) -> tuple[Path, dict]:
    stack = next(s for s in stacks(outdir) if s.stage == env)
    path = stack.template_path.parent / "manifest.json"
    return path, json.loads(path.read_text())


def test_a_stack_removed_from_the_app_is_left_running_not_deleted(assemblies):
    """GIVEN a stack gone from the head assembly WHEN compared THEN it is removed from the app but left running (`cdk
    deploy` never deletes a stack): a LEFT RUNNING call-out, none of its resources listed as removed, no DATA AT RISK
    for its buckets and keys (they are not deleted)."""
    base, head = assemblies
    path, manifest = _stage_manifest(head, "staging")
    storage_id = next(a for a in manifest["artifacts"] if re.fullmatch(r"stagingStorage[0-9A-F]{8}", a))
    del manifest["artifacts"][storage_id]
    path.write_text(json.dumps(manifest))

    diff = compare_assemblies(base, head)
    (removed,) = [s for s in diff.stacks if s.status != "unchanged"]
    assert (removed.stage, removed.artifact_id, removed.status, removed.resources) == ("staging", storage_id, "removed", [])
    (left,) = diff.callouts
    assert (left.category, left.stage, left.stack, left.logical_id) == (CATEGORY_LEFT_RUNNING, "staging", "Storage", "(stack)")
    assert left.message.startswith(f"removed from the app, but `cdk deploy` never deletes a stack: {removed.stack_name} in ")
    assert diff.counts("staging")["stacks removed"] == 1 and diff.counts("staging")["removed"] == 0


def test_termination_protection_turned_off_is_a_data_retention_callout(assemblies):
    base, head = assemblies
    path, manifest = _stage_manifest(head, "prod")
    protected = [a for a, v in manifest["artifacts"].items() if v.get("properties", {}).get("terminationProtection")]
    assert protected, "the sample config protects prod's stateful stack"
    manifest["artifacts"][protected[0]]["properties"]["terminationProtection"] = False
    path.write_text(json.dumps(manifest))

    diff = compare_assemblies(base, head)
    (callout,) = diff.callouts
    assert (callout.category, callout.stage, callout.logical_id) == (CATEGORY_RETENTION, "prod", "(stack)")
    assert "termination protection turned OFF" in callout.message


def test_parameter_and_condition_changes_are_stack_changes(assemblies):
    """GIVEN a serving stack whose parameter admits another pattern and gains a parameter and a condition WHEN
    compared THEN each is a stack-level change (what the approval handler may set is part of the review)."""
    base, head = assemblies

    def edit(template):
        name = next(iter(template["Parameters"]))
        template["Parameters"][name]["AllowedPattern"] = ".*"
        template["Parameters"]["Extra"] = {"Type": "String", "Default": ""}
        template.setdefault("Conditions", {})["ExtraSet"] = {"Fn::Not": [{"Fn::Equals": [{"Ref": "Extra"}, ""]}]}

    _edit(head, "prod", "Serving", edit)
    diff = compare_assemblies(base, head)
    (serving,) = [s for s in diff.for_stage("prod") if s.stack_changes]
    dotted = sorted(c.dotted for c in serving.stack_changes)
    assert [d for d in dotted if d.startswith("Parameters.") and d.endswith(".AllowedPattern")]
    assert "Parameters.Extra" in dotted and "Conditions.ExtraSet" in dotted


def test_inserted_statement_without_sid_is_one_addition_not_a_shift_of_every_later_one():
    old = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}, {"Effect": "Allow", "Action": "s3:ListBucket"}]}
    inserted = {"Effect": "Allow", "Action": "s3:DeleteObject"}
    new = {"Statement": [inserted, *old["Statement"]]}
    assert [(format_path(c.path), c.old, c.new) for c in diff_values(old, new)] == [("Statement[0]", MISSING, inserted)]


def test_unknown_environment_is_a_clear_error(assemblies):
    with pytest.raises(TemplateDiffError, match=r"--env nope: not an environment .* choose from dev"):
        compare_assemblies(*assemblies, environments=["nope"])


def test_env_filter_limits_the_comparison(assemblies):
    base, head = assemblies
    _edit(head, "dev", "DataPipeline", lambda t: _first(t, "AWS::Glue::Job")[1]["Properties"].update(Timeout=7))
    assert compare_assemblies(base, head, environments=["prod"]).is_empty
    assert not compare_assemblies(base, head, environments=["dev"]).is_empty


# ---------------------------------------------------------------------------------------------
# CLI: bad input (no synthesis needed)
# ---------------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout


def test_not_a_git_repository_exits_2(tmp_path, capsys, synthesized, monkeypatch):
    # git's own words, whatever the machine's language, and no repository above the temporary directory
    monkeypatch.setenv("LC_ALL", "C")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert main(["--repo", str(tmp_path), "--base", "HEAD", "--head-assembly", str(synthesized.outdir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("template-diff: --repo") and "not a git repository" in err and "Traceback" not in err


def test_head_assembly_that_is_not_an_assembly_exits_2(tmp_path, capsys):
    assert main(["--base", "HEAD", "--head-assembly", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--head-assembly" in err and "not a cloud assembly" in err


def test_base_that_fails_to_synthesize_exits_2_with_its_stderr_and_leaves_no_worktree(tmp_path, capsys, synthesized):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "app.py").write_text(
        "import sys\nfor i in range(40):\n    print(f'trace line {i}', file=sys.stderr)\n"
        "print('ValueError: broken construct', file=sys.stderr)\nsys.exit(1)\n"
    )
    _git(repo, "add", "app.py")
    _git(repo, "commit", "-q", "-m", "broken app")

    # The session assembly is not this repository's: --allow-stale lets the base synth run at all.
    code = main(["--repo", str(repo), "--base", "HEAD", "--head-assembly", str(synthesized.outdir), "--allow-stale"])
    err = capsys.readouterr().err
    assert code == 2
    assert "base ref 'HEAD'" in err and "fails to synthesize" in err
    assert "ValueError: broken construct" in err and "trace line 39" in err
    assert "trace line 5\n" not in err  # only the tail of stderr
    assert _git(repo, "worktree", "list").count("\n") == 1  # the temporary worktree is gone


def test_a_base_the_nag_packs_refuse_names_each_rule_and_where_not_a_traceback(tmp_path, capsys, synthesized):
    # GIVEN a commit whose synthesis cdk-nag refuses (its app writes the validation report CDK writes, then fails)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    report = {"title": "Validation Report", "pluginReports": [{"summary": {"pluginName": "cdk-nag", "status": "failure"},
              "violations": [{"ruleName": "NIST.800.53.R5-LambdaFunctionPublicAccessProhibited", "description": "...",
                              "violatingConstructs": [{"constructPath": "prod/Serving/ChurnById/Url",
                                                       "resourceLogicalId": "ChurnByIdUrl", "locations": []}]}]}]}
    (repo / "app.py").write_text(
        "import json, os, sys\n"
        f"open(os.path.join(os.environ['CDK_OUTDIR'], 'validation-report.json'), 'w').write({json.dumps(report)!r})\n"
        "print('jsii traceback line', file=sys.stderr)\n"
        "print('RuntimeError: ValidationFailed: Validation failed. A copy of this report can be found in: x', file=sys.stderr)\n"
        "sys.exit(1)\n")
    _git(repo, "add", "app.py")
    _git(repo, "commit", "-q", "-m", "public url")
    # WHEN it is the base of a diff
    code = main(["--repo", str(repo), "--base", "HEAD", "--head-assembly", str(synthesized.outdir), "--allow-stale"])
    err = capsys.readouterr().err
    # THEN the error names the rule and the construct, and says how to fix or acknowledge it
    assert code == 2
    assert ("base ref 'HEAD' (" in err and "fails the cdk-nag packs (1 unacknowledged finding(s)): "
            "NIST.800.53.R5-LambdaFunctionPublicAccessProhibited on prod/Serving/ChurnById/Url; fix the resource, or "
            "acknowledge the rule with its reason (mlops_loop/nag.py)") in err
    assert "jsii traceback line" not in err


# ---------------------------------------------------------------------------------------------
# End to end: real git worktree and synthesis (2 synths)
# ---------------------------------------------------------------------------------------------


@pytest.mark.synth
def test_bogus_ref_exits_2_with_a_clear_message(capsys, synthesized):
    assert main(["--base", "no-such-ref-xyz", "--head-assembly", str(synthesized.outdir)]) == 2
    err = capsys.readouterr().err
    assert "--base 'no-such-ref-xyz': not a valid git ref" in err and "Traceback" not in err


@pytest.mark.synth
@pytest.mark.slow
def test_base_head_against_an_edited_working_tree_end_to_end(tmp_path, monkeypatch):
    """GIVEN a clean clone of HEAD whose working tree lowers dev's log retention WHEN diffed against HEAD for
    dev and prod THEN exactly that shows up: dev's log groups change retention, prod nothing, nothing else
    (commit stamps differ); and only those two environments were synthesized, on both sides.

    The clone's HEAD holds the frozen sample config (tests/support/configs/sample.yaml: two models in each of its
    three environments), not the user's: what is asserted holds for any config with a dev, a prod and another
    environment, and each side's synth of dev and prod then builds two models per environment, whatever the
    user's line-up (the user's dev had six: about a CPU-second more per side).

    (Keeping ``--base-out`` whole and stamped with the base commit: tests/infra/test_source_stamp.py.)"""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--shared", str(REPO_ROOT), str(clone)], check=True)
    config_path = clone / "config" / "mlops-loop.yaml"
    config_path.write_text(SAMPLE_CONFIG.read_text())
    _git(clone, "commit", "-q", "--allow-empty", "-am", "the frozen sample config")
    assert _git(clone, "status", "--porcelain") == ""  # HEAD is the base: a clean tree before the edit below
    text = config_path.read_text()
    dev_at = text.index("\n  dev:\n")
    match = re.compile(r"log_retention_days: (\d+)").search(text, dev_at)
    old_days = match.group(1)
    new_days = "30" if old_days != "30" else "60"
    config_path.write_text(text[: match.start(1)] + new_days + text[match.end(1):])
    report = tmp_path / "diff.txt"
    synthesized = record_compared(monkeypatch, lambda side: ({s.stage for s in stacks(side)}, read_stamp(side).environments))

    code = main(["--repo", str(clone), "--base", "HEAD", "--env", "dev", "prod", "--output", str(report)])

    assert code == 0
    # Both sides: those stages only, and a stamp saying so (the base's by the diff, the head's by app.py).
    assert synthesized == [({"dev", "prod"}, ("dev", "prod"))] * 2
    assert _git(clone, "worktree", "list").count("\n") == 1  # the temporary worktree is gone
    out = report.read_text()
    assert "asset changed:" not in out  # same code on both sides
    assert "Code behind the 'asset changed' resources" not in out  # so no commit list either
    sections = dict(re.findall(r"^== (\S+) ==\n(.*?)(?=^== |\Z)", out, flags=re.S | re.M))
    assert set(sections) == {"dev", "prod"}
    assert sections["prod"].strip().split("\n")[0] == "no changes"
    dev = sections["dev"]
    assert f"RetentionInDays: {old_days} -> {new_days}" in dev and "[Data retention]" in dev
    changed = re.findall(r"^    [~!+-] (\S+) \((\S+)\)", dev, flags=re.M)
    # Besides the log groups, the deploy handler, which sets the endpoints' log groups to the same retention, and its
    # alarm for groups it could not set, whose description names that retention.
    assert changed and {t for _, t in changed} == {"AWS::Logs::LogGroup", "AWS::Lambda::Function", "AWS::CloudWatch::Alarm"}
    assert [r for r, t in changed if t == "AWS::Lambda::Function"] == [
        r for r, _ in changed if r.startswith("DeployOnApprovalFunction")]
    assert [r for r, t in changed if t == "AWS::CloudWatch::Alarm"] == [
        r for r, _ in changed if r.startswith("DeployOnApprovalLogRetentionAlarm")]
    assert f"({old_days} days) in 3 hourly sweeps" in dev and f"({new_days} days) in 3 hourly sweeps" in dev
    assert f"LOG_RETENTION_DAYS: {old_days} -> {new_days}" in dev
