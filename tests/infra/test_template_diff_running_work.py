"""The template diff on what a deploy does to work already running: a role, or statements of a role, taken away from
the jobs, pipelines, schedules and functions that ran as it (RUNNING WORK: IAM evaluates a session on every request,
so a run started before the deploy is denied from then on, partway); statements moving between two policies of one
role (shown as moved, with the moment the role may have neither); and the commit subjects behind changed assets.

Inputs are one-stack (or two-stack) assemblies (``tests.support.assemblies``) written for each case."""

from __future__ import annotations

import subprocess

from mlops_loop.tools.template_diff import (
    CATEGORY_IAM,
    CATEGORY_RUNNING_WORK,
    compare_assemblies,
    render_markdown,
    render_text,
)
from mlops_loop.tools.template_diff.git_synth import CODE_COMMITS_SHOWN, code_changes
from tests.support.assemblies import conditional_trigger, function_schedule, scheduled_trigger, template, write_assembly

GLUE_RUNS = ("--query \"JobRuns[?JobRunState=='RUNNING' || JobRunState=='STARTING'].[JobName,Id]\" --output text; done")


def _role() -> dict:
    return {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": []}}}


def _policy(role: str, *sids: str) -> dict:
    return {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
        "Roles": [{"Ref": role}], "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Sid": sid, "Effect": "Allow", "Action": f"s3:{sid}", "Resource": "*"} for sid in sids]}}}


def _job(name: str, role: str) -> dict:
    return {"Type": "AWS::Glue::Job", "Properties": {
        "Name": name, "Role": {"Fn::GetAtt": [role, "Arn"]}, "Timeout": 120,
        "Command": {"Name": "glueetl", "ScriptLocation": "s3://code/job.py"}}}


def _crawler(role: str) -> dict:
    return {"Type": "AWS::Glue::Crawler", "Properties": {"Name": "mlops-loop-prod-churn-raw",
                                                         "Role": {"Fn::GetAtt": [role, "Arn"]}}}


def _etl(role: str) -> dict:
    """A dataset's nightly ETL as the DataPipeline stack has it: a 02:00 trigger starts the crawler, the curate job
    runs after it and the feature job after the curate job, both as ``role``."""
    start = scheduled_trigger("cron(0 2 * * ? *)", crawler="Crawler")
    start["Properties"]["Name"] = "mlops-loop-prod-churn-start"
    return {"Crawler": _crawler("CrawlerRole"), "CrawlerRole": _role(), "Start": start,
            "AfterCrawl": conditional_trigger(after_crawler="Crawler", job="Curate"),
            "AfterCurate": conditional_trigger(after_job="Curate", job="Features"),
            "Curate": _job("mlops-loop-prod-churn-curate", role), "Features": _job("mlops-loop-prod-churn-features", role)}


def _diff(tmp_path, before: dict, after: dict, stack: str = "DataPipeline", **other_stacks: tuple[dict, dict]):
    base = write_assembly(tmp_path / "base", {"prod": {stack: template(before), **{k: template(b) for k, (b, _) in other_stacks.items()}}})
    head = write_assembly(tmp_path / "head", {"prod": {stack: template(after), **{k: template(a) for k, (_, a) in other_stacks.items()}}})
    return compare_assemblies(base, head)


def _messages(diff, category: str = CATEGORY_RUNNING_WORK) -> list[str]:
    return [f"{c.logical_id}: {c.message}" for c in diff.callouts_for("prod") if c.category == category]


