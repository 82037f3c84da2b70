"""cfn-lint and cdk-nag over everything synthesized: zero errors, zero unacknowledged findings."""

from __future__ import annotations

import dataclasses
import json

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3

from mlops_loop.app_builder import new_app
from mlops_loop.nag import acknowledge, add_nag_packs
from mlops_loop.tools.cloud_assembly import nag_violations
from mlops_loop.tools.lint import LintResult, lint_cache, lint_stacks


@pytest.mark.slow
def test_cfn_lint_reports_no_error_or_warning(synthesized):
    result = lint_stacks(synthesized.stacks.values(), cache=lint_cache())
    assert (result.errors, result.warnings) == (0, 0), "\n".join(result.lines)
    # Every environment's five stacks (Storage, DataPipeline, Training, Serving, Operations) were linted,
    # each for its environment's region.
    assert len(synthesized.stacks) == 5 * len(synthesized.config.environments)
    assert {(s.stage, s.region) for s in synthesized.stacks.values()} == {
        (name, env.region) for name, env in synthesized.config.environments.items()}


def _smallest(synthesized):
    """The synthesized stack with the smallest template: any real template shows a defect, the smallest lints fastest."""
    return min(synthesized.stacks.values(), key=lambda stack: stack.template_path.stat().st_size)


