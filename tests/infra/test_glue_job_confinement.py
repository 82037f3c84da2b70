"""No Glue job can touch another dataset's data, nor another job's output (security review trialQ, finding 4), proven
with the offline IAM evaluator over every environment of the user's config, whatever its datasets and models.

Each dataset's curate and feature jobs run as roles of their own. The paths a job works on are read from the
synthesized jobs themselves (their ``--raw_path``, ``--curated_path``, ... and ``--TempDir`` arguments) and its
FeatureGroup from ``--feature_group_name``, so the proofs follow the templates, not a copy of the layout:

* every Glue job runs as a role no other job runs as;
* a role Glue assumes (the crawler's included) may put or delete objects under a job's path only when a job running as
  that role is given the same path; it may read no path of another dataset's jobs, nor put records into another
  dataset's FeatureGroup;
* the split between a dataset's two jobs: the curate job has no Feature Store access at all; the feature job cannot
  read raw data nor write the curated data it reads;
* and each role may still do what its job does with its own paths (Spark's reads, writes and overwrites, which the
  boto3 inventory of ``runtime_calls`` does not cover).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mlops_loop.naming import ETL_JOBS, etl_job_name
from tests.support.deploy_permissions import assembly_model
from tests.support.iam_eval import IamModel, Role, authorize

CURATE, FEATURES = ETL_JOBS
# The job arguments that name S3 locations (a prefix ending in "/", or one object: the ingestion state).
PATH_ARGUMENTS = ("--raw_path", "--curated_path", "--quarantine_path", "--summary_path", "--features_path",
                  "--failures_path", "--state_path", "--recovery_path", "--TempDir")
# What each job writes (Spark overwrites, so it deletes what it replaces there) and reads, by argument.
WRITES = {CURATE: ("--curated_path", "--quarantine_path", "--summary_path", "--recovery_path", "--TempDir"),
          FEATURES: ("--features_path", "--failures_path", "--state_path", "--TempDir")}
OVERWRITES = {CURATE: ("--curated_path", "--quarantine_path", "--recovery_path"), FEATURES: ("--features_path", "--failures_path")}
READS = {CURATE: ("--raw_path", "--curated_path", "--recovery_path"), FEATURES: ("--curated_path", "--state_path")}
# A key under a prefix, as a run writes it (a partition's part file).
PART = "event_date=2026-12-01/part-00000.parquet"


@dataclass(frozen=True)
class Job:
    """One synthesized Glue job: its dataset, which of the dataset's jobs it is, its role, paths and FeatureGroup."""

    name: str
    dataset: str
    kind: str
    role: Role
    paths: dict[str, str]  # argument -> s3:// URI
    feature_group: str  # the FeatureGroup's ARN, "" for a job given none

    def object(self, argument: str) -> str:
        """The ARN of an object the job writes or reads at ``argument``: the object itself, or a part file under it."""
        uri = self.paths[argument].removeprefix("s3://")
        return f"arn:aws:s3:::{uri}{PART if uri.endswith('/') else ''}"

    def listing(self, argument: str) -> tuple[dict[str, str], dict[str, str]]:
        """The ListBucket request of the job's reader under ``argument``: the bucket, and the prefix listed."""
        bucket, _, key = self.paths[argument].removeprefix("s3://").partition("/")
        return {"bucket": f"arn:aws:s3:::{bucket}"}, {"s3:prefix": key}


@dataclass(frozen=True)
class Environment:
    name: str
    iam: IamModel
    jobs: tuple[Job, ...]
    glue_roles: tuple[Role, ...]  # every role glue.amazonaws.com may assume: the jobs' and the crawler's


def _environment(synthesized, env: str) -> Environment:
    config = synthesized.config
    iam = assembly_model(synthesized.outdir, config, env)
    prefix = f"{config.project}-{env}"
    by_name = {p["Name"]: p for _, _, p in iam.resources("AWS::Glue::Job")}
    cfg = iam.account, iam.region
    jobs = []
    for dataset in sorted({config.models[m].dataset for m in config.environments[env].models}):
        for kind in ETL_JOBS:
            name = etl_job_name(prefix, dataset, kind)
            props = by_name.pop(name)
            arguments = {k: iam.resolve("DataPipeline", v) for k, v in props["DefaultArguments"].items()}
            group = arguments.get("--feature_group_name", "")
            jobs.append(Job(name, dataset, kind, iam.role(iam.resolve("DataPipeline", props["Role"])),
                            {a: arguments[a] for a in PATH_ARGUMENTS if a in arguments},
                            f"arn:aws:sagemaker:{cfg[1]}:{cfg[0]}:feature-group/{group.lower()}" if group else ""))
    assert by_name == {}, "every Glue job is one of a dataset's jobs"
    glue_roles = tuple(r for r in iam.roles.values() if "glue.amazonaws.com" in str(
        iam.stacks[r.stack].template["Resources"][r.logical_id]["Properties"]["AssumeRolePolicyDocument"]))
    return Environment(env, iam, tuple(jobs), glue_roles)


