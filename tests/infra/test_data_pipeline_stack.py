"""The DataPipeline stack: Glue security, crawler → curate → features workflow per dataset, least privilege."""

from __future__ import annotations

import json
import typing

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Match, Template

from mlops_loop.config.environment import EnvironmentConfig
from mlops_loop.naming import etl_job_name
from mlops_loop.stacks.lifetimes import RETENTION
from pipeline_code.core.contract import pascal
from tests.support.cdk_outdirs import bare_outdir
from tests.support.paths import live_project
from tests.support.templates import described_policies, policy_statements

ENVS = ("dev", "staging", "prod")


# Physical names start with the configured project (a user renames it first).
PROJECT = live_project()


def pipeline(synthesized, env: str) -> Template:
    return Template.from_json(synthesized.template(env, "DataPipeline"))


def declaration_asset(synthesized, url: str) -> dict:
    """The JSON object a ``--dataset s3://<assets>/<hash>.json`` argument points at, from the cloud assembly."""
    (path,) = synthesized.outdir.glob(f"asset.{url.rsplit('/', 1)[1]}")
    return json.loads(path.read_text())


def jobs_by_name(synthesized, env: str) -> dict[str, dict]:
    return {j["Properties"]["Name"]: j["Properties"] for j in synthesized.resources(env, "DataPipeline", "AWS::Glue::Job").values()}


@pytest.mark.parametrize("env", ENVS)
def test_security_configuration_encrypts_s3_logs_and_bookmarks_with_the_data_key(synthesized, env):
    (config,) = synthesized.resources(env, "DataPipeline", "AWS::Glue::SecurityConfiguration").values()
    encryption = config["Properties"]["EncryptionConfiguration"]
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    key_refs = {str(encryption["S3Encryptions"][0]["KmsKeyArn"]), str(encryption["CloudWatchEncryption"]["KmsKeyArn"])}
    assert len(key_refs) == 1 and "DataLakeKey" in key_refs.pop()


@pytest.mark.parametrize("env", ENVS)
def test_every_job_and_crawler_uses_the_security_configuration(synthesized, env):
    template = synthesized.template(env, "DataPipeline")["Resources"]
    sec_id = next(k for k, v in template.items() if v["Type"] == "AWS::Glue::SecurityConfiguration")
    for resource in template.values():
        if resource["Type"] == "AWS::Glue::Job":
            assert resource["Properties"]["SecurityConfiguration"] == {"Ref": sec_id}
        if resource["Type"] == "AWS::Glue::Crawler":
            assert resource["Properties"]["CrawlerSecurityConfiguration"] == {"Ref": sec_id}


def test_curate_job_runs_the_etl_script_with_its_dataset_paths(synthesized):
    env = synthesized.config.environments["prod"]
    jobs = jobs_by_name(synthesized, "prod")
    job = jobs[f"{PROJECT}-prod-customer-churn-curate"]
    assert job["GlueVersion"] == "5.0"
    assert job["WorkerType"] == env.glue.worker_type == "G.2X"
    assert job["NumberOfWorkers"] == env.glue.number_of_workers
    assert job["Timeout"] == env.glue.timeout_minutes
    assert job["Command"]["Name"] == "glueetl"
    assert job["Command"]["ScriptLocation"].endswith(".py")
    args = job["DefaultArguments"]
    raw = f"s3://{PROJECT}-prod-raw-{env.account}-eu-west-1/customer_churn/"
    # The job reads the dataset as the config declares it: its declaration, uploaded next to the code.
    assert declaration_asset(synthesized, args["--dataset"]) == synthesized.config.datasets["customer_churn"].to_declaration()
    assert args["--raw_path"] == raw
    assert args["--curated_path"] == f"s3://{PROJECT}-prod-curated-{env.account}-eu-west-1/customer_churn/"
    assert args["--quarantine_path"] == f"s3://{PROJECT}-prod-curated-{env.account}-eu-west-1/_quarantine/customer_churn/"
    assert args["--max_quarantine_ratio"] == str(env.glue.max_quarantine_ratio)
    assert args["--extra-py-files"].endswith(".zip")
    assert args["--custom-logGroup-prefix"] == f"/aws-glue/{PROJECT}-prod"


def test_feature_job_writes_into_the_datasets_feature_group(synthesized):
    jobs = jobs_by_name(synthesized, "staging")
    args = jobs[f"{PROJECT}-staging-credit-risk-features"]["DefaultArguments"]
    assert declaration_asset(synthesized, args["--dataset"]) == synthesized.config.datasets["credit_risk"].to_declaration()
    assert args["--feature_group_name"] == f"{PROJECT}-staging-credit-risk"
    assert args["--features_path"].endswith("/snapshots/credit_risk/")
    assert args["--failures_path"].endswith("/_ingest-failures/credit_risk/")


