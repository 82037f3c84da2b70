"""The analyst role of each environment (Storage stack): what an analyst querying predictions, labels and the
monitor's results with Athena or QuickSight may do, and what not - without administrator rights."""

from __future__ import annotations

import pytest

from mlops_loop.config import load_config
from mlops_loop.constructs.data_lake import ATHENA_RESULTS_PREFIX
from pipeline_code.core.contract import INFERENCE_TRAFFIC, MONITOR_RESULTS, MONITOR_TABLES, PREDICTION_RECORDS, inference_prefix
from tests.support.iam_eval import IamModel, StackTemplate, authorize
from tests.support.paths import CONFIG_PATH
from tests.support.templates import role_statements

CONFIG = load_config(CONFIG_PATH)
ENVS = tuple(CONFIG.environments)


class Analyst:
    def __init__(self, synthesized, env: str):
        cfg = CONFIG.environments[env]
        self.account, self.region = cfg.account, cfg.region
        self.prefix = f"{CONFIG.project}-{env}"
        self.database = self.prefix.replace("-", "_")
        self.models = [m for m in cfg.models]
        model = IamModel([StackTemplate("Storage", synthesized.stacks[(env, "Storage")].stack_name,
                                        synthesized.template(env, "Storage"))], account=self.account, region=self.region)
        self.role = model.role(f"{self.prefix}-analyst")

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def bucket(self, kind: str) -> str:
        return f"{self.prefix}-{kind}-{self.account}-{self.region}"

    def obj(self, kind: str, key: str) -> str:
        return f"arn:aws:s3:::{self.bucket(kind)}/{key}"

    def may(self, action: str, **resources: str) -> bool:
        return authorize(self.role, action, resources).allowed

    def glue(self, action: str, table: str | None = None) -> bool:
        resources = {"rootcatalog": self.arn("glue", "catalog"), "database": self.arn("glue", f"database/{self.database}")}
        if table is not None:
            resources["table"] = self.arn("glue", f"table/{self.database}/{table}")
        return self.may(action, **resources)


@pytest.fixture(scope="module", params=ENVS)
def analyst(request, synthesized):
    return Analyst(synthesized, request.param)


def test_an_analyst_runs_queries_in_the_analytics_workgroup_only(analyst):
    workgroup = analyst.arn("athena", f"workgroup/{analyst.prefix}-analytics")
    for action in ("athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
                   "athena:StopQueryExecution", "athena:GetWorkGroup"):
        assert analyst.may(action, workgroup=workgroup), action
    # primary lets a client choose where results go, unencrypted: not for this role
    assert not analyst.may("athena:StartQueryExecution", workgroup=analyst.arn("athena", "workgroup/primary"))
    assert not analyst.may("athena:UpdateWorkGroup", workgroup=workgroup)