@pytest.fixture(scope="module")
def environments(synthesized) -> list[Environment]:
    return [_environment(synthesized, env) for env in synthesized.config.environments]


def _allowed(role: Role, action: str, resources: dict[str, str], context=None) -> bool:
    return authorize(role, action, resources, context).allowed


def test_every_glue_job_runs_as_a_role_of_its_own(environments):
    for e in environments:
        assert e.jobs, e.name
        roles = [j.role.key for j in e.jobs]
        assert len(set(roles)) == len(roles), f"{e.name}: jobs share a role"
        assert {j.role.key for j in e.jobs} < {r.key for r in e.glue_roles}, "the crawler has a role of its own"


def test_no_glue_role_writes_a_path_no_job_of_its_own_is_given(environments):
    """GIVEN every role Glue assumes and every path of every job WHEN a put or delete under that path is decided THEN it
    is allowed only when a job running as the role is given that same path (the crawler's role runs no job: none)."""
    for e in environments:
        for role in e.glue_roles:
            own = {uri for j in e.jobs if j.role.key == role.key for uri in j.paths.values()}
            for job in e.jobs:
                for argument, uri in job.paths.items():
                    if uri in own:
                        continue
                    for action in ("s3:PutObject", "s3:DeleteObject"):
                        assert not _allowed(role, action, {"object": job.object(argument)}), (
                            f"{e.name}: {role} may {action} under {job.name}'s {argument} {uri}")


def test_no_job_role_touches_another_datasets_paths_or_its_feature_group(environments):
    """GIVEN each job's role and every job of another dataset WHEN reads, puts and deletes under its paths and PutRecord
    into its group are decided THEN all are denied: the review's repro (the churn curate job overwriting credit-risk's
    curated partitions and snapshots, and putting into its online store) for every pair of datasets of the config."""
    for e in environments:
        for job in e.jobs:
            for other in (o for o in e.jobs if o.dataset != job.dataset):
                for argument in other.paths:
                    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
                        assert not _allowed(job.role, action, {"object": other.object(argument)}), (
                            f"{e.name}: {job.name} may {action} under {other.name}'s {argument}")
                    bucket, context = other.listing(argument)
                    assert not _allowed(job.role, "s3:ListBucket", bucket, context), (
                        f"{e.name}: {job.name} lists {other.name}'s {argument}")
                if other.feature_group:
                    for action in ("sagemaker:PutRecord", "sagemaker:DescribeFeatureGroup"):
                        assert not _allowed(job.role, action, {"feature-group": other.feature_group}), (
                            f"{e.name}: {job.name} may {action} on {other.feature_group}")


def test_the_curate_job_has_no_feature_store_access_and_the_feature_job_neither_reads_raw_nor_writes_curated(environments):
    for e in environments:
        jobs = {(j.dataset, j.kind): j for j in e.jobs}
        for dataset in {j.dataset for j in e.jobs}:
            curate, features = jobs[(dataset, CURATE)], jobs[(dataset, FEATURES)]
            for action in ("sagemaker:PutRecord", "sagemaker:DescribeFeatureGroup"):
                assert not _allowed(curate.role, action, {"feature-group": features.feature_group}), f"{e.name}: {curate.name}"
            assert not _allowed(features.role, "s3:GetObject", {"object": curate.object("--raw_path")}), f"{e.name}: {features.name}"
            for action in ("s3:PutObject", "s3:DeleteObject"):
                assert not _allowed(features.role, action, {"object": features.object("--curated_path")}), f"{e.name}: {features.name}"


def test_each_job_role_may_do_what_its_job_does_with_its_own_paths_and_group(environments):
    """GIVEN each job WHEN what it does with its paths is decided against its role THEN all is allowed: Spark's
    listing and reading of what it reads, writing what it writes and deleting what its overwrites replace, and the
    feature job's records into its own group."""
    for e in environments:
        for job in e.jobs:
            requests = [("s3:PutObject", {"object": job.object(a)}, None) for a in WRITES[job.kind]]
            requests += [("s3:DeleteObject", {"object": job.object(a)}, None) for a in OVERWRITES[job.kind]]
            requests += [("s3:GetObject", {"object": job.object(a)}, None) for a in READS[job.kind]]
            requests += [("s3:ListBucket", *job.listing(a)) for a in READS[job.kind]]
            if job.kind == FEATURES:
                requests += [(a, {"feature-group": job.feature_group}, None)
                             for a in ("sagemaker:PutRecord", "sagemaker:DescribeFeatureGroup")]
            denied = [(action, resources) for action, resources, context in requests
                      if not _allowed(job.role, action, resources, context)]
            assert denied == [], f"{e.name}: {job.name} ({job.role})"