@pytest.mark.parametrize("env", ENVS)
def test_workflow_chains_crawl_then_curate_then_features_on_the_schedule(synthesized, env):
    resources = synthesized.template(env, "DataPipeline")["Resources"]
    triggers = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Glue::Trigger"]
    schedule = synthesized.config.environments[env].glue.etl_schedule
    config = synthesized.config
    for dataset in sorted({config.models[m].dataset for m in config.environments[env].models}):
        name = f"{PROJECT}-{env}-{dataset.replace('_', '-')}"
        mine = {t["Name"]: t for t in triggers if t["Name"].startswith(name + "-")}
        start, after_crawl, after_curate = mine[f"{name}-start"], mine[f"{name}-after-crawl"], mine[f"{name}-after-curate"]
        assert start["Type"] == "SCHEDULED" and start["Schedule"] == schedule and start["StartOnCreation"]
        crawler_ref = start["Actions"][0]["CrawlerName"]
        assert after_crawl["Predicate"]["Conditions"] == [
            {"CrawlerName": crawler_ref, "CrawlState": "SUCCEEDED", "LogicalOperator": "EQUALS"}
        ]
        curate_ref = after_crawl["Actions"][0]["JobName"]
        assert resources[curate_ref["Ref"]]["Properties"]["Name"] == f"{name}-curate"
        assert after_curate["Predicate"]["Conditions"] == [
            {"JobName": curate_ref, "State": "SUCCEEDED", "LogicalOperator": "EQUALS"}
        ]
        features_ref = after_curate["Actions"][0]["JobName"]
        assert resources[features_ref["Ref"]]["Properties"]["Name"] == f"{name}-features"
        for trigger in (start, after_crawl, after_curate):
            assert trigger["WorkflowName"] == {"Ref": next(k for k, v in resources.items() if v["Type"] == "AWS::Glue::Workflow" and v["Properties"]["Name"] == name)}


def test_crawler_catalogs_only_its_raw_prefix_into_the_environment_database(synthesized):
    crawlers = {c["Properties"]["Name"]: c["Properties"] for c in synthesized.resources("dev", "DataPipeline", "AWS::Glue::Crawler").values()}
    crawler = crawlers[f"{PROJECT}-dev-customer-churn-raw"]
    assert crawler["DatabaseName"] == f"{PROJECT.replace('-', '_')}_dev"
    assert crawler["TablePrefix"] == "raw_"
    assert crawler["Targets"]["S3Targets"] == [{"Path": f"s3://{PROJECT}-dev-raw-111111111111-eu-west-1/customer_churn/"}]
    # Incremental crawls (new folders only) take LOG for both behaviours (Glue: "Scheduling incremental crawls").
    assert crawler["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
    assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}


@pytest.mark.parametrize("env", ENVS)
def test_job_logs_are_encrypted_and_retained_per_config(synthesized, env):
    retention = synthesized.config.environments[env].log_retention_days
    template = pipeline(synthesized, env)
    for suffix in ("output", "error"):
        template.has_resource_properties(
            "AWS::Logs::LogGroup",
            {"LogGroupName": f"/aws-glue/{PROJECT}-{env}/{suffix}", "RetentionInDays": retention, "KmsKeyId": Match.any_value()},
        )


def _statements(synthesized, env: str, description_suffix: str) -> dict[str, dict]:
    policies = synthesized.resources(env, "DataPipeline", "AWS::IAM::ManagedPolicy")
    (description,) = {d for d in (p["Properties"]["Description"] for p in policies.values()) if d.endswith(description_suffix)}
    return policy_statements(policies, described_policies(policies, description))