def test_a_removed_role_the_etl_jobs_ran_as_names_them_their_schedule_and_how_to_check_nothing_runs(tmp_path):
    # GIVEN prod's curate and feature jobs moving from a shared role (with its policy) to a role of their own
    before = {**_etl("Shared"), "Shared": _role(), "SharedPolicy": _policy("Shared", "ReadRaw", "WriteCurated")}
    after = {**_etl("Own"), "Own": _role(), "OwnPolicy": _policy("Own", "ReadRaw", "WriteCurated")}
    # WHEN compared
    diff = _diff(tmp_path, before, after)
    # THEN the shared role's removal is RUNNING WORK naming the jobs, the trigger that starts their chain, the region's
    # commands that show a run in progress, and what to do
    assert _messages(diff) == [
        "Shared: removed: deleted with its policies SharedPolicy in the cleanup phase of the deploy. It was the role "
        "of: Glue job mlops-loop-prod-churn-curate, up to 120 min a run (runs on trigger mlops-loop-prod-churn-start "
        "cron(0 2 * * ? *)); Glue job mlops-loop-prod-churn-features, up to 120 min a run (runs on trigger "
        "mlops-loop-prod-churn-start cron(0 2 * * ? *)). A run started before the deploy keeps this role's session, and "
        "IAM evaluates a session's permissions on every request: from then on its requests are denied and the run "
        "fails partway (a Glue job can be cut in the middle of its commit). Deploy outside those windows (docs/reviewing-deploying-auditing.md, "
        "\"Upgrading a running deployment\"). Check first that nothing of theirs is running: `for job in "
        "mlops-loop-prod-churn-curate mlops-loop-prod-churn-features; do aws glue get-job-runs --job-name \"$job\" "
        f"--region eu-west-1 {GLUE_RUNS}`"]
    # AND the review comment marks it as a call-out not to miss
    assert ":warning: **RUNNING WORK** `DataPipeline/Shared`" in render_markdown(diff, title="review")


def test_a_removed_role_nothing_ran_as_or_one_kept_by_its_deletion_policy_is_no_running_work(tmp_path):
    unused = _diff(tmp_path / "unused", {"Old": _role(), "Keep": _role()}, {"Keep": _role()})
    kept_role = {**_role(), "DeletionPolicy": "Retain"}
    kept = _diff(tmp_path / "kept", {**_etl("Shared"), "Shared": kept_role}, {**_etl("Own"), "Own": _role()})
    assert _messages(unused) == [] and _messages(kept) == []


def test_statements_removed_from_a_role_still_in_use_name_what_runs_as_it(tmp_path):
    # GIVEN a drift monitor schedule whose processing jobs run as a role that loses one statement of its policy
    monitor = {"Type": "AWS::Scheduler::Schedule", "Properties": {
        "Name": "mlops-loop-prod-churn-monitor", "ScheduleExpression": "cron(0 3 * * ? *)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": "arn:aws:scheduler:::aws-sdk:sagemaker:createProcessingJob",
                   "RoleArn": "arn:aws:iam::111111111111:role/scheduler",
                   "Input": {"Fn::Join": ["", ['{"ProcessingJobName":"mon-0693726327-<aws.scheduler.execution-id>",'
                                               '"RoleArn":"', {"Fn::GetAtt": ["Monitor", "Arn"]}, '"}']]}}}}
    before = {"Monitor": _role(), "MonitorPolicy": _policy("Monitor", "ReadCapture", "WriteReports"), "Schedule": monitor}
    after = {"Monitor": _role(), "MonitorPolicy": _policy("Monitor", "WriteReports"), "Schedule": monitor}
    # WHEN compared THEN the taken statement, the schedule, and the command listing its jobs in progress
    assert _messages(_diff(tmp_path, before, after, "Operations")) == [
        "MonitorPolicy: statement ReadCapture of role Monitor taken away (removed from policy MonitorPolicy) when the "
        "policy is updated, during the deploy. The role stays in use: the createProcessingJob jobs of schedule "
        "mlops-loop-prod-churn-monitor (runs on cron(0 3 * * ? *)). A run started "
        "before the deploy runs on as this role, and IAM evaluates its permissions on every request: from then on what "
        "those statements allowed is denied to it, partway through. Deploy outside those windows (docs/reviewing-deploying-auditing.md, \"Upgrading "
        "a running deployment\"). Check first that nothing of theirs is running: `aws sagemaker list-processing-jobs "
        "--status-equals InProgress --name-contains mon-0693726327- --region eu-west-1`"]


