"""DatasetWorkflow, built in a bare stack on a GlueRuntime: crawl raw -> curate -> features for one dataset, each step
started only when the previous one succeeded, each job running as a role of its own confined to that dataset's
prefixes and to what the job does."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.dataset_workflow import CURATE_SCRIPT, FEATURES_SCRIPT, DatasetWorkflow
from mlops_loop.constructs.glue_runtime import GlueRuntime
from pipeline_code.catalog import Dataset, parse_dataset
from tests.support.cdk_outdirs import bare_outdir
from tests.support.construct_configs import WEB_ORDERS, network_config
from tests.support.templates import policy_statements

ACCOUNT, REGION = "123456789012", "eu-west-1"
BUCKETS = {kind: f"shop-dev-{kind}-bucket" for kind in ("raw", "curated", "features", "artifacts")}
ASSETS_BUCKET = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"


def _dataset(name: str) -> Dataset:
    """The construct tests' web orders without ``items``: two features, both raw columns."""
    columns = {k: v for k, v in WEB_ORDERS["columns"].items() if k != "items"}
    return parse_dataset(name, {**WEB_ORDERS, "columns": columns, "features": {"amount": "amount", "channel": "channel"}})


ORDERS = _dataset("web_orders")


class Built:
    """A bare stack with one GlueRuntime and the workflows added to it."""

    def __init__(self, network: Any = None) -> None:
        self.stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account=ACCOUNT, region=REGION))
        self.buckets = {kind: s3.Bucket.from_bucket_name(self.stack, kind.title(), name) for kind, name in BUCKETS.items()}
        self.runtime = GlueRuntime(self.stack, "Glue", name_prefix="shop-dev", key=kms.Key(self.stack, "Key"),
                                   artifacts_bucket=self.buckets["artifacts"], database_name="shop_dev",
                                   log_retention=logs.RetentionDays.TWO_WEEKS, removal_policy=RemovalPolicy.DESTROY,
                                   network=network)

    def workflow(self, dataset: Dataset, *, group_name: str = "", online: Any = None, **overrides: Any) -> DatasetWorkflow:
        """WHEN a workflow of ``dataset`` is added (its feature group a bare CfnFeatureGroup named ``group_name``, with
        ``online`` as its OnlineStoreConfig.EnableOnlineStore; None: no OnlineStoreConfig)."""
        group = sagemaker.CfnFeatureGroup(
            self.stack, f"{dataset.name}-group", feature_group_name=group_name or f"shop-dev-{dataset.name.replace('_', '-')}",
            record_identifier_feature_name=dataset.record_identifier, event_time_feature_name=dataset.event_time,
            feature_definitions=[], online_store_config=None if online is None else {"EnableOnlineStore": online})
        props: dict[str, Any] = dict(
            name_prefix="shop-dev", dataset=dataset, runtime=self.runtime, database_name="shop_dev",
            raw_bucket=self.buckets["raw"], curated_bucket=self.buckets["curated"], features_bucket=self.buckets["features"],
            artifacts_bucket=self.buckets["artifacts"], feature_group=group, schedule="cron(0 2 * * ? *)", worker_type="G.2X",
            number_of_workers=4, timeout_minutes=90, max_quarantine_ratio=0.05,
        )
        props.update(overrides)
        return DatasetWorkflow(self.stack, f"Workflow{len(self.stack.node.children)}", **props)

    @property
    def resources(self) -> dict[str, dict]:
        return Template.from_stack(self.stack).to_json()["Resources"]

    def resource(self, construct) -> dict:
        return self.resources[self.stack.get_logical_id(construct)]

    def ref(self, construct) -> dict:
        return {"Ref": self.stack.get_logical_id(construct)}

    def statements(self, access) -> dict[str, dict]:
        return policy_statements(self.resources, [self.stack.get_logical_id(p) for p in access.managed_policies])

    def asset_url(self, asset) -> str:
        return self.stack.resolve(asset.s3_object_url)


@pytest.fixture(scope="module")
def built() -> tuple[Built, DatasetWorkflow]:
    built = Built()
    return built, built.workflow(ORDERS)


