"""Audit report: which data, code, metrics, fairness checks and approver produced a model version.

Run it for one model package version, or for what serves in an environment now::

    python -m mlops_cli.audit --env prod --model churn --serving --output audit.md --html audit.html
    python -m mlops_cli.audit --env prod --model churn --version 7

Names follow the app: the model package group ``<project>-<env>-<model>``, the training pipeline
``<project>-<env>-<model>-training``, the serving stack ``<project>-<env>-serving`` whose parameter
``<PascalModel>ModelPackageArn`` holds the deployed version, the endpoint ``<project>-<env>-<model>``.

What is gathered, and from where:

* the package (status, approval, created/modified, created by, model data, ModelMetrics URIs,
  CustomerMetadataProperties: code commit, trigger reason, data locations, execution id):
  ``DescribeModelPackageGroup``, ``ListModelPackages``, ``DescribeModelPackage``;
* the pipeline execution that registered it (``MetadataProperties.GeneratedBy``, else the
  execution id in the metadata via ``ListPipelineExecutions``), its parameters and steps
  (``DescribePipelineExecution``, ``ListPipelineParametersForExecution``,
  ``ListPipelineExecutionSteps``; the Register step must name this package). Once the execution is gone (deleting a
  pipeline - removing or renaming the model, deleting the training stack - deletes all its executions), the run
  record the deploy handler kept when the version was approved (``GetObject`` of
  ``run-records/<model>/<version>/<package created>/run-record.json`` in the artifacts bucket, its digest checked)
  stands in for all four reads, and the report says so ("run record from the evidence copy written at approval");
  without one, the execution is a gap;
* the evaluation report (``evaluation.json`` next to the ModelQuality statistics in S3, else
  ``bias.json``): metrics against the champion, the gate decision, fairness;
* the evidence as registered: each ModelMetrics document's sha256, recomputed from the bytes read, against its
  ContentDigest (kept by SageMaker as registered), and ``evaluation.json``'s against the digest in the verified
  ``bias.json``; the report's gate thresholds against the execution's parameters (one it did not pass: its
  definition's default, ``DescribePipelineDefinitionForExecution``); the frozen test set now under the package's
  ``frozen_test`` prefix (``manifest.json``, then its data file's sha256) against ``test_set_sha256``; each
  prepared split now under ``train_data`` / ``validation_data`` (``ListObjectsV2``, then each object's sha256:
  ``HeadObject`` with its stored checksum, else ``GetObject``; ``integrity.files_digest``) against
  ``train_data_sha256`` / ``validation_data_sha256``, a split gone (working data expires) said so. A
  difference is a gap naming both values; a version registered before these were recorded says "not recorded";
* the approval history: first the approval ledger, the deploy handler's write-once record of every decision it
  observed on the version (``ListObjectsV2`` + ``GetObject`` below ``approval-ledger/<model>/<version>/`` in the
  artifacts bucket its sealed ModelDataUrl names: status, description and principal at that moment, what the handler
  decided and set), kept for ever and preferred; a record that does not parse is a gap naming it. Only records of
  this package count (ARN and creation time: a group deleted and created again restarts at version 1 under the same
  ARNs); those of another package of the version, or naming no creation time, are left out and are gaps. Then CloudTrail
  ``LookupEvents`` for ``UpdateModelPackage`` calls on this ARN (who, when, requested status, description, denied
  attempts included), which covers the last 90 days only;
* who approved: every ``Approved`` decision (the ledger's records, CloudTrail's successful calls; else the package
  itself, Approved since it was registered) held to the environment's approver role ``<project>-<env>-model-approver``:
  a principal whose session issuer is another (another role, an IAM user, the root user) is a gap naming it, an IAM
  user without MFA (CloudTrail's ``mfaAuthenticated``) another; a version registered Approved is the environment's
  auto-approval where its config sets ``training.auto_approve``, else (or when the config is not read: ``--region``,
  ``--project`` and ``--account`` given) a gap. CloudTrail holding no ``UpdateModelPackage`` call is a gap, except for
  such an auto-approval never updated since (registering is ``CreateModelPackage``);
* the model card: ``DescribeModelCard`` of ``<group>-v<version>-<package creation time>``, else the older
  ``<group>-v<version>``; no card, one that describes another package (``model_package_details`` and the package's
  creation time in its custom details), one not ``Approved``, one first written after the version's approval, and a
  card version saved after the approval (``ListModelCardVersions``: SageMaker keeps every edit as a version) whose
  content (``DescribeModelCard`` with ``ModelCardVersion``) is not the one current at the approval are gaps - a
  status-only change (the card approved after the version) is reported, no gap; an auto-approved version's card, which
  no reviewer is asked to approve, is a gap only when missing or another package's;
* SageMaker lineage: the package's artifact (``ListArtifacts`` by source URI) and its
  associations (``ListAssociations`` both ways);
* deployment: the serving stack's events (``DescribeStackEvents``). A model package is deployed
  through an ``AWS::SageMaker::Model`` resource whose properties name the package ARN; models are
  create-only, so the newest successful stack operation whose events carry this ARN in their
  ``ResourceProperties`` is the one that deployed it, and the endpoint's ``UPDATE_COMPLETE`` /
  ``CREATE_COMPLETE`` event in that operation is the deployment time (blue/green traffic shift
  done). Without such events the report says so and gives the last stack update as an upper bound.

A piece that cannot be found (no approval yet, no lineage, CloudTrail silent, metrics object
missing, access denied) is reported under "Gaps"; it never stops the report. ``--env`` and ``--model``
are read from the config (:mod:`mlops_cli.target`): an environment it lacks, a model the environment does
not deploy, credentials of another account than the environment's (checked before anything is read),
unusable credentials (none, a profile that does not exist, an expired token), an unknown version or
nothing serving: one line on stderr, exit status 2. Other AWS errors: one line, exit status 1.

For a pipeline: ``--format json`` writes the report as one JSON document (``format`` ``mlops-loop-audit/1``: ``ok``,
``model_package``, ``summary``, ``sections`` with each part's gaps, ``gaps`` with each gap's section, and ``record``,
everything the Markdown shows; docs/reviewing-deploying-auditing.md describes it), and ``--fail-on-gaps`` exits 3 once
the report is written when the record has any gap, with one line on stderr naming the sections that have them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from typing import Optional, Sequence

from mlops_cli import target as deploy_target

from .aws import AuditError, Clients, aws_errors, describe_error
from .gather import gather
from .render import render_html, render_json, render_markdown


PROG = "python -m mlops_cli.audit"
# --fail-on-gaps: the report was written and the record has gaps (1 and 2 are the errors above).
EXIT_GAPS = 3

_NAME = re.compile(r"^[a-z0-9](-?[a-z0-9])*$")

def _name(value: str) -> str:
    if not _NAME.match(value or ""):
        raise argparse.ArgumentTypeError(f"{value!r} is not a name (lower-case letters, digits, single hyphens)")
    return value


def _version(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a model package version (an integer >= 1)")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, type=_name, help="environment name (dev, staging, prod)")
    parser.add_argument("--model", required=True, type=_name, help="model name as in the config (churn, credit-risk)")
    deploy_target.add_arguments(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", type=_version, help="model package version to audit")
    which.add_argument("--serving", action="store_true", help="audit the version that serves in --env now")
    parser.add_argument("--output", default=None, help="file to write the report to (default: print to stdout)")
    parser.add_argument("--html", default=None, help="also write the report as a standalone HTML file")
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown",
                        help="the report as Markdown (default) or as one JSON document for a pipeline to read")
    parser.add_argument("--fail-on-gaps", action="store_true",
                        help=f"exit {EXIT_GAPS} (after writing the report) when the record has any gap, naming its sections")
    return parser


def _auto_approve(where: deploy_target.Target) -> Optional[bool]:
    """The environment's ``training.auto_approve`` as the config sets it; None when the config is not read (``--region``,
    ``--project`` and ``--account`` all given), so a version registered Approved cannot be told from one approved by
    hand outside the approver role."""
    if where.app is None:
        return None
    # deploy_target.resolve has read it (its errors are worded there).
    return bool(deploy_target.environment_of(where.app, where.environment, where.config).training.auto_approve)


def main(argv: Optional[Sequence[str]] = None, *, clients: Optional[Clients] = None, now: Optional[dt.datetime] = None) -> int:
    """Exit 0 with the report written; 2 on an environment or model the config lacks, another account's or unusable
    credentials, unknown version or nothing serving; 1 on other AWS errors; with ``--fail-on-gaps``, 3 when the report
    was written and the record has gaps."""
    args = build_parser().parse_args(argv)
    try:
        where = deploy_target.resolve(args)
        deploy_target.announce(where)
        clients = clients or Clients.create(where.region)
        # Whose credentials these are comes first: another account may hold a group of the same name.
        identity = deploy_target.check_account(clients.sts, where)
        audit = gather(
            clients=clients, project=where.project, env=args.env, model=args.model,
            version=args.version, serving=args.serving, now=now,
            caller={"account": identity.get("Account", ""), "arn": identity.get("Arn", "")},
            auto_approve=_auto_approve(where),
            # The model's team when that team approves its own models (team_approvers; docs/configuration.md, Models
            # of several teams): its approver role is the one the decisions are held to. None when it does not, or the
            # config is not read.
            approver_team=where.approver_team,
        )  # fmt: skip
    except (AuditError, deploy_target.TargetError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except aws_errors() as exc:
        # Credentials can also fail after the account check: a profile that does not exist fails as the
        # clients are made, a token may expire between two calls.
        unusable = deploy_target.credentials_problem(exc, where)
        if unusable:
            print(f"{PROG}: error: {unusable}", file=sys.stderr)
            return 2
        print(f"{PROG}: error: AWS call failed: {describe_error(exc)}", file=sys.stderr)
        return 1
    text = render_markdown(audit)
    document = render_json(audit)
    written = json.dumps(document, indent=2) + "\n" if args.format == "json" else text
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(written)
    else:
        sys.stdout.write(written)
    if args.html:
        title = f"Audit report: {audit['names']['group']} version {audit['package']['version']}"
        with open(args.html, "w", encoding="utf-8") as handle:
            handle.write(render_html(text, title=title))
    if args.output or args.html:
        print(
            f"audit of {audit['package']['arn']}: {len(audit['gaps'])} gap(s); wrote {', '.join(x for x in (args.output, args.html) if x)}",
            file=sys.stderr,
        )
    if args.fail_on_gaps and document["gaps"]:
        sections = ", ".join(name for name, section in document["sections"].items() if not section["complete"])
        print(f"{PROG}: error: {len(document['gaps'])} gap(s) in the record of {audit['package']['arn']}: {sections} "
              "(--fail-on-gaps; the report lists them under Gaps)", file=sys.stderr)
        return EXIT_GAPS
    return 0