def test_a_removed_policy_of_a_function_role_and_a_pipeline_started_from_another_stack_are_named(tmp_path):
    # GIVEN a function (invoked hourly) and a training pipeline (started by a schedule of another stack by its name)
    # whose role loses a whole policy
    function = {"Type": "AWS::Lambda::Function", "Properties": {
        "FunctionName": "mlops-loop-prod-retrain", "Role": {"Fn::GetAtt": ["Worker", "Arn"]}, "Timeout": 60}}
    pipeline = {"Type": "AWS::SageMaker::Pipeline", "Properties": {
        "PipelineName": "mlops-loop-prod-churn-training", "RoleArn": {"Fn::GetAtt": ["Worker", "Arn"]},
        "PipelineDefinition": {"PipelineDefinitionBody": "{}"}}}
    hourly = function_schedule("rate(1 hour)", {"reason": "sweep"})
    weekly = {"Type": "AWS::Scheduler::Schedule", "Properties": {
        "Name": "mlops-loop-prod-churn-retraining", "ScheduleExpression": "cron(0 4 ? * SUN *)",
        "FlexibleTimeWindow": {"Mode": "OFF"}, "Target": {"Arn": "arn:aws:lambda:eu-west-1:111111111111:function:x",
                                                          "RoleArn": "arn:aws:iam::111111111111:role/scheduler",
                                                          "Input": '{"pipeline": "mlops-loop-prod-churn-training"}'}}}
    before = {"Worker": _role(), "Function": function, "Pipeline": pipeline, "Hourly": hourly,
              "WorkerPolicy": _policy("Worker", "Train"), "WorkerPolicy2": _policy("Worker", "Register")}
    after = {k: v for k, v in before.items() if k != "WorkerPolicy2"}
    diff = _diff(tmp_path, before, after, "Training", Operations=({"Weekly": weekly}, {"Weekly": weekly}))
    (message,) = _messages(diff)
    assert message.startswith(
        "WorkerPolicy2: statement Register of role Worker taken away (removed with policy WorkerPolicy2) in the cleanup "
        "phase of the deploy, when it is deleted. The role stays in use: Lambda function mlops-loop-prod-retrain (an "
        "invocation runs up to 60 s) (runs on schedule Hourly rate(1 hour)); pipeline mlops-loop-prod-churn-training "
        "(runs on schedule mlops-loop-prod-churn-retraining cron(0 4 ? * SUN *)).")
    assert message.endswith(
        "`aws sagemaker list-pipeline-executions --pipeline-name mlops-loop-prod-churn-training --region eu-west-1 "
        "--query \"PipelineExecutionSummaries[?PipelineExecutionStatus=='Executing'].PipelineExecutionArn\"`")


def test_a_statement_moving_between_two_policies_of_one_role_is_a_move_with_its_gap_not_a_removal(tmp_path):
    # GIVEN a training role whose statements PullImage and JobMetrics leave its first policy for its second
    before = {**_etl("Role"), "Role": _role(), "Policy": _policy("Role", "Train", "PullImage", "JobMetrics"),
              "Policy2": _policy("Role", "Register")}
    after = {**_etl("Role"), "Role": _role(), "Policy": _policy("Role", "Train"),
             "Policy2": _policy("Role", "Register", "PullImage", "JobMetrics")}
    diff = _diff(tmp_path, before, after, "Training")
    # THEN one IAM call-out says they moved and that the role may briefly have neither; no RUNNING WORK, no
    # removal or addition call-outs of either policy
    assert _messages(diff) == []
    assert _messages(diff, CATEGORY_IAM) == [
        "Policy2: statements PullImage, JobMetrics moved from Policy to Policy2, both of role Role (not removed and "
        "added: the role keeps them); CloudFormation updates the two policies in parallel (nothing orders them), so "
        "for a moment the role may have neither: a request made as it in that gap (seconds) is denied, e.g. a job it "
        "starts then fails. Deploy when nothing runs as it, or re-run what failed"]
    # AND the details say "moved" on both sides instead of printing the statement as removed and added
    text = render_text(diff, title="t")
    assert "PolicyDocument.Statement[Sid=PullImage]: moved to Policy2 (same role)" in text
    assert "PolicyDocument.Statement[Sid=PullImage]: moved from Policy (same role)" in text