def _job_statements(synthesized, env: str, job_name: str) -> dict[str, dict]:
    """The statements of the policies of the role the Glue job ``job_name`` runs as."""
    resources = synthesized.template(env, "DataPipeline")["Resources"]
    (job,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Glue::Job" and r["Properties"]["Name"] == job_name]
    role = {"Ref": job["Role"]["Fn::GetAtt"][0]}
    return policy_statements(resources, [k for k, r in resources.items()
                                         if r["Type"] == "AWS::IAM::ManagedPolicy" and role in r["Properties"]["Roles"]])


@pytest.mark.parametrize("env", ENVS)
def test_each_job_role_has_no_action_wildcards_and_only_its_datasets_prefixes(synthesized, env):
    """Per dataset of the environment: the curate job's role reads raw and never writes it, the feature job's role puts
    records into the dataset's group only; the iam_eval proofs are in test_glue_job_confinement."""
    config = synthesized.config
    account, region = config.environments[env].account, config.environments[env].region
    for dataset in sorted({config.models[m].dataset for m in config.environments[env].models}):
        sid, group = pascal(dataset), f"{PROJECT}-{env}-{dataset.replace('_', '-')}"
        curate = _job_statements(synthesized, env, etl_job_name(f"{PROJECT}-{env}", dataset, "curate"))
        features = _job_statements(synthesized, env, etl_job_name(f"{PROJECT}-{env}", dataset, "features"))
        for statements in (curate, features):
            for name, statement in statements.items():
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all("*" not in a for a in actions), name
            assert statements["GlueJobMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Glue"}}
            # Each dataset's declaration is readable as one object, never the asset bucket as a whole.
            assert statements[f"CodeDataset{sid}"]["Action"] == "s3:GetObject"
            assert statements[f"CodeDataset{sid}"]["Resource"].endswith(".json")
            # No job can write raw data.
            assert [s for s in statements.values() if "-raw-" in str(s["Resource"]) and "s3:PutObject" in str(s["Action"])] == []
        assert curate[f"ReadRaw{sid}"]["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
        assert curate[f"ReadRaw{sid}"]["Resource"] == f"arn:aws:s3:::{PROJECT}-{env}-raw-{account}-{region}/{dataset}/*"
        assert curate[f"ReadRaw{sid}List"]["Condition"] == {"StringLike": {"s3:prefix": [f"{dataset}/*"]}}
        assert not [s for s in curate.values() if "sagemaker:" in str(s["Action"])]
        assert not [s for s in features.values() if "-raw-" in str(s["Resource"])]
        assert features[f"PutRecords{sid}"] == {
            "Sid": f"PutRecords{sid}",
            "Effect": "Allow",
            "Action": "sagemaker:PutRecord",
            "Resource": f"arn:aws:sagemaker:{region}:{account}:feature-group/{group}",
        }


def test_crawler_role_reads_raw_and_writes_only_its_database(synthesized):
    statements = _statements(synthesized, "prod", "Glue crawlers")
    assert not any("s3:PutObject" in str(s["Action"]) for s in statements.values())
    catalog = statements["CrawlerCatalog"]["Resource"]
    assert f"arn:aws:glue:eu-west-1:333333333333:table/{PROJECT.replace('-', '_')}_prod/*" in catalog
    assert not any("sagemaker" in str(s) for s in statements.values())


def test_job_code_library_contains_only_the_pipeline_code_package(synthesized):
    libraries = [p for p in synthesized.outdir.glob("asset.*") if p.is_dir() and (p / "pipeline_code" / "catalog.py").is_file()]
    assert len(libraries) == 1
    top_level = {p.name for p in libraries[0].iterdir()}
    assert top_level == {"pipeline_code"}
    files = {p.relative_to(libraries[0]).as_posix() for p in libraries[0].rglob("*.py")}
    assert "pipeline_code/catalog.py" in files
    assert not any("__pycache__" in f for f in files)


def test_data_pipeline_stack_depends_on_storage(synthesized):
    manifest = json.loads((synthesized.outdir / "assembly-prod" / "manifest.json").read_text())
    pipeline_artifact = next(
        a for k, a in manifest["artifacts"].items()
        if k.startswith("prodDataPipeline") and a["type"] == "aws:cloudformation:stack"
    )
    assert any(d.startswith("prodStorage") for d in pipeline_artifact["dependencies"])


def test_every_log_retention_the_config_allows_has_its_cloudwatch_setting():
    # GIVEN the retentions EnvironmentConfig accepts (CloudWatch's PutRetentionPolicy values)
    allowed = typing.get_args(EnvironmentConfig.model_fields["log_retention_days"].annotation)
    # THEN each maps to the CDK setting of that many days, so no accepted value fails at synth
    assert sorted(RETENTION) == sorted(allowed)
    stack = Stack(App(outdir=bare_outdir()))
    for days, setting in RETENTION.items():
        logs.LogGroup(stack, f"Retention{days}", retention=setting)
    synthesized_days = sorted(g["Properties"]["RetentionInDays"]
                              for g in Template.from_stack(stack).find_resources("AWS::Logs::LogGroup").values())
    assert synthesized_days == sorted(RETENTION)
