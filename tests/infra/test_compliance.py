"""cfn-lint and cdk-nag over everything synthesized: zero errors, zero unacknowledged findings."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from mlops_loop.nag import acknowledge, add_nag_packs
from mlops_loop.tools.cloud_assembly import nag_violations
from mlops_loop.tools.lint import lint_templates


def test_cfn_lint_reports_no_error_or_warning(synthesized):
    result = lint_templates([s.template_path for s in synthesized.stacks.values()])
    assert (result.errors, result.warnings) == (0, 0), "\n".join(result.lines)
    assert len(synthesized.stacks) == 15  # 3 environments x (Storage, DataPipeline, Training, Serving, Operations)


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


def test_acknowledge_refuses_an_empty_reason(tmp_path):
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Probe")
    with pytest.raises(ValueError, match="needs a real reason"):
        acknowledge(stack, "because", "AwsSolutions-S1")