def test_a_statement_moving_out_of_a_removed_policy_has_no_gap(tmp_path):
    before = {"Role": _role(), "Policy": _policy("Role", "Train"), "Policy2": _policy("Role", "PullImage")}
    after = {"Role": _role(), "Policy": _policy("Role", "Train", "PullImage")}
    (message,) = [m for m in _messages(_diff(tmp_path, before, after, "Training"), CATEGORY_IAM) if "moved from" in m]
    assert message == ("Policy: statement PullImage moved from Policy2 to Policy, both of role Role (not removed and "
                       "added: the role keeps them); no gap: the old policy is deleted only in the cleanup phase, after "
                       "the new one is in place")


def _git(repo, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_the_commits_behind_changed_assets_are_listed_newest_first_capped_with_uncommitted_files(tmp_path):
    # GIVEN a repository whose pipeline_code/ changed in more commits than are shown, beside a commit elsewhere
    repo = tmp_path / "repo"
    (repo / "pipeline_code").mkdir(parents=True)
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "base")
    base = _git(repo, "rev-parse", "HEAD").strip()
    for i in range(CODE_COMMITS_SHOWN + 2):
        (repo / "pipeline_code" / "handler.py").write_text(str(i))
        _git(repo, "add", ".")
        _git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", f"handler change {i}")
    (repo / "README.md").write_text("x")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "docs only")
    (repo / "pipeline_code" / "handler.py").write_text("uncommitted")
    # WHEN read
    code = code_changes(repo, base)
    # THEN the newest 15 subjects of commits touching pipeline_code, how many more, and the uncommitted file
    assert code.subjects == [f"handler change {i}" for i in range(CODE_COMMITS_SHOWN + 1, 1, -1)]
    assert (code.more, code.uncommitted, code.command) == (2, 1, f"git log --format=%s {base}..HEAD -- pipeline_code")


def test_the_code_changes_are_shown_above_the_call_outs_in_text_and_markdown(tmp_path):
    from mlops_loop.tools.template_diff.git_synth import CodeChanges

    diff = _diff(tmp_path, {"Role": _role()}, {"Role": _role(), "Other": _role()})
    diff.code_changes = CodeChanges(command="git log --format=%s v1..HEAD -- pipeline_code",
                                    subjects=["Deploy handler: ledger <m>/<v>/<created>/"], more=3, uncommitted=1)
    assert render_text(diff, title="t").startswith(
        "t\n\nCode behind the 'asset changed' resources (git log --format=%s v1..HEAD -- pipeline_code, newest first):\n"
        "  - Deploy handler: ledger <m>/<v>/<created>/\n  ... and 3 more commits\n"
        "  + uncommitted changes to 1 file(s) under pipeline_code/ in the working tree\n\n== prod ==")
    markdown = render_markdown(diff, title="t")
    assert ("**Code behind the 'asset changed' resources (git log --format=%s v1..HEAD -- pipeline_code, newest "
            "first)**\n\n- Deploy handler: ledger &lt;m&gt;/&lt;v&gt;/&lt;created&gt;/\n- ... and 3 more commits\n") in markdown


_OLD_CODE, _NEW_CODE = "a" * 64 + ".zip", "b" * 64 + ".zip"