DEFECTS = {
    # The CDK's built-in validator (off, see app_builder.new_app) only warns about this one.
    "invalid-enum": ({"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 4}}, "E3030"),
    # ... and has no rule for this one at all.
    "action-without-service-prefix": ({"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "GetObject", "Resource": "*"}]}}}, "W3037"),
}
# A resource type AWS offers in us-east-1 (cfn-lint's default region) but not in eu-west-1.
NOT_IN_EU_WEST_1 = {"Type": "AWS::AppIntegrations::Application", "Properties": {}}


@dataclasses.dataclass
class Linted:
    result: LintResult  # of the one lint of every copy
    lines: dict[str, list[str]]  # its lines, by the name of the copy they are about


@pytest.fixture(scope="module")
def linted_defects(synthesized, tmp_path_factory) -> Linted:
    """GIVEN one synthesized template with one defect added, a copy per defect below (each linted for cfn-lint's
    default region, as ``lint_templates`` lints), WHEN linted THEN what cfn-lint found, and its lines by copy.

    The copies are linted by one ``lint_stacks`` call: one cfn-lint process per region (two), where a lint per
    test started four (about a CPU-second each to start); cfn-lint checks each template on its own, so what it
    finds in one copy is what a lint of that copy alone finds. Its findings are kept in the lint cache, as every
    other lint of the suite's templates: keyed by the copy's bytes, its region, cfn-lint's version and configuration
    (mlops_loop.tools.lint), so a later run, or the other pytest-xdist worker, reads what cfn-lint found in these
    very copies instead of linting them again.
    """
    stack = _smallest(synthesized)
    directory = tmp_path_factory.mktemp("defects")

    def broken(name: str, defect: dict, region):
        template = json.loads(stack.template_path.read_text())
        template["Resources"]["Defect"] = defect
        path = directory / f"{name}.template.json"
        path.write_text(json.dumps(template))
        return dataclasses.replace(stack, template_path=path, region=region)

    linted = [broken(name, defect, None) for name, (defect, _) in DEFECTS.items()]
    # The region test's template, as a stack deploying to eu-west-1 and as a template for the default region.
    linted += [broken("not-in-eu-west-1-as-eu-west-1-stack", NOT_IN_EU_WEST_1, "eu-west-1"),
               broken("not-in-eu-west-1-default-region", NOT_IN_EU_WEST_1, None)]

    result = lint_stacks(linted, cache=lint_cache())

    found: dict[str, list[str]] = {s.template_path.name: [] for s in linted}
    for line in result.lines:
        found[line.split()[2].rpartition(":")[0]].append(line)
    return Linted(result, found)


@pytest.mark.parametrize("defect", DEFECTS)
def test_cfn_lint_fails_a_real_template_with_one_defect(linted_defects, defect):
    """cfn-lint is the template check of the main job and the tests: GIVEN one synthesized template with
    one defect added WHEN linted THEN it reports that rule (an error or a warning: either fails the check)."""
    _, rule = DEFECTS[defect]
    result, lines = linted_defects.result, linted_defects.lines[f"{defect}.template.json"]

    # The result's counts are its lines' levels, so a copy's errors and warnings are its own lines' ...
    levels = [line.split()[0] for line in result.lines]
    assert (result.errors, result.warnings) == (levels.count("Error"), levels.count("Warning")), result.lines
    # ... and the copy with this defect has at least one, for this rule.
    errors_and_warnings = sum(line.split()[0] in ("Error", "Warning") for line in lines)
    assert errors_and_warnings >= 1 and any(line.split()[1] == rule for line in lines), lines


def test_cfn_lint_checks_each_stack_against_the_region_it_deploys_to(linted_defects):
    """GIVEN a synthesized template with a resource type AWS offers in us-east-1 (cfn-lint's default region)
    but not in eu-west-1 WHEN linted as a stack deploying to eu-west-1 THEN cfn-lint reports the type
    (E3006), which a lint for the default region misses."""
    found = linted_defects.lines["not-in-eu-west-1-as-eu-west-1-stack.template.json"]

    assert [line.split()[:2] for line in found if "AWS::AppIntegrations::Application" in line] == [["Error", "E3006"]]
    assert not [line for line in linted_defects.lines["not-in-eu-west-1-default-region.template.json"] if "E3006" in line]


def test_nag_packs_leave_no_unacknowledged_finding(synthesized):
    assert nag_violations(synthesized.outdir) == []


def test_every_acknowledgement_has_a_reason_and_a_narrow_scope(synthesized):
    assert synthesized.acknowledgements, "expected the documented acknowledgements to be recorded"
    for ack in synthesized.acknowledgements:
        assert len(ack["reason"]) >= 40, ack
        # Never a whole stage or stack: always a construct inside a stack.
        assert ack["path"].count("/") >= 2, ack
        # IAM5 is acknowledged per finding (one wildcard), never for the whole rule.
        if ack["rule"].startswith("AwsSolutions-IAM5"):
            assert "[" in ack["rule"], ack


def test_wildcard_acknowledgements_are_trailing_name_wildcards_never_action_wildcards(synthesized):
    """Every acknowledged wildcard is a name prefix (``.../prefix/*``, ``pipelines-*``, a log stream
    ``:*``) or a ``*`` for an action without resource-level permissions; never ``s3:*``-style actions."""
    for ack in synthesized.acknowledgements:
        if ack["rule"].startswith("AwsSolutions-IAM5"):
            assert ack["rule"].endswith("*]"), ack["rule"]
            assert "Action::" not in ack["rule"], ack["rule"]


def test_nag_is_active_a_noncompliant_bucket_fails_synth(tmp_path):
    """GIVEN a bucket without encryption, TLS policy or logging WHEN synthesized with our packs THEN synth fails."""
    # The App as app.py builds it (new_app: the CDK's built-in template validator off, as in every synth of the
    # app; on, its one-off load of the CloudFormation spec cost this test ~3.7 CPU-seconds in the Node process).
    app = new_app(str(tmp_path))
    stack = Stack(app, "Probe")
    s3.Bucket(stack, "Plain")
    add_nag_packs(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    rules = {v["ruleName"] for v in nag_violations(tmp_path)}
    assert {"AwsSolutions-S1", "AwsSolutions-S10", "NIST.800.53.R5-S3BucketLoggingEnabled"} <= rules


def test_acknowledge_refuses_an_unknown_rule_and_acknowledges_nothing(tmp_path):
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Probe")
    with pytest.raises(ValueError, match=r"^unknown nag rule id 'IAM5'$"):
        acknowledge(stack, "a reason long enough to be one", "AwsSolutions-S1", "IAM5")
    assert not [entry for entry in stack.node.metadata if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY]


def test_acknowledge_refuses_an_empty_reason(tmp_path):
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Probe")
    with pytest.raises(ValueError, match="needs a real reason"):
        acknowledge(stack, "because", "AwsSolutions-S1")