# ------------------------------------------------------------------ where the data goes
def test_the_paths_are_the_datasets_prefixes_of_the_lake_buckets(built):
    _, workflow = built
    assert workflow.paths == {
        "raw": "s3://shop-dev-raw-bucket/web_orders/",
        "curated": "s3://shop-dev-curated-bucket/web_orders/",
        "quarantine": "s3://shop-dev-curated-bucket/_quarantine/web_orders/",
        "summary": "s3://shop-dev-artifacts-bucket/etl-runs/web_orders/",
        "curate_state": "s3://shop-dev-artifacts-bucket/etl-runs/web_orders/curate-state.json",
        "curate_recovery": "s3://shop-dev-curated-bucket/_curate-recovery/web_orders/",
        "features": "s3://shop-dev-features-bucket/snapshots/web_orders/",
        "failures": "s3://shop-dev-features-bucket/_ingest-failures/web_orders/",
        "ingest_state": "s3://shop-dev-features-bucket/_ingest-state/web_orders/state.json",
    }


# ------------------------------------------------------------------ the three steps
def test_the_crawler_catalogs_the_raw_prefix_as_raw_tables_encrypted_and_never_dropping_history(built):
    b, workflow = built
    props = b.resource(workflow.crawler)["Properties"]
    assert props["Name"] == "shop-dev-web-orders-raw"
    assert props["DatabaseName"] == "shop_dev" and props["TablePrefix"] == "raw_"
    assert props["Targets"] == {"S3Targets": [{"Path": "s3://shop-dev-raw-bucket/web_orders/"}]}
    assert props["Role"] == {"Fn::GetAtt": [b.stack.get_logical_id(b.runtime.crawler_role.node.default_child), "Arn"]}
    assert props["CrawlerSecurityConfiguration"] == b.ref(b.runtime.security_configuration)
    assert props["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}


def test_the_crawler_crawls_only_new_folders_after_the_first_crawl(built):
    """GIVEN a dataset workflow WHEN its crawler is read THEN each crawl lists only the folders added since the last one
    (not all of raw, which grows for raw_expiration_days), with the LOG/LOG schema-change policy Glue requires then."""
    b, workflow = built
    props = b.resource(workflow.crawler)["Properties"]
    assert props["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
    assert props["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}


def test_the_curate_job_reads_raw_and_writes_curated_quarantine_and_a_run_summary(built):
    b, workflow = built
    props = b.resource(workflow.curate_job)["Properties"]
    assert props["Name"] == "shop-dev-web-orders-curate"
    assert props["Command"] == {"Name": "glueetl", "PythonVersion": "3", "ScriptLocation": b.asset_url(b.runtime.code.script(CURATE_SCRIPT))}
    arguments = props["DefaultArguments"]
    assert {k: arguments[k] for k in ("--raw_path", "--curated_path", "--quarantine_path", "--summary_path")} == {
        "--raw_path": workflow.paths["raw"], "--curated_path": workflow.paths["curated"],
        "--quarantine_path": workflow.paths["quarantine"], "--summary_path": workflow.paths["summary"],
    }
    assert arguments["--max_quarantine_ratio"] == "0.05"
    assert arguments["--dataset"] == b.asset_url(b.runtime.code.dataset(ORDERS))


def test_the_curate_job_records_the_raw_files_it_curated_next_to_its_run_summaries(built):
    """GIVEN the curate job WHEN it runs THEN it reads only the raw files not recorded in its state, an object under
    the run summaries' prefix (which its role reads, writes and lists); a full read is a run's argument, not a default."""
    b, workflow = built
    arguments = b.resource(workflow.curate_job)["Properties"]["DefaultArguments"]
    assert arguments["--state_path"] == workflow.paths["curate_state"]
    assert workflow.paths["curate_state"].startswith(workflow.paths["summary"])
    assert "--full_read" not in arguments


def test_the_curate_job_keeps_its_recovery_copies_in_the_curated_bucket_under_its_datasets_prefix(built):
    """GIVEN the curate job WHEN it runs THEN the copy of what it publishes (taken back after a stop mid-commit) goes
    to this dataset's prefix of the curated bucket, whose old versions expire with the rewritten data's, apart from
    the curated rows its reader lists."""
    b, workflow = built
    arguments = b.resource(workflow.curate_job)["Properties"]["DefaultArguments"]
    assert arguments["--recovery_path"] == workflow.paths["curate_recovery"]
    assert workflow.paths["curate_recovery"] == "s3://shop-dev-curated-bucket/_curate-recovery/web_orders/"
    assert not workflow.paths["curate_recovery"].startswith(workflow.paths["curated"])


def test_the_feature_job_reads_curated_and_writes_snapshots_failures_and_the_feature_group(built):
    b, workflow = built
    props = b.resource(workflow.feature_job)["Properties"]
    assert props["Name"] == "shop-dev-web-orders-features"
    assert props["Command"]["ScriptLocation"] == b.asset_url(b.runtime.code.script(FEATURES_SCRIPT))
    arguments = props["DefaultArguments"]
    assert {k: arguments[k] for k in ("--curated_path", "--features_path", "--failures_path", "--feature_group_name",
                                      "--state_path")} == {
        "--curated_path": workflow.paths["curated"], "--features_path": workflow.paths["features"],
        "--failures_path": workflow.paths["failures"], "--feature_group_name": "shop-dev-web-orders",
        "--state_path": workflow.paths["ingest_state"],
    }
    # the state lives outside the snapshot prefix, which the job replaces each run
    assert not workflow.paths["ingest_state"].startswith(workflow.paths["features"])
    assert "--full" not in arguments  # incremental by default; a run started with --full true re-puts every record
    assert arguments["--dataset"] == b.asset_url(b.runtime.code.dataset(ORDERS))
    assert "--max_quarantine_ratio" not in arguments


def test_both_jobs_run_glue_5_on_the_given_capacity_once_at_a_time_with_one_retry_and_the_runtime_settings(built):
    b, workflow = built
    for job in (workflow.curate_job, workflow.feature_job):
        resource = b.resource(job)
        props = resource["Properties"]
        assert (props["GlueVersion"], props["WorkerType"], props["NumberOfWorkers"], props["Timeout"]) == ("5.0", "G.2X", 4, 90)
        assert props["MaxRetries"] == 1 and props["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
        assert props["SecurityConfiguration"] == b.ref(b.runtime.security_configuration)
        arguments = props["DefaultArguments"]
        assert arguments["--extra-py-files"] == b.asset_url(b.runtime.code.library)
        assert arguments["--custom-logGroup-prefix"] == "/aws-glue/shop-dev"
        assert arguments["--job-bookmark-option"] == "job-bookmark-disable"
        assert (arguments["--enable-metrics"], arguments["--enable-observability-metrics"]) == ("true", "true")


def test_each_job_runs_as_its_own_role_with_its_own_temp_dir_created_after_that_roles_policy(built):
    b, workflow = built
    roles = set()
    for job, role, name in ((workflow.curate_job, workflow.curate_role, "shop-dev-web-orders-curate"),
                            (workflow.feature_job, workflow.feature_role, "shop-dev-web-orders-features")):
        resource = b.resource(job)
        logical_id = b.stack.get_logical_id(role.role.node.default_child)
        assert resource["Properties"]["Role"] == {"Fn::GetAtt": [logical_id, "Arn"]}
        assert resource["Properties"]["DefaultArguments"]["--TempDir"] == f"s3://shop-dev-artifacts-bucket/glue-temp/{name}/"
        assert b.resources[logical_id]["Properties"]["Description"] == f"shop-dev: Glue job {name}"
        # The role's policy is in place before the first scheduled run.
        assert resource["DependsOn"] == [b.stack.get_logical_id(role.access.managed_policy)]
        roles.add(logical_id)
    assert len(roles) == 2


# ------------------------------------------------------------------ orchestration
def test_the_schedule_starts_the_crawl_and_each_step_starts_only_when_the_previous_succeeded(built):
    b, workflow = built
    workflow_props = b.resource(workflow.workflow)["Properties"]
    assert workflow_props["Name"] == "shop-dev-web-orders" and workflow_props["MaxConcurrentRuns"] == 1
    start, after_crawl, after_curate = (b.resource(t)["Properties"] for t in workflow.triggers)
    assert {t["WorkflowName"]["Ref"] for t in (start, after_crawl, after_curate)} == {b.stack.get_logical_id(workflow.workflow)}
    assert all(t["StartOnCreation"] is True for t in (start, after_crawl, after_curate))
    assert (start["Name"], start["Type"], start["Schedule"]) == ("shop-dev-web-orders-start", "SCHEDULED", "cron(0 2 * * ? *)")
    assert start["Actions"] == [{"CrawlerName": b.ref(workflow.crawler)}]
    assert (after_crawl["Name"], after_crawl["Type"]) == ("shop-dev-web-orders-after-crawl", "CONDITIONAL")
    assert after_crawl["Predicate"] == {"Conditions": [{"CrawlerName": b.ref(workflow.crawler), "CrawlState": "SUCCEEDED",
                                                       "LogicalOperator": "EQUALS"}]}
    assert after_crawl["Actions"] == [{"JobName": b.ref(workflow.curate_job)}]
    assert (after_curate["Name"], after_curate["Type"]) == ("shop-dev-web-orders-after-curate", "CONDITIONAL")
    assert after_curate["Predicate"] == {"Conditions": [{"JobName": b.ref(workflow.curate_job), "State": "SUCCEEDED",
                                                        "LogicalOperator": "EQUALS"}]}
    assert after_curate["Actions"] == [{"JobName": b.ref(workflow.feature_job)}]


# ------------------------------------------------------------------ data access
def _objects(statements: dict[str, dict]) -> dict[str, tuple[str, bool]]:
    """The dataset's object statements of a job policy: Sid -> (resource, whether it may put)."""
    return {sid: (s["Resource"], "s3:PutObject" in s["Action"]) for sid, s in statements.items()
            if sid.endswith("WebOrders") and sid not in ("PutRecordsWebOrders", "DescribeFeatureGroupWebOrders")
            and not sid.startswith("Code")}


def _assert_listing_matches(statements: dict[str, dict], objects: dict[str, tuple[str, bool]]) -> None:
    for sid in objects:
        prefix = objects[sid][0].split(":::", 1)[1].split("/", 1)[1]
        assert statements[f"{sid}List"]["Condition"] == {"StringLike": {"s3:prefix": [prefix]}}


def test_the_curate_role_reads_raw_and_writes_only_the_curated_data_its_quarantine_and_run_summaries(built):
    b, workflow = built
    statements = b.statements(workflow.curate_role.access)
    objects = _objects(statements)
    assert objects == {
        "ReadRawWebOrders": ("arn:aws:s3:::shop-dev-raw-bucket/web_orders/*", False),
        "CuratedWebOrders": ("arn:aws:s3:::shop-dev-curated-bucket/web_orders/*", True),
        "QuarantineWebOrders": ("arn:aws:s3:::shop-dev-curated-bucket/_quarantine/web_orders/*", True),
        "CurateRecoveryWebOrders": ("arn:aws:s3:::shop-dev-curated-bucket/_curate-recovery/web_orders/*", True),
        "EtlRunsWebOrders": ("arn:aws:s3:::shop-dev-artifacts-bucket/etl-runs/web_orders/*", True),
    }
    _assert_listing_matches(statements, objects)
    # Spark's overwrite deletes the curated dates and the quarantine it replaces; a published run its recovery copies.
    assert {"CuratedWebOrders", "QuarantineWebOrders", "CurateRecoveryWebOrders"} <= {
        sid for sid, s in statements.items() if "s3:DeleteObject" in s["Action"]}
    assert not [s for s in statements.values() if "sagemaker" in str(s["Action"])], "curation never touches the Feature Store"
    assert statements["CodeDatasetWebOrders"]["Resource"].startswith(f"arn:aws:s3:::{ASSETS_BUCKET}/")
    assert statements["CodeEtlGlueCurateJobPy"]["Resource"] == f"arn:aws:s3:::{ASSETS_BUCKET}/" + b.stack.resolve(
        b.runtime.code.script(CURATE_SCRIPT).s3_object_key)
    assert "CodeFeaturesIngestPy" not in statements


def test_the_feature_role_reads_the_curated_data_and_writes_only_snapshots_failures_state_and_its_group(built):
    b, workflow = built
    statements = b.statements(workflow.feature_role.access)
    objects = _objects(statements)
    assert objects == {
        "ReadCuratedWebOrders": ("arn:aws:s3:::shop-dev-curated-bucket/web_orders/*", False),
        "FeaturesWebOrders": ("arn:aws:s3:::shop-dev-features-bucket/snapshots/web_orders/*", True),
        "IngestFailuresWebOrders": ("arn:aws:s3:::shop-dev-features-bucket/_ingest-failures/web_orders/*", True),
        "IngestStateWebOrders": ("arn:aws:s3:::shop-dev-features-bucket/_ingest-state/web_orders/*", True),
    }, "no raw read, no curated write"
    _assert_listing_matches(statements, objects)
    assert {"FeaturesWebOrders", "IngestFailuresWebOrders"} <= {sid for sid, s in statements.items() if "s3:DeleteObject" in s["Action"]}
    assert "CodeFeaturesIngestPy" in statements and "CodeEtlGlueCurateJobPy" not in statements
    assert statements["PutRecordsWebOrders"] == {
        "Sid": "PutRecordsWebOrders", "Effect": "Allow", "Action": "sagemaker:PutRecord",
        "Resource": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/shop-dev-web-orders",
    }
    assert statements["DescribeFeatureGroupWebOrders"] == {
        "Sid": "DescribeFeatureGroupWebOrders", "Effect": "Allow", "Action": "sagemaker:DescribeFeatureGroup",
        "Resource": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/shop-dev-web-orders",
    }
    assert statements["CodeDatasetWebOrders"]["Resource"].startswith(f"arn:aws:s3:::{ASSETS_BUCKET}/")


def test_the_crawler_role_reads_only_this_datasets_raw_prefix(built):
    b, _ = built
    statements = b.statements(b.runtime.crawler_access)
    added = {sid: s for sid, s in statements.items() if sid not in ("DataKey", "GlueLogs", "CrawlerCatalog")}
    assert list(added) == ["ReadRawWebOrders", "ReadRawWebOrdersList"]
    assert added["ReadRawWebOrders"]["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert added["ReadRawWebOrders"]["Resource"] == "arn:aws:s3:::shop-dev-raw-bucket/web_orders/*"


def test_put_record_names_the_group_in_lowercase_as_sagemaker_arns_do_while_the_job_gets_its_name_as_is():
    b = Built()
    workflow = b.workflow(ORDERS, group_name="Shop-Dev-Web-Orders")
    assert b.statements(workflow.feature_role.access)["PutRecordsWebOrders"]["Resource"] == (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/shop-dev-web-orders")
    assert b.resource(workflow.feature_job)["Properties"]["DefaultArguments"]["--feature_group_name"] == "Shop-Dev-Web-Orders"


@pytest.mark.parametrize("online", [True, False, None])
def test_with_an_online_store_the_feature_role_may_read_and_delete_its_groups_online_records_and_only_then(online):
    # GIVEN a feature group with an online store, one with it off, and one without OnlineStoreConfig
    b = Built()
    # WHEN its workflow is added
    workflow = b.workflow(ORDERS, online=online)
    # THEN only with an online store may the job read back and delete records, of its own group alone
    statements = b.statements(workflow.feature_role.access)
    granted = [sid for sid, s in statements.items()
               if {"sagemaker:BatchGetRecord", "sagemaker:DeleteRecord"} & set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    if not online:
        assert granted == []
        return
    assert statements["CorrectOnlineRecordsWebOrders"] == {
        "Sid": "CorrectOnlineRecordsWebOrders", "Effect": "Allow",
        "Action": ["sagemaker:BatchGetRecord", "sagemaker:DeleteRecord"],
        "Resource": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/shop-dev-web-orders",
    }
    assert granted == ["CorrectOnlineRecordsWebOrders"]


def test_two_datasets_on_one_runtime_get_their_own_names_prefixes_and_declarations_and_share_the_scripts():
    b = Built()
    orders = b.workflow(ORDERS)
    returns = b.workflow(_dataset("returns"), max_quarantine_ratio=0.2)
    resources = b.resources
    assert len([r for r in resources.values() if r["Type"] == "AWS::Glue::Workflow"]) == 2
    assert b.resource(returns.workflow)["Properties"]["Name"] == "shop-dev-returns"
    curate = {w: b.resource(w.curate_job)["Properties"] for w in (orders, returns)}
    assert curate[orders]["Command"]["ScriptLocation"] == curate[returns]["Command"]["ScriptLocation"]
    assert curate[orders]["DefaultArguments"]["--dataset"] != curate[returns]["DefaultArguments"]["--dataset"]
    assert curate[returns]["DefaultArguments"]["--max_quarantine_ratio"] == "0.2"
    mine, theirs = b.statements(orders.curate_role.access), b.statements(returns.curate_role.access)
    assert theirs["CuratedReturns"]["Resource"] == "arn:aws:s3:::shop-dev-curated-bucket/returns/*"
    assert "CuratedReturns" not in mine and "CuratedWebOrders" not in theirs
    assert theirs["CurateRecoveryReturns"]["Resource"] == "arn:aws:s3:::shop-dev-curated-bucket/_curate-recovery/returns/*"
    assert "CurateRecoveryReturns" not in mine
    assert "CodeDatasetWebOrders" in mine and "CodeDatasetReturns" in theirs and "CodeDatasetReturns" not in mine
    assert len({b.stack.get_logical_id(w.node.default_child) for w in (orders.curate_role.role, orders.feature_role.role,
                                                                      returns.curate_role.role, returns.feature_role.role)}) == 4
    scripts = [c.node.id for c in b.runtime.code.node.children if c.node.id.startswith("Script")]
    assert sorted(scripts) == ["ScriptGlueCurateJob", "ScriptIngest"], "one asset per script, whatever the number of datasets"


# ------------------------------------------------------------------ the environment's VPC
def test_with_a_network_the_crawler_and_both_jobs_use_the_runtimes_vpc_connection():
    b = Built(network_config())
    workflow = b.workflow(ORDERS)
    connection = b.ref(b.runtime.connection)
    (target,) = b.resource(workflow.crawler)["Properties"]["Targets"]["S3Targets"]
    assert target == {"Path": "s3://shop-dev-raw-bucket/web_orders/", "ConnectionName": connection}
    for job in (workflow.curate_job, workflow.feature_job):
        assert b.resource(job)["Properties"]["Connections"] == {"Connections": [connection]}


def test_without_a_network_neither_the_crawler_nor_the_jobs_name_a_connection(built):
    b, workflow = built
    (target,) = b.resource(workflow.crawler)["Properties"]["Targets"]["S3Targets"]
    assert "ConnectionName" not in target
    assert all("Connections" not in b.resource(job)["Properties"] for job in (workflow.curate_job, workflow.feature_job))


def test_a_workflow_without_a_schedule_is_started_on_demand_only():
    """GIVEN no schedule (glue.etl_schedule: null) WHEN the workflow is synthesized THEN no trigger has a schedule: the
    first step's trigger is ON_DEMAND (started by aws glue start-workflow-run), and each later step still waits for
    the one before. A trigger's type is create-only: the first trigger takes another name than the scheduled one, so
    CloudFormation can replace it (a named resource is replaced only under a new name)."""
    built = Built()
    workflow = built.workflow(ORDERS, schedule=None)
    scheduled = Built()
    assert scheduled.resource(scheduled.workflow(ORDERS).triggers[0])["Properties"]["Name"] == "shop-dev-web-orders-start"
    assert built.resource(workflow.triggers[0])["Properties"]["Name"] == "shop-dev-web-orders-start-on-demand"
    triggers = {built.stack.get_logical_id(t): built.resource(t)["Properties"] for t in workflow.triggers}
    start = built.resource(workflow.triggers[0])["Properties"]
    assert [t.get("Schedule") for t in triggers.values()] == [None, None, None]
    assert start["Type"] == "ON_DEMAND" and "StartOnCreation" not in start
    assert [t["Type"] for t in triggers.values()] == ["ON_DEMAND", "CONDITIONAL", "CONDITIONAL"]
