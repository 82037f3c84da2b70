"""cfn-lint and cdk-nag over everything synthesized: zero errors, zero unacknowledged findings."""

from __future__ import annotations

import dataclasses
import json

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3

from mlops_loop.nag import acknowledge, add_nag_packs
from mlops_loop.tools.cloud_assembly import nag_violations
from mlops_loop.tools.lint import lint_cache, lint_stacks, lint_templates


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


@pytest.mark.parametrize(
    "defect, rule",
    [
        # The CDK's built-in validator (off, see app_builder.new_app) only warns about this one.
        ({"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 4}}, "E3030"),
        # ... and has no rule for this one at all.
        ({"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "GetObject", "Resource": "*"}]}}}, "W3037"),
    ],
    ids=["invalid-enum", "action-without-service-prefix"],
)
def test_cfn_lint_fails_a_real_template_with_one_defect(synthesized, tmp_path, defect, rule):
    """cfn-lint is the template check of the main job and the tests: GIVEN one synthesized template with
    one defect added WHEN linted THEN it reports that rule (an error or a warning: either fails the check)."""
    stack = _smallest(synthesized)
    template = json.loads(stack.template_path.read_text())
    template["Resources"]["Defect"] = defect
    broken = tmp_path / stack.template_path.name
    broken.write_text(json.dumps(template))

    result = lint_templates([broken])

    assert result.errors + result.warnings >= 1 and any(line.split()[1] == rule for line in result.lines), result.lines


def test_cfn_lint_checks_each_stack_against_the_region_it_deploys_to(synthesized, tmp_path):
    """GIVEN a synthesized template with a resource type AWS offers in us-east-1 (cfn-lint's default region)
    but not in eu-west-1 WHEN linted as a stack deploying to eu-west-1 THEN cfn-lint reports the type
    (E3006), which a lint for the default region misses."""
    stack = _smallest(synthesized)
    template = json.loads(stack.template_path.read_text())
    template["Resources"]["Defect"] = {"Type": "AWS::AppIntegrations::Application", "Properties": {}}
    broken = tmp_path / stack.template_path.name
    broken.write_text(json.dumps(template))
    in_eu_west_1 = dataclasses.replace(stack, template_path=broken, region="eu-west-1")

    found = lint_stacks([in_eu_west_1])

    assert [line.split()[:2] for line in found.lines if "AWS::AppIntegrations::Application" in line] == [["Error", "E3006"]]
    assert not [line for line in lint_templates([broken]).lines if "E3006" in line]


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
    app = App(outdir=str(tmp_path))
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