def test_an_analyst_reads_predictions_labels_and_reports_and_writes_only_query_results(analyst):
    for model in analyst.models:
        for what in ("monitor", "labels"):
            key = f"{inference_prefix(model, what)}run-1/predictions.parquet"
            assert analyst.may("s3:GetObject", object=analyst.obj("inference", key)), key
            assert not analyst.may("s3:PutObject", object=analyst.obj("inference", key)), key
            assert not analyst.may("s3:DeleteObject", object=analyst.obj("inference", key)), key
        for what in (PREDICTION_RECORDS, MONITOR_RESULTS):  # the monitor's tables, as Athena reads them
            key = f"{inference_prefix(model, what)}date=2026-03-02/run=r/x.parquet"
            assert analyst.may("s3:GetObject", object=analyst.obj("inference", key)), key
            assert not analyst.may("s3:PutObject", object=analyst.obj("inference", key)), key
            assert not analyst.may("s3:DeleteObject", object=analyst.obj("inference", key)), key
        # the traffic holds every feature the callers sent: not this role's
        for what in INFERENCE_TRAFFIC:
            key = f"{inference_prefix(model, what)}x.jsonl"
            assert not analyst.may("s3:GetObject", object=analyst.obj("inference", key)), key
    result = analyst.obj("inference", f"{ATHENA_RESULTS_PREFIX}/abc.csv")
    assert analyst.may("s3:PutObject", object=result) and analyst.may("s3:GetObject", object=result)
    assert analyst.may("s3:GetBucketLocation", bucket=f"arn:aws:s3:::{analyst.bucket('inference')}")
    for kind in ("raw", "curated", "features", "artifacts"):
        assert not analyst.may("s3:GetObject", object=analyst.obj(kind, "any/key")), kind
    key = analyst.arn("kms", "key/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert not analyst.may("kms:Decrypt", key=key)  # only the data key, by its ARN (checked in the template below)


def test_an_analyst_reads_the_catalog_and_defines_only_analytics_tables(analyst):
    assert analyst.glue("glue:GetDatabase")
    for table in ("raw_customer_churn", "analytics_predictions"):
        assert analyst.glue("glue:GetTable", table) and analyst.glue("glue:GetPartitions", table)
    for action in ("glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable"):
        assert analyst.glue(action, "analytics_predictions"), action
        assert not analyst.glue(action, "raw_customer_churn"), action  # the crawler's tables are not theirs


def test_the_analyst_role_uses_the_data_key_and_nothing_of_the_loop(synthesized):
    for env in ENVS:
        template = synthesized.template(env, "Storage")
        analyst = Analyst(synthesized, env)
        resources = template["Resources"]
        (role_id,) = [k for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"
                      and r["Properties"].get("RoleName") == f"{analyst.prefix}-analyst"]
        (key_id,) = [k for k, r in resources.items() if k.startswith("DataLakeKey") and r["Type"] == "AWS::KMS::Key"]
        kms = [s for s in role_statements(template, role_id) if any(str(a).startswith("kms:") for a in _list(s["Action"]))]
        assert kms and all(s["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]} for s in kms), kms
        for action, named in (("sagemaker:UpdateModelPackage",
                               {"model-package": analyst.arn("sagemaker", f"model-package/{analyst.prefix}-m/1")}),
                              ("s3:DeleteObjectVersion", {"object": analyst.obj("inference", "monitor/m/r/report.json")})):
            assert not analyst.may(action, **named), action


@pytest.mark.parametrize("env", ENVS)
def test_the_monitors_tables_are_defined_with_projected_partitions_over_their_own_prefixes(synthesized, env):
    """GIVEN an environment WHEN synthesized THEN its database has the tables predictions and monitor_results, each
    over its own prefix of the inference bucket (no report there), with the columns the monitor writes and partitions
    model (an enum of the environment's models) and date (a day range to today) projected: no crawler, no MSCK."""
    analyst = Analyst(synthesized, env)
    tables = {r["Properties"]["TableInput"]["Name"]: r["Properties"]
              for r in synthesized.resources(env, "Storage", "AWS::Glue::Table").values()}
    assert set(tables) >= {name for name, _ in MONITOR_TABLES.values()}
    for prefix, (name, columns) in MONITOR_TABLES.items():
        table = tables[name]
        assert table["DatabaseName"] == analyst.database
        found = table["TableInput"]
        location = f"s3://{analyst.bucket('inference')}/{prefix}/"
        assert found["StorageDescriptor"]["Location"] == location
        assert found["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
        assert [(c["Name"], c["Type"]) for c in found["StorageDescriptor"]["Columns"]] == \
            [c for c in columns if c[0] != "model"]
        assert [(c["Name"], c["Type"]) for c in found["PartitionKeys"]] == [("model", "string"), ("date", "string")]
        parameters = found["Parameters"]
        assert parameters["projection.enabled"] == "true"
        assert parameters["projection.model.type"] == "enum"
        assert sorted(parameters["projection.model.values"].split(",")) == sorted(analyst.models)
        assert parameters["projection.date.type"] == "date" and parameters["projection.date.format"] == "yyyy-MM-dd"
        assert parameters["projection.date.range"].endswith(",NOW")
        assert (parameters["projection.date.interval"], parameters["projection.date.interval.unit"]) == ("1", "DAYS")
        # the layout the monitor job writes: <prefix>/<model>/date=<yyyy-mm-dd>/run=<id>/
        assert parameters["storage.location.template"] == location + "${model}/date=${date}/"


def _list(value):
    return value if isinstance(value, list) else [value]