def _code_read(role: str, code: str) -> dict:
    """A training role's policy as JobCode.grant_read writes it: the code library by its asset key (``JobLibrary``)."""
    return {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
        "Roles": [{"Ref": role}], "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Sid": "JobLibrary", "Effect": "Allow", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::cdk-hnb659fds-assets-111111111111-eu-west-1/{code}"},
            {"Sid": "Train", "Effect": "Allow", "Action": "sagemaker:CreateTrainingJob", "Resource": "*"}]}}}


def _code_pipeline(code: str) -> dict:
    body = {"Fn::Join": ["", [
        '{"Steps": [{"Name": "Evaluate", "Arguments": {"ProcessingInputs": [{"S3Input": {"S3Uri": "s3://cdk-hnb659fds-assets-',
        {"Ref": "AWS::AccountId"}, f'-eu-west-1/{code}"}}}}]}}}}]}}']]}
    return {"Type": "AWS::SageMaker::Pipeline", "Properties": {
        "PipelineName": "mlops-loop-prod-churn-training", "RoleArn": {"Fn::GetAtt": ["Worker", "Arn"]},
        "PipelineDefinition": {"PipelineDefinitionBody": body}}}


def test_a_pipeline_whose_role_stops_granting_the_code_its_running_executions_read_is_running_work(tmp_path):
    # GIVEN a training pipeline whose job code changed (a new asset key): its definition and its role's grant both move
    # to the new key, in place (the Sid stays: no statement is removed)
    before = {"Worker": _role(), "WorkerPolicy": _code_read("Worker", _OLD_CODE), "Pipeline": _code_pipeline(_OLD_CODE)}
    after = {"Worker": _role(), "WorkerPolicy": _code_read("Worker", _NEW_CODE), "Pipeline": _code_pipeline(_NEW_CODE)}
    # WHEN compared
    diff = _diff(tmp_path, before, after, "Training")
    # THEN RUNNING WORK: an execution started before the deploy keeps its definition, so every step it starts after the
    # deploy reads the old code, which the role no longer grants; named with the command that shows executions running
    assert _messages(diff) == [
        "Pipeline: pipeline mlops-loop-prod-churn-training: an execution started before the deploy runs on the "
        "definition it started with, and each step it starts after the deploy reads that definition's inputs as role "
        "Worker, which no longer grants 1 of them (statement JobLibrary: "
        f"cdk-hnb659fds-assets-111111111111-eu-west-1/{_OLD_CODE[:12]}…): that step fails to download it "
        "(AccessDenied), and the execution with it; steps already running finish. Deploy outside those windows "
        "(docs/reviewing-deploying-auditing.md, \"Upgrading a running deployment\"). Check first that nothing of "
        "theirs is running: `aws sagemaker list-pipeline-executions --pipeline-name mlops-loop-prod-churn-training "
        "--region eu-west-1 --query \"PipelineExecutionSummaries[?PipelineExecutionStatus=='Executing']"
        ".PipelineExecutionArn\"`"]


def test_code_a_pipeline_still_reads_or_a_glue_job_reads_at_its_start_is_no_running_work(tmp_path):
    # GIVEN a pipeline whose definition and grant are unchanged, and a Glue job (it reads its code once, at its start)
    # whose role's grant moves to a new script key
    same = {"Worker": _role(), "WorkerPolicy": _code_read("Worker", _OLD_CODE), "Pipeline": _code_pipeline(_OLD_CODE)}
    glue = {"Job": _job("mlops-loop-prod-churn-curate", "Etl"), "Etl": _role()}
    before = {**same, **glue, "EtlPolicy": _code_read("Etl", _OLD_CODE)}
    after = {**same, **glue, "EtlPolicy": _code_read("Etl", _NEW_CODE)}
    # WHEN compared THEN no RUNNING WORK
    assert _messages(_diff(tmp_path, before, after, "Training")) == []
